/* shadowcopy: one backup, full or incremental, with its manifest
 * (backup-job.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "tools/backup-job.h"
#include "tools/diff-client.h"

static void
now_iso (char *buf, size_t len)
{
  time_t t = time (NULL);
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* DIFF SNAPSHOT SNAPSHOT: who the snapshot and its volume are. */
static int
identify (struct sc_client *c, const char *name, struct sc_diff *id,
          char *err, size_t errlen)
{
  memset (id, 0, sizeof *id);
  int r = sc_diff_fetch (c, name, name, id, err, errlen);
  if (r < 0)
    return r;
  free (id->v);
  id->v = NULL;
  if (strcmp (id->to.type, "snapshot") != 0) {
    snprintf (err, errlen, "%s is a %s, not a snapshot: it has no data to "
              "back up", name, id->to.type);
    return -EINVAL;
  }
  return 0;
}

static int
connect_export (const char *socket, const char *name, uint64_t size,
                struct nbd_handle **out, char *err, size_t errlen)
{
  struct nbd_handle *h = nbd_create ();
  int64_t got;

  if (!h) {
    snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
    return -ENOMEM;
  }
  if (nbd_set_export_name (h, name) < 0 ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
      nbd_connect_unix (h, socket) < 0) {
    snprintf (err, errlen, "cannot open the export of %s on %s: %s", name,
              socket, nbd_get_error ());
    nbd_close (h);
    return -EIO;
  }
  got = nbd_get_size (h);
  if (got < 0 || (uint64_t) got != size) {
    snprintf (err, errlen, "the export of %s on %s is %" PRId64 " bytes; "
              "the volume is %" PRIu64, name, socket, got, size);
    nbd_close (h);
    return -EIO;
  }
  *out = h;
  return 0;
}

/* The blocks of the image that the ranges d touch. */
static bool *
touched_blocks (const struct sc_diff *d, uint64_t nblocks, uint64_t bs)
{
  bool *touched = calloc (nblocks ? nblocks : 1, sizeof *touched);
  for (size_t i = 0; touched && i < d->n; i++)
    for (uint64_t b = d->v[i].offset / bs;
         b * bs < d->v[i].offset + d->v[i].length; b++)
      touched[b] = true;
  return touched;
}

/* An incremental recomputes the CRC of every block it writes to, over
 * PREV's bytes in the rest of the block: those must first be PREV's as
 * its manifest knows them, or damage in PREV would be taken in under a
 * fresh CRC.  TARGET.partial holds PREV's content now. */
static int
check_prev_blocks (struct sc_backup_target *tgt,
                   const struct sc_manifest *prev, const struct sc_diff *d,
                   char *err, size_t errlen)
{
  bool *touched;
  int r = 0;

  if (prev->block_size != SC_MANIFEST_BLOCK_SIZE)
    return 0;                   /* every block is summed anew */
  touched = touched_blocks (d, prev->nblocks, prev->block_size);
  if (!touched) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  for (uint64_t b = 0; b < prev->nblocks && r == 0; b++) {
    uint32_t crc;
    if (!touched[b])
      continue;
    r = sc_backup_target_block_crc (tgt, prev->block_size, b, &crc, err,
                                    errlen);
    if (r == 0 && crc != prev->crc[b]) {
      uint64_t end = (b + 1) * prev->block_size;
      snprintf (err, errlen, "PREV is damaged: bytes %" PRIu64 "-%" PRIu64
                " do not match its manifest (shadowcopy verify names it); "
                "make a full backup", b * prev->block_size,
                (end < prev->volume_size ? end : prev->volume_size) - 1);
      r = -EIO;
    }
  }
  free (touched);
  return r;
}

/* Each block's CRC32C: from the image where this backup wrote (all of it
 * for a full backup), from PREV's manifest elsewhere. */
static int
sum_blocks (struct sc_backup_target *tgt, struct sc_manifest *m,
            const struct sc_manifest *prev, const struct sc_diff *d,
            char *err, size_t errlen)
{
  bool *touched = NULL;
  int r = 0;

  m->block_size = SC_MANIFEST_BLOCK_SIZE;
  m->nblocks = sc_manifest_blocks (m->volume_size, m->block_size);
  m->crc = calloc (m->nblocks ? m->nblocks : 1, sizeof *m->crc);
  if (prev && prev->block_size == m->block_size) {
    touched = touched_blocks (d, m->nblocks, m->block_size);
    if (!touched)
      r = -ENOMEM;
  }
  if (!m->crc)
    r = -ENOMEM;
  if (r < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    free (touched);
    return r;
  }
  for (uint64_t b = 0; b < m->nblocks && r == 0; b++) {
    if (touched && !touched[b])
      m->crc[b] = prev->crc[b];
    else
      r = sc_backup_target_block_crc (tgt, m->block_size, b, &m->crc[b],
                                      err, errlen);
  }
  free (touched);
  return r;
}

