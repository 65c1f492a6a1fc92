/* Unit tests: a failed metadata write of the diff area, and the way
 * back: the live volume keeps working (writes, flushes), every snapshot
 * is invalidated for good, the failure is described, and a checkpoint
 * taken once the disk is back (by create, by the periodic retry, at
 * close) makes the diff area healthy again. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

static void
recovery_teardown (void)
{
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (recovery, .init = uh_setup, .fini = recovery_teardown);

/* ---- the fixture: a volume of 64 chunks of 4K ------------------------- */

#define CS 4096u
#define SIZE (64u * CS)

static struct sc_diff *
diff (struct uh_vol *t)
{
  return sc_volume_diff (t->v);
}

/* Write chunk `chunk` of the live volume with pattern `tag`. */
static void
live_write (struct uh_vol *t, uint64_t chunk, uint64_t tag)
{
  int r = uh_vol_write (t, chunk, tag);
  cr_assert_eq (r, 0, "the live write of chunk %lu failed: %d",
                (unsigned long) chunk, r);
}

static struct sc_diff_health
health (struct uh_vol *t)
{
  struct sc_diff_health h;
  sc_volume_diff_health (t->v, &h);
  return h;
}

/* ---- the faults ----------------------------------------------------- */

enum fault { NONE, JOURNAL_WRITE, JOURNAL_SYNC, ANY_WRITE, METADATA_WRITE,
             SB_SYNC };
static int fault_fd = -1;
static enum fault fault_kind;
static bool fault_once;
static int fault_hits;
static bool sb_written;

/* Journal writes: writes past the superblocks that are not one whole,
 * aligned data slot. */
static int
fail_io (const struct sc_io_req *req)
{
  if (req->fd != fault_fd)
    return 0;
  bool write = req->op == SC_IO_WRITE;
  bool hit = false;
  switch (__atomic_load_n (&fault_kind, __ATOMIC_SEQ_CST)) {
  case NONE: break;
  case JOURNAL_WRITE:
    hit = write && req->off >= SC_SB_AREA &&
          !(req->len == CS && req->off % CS == 0);
    break;
  case JOURNAL_SYNC: hit = req->op == SC_IO_FDATASYNC; break;
  case ANY_WRITE: hit = write || req->op == SC_IO_FDATASYNC; break;
  case METADATA_WRITE:          /* the journal's and the superblock's */
    hit = write && !(req->off >= SC_SB_AREA && req->len == CS &&
                     req->off % CS == 0);
    break;
  case SB_SYNC:                 /* the fdatasync after a superblock write */
    if (write && req->off < SC_SB_AREA)
      __atomic_store_n (&sb_written, true, __ATOMIC_SEQ_CST);
    hit = req->op == SC_IO_FDATASYNC &&
          __atomic_exchange_n (&sb_written, false, __ATOMIC_SEQ_CST);
    break;
  }
  if (!hit)
    return 0;
  __atomic_fetch_add (&fault_hits, 1, __ATOMIC_SEQ_CST);
  if (fault_once)
    __atomic_store_n (&fault_kind, NONE, __ATOMIC_SEQ_CST);
  return -EIO;
}

static void
arm (struct uh_vol *t, enum fault kind, bool once)
{
  fault_fd = sc_diff_fd (diff (t));
  fault_hits = 0;
  fault_once = once;
  __atomic_store_n (&fault_kind, kind, __ATOMIC_SEQ_CST);
  sc_io_fault_hook = fail_io;
}

static void
disarm (void)
{
  __atomic_store_n (&fault_kind, NONE, __ATOMIC_SEQ_CST);
}

/* Two snapshots with copies, then one failed journal write under a live
 * write: the state every test below starts from.  *img_a and *img_b get
 * what a and b showed. */
static void
fail_once (struct uh_vol *t, enum fault kind, uint8_t *img_a)
{
  uh_vol_snap (t, "a");
  memcpy (img_a, t->live, SIZE);
  live_write (t, 1, 100);
  uh_vol_snap (t, "b");
  arm (t, kind, true);
  live_write (t, 2, 101);       /* copies chunk 2: its commit fails */
  cr_assert_eq (fault_hits, 1, "the fault did not fire");
  cr_assert (health (t).failed, "the diff area did not fail");
}

/* ---- the live volume wins ------------------------------------------- */

/* Fails without the fix: the journal's sticky error came back from every
 * flush of the live volume. */
