/* shadowcopy: the volume: live I/O with copy-on-write, snapshot reads.
 *
 * Notes on the design
 *
 * The write gate (engine/gate.h).  Every live write, zero and trim is
 * inside the gate for its whole life; creating a snapshot closes it (new
 * changes wait from then on, so a steady stream of writes cannot starve
 * it).  That drains the writes in flight, holds new ones, and makes the
 * epoch change atomic with respect to every copy-on-write decision.  A
 * write that waits for its copies' group commit parks meanwhile: the hold
 * does not wait for the disk on its behalf, and the write, which has not
 * touched the origin yet, decides again if a hold came in between
 * (before_change).
 *
 * Copy-on-write.  A live write locks its chunk range exclusively, asks the
 * diff area which chunks a valid snapshot still needs, and copies them in
 * batches: one io_uring batch reads the old chunks, one writes them to
 * their slots, then the copy records are committed (group commit) and only
 * then does the new data go to the origin.  A chunk that is a hole in the
 * origin, or reads as zeros, is recorded as a zero copy without a slot
 * (volume-cow.c).
 *
 * Locks, outermost first: the gate, then a chunk range, then the diff
 * area's mutex; a snapshot is pinned only once its range is locked (the
 * whole rule is at struct sc_volume, volume-impl.h).
 *
 * Creation and holds.  One snapshot creation at a time per volume: a
 * creator first takes the creation slot (sc_volume_create_begin, never
 * waits: a second creator gets -EBUSY), may then hold writes
 * (sc_volume_hold: the gate closed and sealed), commit under the hold and
 * release.  The control server's connection thread does both and
 * enforces the hold's deadline itself (engine/control-create.c).  The one-shot sc_volume_snapshot_create
 * is the same sequence in one call (volume-create.c).
 *
 * Failure.  If a copy cannot be made (origin read error, diff area full or
 * failing), the snapshots that needed it are invalidated and the live
 * write goes ahead: the live volume wins.  Except over a lie on disk: when
 * the diff area's metadata fails and not even its superblock can record
 * that (sc_diff_change_check), a change that would overwrite what the
 * snapshots on disk still need fails with EIO instead.  A diff area at its size limit
 * applies its on-full policy first: delete-oldest drops the oldest
 * snapshots until the copy fits (cow/space.c); fail-writes refuses the
 * request with ENOSPC before the origin is touched, and the snapshots are
 * kept.
 *
 * Write-back.  A write without FUA that must copy first is queued and
 * acknowledged; the queue's thread copies and commits for many queued
 * writes at once, then writes them to the origin (writeback.c).  Reads
 * overlay queued data; flushes and write holds drain the queue.
 *
 * Memory.  Old data in flight lives in bounce buffers from a fixed pool
 * (POOL_BUFFERS of max(chunk, 1 MiB)); a writer waits for a buffer when all
 * are busy.  The write-back queue is bounded (SC_WB_MAX_ITEMS writes,
 * SC_WB_MAX_BYTES).  Nothing else grows with the write load.
 *
 * The origin is reached only through engine/origin.h.  Batches put its
 * file descriptor into io_uring requests when it has one
 * (sc_origin_fd); an origin without one is read request by request.
 *
 * Offline.  The CLI opens a volume on its diff area alone when no server
 * runs (sc_volume_open_offline), to answer control requests with the very
 * code a server uses; such a volume has no origin and refuses live I/O.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/clock.h"
#include "engine/size.h"
#include "engine/volume-impl.h"

_Static_assert (SC_FUA == 0x1 && SC_MAY_TRIM == 0x2,
                "volume request flags are passed to the origin as they are");

/* ---- open and close ------------------------------------------------- */

