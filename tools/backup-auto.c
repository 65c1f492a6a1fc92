/* shadowcopy: `backup --auto`: the base of an incremental, or a full
 * backup (backup-auto.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/backup-auto.h"
#include "tools/cli.h"
#include "tools/diff-result.h"
#include "tools/manifest.h"

/* Whether manifest a is of a newer backup than b (the rule of
 * backup-auto.h). */
static bool
newer (const struct sc_manifest *a, const char *aname,
       const struct sc_manifest *b, const char *bname)
{
  int t;

  if (a->snapshot_id != b->snapshot_id)
    return a->snapshot_id > b->snapshot_id;
  t = strcmp (a->end_time, b->end_time);
  if (t != 0)
    return t > 0;
  return strcmp (aname, bname) > 0;
}

/* The newest backup of volume `volume` in `dir` but `target` itself:
 * its manifest in *best and its image's path in prev.  -ENOENT when
 * there is none; another negative errno (said) when dir cannot be
 * read. */
static int
newest_beside (const char *dir, const char *target, const char *volume,
               struct sc_manifest *best, char *prev, size_t prevlen,
               char *err, size_t errlen)
{
  const size_t sl = strlen (SC_MANIFEST_SUFFIX);
  char tcopy[PATH_MAX], tbase[PATH_MAX];
  struct dirent *e;
  bool found = false;
  DIR *d;

  snprintf (tcopy, sizeof tcopy, "%s", target);
  snprintf (tbase, sizeof tbase, "%s", basename (tcopy));
  if (!(d = opendir (dir))) {
    int r = -errno;
    snprintf (err, errlen, "--auto: cannot read %s: %s", dir, strerror (-r));
    return r;
  }
  while ((e = readdir (d))) {
    size_t n = strlen (e->d_name);
    char image[PATH_MAX], path[PATH_MAX + 32], why[2048];
    struct sc_manifest m;
    struct stat st;

    if (n <= sl || strcmp (e->d_name + n - sl, SC_MANIFEST_SUFFIX) != 0 ||
        e->d_name[0] == '.')
      continue;
    if ((size_t) snprintf (image, sizeof image, "%s/%.*s", dir,
                           (int) (n - sl), e->d_name) >= sizeof image)
      continue;
    if (strlen (tbase) == n - sl && strncmp (e->d_name, tbase, n - sl) == 0)
      continue;                 /* TARGET's own: not a backup before it */
    if (stat (image, &st) < 0 || !S_ISREG (st.st_mode))
      continue;                 /* a manifest left without its image */
    snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
    if (sc_manifest_read (path, &m, why, sizeof why) < 0) {
      sc_cli_error ("warning: --auto: skipping %s", why);
      continue;
    }
    if (strcmp (m.volume_uuid, volume) == 0 &&
        (!found || newer (&m, image, best, prev))) {
      sc_manifest_free (best);
      *best = m;
      snprintf (prev, prevlen, "%s", image);
      found = true;
    }
    else
      sc_manifest_free (&m);
  }
  closedir (d);
  return found ? 0 : -ENOENT;
}

/* Whether PREV (manifest pm) can be the base of an incremental of
 * snapshot `id` (the one to back up): its snapshot still a valid
 * snapshot or checkpoint of the volume, no newer than `id`, the volume
 * the same size.  If so, b's base is set; else why says why not. */
static int
check_usable (struct shadowcopy *c, const struct sc_diff *id,
              const struct sc_manifest *pm, struct sc_backup_base *b,
              char *why, size_t whylen, char *err, size_t errlen)
{
  struct shadowcopy_snapshot *list;
  size_t n;
  int r;

  if (pm->volume_size != id->volume_size) {
    snprintf (why, whylen, "it is of %" PRIu64 " bytes and the volume is "
              "now %" PRIu64, pm->volume_size, id->volume_size);
    return 0;
  }
  r = shadowcopy_list (c, &list, &n);
  if (r < 0) {
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
    return r;
  }
  snprintf (why, whylen, "its snapshot %s (UUID %s) is no longer a "
            "snapshot or checkpoint of the volume", pm->snapshot_name,
            pm->snapshot_uuid);
  for (size_t i = 0; i < n; i++) {
    const struct shadowcopy_snapshot *s = &list[i];
    if (strcmp (s->uuid, pm->snapshot_uuid) != 0)
      continue;
    if (!s->valid)
      snprintf (why, whylen, "its snapshot %s (UUID %s) is invalid: %s",
                s->name, s->uuid, s->reason);
    else if (s->id > id->to.id)
      snprintf (why, whylen, "its snapshot %s is newer than %s", s->name,
                id->to.name);
    else {
      b->incremental = true;
      snprintf (b->base, sizeof b->base, "%.*s", (int) sizeof b->base - 1,
                s->name);
      snprintf (b->base_uuid, sizeof b->base_uuid, "%s", s->uuid);
      b->base_is_checkpoint = sc_cli_is_checkpoint (s);
    }
    break;
  }
  free (list);
  return 0;
}

int
sc_backup_auto (struct shadowcopy *c, const char *snapshot,
                const char *target, const char *prev,
                struct sc_backup_base *b, char *err, size_t errlen)
{
  struct sc_manifest pm = { .crc = NULL };
  struct sc_diff id = { .v = NULL };
  char tcopy[PATH_MAX], dir[PATH_MAX], why[1024], which[2 * PATH_MAX + 64];
  int r;

  memset (b, 0, sizeof *b);
  snprintf (tcopy, sizeof tcopy, "%s", target);
  snprintf (dir, sizeof dir, "%s", dirname (tcopy));
  r = sc_cli_diff_fetch (c, snapshot, snapshot, &id, err, errlen);
  free (id.v);
  if (r < 0)
    return r;

  if (prev) {
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s%s", prev, SC_MANIFEST_SUFFIX);
    if ((r = sc_manifest_read (path, &pm, why, sizeof why)) < 0) {
      snprintf (err, errlen, "--base %s: %s", prev, why);
      return r;
    }
    if (strcmp (pm.volume_uuid, id.volume) != 0) {
      snprintf (err, errlen, "--base %s is a backup of volume %s, not of "
                "this volume (%s)", prev, pm.volume_uuid, id.volume);
      sc_manifest_free (&pm);
      return -EINVAL;
    }
    snprintf (b->prev, sizeof b->prev, "%s", prev);
    snprintf (which, sizeof which, "--base %s", prev);
  }
  else {
    r = newest_beside (dir, target, id.volume, &pm, b->prev,
                       sizeof b->prev, err, errlen);
    if (r == -ENOENT) {
      snprintf (b->why, sizeof b->why, "full backup: no earlier backup of "
                "this volume (%s) in %s", id.volume, dir);
      return 0;
    }
    if (r < 0)
      return r;
    snprintf (which, sizeof which, "the newest backup of this volume in "
              "%s, %s,", dir, b->prev);
  }

  r = check_usable (c, &id, &pm, b, why, sizeof why, err, errlen);
  if (r == 0 && b->incremental)
    snprintf (b->why, sizeof b->why, "incremental backup on %s (%s): "
              "since %s %s (UUID %s)", b->prev, prev ? "--base"
              : "the newest backup of this volume beside TARGET",
              b->base_is_checkpoint ? "checkpoint" : "snapshot", b->base,
              b->base_uuid);
  else if (r == 0)
    snprintf (b->why, sizeof b->why, "full backup: %s cannot be the base "
              "of an incremental: %s", which, why);
  sc_manifest_free (&pm);
  return r;
}
