/* shadowcopy: the volume, an origin disk with copy-on-write snapshots.
 *
 * The engine knows nothing of NBD: it serves byte ranges of the live
 * volume (read-write) and of snapshots (read-only), and creates and deletes
 * snapshots.  Nothing above the engine reaches into the diff area (cow/)
 * or the origin (engine/origin.h) except through these functions.
 *
 * Threads: every function is safe to call from many threads at once,
 * except sc_volume_close (alone, last) and hold/release (see there).
 * Inside, a live change takes the write gate (shared), then the range
 * lock of its chunks, then the diff area's mutex; a snapshot read locks
 * its range before it pins the snapshot (the full rule is at struct
 * sc_volume in engine/volume-impl.h).
 *
 * Errors: 0 or a negative errno.  Functions that take `err` also write one
 * line for the user naming the path, snapshot or offset concerned.
 */
#ifndef SHADOWCOPY_ENGINE_VOLUME_H
#define SHADOWCOPY_ENGINE_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"
#include "engine/origin.h"      /* SC_FUA, SC_MAY_TRIM, SC_EXTENT_*,
                                   sc_extent_cb: passed through as they are */

struct sc_volume;

/* What the volume and its control server do, as a comma list (what
 * `nbdkit shadowcopy --dump-plugin` reports as shadowcopy_features):
 * snapshots, checkpoints (data-less points for changed-block tracking),
 * writable clones, revert of the live volume to a snapshot, changed-block
 * tracking between points (DIFF), snapshot creation in steps with held
 * writes (BEGIN/HOLD/COMMIT), scrubbing, and space policies (diff-max,
 * max-snapshots, RESIZE).  Add a name here with a feature. */
#define SC_VOLUME_FEATURES \
  "snapshots,checkpoints,clones,revert,changed-blocks,staged-create," \
  "scrub,space-policy"

struct sc_volume_config {
  const char *origin_path;      /* existing file or block device, or an
                                   NBD URI (sc_origin_is_nbd_uri) */
  const char *diff_path;        /* diff-area file, created when missing */
  uint32_t chunk_size;          /* 0: SC_CHUNK_SIZE_DEFAULT (new diff areas) */
  bool volatile_durability;     /* durability=volatile (see SC_DIFF_VOLATILE) */
  bool write_back;              /* a write without FUA that must copy may be
                                   acknowledged before its copy is made
                                   (the write-back queue; write-back=on) */
  /* Space management (issue 5; all zero: the defaults). */
  bool diff_max_set;            /* diff-max= given: overrides the stored */
  uint64_t diff_max;            /* bytes, 0: unbounded */
  uint32_t diff_max_percent;    /* if non-zero: diff_max is this % of the
                                   volume size */
  enum sc_on_full on_full;
  uint32_t max_snapshots;       /* 0: SC_MAX_SNAPSHOTS_DEFAULT */
  uint32_t max_checkpoints;     /* 0: SC_MAX_CHECKPOINTS_DEFAULT */
  /* The diff area's page cache of its copy map and checksums, in bytes
   * (index-cache=; 0: SC_DIFF_CACHE_DEFAULT; else from SC_DIFF_CACHE_MIN
   * to SC_DIFF_CACHE_MAX, or the open fails with -EINVAL). */
  uint64_t index_cache;
  /* origin-changed=accept: a change of the origin made while no server
   * ran is logged, and the snapshots are kept valid (dangerous). */
  bool origin_changed_accept;
  uint32_t retry_ms;            /* a failed diff area is retried this
                                   often (0: every 30 s) */
  bool revert_no_resume;        /* a recorded revert stays paused at open
                                   (sc_volume_revert_resume starts it):
                                   recovery checks that must see the
                                   origin as the crash left it */
  /* An NBD origin's connection (NULL: the defaults of origin.h). */
  const struct sc_origin_nbd_opts *nbd;
  /* origin-check=off: the origin's stamp is neither taken nor compared
   * at open (DANGER: a change made while no server ran goes unseen). */
  bool origin_check_off;
};

