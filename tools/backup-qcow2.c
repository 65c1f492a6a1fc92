/* shadowcopy: the qcow2 backup target: an image made and written only by
 * QEMU's own tools (backup-target.h).
 *
 * A full backup is a new qcow2 image of the volume's size with no
 * backing file; an incremental is a new qcow2 overlay whose backing file
 * is PREV (a raw or a qcow2 backup), holding only the clusters this
 * backup wrote.  The image is made by `qemu-img create` (qemu-img.h) and
 * written over NBD through qemu-nbd (image-nbd.h).  PREV is only ever
 * opened read-only, as a backing file.
 *
 * Notes on the design
 *
 * How the backing file is named.  QEMU resolves a relative backing file
 * name against the directory of the overlay.  When PREV is in TARGET's
 * directory (after symbolic links are resolved), the overlay names it by
 * its file name, as "./NAME": the chain then survives the rename of
 * TARGET.partial, and a move or copy of the whole directory of backups.
 * (A bare NAME with a ':', as a time of day in vol-2024-01-01T00:00:00,
 * would be taken by QEMU for a protocol prefix; "./" is no protocol.)
 * When PREV is elsewhere, the overlay names it by its absolute path
 * (symbolic links resolved): the chain survives a move of TARGET's
 * directory but not of PREV.  (A relative path such as ../mon/x would
 * survive neither a move of TARGET alone nor one of PREV alone.)
 * `qemu-img rebase -u` renames the backing file of a moved chain.
 *
 * Zeros.  A range that the snapshot has as zeros is written with
 * NBD_CMD_WRITE_ZEROES.  In an overlay, qcow2 records it as zero
 * clusters (or writes zeros in a partial cluster), which mask the
 * backing file; a full backup never zeros (the engine skips zero ranges
 * of a new image: they stay unallocated).
 *
 * Locking.  TARGET.partial is flock'd by an fd of our own, as the raw
 * target does: a second backup to the same TARGET is refused.  QEMU's
 * image locks are OFD byte-range locks, independent of flock on a local
 * filesystem.  (On NFS, where flock is emulated as a whole-file byte-range
 * lock, the two would clash and qemu-nbd refuses to open the image.)
 * `qemu-img create` truncates the file in place; the inode is checked to
 * be still the one locked.
 *
 * A qemu-nbd still exiting.  A backup killed (kill -9) leaves its
 * qemu-nbd to notice that its client is gone, close the image and exit:
 * a few milliseconds during which QEMU's lock on TARGET.partial is still
 * held.  Our flock says no other backup is running, so a TARGET.partial
 * locked by QEMU is that qemu-nbd: qemu-img is asked again for up to
 * 2 s before its refusal is the error.
 *
 * Resume.  With spec->resume, a TARGET.partial that is a qcow2 image of
 * the volume's size with the backing file this backup would give it (its
 * name and format) is kept, written over from where the copy goes on;
 * anything else is refused untouched (-ESTALE), for the caller to remove
 * the resume state that describes it before it is made anew.
 *
 * Commit.  The NBD connection is shut down and closed: libnbd waits for
 * qemu-nbd to exit, and qemu-nbd flushes and closes the image as it
 * exits.  The file is then synced once more (by our fd), renamed with
 * RENAME_NOREPLACE, and its directory synced.
 *
 * Writes are synchronous (one nbd_pwrite at a time, from the backup's
 * writer thread, backup-writer.h): the engine keeps several reads of the
 * snapshot in flight meanwhile.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "cow/crc32c.h"
#include "tools/backup-target.h"
#include "tools/image-nbd.h"
#include "tools/manifest.h"
#include "tools/qemu-img.h"

/* The largest request sent to qemu-nbd (its limit is 32 MiB). */
#define MAX_REQUEST (32u * 1024 * 1024)
/* The largest zero request (NBD lengths are 32-bit). */
#define MAX_ZERO (1024u * 1024 * 1024)

struct sc_qcow2_target {
  struct sc_backup_target base;
  char target[PATH_MAX];
  char partial[PATH_MAX + 16];
  uint64_t size;
  int fd;                       /* TARGET.partial, flock'd */
  struct nbd_handle *nbd;       /* TARGET.partial through qemu-nbd */
};

static void qcow2_abort (struct sc_backup_target *bt);
static void qcow2_keep (struct sc_backup_target *bt);

static int
nbd_errno (void)
{
  int e = nbd_get_errno ();
  return e > 0 ? -e : -EIO;
}

static int
qcow2_write (void *opaque, const void *buf, size_t len, uint64_t off)
{
  struct sc_qcow2_target *t = opaque;
  const char *p = buf;

  while (len) {
    size_t k = len < MAX_REQUEST ? len : MAX_REQUEST;
    if (nbd_pwrite (t->nbd, p, k, off, 0) < 0)
      return nbd_errno ();
    p += k;
    off += k;
    len -= k;
  }
  return 0;
}

