/* shadowcopy: damage: copied data that failed its checksum.
 *
 * Notes on the design
 *
 * A copy that fails its checksum (on a snapshot read, in a scrub, in
 * check --data) can no longer give the snapshots that need it what they
 * saw, so they are never served again: each one still valid is marked
 * damaged (SC_INVALID_DAMAGED with the chunk), with a SNAP_INVALID record
 * committed before anything else happens, so the mark survives a restart.
 * The snapshots that need the copy are found with the copy map's rule: a
 * copy of chunk c made in epoch W, after one made in P, serves the
 * snapshots with epochs in [P, W - 1] that have not discarded c.
 *
 * The copy is then needed by no valid snapshot, so it is freed like any
 * other unneeded copy (gc), unless a read of one of its snapshots is in
 * flight (the read that found the damage is one: it still holds its
 * pin).  Then it is remembered, and freed when the last pinned read of a
 * snapshot ends (damage_release, from sc_diff_snapshot_put): gc's rule
 * frees it once no valid snapshot and no read needs it.  Freeing needs
 * the journal: an offline, read-only check marks in memory only.
 *
 * The copy may have been freed (and its slot reused) while its data was
 * read without the lock: then the slot no longer belongs to it, and what
 * was read says nothing about it.  Only a copy still in the map, in the
 * same slot, is damage.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/io.h"

/* The copy of e->chunk made in e->epoch, if it is still kept in `slot`;
 * *prev gets the epoch of the chunk's copy before it (0 if none). */
static bool
still_kept (struct sc_diff *d, uint64_t slot, const struct sc_sums_entry *e,
            uint32_t *prev)
{
  struct sc_copy c;
  *prev = 0;
  while (copymap_seen_by (d, e->chunk, *prev, &c)) {
    if (c.epoch == e->epoch)
      return c.slot == slot;
    *prev = c.epoch;
  }
  return false;
}

/* A damaged copy that a read in flight keeps: damage_release frees it.
 * Without memory it waits for the next garbage collection instead. */
static void
keep_for_reads (struct sc_diff *d, uint64_t chunk, uint32_t epoch)
{
  for (size_t i = 0; i < d->ndamaged_kept; i++)
    if (d->damaged_kept[i].chunk == chunk &&
        d->damaged_kept[i].epoch == epoch)
      return;
  struct damaged_copy *k = sc_array_room (d->damaged_kept,
                                          &d->damaged_kept_cap,
                                          d->ndamaged_kept, sizeof *k, 4);
  if (!k)
    return;
  d->damaged_kept = k;
  k[d->ndamaged_kept++] = (struct damaged_copy) { chunk, epoch };
}

static void
add_name (struct sc_copy_verify *v, const char *name)
{
  if (!v)
    return;
  size_t n = strlen (v->needed_by);
  snprintf (v->needed_by + n, sizeof v->needed_by - n, "%s%s",
            n ? ", " : "", name);
}

void
damage_found (struct sc_diff *d, uint64_t slot,
              const struct sc_sums_entry *e, uint32_t block,
              struct sc_copy_verify *v)
{
  uint32_t prev;
  diff_wait_ckpt (d);           /* (its callers took the lock just now) */
  if (e->epoch == 0) {          /* no copy has epoch 0: a clone's slot */
    clone_damage_found (d, slot, e, block, v);
    return;
  }
  if (!still_kept (d, slot, e, &prev))
    return;
  if (v) {
    v->damaged = true;
    v->block = block;
  }
  d->checksum_errors++;
  uint64_t off = slot * d->chunk_size;
  uint64_t seq = 0;
  size_t marked = 0;
  int r = 0;
  uint8_t rec[SC_REC_MAX];
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    uint32_t why = s->info.invalid_reason;
    /* A checkpoint needs no data: the copy becomes its mark (gc). */
    if (s->deleted || s->info.checkpoint || s->info.epoch < prev ||
        s->info.epoch >= e->epoch ||
        (why != SC_VALID && why != SC_INVALID_DAMAGED) ||
        !disc_needs (s, e->chunk))
      continue;
    add_name (v, s->info.name);
    if (why != SC_VALID)
      continue;                 /* damaged already */
    snap_set_invalid (d, s, SC_INVALID_DAMAGED, 0, e->chunk);
    d->invalidations++;
    marked++;
    diff_say ("snapshot %s (id %" PRIu64 ") is now damaged: the copy of "
              "chunk %" PRIu64 " in diff-area slot %" PRIu64 " (offset %"
              PRIu64 ") failed its checksum (block %u); it is no longer "
              "served", s->info.name, s->info.id, e->chunk, slot, off,
              block);
    if (d->have_journal && !d->failed && r == 0)
      r = sc_journal_append (&d->journal, rec, rec_invalid (rec, &s->info),
                             &seq);
  }
  if (!marked)
    diff_say ("the copy of chunk %" PRIu64 " in diff-area slot %" PRIu64
              " (offset %" PRIu64 ") failed its checksum (block %u); no "
              "valid snapshot needs it any more", e->chunk, slot, off,
              block);
  if (r < 0) {
    diff_fail (d, r);
    return;
  }
  if (seq && diff_commit (d, seq) < 0)
    return;
  if (!d->have_journal || d->failed)
    return;                     /* offline, or nothing can be recorded */
  (void) gc_chunks (d, e->chunk, e->chunk);
  struct sc_copy c;
  if (!copymap_find (d, e->chunk, e->epoch, &c)) {
    d->damaged_freed++;
    if (v)
      v->freed = true;
  }
  else
    keep_for_reads (d, e->chunk, e->epoch);
}

void
damage_release (struct sc_diff *d)
{
  if (!d->have_journal || d->failed)
    return;
  size_t left = 0;
  for (size_t i = 0; i < d->ndamaged_kept; i++) {
    struct damaged_copy k = d->damaged_kept[i];
    struct sc_copy c;
    if (copymap_find (d, k.chunk, k.epoch, &c))
      (void) gc_chunks (d, k.chunk, k.chunk);
    if (copymap_find (d, k.chunk, k.epoch, &c))
      d->damaged_kept[left++] = k;      /* still read, or still needed */
    else {
      d->damaged_freed++;
      if (sc_debug)
        sc_debug ("the damaged copy of chunk %" PRIu64 " (epoch %u) is "
                  "freed: no read of its snapshots is in flight any more",
                  k.chunk, k.epoch);
    }
  }
  d->ndamaged_kept = left;
}
