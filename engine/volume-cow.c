/* shadowcopy: the volume's copy-on-write (see the notes in volume.c).
 *
 * A batch copies up to batch_chunks chunks through one bounce buffer in
 * three steps: read the old content from the origin (one io_uring batch;
 * holes and all-zero chunks need no slot), write the data copies to the
 * slots the diff area reserves (one batch), then record every copy and
 * make the records durable with one group commit.  Each chunk's state
 * moves READ -> WRITE -> recorded, or to ZERO, DONE (no longer needed) or
 * FAILED on the way.  A failure invalidates the snapshots that needed the
 * chunk and never fails the live write, except the ENOSPC of
 * on-full=fail-writes, which refuses it, and a full diff area where the
 * copy is for a protected snapshot (a running revert's target, a base of
 * clones; sc_diff_snapshot_protected), which refuses it too.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/volume-impl.h"

/* ---- bounce buffers ------------------------------------------------- */

static void *
pool_get (struct sc_volume *v)
{
  void *buf = NULL;
  pthread_mutex_lock (&v->pool_lock);
  for (;;) {
    if (v->pool_free) {
      buf = v->pool[--v->pool_free];
      break;
    }
    if (v->pool_made < POOL_BUFFERS) {
      buf = aligned_alloc (4096, v->batch_chunks * v->chunk_size);
      if (buf)
        v->pool_made++;
      break;
    }
    pthread_cond_wait (&v->pool_cond, &v->pool_lock);
  }
  pthread_mutex_unlock (&v->pool_lock);
  return buf;
}

static void
pool_put (struct sc_volume *v, void *buf)
{
  pthread_mutex_lock (&v->pool_lock);
  v->pool[v->pool_free++] = buf;
  pthread_cond_signal (&v->pool_cond);
  pthread_mutex_unlock (&v->pool_lock);
}

void
sc_vol_pool_free (struct sc_volume *v)
{
  for (size_t i = 0; i < v->pool_free; i++)
    free (v->pool[i]);
  v->pool_free = 0;
}

/* ---- one batch ------------------------------------------------------ */

enum copy_state { READ, ZERO, WRITE, DONE, FAILED };

struct batch {
  struct sc_volume *v;
  const uint64_t *chunks;
  size_t n;                     /* <= batch_chunks, <= IO_BATCH */
  uint8_t *buf;                 /* n chunks of the bounce buffer */
  struct sc_io_req reqs[IO_BATCH];       /* origin reads */
  struct sc_copy_io copies[IO_BATCH];    /* diff-area writes */
  uint64_t slot[IO_BATCH];
  enum copy_state state[IO_BATCH];
  int refused;                  /* -ENOSPC: on-full=fail-writes said no */
  uint64_t *defer;              /* not NULL: leave the commit to the
                                   caller, raising *defer to its seq */
};

static uint64_t
chunk_len (const struct sc_volume *v, uint64_t chunk)
{
  uint64_t off = chunk << v->chunk_shift;
  return v->size - off < v->chunk_size ? v->size - off : v->chunk_size;
}

/* Run origin reads: in one batch through the origin's descriptor, or
 * one by one through the origin for an origin without one. */
static void
read_origin (struct sc_volume *v, struct sc_io_req *reqs, size_t n)
{
  int fd = sc_origin_fd (v->origin);

  if (fd < 0) {
    for (size_t i = 0; i < n; i++)
      reqs[i].result = sc_origin_pread (v->origin, reqs[i].buf, reqs[i].len,
                                        reqs[i].off);
    return;
  }
  for (size_t i = 0; i < n; i++)
    reqs[i].fd = fd;
  sc_io_run (reqs, n);
}

/* Step 1: read the old content (holes need no read). */
static void
read_old (struct batch *b)
{
  struct sc_volume *v = b->v;
  size_t nr = 0;

  for (size_t i = 0; i < b->n; i++) {
    uint64_t off = b->chunks[i] << v->chunk_shift;
    uint64_t len = chunk_len (v, b->chunks[i]);
    uint8_t *p = b->buf + i * v->chunk_size;
    b->state[i] = READ;
    if (sc_origin_is_hole (v->origin, off, len)) {
      b->state[i] = ZERO;
      continue;
    }
    if (len < v->chunk_size)    /* the last chunk of the volume */
      memset (p + len, 0, v->chunk_size - len);
    b->reqs[nr++] = (struct sc_io_req) {
      .op = SC_IO_READ, .buf = p, .len = len, .off = off,
    };
  }
  read_origin (v, b->reqs, nr);
  for (size_t i = 0, k = 0; i < b->n; i++) {
    if (b->state[i] != READ)
      continue;
    struct sc_io_req *q = &b->reqs[k++];
    if (q->result < 0) {
      debug ("copy-on-write: reading chunk %" PRIu64 ": %s", b->chunks[i],
             strerror (-q->result));
      sc_diff_invalidate_chunk (v->diff, b->chunks[i], SC_INVALID_COPY_READ,
                                -q->result);
      b->state[i] = FAILED;
    }
    else if (sc_io_all_zero (q->buf, q->len))
      b->state[i] = ZERO;
  }
}

