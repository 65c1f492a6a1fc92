/* shadowcopy: the volume's insides, shared by engine/volume*.c only.
 *
 *   volume.c         open and close, the live volume, snapshot reads
 *   volume-cow.c     copy-on-write: bounce buffers and copy batches
 *   volume-create.c  snapshot creation (the creation slot, write holds),
 *                    deletion and lookups
 *   volume-extents.c the allocation map of a snapshot (block status)
 *   volume-space.c   space limits, discards and statistics
 *   writeback.c      the write-back queue: writes acknowledged before
 *                    their copy-on-write is durable
 *   volume-watch.c   the origin is watched: its stamp at open and close
 *   scrub.c          the background verification of every copy
 *
 * Everyone else uses engine/volume.h.
 */
#ifndef SHADOWCOPY_ENGINE_VOLUME_IMPL_H
#define SHADOWCOPY_ENGINE_VOLUME_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cow/io.h"
#include "engine/counter.h"
#include "engine/origin.h"
#include "engine/gate.h"
#include "engine/rangelock.h"
#include "engine/volume.h"

#define POOL_BUFFERS 16
#define BATCH_BYTES (1u << 20)
#define IO_BATCH 64

#define debug(...) do { if (sc_debug) sc_debug (__VA_ARGS__); } while (0)
#define COUNT(v, field, n) \
  __atomic_fetch_add (&(v)->field, (n), __ATOMIC_RELAXED)

/* Lock order, outermost first (see the notes at the top of volume.c):
 *
 *   1. gate         a live change is inside it for its whole life (parked
 *                   while it waits for its copies' commit), a write hold
 *                   closes it (engine/gate.h)
 *   2. chunks       the range lock of the chunks a request touches
 *   3. the diff area's own mutex (inside every sc_diff_* call, which
 *                   drops it while it waits for I/O)
 *
 * A snapshot is pinned (sc_diff_snapshot_get) only once its range is
 * locked, never before: a live change holding its range may wait in
 * sc_diff_copy_reserve for the pinned readers of a dropped snapshot, so
 * a pinned reader must never wait for a range.  pool_lock and hold_lock
 * are leaves: nothing is locked while either is held (sc_volume_stats
 * takes its own sample lock just outside hold_lock). */
struct sc_volume {
  struct sc_origin *origin;     /* NULL: opened offline (no live I/O) */
  uint64_t size;
  uint32_t chunk_size;
  unsigned chunk_shift;
  struct sc_diff *diff;

  struct sc_gate gate;          /* lock order 1 (engine/gate.h) */
  struct sc_rangelock chunks;   /* lock order 2 */
  struct sc_rangelock clone_chunks;     /* clone I/O (volume-clone.c):
                                           before `chunks` */

  /* Bounce buffer pool for old data (volume-cow.c); a leaf lock. */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;
  void *pool[POOL_BUFFERS];
  size_t pool_free;             /* buffers in pool[0 .. pool_free) */
  size_t pool_made;
  size_t batch_chunks;          /* chunks per bounce buffer */

  /* hold_lock, a leaf lock, protects everything from here to the end
   * but the atomic counters. */
  pthread_mutex_t hold_lock;
  /* Write-hold durations of snapshot creations (a ring). */
  uint64_t holds[SC_HOLD_SAMPLES];
  uint64_t nholds;

  /* Counters (atomics) and copy-on-write latencies (a ring). */
  struct sc_volume_config cfg;
  uint64_t chunks_copied, bytes_copied, zero_chunks;
  uint64_t writes_refused;
  struct sc_counter bytes_written;      /* every write adds to it */
  uint64_t cows[SC_COW_SAMPLES];
  uint64_t ncows;
  uint64_t start_ns;
  uint64_t win_ns[2], win_bytes[2];     /* fill-rate windows */
  /* Snapshot creation (volume-create.c). */
  bool creating;                /* the creation slot is taken (also read
                                   without the lock: atomic) */
  bool holding;                 /* a hold has the gate */
  uint64_t hold_start;          /* monotonic ns when the hold began */
  uint64_t hold_drained;        /* ... when the writes in flight had drained */
  uint64_t hold_flush_ns;       /* origin flushes under it (revert, plain
                                   commit) */
  uint64_t hold_failures;       /* sc_origin_failures when the hold began */

