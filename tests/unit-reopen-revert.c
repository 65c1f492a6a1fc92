/* A revert whose target turned invalid is ended by the replay of the
 * next open (cow/revert.c, revert_replayed), in memory only.  After a
 * clean close that open continues the journal as it is, so the REVERT
 * record stays there unended; a later revert then appends its own, and
 * the open after it must still replay the journal. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/format.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define NCHUNKS 8

TestSuite (reopen_revert, .init = uh_setup, .fini = uh_teardown);

/* A revert to A runs; A is invalidated (reading the origin to copy a
 * chunk it still sees there failed), and the area is closed cleanly
 * with the revert still running: the open ends it. */
static void
revert_to_an_invalidated_target (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 5);
  uh_snap (a->d, "A");
  uh_copy_chunk (a->d, 2, 12);
  cr_assert_eq (sc_diff_revert_start (a->d, "A", NULL, 0, NULL), 0);
  cr_assert_eq (sc_diff_invalidate_chunk (a->d, 5, SC_INVALID_COPY_READ,
                                          EIO), 0);
  cr_assert_neq (uh_find (a->d, "A").invalid_reason, SC_VALID);
  cr_assert (sc_diff_revert_active (a->d));
  uh_area_reopen (a, 0);
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_info (a->d, &ri), -ENOENT,
                "ended at the open: its target is invalid");
  cr_assert_neq (ri.ended_why[0], '\0');
}

Test (reopen_revert, a_new_revert_after_one_ended_at_open_replays)
{
  struct uh_area a;
  revert_to_an_invalidated_target (&a);
  uh_snap (a.d, "B");
  uh_copy_chunk (a.d, 3, 13);
  cr_assert_eq (sc_diff_revert_start (a.d, "B", NULL, 0, NULL), 0);
  uh_area_reopen (&a, 0);       /* replays both REVERT records */
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0, "the revert to B runs");
  cr_assert_str_eq (ri.target, "B");
  uh_area_free (&a);
}

/* Its target deleted, the replay finds no target to judge invalid
 * (revert_replayed): the REVERT record would make it run again, pinning
 * nothing, its pending chunks unreadable and new snapshots refused. */
Test (reopen_revert, the_target_of_a_revert_ended_at_open_can_be_deleted)
{
  struct uh_area a;
  revert_to_an_invalidated_target (&a);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "A"), 0);
  uh_area_reopen (&a, 0);
  cr_assert_not (sc_diff_revert_active (a.d), "a revert to a deleted "
                 "snapshot runs again");
  uh_snap (a.d, "B");
  uh_area_free (&a);
}

/* A diff area written before the fix above: the revert's target deleted
 * after the open that ended it, with no REVERT_END in the journal.  The
 * revert cannot be served (its target is gone): the open ends it. */
Test (reopen_revert, a_revert_whose_target_is_gone_is_ended_at_open)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  uint64_t id = uh_snap (a.d, "A").id;
  uh_copy_chunk (a.d, 2, 12);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 5, SC_INVALID_COPY_READ,
                                          EIO), 0);
  uh_area_close (&a);
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = id };
  uh_journal_append (a.diff_path, &r, sizeof r);
  uh_area_open (&a, 0);
  cr_assert_not (sc_diff_revert_active (a.d), "a revert to a deleted "
                 "snapshot runs");
  uh_snap (a.d, "B");
  uh_area_reopen (&a, 0);
  cr_assert_not (sc_diff_revert_active (a.d));
  uh_area_free (&a);
}

/* Review (i17-rev8): a diff area written before the fix in the very
 * sequence of the bug: the open ended the revert to A (its target
 * invalid) and continued the journal without REVERT_END; then B was
 * made and a revert to B started.  The journal holds REVERT A ...
 * REVERT B.  The fix writes REVERT_END now, and mends an old area whose
 * target was deleted (a_revert_whose_target_is_gone_is_ended_at_open),
 * but this one, the symptom in the field, is still refused ("bad revert
 * record"); the way out it names, salvage, marks snapshots invalid.
 * The old area is made here by the new code, its REVERT_END then
 * overwritten in place with a COMMIT (same length and seq), which is
 * what the old open left: nothing that ends the revert. */
Test (reopen_revert, an_area_written_before_the_fix_with_the_next_revert_opens)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  uh_snap (a.d, "A");
  uh_copy_chunk (a.d, 2, 12);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 5, SC_INVALID_COPY_READ,
                                          EIO), 0);
  uh_area_close (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);    /* where the open's end goes */
  uh_area_open (&a, 0);
  cr_assert_not (sc_diff_revert_active (a.d));
  uh_snap (a.d, "B");
  uh_copy_chunk (a.d, 3, 13);
  cr_assert_eq (sc_diff_revert_start (a.d, "B", NULL, 0, NULL), 0);
  uh_area_close (&a);

  struct sc_rec_revert_end end;
  uh_pread (a.diff_path, &end, sizeof end, je.off);
  cr_assert_eq (end.h.type, SC_REC_REVERT_END, "the open's REVERT_END");
  cr_assert_eq (end.h.seq, je.next_seq);
  struct sc_rec_commit nothing = { .h.type = SC_REC_COMMIT };
  uh_rec_seal (&nothing, sizeof nothing, je.next_seq, je.seed);
  uh_pwrite (a.diff_path, &nothing, sizeof nothing, je.off);

  uh_area_open (&a, 0);         /* the area the old code wrote */
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0, "the revert to B runs");
  cr_assert_str_eq (ri.target, "B");
  uh_area_free (&a);
}

/* Review (i17-rev8): revert_replayed now ends, at open, a revert whose
 * target is gone, on the ground that "a live delete of the target is
 * refused while the revert runs".  snapshot_delete_locked checks that
 * (revert_pins) only before it deletes the clones (with_clones), and
 * clone_delete lets go of the lock while a clone's readers finish: a
 * revert to the snapshot started then is not seen, and its target is
 * deleted under it.  The next open then ends it unfinished, the chunks
 * it had not written back going back to their pre-revert content. */
struct del_arg { struct sc_diff *d; int r; };

static void *
delete_with_clones (void *p)
{
  struct del_arg *a = p;
  a->r = sc_diff_snapshot_delete_with_clones (a->d, "A");
  return NULL;
}

Test (reopen_revert, the_target_of_a_running_revert_is_never_deleted)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  uh_snap (a.d, "A");
  uh_copy_chunk (a.d, 2, 12);
  char err[256] = "";
  struct sc_snapshot_info ci;
  cr_assert_eq (sc_diff_clone_create (a.d, "A", "C", &ci, err, sizeof err),
                0, "%s", err);
  cr_assert_eq (sc_diff_clone_get (a.d, ci.id, NULL), 0);   /* a reader */
  struct del_arg da = { a.d, 1 };
  pthread_t th;
  cr_assert_eq (pthread_create (&th, NULL, delete_with_clones, &da), 0);
  usleep (300 * 1000);          /* the delete waits for C's reader */
  int rv = sc_diff_revert_start (a.d, "A", NULL, 0, NULL);
  sc_diff_clone_put (a.d, ci.id);
  pthread_join (th, NULL);
  cr_assert (rv != 0 || da.r != 0, "the revert to A started (%d) and A "
             "was deleted (%d) while it ran", rv, da.r);
  uh_area_free (&a);
}
