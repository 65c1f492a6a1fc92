/* shadowcopy: a backup's block sums taken from the copy as it goes.
 *
 * The manifest holds a CRC32C per fixed block of the image.  Summing the
 * image after the copy reads every block back; most blocks need not be:
 * a block whose whole content went into the image as one piece of the
 * copy (one read of the snapshot, or part of one zero range) has the CRC
 * of that buffer, or the CRC of a zero block.  This records those, per
 * block, from the copy engine's piece callback (backup-copy.h); every
 * other block (split into several pieces, partly written by an earlier
 * run of a resumed backup, or holding PREV's bytes in an incremental) is
 * not known here and is summed from the image as before.
 *
 * Exactness rests on the engine: a piece is reported after the sink
 * took exactly those bytes (or the range to zero), each range is written
 * once, and nothing else writes the image during the copy.  (A sink that
 * writes later, backup-writer.h, has written it all, or failed the
 * backup, before the sums are used.)  A block is
 * known only when one piece covers all of it: a piece never tells
 * anything about bytes outside itself.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_SUMS_H
#define SHADOWCOPY_TOOLS_BACKUP_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sc_backup_sums {
  uint64_t size, block_size, nblocks;
  uint32_t *crc;                /* valid where known */
  uint64_t *known;              /* a bit per block */
  uint32_t zero_crc;            /* of a whole block of zeros */
  uint32_t zero_crc_last;       /* of the last block, if shorter */
  bool zeros;                   /* zero pieces count (see init) */
};

/* For an image of size bytes in blocks of block_size.  zeros: whether a
 * piece without data (a zero range) is known to read as zeros in the
 * image; false when the engine skips zero ranges of a target that was
 * not new (a resumed TARGET.partial).  0 or -ENOMEM. */
int sc_backup_sums_init (struct sc_backup_sums *s, uint64_t size,
                         uint64_t block_size, bool zeros);

/* An sc_backup_piece_fn: opaque is the sc_backup_sums. */
void sc_backup_sums_piece (void *opaque, uint64_t off, uint64_t len,
                           const void *buf);

/* Whether block i's CRC is known; if so, *crc gets it. */
bool sc_backup_sums_get (const struct sc_backup_sums *s, uint64_t i,
                         uint32_t *crc);

/* How many blocks are known. */
uint64_t sc_backup_sums_count (const struct sc_backup_sums *s);

void sc_backup_sums_free (struct sc_backup_sums *s);

#endif
