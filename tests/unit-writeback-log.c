/* Unit tests: the write-back log (engine/writeback-log.c): what its
 * parser accepts and refuses, and the open of a volume that writes the
 * queued writes a killed server left in it (copy first, in queueing
 * order), drops a log of another boot, and refuses a damaged one while
 * keeping it. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "engine/origin-impl.h"
#include "engine/volume-impl.h"
#include "engine/writeback-log.h"
#include "tests/unit-helpers.h"

#define VOL (1u << 20)

static uint8_t boot_now[16] = { 0xb0, 0x07, 1 };
static uint8_t key_a[SC_WB_LOG_KEY] = { 0xaa, 1 },
  key_b[SC_WB_LOG_KEY] = { 0xbb, 2 };

static int
fixed_boot (uint8_t id[16])
{
  memcpy (id, boot_now, 16);
  return 0;
}

static void
setup (void)
{
  uh_setup ();
  boot_now[2] = 1;
  sc_boot_id_hook = fixed_boot;
  /* The volumes' logs in the test's directory, not in /dev/shm. */
  char *dir = uh_path ("wblog");
  cr_assert_eq (mkdir (dir, 0700), 0);
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", dir, 1), 0);
  free (dir);
}

static void
teardown (void)
{
  sc_boot_id_hook = NULL;
  uh_teardown ();
}

TestSuite (wblog, .init = setup, .fini = teardown);

/* Queue a write of `count` bytes of `byte` at `offset` in slot i. */
static void
queue (struct sc_wb_log *log, unsigned i, uint64_t seq, uint64_t offset,
       uint32_t count, uint8_t byte)
{
  uint8_t *d = sc_wb_log_data (log, i);
  memset (d, byte, count);
  sc_wb_log_publish (log, i, seq, offset, count, crc32c (0, d, count));
}

/* A log's owner, for the parser's tests. */
static const struct sc_wb_log_owner some_owner = {
  .session = 0x5e55, .diff_uuid = { 0xd1 },
};

static struct sc_wb_log *
make_log (const char *path, const uint8_t key[SC_WB_LOG_KEY],
          const struct sc_wb_log_owner *owner)
{
  struct sc_wb_log *log;
  char err[512] = "";
  int r = sc_wb_log_create (path, key, owner, &log, err, sizeof err);
  cr_assert_eq (r, 0, "sc_wb_log_create: %d %s", r, err);
  return log;
}

/* The file's image, as a restarted server finds it. */
static uint8_t *
image (const char *path, size_t *len)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0);
  uint8_t *img = malloc ((size_t) st.st_size);
  cr_assert_not_null (img);
  uh_pread (path, img, (size_t) st.st_size, 0);
  *len = (size_t) st.st_size;
  return img;
}

static int
scan (const uint8_t *img, size_t len, const uint8_t key[SC_WB_LOG_KEY],
      struct sc_wb_log_entry *e, size_t *n, char *err)
{
  *n = 99;
  struct sc_wb_log_owner owner;
  return sc_wb_log_scan (img, len, key, boot_now, VOL, e, n, &owner, err,
                         512);
}

Test (wblog, nothing_queued)
{
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n;
  char err[512];
  uint8_t junk[100];
  memset (junk, 0x5a, sizeof junk);
  cr_assert_eq (scan (junk, 0, key_a, e, &n, err), SC_WB_LOG_EMPTY);
  cr_assert_eq (n, 0);
  cr_assert_eq (scan (junk, sizeof junk, key_a, e, &n, err),
                SC_WB_LOG_EMPTY);

  char *p = uh_path ("log");
  struct sc_wb_log *log = make_log (p, key_a, &some_owner);
  queue (log, 0, 1, 0, 4096, 1);
  sc_wb_log_retire (log, 0);
  size_t len;
  uint8_t *img = image (p, &len);
  cr_assert_eq (len, SC_WB_LOG_SIZE);
  cr_assert_eq (scan (img, len, key_a, e, &n, err), SC_WB_LOG_EMPTY);
  cr_assert_eq (n, 0);
  sc_wb_log_close (log, 1);
  cr_assert_neq (access (p, F_OK), 0, "the log is deleted");
  free (img);
  free (p);
}

