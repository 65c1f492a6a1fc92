/* shadowcopy: the checksums of the copied data, per slot (see sums.h).
 *
 * Notes on the design
 *
 * Slot s lives in page s / 64, at bit s % 64 of the page's bitmap; the
 * page's entries are packed in slot order, so a slot's entry is at the
 * number of bits set below its own.  Pages are allocated one by one,
 * with room for 1, 2, 4 ... 64 entries: room doubles when full and halves
 * when less than half used, and a page is freed with its last entry.
 * The flat array this replaces cost an entry for every slot below the
 * highest one ever used, however few copies were left.
 *
 * The table maps a page number to its page: open addressing with linear
 * probing, the number in the bucket, kept 40-80% full (it doubles above
 * 80%, halves below 20%) and freed with the last page.
 *
 * Growing happens only in sc_sums_reserve: a full page gets more room, a
 * new page is allocated as the spare and the table made ready for it, so
 * sc_sums_set never allocates.  Shrinking happens only in sc_sums_clear,
 * and a failed shrink just keeps the bigger allocation, so neither set
 * nor clear can fail.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "cow/sums.h"

#define PAGE_SLOTS 64u
#define MIN_BUCKETS 16u

/* An entry: the chunk (two words, with WHOLE or'ed in for a version-1
 * copy), the epoch, then the sums. */
#define WHOLE (1ull << 62)      /* chunk numbers stay far below it */
#define HEAD_WORDS 3

struct sc_sums_page {
  uint64_t bits;                /* the page's slots that hold a copy */
  uint32_t n;                   /* entries: bits set */
  uint32_t room;                /* entries allocated */
  uint32_t words[];             /* n entries in slot order */
};

struct sc_sums_bucket {
  uint64_t key;                 /* the page number */
  struct sc_sums_page *page;    /* NULL: empty */
};

static inline size_t
page_size (const struct sc_sums *s, uint32_t room)
{
  return sizeof (struct sc_sums_page)
         + (size_t) room * s->stride * sizeof (uint32_t);
}

static inline uint32_t *
entry_at (const struct sc_sums *s, const struct sc_sums_page *p, uint32_t i)
{
  return (uint32_t *) p->words + (size_t) i * s->stride;
}

/* The position of `bit`'s entry in its page. */
static inline uint32_t
rank (const struct sc_sums_page *p, unsigned bit)
{
  return (uint32_t) __builtin_popcountll (p->bits & ((1ull << bit) - 1));
}

static inline uint64_t
home (const struct sc_sums *s, uint64_t key)
{
  /* splitmix64 finaliser: neighbouring pages spread over the table. */
  uint64_t x = key;
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27; x *= 0x94d049bb133111ebull;
  return (x ^ (x >> 31)) & (s->buckets - 1);
}

/* The bucket of page `key`, or NULL. */
static struct sc_sums_bucket *
find (const struct sc_sums *s, uint64_t key)
{
  if (s->buckets == 0)
    return NULL;
  uint64_t mask = s->buckets - 1;
  for (uint64_t i = home (s, key);; i = (i + 1) & mask) {
    struct sc_sums_bucket *b = &s->table[i];
    if (!b->page)
      return NULL;
    if (b->key == key)
      return b;
  }
}

/* Put page `key` in a table with room. */
static void
table_put (struct sc_sums *s, uint64_t key, struct sc_sums_page *p)
{
  uint64_t mask = s->buckets - 1;
  uint64_t i = home (s, key);
  while (s->table[i].page)
    i = (i + 1) & mask;
  s->table[i] = (struct sc_sums_bucket) { .key = key, .page = p };
}

/* Take bucket i out: shift back the buckets of the cluster after it that
 * may move, so lookups still find them. */
