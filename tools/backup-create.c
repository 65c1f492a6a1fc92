/* shadowcopy: `backup --create` (backup-create.h).
 *
 * Notes on the design
 *
 * Why the checkpoint comes last: a checkpoint is what the next --auto
 * goes on from, found through a manifest that names its UUID.  Kept
 * before TARGET is in place, a crash or a failure in between would leave
 * a checkpoint that no backup matches (harmless to --auto, which starts
 * from manifests, but a false claim to the user and a mark on every
 * later write).  Kept after, the worst a crash does is lose it: the
 * connection closes, the server deletes the auto-release snapshot, and
 * the next --auto says that it makes a full backup.
 *
 * DELETE keep-checkpoint=1 on the owning connection works on an
 * auto-release snapshot of a set: the engine clears its auto-release and
 * set flags as it makes it a checkpoint (cow/snapshot-table.c), the
 * session's close skips a snapshot that is no longer auto-release
 * (engine/control-create.c), and replay after a crash applies the same
 * KEEP_CHECKPOINT record before dropping auto-release snapshots.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "lib/shadowcopy.h"
#include "tools/backup-create.h"
#include "tools/cli.h"

/* Volume k of the set: where, the set's connection to it (the one that
 * owns its auto-release snapshot), and its snapshot's UUID. */
struct volume {
  const char *socket;
  struct shadowcopy *h;         /* the set's: never closed here */
  char uuid[SHADOWCOPY_UUID_LEN];
};

static struct volume
volume_of (struct sc_create_options *o, size_t k)
{
  struct volume v = { .h = shadowcopy_set_handle (o->set, k) };
  struct shadowcopy_snapshot snap;

  if (shadowcopy_set_snapshot (o->set, k, &v.socket, &snap) == 0)
    snprintf (v.uuid, sizeof v.uuid, "%s", snap.uuid);
  return v;
}

/* The manifest's writers, filled from the set's results. */
struct manifest_fill {
  struct sc_manifest_writer *v;
  size_t n;
  const char *last;             /* the set's string of writer n - 1 */
};

/* One phase of one writer; each writer keeps its last
 * SC_MANIFEST_PHASES_MAX phases. */
static void
on_result (const struct shadowcopy_writer_result *r, void *opaque)
{
  struct manifest_fill *f = opaque;
  struct sc_manifest_writer *w;

  if (!f->v)
    return;
  if (!f->n || f->last != r->writer) {
    struct sc_manifest_writer *nv = realloc (f->v, (f->n + 2) * sizeof *nv);
    if (!nv) {
      free (f->v);
      f->v = NULL;
      return;
    }
    f->v = nv;
    memset (&nv[f->n], 0, 2 * sizeof *nv);
    snprintf (nv[f->n].name, sizeof nv[f->n].name, "%s", r->writer);
    f->last = r->writer;
    f->n++;
  }
  w = &f->v[f->n - 1];
  if (w->nphases == SC_MANIFEST_PHASES_MAX) {
    memmove (w->phases, w->phases + 1,
             (SC_MANIFEST_PHASES_MAX - 1) * sizeof w->phases[0]);
    w->nphases--;
  }
  struct sc_manifest_phase *p = &w->phases[w->nphases++];
  memset (p, 0, sizeof *p);
  snprintf (p->phase, sizeof p->phase, "%s", r->phase);
  snprintf (p->result, sizeof p->result, "%s", r->result);
  snprintf (p->output, sizeof p->output, "%s", r->output);
  sc_ctl_format_time (r->when * 1000000000u, p->time, sizeof p->time);
}

/* What every writer reported, in the manifest's terms; always a list
 * (maybe empty), so the manifest says "writers" even with none. */
static struct sc_manifest_writer *
manifest_writers (const struct shadowcopy_set *s, size_t *n)
{
  struct manifest_fill f = { calloc (1, sizeof *f.v), 0, NULL };

  shadowcopy_set_writer_results (s, on_result, &f);
  *n = f.n;
  return f.v;
}

/* Back up volume k, read through h: 0, or -1 (said). */
static int
backup_volume_on (struct sc_backup_create *bc, size_t k,
                  const struct sc_manifest_writer *writers, size_t nwriters,
                  struct shadowcopy *h)
{
  struct sc_create_options *o = bc->opts;
  struct volume cv = volume_of (o, k);
  const char *name = shadowcopy_set_snapshot_name (o->set);
  struct sc_backup_create_volume *v = &bc->vols[k];
  char err[4096];
  int r;

  struct sc_backup_job job = {
    .snapshot = name, .target = v->target, .since = v->since,
    .prev = v->prev, .nbd = v->nbd, .format = bc->format,
    .progress = bc->progress, .progress_opaque = bc->progress_opaque,
    .writers = writers, .nwriters = nwriters,
    .connections = bc->connections, .stop = &sc_create_interrupted,
  };

