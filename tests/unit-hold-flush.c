/* Unit tests: a creation flushes the origin after it releases the
 * writes, and holds back the journal's commits until that flush is
 * done, so the snapshot's record never becomes durable before what it
 * shows of the origin; a failed flush leaves no valid snapshot, before
 * or after a crash, and whatever waited for a commit meanwhile sees a
 * state that reopens. */
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

TestSuite (hold_flush, .init = uh_setup, .fini = hold_teardown);

/* ---- the origin's flush after the release ---------------------------
 *
 * A creation releases the writes before it flushes the origin; the
 * snapshot's record must not become durable before that flush is done
 * (it shows the origin as it was at the hold), so the journal's commits
 * wait for it, the commits of the writes after the release too. */

/* PAUSE: an origin fdatasync waits for origin_go, then succeeds;
 * PAUSE_FAIL: one that came before origin_go waits for it, then fails. */
enum { ORIGIN_SYNCS_RUN, ORIGIN_SYNCS_PAUSE, ORIGIN_SYNCS_PAUSE_FAIL,
       ORIGIN_SYNCS_FAIL };
static int origin_syncs = ORIGIN_SYNCS_RUN;
static int origin_diff_fd = -1;         /* every other fd is the origin's */
static bool origin_paused, origin_go;

static int
origin_sync_hook (const struct sc_io_req *req)
{
  if (req->op != SC_IO_FDATASYNC || req->fd == origin_diff_fd)
    return 0;
  int mode = __atomic_load_n (&origin_syncs, __ATOMIC_ACQUIRE);
  if (mode == ORIGIN_SYNCS_FAIL)
    return -EIO;
  if ((mode == ORIGIN_SYNCS_PAUSE || mode == ORIGIN_SYNCS_PAUSE_FAIL) &&
      !__atomic_load_n (&origin_go, __ATOMIC_ACQUIRE)) {
    __atomic_store_n (&origin_paused, true, __ATOMIC_RELEASE);
    while (!__atomic_load_n (&origin_go, __ATOMIC_ACQUIRE)) {
      struct timespec ts = { 0, 1000000 };
      nanosleep (&ts, NULL);
    }
    return mode == ORIGIN_SYNCS_PAUSE_FAIL ? -EIO : 0;
  }
  return 0;
}

/* The origin's hook, then the diff area's (fail_fd). */
static int
both_hooks (const struct sc_io_req *req)
{
  int r = origin_sync_hook (req);
  return r < 0 ? r : diff_io_hook (req);
}

/* The writes held, then the origin's flushes go as `mode` says. */
static void
hold_then_origin_syncs (struct vol *t, int mode)
{
  cr_assert_eq (sc_volume_create_begin (t->v), 0);
  cr_assert_eq (sc_volume_hold (t->v), 0);
  origin_diff_fd = sc_diff_fd (sc_volume_diff (t->v));
  origin_paused = origin_go = false;
  __atomic_store_n (&origin_syncs, mode, __ATOMIC_RELEASE);
  sc_io_fault_hook = origin_sync_hook;
}

static void
origin_syncs_run (void)
{
  __atomic_store_n (&origin_syncs, ORIGIN_SYNCS_RUN, __ATOMIC_RELEASE);
  __atomic_store_n (&origin_go, true, __ATOMIC_RELEASE);
}

struct release_arg {
  struct vol *t;
  int r;
  uint64_t held;
};

static void *
commit_release_thread (void *p)
{
  struct release_arg *a = p;
  struct sc_snapshot_info s;
  a->r = sc_volume_hold_commit_release (a->t->v, "flushed", NULL, &s,
                                        &a->held);
  sc_volume_create_end (a->t->v);
  return NULL;
}

struct done_write_arg {
  struct write_arg w;
  bool done;
};

static void *
done_write_thread (void *p)
{
  struct done_write_arg *a = p;
  write_thread (&a->w);
  __atomic_store_n (&a->done, true, __ATOMIC_RELEASE);
  return NULL;
}