int sc_volume_open (const struct sc_volume_config *cfg,
                    struct sc_volume **out, char *err, size_t errlen);

/* A volume on the diff area alone, for the offline CLI when no server
 * runs: snapshots can be listed, looked up and deleted, the limit
 * resized; it has no origin, so live I/O, snapshot reads and creations
 * fail with -ENODEV.  `rdonly`: a shared lock, and nothing is written
 * (deletions and resizing fail with -EROFS).  Like any open it fails
 * with -EWOULDBLOCK at once while a server holds the diff area. */
int sc_volume_open_offline (const char *diff_path, bool rdonly,
                            struct sc_volume **out, char *err,
                            size_t errlen);
bool sc_volume_offline (const struct sc_volume *v);

/* Flush the origin, close the diff area (its final checkpoint: its error
 * is returned, and the volume is closed anyway) and free everything. */
int sc_volume_close (struct sc_volume *v);

uint64_t sc_volume_size (const struct sc_volume *v);
uint32_t sc_volume_chunk_size (const struct sc_volume *v);

/* White-box tests only (tests/unit-*.c, tests/fuzz/): the diff area under
 * the volume.  The plugin, the control server and the CLI never use it. */
struct sc_diff *sc_volume_diff (struct sc_volume *v);

/* The live volume.  Writes, zeroes and trims first copy the old content of
 * every chunk a valid snapshot still needs.  If that copy fails, those
 * snapshots are invalidated and the live request still goes ahead. */
int sc_volume_read (struct sc_volume *v, void *buf, uint32_t count,
                    uint64_t offset);
int sc_volume_write (struct sc_volume *v, const void *buf, uint32_t count,
                     uint64_t offset, unsigned flags);
int sc_volume_zero (struct sc_volume *v, uint32_t count, uint64_t offset,
                    unsigned flags);
int sc_volume_trim (struct sc_volume *v, uint32_t count, uint64_t offset,
                    unsigned flags);
int sc_volume_flush (struct sc_volume *v);

/* Allocation map of the live volume, as sc_origin_extents. */
int sc_volume_extents (struct sc_volume *v, uint32_t count, uint64_t offset,
                       sc_extent_cb cb, void *opaque);

/* Snapshots.  create drains and holds live writes for its O(1) commit:
 * it is begin + hold + hold_commit + release + end in one call, so it
 * fails with -EBUSY while another creation is in progress. */
int sc_volume_snapshot_create (struct sc_volume *v, const char *name,
                               const struct sc_snapshot_opts *opts,
                               struct sc_snapshot_info *out);

/* Creation in steps, for requesters that run writers around the hold.
 *
 * create_begin takes the volume's creation slot: -EBUSY if another
 * creation (stepwise or one-shot) has it.  create_end gives it back.
 *
 * hold (only inside begin/end, -EINVAL otherwise or when already held)
 * flushes, drains the live writes in flight and holds new ones until
 * release.  hold_commit records a snapshot at that point in time (same
 * errors as sc_diff_snapshot_create; -EINVAL without a hold); a volume
 * may commit more than once under one hold.  release lets the writes go
 * and returns how long they were held (ns; 0 if there was no hold).
 *
 * The caller bounds the hold: the engine has no timer of its own.  The
 * control server's connection threads do this, calling hold and release
 * from one thread. */
int sc_volume_create_begin (struct sc_volume *v);
void sc_volume_create_end (struct sc_volume *v);
bool sc_volume_create_busy (struct sc_volume *v);
int sc_volume_hold (struct sc_volume *v);
int sc_volume_hold_commit (struct sc_volume *v, const char *name,
                           const struct sc_snapshot_opts *opts,
                           struct sc_snapshot_info *out);
uint64_t sc_volume_release (struct sc_volume *v);
/* hold_commit and release in one, the commit's wait for the disk after
 * the release: the snapshot is recorded under the hold, the writes go,
 * then the record is made durable.  0 when the snapshot is durable.
 * *held_ns: how long the writes were held, or 0 when nothing was
 * recorded (then the writes are still held, as after a failed
 * hold_commit).  After a release, a failed commit fails the diff area
 * (every snapshot invalid), as a failed hold_commit does. */
