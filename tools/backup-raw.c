/* shadowcopy: the raw backup target: a sparse image file
 * (backup-target.h).
 *
 * A full backup starts from an empty sparse file of the volume's size;
 * an incremental starts from a copy of PREV: of a raw image, a reflink
 * (FICLONE) where the filesystem can, else a sparse copy; of a qcow2
 * image, its content (with its backing chain) converted by `qemu-img
 * convert` into the new sparse file (qemu-img.h).
 *
 * Notes on the design
 *
 * Zeros are written by punching a hole (FALLOC_FL_PUNCH_HOLE keeps the
 * size): the range then reads as zeros and costs no space, in an
 * incremental as in a full backup.  Where the filesystem cannot punch,
 * zeros are written.
 *
 * The sparse copy of PREV (when FICLONE fails: another filesystem, or
 * one without reflinks) copies only PREV's data (SEEK_DATA / SEEK_HOLE),
 * so a copy of a sparse backup stays sparse.
 *
 * Each range written is handed to the kernel's writeback at once
 * (sync_file_range, SYNC_FILE_RANGE_WRITE: start it, wait for nothing),
 * so the disk writes while the copy goes on, and the fsync before the
 * rename finds little left to do.  Left to the dirty-page thresholds, a
 * 1 GiB backup sat 0.5 s in that fsync (bench/lib/backup.sh).  It is a
 * hint: its failure is ignored, and a failed writeback is still
 * reported by that fsync (only a wait would consume the error).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/backup-target.h"
#include "tools/image-sums.h"
#include "tools/qemu-img.h"

struct sc_raw_target {
  struct sc_backup_target base;
  char target[PATH_MAX];
  char partial[PATH_MAX + 16];
  uint64_t size;
  int fd;
};

static void raw_abort (struct sc_backup_target *bt);

static int
pwrite_all (int fd, const void *buf, size_t len, uint64_t off)
{
  const char *p = buf;
  while (len) {
    ssize_t k = pwrite (fd, p, len, (off_t) off);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    if (k == 0)
      return -EIO;
    p += k;
    len -= (size_t) k;
    off += (uint64_t) k;
  }
  return 0;
}

/* Start the writeback of what was just written (see the notes). */
static void
write_back_soon (int fd, uint64_t off, size_t len)
{
  (void) sync_file_range (fd, (off_t) off, (off_t) len,
                          SYNC_FILE_RANGE_WRITE);
}

static int
raw_write (void *opaque, const void *buf, size_t len, uint64_t off)
{
  struct sc_raw_target *t = opaque;
  int r = pwrite_all (t->fd, buf, len, off);
  if (r == 0)
    write_back_soon (t->fd, off, len);
  return r;
}

static int
raw_zero (void *opaque, uint64_t off, uint64_t len)
{
  static const char zeros[65536];
  struct sc_raw_target *t = opaque;

  if (fallocate (t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 (off_t) off, (off_t) len) == 0)
    return 0;
  if (errno != EOPNOTSUPP)
    return -errno;
  while (len) {
    size_t k = len < sizeof zeros ? (size_t) len : sizeof zeros;
    int r = pwrite_all (t->fd, zeros, k, off);
    if (r < 0)
      return r;
    off += k;
    len -= k;
  }
  return 0;
}

/* PREV's data into fd, its holes left as holes. */
static int
sparse_copy (int from, int to, uint64_t size)
{
  char *buf = malloc (1024 * 1024);
  uint64_t pos = 0;
  int r = 0;

  if (!buf)
    return -ENOMEM;
  while (pos < size && r == 0) {
    off_t d = lseek (from, (off_t) pos, SEEK_DATA);
    if (d < 0) {
      r = errno == ENXIO ? 0 : -errno;
      break;
    }
    off_t h = lseek (from, d, SEEK_HOLE);
    if (h < 0) {
      r = -errno;
      break;
    }
    uint64_t end = (uint64_t) h < size ? (uint64_t) h : size;
    for (pos = (uint64_t) d; pos < end && r == 0;) {
      size_t k = end - pos < 1024 * 1024 ? (size_t) (end - pos) : 1024 * 1024;
      ssize_t n = pread (from, buf, k, (off_t) pos);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        r = n < 0 ? -errno : -EIO;
        break;
      }
      r = pwrite_all (to, buf, (size_t) n, pos);
      if (r == 0)
        write_back_soon (to, pos, (size_t) n);
      pos += (uint64_t) n;
    }
  }
  free (buf);
  return r;
}

/* A PREV of another format (qcow2): its content, as QEMU reads it,
 * into the empty TARGET.partial. */
static int
convert_prev (const struct sc_backup_target_spec *spec,
              struct sc_raw_target *t, char *err, size_t errlen)
{
  struct sc_qemu_img_info info;
  char why[1024];
  int r;

