/* shadowcopy: the checksums of the copied data, per slot.
 *
 * Every data copy carries one CRC32C per block of its slot (blocks of
 * sc_sums_block(chunk_size) bytes, at most SC_SUMS_MAX; cow/format.h), or,
 * when a version-1 COPY record made it, one CRC32C of the whole chunk.
 * They live here, in one flat array indexed by slot number, with the
 * chunk and epoch of the copy the slot holds: so a read finds the sums of
 * the slot it reads in O(1), and a scrub can walk the copies in slot order
 * and tell which copy each slot belongs to.
 *
 * Cost: (12 + 4 * sums per slot) bytes per slot below the highest data
 * slot: 76 bytes at the default 64K chunk, 16 at 4K.  Free and journal
 * slots below it cost the same (they are few: the allocator hands out the
 * lowest free slot).
 *
 * Not thread-safe: the diff area's mutex protects it.  Readers copy an
 * entry out under the mutex and verify without it.
 */
#ifndef SHADOWCOPY_COW_SUMS_H
#define SHADOWCOPY_COW_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/format.h"

struct sc_sums {
  uint32_t chunk_size;
  uint32_t block;               /* bytes per block */
  uint32_t nsums;               /* blocks per slot */
  uint32_t stride;              /* uint32_t words per slot */
  uint32_t *words;
  uint64_t cap;                 /* slots with room */
};

/* One slot's entry, copied out. */
struct sc_sums_entry {
  uint64_t chunk;
  uint32_t epoch;
  bool whole;                   /* version 1: sums[0] covers the chunk */
  uint32_t sums[SC_SUMS_MAX];
};

void sc_sums_init (struct sc_sums *s, uint32_t chunk_size);
void sc_sums_free (struct sc_sums *s);

/* Room for an entry at `slot`, so that sc_sums_set cannot fail.
 * -ENOMEM. */
int sc_sums_reserve (struct sc_sums *s, uint64_t slot);

/* The slot holds the copy of `chunk` made in `epoch`, with these sums
 * (nsums of them; with `whole`, one CRC32C of the whole chunk).  Room
 * reserved. */
void sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                  uint32_t epoch, const uint32_t *sums, bool whole);

/* The copy of `chunk` made in `epoch` no longer uses `slot`: forget it,
 * unless the slot already belongs to another copy (replay sees a slot
 * reused before the copy that had it is dropped). */
void sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                    uint32_t epoch);

/* The entry of `slot`; false if it holds no data copy. */
bool sc_sums_get (const struct sc_sums *s, uint64_t slot,
                  struct sc_sums_entry *out);

/* The first slot at or after `slot` that holds a data copy, or
 * UINT64_MAX. */
uint64_t sc_sums_next (const struct sc_sums *s, uint64_t slot);

/* The sums of a whole chunk's data (s->nsums of them). */
void sc_sums_compute (const struct sc_sums *s, const void *chunk,
                      uint32_t *out);

/* Check `len` bytes at `buf`, which hold [at, at + len) of the slot of
 * entry e.  With sums, [at, at + len) must be whole blocks; with a whole
 * chunk CRC, the whole chunk.  Returns -1 if they match, else the first
 * block (0 for a whole chunk) that does not. */
int sc_sums_verify (const struct sc_sums *s, const struct sc_sums_entry *e,
                    const void *buf, uint32_t at, uint32_t len);

#endif
