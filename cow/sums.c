/* shadowcopy: the checksums of the copied data, per slot (see sums.h).
 *
 * Notes on the design
 *
 * An entry is `stride` 32-bit words: the head (two words: a tag in the
 * top byte, the chunk below it), the epoch, nsums sums (a version-1
 * copy's one CRC, then zeroes), and a CRC32C of the words before it.
 * The tag says present (and whole or not); a zeroed entry is absent.  A
 * page read back with an entry that has a bad tag or a bad CRC makes the
 * store fail (EIO) rather than answer: the cache or the file let it down.
 *
 * Disk space: sc_sums_reserve asks the cache for the slot's page for
 * writing, which gives the page its disk space (fallocate) the first
 * time; a page once backed stays backed (the file only grows), so the
 * sc_sums_set that follows needs no new space even if the page was
 * evicted in between.  Clearing never gives space back: the file's size
 * follows the highest slot used in this open, like the diff area's own
 * data file, and it goes when the open ends.
 *
 * The bitmap of pages in use (bit set by sc_sums_set, cleared by
 * sc_sums_clear when it empties the page) lets a lookup of a slot in an
 * empty page answer at once, and the walk (sc_sums_next) skip runs of
 * empty pages 64 at a time; end_page bounds both.  It grows in
 * sc_sums_reserve, the only call that may allocate.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "cow/pagecache.h"
#include "cow/sums.h"

#define HEAD_WORDS 3            /* head (2), epoch */
#define TAG_SHIFT 56
#define CHUNK_MASK ((UINT64_C (1) << TAG_SHIFT) - 1)
#define TAG_DATA (UINT64_C (0x5c) << TAG_SHIFT)
#define TAG_WHOLE (UINT64_C (0x5d) << TAG_SHIFT)
#define CRC_SEED 0x53554d53u    /* "SUMS" */

/* ---- entries ------------------------------------------------------------ */

static inline uint64_t
head_of (const uint32_t *w)
{
  uint64_t h;
  memcpy (&h, w, sizeof h);
  return h;
}

static inline uint32_t
entry_crc (const struct sc_sums *s, const uint32_t *w)
{
  return crc32c (CRC_SEED, w, (s->stride - 1) * sizeof *w);
}

static inline uint32_t *
entry_at (const struct sc_sums *s, void *page, uint64_t slot)
{
  return (uint32_t *) page + (size_t) (slot % s->per_page) * s->stride;
}

/* Is the entry at w present (1), absent (0), or not an entry (-EIO)? */
static int
entry_state (const struct sc_sums *s, const uint32_t *w)
{
  uint64_t h = head_of (w);
  if (h == 0)
    return 0;
  uint64_t tag = h & ~CHUNK_MASK;
  if ((tag != TAG_DATA && tag != TAG_WHOLE) ||
      w[s->stride - 1] != entry_crc (s, w))
    return -EIO;
  return 1;
}

/* ---- the store ---------------------------------------------------------- */

static int
fail (struct sc_sums *s, int err)
{
  if (!s->error)
    s->error = -err;
  return -s->error;
}

static inline bool
page_used (const struct sc_sums *s, uint64_t page)
{
  return page < s->end_page && (s->used[page / 64] >> (page % 64) & 1);
}

/* The bitmap covers page `page`; -ENOMEM leaves it as it was. */
static int
used_grow (struct sc_sums *s, uint64_t page)
{
  uint64_t need = page / 64 + 1;
  if (need <= s->used_words)
    return 0;
  uint64_t words = s->used_words ? s->used_words : 16;
  while (words < need)
    words *= 2;
  if (words > SIZE_MAX / sizeof *s->used)
    return -ENOMEM;
  uint64_t *u = realloc (s->used, words * sizeof *u);
  if (!u)
    return -ENOMEM;
  memset (u + s->used_words, 0, (words - s->used_words) * sizeof *u);
  s->used = u;
  s->used_words = words;
  return 0;
}