/* A volume with its locks set up and nothing open. */
static struct sc_volume *
volume_alloc (void)
{
  /* Aligned: its counters and its range locks' stripes each have cache
   * lines of their own. */
  struct sc_volume *v = aligned_alloc (_Alignof (struct sc_volume),
                                       sizeof *v);

  if (!v)
    return NULL;
  memset (v, 0, sizeof *v);
  if (!(v->scrub = sc_vol_scrub_new ())) {
    free (v);
    return NULL;
  }
  if (!(v->revert = sc_vol_revert_new ())) {
    sc_vol_scrub_free (v->scrub);
    free (v);
    return NULL;
  }
  sc_gate_init (&v->gate);
  sc_rangelock_init (&v->chunks);
  sc_rangelock_init (&v->clone_chunks);
  pthread_mutex_init (&v->pool_lock, NULL);
  pthread_cond_init (&v->pool_cond, NULL);
  pthread_mutex_init (&v->hold_lock, NULL);
  pthread_mutex_init (&v->watch_lock, NULL);
  pthread_mutex_init (&v->retry_lock, NULL);
  pthread_cond_init (&v->retry_cond, NULL);
  v->start_ns = v->win_ns[0] = v->win_ns[1] = sc_mono_ns ();
  return v;
}

/* Free what volume_alloc made and close the origin (without a flush). */
static void
volume_free (struct sc_volume *v)
{
  sc_vol_scrub_free (v->scrub);
  sc_vol_revert_free (v->revert);
  sc_origin_close (v->origin);
  sc_vol_pool_free (v);
  sc_gate_destroy (&v->gate);
  sc_rangelock_destroy (&v->chunks);
  sc_rangelock_destroy (&v->clone_chunks);
  pthread_mutex_destroy (&v->pool_lock);
  pthread_cond_destroy (&v->pool_cond);
  pthread_mutex_destroy (&v->hold_lock);
  pthread_mutex_destroy (&v->watch_lock);
  pthread_mutex_destroy (&v->retry_lock);
  pthread_cond_destroy (&v->retry_cond);
  free (v);
}

/* Once the diff area is open: what follows from its chunk size. */
static void
volume_set_chunk_size (struct sc_volume *v)
{
  v->chunk_size = sc_diff_chunk_size (v->diff);
  v->chunk_shift = (unsigned) __builtin_ctz (v->chunk_size);
  v->batch_chunks = v->chunk_size >= BATCH_BYTES ? 1
                    : BATCH_BYTES / v->chunk_size;
}

/* The diff area may not be the origin file itself. */
static int
check_diff_path (const char *diff_path, const struct sc_origin_id *id,
                 char *err, size_t errlen)
{
  struct stat st;

  if (stat (diff_path, &st) == 0 && st.st_dev == id->dev &&
      st.st_ino == id->ino && id->type == SC_ORIGIN_FILE) {
    snprintf (err, errlen, "%s: the diff area cannot be the disk itself",
              diff_path);
    return -EINVAL;
  }
  return 0;
}

/* diff-max= (stored in the diff area, so it survives a restart). */
static int
apply_diff_max (struct sc_volume *v, const struct sc_volume_config *cfg,
                char *err, size_t errlen)
{
  uint64_t max = cfg->diff_max_percent
    ? sc_size_percent (v->size, cfg->diff_max_percent) : cfg->diff_max;
  int r = sc_diff_set_max (v->diff, max, SC_MAX_LAZY, NULL);

  if (r < 0)
    snprintf (err, errlen, "%s: diff-max=%" PRIu64 ": %s", cfg->diff_path,
              max, r == -EINVAL ? "below the minimum of 16 chunks"
                                : strerror (-r));
  return r;
}