Test (recovery, live_flush_succeeds_after_a_journal_write_failure)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  cr_assert_eq (sc_volume_flush (t.v), 0, "the live flush reports the "
                "diff area's failure");
  live_write (&t, 3, 102);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  cr_assert_eq (sc_volume_zero (t.v, CS, 4 * CS, 0), 0);
  memset (t.live + 4 * CS, 0, CS);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  uh_vol_assert_reads (&t, 0, t.live, "live");
  uh_vol_free (&t);
}

Test (recovery, live_flush_succeeds_after_a_failed_commit_fdatasync)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_SYNC, img_a);
  struct sc_diff_health h = health (&t);
  cr_assert_eq (h.err, EIO);
  cr_assert_str_eq (h.what, "the journal commit's fdatasync");
  cr_assert_eq (sc_volume_flush (t.v), 0);
  uh_vol_free (&t);
}

/* No valid snapshot: nothing is copied, writes go straight through. */
Test (recovery, a_failed_diff_area_copies_nothing)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  struct sc_diff_stats before, after;
  sc_diff_stats (diff (&t), &before);
  arm (&t, ANY_WRITE, false);   /* the diff area takes no write at all */
  for (uint64_t c = 8; c < 16; c++)
    live_write (&t, c, 200 + c);
  cr_assert_eq (fault_hits, 0, "a live write touched the failed diff area");
  disarm ();
  sc_diff_stats (diff (&t), &after);
  cr_assert_eq (after.copies, before.copies);
  uh_vol_assert_reads (&t, 0, t.live, "live");
  uh_vol_free (&t);
}

/* ---- the failure is told -------------------------------------------- */

Test (recovery, the_failure_says_which_write_and_what_to_do)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  struct sc_diff_health h = health (&t);
  cr_assert_eq (h.err, EIO);
  cr_assert (strncmp (h.what, "writing the journal at slot ", 28) == 0,
             "what: %s", h.what);
  cr_assert_eq (h.invalidated, 2);
  cr_assert (h.sb_marked, "the superblock took the FAILED flag");
  cr_assert_neq (h.since_ns, 0);
  char msg[1024];
  sc_diff_health_message (&h, msg, sizeof msg);
  cr_assert (strstr (msg, "EIO") && strstr (msg, "writing the journal") &&
             strstr (msg, "dmesg") && strstr (msg, "retries"),
             "message: %s", msg);
  uh_vol_free (&t);
}

/* ---- the way back ----------------------------------------------------- */

Test (recovery, create_fails_while_the_disk_fails_and_says_why)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  arm (&t, JOURNAL_WRITE, false);
  struct sc_snapshot_info c;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "c", NULL, &c), -EIO);
  cr_assert_eq (sc_volume_snapshot_create (t.v, "c", NULL, &c), -EIO);
  disarm ();
  struct sc_diff_health h = health (&t);
  cr_assert (h.failed);
  cr_assert_eq (h.retries, 2);
  cr_assert_eq (h.retry_err, EIO);
  cr_assert (strncmp (h.retry_what, "writing the journal", 19) == 0,
             "retry what: %s", h.retry_what);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "c", &s), -ENOENT,
                "a failed create left a snapshot");
  uh_vol_free (&t);
}

Test (recovery, create_recovers_once_the_disk_is_back)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE], img_c[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  live_write (&t, 5, 103);
  struct sc_snapshot_info c = uh_vol_snap (&t, "c");
  memcpy (img_c, t.live, SIZE);
  struct sc_diff_health h = health (&t);
  cr_assert (!h.failed);
  cr_assert_eq (h.recoveries, 1);
  /* The invalid stay invalid, with their reason. */
  struct sc_snapshot_info a, b;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "b", &b), 0);
  cr_assert_eq (a.invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (b.invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (a.invalid_errno, EIO);
  uint8_t buf[16];
  cr_assert_eq (sc_volume_snapshot_read (t.v, a.id, buf, 16, 0), -EIO);
  /* The new one copies and serves its exact image. */
  for (uint64_t k = 0; k < 64; k += 3)
    live_write (&t, k, 300 + k);
  uh_vol_assert_reads (&t, c.id, img_c, "c after writes");
  cr_assert_eq (sc_volume_flush (t.v), 0);

  /* After a restart (clean) and after a crash-like reopen: the same. */
  uh_vol_close (&t);
  uh_vol_open (&t);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_eq (a.invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "b", &b), 0);
  cr_assert_eq (b.invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "c", &c), 0);
  cr_assert_eq (c.invalid_reason, SC_VALID);
  uh_vol_assert_reads (&t, c.id, img_c, "c after restart");
  uh_vol_assert_reads (&t, 0, t.live, "live after restart");
  uh_vol_free (&t);
}

