/* Unit tests of cow/revert.c: what a revert has to do, its records
 * replayed and checkpointed, its target pinned. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/format.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define NCHUNKS 16

TestSuite (revert, .init = uh_setup, .fini = uh_teardown);

/* A (epoch 1); chunks 2 and 3 change; B; chunk 5 changes; chunk 9 is
 * copied as zeros; the checkpoint K; chunk 7 changes (a mark only for
 * K, B needing its data). */
static void
make_area (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 5);
  uh_snap (a->d, "A");
  uh_copy_chunk (a->d, 2, 12);
  uh_copy_chunk (a->d, 3, 13);
  uh_snap (a->d, "B");
  uh_copy_chunk (a->d, 5, 15);
  uh_copy_zero (a->d, 9);
  struct sc_snapshot_opts ck = { .checkpoint = true };
  cr_assert_eq (sc_diff_snapshot_create (a->d, "K", &ck, NULL), 0);
  uh_copy_chunk (a->d, 7, 17);
}

static size_t
pending (struct sc_diff *d, uint64_t *out)
{
  size_t n = 0;
  uint64_t next, first = 0;
  while (first < NCHUNKS) {
    n += sc_diff_revert_pending (d, first, NCHUNKS - 1, out + n,
                                 NCHUNKS - n, &next);
    first = next;
  }
  return n;
}

static void
assert_pending (struct sc_diff *d, const uint64_t *want, size_t nwant)
{
  uint64_t got[NCHUNKS];
  size_t n = pending (d, got);
  cr_assert_eq (n, nwant, "%zu chunks pending, want %zu", n, nwant);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq (got[i], want[i], "pending[%zu] = %lu, want %lu", i,
                  (unsigned long) got[i], (unsigned long) want[i]);
}

Test (revert, todo_is_what_changed_after_the_target)
{
  struct uh_area a;
  make_area (&a);
  struct sc_revert_plan p;
  cr_assert_eq (sc_diff_revert_plan (a.d, "A", true, &p), 0);
  cr_assert_eq (p.todo_chunks, 5, "todo %lu", (unsigned long) p.todo_chunks);
  cr_assert_eq (p.copy_chunks, 5, "with a saved snapshot, each may copy");
  cr_assert (p.fits);
  cr_assert_eq (sc_diff_revert_plan (a.d, "B", false, &p), 0);
  cr_assert_eq (p.todo_chunks, 3, "B: chunks 5, 7, 9");
  cr_assert_eq (p.copy_chunks, 0, "no valid snapshot sees them on the origin");
  cr_assert_eq (sc_diff_revert_active (a.d), false, "a plan starts nothing");
  uh_area_free (&a);
}

Test (revert, bad_targets_are_refused)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "nope", NULL, 0, NULL), -ENOENT);
  cr_assert_eq (sc_diff_revert_start (a.d, "K", NULL, 0, NULL), -EINVAL);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "B", 0, NULL), -EEXIST,
                "a saved name that exists");
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "live", 0, NULL), -EINVAL);
  cr_assert_eq (sc_diff_revert_active (a.d), false);
  cr_assert_eq (uh_stats (a.d).snapshots, 3, "nothing made");
  uh_area_free (&a);
}

Test (revert, start_saves_the_current_state_and_pins_the_target)
{
  struct uh_area a;
  make_area (&a);
  uint32_t epoch = uh_stats (a.d).epoch;
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "saved", 1000, &ri), 0);
  cr_assert (ri.active);
  cr_assert_str_eq (ri.target, "A");
  cr_assert_str_eq (ri.saved, "saved");
  cr_assert_eq (ri.start_epoch, epoch + 1);
  cr_assert_eq (uh_find (a.d, "saved").epoch, epoch);
  cr_assert_eq (ri.todo_chunks, 5);
  cr_assert_eq (ri.done_chunks, 0);
  cr_assert_eq (ri.rate, 1000);
  uint64_t want[] = { 2, 3, 5, 7, 9 };
  assert_pending (a.d, want, 5);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "A"), -EBUSY);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "A"), -EBUSY);
  cr_assert_eq (sc_diff_snapshot_create (a.d, "C", NULL, NULL), -EBUSY);
  struct sc_snapshot_opts ck = { .checkpoint = true };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "C", &ck, NULL), -EBUSY);
  cr_assert_eq (sc_diff_revert_start (a.d, "B", NULL, 0, NULL), -EALREADY);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "B"), 0, "others go");
  uh_area_free (&a);
}

