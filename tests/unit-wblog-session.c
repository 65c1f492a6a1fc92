/* Unit tests: which write-back log an open writes after other sessions
 * of the disk (engine/writeback-log.c, cow/session.c): not one a later
 * session did not find, whatever that session did and whatever the wall
 * clock says; one the last session left, even after a failed open; one
 * made through another diff area of the disk. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/superblock.h"
#include "engine/volume.h"
#include "engine/volume-impl.h"
#include "tests/unit-wblog.h"

TestSuite (wbsession, .init = wbt_setup, .fini = wbt_teardown);

/* ---- review 24 -------------------------------------------------------- */

/* The engine's unlink, as the tests below need it: the unlink of one
 * path fails. */
static const char *unlink_fails;

int
unlink (const char *path)
{
  if (unlink_fails && strcmp (path, unlink_fails) == 0) {
    errno = EBUSY;
    return -1;
  }
  return unlinkat (AT_FDCWD, path, 0);
}

/* A log judged stale (a session that did not find it wrote the disk
 * since) whose deletion fails: the open fails and keeps it, and its
 * close dates it again as a log it found and kept.  The next open then
 * took it for a fresh one and wrote its old queued writes over the newer
 * data. */
Test (wbsession, a_stale_log_the_open_cannot_delete_is_not_dated_again)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);

  /* A session that does not find the log (another directory) writes
   * the bytes the log's queued writes cover, and stops cleanly. */
  wbt_unfound_session (&t, false);

  /* The next open judges the log stale; deleting it fails. */
  char err[512] = "";
  unlink_fails = p;
  wbt_open_fails (&t, err, sizeof err);
  unlink_fails = NULL;

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data, "
                       "not the stale log's)");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* As above, the log stale (a session that did not find it wrote the
 * disk since), and the next open cannot read the boot id (a transient
 * EMFILE): it fails before judging the log, keeps it, and its close
 * dates it again.  The open after that took the stale log for a fresh
 * one and wrote its old queued writes over the newer data. */
Test (wbsession, an_unreadable_boot_id_does_not_make_a_stale_log_fresh)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);

  wbt_unfound_session (&t, false);

  char err[512] = "";
  sc_boot_id_hook = wbt_boot_id_fails;
  wbt_open_fails (&t, err, sizeof err);
  sc_boot_id_hook = wbt_fixed_boot;

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data, "
                       "not the stale log's)");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* ---- the session id (cow/session.c) ---------------------------------- */

/* A session that does not find the log (another directory) runs with
 * origin-check=off, so it takes no stamp of the origin, writes the bytes
 * the log's queued writes cover, and stops cleanly.  Dates judged the
 * log by the stamps, so the next open took it for fresh and wrote its old
 * writes over the newer data (review 24). */
Test (wbsession, a_session_without_an_origin_check_makes_an_unfound_log_stale)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);

  wbt_unfound_session (&t, true);

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data, "
                       "not the unfound log's)");
  cr_assert_neq (access (p, F_OK), 0, "the dropped log is deleted");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The wall clock, as the engine reads it: set back by clock_back_ns. */
static uint64_t clock_back_ns;

int
clock_gettime (clockid_t clk, struct timespec *ts)
{
  if (syscall (SYS_clock_gettime, clk, ts) < 0)
    return -1;
  if (clk == CLOCK_REALTIME && clock_back_ns) {
    uint64_t ns = (uint64_t) ts->tv_sec * 1000000000u + ts->tv_nsec
                  - clock_back_ns;
    ts->tv_sec = (time_t) (ns / 1000000000u);
    ts->tv_nsec = (long) (ns % 1000000000u);
  }
  return 0;
}

/* The wall clock is set back an hour after the last stamp of the diff
 * area (a clean stop), and a server with origin-check=off (no stamp of
 * its own) is then killed with queued writes.  Dates judged its log
 * older than the stamp and dropped its acknowledged writes (review 24);
 * the session id is no date. */
Test (wbsession, a_clock_set_back_does_not_drop_the_queued_writes)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = wbt_where (&t, key);
  uh_vol_close (&t);                    /* stamped now */

  /* The killed server's session, with origin-check=off: it takes no
   * stamp of its own. */
  clock_back_ns = 3600 * UINT64_C (1000000000);
  wbt_open_check_off (&t);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);
  wbt_killed_server_log (p, key, &owner);
  clock_back_ns = 0;                    /* the clock corrected */

  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The log's header as version 1 wrote it (no session id). */
