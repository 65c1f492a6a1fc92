/* shadowcopy: changed-block tracking: which chunks may differ between two
 * snapshots or checkpoints, or one and the live volume.
 *
 * Notes on the design
 *
 * Nothing is recorded for it: the answer is in the copy map.  Chunk c
 * changed after the end of epoch F and up to the end of epoch T exactly
 * when some write of c happened in an epoch in (F, T], and the first
 * such write made a copy (or, when only checkpoints needed it, a
 * data-less mark) in that epoch: F's snapshot or checkpoint was valid
 * then and saw c as the origin held it.  That copy holds epochs
 * [P, W - 1] with P <= F < W, so F needs it, and it is kept as long as F
 * is valid (garbage collection turns a data copy that only checkpoints
 * need into a mark).  So: c changed iff c has a copy or mark made in an
 * epoch in (F, T].  A later copy in the range changes nothing in the
 * answer.  Chunks that either side's reader discarded read as zeros
 * there, so they count as changed.
 *
 * A diff read from its start is computed whole: one pass over the copy
 * map under the lock, a radix sort of the changed chunks, their runs
 * united with the discards; it is kept (16 bytes a run) and the pages
 * that follow are cut from it while it is still the answer (whole_kept).
 * Past sc_changes_whole_max changed chunks, each page is computed by itself: a pass
 * keeping the smallest `max` changed chunks at or after `start` (a
 * bounded selection: memory follows the page, not the map).
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/diffarea-internal.h"

struct pick {
  uint32_t from, to;            /* copies made in (from, to] */
  uint64_t start;               /* chunks >= start */
  uint64_t *v;                  /* candidates, at most cap */
  size_t n, cap, keep;          /* keep: the page's chunks (cap = 2 keep) */
  uint64_t bound;               /* chunks above it are not kept */
  bool cut;                     /* chunks were dropped above bound */
  int err;
};

