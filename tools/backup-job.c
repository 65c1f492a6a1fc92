/* shadowcopy: one backup, full or incremental, with its manifest
 * (backup-job.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "cow/crc32c.h"
#include "tools/backup-job.h"
#include "tools/export-identity.h"
#include "tools/backup-resume.h"
#include "tools/backup-sums.h"
#include "tools/backup-writer.h"
#include "tools/cli.h"
#include "tools/diff-result.h"
#include "tools/image-nbd.h"
#include "tools/nbd-guard.h"

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
identify (struct shadowcopy *c, const char *name, struct sc_diff *id,
          char *err, size_t errlen)
{
  memset (id, 0, sizeof *id);
  int r = sc_cli_diff_fetch (c, name, name, id, err, errlen);
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

/* libnbd does not zero a read's buffer first (as nbdcopy): the copy
 * engine looks at a buffer only after its read succeeded with every byte
 * of it sent (backup-copy.c counts the reply's pieces). */
/* The export must be snapshot uuid, as the control socket named it
 * (export-identity.h): its description is asked for (full info). */
static int
connect_export (const struct sc_nbd_target *t, const char *name,
                const char *uuid, uint64_t size,
                struct nbd_handle **out, char *err, size_t errlen)
{
  struct nbd_handle *h = nbd_create ();
  char why[1024] = "";
  int64_t got;

