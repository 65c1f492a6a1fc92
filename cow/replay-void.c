/* shadowcopy: the unsure records an open dropped, kept dropped when the
 * journal is continued in place (VOID records, cow/format.h).
 *
 * After a power cut, replay judges the copies and clone writes at the
 * journal's end that no commit marker vouches for by their data, and
 * drops those whose data never reached their slot (replay.c,
 * clone-journal.c).  An open that writes a checkpoint leaves their
 * records behind with the old journal.  An open that cannot (no room on
 * the diff area's filesystem) continues the old journal, and its commit
 * markers vouch for every record before them: the next replay would
 * apply the dropped record, and find its chunk copied twice in an epoch
 * or its slot used twice (the diff area no longer opens), or read a
 * snapshot's chunk from a slot that never held it (damaged).  So the
 * open lists what it dropped (void_push_*), and a continued journal
 * starts with records that undo them (void_append), in its first write:
 * a VOID record for each copy, which replay applies (void_apply) by
 * removing the copy; one record for each clone chunk (see void_append).
 *
 * If those records find no room (the journal's slot is full and the
 * filesystem gives no new one), the open fails: serving on would leave
 * the dropped records for later commit markers to vouch for. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"

static int
push (struct sc_diff *d, const struct dropped *x)
{
  struct dropped *v = sc_array_room (d->dropped, &d->dropped_cap,
                                     d->ndropped, sizeof *v, 8);
  if (!v)
    return -ENOMEM;
  d->dropped = v;
  d->dropped[d->ndropped] = *x;
  d->dropped[d->ndropped].order = d->ndropped;
  d->ndropped++;
  return 0;
}

int
void_push_copy (struct sc_diff *d, uint64_t seq, uint64_t chunk,
                uint32_t epoch, uint64_t slot)
{
  return push (d, &(struct dropped) { .seq = seq, .chunk = chunk,
                                      .slot = slot, .epoch = epoch });
}

int
void_push_clone (struct sc_diff *d, const struct clone_unsure *u)
{
  struct dropped x = { .seq = u->seq, .id = u->id, .chunk = u->chunk,
                       .slot = u->slot, .prev = u->prev, .clone = true };
  memcpy (x.prev_sums, u->prev_sums, sizeof x.prev_sums);
  return push (d, &x);
}

void
void_free (struct sc_diff *d)
{
  free (d->dropped);
  d->dropped = NULL;
  d->ndropped = d->dropped_cap = 0;
}

/* Copies first, in the order they were dropped; then clone writes by
 * clone and chunk, each chunk's newest first (the order verify_cunsure
 * drops them in, walking back from the newest record). */
static int
by_chunk (const void *pa, const void *pb)
{
  const struct dropped *a = pa, *b = pb;
  if (a->clone != b->clone)
    return a->clone ? 1 : -1;
  if (a->clone && a->id != b->id)
    return a->id < b->id ? -1 : 1;
  if (a->clone && a->chunk != b->chunk)
    return a->chunk < b->chunk ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

/* One record a copy; one a clone chunk, whatever number of its writes
 * were dropped, so that a write torn among them leaves every chunk either
 * as the open found it on disk (its dropped writes unsure again, judged
 * again) or as the open left it: the mapping the chunk had before its
 * oldest dropped write, in a CLONE_DATA record, or, if it had none, a
 * VOID record naming its newest (the mapping replay finds in force). */
int
void_append (struct sc_diff *d, struct sc_journal *j)
{
  uint8_t rec[SC_REC_MAX];
  int r = 0;
  if (d->ndropped > 1)
    qsort (d->dropped, d->ndropped, sizeof *d->dropped, by_chunk);
  for (size_t i = 0, end; r == 0 && i < d->ndropped; i = end) {
    const struct dropped *x = &d->dropped[i];
    for (end = i + 1; x->clone && end < d->ndropped &&
         d->dropped[end].id == x->id && d->dropped[end].chunk == x->chunk;
         end++)
      ;
    const struct dropped *y = &d->dropped[end - 1];
    size_t len = y->clone && y->prev != CLONE_UNMAPPED
                 ? rec_clone_data (rec, y->id, y->chunk, y->prev,
                                   y->prev_sums, d->sums.nsums)
                 : rec_void (rec, x);
    r = sc_journal_append (j, rec, len, NULL);
  }
  return r;
}

static int
void_clone (struct sc_diff *d, const struct sc_rec_void *r, char *err,
            size_t errlen)
{
  struct clone *c = clone_by_id (d, r->id);
  if (!c || r->epoch != 0 || clone_map_get (c, r->chunk) != r->slot ||
      !clone_has_slot (r->slot))
    return CORRUPT ("journal record %" PRIu64 ": voids a write of chunk %"
                    PRIu64 " of clone id %" PRIu64 " to slot %" PRIu64
                    " that is not in force", r->h.seq, r->chunk, r->id,
                    r->slot);
  sc_sums_clear (&d->sums, r->slot, r->chunk, 0);
  clone_map_insert (c, r->chunk, CLONE_UNMAPPED);
  return 0;
}

int
void_apply (struct sc_diff *d, const struct sc_rec_void *r, char *err,
            size_t errlen)
{
  if (r->flags & ~SC_VOID_F_CLONE || r->seq >= r->h.seq)
    return CORRUPT ("journal record %" PRIu64 ": bad void record (flags "
                    "%#x, record %" PRIu64 ")", r->h.seq, r->flags, r->seq);
  if (r->flags & SC_VOID_F_CLONE)
    return void_clone (d, r, err, errlen);
  struct sc_copy c;
  if (r->id != 0 || !copymap_find (d, r->chunk, r->epoch, &c) ||
      !sc_copy_has_slot (&c) || c.slot != r->slot)
    return CORRUPT ("journal record %" PRIu64 ": voids a copy of chunk %"
                    PRIu64 " in epoch %u to slot %" PRIu64 " that is not "
                    "there", r->h.seq, r->chunk, r->epoch, r->slot);
  copymap_remove (d, r->chunk, r->epoch);
  return 0;
}
