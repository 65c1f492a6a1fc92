/* shadowcopy: whether writing one path can change the bytes of another
 * (storage-overlap.h). */
#include <config.h>

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tools/storage-overlap.h"

#define MAX_IDS 256

struct storage_id {
  bool blk;                     /* a block device: dev is its number */
  dev_t dev;
  ino_t ino;
};

struct below {
  struct storage_id v[MAX_IDS]; /* v[0] is the path itself */
  size_t n;
};

static bool
has (const struct below *b, const struct storage_id *x)
{
  for (size_t i = 0; i < b->n; i++)
    if (b->v[i].blk == x->blk && b->v[i].dev == x->dev &&
        b->v[i].ino == x->ino)
      return true;
  return false;
}

/* A sysfs attribute of one line, without its newline: false when it
 * cannot be read. */
static bool
read_line (const char *path, char *buf, size_t len)
{
  FILE *f = fopen (path, "re");
  bool ok;

  if (!f)
    return false;
  ok = fgets (buf, len, f) != NULL;
  fclose (f);
  if (ok)
    buf[strcspn (buf, "\n")] = '\0';
  return ok;
}

static void below_path (struct below *b, const char *path, int depth);

/* The block device whose sysfs attribute `dev` (MAJ:MIN) is at path. */
static void
below_dev_file (struct below *b, const char *path, int depth);

static void
below_blk (struct below *b, dev_t rdev, int depth)
{
  struct storage_id x = { .blk = true, .dev = rdev };
  char link[64], dir[PATH_MAX], p[PATH_MAX + 64], line[PATH_MAX];
  DIR *d;
  struct dirent *e;

  if (has (b, &x) || b->n >= MAX_IDS)
    return;
  b->v[b->n++] = x;
  if (depth >= SC_STORAGE_DEPTH_MAX)
    return;
  snprintf (link, sizeof link, "/sys/dev/block/%u:%u", major (rdev),
            minor (rdev));
  if (!realpath (link, dir))
    return;
  /* A partition: its disk is the directory above. */
  snprintf (p, sizeof p, "%s/partition", dir);
  if (access (p, F_OK) == 0) {
    char *slash = strrchr (dir, '/');
    if (slash) {
      snprintf (p, sizeof p, "%.*s/dev", (int) (slash - dir), dir);
      below_dev_file (b, p, depth + 1);
    }
  }
  /* A loop device: its backing file. */
  snprintf (p, sizeof p, "%s/loop/backing_file", dir);
  if (read_line (p, line, sizeof line))
    below_path (b, line, depth + 1);
  /* Device-mapper, md: the devices it is made of. */
  snprintf (p, sizeof p, "%s/slaves", dir);
  if ((d = opendir (p))) {
    while ((e = readdir (d))) {
      if (e->d_name[0] == '.')
        continue;
      char q[PATH_MAX + 320];
      snprintf (q, sizeof q, "%s/slaves/%s/dev", dir, e->d_name);
      below_dev_file (b, q, depth + 1);
    }
    closedir (d);
  }
}

static void
below_dev_file (struct below *b, const char *path, int depth)
{
  char line[64];
  unsigned maj, min;

  if (read_line (path, line, sizeof line) &&
      sscanf (line, "%u:%u", &maj, &min) == 2)
    below_blk (b, makedev (maj, min), depth);
}

static void
below_path (struct below *b, const char *path, int depth)
{
  struct stat st;
  struct storage_id x = { 0 };

  if (stat (path, &st) < 0)
    return;
  if (S_ISBLK (st.st_mode)) {
    below_blk (b, st.st_rdev, depth);
    return;
  }
  x.dev = st.st_dev;
  x.ino = st.st_ino;
  if (!has (b, &x) && b->n < MAX_IDS)
    b->v[b->n++] = x;
}

enum sc_storage_overlap
sc_storage_overlap (const char *a, const char *b)
{
  struct below ba = { .n = 0 }, bb = { .n = 0 };

  below_path (&ba, a, 0);
  below_path (&bb, b, 0);
  if (ba.n == 0 || bb.n == 0)
    return SC_STORAGE_APART;
  if (ba.v[0].blk == bb.v[0].blk && ba.v[0].dev == bb.v[0].dev &&
      ba.v[0].ino == bb.v[0].ino)
    return SC_STORAGE_SAME;
  if (has (&ba, &bb.v[0]) || has (&bb, &ba.v[0]))
    return SC_STORAGE_STACKED;
  return SC_STORAGE_APART;
}
