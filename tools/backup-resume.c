/* shadowcopy: a backup's resume state (backup-resume.h).
 *
 * Notes on the design
 *
 * One fixed record, not JSON like the manifest: it is the program's own
 * bookkeeping, rewritten every few hundred MiB, and a fixed layout with a
 * CRC is the shortest strict parser.  Strings are NUL-padded in fixed
 * fields and the padding must be zero, so a record has one encoding: the
 * fuzzer checks that what decodes encodes back to the same bytes.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "cow/io.h"
#include "tools/backup-resume.h"
#include "tools/durable.h"

static const char magic[8] = { 'S', 'C', 'R', 'E', 'S', 'U', 'M', 'E' };

enum {
  O_MAGIC = 0, O_VERSION = 8, O_CRC = 12, O_FLAGS = 16, O_FORMAT = 20,
  O_VOLUME = 24, O_SNAP_UUID = 40, O_BASE_UUID = 56, O_SNAP_ID = 72,
  O_SIZE = 80, O_RANGES_COUNT = 88, O_RANGES_BYTES = 96, O_RANGES_CRC = 104,
  O_PREV_FP = 108, O_WATERMARK = 112, O_READ = 120, O_WRITTEN = 128,
  O_ZEROED = 136, O_START = 144, O_NAME = 176, O_PREV = 312,
  O_END = O_PREV + SC_RESUME_PATH_MAX,
};
_Static_assert (O_END == SC_RESUME_BYTES, "the record's size");
#define START_LEN 32
#define NAME_LEN (O_PREV - O_NAME)
_Static_assert (NAME_LEN > SC_NAME_MAX, "a snapshot name fits");

#define FLAG_INCREMENTAL 1u

static const char *const formats[] = { "raw", "qcow2" };

static void
put32 (unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static void
put64 (unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t
get32 (const unsigned char *p)
{
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t
get64 (const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

uint32_t
sc_resume_ranges_crc (const struct sc_backup_range *ranges, size_t n)
{
  uint32_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char b[16];
    put64 (b, ranges[i].offset);
    put64 (b + 8, ranges[i].length);
    crc = crc32c (crc, b, sizeof b);
  }
  return crc;
}

static int
put_string (unsigned char *p, size_t field, const char *s)
{
  size_t n = strlen (s);
  if (n >= field)
    return -EINVAL;
  memcpy (p, s, n);             /* the rest is zero already */
  return 0;
}

static int
put_uuid (unsigned char *p, const char *s)
{
  return sc_uuid_parse (s, p) < 0 ? -EINVAL : 0;
}

int
sc_resume_encode (const struct sc_resume_state *s,
                  unsigned char buf[SC_RESUME_BYTES])
{
  uint32_t format = 0;

  memset (buf, 0, SC_RESUME_BYTES);
  while (format < 2 && strcmp (s->format, formats[format]) != 0)
    format++;
  if (format == 2)
    return -EINVAL;
  memcpy (buf + O_MAGIC, magic, sizeof magic);
  put32 (buf + O_VERSION, SC_RESUME_VERSION);
  put32 (buf + O_FLAGS, s->incremental ? FLAG_INCREMENTAL : 0);
  put32 (buf + O_FORMAT, format);
  if (put_uuid (buf + O_VOLUME, s->volume_uuid) < 0 ||
      put_uuid (buf + O_SNAP_UUID, s->snapshot_uuid) < 0 ||
      (s->incremental && put_uuid (buf + O_BASE_UUID, s->base_uuid) < 0))
    return -EINVAL;
  put64 (buf + O_SNAP_ID, s->snapshot_id);
  put64 (buf + O_SIZE, s->volume_size);
  put64 (buf + O_RANGES_COUNT, s->ranges_count);
  put64 (buf + O_RANGES_BYTES, s->ranges_bytes);
  put32 (buf + O_RANGES_CRC, s->ranges_crc);
  put32 (buf + O_PREV_FP, s->incremental ? s->prev_fingerprint : 0);
  put64 (buf + O_WATERMARK, s->watermark);
  put64 (buf + O_READ, s->bytes_read);
  put64 (buf + O_WRITTEN, s->bytes_written);
  put64 (buf + O_ZEROED, s->bytes_zeroed);
  if (put_string (buf + O_START, START_LEN, s->start_time) < 0 ||
      put_string (buf + O_NAME, NAME_LEN, s->snapshot_name) < 0 ||
      (s->incremental &&
       put_string (buf + O_PREV, SC_RESUME_PATH_MAX, s->prev_manifest) < 0))
    return -EINVAL;
  put32 (buf + O_CRC, crc32c (0, buf, SC_RESUME_BYTES));
  return 0;
}

/* A NUL-padded string field: one NUL at least, nothing but NULs after
 * the first.  0, or -EINVAL. */
