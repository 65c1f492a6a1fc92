/* shadowcopy: the chunks copied in the current epoch, remembered so that
 * a rewrite learns without a lock that it needs no copy.
 *
 * A chunk whose newest copy is of the current epoch needs no copy
 * (copymap_needs_copy).  That is the usual answer for a live write once
 * the working set has been copied since the newest snapshot, and asking
 * the copy map costs the diff area's mutex, which every writer shares, and
 * a descent of its B+tree.  This table keeps, direct-mapped by chunk, the
 * epoch of the newest copy of chunks copied lately; a write whose chunks
 * all have an entry of the current epoch asks nothing more.
 *
 * Why it says what the map says: an entry is set when a copy becomes its
 * chunk's newest (copymap_add) and cleared before any copy of its chunk
 * is removed (copymap_remove), both under the diff area's mutex, and
 * epochs never go back.  So an entry (chunk, e), with e the current
 * epoch, was the map's answer at some moment of the current epoch.  A
 * reader may act on it just as a removal clears it: a copy of the current
 * epoch goes while serving only when no valid snapshot needs it (gc), or
 * with its chunk locked by the writer whose record failed, or when the
 * diff area has failed; in none of these does any snapshot need a new
 * copy of that chunk.
 *
 * Lock-free reads: an entry is a chunk (plus one; 0 is empty) and an
 * epoch.  The setter, under the mutex, empties the chunk word, writes the
 * epoch, then writes the chunk with release order; the reader loads the
 * chunk (acquire), the epoch, then the chunk again after an acquire fence,
 * and believes the pair only if both chunk loads agree. */
#ifndef SHADOWCOPY_COW_RECENT_H
#define SHADOWCOPY_COW_RECENT_H

#include <stdbool.h>
#include <stdint.h>

struct sc_recent_entry {
  uint64_t chunk1;              /* chunk + 1, 0: empty */
  uint32_t epoch;
};

struct sc_recent {
  struct sc_recent_entry *e;    /* NULL: no memory, every answer "ask" */
  uint64_t mask;                /* entries - 1 */
};

int sc_recent_init (struct sc_recent *r, unsigned order);
void sc_recent_free (struct sc_recent *r);

/* Under the diff area's mutex: chunk's newest copy is now of `epoch`;
 * a copy of chunk is about to be removed. */
void sc_recent_note (struct sc_recent *r, uint64_t chunk, uint32_t epoch);
void sc_recent_forget (struct sc_recent *r, uint64_t chunk);

/* Without a lock: true if every chunk of [first, last] (at most
 * SC_RECENT_RANGE of them) is known to have its newest copy of `epoch`. */
#define SC_RECENT_RANGE 16

/* 2^16 entries of 16 bytes: 1 MiB a diff area. */
#define SC_DIFF_RECENT_ORDER 16
bool sc_recent_all (const struct sc_recent *r, uint64_t first, uint64_t last,
                    uint32_t epoch);

/* Start loading chunk's entry into the cache (no effect on answers). */
void sc_recent_prefetch (const struct sc_recent *r, uint64_t chunk);

#endif