/* Deletes work again once the disk is back (they retry too). */
Test (recovery, delete_recovers_once_the_disk_is_back)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  arm (&t, JOURNAL_WRITE, false);
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "a"), -EIO);
  disarm ();
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "a"), 0);
  cr_assert (!health (&t).failed);
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "b"), 0);
  struct sc_diff_stats st;
  sc_diff_stats (diff (&t), &st);
  cr_assert_eq (st.snapshots, 0);
  cr_assert_eq (st.data_slots, 0, "the invalid snapshots' copies stay");
  uh_vol_free (&t);
}

/* A server retries by itself, every retry_ms. */
Test (recovery, the_periodic_retry_recovers_by_itself)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 20);
  fail_once (&t, JOURNAL_WRITE, img_a);
  /* Started after the failure, so that it cannot recover before
   * fail_once has seen it. */
  cr_assert_eq (sc_volume_start_retry (t.v), 0);
  for (int i = 0; i < 1000 && health (&t).failed; i++)
    usleep (10000);
  struct sc_diff_health h = health (&t);
  cr_assert (!h.failed, "no recovery after 10 s of retries every 20 ms");
  cr_assert_eq (h.recoveries, 1);
  uh_vol_snap (&t, "c");
  uh_vol_free (&t);
}

/* Nothing brings an invalidated snapshot back: not a recovery, not a
 * restart after a failed close, not a restart after a good one. */
Test (recovery, a_close_while_the_disk_fails_keeps_every_snapshot_invalid)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  arm (&t, JOURNAL_WRITE, false);
  cr_assert_neq (sc_volume_close (t.v), 0, "the close hid the failure");
  t.v = NULL;
  disarm ();
  uh_vol_open (&t);
  struct sc_snapshot_info a, b;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_eq (a.invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "b", &b), 0);
  cr_assert_eq (b.invalid_reason, SC_INVALID_METADATA);
  cr_assert (!health (&t).failed, "a fresh open starts healthy");
  uh_vol_snap (&t, "c");
  uh_vol_free (&t);
}

/* When the superblock cannot take the FAILED flag either, a later retry
 * that works records the invalidations for good. */
Test (recovery, a_retry_records_what_the_superblock_could_not)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  uh_vol_snap (&t, "a");
  arm (&t, ANY_WRITE, false);
  cr_assert_eq (sc_volume_write (t.v, t.live, CS, 2 * CS, 0), -EIO,
                "a write over a's data while the failure is unrecorded");
  cr_assert (health (&t).failed);
  cr_assert (!health (&t).sb_marked);
  disarm ();
  cr_assert_eq (sc_volume_diff_recover (t.v), 0);
  uh_vol_close (&t);
  uh_vol_open (&t);
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_neq (a.invalid_reason, SC_VALID, "a came back valid");
  (void) img_a;
  uh_vol_free (&t);
}

/* ---- a failure the disk does not know of: fail closed ----------------- */

/* Run `session` on the volume in a child that then dies without closing
 * it (a kill -9); its exit status is what the session returns. */
static int
crash_after (struct uh_vol *t, int (*session) (struct uh_vol *t))
{
  uh_vol_close (t);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    struct sc_volume_config cfg = {
      .origin_path = t->origin, .diff_path = t->diff, .chunk_size = CS,
    };
    char err[512];
    if (sc_volume_open (&cfg, &t->v, err, sizeof err) < 0)
      _exit (10);
    _exit (session (t));
  }
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status), "the session crashed");
  uh_vol_open (t);
  return WEXITSTATUS (status);
}

/* After the crash: a is invalid, or it serves exactly its image. */
static void
assert_never_wrong (struct uh_vol *t, const uint8_t *img_a)
{
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_lookup (t->v, "a", &a), 0);
  if (a.invalid_reason == SC_VALID)
    uh_vol_assert_reads (t, a.id, img_a, "a, listed valid after the crash");
}

/* The journal and the superblock take no write; data slots do.  A live
 * write copies chunk 2 (its data lands), its record cannot be written, and
 * FAILED cannot be stored: the copy exists in memory only. */
static int
session_copy_record_lost (struct uh_vol *t)
{
  arm (t, METADATA_WRITE, false);
  int r = uh_vol_write (t, 2, 101);
  struct sc_diff_health h;
  sc_volume_diff_health (t->v, &h);
  if (!h.failed || h.sb_marked)
    return 2;                   /* not the state under test */
  /* And again, now that the diff area is failed. */
  int r2 = sc_volume_write (t->v, t->live + 2 * CS, CS, 2 * CS, 0);
  return r == -EIO && r2 == -EIO ? 0 : 1;
}