Test (revert, without_saving_the_epoch_moves_on)
{
  struct uh_area a;
  make_area (&a);
  uint32_t epoch = uh_stats (a.d).epoch;
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_start (a.d, "B", NULL, 0, &ri), 0);
  cr_assert_eq (ri.start_epoch, epoch + 1);
  cr_assert_eq (uh_stats (a.d).epoch, epoch + 1);
  cr_assert_eq (ri.saved_id, 0);
  uint64_t want[] = { 5, 7, 9 };
  assert_pending (a.d, want, 3);
  /* A write after the revert (a copy in the new epoch) adds nothing. */
  uh_copy_chunk (a.d, 11, 21);
  assert_pending (a.d, want, 3);
  uh_area_free (&a);
}

Test (revert, done_chunks_are_merged_and_counted_once)
{
  struct uh_area a;
  make_area (&a);
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "saved", 0, NULL), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 3, 1), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 2, 1), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 2, 3), 0, "overlapping, and 4 "
                "is not to do");
  cr_assert_eq (sc_diff_revert_done (a.d, 0, NCHUNKS + 1), -EINVAL);
  uint64_t want[] = { 5, 7, 9 };
  assert_pending (a.d, want, 3);
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0);
  cr_assert_eq (ri.done_chunks, 2);
  cr_assert_eq (sc_diff_revert_finish (a.d), 0, "chunks still pending");
  uh_area_free (&a);
}

Test (revert, finish_ends_it_and_unpins)
{
  struct uh_area a;
  make_area (&a);
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_start (a.d, "B", NULL, 0, NULL), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 5, 5), 0);
  cr_assert_eq (sc_diff_revert_finish (a.d), 1);
  cr_assert_eq (sc_diff_revert_active (a.d), false);
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), -ENOENT);
  cr_assert_eq (ri.ended_why[0], '\0');
  uint64_t got[NCHUNKS];
  cr_assert_eq (pending (a.d, got), 0);
  uh_snap (a.d, "C");
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_revert_active (a.d), false, "the end is replayed");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "B"), 0);
  uh_area_free (&a);
}

/* The state after start, two done chunks, reopened (`ckpt`: through a
 * checkpoint written at open, else by replaying the journal). */
static void
round_trip (bool ckpt, bool crash)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "saved", 777, NULL), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 2, 2), 0);
  cr_assert_eq (sc_diff_revert_done (a.d, 9, 1), 0);
  uh_area_close (&a);
  if (crash)
    uh_sb_mark_unclean (a.diff_path);
  for (int i = 0; i < 2; i++) {
    uh_area_open (&a, 0);
    if (ckpt && i == 0) {
      /* A second open reads the checkpoint the first one wrote. */
      uh_area_close (&a);
      uh_sb_mark_unclean (a.diff_path);
      continue;
    }
    struct sc_revert_info ri;
    cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0);
    cr_assert_str_eq (ri.target, "A");
    cr_assert_str_eq (ri.saved, "saved");
    cr_assert_eq (ri.rate, 777);
    cr_assert_eq (ri.todo_chunks, 5);
    cr_assert_eq (ri.done_chunks, 3);
    uint64_t want[] = { 5, 7 };
    assert_pending (a.d, want, 2);
    cr_assert_eq (sc_diff_snapshot_delete (a.d, "A"), -EBUSY);
    cr_assert_eq (sc_diff_snapshot_create (a.d, "C", NULL, NULL), -EBUSY);
    uh_area_close (&a);
    if (!ckpt)
      break;
  }
  uh_area_free (&a);
}

Test (revert, replay_rebuilds_it)
{
  round_trip (false, false);
}

Test (revert, replay_after_a_crash_rebuilds_it)
{
  round_trip (false, true);
}

Test (revert, a_checkpoint_carries_it)
{
  round_trip (true, true);
}

Test (revert, a_deleted_saved_snapshot_is_no_longer_named)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", "saved", 0, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "saved"), 0);
  uh_area_close (&a);
  uh_sb_mark_unclean (a.diff_path);     /* a checkpoint at open */
  uh_area_open (&a, 0);
  uh_area_close (&a);
  uh_sb_mark_unclean (a.diff_path);
  uh_area_open (&a, 0);
  struct sc_revert_info ri;
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0);
  cr_assert_eq (ri.saved_id, 0);
  cr_assert_eq (ri.todo_chunks, 5);
  uh_area_free (&a);
}

static void
append_done (struct uh_area *a, uint64_t first, uint64_t count)
{
  struct sc_rec_revert_done r = { .h.type = SC_REC_REVERT_DONE,
                                  .first = first, .count = count };
  uh_journal_append (a->diff_path, &r, sizeof r);
}