int sc_volume_hold_commit_release (struct sc_volume *v, const char *name,
                                   const struct sc_snapshot_opts *opts,
                                   struct sc_snapshot_info *out,
                                   uint64_t *held_ns);

/* Delete, list (in creation order, *out malloc'd) and look up (by name,
 * O(1), used_bytes left 0) snapshots: as sc_diff_snapshot_delete, _list
 * and _lookup. */
int sc_volume_snapshot_delete (struct sc_volume *v, const char *name);
/* Delete snapshot name only if its UUID is uuid (else -ESTALE): as
 * sc_diff_snapshot_delete_uuid. */
int sc_volume_snapshot_delete_uuid (struct sc_volume *v, const char *name,
                                    const uint8_t uuid[16]);
/* Deletes between hold and release free their copies in one pass at the
 * release: as sc_diff_gc_hold and sc_diff_gc_release. */
void sc_volume_gc_hold (struct sc_volume *v);
int sc_volume_gc_release (struct sc_volume *v);
int sc_volume_snapshot_list (struct sc_volume *v,
                             struct sc_snapshot_info **out, size_t *n);
int sc_volume_snapshot_lookup (struct sc_volume *v, const char *name,
                               struct sc_snapshot_info *out);

/* Checkpoints and changed-block tracking, as sc_diff_snapshot_keep_
 * checkpoint and sc_diff_changes (cow/diffarea.h): keep snapshot `name`
 * as a data-less checkpoint; the changed chunks of `from_id` to `to_id`
 * (or SC_DIFF_LIVE) from chunk `start` on, one page of at most `max`
 * runs.  Both work offline too (keep_checkpoint read-write only); but
 * offline, after a kill of a server whose write-back log holds writes
 * (sc_volume_live_pending), the changes to the live volume are not
 * known: -EAGAIN. */
int sc_volume_snapshot_keep_checkpoint (struct sc_volume *v,
                                        const char *name);
int sc_volume_changes (struct sc_volume *v, uint64_t from_id, uint64_t to_id,
                       uint64_t start, struct sc_chunk_range *out,
                       size_t max, size_t *n, uint64_t *next);
/* Offline: did the last server stop with writes in its write-back log
 * (killed), which the diff area and the origin do not show until a
 * server starts and writes them? */
bool sc_volume_live_pending (struct sc_volume *v);

/* How long snapshot creation held live writes, over the last
 * SC_HOLD_SAMPLES creations (count covers all of them). */
#define SC_HOLD_SAMPLES 1024
struct sc_hold_stats {
  uint64_t count;
  uint64_t last_ns, p50_ns, p99_ns, max_ns;
};
void sc_volume_hold_stats (struct sc_volume *v, struct sc_hold_stats *st);

/* Read from snapshot `id` (sc_snapshot_info.id).  -ENOENT once it has
 * been deleted, -EIO once it is invalid. */
int sc_volume_snapshot_read (struct sc_volume *v, uint64_t id, void *buf,
                             uint32_t count, uint64_t offset);

/* Allocation map of snapshot `id` (engine/volume-extents.c), as
 * sc_volume_extents: from `offset` on, ascending and contiguous, adjacent
 * extents of one type merged.  A chunk kept as a zero copy (or given
 * back by its reader) is SC_EXTENT_HOLE | SC_EXTENT_ZERO; a copy in the
 * diff area is data; a chunk the snapshot still shares with the origin
 * is what the origin says there (byte ranges within the chunk).  The
 * answer may end before offset + count (the work of one call is
 * bounded, and with `one` it ends after the first extent), but it always
 * covers at least one byte from `offset`.  cb returns 0 or a negative
 * value, which stops the map and is returned; it runs with the range
 * locked, so it must not call into the volume.  Errors as
 * sc_volume_snapshot_read: -ENOENT once deleted, -EIO once invalid. */