Test (hold_flush, no_commit_before_the_origin_flush_after_the_release,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_PAUSE);
  struct release_arg c = { &t, -1, 0 };
  struct done_write_arg w = { { &t, 5 * CS, 0xcd, -1 }, false };
  pthread_t ct, wt;
  cr_assert_eq (pthread_create (&ct, NULL, commit_release_thread, &c), 0);
  bool paused = uh_wait_flag (&origin_paused, 10000);
  /* Released: a write copies for the new snapshot, but its commit (and
   * with it the snapshot's record) waits for the origin's flush. */
  cr_assert_eq (pthread_create (&wt, NULL, done_write_thread, &w), 0);
  bool early = paused && uh_wait_flag (&w.done, 300);
  origin_syncs_run ();
  pthread_join (ct, NULL);
  pthread_join (wt, NULL);
  cr_assert (paused, "the creation never flushed the origin");
  cr_assert_gt (c.held, 0, "the flush was not after the release");
  cr_assert (!early, "a write after the release committed (and made the "
             "snapshot durable) before the origin's flush");
  cr_assert_eq (c.r, 0);
  cr_assert_eq (w.w.r, 0);
  uint8_t old[CS], new[CS];
  uh_pattern (old, sizeof old, 21, 5 * CS);
  memset (new, 0xcd, sizeof new);
  assert_durable (&t, "flushed");
  assert_chunk (&t, "flushed", 5 * CS, old);
  assert_chunk (&t, NULL, 5 * CS, new);
  vol_free (&t);
}

/* The origin's flush fails after the release: the creation fails, and
 * the snapshot, whose record is already in the journal, is neither
 * served nor kept, now or after a reopen. */
Test (hold_flush, a_failed_origin_flush_after_the_release_fails_the_creation)
{
  struct vol t;
  vol_create (&t);
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_FAIL);
  struct sc_snapshot_info s;
  uint64_t held = 0;
  int r = sc_volume_hold_commit_release (t.v, "unflushed", NULL, &s, &held);
  origin_syncs_run ();
  sc_volume_create_end (t.v);
  cr_assert_eq (r, -EIO, "the creation said %d", r);
  cr_assert_gt (held, 0, "the writes were not released");
  for (int pass = 0; pass < 2; pass++) {
    cr_assert_eq (sc_volume_snapshot_lookup (t.v, "unflushed", &s), -ENOENT,
                  "the snapshot of a failed creation is kept");
    uint8_t buf[CS];
    memset (buf, 0x5a, sizeof buf);
    cr_assert_eq (sc_volume_write (t.v, buf, CS, 2 * CS, 0), 0);
    assert_chunk (&t, NULL, 2 * CS, buf);
    sc_volume_close (t.v);      /* a reopen forgets it too */
    vol_open (&t);
  }
  cr_assert_eq (sc_volume_snapshot_create (t.v, "next", NULL, &s), 0);
  vol_free (&t);
}

/* ---- review: a power cut in the commit after a failed origin flush ---
 *
 * The origin's flush after the release fails: the snapshot's record and
 * its SNAP_INVALID go to the journal in one commit, the record first.  A
 * power cut while that commit is written may leave the record on disk
 * and not the invalidation after it (a torn tail: replay takes what
 * checks out and ends there).  The origin's flush failed, so the
 * snapshot must not come back valid: docs/design.md says "a crash cannot
 * leave the snapshot valid". */
static const char *torn_src;    /* the diff area's file */
static char *torn_diff;         /* ... as the power cut left it */
static bool torn_armed, torn_done;

/* Every origin fdatasync fails; the diff area's first journal write
 * that holds the new snapshot's SNAP_CREATE is cut by a power cut just
 * after that record, which is whole: torn_diff gets the diff area as it
 * was, plus the write's bytes up to the record's end.  (An invalidation
 * written after the record is lost to such a cut.) */
static int
torn_hook (const struct sc_io_req *req)
{
  if (req->fd != origin_diff_fd)
    return req->op == SC_IO_FDATASYNC ? -EIO : 0;
  if (req->op != SC_IO_WRITE || !torn_armed)
    return 0;
  const uint8_t *b = req->buf;
  for (uint64_t at = 0; at + sizeof (struct sc_rec_hdr) <= req->len;) {
    struct sc_rec_hdr h;
    memcpy (&h, b + at, sizeof h);
    if (h.len == 0)
      break;
    if (h.type == SC_REC_SNAP_CREATE) {
      size_t len;
      uint8_t *img = uh_read_file (torn_src, &len);
      uh_write_file (torn_diff, img, len);
      free (img);
      uh_pwrite (torn_diff, b, at + h.len, req->off);
      torn_armed = false;
      torn_done = true;
      break;
    }
    at += h.len;
  }
  return 0;
}

