/* shadowcopy: writable clones as the volume serves them.
 *
 * A clone reads its own chunks (verified, like a copy) and, where it was
 * never written, its base snapshot's view through the snapshot read path
 * (the live chunk range locked shared, the base pinned).  A write is
 * redirect-on-write: each chunk it touches goes whole to a new slot of
 * the diff area (a partial write is merged with the chunk's current
 * content first), and the chunk is mapped there (cow/clone.c).  The
 * origin is never written.  FUA commits the journal before the reply;
 * flush makes every write before it durable (one group commit).
 *
 * Locks: the clone range lock (v->clone_chunks; exclusive for a change,
 * shared for a read) serializes changes of one chunk of a clone and keeps
 * a read off a slot a rewrite is about to free; it comes before the live
 * chunk range that a read of the base takes, then the diff area's mutex.
 * A clone is pinned (sc_diff_clone_get) for each request, so its delete
 * waits for the requests in flight; a request lets go of its pin while
 * it waits for the live range (base_read).
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/volume-impl.h"

int
sc_volume_clone_create (struct sc_volume *v, const char *snapshot,
                        const char *name, struct sc_snapshot_info *out,
                        char *err, size_t errlen)
{
  return sc_diff_clone_create (v->diff, snapshot, name, out, err, errlen);
}

int
sc_volume_snapshot_delete_with_clones (struct sc_volume *v, const char *name)
{
  return sc_diff_snapshot_delete_with_clones (v->diff, name);
}

/* A request on clone `id`: pinned, its range locked; *info filled. */
struct creq {
  struct sc_range range;
  struct sc_snapshot_info info;
  uint64_t id;
  bool pinned, locked;
};

static int
creq_begin (struct sc_volume *v, struct creq *q, uint64_t id,
            uint32_t count, uint64_t offset, bool exclusive)
{
  q->id = id;
  q->pinned = q->locked = false;
  int r = sc_vol_check_io (v, count, offset);
  if (r < 0)
    return r;
  q->locked = true;
  sc_rangelock_lock (&v->clone_chunks, &q->range, offset >> v->chunk_shift,
                     (offset + (count ? count : 1) - 1) >> v->chunk_shift,
                     exclusive);
  r = sc_diff_clone_get (v->diff, id, &q->info);
  q->pinned = r == 0;
  if (r == 0 && (offset > q->info.volume_size ||
                 count > q->info.volume_size - offset))
    r = -EINVAL;
  return r;
}

static void
creq_unpin (struct sc_volume *v, struct creq *q)
{
  if (q->pinned)
    sc_diff_clone_put (v->diff, q->id);
  q->pinned = false;
}

/* The base's view of [offset, offset + len), read without the clone's
 * pin: the read waits for the live chunk range, which a write parked at
 * the gate keeps until a hold ends (engine/gate.h), and a pinned request
 * must never wait for it, since the clone's delete waits for the pins and
 * the hold's owner may be the deleter.  The clone range stays held, so
 * the clone's map of these chunks cannot change meanwhile; the pin is
 * taken again after, and a clone deleted or damaged since fails the
 * request. */
static int
base_read (struct sc_volume *v, struct creq *q, uint8_t *p, uint64_t offset,
           uint64_t len)
{
  creq_unpin (v, q);
  int r = sc_volume_snapshot_read (v, q->info.base_id, p, (uint32_t) len,
                                   offset);
  int g = sc_diff_clone_get (v->diff, q->id, NULL);
  q->pinned = g == 0;
  return r < 0 ? r : g;
}

static void
creq_end (struct sc_volume *v, struct creq *q)
{
  if (q->pinned)
    sc_diff_clone_put (v->diff, q->id);
  if (q->locked)
    sc_rangelock_unlock (&v->clone_chunks, &q->range);
}

/* Read [offset, offset + len) of the clone (its range held): own chunks
 * verified, zeros, and runs of the base's view as snapshot reads. */
