/* shadowcopy: per-snapshot usage: counters of the copies by the range of
 * epochs they serve, so that what each snapshot uses is known without a
 * scan of the copy map.
 *
 * Notes on the design
 *
 * What deleting a snapshot would free depends on a copy only through the
 * range of epochs [from, to] it serves and on its kind (data in a slot of
 * its own, a mark, or zero): a data copy counts for the one valid
 * snapshot in its range if there is exactly one, a mark for the one
 * valid checkpoint in its range if there is exactly one and no valid
 * snapshot is in it.  So the copies are counted by class (from, to),
 * data and marks apart (zero copies cost nothing), and a listing walks
 * the classes: its cost is the number of classes, not of copies.
 *
 * The copy map keeps the counters in step (copymap.c): adding a copy
 * counts it, and when it lands before an older copy's successor (an
 * out-of-order replay) that successor's range starts at it now; removing
 * one uncounts it and the next copy of its chunk serves from the removed
 * copy's start; a demotion moves one from data to marks.  If a class
 * cannot be allocated the counters are marked stale and the next listing
 * counts them again with one scan of the map (usage_rebuild).
 *
 * Memory: one 24-byte class per distinct (from, to) pair among the
 * copies.  `from` is 0 or the epoch of another copy and `to` is a copy's
 * epoch minus one, so with E distinct copy epochs there are at most
 * E (E + 1) / 2 classes, and never more than copies; a class exists only
 * while a copy is in it.  Copy epochs are those in which a live write
 * found a valid snapshot or checkpoint to copy for, so E is at most the
 * number of snapshots and checkpoints taken whose copies are still
 * kept, plus the epochs their successors were copied in; in practice a
 * few classes per kept snapshot.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"

void
usage_init (struct sc_usage *u)
{
  memset (u, 0, sizeof *u);
}

void
usage_free (struct sc_usage *u)
{
  free (u->v);
  memset (u, 0, sizeof *u);
}

static inline uint64_t
key (uint32_t from, uint32_t to)
{
  return (uint64_t) from << 32 | to;
}

/* The position of class (from, to), or where it would go. */
static size_t
lower (const struct sc_usage *u, uint64_t k)
{
  size_t lo = 0, hi = u->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (key (u->v[mid].from, u->v[mid].to) < k)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Add `delta` data copies or marks (`mark`) to class (from, to). */
static void
bump (struct sc_usage *u, uint32_t from, uint32_t to, bool mark,
      int64_t delta)
{
  if (u->stale)
    return;
  uint64_t k = key (from, to);
  size_t i = lower (u, k);
  if (i == u->n || key (u->v[i].from, u->v[i].to) != k) {
    if (delta < 0) {            /* uncounting what was never counted */
      u->stale = true;
      return;
    }
    if (u->n == u->cap) {
      size_t cap = u->cap ? 2 * u->cap : 16;
      struct usage_class *v = realloc (u->v, cap * sizeof *v);
      if (!v) {
        u->stale = true;        /* counted again by the next listing */
        return;
      }
      u->v = v;
      u->cap = cap;
    }
    memmove (&u->v[i + 1], &u->v[i], (u->n - i) * sizeof *u->v);
    u->v[i] = (struct usage_class) { .from = from, .to = to };
    u->n++;
  }
  struct usage_class *c = &u->v[i];
  uint64_t *n = mark ? &c->marks : &c->data;
  if (delta < 0 && *n < (uint64_t) -delta) {
    u->stale = true;
    return;
  }
  *n += (uint64_t) delta;
  if (c->data == 0 && c->marks == 0) {
    memmove (&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof *u->v);
    u->n--;
  }
}

void
usage_count (struct sc_usage *u, uint32_t prev, const struct sc_copy *c,
             int delta)
{
  if (c->slot == SC_SLOT_ZERO)
    return;
  uint32_t from, to;
  copymap_serves (prev, c, &from, &to);
  bump (u, from, to, c->slot == SC_SLOT_MARK, delta);
}

void
usage_move (struct sc_usage *u, const struct sc_copy *c, uint32_t old_prev,
            uint32_t new_prev)
{
  if (old_prev == new_prev)
    return;
  usage_count (u, old_prev, c, -1);
  usage_count (u, new_prev, c, +1);
}

void
usage_demote (struct sc_usage *u, uint32_t prev, uint32_t epoch)
{
  struct sc_copy c = { .slot = SC_SLOT_MARK, .epoch = epoch };
  uint32_t from, to;
  copymap_serves (prev, &c, &from, &to);
  bump (u, from, to, false, -1);
  bump (u, from, to, true, +1);
  u->demotes++;
}

/* ---- counting again, and the answers ----------------------------------- */

static bool
count_visit (void *opaque, uint64_t chunk, uint32_t prev,
             const struct sc_copy *c)
{
  (void) chunk;
  usage_count (opaque, prev, c, +1);
  return true;
}

int
usage_rebuild (struct sc_diff *d)
{
  struct sc_usage *u = &d->usage;
  u->n = 0;
  u->stale = false;
  int r = copymap_visit (d, count_visit, u);
  if (r == 0 && u->stale)
    r = -ENOMEM;
  if (r < 0)
    u->stale = true;
  return r;
}

/* The only one of a[] in [from, to]: its index, or n if none or more. */
static size_t
only_one (const uint32_t *a, size_t n, uint32_t from, uint32_t to)
{
  size_t i = epochs_lower_bound (a, n, from);
  return i < n && a[i] <= to && (i + 1 == n || a[i + 1] > to) ? i : n;
}

int
usage_bytes (struct sc_diff *d, uint64_t *bytes, uint64_t *cbytes)
{
  struct sc_usage *u = &d->usage;
  if (u->stale) {
    int r = usage_rebuild (d);
    if (r < 0)
      return r;
  }
  const uint32_t *e = d->valid, *ce = d->cvalid;
  size_t n = d->nvalid, nc = d->ncvalid;
  for (size_t i = 0; i < u->n; i++) {
    const struct usage_class *c = &u->v[i];
    if (c->data) {
      size_t k = only_one (e, n, c->from, c->to);
      if (k < n)
        bytes[k] += c->data * d->chunk_size;
    }
    if (c->marks) {
      size_t k = only_one (ce, nc, c->from, c->to);
      size_t s = epochs_lower_bound (e, n, c->from);
      if (k < nc && !(s < n && e[s] <= c->to))
        cbytes[k] += c->marks * sizeof (struct sc_rec_copy);
    }
  }
  return 0;
}