int
sc_volume_open (const struct sc_volume_config *cfg, struct sc_volume **out,
                char *err, size_t errlen)
{
  struct sc_volume *v = volume_alloc ();
  struct sc_origin_id id;
  int r;

  if (!v)
    return -ENOMEM;
  if (sc_origin_is_nbd_uri (cfg->origin_path)) {
    struct sc_origin_nbd_opts def = {
      .retry_ms = SC_ORIGIN_NBD_RETRY_MS_DEFAULT,
      .io_timeout_ms = SC_ORIGIN_NBD_IO_TIMEOUT_MS_DEFAULT,
    };
    struct sc_origin_nbd_opts opts = cfg->nbd ? *cfg->nbd : def;
    opts.no_samples = cfg->origin_check_off;
    r = sc_origin_open_nbd (cfg->origin_path, &opts, &v->origin, err,
                            errlen);
  }
  else
    r = sc_origin_open_file (cfg->origin_path, &v->origin, err, errlen);
  if (r < 0)
    goto fail;
  sc_origin_identity (v->origin, &id);
  r = check_diff_path (cfg->diff_path, &id, err, errlen);
  if (r < 0)
    goto fail;
  v->size = sc_origin_size (v->origin);

  r = sc_diff_open_cache (cfg->diff_path, SC_DIFF_CREATE | SC_DIFF_NOWAIT |
                          (cfg->volatile_durability ? SC_DIFF_VOLATILE : 0),
                          &id, cfg->chunk_size, cfg->index_cache, &v->diff,
                          err, errlen);
  if (r < 0)
    goto fail;
  volume_set_chunk_size (v);
  v->cfg = *cfg;
  v->cfg.origin_path = v->cfg.diff_path = NULL;
  if ((r = sc_vol_watch_open (v, err, errlen)) < 0) {
    sc_diff_close (v->diff);
    goto fail;
  }
  sc_diff_set_policy (v->diff, cfg->on_full, cfg->max_snapshots);
  sc_diff_set_max_checkpoints (v->diff, cfg->max_checkpoints);
  /* The write-back log a killed server left is judged right after the
   * origin's check, which says whether the disk changed since, and
   * before anything else writes the origin (writeback-log.c). */
  if ((r = sc_vol_wb_start (v, cfg->origin_path, cfg->diff_path, err,
                           errlen)) < 0 ||
      (cfg->diff_max_set && (r = apply_diff_max (v, cfg, err, errlen)) < 0)) {
    sc_volume_close (v);
    return r;
  }
  if (!cfg->revert_no_resume)
    sc_vol_revert_resume_at_open (v);
  *out = v;
  return 0;

 fail:
  volume_free (v);
  return r;
}

int
sc_volume_open_offline (const char *diff_path, bool rdonly,
                        struct sc_volume **out, char *err, size_t errlen)
{
  struct sc_volume *v = volume_alloc ();
  struct sc_diff_stats st;
  int r;

  if (!v) {
    snprintf (err, errlen, "%s: %s", diff_path, strerror (ENOMEM));
    return -ENOMEM;
  }
  err[0] = '\0';
  r = sc_diff_open (diff_path, SC_DIFF_NOWAIT | (rdonly ? SC_DIFF_RDONLY : 0),
                    NULL, 0, &v->diff, err, errlen);
  if (r < 0) {
    if (err[0] == '\0')
      snprintf (err, errlen, "%s: %s", diff_path, strerror (-r));
    volume_free (v);
    return r;
  }
  /* max-checkpoints is the server's configuration, not stored: offline
   * it is not known, and not enforced (the next server's is, at its
   * next checkpoint). */
  sc_diff_set_max_checkpoints (v->diff, SC_MAX_CHECKPOINTS_MAX);
  sc_diff_stats (v->diff, &st);
  v->size = st.volume_size;
  volume_set_chunk_size (v);
  *out = v;
  return 0;
}

int
sc_volume_close (struct sc_volume *v)
{
  int r = 0;

  if (!v)
    return 0;
  sc_vol_wb_stop (v);                   /* queued writes reach the origin */
  sc_vol_scrub_free (v->scrub);         /* stops a scrub that runs */
  v->scrub = NULL;
  sc_vol_revert_free (v->revert);       /* and a revert's copy */
  v->revert = NULL;
  sc_vol_retry_stop (v);
  if (v->origin && (r = sc_origin_flush (v->origin)) < 0)
    debug ("fdatasync of the disk at close: %s", strerror (-r));
  else if (v->origin)
    sc_vol_watch_close (v);
  r = sc_diff_close (v->diff);
  if (r < 0)
    debug ("closing the diff area: %s", strerror (-r));
  volume_free (v);
  return r;
}

uint64_t sc_volume_size (const struct sc_volume *v) { return v->size; }
uint32_t sc_volume_chunk_size (const struct sc_volume *v)
{
  return v->chunk_size;
}
bool sc_volume_offline (const struct sc_volume *v) { return !v->origin; }
struct sc_diff *sc_volume_diff (struct sc_volume *v) { return v->diff; }

int
sc_vol_check_io (const struct sc_volume *v, uint64_t count, uint64_t offset)
{
  if (!v->origin)
    return -ENODEV;
  if (offset > v->size || count > v->size - offset)
    return -EINVAL;
  return 0;
}

/* ---- the live volume ---------------------------------------------- */