  /* The origin is watched (volume-watch.c).  watch_lock, a leaf lock
   * but for the diff area's mutex inside it, orders the first write's
   * superblock update before any origin write. */
  pthread_mutex_t watch_lock;
  bool origin_written;          /* atomic: the diff area knows we write */
  struct sc_scrub *scrub;       /* scrub.c; its own leaf lock */
  struct sc_revert *revert;     /* volume-revert.c; its own leaf lock */
  /* The periodic retry of a failed diff area, and the diff area's
   * checkpoint runner (volume-retry.c); its lock is a leaf (the diff
   * area's wake takes it under the diff area's lock). */
  pthread_mutex_t retry_lock;
  pthread_cond_t retry_cond;
  pthread_t retry;
  bool retry_started, retry_stop;
  struct sc_writeback *wb;      /* writeback.c; NULL offline or when off */
  int wb_lost;                  /* atomic: with no queue, the error of a
                                   write a killed server lost, for the
                                   next flush (writeback.c) */
  char *wb_lost_log;            /* and the log that keeps it on file */
  bool wb_lost_returned;        /* atomic: the flush that reported it has
                                   returned (sc_vol_wb_reported) */
};

/* The scrub's state (scrub.c): made with the volume; freeing it stops a
 * scrub that runs and waits for its thread. */
struct sc_scrub *sc_vol_scrub_new (void);
void sc_vol_scrub_free (struct sc_scrub *s);

/* 0 if [offset, offset + count) may be read or changed: -ENODEV offline
 * (no origin), -EINVAL outside the volume. */
/* The origin's flush under a hold (volume-create.c): before anything
 * recorded under it becomes durable. */
int sc_vol_hold_flush (struct sc_volume *v);
int sc_vol_check_io (const struct sc_volume *v, uint64_t count,
                     uint64_t offset);

/* Preserve what snapshots need of chunks [first, last] before they
 * change (volume-cow.c).  The caller is inside the gate and holds the
 * range exclusively.  0, or -ENOSPC if on-full=fail-writes refuses the change
 * (the origin must then not be touched). */
int sc_vol_cow_range (struct sc_volume *v, uint64_t first, uint64_t last);
/* The same without its commits: the records are appended, *seq is raised
 * to the last one, and the caller must sc_diff_commit (*seq) before the
 * origin is written (the write-back queue's batches, writeback.c). */
int sc_vol_cow_range_deferred (struct sc_volume *v, uint64_t first,
                               uint64_t last, uint64_t *seq);
/* The same for nr ranges at once (disjoint, each held exclusively): the
 * chunks of all of them share copy batches; err[i] is range i's result. */
void sc_vol_cow_ranges_deferred (struct sc_volume *v, size_t nr,
                                 const uint64_t *first, const uint64_t *last,
                                 int *err, uint64_t *seq);
/* True if a chunk of [first, last] needs a copy now (the caller is
 * inside the gate, the range held exclusively). */
bool sc_vol_cow_needed (struct sc_volume *v, uint64_t first, uint64_t last);
void sc_vol_pool_free (struct sc_volume *v);

/* The revert's state (volume-revert.c): made with the volume; freeing
 * it stops the background copy and waits for its thread. */
struct sc_revert *sc_vol_revert_new (void);
void sc_vol_revert_free (struct sc_revert *rv);
/* At a server's open: resume the background copy of a revert. */
void sc_vol_revert_resume_at_open (struct sc_volume *v);
/* Complete the pending chunks of [first, last] (the caller is inside
 * the gate, the range held exclusively): 0 or a negative errno (then
 * the request must not go on). */
int sc_vol_revert_complete (struct sc_volume *v, uint64_t first,
                            uint64_t last);
/* A live read while a revert runs (volume.c calls it when one does). */
int sc_vol_revert_read (struct sc_volume *v, void *buf, uint32_t count,
                        uint64_t offset);
/* Read [offset, end) of a pinned snapshot at `epoch` (volume.c). */
int sc_vol_read_pinned (struct sc_volume *v, uint32_t epoch, uint8_t *p,
                        uint64_t offset, uint64_t end);

/* The origin is watched (volume-watch.c): at open, before any write,
 * its stamp is compared with the one recorded at the last stop (changes
 * made behind shadowcopy's back invalidate every snapshot unless
 * cfg->origin_changed_accept); the diff area is told before the first
 * write of the origin; at close, after the last write and flush, the
 * stamp is taken again for the next start. */
int sc_vol_watch_open (struct sc_volume *v, char *err, size_t errlen);
void sc_vol_watch_write (struct sc_volume *v);
void sc_vol_watch_close (struct sc_volume *v);

/* A copy-on-write of `ns` ns ended (volume-space.c: its statistics). */
void sc_vol_note_cow (struct sc_volume *v, uint64_t ns);

/* The write-back queue (writeback.c).  A live write that needs a copy
 * and may wait (no FUA, at most SC_WB_MAX_WRITE bytes, no revert, not
 * on-full=fail-writes) is acknowledged once its data is queued: the
 * queue's thread copies the old content of many queued writes, commits
 * their records with one fdatasync, then writes the new data to the
 * origin.  Until then the write holds its chunk range exclusively (other
 * writes and snapshot readers of those chunks wait for it), live reads
 * see its data (sc_vol_wb_overlay), and flushes and write holds drain the
 * queue first.  The queue is bounded (SC_WB_MAX_ITEMS writes,
 * SC_WB_MAX_BYTES of data): a write that finds it full copies in its own
 * request, as without the queue (invariant 7).  A
 * queued write that fails (the copy is refused, the origin write fails)
 * is reported by the next flush, also the first flush of the next server
 * if this one is killed or stopped before one (writeback-log.c). */
