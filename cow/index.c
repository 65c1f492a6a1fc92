/* shadowcopy: the copy index (hash table of per-chunk sorted copies). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/index.h"

#define EMPTY UINT64_MAX
#define MANY UINT32_MAX         /* entry epoch: the copies are in u.many */

/* The table grows (doubles) when more than LOAD_NUM/LOAD_DEN of it would
 * be used, so it is 40-80% full: 30-60 bytes a chunk. */
#define LOAD_NUM 4
#define LOAD_DEN 5

/* Copies of a chunk with more than one, sorted by epoch. */
struct many {
  uint32_t n, cap;
  struct sc_copy c[];
};

/* 24 bytes.  A chunk with one copy, by far the most common case, keeps
 * it inline; copy epochs never reach MANY (sc_index_add refuses it). */
struct sc_index_entry {
  uint64_t chunk;               /* EMPTY when unused */
  uint32_t epoch;               /* the copy's epoch, or MANY */
  uint32_t crc;                 /* the copy's CRC (unused with MANY) */
  union {
    uint64_t slot;              /* the copy's slot */
    struct many *many;          /* with MANY */
  } u;
};
_Static_assert (sizeof (struct sc_index_entry) == 24, "index entry size");

static inline uint32_t
ncopies (const struct sc_index_entry *e)
{
  return e->epoch == MANY ? e->u.many->n : 1;
}

static inline struct sc_copy
copy_at (const struct sc_index_entry *e, uint32_t k)
{
  if (e->epoch == MANY)
    return e->u.many->c[k];
  return (struct sc_copy) { .slot = e->u.slot, .epoch = e->epoch,
                            .crc = e->crc };
}

static inline void
set_one (struct sc_index_entry *e, struct sc_copy c)
{
  e->epoch = c.epoch;
  e->crc = c.crc;
  e->u.slot = c.slot;
}

/* After copies were removed from a MANY entry: back to inline at one. */
static void
shrink_many (struct sc_index_entry *e)
{
  struct many *m = e->u.many;
  if (m->n == 1) {
    struct sc_copy one = m->c[0];
    free (m);
    set_one (e, one);
  }
}

static inline uint64_t
hash (uint64_t x)
{
  /* splitmix64 finaliser: sequential chunks spread over the table. */
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27; x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static struct sc_index_entry *
table_alloc (uint64_t capacity)
{
  struct sc_index_entry *t = malloc (capacity * sizeof *t);
  if (t)
    for (uint64_t i = 0; i < capacity; i++)
      t[i].chunk = EMPTY;
  return t;
}

int
sc_index_init (struct sc_index *ix)
{
  memset (ix, 0, sizeof *ix);
  ix->capacity = 1024;
  ix->table = table_alloc (ix->capacity);
  return ix->table ? 0 : -ENOMEM;
}

void
sc_index_free (struct sc_index *ix)
{
  if (ix->table)
    for (uint64_t i = 0; i < ix->capacity; i++)
      if (ix->table[i].chunk != EMPTY && ix->table[i].epoch == MANY)
        free (ix->table[i].u.many);
  free (ix->table);
  memset (ix, 0, sizeof *ix);
}

static struct sc_index_entry *
lookup (const struct sc_index *ix, uint64_t chunk)
{
  uint64_t mask = ix->capacity - 1;
  for (uint64_t i = hash (chunk) & mask;; i = (i + 1) & mask) {
    struct sc_index_entry *e = &ix->table[i];
    if (e->chunk == chunk)
      return e;
    if (e->chunk == EMPTY)
      return NULL;
  }
}

static int
grow (struct sc_index *ix)
{
  uint64_t cap = ix->capacity * 2;
  struct sc_index_entry *t = table_alloc (cap);
  if (!t)
    return -ENOMEM;
  for (uint64_t i = 0; i < ix->capacity; i++) {
    struct sc_index_entry *e = &ix->table[i];
    if (e->chunk == EMPTY)
      continue;
    uint64_t j = hash (e->chunk) & (cap - 1);
    while (t[j].chunk != EMPTY)
      j = (j + 1) & (cap - 1);
    t[j] = *e;
  }
  free (ix->table);
  ix->table = t;
  ix->capacity = cap;
  return 0;
}

bool
sc_index_last (const struct sc_index *ix, uint64_t chunk, struct sc_copy *out)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  *out = copy_at (e, ncopies (e) - 1);
  return true;
}

bool
sc_index_after (const struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct sc_copy *out)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  if (e->epoch != MANY) {
    if (e->epoch <= epoch)
      return false;
    *out = copy_at (e, 0);
    return true;
  }
  const struct many *m = e->u.many;
  uint32_t lo = 0, hi = m->n;   /* first copy with c.epoch > epoch */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (m->c[mid].epoch > epoch)
      hi = mid;
    else
      lo = mid + 1;
  }
  if (lo == m->n)
    return false;
  *out = m->c[lo];
  return true;
}

