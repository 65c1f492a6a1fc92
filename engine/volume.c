/* shadowcopy: the volume: live I/O with copy-on-write, snapshot reads.
 *
 * Notes on the design
 *
 * The write gate.  Every live write, zero and trim holds the gate shared
 * for its whole life; creating a snapshot takes it exclusive (writer
 * preferred, so a steady stream of writes cannot starve it).  That drains
 * the writes in flight, holds new ones, and makes the epoch change atomic
 * with respect to every copy-on-write decision.
 *
 * Copy-on-write.  A live write locks its chunk range exclusively, asks the
 * diff area which chunks a valid snapshot still needs, and copies them in
 * batches: one io_uring batch reads the old chunks, one writes them to
 * their slots, then the copy records are committed (group commit) and only
 * then does the new data go to the origin.  A chunk that is a hole in the
 * origin, or reads as zeros, is recorded as a zero copy without a slot.
 *
 * Creation and holds.  One snapshot creation at a time per volume: a
 * creator first takes the creation slot (sc_volume_create_begin, never
 * waits: a second creator gets -EBUSY), may then hold writes
 * (sc_volume_hold: the gate taken exclusive), commit under the hold and
 * release.  Because a pthread rwlock must be unlocked by the thread that
 * locked it, hold and release are called from one thread; the control
 * server's connection thread does both and enforces the hold's deadline
 * itself (engine/control.c).  The one-shot sc_volume_snapshot_create is
 * the same sequence in one call.
 *
 * Failure.  If a copy cannot be made (origin read error, diff area full or
 * failing), the snapshots that needed it are invalidated and the live
 * write goes ahead: the live volume wins.  A diff area at its size limit applies
 * its on-full policy first: delete-oldest drops the oldest snapshots
 * until the copy fits (cow/diffarea.c); fail-writes refuses the request
 * with ENOSPC before the origin is touched, and the snapshots are kept.
 *
 * Memory.  Old data in flight lives in bounce buffers from a fixed pool
 * (POOL_BUFFERS of max(chunk, 1 MiB)); a writer waits for a buffer when all
 * are busy.  Nothing else grows with the write load.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "cow/io.h"
#include "engine/clock.h"
#include "engine/rangelock.h"
#include "engine/size.h"
#include "engine/volume.h"

#define POOL_BUFFERS 16
#define PREFLUSH_MAX 4                  /* origin flushes before a hold */
#define PREFLUSH_QUICK_NS 1000000       /* a flush this quick is enough */
#define BATCH_BYTES (1u << 20)
#define IO_BATCH 64

#define debug(...) do { if (sc_debug) sc_debug (__VA_ARGS__); } while (0)

struct sc_volume {
  int origin_fd;
  bool origin_is_file;
  uint64_t size;
  uint32_t chunk_size;
  unsigned chunk_shift;
  struct sc_diff *diff;

  pthread_rwlock_t gate;
  struct sc_rangelock chunks;

  /* Bounce buffer pool for old data. */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;
  void *pool[POOL_BUFFERS];
  size_t pool_free;             /* buffers in pool[0 .. pool_free) */
  size_t pool_made;
  size_t batch_chunks;          /* chunks per bounce buffer */

  /* Write-hold durations of snapshot creations (a ring). */
  pthread_mutex_t hold_lock;
  uint64_t holds[SC_HOLD_SAMPLES];
  uint64_t nholds;

  /* Counters (atomics) and copy-on-write latencies (a ring, hold_lock). */
  struct sc_volume_config cfg;
  uint64_t chunks_copied, bytes_copied, zero_chunks, bytes_written;
  uint64_t writes_refused;
  uint64_t cows[SC_COW_SAMPLES];
  uint64_t ncows;
  uint64_t start_ns;
  uint64_t win_ns[2], win_bytes[2];     /* rate windows (hold_lock) */
  /* Snapshot creation (see the notes above); under hold_lock. */
  bool creating;                /* the creation slot is taken */
  bool holding;                 /* a hold has the gate */
  uint64_t hold_start;          /* monotonic ns when the hold began */
  uint64_t hold_drained;        /* ... when the writes in flight had drained */
  uint64_t hold_flushed;        /* ... when the origin flush was done */
};

static void note_cow (struct sc_volume *v, uint64_t ns);
#define COUNT(v, field, n) __atomic_fetch_add (&(v)->field, (n), __ATOMIC_RELAXED)

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