static void
assert_open_refused (struct uh_area *a, const char *word)
{
  struct sc_diff *d = NULL;
  char err[1024] = "";
  int r = sc_diff_open (a->diff_path, SC_DIFF_RDONLY, &a->id, 0, &d, err,
                        sizeof err);
  if (r == 0)
    sc_diff_close (d);
  cr_assert_eq (r, -EINVAL, "open: %d (%s)", r, err);
  cr_assert (strstr (err, word), "message: %s", err);
}

Test (revert, a_done_record_without_a_revert_is_corrupt)
{
  struct uh_area a;
  make_area (&a);
  uh_area_close (&a);
  append_done (&a, 2, 1);
  assert_open_refused (&a, "revert-done");
  uh_area_free (&a);
}

Test (revert, a_done_record_past_the_volume_is_corrupt)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  uh_area_close (&a);
  append_done (&a, NCHUNKS - 1, 2);
  assert_open_refused (&a, "revert-done");
  uh_area_free (&a);
}

Test (revert, a_revert_to_an_unknown_snapshot_is_corrupt)
{
  struct uh_area a;
  make_area (&a);
  uint32_t epoch = uh_stats (a.d).epoch;
  uh_area_close (&a);
  struct sc_rec_revert r = { .h.type = SC_REC_REVERT, .target_id = 99,
                             .start_epoch = epoch + 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_open_refused (&a, "bad revert record");
  uh_area_free (&a);
}

Test (revert, an_end_of_another_target_is_corrupt)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  uh_area_close (&a);
  struct sc_rec_revert_end r = { .h.type = SC_REC_REVERT_END,
                                 .target_id = 2 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_open_refused (&a, "ends a revert");
  uh_area_free (&a);
}

/* The target is protected: a discard by its reader would make chunks
 * pending that the live volume already holds (or wrote since): refused. */
Test (revert, a_discard_of_the_target_is_refused)
{
  struct uh_area a;
  make_area (&a);
  uint64_t id = uh_find (a.d, "A").id;
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_protected (a.d, id), SC_PROTECTED_REVERT);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, id, 10, 11), -EBUSY);
  uint64_t want[] = { 2, 3, 5, 7, 9 };
  assert_pending (a.d, want, 5);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, uh_find (a.d, "B").id, 10,
                                          11), 0, "others may discard");
  cr_assert_eq (sc_diff_revert_done (a.d, 0, NCHUNKS), 0);
  cr_assert_eq (sc_diff_revert_finish (a.d), 1);
  cr_assert_eq (sc_diff_snapshot_protected (a.d, id), 0);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, id, 10, 11), 0,
                "after the revert it may");
  uh_area_free (&a);
}

/* The diff area is full and nothing can be dropped: a copy the target
 * needs is refused (the live write fails with ENOSPC) rather than the
 * target invalidated; a copy only another snapshot needs keeps today's
 * policy (-ENOSPC: the caller invalidates). */
Test (revert, a_full_area_refuses_a_copy_the_target_needs)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  uh_snap (a.d, "A");
  uh_copy_chunk (a.d, 2, 12);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  uint64_t used = uh_stats (a.d).used_bytes + 4 * CS;
  cr_assert_eq (sc_diff_set_max (a.d, used > 16 * CS ? used : 16 * CS, 0,
                                 NULL), 0);
  int r = 0;
  for (uint64_t c = 4; c < NCHUNKS && r == 0; c++)
    r = uh_copy_reserved (a.d, c, 100 + c);
  cr_assert_eq (r, SC_COPY_REFUSED, "r %d", r);
  cr_assert_eq (uh_find (a.d, "A").invalid_reason, SC_VALID,
                "the target is kept");
  cr_assert (sc_diff_revert_active (a.d));
  uh_area_free (&a);
}

/* A REVERT whose target is deleted, or an auto-release snapshot, is one
 * no server writes: corrupt. */
static void
revert_record_to (bool deleted)
{
  struct uh_area a;
  make_area (&a);
  struct sc_snapshot_opts ar = { .auto_release = true };
  struct sc_snapshot_info t;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "T", deleted ? NULL : &ar,
                                         &t), 0);
  if (deleted)
    cr_assert_eq (sc_diff_snapshot_delete (a.d, "T"), 0);
  uint32_t epoch = uh_stats (a.d).epoch;
  uh_area_close (&a);
  struct sc_rec_revert r = { .h.type = SC_REC_REVERT, .target_id = t.id,
                             .start_epoch = epoch + 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_open_refused (&a, "bad revert record");
  uh_area_free (&a);
}