/* Step 2: reserve slots and write the data copies to them. */
static void
write_copies (struct batch *b)
{
  struct sc_volume *v = b->v;
  size_t nw = 0;

  for (size_t i = 0; i < b->n; i++) {
    if (b->state[i] != READ)
      continue;
    if (b->refused) {           /* the request fails anyway */
      b->state[i] = FAILED;
      continue;
    }
    int r = sc_diff_copy_reserve (v->diff, b->chunks[i], &b->slot[i]);
    if (r == 1) {               /* a policy drop: no longer needed */
      b->state[i] = DONE;
      continue;
    }
    if ((r == -ENOSPC && v->cfg.on_full == SC_ON_FULL_FAIL_WRITES) ||
        r == SC_COPY_REFUSED) { /* (a protected snapshot needs it) */
      b->refused = -ENOSPC;     /* the write fails; snapshots are kept */
      b->state[i] = FAILED;
      continue;
    }
    if (r < 0) {
      debug ("copy-on-write: no slot for chunk %" PRIu64 ": %s",
             b->chunks[i], strerror (-r));
      sc_diff_invalidate_chunk (v->diff, b->chunks[i],
                                r == -ENOSPC ? SC_INVALID_DIFF_FULL
                                             : SC_INVALID_COPY_WRITE, -r);
      b->state[i] = FAILED;
      continue;
    }
    b->state[i] = WRITE;
    b->copies[nw++] = (struct sc_copy_io) {
      .offset = b->slot[i], .buf = b->buf + i * v->chunk_size,
    };
  }
  sc_diff_copy_write (v->diff, b->copies, nw);
}

/* A data copy of chunk i whose write failed: give its slot back, and
 * either refuse the request (the diff area's file system is full under
 * on-full=fail-writes, or a protected snapshot needs the copy) or
 * invalidate the snapshots that needed it. */
static void
write_failed (struct batch *b, size_t i, int err)
{
  struct sc_volume *v = b->v;

  debug ("copy-on-write: writing chunk %" PRIu64 " to the diff area: %s",
         b->chunks[i], strerror (-err));
  sc_diff_slot_cancel (v->diff, b->slot[i]);
  if ((err == -ENOSPC || err == -EDQUOT) &&
      (v->cfg.on_full == SC_ON_FULL_FAIL_WRITES ||
       sc_diff_chunk_protected (v->diff, b->chunks[i]))) {
    b->refused = -ENOSPC;
    return;
  }
  sc_diff_invalidate_chunk (v->diff, b->chunks[i],
                            err == -ENOSPC ? SC_INVALID_DIFF_FULL
                                           : SC_INVALID_COPY_WRITE, -err);
}

/* Record chunk i's copy at `where` (a slot whose data has the checksums
 * `sums`, or SC_COPY_ZERO with NULL). */
static void
record_copy (struct batch *b, size_t i, uint64_t where, const uint32_t *sums,
             uint64_t *seq)
{
  struct sc_volume *v = b->v;
  uint64_t chunk = b->chunks[i];

  if (sc_debug_cow)
    debug ("copy-on-write: chunk %" PRIu64 " -> %s %" PRIu64, chunk,
           where == SC_COPY_ZERO ? "zero" : "diff-area offset",
           where == SC_COPY_ZERO ? 0 : where);
  int r = sc_diff_copy_record (v->diff, chunk, where, sums, seq);
  if (r < 0) {
    if (where != SC_COPY_ZERO)
      sc_diff_slot_cancel (v->diff, where);
    sc_diff_invalidate_chunk (v->diff, chunk, SC_INVALID_METADATA, -r);
  }
  else if (where == SC_COPY_ZERO)
    COUNT (v, zero_chunks, 1);
  else {
    COUNT (v, chunks_copied, 1);
    COUNT (v, bytes_copied, v->chunk_size);
  }
}

/* Step 3: record what was copied, then make it durable in one commit. */
static void
record_copies (struct batch *b)
{
  uint64_t seq = 0;

  for (size_t i = 0, k = 0; i < b->n; i++) {
    if (b->state[i] == WRITE) {
      const struct sc_copy_io *c = &b->copies[k++];
      if (c->result < 0)
        write_failed (b, i, c->result);
      else
        record_copy (b, i, b->slot[i], c->sums, &seq);
    }
    else if (b->state[i] == ZERO)
      record_copy (b, i, SC_COPY_ZERO, NULL, &seq);
  }
  if (seq && b->defer) {
    if (seq > *b->defer)
      *b->defer = seq;
  }
  else if (seq) {
    int r = sc_diff_commit (b->v->diff, seq);
    if (r < 0)
      debug ("copy-on-write: committing copy records: %s (every snapshot "
             "is now invalid)", strerror (-r));
  }
}

