/* shadowcopy: where a restore writes (restore-dest.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "tools/durable.h"
#include "tools/restore-dest.h"

enum kind { DEST_FILE, DEST_NEW_FILE, DEST_BLOCK, DEST_NBD };

struct sc_restore_dest {
  enum kind kind;
  char *name;                   /* for messages (a URI as given) */
  int fd;                       /* a file or a block device */
  struct nbd_handle *nbd;
  uint64_t size;
};

static const char zeros[65536];

bool
sc_restore_dest_is_uri (const char *dest)
{
  static const char *const schemes[] = {
    "nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://",
    "nbds+vsock://",
  };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp (dest, schemes[i], strlen (schemes[i])) == 0)
      return true;
  return false;
}

static int
too_small (const char *name, uint64_t have, uint64_t size, char *err,
           size_t errlen)
{
  snprintf (err, errlen, "%s is %" PRIu64 " bytes, smaller than the volume "
            "(%" PRIu64 " bytes): it cannot hold it", name, have, size);
  return -ENOSPC;
}

static int
open_uri (struct sc_restore_dest *d, const char *uri, uint64_t size,
          char *err, size_t errlen)
{
  int64_t got;

  d->kind = DEST_NBD;
  if (!(d->nbd = nbd_create ())) {
    snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
    return -ENOMEM;
  }
  if (nbd_connect_uri (d->nbd, uri) < 0) {
    snprintf (err, errlen, "cannot connect to %s: %s", uri,
              nbd_get_error ());
    return -(nbd_get_errno () ?: EIO);
  }
  if (nbd_is_read_only (d->nbd) == 1) {
    snprintf (err, errlen, "%s is read-only", uri);
    return -EROFS;
  }
  if ((got = nbd_get_size (d->nbd)) < 0) {
    snprintf (err, errlen, "%s: %s", uri, nbd_get_error ());
    return -EIO;
  }
  d->size = (uint64_t) got;
  return d->size < size ? too_small (uri, d->size, size, err, errlen) : 0;
}

static int
open_path (struct sc_restore_dest *d, const char *path, uint64_t size,
           char *err, size_t errlen)
{
  struct stat st;
  int r;

  if (stat (path, &st) < 0 && errno == ENOENT) {
    d->kind = DEST_NEW_FILE;
    d->fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (d->fd < 0) {
      r = -errno;
      snprintf (err, errlen, "cannot create %s: %s", path, strerror (-r));
      return r;
    }
    d->size = size;
    if (ftruncate (d->fd, (off_t) size) < 0) {
      r = -errno;
      snprintf (err, errlen, "cannot make %s %" PRIu64 " bytes: %s", path,
                size, strerror (-r));
      return r;
    }
    return 0;
  }
  d->fd = open (path, O_WRONLY | O_CLOEXEC);
  if (d->fd < 0 || fstat (d->fd, &st) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot open %s: %s", path, strerror (-r));
    return r;
  }
  if (S_ISBLK (st.st_mode)) {
    /* Again with O_EXCL: a mounted device is refused by the kernel. */
    close (d->fd);
    d->kind = DEST_BLOCK;
    d->fd = open (path, O_WRONLY | O_EXCL | O_CLOEXEC);
    if (d->fd < 0 || ioctl (d->fd, BLKGETSIZE64, &d->size) < 0) {
      r = -errno;
      snprintf (err, errlen, "cannot open %s: %s%s", path, strerror (-r),
                r == -EBUSY ? " (it is mounted or in use)" : "");
      return r;
    }
  }
  else if (S_ISREG (st.st_mode)) {
    d->kind = DEST_FILE;
    d->size = (uint64_t) st.st_size;
  }
  else {
    snprintf (err, errlen, "%s is neither a regular file nor a block "
              "device", path);
    return -EINVAL;
  }
  return d->size < size ? too_small (path, d->size, size, err, errlen) : 0;
}

int
sc_restore_dest_open (const char *dest, uint64_t size,
                      struct sc_restore_dest **out, char *err, size_t errlen)
{
  struct sc_restore_dest *d = calloc (1, sizeof *d);
  int r;

