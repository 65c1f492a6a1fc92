/* shadowcopy: the allocation map of a snapshot (block status).
 *
 * Notes on the design
 *
 * Where a snapshot's data is decides what its map says, chunk by chunk
 * (sc_diff_resolve):
 *
 *   a zero copy (or a chunk its reader gave back)   a hole that reads as
 *                                                   zeros, the whole chunk
 *   a copy in the diff area                         data, the whole chunk
 *   the origin                                      what the origin says
 *                                                   there, to the byte
 *
 * The last is exact, not a guess: a chunk the snapshot still reads from
 * the origin has not changed since the snapshot, and the range lock,
 * held shared as a snapshot read holds it, keeps every writer out of it
 * until the origin has answered.  So a hole reported for a snapshot is
 * always a hole of that snapshot, even while the live volume is being
 * written.  The order is a read's: the range first, then the pin (the
 * rule at struct sc_volume, volume-impl.h).
 *
 * Runs of chunks that all come from the origin are asked of the origin
 * in one query (one SEEK_DATA/SEEK_HOLE walk for a file), not one per
 * chunk.  Adjacent extents of one type are merged before they are
 * reported.
 *
 * The work of one call is bounded: at most EXTENTS_CHUNKS chunks are
 * locked and resolved, and it stops after EXTENTS_MAX extents, or after
 * the first one when the caller wants only one.  NBD lets a server
 * answer block status for less than was asked, as long as it answers
 * for at least one byte from the start; the client asks again from
 * where the answer ended.
 */
#include <config.h>

#include <errno.h>

#include "engine/volume-impl.h"

#define EXTENTS_CHUNKS 8192     /* chunks locked and resolved per call */
#define EXTENTS_MAX 1024        /* extents reported per call */
#define STOP 1                  /* enough was reported: not an error */

#define HOLE_ZERO (SC_EXTENT_HOLE | SC_EXTENT_ZERO)

/* The extents reported so far and the one being grown. */
struct map_out {
  sc_extent_cb cb;
  void *opaque;
  bool one;                     /* the caller wants one extent */
  size_t reported;
  uint64_t off, len;            /* the pending extent; len 0: none */
  unsigned type;
};

/* Report the pending extent: 0, STOP when enough have been reported, or
 * the callback's error. */
static int
map_flush (struct map_out *m)
{
  if (m->len == 0)
    return 0;
  int r = m->cb (m->opaque, m->off, m->len, m->type);
  m->len = 0;
  if (r != 0)
    return r;
  m->reported++;
  return m->one || m->reported >= EXTENTS_MAX ? STOP : 0;
}

/* The next piece of the map, [off, off + len), just after the last. */
static int
map_add (struct map_out *m, uint64_t off, uint64_t len, unsigned type)
{
  if (m->len && m->type == type) {
    m->len += len;
    return 0;
  }
  int r = map_flush (m);
  if (r == 0) {
    m->off = off;
    m->len = len;
    m->type = type;
  }
  return r;
}

/* sc_origin_extents's callback: the origin's own map of a run of chunks
 * the snapshot shares with it. */
static int
origin_piece (void *opaque, uint64_t off, uint64_t len, unsigned flags)
{
  return map_add (opaque, off, len, flags & HOLE_ZERO);
}

/* The map of [offset, end) of the snapshot at `epoch`, pinned, with its
 * chunks locked. */
static int
map_pinned (struct sc_volume *v, uint32_t epoch, uint64_t offset,
            uint64_t end, struct map_out *m)
{
  uint64_t run = 0, run_end = 0;        /* chunks read from the origin */
  int r = 0;

  while (offset < end && r == 0) {
    uint64_t in_chunk = offset & (v->chunk_size - 1);
    uint64_t len = v->chunk_size - in_chunk, slot_off;
    if (len > end - offset)
      len = end - offset;
    enum sc_where where = sc_diff_resolve (v->diff, epoch,
                                           offset >> v->chunk_shift,
                                           &slot_off);
    if (where == SC_WHERE_ORIGIN) {
      if (run_end != offset)
        run = offset;
      run_end = offset + len;
      offset += len;
      continue;
    }
    if (where == SC_WHERE_NONE)  /* no data kept: never for a valid one */
      return -EIO;
    if (run_end > run) {
      r = sc_origin_extents (v->origin, run_end - run, run, origin_piece, m);
      run = run_end = 0;
      if (r != 0)
        break;
    }
    r = map_add (m, offset, len, where == SC_WHERE_ZERO ? HOLE_ZERO : 0);
    offset += len;
  }
  if (r == 0 && run_end > run)
    r = sc_origin_extents (v->origin, run_end - run, run, origin_piece, m);
  return r;
}

int
sc_volume_snapshot_extents (struct sc_volume *v, uint64_t id, uint32_t count,
                            uint64_t offset, bool one, sc_extent_cb cb,
                            void *opaque)
{
  struct sc_snapshot_info info;
  struct sc_range range;
  int r = sc_vol_check_io (v, count, offset);

  if (r < 0 || count == 0)
    return r < 0 ? r : sc_diff_snapshot_check (v->diff, id);

  uint64_t first = offset >> v->chunk_shift;
  uint64_t end = offset + count;
  if (end > (first + EXTENTS_CHUNKS) << v->chunk_shift)
    end = (first + EXTENTS_CHUNKS) << v->chunk_shift;

  /* As a read: the range first, then the pin. */
  sc_rangelock_lock (&v->chunks, &range, first,
                     (end - 1) >> v->chunk_shift, false);
  int pinned = sc_diff_snapshot_get (v->diff, id, &info);
  struct map_out m = { .cb = cb, .opaque = opaque, .one = one };
  r = pinned < 0 ? pinned : map_pinned (v, info.epoch, offset, end, &m);
  if (r == 0)
    r = map_flush (&m);
  sc_rangelock_unlock (&v->chunks, &range);
  if (pinned == 0)
    sc_diff_snapshot_put (v->diff, id);
  return r == STOP ? 0 : r;
}
