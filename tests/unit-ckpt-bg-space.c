/* Unit tests (review of the background checkpoint): the room a due
 * checkpoint gives back.
 *
 * A data slot is granted only while the journal's current size is free
 * again (cow/space.c, space_fits): a long journal counts twice against
 * the limit.  Before the checkpoint moved to a runner, the commit that
 * found the journal long rewrote it at once, so the next copy's
 * reservation already saw the compact journal.  With a runner
 * registered, that commit only marks the checkpoint due; until the runner
 * gets to it (it may be slow: cow/diffarea.h), a write short of room
 * finds the long journal still counted twice, and the on-full policy
 * drops a snapshot (delete-oldest) or refuses the write (fail-writes)
 * for room the due checkpoint is about to give back.
 *
 * Each case is run twice: without a runner (the commit writes the
 * checkpoint: the copy fits, nothing is dropped) and with a runner that
 * has not run yet (the same state, the same limit). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define NCHUNKS 256u

static void
setup (void)
{
  uh_setup ();
  uh_ckpt_limit_disarm ();
  sc_ckpt_limit_hook = uh_ckpt_fixed_limit;
}

static void
teardown (void)
{
  sc_ckpt_limit_hook = NULL;
  uh_teardown ();
}

TestSuite (ckpt_bg_space, .init = setup, .fini = teardown, .timeout = 120);

static int wakes;

/* A registered runner that has not got to the checkpoint yet. */
static void
slow_wake (void *arg)
{
  (void) arg;
  __atomic_add_fetch (&wakes, 1, __ATOMIC_SEQ_CST);
}

static bool
listed (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info info;
  return sc_diff_snapshot_find (d, name, &info) == 0;
}

/* A diff area whose journal is long next to its (empty) state, a limit
 * a few slots over what it uses, then snapshot "keep", whose commit finds
 * the journal long (past the limit, under twice it). */
static void
nearly_full (struct uh_area *a, enum sc_on_full on_full, bool runner)
{
  uh_area_create (a, (uint64_t) NCHUNKS * CS, CS, 3);
  sc_diff_set_policy (a->d, on_full, 0);
  for (uint64_t round = 0; round < 4; round++) {
    uh_snap (a->d, "tmp");
    for (uint64_t c = 0; c < 200; c++)
      uh_copy_chunk (a->d, c, round * 1000 + c);
    cr_assert_eq (sc_diff_snapshot_delete (a->d, "tmp"), 0);
  }
  struct sc_diff_stats st = uh_stats (a->d);
  cr_assert_eq (st.data_slots, 0);
  cr_assert_geq (st.journal_slots, 4, "journal of %lu slots only",
                 (unsigned long) st.journal_slots);
  uint64_t max = st.used_bytes + 4 * CS;
  cr_assert_eq (sc_diff_set_max (a->d, max, SC_MAX_LAZY, NULL), 0);
  if (runner)
    sc_diff_set_ckpt_runner (a->d, slow_wake, NULL);
  uh_ckpt_limit_arm (uh_stats (a->d).journal_records);
  uh_snap (a->d, "keep");
  cr_assert_eq (__atomic_load_n (&wakes, __ATOMIC_SEQ_CST), runner ? 1 : 0);
}

static void
delete_oldest_keeps_the_snapshot (bool runner)
{
  struct uh_area a;
  nearly_full (&a, SC_ON_FULL_DELETE_OLDEST, runner);
  int r = uh_copy_reserved (a.d, 5, 4242);
  cr_assert (listed (a.d, "keep"),
             "snapshot keep was dropped for room (copy: %d, runner %d, "
             "checkpoint due %d, journal %lu slots, dropped %lu)", r, runner,
             sc_diff_ckpt_due (a.d),
             (unsigned long) uh_stats (a.d).journal_slots,
             (unsigned long) uh_stats (a.d).dropped);
  cr_assert_eq (r, 0);
  uh_assert_sees_copy (a.d, "keep", 5, 4242);
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  uh_area_free (&a);
}

static void
fail_writes_takes_the_write (bool runner)
{
  struct uh_area a;
  nearly_full (&a, SC_ON_FULL_FAIL_WRITES, runner);
  int r = uh_copy_reserved (a.d, 5, 4242);
  cr_assert_eq (r, 0, "the write was refused for room (%d, runner %d, "
                "checkpoint due %d, journal %lu slots)", r, runner,
                sc_diff_ckpt_due (a.d),
                (unsigned long) uh_stats (a.d).journal_slots);
  uh_assert_sees_copy (a.d, "keep", 5, 4242);
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  uh_area_free (&a);
}

Test (ckpt_bg_space, delete_oldest_without_a_runner)
{
  delete_oldest_keeps_the_snapshot (false);
}

/* FAILS on i17-bgckpt: "keep" is dropped. */
Test (ckpt_bg_space, delete_oldest_with_a_runner_not_run_yet)
{
  delete_oldest_keeps_the_snapshot (true);
}

Test (ckpt_bg_space, fail_writes_without_a_runner)
{
  fail_writes_takes_the_write (false);
}

/* FAILS on i17-bgckpt: the write gets ENOSPC. */
Test (ckpt_bg_space, fail_writes_with_a_runner_not_run_yet)
{
  fail_writes_takes_the_write (true);
}