static int do_write (struct sc_volume *v, const void *buf, uint32_t count,
                     uint64_t offset, unsigned flags);

/* Change [offset, offset + count) of the origin with `fn` after the
 * copy-on-write of the chunks it touches. */
typedef int (*live_change_fn) (struct sc_volume *v, const void *buf,
                               uint32_t count, uint64_t offset,
                               unsigned flags);

/* What a live change does before it touches the origin, under the gate
 * with its range locked: a revert's pending chunks get their target
 * content, the chunks a snapshot still needs are copied, and the copies
 * are recorded.  Their records are committed with the change parked at
 * the gate, so that a hold does not wait for that fdatasync; if a hold
 * sealed the gate meanwhile, what it did (a snapshot created, a revert
 * started, this connection's ticket revoked) was not seen, so all is
 * decided again.  0 once the origin may be written. */
static int
before_change (struct sc_volume *v, uint64_t ticket,
               const struct sc_range *range)
{
  for (;;) {
    int r = 0;
    uint64_t seq = 0;
    if (sc_diff_revert_active (v->diff))
      r = sc_vol_revert_complete (v, range->first, range->last);
    /* Under on-full=fail-writes a copy that does not fit fails the
     * request before the origin is touched (copies already made stay
     * valid). */
    if (r == 0)
      r = sc_vol_cow_range_deferred (v, range->first, range->last, &seq);
    if (!seq)
      return r;
    uint64_t parked_at = sc_gate_park (&v->gate);
    int c = sc_diff_commit (v->diff, seq);
    if (c < 0)
      debug ("copy-on-write: committing copy records: %s (every snapshot "
             "is now invalid)", strerror (-c));
    if (!sc_gate_unpark (&v->gate, parked_at) || r < 0)
      return r;
    if (ticket && (r = sc_volume_live_check (v, ticket)) < 0)
      return r;
  }
}

/* A change of the live volume; `ticket` (0: none) is the live
 * connection's, checked under the gate: a revert revokes tickets under
 * its hold (the gate sealed), so a request either ran before the revert
 * started or sees its ticket revoked. */