int sc_volume_snapshot_extents (struct sc_volume *v, uint64_t id,
                                uint32_t count, uint64_t offset, bool one,
                                sc_extent_cb cb, void *opaque);

/* ---- space and statistics (engine/volume-space.c) ---------------- */

/* Snapshot reader's discard (discard-snapshots=on): the whole chunks of
 * [offset, offset + count) are no longer needed by snapshot `id`; partial
 * chunks at the ends are ignored (a discard is advisory). */
/* -EBUSY: the snapshot is protected (sc_volume_snapshot_protected). */
int sc_volume_snapshot_discard (struct sc_volume *v, uint64_t id,
                                uint32_t count, uint64_t offset);
/* Is snapshot `id` protected (SC_PROTECTED_REVERT: the running revert's
 * target; SC_PROTECTED_CLONES: it has clones), or 0? */
int sc_volume_snapshot_protected (struct sc_volume *v, uint64_t id);

/* The configuration the volume was opened with (paths not kept; all
 * zero offline). */
const struct sc_volume_config *sc_volume_config (const struct sc_volume *v);

/* The diff area's figures and its kept history of policy drops (as
 * sc_diff_stats and sc_diff_drops). */
void sc_volume_diff_stats (struct sc_volume *v, struct sc_diff_stats *st);
int sc_volume_drops (struct sc_volume *v, struct sc_drop_info **out,
                     size_t *n, uint64_t *total);

/* The diff area's health: failed (every snapshot invalidated, no new
 * one) or not, what failed and the retries (as sc_diff_health).  The
 * live volume is served either way. */
void sc_volume_diff_health (struct sc_volume *v, struct sc_diff_health *h);
/* Retry a failed diff area now (as sc_diff_recover): 0 if healthy. */
int sc_volume_diff_recover (struct sc_volume *v);
/* Start retrying a failed diff area every retry_ms in a thread of the
 * volume's (call after fork; stopped by sc_volume_close).  The same
 * thread writes the journal checkpoints that commits find due
 * (sc_diff_set_ckpt_runner); until it starts, and after it stops, the
 * commits write them.  Offline volumes have none. */
int sc_volume_start_retry (struct sc_volume *v);

/* resize --max: see sc_diff_set_max. */
int sc_volume_resize (struct sc_volume *v, uint64_t max_bytes, bool force,
                      uint64_t *dropped);

/* The engine's own counters since start-up. */
#define SC_COW_SAMPLES 4096
struct sc_volume_stats {
  uint64_t chunks_copied;       /* data copies written to the diff area */
  uint64_t bytes_copied;
  uint64_t zero_chunks;         /* zero copies recorded (no data) */
  uint64_t bytes_written;       /* by live writes (not zeroes, trims) */
  uint64_t writes_refused;      /* ENOSPC under on-full=fail-writes */
  double write_amplification;   /* (written + copied) / written; 0 if none */
  uint64_t cow_count;           /* writes that copied something */
  uint64_t cow_p50_ns, cow_p99_ns;  /* their copy time, last samples */
  uint64_t diff_used, diff_free, diff_limit;    /* bytes; limit 0: none */
  uint64_t dropped;             /* snapshots deleted by policy, ever */
  uint64_t invalidated;         /* snapshots invalidated since start-up */
  uint64_t checksum_errors;     /* copied data that failed its checksum
                                   since start-up (reads and scrubs) */
  uint64_t damaged_freed;       /* damaged copies freed since start-up */
  /* The diff area's page cache (index-cache=): its budget in bytes and
   * its figures since start-up (cow/pagecache.h). */
  uint64_t index_cache_budget;
  struct sc_pc_stats index_cache;
  double fill_rate;             /* diff-area growth, bytes/s, recent */
  int64_t seconds_to_full;      /* -1: not growing */
  uint64_t uptime_ns;
};
void sc_volume_stats (struct sc_volume *v, struct sc_volume_stats *st);

