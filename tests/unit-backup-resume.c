/* Unit tests: a backup's resume state (tools/backup-resume.c): what it
 * encodes decodes the same, damage and fields out of range are refused,
 * a state of another backup is told apart (and why), and the file is
 * written, read and removed. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"
#include "tools/backup-resume.h"

static struct sc_resume_state
incremental (void)
{
  struct sc_resume_state s = {
    .volume_uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    .snapshot_name = "nightly-3",
    .snapshot_id = 7,
    .snapshot_uuid = "11111111-2222-3333-4444-555555555555",
    .incremental = true,
    .base_uuid = "66666666-7777-8888-9999-aaaaaaaaaaaa",
    .prev_manifest = "/backups/nightly-2.manifest.json",
    .prev_fingerprint = 0xdeadbeef,
    .format = "raw",
    .volume_size = 1ull << 30,
    .ranges_count = 3, .ranges_bytes = 5 << 20, .ranges_crc = 0x12345678,
    .start_time = "2024-05-01T02:00:00Z",
    .watermark = 300 << 20,
    .bytes_read = 2 << 20, .bytes_written = 1 << 20, .bytes_zeroed = 1 << 20,
  };
  return s;
}

static void
reseal (unsigned char *buf)
{
  memset (buf + 12, 0, 4);
  uint32_t crc = crc32c (0, buf, SC_RESUME_BYTES);
  for (int i = 0; i < 4; i++)
    buf[12 + i] = (unsigned char) (crc >> (8 * i));
}

static int
decode (const unsigned char *buf, size_t len, char *err)
{
  struct sc_resume_state s;
  return sc_resume_decode (buf, len, &s, err, 256);
}

Test (resume, round_trip)
{
  struct sc_resume_state a = incremental (), b;
  unsigned char buf[SC_RESUME_BYTES], again[SC_RESUME_BYTES];
  char err[256];

  cr_assert_eq (sc_resume_encode (&a, buf), 0);
  cr_assert_eq (sc_resume_decode (buf, sizeof buf, &b, err, sizeof err), 0,
                "%s", err);
  cr_assert_eq (sc_resume_encode (&b, again), 0);
  cr_assert_eq (memcmp (buf, again, sizeof buf), 0);
  cr_assert_str_eq (b.prev_manifest, a.prev_manifest);
  cr_assert_eq (b.watermark, a.watermark);
  cr_assert_eq (b.bytes_zeroed, a.bytes_zeroed);
  cr_assert_not (sc_resume_mismatch (&a, &b, err, sizeof err));

  /* A full backup has no base. */
  a.incremental = false;
  cr_assert_eq (sc_resume_encode (&a, buf), 0);
  cr_assert_eq (sc_resume_decode (buf, sizeof buf, &b, err, sizeof err), 0);
  cr_assert_not (b.incremental);
  cr_assert_str_eq (b.prev_manifest, "");
}

Test (resume, every_flipped_byte_is_refused)
{
  struct sc_resume_state a = incremental ();
  unsigned char buf[SC_RESUME_BYTES];
  char err[256];

  cr_assert_eq (sc_resume_encode (&a, buf), 0);
  for (size_t i = 0; i < sizeof buf; i++) {
    buf[i] ^= 0x10;
    cr_assert_lt (decode (buf, sizeof buf, err), 0, "byte %zu", i);
    buf[i] ^= 0x10;
  }
  cr_assert_eq (decode (buf, sizeof buf, err), 0);
  cr_assert_lt (decode (buf, sizeof buf - 1, err), 0);
}