#define SC_WB_MAX_WRITE (64u << 10)
#define SC_WB_MAX_ITEMS 64
#define SC_WB_MAX_BYTES (4u << 20)
struct sc_writeback;
/* At a server's open, once the origin's stamp is checked: write the
 * queued writes a killed server left in the disk's log
 * (sc_vol_wb_recover), then, with write-back on, make the queue and a
 * new log (the queue's thread starts with the first queued write, after
 * nbdkit forked).  `origin_path` is the disk as configured, `diff_path`
 * the diff area (its path goes in the log).  0 (a log that cannot be
 * made turns write-back off, logged), or a negative errno with a message
 * in err. */
int sc_vol_wb_start (struct sc_volume *v, const char *origin_path,
                     const char *diff_path, char *err, size_t errlen);
/* The write-back log of the volume's disk (writeback-log.c): its key (32
 * bytes: the disk's identity) and its path (malloc'd), in
 * $SHADOWCOPY_WBLOG_DIR or /dev/shm/shadowcopy-EUID, a directory that
 * must be this user's and writable by no one else.  0, or a negative
 * errno with a message in why (-ENOMEM, or the directory's fault). */
int sc_vol_wb_log_where (struct sc_volume *v, const char *origin_path,
                         uint8_t key[32], char **path, char *why,
                         size_t whylen);
/* Write the queued writes of the log at `path` left by a server of the
 * disk `key` killed in this boot (through the normal write path, in
 * order), flush them, and delete the log; drop a log of an earlier boot,
 * one older than a change of the disk found at open, or one of another
 * session than the diff area's last (cow/session.c).  Call it before
 * this session's own id is recorded; `here` is the diff area's absolute
 * path (NULL: unknown).  0 (*written: how many writes it
 * wrote; *lost: the error of a write the killed server acknowledged and
 * then lost, which no flush reported, or 0; if not 0 the log is not
 * deleted: the caller replaces it with its own, or keeps it until a
 * flush has reported the error); 1 if the
 * file is another disk's (left alone); or a negative errno with a
 * message in err (a log that does not check out, whose writes fail,
 * that is not this user's alone, or that this diff area cannot judge, is
 * kept). */
int sc_vol_wb_recover (struct sc_volume *v, const char *path,
                       const uint8_t key[32], const char *here,
                       size_t *written, int *lost, char *err,
                       size_t errlen);
/* Drain the queue and stop its thread (at close). */
void sc_vol_wb_stop (struct sc_volume *v);
/* Can the write of `count` bytes with `flags` be queued? */
bool sc_vol_wb_eligible (struct sc_volume *v, uint32_t count,
                         unsigned flags);
/* Queue the write (the caller is inside the gate, holds no range): 0 once
 * it is queued and may be acknowledged, or -EAGAIN if it must run now
 * (the queue is full, no memory, the queue stops). */
int sc_vol_wb_queue (struct sc_volume *v, const void *buf, uint32_t count,
                     uint64_t offset);
/* Wait until every write queued before the call is on the origin; the
 * seq of the newest of them (0 with no queue). */
uint64_t sc_vol_wb_drain (struct sc_volume *v);
/* The error of a queued write up to seq `target` that failed and was not
 * reported yet, or 0 (see writeback.c).  A flush that gets one calls
 * sc_vol_wb_reported when it returns it; every flush calls
 * sc_vol_wb_settle first: the log keeps a failure until the flush that
 * reported it has returned. */
int sc_vol_wb_take_error (struct sc_volume *v, uint64_t target);
void sc_vol_wb_reported (struct sc_volume *v);
void sc_vol_wb_settle (struct sc_volume *v);
/* Put the data of queued writes that overlap [offset, offset + count)
 * over buf, which the caller reads from the origin AFTER this call
 * returned (sc_vol_wb_overlay_begin), then applies
 * (sc_vol_wb_overlay_end). */
struct sc_wb_overlay;
int sc_vol_wb_overlay_begin (struct sc_volume *v, uint32_t count,
                             uint64_t offset, struct sc_wb_overlay **out);
void sc_vol_wb_overlay_end (struct sc_wb_overlay *o, void *buf);

/* The retry interval in ms; stop the retry thread (before closing). */
uint32_t sc_vol_retry_ms (const struct sc_volume *v);
void sc_vol_retry_stop (struct sc_volume *v);

/* The median and 99th percentile of n > 0 samples, which it sorts. */
void sc_vol_percentiles (uint64_t *samples, size_t n, uint64_t *p50,
                         uint64_t *p99);

#endif
