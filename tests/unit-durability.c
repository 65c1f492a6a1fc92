/* Unit tests: durability modes and the journal's bounds: volatile
 * sessions that stop uncleanly invalidate their snapshots, clean ones do
 * not; checkpoints while serving keep the journal short. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (durability, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

/* Run `session` on the diff area in a child that then dies without
 * closing it: what a SIGKILL or a power cut leaves (the page cache
 * survives a process death, so this models the first, not the second). */
static void
crash_after (struct uh_area *a, unsigned flags,
             void (*session) (struct uh_area *a))
{
  uh_area_close (a);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    uh_area_open (a, flags);
    session (a);
    _exit (0);
  }
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0,
             "the session failed");
}

static void
copy_and_snapshot (struct uh_area *a)
{
  uh_copy_chunk (a->d, 0, 1);
  uh_snap (a->d, "during");
  uh_copy_chunk (a->d, 1, 2);
}

static void
assert_all (struct uh_area *a, unsigned flags, uint32_t reason, size_t n)
{
  uh_area_open (a, flags);
  struct sc_snapshot_info *v;
  size_t k;
  cr_assert_eq (sc_diff_snapshot_list (a->d, &v, &k), 0);
  cr_assert_eq (k, n);
  for (size_t i = 0; i < k; i++)
    cr_assert_eq (v[i].invalid_reason, reason, "%s: reason %u, want %u",
                  v[i].name, v[i].invalid_reason, reason);
  free (v);
  uh_area_close (a);
}

Test (durability, volatile_unclean_stop_invalidates_every_snapshot)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "before");
  crash_after (&a, SC_DIFF_VOLATILE, copy_and_snapshot);
  assert_all (&a, SC_DIFF_RDONLY, SC_INVALID_VOLATILE, 2);
  /* The verdict is recorded by the next read-write open, and kept. */
  assert_all (&a, 0, SC_INVALID_VOLATILE, 2);
  assert_all (&a, 0, SC_INVALID_VOLATILE, 2);
  uh_area_free (&a);
}

Test (durability, volatile_clean_close_keeps_snapshots)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "before");
  uh_area_reopen (&a, SC_DIFF_VOLATILE);
  copy_and_snapshot (&a);
  uh_area_close (&a);
  assert_all (&a, 0, SC_VALID, 2);
  uh_area_free (&a);
}

Test (durability, safe_unclean_stop_keeps_committed_snapshots)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "before");
  crash_after (&a, 0, copy_and_snapshot);
  assert_all (&a, 0, SC_VALID, 2);
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.copies, 2);
  uh_area_close (&a);
  uh_area_free (&a);
}

/* Many short-lived snapshots: records pile up while the state stays
 * small, so checkpoints must keep the journal bounded. */
static void
churn (struct uh_area *a, unsigned rounds)
{
  for (unsigned i = 0; i < rounds; i++) {
    uh_snap (a->d, "churn");
    uh_copy_chunk (a->d, i % 16, i);
    cr_assert_eq (sc_diff_snapshot_delete (a->d, "churn"), 0);
  }
}

Test (durability, checkpoints_keep_the_journal_bounded_while_serving)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "kept");
  uh_copy_chunk (a.d, 5, 99);
  uh_area_reopen (&a, SC_DIFF_VOLATILE);       /* no fdatasync per round */
  churn (&a, 30000);
  struct sc_diff_stats st = uh_stats (a.d);
  /* 30000 rounds append at least 90000 records. */
  uint64_t bound = 2 * (st.copies + 4) + 65536 + 8;
  cr_assert_lt (st.journal_records, bound, "journal_records %lu",
                (unsigned long) st.journal_records);
  /* ... and the space: records are at most 64 bytes here. */
  cr_assert_leq (st.journal_slots, bound * 64 / CS + 2, "journal_slots %lu",
                 (unsigned long) st.journal_slots);
  uh_area_close (&a);
  /* What the checkpoints kept replays to the same state. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info kept = uh_find (a.d, "kept");
  cr_assert_eq (kept.invalid_reason, SC_VALID);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, kept.epoch, 5, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 99);
  cr_assert_eq (sc_diff_snapshot_find (a.d, "churn", &kept), -ENOENT);
  uh_area_close (&a);
  uh_area_free (&a);
}

Test (durability, a_clean_open_continues_the_journal_in_place)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "one");
  uh_area_close (&a);
  struct sc_sb_disk before, after;
  uh_sb_newest (a.diff_path, &before);
  uh_area_open (&a, 0);
  uh_area_close (&a);
  uh_sb_newest (a.diff_path, &after);
  /* Same journal (no checkpoint), and still clean. */
  cr_assert_eq (after.journal_head, before.journal_head);
  cr_assert_eq (after.journal_nonce, before.journal_nonce);
  cr_assert (after.flags & SC_SB_CLEAN);
  uh_area_free (&a);
}

Test (durability, snapshot_churn_alone_keeps_the_journal_bounded)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_area_reopen (&a, SC_DIFF_VOLATILE);
  for (unsigned i = 0; i < 40000; i++) {        /* no copies at all */
    uh_snap (a.d, "churn");
    cr_assert_eq (sc_diff_snapshot_delete (a.d, "churn"), 0);
  }
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_lt (st.journal_records, 2 * (st.copies + 4) + 65536 + 8,
                "journal_records %lu", (unsigned long) st.journal_records);
  uh_area_free (&a);
}