/* Fails without the fix: the write went to the origin, the copy's record
 * never reached the journal, and after the crash a was listed valid and
 * served the new data of chunk 2. */
Test (recovery, a_copy_whose_record_is_lost_does_not_let_the_write_through)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  uh_vol_snap (&t, "a");
  memcpy (img_a, t.live, SIZE);
  int r = crash_after (&t, session_copy_record_lost);
  cr_assert_eq (r, 0, "the session's writes: %d (1: a write went through "
                "to the origin; 2: the fault did not fail the diff area "
                "unrecorded)", r);
  assert_never_wrong (&t, img_a);
  uh_vol_free (&t);
}

/* Every write fails, data slots included: the failed copy invalidates a,
 * then its record fails the journal.  The failure counts a (it was valid
 * on disk until then); writes over a's data fail, others go on, and so
 * do reads and flushes. */
static int
session_nothing_written (struct uh_vol *t)
{
  arm (t, ANY_WRITE, false);
  if (uh_vol_write (t, 2, 101) != -EIO)
    return 1;
  struct sc_diff_health h;
  sc_volume_diff_health (t->v, &h);
  if (!h.failed || h.sb_marked || h.invalidated != 1 || h.refused != 1)
    return 2;
  /* Chunk 1 was copied (durably) in this epoch before the failure. */
  if (sc_volume_write (t->v, t->live + 1 * CS, CS, 1 * CS, 0) != 0)
    return 3;
  if (sc_volume_zero (t->v, CS, 3 * CS, 0) != -EIO ||
      sc_volume_trim (t->v, CS, 4 * CS, 0) != -EIO)
    return 4;
  static uint8_t buf[SIZE];
  if (sc_volume_read (t->v, buf, SIZE, 0) != 0 || sc_volume_flush (t->v) != 0)
    return 5;
  return 0;
}

Test (recovery, an_unrecorded_failure_fails_writes_over_snapshot_data)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  uh_vol_snap (&t, "a");
  memcpy (img_a, t.live, SIZE);
  live_write (&t, 1, 100);      /* copied for a, committed */
  int r = crash_after (&t, session_nothing_written);
  cr_assert_eq (r, 0, "session step %d failed", r);
  assert_never_wrong (&t, img_a);
  uh_vol_free (&t);
}

/* Once the superblock takes the FAILED flag again, the refused write goes
 * through, and a stays invalid after a crash. */
static int
session_recorded_later (struct uh_vol *t)
{
  arm (t, ANY_WRITE, false);
  if (sc_volume_write (t->v, t->live + 2 * CS, CS, 2 * CS, 0) != -EIO)
    return 1;
  disarm ();
  if (sc_volume_write (t->v, t->live + 2 * CS, CS, 2 * CS, 0) != 0)
    return 2;
  struct sc_diff_health h;
  sc_volume_diff_health (t->v, &h);
  return h.failed && h.sb_marked ? 0 : 3;
}

Test (recovery, a_failure_recorded_later_lets_writes_through)
{
  struct uh_vol t;
  uh_vol_create (&t, SIZE, CS, 7, 0);
  uh_vol_snap (&t, "a");
  int r = crash_after (&t, session_recorded_later);
  cr_assert_eq (r, 0, "session step %d failed", r);
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_eq (a.invalid_reason, SC_INVALID_METADATA);
  uh_vol_free (&t);
}

/* ---- a superblock store whose fdatasync fails ------------------------- */

/* Fails without the fix: the retry's superblock store wrote its copy (only
 * the fdatasync failed), the slots of its journal went back and later
 * retries wrote journals of other nonces there; the next open followed
 * that copy and refused the diff area ("the journal at slot 5 ... is
 * empty or damaged"). */
Test (recovery, a_retry_whose_superblock_sync_fails_leaves_it_openable)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  cr_assert (health (&t).sb_marked);
  arm (&t, SB_SYNC, true);
  cr_assert_lt (sc_volume_diff_recover (t.v), 0);
  cr_assert_eq (fault_hits, 1, "the superblock's fdatasync did not fail");
  arm (&t, JOURNAL_SYNC, false);        /* every fdatasync */
  for (int i = 0; i < 3; i++)
    cr_assert_lt (sc_volume_diff_recover (t.v), 0);
  cr_assert_neq (sc_volume_close (t.v), 0);
  t.v = NULL;
  disarm ();
  uh_vol_open (&t);
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_neq (a.invalid_reason, SC_VALID);
  uh_vol_free (&t);
}