static int
live_change (struct sc_volume *v, uint64_t ticket, live_change_fn fn,
             const void *buf, uint32_t count, uint64_t offset,
             unsigned flags)
{
  int r = sc_vol_check_io (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  struct sc_range range;
  sc_diff_needs_copy_prefetch (v->diff, offset >> v->chunk_shift);
  sc_gate_enter (&v->gate);
  if (ticket && (r = sc_volume_live_check (v, ticket)) < 0) {
    sc_gate_leave (&v->gate);
    return r;
  }
  sc_rangelock_lock (&v->chunks, &range, offset >> v->chunk_shift,
                     (offset + count - 1) >> v->chunk_shift, true);
  /* A write that must copy first and may be acknowledged before it is
   * durable goes to the write-back queue (writeback.c), which takes the
   * range again for itself.  Without the range for a moment, another
   * request may pass it: both are in flight, so either order is right. */
  if (fn == do_write && sc_vol_wb_eligible (v, count, flags) &&
      sc_vol_cow_needed (v, range.first, range.last)) {
    sc_rangelock_unlock (&v->chunks, &range);
    r = sc_vol_wb_queue (v, buf, count, offset);
    if (r == 0) {
      sc_gate_leave (&v->gate);
      return 0;
    }
    sc_rangelock_lock (&v->chunks, &range, offset >> v->chunk_shift,
                       (offset + count - 1) >> v->chunk_shift, true);
  }
  r = before_change (v, ticket, &range);
  if (r == -ENOSPC)
    COUNT (v, writes_refused, 1);     /* refused by on-full=fail-writes */
  else if (r == 0) {
    sc_vol_watch_write (v);
    /* A failed diff area whose failure the disk does not know yet: the
     * origin must keep what the snapshots on disk still need. */
    r = sc_diff_change_check (v->diff, range.first, range.last);
    if (r == 0)
      r = fn (v, buf, count, offset, flags);
  }
  sc_rangelock_unlock (&v->chunks, &range);
  sc_gate_leave (&v->gate);
  return r;
}

int
sc_volume_read (struct sc_volume *v, void *buf, uint32_t count,
                uint64_t offset)
{
  int r = sc_vol_check_io (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  /* Queued writes (writeback.c) first, the origin after. */
  struct sc_wb_overlay *o;
  if ((r = sc_vol_wb_overlay_begin (v, count, offset, &o)) < 0)
    return r;
  if (sc_diff_revert_active (v->diff))
    r = sc_vol_revert_read (v, buf, count, offset);
  else
    r = sc_origin_pread (v->origin, buf, count, offset);
  if (r == 0)
    sc_vol_wb_overlay_end (o, buf);
  else
    sc_vol_wb_overlay_end (o, NULL);
  return r;
}

static int
do_write (struct sc_volume *v, const void *buf, uint32_t count,
          uint64_t offset, unsigned flags)
{
  int r = sc_origin_pwrite (v->origin, buf, count, offset, flags & SC_FUA);
  if (r == 0)
    sc_counter_add (&v->bytes_written, count);
  return r;
}

int
sc_volume_write (struct sc_volume *v, const void *buf, uint32_t count,
                 uint64_t offset, unsigned flags)
{
  return live_change (v, 0, do_write, buf, count, offset, flags);
}

static int
do_zero (struct sc_volume *v, const void *unused, uint32_t count,
         uint64_t offset, unsigned flags)
{
  return sc_origin_zero (v->origin, count, offset, flags);
}

int
sc_volume_zero (struct sc_volume *v, uint32_t count, uint64_t offset,
                unsigned flags)
{
  return live_change (v, 0, do_zero, NULL, count, offset, flags);
}

static int
do_trim (struct sc_volume *v, const void *unused, uint32_t count,
         uint64_t offset, unsigned flags)
{
  return sc_origin_trim (v->origin, count, offset, flags & SC_FUA);
}

int
sc_volume_trim (struct sc_volume *v, uint32_t count, uint64_t offset,
                unsigned flags)
{
  return live_change (v, 0, do_trim, NULL, count, offset, flags);
}

int
sc_volume_live_write (struct sc_volume *v, uint64_t ticket, const void *buf,
                      uint32_t count, uint64_t offset, unsigned flags)
{
  return live_change (v, ticket, do_write, buf, count, offset, flags);
}

int
sc_volume_live_zero (struct sc_volume *v, uint64_t ticket, uint32_t count,
                     uint64_t offset, unsigned flags)
{
  return live_change (v, ticket, do_zero, NULL, count, offset, flags);
}

int
sc_volume_live_trim (struct sc_volume *v, uint64_t ticket, uint32_t count,
                     uint64_t offset, unsigned flags)
{
  return live_change (v, ticket, do_trim, NULL, count, offset, flags);
}

/* The live volume wins: its flush succeeds when the origin's does.  The
 * diff area's own sync has nothing the live data depends on (every copy
 * was committed before its chunk was overwritten); if it fails, the diff
 * area fails (every snapshot invalid, logged) and retries later, but the
 * live flush does not report it. */
int
sc_volume_flush (struct sc_volume *v)
{
  if (!v->origin)
    return -ENODEV;
  sc_vol_wb_settle (v);
  uint64_t covered = sc_vol_wb_drain (v);    /* queued writes reach the
                                                origin first */
  int r = sc_origin_flush (v->origin);
  int r0 = sc_vol_wb_take_error (v, covered);
  if (r0 < 0) {
    sc_say ("flush: reports the failure of a write acknowledged before "
            "it: %s", strerror (-r0));
    if (r == 0)
      r = r0;
  }
  int r2 = sc_diff_sync (v->diff);
  if (r2 < 0)
    debug ("flush: the diff area's journal: %s (snapshots are invalid; "
           "the live flush is not affected)", strerror (-r2));
  if (r0 < 0)
    sc_vol_wb_reported (v);
  return r;
}

int
sc_volume_extents (struct sc_volume *v, uint32_t count, uint64_t offset,
                   sc_extent_cb cb, void *opaque)
{
  int r = sc_vol_check_io (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  /* While a revert runs, pending chunks read as the target: all data
   * (the origin's map does not describe them). */
  if (sc_diff_revert_active (v->diff))
    return cb (opaque, offset, count, 0);
  sc_vol_wb_drain (v);          /* queued writes may fill holes */
  return sc_origin_extents (v->origin, count, offset, cb, opaque);
}

/* ---- snapshot reads --------------------------------------------------- */

/* Add a read of `len` bytes at `off` of the origin's descriptor into `p`
 * to the batch, merged with the last request when they are contiguous; a
 * full batch is run first. */
static int
batch_read (struct sc_io_req *reqs, size_t *nr, int fd, void *p,
            uint64_t len, uint64_t off)
{
  struct sc_io_req *last = *nr ? &reqs[*nr - 1] : NULL;
  int r = 0;

  if (last && last->off + last->len == off &&
      (uint8_t *) last->buf + last->len == p) {
    last->len += len;
    return 0;
  }
  if (*nr == IO_BATCH) {
    r = sc_io_run (reqs, *nr);
    *nr = 0;
  }
  reqs[(*nr)++] = (struct sc_io_req) {
    .op = SC_IO_READ, .fd = fd, .buf = p, .len = len, .off = off,
  };
  return r;
}

/* Add a piece of a copy to the diff area's batch; a full one is read
 * first. */
static int
copy_read (struct sc_volume *v, struct sc_copy_io *io, size_t *n,
           uint64_t slot_off, uint32_t at, void *p, uint32_t len)
{
  int r = 0;
  if (*n == IO_BATCH) {
    r = sc_diff_copy_read (v->diff, io, *n);
    *n = 0;
  }
  io[(*n)++] = (struct sc_copy_io) {
    .offset = slot_off, .buf = p, .at = at, .len = len,
  };
  return r;
}

/* Read [offset, end) of the pinned snapshot at `epoch`: the origin's
 * pieces in one batch (merged where contiguous), the diff area's in
 * another. */
int
sc_vol_read_pinned (struct sc_volume *v, uint32_t epoch, uint8_t *p,
             uint64_t offset, uint64_t end)
{
  struct sc_io_req reqs[IO_BATCH];
  struct sc_copy_io copies[IO_BATCH];
  size_t nr = 0, nc = 0;
  int origin_fd = sc_origin_fd (v->origin), r = 0;

  while (offset < end && r == 0) {
    uint64_t chunk = offset >> v->chunk_shift;
    uint64_t in_chunk = offset & (v->chunk_size - 1);
    uint64_t len = v->chunk_size - in_chunk, slot_off = 0;
    if (len > end - offset)
      len = end - offset;
    switch (sc_diff_resolve (v->diff, epoch, chunk, &slot_off)) {
    case SC_WHERE_ZERO:
      memset (p, 0, len);
      break;
    case SC_WHERE_DIFF:
      r = copy_read (v, copies, &nc, slot_off, in_chunk, p, len);
      break;
    case SC_WHERE_ORIGIN:
      r = origin_fd >= 0 ? batch_read (reqs, &nr, origin_fd, p, len, offset)
                         : sc_origin_pread (v->origin, p, len, offset);
      break;
    case SC_WHERE_NONE:         /* no data kept: never for a valid one */
      r = -EIO;
      break;
    }
    p += len;
    offset += len;
  }
  if (r == 0 && nr)
    r = sc_io_run (reqs, nr);
  if (r == 0 && nc)
    r = sc_diff_copy_read (v->diff, copies, nc);
  return r;
}

int
sc_volume_snapshot_read (struct sc_volume *v, uint64_t id, void *buf,
                         uint32_t count, uint64_t offset)
{
  struct sc_snapshot_info info;
  struct sc_range range;
  int r = sc_vol_check_io (v, count, offset);

  if (r < 0 || count == 0)
    return r < 0 ? r : sc_diff_snapshot_check (v->diff, id);

  /* Pin the snapshot only once the range is ours: a policy drop may wait
   * for the readers of a dropped snapshot (sc_diff_copy_reserve), so a
   * pinned reader must never wait for a writer's range. */
  sc_rangelock_lock (&v->chunks, &range, offset >> v->chunk_shift,
                     (offset + count - 1) >> v->chunk_shift, false);
  int pinned = sc_diff_snapshot_get (v->diff, id, &info);
  r = pinned < 0 ? pinned
                 : sc_vol_read_pinned (v, info.epoch, buf, offset,
                                       offset + count);
  sc_rangelock_unlock (&v->chunks, &range);
  if (pinned == 0)
    sc_diff_snapshot_put (v->diff, id);
  return r;
}
