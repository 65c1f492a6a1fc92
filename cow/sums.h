/* shadowcopy: the checksums of the copied data, per slot.
 *
 * Every data copy carries one CRC32C per block of its slot (blocks of
 * sc_sums_block(chunk_size) bytes, at most SC_SUMS_MAX; cow/format.h), or,
 * when a version-1 COPY record made it, one CRC32C of the whole chunk.
 * They live here, one entry per slot that holds a data copy, with the
 * chunk and epoch of that copy: so a read finds the sums of the slot it
 * reads in O(1) expected, and a scrub can walk the copies in slot order
 * and tell which copy each slot belongs to.
 *
 * Storage: slots in pages of 64; a page that holds copies has a bitmap
 * of its slots and their entries packed in slot order, and a hash table
 * finds pages by number.  Pages come and go with their copies and the
 * table shrinks with them, so memory follows the copies held, never the
 * highest slot.  An entry is (12 + 4 * sums per slot) bytes: 76 at the
 * default 64K chunk (16 sums), 16 at 4K (one).  Copies in neighbouring
 * slots (the allocator hands out the lowest free slot) cost about one
 * entry each (plus about 1 byte: the page header and the table); a copy
 * alone in its page at most two entries plus 96 bytes.
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

struct sc_sums_page;
struct sc_sums_bucket;
struct sc_sums {
  uint32_t chunk_size;
  uint32_t block;               /* bytes per block */
  uint32_t nsums;               /* blocks per slot */
  uint32_t stride;              /* uint32_t words per entry */
  struct sc_sums_bucket *table; /* page number -> page */
  uint64_t buckets;             /* a power of two, or 0 when empty */
  uint64_t pages;               /* pages in the table */
  uint64_t count;               /* slots holding a data copy */
  uint64_t end_page;            /* no page at this number or above */
  struct sc_sums_page *spare;   /* a new page sc_sums_reserve made */
  size_t page_bytes;            /* allocated in pages (and the spare) */
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

/* Room for an entry at `slot`, so that the next sc_sums_set (with no
 * sc_sums_clear in between) cannot fail.  -ENOMEM. */
int sc_sums_reserve (struct sc_sums *s, uint64_t slot);

/* The slot holds the copy of `chunk` made in `epoch`, with these sums
 * (nsums of them; with `whole`, one CRC32C of the whole chunk).  Room
 * reserved. */
void sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                  uint32_t epoch, const uint32_t *sums, bool whole);

/* The copy of `chunk` made in `epoch` no longer uses `slot`: forget it,
 * unless the slot already belongs to another copy (replay sees a slot
 * reused before the copy that had it is dropped).  Never fails; memory
 * is given back as pages empty. */
void sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                    uint32_t epoch);

/* The entry of `slot`; false if it holds no data copy. */
bool sc_sums_get (const struct sc_sums *s, uint64_t slot,
                  struct sc_sums_entry *out);

/* The first slot at or after `slot` that holds a data copy, or
 * UINT64_MAX.  At most a few lookups per page in use per call (page by
 * page over a short gap, else one pass over the table), so a walk of
 * all copies costs O(copies) when they are dense, O(highest slot / 64)
 * at worst. */
uint64_t sc_sums_next (const struct sc_sums *s, uint64_t slot);

/* Bytes the store has allocated now (pages and table; not the
 * allocator's own overhead). */
size_t sc_sums_bytes (const struct sc_sums *s);

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