/* ---- open and close ------------------------------------------------- */

int
sc_volume_open (const struct sc_volume_config *cfg, struct sc_volume **out,
                char *err, size_t errlen)
{
  struct sc_volume *v = calloc (1, sizeof *v);
  if (!v)
    return -ENOMEM;
  int r;

  v->origin_fd = open (cfg->origin_path, O_RDWR | O_CLOEXEC);
  if (v->origin_fd == -1) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", cfg->origin_path, strerror (errno));
    free (v);
    return r;
  }
  struct sc_origin_id id;
  r = sc_origin_identify (v->origin_fd, cfg->origin_path, &id);
  if (r < 0) {
    snprintf (err, errlen, "%s: %s", cfg->origin_path,
              r == -EINVAL ? "not a regular file or block device"
                           : strerror (-r));
    goto fail_origin;
  }
  struct stat st;
  if (stat (cfg->diff_path, &st) == 0 && st.st_dev == id.dev &&
      st.st_ino == id.ino && id.type == SC_ORIGIN_FILE) {
    r = -EINVAL;
    snprintf (err, errlen, "%s: the diff area cannot be the disk itself",
              cfg->diff_path);
    goto fail_origin;
  }
  v->origin_is_file = id.type == SC_ORIGIN_FILE;
  v->size = id.size;

  r = sc_diff_open (cfg->diff_path, SC_DIFF_CREATE | SC_DIFF_NOWAIT |
                    (cfg->volatile_durability ? SC_DIFF_VOLATILE : 0), &id,
                    cfg->chunk_size,
                    &v->diff, err, errlen);
  if (r < 0)
    goto fail_origin;
  v->chunk_size = sc_diff_chunk_size (v->diff);
  v->chunk_shift = (unsigned) __builtin_ctz (v->chunk_size);
  v->batch_chunks = v->chunk_size >= BATCH_BYTES ? 1
                    : BATCH_BYTES / v->chunk_size;

  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&v->gate, &attr);
  pthread_rwlockattr_destroy (&attr);
  sc_rangelock_init (&v->chunks);
  pthread_mutex_init (&v->pool_lock, NULL);
  pthread_cond_init (&v->pool_cond, NULL);
  pthread_mutex_init (&v->hold_lock, NULL);
  v->cfg = *cfg;
  v->cfg.origin_path = v->cfg.diff_path = NULL;
  v->start_ns = v->win_ns[0] = v->win_ns[1] = sc_mono_ns ();
  sc_diff_set_policy (v->diff, cfg->on_full, cfg->max_snapshots);
  if (cfg->diff_max_set) {
    uint64_t max = cfg->diff_max_percent
      ? sc_size_percent (v->size, cfg->diff_max_percent) : cfg->diff_max;
    r = sc_diff_set_max (v->diff, max, SC_MAX_LAZY, NULL);
    if (r < 0) {
      snprintf (err, errlen, "%s: diff-max=%" PRIu64 ": %s", cfg->diff_path,
                max, r == -EINVAL ? "below the minimum of 16 chunks"
                                  : strerror (-r));
      sc_volume_close (v);
      return r;
    }
  }
  *out = v;
  return 0;

 fail_origin:
  close (v->origin_fd);
  free (v);
  return r;
}

void
sc_volume_close (struct sc_volume *v)
{
  if (!v)
    return;
  int r = sc_io_fdatasync (v->origin_fd);
  if (r < 0)
    debug ("fdatasync of the disk at close: %s", strerror (-r));
  r = sc_diff_close (v->diff);
  if (r < 0)
    debug ("closing the diff area: %s", strerror (-r));
  close (v->origin_fd);
  for (size_t i = 0; i < v->pool_free; i++)
    free (v->pool[i]);
  pthread_rwlock_destroy (&v->gate);
  sc_rangelock_destroy (&v->chunks);
  pthread_mutex_destroy (&v->pool_lock);
  pthread_cond_destroy (&v->pool_cond);
  pthread_mutex_destroy (&v->hold_lock);
  free (v);
}

uint64_t sc_volume_size (const struct sc_volume *v) { return v->size; }
uint32_t sc_volume_chunk_size (const struct sc_volume *v)
{
  return v->chunk_size;
}
struct sc_diff *sc_volume_diff (struct sc_volume *v) { return v->diff; }