Test (wblog, queued_writes_in_queueing_order)
{
  char *p = uh_path ("log");
  struct sc_wb_log *log = make_log (p, key_a, &some_owner);
  queue (log, 3, 5, 8192, 512, 0x33);
  queue (log, 0, 2, 0, 4096, 0x11);
  queue (log, 7, 9, VOL - 4096, 4096, 0x77);
  queue (log, 9, 7, 65536, SC_WB_LOG_SLOT_SIZE, 0x99);
  sc_wb_log_retire (log, 7);
  sc_wb_log_close (log, 0);

  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n, len;
  char err[512] = "";
  uint8_t *img = image (p, &len);
  cr_assert_eq (scan (img, len, key_a, e, &n, err), SC_WB_LOG_QUEUED, "%s",
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
  struct sc_wb_log *log = make_log (p, key_a, &some_owner);
  queue (log, 0, 1, 0, 4096, 1);
  queue (log, 1, 2, VOL, 4096, 2);      /* would be damage */
  sc_wb_log_close (log, 0);
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n, len;
  char err[512] = "";
  uint8_t *img = image (p, &len);
  boot_now[2] = 2;
  cr_assert_eq (scan (img, len, key_a, e, &n, err), SC_WB_LOG_OTHER_BOOT);
  cr_assert_eq (n, 2);
  free (img);

  boot_now[2] = 1;
  log = make_log (p, key_a, &some_owner);
  queue (log, 0, 1, 0, 4096, 1);
  sc_wb_log_close (log, 0);
  img = image (p, &len);
  cr_assert_eq (scan (img, len, key_b, e, &n, err), SC_WB_LOG_OTHER_DISK);
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
  cr_assert_eq (scan (img, len, key_a, e, &n, err), -EINVAL,
                "not refused: %s", what);
  cr_assert_not_null (strstr (err, what), "'%s' does not say '%s'", err,
                      what);
}

Test (wblog, damage_is_refused)
{
  char *p = uh_path ("log");
  struct sc_wb_log *log = make_log (p, key_a, &some_owner);
  queue (log, 2, 1, 4096, 4096, 0x22);
  sc_wb_log_close (log, 0);
  size_t len;
  uint8_t *img = image (p, &len);
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
  log = make_log (p, key_a, &some_owner);
  sc_wb_log_close (log, 0);
  img = image (p, &len);
  img[0] ^= 1;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n;
  char err[512] = "";
  cr_assert_eq (scan (img, len, key_a, e, &n, err), SC_WB_LOG_EMPTY);
  free (img);

  /* Fields that check out but make no sense. */
  log = make_log (p, key_a, &some_owner);
  queue (log, 0, 1, VOL - 4096, 8192, 0);
  sc_wb_log_close (log, 0);
  img = image (p, &len);
  expect_damage (img, len, "it ends past the end of the disk");
  free (img);
  log = make_log (p, key_a, &some_owner);
  queue (log, 0, 4, 0, 4096, 0);
  queue (log, 1, 4, 8192, 4096, 0);
  sc_wb_log_close (log, 0);
  img = image (p, &len);
  expect_damage (img, len, "another slot has its sequence number");
  free (img);
  free (p);
}

/* ---- the open of a volume -------------------------------------------- */

/* The disk's log: its key and path, asked of the open volume. */
static char *
where (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY])
{
  char *p, why[512] = "";
  cr_assert_eq (sc_vol_wb_log_where (t->v, t->origin, key, &p, why,
                                     sizeof why), 0, "%s", why);
  return p;
}

/* The open volume's session (in the diff area): what its log holds. */
static struct sc_wb_log_owner
owner_of (struct uh_vol *t)
{
  struct sc_wb_log_owner o;
  o.session = sc_diff_session_id (sc_volume_diff (t->v), o.diff_uuid);
  cr_assert_neq (o.session, 0, "the open recorded no session");
  return o;
}

/* A killed server's log (of `owner`'s session): two writes over the same
 * bytes, the later one queued in the lower slot (replay goes by seq), and
 * one retired. */
