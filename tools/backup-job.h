/* shadowcopy: one backup: a snapshot of one volume copied to one target,
 * full or incremental, with its manifest.
 *
 * The steps, whatever asks for them (`backup SNAPSHOT`, or each volume
 * of `backup --create`):
 *
 *   1. For an incremental, PREV's manifest (PREV.manifest.json) is read
 *      first: a damaged one stops everything before any work.
 *   2. `DIFF SNAPSHOT SNAPSHOT` names the snapshot (its id, UUID, type)
 *      and the volume (UUID, chunk size, size); for an incremental,
 *      `DIFF BASE SNAPSHOT` gives BASE's UUID and the ranges to copy.
 *      Chain safety: PREV's manifest must name BASE's UUID as the
 *      snapshot it was made from (a checkpoint kept from that snapshot
 *      has the same UUID), and the same volume.
 *   3. TARGET.partial is made (backup-target.h), the ranges copied
 *      (backup-copy.h) from the snapshot's NBD export, synced; each
 *      block's CRC32C is taken from the image as written (blocks an
 *      incremental did not touch keep PREV's CRC, so damage inherited
 *      from PREV stays visible).
 *   4. The snapshot is named again: if it was deleted (and perhaps made
 *      again) during the copy, the backup is refused.
 *   5. The manifest is written (durably), then TARGET.partial renamed to
 *      TARGET: a TARGET under its final name always has its manifest.
 *
 * Resume (backup-resume.h): during the copy, every few hundred MiB, the
 * target is synced and TARGET.resume records how far it got.  A failure
 * of the copy or after it (the target full or failing, the NBD server
 * gone, a stop by SIGINT/SIGTERM) keeps TARGET.partial and that state,
 * and says to run the same command with --resume; a failure that makes
 * the backup wrong (a chain refused, the snapshot deleted or made again,
 * PREV damaged), or one before any state was durable, removes both.
 * With job->resume, a TARGET.partial whose state is of this very backup
 * (the same snapshot by UUID, base, format, size and ranges) is
 * continued from its watermark; otherwise the job says why and starts
 * over.  PREV is only ever read.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_JOB_H
#define SHADOWCOPY_TOOLS_BACKUP_JOB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/shadowcopy.h"
#include "tools/backup-copy.h"
#include "tools/backup-target.h"
#include "tools/manifest.h"
#include "tools/nbd-target.h"

struct sc_backup_job {
  const char *snapshot;         /* its name */
  const char *target;           /* TARGET */
  const char *since, *prev;     /* BASE and PREV, or both NULL: full */
  struct sc_nbd_target nbd;     /* where nbdkit serves the snapshot */
  enum sc_image_format format;
  sc_backup_progress_fn progress;       /* NULL: none */
  void *progress_opaque;
  /* The writers' results for the manifest (backup --create), or NULL. */
  const struct sc_manifest_writer *writers;
  size_t nwriters;
  bool resume;                  /* continue a TARGET.partial of this backup */
  unsigned connections;         /* NBD connections where the export can
                                   multi-conn (0: SC_BACKUP_CONNECTIONS) */
  const volatile sig_atomic_t *stop;    /* set: stop, keeping the work */
};

/* One connection by default: on a 2-core machine 2 and 4 connections
 * (16 reads in flight each, or 16 in all) copied no faster than one
 * (docs/design.md, "Resume and multi-conn"); --connections chooses. */
#define SC_BACKUP_CONNECTIONS 1

/* What the backup did, for the summary. */
struct sc_backup_result {
  struct sc_manifest m;         /* as written beside TARGET */
  bool reflinked;               /* an incremental's PREV was cloned */
  bool resumed;                 /* an earlier run's TARGET.partial went on */
  uint64_t resumed_from;        /* its watermark */
  struct sc_backup_stats run;   /* this run's own counts */
  unsigned connections;         /* NBD connections used */
  bool kept;                    /* failed: TARGET.partial kept to resume */
};

/* Run job over the control connection c.  0: TARGET and its manifest
 * are in place; 1: they are, but their directory could not be synced
 * (err says so); < 0: no TARGET (res->kept: TARGET.partial and its state
 * are kept for --resume, and err says so).  Notices (a resume that
 * starts over, and why) go to stderr.  res->m is the caller's to free
 * (sc_manifest_free) in every case. */
int sc_backup_run (struct shadowcopy *c, const struct sc_backup_job *job,
                   struct sc_backup_result *res, char *err, size_t errlen);

#endif