static int
check_range (const struct sc_volume *v, uint64_t count, uint64_t offset)
{
  if (offset > v->size || count > v->size - offset)
    return -EINVAL;
  return 0;
}

/* ---- copy-on-write -------------------------------------------------- */

static bool
all_zero (const void *buf, size_t len)
{
  const uint8_t *p = buf;
  return len == 0 || (p[0] == 0 && memcmp (p, p + 1, len - 1) == 0);
}

/* Is the origin chunk at [off, off + len) entirely a hole? */
static bool
origin_hole (const struct sc_volume *v, uint64_t off, uint64_t len)
{
  if (!v->origin_is_file)
    return false;
  off_t data = lseek (v->origin_fd, (off_t) off, SEEK_DATA);
  if (data == -1)
    return errno == ENXIO;      /* no data from here to the end */
  return (uint64_t) data >= off + len;
}

static uint64_t
chunk_len (const struct sc_volume *v, uint64_t chunk)
{
  uint64_t off = chunk << v->chunk_shift;
  return v->size - off < v->chunk_size ? v->size - off : v->chunk_size;
}

/* Copy the old content of `n` chunks (n <= batch_chunks) that snapshots
 * still need.  Failures invalidate snapshots; they do not fail the write. */
static int
cow_batch (struct sc_volume *v, const uint64_t *chunks, size_t n)
{
  int refused = 0;
  uint8_t *buf = pool_get (v);
  struct sc_io_req reqs[IO_BATCH];
  uint64_t slot[IO_BATCH];
  enum { READ, ZERO, WRITE, DONE, FAILED } state[IO_BATCH];
  size_t nr = 0;

  if (!buf) {
    for (size_t i = 0; i < n; i++)
      sc_diff_invalidate_chunk (v->diff, chunks[i], SC_INVALID_COPY_READ,
                                ENOMEM);
    return 0;
  }

  /* Read the old content (holes need no read). */
  for (size_t i = 0; i < n; i++) {
    uint64_t off = chunks[i] << v->chunk_shift, len = chunk_len (v, chunks[i]);
    state[i] = READ;
    if (origin_hole (v, off, len)) {
      state[i] = ZERO;
      continue;
    }
    if (len < v->chunk_size)    /* the last chunk of the volume */
      memset (buf + i * v->chunk_size + len, 0, v->chunk_size - len);
    reqs[nr++] = (struct sc_io_req) {
      .op = SC_IO_READ, .fd = v->origin_fd,
      .buf = buf + i * v->chunk_size, .len = len, .off = off,
    };
  }
  sc_io_run (reqs, nr);
  for (size_t i = 0, k = 0; i < n; i++) {
    if (state[i] != READ)
      continue;
    struct sc_io_req *q = &reqs[k++];
    if (q->result < 0) {
      debug ("copy-on-write: reading chunk %" PRIu64 ": %s", chunks[i],
             strerror (-q->result));
      sc_diff_invalidate_chunk (v->diff, chunks[i], SC_INVALID_COPY_READ,
                                -q->result);
      state[i] = FAILED;
    }
    else if (all_zero (q->buf, q->len))
      state[i] = ZERO;
  }

  /* Write the data copies to their slots. */
  nr = 0;
  for (size_t i = 0; i < n; i++) {
    if (state[i] != READ)
      continue;
    if (refused) {              /* the request fails anyway */
      state[i] = FAILED;
      continue;
    }
    int r = sc_diff_copy_reserve (v->diff, chunks[i], &slot[i]);
    if (r == 1) {               /* a policy drop: no longer needed */
      state[i] = DONE;
      continue;
    }
    if (r == -ENOSPC && v->cfg.on_full == SC_ON_FULL_FAIL_WRITES) {
      refused = -ENOSPC;        /* the write fails; snapshots are kept */
      state[i] = FAILED;
      continue;
    }
    if (r < 0) {
      debug ("copy-on-write: no slot for chunk %" PRIu64 ": %s", chunks[i],
             strerror (-r));
      sc_diff_invalidate_chunk (v->diff, chunks[i],
                                r == -ENOSPC ? SC_INVALID_DIFF_FULL
                                             : SC_INVALID_COPY_WRITE, -r);
      state[i] = FAILED;
      continue;
    }
    state[i] = WRITE;
    reqs[nr++] = (struct sc_io_req) {
      .op = SC_IO_WRITE, .fd = sc_diff_fd (v->diff),
      .buf = buf + i * v->chunk_size, .len = v->chunk_size, .off = slot[i],
    };
  }
  sc_io_run (reqs, nr);

  /* Record what was copied, then make it durable in one commit. */
  uint64_t seq = 0;
  for (size_t i = 0, k = 0; i < n; i++) {
    uint64_t where = SC_COPY_ZERO;
    if (state[i] == WRITE) {
      struct sc_io_req *q = &reqs[k++];
      if (q->result < 0) {
        debug ("copy-on-write: writing chunk %" PRIu64 " to the diff area: "
               "%s", chunks[i], strerror (-q->result));
        sc_diff_slot_cancel (v->diff, slot[i]);
        if ((q->result == -ENOSPC || q->result == -EDQUOT) &&
            v->cfg.on_full == SC_ON_FULL_FAIL_WRITES) {
          refused = -ENOSPC;    /* its filesystem is full */
          continue;
        }
        sc_diff_invalidate_chunk (v->diff, chunks[i],
                                  q->result == -ENOSPC ? SC_INVALID_DIFF_FULL
                                                       : SC_INVALID_COPY_WRITE,
                                  -q->result);
        continue;
      }
      where = slot[i];
    }
    else if (state[i] != ZERO)
      continue;
    if (sc_debug_cow)
      debug ("copy-on-write: chunk %" PRIu64 " -> %s %" PRIu64, chunks[i],
             where == SC_COPY_ZERO ? "zero" : "diff-area offset",
             where == SC_COPY_ZERO ? 0 : where);
    uint32_t crc = where == SC_COPY_ZERO
                   ? 0 : crc32c (0, buf + i * v->chunk_size, v->chunk_size);
    int r = sc_diff_copy_record (v->diff, chunks[i], where, crc, &seq);
    if (r < 0) {
      if (where != SC_COPY_ZERO)
        sc_diff_slot_cancel (v->diff, where);
      sc_diff_invalidate_chunk (v->diff, chunks[i], SC_INVALID_METADATA, -r);
    }
    else if (where == SC_COPY_ZERO)
      COUNT (v, zero_chunks, 1);
    else {
      COUNT (v, chunks_copied, 1);
      COUNT (v, bytes_copied, v->chunk_size);
    }
  }
  if (seq) {
    int r = sc_diff_commit (v->diff, seq);
    if (r < 0)
      debug ("copy-on-write: committing copy records: %s (every snapshot "
             "is now invalid)", strerror (-r));
  }
  pool_put (v, buf);
  return refused;
}

