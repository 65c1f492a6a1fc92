/* shadowcopy: `backup --create`: the whole VSS requester flow in one
 * command, over one volume or a snapshot set.
 *
 *   1. A snapshot (a set across the volumes) is created with the
 *      writers, as `create --auto-release` makes it (shadowcopy_set_*):
 *      it lives only as long as this CLI's control connections.  Its
 *      default name is backup-<UTC time>.
 *   2. Each volume, in order, is backed up to its own TARGET through its
 *      own NBD socket (backup-job.h): full, incremental on a given
 *      --since BASE --base PREV, or as --auto decides (backup-auto.h).
 *      The manifest records what every writer reported in each phase up
 *      to the snapshot (identify to post-snapshot; backup-complete comes
 *      after the manifest is written).  The first volume that fails ends
 *      the backups: the volumes after it are not started.
 *   3. backup-complete goes to every writer, with
 *      SHADOWCOPY_BACKUP_RESULT=success when every volume was backed up,
 *      else failure.
 *   4. On each volume whose TARGET is in place, the snapshot is kept as
 *      a checkpoint of the same name and UUID (DELETE keep-checkpoint=1
 *      on the connection that owns it: a kept snapshot is auto-release
 *      no more and leaves its set, so it outlives the connection), the
 *      base of the next incremental.  Under --auto, the checkpoint the
 *      incremental went on from is then deleted: the new one takes its
 *      place in the chain (a snapshot BASE, or any BASE given with
 *      --since, is left alone).  On every other volume the snapshot is
 *      deleted.  So a checkpoint is kept only after its TARGET and
 *      manifest are in place, and never for a backup that failed.
 *   5. The connections are closed.
 *
 * A failure on any volume leaves no TARGET for it (a TARGET whose
 * directory could not be synced is removed too), thaws and tells every
 * writer, releases the snapshots, and makes the command fail; the
 * volumes backed up before it keep their TARGETs and checkpoints (each
 * is a whole backup of its volume).  A checkpoint that cannot be kept
 * (max-checkpoints) is a warning: the backup is whole, and the next
 * --auto says it makes a full one.  Killed during a backup, the CLI's
 * connections close: the servers delete the auto-release snapshots, no
 * checkpoint is kept, TARGET.partial is left for --resume or removal.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_CREATE_H
#define SHADOWCOPY_TOOLS_BACKUP_CREATE_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/backup-auto.h"
#include "tools/backup-job.h"
#include "tools/create-options.h"

/* One volume of the set: opts->vols[k], the set's connection k. */
struct sc_backup_create_volume {
  /* Set by the caller. */
  const char *target;
  struct sc_nbd_target nbd;     /* where nbdkit serves the snapshot */
  const char *since, *prev;     /* --since BASE --base PREV, or NULL */
  /* The outcome. */
  struct sc_backup_base chosen; /* --auto's choice, and why */
  struct sc_backup_result res;  /* when done */
  bool attempted, done, kept;   /* backed up; its checkpoint kept */
};

struct sc_backup_create {
  struct sc_create_options *opts;       /* parsed and checked */
  struct sc_backup_create_volume vols[SHADOWCOPY_SET_VOLUMES_MAX];
  bool auto_base;                       /* --auto */
  enum sc_image_format format;
  unsigned connections;                 /* per volume; 0: the default */
  sc_backup_progress_fn progress;       /* NULL: none */
  void *progress_opaque;
};

/* The flow above.  EXIT_SUCCESS when every volume was backed up (and its
 * snapshot released); else EXIT_FAILURE, each failure said.  The caller
 * frees each vols[k].res.m (sc_manifest_free) and then opts. */
int sc_backup_create_run (struct sc_backup_create *bc);

#endif