Test (hold_flush, a_power_cut_in_the_commit_after_a_failed_origin_flush)
{
  struct vol t;
  vol_create (&t);
  cr_assert_eq (sc_volume_create_begin (t.v), 0);
  cr_assert_eq (sc_volume_hold (t.v), 0);
  origin_diff_fd = sc_diff_fd (sc_volume_diff (t.v));
  torn_src = t.diff;
  torn_diff = uh_path ("diff.torn");
  torn_armed = true;
  torn_done = false;
  sc_io_fault_hook = torn_hook;
  struct sc_snapshot_info s;
  uint64_t held = 0;
  int r = sc_volume_hold_commit_release (t.v, "unflushed", NULL, &s, &held);
  sc_io_fault_hook = NULL;
  sc_volume_create_end (t.v);
  cr_assert_eq (r, -EIO, "the creation said %d", r);
  cr_assert (torn_done, "no journal write held the snapshot's record");
  sc_volume_close (t.v);
  t.v = NULL;
  /* The power cut: the diff area as the cut left it, the origin as it is
   * (nothing wrote it; its identity is not what is tested here). */
  cr_assert_eq (rename (torn_diff, t.diff), 0);
  struct sc_volume_config cfg = {
    .origin_path = t.origin, .diff_path = t.diff, .chunk_size = CS,
    .origin_check_off = true,
  };
  char err[512] = "";
  r = sc_volume_open (&cfg, &t.v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %d %s", r, err);
  r = sc_volume_snapshot_lookup (t.v, "unflushed", &s);
  cr_assert_eq (r, 0, "the snapshot's whole record did not replay: %d", r);
  cr_assert_eq (s.invalid_reason, SC_INVALID_ORIGIN_FLUSH,
                "after a power cut, the snapshot whose origin flush failed "
                "is listed with reason %u (valid: 0), where it shows the "
                "origin as that failed flush left it", s.invalid_reason);
  free (torn_diff);
  vol_free (&t);
}

/* The same, and every write of the diff area fails too: the diff area
 * fails, and the snapshot is not served, now or after a reopen. */
Test (hold_flush, a_failed_origin_flush_and_a_failed_diff_area_serve_nothing)
{
  struct vol t;
  vol_create (&t);
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_FAIL);
  __atomic_store_n (&fail_fd, sc_diff_fd (sc_volume_diff (t.v)),
                    __ATOMIC_RELEASE);
  sc_io_fault_hook = both_hooks;
  struct sc_snapshot_info s;
  uint64_t held = 0;
  int r = sc_volume_hold_commit_release (t.v, "unflushed", NULL, &s, &held);
  __atomic_store_n (&fail_fd, -1, __ATOMIC_RELEASE);
  origin_syncs_run ();
  sc_volume_create_end (t.v);
  cr_assert_lt (r, 0, "the creation succeeded");
  uint8_t buf[CS];
  if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0)
    cr_assert_lt (sc_volume_snapshot_read (t.v, s.id, buf, CS, 0), 0,
                  "the snapshot of a failed creation was served");
  sc_io_fault_hook = NULL;
  sc_volume_close (t.v);
  vol_open (&t);
  if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0) {
    cr_assert_neq (s.invalid_reason, SC_VALID, "the snapshot is valid after "
                   "a reopen");
    cr_assert_lt (sc_volume_snapshot_read (t.v, s.id, buf, CS, 0), 0,
                  "the snapshot of a failed creation is served after a "
                  "reopen");
  }
  vol_free (&t);
}

/* ---- review 11: waiters in the journal while the origin's flush fails
 *
 * While the creation flushes the origin (the leads held), a write copies
 * for "s0" (its commit waits, without the lock), a keep of "k" and a
 * delete of "d" wait in their commits.  The flush fails: the snapshot's
 * record, still unwritten, is marked invalid and the leads go.  Every
 * waiter must return, and what it returned must be what the diff area
 * holds after a kill and a reopen. */