static int
qcow2_zero (void *opaque, uint64_t off, uint64_t len)
{
  struct sc_qcow2_target *t = opaque;

  while (len) {
    uint64_t k = len < MAX_ZERO ? len : MAX_ZERO;
    if (nbd_zero (t->nbd, k, off, 0) < 0)
      return nbd_errno ();
    off += k;
    len -= k;
  }
  return 0;
}

/* Whether a qemu-img failure is QEMU's image lock, held by another. */
static bool
qemu_locked (const char *why)
{
  return strstr (why, " lock") != NULL;
}

#define LOCK_WAIT_MS 2000
#define LOCK_STEP_MS 50

/* The name the overlay gives PREV (see the notes): "./" and its file
 * name when it is in TARGET's directory, else its absolute path. */
static int
backing_name (const char *prev, const char *target, char *name,
              size_t len, char *err, size_t errlen)
{
  char rp[PATH_MAX], tdir[PATH_MAX], buf[PATH_MAX];
  int r;

  if (!realpath (prev, rp)) {
    r = -errno;
    snprintf (err, errlen, "cannot open PREV %s: %s", prev, strerror (-r));
    return r;
  }
  snprintf (buf, sizeof buf, "%s", target);
  if (!realpath (dirname (buf), tdir)) {
    r = -errno;
    snprintf (err, errlen, "cannot open the directory of %s: %s", target,
              strerror (-r));
    return r;
  }
  char *slash = strrchr (rp, '/');
  size_t dlen = slash == rp ? 1 : (size_t) (slash - rp);
  if (strlen (tdir) == dlen && strncmp (rp, tdir, dlen) == 0)
    snprintf (name, len, "./%s", slash + 1);
  else
    snprintf (name, len, "%s", rp);
  return 0;
}

/* PREV must be readable as its manifest's format, its whole chain with
 * it, and of the volume's size. */
static int
check_prev (const struct sc_backup_target_spec *spec, char *err,
            size_t errlen)
{
  struct sc_qemu_img_info info;
  char why[1024];
  int r = sc_qemu_img_info (spec->prev, spec->prev_format, true, &info, why,
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
  return 0;
}

/* Whether the image at t->partial is what this backup would make; if
 * not, why, into why. */
static bool
can_resume (struct sc_qcow2_target *t,
            const struct sc_backup_target_spec *spec, const char *backing,
            char *why, size_t whylen)
{
  struct sc_qemu_img_info info;
  int r;

  for (unsigned ms = 0;; ms += LOCK_STEP_MS) {
    r = sc_qemu_img_info (t->partial, SC_IMAGE_QCOW2, false, &info, why,
                          whylen);
    if (r == 0 || !qemu_locked (why) || ms >= LOCK_WAIT_MS)
      break;
    usleep (LOCK_STEP_MS * 1000);
  }
  if (r < 0)
    return false;
  if (strcmp (info.format, "qcow2") != 0 || info.virtual_size != spec->size)
    snprintf (why, whylen, "it is not a qcow2 image of %" PRIu64 " bytes",
              spec->size);
  else if (!backing && info.has_backing)
    snprintf (why, whylen, "it has a backing file");
  else if (backing && !(info.has_backing && info.backing_exact
                        && strcmp (info.backing, backing) == 0
                        && strcmp (info.backing_format,
                                   sc_image_format_name (spec->prev_format))
                        == 0))
    snprintf (why, whylen, "its backing file is not %s", backing);
  else
    return true;
  return false;
}

static int
qcow2_open (const struct sc_backup_target_spec *spec,
            struct sc_backup_target **out, char *err, size_t errlen)
{
  const char *target = spec->target, *prev = spec->prev;
  char backing[PATH_MAX];
  struct sc_qcow2_target *t;
  struct stat st, st2;
  uint64_t got;
  bool existed;
  int r;

  t = calloc (1, sizeof *t);
  if (!t) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  t->base.ops = &sc_qcow2_target_ops;
  t->base.overlay = prev != NULL;
  t->size = spec->size;
  snprintf (t->target, sizeof t->target, "%s", target);
  snprintf (t->partial, sizeof t->partial, "%s.partial", target);
  /* Locked as the raw target's is (backup-raw.c). */
  if ((r = sc_backup_partial_open (t->partial, &t->fd, err, errlen)) < 0) {
    free (t);
    return r;
  }
  existed = fstat (t->fd, &st) == 0 && st.st_size > 0;

  if (prev) {
    if ((r = backing_name (prev, target, backing, sizeof backing, err,
                           errlen)) < 0
        || (r = check_prev (spec, err, errlen)) < 0)
      goto fail;
  }
  if (spec->resume) {
    /* Kept, or refused untouched (backup-target.h). */
    char why[PATH_MAX + 1024] = "it is empty";
    if (!existed || !can_resume (t, spec, prev ? backing : NULL, why,
                                 sizeof why)) {
      snprintf (err, errlen, "%s cannot be kept: %s", t->partial, why);
      r = -ESTALE;
      goto fail;
    }
    t->base.resumed = true;
  }
  else {
    char why[1024];
    for (unsigned ms = 0;; ms += LOCK_STEP_MS) {
      r = sc_qemu_img_create_qcow2 (t->partial, spec->size,
                                    prev ? backing : NULL, spec->prev_format,
                                    why, sizeof why);
      if (r == 0 || !qemu_locked (why) || ms >= LOCK_WAIT_MS)
        break;
      usleep (LOCK_STEP_MS * 1000);
    }
    if (r < 0) {
      snprintf (err, errlen, "cannot create %s: %s", t->partial, why);
      goto fail;
    }
    if (fstat (t->fd, &st) < 0 || stat (t->partial, &st2) < 0
        || st.st_ino != st2.st_ino || st.st_dev != st2.st_dev) {
      snprintf (err, errlen, "%s was replaced while qemu-img created it",
                t->partial);
      r = -EBUSY;
      goto fail;
    }
  }
  r = sc_image_nbd_open (t->partial, SC_IMAGE_QCOW2, true, &t->nbd, &got,
                         err, errlen);
  if (r < 0)
    goto fail;
  if (got != spec->size) {
    snprintf (err, errlen, "%s is %" PRIu64 " bytes through qemu-nbd; the "
              "volume is %" PRIu64, t->partial, got, spec->size);
    r = -EIO;
    goto fail;
  }
  *out = &t->base;
  return 0;

fail:
  if (spec->resume)
    qcow2_keep (&t->base);      /* a state may describe it */
  else
    qcow2_abort (&t->base);
  return r;
}

static void
qcow2_sink (struct sc_backup_target *bt, struct sc_backup_sink *s)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  *s = (struct sc_backup_sink) { .opaque = t, .write = qcow2_write,
                                 .zero = qcow2_zero, .name = t->partial };
}