/* After the copies (a policy drop may have removed the snapshot a copy
 * was for), record for the checkpoints the chunks that change without
 * one, durably, before the origin is written.  A failure invalidates the
 * checkpoints concerned (cow/marks.c), never the live write. */
static void
mark_changes (struct sc_volume *v, uint64_t first, uint64_t last,
              uint64_t *defer)
{
  uint64_t seq = 0;
  int r = sc_diff_mark_changes (v->diff, first, last, &seq);
  if (r == 0 && seq && defer) {
    if (seq > *defer)
      *defer = seq;
  }
  else if (r == 0 && seq)
    r = sc_diff_commit (v->diff, seq);
  if (r < 0)
    debug ("changed-block tracking: recording chunks %" PRIu64 "-%" PRIu64
           ": %s (the checkpoints concerned are invalid)", first, last,
           strerror (-r));
}

/* Copy the old content of `n` chunks (n <= batch_chunks) that snapshots
 * still need.  Failures invalidate snapshots; they do not fail the write. */
static int
cow_batch (struct sc_volume *v, const uint64_t *chunks, size_t n,
           uint64_t *defer)
{
  struct batch b = { .v = v, .chunks = chunks, .n = n, .buf = pool_get (v),
                     .defer = defer };

  if (!b.buf) {
    for (size_t i = 0; i < n; i++)
      sc_diff_invalidate_chunk (v->diff, chunks[i], SC_INVALID_COPY_READ,
                                ENOMEM);
    return 0;
  }
  read_old (&b);
  write_copies (&b);
  record_copies (&b);
  pool_put (v, b.buf);
  return b.refused;
}

int
sc_vol_cow_range_deferred (struct sc_volume *v, uint64_t first,
                           uint64_t last, uint64_t *seq)
{
  uint64_t batch[IO_BATCH];
  size_t max = v->batch_chunks < IO_BATCH ? v->batch_chunks : IO_BATCH;
  size_t n = 0;
  int r = 0;
  uint64_t t0 = 0;
  for (uint64_t c = first; c <= last && r != -ENOSPC;) {
    n += sc_diff_needs_copy_range (v->diff, c, last, batch + n, max - n, &c);
    if (n && !t0)
      t0 = sc_mono_ns ();
    if (n == max) {
      int e = cow_batch (v, batch, n, seq);
      r = r ? r : e;
      n = 0;
    }
  }
  if (n && r != -ENOSPC) {     /* after a refusal, copy no more */
    int e = cow_batch (v, batch, n, seq);
    r = r ? r : e;
  }
  if (r != -ENOSPC)             /* checkpoints: the chunks change now */
    mark_changes (v, first, last, seq);
  if (t0)
    sc_vol_note_cow (v, sc_mono_ns () - t0);
  return r;
}

int
sc_vol_cow_range (struct sc_volume *v, uint64_t first, uint64_t last)
{
  return sc_vol_cow_range_deferred (v, first, last, NULL);
}

bool
sc_vol_cow_needed (struct sc_volume *v, uint64_t first, uint64_t last)
{
  uint64_t chunk;
  for (uint64_t c = first; c <= last;)
    if (sc_diff_needs_copy_range (v->diff, c, last, &chunk, 1, &c) > 0)
      return true;
  return false;
}

void
sc_vol_cow_ranges_deferred (struct sc_volume *v, size_t nr,
                            const uint64_t *first, const uint64_t *last,
                            int *err, uint64_t *seq)
{
  uint64_t batch[IO_BATCH];
  size_t max = v->batch_chunks < IO_BATCH ? v->batch_chunks : IO_BATCH;
  size_t n = 0;
  bool refused = false;
  uint64_t t0 = 0;

  for (size_t i = 0; i < nr; i++)
    for (uint64_t c = first[i]; c <= last[i];) {
      n += sc_diff_needs_copy_range (v->diff, c, last[i], batch + n, max - n,
                                     &c);
      if (n && !t0)
        t0 = sc_mono_ns ();
      if (n == max) {
        refused |= cow_batch (v, batch, n, seq) == -ENOSPC;
        n = 0;
      }
    }
  if (n)
    refused |= cow_batch (v, batch, n, seq) == -ENOSPC;
  if (t0)
    sc_vol_note_cow (v, sc_mono_ns () - t0);
  for (size_t i = 0; i < nr; i++)
    /* After a refusal, which range was refused: each one again on its
     * own (what was copied needs no copy now; the refused copy is
     * refused again). */
    err[i] = refused ? sc_vol_cow_range_deferred (v, first[i], last[i], seq)
                     : (mark_changes (v, first[i], last[i], seq), 0);
}