static void
killed_server_log (const char *p, const uint8_t key[SC_WB_LOG_KEY],
                   const struct sc_wb_log_owner *owner)
{
  struct sc_wb_log *log = make_log (p, key, owner);
  queue (log, 0, 8, 65536 + 100, 3000, 0xb2);     /* the later */
  queue (log, 5, 6, 65536, 8192, 0xb1);
  queue (log, 1, 3, 4 * 65536, 4096, 0xee);       /* on the origin */
  sc_wb_log_retire (log, 1);
  sc_wb_log_close (log, 0);
}

/* A volume with snapshot s1, closed as a killed server would leave it,
 * with killed_server_log's log: its path (key in key). */
static char *
killed_volume (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY])
{
  uh_vol_create (t, VOL, 65536, 7, 0);
  uh_vol_snap (t, "s1");
  char *p = where (t, key);
  struct sc_wb_log_owner owner = owner_of (t);
  uh_vol_close (t);
  killed_server_log (p, key, &owner);
  return p;
}

/* The live image once killed_server_log's queued writes are written. */
static void
replayed (struct uh_vol *t)
{
  memset (t->live + 65536, 0xb1, 8192);
  memset (t->live + 65536 + 100, 0xb2, 3000);
}

/* The open of the volume fails: its error, with err filled. */
static int
open_fails (struct uh_vol *t, char *err, size_t errlen)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff,
    .chunk_size = t->chunk_size,
  };
  struct sc_volume *v = NULL;
  int r = sc_volume_open (&cfg, &v, err, errlen);
  if (r == 0)
    sc_volume_close (v);
  cr_assert_lt (r, 0, "the open succeeded");
  return r;
}

Test (wblog, open_writes_queued_writes_copy_first)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  uh_vol_snap (&t, "s1");
  uint8_t *old = malloc (VOL);
  memcpy (old, t.live, VOL);
  char *p = where (&t, key);
  struct sc_wb_log_owner owner = owner_of (&t);
  uh_vol_close (&t);

  killed_server_log (p, key, &owner);
  uh_vol_open (&t);
  replayed (&t);
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
  char *p = killed_volume (&t, key);
  boot_now[2] = 2;                      /* the machine restarted */
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
  char *p = killed_volume (&t, key);
  uh_flip_byte (p, SC_WB_LOG_DATA + 5 * SC_WB_LOG_SLOT_SIZE + 7);
  char err[512] = "";
  cr_assert_eq (open_fails (&t, err, sizeof err), -EINVAL);
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
  char *p = where (&t, key);
  struct sc_wb_log_owner owner = owner_of (&t);
  uh_vol_close (&t);
  cr_assert_eq (unlink (t.diff), 0);

  killed_server_log (p, key, &owner);
  uh_vol_open (&t);
  replayed (&t);
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
  char *p = killed_volume (&t, key);
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
  char *p = where (&t, key);
  struct sc_wb_log_owner owner = owner_of (&t);
  uh_vol_close (&t);

  /* W1 (seq 1): chunk 2, unchanged since s1: the base needs its copy.
   * W2 (seq 2): chunk 20, written after s1: only s2 needs a copy. */
  struct sc_wb_log *log = make_log (p, key, &owner);
  queue (log, 0, 1, 2 * (uint64_t) cs, 4096, 0xd1);
  queue (log, 1, 2, 20 * (uint64_t) cs, 4096, 0xd2);
  sc_wb_log_close (log, 0);

  char err[512] = "";
  r = open_fails (&t, err, sizeof err);
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
  uint8_t *img = image (p, &len);
  struct sc_wb_log_owner kept;
  cr_assert_eq (sc_wb_log_scan (img, len, key, boot_now, 64 * (uint64_t) cs,
                                e, &n, &kept, err, sizeof err),
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
  char *p = killed_volume (&t, key);
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
  char *p = where (&t, key);
  uh_vol_close (&t);
  struct sc_wb_log *log = make_log (p, key_b, &some_owner); /* another disk's */
  queue (log, 0, 1, 8192, 4096, 0xa5);
  sc_wb_log_close (log, 0);

  uh_vol_open (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  cr_assert_eq (access (p, F_OK), 0, "the other disk's log is kept");
  size_t len, n;
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  char err[512] = "";
  uint8_t *img = image (p, &len);
  struct sc_wb_log_owner o;
  cr_assert_eq (sc_wb_log_scan (img, len, key_b, boot_now, VOL, e, &n,
                                &o, err, sizeof err), SC_WB_LOG_QUEUED,
                "%s", err);
  cr_assert_eq (n, 1);
  free (img);
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

static int
boot_id_fails (uint8_t id[16])
{
  memset (id, 0, 16);
  return -EMFILE;
}

/* The boot id cannot be read at the open (a transient error: no file
 * descriptor left).  The log is this boot's: its queued writes must not
 * be dropped as another boot's (the open may fail, and keep it). */
Test (wblog, an_unreadable_boot_id_does_not_drop_the_log)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = killed_volume (&t, key);
  char err[512] = "";
  sc_boot_id_hook = boot_id_fails;
  open_fails (&t, err, sizeof err);
  sc_boot_id_hook = fixed_boot;
  cr_assert_not_null (strstr (err, "this boot's id"), "%s", err);
  cr_assert_eq (access (p, F_OK), 0, "the log is kept");

  uh_vol_open (&t);                     /* the id known again */
  replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  uh_vol_close (&t);
  free (p);
  uh_vol_free (&t);
}

/* ---- review 24 -------------------------------------------------------- */

/* Open the volume with origin-check=off (no stamp of the origin). */
static void
open_check_off (struct uh_vol *t)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff,
    .chunk_size = t->chunk_size, .origin_check_off = true,
  };
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &t->v, err, sizeof err), 0, "%s",
                err);
}