static void
make_version_1 (const char *p)
{
  uint8_t h[84];
  uint32_t one = 1;
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  uint64_t made = (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
  uh_pread (p, h, sizeof h, 0);
  memcpy (h + 8, &one, 4);
  memcpy (h + 72, &made, 8);            /* made_ns: now */
  uint32_t crc = crc32c (0, h, 80);
  memcpy (h + 80, &crc, 4);
  uh_pwrite (p, h, sizeof h, 0);
}

/* A log a server of version 1 left (upgraded while it was killed): its
 * writes are written if no session recorded an id since, and dropped if
 * one did (a session that did not find it). */
Test (wbsession, a_version_1_log_is_written_unless_a_later_session_ran)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = wbt_where (&t, key);
  uh_vol_close (&t);
  cr_assert_eq (unlink (t.diff), 0);    /* as version 1 left it: no id */
  wbt_killed_server_log (p, key, &wbt_some_owner);
  make_version_1 (p);
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, written");
  uh_vol_close (&t);

  memset (t.live + 65536, 0x66, 65536);         /* newer data */
  uh_vol_open (&t);
  cr_assert_eq (sc_volume_write (t.v, t.live + 65536, 65536, 65536, 0), 0);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  uh_vol_close (&t);
  wbt_killed_server_log (p, key, &wbt_some_owner);
  make_version_1 (p);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data, "
                       "not the version 1 log's)");
  cr_assert_neq (access (p, F_OK), 0, "the dropped log is deleted");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* ---- review 25 -------------------------------------------------------- */

/* A transient error on the superblock write that records the open's
 * session id fails the open (right: nothing was written to the disk
 * yet).  But the store (then sc_diff_new_session) also failed the whole
 * diff area (diff_fail), which invalidates every snapshot, durably,
 * although no write needed a copy and the disk was not touched.  The superblock
 * store of the origin's stamp, made by the same open just before, fails
 * the open the same way and keeps the snapshots. */
Test (wbsession, a_failed_session_store_at_open_keeps_the_snapshots)
{
  struct uh_vol t;
  uh_vol_create (&t, VOL, 65536, 7, 0);
  uh_vol_snap (&t, "s1");
  wbt_old_session = wbt_owner_of (&t).session;
  uh_vol_close (&t);

  char err[512] = "";
  sc_io_fault_hook = wbt_fail_session_store;
  int r = wbt_open_fails (&t, err, sizeof err);
  sc_io_fault_hook = NULL;
  cr_assert_eq (wbt_session_failures, 1, "the session's store was not made");
  cr_assert_eq (r, -EIO, "%d %s", r, err);

  uh_vol_open (&t);
  struct sc_snapshot_info s1 = uh_find (sc_volume_diff (t.v), "s1");
  cr_assert_eq (s1.invalid_reason, SC_VALID,
                "snapshot s1 is invalid (\"%s\") after an open whose "
                "session-id store failed once (err: %s)",
                sc_invalid_reason_text (s1.invalid_reason), err);
  uh_vol_close (&t);
  uh_vol_free (&t);
}

/* The log is the disk's, the session id the diff area's.  A server on
 * diff area 1 is killed with writes queued before it wrote the disk
 * otherwise; the next server of the disk opens diff area 2, whose own
 * last session recorded an id.  That id says nothing of diff area 1's
 * log, which was made either after it (its writes are to be written) or
 * before (a session of diff area 2 that did not find it wrote newer
 * data); and diff area 1 is still there.  The open fails and keeps the
 * log, naming diff area 1's file; with diff area 1 the writes are
 * written. */
Test (wbsession, a_log_made_through_another_used_diff_area_is_kept_for_it)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_init (&t, VOL, 65536, 7, 0);
  char *diff1 = t.diff;
  t.diff = uh_path ("diff2");
  uh_vol_open (&t);                     /* an earlier session on diff 2 */
  char *diff2 = t.diff;
  uh_vol_close (&t);

  t.diff = diff1;
  uh_vol_open (&t);
  char *p = wbt_where (&t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);
  wbt_killed_server_log (p, key, &owner);

  t.diff = diff2;
  char err[512] = "";
  cr_assert_eq (wbt_open_fails (&t, err, sizeof err), -EUCLEAN, "%s", err);
  cr_assert_not_null (strstr (err, "made through another diff area, "),
                      "%s", err);
  cr_assert_not_null (strstr (err, owner.diff_path), "%s", err);
  cr_assert_not_null (strstr (err, "start the server once with that diff "
                              "area (wherever it is now) to write them"),
                      "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");

  t.diff = diff1;
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, through diff 1");
  cr_assert_neq (access (p, F_OK), 0, "the written log is deleted");
  uh_vol_close (&t);
  t.diff = diff2;
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, through diff 2");
  uh_vol_close (&t);
  free (diff1);
  free (p);
  uh_vol_free (&t);
}

/* Review 27: as above, but diff area 2 is new (no session has used it).
 * Written through it, the log's first write after diff area 1's snapshot
 * s1 made no copy for s1, and diff area 1, stopped uncleanly after
 * writing the disk, does not check the disk at its next open: s1 read
 * the write made after it.  Diff area 1 is still there: the open through
 * diff area 2 fails and keeps the log, and diff area 1 writes it, copying
 * first. */
