/* shadowcopy: the copy index, origin chunk -> its copies by epoch.
 *
 * An open-addressing hash table keyed by chunk number (O(1)); each entry
 * holds that chunk's copies sorted by epoch, so finding the copy a
 * snapshot sees is a binary search, O(log k) in the copies of the chunk
 * (k <= the number of snapshots).  A chunk with one copy, the common case,
 * costs one 24-byte entry and no allocation; the table is kept 40-80%
 * full, so 30-60 bytes a copied chunk.  Not thread-safe: the diff area's
 * mutex protects it. */
#ifndef SHADOWCOPY_COW_INDEX_H
#define SHADOWCOPY_COW_INDEX_H

#include <stdbool.h>
#include <stdint.h>

/* A copy.  slot 0 (always a superblock) marks an all-zero copy, and
 * SC_SLOT_MARK a data-less mark (the chunk changed in that epoch; only
 * checkpoints need to know). */
struct sc_copy {
  uint64_t slot;
  uint32_t epoch;
  uint32_t crc;                 /* CRC32C of the slot's data (0 for zero) */
};
#define SC_SLOT_ZERO 0
#define SC_SLOT_MARK UINT64_MAX

/* Does the copy keep data in a slot of its own? */
static inline bool
sc_copy_has_slot (const struct sc_copy *c)
{
  return c->slot != SC_SLOT_ZERO && c->slot != SC_SLOT_MARK;
}

struct sc_index_entry;
struct sc_index {
  struct sc_index_entry *table;
  uint64_t capacity;            /* power of two */
  uint64_t chunks;              /* entries in use */
  uint64_t copies;              /* copies in all entries */
};

int sc_index_init (struct sc_index *ix);
void sc_index_free (struct sc_index *ix);

/* The newest copy of `chunk`; false if it has none. */
bool sc_index_last (const struct sc_index *ix, uint64_t chunk,
                    struct sc_copy *out);

/* The oldest copy of `chunk` made after epoch `epoch` (copy.epoch > epoch):
 * what a snapshot of that epoch sees.  false: it sees the origin. */
bool sc_index_after (const struct sc_index *ix, uint64_t chunk,
                     uint32_t epoch, struct sc_copy *out);

/* The copy of `chunk` made in `epoch`; false if there is none. */
bool sc_index_find (const struct sc_index *ix, uint64_t chunk,
                    uint32_t epoch, struct sc_copy *out);

/* Change the slot (and CRC) of the copy of `chunk` made in `epoch`;
 * false if there is none. */
bool sc_index_set_slot (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                        uint64_t slot, uint32_t crc);

/* Remove the copy of `chunk` made in `epoch`; false if there is none. */
bool sc_index_remove (struct sc_index *ix, uint64_t chunk, uint32_t epoch);

/* Add a copy.  -EEXIST if `chunk` has one of that epoch, -ENOMEM. */
int sc_index_add (struct sc_index *ix, uint64_t chunk, struct sc_copy copy);

/* Visit every copy, chunk by chunk, each chunk's copies oldest first.
 * `prev_epoch` is the epoch of the chunk's previous copy, 0 for its first:
 * the copy holds what the chunk was during epochs [prev_epoch, epoch - 1].
 * If `keep` returns false the copy is removed (after the visit of that
 * chunk, so prev_epoch always refers to the copies as they were). */
typedef bool (*sc_index_visit_fn) (void *opaque, uint64_t chunk,
                                   uint32_t prev_epoch,
                                   const struct sc_copy *copy);
int sc_index_filter (struct sc_index *ix, sc_index_visit_fn keep,
                     void *opaque);

/* Visit the copies of whole chunks, starting at *cursor (0 to begin),
 * until at least `budget` copies were visited or the map ends; same
 * `keep` semantics as sc_index_filter.  *cursor is opaque (here: the
 * table's size and the next home bucket).  Returns 1 when the whole map
 * was visited, 0 if there is more, <0 on error.  Between calls the
 * caller may drop the diff area's lock and the map may change: a copy
 * added or removed meanwhile may be visited or not, but no copy present
 * throughout is skipped (one may be visited twice). */
int sc_index_filter_slice (struct sc_index *ix, uint64_t *cursor,
                           uint64_t budget, sc_index_visit_fn keep,
                           void *opaque);

#endif