/* A session that does not find the disk's log (its directory is
 * another), with origin-check=off or not: it writes chunk 1 (the bytes
 * killed_server_log's queued writes cover), flushes and stops cleanly. */
static void
unfound_session (struct uh_vol *t, bool check_off)
{
  char *other = uh_path ("other-wblog");
  cr_assert (mkdir (other, 0700) == 0 || errno == EEXIST);
  char *dir = strdup (getenv ("SHADOWCOPY_WBLOG_DIR"));
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", other, 1), 0);
  if (check_off)
    open_check_off (t);
  else
    uh_vol_open (t);
  cr_assert_eq (uh_vol_write (t, 1, 0x77), 0);
  cr_assert_eq (sc_volume_flush (t->v), 0);
  uh_vol_close (t);
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", dir, 1), 0);
  free (dir);
  free (other);
}

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
Test (wblog, a_stale_log_the_open_cannot_delete_is_not_dated_again)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = killed_volume (&t, key);

  /* A session that does not find the log (another directory) writes
   * the bytes the log's queued writes cover, and stops cleanly. */
  unfound_session (&t, false);

  /* The next open judges the log stale; deleting it fails. */
  char err[512] = "";
  unlink_fails = p;
  open_fails (&t, err, sizeof err);
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
Test (wblog, an_unreadable_boot_id_does_not_make_a_stale_log_fresh)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = killed_volume (&t, key);

  unfound_session (&t, false);

  char err[512] = "";
  sc_boot_id_hook = boot_id_fails;
  open_fails (&t, err, sizeof err);
  sc_boot_id_hook = fixed_boot;

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
Test (wblog, a_session_without_an_origin_check_makes_an_unfound_log_stale)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  char *p = killed_volume (&t, key);

  unfound_session (&t, true);

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
Test (wblog, a_clock_set_back_does_not_drop_the_queued_writes)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = where (&t, key);
  uh_vol_close (&t);                    /* stamped now */

  /* The killed server's session, with origin-check=off: it takes no
   * stamp of its own. */
  clock_back_ns = 3600 * UINT64_C (1000000000);
  open_check_off (&t);
  struct sc_wb_log_owner owner = owner_of (&t);
  uh_vol_close (&t);
  killed_server_log (p, key, &owner);
  clock_back_ns = 0;                    /* the clock corrected */

  uh_vol_open (&t);
  replayed (&t);
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
  uh_pread (p, h, sizeof h, 0);
  memcpy (h + 8, &one, 4);
  memset (h + 72, 0, 8);                /* made_ns, long ago */
  uint32_t crc = crc32c (0, h, 80);
  memcpy (h + 80, &crc, 4);
  uh_pwrite (p, h, sizeof h, 0);
}