bool
sc_index_find (const struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct sc_copy *out)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  for (uint32_t i = 0, n = ncopies (e); i < n; i++) {
    struct sc_copy c = copy_at (e, i);
    if (c.epoch == epoch) {
      *out = c;
      return true;
    }
  }
  return false;
}

bool
sc_index_set_slot (struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                   uint64_t slot, uint32_t crc)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  if (e->epoch != MANY) {
    if (e->epoch != epoch)
      return false;
    e->u.slot = slot;
    e->crc = crc;
    return true;
  }
  for (uint32_t i = 0; i < e->u.many->n; i++)
    if (e->u.many->c[i].epoch == epoch) {
      e->u.many->c[i].slot = slot;
      e->u.many->c[i].crc = crc;
      return true;
    }
  return false;
}

static void remove_at (struct sc_index *ix, uint64_t i);

bool
sc_index_remove (struct sc_index *ix, uint64_t chunk, uint32_t epoch)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  if (e->epoch != MANY) {
    if (e->epoch != epoch)
      return false;
    ix->copies--;
    remove_at (ix, (uint64_t) (e - ix->table));
    return true;
  }
  struct many *m = e->u.many;
  uint32_t k = 0;
  while (k < m->n && m->c[k].epoch != epoch)
    k++;
  if (k == m->n)
    return false;
  memmove (&m->c[k], &m->c[k + 1], (m->n - k - 1) * sizeof *m->c);
  m->n--;
  ix->copies--;
  shrink_many (e);              /* a MANY entry has two or more copies */
  return true;
}

int
sc_index_add (struct sc_index *ix, uint64_t chunk, struct sc_copy copy)
{
  if (chunk == EMPTY || copy.epoch == MANY)
    return -EINVAL;
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e) {
    if ((ix->chunks + 1) * LOAD_DEN > ix->capacity * LOAD_NUM) {
      int r = grow (ix);
      if (r < 0)
        return r;
    }
    uint64_t mask = ix->capacity - 1;
    uint64_t i = hash (chunk) & mask;
    while (ix->table[i].chunk != EMPTY)
      i = (i + 1) & mask;
    e = &ix->table[i];
    e->chunk = chunk;
    set_one (e, copy);
    ix->chunks++;
    ix->copies++;
    return 0;
  }

  if (e->epoch != MANY) {       /* one copy so far: make it two */
    if (e->epoch == copy.epoch)
      return -EEXIST;
    struct many *m = malloc (sizeof *m + 4 * sizeof *m->c);
    if (!m)
      return -ENOMEM;
    struct sc_copy one = copy_at (e, 0);
    bool first = copy.epoch < one.epoch;
    m->n = 2;
    m->cap = 4;
    m->c[first ? 0 : 1] = copy;
    m->c[first ? 1 : 0] = one;
    e->epoch = MANY;
    e->crc = 0;
    e->u.many = m;
    ix->copies++;
    return 0;
  }

  struct many *m = e->u.many;
  uint32_t pos = m->n;          /* copies arrive in epoch order, usually */
  while (pos > 0 && m->c[pos - 1].epoch > copy.epoch)
    pos--;
  if (pos > 0 && m->c[pos - 1].epoch == copy.epoch)
    return -EEXIST;
  if (m->n == m->cap) {
    if (m->cap > UINT32_MAX / 2)
      return -ENOMEM;
    uint32_t cap = m->cap * 2;
    struct many *bigger = realloc (m, sizeof *m + (size_t) cap * sizeof *m->c);
    if (!bigger)
      return -ENOMEM;
    m = e->u.many = bigger;
    m->cap = cap;
  }
  memmove (&m->c[pos + 1], &m->c[pos], (m->n - pos) * sizeof *m->c);
  m->c[pos] = copy;
  m->n++;
  ix->copies++;
  return 0;
}

/* Remove the entry at table position i (linear probing: shift back the
 * entries of the cluster that follow, so lookups still find them). */
static void
remove_at (struct sc_index *ix, uint64_t i)
{
  uint64_t mask = ix->capacity - 1;
  uint64_t j = i;
  ix->table[i].chunk = EMPTY;
  for (;;) {
    j = (j + 1) & mask;
    if (ix->table[j].chunk == EMPTY)
      break;
    uint64_t home = hash (ix->table[j].chunk) & mask;
    /* Can j's entry move to the hole at i?  Only if its home is not in
     * the cyclic range (i, j]. */
    bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      ix->table[i] = ix->table[j];
      ix->table[j].chunk = EMPTY;
      i = j;
    }
  }
  ix->chunks--;
}