struct name_job {
  struct vol *t;
  const char *name;
  bool keep;
  int r;
  bool done;
};

static void *
name_job_thread (void *p)
{
  struct name_job *j = p;
  j->r = j->keep ? sc_volume_snapshot_keep_checkpoint (j->t->v, j->name)
                 : sc_volume_snapshot_delete (j->t->v, j->name);
  __atomic_store_n (&j->done, true, __ATOMIC_RELEASE);
  return NULL;
}

static void *
unflushed_thread (void *p)
{
  struct release_arg *a = p;
  struct sc_snapshot_info s;
  a->r = sc_volume_hold_commit_release (a->t->v, "unflushed", NULL, &s,
                                        &a->held);
  sc_volume_create_end (a->t->v);
  return NULL;
}

/* The waiters' run: snapshots s0, k and d; the creation of "unflushed"
 * paused in its origin flush (the leads held) under `hook`; a write of
 * 0xab at chunk 7, a keep of k and a delete of d started; 300 ms later
 * the flush fails and everything is joined.  *waited: none of the three
 * had returned when the flush failed. */
struct waiters {
  struct release_arg c;
  struct done_write_arg w;
  struct name_job k, d;
  bool waited;
};

static void
waiters_run (struct vol *t, int (*hook) (const struct sc_io_req *),
             struct waiters *x)
{
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t->v, "s0", NULL, &s), 0);
  cr_assert_eq (sc_volume_snapshot_create (t->v, "k", NULL, &s), 0);
  cr_assert_eq (sc_volume_snapshot_create (t->v, "d", NULL, &s), 0);
  hold_then_origin_syncs (t, ORIGIN_SYNCS_PAUSE_FAIL);
  sc_io_fault_hook = hook;
  *x = (struct waiters) {
    .c = { t, -1, 0 }, .w = { { t, 7 * CS, 0xab, -1 }, false },
    .k = { t, "k", true, -1, false }, .d = { t, "d", false, -1, false },
  };
  pthread_t ct, wt, kt, dt;
  cr_assert_eq (pthread_create (&ct, NULL, unflushed_thread, &x->c), 0);
  cr_assert (uh_wait_flag (&origin_paused, 10000), "no origin flush");
  cr_assert_eq (pthread_create (&wt, NULL, done_write_thread, &x->w), 0);
  cr_assert_eq (pthread_create (&kt, NULL, name_job_thread, &x->k), 0);
  cr_assert_eq (pthread_create (&dt, NULL, name_job_thread, &x->d), 0);
  struct timespec ts = { 0, 300000000 };
  nanosleep (&ts, NULL);
  x->waited = !__atomic_load_n (&x->w.done, __ATOMIC_ACQUIRE) &&
              !__atomic_load_n (&x->k.done, __ATOMIC_ACQUIRE) &&
              !__atomic_load_n (&x->d.done, __ATOMIC_ACQUIRE);
  __atomic_store_n (&origin_go, true, __ATOMIC_RELEASE);
  pthread_join (ct, NULL);
  pthread_join (wt, NULL);
  pthread_join (kt, NULL);
  pthread_join (dt, NULL);
}

/* A kill now: the diff area's file as it is, opened again. */
static void
kill_and_reopen (struct vol *t)
{
  size_t len;
  uint8_t *img = uh_read_file (t->diff, &len);
  char *killed = uh_path ("diff.killed");
  uh_write_file (killed, img, len);
  free (img);
  sc_volume_close (t->v);
  t->v = NULL;
  cr_assert_eq (rename (killed, t->diff), 0);
  free (killed);
  vol_open (t);
}

