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
#include "tools/backup-create.h"
#include "tools/cli.h"
#include "tools/writers.h"

/* What every writer reported, in the manifest's terms; always a list
 * (maybe empty), so the manifest says "writers" even with none. */
static struct sc_manifest_writer *
manifest_writers (const struct sc_create *cr)
{
  struct sc_manifest_writer *v = calloc (cr->nwriters + 1, sizeof *v);

  for (size_t i = 0; v && i < cr->nwriters; i++) {
    const struct sc_writer *w = &cr->writers[i];
    size_t first = 0;
    snprintf (v[i].name, sizeof v[i].name, "%s", w->name);
    if (w->nhistory > SC_MANIFEST_PHASES_MAX)
      first = w->nhistory - SC_MANIFEST_PHASES_MAX;
    for (size_t k = first; k < w->nhistory; k++) {
      struct sc_manifest_phase *p = &v[i].phases[v[i].nphases++];
      const struct sc_writer_result *h = &w->history[k];
      snprintf (p->phase, sizeof p->phase, "%s", h->phase);
      snprintf (p->result, sizeof p->result, "%s", h->result);
      snprintf (p->output, sizeof p->output, "%s", h->output);
      sc_ctl_format_time (h->when * 1000000000u, p->time, sizeof p->time);
    }
  }
  return v;
}

/* Back up volume k, read through h: 0, or -1 (said). */
static int
backup_volume_on (struct sc_backup_create *bc, size_t k,
                  const struct sc_manifest_writer *writers, size_t nwriters,
                  struct shadowcopy *h)
{
  struct sc_create *cr = &bc->opts->seq;
  struct sc_create_volume *cv = &cr->vols[k];
  struct sc_backup_create_volume *v = &bc->vols[k];
  char err[4096];
  int r;

  struct sc_backup_job job = {
    .snapshot = cr->name, .target = v->target, .since = v->since,
    .prev = v->prev, .nbd = v->nbd, .format = bc->format,
    .progress = bc->progress, .progress_opaque = bc->progress_opaque,
    .writers = writers, .nwriters = nwriters,
    .connections = bc->connections, .stop = &sc_interrupted,
  };

  v->attempted = true;
  if (bc->auto_base) {
    r = sc_backup_auto (h, cr->name, v->target, v->prev, &v->chosen,
                        err, sizeof err);
    if (r < 0) {
      sc_cli_error ("%s: backup %s to %s: %s", cv->socket, cr->name,
                    v->target, err);
      return -1;
    }
    sc_cli_error ("%s: %s", cv->socket, v->chosen.why);
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
    sc_cli_error ("%s: backup %s to %s: %s: removed", cv->socket, cr->name,
                  v->target, err);
    return -1;
  }
  if (r < 0) {
    sc_cli_error ("%s: backup %s to %s: %s", cv->socket, cr->name,
                  v->target, err);
    return -1;
  }
  v->done = true;
  return 0;
}

/* Back up volume k through a library handle of its own (the creation's
 * connection keeps the snapshot): 0, or -1 (said). */
static int
backup_volume (struct sc_backup_create *bc, size_t k,
               const struct sc_manifest_writer *writers, size_t nwriters)
{
  struct shadowcopy *h;
  int r;

  if (shadowcopy_connect (bc->opts->seq.vols[k].socket, &h) < 0) {
    sc_cli_error ("%s", shadowcopy_get_error ());
    return -1;
  }
  r = backup_volume_on (bc, k, writers, nwriters, h);
  shadowcopy_close (h);
  return r;
}

/* backup-complete to every writer, with the result; each writer's
 * results recorded (`shadowcopy writers`). */
static void
tell_writers (struct sc_create *cr, bool ok)
{
  char msg[4096], err[2048];

  cr->backup_result = ok ? "success" : "failure";
  if (sc_create_writers_phase (cr, "backup-complete", true, msg,
                               sizeof msg) < 0)
    sc_cli_error ("warning: %s", msg);
  if (cr->nwriters && sc_writers_save (cr->writers, cr->nwriters, err,
                                       sizeof err) < 0)
    sc_cli_error ("warning: cannot record the writers' results: %s", err);
}

