/* Unit tests: the origin's stamp (cow/origin-stamp.c), with stamps made
 * up by the test: recorded at a clean close and carried unchanged by the
 * offline CLI; a block device's counters after a reboot, after the device
 * was made again (backwards, another diskseq) or when they stood still
 * over the server's writes (samples only); sectors, not I/Os; the written
 * state is not compared, and the log says whether the stop was clean;
 * accept, only after a clean stop; the sample positions; an unknown
 * stamp state is refused. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "tests/unit-helpers.h"

TestSuite (origin_stamp, .init = uh_setup, .fini = uh_teardown);

/* A block device's stamp at boot `boot`, its samples all `sample`. */
static struct sc_origin_stamp
block_stamp (uint64_t size, uint8_t boot, uint64_t sectors, uint32_t sample)
{
  struct sc_origin_stamp st = { .flags = SC_STAMP_F_COUNTERS, .size = size };
  memset (st.boot_id, boot, sizeof st.boot_id);
  st.write_ios = sectors / 8;
  st.write_sectors = sectors;
  st.nsamples = SC_STAMP_SAMPLES;
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++)
    st.sample_crc[i] = sample + i;
  return st;
}

static struct sc_origin_stamp
file_stamp (uint64_t size, uint64_t mtime, uint64_t ctime)
{
  struct sc_origin_stamp st = { .flags = SC_STAMP_F_TIMES, .size = size,
                                .mtime_ns = mtime, .ctime_ns = ctime,
                                .nsamples = SC_STAMP_SAMPLES };
  return st;
}

/* What the diff area said (sc_notice), one line each. */
static char said[8192];
static void
capture (const char *fmt, ...)
{
  size_t n = strlen (said);
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (said + n, sizeof said - n, fmt, ap);
  va_end (ap);
  n = strlen (said);
  if (n + 1 < sizeof said)
    strcpy (said + n, "\n");
}

/* The superblock as a crash of the server leaves it: not clean, and no
 * clean stop recorded with the stamp. */
static void
mark_crashed (const char *path)
{
  uh_sb_mark_unclean (path);
  struct sc_sb_disk sb;
  int copy = uh_sb_newest (path, &sb);
  sb.stamp_flags &= ~SC_STAMP_F_CLEAN_STOP;
  uh_sb_write (path, copy, &sb);
}

static uint32_t
state_of (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info info;
  cr_assert_eq (sc_diff_snapshot_lookup (d, name, &info), 0);
  return info.invalid_reason;
}

/* A diff area with snapshot s1, its stamp `first` recorded at the close
 * of the session that made it. */
static void
area_with_stamp (struct uh_area *a, const struct sc_origin_stamp *first)
{
  /* The session writes the origin: a block device's counters move. */
  struct sc_origin_stamp opened = *first;
  if ((first->flags & SC_STAMP_F_COUNTERS) && first->write_sectors >= 8) {
    opened.write_ios -= opened.write_ios > 0;
    opened.write_sectors -= 8;
  }
  uh_area_create (a, 1 << 20, 65536, 7);
  cr_assert_eq (sc_diff_origin_check (a->d, &opened, NULL, 0), 0);
  cr_assert_eq (sc_diff_snapshot_create (a->d, "s1", NULL, NULL), 0);
  cr_assert_eq (sc_diff_origin_writing (a->d), 0);
  sc_diff_origin_stamp_at_close (a->d, first);
  uh_area_reopen (a, 0);
}

Test (origin_stamp, recorded_at_clean_close_and_carried_by_offline_opens)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  uh_area_close (&a);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_UNWRITTEN);
  cr_assert_eq (sb.stamp_flags, SC_STAMP_F_TIMES | SC_STAMP_F_CLEAN_STOP);
  cr_assert_eq (sb.stamp_mtime_ns, 111);
  cr_assert_eq (sb.stamp_ctime_ns, 222);
  cr_assert_eq (sb.stamp_nsamples, SC_STAMP_SAMPLES);

  /* The offline CLI opens without the origin: read-write (a checkpoint,
   * a snapshot deleted, a clean close), the stamp is carried as it is. */
  char err[512];
  struct sc_diff *d;
  cr_assert_eq (sc_diff_open (a.diff_path, 0, NULL, 0, &d, err, sizeof err),
                0, "%s", err);
  cr_assert_eq (sc_diff_snapshot_create (d, "s2", NULL, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_delete (d, "s2"), 0);
  cr_assert_eq (sc_diff_close (d), 0);
  struct sc_sb_disk after;
  uh_sb_newest (a.diff_path, &after);
  cr_assert_gt (after.generation, sb.generation);
  cr_assert_eq (after.stamp_state, SC_STAMP_UNWRITTEN);
  cr_assert_eq (after.stamp_time_ns, sb.stamp_time_ns);
  cr_assert_eq (after.stamp_mtime_ns, 111);
  cr_assert_eq (after.stamp_ctime_ns, 222);

  /* And the next server start finds the origin as it was left. */
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_free (&a);
}

