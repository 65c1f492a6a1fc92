/* shadowcopy: replay: the copies of a run of copy records, added to the
 * copy map in chunk order.
 *
 * Random first writes record their copies in random chunk order, and
 * adding them to the copy map (a B+tree, cow/index.c) in that order makes
 * every addition a descent to a leaf that is cold, in the CPU's caches
 * and, once the tree outgrows the page cache, on disk.  So replay keeps
 * the copies of consecutive copy records aside (sc_replay_order_max)
 * and adds them sorted by chunk, then by record: the leaves are visited
 * in order, and each chunk still gets its copies in the order they were
 * recorded.  Adding a copy reads and changes only its chunk's entries and
 * counters that are sums, so within a run of copy records nothing else
 * depends on the order.  Every other record is applied as before, after
 * the copies recorded before it are in the map (none of them reads it
 * today: what a delete or a keep changes there, replay's garbage
 * collection does at the end), and so is the end of the replay.
 *
 * A copy that cannot be added (a chunk copied twice in one epoch) is
 * reported with its own record's number.  A salvage replay adds each
 * copy at once: it must know which record did not make sense.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"

/* 4 MiB of copies at most, at once (and as much for the sort): bigger
 * batches gained little at ten million copies, and the memory counts
 * against the server's budget. */
size_t sc_replay_order_max = (size_t) 1 << 17;

static int
by_chunk_then_seq (const void *a, const void *b)
{
  const struct replay_copy *x = a, *y = b;
  if (x->chunk != y->chunk)
    return x->chunk < y->chunk ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
add_one (struct sc_diff *d, const struct replay_copy *rc, char *err,
         size_t errlen)
{
  int r = copymap_add (d, rc->chunk, rc->copy);
  if (r == -EEXIST)
    return CORRUPT ("journal record %" PRIu64 ": chunk %" PRIu64
                    " copied twice in epoch %u", rc->seq, rc->chunk,
                    rc->copy.epoch);
  return r;
}

int
replay_order_add (struct sc_diff *d, uint64_t chunk, struct sc_copy c,
                  uint64_t seq, char *err, size_t errlen)
{
  struct replay_copy rc = { .chunk = chunk, .seq = seq, .copy = c };
  if (d->salv)
    return add_one (d, &rc, err, errlen);
  if (d->nordered >= sc_replay_order_max) {
    int r = replay_order_flush (d, err, errlen);
    if (r < 0)
      return r;
  }
  struct replay_copy *v = sc_array_room (d->ordered, &d->ordered_cap,
                                         d->nordered, sizeof *v, 1024);
  if (!v)
    return -ENOMEM;
  d->ordered = v;
  d->ordered[d->nordered++] = rc;
  return 0;
}

int
replay_order_flush (struct sc_diff *d, char *err, size_t errlen)
{
  if (d->nordered == 0)
    return 0;                   /* d->ordered may be NULL: not for qsort */
  qsort (d->ordered, d->nordered, sizeof *d->ordered, by_chunk_then_seq);
  int r = 0;
  for (size_t i = 0; r == 0 && i < d->nordered; i++)
    r = add_one (d, &d->ordered[i], err, errlen);
  d->nordered = 0;
  return r;
}

void
replay_order_free (struct sc_diff *d)
{
  free (d->ordered);
  d->ordered = NULL;
  d->nordered = d->ordered_cap = 0;
}