/* ---- the scrub (engine/scrub.c) ---------------------------------------
 *
 * Every copy in the diff area read back and verified in a background
 * thread while the volume serves; damage is handled as on a snapshot
 * read (cow/diffarea.h, sc_diff_copy_read).  One scrub at a time; it
 * ends with the volume. */
#define SC_SCRUB_RATE_DEFAULT (64ull << 20)     /* bytes per second */
struct sc_scrub_status {
  bool ever;                    /* a scrub was started since start-up */
  bool running;
  bool stopped;                 /* ended by the volume's close */
  int error;                    /* errno that ended it, 0 */
  uint64_t rate;                /* bytes per second, 0: unbounded */
  uint64_t started_ns, finished_ns;     /* wall clock, Unix ns */
  uint64_t copies_checked, copies_total;
  uint64_t bytes_checked, bytes_total;
  uint64_t damaged;             /* copies that failed their checksum */
  uint64_t freed;               /* of those, freed (no valid snapshot
                                   needed them) */
  uint64_t read_errors;         /* copies that could not be read */
};
/* Start a scrub at `rate` bytes per second (0: unbounded).  -EALREADY
 * while one runs (*out then tells its progress), -ENODEV offline. */
int sc_volume_scrub_start (struct sc_volume *v, uint64_t rate,
                           struct sc_scrub_status *out);
void sc_volume_scrub_status (struct sc_volume *v,
                             struct sc_scrub_status *out);

/* ---- writable clones (volume-clone.c) --------------------------------
 *
 * A clone (cow/diffarea.h, "writable clones") is served read-write: its
 * own chunks verified on every read, the rest read as its base snapshot
 * (pinned and range-locked as a snapshot read).  A write goes whole
 * chunks to new slots of the diff area, a partial one merged with the
 * chunk's content first; the origin is never written.  Writes of one
 * chunk of a clone are serialized.  SC_FUA commits before returning;
 * flush makes every earlier write durable.  Errors: -ENOENT (deleted),
 * -EIO (damaged, or its base invalid), -ENOSPC (the diff area's limit),
 * -EINVAL (out of range), -ENODEV offline. */
int sc_volume_clone_create (struct sc_volume *v, const char *snapshot,
                            const char *name, struct sc_snapshot_info *out,
                            char *err, size_t errlen);
int sc_volume_clone_read (struct sc_volume *v, uint64_t id, void *buf,
                          uint32_t count, uint64_t offset);
int sc_volume_clone_write (struct sc_volume *v, uint64_t id, const void *buf,
                           uint32_t count, uint64_t offset, unsigned flags);
/* Whole chunks become ZERO (no slot); a partial one is written zeros. */
int sc_volume_clone_zero (struct sc_volume *v, uint64_t id, uint32_t count,
                          uint64_t offset, unsigned flags);
/* Whole chunks become ZERO, their slots freed; partial ones unchanged. */
int sc_volume_clone_trim (struct sc_volume *v, uint64_t id, uint32_t count,
                          uint64_t offset, unsigned flags);
int sc_volume_clone_flush (struct sc_volume *v, uint64_t id);
/* The first run of one kind from offset: own data, zeros, or the base's
 * extents. */
int sc_volume_clone_extents (struct sc_volume *v, uint64_t id,
                             uint32_t count, uint64_t offset,
                             sc_extent_cb cb, void *opaque);
/* Delete snapshot `name` and its clones first (each durably). */
int sc_volume_snapshot_delete_with_clones (struct sc_volume *v,
                                           const char *name);
/* ---- revert (engine/volume-revert.c; docs/design.md, "Revert") -------
 *
 * From the moment a revert is recorded the live volume reads as its
 * target: a read takes its chunk range shared and serves the pending
 * chunks from the target (verified), the rest from the origin; a write,
 * zero or trim first completes the pending chunks it touches (the
 * target's content written through the copy-on-write path, the origin
 * synced, REVERT_DONE committed).  A background thread completes the
 * rest in order at `rate` bytes/s, then ends the revert; it is resumed
 * when a server opens a volume with a revert running. */