Test (origin_stamp, a_file_whose_ctime_moved_invalidates_durably)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  struct sc_origin_stamp now = file_stamp (1 << 20, 111, 333);
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  /* Durable, even after a crash right now. */
  uh_area_close (&a);
  mark_crashed (a.diff_path);
  uh_area_open (&a, SC_DIFF_RDONLY);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

Test (origin_stamp, after_a_reboot_block_counters_are_not_compared_samples_are)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  area_with_stamp (&a, &st);
  /* Another boot: the counters restarted; the samples match. */
  struct sc_origin_stamp rebooted = block_stamp (1 << 20, 2, 16, 5);
  cr_assert_eq (sc_diff_origin_check (a.d, &rebooted, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  /* Another reboot, and one sampled block differs. */
  struct sc_origin_stamp changed = block_stamp (1 << 20, 3, 16, 5);
  changed.sample_crc[17] ^= 1;
  cr_assert_eq (sc_diff_origin_check (a.d, &changed, NULL, 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

Test (origin_stamp, block_counters_missing_now_fall_back_to_samples)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  area_with_stamp (&a, &st);
  struct sc_origin_stamp now = block_stamp (1 << 20, 0, 0, 5);
  now.flags = 0;                /* no /sys here now */
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  now.sample_crc[0]++;
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 1);
  uh_area_free (&a);
}

/* A device removed and made again with the same MAJ:MIN (LVM deactivate
 * and activate, an nbd or iSCSI reconnect) restarts its counters at 0:
 * counters that went backwards were not moved by writes, so only the
 * samples are compared, as after a reboot. */
Test (origin_stamp, block_counters_that_went_backwards_are_not_compared)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  st.discard_ios = 3;
  st.discard_sectors = 24;
  area_with_stamp (&a, &st);
  struct sc_origin_stamp remade = block_stamp (1 << 20, 1, 0, 5);
  cr_assert_eq (sc_diff_origin_check (a.d, &remade, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  /* Remade again, written since: fewer sectors than recorded, and a
   * sampled block differs. */
  struct sc_origin_stamp written = block_stamp (1 << 20, 1, 0, 5);
  written.write_ios = 1;
  written.write_sectors = 8;
  written.sample_crc[0] ^= 1;
  cr_assert_eq (sc_diff_origin_check (a.d, &written, NULL, 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

/* Only the discard counters went back: the device was remade all the
 * same. */
Test (origin_stamp, discard_counters_that_went_backwards_are_not_compared)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  st.discard_ios = 3;
  st.discard_sectors = 24;
  area_with_stamp (&a, &st);
  struct sc_origin_stamp remade = block_stamp (1 << 20, 1, 900, 5);
  cr_assert_eq (sc_diff_origin_check (a.d, &remade, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_free (&a);
}

/* The disk's sequence number is new each time the kernel makes the
 * device: the counters compare only when it is the same. */
Test (origin_stamp, another_diskseq_means_counters_are_not_compared)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  st.diskseq = 41;
  area_with_stamp (&a, &st);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_diskseq, 41, "recorded");
  /* Made again and written more than before: the counters moved up. */
  struct sc_origin_stamp remade = block_stamp (1 << 20, 1, 1600, 5);
  remade.diskseq = 42;
  cr_assert_eq (sc_diff_origin_check (a.d, &remade, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  /* The same device: the counters are compared. */
  struct sc_origin_stamp written = remade;
  written.write_sectors += 8;
  cr_assert_eq (sc_diff_origin_check (a.d, &written, NULL, 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

/* The server wrote a block device, and its counters did not move (its
 * I/O accounting is off, or the kernel does not count these writes):
 * they would not see an outside write either, so they are recorded as
 * not comparable, and the next start compares the samples alone. */
Test (origin_stamp, counters_still_over_a_session_that_wrote_are_not_recorded)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  uh_area_create (&a, 1 << 20, 65536, 7);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (sc_diff_snapshot_create (a.d, "s1", NULL, NULL), 0);
  cr_assert_eq (sc_diff_origin_writing (a.d), 0);
  sc_diff_origin_stamp_at_close (a.d, &st);
  uh_area_close (&a);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_UNWRITTEN);
  cr_assert_eq (sb.stamp_flags & SC_STAMP_F_COUNTERS, 0);
  cr_assert_eq (sb.stamp_write_sectors, 0);
  cr_assert_eq (sb.stamp_nsamples, SC_STAMP_SAMPLES);
  /* Counters that moved are then no change; samples still are. */
  uh_area_open (&a, 0);
  struct sc_origin_stamp now = block_stamp (1 << 20, 1, 900, 5);
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  now.sample_crc[3] ^= 1;
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 1);
  uh_area_free (&a);
}

/* A session that did not write keeps its counters, moved or not. */
Test (origin_stamp, counters_still_over_a_session_without_writes_are_kept)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  uh_area_create (&a, 1 << 20, 65536, 7);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (sc_diff_snapshot_create (a.d, "s1", NULL, NULL), 0);
  sc_diff_origin_stamp_at_close (a.d, &st);
  uh_area_close (&a);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert (sb.stamp_flags & SC_STAMP_F_COUNTERS);
  cr_assert_eq (sb.stamp_write_sectors, 800);
  uh_area_free (&a);
}

Test (origin_stamp, a_file_that_became_a_block_device_is_a_change)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  struct sc_origin_stamp now = block_stamp (1 << 20, 1, 0, 0);
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 1);
  uh_area_free (&a);
}

Test (origin_stamp, same_boot_sectors_count_not_ios)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  area_with_stamp (&a, &st);
  /* A flush counted as a write of no sector. */
  struct sc_origin_stamp flushed = st;
  flushed.write_ios++;
  cr_assert_eq (sc_diff_origin_check (a.d, &flushed, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  struct sc_origin_stamp written = flushed;
  written.write_sectors += 8;
  cr_assert_eq (sc_diff_origin_check (a.d, &written, NULL, 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

Test (origin_stamp, a_discard_is_a_change)
{
  struct uh_area a;
  struct sc_origin_stamp st = block_stamp (1 << 20, 1, 800, 5);
  area_with_stamp (&a, &st);
  struct sc_origin_stamp now = st;
  now.discard_ios = 1;
  now.discard_sectors = 128;
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 1);
  uh_area_free (&a);
}

/* The server wrote the origin and was killed: its own writes moved the
 * stamp, so nothing is compared and nothing invalidated. */
Test (origin_stamp, written_and_unclean_is_not_compared)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (sc_diff_origin_writing (a.d), 0);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_WRITTEN, "durable before a write");
  uh_area_close (&a);           /* no stamp at close: as a crash leaves it */
  mark_crashed (a.diff_path);
  uh_area_open (&a, 0);
  sc_notice = capture;
  struct sc_origin_stamp moved = file_stamp (1 << 20, 999, 999);
  cr_assert_eq (sc_diff_origin_check (a.d, &moved, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  cr_assert (strstr (said, "the server stopped uncleanly after writing"),
             "%s", said);
  sc_notice = NULL;
  uh_area_free (&a);
}

/* The server wrote the origin and stopped cleanly, but its stamp could
 * not be taken at the stop (the origin's flush or a sampled read
 * failed): nothing is compared, and the log says why, truly. */
Test (origin_stamp, written_then_a_clean_stop_without_a_stamp_says_so)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (sc_diff_origin_writing (a.d), 0);
  uh_area_reopen (&a, 0);       /* a clean close, no stamp */
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_WRITTEN);
  sc_notice = capture;
  struct sc_origin_stamp moved = file_stamp (1 << 20, 999, 999);
  cr_assert_eq (sc_diff_origin_check (a.d, &moved, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  cr_assert (strstr (said, "the disk's state was not recorded at the last "
                           "stop, after the server had written it (that "
                           "server ran with origin-check=off, or the disk's "
                           "flush or a read of it failed at its stop)"),
             "%s", said);
  cr_assert_null (strstr (said, "uncleanly"), "%s", said);
  sc_notice = NULL;
  uh_area_free (&a);
}

/* Killed before any write of the session: the stamp taken at open still
 * describes the origin, and is compared. */
Test (origin_stamp, unclean_without_a_write_is_compared)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  uh_area_close (&a);
  mark_crashed (a.diff_path);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0, "unchanged");
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  struct sc_origin_stamp moved = file_stamp (1 << 20, 111, 223);
  cr_assert_eq (sc_diff_origin_check (a.d, &moved, NULL, 0), 1);
  uh_area_free (&a);
}

Test (origin_stamp, accept_keeps_snapshots_and_records_the_new_stamp)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  struct sc_origin_stamp now = file_stamp (1 << 20, 444, 555);
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, SC_ORIGIN_ACCEPT), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_origin_check (a.d, &now, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_free (&a);
}

/* Superblock writes of the diff area fail: neither the state WRITTEN
 * before the server's first write nor the diff area's failure is
 * recorded, and the server writes the origin without copying.  At the
 * next start the origin differs from the stamp taken at open; that may
 * be the server's own writes, so accept keeps nothing. */
static int diff_fd = -1;
static int
fail_superblock_writes (const struct sc_io_req *req)
{
  return req->op == SC_IO_WRITE && req->fd == diff_fd &&
         req->off < SC_SB_AREA ? -EIO : 0;
}

Test (origin_stamp, accept_keeps_nothing_after_an_unclean_stop)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  diff_fd = sc_diff_fd (a.d);
  sc_io_fault_hook = fail_superblock_writes;
  cr_assert_lt (sc_diff_origin_writing (a.d), 0);
  /* ... the origin is written, nothing copied; the server stops while
   * the superblock still takes no write, so the close cannot record the
   * failure either (its retry fails). */
  uh_area_close (&a);
  sc_io_fault_hook = NULL;
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_UNWRITTEN);
  cr_assert_eq (sb.flags & SC_SB_FAILED, 0, "the failure was not recorded");
  uh_area_open (&a, 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  sc_notice = capture;
  struct sc_origin_stamp moved = file_stamp (1 << 20, 111, 333);
  cr_assert_eq (sc_diff_origin_check (a.d, &moved, NULL, SC_ORIGIN_ACCEPT),
                1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  cr_assert (strstr (said, "did not stop cleanly"), "%s", said);
  sc_notice = NULL;
  uh_area_free (&a);
}

Test (origin_stamp, a_stamp_that_could_not_be_taken_invalidates)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  cr_assert_eq (sc_diff_origin_check (a.d, NULL, "Input/output error", 0), 1);
  cr_assert_eq (state_of (a.d, "s1"), SC_INVALID_ORIGIN_CHANGED);
  uh_area_free (&a);
}

Test (origin_stamp, old_diff_areas_have_no_stamp_and_are_not_compared)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 65536, 7);
  cr_assert_eq (sc_diff_snapshot_create (a.d, "s1", NULL, NULL), 0);
  uh_area_close (&a);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.stamp_state, SC_STAMP_NONE);
  uh_area_open (&a, 0);
  struct sc_origin_stamp st = file_stamp (1 << 20, 1, 2);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), 0);
  cr_assert_eq (state_of (a.d, "s1"), SC_VALID);
  uh_area_free (&a);
}