static void
table_remove (struct sc_sums *s, uint64_t i)
{
  uint64_t mask = s->buckets - 1;
  s->table[i].page = NULL;
  for (uint64_t j = (i + 1) & mask; s->table[j].page; j = (j + 1) & mask) {
    uint64_t h = home (s, s->table[j].key);
    /* j's bucket may fill the hole at i unless its home is in (i, j]. */
    bool between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
    if (!between) {
      s->table[i] = s->table[j];
      s->table[j].page = NULL;
      i = j;
    }
  }
}

/* The table with `buckets` buckets; end_page recomputed on the way. */
static int
table_resize (struct sc_sums *s, uint64_t buckets)
{
  if (buckets > SIZE_MAX / sizeof *s->table)
    return -ENOMEM;
  struct sc_sums_bucket *old = s->table, *t = calloc (buckets, sizeof *t);
  if (!t)
    return -ENOMEM;
  uint64_t n = s->buckets;
  s->table = t;
  s->buckets = buckets;
  s->end_page = 0;
  for (uint64_t i = 0; i < n; i++)
    if (old[i].page) {
      table_put (s, old[i].key, old[i].page);
      if (old[i].key >= s->end_page)
        s->end_page = old[i].key + 1;
    }
  free (old);
  return 0;
}

/* Give page b->page `room` entries; -ENOMEM leaves it as it was. */
static int
page_resize (struct sc_sums *s, struct sc_sums_bucket *b, uint32_t room)
{
  struct sc_sums_page *p = realloc (b->page, page_size (s, room));
  if (!p)
    return -ENOMEM;
  s->page_bytes = s->page_bytes - page_size (s, p->room)
                  + page_size (s, room);
  p->room = room;
  b->page = p;
  return 0;
}

void
sc_sums_init (struct sc_sums *s, uint32_t chunk_size)
{
  memset (s, 0, sizeof *s);
  s->chunk_size = chunk_size;
  s->block = sc_sums_block (chunk_size);
  s->nsums = chunk_size / s->block;
  s->stride = HEAD_WORDS + s->nsums;
}

void
sc_sums_free (struct sc_sums *s)
{
  for (uint64_t i = 0; i < s->buckets; i++)
    free (s->table[i].page);
  free (s->table);
  free (s->spare);
  s->table = NULL;
  s->spare = NULL;
  s->buckets = s->pages = s->count = s->end_page = 0;
  s->page_bytes = 0;
}

int
sc_sums_reserve (struct sc_sums *s, uint64_t slot)
{
  struct sc_sums_bucket *b = find (s, slot / PAGE_SLOTS);
  if (b) {
    struct sc_sums_page *p = b->page;
    if ((p->bits >> (slot % PAGE_SLOTS) & 1) || p->n < p->room)
      return 0;
    return page_resize (s, b, p->room * 2);
  }
  if ((s->pages + 1) * 5 > s->buckets * 4) {
    int r = table_resize (s, s->buckets ? s->buckets * 2 : MIN_BUCKETS);
    if (r < 0)
      return r;
  }
  if (!s->spare) {
    struct sc_sums_page *p = malloc (page_size (s, 1));
    if (!p)
      return -ENOMEM;
    *p = (struct sc_sums_page) { .bits = 0, .n = 0, .room = 1 };
    s->spare = p;
    s->page_bytes += page_size (s, 1);
  }
  return 0;
}

void
sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
             uint32_t epoch, const uint32_t *sums, bool whole)
{
  uint64_t key = slot / PAGE_SLOTS;
  unsigned bit = slot % PAGE_SLOTS;
  struct sc_sums_bucket *b = find (s, key);
  if (!b) {
    if (!s->spare || (s->pages + 1) * 5 > s->buckets * 4)
      abort ();                 /* no room reserved: a bug */
    table_put (s, key, s->spare);
    s->spare = NULL;
    s->pages++;
    if (key >= s->end_page)
      s->end_page = key + 1;
    b = find (s, key);
  }
  struct sc_sums_page *p = b->page;
  uint32_t i = rank (p, bit);
  uint32_t *w = entry_at (s, p, i);
  if (!(p->bits >> bit & 1)) {
    if (p->n == p->room)
      abort ();                 /* no room reserved: a bug */
    memmove (w + s->stride, w, (size_t) (p->n - i) * s->stride * sizeof *w);
    p->bits |= 1ull << bit;
    p->n++;
    s->count++;
  }
  uint64_t c = chunk | (whole ? WHOLE : 0);
  memcpy (w, &c, sizeof c);
  w[2] = epoch;
  memcpy (w + HEAD_WORDS, sums, (whole ? 1 : s->nsums) * sizeof *sums);
}