/* Checkpoints while serving, until one has met the fault: then none
 * (a later one would hide what the failed one left). */
static uint64_t
tiny_ckpt_limit (uint64_t live)
{
  return __atomic_load_n (&fault_hits, __ATOMIC_SEQ_CST) ? UINT64_MAX
                                                          : live + 4;
}

/* A checkpoint while serving whose superblock fdatasync fails, then more
 * copies and a crash.  Fails without the fix: the new journal's slots
 * went back to the allocator and were reused while the newest
 * superblock copy pointed at them. */
static int
session_ckpt_sb_sync (struct uh_vol *t)
{
  live_write (t, 7, 399);       /* the origin's "written" stamp stored */
  sc_ckpt_limit_hook = tiny_ckpt_limit;
  arm (t, SB_SYNC, true);
  for (uint64_t c = 8; c < 40 && fault_hits == 0; c++) {
    if (uh_vol_write (t, c, 400 + c) != 0)
      return 1;
  }
  if (fault_hits != 1)
    return 2;                   /* no checkpoint reached its superblock */
  for (uint64_t c = 40; c < 64; c++) {
    if (uh_vol_write (t, c, 400 + c) != 0)
      return 3;
  }
  /* The superblock in force was stored again: the journal carries on. */
  struct sc_diff_health h;
  sc_volume_diff_health (t->v, &h);
  return h.failed ? 4 : 0;
}

Test (recovery, a_checkpoint_whose_superblock_sync_fails_leaves_it_openable)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  uh_vol_snap (&t, "a");
  memcpy (img_a, t.live, SIZE);
  uh_vol_close (&t);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    uh_vol_open (&t);
    _exit (session_ckpt_sb_sync (&t));
  }
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0,
             "session step %d failed", WEXITSTATUS (status));
  struct sc_volume_config cfg = {
    .origin_path = t.origin, .diff_path = t.diff, .chunk_size = CS,
  };
  char err[512] = "";
  int r = sc_volume_open (&cfg, &t.v, err, sizeof err);
  cr_assert_eq (r, 0, "the diff area does not open after the crash: %s",
                err);
  assert_never_wrong (&t, img_a);
  uh_vol_free (&t);
}

/* ---- a retry on a slow disk never stalls the live volume --------------- */

static pthread_t retry_thread;
static bool retry_in_io, live_done, retry_blocked_live;

/* The retry's writes wait (up to 10 s) for the live I/O to be done. */
static int
slow_retry (const struct sc_io_req *req)
{
  if (req->fd != fault_fd || !pthread_equal (pthread_self (), retry_thread))
    return 0;
  __atomic_store_n (&retry_in_io, true, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 1000 && !__atomic_load_n (&live_done, __ATOMIC_SEQ_CST);
       i++)
    usleep (10000);
  if (!__atomic_load_n (&live_done, __ATOMIC_SEQ_CST))
    __atomic_store_n (&retry_blocked_live, true, __ATOMIC_SEQ_CST);
  return -EIO;
}

static void *
retry_main (void *v)
{
  return (void *) (intptr_t) sc_volume_diff_recover (v);
}

/* Fails without the fix: the retry held the diff area's lock through its
 * I/O, and the live write (its copy query) and flush waited for it. */
Test (recovery, a_retry_on_a_slow_disk_does_not_stall_live_io, .timeout = 60)
{
  struct uh_vol t;
  static uint8_t img_a[SIZE];
  uh_vol_create (&t, SIZE, CS, 7, 0);
  fail_once (&t, JOURNAL_WRITE, img_a);
  cr_assert (health (&t).sb_marked);
  sc_io_fault_hook = slow_retry;
  __atomic_store_n (&live_done, false, __ATOMIC_SEQ_CST);
  cr_assert_eq (pthread_create (&retry_thread, NULL, retry_main, t.v), 0);
  while (!__atomic_load_n (&retry_in_io, __ATOMIC_SEQ_CST))
    usleep (1000);              /* the retry is in its first write */
  live_write (&t, 10, 500);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  __atomic_store_n (&live_done, true, __ATOMIC_SEQ_CST);
  void *rr;
  pthread_join (retry_thread, &rr);
  cr_assert_lt ((intptr_t) rr, 0);
  cr_assert (!retry_blocked_live, "the live write or flush waited for the "
             "retry's I/O");
  uh_vol_assert_reads (&t, 0, t.live, "live");
  uh_vol_free (&t);
}