Test (resume, fields_out_of_range_are_refused)
{
  struct sc_resume_state a = incremental ();
  unsigned char buf[SC_RESUME_BYTES];
  char err[256];

#define REFUSED(what, change, word)                                     \
  do {                                                                  \
    a = incremental ();                                                 \
    cr_assert_eq (sc_resume_encode (&a, buf), 0);                       \
    change;                                                             \
    reseal (buf);                                                       \
    cr_assert_lt (decode (buf, sizeof buf, err), 0, what);              \
    cr_assert_not_null (strstr (err, word), "%s: %s", what, err);       \
  } while (0)

  REFUSED ("a newer version", buf[8] = 2, "version 2");
  REFUSED ("unknown flags", buf[16] |= 2, "flags");
  REFUSED ("an unknown format", buf[20] = 2, "format");
  REFUSED ("watermark past the end", buf[119] = 0x7f, "watermark");
  REFUSED ("more written than the ranges", buf[135] = 1, "more bytes");
  REFUSED ("a bad name", buf[176] = '.', "snapshot name");
  REFUSED ("garbage after a name's NUL", buf[176 + 100] = 'x',
           "snapshot name");
  REFUSED ("a relative PREV", buf[312] = 'b', "PREV");
  REFUSED ("a full backup with PREV", buf[16] = 0, "base");
#undef REFUSED
}

Test (resume, another_backup_is_told_apart)
{
  struct sc_resume_state a = incremental (), b;
  char why[512];

  b = a;
  b.watermark = 0;              /* progress does not count */
  b.bytes_read = 0;
  cr_assert_not (sc_resume_mismatch (&a, &b, why, sizeof why));

  b = a;
  snprintf (b.snapshot_uuid, sizeof b.snapshot_uuid,
            "11111111-2222-3333-4444-000000000000");
  cr_assert (sc_resume_mismatch (&a, &b, why, sizeof why));
  cr_assert_not_null (strstr (why, "nightly-3 is another snapshot now"),
                      "%s", why);

  b = a;
  snprintf (b.snapshot_name, sizeof b.snapshot_name, "other");
  cr_assert (sc_resume_mismatch (&a, &b, why, sizeof why));
  cr_assert_not_null (strstr (why, "not of other"), "%s", why);

  b = a;
  b.prev_fingerprint++;
  cr_assert (sc_resume_mismatch (&a, &b, why, sizeof why));
  cr_assert_not_null (strstr (why, "changed"), "%s", why);

  b = a;
  b.ranges_crc++;
  cr_assert (sc_resume_mismatch (&a, &b, why, sizeof why));
  cr_assert_not_null (strstr (why, "ranges"), "%s", why);

  b = a;
  snprintf (b.format, sizeof b.format, "qcow2");
  cr_assert (sc_resume_mismatch (&a, &b, why, sizeof why));
}

Test (resume, written_read_and_removed)
{
  char dir[] = "/tmp/unit-backup-resume.XXXXXX", path[128], err[512];
  struct sc_resume_state a = incremental (), b;

  cr_assert_not_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/T.resume", dir);
  cr_assert_eq (sc_resume_read (path, &b, err, sizeof err), -ENOENT);
  cr_assert_eq (sc_resume_write (path, &a, err, sizeof err), 0, "%s", err);
  cr_assert_eq (sc_resume_read (path, &b, err, sizeof err), 0, "%s", err);
  cr_assert_eq (b.watermark, a.watermark);
  a.watermark += 1 << 20;
  cr_assert_eq (sc_resume_write (path, &a, err, sizeof err), 0, "%s", err);
  cr_assert_eq (sc_resume_read (path, &b, err, sizeof err), 0, "%s", err);
  cr_assert_eq (b.watermark, a.watermark);
  cr_assert_eq (sc_resume_remove (path), 0);
  cr_assert_eq (sc_resume_remove (path), 0);    /* none: no error */
  cr_assert_eq (sc_resume_read (path, &b, err, sizeof err), -ENOENT);

  /* A file longer than a record is damaged, and said so. */
  FILE *f = fopen (path, "w");
  cr_assert_not_null (f);
  for (unsigned i = 0; i < SC_RESUME_BYTES + 1; i++)
    fputc (0, f);
  fclose (f);
  cr_assert_eq (sc_resume_read (path, &b, err, sizeof err), -EINVAL);
  cr_assert_not_null (strstr (err, "damaged"), "%s", err);
  unlink (path);
  rmdir (dir);
}