static int
get_string (const unsigned char *p, size_t field, char *out)
{
  const unsigned char *nul = memchr (p, 0, field);
  if (!nul)
    return -EINVAL;
  for (const unsigned char *q = nul; q < p + field; q++)
    if (*q)
      return -EINVAL;
  memcpy (out, p, (size_t) (nul - p) + 1);
  return 0;
}

/* Printable ASCII, and not empty. */
static bool
printable (const char *s)
{
  if (!*s)
    return false;
  for (; *s; s++)
    if (*s < 0x20 || *s > 0x7e)
      return false;
  return true;
}

static int __attribute__ ((format (printf, 3, 4)))
bad (char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  if (err && errlen)
    vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
  return -EINVAL;
}

int
sc_resume_decode (const void *data, size_t len, struct sc_resume_state *s,
                  char *err, size_t errlen)
{
  const unsigned char *p = data;
  unsigned char copy[SC_RESUME_BYTES];
  uint32_t flags, format, crc;

  memset (s, 0, sizeof *s);
  if (len != SC_RESUME_BYTES)
    return bad (err, errlen, "%zu bytes, not %u", len, SC_RESUME_BYTES);
  if (memcmp (p + O_MAGIC, magic, sizeof magic) != 0)
    return bad (err, errlen, "not a shadowcopy resume state (bad magic)");
  if (get32 (p + O_VERSION) != SC_RESUME_VERSION)
    return bad (err, errlen, "version %" PRIu32 " (this shadowcopy reads %d)",
                get32 (p + O_VERSION), SC_RESUME_VERSION);
  memcpy (copy, p, sizeof copy);
  put32 (copy + O_CRC, 0);
  crc = crc32c (0, copy, sizeof copy);
  if (crc != get32 (p + O_CRC))
    return bad (err, errlen, "CRC mismatch (damaged)");

  flags = get32 (p + O_FLAGS);
  format = get32 (p + O_FORMAT);
  if (flags & ~FLAG_INCREMENTAL)
    return bad (err, errlen, "unknown flags 0x%" PRIx32, flags);
  if (format >= 2)
    return bad (err, errlen, "unknown image format %" PRIu32, format);
  s->incremental = flags & FLAG_INCREMENTAL;
  snprintf (s->format, sizeof s->format, "%s", formats[format]);
  sc_uuid_format (p + O_VOLUME, s->volume_uuid);
  sc_uuid_format (p + O_SNAP_UUID, s->snapshot_uuid);
  if (s->incremental)
    sc_uuid_format (p + O_BASE_UUID, s->base_uuid);
  else if (!sc_io_all_zero (p + O_BASE_UUID, 16) || get32 (p + O_PREV_FP) != 0)
    return bad (err, errlen, "a full backup with a base");
  s->snapshot_id = get64 (p + O_SNAP_ID);
  s->volume_size = get64 (p + O_SIZE);
  s->ranges_count = get64 (p + O_RANGES_COUNT);
  s->ranges_bytes = get64 (p + O_RANGES_BYTES);
  s->ranges_crc = get32 (p + O_RANGES_CRC);
  s->prev_fingerprint = get32 (p + O_PREV_FP);
  s->watermark = get64 (p + O_WATERMARK);
  s->bytes_read = get64 (p + O_READ);
  s->bytes_written = get64 (p + O_WRITTEN);
  s->bytes_zeroed = get64 (p + O_ZEROED);
  if (get_string (p + O_START, START_LEN, s->start_time) < 0 ||
      !printable (s->start_time))
    return bad (err, errlen, "bad start time");
  if (get_string (p + O_NAME, NAME_LEN, s->snapshot_name) < 0 ||
      !sc_snapshot_name_valid (s->snapshot_name))
    return bad (err, errlen, "bad snapshot name");
  if (get_string (p + O_PREV, SC_RESUME_PATH_MAX, s->prev_manifest) < 0)
    return bad (err, errlen, "bad PREV manifest path");
  if (s->incremental != (s->prev_manifest[0] != '\0') ||
      (s->incremental && s->prev_manifest[0] != '/'))
    return bad (err, errlen, "an incremental names PREV's manifest by its "
                "absolute path, a full backup none");

  /* The ranges lie in the volume; the work counted is theirs. */
  if (s->ranges_bytes > s->volume_size || s->ranges_count > s->ranges_bytes
      || (s->ranges_bytes && !s->ranges_count))
    return bad (err, errlen, "ranges of %" PRIu64 " bytes in %" PRIu64
                " pieces do not fit a volume of %" PRIu64 " bytes",
                s->ranges_bytes, s->ranges_count, s->volume_size);
  if (s->watermark > s->volume_size)
    return bad (err, errlen, "watermark %" PRIu64 " past the volume's end %"
                PRIu64, s->watermark, s->volume_size);
  if (s->bytes_read > s->ranges_bytes ||
      s->bytes_written > s->ranges_bytes || s->bytes_zeroed > s->ranges_bytes
      || s->bytes_written + s->bytes_zeroed > s->ranges_bytes)
    return bad (err, errlen, "more bytes counted than the ranges hold");
  return 0;
}

