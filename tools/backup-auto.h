/* shadowcopy: `backup --auto`: which backup an incremental goes on, or
 * why the backup is a full one.
 *
 * PREV is `--base PREV` when given, else the newest backup of the same
 * volume beside TARGET: of the files NAME.manifest.json in TARGET's
 * directory whose image NAME exists and whose manifest parses and names
 * this volume's UUID, the one with the highest snapshot-id (snapshot ids
 * only grow on a volume), then the latest end-time, then the greatest
 * name.  A damaged manifest there is skipped, with a warning.
 *
 * PREV is usable when the snapshot it was made from (its manifest's
 * snapshot-uuid) is still a valid snapshot or checkpoint of the volume,
 * found by UUID in LIST (names can be reused, UUIDs never), no newer than
 * the snapshot to back up, and the volume still has PREV's size.  Then
 * the backup is an incremental with BASE that snapshot or checkpoint (by
 * its name) and PREV; else a full backup.  Either way `why` says which
 * and why, in one line.
 *
 * Errors: 0 or a negative errno, with one line for the user in err: a
 * --base PREV whose manifest cannot be read, or that is a backup of
 * another volume, is refused rather than taken for "no base".
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_AUTO_H
#define SHADOWCOPY_TOOLS_BACKUP_AUTO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "cow/diffarea.h"
#include "cow/uuid.h"
#include "lib/shadowcopy.h"

struct sc_backup_base {
  bool incremental;
  char prev[PATH_MAX];          /* PREV, the image */
  char base[SC_NAME_MAX + 1];   /* BASE, by its current name */
  char base_uuid[SC_UUID_TEXT_LEN];
  bool base_is_checkpoint;
  char why[3 * PATH_MAX];       /* "incremental backup on ...", "full ..." */
};

/* For a backup of `snapshot` (on the volume c serves) to `target`, with
 * `prev` (--base PREV) or NULL: fill *b. */
int sc_backup_auto (struct shadowcopy *c, const char *snapshot,
                    const char *target, const char *prev,
                    struct sc_backup_base *b, char *err, size_t errlen);

#endif