static int
request (struct sc_create_volume *cv, const char *a0, const char *a1,
         char *err, size_t errlen)
{
  const char *args[2] = { a0, a1 };
  return sc_client_request (cv->c, "DELETE", args, a1 ? 2 : 1, NULL, NULL,
                            err, errlen);
}

/* DELETE name uuid=UUID: only the snapshot named earlier, not one made
 * again under its name since (-ESTALE then); by name alone when its UUID
 * is not known (a server that does not say it). */
static int
delete_named (struct sc_create_volume *cv, const char *name,
              const char *uuid, char *err, size_t errlen)
{
  char arg[8 + SC_CTL_UUID_LEN];

  if (!uuid[0])
    return request (cv, name, NULL, err, errlen);
  snprintf (arg, sizeof arg, "uuid=%s", uuid);
  return request (cv, name, arg, err, errlen);
}

/* Volume k's snapshot kept as a checkpoint if its backup is in place,
 * else deleted; under --auto, the checkpoint its incremental went on
 * from deleted once the new one is kept.  Both deletes name the
 * snapshot by its UUID too: the names were read before the backup, and
 * another client may have deleted and made again either since. */
static void
settle_volume (struct sc_backup_create *bc, size_t k)
{
  struct sc_create *cr = &bc->opts->seq;
  struct sc_create_volume *cv = &cr->vols[k];
  struct sc_backup_create_volume *v = &bc->vols[k];
  const struct sc_backup_base *b = &v->chosen;
  char err[2048];
  int r;

  if (!v->done) {
    r = delete_named (cv, cr->name, cv->snap.uuid, err, sizeof err);
    if (r < 0 && r != -ESTALE)
      sc_cli_error ("%s: deleting snapshot %s: %s (it goes when this "
                    "command ends)", cv->socket, cr->name, err);
    return;
  }
  if (request (cv, cr->name, "keep-checkpoint=1", err, sizeof err) < 0) {
    sc_cli_error ("warning: %s: the backup %s is whole, but snapshot %s "
                  "cannot be kept as a checkpoint: %s; the next --auto "
                  "backup will be a full one", cv->socket, v->target,
                  cr->name, err);
    return;
  }
  v->kept = true;
  if (!bc->auto_base || !b->incremental || !b->base_is_checkpoint ||
      strcmp (b->base, cr->name) == 0)
    return;
  r = delete_named (cv, b->base, b->base_uuid, err, sizeof err);
  if (r == -ESTALE)
    sc_cli_error ("warning: %s: checkpoint %s (UUID %s), which %s "
                  "replaces, was deleted and made again during the "
                  "backup: the new one is kept", cv->socket, b->base,
                  b->base_uuid, cr->name);
  else if (r < 0)
    sc_cli_error ("warning: %s: cannot delete checkpoint %s, which %s "
                  "replaces: %s", cv->socket, b->base, cr->name, err);
}

int
sc_backup_create_run (struct sc_backup_create *bc)
{
  struct sc_create *cr = &bc->opts->seq;
  struct sc_manifest_writer *writers;
  bool ok = true;
  int status;

  cr->auto_release = true;
  if (!cr->have_name)
    cr->name_prefix = "backup-";
  status = sc_create_options_start (bc->opts);
  if (status != EXIT_SUCCESS)
    return status;
  sc_create_identify (cr);
  status = sc_create_attempts (cr);
  if (status != EXIT_SUCCESS) {
    char err[2048];
    if (cr->nwriters && sc_writers_save (cr->writers, cr->nwriters, err,
                                         sizeof err) < 0)
      sc_cli_error ("warning: cannot record the writers' results: %s", err);
    return status;
  }
  /* The writers are thawed: from here an interruption ends the CLI, and
   * its connections take the snapshots with them. */
  sc_create_signals_default ();
  writers = manifest_writers (cr);
  if (!writers) {
    sc_cli_error ("%s", strerror (ENOMEM));
    ok = false;
  }
  for (size_t k = 0; ok && k < cr->nvols; k++)
    if (backup_volume (bc, k, writers, cr->nwriters) < 0)
      ok = false;
  free (writers);
  tell_writers (cr, ok);
  for (size_t k = 0; k < cr->nvols; k++)
    settle_volume (bc, k);
  sc_create_close (cr);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