/* Read PREV's manifest; prev_path gets its absolute path. */
static int
read_prev (const char *prev, struct sc_manifest *pm, char *prev_path,
           char *err, size_t errlen)
{
  char rel[PATH_MAX + 32];
  if ((size_t) snprintf (rel, sizeof rel, "%s%s", prev, SC_MANIFEST_SUFFIX)
      >= sizeof rel) {
    snprintf (err, errlen, "--base %s: path too long", prev);
    return -ENAMETOOLONG;
  }
  char why[1536];
  int r = sc_manifest_read (rel, pm, why, sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "--base %s: %s", prev, why);
    return r;
  }
  if (!realpath (rel, prev_path)) {
    r = -errno;
    snprintf (err, errlen, "--base %s: %s: %s", prev, rel, strerror (-r));
    return r;
  }
  return 0;
}

/* DIFF BASE SNAPSHOT into d, and the chain checks against PREV. */
static int
incremental_ranges (struct sc_client *c, const struct sc_backup_job *job,
                    const struct sc_diff *id, const struct sc_manifest *prev,
                    struct sc_diff *d, char *err, size_t errlen)
{
  char why[1024];
  int r = sc_diff_fetch (c, job->since, job->snapshot, d, why, sizeof why);
  if (r < 0) {
    snprintf (err, errlen, "--since %s: %s%s", job->since, why,
              r == -ENOENT ? " (BASE no longer exists: make a full "
              "backup)" : "");
    return r;
  }
  if (strcmp (prev->volume_uuid, id->volume) != 0) {
    snprintf (err, errlen, "--base %s is a backup of volume %s, not of this "
              "volume (%s)", job->prev, prev->volume_uuid, id->volume);
    return -EINVAL;
  }
  if (strcmp (prev->snapshot_uuid, d->from.uuid) != 0) {
    snprintf (err, errlen, "--base %s was made from snapshot %s (UUID %s), "
              "but --since %s has UUID %s: it is not PREV's base, so the "
              "chain would be wrong", job->prev, prev->snapshot_name,
              prev->snapshot_uuid, job->since, d->from.uuid);
    return -EINVAL;
  }
  if (prev->volume_size != id->volume_size) {
    snprintf (err, errlen, "--base %s is %" PRIu64 " bytes; the volume is %"
              PRIu64, job->prev, prev->volume_size, id->volume_size);
    return -EINVAL;
  }
  return 0;
}

/* Copy the ranges d from the snapshot's export into tgt. */
static int
copy_ranges (const struct sc_backup_job *job, uint64_t size,
             const struct sc_diff *d, struct sc_backup_target *tgt,
             struct sc_manifest *m, char *err, size_t errlen)
{
  struct nbd_handle *nbd;
  struct sc_backup_copy_opts o = {
    .target_is_zero = !job->since, .progress = job->progress,
    .progress_opaque = job->progress_opaque,
  };
  struct sc_backup_sink sink;
  struct sc_backup_stats stats = { 0 };
  int r;

  r = connect_export (job->nbd_socket, job->snapshot, size, &nbd, err,
                      errlen);
  if (r < 0)
    return r;
  sc_backup_target_sink (tgt, &sink);
  _Static_assert (sizeof (struct sc_backup_range)
                  == sizeof (struct sc_diff_extent), "one extent type");
  r = sc_backup_copy (nbd, (const struct sc_backup_range *) d->v, d->n, &o,
                      &sink, &stats, err, errlen);
  if (r == 0 && job->progress && d->n == 0)
    job->progress (job->progress_opaque, 0, 0);
  m->bytes_read = stats.bytes_read;
  m->bytes_written = stats.bytes_written;
  m->bytes_zeroed = stats.bytes_zeroed;
  nbd_shutdown (nbd, 0);
  nbd_close (nbd);
  return r;
}

int
sc_backup_run (struct sc_client *c, const struct sc_backup_job *job,
               struct sc_backup_result *res, char *err, size_t errlen)
{
  struct sc_manifest prev = { .crc = NULL }, *m = &res->m;
  struct sc_diff id, id2, d = { .v = NULL };
  struct sc_backup_target *tgt = NULL;
  char prev_path[PATH_MAX], manifest[PATH_MAX + 32];
  struct stat st;
  int r;