  if (!d || !(d->name = strdup (dest))) {
    free (d);
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  d->fd = -1;
  r = sc_restore_dest_is_uri (dest) ? open_uri (d, dest, size, err, errlen)
    : open_path (d, dest, size, err, errlen);
  if (r < 0) {
    sc_restore_dest_close (d);
    return r;
  }
  *out = d;
  return 0;
}

const char *
sc_restore_dest_kind (const struct sc_restore_dest *d)
{
  switch (d->kind) {
  case DEST_FILE: return "file";
  case DEST_NEW_FILE: return "new file";
  case DEST_BLOCK: return "block device";
  case DEST_NBD: return "NBD export";
  }
  return "?";
}

uint64_t
sc_restore_dest_size (const struct sc_restore_dest *d)
{
  return d->size;
}

bool
sc_restore_dest_is_zero (const struct sc_restore_dest *d)
{
  return d->kind == DEST_NEW_FILE;
}

static int
pwrite_all (struct sc_restore_dest *d, const char *buf, size_t len,
            uint64_t off, char *err, size_t errlen)
{
  while (len) {
    ssize_t k = pwrite (d->fd, buf, len, (off_t) off);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      int e = k < 0 ? errno : EIO;
      snprintf (err, errlen, "cannot write %s at %" PRIu64 ": %s", d->name,
                off, strerror (e));
      return -e;
    }
    buf += k;
    len -= (size_t) k;
    off += (uint64_t) k;
  }
  return 0;
}

int
sc_restore_dest_write (struct sc_restore_dest *d, const void *buf,
                       size_t len, uint64_t off, char *err, size_t errlen)
{
  if (d->kind != DEST_NBD)
    return pwrite_all (d, buf, len, off, err, errlen);
  while (len) {
    size_t k = len < (32u << 20) ? len : (32u << 20);
    if (nbd_pwrite (d->nbd, buf, k, off, 0) < 0) {
      snprintf (err, errlen, "cannot write %s at %" PRIu64 ": %s", d->name,
                off, nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
    buf = (const char *) buf + k;
    len -= k;
    off += k;
  }
  return 0;
}

/* Zeros written out, when nothing cheaper works. */
static int
write_zeros (struct sc_restore_dest *d, uint64_t off, uint64_t len,
             char *err, size_t errlen)
{
  while (len) {
    size_t k = len < sizeof zeros ? (size_t) len : sizeof zeros;
    int r = sc_restore_dest_write (d, zeros, k, off, err, errlen);
    if (r < 0)
      return r;
    off += k;
    len -= k;
  }
  return 0;
}

int
sc_restore_dest_zero (struct sc_restore_dest *d, uint64_t off, uint64_t len,
                      char *err, size_t errlen)
{
  switch (d->kind) {
  case DEST_NEW_FILE:
  case DEST_FILE:
    if (fallocate (d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   (off_t) off, (off_t) len) == 0 ||
        fallocate (d->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                   (off_t) off, (off_t) len) == 0)
      return 0;
    break;
  case DEST_BLOCK: {
    uint64_t range[2] = { off, len };
    if (off % 512 == 0 && len % 512 == 0 &&
        ioctl (d->fd, BLKZEROOUT, range) == 0)
      return 0;
    break;
  }
  case DEST_NBD:
    if (nbd_can_zero (d->nbd) != 1)
      break;
    while (len) {
      uint64_t k = len < (1u << 30) ? len : (1u << 30);
      if (nbd_zero (d->nbd, k, off, 0) < 0) {
        snprintf (err, errlen, "cannot zero %s at %" PRIu64 ": %s", d->name,
                  off, nbd_get_error ());
        return -(nbd_get_errno () ?: EIO);
      }
      off += k;
      len -= k;
    }
    return 0;
  }
  return write_zeros (d, off, len, err, errlen);
}

int
sc_restore_dest_flush (struct sc_restore_dest *d, char *err, size_t errlen)
{
  int r;

  if (d->kind == DEST_NBD) {
    if (nbd_can_flush (d->nbd) == 1 && nbd_flush (d->nbd, 0) < 0) {
      snprintf (err, errlen, "cannot flush %s: %s", d->name,
                nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
    return 0;
  }
  if (fsync (d->fd) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot sync %s: %s", d->name, strerror (-r));
    return r;
  }
  if (d->kind == DEST_NEW_FILE && (r = sc_fsync_dir_of (d->name)) < 0) {
    snprintf (err, errlen, "cannot sync the directory of %s: %s", d->name,
              strerror (-r));
    return r;
  }
  return 0;
}

void
sc_restore_dest_close (struct sc_restore_dest *d)
{
  if (!d)
    return;
  if (d->nbd) {
    nbd_shutdown (d->nbd, 0);
    nbd_close (d->nbd);
  }
  if (d->fd >= 0)
    close (d->fd);
  free (d->name);
  free (d);
}