static int
qcow2_sync (struct sc_backup_target *bt, char *err, size_t errlen)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  if (nbd_flush (t->nbd, 0) < 0) {
    int r = nbd_errno ();
    snprintf (err, errlen, "cannot sync %s: %s", t->partial,
              nbd_get_error ());
    return r;
  }
  return 0;
}

static int
qcow2_block_crc (struct sc_backup_target *bt, uint64_t block_size,
                 uint64_t i, uint32_t *crc, char *err, size_t errlen)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  return sc_image_nbd_block_crc (t->nbd, t->partial, t->size, block_size, i,
                                 crc, err, errlen);
}

/* qemu-nbd told to go, and waited for: it has closed the image. */
static int
close_nbd (struct sc_qcow2_target *t, char *err, size_t errlen)
{
  int r = 0;

  if (!t->nbd)
    return 0;
  if (nbd_shutdown (t->nbd, 0) < 0) {
    r = nbd_errno ();
    snprintf (err, errlen, "cannot close %s: %s", t->partial,
              nbd_get_error ());
  }
  nbd_close (t->nbd);
  t->nbd = NULL;
  return r;
}

static int
qcow2_commit (struct sc_backup_target *bt, char *err, size_t errlen)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  int r;

  if ((r = close_nbd (t, err, errlen)) < 0) {
    qcow2_abort (bt);
    return r;
  }
  /* Whatever qemu-nbd wrote as it closed the image. */
  if (fsync (t->fd) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot sync %s: %s", t->partial, strerror (-r));
    qcow2_abort (bt);
    return r;
  }
  if ((r = sc_backup_partial_commit (t->partial, t->target, err,
                                     errlen)) < 0) {
    qcow2_abort (bt);
    return r;
  }
  close (t->fd);
  free (t);
  return r;
}

static void
qcow2_abort (struct sc_backup_target *bt)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  char ignored[256];

  close_nbd (t, ignored, sizeof ignored);
  unlink (t->partial);
  close (t->fd);
  free (t);
}

/* For --resume: qemu-nbd is stopped (it flushes and closes the image),
 * and TARGET.partial stays; the resume state covers only what the last
 * sync made durable. */
static void
qcow2_keep (struct sc_backup_target *bt)
{
  struct sc_qcow2_target *t = (struct sc_qcow2_target *) bt;
  char ignored[256];

  close_nbd (t, ignored, sizeof ignored);
  close (t->fd);
  free (t);
}

const struct sc_backup_target_ops sc_qcow2_target_ops = {
  .open = qcow2_open,
  .sink = qcow2_sink,
  .sync = qcow2_sync,
  .block_crc = qcow2_block_crc,
  .commit = qcow2_commit,
  .abort = qcow2_abort,
  .keep = qcow2_keep,
};