/* Page `page` holds no entry any more. */
static void
used_drop (struct sc_sums *s, uint64_t page)
{
  s->used[page / 64] &= ~(UINT64_C (1) << (page % 64));
  if (page + 1 != s->end_page)
    return;
  /* The last page emptied: end_page goes back to the one before. */
  uint64_t w = page / 64 + 1;
  while (w > 0 && s->used[w - 1] == 0)
    w--;
  s->end_page = w ? (w - 1) * 64 + 64 - (uint64_t) __builtin_clzll
                                               (s->used[w - 1])
                  : 0;
}

/* The first page in use at or after `page`, or end_page. */
static uint64_t
used_next (const struct sc_sums *s, uint64_t page)
{
  if (page >= s->end_page)
    return s->end_page;
  uint64_t w = page / 64;
  uint64_t bits = s->used[w] & (~UINT64_C (0) << (page % 64));
  while (!bits) {
    if (++w * 64 >= s->end_page)
      return s->end_page;
    bits = s->used[w];
  }
  uint64_t p = w * 64 + (uint64_t) __builtin_ctzll (bits);
  return p < s->end_page ? p : s->end_page;
}

int
sc_sums_init (struct sc_sums *s, uint32_t chunk_size, struct sc_pc *pc,
              int fd)
{
  memset (s, 0, sizeof *s);
  s->chunk_size = chunk_size;
  s->block = sc_sums_block (chunk_size);
  s->nsums = chunk_size / s->block;
  s->stride = HEAD_WORDS + s->nsums + 1;
  s->per_page = SC_PC_PAGE / (s->stride * (uint32_t) sizeof (uint32_t));
  s->pc = pc;
  s->file = sc_pc_add_file (pc, fd);
  if (s->file < 0) {
    int r = s->file;
    close (fd);
    s->error = -r;
    return r;
  }
  return 0;
}

void
sc_sums_free (struct sc_sums *s)
{
  free (s->used);
  s->used = NULL;
  s->used_words = s->end_page = s->count = 0;
}

int
sc_sums_error (const struct sc_sums *s)
{
  return s->error;
}

int
sc_sums_reserve (struct sc_sums *s, uint64_t slot)
{
  if (s->error)
    return -s->error;
  uint64_t page = slot / s->per_page;
  int r = used_grow (s, page);
  if (r < 0)
    return r;
  void *p;
  r = sc_pc_get (s->pc, s->file, page, true, &p);
  if (r < 0)
    /* No space, no memory, a busy cache: this copy fails, the store
     * goes on.  The cache's own (sticky) error fails the store. */
    return sc_pc_error (s->pc) ? fail (s, r) : r;
  sc_pc_put (s->pc, s->file, page);
  return 0;
}

int
sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
             uint32_t epoch, const uint32_t *sums, bool whole)
{
  if (s->error)
    return -s->error;
  uint64_t page = slot / s->per_page;
  if (chunk > CHUNK_MASK || page / 64 >= s->used_words)
    abort ();                   /* no room reserved, or no such chunk: a bug */
  void *p;
  int r = sc_pc_get (s->pc, s->file, page, true, &p);
  if (r < 0)
    return fail (s, r);
  uint32_t *w = entry_at (s, p, slot);
  if (head_of (w) == 0)
    s->count++;
  uint64_t h = chunk | (whole ? TAG_WHOLE : TAG_DATA);
  memcpy (w, &h, sizeof h);
  w[2] = epoch;
  memset (w + HEAD_WORDS, 0, s->nsums * sizeof *w);
  memcpy (w + HEAD_WORDS, sums, (whole ? 1 : s->nsums) * sizeof *sums);
  w[s->stride - 1] = entry_crc (s, w);
  sc_pc_put (s->pc, s->file, page);
  s->used[page / 64] |= UINT64_C (1) << (page % 64);
  if (page >= s->end_page)
    s->end_page = page + 1;
  return 0;
}