Test (hold_flush, waiters_during_a_failed_origin_flush_see_what_reopens,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  struct waiters x;
  waiters_run (&t, origin_sync_hook, &x);
  sc_io_fault_hook = NULL;
  cr_assert (x.waited, "a waiter did not wait for the held leads");
  cr_assert_eq (x.c.r, -EIO, "the creation said %d", x.c.r);
  cr_assert_eq (x.w.w.r, 0, "the write said %d", x.w.w.r);
  cr_assert_eq (x.k.r, 0, "the keep said %d", x.k.r);
  cr_assert_eq (x.d.r, 0, "the delete said %d", x.d.r);
  uint8_t old[CS], new[CS];
  uh_pattern (old, sizeof old, 21, 7 * CS);
  memset (new, 0xab, sizeof new);
  assert_chunk (&t, "s0", 7 * CS, old);
  assert_chunk (&t, NULL, 7 * CS, new);

  kill_and_reopen (&t);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "d", &s), -ENOENT,
                "a delete that returned 0 is undone by a kill");
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "k", &s), 0);
  cr_assert (s.checkpoint, "a keep that returned 0 is undone by a kill");
  if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0)
    cr_assert_neq (s.invalid_reason, SC_VALID, "the unflushed snapshot is "
                   "valid after a kill");
  assert_chunk (&t, "s0", 7 * CS, old);
  assert_chunk (&t, NULL, 7 * CS, new);
  vol_free (&t);
}

/* The same, and the diff area's disk fails while the origin's flush
 * does: the waiters return, the journal writes
 * nothing more once the disk is back, and after a kill the snapshot is
 * not valid and every write that returned 0 is on the live volume. */
static int
pause_fail_both_hook (const struct sc_io_req *req)
{
  int r = origin_sync_hook (req);
  if (r < 0)
    __atomic_store_n (&fail_fd, origin_diff_fd, __ATOMIC_RELEASE);
  return r < 0 ? r : diff_io_hook (req);
}

Test (hold_flush, waiters_during_a_failed_origin_flush_and_a_failed_diff_area,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  struct waiters x;
  waiters_run (&t, pause_fail_both_hook, &x);
  /* The disk is back. */
  __atomic_store_n (&fail_fd, -1, __ATOMIC_RELEASE);
  sc_io_fault_hook = NULL;
  cr_assert_lt (x.c.r, 0, "the creation succeeded");
  uint8_t b2[CS];
  memset (b2, 0x77, sizeof b2);
  int w2 = sc_volume_write (t.v, b2, CS, 9 * CS, 0);
  (void) sc_volume_flush (t.v);
  cr_log_info ("write %d keep %d delete %d, later write %d", x.w.w.r,
               x.k.r, x.d.r, w2);

  kill_and_reopen (&t);
  if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0)
    cr_assert_neq (s.invalid_reason, SC_VALID, "the unflushed snapshot is "
                   "valid after a kill");
  if (x.d.r == 0)
    cr_assert_eq (sc_volume_snapshot_lookup (t.v, "d", &s), -ENOENT);
  uint8_t old[CS], new[CS];
  memset (new, 0xab, sizeof new);
  if (x.w.w.r == 0)
    assert_chunk (&t, NULL, 7 * CS, new);
  if (w2 == 0)
    assert_chunk (&t, NULL, 9 * CS, b2);
  if (sc_volume_snapshot_lookup (t.v, "s0", &s) == 0 &&
      s.invalid_reason == SC_VALID) {
    uh_pattern (old, sizeof old, 21, 7 * CS);
    assert_chunk (&t, "s0", 7 * CS, old);
    uh_pattern (old, sizeof old, 21, 9 * CS);
    assert_chunk (&t, "s0", 9 * CS, old);
  }
  vol_free (&t);
}

/* A kill before each write and sync of the diff area from the failed
 * origin flush on (the commit of the snapshot's record, the creator's
 * delete): whatever state the disk was left in, the snapshot is not
 * valid there, and the snapshot taken before it serves its data. */
static const char *kill_src;
static int kill_n;

static int
kill_points_hook (const struct sc_io_req *req)
{
  if (req->fd != origin_diff_fd)
    return req->op == SC_IO_FDATASYNC ? -EIO : 0;
  if (req->op != SC_IO_WRITE && req->op != SC_IO_FDATASYNC)
    return 0;
  char name[32];
  snprintf (name, sizeof name, "diff.kill%d", kill_n++);
  char *p = uh_path (name);
  size_t len;
  uint8_t *img = uh_read_file (kill_src, &len);
  uh_write_file (p, img, len);
  free (img);
  free (p);
  return 0;
}