Test (wbsession, a_log_is_not_written_behind_its_own_diff_areas_snapshots)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  cr_assert_eq (uh_vol_write (&t, 9, 0x11), 0);   /* the disk written */
  uh_vol_snap (&t, "s1");
  uint8_t *old = malloc (VOL);
  cr_assert_not_null (old);
  memcpy (old, t.live, VOL);
  char *p = wbt_where (&t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);
  wbt_killed_server_log (p, key, &owner);

  char *diff1 = t.diff;
  t.diff = uh_path ("diff2");
  char err[512] = "";
  cr_assert_eq (wbt_open_fails (&t, err, sizeof err), -EUCLEAN, "%s", err);
  cr_assert_not_null (strstr (err, "they would make no copy for that one's "
                              "snapshots"), "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");
  free (t.diff);

  t.diff = diff1;
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_assert_reads (&t, uh_find (sc_volume_diff (t.v), "s1").id, old,
                       "s1");
  uh_vol_close (&t);
  free (old);
  free (p);
  uh_vol_free (&t);
}

/* ---- review 26 -------------------------------------------------------- */

/* The diff area is made again after a server was killed with writes in
 * the disk's log, by a session in another log directory (another user,
 * say), which does not find the log, writes the bytes the queued writes
 * cover and stops cleanly.  The log's UUID is the old diff area's: taken
 * for a log made through another diff area, it was written over the
 * newer, flushed data.  The new diff area has been used since it was
 * made, so it cannot tell: the open fails and keeps the log; moved away,
 * the newer data is served. */
Test (wbsession, a_diff_area_made_again_then_written_unfound_is_not_overwritten)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  cr_assert_eq (unlink (t.diff), 0);    /* the diff area made again... */
  wbt_unfound_session (&t, false);      /* ...by a session in another
                                           log directory */
  char err[512] = "";
  cr_assert_eq (wbt_open_fails (&t, err, sizeof err), -EUCLEAN, "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");
  cr_assert_eq (unlink (p), 0);         /* moved away */
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data "
                       "written through the new diff area)");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The open writes a killed server's log, then the store of its own
 * session id fails.  Its message said that nothing was written to the
 * disk: the log's writes are on the disk and the log is deleted. */
Test (wbsession, a_failed_session_store_after_a_replay_says_what_was_written)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);        /* (wbt_old_session) */

  char err[512] = "";
  sc_io_fault_hook = wbt_fail_session_store;
  wbt_open_fails (&t, err, sizeof err);
  sc_io_fault_hook = NULL;
  cr_assert_eq (wbt_session_failures, 1, "the session's store was not made");
  cr_assert_neq (access (p, F_OK), 0, "the replayed log is deleted");
  cr_assert_not_null (strstr (err, "the 2 queued writes of the write-back "
                              "log were written to the disk and the log "
                              "deleted"), "%s", err);
  wbt_replayed (&t);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume: the log's writes "
                       "are on the disk");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* What a shadowcopy of version 1 of the log leaves in the superblock: no
 * session id (it knew none). */
static void
clear_session_id (const char *diff)
{
  int fd = open (diff, O_RDWR);
  cr_assert_geq (fd, 0);
  struct sc_sb_disk sb;
  char err[256];
  cr_assert_eq (sc_sb_load (fd, &sb, err, sizeof err), 0, "%s", err);
  sb.session_id = sb.wblog_session = 0;
  cr_assert_eq (sc_sb_store (fd, &sb), 0);
  close (fd);
}

/* Review 29: a server of version 1 is killed with writes in its log; a
 * session of version 1 that does not find it (another log directory)
 * writes the same bytes and stops cleanly, stamping the disk; then the
 * upgrade.  The superblock holds no id, which wrote the log's old writes
 * over the newer data; version 1 dropped them by date, as the log is
 * older than the stamp.  A version-1 log newer than the stamp is still
 * written. */
Test (wbsession, a_version_1_log_older_than_the_last_stamp_is_dropped)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = wbt_where (&t, key);
  uh_vol_close (&t);
  wbt_killed_server_log (p, key, &wbt_some_owner);
  make_version_1 (p);
  wbt_unfound_session (&t, false);      /* newer data, stamped after */
  clear_session_id (t.diff);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume (the newer data, "
                       "not the version 1 log's)");
  cr_assert_neq (access (p, F_OK), 0, "the dropped log is deleted");
  uh_vol_close (&t);

  clear_session_id (t.diff);            /* stamped before the log */
  wbt_killed_server_log (p, key, &wbt_some_owner);
  make_version_1 (p);
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, written");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* Review 34: an open that finds the disk changed while no server ran
 * drops the killed server's queued writes, but stores the disk's new
 * stamp first.  Should it stop before it has dealt with the log (a kill,
 * or a failure such as an unreadable boot id), the next open found the
 * disk as stamped and the log's session still the last, and wrote the
 * dropped writes over the newer data.  The store of the change now
 * records a new session id with it. */
Test (wbsession, a_change_of_the_disk_is_not_forgotten_by_an_open_that_fails)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  wbt_disk_written_behind (&t);         /* over the log's writes */

  char err[512] = "";
  sc_boot_id_hook = wbt_boot_id_fails;  /* after the origin's check */
  wbt_open_fails (&t, err, sizeof err);
  sc_boot_id_hook = wbt_fixed_boot;
  cr_assert_not_null (strstr (err, "boot"), "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume: the data written "
                       "while no server ran, not the log's older writes");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}