/* Filter the copies of the entry e; returns how many are kept. */
static uint32_t
filter_entry (struct sc_index *ix, struct sc_index_entry *e,
              sc_index_visit_fn keep, void *opaque)
{
  if (e->epoch != MANY) {
    struct sc_copy one = copy_at (e, 0);
    if (keep (opaque, e->chunk, 0, &one))
      return 1;
    ix->copies--;
    return 0;
  }
  struct many *m = e->u.many;
  uint32_t kept = 0, prev = 0;
  for (uint32_t k = 0; k < m->n; k++) {
    uint32_t epoch = m->c[k].epoch;
    if (keep (opaque, e->chunk, prev, &m->c[k]))
      m->c[kept++] = m->c[k];
    prev = epoch;
  }
  ix->copies -= m->n - kept;
  m->n = kept;
  if (kept == 0)
    free (m);
  else
    shrink_many (e);
  return kept;
}

int
sc_index_filter (struct sc_index *ix, sc_index_visit_fn keep, void *opaque)
{
  if (ix->capacity == 0)
    return 0;
  /* Scan from just past an empty bucket (the load factor keeps one), so
   * no cluster wraps past the start of the scan: a removal then only
   * moves entries not yet visited, never one from a bucket already
   * visited into one still ahead (which would visit it twice). */
  uint64_t mask = ix->capacity - 1, start = 0;
  while (ix->table[start].chunk != EMPTY)
    start++;
  for (uint64_t n = 0; n < ix->capacity; n++) {
    uint64_t i = (start + 1 + n) & mask;
    struct sc_index_entry *e = &ix->table[i];
    if (e->chunk == EMPTY)
      continue;
    if (filter_entry (ix, e, keep, opaque) == 0) {
      remove_at (ix, i);
      /* An entry from further on may have moved into slot i: visit
       * slot i again (n wraps to 0 when it was 0). */
      if (ix->table[i].chunk != EMPTY)
        n--;
    }
  }
  return 0;
}

/* A slice covers the entries whose home bucket lies in [a, limit): an
 * entry sits at or after its home, with no empty bucket in between, and
 * a removal only moves an entry back towards its home, so entries whose
 * home is at or past the cursor are found by the next slice wherever
 * removals meanwhile moved them.  The scan goes from bucket a to the
 * first empty bucket past the last home of the slice; an entry whose run
 * wraps past the table's end (its home above its position) is visited
 * when the scan wraps, never at the start.  A resize moves every home:
 * the cursor keeps the table size, and a pass starts over if it changed
 * (visiting some copies twice, which the callers allow). */
#define SLICE_POS_BITS 56
#define SLICE_POS_MASK ((UINT64_C (1) << SLICE_POS_BITS) - 1)

int
sc_index_filter_slice (struct sc_index *ix, uint64_t *cursor, uint64_t budget,
                       sc_index_visit_fn keep, void *opaque)
{
  if (ix->capacity == 0) {
    *cursor = 0;
    return 1;
  }
  uint64_t cap = ix->capacity, mask = cap - 1;
  uint64_t lg = (uint64_t) __builtin_ctzll (cap);
  uint64_t a = *cursor & SLICE_POS_MASK;
  if (*cursor != 0 && (*cursor >> SLICE_POS_BITS) != lg)
    a = 0;                      /* resized meanwhile: start over */
  if (a >= cap)
    a = 0;
  uint64_t limit = cap, seen = 0, p = a;
  bool wrapped = false;
  for (;;) {
    if (p == cap) {
      wrapped = true;
      p = 0;
    }
    if (wrapped && p >= a && a > 0)
      break;                    /* (the load factor leaves an empty
                                   bucket first; a guard) */
    struct sc_index_entry *e = &ix->table[p];
    if (e->chunk == EMPTY) {
      if (wrapped || limit != cap)
        break;                  /* the last cluster of the slice ended */
      p++;
      continue;
    }
    uint64_t h = hash (e->chunk) & mask;
    bool mine = !wrapped ? (h >= a && h <= p && h < limit)
                         : (h > p && h >= a && h < limit);
    if (mine) {
      seen += ncopies (e);
      bool gone = filter_entry (ix, e, keep, opaque) == 0;
      if (!wrapped && limit == cap && seen >= budget)
        limit = p + 1;
      if (gone) {
        remove_at (ix, p);
        if (ix->table[p].chunk != EMPTY)
          continue;             /* an entry moved into p: look again */
      }
    }
    p++;
  }
  if (limit == cap) {
    *cursor = 0;
    return 1;
  }
  *cursor = (lg << SLICE_POS_BITS) | limit;
  return 0;
}
