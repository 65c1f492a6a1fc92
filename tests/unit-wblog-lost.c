/* Unit tests: the error of a write acknowledged from the write-back queue
 * and lost afterwards (its copy refused, its origin write failed) is in
 * the log until a flush reports it, so that a server killed or stopped
 * first leaves it to the next server's first flush (writeback-log.c). */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-wblog.h"

TestSuite (wblost, .init = wbt_setup, .fini = wbt_teardown);

/* The word at 1016 as a server that lost a write with `err` leaves it
 * (writeback-log.c's layout). */
static void
put_lost (const char *p, uint32_t err)
{
  uint64_t w = err ? (uint64_t) 0x4c4f5354u << 32 | err : 0;
  uh_pwrite (p, &w, sizeof w, 1016);
}

/* What the parser finds in the log at p: its state, *lost. */
static int
scan_lost (const char *p, const uint8_t key[SC_WB_LOG_KEY],
           const uint8_t boot[16], int *lost)
{
  size_t len, n;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  struct sc_wb_log_owner o;
  char err[512] = "";
  uint8_t *img = wbt_image (p, &len);
  *lost = -1;
  int r = sc_wb_log_scan (img, len, key, boot, VOL, e, &n, &o, lost, err,
                          sizeof err);
  free (img);
  cr_assert_geq (r, 0, "%s", err);
  return r;
}

Test (wblost, the_log_holds_the_error_until_a_flush_reports_it)
{
  char *p = uh_path ("lost.wblog");
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  int lost;
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, 0, "a new log says a write was lost");

  sc_wb_log_note_lost (log, EROFS);
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, EROFS, "the lost write's error: %d", lost);
  /* Not to a server of another boot or disk. */
  uint8_t other_boot[16];
  memcpy (other_boot, wbt_boot_now, 16);
  other_boot[2] ^= 1;
  cr_assert_eq (scan_lost (p, wbt_key_a, other_boot, &lost),
                SC_WB_LOG_OTHER_BOOT);
  cr_assert_eq (lost, 0, "another boot's log gives an error");
  cr_assert_eq (scan_lost (p, wbt_key_b, wbt_boot_now, &lost),
                SC_WB_LOG_OTHER_DISK);
  cr_assert_eq (lost, 0, "another disk's log gives an error");

  sc_wb_log_note_lost (log, 0);                 /* reported */
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, 0, "a reported error is still in the log");
  sc_wb_log_close (log, 0);

  /* A new log made with it (the next server's) holds it. */
  struct sc_wb_log *next;
  char err[512] = "";
  cr_assert_eq (sc_wb_log_create (p, wbt_key_a, &wbt_some_owner, EIO, &next,
                                  err, sizeof err), 0, "%s", err);
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, EIO);
  sc_wb_log_close (next, 0);

  /* A word it cannot read is taken as an I/O error, never as none. */
  uint64_t junk = 0x1234;
  uh_pwrite (p, &junk, sizeof junk, 1016);
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, EIO, "an unreadable word gives %d", lost);
  put_lost (p, 99999);
  cr_assert_eq (scan_lost (p, wbt_key_a, wbt_boot_now, &lost),
                SC_WB_LOG_EMPTY);
  cr_assert_eq (lost, EIO, "an errno out of range gives %d", lost);
  free (p);
}

/* The lost write's error the log at p holds. */
static int
lost_in (const char *p, const uint8_t key[SC_WB_LOG_KEY])
{
  int lost;
  cr_assert_eq (scan_lost (p, key, wbt_boot_now, &lost), SC_WB_LOG_EMPTY);
  return lost;
}

/* A killed server's log with queued writes and a lost write's error: the
 * open writes them, and its first flush, not the replay's, fails with the
 * error, once.  The log keeps the error until a flush that begins after
 * the reporting one returned: with write-back on (wb) the new log, with
 * it off the old one. */
