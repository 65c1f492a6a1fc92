/* shadowcopy: discards: the chunks a snapshot's reader no longer needs.
 *
 * With discard-snapshots=on, a trim on a snapshot export records that the
 * snapshot reads those whole chunks as zeros from now on; the copies no
 * other snapshot needs are freed.  Each snapshot keeps its discarded
 * chunks as sorted, disjoint extents, touching ones merged, so the copy
 * map's rule (copymap_needed) asks one binary search per snapshot.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/fault.h"
#include "cow/format.h"
#include "cow/search.h"

struct chunk_key { const struct extent *e; uint64_t chunk; };

/* Does extent i end at or before `chunk` (not covering it)? */
static bool
ends_before (const void *ctx, size_t i)
{
  const struct chunk_key *k = ctx;
  return k->e[i].first + k->e[i].count <= k->chunk;
}

bool
disc_needs (const struct snap *s, uint64_t chunk)
{
  struct chunk_key k = { s->disc, chunk };
  size_t i = sc_partition_point (s->ndisc, ends_before, &k);
  return !(i < s->ndisc && s->disc[i].first <= chunk);
}

int
disc_reserve (struct snap *s)
{
  if (s->ndisc < s->disc_cap)
    return 0;
  int r = sc_fault ("discard-extent");
  if (r < 0)
    return r;
  struct extent *e = sc_array_room (s->disc, &s->disc_cap, s->ndisc,
                                    sizeof *e, 4);
  if (!e)
    return -ENOMEM;
  s->disc = e;
  return 0;
}

/* Add [first, first + count): a binary search, then the extents it
 * overlaps or touches are merged into one in place.  O(log n) plus a
 * memmove, so replaying many discards stays near linear. */
int
disc_add (struct sc_diff *d, struct snap *s, uint64_t first, uint64_t count)
{
  uint64_t end = first + count;
  d->disc_gen++;                /* a diff of s may change (changes.c) */
  /* The first extent that ends at or after `first` (touching counts). */
  struct chunk_key key = { s->disc, first ? first - 1 : 0 };
  size_t lo = first ? sc_partition_point (s->ndisc, ends_before, &key) : 0;
  /* [lo, k): the extents that overlap or touch the new one. */
  size_t k = lo;
  uint64_t merged = 0;
  while (k < s->ndisc && s->disc[k].first <= end)
    merged += s->disc[k++].count;
  if (k == lo) {                /* nothing to merge: insert at lo */
    int r = disc_reserve (s);
    if (r < 0)
      return r;
    if (s->ndisc == 0)
      d->ndisc_snaps++;
    memmove (&s->disc[lo + 1], &s->disc[lo],
             (s->ndisc - lo) * sizeof *s->disc);
    s->disc[lo] = (struct extent) { first, count };
    s->ndisc++;
    d->ndisc_extents++;
  }
  else {
    uint64_t f = s->disc[lo].first < first ? s->disc[lo].first : first;
    uint64_t e = s->disc[k - 1].first + s->disc[k - 1].count;
    if (e < end)
      e = end;
    s->disc[lo] = (struct extent) { f, e - f };
    memmove (&s->disc[lo + 1], &s->disc[k],
             (s->ndisc - k) * sizeof *s->disc);
    s->ndisc -= k - lo - 1;
    d->ndisc_extents -= k - lo - 1;
    count = e - f;
  }
  s->info.discarded_bytes += (count - merged) * d->chunk_size;
  return 0;
}

int
sc_diff_snapshot_protected (struct sc_diff *d, uint64_t id)
{
  LOCKED (d);
  return snap_protected (d, id);
}

int
sc_diff_snapshot_discard (struct sc_diff *d, uint64_t id, uint64_t first,
                          uint64_t last)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  if (first > last || last >= d->nchunks)
    return -EINVAL;
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted)
    return -ENOENT;
  if (s->info.invalid_reason != SC_VALID)
    return -EIO;
  if (snap_protected (d, id))
    return -EBUSY;              /* the live volume or a clone reads it */
  int r = disc_reserve (s);
  if (r < 0)
    return r;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_discard (rec, id, first, last - first + 1));
  if (r < 0)
    return r;
  (void) disc_add (d, s, first, last - first + 1);      /* reserved */
  if ((r = txn_commit (d, &t)) < 0)
    return r;
  /* The discard is durable; if the copies cannot be freed now (no
   * memory), the next collection frees them. */
  (void) gc_chunks (d, first, last);
  ckpt_maybe (d);
  return 0;
}
