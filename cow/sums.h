/* shadowcopy: the checksums of the copied data, per slot.
 *
 * Every data copy carries one CRC32C per block of its slot (blocks of
 * sc_sums_block(chunk_size) bytes, at most SC_SUMS_MAX; cow/format.h), or,
 * when a version-1 COPY record made it, one CRC32C of the whole chunk.
 * They live here, one entry per slot that holds a data copy, with the
 * chunk and epoch of that copy: so a read finds the sums of the slot it
 * reads in O(1), and a scrub can walk the copies in slot order and tell
 * which copy each slot belongs to.
 *
 * Storage: on disk, behind the diff area's bounded page cache
 * (cow/pagecache.h), in a scratch file of its own, made anew at every
 * open (the journal is the record; replay fills the store).  Entries
 * are direct-mapped by slot (the allocator hands out the lowest free
 * slot, so slots are dense): slot s is entry s % per_page of page
 * s / per_page, an entry never straddles a page.  An entry is (16 + 4 *
 * sums per slot) bytes: 80 at the default 64K chunk (16 sums, 51 to a
 * page), 20 at 4K (one sum, 204 to a page).  A slot never set reads as
 * zeroes (a hole), which no present entry looks like: each carries a
 * tag and a CRC32C of itself, so a page that comes back wrong is an
 * error, never a wrong sum.
 *
 * In RAM the store keeps only a bitmap of the pages that hold an entry
 * (one bit per page: 2.5 KiB for a million 64K copies), so a lookup of
 * an empty page and the walk over gaps cost no I/O.
 *
 * Errors.  Once the page cache fails (sc_pc_error), or a page holds an
 * entry that is not one, the store is failed for good (sc_sums_error):
 * every later lookup and walk returns the error instead of an answer, so
 * a missing or wrong sum can neither let a read return unverified data
 * nor make good data look damaged.  The failure ends with the open: the
 * next open rebuilds the store from the journal.  Its owner goes on
 * recording copies meanwhile (their journal records carry the sums): a
 * failed sc_sums_reserve or sc_sums_set with sc_sums_error set does not
 * fail a copy; a reserve's other errors with the store sound (-ENOMEM,
 * -EBUSY: every page of the cache pinned or waiting for disk space) do.
 * A full file system fails nothing: the page waits in memory for its
 * space (cow/pagecache.h).
 *
 * Not thread-safe: the diff area's mutex protects it (with the cache).
 * Readers copy an entry out under the mutex and verify without it.
 */
#ifndef SHADOWCOPY_COW_SUMS_H
#define SHADOWCOPY_COW_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/format.h"

struct sc_pc;

struct sc_sums {
  uint32_t chunk_size;
  uint32_t block;               /* bytes per block */
  uint32_t nsums;               /* blocks per slot */
  uint32_t stride;              /* uint32_t words per entry */
  uint32_t per_page;            /* entries per page */
  struct sc_pc *pc;             /* the diff area's cache; not owned */
  int file;                     /* this store's file in pc */
  int error;                    /* sticky: a positive errno, or 0 */
  bool said;                    /* the owner has reported the error */
  uint64_t count;               /* slots holding a data copy */
  uint64_t *used;               /* bit p: page p may hold an entry */
  uint64_t used_words;          /* words allocated in used */
  uint64_t end_page;            /* no entry at this page or above */
};

/* One slot's entry, copied out. */
struct sc_sums_entry {
  uint64_t chunk;
  uint32_t epoch;
  bool whole;                   /* version 1: sums[0] covers the chunk */
  uint32_t sums[SC_SUMS_MAX];
};

/* A store in cache `pc`, with `fd` (an unnamed scratch file,
 * sc_pc_scratch_file) as its file: pc takes fd in every case (on error
 * too, fd is closed).  -EMFILE when pc has no room for another file. */
int sc_sums_init (struct sc_sums *s, uint32_t chunk_size, struct sc_pc *pc,
                  int fd);

/* Free what the store holds in RAM; its file goes with the cache
 * (sc_pc_free). */
void sc_sums_free (struct sc_sums *s);

/* Room for an entry at `slot`: its page is in the cache, dirty, so that
 * the next sc_sums_set fails only if the store has failed.  Called before
 * a copy is recorded.  -EBUSY, -ENOMEM, or the store's error. */
int sc_sums_reserve (struct sc_sums *s, uint64_t slot);

/* The slot holds the copy of `chunk` made in `epoch`, with these sums
 * (nsums of them; with `whole`, one CRC32C of the whole chunk).  Room
 * reserved.  Returns 0, or the store's error (it has failed: the entry
 * may be missing, and every lookup now fails). */
int sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                 uint32_t epoch, const uint32_t *sums, bool whole);

/* The copy of `chunk` made in `epoch` no longer uses `slot`: forget it,
 * unless the slot already belongs to another copy (replay sees a slot
 * reused before the copy that had it is dropped).  Returns nothing: if
 * the cache fails, the store fails (sticky) and every later lookup says
 * so, so a stale entry is never read. */
void sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
                    uint32_t epoch);

/* The entry of `slot`: 1 and *out, 0 if the slot holds no data copy, or
 * -errno (the store's error: the answer is unknown, and the caller must
 * fail rather than guess). */
int sc_sums_get (struct sc_sums *s, uint64_t slot,
                 struct sc_sums_entry *out);

/* The first slot at or after `slot` that holds a data copy: 1 and *next,
 * 0 if there is none, or -errno (the walk cannot be completed).  Pages
 * without an entry are skipped in the bitmap, without I/O. */
int sc_sums_next (struct sc_sums *s, uint64_t slot, uint64_t *next);

/* The store's sticky error (a positive errno), or 0. */
int sc_sums_error (const struct sc_sums *s);

/* Bytes the store holds in RAM itself (the bitmap); its pages are in the
 * diff area's cache, within the cache's budget. */
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