/* resize --max --force right after a delete whose commit found the
 * journal long: shrink_to drops snapshots first and compacts the journal
 * only once none is left, so with the checkpoint still due it drops
 * "keep" for room the checkpoint would give back. */
static void
resize_force_keeps_the_snapshot (bool runner)
{
  struct uh_area a;
  uh_area_create (&a, (uint64_t) NCHUNKS * CS, CS, 3);
  uh_snap (a.d, "keep");
  uh_copy_chunk (a.d, 250, 7);
  for (uint64_t round = 0; round < 4; round++) {
    uh_snap (a.d, "tmp");
    for (uint64_t c = 0; c < 200; c++)
      uh_copy_chunk (a.d, c, round * 1000 + c);
    if (round < 3)
      cr_assert_eq (sc_diff_snapshot_delete (a.d, "tmp"), 0);
  }
  if (runner)
    sc_diff_set_ckpt_runner (a.d, slow_wake, NULL);
  uh_ckpt_limit_arm (uh_stats (a.d).journal_records - 300);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "tmp"), 0);
  cr_assert_eq (sc_diff_ckpt_due (a.d), runner);
  /* Room for what is live with a compact journal, not with this one. */
  struct sc_diff_stats st = uh_stats (a.d);
  uint64_t max = st.used_bytes - st.journal_slots * CS + 12 * CS;
  uint64_t dropped = 0;
  int r = sc_diff_set_max (a.d, max, SC_MAX_FORCE, &dropped);
  cr_assert_eq (r, 0, "resize: %d", r);
  cr_assert_eq (dropped, 0, "resize --force dropped %lu snapshot(s) "
                "(runner %d, journal %lu slots)", (unsigned long) dropped,
                runner, (unsigned long) st.journal_slots);
  cr_assert (listed (a.d, "keep"));
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  uh_area_free (&a);
}

Test (ckpt_bg_space, resize_force_without_a_runner)
{
  resize_force_keeps_the_snapshot (false);
}

/* FAILS on i17-bgckpt: "keep" is dropped by the resize. */
Test (ckpt_bg_space, resize_force_with_a_runner_not_run_yet)
{
  resize_force_keeps_the_snapshot (true);
}

/* ---- the same with the volume's own thread as the runner ------------- *
 *
 * No hook holds the thread back: the snapshot's commit wakes it, and the
 * very next live write that needs a copy races it for the diff area.
 * When the write gets there first, it finds the journal still long,
 * counted twice, and the policy drops "keep".  Several rounds, each on a
 * fresh volume; the test fails if any round dropped the snapshot. */

#include "engine/volume.h"

static void
vol_round (int round, int *dropped)
{
  char name[32];
  snprintf (name, sizeof name, "origin%d", round);
  char *origin = uh_path (name);
  snprintf (name, sizeof name, "diff%d", round);
  char *diff = uh_path (name);
  uh_make_file (origin, (uint64_t) NCHUNKS * CS, 11);
  struct sc_volume_config cfg = {
    .origin_path = origin, .diff_path = diff, .chunk_size = CS,
    .retry_ms = 600000,
  };
  char err[512] = "";
  struct sc_volume *v;
  cr_assert_eq (sc_volume_open (&cfg, &v, err, sizeof err), 0, "%s", err);
  cr_assert_eq (sc_volume_start_retry (v), 0);
  struct sc_diff *d = sc_volume_diff (v);
  uint8_t *buf = malloc (CS);
  cr_assert_not_null (buf);
  uh_ckpt_limit_disarm ();
  for (uint64_t r = 0; r < 4; r++) {
    cr_assert_eq (sc_volume_snapshot_create (v, "tmp", NULL, NULL), 0);
    for (uint64_t c = 0; c < 200; c++) {
      uh_pattern (buf, CS, r * 1000 + c, 0);
      cr_assert_eq (sc_volume_write (v, buf, CS, c * CS, 0), 0);
    }
    cr_assert_eq (sc_volume_snapshot_delete (v, "tmp"), 0);
  }
  struct sc_diff_stats st = uh_stats (d);
  cr_assert_eq (sc_diff_set_max (d, st.used_bytes + 4 * CS, SC_MAX_LAZY,
                                 NULL), 0);
  uh_ckpt_limit_arm (uh_stats (d).journal_records);
  cr_assert_eq (sc_volume_snapshot_create (v, "keep", NULL, NULL), 0);
  uh_pattern (buf, CS, 4242, 0);
  cr_assert_eq (sc_volume_write (v, buf, CS, 5 * CS, 0), 0);
  struct sc_snapshot_info info;
  if (sc_volume_snapshot_lookup (v, "keep", &info) != 0)
    (*dropped)++;
  uh_ckpt_limit_disarm ();
  sc_volume_close (v);
  free (buf);
  unlink (origin);
  unlink (diff);
  free (origin);
  free (diff);
}

/* FAILS on i17-bgckpt (most rounds drop "keep" on a two-core machine). */
Test (ckpt_bg_space, volume_thread_races_the_next_write)
{
  int dropped = 0, rounds = 8;
  for (int i = 0; i < rounds; i++)
    vol_round (i, &dropped);
  cr_assert_eq (dropped, 0, "snapshot keep was dropped for room in %d of "
                "%d rounds", dropped, rounds);
}