Test (hold_flush, a_kill_at_each_write_after_a_failed_origin_flush,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "s0", NULL, &s), 0);
  uint8_t buf[CS];
  for (int c = 0; c < 8; c++) {
    memset (buf, 0x30 + c, sizeof buf);
    cr_assert_eq (sc_volume_write (t.v, buf, CS, (uint64_t) c * CS, 0), 0);
  }
  cr_assert_eq (sc_volume_flush (t.v), 0);
  kill_src = t.diff;
  kill_n = 0;
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_RUN);
  sc_io_fault_hook = kill_points_hook;
  uint64_t held = 0;
  int r = sc_volume_hold_commit_release (t.v, "unflushed", NULL, &s, &held);
  sc_io_fault_hook = NULL;
  sc_volume_create_end (t.v);
  cr_assert_eq (r, -EIO);
  cr_assert_geq (kill_n, 4, "only %d writes and syncs of the diff area "
                 "(the record's commit, the delete's)", kill_n);
  sc_volume_close (t.v);
  t.v = NULL;
  for (int i = 0; i < kill_n; i++) {
    char name[32];
    snprintf (name, sizeof name, "diff.kill%d", i);
    char *p = uh_path (name);
    cr_assert_eq (rename (p, t.diff), 0);
    free (p);
    vol_open (&t);
    if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0)
      cr_assert_neq (s.invalid_reason, SC_VALID, "kill %d: the unflushed "
                     "snapshot is valid", i);
    uint8_t old[CS];
    for (int c = 0; c < 8; c++) {
      uh_pattern (old, sizeof old, 21, (uint64_t) c * CS);
      assert_chunk (&t, "s0", (uint64_t) c * CS, old);
    }
    sc_volume_close (t.v);
    t.v = NULL;
  }
  vol_free (&t);
}

/* A keep of the new snapshot itself waits in its commit while its
 * origin flush fails: after the creator's delete, a kill reopens. */
Test (hold_flush, a_keep_of_the_unflushed_snapshot_during_its_flush,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "s0", NULL, &s), 0);
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_PAUSE_FAIL);
  struct release_arg c = { &t, -1, 0 };
  pthread_t ct, kt;
  cr_assert_eq (pthread_create (&ct, NULL, unflushed_thread, &c), 0);
  cr_assert (uh_wait_flag (&origin_paused, 10000), "no origin flush");
  struct name_job k = { &t, "unflushed", true, -1, false };
  cr_assert_eq (pthread_create (&kt, NULL, name_job_thread, &k), 0);
  struct timespec ts = { 0, 300000000 };
  nanosleep (&ts, NULL);
  bool waited = !__atomic_load_n (&k.done, __ATOMIC_ACQUIRE);
  __atomic_store_n (&origin_go, true, __ATOMIC_RELEASE);
  pthread_join (ct, NULL);
  pthread_join (kt, NULL);
  sc_io_fault_hook = NULL;
  cr_log_info ("creation %d keep %d (waited %d)", c.r, k.r, waited);
  cr_assert_eq (c.r, -EIO);
  kill_and_reopen (&t);
  if (sc_volume_snapshot_lookup (t.v, "unflushed", &s) == 0)
    cr_assert_neq (s.invalid_reason, SC_VALID);
  cr_assert_eq (sc_volume_snapshot_create (t.v, "after", NULL, &s), 0);
  vol_free (&t);
}

/* ---- review 11: a failed origin flush on a full filesystem -----------
 *
 * The origin's flush fails while the diff area's filesystem has no free
 * space (a fallocate that reserves space says ENOSPC; punching holes
 * works): the creation fails and its snapshot is not valid, but the
 * snapshots taken before it, whose data is all in place, stay valid.  (A
 * checkpoint replacing the journal's tail needed a new journal's slots:
 * it failed here, and with it the diff area and every snapshot.) */
static int
origin_fail_diff_full_hook (const struct sc_io_req *req)
{
  if (req->fd == origin_diff_fd)
    return req->op == SC_IO_FALLOCATE && req->flags == 0 ? -ENOSPC : 0;
  return req->op == SC_IO_FDATASYNC ? -EIO : 0;
}