static int
clone_read_locked (struct sc_volume *v, struct creq *q, uint8_t *p,
                   uint64_t offset, uint64_t len)
{
  uint64_t end = offset + len, base_off = 0, base_len = 0;
  uint8_t *base_p = NULL;
  int r = 0;
  while (offset < end && r == 0) {
    uint64_t chunk = offset >> v->chunk_shift;
    uint32_t at = (uint32_t) (offset & (v->chunk_size - 1));
    uint64_t n = v->chunk_size - at, slot_off = 0;
    if (n > end - offset)
      n = end - offset;
    enum sc_where w = sc_diff_clone_resolve (v->diff, q->id, chunk, &slot_off);
    if (w != SC_WHERE_ORIGIN && base_len) {
      r = base_read (v, q, base_p, base_off, base_len);
      base_len = 0;
    }
    if (r < 0)
      break;
    if (w == SC_WHERE_ORIGIN) {
      if (!base_len) {
        base_p = p;
        base_off = offset;
      }
      base_len += n;
    }
    else if (w == SC_WHERE_ZERO)
      memset (p, 0, n);
    else {
      struct sc_copy_io io = { .offset = slot_off, .buf = p, .at = at,
                               .len = (uint32_t) n };
      r = sc_diff_copy_read (v->diff, &io, 1);
    }
    p += n;
    offset += n;
  }
  if (r == 0 && base_len)
    r = base_read (v, q, base_p, base_off, base_len);
  return r;
}

int
sc_volume_clone_read (struct sc_volume *v, uint64_t id, void *buf,
                      uint32_t count, uint64_t offset)
{
  struct creq q;
  int r = creq_begin (v, &q, id, count, offset, false);
  if (r == 0 && count)
    r = clone_read_locked (v, &q, buf, offset, count);
  creq_end (v, &q);
  return r;
}

/* Whole chunks on their way to new slots: written in one batch of I/O,
 * then mapped in order. */
#define CLONE_BATCH 64
struct cbatch {
  struct sc_copy_io io[CLONE_BATCH];
  uint64_t chunk[CLONE_BATCH];
  size_t n;
};

/* Write the batch: a new slot each, the data, then the records.  At the
 * limit, what fits is written and mapped first: the slots it replaced
 * come back for the rest (the next reservation commits).  A slot that
 * was not mapped goes back.  *seq gets the last record's. */
static int
batch_flush (struct sc_volume *v, const struct creq *q, struct cbatch *b,
             uint64_t *seq)
{
  size_t done = 0;
  int r = 0;
  while (r == 0 && done < b->n) {
    size_t k = done, m = done;
    while (k < b->n &&
           (r = sc_diff_clone_slot_reserve (v->diff, q->id,
                                            &b->io[k].offset)) == 0)
      k++;
    if (r == -ENOSPC && k > done)
      r = 0;                    /* these first; then try again */
    if (r == 0)
      r = sc_diff_copy_write (v->diff, b->io + done, k - done);
    while (r == 0 && m < k) {
      r = sc_diff_clone_map (v->diff, q->id, b->chunk[m], b->io[m].offset,
                             b->io[m].sums, seq);
      m += r == 0;
    }
    for (size_t i = m; i < k; i++)
      sc_diff_slot_cancel (v->diff, b->io[i].offset);
    done = m;
  }
  b->n = 0;
  return r;
}

/* Chunk `chunk` of the clone becomes `data` (a whole chunk, kept until
 * the batch is written; NULL: zeros, recorded as ZERO with no slot). */
static int
put_chunk (struct sc_volume *v, const struct creq *q, struct cbatch *b,
           uint64_t chunk, const void *data, uint64_t *seq)
{
  int r = 0;
  if (!data) {
    if (b->n)
      r = batch_flush (v, q, b, seq);
    return r < 0 ? r : sc_diff_clone_map (v->diff, q->id, chunk,
                                          SC_COPY_ZERO, NULL, seq);
  }
  if (b->n == CLONE_BATCH && (r = batch_flush (v, q, b, seq)) < 0)
    return r;
  b->io[b->n] = (struct sc_copy_io) { .buf = (void *) data };
  b->chunk[b->n++] = chunk;
  return 0;
}

/* A partial chunk: what it holds, with [at, at + n) from buf (NULL:
 * zeros), into bounce (chunk_size bytes). */
static int
merge_chunk (struct sc_volume *v, struct creq *q, uint8_t *bounce,
             uint64_t start, uint32_t at, const uint8_t *buf, uint64_t n)
{
  uint64_t have = q->info.volume_size - start < v->chunk_size
                  ? q->info.volume_size - start : v->chunk_size;
  memset (bounce, 0, v->chunk_size);
  int r = clone_read_locked (v, q, bounce, start, have);
  if (r == 0 && buf)
    memcpy (bounce + at, buf, n);
  else if (r == 0)
    memset (bounce + at, 0, n);
  return r;
}

/* Change [offset, offset + count) of the clone: `buf` written, or (NULL)
 * zeros; a whole chunk of zeros becomes ZERO (its slot freed); with
 * `trim`, a partial chunk is left as it is (trim is advisory).  At most
 * two chunks are partial: the first and the last, each its own bounce. */