  v->attempted = true;
  if (bc->auto_base) {
    r = sc_backup_auto (h, name, v->target, v->prev, &v->chosen,
                        err, sizeof err);
    if (r < 0) {
      sc_cli_error ("%s: backup %s to %s: %s", cv.socket, name,
                    v->target, err);
      return -1;
    }
    sc_cli_error ("%s: %s", cv.socket, v->chosen.why);
    job.since = v->chosen.incremental ? v->chosen.base : NULL;
    job.prev = v->chosen.incremental ? v->chosen.prev : NULL;
  }
  r = sc_backup_run (h, &job, &v->res, err, sizeof err);
  if (r == 1) {
    /* In place but maybe not durably: not a backup to build a chain on
     * (a checkpoint would outlive it), so none at all. */
    char manifest[PATH_MAX + 32];
    snprintf (manifest, sizeof manifest, "%s%s", v->target,
              SC_MANIFEST_SUFFIX);
    unlink (v->target);
    unlink (manifest);
    sc_cli_error ("%s: backup %s to %s: %s: removed", cv.socket, name,
                  v->target, err);
    return -1;
  }
  if (r < 0) {
    sc_cli_error ("%s: backup %s to %s: %s", cv.socket, name,
                  v->target, err);
    return -1;
  }
  v->done = true;
  return 0;
}

/* Back up volume k through the set's connection to it (the one that
 * keeps its snapshot): 0, or -1 (said). */
static int
backup_volume (struct sc_backup_create *bc, size_t k,
               const struct sc_manifest_writer *writers, size_t nwriters)
{
  struct shadowcopy *h = shadowcopy_set_handle (bc->opts->set, k);

  if (!h) {
    sc_cli_error ("%s", shadowcopy_get_error ());
    return -1;
  }
  return backup_volume_on (bc, k, writers, nwriters, h);
}

/* backup-complete to every writer, with the result; each writer's
 * results recorded (`shadowcopy writers`). */
static void
tell_writers (struct sc_create_options *o, bool ok)
{
  if (shadowcopy_set_backup_complete (o->set, ok) < 0)
    sc_cli_error ("warning: %s", shadowcopy_get_error ());
  sc_create_options_save (o);
}

/* Delete `name` on cv's connection (only if its UUID is `uuid`, when
 * given: not one made again under its name since, -ESTALE then), or keep
 * it as a checkpoint (flags). */
static int
delete_named (const struct volume *cv, const char *name, const char *uuid,
              unsigned flags, char *err, size_t errlen)
{
  int r = cv->h ? shadowcopy_delete (cv->h, name, uuid && uuid[0] ? uuid
                                                             : NULL,
                                     flags, NULL, NULL)
                : -ENOTCONN;
  if (r < 0)
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
  return r;
}

/* Volume k's snapshot kept as a checkpoint if its backup is in place,
 * else deleted; under --auto, the checkpoint its incremental went on
 * from deleted once the new one is kept.  Both deletes name the
 * snapshot by its UUID too: the names were read before the backup, and
 * another client may have deleted and made again either since. */
static void
settle_volume (struct sc_backup_create *bc, size_t k)
{
  struct volume vol = volume_of (bc->opts, k), *cv = &vol;
  const char *name = shadowcopy_set_snapshot_name (bc->opts->set);
  struct sc_backup_create_volume *v = &bc->vols[k];
  const struct sc_backup_base *b = &v->chosen;
  char err[2048];
  int r;

  if (!v->done) {
    r = delete_named (cv, name, cv->uuid, 0, err, sizeof err);
    if (r < 0 && r != -ESTALE)
      sc_cli_error ("%s: deleting snapshot %s: %s (it goes when this "
                    "command ends)", cv->socket, name, err);
    return;
  }
  if (delete_named (cv, name, NULL, SHADOWCOPY_DELETE_KEEP_CHECKPOINT, err,
                    sizeof err) < 0) {
    sc_cli_error ("warning: %s: the backup %s is whole, but snapshot %s "
                  "cannot be kept as a checkpoint: %s; the next --auto "
                  "backup will be a full one", cv->socket, v->target,
                  name, err);
    return;
  }
  v->kept = true;
  if (!bc->auto_base || !b->incremental || !b->base_is_checkpoint ||
      strcmp (b->base, name) == 0)
    return;
  r = delete_named (cv, b->base, b->base_uuid, 0, err, sizeof err);
  if (r == -ESTALE)
    sc_cli_error ("warning: %s: checkpoint %s (UUID %s), which %s "
                  "replaces, was deleted and made again during the "
                  "backup: the new one is kept", cv->socket, b->base,
                  b->base_uuid, name);
  else if (r < 0)
    sc_cli_error ("warning: %s: cannot delete checkpoint %s, which %s "
                  "replaces: %s", cv->socket, b->base, name, err);
}

int
sc_backup_create_run (struct sc_backup_create *bc)
{
  struct sc_create_options *o = bc->opts;
  struct sc_manifest_writer *writers;
  size_t nwriters = 0;
  bool ok = true;
  int status;

  o->auto_release = true;
  if (!o->have_name)
    o->name_prefix = "backup-";
  status = sc_create_options_start (o);
  if (status == EXIT_SUCCESS)
    status = sc_create_options_take (o);
  if (status != EXIT_SUCCESS)
    return status;
  /* The writers are thawed: from here an interruption ends the CLI, and
   * its connections take the snapshots with them. */
  sc_create_signals_default ();
  writers = manifest_writers (o->set, &nwriters);
  if (!writers) {
    sc_cli_error ("%s", strerror (ENOMEM));
    ok = false;
  }
  for (size_t k = 0; ok && k < o->nvols; k++)
    if (backup_volume (bc, k, writers, nwriters) < 0)
      ok = false;
  free (writers);
  tell_writers (o, ok);
  for (size_t k = 0; k < o->nvols; k++)
    settle_volume (bc, k);
  /* The connections close with the set (sc_create_options_free). */
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