  if (!h) {
    snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
    return -ENOMEM;
  }
  if (nbd_set_pread_initialize (h, false) < 0 ||  /* see the note above */
      nbd_set_full_info (h, true) < 0 ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0)
    snprintf (why, sizeof why, "%s", nbd_get_error ());
  /* Guarded: a kill -9 of the CLI with reads in flight must not abort
   * nbdkit 1.32 (tools/nbd-guard.c). */
  else
    sc_nbd_guard_connect (h, t, name, why, sizeof why);
  if (why[0]) {
    snprintf (err, errlen, "cannot open the export of %s on %s: %s", name,
              sc_nbd_target_text (t), why);
    nbd_close (h);
    return -EIO;
  }
  int r = sc_export_identity_check (h, name, sc_nbd_target_text (t), uuid,
                                    err, errlen);
  if (r < 0) {
    sc_nbd_guard_close (h);
    return r;
  }
  got = nbd_get_size (h);
  if (got < 0 || (uint64_t) got != size) {
    snprintf (err, errlen, "the export of %s on %s is %" PRId64 " bytes; "
              "the volume is %" PRIu64, name, sc_nbd_target_text (t), got,
              size);
    sc_nbd_guard_close (h);
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

/* The CRC32C of block i (block_size bytes) of an image. */
typedef int (*block_crc_fn) (void *opaque, uint64_t block_size, uint64_t i,
                             uint32_t *crc, char *err, size_t errlen);

static int
target_block_crc (void *opaque, uint64_t block_size, uint64_t i,
                  uint32_t *crc, char *err, size_t errlen)
{
  return sc_backup_target_block_crc (opaque, block_size, i, crc, err,
                                     errlen);
}

/* PREV itself, opened through qemu-nbd. */
struct prev_image {
  struct nbd_handle *nbd;
  char name[PATH_MAX + 8];      /* "PREV path", for messages */
  uint64_t size;
};

static int
prev_block_crc (void *opaque, uint64_t block_size, uint64_t i,
                uint32_t *crc, char *err, size_t errlen)
{
  struct prev_image *p = opaque;
  return sc_image_nbd_block_crc (p->nbd, p->name, p->size, block_size, i,
                                 crc, err, errlen);
}

/* An incremental recomputes the CRC of every block it writes to, over
 * PREV's bytes in the rest of the block: those must first be PREV's as
 * its manifest knows them, or damage in PREV would be taken in under a
 * fresh CRC.  fn reads TARGET.partial, which holds PREV's content now,
 * or (on a resume of an overlay) PREV itself.
 *
 * A PREV whose manifest has blocks of another size than this backup's
 * (a valid manifest, not one backup writes) lends none of its CRCs:
 * sum_blocks sums every block of the new image anew, so every block of
 * PREV is checked here, at PREV's own block size. */
static int
check_prev_blocks (block_crc_fn fn, void *opaque,
                   const struct sc_manifest *prev, const struct sc_diff *d,
                   const volatile sig_atomic_t *stop, char *err,
                   size_t errlen)
{
  bool *touched = NULL;
  int r = 0;

  if (prev->block_size == SC_MANIFEST_BLOCK_SIZE) {
    touched = touched_blocks (d, prev->nblocks, prev->block_size);
    if (!touched) {
      snprintf (err, errlen, "%s", strerror (ENOMEM));
      return -ENOMEM;
    }
  }
  for (uint64_t b = 0; b < prev->nblocks && r == 0; b++) {
    uint32_t crc;
    if (touched && !touched[b])
      continue;
    if (stop && *stop) {
      snprintf (err, errlen, "interrupted");
      r = -EINTR;
      break;
    }
    r = fn (opaque, prev->block_size, b, &crc, err, errlen);
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

/* A resumed overlay reads PREV as its backing file, now: PREV may have
 * been damaged since the run that checked it, so its blocks are checked
 * again, read from PREV itself (the overlay has new data in some). */
static int
check_prev_again (const struct sc_backup_job *job,
                  const struct sc_manifest *prev, const struct sc_diff *d,
                  char *err, size_t errlen)
{
  struct prev_image p = { .size = prev->volume_size };
  enum sc_image_format pf = SC_IMAGE_RAW;
  int r;

  snprintf (p.name, sizeof p.name, "PREV %s", job->prev);
  if (sc_image_format_parse (prev->format, &pf) < 0)
    pf = SC_IMAGE_RAW;          /* the manifest parser allows no other */
  if ((r = sc_image_nbd_open (job->prev, pf, false, &p.nbd, NULL, err,
                              errlen)) < 0)
    return r;
  r = check_prev_blocks (prev_block_crc, &p, prev, d, job->stop, err,
                         errlen);
  nbd_shutdown (p.nbd, 0);
  nbd_close (p.nbd);
  return r;
}

/* Each block's CRC32C: where this backup wrote (all of it for a full
 * backup), from the copy when it summed the block (sums, backup-sums.h),
 * else from the image; from PREV's manifest elsewhere. */
static int
sum_blocks (struct sc_backup_target *tgt, struct sc_manifest *m,
            const struct sc_manifest *prev, const struct sc_diff *d,
            const struct sc_backup_sums *sums,
            const volatile sig_atomic_t *stop, char *err, size_t errlen)
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
    if (stop && *stop) {
      snprintf (err, errlen, "interrupted");
      r = -EINTR;
    }
    else if (touched && !touched[b])
      m->crc[b] = prev->crc[b];
    else if (sc_backup_sums_get (sums, b, &m->crc[b]))
      ;
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
incremental_ranges (struct shadowcopy *c, const struct sc_backup_job *job,
                    const struct sc_diff *id, const struct sc_manifest *prev,
                    struct sc_diff *d, char *err, size_t errlen)
{
  char why[1024];
  int r = sc_cli_diff_fetch (c, job->since, job->snapshot, d, why, sizeof why);
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

/* One run of a backup: what the watermark callback needs. */
struct run {
  const struct sc_backup_job *job;
  struct sc_backup_target *tgt;
  struct sc_resume_state st;    /* this backup's, with its progress */
  char partial[PATH_MAX + 16];  /* TARGET.partial */
  char path[PATH_MAX + 16];     /* TARGET.resume */
  bool durable;                 /* a state on disk covers TARGET.partial */
  struct sc_backup_sums *sums;  /* blocks summed by the copy; NULL: none */
  struct sc_backup_writer *writer;      /* during the copy; NULL: none */
};

/* The engine's watermark made durable: the target first, then the
 * state that says how far it is. */
static int
on_watermark (void *opaque, uint64_t watermark,
              const struct sc_backup_stats *stats, char *err, size_t errlen)
{
  struct run *run = opaque;
  int r = 0;

  if (run->writer)
    r = sc_backup_writer_flush (run->writer, err, errlen);
  if (r == 0)
    r = sc_backup_target_sync (run->tgt, err, errlen);
  if (r < 0)
    return r;
  run->st.watermark = watermark;
  run->st.bytes_read = stats->bytes_read;
  run->st.bytes_written = stats->bytes_written;
  run->st.bytes_zeroed = stats->bytes_zeroed;
  r = sc_resume_write (run->path, &run->st, err, errlen);
  if (r == 0)
    run->durable = true;
  return r;
}

/* Copy the ranges d from the snapshot's export into run->tgt, from
 * start on; stats hold the counts below start, and get the total. */
static int
copy_ranges (struct run *run, const struct sc_diff *d, uint64_t start,
             struct sc_backup_stats *stats, unsigned *nconn, char *err,
             size_t errlen)
{
  const struct sc_backup_job *job = run->job;
  struct nbd_handle *nbd[SC_BACKUP_MAX_CONNECTIONS];
  unsigned want = job->connections ? job->connections
    : SC_BACKUP_CONNECTIONS, n = 0;
  struct sc_backup_copy_opts o = {
    .target_is_zero = !job->since, .progress = job->progress,
    .progress_opaque = job->progress_opaque, .start = start,
    .watermark = on_watermark, .watermark_opaque = run, .stop = job->stop,
    /* One read per manifest block, summed as it is written. */
    .request_size = SC_MANIFEST_BLOCK_SIZE,
    .piece = run->sums ? sc_backup_sums_piece : NULL,
    .piece_opaque = run->sums,
  };
  struct sc_backup_sink sink;
  int r;

  if (want > SC_BACKUP_MAX_CONNECTIONS)
    want = SC_BACKUP_MAX_CONNECTIONS;
  r = connect_export (&job->nbd, job->snapshot, run->st.snapshot_uuid,
                      run->st.volume_size, &nbd[n], err, errlen);
  if (r < 0)
    return r;
  /* More connections only where the server says they see one export. */
  if (nbd_can_multi_conn (nbd[0]) != 1)
    want = 1;
  for (n = 1; n < want && r == 0; n++)
    r = connect_export (&job->nbd, job->snapshot, run->st.snapshot_uuid,
                        run->st.volume_size, &nbd[n], err, errlen);
  if (r < 0)
    n--;
  *nconn = n;
  o.requests = 16 * n;
  sc_backup_target_sink (run->tgt, &sink);
  /* The target's writes on a thread of their own (backup-writer.h);
   * without one, on this thread. */
  if (sc_backup_writer_start (&sink, 4, SC_MANIFEST_BLOCK_SIZE,
                              &run->writer) == 0)
    sc_backup_writer_sink (run->writer, &sink);
  _Static_assert (sizeof (struct sc_backup_range)
                  == sizeof (struct sc_diff_extent), "one extent type");
  if (r == 0)
    r = sc_backup_copy (nbd, n, (const struct sc_backup_range *) d->v, d->n,
                        &o, &sink, stats, err, errlen);
  char why[1024];
  int rw = sc_backup_writer_stop (run->writer, r < 0 ? why : err,
                                  r < 0 ? sizeof why : errlen);
  run->writer = NULL;
  if (r == 0)
    r = rw;
  else if (rw < 0)              /* the write that failed, at its offset */
    snprintf (err, errlen, "%s", why);
  if (r == 0 && job->progress && d->n == 0)
    job->progress (job->progress_opaque, 0, 0);
  for (unsigned i = 0; i < n; i++)
    sc_nbd_guard_close (nbd[i]);
  return r;
}

/* A fingerprint of PREV's manifest: what a resume must find again. */
static uint32_t
prev_fingerprint (const struct sc_manifest *prev)
{
  uint32_t crc = crc32c (0, prev->snapshot_uuid,
                         strlen (prev->snapshot_uuid));
  crc = crc32c (crc, &prev->block_size, sizeof prev->block_size);
  return crc32c (crc, prev->crc, prev->nblocks * sizeof *prev->crc);
}

/* Who this backup is, as its resume state records it. */
static void
identity (struct run *run, const struct sc_manifest *m,
          const struct sc_diff *d, const struct sc_manifest *prev)
{
  struct sc_resume_state *st = &run->st;
  memset (st, 0, sizeof *st);
  snprintf (st->volume_uuid, sizeof st->volume_uuid, "%s", m->volume_uuid);
  snprintf (st->snapshot_name, sizeof st->snapshot_name, "%s",
            m->snapshot_name);
  st->snapshot_id = m->snapshot_id;
  snprintf (st->snapshot_uuid, sizeof st->snapshot_uuid, "%s",
            m->snapshot_uuid);
  st->incremental = m->incremental;
  if (m->incremental) {
    snprintf (st->base_uuid, sizeof st->base_uuid, "%s", m->base_uuid);
    snprintf (st->prev_manifest, sizeof st->prev_manifest, "%s",
              m->prev_manifest);
    st->prev_fingerprint = prev_fingerprint (prev);
  }
  snprintf (st->format, sizeof st->format, "%s", m->format);
  st->volume_size = m->volume_size;
  st->ranges_count = d->n;
  for (size_t i = 0; i < d->n; i++)
    st->ranges_bytes += d->v[i].length;
  st->ranges_crc = sc_resume_ranges_crc ((const struct sc_backup_range *)
                                         d->v, d->n);
  snprintf (st->start_time, sizeof st->start_time, "%s", m->start_time);
}

/* -EBUSY when another backup to this TARGET holds TARGET.partial. */
static int
partial_busy (const char *partial)
{
  int fd = open (partial, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;
  if (fd < 0)
    return 0;
  if (flock (fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
    r = -EBUSY;
  close (fd);
  return r;
}

/* With --resume: whether TARGET.partial can be continued (saved gets its
 * state); if not, why, into why. */
static bool
can_resume (struct run *run, struct sc_resume_state *saved, char *why,
            size_t whylen)
{
  char err[1024];
  struct stat st;
  int r = sc_resume_read (run->path, saved, err, sizeof err);

  if (r == -ENOENT && lstat (run->partial, &st) < 0)
    snprintf (why, whylen, "there is no %s", run->partial);
  else if (r == -ENOENT)
    snprintf (why, whylen, "%s has no resume state (it was stopped before "
              "its first checkpoint)", run->partial);
  else if (r < 0)
    snprintf (why, whylen, "%s", err);
  else if (sc_resume_mismatch (saved, &run->st, err, sizeof err))
    snprintf (why, whylen, "%s is not this backup: %s", run->partial, err);
  else if (lstat (run->partial, &st) < 0 || !S_ISREG (st.st_mode))
    snprintf (why, whylen, "%s is gone (its state is left)", run->partial);
  else if (strcmp (run->st.format, "raw") == 0
           && (uint64_t) st.st_size != run->st.volume_size)
    snprintf (why, whylen, "%s is %" PRIu64 " bytes, not the volume's %"
              PRIu64, run->partial, (uint64_t) st.st_size,
              run->st.volume_size);
  else
    return true;
  return false;
}

/* --resume of a backup whose snapshot no longer exists: say so; the
 * partial image can never be finished, so it goes. */
static void
snapshot_gone (struct run *run, const char *name, char *err, size_t errlen)
{
  struct sc_resume_state saved;
  char why[256];

  if (sc_resume_read (run->path, &saved, why, sizeof why) < 0
      || strcmp (saved.snapshot_name, name) != 0
      || partial_busy (run->partial) < 0) {
    snprintf (err, errlen, "snapshot %s does not exist (or no longer): "
              "there is nothing to resume", name);
    return;
  }
  snprintf (err, errlen, "snapshot %s no longer exists: %s (a backup of "
            "it, UUID %s) cannot be resumed, and is removed", name,
            run->partial, saved.snapshot_uuid);
  sc_resume_remove (run->path);
  unlink (run->partial);
}

/* After a failure of the copy: was the snapshot deleted or made again?
 * Then the partial image is of nothing that exists. */
static bool
snapshot_replaced (struct shadowcopy *c, const struct sc_backup_job *job,
                   const char *uuid)
{
  struct sc_diff id;
  char why[512];
  int r = identify (c, job->snapshot, &id, why, sizeof why);
  return r == -ENOENT || (r == 0 && strcmp (id.to.uuid, uuid) != 0);
}

/* Make TARGET.partial, continuing it when job->resume and its state is
 * this backup's; *saved gets that state (its watermark 0 otherwise). */
static int
open_target (struct run *run, const struct sc_manifest *prev,
             struct sc_resume_state *saved, char *err, size_t errlen)
{
  const struct sc_backup_job *job = run->job;
  bool resume = false;
  char why[2 * PATH_MAX + 2048];
  struct stat st;
  int r;

  memset (saved, 0, sizeof *saved);
  if (lstat (job->target, &st) == 0)
    goto open;                  /* refused there, nothing touched */
  if ((r = partial_busy (run->partial)) < 0) {
    snprintf (err, errlen, "%s: another backup to this TARGET is running",
              run->partial);
    return r;
  }
  if (job->resume) {
    resume = can_resume (run, saved, why, sizeof why);
    if (!resume) {
      sc_cli_error ("backup %s to %s: cannot resume: %s; starting over",
                    job->snapshot, job->target, why);
      memset (saved, 0, sizeof *saved);
    }
  }
  /* A state that will not be continued goes before TARGET.partial
   * changes: a crash in between must not pair it with another image. */
  if (!resume && (r = sc_resume_remove (run->path)) < 0) {
    snprintf (err, errlen, "cannot remove the stale %s: %s", run->path,
              strerror (-r));
    return r;
  }

open:;
  enum sc_image_format pf = SC_IMAGE_RAW;
  if (job->prev && sc_image_format_parse (prev->format, &pf) < 0)
    pf = SC_IMAGE_RAW;          /* the manifest parser allows no other */
  struct sc_backup_target_spec spec = {
    .format = job->format, .target = job->target, .prev = job->prev,
    .prev_format = pf, .size = run->st.volume_size, .resume = resume,
  };
  r = sc_backup_target_open (&spec, &run->tgt, err, errlen);
  if (r == -ESTALE && resume) {
    /* The target cannot keep TARGET.partial (it looked inside, as
     * can_resume does not), and left it untouched: its state goes
     * first, durably, and only then is it made anew. */
    sc_cli_error ("backup %s to %s: cannot resume: %s; starting over",
                  job->snapshot, job->target, err);
    memset (saved, 0, sizeof *saved);
    if ((r = sc_resume_remove (run->path)) < 0) {
      snprintf (err, errlen, "cannot remove the stale %s: %s", run->path,
                strerror (-r));
      return r;
    }
    spec.resume = resume = false;
    r = sc_backup_target_open (&spec, &run->tgt, err, errlen);
  }
  if (r < 0)
    return r;
  run->durable = run->tgt->resumed && resume;
  return 0;
}

/* A failure during or after the copy: TARGET.partial is kept with its
 * state when one is durable (and the format can keep it), else removed
 * with it. */
static void
fail_keeping (struct run *run, struct sc_backup_result *res, char *err,
              size_t errlen)
{
  if (run->durable && sc_backup_target_keep (run->tgt)) {
    size_t n = strlen (err);
    snprintf (err + n, errlen - n, "; %s is kept: run the same command "
              "with --resume to continue", run->partial);
    res->kept = true;
  }
  else {
    if (run->durable)
      ;                         /* keep aborted it already */
    else
      sc_backup_target_abort (run->tgt);
    sc_resume_remove (run->path);
  }
  run->tgt = NULL;
}

int
sc_backup_run (struct shadowcopy *c, const struct sc_backup_job *job,
               struct sc_backup_result *res, char *err, size_t errlen)
{
  struct sc_manifest prev = { .crc = NULL }, *m = &res->m;
  struct sc_diff id, id2, d = { .v = NULL };
  struct sc_resume_state saved;
  struct sc_backup_stats stats = { 0 };
  struct run run = { .job = job };
  struct sc_backup_sums sums = { .crc = NULL };
  char prev_path[PATH_MAX], manifest[PATH_MAX + 32];
  struct stat st, mst;
  bool keep = false;
  int r;

  memset (res, 0, sizeof *res);
  if ((size_t) snprintf (manifest, sizeof manifest, "%s%s", job->target,
                         SC_MANIFEST_SUFFIX) >= sizeof manifest
      || (size_t) snprintf (run.partial, sizeof run.partial, "%s.partial",
                            job->target) >= sizeof run.partial
      || (size_t) snprintf (run.path, sizeof run.path, "%s%s", job->target,
                            SC_RESUME_SUFFIX) >= sizeof run.path) {
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
  if ((r = identify (c, job->snapshot, &id, err, errlen)) < 0) {
    if (r == -ENOENT && job->resume)
      snapshot_gone (&run, job->snapshot, err, errlen);
    goto out;
  }
  snprintf (m->volume_uuid, sizeof m->volume_uuid, "%s", id.volume);
  snprintf (m->snapshot_name, sizeof m->snapshot_name, "%s", job->snapshot);
  snprintf (m->snapshot_uuid, sizeof m->snapshot_uuid, "%s", id.to.uuid);
  m->snapshot_id = id.to.id;
  m->chunk_size = id.chunk_size;
  m->volume_size = id.volume_size;
  /* Refused before anything is made: qemu-img would round the image up
   * to a sector, and it could never be the volume's size. */
  if (job->format == SC_IMAGE_QCOW2 && id.volume_size % 512 != 0) {
    snprintf (err, errlen, "the volume is %" PRIu64 " bytes, not a whole "
              "number of 512-byte sectors, as a qcow2 image is: use "
              "--format raw", id.volume_size);
    r = -EINVAL;
    goto out;
  }

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

  identity (&run, m, &d, &prev);
  /* The export is that snapshot (not another volume's server): asked
   * before anything is made. */
  struct nbd_handle *probe;
  if ((r = connect_export (&job->nbd, job->snapshot, m->snapshot_uuid,
                           id.volume_size, &probe, err, errlen)) < 0)
    goto out;
  sc_nbd_guard_close (probe);
  if ((r = open_target (&run, &prev, &saved, err, errlen)) < 0)
    goto out;
  if (run.durable) {
    res->resumed = true;
    res->resumed_from = saved.watermark;
    stats = (struct sc_backup_stats) { saved.bytes_read,
                                       saved.bytes_written,
                                       saved.bytes_zeroed };
    snprintf (m->start_time, sizeof m->start_time, "%s", saved.start_time);
    snprintf (run.st.start_time, sizeof run.st.start_time, "%s",
              saved.start_time);
    run.st.watermark = saved.watermark;
  }
  /* A manifest without its TARGET is left by a backup killed between
   * the two renames: this backup's lock on TARGET.partial says no other
   * one is running, so it is stale. */
  if (lstat (job->target, &st) < 0 && lstat (manifest, &st) == 0)
    unlink (manifest);
  /* PREV's blocks are checked before anything is written over them; a
   * resumed TARGET.partial has new data in some, and was checked by the
   * run that wrote its first state: a raw one holds a copy of PREV as
   * it was then, but an overlay reads PREV now, which is checked again. */
  if (job->since && !res->resumed
      && (r = check_prev_blocks (target_block_crc, run.tgt, &prev, &d,
                                  job->stop, err, errlen)) < 0)
    goto out;
  if (job->since && res->resumed && run.tgt->overlay
      && (r = check_prev_again (job, &prev, &d, err, errlen)) < 0)
    goto out;

  /* Blocks the copy writes whole are summed from its buffers.  A resumed
   * full backup skips zero ranges over what an earlier run left: those
   * blocks are summed from the image. */
  if (sc_backup_sums_init (&sums, id.volume_size, SC_MANIFEST_BLOCK_SIZE,
                           !(res->resumed && !job->since)) == 0)
    run.sums = &sums;

  /* From here on, a failure keeps the work done, if a state is durable. */
  keep = true;
  r = copy_ranges (&run, &d, saved.watermark, &stats, &res->connections,
                   err, errlen);
  res->run = (struct sc_backup_stats) {
    stats.bytes_read - saved.bytes_read,
    stats.bytes_written - saved.bytes_written,
    stats.bytes_zeroed - saved.bytes_zeroed,
  };
  if (r < 0 && r != -EINTR && snapshot_replaced (c, job, id.to.uuid)) {
    snprintf (err, errlen, "snapshot %s was deleted or made again during "
              "the backup: %s is not kept", job->snapshot, job->target);
    keep = false;
  }
  if (r < 0)
    goto out;
  m->bytes_read = stats.bytes_read;
  m->bytes_written = stats.bytes_written;
  m->bytes_zeroed = stats.bytes_zeroed;
  if ((r = sc_backup_target_sync (run.tgt, err, errlen)) < 0)
    goto out;
  if ((r = sum_blocks (run.tgt, m, job->since ? &prev : NULL, &d, run.sums,
                       job->stop, err, errlen)) < 0)
    goto out;
  /* The snapshot read must still be the one named at the start. */
  r = identify (c, job->snapshot, &id2, err, errlen);
  if (r < 0 || strcmp (id2.to.uuid, id.to.uuid) != 0) {
    if (r == 0 || r == -ENOENT) {
      snprintf (err, errlen, "snapshot %s was deleted or made again during "
                "the backup: %s is not kept", job->snapshot, job->target);
      keep = false;
    }
    r = r < 0 ? r : -ESTALE;
    goto out;
  }
  now_iso (m->end_time, sizeof m->end_time);
  if ((r = sc_manifest_write (m, manifest, &mst, err, errlen)) < 0)
    goto out;
  res->reflinked = run.tgt->reflinked;
  r = sc_backup_target_commit (run.tgt, err, errlen);
  run.tgt = NULL;
  /* Ours goes with TARGET.partial; one another process put in its place
   * (with a TARGET, which refused the rename) stays.  (Between the
   * check and the unlink it could still be replaced: there is no
   * unlink-if-same-file.) */
  if (r < 0 && lstat (manifest, &st) == 0 && st.st_dev == mst.st_dev
      && st.st_ino == mst.st_ino)
    unlink (manifest);
  /* TARGET is in place (or TARGET.partial gone): the state is of
   * nothing.  Left by a crash here, it is stale beside its TARGET. */
  unlink (run.path);

out:
  if (run.tgt && keep)
    fail_keeping (&run, res, err, errlen);
  else if (run.tgt) {
    sc_backup_target_abort (run.tgt);
    sc_resume_remove (run.path);
  }
  free (d.v);
  sc_backup_sums_free (&sums);
  sc_manifest_free (&prev);
  return r;
}