  r = sc_qemu_img_info (spec->prev, spec->prev_format, true, &info, why,
                        sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "cannot open PREV %s as a %s image with its "
              "backing files: %s", spec->prev,
              sc_image_format_name (spec->prev_format), why);
    return r;
  }
  if (info.virtual_size != spec->size) {
    snprintf (err, errlen, "PREV %s is %" PRIu64 " bytes (as a %s image); "
              "the volume is %" PRIu64, spec->prev, info.virtual_size,
              sc_image_format_name (spec->prev_format), spec->size);
    return -EINVAL;
  }
  if (ftruncate (t->fd, (off_t) spec->size) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot size %s to %" PRIu64 " bytes: %s",
              t->partial, spec->size, strerror (-r));
    return r;
  }
  r = sc_qemu_img_convert_to_raw (spec->prev, spec->prev_format, t->partial,
                                  why, sizeof why);
  if (r < 0)
    snprintf (err, errlen, "cannot copy PREV %s to %s: %s", spec->prev,
              t->partial, why);
  return r;
}

static int
raw_open (const struct sc_backup_target_spec *spec,
          struct sc_backup_target **out, char *err, size_t errlen)
{
  const char *target = spec->target, *prev = spec->prev;
  uint64_t size = spec->size;
  struct sc_raw_target *t;
  struct stat st;
  int r;

  t = calloc (1, sizeof *t);
  if (!t) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  t->base.ops = &sc_raw_target_ops;
  t->size = size;
  snprintf (t->target, sizeof t->target, "%s", target);
  snprintf (t->partial, sizeof t->partial, "%s.partial", target);
  /* TARGET.partial is locked while a backup writes it: a second backup
   * to the same TARGET is refused; one left by a backup that was killed
   * is not locked, and is started over (or kept, to resume). */
  if ((r = sc_backup_partial_open (t->partial, &t->fd, err, errlen)) < 0) {
    free (t);
    return r;
  }
  if (spec->resume) {
    /* Kept, or refused untouched (backup-target.h). */
    uint64_t have = fstat (t->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
    if (have == size && size > 0) {
      t->base.resumed = true;
      *out = &t->base;
      return 0;
    }
    snprintf (err, errlen, "%s cannot be kept: it is %" PRIu64 " bytes, "
              "not the volume's %" PRIu64, t->partial, have, size);
    close (t->fd);
    free (t);
    return -ESTALE;
  }
  if (ftruncate (t->fd, 0) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot empty %s: %s", t->partial, strerror (-r));
    goto fail;
  }
  if (prev && spec->prev_format != SC_IMAGE_RAW) {
    if ((r = convert_prev (spec, t, err, errlen)) < 0)
      goto fail;
  }
  else if (prev) {
    int pfd = open (prev, O_RDONLY | O_CLOEXEC);
    if (pfd < 0) {
      r = -errno;
      snprintf (err, errlen, "cannot open PREV %s: %s", prev, strerror (-r));
      goto fail;
    }
    if (fstat (pfd, &st) < 0 || (uint64_t) st.st_size != size) {
      close (pfd);
      snprintf (err, errlen, "PREV %s is %" PRIu64 " bytes; the volume is %"
                PRIu64, prev, (uint64_t) st.st_size, size);
      r = -EINVAL;
      goto fail;
    }
    if (ioctl (t->fd, FICLONE, pfd) == 0)
      t->base.reflinked = true;
    else if ((r = sparse_copy (pfd, t->fd, size)) < 0) {
      close (pfd);
      snprintf (err, errlen, "cannot copy PREV %s to %s: %s", prev,
                t->partial, strerror (-r));
      goto fail;
    }
    close (pfd);
  }
  if (ftruncate (t->fd, (off_t) size) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot size %s to %" PRIu64 " bytes: %s",
              t->partial, size, strerror (-r));
    goto fail;
  }
  *out = &t->base;
  return 0;

fail:
  raw_abort (&t->base);
  return r;
}

static void
raw_sink (struct sc_backup_target *bt, struct sc_backup_sink *s)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  *s = (struct sc_backup_sink) { .opaque = t, .write = raw_write,
                                 .zero = raw_zero, .name = t->partial };
}

static int
raw_sync (struct sc_backup_target *bt, char *err, size_t errlen)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  if (fsync (t->fd) < 0) {
    int r = -errno;
    snprintf (err, errlen, "cannot sync %s: %s", t->partial, strerror (-r));
    return r;
  }
  return 0;
}

static int
raw_block_crc (struct sc_backup_target *bt, uint64_t block_size, uint64_t i,
               uint32_t *crc, char *err, size_t errlen)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  return sc_image_block_crc (t->fd, t->partial, t->size, block_size, i, crc,
                             err, errlen);
}

static int
raw_commit (struct sc_backup_target *bt, char *err, size_t errlen)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  int r = sc_backup_partial_commit (t->partial, t->target, err, errlen);

  if (r < 0) {
    raw_abort (bt);
    return r;
  }
  close (t->fd);
  free (t);
  return r;
}

static void
raw_abort (struct sc_backup_target *bt)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  close (t->fd);
  unlink (t->partial);
  free (t);
}

static void
raw_keep (struct sc_backup_target *bt)
{
  struct sc_raw_target *t = (struct sc_raw_target *) bt;
  close (t->fd);
  free (t);
}

const struct sc_backup_target_ops sc_raw_target_ops = {
  .open = raw_open,
  .sink = raw_sink,
  .sync = raw_sync,
  .block_crc = raw_block_crc,
  .commit = raw_commit,
  .abort = raw_abort,
  .keep = raw_keep,
};
