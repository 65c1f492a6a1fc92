/* shadowcopy: a backup target, whatever its format (backup-target.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/backup-target.h"
#include "tools/durable.h"

static const struct {
  const char *name;
  const struct sc_backup_target_ops *ops;
} formats[] = {
  [SC_IMAGE_RAW] = { "raw", &sc_raw_target_ops },
  [SC_IMAGE_QCOW2] = { "qcow2", &sc_qcow2_target_ops },
};

const char *
sc_image_format_name (enum sc_image_format f)
{
  return (unsigned) f < sizeof formats / sizeof *formats
    ? formats[f].name : "?";
}

int
sc_image_format_parse (const char *name, enum sc_image_format *f)
{
  for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
    if (strcmp (name, formats[i].name) == 0) {
      *f = (enum sc_image_format) i;
      return 0;
    }
  return -EINVAL;
}

int
sc_backup_target_open (const struct sc_backup_target_spec *spec,
                       struct sc_backup_target **out, char *err,
                       size_t errlen)
{
  const struct sc_backup_target_ops *ops =
    (unsigned) spec->format < sizeof formats / sizeof *formats
    ? formats[spec->format].ops : NULL;

  struct stat st;

  if (!ops) {
    snprintf (err, errlen, "--format %s: not built",
              sc_image_format_name (spec->format));
    return -ENOTSUP;
  }
  if (strlen (spec->target) >= PATH_MAX) {
    snprintf (err, errlen, "%s: path too long", spec->target);
    return -ENAMETOOLONG;
  }
  if (lstat (spec->target, &st) == 0) {
    snprintf (err, errlen, "%s already exists: a backup never replaces "
              "a file (remove it, or choose another TARGET)", spec->target);
    return -EEXIST;
  }
  return ops->open (spec, out, err, errlen);
}

void
sc_backup_target_sink (struct sc_backup_target *t, struct sc_backup_sink *s)
{
  t->ops->sink (t, s);
}

int
sc_backup_target_sync (struct sc_backup_target *t, char *err, size_t errlen)
{
  return t->ops->sync (t, err, errlen);
}

int
sc_backup_target_block_crc (struct sc_backup_target *t, uint64_t block_size,
                            uint64_t i, uint32_t *crc, char *err,
                            size_t errlen)
{
  return t->ops->block_crc (t, block_size, i, crc, err, errlen);
}

int
sc_backup_target_commit (struct sc_backup_target *t, char *err,
                         size_t errlen)
{
  return t->ops->commit (t, err, errlen);
}

void
sc_backup_target_abort (struct sc_backup_target *t)
{
  if (t)
    t->ops->abort (t);
}

bool
sc_backup_target_keep (struct sc_backup_target *t)
{
  if (!t->ops->keep) {
    t->ops->abort (t);
    return false;
  }
  t->ops->keep (t);
  return true;
}

int
sc_backup_partial_open (const char *partial, int *fd, char *err,
                        size_t errlen)
{
  int r;

  *fd = open (partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (*fd < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot create %s: %s", partial, strerror (-r));
    return r;
  }
  if (flock (*fd, LOCK_EX | LOCK_NB) < 0) {
    r = errno == EWOULDBLOCK ? -EBUSY : -errno;
    snprintf (err, errlen, "%s: %s", partial, r == -EBUSY
              ? "another backup to this TARGET is running" : strerror (-r));
    close (*fd);
    *fd = -1;
    return r;
  }
  return 0;
}

int
sc_backup_partial_commit (const char *partial, const char *target,
                          char *err, size_t errlen)
{
  if (renameat2 (AT_FDCWD, partial, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
    int r = -errno;
    snprintf (err, errlen, "cannot rename %s to %s: %s", partial, target,
              strerror (-r));
    return r;
  }
  int e = sc_fsync_dir_of (target);
  if (e < 0) {
    /* TARGET is in place (with its manifest): it stays. */
    snprintf (err, errlen, "%s is written, but its directory could not be "
              "synced (%s): it may not survive a power cut", target,
              strerror (-e));
    return 1;
  }
  return 0;
}