static void
first_flush_reports_it (bool wb)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  put_lost (p, EROFS);
  wbt_open_with (&t, wb, false);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, the log written");
  cr_assert_eq (lost_in (p, key), EROFS, "the log does not keep the error");
  cr_assert_eq (sc_volume_flush (t.v), -EROFS,
                "the first flush does not report the lost write");
  cr_assert_eq (lost_in (p, key), EROFS, "the error is cleared from the "
                "log before the flush that reported it returned");
  cr_assert_eq (sc_volume_flush (t.v), 0, "reported twice");
  if (wb)
    cr_assert_eq (lost_in (p, key), 0, "the reported error stays");
  else
    cr_assert_neq (access (p, F_OK), 0, "the reported error's log stays");
  uh_vol_close (&t);
  cr_assert_neq (access (p, F_OK), 0, "the log is kept after a clean stop");
  free (p);
  uh_vol_free (&t);
}

Test (wblost, the_first_flush_after_the_open_reports_it_write_back_on)
{
  first_flush_reports_it (true);
}

Test (wblost, the_first_flush_after_the_open_reports_it_write_back_off)
{
  first_flush_reports_it (false);
}

/* Review 31: a server with no log of its own (write-back off, or its log
 * could not be made) that stops cleanly, or is killed, before any flush
 * leaves the error to the next one: the old log keeps it. */
Test (wblost, a_server_without_a_log_of_its_own_keeps_the_error_on_file)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  put_lost (p, EROFS);
  wbt_open_with (&t, false, false);
  uh_vol_close (&t);                    /* a clean stop, no flush */
  cr_assert_eq (lost_in (p, key), EROFS, "a clean stop lost the error");

  char *tmp = NULL;                     /* the new log cannot be made */
  cr_assert (asprintf (&tmp, "%s.new", p) > 0);
  cr_assert_eq (mkdir (tmp, 0700), 0);
  wbt_open_with (&t, true, false);
  cr_assert_eq (lost_in (p, key), EROFS, "the open, its log not made, "
                "deleted the only copy of the error on file");
  uh_vol_close (&t);
  cr_assert_eq (rmdir (tmp), 0);
  free (tmp);

  wbt_open_with (&t, true, false);
  cr_assert_eq (sc_volume_flush (t.v), -EROFS, "the error was lost");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* A log whose writes are dropped (a later session that did not find it
 * wrote the disk), or that holds the error alone (`only`), still has it
 * reported: no flush has, and none must pass over it, as a kernel
 * reports a write-back error to whoever calls fsync next (review 31
 * asked which rule applies). */
static void
reported_after_an_unfound_session (bool only)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  if (only) {
    uint8_t zero[64 * 32] = { 0 };      /* every slot retired */
    uh_pwrite (p, zero, sizeof zero, 1024);
  }
  put_lost (p, EROFS);
  wbt_unfound_session (&t, false);
  uh_vol_open (&t);
  cr_assert_eq (sc_volume_flush (t.v), -EROFS, "the error is not reported");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

Test (wblost, a_dropped_logs_error_is_still_reported)
{
  reported_after_an_unfound_session (false);
}

Test (wblost, an_error_alone_is_reported_after_an_unfound_session)
{
  reported_after_an_unfound_session (true);
}

/* Review 33: a log kept for its error alone must not keep the writes its
 * open dropped.  A killed server's log holds queued writes to chunk 1
 * and a lost write's error; the disk is written at chunk 1 while no
 * server runs.  The next open (write-back off) finds the change, drops
 * the queued writes and keeps the log for its error, but its session
 * record fails.  That open recorded the changed disk's stamp, and the
 * log's session is still the diff area's last: the open after it must
 * not write the dropped writes over the newer data. */
Test (wblost, a_log_kept_for_its_error_keeps_no_dropped_write)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  put_lost (p, EROFS);

  wbt_disk_written_behind (&t);         /* over the log's writes */

  struct sc_volume_config cfg = {
    .origin_path = t.origin, .diff_path = t.diff,
    .chunk_size = t.chunk_size,
  };
  struct sc_volume *v = NULL;
  char err[512] = "";
  sc_io_fault_hook = wbt_fail_session_store;
  int r = sc_volume_open (&cfg, &v, err, sizeof err);
  sc_io_fault_hook = NULL;
  cr_assert_lt (r, 0, "the open succeeded (the record did not fail)");
  cr_assert_eq (wbt_session_failures, 1, "the hook did not fire");

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume: the data written "
                       "while no server ran, not the log's dropped writes");
  cr_assert_eq (sc_volume_flush (t.v), -EROFS, "the error was lost");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}