/* Preserve what snapshots need of chunks [first, last] before they change.
 * The caller holds the gate shared and the range exclusively. */
static int
cow_range (struct sc_volume *v, uint64_t first, uint64_t last)
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
      int e = cow_batch (v, batch, n);
      r = r ? r : e;
      n = 0;
    }
  }
  if (n && r != -ENOSPC) {     /* after a refusal, copy no more */
    int e = cow_batch (v, batch, n);
    r = r ? r : e;
  }
  if (t0)
    note_cow (v, sc_mono_ns () - t0);
  return r;
}

/* Run `fn` on [offset, offset + count) of the live volume after the
 * copy-on-write of the chunks it touches. */
typedef int (*live_change_fn) (struct sc_volume *v, const void *buf,
                               uint32_t count, uint64_t offset,
                               unsigned flags);

static int
live_change (struct sc_volume *v, live_change_fn fn, const void *buf,
             uint32_t count, uint64_t offset, unsigned flags)
{
  int r = check_range (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  struct sc_range range;
  pthread_rwlock_rdlock (&v->gate);
  sc_rangelock_lock (&v->chunks, &range, offset >> v->chunk_shift,
                     (offset + count - 1) >> v->chunk_shift, true);
  /* Under on-full=fail-writes a copy that does not fit fails the request
   * before the origin is touched (copies already made stay valid). */
  r = cow_range (v, range.first, range.last);
  if (r == -ENOSPC)
    COUNT (v, writes_refused, 1);     /* refused by on-full=fail-writes */
  else if (r == 0)
    r = fn (v, buf, count, offset, flags);
  sc_rangelock_unlock (&v->chunks, &range);
  pthread_rwlock_unlock (&v->gate);
  return r;
}

/* ---- the live volume ---------------------------------------------- */

int
sc_volume_read (struct sc_volume *v, void *buf, uint32_t count,
                uint64_t offset)
{
  int r = check_range (v, count, offset);
  return r < 0 ? r : sc_io_pread (v->origin_fd, buf, count, offset);
}

static int
do_write (struct sc_volume *v, const void *buf, uint32_t count,
          uint64_t offset, unsigned flags)
{
  int r = sc_io_pwrite (v->origin_fd, buf, count, offset, flags & SC_FUA);
  if (r == 0)
    COUNT (v, bytes_written, count);
  return r;
}

int
sc_volume_write (struct sc_volume *v, const void *buf, uint32_t count,
                 uint64_t offset, unsigned flags)
{
  return live_change (v, do_write, buf, count, offset, flags);
}

static int
write_zeros (struct sc_volume *v, uint32_t count, uint64_t offset)
{
  static const uint8_t zeros[65536];
  while (count) {
    uint32_t n = count < sizeof zeros ? count : sizeof zeros;
    int r = sc_io_pwrite (v->origin_fd, zeros, n, offset, false);
    if (r < 0)
      return r;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
do_zero (struct sc_volume *v, const void *unused, uint32_t count,
         uint64_t offset, unsigned flags)
{
  int modes[2] = { FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };
  if (flags & SC_MAY_TRIM) {
    modes[0] = modes[1];
    modes[1] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  }
  int r = -EOPNOTSUPP;
  for (int i = 0; i < 2 && (r == -EOPNOTSUPP || r == -EINVAL ||
                            r == -ENODEV); i++)
    r = sc_io_fallocate (v->origin_fd, modes[i], offset, count);
  if (r == -EOPNOTSUPP || r == -EINVAL || r == -ENODEV)
    r = write_zeros (v, count, offset);
  if (r == 0 && (flags & SC_FUA))
    r = sc_io_fdatasync (v->origin_fd);
  return r;
}

int
sc_volume_zero (struct sc_volume *v, uint32_t count, uint64_t offset,
                unsigned flags)
{
  return live_change (v, do_zero, NULL, count, offset, flags);
}

static int
do_trim (struct sc_volume *v, const void *unused, uint32_t count,
         uint64_t offset, unsigned flags)
{
  int r = sc_io_fallocate (v->origin_fd,
                           FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                           offset, count);
  if (r == -EOPNOTSUPP || r == -ENODEV || r == -EINVAL)
    r = 0;                      /* trim is advisory */
  if (r == 0 && (flags & SC_FUA))
    r = sc_io_fdatasync (v->origin_fd);
  return r;
}

int
sc_volume_trim (struct sc_volume *v, uint32_t count, uint64_t offset,
                unsigned flags)
{
  return live_change (v, do_trim, NULL, count, offset, flags);
}

int
sc_volume_flush (struct sc_volume *v)
{
  int r = sc_io_fdatasync (v->origin_fd);
  int r2 = sc_diff_sync (v->diff);
  return r < 0 ? r : r2;
}

int
sc_volume_extents (struct sc_volume *v, uint32_t count, uint64_t offset,
                   sc_extent_cb cb, void *opaque)
{
  int r = check_range (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  uint64_t end = offset + count;
  if (!v->origin_is_file)
    return cb (opaque, offset, count, 0);
  while (offset < end) {
    off_t data = lseek (v->origin_fd, (off_t) offset, SEEK_DATA);
    if (data == -1 && errno != ENXIO)
      return cb (opaque, offset, end - offset, 0); /* unknown: data */
    uint64_t d = data == -1 ? end : (uint64_t) data;
    if (d > end)
      d = end;
    if (d > offset) {
      if ((r = cb (opaque, offset, d - offset,
                   SC_EXTENT_HOLE | SC_EXTENT_ZERO)) != 0)
        return r;
      offset = d;
      continue;
    }
    off_t hole = lseek (v->origin_fd, (off_t) offset, SEEK_HOLE);
    uint64_t h = hole == -1 ? end : (uint64_t) hole;
    if (h > end || h <= offset)
      h = end;
    if ((r = cb (opaque, offset, h - offset, 0)) != 0)
      return r;
    offset = h;
  }
  return 0;
}

/* ---- snapshots ------------------------------------------------------ */

int
sc_volume_create_begin (struct sc_volume *v)
{
  int r = 0;
  pthread_mutex_lock (&v->hold_lock);
  if (v->creating)
    r = -EBUSY;
  else
    v->creating = true;
  pthread_mutex_unlock (&v->hold_lock);
  return r;
}

void
sc_volume_create_end (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  v->creating = false;
  pthread_mutex_unlock (&v->hold_lock);
}

int
sc_volume_hold (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  bool ok = v->creating && !v->holding;
  pthread_mutex_unlock (&v->hold_lock);
  if (!ok)
    return -EINVAL;
  /* Flush before the hold, so that the flush inside it has little to
   * do.  Under a steady write load the first flush finds a lot dirty and
   * takes long, while new writes dirty more: flush again (a few times at
   * most) until one is quick, since the in-hold flush will take about as
   * long as the last one did. */
  int r;
  for (int i = 0; i < PREFLUSH_MAX; i++) {
    uint64_t t = sc_mono_ns ();
    r = sc_io_fdatasync (v->origin_fd);
    if (r < 0)
      return r;
    if (sc_mono_ns () - t < PREFLUSH_QUICK_NS)
      break;
  }

  /* New writes wait from the moment we ask for the gate (writer
   * preference), while those in flight drain: the hold starts here. */
  uint64_t start = sc_mono_ns ();
  pthread_rwlock_wrlock (&v->gate);
  uint64_t drained = sc_mono_ns ();
  r = sc_io_fdatasync (v->origin_fd);
  if (r < 0) {
    pthread_rwlock_unlock (&v->gate);
    return r;
  }
  pthread_mutex_lock (&v->hold_lock);
  v->holding = true;
  v->hold_start = start;
  v->hold_drained = drained;
  v->hold_flushed = sc_mono_ns ();
  pthread_mutex_unlock (&v->hold_lock);
  return 0;
}

int
sc_volume_hold_commit (struct sc_volume *v, const char *name,
                       const struct sc_snapshot_opts *opts,
                       struct sc_snapshot_info *out)
{
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  pthread_mutex_lock (&v->hold_lock);
  bool ok = v->holding;
  pthread_mutex_unlock (&v->hold_lock);
  if (!ok)
    return -EINVAL;
  return sc_diff_snapshot_create (v->diff, name, opts, out);
}

uint64_t
sc_volume_release (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  if (!v->holding) {
    pthread_mutex_unlock (&v->hold_lock);
    return 0;
  }
  uint64_t now = sc_mono_ns ();
  uint64_t held = now - v->hold_start;
  uint64_t drain = v->hold_drained - v->hold_start;
  uint64_t flush = v->hold_flushed - v->hold_drained;
  v->holding = false;
  v->holds[v->nholds++ % SC_HOLD_SAMPLES] = held;
  pthread_mutex_unlock (&v->hold_lock);
  pthread_rwlock_unlock (&v->gate);
  debug ("writes held for %" PRIu64 " us: drain %" PRIu64 " us, origin "
         "flush %" PRIu64 " us, commit %" PRIu64 " us", held / 1000,
         drain / 1000, flush / 1000, (held - drain - flush) / 1000);
  return held;
}

bool
sc_volume_create_busy (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  bool busy = v->creating;
  pthread_mutex_unlock (&v->hold_lock);
  return busy;
}

int
sc_volume_snapshot_create (struct sc_volume *v, const char *name,
                           const struct sc_snapshot_opts *opts,
                           struct sc_snapshot_info *out)
{
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  int r = sc_volume_create_begin (v);
  if (r < 0)
    return r;
  r = sc_volume_hold (v);
  if (r == 0) {
    r = sc_volume_hold_commit (v, name, opts, out);
    sc_volume_release (v);
  }
  sc_volume_create_end (v);
  return r;
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

void
sc_volume_hold_stats (struct sc_volume *v, struct sc_hold_stats *st)
{
  uint64_t sorted[SC_HOLD_SAMPLES];
  memset (st, 0, sizeof *st);
  pthread_mutex_lock (&v->hold_lock);
  size_t n = v->nholds < SC_HOLD_SAMPLES ? v->nholds : SC_HOLD_SAMPLES;
  st->count = v->nholds;
  if (n)
    st->last_ns = v->holds[(v->nholds - 1) % SC_HOLD_SAMPLES];
  memcpy (sorted, v->holds, n * sizeof *sorted);
  pthread_mutex_unlock (&v->hold_lock);
  if (n == 0)
    return;
  qsort (sorted, n, sizeof *sorted, cmp_u64);
  st->p50_ns = sorted[(n - 1) / 2];
  st->p99_ns = sorted[(n * 99 + 99) / 100 - 1];
  st->max_ns = sorted[n - 1];
}

int
sc_volume_snapshot_delete (struct sc_volume *v, const char *name)
{
  return sc_diff_snapshot_delete (v->diff, name);
}

int
sc_volume_snapshot_read (struct sc_volume *v, uint64_t id, void *buf,
                         uint32_t count, uint64_t offset)
{
  struct sc_snapshot_info info;
  int r = check_range (v, count, offset);
  if (r < 0 || count == 0) {
    if (r == 0)
      r = sc_diff_snapshot_check (v->diff, id);
    return r;
  }

  /* Pin the snapshot only once the range is ours: a policy drop may wait
   * for the readers of a dropped snapshot (sc_diff_copy_reserve), so a
   * pinned reader must never wait for a writer's range. */
  struct sc_range range;
  sc_rangelock_lock (&v->chunks, &range, offset >> v->chunk_shift,
                     (offset + count - 1) >> v->chunk_shift, false);
  r = sc_diff_snapshot_get (v->diff, id, &info);
  if (r < 0) {
    sc_rangelock_unlock (&v->chunks, &range);
    return r;
  }

  /* One request per run of origin chunks, one per diff-area piece. */
  struct sc_io_req reqs[IO_BATCH];
  size_t nr = 0;
  uint8_t *p = buf;
  uint64_t end = offset + count;
  while (offset < end && r == 0) {
    uint64_t chunk = offset >> v->chunk_shift;
    uint64_t in_chunk = offset & (v->chunk_size - 1);
    uint64_t len = v->chunk_size - in_chunk;
    if (len > end - offset)
      len = end - offset;
    uint64_t slot_off = 0;
    enum sc_where where = sc_diff_resolve (v->diff, info.epoch, chunk,
                                           &slot_off);
    if (where == SC_WHERE_ZERO)
      memset (p, 0, len);
    else {
      int fd = where == SC_WHERE_ORIGIN ? v->origin_fd : sc_diff_fd (v->diff);
      uint64_t off = where == SC_WHERE_ORIGIN ? offset : slot_off + in_chunk;
      struct sc_io_req *last = nr ? &reqs[nr - 1] : NULL;
      if (last && last->fd == fd && last->off + last->len == off &&
          (uint8_t *) last->buf + last->len == p)
        last->len += len;
      else {
        if (nr == IO_BATCH) {
          r = sc_io_run (reqs, nr);
          nr = 0;
        }
        reqs[nr++] = (struct sc_io_req) {
          .op = SC_IO_READ, .fd = fd, .buf = p, .len = len, .off = off,
        };
      }
    }
    p += len;
    offset += len;
  }
  if (r == 0 && nr)
    r = sc_io_run (reqs, nr);

  sc_rangelock_unlock (&v->chunks, &range);
  sc_diff_snapshot_put (v->diff, id);
  return r;
}

/* ---- space and statistics ------------------------------------------- */

/* Two 60-second windows: the fill rate is measured from the start of the
 * older one, so it covers the last one to two minutes.  hold_lock held. */
static void
rotate_windows (struct sc_volume *v, uint64_t now, uint64_t bytes)
{
  while (now - v->win_ns[1] >= 60000000000ull) {
    v->win_ns[0] = v->win_ns[1];
    v->win_bytes[0] = v->win_bytes[1];
    v->win_ns[1] = now - v->win_ns[1] >= 120000000000ull
                   ? now : v->win_ns[1] + 60000000000ull;
    v->win_bytes[1] = bytes;
  }
}

static void
note_cow (struct sc_volume *v, uint64_t ns)
{
  uint64_t now = sc_mono_ns (), bytes = __atomic_load_n (&v->bytes_copied,
                                                      __ATOMIC_RELAXED);
  pthread_mutex_lock (&v->hold_lock);
  v->cows[v->ncows++ % SC_COW_SAMPLES] = ns;
  rotate_windows (v, now, bytes);
  pthread_mutex_unlock (&v->hold_lock);
}

void
sc_volume_stats (struct sc_volume *v, struct sc_volume_stats *st)
{
  static uint64_t sorted[SC_COW_SAMPLES];
  static pthread_mutex_t sorted_lock = PTHREAD_MUTEX_INITIALIZER;
  memset (st, 0, sizeof *st);
  st->chunks_copied = __atomic_load_n (&v->chunks_copied, __ATOMIC_RELAXED);
  st->bytes_copied = __atomic_load_n (&v->bytes_copied, __ATOMIC_RELAXED);
  st->zero_chunks = __atomic_load_n (&v->zero_chunks, __ATOMIC_RELAXED);
  st->bytes_written = __atomic_load_n (&v->bytes_written, __ATOMIC_RELAXED);
  st->writes_refused = __atomic_load_n (&v->writes_refused,
                                        __ATOMIC_RELAXED);
  if (st->bytes_written)
    st->write_amplification = (double) (st->bytes_written + st->bytes_copied)
                              / (double) st->bytes_written;
  uint64_t now = sc_mono_ns ();
  st->uptime_ns = now - v->start_ns;

  pthread_mutex_lock (&sorted_lock);
  pthread_mutex_lock (&v->hold_lock);
  rotate_windows (v, now, st->bytes_copied);
  size_t n = v->ncows < SC_COW_SAMPLES ? v->ncows : SC_COW_SAMPLES;
  st->cow_count = v->ncows;
  memcpy (sorted, v->cows, n * sizeof *sorted);
  uint64_t w_ns = v->win_ns[0], w_bytes = v->win_bytes[0];
  pthread_mutex_unlock (&v->hold_lock);
  if (n) {
    qsort (sorted, n, sizeof *sorted, cmp_u64);
    st->cow_p50_ns = sorted[(n - 1) / 2];
    st->cow_p99_ns = sorted[(n * 99 + 99) / 100 - 1];
  }
  pthread_mutex_unlock (&sorted_lock);

  struct sc_diff_stats ds;
  sc_diff_stats (v->diff, &ds);
  st->diff_used = ds.used_bytes;
  st->diff_limit = ds.max_bytes;
  st->dropped = ds.dropped;
  st->invalidated = ds.invalidations;
  if (ds.max_bytes)
    st->diff_free = ds.max_bytes > ds.used_bytes
                    ? ds.max_bytes - ds.used_bytes : 0;
  else {
    struct statvfs fs;
    if (fstatvfs (sc_diff_fd (v->diff), &fs) == 0)
      st->diff_free = (uint64_t) fs.f_bavail * fs.f_frsize;
  }
  double secs = (double) (now - w_ns) / 1e9;
  if (secs >= 1)
    st->fill_rate = (double) (st->bytes_copied - w_bytes) / secs;
  st->seconds_to_full = st->fill_rate > 0
                        ? (int64_t) ((double) st->diff_free / st->fill_rate)
                        : -1;
}

int
sc_volume_snapshot_discard (struct sc_volume *v, uint64_t id, uint32_t count,
                            uint64_t offset)
{
  int r = check_range (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  uint64_t first = (offset + v->chunk_size - 1) >> v->chunk_shift;
  uint64_t end = offset + count;
  uint64_t last_end = end == v->size ? (end + v->chunk_size - 1)
                                       >> v->chunk_shift
                                     : end >> v->chunk_shift;
  if (last_end <= first)
    return 0;                   /* no whole chunk */
  /* Lock out live writes to the range, so none decides on a copy while
   * the needs of this snapshot change. */
  struct sc_range range;
  sc_rangelock_lock (&v->chunks, &range, first, last_end - 1, true);
  r = sc_diff_snapshot_discard (v->diff, id, first, last_end - 1);
  sc_rangelock_unlock (&v->chunks, &range);
  return r;
}

int
sc_volume_resize (struct sc_volume *v, uint64_t max_bytes, bool force,
                  uint64_t *dropped)
{
  return sc_diff_set_max (v->diff, max_bytes, force ? SC_MAX_FORCE : 0,
                          dropped);
}

const struct sc_volume_config *
sc_volume_config (const struct sc_volume *v)
{
  return &v->cfg;
}