/* A log a server of version 1 left (upgraded while it was killed): its
 * writes are written if no session recorded an id since, and dropped if
 * one did (a session that did not find it). */
Test (wblog, a_version_1_log_is_written_unless_a_later_session_ran)
{
  struct uh_vol t;
  uint8_t key[SC_WB_LOG_KEY];
  uh_vol_create (&t, VOL, 65536, 7, 0);
  char *p = where (&t, key);
  uh_vol_close (&t);
  cr_assert_eq (unlink (t.diff), 0);    /* as version 1 left it: no id */
  killed_server_log (p, key, &some_owner);
  make_version_1 (p);
  uh_vol_open (&t);
  replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, written");
  uh_vol_close (&t);

  memset (t.live + 65536, 0x66, 65536);         /* newer data */
  uh_vol_open (&t);
  cr_assert_eq (sc_volume_write (t.v, t.live + 65536, 65536, 65536, 0), 0);
  cr_assert_eq (sc_volume_flush (t.v), 0);
  uh_vol_close (&t);
  killed_server_log (p, key, &some_owner);
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

/* The session id an open's superblock write would record (0 if the
 * request is not a whole superblock copy). */
static uint64_t
sb_write_session (const struct sc_io_req *req)
{
  if (req->op != SC_IO_WRITE || req->len != SC_SB_SIZE ||
      (req->off != 0 && req->off != SC_SB_SIZE) ||
      memcmp (req->buf, SC_SB_MAGIC, 8) != 0)
    return 0;
  uint64_t id;
  memcpy (&id, (const uint8_t *) req->buf +
          offsetof (struct sc_sb_disk, session_id), sizeof id);
  return id;
}

/* Fails (once, EIO) the superblock write that records a new session id:
 * a transient error of the diff area's disk. */
static uint64_t sb_old_session;
static int sb_session_failures;
static int
fail_session_store (const struct sc_io_req *req)
{
  uint64_t id = sb_write_session (req);
  if (id && id != sb_old_session && sb_session_failures == 0) {
    sb_session_failures++;
    return -EIO;
  }
  return 0;
}

/* A transient error on the superblock write that records the open's
 * session id fails the open (right: nothing was written to the disk
 * yet).  But sc_diff_new_session also fails the whole diff area
 * (diff_fail), which invalidates every snapshot, durably, although no
 * write needed a copy and the disk was not touched.  The superblock
 * store of the origin's stamp, made by the same open just before, fails
 * the open the same way and keeps the snapshots. */
Test (wblog, a_failed_session_store_at_open_keeps_the_snapshots)
{
  struct uh_vol t;
  uh_vol_create (&t, VOL, 65536, 7, 0);
  uh_vol_snap (&t, "s1");
  sb_old_session = owner_of (&t).session;
  uh_vol_close (&t);

  char err[512] = "";
  sc_io_fault_hook = fail_session_store;
  int r = open_fails (&t, err, sizeof err);
  sc_io_fault_hook = NULL;
  cr_assert_eq (sb_session_failures, 1, "the session's store was not made");
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
 * log: its acknowledged writes are written, not dropped. */
Test (wblog, a_log_made_through_another_diff_area_of_the_disk_is_written)
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
  char *p = where (&t, key);
  struct sc_wb_log_owner owner = owner_of (&t);
  uh_vol_close (&t);
  killed_server_log (p, key, &owner);

  t.diff = diff2;
  uh_vol_open (&t);
  replayed (&t);
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, through diff 2");
  cr_assert_neq (access (p, F_OK), 0, "the written log is deleted");
  uh_vol_close (&t);
  free (diff1);
  free (p);
  uh_vol_free (&t);
}