void
sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
               uint32_t epoch)
{
  unsigned bit = slot % PAGE_SLOTS;
  struct sc_sums_bucket *b = find (s, slot / PAGE_SLOTS);
  if (!b || !(b->page->bits >> bit & 1))
    return;
  struct sc_sums_page *p = b->page;
  uint32_t i = rank (p, bit);
  uint32_t *w = entry_at (s, p, i);
  uint64_t c;
  memcpy (&c, w, sizeof c);
  if ((c & ~WHOLE) != chunk || w[2] != epoch)
    return;
  memmove (w, w + s->stride, (size_t) (p->n - i - 1) * s->stride * sizeof *w);
  p->bits &= ~(1ull << bit);
  p->n--;
  s->count--;
  if (p->n > 0) {
    if (p->n < p->room / 2)
      (void) page_resize (s, b, p->room / 2);
    return;
  }
  s->page_bytes -= page_size (s, p->room);
  free (p);
  table_remove (s, (uint64_t) (b - s->table));
  s->pages--;
  if (s->pages == 0)
    sc_sums_free (s);           /* nothing left: nothing kept */
  else if (s->buckets > MIN_BUCKETS && s->pages * 5 < s->buckets)
    (void) table_resize (s, s->buckets / 2);
}

bool
sc_sums_get (const struct sc_sums *s, uint64_t slot,
             struct sc_sums_entry *out)
{
  unsigned bit = slot % PAGE_SLOTS;
  const struct sc_sums_bucket *b = find (s, slot / PAGE_SLOTS);
  if (!b || !(b->page->bits >> bit & 1))
    return false;
  const uint32_t *w = entry_at (s, b->page, rank (b->page, bit));
  uint64_t c;
  memcpy (&c, w, sizeof c);
  out->chunk = c & ~WHOLE;
  out->whole = c & WHOLE;
  out->epoch = w[2];
  memcpy (out->sums, w + HEAD_WORDS,
          (out->whole ? 1 : s->nsums) * sizeof *out->sums);
  return true;
}

uint64_t
sc_sums_next (const struct sc_sums *s, uint64_t slot)
{
  uint64_t key = slot / PAGE_SLOTS;
  if (key >= s->end_page)
    return UINT64_MAX;
  const struct sc_sums_bucket *b = find (s, key);
  uint64_t rest = b ? b->page->bits & (~0ull << slot % PAGE_SLOTS) : 0;
  if (rest)
    return key * PAGE_SLOTS + (uint64_t) __builtin_ctzll (rest);
  /* The next page: number by number while that is cheaper than a pass
   * over the table. */
  uint64_t limit = s->end_page - key > s->pages ? key + 1 + s->pages
                                                : s->end_page;
  for (key++; key < limit; key++)
    if ((b = find (s, key)))
      return key * PAGE_SLOTS + (uint64_t) __builtin_ctzll (b->page->bits);
  if (key >= s->end_page)
    return UINT64_MAX;
  const struct sc_sums_bucket *best = NULL;
  for (uint64_t i = 0; i < s->buckets; i++) {
    const struct sc_sums_bucket *t = &s->table[i];
    if (t->page && t->key >= key && (!best || t->key < best->key))
      best = t;
  }
  return best ? best->key * PAGE_SLOTS
                + (uint64_t) __builtin_ctzll (best->page->bits)
              : UINT64_MAX;
}

size_t
sc_sums_bytes (const struct sc_sums *s)
{
  return s->page_bytes + s->buckets * sizeof *s->table;
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
