/* Unit tests: what the tests of the write-back log share
 * (unit-wblog.h). */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/superblock.h"
#include "engine/volume.h"
#include "engine/volume-impl.h"
#include "tests/unit-wblog.h"

/* The boot the tests run in (wbt_fixed_boot). */
uint8_t wbt_boot_now[16] = { 0xb0, 0x07, 1 };
uint8_t wbt_key_a[SC_WB_LOG_KEY] = { 0xaa, 1 },
  wbt_key_b[SC_WB_LOG_KEY] = { 0xbb, 2 };

int
wbt_fixed_boot (uint8_t id[16])
{
  memcpy (id, wbt_boot_now, 16);
  return 0;
}

void
wbt_setup (void)
{
  uh_setup ();
  wbt_boot_now[2] = 1;
  sc_boot_id_hook = wbt_fixed_boot;
  /* The volumes' logs in the test's directory, not in /dev/shm. */
  char *dir = uh_path ("wblog");
  cr_assert_eq (mkdir (dir, 0700), 0);
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", dir, 1), 0);
  free (dir);
}

void
wbt_teardown (void)
{
  sc_boot_id_hook = NULL;
  uh_teardown ();
}

int
wbt_boot_id_fails (uint8_t id[16])
{
  memset (id, 0, 16);
  return -EMFILE;
}

/* Queue a write of `count` bytes of `byte` at `offset` in slot i. */
void
wbt_queue (struct sc_wb_log *log, unsigned i, uint64_t seq, uint64_t offset,
       uint32_t count, uint8_t byte)
{
  uint8_t *d = sc_wb_log_data (log, i);
  memset (d, byte, count);
  sc_wb_log_publish (log, i, seq, offset, count, crc32c (0, d, count));
}

/* A log's owner, for the parser's tests. */
const struct sc_wb_log_owner wbt_some_owner = {
  .session = 0x5e55, .diff_uuid = { 0xd1 },
};

struct sc_wb_log *
wbt_make_log (const char *path, const uint8_t key[SC_WB_LOG_KEY],
          const struct sc_wb_log_owner *owner)
{
  struct sc_wb_log *log;
  char err[512] = "";
  int r = sc_wb_log_create (path, key, owner, 0, &log, err, sizeof err);
  cr_assert_eq (r, 0, "sc_wb_log_create: %d %s", r, err);
  return log;
}

/* The file's image, as a restarted server finds it. */
uint8_t *
wbt_image (const char *path, size_t *len)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0);
  uint8_t *img = malloc ((size_t) st.st_size);
  cr_assert_not_null (img);
  uh_pread (path, img, (size_t) st.st_size, 0);
  *len = (size_t) st.st_size;
  return img;
}

/* The disk's log: its key and path, asked of the open volume. */
char *
wbt_where (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY])
{
  char *p, why[512] = "";
  cr_assert_eq (sc_vol_wb_log_where (t->v, t->origin, key, &p, why,
                                     sizeof why), 0, "%s", why);
  return p;
}

/* The open volume's session (in the diff area): what its log holds. */
struct sc_wb_log_owner
wbt_owner_of (struct uh_vol *t)
{
  struct sc_wb_log_owner o;
  o.session = sc_diff_session_id (sc_volume_diff (t->v), o.diff_uuid);
  cr_assert_neq (o.session, 0, "the open recorded no session");
  char *abs = realpath (t->diff, NULL);
  cr_assert_not_null (abs);
  sc_wb_log_owner_path (&o, abs);
  free (abs);
  return o;
}

/* A killed server's log (of `owner`'s session): two writes over the same
 * bytes, the later one queued in the lower slot (replay goes by seq), and
 * one retired. */