  memset (res, 0, sizeof *res);
  if ((size_t) snprintf (manifest, sizeof manifest, "%s%s", job->target,
                         SC_MANIFEST_SUFFIX) >= sizeof manifest) {
    snprintf (err, errlen, "--to %s: path too long", job->target);
    return -ENAMETOOLONG;
  }
  if (job->prev && (r = read_prev (job->prev, &prev, prev_path, err,
                                   errlen)) < 0)
    return r;

  m->version = SC_MANIFEST_VERSION;
  if (job->writers &&
      (r = sc_manifest_set_writers (m, job->writers, job->nwriters)) < 0) {
    snprintf (err, errlen, "%s", strerror (-r));
    goto out;
  }
  snprintf (m->format, sizeof m->format, "%s",
            sc_image_format_name (job->format));
  now_iso (m->start_time, sizeof m->start_time);
  if ((r = identify (c, job->snapshot, &id, err, errlen)) < 0)
    goto out;
  snprintf (m->volume_uuid, sizeof m->volume_uuid, "%s", id.volume);
  snprintf (m->snapshot_name, sizeof m->snapshot_name, "%s", job->snapshot);
  snprintf (m->snapshot_uuid, sizeof m->snapshot_uuid, "%s", id.to.uuid);
  m->snapshot_id = id.to.id;
  m->chunk_size = id.chunk_size;
  m->volume_size = id.volume_size;

  if (job->since) {
    if ((r = incremental_ranges (c, job, &id, &prev, &d, err, errlen)) < 0)
      goto out;
    m->incremental = true;
    snprintf (m->base_uuid, sizeof m->base_uuid, "%s", d.from.uuid);
    memcpy (m->prev_manifest, prev_path, sizeof m->prev_manifest);
  }
  else {
    d.v = malloc (sizeof *d.v);
    if (!d.v) {
      snprintf (err, errlen, "%s", strerror (ENOMEM));
      r = -ENOMEM;
      goto out;
    }
    d.v[0] = (struct sc_diff_extent) { 0, id.volume_size };
    d.n = id.volume_size ? 1 : 0;
  }

  {
    enum sc_image_format pf = SC_IMAGE_RAW;
    if (job->prev && sc_image_format_parse (prev.format, &pf) < 0)
      pf = SC_IMAGE_RAW;        /* the manifest parser allows no other */
    struct sc_backup_target_spec spec = {
      .format = job->format, .target = job->target, .prev = job->prev,
      .prev_format = pf, .size = id.volume_size,
    };
    if ((r = sc_backup_target_open (&spec, &tgt, err, errlen)) < 0)
      goto out;
  }
  /* A manifest without its TARGET is left by a backup killed between
   * the two renames: this backup's lock on TARGET.partial says no other
   * one is running, so it is stale. */
  if (lstat (job->target, &st) < 0 && lstat (manifest, &st) == 0)
    unlink (manifest);
  if (job->since && (r = check_prev_blocks (tgt, &prev, &d, err, errlen)) < 0)
    goto out;
  if ((r = copy_ranges (job, id.volume_size, &d, tgt, m, err, errlen)) < 0)
    goto out;
  if ((r = sc_backup_target_sync (tgt, err, errlen)) < 0)
    goto out;
  if ((r = sum_blocks (tgt, m, job->since ? &prev : NULL, &d, err,
                       errlen)) < 0)
    goto out;
  /* The snapshot read must still be the one named at the start. */
  r = identify (c, job->snapshot, &id2, err, errlen);
  if (r < 0 || strcmp (id2.to.uuid, id.to.uuid) != 0) {
    if (r == 0 || r == -ENOENT)
      snprintf (err, errlen, "snapshot %s was deleted or made again during "
                "the backup: %s is not kept", job->snapshot, job->target);
    r = r < 0 ? r : -ESTALE;
    goto out;
  }
  now_iso (m->end_time, sizeof m->end_time);
  if ((r = sc_manifest_write (m, manifest, err, errlen)) < 0)
    goto out;
  res->reflinked = tgt->reflinked;
  r = sc_backup_target_commit (tgt, err, errlen);
  tgt = NULL;
  if (r < 0)
    unlink (manifest);          /* ours: written just above */

out:
  sc_backup_target_abort (tgt);
  free (d.v);
  sc_manifest_free (&prev);
  return r;
}