int
sc_resume_read (const char *path, struct sc_resume_state *s, char *err,
                size_t errlen)
{
  unsigned char buf[SC_RESUME_BYTES + 1];
  char why[256];
  size_t n = 0;
  int fd, r;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    r = -errno;
    if (r != -ENOENT)
      snprintf (err, errlen, "cannot open %s: %s", path, strerror (-r));
    return r;
  }
  /* One byte more than a record: a longer file is refused. */
  while (n < sizeof buf) {
    ssize_t k = read (fd, buf + n, sizeof buf - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      r = -errno;
      close (fd);
      snprintf (err, errlen, "cannot read %s: %s", path, strerror (-r));
      return r;
    }
    if (k == 0)
      break;
    n += (size_t) k;
  }
  close (fd);
  r = sc_resume_decode (buf, n, s, why, sizeof why);
  if (r < 0)
    snprintf (err, errlen, "%s is damaged: %s", path, why);
  return r;
}

int
sc_resume_write (const char *path, const struct sc_resume_state *s,
                 char *err, size_t errlen)
{
  unsigned char buf[SC_RESUME_BYTES];
  char tmp[PATH_MAX + 16];
  size_t n = 0;
  int fd, r = 0;

  if ((size_t) snprintf (tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    snprintf (err, errlen, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  if (sc_resume_encode (s, buf) < 0) {
    snprintf (err, errlen, "%s: the backup's identity cannot be recorded "
              "(a field too long)", path);
    return -EINVAL;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
             0644);
  if (fd < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot create %s: %s", tmp, strerror (-r));
    return r;
  }
  while (n < sizeof buf && r == 0) {
    ssize_t k = write (fd, buf + n, sizeof buf - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      r = k < 0 ? -errno : -EIO;
    else
      n += (size_t) k;
  }
  if (r == 0 && fsync (fd) < 0)
    r = -errno;
  if (close (fd) < 0 && r == 0)
    r = -errno;
  if (r == 0 && rename (tmp, path) < 0)
    r = -errno;
  if (r == 0)
    r = sc_fsync_dir_of (path);
  if (r < 0) {
    snprintf (err, errlen, "cannot write %s: %s", path, strerror (-r));
    unlink (tmp);
  }
  return r;
}

int
sc_resume_remove (const char *path)
{
  if (unlink (path) < 0)
    return errno == ENOENT ? 0 : -errno;
  return sc_fsync_dir_of (path);
}

bool
sc_resume_mismatch (const struct sc_resume_state *saved,
                    const struct sc_resume_state *now, char *why,
                    size_t whylen)
{
  if (strcmp (saved->volume_uuid, now->volume_uuid) != 0)
    snprintf (why, whylen, "it is a backup of volume %s, not of this one "
              "(%s)", saved->volume_uuid, now->volume_uuid);
  else if (strcmp (saved->snapshot_name, now->snapshot_name) != 0)
    snprintf (why, whylen, "it is a backup of snapshot %s, not of %s",
              saved->snapshot_name, now->snapshot_name);
  else if (strcmp (saved->snapshot_uuid, now->snapshot_uuid) != 0)
    snprintf (why, whylen, "snapshot %s is another snapshot now (UUID %s; "
              "the partial backup is of UUID %s, which was deleted)",
              now->snapshot_name, now->snapshot_uuid, saved->snapshot_uuid);
  else if (strcmp (saved->format, now->format) != 0)
    snprintf (why, whylen, "it is a %s image, not %s", saved->format,
              now->format);
  else if (saved->incremental != now->incremental)
    snprintf (why, whylen, "it is %s backup", saved->incremental
              ? "an incremental" : "a full");
  else if (saved->incremental && (strcmp (saved->base_uuid, now->base_uuid)
                                  || strcmp (saved->prev_manifest,
                                             now->prev_manifest)))
    snprintf (why, whylen, "it is an incremental from another base or "
              "PREV (%s, base UUID %s)", saved->prev_manifest,
              saved->base_uuid);
  else if (saved->incremental
           && saved->prev_fingerprint != now->prev_fingerprint)
    snprintf (why, whylen, "PREV's manifest %s changed since",
              saved->prev_manifest);
  else if (saved->volume_size != now->volume_size)
    snprintf (why, whylen, "it is %" PRIu64 " bytes; the volume is %"
              PRIu64, saved->volume_size, now->volume_size);
  else if (saved->ranges_count != now->ranges_count
           || saved->ranges_bytes != now->ranges_bytes
           || saved->ranges_crc != now->ranges_crc)
    snprintf (why, whylen, "the ranges to copy are not the same");
  else if (saved->snapshot_id != now->snapshot_id)
    snprintf (why, whylen, "snapshot %s has id %" PRIu64 ", not %" PRIu64,
              now->snapshot_name, now->snapshot_id, saved->snapshot_id);
  else
    return false;
  return true;
}