Test (hold_flush, a_failed_origin_flush_on_a_full_disk_keeps_the_older_snapshots)
{
  struct vol t;
  vol_create (&t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "s0", NULL, &s), 0);
  uint8_t buf[CS], old[CS];
  memset (buf, 0x42, sizeof buf);
  cr_assert_eq (sc_volume_write (t.v, buf, CS, 3 * CS, 0), 0);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  cr_assert_eq (sc_volume_create_begin (t.v), 0);
  cr_assert_eq (sc_volume_hold (t.v), 0);
  origin_diff_fd = sc_diff_fd (sc_volume_diff (t.v));
  sc_io_fault_hook = origin_fail_diff_full_hook;
  uint64_t held = 0;
  int r = sc_volume_hold_commit_release (t.v, "unflushed", NULL, &s, &held);
  sc_io_fault_hook = NULL;
  sc_volume_create_end (t.v);
  cr_assert_eq (r, -EIO, "the creation said %d", r);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "s0", &s), 0);
  cr_assert_eq (s.invalid_reason, SC_VALID, "a failed origin flush with "
                "the diff area's filesystem full invalidated an older "
                "snapshot (reason %u)", s.invalid_reason);
  uh_pattern (old, sizeof old, 21, 3 * CS);
  assert_chunk (&t, "s0", 3 * CS, old);
  vol_free (&t);
}

/* ---- review 12: a flush by someone else takes the origin's error ------
 *
 * The origin's write-back error is reported once per open file (Linux
 * errseq): the first fdatasync of the origin's fd after the error gets
 * EIO, the next one gets 0.  The creation flushes the origin after the
 * release, and nothing stops a live flush (sc_volume_flush, an NBD
 * client's) from running in that window on the same fd.  Modelled here:
 * the creator's fdatasync is delayed on its way to the kernel; a live
 * flush reaches it first and takes the error (nothing was written after
 * the release, so the lost data is from before the hold); the creator's
 * then returns 0.  The snapshot must not come out valid. */
static bool errseq_taken;

static int
errseq_hook (const struct sc_io_req *req)
{
  if (req->op != SC_IO_FDATASYNC || req->fd == origin_diff_fd)
    return 0;
  if (!__atomic_exchange_n (&origin_paused, true, __ATOMIC_ACQ_REL)) {
    while (!__atomic_load_n (&origin_go, __ATOMIC_ACQUIRE)) {
      struct timespec ts = { 0, 1000000 };
      nanosleep (&ts, NULL);
    }
    return 0;                   /* the error was reported already */
  }
  if (__atomic_exchange_n (&errseq_taken, true, __ATOMIC_ACQ_REL))
    return 0;
  return -EIO;                  /* the first to reach the kernel */
}

struct flush_arg {
  struct vol *t;
  int r;
};

static void *
live_flush_thread (void *p)
{
  struct flush_arg *a = p;
  a->r = sc_volume_flush (a->t->v);
  return NULL;
}

Test (hold_flush, a_live_flush_that_takes_the_origin_error_during_the_creation,
      .timeout = 60)
{
  struct vol t;
  vol_create (&t);
  hold_then_origin_syncs (&t, ORIGIN_SYNCS_RUN);
  errseq_taken = false;
  sc_io_fault_hook = errseq_hook;
  struct release_arg c = { &t, -1, 0 };
  struct flush_arg f = { &t, 1 };
  pthread_t ct, ft;
  cr_assert_eq (pthread_create (&ct, NULL, commit_release_thread, &c), 0);
  cr_assert (uh_wait_flag (&origin_paused, 10000), "no origin flush");
  cr_assert_eq (pthread_create (&ft, NULL, live_flush_thread, &f), 0);
  bool taken = uh_wait_flag (&errseq_taken, 10000);
  __atomic_store_n (&origin_go, true, __ATOMIC_RELEASE);
  pthread_join (ct, NULL);
  pthread_join (ft, NULL);
  sc_io_fault_hook = NULL;
  cr_assert (taken, "the live flush did not reach the origin");
  cr_assert_eq (f.r, -EIO, "the live flush said %d", f.r);
  struct sc_snapshot_info s;
  bool valid = c.r == 0 &&
               sc_volume_snapshot_lookup (t.v, "flushed", &s) == 0 &&
               s.invalid_reason == SC_VALID;
  cr_assert (!valid, "an origin fdatasync after the hold failed (a live "
             "flush got EIO), yet the creation returned %d and its snapshot "
             "is valid: it shows the origin as that failed write-back left "
             "it", c.r);
  vol_free (&t);
}
