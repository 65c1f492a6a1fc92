/* Unit tests: the write-back log (engine/writeback-log.c): what its
 * parser accepts and refuses, and the open of a volume that writes the
 * queued writes a killed server left in it (copy first, in queueing
 * order), drops a log of another boot, and refuses a damaged one while
 * keeping it.  Which log an open writes after other sessions is in
 * unit-wblog-session.c. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "engine/volume.h"
#include "engine/volume-impl.h"
#include "tests/unit-wblog.h"

TestSuite (wblog, .init = wbt_setup, .fini = wbt_teardown);

static int
scan (const uint8_t *img, size_t len, const uint8_t key[SC_WB_LOG_KEY],
      struct sc_wb_log_entry *e, size_t *n, char *err)
{
  *n = 99;
  struct sc_wb_log_owner owner;
  int lost;
  return sc_wb_log_scan (img, len, key, wbt_boot_now, VOL, e, n, &owner,
                         &lost, err, 512);
}

Test (wblog, nothing_queued)
{
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n;
  char err[512];
  uint8_t junk[100];
  memset (junk, 0x5a, sizeof junk);
  cr_assert_eq (scan (junk, 0, wbt_key_a, e, &n, err), SC_WB_LOG_EMPTY);
  cr_assert_eq (n, 0);
  cr_assert_eq (scan (junk, sizeof junk, wbt_key_a, e, &n, err),
                SC_WB_LOG_EMPTY);

  char *p = uh_path ("log");
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 0, 1, 0, 4096, 1);
  sc_wb_log_retire (log, 0);
  size_t len;
  uint8_t *img = wbt_image (p, &len);
  cr_assert_eq (len, SC_WB_LOG_SIZE);
  cr_assert_eq (scan (img, len, wbt_key_a, e, &n, err), SC_WB_LOG_EMPTY);
  cr_assert_eq (n, 0);
  sc_wb_log_close (log, 1);
  cr_assert_neq (access (p, F_OK), 0, "the log is deleted");
  free (img);
  free (p);
}

Test (wblog, queued_writes_in_queueing_order)
{
  char *p = uh_path ("log");
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 3, 5, 8192, 512, 0x33);
  wbt_queue (log, 0, 2, 0, 4096, 0x11);
  wbt_queue (log, 7, 9, VOL - 4096, 4096, 0x77);
  wbt_queue (log, 9, 7, 65536, SC_WB_LOG_SLOT_SIZE, 0x99);
  sc_wb_log_retire (log, 7);
  sc_wb_log_close (log, 0);

  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n, len;
  char err[512] = "";
  uint8_t *img = wbt_image (p, &len);
  cr_assert_eq (scan (img, len, wbt_key_a, e, &n, err), SC_WB_LOG_QUEUED, "%s",
                err);
  cr_assert_eq (n, 3);
  const struct { uint64_t seq, offset; uint32_t count, slot; uint8_t b; }
    want[] = { { 2, 0, 4096, 0, 0x11 }, { 5, 8192, 512, 3, 0x33 },
               { 7, 65536, SC_WB_LOG_SLOT_SIZE, 9, 0x99 } };
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq (e[i].seq, want[i].seq);
    cr_assert_eq (e[i].offset, want[i].offset);
    cr_assert_eq (e[i].count, want[i].count);
    cr_assert_eq (e[i].slot, want[i].slot);
    for (uint32_t j = 0; j < e[i].count; j++)
      cr_assert_eq (e[i].data[j], want[i].b);
  }
  free (img);
  free (p);
}

/* A log of another boot (a power cut, a reboot) may hold stale slots: it
 * is dropped unjudged, however they look; another disk's too. */
