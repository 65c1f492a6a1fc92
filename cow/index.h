/* shadowcopy: the copy index, origin chunk -> its copies by epoch.
 *
 * A B+tree keyed by (chunk, epoch) in 4 KiB pages of an unnamed scratch
 * file, reached through the diff area's bounded page cache (pagecache.h):
 * the memory it takes is the cache's budget, however many copies there
 * are.  A chunk's copies are adjacent, oldest first, so finding the copy
 * a snapshot sees is one descent (three levels at ten million copies).
 * It is derived state, rebuilt from the journal at every open; the file
 * is dropped at close.
 *
 * Errors are sticky: once a page cannot be had (an I/O error of the
 * scratch file, a cache whose every frame is pinned or waiting for disk
 * space, a page that is not a node), every later call fails with the
 * same -errno, and the owner must stop trusting the map (copymap.c fails
 * the diff area).  Lookups return 1 (found), 0 (none) or -errno.
 *
 * Not thread-safe: the diff area's mutex protects it. */
#ifndef SHADOWCOPY_COW_INDEX_H
#define SHADOWCOPY_COW_INDEX_H

#include <stdbool.h>
#include <stddef.h>
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

struct sc_pc;
struct sc_index_hit;
struct sc_index {
  struct sc_pc *pc;
  int file;                     /* the scratch file's number in pc */
  uint32_t root;                /* page of the root node */
  uint32_t height;              /* levels of inner nodes (0: root is a leaf) */
  uint32_t pages;               /* pages 1..pages are nodes */
  int error;                    /* sticky, positive errno */
  uint64_t chunks;              /* chunks with at least one copy */
  uint64_t copies;              /* copies in all */
  struct sc_index_hit *buf;     /* a pass's copies of a leaf (filter) */
  size_t buf_cap;
  uint32_t *free_pages;         /* pages of nodes taken out of the tree */
  size_t nfree, free_cap;
  uint64_t last_chunk;          /* the last copy added: are copies made */
  uint32_t last_epoch;          /* in ascending order? */
};

/* An empty index whose pages live in scratch file `fd`, which the cache
 * `pc` takes (sc_pc_add_file; it closes fd in sc_pc_free, also when this
 * fails).  0 or -errno. */
int sc_index_init (struct sc_index *ix, struct sc_pc *pc, int fd);
/* Frees what the index holds in memory; call before sc_pc_free. */
void sc_index_free (struct sc_index *ix);

/* The sticky error (a positive errno), or 0. */
int sc_index_error (const struct sc_index *ix);

/* The newest copy of `chunk`. */
int sc_index_last (struct sc_index *ix, uint64_t chunk, struct sc_copy *out);

/* The oldest copy of `chunk` made after epoch `epoch` (copy.epoch > epoch):
 * what a snapshot of that epoch sees.  0: it sees the origin. */
int sc_index_after (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                    struct sc_copy *out);

/* The newest copy of `chunk` made before epoch `epoch`. */
int sc_index_before (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                     struct sc_copy *out);

/* The copy of `chunk` made in `epoch`. */
int sc_index_find (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                   struct sc_copy *out);

/* Change the slot (and CRC) of the copy of `chunk` made in `epoch`:
 * 1 done, 0 if there is none, or -errno. */
int sc_index_set_slot (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                       uint64_t slot, uint32_t crc);

/* Remove the copy of `chunk` made in `epoch`: 1 done, 0 if there is none,
 * or -errno. */
int sc_index_remove (struct sc_index *ix, uint64_t chunk, uint32_t epoch);

/* Add a copy.  0, -EEXIST if `chunk` has one of that epoch, -EINVAL for
 * an epoch of UINT32_MAX, or the sticky error. */
int sc_index_add (struct sc_index *ix, uint64_t chunk, struct sc_copy copy);

/* Visit every copy, chunk by chunk in ascending order, each chunk's
 * copies oldest first.  `prev_epoch` is the epoch of the chunk's previous
 * copy, 0 for its first: the copy holds what the chunk was during epochs
 * [prev_epoch, epoch - 1].  If `keep` returns false the copy is removed
 * (after the visit of that chunk, so prev_epoch always refers to the
 * copies as they were).  `keep` may change the copies of the chunk being
 * visited with sc_index_set_slot, and nothing else of the index.
 * 0 or -errno. */
typedef bool (*sc_index_visit_fn) (void *opaque, uint64_t chunk,
                                   uint32_t prev_epoch,
                                   const struct sc_copy *copy);
int sc_index_filter (struct sc_index *ix, sc_index_visit_fn keep,
                     void *opaque);

/* Visit the copies of whole chunks, starting at chunk *cursor (0 to
 * begin), until at least `budget` copies were visited or the map ends;
 * same `keep` semantics as sc_index_filter.  *cursor is the next chunk
 * to visit.  Returns 1 when the whole map was visited (and sets *cursor
 * to 0), 0 if there may be more, <0 on error.  Between calls the caller
 * may drop the diff area's lock and the map may change: a copy added or
 * removed meanwhile may be visited or not, but no copy present
 * throughout is skipped or visited twice. */
int sc_index_filter_slice (struct sc_index *ix, uint64_t *cursor,
                           uint64_t budget, sc_index_visit_fn keep,
                           void *opaque);

#endif
