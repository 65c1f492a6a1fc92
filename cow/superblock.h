/* shadowcopy: the two superblock copies at the start of the diff area.
 *
 * Updates alternate between copy A (offset 0) and copy B (offset 4096) by
 * generation, so a torn superblock write always leaves the previous one
 * intact.  Loading picks the valid copy with the highest generation. */
#ifndef SHADOWCOPY_COW_SUPERBLOCK_H
#define SHADOWCOPY_COW_SUPERBLOCK_H

#include <stddef.h>

#include "cow/format.h"

/* Read and validate both copies; fill *sb with the newest valid one.
 * -EINVAL (not a diff area, damaged), -EPROTONOSUPPORT (newer format),
 * or an I/O error; err names the problem and the offset. */
int sc_sb_load (int fd, struct sc_sb_disk *sb, char *err, size_t errlen);

/* Write *sb with generation + 1 into the copy it selects, then
 * fdatasync.  On success sb->generation is the new generation. */
int sc_sb_store (int fd, struct sc_sb_disk *sb);

/* Check one 4096-byte superblock image; 0 or -EINVAL/-EPROTONOSUPPORT
 * with a reason in *why. */
int sc_sb_check (const void *block, const char **why);

#endif