Test (wblog, other_boot_or_disk)
{
  char *p = uh_path ("log");
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 0, 1, 0, 4096, 1);
  wbt_queue (log, 1, 2, VOL, 4096, 2);      /* would be damage */
  sc_wb_log_close (log, 0);
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n, len;
  char err[512] = "";
  uint8_t *img = wbt_image (p, &len);
  wbt_boot_now[2] = 2;
  cr_assert_eq (scan (img, len, wbt_key_a, e, &n, err), SC_WB_LOG_OTHER_BOOT);
  cr_assert_eq (n, 2);
  free (img);

  wbt_boot_now[2] = 1;
  log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 0, 1, 0, 4096, 1);
  sc_wb_log_close (log, 0);
  img = wbt_image (p, &len);
  cr_assert_eq (scan (img, len, wbt_key_b, e, &n, err), SC_WB_LOG_OTHER_DISK);
  cr_assert_eq (n, 1);
  free (img);
  free (p);
}

/* What a kill cannot leave is damage: the scan names the slot and says
 * what is wrong. */
static void
expect_damage (const uint8_t *img, size_t len, const char *what)
{
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n;
  char err[512] = "";
  cr_assert_eq (scan (img, len, wbt_key_a, e, &n, err), -EINVAL,
                "not refused: %s", what);
  cr_assert_not_null (strstr (err, what), "'%s' does not say '%s'", err,
                      what);
}

Test (wblog, damage_is_refused)
{
  char *p = uh_path ("log");
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 2, 1, 4096, 4096, 0x22);
  sc_wb_log_close (log, 0);
  size_t len;
  uint8_t *img = wbt_image (p, &len);
  uint8_t *data = img + SC_WB_LOG_DATA + 2 * SC_WB_LOG_SLOT_SIZE;

  data[4095] ^= 1;
  expect_damage (img, len, "slot 2 (a write of 4096 bytes at 4096) is "
                 "damaged: its data's checksum does not match");
  data[4095] ^= 1;
  img[1024 + 2 * 32 + 8] ^= 0x40;       /* its offset */
  expect_damage (img, len, "its header's checksum does not match");
  img[1024 + 2 * 32 + 8] ^= 0x40;
  expect_damage (img, SC_WB_LOG_DATA + 2 * SC_WB_LOG_SLOT_SIZE + 100,
                 "its data is past the end of the file");
  img[0] ^= 1;                          /* the header's magic */
  expect_damage (img, len, "its header is damaged, and 1 slots say they "
                 "hold queued writes");
  free (img);

  /* A header that does not check out with nothing queued: nothing to
   * lose. */
  log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  sc_wb_log_close (log, 0);
  img = wbt_image (p, &len);
  img[0] ^= 1;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n;
  char err[512] = "";
  cr_assert_eq (scan (img, len, wbt_key_a, e, &n, err), SC_WB_LOG_EMPTY);
  free (img);

  /* Fields that check out but make no sense. */
  log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 0, 1, VOL - 4096, 8192, 0);
  sc_wb_log_close (log, 0);
  img = wbt_image (p, &len);
  expect_damage (img, len, "it ends past the end of the disk");
  free (img);
  log = wbt_make_log (p, wbt_key_a, &wbt_some_owner);
  wbt_queue (log, 0, 4, 0, 4096, 0);
  wbt_queue (log, 1, 4, 8192, 4096, 0);
  sc_wb_log_close (log, 0);
  img = wbt_image (p, &len);
  expect_damage (img, len, "another slot has its sequence number");
  free (img);
  free (p);
}

/* ---- the open of a volume -------------------------------------------- */

Test (wblog, open_writes_queued_writes_copy_first)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  uh_vol_snap (&t, "s1");
  uint8_t *old = malloc (VOL);
  memcpy (old, t.live, VOL);
  char *p = wbt_where (&t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);

  wbt_killed_server_log (p, key, &owner);
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume after the replay");
  uh_vol_assert_reads (&t, uh_find (sc_volume_diff (t.v), "s1").id, old,
                       "s1 after the replay");
  cr_assert_neq (access (p, F_OK), 0, "the log is deleted once written");
  uh_vol_close (&t);

  /* Written once: a second open has nothing to write again. */
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume reopened");
  uh_vol_close (&t);
  free (p);
  free (old);
  uh_vol_free (&t);
}

