/* shadowcopy: garbage collection: dropping the copies that no servable
 * snapshot needs, and giving their slots back.
 *
 * Which copies are needed is the copy map's rule (copymap_needed), asked
 * of the snapshots whose copies must be kept (snap_keeps_copies: valid
 * and not durably deleted, or read right now).  A freed slot goes back to
 * the allocator only after the record that made the copy unneeded is
 * durable, so replay never finds a slot claimed twice.
 *
 * Notes on the design
 *
 * A pass runs in slices (copymap_visit_slice, GC_SLICE copies each) with
 * the diff area's lock dropped between them, so that live writes wait
 * for one slice at most, not for a scan of the whole map.  The slots a
 * slice freed from the map are punched with the lock dropped and given
 * to the allocator after (never before: a writer could take one and
 * write to it before the punch).  This is safe because a copy that no
 * kept snapshot needs can never be needed again: a snapshot taken later
 * has a newer epoch than every copy already made, so it lies in no
 * existing copy's range; the keepers are taken again for each slice, so
 * a snapshot taken (and copied for) between slices counts at once.
 * Which copies go is derived, never recorded: a crash mid-pass leaves
 * the deletion durable and some copies not yet dropped, and replay's own
 * pass drops the same ones.  While a pass is asked for or its slots are
 * not back (gc_pending), the space policies count the space as coming
 * back: a write short of space waits for it rather than drop another
 * snapshot or fail.  Passes asked for while one runs are served by one
 * more pass, and gc_hold batches them (delete --all: one pass in all).
 */
#include <config.h>

#include <errno.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <time.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/io.h"

/* Copies visited per hold of the lock (about 1 us each: a hold of about
 * 1 ms, well under a live write's budget). */
#define GC_SLICE 1024

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
  bool collect;                 /* ...later: collect them in slots[] */
  uint64_t *slots;
  size_t nslots, cap;
};

static void
gc_give (struct gc *g, uint64_t slot)
{
  if (g->collect) {
    uint64_t *v = sc_array_room (g->slots, &g->cap, g->nslots, sizeof *v, 256);
    if (v) {
      g->slots = v;
      g->slots[g->nslots++] = slot;
      return;
    }
  }
  gc_free_slot (g->d, slot);    /* (no memory: punched under the lock) */
}

static bool
gc_keep (void *opaque, uint64_t chunk, uint32_t prev, const struct sc_copy *c)
{
  struct gc *g = opaque;
  uint32_t from, to;
  copymap_serves (prev, c, &from, &to);
  bool mark_only;
  uint64_t slot = c->slot;
  if (gc_needed (g->d, &g->k, from, to, chunk, &mark_only)) {
    if (mark_only && sc_copy_has_slot (c)) {
      copymap_demote (g->d, chunk, prev, c, false);
      if (g->free_slots)
        gc_give (g, slot);
    }
    return true;
  }
  if (g->free_slots && sc_copy_has_slot (c))
    gc_give (g, slot);
  return false;
}

/* One pass under the lock (replay: nothing else runs yet). */
static int
gc_whole (struct sc_diff *d, bool free_slots)
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

static uint64_t
mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int
cmp_slot (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* Punch the slots (sorted here), one call per run of adjacent ones. */
static void
punch_runs (struct sc_diff *d, uint64_t *slots, size_t n)
{
  if (n == 0)
    return;                     /* (slots may be NULL) */
  qsort (slots, n, sizeof *slots, cmp_slot);
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && slots[j] == slots[j - 1] + 1)
      j++;
    (void) sc_io_fallocate (d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            slots[i] * d->chunk_size,
                            (slots[j - 1] - slots[i] + 1) * d->chunk_size);
    i = j;
  }
}

/* One pass in slices, the lock dropped between them. */
static int
gc_sliced (struct sc_diff *d)
{
  uint64_t cursor = 0;
  int done = 0;
  while (done == 0) {
    diff_wait_ckpt (d);         /* the lock was dropped: the state may be
                                   frozen by a checkpoint now */
    struct gc g = { .d = d, .free_slots = true, .collect = true };
    uint64_t t0 = mono_ns ();
    int r = keepers_get (d, &g.k);
    if (r < 0)
      return r;
    done = copymap_visit_slice (d, &cursor, d->gc_slice ? d->gc_slice
                                                        : GC_SLICE,
                                gc_keep, &g);
    keepers_free (&g.k);
    uint64_t held = mono_ns () - t0;
    if (held > d->gc_max_hold_ns)
      d->gc_max_hold_ns = held;
    d->gc_unpunched += g.nslots;
    pthread_mutex_unlock (&d->lock);
    if (d->have_journal)
      punch_runs (d, g.slots, g.nslots);
    if (d->gc_between)
      d->gc_between (d);
    pthread_mutex_lock (&d->lock);
    for (size_t i = 0; i < g.nslots; i++)
      sc_alloc_put (&d->alloc, g.slots[i]);
    d->gc_unpunched -= g.nslots;
    free (g.slots);
    pthread_cond_broadcast (&d->readers_done);  /* space came back */
  }
  gc_shrink_tail (d);
  return done < 0 ? done : 0;
}

/* Run passes until one that began after pass `want` was asked for ends. */
static int
gc_settle (struct sc_diff *d, uint64_t want)
{
  int r = 0;
  while (d->gc_done < want) {
    if (d->gc_running) {        /* another thread's pass: wait for it */
      pthread_cond_wait (&d->readers_done, &d->lock);
      continue;
    }
    d->gc_running = true;
    uint64_t upto = d->gc_want;
    d->gc_passes++;
    r = gc_sliced (d);
    d->gc_running = false;
    d->gc_done = upto;          /* (also on an error: nobody waits on) */
    pthread_cond_broadcast (&d->readers_done);
    if (r < 0)
      break;
  }
  return r;
}

int
gc_run_held (struct sc_diff *d)
{
  return gc_whole (d, true);
}

int
gc_run (struct sc_diff *d, bool free_slots)
{
  if (!free_slots)
    return gc_whole (d, false);
  uint64_t want = ++d->gc_want;
  if (d->gc_defer)
    return 0;                   /* gc_release runs it */
  return gc_settle (d, want);
}

void
gc_hold (struct sc_diff *d)
{
  d->gc_defer++;
}

int
gc_release (struct sc_diff *d)
{
  if (d->gc_defer && --d->gc_defer == 0 && d->gc_done < d->gc_want)
    return gc_settle (d, d->gc_want);
  return 0;
}

bool
gc_pending (const struct sc_diff *d)
{
  return d->gc_done < d->gc_want || d->gc_unpunched > 0;
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
      copymap_demote (d, chunk, prev, &c, true);
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

void
sc_diff_gc_hold (struct sc_diff *d)
{
  LOCKED (d);
  gc_hold (d);
}

int
sc_diff_gc_release (struct sc_diff *d)
{
  LOCKED (d);
  return gc_release (d);
}
