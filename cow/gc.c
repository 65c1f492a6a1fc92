/* shadowcopy: garbage collection: dropping the copies that no servable
 * snapshot needs, and giving their slots back.
 *
 * Which copies are needed is the copy map's rule (copymap_needed), asked
 * of the snapshots whose copies must be kept (snap_keeps_copies: valid
 * and not durably deleted, or read right now).  A freed slot goes back to
 * the allocator at once: this runs only after the record that made the
 * copy unneeded is durable, so replay never finds a slot claimed twice.
 */
#include <config.h>

#include <errno.h>
#include <linux/falloc.h>
#include <stdlib.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"

int
keepers_get (struct sc_diff *d, struct keepers *k)
{
  uint32_t *epochs = malloc ((2 * d->nsnaps + 1) * sizeof *epochs);
  if (!epochs)
    return -ENOMEM;
  uint32_t *marks = epochs + d->nsnaps;
  size_t n = 0, m = 0;
  /* While a failure is not recorded, the journal on disk may still be
   * replayed: the copies of the snapshots it lists as valid stay.  A
   * checkpoint needs marks; a snapshot just kept as one still needs its
   * data while a read of it is in flight. */
  for (size_t i = 0; i < d->nsnaps; i++) {
    const struct snap *s = d->snaps[i];
    if (!snap_keeps_copies (s) && !failure_keeps (d, s->info.epoch))
      continue;
    if (!s->info.checkpoint || s->readers)
      epochs[n++] = s->info.epoch;
    if (s->info.checkpoint)
      marks[m++] = s->info.epoch;
  }
  *k = (struct keepers) { epochs, n, marks, m };
  return 0;
}

void
keepers_free (struct keepers *k)
{
  free ((void *) k->epochs);
  k->epochs = k->marks = NULL;
}

/* Is the copy still needed: by a snapshot (as it is), or by a
 * checkpoint only (as a mark)? */
static bool
gc_needed (struct sc_diff *d, const struct keepers *k, uint32_t from,
           uint32_t to, uint64_t chunk, bool *mark_only)
{
  *mark_only = false;
  if (copymap_needed (d, k, from, to, chunk))
    return true;
  struct keepers m = { .epochs = k->marks, .n = k->nmarks };
  return (*mark_only = m.n && copymap_needed (d, &m, from, to, chunk));
}

struct gc {
  struct sc_diff *d;
  struct keepers k;
  bool free_slots;              /* return dropped slots to the allocator */
};

static bool
gc_keep (void *opaque, uint64_t chunk, uint32_t prev, const struct sc_copy *c)
{
  struct gc *g = opaque;
  uint32_t from, to;
  copymap_serves (prev, c, &from, &to);
  bool mark_only;
  if (gc_needed (g->d, &g->k, from, to, chunk, &mark_only)) {
    if (mark_only)
      copymap_demote (g->d, chunk, c, g->free_slots);
    return true;
  }
  if (g->free_slots && sc_copy_has_slot (c))
    gc_free_slot (g->d, c->slot);
  return false;
}

int
gc_run (struct sc_diff *d, bool free_slots)
{
  struct gc g = { .d = d, .free_slots = free_slots };
  diff_frozen_check (d, "garbage collection");
  int r = keepers_get (d, &g.k);
  if (r < 0)
    return r;
  r = copymap_visit (d, gc_keep, &g);
  keepers_free (&g.k);
  if (free_slots)
    gc_shrink_tail (d);
  return r;
}

/* Copies of one chunk dropped in one pass; more wait for the next gc. */
#define GC_CHUNK_MAX 64

static void
gc_chunk (struct sc_diff *d, const struct keepers *k, uint64_t chunk)
{
  uint32_t drop[GC_CHUNK_MAX];
  size_t ndrop = 0;
  uint32_t prev = 0;
  struct sc_copy c;
  while (ndrop < GC_CHUNK_MAX && copymap_seen_by (d, chunk, prev, &c)) {
    uint32_t from, to;
    copymap_serves (prev, &c, &from, &to);
    bool mark_only;
    if (!gc_needed (d, k, from, to, chunk, &mark_only))
      drop[ndrop++] = c.epoch;
    else if (mark_only)
      copymap_demote (d, chunk, &c, true);
    prev = c.epoch;
  }
  for (size_t i = 0; i < ndrop; i++) {
    if (!copymap_find (d, chunk, drop[i], &c))
      continue;
    copymap_remove (d, chunk, drop[i]);
    if (sc_copy_has_slot (&c))
      gc_free_slot (d, c.slot);
  }
}

int
gc_chunks (struct sc_diff *d, uint64_t first, uint64_t last)
{
  struct keepers k;
  diff_frozen_check (d, "garbage collection");
  int r = keepers_get (d, &k);
  if (r < 0)
    return r;
  for (uint64_t c = first; c <= last; c++)
    gc_chunk (d, &k, c);
  keepers_free (&k);
  gc_shrink_tail (d);
  return 0;
}

void
gc_free_slot (struct sc_diff *d, uint64_t slot)
{
  sc_alloc_put (&d->alloc, slot);
  if (d->have_journal)
    (void) sc_io_fallocate (d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            slot * d->chunk_size, d->chunk_size);
}

/* The file keeps its apparent size (cutting it is not modelled by the
 * crash harness and buys nothing: the freed slots are holes already). */
void
gc_shrink_tail (struct sc_diff *d)
{
  if (!d->have_journal)
    return;
  (void) sc_alloc_trim_end (&d->alloc);
}
