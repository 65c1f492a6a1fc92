/* shadowcopy: the copy index (hash table of per-chunk sorted copies). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/index.h"

#define EMPTY UINT64_MAX

struct sc_index_entry {
  uint64_t chunk;               /* EMPTY when unused */
  uint32_t n;                   /* copies */
  uint32_t cap;                 /* capacity of many; 0 while inline */
  union {
    struct sc_copy one;
    struct sc_copy *many;
  } u;
};

static inline struct sc_copy *
copies_of (struct sc_index_entry *e)
{
  return e->cap ? e->u.many : &e->u.one;
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
      if (ix->table[i].chunk != EMPTY && ix->table[i].cap)
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
  *out = copies_of (e)[e->n - 1];
  return true;
}

bool
sc_index_after (const struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct sc_copy *out)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  const struct sc_copy *c = copies_of (e);
  uint32_t lo = 0, hi = e->n;   /* first copy with c.epoch > epoch */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (c[mid].epoch > epoch)
      hi = mid;
    else
      lo = mid + 1;
  }
  if (lo == e->n)
    return false;
  *out = c[lo];
  return true;
}

bool
sc_index_find (const struct sc_index *ix, uint64_t chunk, uint32_t epoch,
                struct sc_copy *out)
{
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e)
    return false;
  const struct sc_copy *c = copies_of (e);
  for (uint32_t i = 0; i < e->n; i++)
    if (c[i].epoch == epoch) {
      *out = c[i];
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
  struct sc_copy *c = copies_of (e);
  uint32_t k = 0;
  while (k < e->n && c[k].epoch != epoch)
    k++;
  if (k == e->n)
    return false;
  memmove (&c[k], &c[k + 1], (e->n - k - 1) * sizeof *c);
  e->n--;
  ix->copies--;
  if (e->n == 1 && e->cap) {
    struct sc_copy one = c[0];
    free (e->u.many);
    e->cap = 0;
    e->u.one = one;
  }
  else if (e->n == 0) {
    if (e->cap)
      free (e->u.many);
    remove_at (ix, (uint64_t) (e - ix->table));
  }
  return true;
}

int
sc_index_add (struct sc_index *ix, uint64_t chunk, struct sc_copy copy)
{
  if (chunk == EMPTY)
    return -EINVAL;
  struct sc_index_entry *e = lookup (ix, chunk);
  if (!e) {
    if ((ix->chunks + 1) * 10 > ix->capacity * 7) {
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
    e->n = 1;
    e->cap = 0;
    e->u.one = copy;
    ix->chunks++;
    ix->copies++;
    return 0;
  }

  struct sc_copy *c = copies_of (e);
  uint32_t pos = e->n;          /* copies arrive in epoch order, usually */
  while (pos > 0 && c[pos - 1].epoch > copy.epoch)
    pos--;
  if (pos > 0 && c[pos - 1].epoch == copy.epoch)
    return -EEXIST;
  if (e->n == (e->cap ? e->cap : 1)) {
    uint32_t cap = e->cap ? e->cap * 2 : 4;
    struct sc_copy *m = malloc (cap * sizeof *m);
    if (!m)
      return -ENOMEM;
    memcpy (m, c, e->n * sizeof *m);
    if (e->cap)
      free (e->u.many);
    e->u.many = m;
    e->cap = cap;
    c = m;
  }
  memmove (&c[pos + 1], &c[pos], (e->n - pos) * sizeof *c);
  c[pos] = copy;
  e->n++;
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
    struct sc_copy *c = copies_of (e);
    uint32_t kept = 0, prev = 0;
    for (uint32_t k = 0; k < e->n; k++) {
      uint32_t epoch = c[k].epoch;
      if (keep (opaque, e->chunk, prev, &c[k]))
        c[kept++] = c[k];
      prev = epoch;
    }
    ix->copies -= e->n - kept;
    e->n = kept;
    if (kept == 1 && e->cap) {
      struct sc_copy one = c[0];
      free (e->u.many);
      e->cap = 0;
      e->u.one = one;
    }
    if (kept == 0) {
      if (e->cap)
        free (e->u.many);
      remove_at (ix, i);
      /* An entry from further on may have moved into slot i: visit
       * slot i again (n wraps to 0 when it was 0). */
      if (ix->table[i].chunk != EMPTY)
        n--;
    }
  }
  return 0;
}