static int
u64_cmp (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* Sort and deduplicate the candidates, keeping the smallest `keep`. */
static void
pick_squeeze (struct pick *p)
{
  qsort (p->v, p->n, sizeof *p->v, u64_cmp);
  size_t k = 0;
  for (size_t i = 0; i < p->n; i++)
    if (k == 0 || p->v[k - 1] != p->v[i])
      p->v[k++] = p->v[i];
  if (k > p->keep) {
    k = p->keep;
    p->cut = true;
    p->bound = p->v[k - 1];
  }
  p->n = k;
}

static bool
pick_visit (void *opaque, uint64_t chunk, uint32_t prev,
            const struct sc_copy *c)
{
  struct pick *p = opaque;
  (void) prev;
  if (c->epoch <= p->from || c->epoch > p->to || chunk < p->start ||
      chunk > p->bound)
    return true;
  if (p->n == p->cap)
    pick_squeeze (p);
  if (chunk <= p->bound)
    p->v[p->n++] = chunk;
  return true;
}

static int
range_cmp (const void *a, const void *b)
{
  const struct sc_chunk_range *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* Append s's discarded chunks within [start, bound]. */
static size_t
add_discards (const struct snap *s, uint64_t start, uint64_t bound,
              struct sc_chunk_range *r, size_t n)
{
  for (size_t i = 0; s && i < s->ndisc; i++) {
    uint64_t a = s->disc[i].first, b = a + s->disc[i].count - 1;
    if (b < start || a > bound)
      continue;
    a = a < start ? start : a;
    b = b > bound ? bound : b;
    r[n++] = (struct sc_chunk_range) { a, b - a + 1 };
  }
  return n;
}

/* Is s a valid, listed snapshot or checkpoint?  0, -ENOENT or -EIO. */
static int
usable (const struct snap *s)
{
  if (!s || s->deleted)
    return -ENOENT;
  return s->info.invalid_reason == SC_VALID ? 0 : -EIO;
}

/* Sort chunk numbers: LSD radix, 16 bits a pass, as many passes as the
 * largest needs (two for a volume of up to 2^32 chunks). */
static int
radix_sort (uint64_t *v, size_t n, uint64_t *tmp)
{
  uint64_t max = 0;
  for (size_t i = 0; i < n; i++)
    max = v[i] > max ? v[i] : max;
  size_t *count = malloc (65536 * sizeof *count);
  if (!count)
    return -ENOMEM;
  for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 16) {
    memset (count, 0, 65536 * sizeof *count);
    for (size_t i = 0; i < n; i++)
      count[(v[i] >> shift) & 0xffff]++;
    size_t sum = 0;
    for (size_t k = 0; k < 65536; k++) {
      size_t c = count[k];
      count[k] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      tmp[count[(v[i] >> shift) & 0xffff]++] = v[i];
    memcpy (v, tmp, n * sizeof *v);
  }
  free (count);
  return 0;
}

/* The runs of the sorted chunks v[n] (duplicates allowed), united with
 * the discards of f and t within [start, bound]: sorted, apart. */
static int
make_runs (const uint64_t *v, size_t n, const struct snap *f,
           const struct snap *t, uint64_t start, uint64_t bound,
           struct sc_chunk_range **out, size_t *nout)
{
  size_t cap = n + f->ndisc + (t ? t->ndisc : 0);
  struct sc_chunk_range *runs = malloc ((cap ? cap : 1) * sizeof *runs);
  if (!runs)
    return -ENOMEM;
  size_t nr = 0;
  for (size_t i = 0; i < n; i++) {
    if (nr && runs[nr - 1].first + runs[nr - 1].count > v[i])
      continue;                 /* a duplicate */
    if (nr && runs[nr - 1].first + runs[nr - 1].count == v[i])
      runs[nr - 1].count++;
    else
      runs[nr++] = (struct sc_chunk_range) { v[i], 1 };
  }
  size_t from_map = nr;
  nr = add_discards (f, start, bound, runs, nr);
  nr = add_discards (t, start, bound, runs, nr);
  if (nr != from_map)
    qsort (runs, nr, sizeof *runs, range_cmp);
  size_t k = 0;                 /* unite overlapping or touching runs */
  for (size_t i = 0; i < nr; i++) {
    uint64_t end = runs[i].first + runs[i].count;
    if (k && runs[k - 1].first + runs[k - 1].count >= runs[i].first) {
      if (end > runs[k - 1].first + runs[k - 1].count)
        runs[k - 1].count = end - runs[k - 1].first;
      continue;
    }
    runs[k++] = runs[i];
  }
  *out = runs;
  *nout = k;
  return 0;
}

/* The page of runs[nr] (whole up to `bound`) from `start`. */
static void
page_of (const struct sc_chunk_range *runs, size_t nr, uint64_t start,
         uint64_t bound, uint64_t nchunks, struct sc_chunk_range *out,
         size_t max, size_t *n, uint64_t *next)
{
  size_t lo = 0, hi = nr;       /* the first run that ends after start */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (runs[mid].first + runs[mid].count <= start)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t k = 0;
  for (size_t i = lo; i < nr && k < max; i++) {
    out[k] = runs[i];
    if (out[k].first < start) {
      out[k].count -= start - out[k].first;
      out[k].first = start;
    }
    k++;
  }
  *n = k;
  if (lo + k < nr)
    *next = runs[lo + k].first;
  else
    *next = bound + 1 < nchunks ? bound + 1 : nchunks;
}

/* Every changed chunk, if there are at most `limit` (else -E2BIG). */
struct all { uint32_t from, to; uint64_t *v; size_t n, cap, limit; int err; };

static bool
all_visit (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct all *a = opaque;
  (void) prev;
  if (a->err || c->epoch <= a->from || c->epoch > a->to)
    return true;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 65536;
    uint64_t *v = a->n >= a->limit ? NULL : realloc (a->v, cap * sizeof *v);
    if (!v) {
      a->err = a->n >= a->limit ? -E2BIG : -ENOMEM;
      return true;
    }
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = chunk;
  return true;
}

/* Diffs of up to this many changed chunks are computed whole, at once
 * (a pass and a radix sort), and kept for the pages that follow (16 bytes
 * a run); larger ones page by page, each a pass with a bounded
 * selection.  Lowered by tests (cow/diffarea.h). */
size_t sc_changes_whole_max = 8u << 20;

static int
whole_diff (struct sc_diff *d, struct snap *f, struct snap *t, uint64_t to_id)
{
  struct all a = { .from = f->info.epoch,
                   .to = t ? t->info.epoch : UINT32_MAX,
                   .limit = sc_changes_whole_max };
  int r = copymap_visit (d, all_visit, &a);
  if (r < 0 && !a.err)
    a.err = r;                  /* never a short list */
  uint64_t *tmp = a.err ? NULL : malloc ((a.n ? a.n : 1) * sizeof *tmp);
  if (!a.err && !tmp)
    a.err = -ENOMEM;
  if (a.err) {
    free (a.v);
    return a.err;
  }
  r = radix_sort (a.v, a.n, tmp);
  free (tmp);
  if (r < 0) {
    free (a.v);
    return r;
  }
  struct sc_chunk_range *runs;
  size_t nr;
  r = make_runs (a.v, a.n, f, t, 0, d->nchunks - 1, &runs, &nr);
  free (a.v);
  if (r < 0)
    return r;
  free (d->changes.runs);
  d->changes = (struct changes_cache) {
    .from_id = f->info.id, .to_id = to_id, .disc_gen = d->disc_gen,
    .map_gen = d->map_gen, .runs = runs, .n = nr,
  };
  return 0;
}

/* Is the kept diff still the answer?  Copies and marks of the epochs
 * (F, T] of a snapshot or checkpoint T are never added later (a copy is
 * made in the live epoch), and the first one after F stays while F is
 * valid; so only discards change it.  A diff to the live volume changes
 * with every copy or mark added. */
static bool
whole_kept (const struct sc_diff *d, uint64_t from_id, uint64_t to_id)
{
  const struct changes_cache *c = &d->changes;
  return c->runs && c->from_id == from_id && c->to_id == to_id &&
         c->disc_gen == d->disc_gen &&
         (to_id != SC_DIFF_LIVE || c->map_gen == d->map_gen);
}

/* A page by itself: the smallest `max` changed chunks from `start`. */
static int
page_diff (struct sc_diff *d, struct snap *f, struct snap *t, uint64_t start,
           struct sc_chunk_range *out, size_t max, size_t *n,
           uint64_t *next)
{
  struct pick p = {
    .from = f->info.epoch, .to = t ? t->info.epoch : UINT32_MAX,
    .start = start, .keep = max, .cap = 2 * max, .bound = UINT64_MAX,
  };
  p.v = malloc (p.cap * sizeof *p.v);
  if (!p.v)
    return -ENOMEM;
  int r = copymap_visit (d, pick_visit, &p);
  if (r < 0) {                  /* never a short list */
    free (p.v);
    return r;
  }
  pick_squeeze (&p);
  uint64_t bound = p.cut ? p.bound : d->nchunks - 1;
  struct sc_chunk_range *runs;
  size_t nr;
  r = make_runs (p.v, p.n, f, t, start, bound, &runs, &nr);
  free (p.v);
  if (r < 0)
    return r;
  page_of (runs, nr, start, bound, d->nchunks, out, max, n, next);
  free (runs);
  return 0;
}

int
sc_diff_changes (struct sc_diff *d, uint64_t from_id, uint64_t to_id,
                 uint64_t start, struct sc_chunk_range *out, size_t max,
                 size_t *n, uint64_t *next)
{
  LOCKED (d);
  *n = 0;
  *next = d->nchunks;
  struct snap *f = snap_by_id (d, from_id, NULL);
  struct snap *t = to_id == SC_DIFF_LIVE ? NULL : snap_by_id (d, to_id, NULL);
  int r = usable (f);
  if (r == 0 && to_id != SC_DIFF_LIVE)
    r = usable (t);
  if (r < 0)
    return r;
  if (t && t->info.id < f->info.id)
    return -EINVAL;
  if (max == 0)
    return -EINVAL;
  if (start >= d->nchunks || (t && t->info.id == f->info.id))
    return 0;
  /* A diff read from its start is made again; its later pages are taken
   * from it while it is still the answer. */
  if (start == 0 || !whole_kept (d, from_id, to_id)) {
    r = whole_diff (d, f, t, to_id);
    if (r == -E2BIG || r == -ENOMEM)
      return page_diff (d, f, t, start, out, max, n, next);
    if (r < 0)
      return r;
  }
  page_of (d->changes.runs, d->changes.n, start, d->nchunks - 1, d->nchunks,
           out, max, n, next);
  return 0;
}

int
sc_diff_snapshot_by_id (struct sc_diff *d, uint64_t id,
                        struct sc_snapshot_info *out)
{
  LOCKED (d);
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted)
    return -ENOENT;
  *out = s->info;
  out->used_bytes = 0;
  return 0;
}