void
sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
               uint32_t epoch)
{
  uint64_t page = slot / s->per_page;
  if (s->error || !page_used (s, page))
    return;
  void *p;
  int r = sc_pc_get (s->pc, s->file, page, false, &p);
  if (r < 0) {
    fail (s, r);
    return;
  }
  uint32_t *w = entry_at (s, p, slot);
  int st = entry_state (s, w);
  if (st < 0)
    fail (s, st);
  else if (st > 0 && (head_of (w) & CHUNK_MASK) == chunk && w[2] == epoch) {
    if ((r = sc_pc_dirty (s->pc, s->file, page)) < 0)
      fail (s, r);
    else {
      memset (w, 0, s->stride * sizeof *w);
      s->count--;
      bool empty = true;
      for (uint32_t i = 0; i < s->per_page && empty; i++)
        empty = head_of ((uint32_t *) p + (size_t) i * s->stride) == 0;
      if (empty)
        used_drop (s, page);
    }
  }
  sc_pc_put (s->pc, s->file, page);
}

int
sc_sums_get (struct sc_sums *s, uint64_t slot, struct sc_sums_entry *out)
{
  if (s->error)
    return -s->error;
  uint64_t page = slot / s->per_page;
  if (!page_used (s, page))
    return 0;
  void *p;
  int r = sc_pc_get (s->pc, s->file, page, false, &p);
  if (r < 0)
    return sc_pc_error (s->pc) ? fail (s, r) : r;
  const uint32_t *w = entry_at (s, p, slot);
  int st = entry_state (s, w);
  if (st > 0) {
    uint64_t h = head_of (w);
    out->chunk = h & CHUNK_MASK;
    out->whole = (h & ~CHUNK_MASK) == TAG_WHOLE;
    out->epoch = w[2];
    memcpy (out->sums, w + HEAD_WORDS,
            (out->whole ? 1 : s->nsums) * sizeof *out->sums);
  }
  sc_pc_put (s->pc, s->file, page);
  return st < 0 ? fail (s, st) : st;
}

int
sc_sums_next (struct sc_sums *s, uint64_t slot, uint64_t *next)
{
  if (s->error)
    return -s->error;
  uint64_t page = slot / s->per_page;
  uint32_t i = (uint32_t) (slot % s->per_page);
  for (;;) {
    uint64_t in_use = used_next (s, page);
    if (in_use >= s->end_page)
      return 0;
    if (in_use != page)
      i = 0;
    page = in_use;
    void *p;
    int r = sc_pc_get (s->pc, s->file, page, false, &p);
    if (r < 0)
      return sc_pc_error (s->pc) ? fail (s, r) : r;
    int st = 0;
    for (; i < s->per_page && st == 0; i++)
      st = entry_state (s, (uint32_t *) p + (size_t) i * s->stride);
    sc_pc_put (s->pc, s->file, page);
    if (st < 0)
      return fail (s, st);
    if (st > 0) {
      *next = page * s->per_page + i - 1;
      return 1;
    }
    page++;
    i = 0;
  }
}

size_t
sc_sums_bytes (const struct sc_sums *s)
{
  return s->used_words * sizeof *s->used;
}

void
sc_sums_compute (const struct sc_sums *s, const void *chunk, uint32_t *out)
{
  const uint8_t *p = chunk;
  for (uint32_t b = 0; b < s->nsums; b++)
    out[b] = crc32c (0, p + (size_t) b * s->block, s->block);
}

int
sc_sums_verify (const struct sc_sums *s, const struct sc_sums_entry *e,
                const void *buf, uint32_t at, uint32_t len)
{
  const uint8_t *p = buf;
  if (e->whole)
    return crc32c (0, p, s->chunk_size) == e->sums[0] ? -1 : 0;
  for (uint32_t b = at / s->block; b < (at + len) / s->block; b++)
    if (crc32c (0, p + ((size_t) b * s->block - at), s->block) != e->sums[b])
      return (int) b;
  return -1;
}