Test (origin_stamp, read_only_opens_do_not_check)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  uh_area_reopen (&a, SC_DIFF_RDONLY);
  cr_assert_eq (sc_diff_origin_check (a.d, &st, NULL, 0), -EROFS);
  cr_assert_eq (sc_diff_origin_writing (a.d), 0);
  uh_area_free (&a);
}

Test (origin_stamp, an_unknown_stamp_state_is_refused)
{
  struct uh_area a;
  struct sc_origin_stamp st = file_stamp (1 << 20, 111, 222);
  area_with_stamp (&a, &st);
  uh_area_close (&a);
  struct sc_sb_disk sb;
  for (int copy = 0; copy < 2; copy++) {
    uh_sb_read (a.diff_path, copy, &sb);
    sb.stamp_state = 3;
    uh_sb_write (a.diff_path, copy, &sb);
  }
  char err[512] = "";
  struct sc_diff *d;
  cr_assert_eq (sc_diff_open (a.diff_path, 0, &a.id, 0, &d, err, sizeof err),
                -EINVAL);
  cr_assert (strstr (err, "unknown origin stamp"), "%s", err);
  uh_area_free (&a);
}

Test (origin_stamp, samples_are_inside_the_origin_first_and_last_included)
{
  uint64_t sizes[] = { 4096, 65536, 65536 + 512, 1ull << 40, 12345678 };
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint64_t size = sizes[k], off;
    uint32_t len;
    sc_origin_stamp_sample (size, 0, &off, &len);
    cr_assert_eq (off, 0);
    sc_origin_stamp_sample (size, 1, &off, &len);
    cr_assert_eq (off + len, size, "the last block of %lu", size);
    for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++) {
      sc_origin_stamp_sample (size, i, &off, &len);
      cr_assert (len > 0 && len <= SC_STAMP_SAMPLE_SIZE);
      cr_assert_leq (off + len, size);
      cr_assert_eq (off % SC_STAMP_SAMPLE_SIZE, 0);
    }
  }
}
