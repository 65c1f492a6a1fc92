/* shadowcopy: a bounded cache of 4 KiB pages over files.
 *
 * The copy map (cow/index.c) and the checksums (cow/sums.c) keep their
 * entries in pages of unnamed scratch files, made anew at every open (they
 * are derived from the journal, which stays the only record), and reach
 * them through one cache per diff area whose size is fixed
 * (`index-cache=SIZE`), so the memory of a diff area does not grow with
 * the copies it holds.
 *
 * Pages are found by (file, page number) in a hash table; the cache
 * evicts by the clock algorithm, writing a dirty page back first.  A page
 * is given its disk space (fallocate, for the 64 KiB around it, which the
 * cache remembers) the first time it is written, so a write-back never
 * meets ENOSPC.  A page that finds no space (a full filesystem) is written
 * all the same and stays in memory, dirty and never evicted, until a later
 * pass of the clock gives it its space: a full filesystem neither fails a
 * copy nor makes the map wrong; it only lets those pages stay (counted in
 * `unbacked`), and if every frame is pinned or such, sc_pc_get fails with
 * -EBUSY.  (On a copy-on-write filesystem, btrfs without nodatacow, an
 * overwrite may need space again: a write-back may then fail, which is
 * sticky, below.)  A page never written reads as zeroes (a hole).

 * Errors are sticky: once a read or a write-back of a scratch file fails,
 * what the cache holds may be wrong, so every later sc_pc_get fails with
 * the same errno (sc_pc_error) and the owner must stop trusting the map.
 *
 * Not thread-safe: the diff area's lock protects it.  A page returned by
 * sc_pc_get is pinned (never evicted) until sc_pc_put. */
#ifndef SHADOWCOPY_COW_PAGECACHE_H
#define SHADOWCOPY_COW_PAGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_PC_PAGE 4096u
#define SC_PC_MIN_PAGES 16u     /* the smallest cache, whatever the budget */
#define SC_PC_MAX_FILES 4

struct sc_pc;

struct sc_pc_stats {
  uint64_t hits, misses;        /* sc_pc_get found the page, or read it */
  uint64_t writebacks;          /* dirty pages written back */
  uint64_t unbacked;            /* dirty pages held in memory for want of
                                   disk space */
  uint64_t pages;               /* pages held now (each SC_PC_PAGE bytes) */
  uint64_t max_pages;           /* the budget in pages */
};

/* A cache of at most max(budget / SC_PC_PAGE, SC_PC_MIN_PAGES) pages.
 * -ENOMEM. */
int sc_pc_new (uint64_t budget, struct sc_pc **out);

/* Drop every page (dirty ones too: the files are scratch) and close the
 * files. */
void sc_pc_free (struct sc_pc *pc);

/* An unnamed scratch file in directory `dir` (O_TMPFILE; where the
 * filesystem lacks it, a file made and unlinked at once), to hand to
 * sc_pc_add_file.  Returns the fd or -errno. */
int sc_pc_scratch_file (const char *dir);

/* The cache takes `fd` (and closes it in sc_pc_free).  Returns the file's
 * number for sc_pc_get, or -EMFILE past SC_PC_MAX_FILES. */
int sc_pc_add_file (struct sc_pc *pc, int fd);

/* Get page `page` of file `file`, pinned.  With `write`, the page is
 * marked dirty and given its disk space if it can be (see above).
 * Returns 0 and sets *data to the page's SC_PC_PAGE bytes, or -errno:
 * the sticky error, or -EBUSY if every page of the cache is pinned or
 * waiting for disk space. */
int sc_pc_get (struct sc_pc *pc, int file, uint64_t page, bool write,
               void **data);

/* Mark a pinned page dirty (it was got without `write`), as a get with
 * `write` does.  Call it before changing the page: it fails only with
 * the sticky error, and then the page must not be changed. */
int sc_pc_dirty (struct sc_pc *pc, int file, uint64_t page);

/* Unpin a page got by sc_pc_get (once per get). */
void sc_pc_put (struct sc_pc *pc, int file, uint64_t page);

/* The sticky error (a positive errno), or 0. */
int sc_pc_error (const struct sc_pc *pc);

void sc_pc_stats (const struct sc_pc *pc, struct sc_pc_stats *out);

#endif
