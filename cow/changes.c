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
 * A page is one pass over the copy map under the lock, keeping the
 * smallest `max` changed chunks at or after `start` (a bounded selection:
 * memory follows the page, not the map), then their runs, united with
 * the discards, and the first `max` runs of that.  So a volume with
 * millions of changed chunks is read in pages of bounded size, each
 * costing one pass over the map.
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

  struct pick p = {
    .from = f->info.epoch, .to = t ? t->info.epoch : UINT32_MAX,
    .start = start, .keep = max, .cap = 2 * max, .bound = UINT64_MAX,
  };
  p.v = malloc (p.cap * sizeof *p.v);
  if (!p.v)
    return -ENOMEM;
  copymap_visit (d, pick_visit, &p);
  pick_squeeze (&p);
  uint64_t bound = p.cut ? p.bound : d->nchunks - 1;

  size_t cap = p.n + f->ndisc + (t ? t->ndisc : 0);
  struct sc_chunk_range *runs = malloc ((cap ? cap : 1) * sizeof *runs);
  if (!runs) {
    free (p.v);
    return -ENOMEM;
  }
  size_t nr = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (nr && runs[nr - 1].first + runs[nr - 1].count == p.v[i])
      runs[nr - 1].count++;
    else
      runs[nr++] = (struct sc_chunk_range) { p.v[i], 1 };
  }
  free (p.v);
  bool only_map = nr == cap;
  nr = add_discards (f, start, bound, runs, nr);
  nr = add_discards (t, start, bound, runs, nr);
  if (!only_map)
    qsort (runs, nr, sizeof *runs, range_cmp);

  /* Unite overlapping or touching runs; the first `max` are the page. */
  size_t k = 0;
  for (size_t i = 0; i < nr; i++) {
    uint64_t end = runs[i].first + runs[i].count;
    if (k && out[k - 1].first + out[k - 1].count >= runs[i].first) {
      uint64_t cur = out[k - 1].first + out[k - 1].count;
      if (end > cur)
        out[k - 1].count = end - out[k - 1].first;
      continue;
    }
    if (k == max) {
      *next = runs[i].first;
      break;
    }
    out[k++] = runs[i];
  }
  if (k < max || *next == d->nchunks)
    *next = bound + 1 < d->nchunks ? bound + 1 : d->nchunks;
  free (runs);
  *n = k;
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
