/* Unit tests: the creation hold holds the live writes for the drain, the
 * origin flush and the snapshot's record only: the journal's write and
 * sync of the record wait after the release, and the creation returns
 * once the snapshot is durable. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/format.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"
#include "tests/unit-hold-vol.h"



static uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}



TestSuite (hold, .init = uh_setup, .fini = hold_teardown);





static void
slow_diff (struct vol *t)
{
  sc_io_fault_hook = diff_io_hook;
  __atomic_store_n (&slow_fd, sc_diff_fd (sc_volume_diff (t->v)),
                    __ATOMIC_RELEASE);
}

static uint64_t
last_hold_ns (struct vol *t)
{
  struct sc_hold_stats hs;
  sc_volume_hold_stats (t->v, &hs);
  return hs.last_ns;
}


Test (hold, one_shot_creation_releases_before_the_journal_sync,
      .timeout = 30)
{
  struct vol t;
  vol_create (&t);
  slow_diff (&t);
  struct sc_snapshot_info s;
  uint64_t t0 = now_ns ();
  cr_assert_eq (sc_volume_snapshot_create (t.v, "a", NULL, &s), 0);
  uint64_t took = now_ns () - t0;
  uint64_t held = last_hold_ns (&t);
  cr_assert_geq (took, DELAY_NS, "the creation returned before its "
                 "record was written (%.1f ms)", (double) took / 1e6);
  cr_assert_lt (held, DELAY_NS / 2, "the writes were held %.1f ms: the "
                "hold waited for the journal", (double) held / 1e6);
  assert_durable (&t, "a");
  vol_free (&t);
}

Test (hold, commit_with_release_releases_before_the_journal_sync,
      .timeout = 30)
{
  struct vol t;
  vol_create (&t);
  slow_diff (&t);
  struct sc_snapshot_info s;
  uint64_t held = 0;
  cr_assert_eq (sc_volume_create_begin (t.v), 0);
  cr_assert_eq (sc_volume_hold (t.v), 0);
  uint64_t t0 = now_ns ();
  cr_assert_eq (sc_volume_hold_commit_release (t.v, "b", NULL, &s, &held),
                0);
  uint64_t took = now_ns () - t0;
  sc_volume_create_end (t.v);
  cr_assert_str_eq (s.name, "b");
  cr_assert_gt (held, 0, "the writes were not released");
  cr_assert_eq (held, last_hold_ns (&t));
  cr_assert_eq (sc_volume_release (t.v), 0, "the writes are still held");
  cr_assert_geq (took, DELAY_NS, "returned before the record was written");
  cr_assert_lt (held, DELAY_NS / 2, "the writes were held %.1f ms: the "
                "hold waited for the journal", (double) held / 1e6);
  assert_durable (&t, "b");
  vol_free (&t);
}

/* Nothing recorded: the writes stay held, as after a failed hold_commit,
 * and the creation may still commit under the same hold. */
Test (hold, a_refused_record_keeps_the_hold)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  uint64_t held = 1;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "taken", NULL, &s), 0);
  cr_assert_eq (sc_volume_create_begin (t.v), 0);
  cr_assert_eq (sc_volume_hold_commit_release (t.v, "x", NULL, &s, &held),
                -EINVAL, "a commit without a hold");
  cr_assert_eq (held, 0);
  cr_assert_eq (sc_volume_hold (t.v), 0);
  held = 1;
  cr_assert_eq (sc_volume_hold_commit_release (t.v, "taken", NULL, &s,
                                               &held), -EEXIST);
  cr_assert_eq (held, 0, "released although nothing was recorded");
  cr_assert_eq (sc_volume_hold_commit_release (t.v, "again", NULL, &s,
                                               &held), 0);
  cr_assert_gt (held, 0);
  sc_volume_create_end (t.v);
  vol_free (&t);
}

/* The record's write fails after the release: the creation fails, the
 * writes are not held any more, and the snapshot is not served as if it
 * were on disk (the diff area failed: every snapshot invalid). */
Test (hold, a_failed_journal_write_after_the_release_fails_the_creation)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  sc_io_fault_hook = diff_io_hook;
  __atomic_store_n (&fail_fd, sc_diff_fd (sc_volume_diff (t.v)),
                    __ATOMIC_RELEASE);
  cr_assert_lt (sc_volume_snapshot_create (t.v, "lost", NULL, &s), 0);
  __atomic_store_n (&fail_fd, -1, __ATOMIC_RELEASE);
  cr_assert_eq (sc_volume_release (t.v), 0, "the writes are still held");
  cr_assert (!sc_volume_create_busy (t.v));
  uint8_t buf[CS];
  memset (buf, 7, sizeof buf);
  cr_assert_eq (sc_volume_write (t.v, buf, CS, 3 * CS, 0), 0,
                "a live write after the failed creation");
  if (sc_volume_snapshot_lookup (t.v, "lost", &s) == 0)
    cr_assert_lt (sc_volume_snapshot_read (t.v, s.id, buf, CS, 0), 0,
                  "the snapshot of a failed creation was served");
  vol_free (&t);
}