Test (revert, a_revert_to_a_deleted_target_is_corrupt)
{
  revert_record_to (true);
}

Test (revert, a_revert_to_an_auto_release_target_is_corrupt)
{
  revert_record_to (false);
}

/* Reverting to a writable clone is refused (EINVAL), nothing starts. */
Test (revert, a_clone_is_no_target)
{
  struct uh_area a;
  make_area (&a);
  struct sc_snapshot_info c;
  char err[256] = "";
  cr_assert_eq (sc_diff_clone_create (a.d, "A", "cl", &c, err, sizeof err),
                0, "%s", err);
  struct sc_revert_plan p;
  cr_assert_eq (sc_diff_revert_plan (a.d, "cl", true, &p), -EINVAL);
  cr_assert_eq (sc_diff_revert_start (a.d, "cl", NULL, 0, NULL), -EINVAL);
  cr_assert_eq (sc_diff_revert_active (a.d), false);
  uh_area_free (&a);
}

/* revert --rate: the new rate is recorded (REVERT_RATE), replayed after
 * a crash, and carried by the checkpoint written at that open. */
Test (revert, a_new_rate_survives_a_crash_and_a_checkpoint)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_set_rate (a.d, 5000), -ENOENT);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 777, NULL), 0);
  cr_assert_eq (sc_diff_revert_set_rate (a.d, 5000), 0);
  struct sc_revert_info ri;
  for (int i = 0; i < 3; i++) {
    cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0);
    cr_assert_eq (ri.rate, 5000, "open %d: rate %" PRIu64, i, ri.rate);
    uh_area_close (&a);
    uh_sb_mark_unclean (a.diff_path);   /* replay, then a checkpoint */
    uh_area_open (&a, 0);
  }
  cr_assert_eq (sc_diff_revert_set_rate (a.d, 0), 0);
  uh_area_close (&a);
  uh_sb_mark_unclean (a.diff_path);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_revert_info (a.d, &ri), 0);
  cr_assert_eq (ri.rate, 0, "unbounded: rate %" PRIu64, ri.rate);
  uh_area_free (&a);
}

Test (revert, a_rate_of_another_target_is_corrupt)
{
  struct uh_area a;
  make_area (&a);
  cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
  uh_area_close (&a);
  struct sc_rec_revert_rate r = { .h.type = SC_REC_REVERT_RATE,
                                  .target_id = 2, .rate = 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_open_refused (&a, "sets the rate");
  uh_area_free (&a);
}

/* A rate set while the revert ends (revert --rate as the copy finishes)
 * must not land after REVERT_END: the replay would refuse the area. */
static volatile int go, stop;
static void *
rate_setter (void *p)
{
  struct sc_diff *d = p;
  while (!go) ;
  while (!stop)
    if (sc_diff_revert_set_rate (d, 12345) == -ENOENT)
      break;
  return NULL;
}

Test (revert, a_rate_set_while_it_ends_is_refused_or_before_the_end)
{
  int corrupt = 0, tries;
  for (tries = 0; tries < 200 && !corrupt; tries++) {
    struct uh_area a;
    uh_area_create (&a, NCHUNKS * CS, CS, 5);
    uh_snap (a.d, "A");
    uh_copy_chunk (a.d, 5, 15);
    cr_assert_eq (sc_diff_revert_start (a.d, "A", NULL, 0, NULL), 0);
    cr_assert_eq (sc_diff_revert_done (a.d, 5, 1), 0);
    go = 0; stop = 0;
    pthread_t th;
    pthread_create (&th, NULL, rate_setter, a.d);
    go = 1;
    int r = sc_diff_revert_finish (a.d);
    stop = 1;
    pthread_join (th, NULL);
    cr_assert_eq (r, 1);
    uh_area_close (&a);
    char err[512] = "";
    struct sc_diff *d2 = NULL;
    int o = sc_diff_open (a.diff_path, 0, &a.id, 0, &d2, err, sizeof err);
    if (o < 0) {
      cr_log_error ("try %d: reopen after a finished revert: %d %s", tries,
                    o, err);
      corrupt = 1;
    }
    else
      sc_diff_close (d2);
    a.d = NULL;
    unlink (a.diff_path);       /* the next try makes the area anew */
    uh_area_free (&a);
  }
  cr_assert_eq (corrupt, 0, "diff area unopenable after %d tries", tries);
}