Test (wblog, open_drops_a_log_of_another_boot)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  wbt_boot_now[2] = 2;                      /* the machine restarted */
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  cr_assert_neq (access (p, F_OK), 0, "the dropped log is deleted");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

Test (wblog, open_refuses_a_damaged_log_and_keeps_it)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  uh_flip_byte (p, SC_WB_LOG_DATA + 5 * SC_WB_LOG_SLOT_SIZE + 7);
  char err[512] = "";
  cr_assert_eq (wbt_open_fails (&t, err, sizeof err), -EINVAL);
  cr_assert_not_null (strstr (err, "slot 5 (a write of 8192 bytes at "
                              "65536) is damaged"), "%s", err);
  cr_assert_not_null (strstr (err, "it is kept: move it away"), "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the damaged log is kept");

  /* Moved away: the volume opens without its writes. */
  cr_assert_eq (unlink (p), 0);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The log is the disk's: a diff area made again for the same disk still
 * gets its queued writes (they are the disk's, acknowledged). */
Test (wblog, open_with_the_diff_area_made_again)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = wbt_where (&t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);
  cr_assert_eq (unlink (t.diff), 0);

  wbt_killed_server_log (p, key, &owner);
  uh_vol_open (&t);
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* A disk changed while no server ran (found by the open's check of its
 * stamp) has newer data than the queued writes: they are not written
 * over it. */
Test (wblog, open_drops_queued_writes_older_than_a_change_of_the_disk)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  memset (t.live + 65536, 0x5e, 65536);         /* written behind */
  uh_pwrite (t.origin, t.live + 65536, 65536, 65536);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  cr_assert_neq (access (p, F_OK), 0, "the dropped log is deleted");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* Review 21: a queued write the replay cannot write (a base of clones
 * needs its copy and the diff area is full: live, the queue would refuse
 * it and report it at the next flush) must not keep the queued writes
 * after it off the disk.  The open fails and keeps only the refused one. */
Test (wblog, a_refused_replay_does_not_lose_the_writes_after_it)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  const uint32_t cs = 65536;
  uh_vol_create (&t, 64 * (uint64_t) cs, cs, 7, 0);
  struct sc_diff *d = sc_volume_diff (t.v);
  uh_vol_snap (&t, "s1");
  uh_clone (d, "s1", "c1");                   /* s1: protected */
  cr_assert_eq (sc_diff_set_max (d, 20 * (uint64_t) cs, 0, NULL), 0);
  /* Fill the diff area with s1's copies: chunks 20.. until refused. */
  uint64_t k = 20;
  int r = 0;
  for (; k < 64 && (r = uh_vol_write (&t, k, 100 + k)) == 0; k++)
    ;
  cr_assert_eq (r, -ENOSPC, "the diff area never filled: %d", r);
  cr_assert (k > 21, "no copy fitted");
  uh_vol_snap (&t, "s2");
  char *p = wbt_where (&t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (&t);
  uh_vol_close (&t);

  /* W1 (seq 1): chunk 2, unchanged since s1: the base needs its copy.
   * W2 (seq 2): chunk 20, written after s1: only s2 needs a copy. */
  struct sc_wb_log *log = wbt_make_log (p, key, &owner);
  wbt_queue (log, 0, 1, 2 * (uint64_t) cs, 4096, 0xd1);
  wbt_queue (log, 1, 2, 20 * (uint64_t) cs, 4096, 0xd2);
  sc_wb_log_close (log, 0);

  char err[512] = "";
  r = wbt_open_fails (&t, err, sizeof err);
  cr_assert_eq (r, -ENOSPC, "open: %d %s", r, err);
  cr_assert_not_null (strstr (err, "1 of its 2 queued writes could not be "
                              "written"), "%s", err);
  uint8_t got[4096], want[4096];
  memset (want, 0xd2, sizeof want);
  uh_pread (t.origin, got, sizeof got, 20 * (uint64_t) cs);
  cr_assert (memcmp (got, want, sizeof got) == 0,
             "the queued write after the refused one is not on the disk");

  /* The log keeps the refused write alone. */
  size_t len, n;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  uint8_t *img = wbt_image (p, &len);
  struct sc_wb_log_owner kept;
  int lost;
  cr_assert_eq (sc_wb_log_scan (img, len, key, wbt_boot_now, 64 * (uint64_t) cs,
                                e, &n, &kept, &lost, err, sizeof err),
                SC_WB_LOG_QUEUED);
  cr_assert_eq (n, 1);
  cr_assert_eq (e[0].offset, 2 * (uint64_t) cs);
  cr_assert_eq (kept.session, owner.session,
                "the failed open did not keep the log's id");
  free (img);

  /* The failed open recorded no session of its own: once the diff area
   * has room (its limit lifted offline), the next open writes the refused
   * write. */
  struct sc_volume *off;
  cr_assert_eq (sc_volume_open_offline (t.diff, false, &off, err,
                                        sizeof err), 0, "%s", err);
  cr_assert_eq (sc_diff_set_max (sc_volume_diff (off), 0, 0, NULL), 0);
  sc_volume_close (off);
  uh_vol_open (&t);
  memset (want, 0xd1, sizeof want);
  uh_pread (t.origin, got, sizeof got, 2 * (uint64_t) cs);
  cr_assert (memcmp (got, want, sizeof got) == 0,
             "the refused write was not written by a later open");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The logs' directory must be this user's and writable by no one else: a
 * log another user could make or open there would be written to the
 * disk.  Here it is open to all: no log in it is trusted. */
Test (wblog, a_directory_others_may_write_is_not_trusted)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  char *dir = uh_path ("wblog");
  cr_assert_eq (chmod (dir, 0777), 0);

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  cr_assert_eq (access (p, F_OK), 0, "the log is left alone");
  uint8_t k2[SC_WB_LOG_KEY];
  char *p2, why[512] = "";
  cr_assert_eq (sc_vol_wb_log_where (t.v, t.origin, k2, &p2, why,
                                     sizeof why), -EPERM);
  cr_assert_not_null (strstr (why, "is not a directory of this user that "
                              "no one else may write"), "%s", why);
  uh_vol_close (&t);
  free (dir);
  free (p);
  uh_vol_free (&t);
}

/* Review 22: two disks whose keys would hash to one name (the name was
 * once 32 bits).  The open of one must leave the other's log alone, with
 * its queued writes, and run without write-back. */
Test (wblog, another_disks_log_at_the_name_is_left_alone)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = wbt_where (&t, key);
  uh_vol_close (&t);
  /* Another disk's log. */
  struct sc_wb_log *log = wbt_make_log (p, wbt_key_b, &wbt_some_owner);
  wbt_queue (log, 0, 1, 8192, 4096, 0xa5);
  sc_wb_log_close (log, 0);

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  cr_assert_eq (access (p, F_OK), 0, "the other disk's log is kept");
  size_t len, n;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  char err[512] = "";
  uint8_t *img = wbt_image (p, &len);
  struct sc_wb_log_owner o;
  int lost;
  cr_assert_eq (sc_wb_log_scan (img, len, wbt_key_b, wbt_boot_now, VOL, e, &n,
                                &o, &lost, err, sizeof err), SC_WB_LOG_QUEUED,
                "%s", err);
  cr_assert_eq (n, 1);
  free (img);
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* The boot id cannot be read at the open (a transient error: no file
 * descriptor left).  The log is this boot's: its queued writes must not
 * be dropped as another boot's (the open may fail, and keep it). */
Test (wblog, an_unreadable_boot_id_does_not_drop_the_log)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = wbt_killed_volume (&t, key);
  char err[512] = "";
  sc_boot_id_hook = wbt_boot_id_fails;
  wbt_open_fails (&t, err, sizeof err);
  sc_boot_id_hook = wbt_fixed_boot;
  cr_assert_not_null (strstr (err, "this boot's id"), "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");

  uh_vol_open (&t);                     /* the id known again */
  wbt_replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}