/* A write right after the release, while the record is still on its way
 * to the disk, copies for the new snapshot: the snapshot keeps the old
 * data and the live volume has the new, across a reopen. */
struct create_arg {
  struct vol *t;
  int r;
};

static void *
create_thread (void *p)
{
  struct create_arg *a = p;
  struct sc_snapshot_info s;
  a->r = sc_volume_snapshot_create (a->t->v, "c", NULL, &s);
  return NULL;
}

Test (hold, a_write_after_the_release_copies_for_the_new_snapshot,
      .timeout = 30)
{
  struct vol t;
  vol_create (&t);
  slow_diff (&t);
  struct create_arg a = { &t, -1 };
  pthread_t th;
  cr_assert_eq (pthread_create (&th, NULL, create_thread, &a), 0);
  struct sc_hold_stats hs = { 0 };
  while (hs.count == 0) {
    struct timespec ts = { 0, 1000000 };
    nanosleep (&ts, NULL);
    sc_volume_hold_stats (t.v, &hs);
  }
  uint8_t buf[CS], old[CS], got[CS];
  memset (buf, 0xab, sizeof buf);
  cr_assert_eq (sc_volume_write (t.v, buf, CS, 5 * CS, 0), 0);
  pthread_join (th, NULL);
  cr_assert_eq (a.r, 0);
  assert_durable (&t, "c");
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "c", &s), 0);
  uh_pattern (old, sizeof old, 21, 5 * CS);
  cr_assert_eq (sc_volume_snapshot_read (t.v, s.id, got, CS, 5 * CS), 0);
  cr_assert_arr_eq (got, old, CS, "the snapshot lost the old data");
  cr_assert_eq (sc_volume_read (t.v, got, CS, 5 * CS), 0);
  cr_assert_arr_eq (got, buf, CS, "the live volume lost the write");
  vol_free (&t);
}

/* ---- a writer waiting for its copies' commit is not waited for ------ */



Test (hold, a_hold_does_not_wait_for_a_writers_commit, .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "s1", NULL, &s), 0);
  uh_syncs_stop (sc_diff_fd (sc_volume_diff (t.v)));
  struct write_arg w = { &t, 5 * CS, 0xcd, -1 };
  pthread_t wt, ht;
  cr_assert_eq (pthread_create (&wt, NULL, write_thread, &w), 0);
  bool stopped = uh_syncs_wait_stopped ();
  uh_held_reset ();
  cr_assert_eq (pthread_create (&ht, NULL, uh_hold_thread, t.v), 0);
  bool held = stopped && uh_wait_held (10000);
  uh_syncs_go ();
  pthread_join (wt, NULL);
  pthread_join (ht, NULL);
  cr_assert (stopped, "the write never reached its commit");
  cr_assert (held, "the hold waited for a write's commit (an fdatasync)");
  cr_assert_eq (w.r, 0);
  vol_free (&t);
}

/* The snapshot created while the write waited for its commit was not
 * seen by the write's copy-on-write: the write decides again when it
 * comes back and copies for it before it writes the origin. */
struct create_named_arg {
  struct vol *t;
  const char *name;
  int r;
};

static void *
create_named_thread (void *p)
{
  struct create_named_arg *a = p;
  struct sc_snapshot_info s;
  a->r = sc_volume_snapshot_create (a->t->v, a->name, NULL, &s);
  return NULL;
}


Test (hold, a_snapshot_made_while_a_write_commits_gets_its_copy,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "s1", NULL, &s), 0);
  uh_syncs_stop (sc_diff_fd (sc_volume_diff (t.v)));
  struct write_arg w = { &t, 5 * CS, 0xcd, -1 };
  struct create_named_arg c = { &t, "s2", -1 };
  pthread_t wt, ct;
  cr_assert_eq (pthread_create (&wt, NULL, write_thread, &w), 0);
  bool stopped = uh_syncs_wait_stopped ();
  cr_assert_eq (pthread_create (&ct, NULL, create_named_thread, &c), 0);
  /* The hold is over once it is counted (s1's was the first); s2's
   * record then waits for the stopped sync. */
  struct sc_hold_stats hs = { 0 };
  for (int i = 0; stopped && i < 10000 && hs.count < 2; i++) {
    struct timespec ts = { 0, 1000000 };
    nanosleep (&ts, NULL);
    sc_volume_hold_stats (t.v, &hs);
  }
  uh_syncs_go ();
  pthread_join (wt, NULL);
  pthread_join (ct, NULL);
  cr_assert (stopped, "the write never reached its commit");
  cr_assert_eq (hs.count, 2, "the hold waited for a write's commit");
  cr_assert_eq (w.r, 0);
  cr_assert_eq (c.r, 0);

  uint8_t old[CS], new[CS];
  uh_pattern (old, sizeof old, 21, 5 * CS);
  memset (new, 0xcd, sizeof new);
  for (int pass = 0; pass < 2; pass++) {
    assert_chunk (&t, "s1", 5 * CS, old);
    assert_chunk (&t, "s2", 5 * CS, old);
    assert_chunk (&t, NULL, 5 * CS, new);
    assert_durable (&t, "s2");          /* and again after a reopen */
  }
  vol_free (&t);
}