#define SC_REVERT_RATE_DEFAULT (64ull << 20)    /* bytes/s */
#define SC_REVERT_PAUSED 0x1    /* recorded, background copy not started
                                   (sc_volume_revert_resume starts it) */
#define SC_REVERT_FORCE  0x2    /* revoke the live connections */
struct sc_revert_status {
  struct sc_revert_info info;   /* the diff area's view (active, names,
                                   chunks to do and done) */
  bool running;                 /* the background copy runs */
  bool paused;
  int error;                    /* errno of its last failure, 0 */
  uint64_t errors;              /* failures (each retried after 1 s) */
  uint64_t rate;                /* bytes/s, 0: unbounded */
  uint64_t bytes_done, bytes_todo;      /* bytes_todo: all, done included */
  uint64_t session_bytes;       /* written back since the thread started */
  uint64_t started_ns;          /* wall clock, when it started (or resumed) */
  uint64_t eta_s;               /* seconds left at the observed (or set)
                                   rate; UINT64_MAX unknown */
};
/* Plan a revert to `name` (--dry-run): errors as sc_diff_revert_plan. */
int sc_volume_revert_plan (struct sc_volume *v, const char *name, bool save,
                           struct sc_revert_plan *plan);
/* Start one: the creation slot and a write hold are taken (-EBUSY while
 * a snapshot is being created), `save` (NULL: none) and the REVERT
 * record are committed, then, unless SC_REVERT_PAUSED, the background
 * copy starts.  -EBUSY with *live set when live connections are open and
 * SC_REVERT_FORCE is not given; with it they are revoked under the hold,
 * once the revert is known to start (a refused one revokes nothing).  Other
 * errors as sc_diff_revert_start; -ENODEV offline. */
int sc_volume_revert_start (struct sc_volume *v, const char *name,
                            const char *save, uint64_t rate, unsigned flags,
                            uint64_t *live, struct sc_revert_status *out);
/* Start the background copy of a paused (or stopped) revert: 0, or
 * -ENOENT when none runs. */
int sc_volume_revert_resume (struct sc_volume *v);
/* For tests only: called in sc_volume_revert_start under its write hold,
 * before the live connections are counted again (phase 0), and after a
 * forced revoke, before the revert is recorded (phase 1).  NULL in a
 * server. */
extern void (*sc_vol_revert_start_hook) (struct sc_volume *v, int phase);
/* Change the running revert's rate (bytes/s, 0 unbounded), durably; the
 * background copy paces at it from now on.  -ENOENT when none runs. */
int sc_volume_revert_set_rate (struct sc_volume *v, uint64_t rate);
/* -ENOENT when no revert runs (st->info.ended_why may say why the last
 * one ended unfinished). */
int sc_volume_revert_status (struct sc_volume *v,
                             struct sc_revert_status *st);

/* ---- live connections (engine/volume-revert.c) ----------------------
 *
 * The plugin counts the connections to the live export, so that a
 * revert can refuse to start under them (their caches would be stale)
 * or revoke them.  open returns the connection's ticket; a revoked
 * ticket's requests fail (sc_volume_live_check: -ESHUTDOWN). */
uint64_t sc_volume_live_open (struct sc_volume *v);
void sc_volume_live_close (struct sc_volume *v, uint64_t ticket);
int sc_volume_live_check (struct sc_volume *v, uint64_t ticket);
/* sc_volume_write, _zero and _trim for the live connection `ticket`:
 * the ticket is checked again under the write gate, so that a request
 * that passed the plugin's check before a revert revoked it never lands
 * after the revert (-ESHUTDOWN). */
int sc_volume_live_write (struct sc_volume *v, uint64_t ticket,
                          const void *buf, uint32_t count, uint64_t offset,
                          unsigned flags);
int sc_volume_live_zero (struct sc_volume *v, uint64_t ticket,
                         uint32_t count, uint64_t offset, unsigned flags);
int sc_volume_live_trim (struct sc_volume *v, uint64_t ticket,
                         uint32_t count, uint64_t offset, unsigned flags);
uint64_t sc_volume_live_count (struct sc_volume *v);

#endif
