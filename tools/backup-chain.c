/* shadowcopy: the chain of a backup (backup-chain.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/backup-chain.h"
#include "tools/qemu-img.h"

/* The image of a manifest path: the path without SC_MANIFEST_SUFFIX;
 * NULL when it does not end in it (or on ENOMEM). */
static char *
image_of (const char *manifest)
{
  size_t n = strlen (manifest), k = strlen (SC_MANIFEST_SUFFIX);
  if (n <= k || strcmp (manifest + n - k, SC_MANIFEST_SUFFIX) != 0)
    return NULL;
  return strndup (manifest, n - k);
}

/* `name` beside the file at `path`: in the same directory. */
static char *
beside (const char *path, const char *name)
{
  const char *slash = strrchr (path, '/');
  const char *base = strrchr (name, '/');
  char *out;

  base = base ? base + 1 : name;
  if (asprintf (&out, "%.*s%s", slash ? (int) (slash - path + 1) : 0, path,
                base) < 0)
    return NULL;
  return out;
}

static bool
same_file (const char *a, const char *b)
{
  struct stat sa, sb;
  return stat (a, &sa) == 0 && stat (b, &sb) == 0 && sa.st_dev == sb.st_dev
    && sa.st_ino == sb.st_ino;
}

/* A new link at the end of c, its manifest read from `manifest`. */
static int
add_link (struct sc_chain *c, const char *manifest, char *why, size_t len)
{
  struct sc_chain_link *v = reallocarray (c->v, c->n + 1, sizeof *v);
  struct sc_chain_link *l;
  int r;

  if (!v) {
    snprintf (why, len, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  c->v = v;
  l = &c->v[c->n];
  memset (l, 0, sizeof *l);
  if (!(l->manifest = strdup (manifest))) {
    snprintf (why, len, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  c->n++;                       /* freed with c from here on */
  r = sc_manifest_read (manifest, &l->m, why, len);
  if (r < 0)
    return r;
  if (sc_image_format_parse (l->m.format, &l->format) < 0) {
    snprintf (why, len, "manifest %s: format %s", manifest, l->m.format);
    return -EINVAL;
  }
  return 0;
}

/* What a manifest found for the link below child is. */
enum candidate { C_ABSENT, C_BASE, C_OTHER, C_DAMAGED };

/* The manifest at path as the base of child: C_BASE when it is a backup
 * of child's base (by UUID) of child's volume; else why says what it
 * is. */
static enum candidate
probe (const char *path, const struct sc_manifest *child, char *why,
       size_t len)
{
  struct sc_manifest *m;
  struct stat st;
  enum candidate r = C_BASE;

  if (stat (path, &st) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return C_ABSENT;
    snprintf (why, len, "cannot open manifest %s: %s", path,
              strerror (errno));
    return C_DAMAGED;
  }
  if (!(m = calloc (1, sizeof *m))) {
    snprintf (why, len, "%s", strerror (ENOMEM));
    return C_DAMAGED;
  }
  if (sc_manifest_read (path, m, why, len) < 0)
    r = C_DAMAGED;
  else if (strcmp (m->snapshot_uuid, child->base_uuid) != 0) {
    snprintf (why, len, "a backup of snapshot %s (UUID %s), not of its "
              "base (UUID %s)", m->snapshot_name, m->snapshot_uuid,
              child->base_uuid);
    r = C_OTHER;
  }
  else if (strcmp (m->volume_uuid, child->volume_uuid) != 0) {
    snprintf (why, len, "a backup of volume %s, not of its volume %s",
              m->volume_uuid, child->volume_uuid);
    r = C_OTHER;
  }
  sc_manifest_free (m);
  free (m);
  return r;
}

/* Whether QEMU reads the image of `manifest` right below the qcow2
 * image `child` (false too when qemu-img cannot say: the check of the
 * whole run, check_qemu, then says why). */
static bool
qemu_reads (const char *child, const char *manifest)
{
  struct sc_qemu_chain q;
  char why[1536], *image = image_of (manifest);
  bool yes = false;

  if (image && sc_qemu_img_chain (child, SC_IMAGE_QCOW2, &q, why,
                                  sizeof why) == 0) {
    yes = q.n >= 2 && same_file (q.v[1].filename, image);
    sc_qemu_chain_free (&q);
  }
  free (image);
  return yes;
}

/* Link k (l), found below child: it must be child's base, of the same
 * volume and size, with its image there. */
static int
check_link (const struct sc_chain_link *l, const struct sc_chain_link *child,
            const char *target, size_t k, char *err, size_t errlen)
{
  struct stat st;

  if (strcmp (l->m.snapshot_uuid, child->m.base_uuid) != 0) {
    snprintf (err, errlen, "the chain of %s is broken: link %zu, %s, is a "
              "backup of snapshot %s (UUID %s), but %s was made on base "
              "UUID %s: it is not its PREV", target, k, l->image,
              l->m.snapshot_name, l->m.snapshot_uuid, child->image,
              child->m.base_uuid);
    return -EINVAL;
  }
  if (strcmp (l->m.volume_uuid, child->m.volume_uuid) != 0) {
    snprintf (err, errlen, "the chain of %s is broken: link %zu, %s, is a "
              "backup of volume %s, not of %s's volume %s", target, k,
              l->image, l->m.volume_uuid, child->image,
              child->m.volume_uuid);
    return -EINVAL;
  }
  if (l->m.volume_size != child->m.volume_size) {
    snprintf (err, errlen, "the chain of %s is broken: link %zu, %s, is "
              "%" PRIu64 " bytes; %s is %" PRIu64, target, k, l->image,
              l->m.volume_size, child->image, child->m.volume_size);
    return -EINVAL;
  }
  if (stat (l->image, &st) < 0) {
    int e = errno;
    snprintf (err, errlen, "the chain of %s is broken: link %zu, the image "
              "%s, is missing (its manifest is there): %s", target, k,
              l->image, strerror (e));
    return -e;
  }
  return 0;
}

/* The link below c->v[c->n - 1] (an incremental), found, read and
 * checked to be its base.  Where it is looked for (backup-chain.h):
 * beside the child first, when a manifest of the recorded file name is
 * there and is the child's base; else at the recorded path. */
static int
add_prev (struct sc_chain *c, const char *target, char *err, size_t errlen)
{
  const struct sc_chain_link *child = &c->v[c->n - 1];
  /* A copy: add_link moves c->v, and the child's manifest with it. */
  char named[sizeof child->m.prev_manifest];
  size_t k = c->n + 1;          /* the new link's number, from 1 */
  char *alt = NULL, *note = NULL, why[1536], bwhy[1536];
  const char *path = named;
  struct stat st;
  bool moved = false;
  int r;

  memcpy (named, child->m.prev_manifest, sizeof named);
  if (!(alt = beside (child->manifest, named))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (strcmp (alt, named) != 0 && !same_file (alt, named)) {
    switch (probe (alt, &child->m, bwhy, sizeof bwhy)) {
    case C_ABSENT:
      break;
    case C_DAMAGED:
      snprintf (err, errlen, "the chain of %s is broken: link %zu (the PREV "
                "of %s), beside it: %s", target, k, child->image, bwhy);
      free (alt);
      return -EINVAL;
    case C_BASE:
      /* A chain is kept together: the copy beside wins over the path
       * recorded when the backup was made (QEMU too reads a backing
       * file named by its file name beside its overlay).  But a qcow2
       * overlay that names its backing file by absolute path reads
       * that one: then it is the link, if it is the base as well. */
      path = alt;
      moved = true;
      if (probe (named, &child->m, why, sizeof why) == C_BASE) {
        if (child->format == SC_IMAGE_QCOW2 &&
            qemu_reads (child->image, named)) {
          path = named;
          moved = false;
          r = asprintf (&note, "QEMU reads it below %s; %s beside it is "
                        "another copy of the same backup, not read",
                        child->image, alt);
        }
        else
          r = asprintf (&note, "read beside %s; the manifest of %s names "
                        "%s, another copy of the same backup", child->image,
                        child->image, named);
        if (r < 0)
          note = NULL;
      }
      break;
    case C_OTHER:
      /* Not this chain's: the recorded path, if there is one. */
      if (stat (named, &st) == 0) {
        if (asprintf (&note, "%s beside %s is %s: the recorded one was "
                      "read", alt, child->image, bwhy) < 0)
          note = NULL;
      }
      else {
        path = alt;
        moved = true;
      }
      break;
    }
  }
  if (path == named && stat (named, &st) < 0 && errno == ENOENT) {
    if (strcmp (alt, named) == 0)
      snprintf (err, errlen, "the chain of %s is broken: link %zu (the "
                "PREV of %s) is missing: no manifest at %s", target, k,
                child->image, named);
    else
      snprintf (err, errlen, "the chain of %s is broken: link %zu (the "
                "PREV of %s) is missing: no manifest at %s, nor beside "
                "%s at %s", target, k, child->image, named, child->image,
                alt);
    free (alt);
    free (note);
    return -ENOENT;
  }
  for (size_t i = 0; i < c->n; i++)
    if (same_file (c->v[i].manifest, path)) {
      snprintf (err, errlen, "the chain of %s is broken: link %zu (the PREV "
                "of %s) is %s, which is link %zu already: a loop", target,
                k, child->image, path, i + 1);
      free (alt);
      free (note);
      return -EINVAL;
    }
  r = add_link (c, path, why, sizeof why);
  free (alt);
  child = &c->v[c->n - 2];      /* c->v moved */
  struct sc_chain_link *l = &c->v[c->n - 1];
  if (r < 0) {
    free (note);
    snprintf (err, errlen, "the chain of %s is broken: link %zu (the PREV "
              "of %s): %s", target, k, child->image, why);
    return r;
  }
  l->moved = moved;
  l->note = note;
  if (!(l->recorded = strdup (named))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (!(l->image = image_of (l->manifest))) {
    snprintf (err, errlen, "the chain of %s is broken: %s names %s as its "
              "PREV's manifest, which does not end in %s", target,
              child->manifest, named, SC_MANIFEST_SUFFIX);
    return -EINVAL;
  }
  return check_link (l, child, target, k, err, errlen);
}

/* Whether QEMU reads below link i (the top of a run of qcow2 links) the
 * images the manifests name. */
static int
check_qemu (const struct sc_chain *c, size_t i, const char *target,
            char *err, size_t errlen)
{
  struct sc_qemu_chain q;
  char why[1536];
  size_t j = i;
  int r;

  while (j + 1 < c->n && c->v[j].format == SC_IMAGE_QCOW2 &&
         c->v[j].m.incremental)
    j++;
  r = sc_qemu_img_chain (c->v[i].image, SC_IMAGE_QCOW2, &q, why,
                         sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "the chain of %s is broken: %s", target, why);
    return r;
  }
  r = -EIO;
  for (size_t k = 0; k < q.n; k++) {
    if (i + k > j) {
      const struct sc_chain_link *above = &c->v[i + k - 1];
      snprintf (err, errlen, "the chain of %s is broken: QEMU reads %s "
                "below %s, but its manifest says it is %s", target,
                q.v[k].filename, above->image, above->m.incremental
                ? "a raw image" : "a full backup");
      goto out;
    }
    const struct sc_chain_link *l = &c->v[i + k];
    if (k > 0 && !same_file (q.v[k].filename, l->image)) {
      snprintf (err, errlen, "the chain of %s is broken: QEMU reads %s "
                "below %s, but its manifest's PREV is %s", target,
                q.v[k].filename, c->v[i + k - 1].image, l->image);
      goto out;
    }
    if (strcmp (q.v[k].format, l->m.format) != 0) {
      snprintf (err, errlen, "the chain of %s is broken: QEMU reads %s as "
                "%s, but its manifest says %s", target, l->image,
                q.v[k].format, l->m.format);
      goto out;
    }
  }
  if (i + q.n <= j) {
    const struct sc_chain_link *l = &c->v[i + q.n - 1];
    snprintf (err, errlen, "the chain of %s is broken: %s has no backing "
              "file for QEMU, but its manifest makes it an incremental on "
              "%s", target, l->image, c->v[i + q.n].image);
    goto out;
  }
  r = 0;
out:
  sc_qemu_chain_free (&q);
  return r;
}

int
sc_chain_open (const char *target, enum sc_chain_scope scope,
               struct sc_chain *c, char *err, size_t errlen)
{
  char *manifest = NULL, why[1536];
  struct stat st;
  int r;

  memset (c, 0, sizeof *c);
  if (asprintf (&manifest, "%s%s", target, SC_MANIFEST_SUFFIX) < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = add_link (c, manifest, why, sizeof why);
  free (manifest);
  if (r < 0) {
    snprintf (err, errlen, "%s", why);
    return r;
  }
  if (!(c->v[0].image = strdup (target))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (stat (target, &st) < 0) {
    r = -errno;
    snprintf (err, errlen, "cannot open %s: %s", target, strerror (-r));
    return r;
  }
  for (;;) {
    const struct sc_chain_link *l = &c->v[c->n - 1];
    if (!l->m.incremental)
      break;
    if (scope == SC_CHAIN_READ && l->format != SC_IMAGE_QCOW2)
      break;
    if (c->n >= SC_CHAIN_MAX_LINKS) {
      snprintf (err, errlen, "the chain of %s is longer than %d links",
                target, SC_CHAIN_MAX_LINKS);
      return -E2BIG;
    }
    if ((r = add_prev (c, target, err, errlen)) < 0)
      return r;
  }
  for (size_t i = 0; i < c->n; i++) {
    if (c->v[i].format != SC_IMAGE_QCOW2)
      continue;
    if (i > 0 && c->v[i - 1].format == SC_IMAGE_QCOW2 &&
        c->v[i - 1].m.incremental)
      continue;                 /* checked with the run it belongs to */
    if ((r = check_qemu (c, i, target, err, errlen)) < 0)
      return r;
  }
  return 0;
}

void
sc_chain_free (struct sc_chain *c)
{
  for (size_t i = 0; i < c->n; i++) {
    free (c->v[i].image);
    free (c->v[i].manifest);
    free (c->v[i].recorded);
    free (c->v[i].note);
    sc_manifest_free (&c->v[i].m);
  }
  free (c->v);
  c->v = NULL;
  c->n = 0;
}

void
sc_chain_print_where (const struct sc_chain *c, FILE *f)
{
  for (size_t i = 1; i < c->n; i++) {
    const struct sc_chain_link *l = &c->v[i];
    if (l->note)
      fprintf (f, "link %zu, %s: %s\n", i + 1, l->image, l->note);
    else if (l->moved)
      fprintf (f, "link %zu, %s: read beside %s, not at %s, where the "
               "manifest of %s names it\n", i + 1, l->image,
               c->v[i - 1].image, l->recorded, c->v[i - 1].image);
  }
}

/* The walk of sc_chain_each_file: manifests to visit, and those seen. */
struct walk {
  char **todo;
  size_t ntodo;
  struct stat *seen;
  size_t nseen;
};

static int
walk_push (struct walk *w, const char *manifest)
{
  char **v = reallocarray (w->todo, w->ntodo + 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  w->todo = v;
  if (!(v[w->ntodo] = strdup (manifest)))
    return -ENOMEM;
  w->ntodo++;
  return 0;
}

/* Calls fn on the manifest and the image of `manifest`, and queues the
 * candidates for its PREV that are its base. */
static int
walk_one (struct walk *w, const char *manifest,
          int (*fn) (void *opaque, const char *path), void *opaque)
{
  struct sc_manifest *m = NULL;
  char *image = image_of (manifest), *alt = NULL, why[1536];
  struct stat st, *seen;
  int r = 0;

  if (stat (manifest, &st) < 0)
    goto out;
  for (size_t i = 0; i < w->nseen; i++)
    if (w->seen[i].st_dev == st.st_dev && w->seen[i].st_ino == st.st_ino)
      goto out;
  if (w->nseen >= 2 * SC_CHAIN_MAX_LINKS)
    goto out;
  if (!(seen = reallocarray (w->seen, w->nseen + 1, sizeof *seen))) {
    r = -ENOMEM;
    goto out;
  }
  w->seen = seen;
  w->seen[w->nseen++] = st;
  if ((r = fn (opaque, manifest)) != 0 || (image && (r = fn (opaque, image))))
    goto out;
  if (!(m = calloc (1, sizeof *m))) {
    r = -ENOMEM;
    goto out;
  }
  if (sc_manifest_read (manifest, m, why, sizeof why) < 0 || !m->incremental)
    goto out;
  if (!(alt = beside (manifest, m->prev_manifest))) {
    r = -ENOMEM;
    goto out;
  }
  if (probe (alt, m, why, sizeof why) == C_BASE)
    r = walk_push (w, alt);
  if (r == 0 && probe (m->prev_manifest, m, why, sizeof why) == C_BASE)
    r = walk_push (w, m->prev_manifest);
out:
  if (m)
    sc_manifest_free (m);
  free (m);
  free (alt);
  free (image);
  return r;
}

int
sc_chain_each_file (const struct sc_chain *c,
                    int (*fn) (void *opaque, const char *path), void *opaque)
{
  struct walk w = { NULL };
  int r = 0;

  for (size_t i = 0; i < c->n && r == 0; i++) {
    if ((r = fn (opaque, c->v[i].image)) == 0)
      r = fn (opaque, c->v[i].manifest);
  }
  if (r == 0 && c->n > 0)
    r = walk_push (&w, c->v[0].manifest);
  while (r == 0 && w.ntodo > 0) {
    char *manifest = w.todo[--w.ntodo];
    r = walk_one (&w, manifest, fn, opaque);
    free (manifest);
  }
  while (w.ntodo > 0)
    free (w.todo[--w.ntodo]);
  free (w.todo);
  free (w.seen);
  return r;
}