static int
clone_change (struct sc_volume *v, uint64_t id, const uint8_t *buf,
              uint32_t count, uint64_t offset, unsigned flags, bool trim)
{
  struct creq q;
  struct cbatch *b = malloc (sizeof *b);
  if (!b)
    return -ENOMEM;
  b->n = 0;
  int r = creq_begin (v, &q, id, count, offset, true);
  uint8_t *bounce[2] = { NULL, NULL };
  uint64_t seq = 0, end = offset + count;
  int partial = 0;
  while (r == 0 && offset < end) {
    uint64_t chunk = offset >> v->chunk_shift;
    uint64_t start = chunk << v->chunk_shift;
    uint32_t at = (uint32_t) (offset - start);
    uint64_t n = v->chunk_size - at;
    if (n > end - offset)
      n = end - offset;
    const void *data = buf;
    if (n < v->chunk_size && !trim) {   /* merged with what it holds */
      if (!(bounce[partial] = malloc (v->chunk_size)))
        r = -ENOMEM;
      else
        r = merge_chunk (v, &q, bounce[partial], start, at, buf, n);
      data = bounce[partial++];
    }
    if (r == 0 && (n == v->chunk_size || !trim))
      r = put_chunk (v, &q, b, chunk, data, &seq);
    if (buf)
      buf += n;
    offset += n;
  }
  if (r == 0 && b->n)
    r = batch_flush (v, &q, b, &seq);
  if (r == 0 && seq && (flags & SC_FUA))
    r = sc_diff_commit (v->diff, seq);
  free (bounce[0]);
  free (bounce[1]);
  free (b);
  creq_end (v, &q);
  return r;
}

int
sc_volume_clone_write (struct sc_volume *v, uint64_t id, const void *buf,
                       uint32_t count, uint64_t offset, unsigned flags)
{
  return clone_change (v, id, buf, count, offset, flags, false);
}

int
sc_volume_clone_zero (struct sc_volume *v, uint64_t id, uint32_t count,
                      uint64_t offset, unsigned flags)
{
  return clone_change (v, id, NULL, count, offset, flags, false);
}

int
sc_volume_clone_trim (struct sc_volume *v, uint64_t id, uint32_t count,
                      uint64_t offset, unsigned flags)
{
  return clone_change (v, id, NULL, count, offset, flags, true);
}

/* Every write to a clone before it durable: its data and records are in
 * the diff area, so the diff area's sync is the flush, and its error is
 * the flush's. */
int
sc_volume_clone_flush (struct sc_volume *v, uint64_t id)
{
  int r = sc_diff_clone_get (v->diff, id, NULL);
  if (r < 0)
    return r;
  r = sc_diff_sync (v->diff);
  struct sc_diff_health h;
  sc_diff_health (v->diff, &h);
  if (r == 0 && h.failed)
    r = -EIO;                   /* the journal cannot keep the writes */
  sc_diff_clone_put (v->diff, id);
  return r;
}

/* The first run of [offset, offset + count) of one kind: the clone's own
 * data, zeros, or the base's view (its extents, from the base). */
int
sc_volume_clone_extents (struct sc_volume *v, uint64_t id, uint32_t count,
                         uint64_t offset, sc_extent_cb cb, void *opaque)
{
  struct creq q;
  int r = creq_begin (v, &q, id, count, offset, false);
  uint64_t end = offset + count, pos = offset, off;
  enum sc_where first = SC_WHERE_NONE;
  while (r == 0 && pos < end) {
    uint64_t chunk = pos >> v->chunk_shift;
    enum sc_where w = sc_diff_clone_resolve (v->diff, id, chunk, &off);
    if (first == SC_WHERE_NONE)
      first = w;
    else if (w != first)
      break;
    pos = (chunk + 1) << v->chunk_shift;
  }
  if (pos > end)
    pos = end;
  if (r == 0 && pos > offset) {
    if (first == SC_WHERE_ORIGIN) {
      creq_unpin (v, &q);       /* as base_read */
      r = sc_volume_snapshot_extents (v, q.info.base_id,
                                      (uint32_t) (pos - offset), offset,
                                      false, cb, opaque);
    }
    else
      r = cb (opaque, offset, pos - offset,
              first == SC_WHERE_ZERO ? SC_EXTENT_HOLE | SC_EXTENT_ZERO : 0);
  }
  creq_end (v, &q);
  return r;
}