void
wbt_killed_server_log (const char *p, const uint8_t key[SC_WB_LOG_KEY],
                   const struct sc_wb_log_owner *owner)
{
  struct sc_wb_log *log = wbt_make_log (p, key, owner);
  wbt_queue (log, 0, 8, 65536 + 100, 3000, 0xb2);     /* the later */
  wbt_queue (log, 5, 6, 65536, 8192, 0xb1);
  wbt_queue (log, 1, 3, 4 * 65536, 4096, 0xee);       /* on the origin */
  sc_wb_log_retire (log, 1);
  sc_wb_log_close (log, 0);
}

/* A volume with snapshot s1, closed as a killed server would leave it,
 * with wbt_killed_server_log's log: its path (key in key). */
char *
wbt_killed_volume (struct uh_vol *t, uint8_t key[SC_WB_LOG_KEY])
{
  uh_vol_create (t, VOL, 65536, 7, 0);
  uh_vol_snap (t, "s1");
  char *p = wbt_where (t, key);
  struct sc_wb_log_owner owner = wbt_owner_of (t);
  wbt_old_session = owner.session;
  uh_vol_close (t);
  wbt_killed_server_log (p, key, &owner);
  return p;
}

uint64_t wbt_old_session;
int wbt_session_failures;

/* The session id a superblock write would record (0 if the request is
 * not a whole superblock copy). */
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

int
wbt_fail_session_store (const struct sc_io_req *req)
{
  uint64_t id = sb_write_session (req);
  if (id && id != wbt_old_session && wbt_session_failures == 0) {
    wbt_session_failures++;
    return -EIO;
  }
  return 0;
}

void
wbt_disk_written_behind (struct uh_vol *t)
{
  uint8_t newer[8192];
  memset (newer, 0x5a, sizeof newer);
  uh_pwrite (t->origin, newer, sizeof newer, 65536);
  memcpy (t->live + 65536, newer, sizeof newer);
  struct timespec ts[2] = { { 0, UTIME_NOW }, { 0, 0 } };
  struct stat st;
  cr_assert_eq (stat (t->origin, &st), 0);
  ts[1].tv_sec = st.st_mtim.tv_sec + 60;    /* (whatever the clock's
                                               granularity) */
  cr_assert_eq (utimensat (AT_FDCWD, t->origin, ts, 0), 0);
}

/* The live image once wbt_killed_server_log's queued writes are written. */
void
wbt_replayed (struct uh_vol *t)
{
  memset (t->live + 65536, 0xb1, 8192);
  memset (t->live + 65536 + 100, 0xb2, 3000);
}

/* The open of the volume fails: its error, with err filled. */
int
wbt_open_fails (struct uh_vol *t, char *err, size_t errlen)
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

/* Open the volume with write-back on or off, origin-check=off or not. */
void
wbt_open_with (struct uh_vol *t, bool write_back, bool check_off)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff,
    .chunk_size = t->chunk_size, .write_back = write_back,
    .origin_check_off = check_off,
  };
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &t->v, err, sizeof err), 0, "%s",
                err);
}

/* Open the volume with origin-check=off (no stamp of the origin). */
void
wbt_open_check_off (struct uh_vol *t)
{
  wbt_open_with (t, false, true);
}

/* A session that does not find the disk's log (its directory is
 * another), with origin-check=off or not: it writes chunk 1 (the bytes
 * killed_server_log's queued writes cover), flushes and stops cleanly. */
void
wbt_unfound_session (struct uh_vol *t, bool check_off)
{
  char *other = uh_path ("other-wblog");
  cr_assert (mkdir (other, 0700) == 0 || errno == EEXIST);
  char *dir = strdup (getenv ("SHADOWCOPY_WBLOG_DIR"));
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", other, 1), 0);
  if (check_off)
    wbt_open_check_off (t);
  else
    uh_vol_open (t);
  cr_assert_eq (uh_vol_write (t, 1, 0x77), 0);
  cr_assert_eq (sc_volume_flush (t->v), 0);
  uh_vol_close (t);
  cr_assert_eq (setenv ("SHADOWCOPY_WBLOG_DIR", dir, 1), 0);
  free (dir);
  free (other);
}
