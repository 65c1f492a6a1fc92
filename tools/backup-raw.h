/* shadowcopy: the raw backup target: a sparse image file.
 *
 * The image is written as TARGET.partial and only renamed to TARGET once
 * it is whole and synced (sc_raw_target_commit), so a crash or an error
 * never leaves a half-written TARGET under its final name.  A full backup
 * starts from an empty sparse file of the volume's size; an incremental
 * starts from a copy of PREV: a reflink (FICLONE) where the filesystem
 * can, else a sparse copy (its holes skipped).  PREV is only ever read.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_RAW_H
#define SHADOWCOPY_TOOLS_BACKUP_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/backup-copy.h"

struct sc_raw_target;

/* Create TARGET.partial (a stale one from an earlier run is replaced),
 * size bytes, from prev (NULL: empty).  Refuses a TARGET that exists. */
int sc_raw_target_open (const char *target, const char *prev, uint64_t size,
                        struct sc_raw_target **out, char *err,
                        size_t errlen);

/* The sink that writes into TARGET.partial (backup-copy.h). */
void sc_raw_target_sink (struct sc_raw_target *t, struct sc_backup_sink *s);

/* TARGET.partial's descriptor (to sum its blocks), and whether it was
 * made by reflink. */
int sc_raw_target_fd (const struct sc_raw_target *t);
bool sc_raw_target_reflinked (const struct sc_raw_target *t);

/* fsync TARGET.partial.  Then the caller writes the manifest. */
int sc_raw_target_sync (struct sc_raw_target *t, char *err, size_t errlen);

/* Rename TARGET.partial to TARGET (never over an existing file), fsync
 * the directory, and free t.  0; 1 when TARGET is in place but its
 * directory could not be synced (err says so); or a negative errno with
 * nothing renamed and TARGET.partial removed. */
int sc_raw_target_commit (struct sc_raw_target *t, char *err, size_t errlen);

/* Remove TARGET.partial and free t (after a failure). */
void sc_raw_target_abort (struct sc_raw_target *t);

#endif
