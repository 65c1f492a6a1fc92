/* shadowcopy: the diff area, the store of every snapshot of one volume.
 *
 * A diff area is one file.  It holds the superblock, the metadata journal
 * (snapshot records and chunk mappings) and the copied chunks.  This header
 * is the whole public API of cow/: the engine drives it while serving, and
 * the CLI uses it offline (list, info, delete) when no server runs.
 *
 * Vocabulary
 *   chunk   the copy-on-write unit of the origin (chunk_size bytes).
 *   slot    a chunk-sized place in the diff-area file.
 *   epoch   the generation of the live volume.  Creating a snapshot gives it
 *           the current epoch E and moves the live volume to E + 1.
 *   copy    the old content of one origin chunk, preserved by the first
 *           write to that chunk in epoch W.  It is what every snapshot with
 *           epoch in [previous copy's W, W - 1] sees for that chunk.  A copy
 *           of an all-zero chunk takes no slot.
 *
 * Locking: every function may be called from any thread; an internal mutex
 * protects the state.  Functions that do I/O release it while they wait.
 *
 * Errors: functions return 0 or a negative errno.  Those that take an
 * `err` buffer also write one line naming what is wrong and where.
 */
#ifndef SHADOWCOPY_COW_DIFFAREA_H
#define SHADOWCOPY_COW_DIFFAREA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/format.h"         /* SC_STAMP_* */
#include "cow/pagecache.h"      /* struct sc_pc_stats, SC_PC_* */

#define SC_CHUNK_SIZE_MIN     4096u
#define SC_CHUNK_SIZE_MAX     (1024u * 1024u)
#define SC_CHUNK_SIZE_DEFAULT (64u * 1024u)

#define SC_NAME_MAX 128

struct sc_diff;

/* What the diff area records about the origin it belongs to. */
struct sc_origin_id {
  uint64_t size;          /* bytes */
  uint64_t dev;           /* st_dev (files) or st_rdev (block devices) */
  uint64_t ino;           /* st_ino (files); 0 for block devices */
  uint32_t type;          /* SC_ORIGIN_FILE, _BLOCK or _NBD */
  char path[256];         /* informational only, never compared; but for
                             SC_ORIGIN_NBD the export name, compared */
};
#define SC_ORIGIN_FILE  1
#define SC_ORIGIN_BLOCK 2
#define SC_ORIGIN_NBD   3       /* an NBD export: dev and ino are 0 */

/* Fill *id from an open origin fd (fstat + size). */
int sc_origin_identify (int fd, const char *path, struct sc_origin_id *id);

/* What identifies the origin's content cheaply, so that a change made
 * while no server ran is seen at the next start (docs/design.md, "The
 * origin is watched").  The engine takes it through its origin interface;
 * cow/ stores it in the superblock and compares it (cow/origin-stamp.c).
 * Unused fields are 0. */
struct sc_origin_stamp {
  uint32_t flags;               /* SC_STAMP_F_* (cow/format.h) */
  uint64_t size;
  uint64_t mtime_ns, ctime_ns;  /* a file (SC_STAMP_F_TIMES) */
  /* A block device (SC_STAMP_F_COUNTERS): its counters since boot_id. */
  uint8_t boot_id[16];
  uint64_t write_ios, write_sectors, discard_ios, discard_sectors;
  /* Its disk's sequence number, 0 if unknown: the counters only compare
   * within one incarnation of the device. */
  uint64_t diskseq;
  /* Any origin: CRC32C of sampled blocks (sc_origin_stamp_sample). */
  uint32_t nsamples;
  uint32_t sample_crc[SC_STAMP_SAMPLES];
};

/* Where sample i of an origin of `size` bytes starts, and its length
 * (at most SC_STAMP_SAMPLE_SIZE): the first block, the last, and
 * fixed pseudo-random ones between. */
void sc_origin_stamp_sample (uint64_t size, uint32_t i, uint64_t *off,
                             uint32_t *len);

/* Why a snapshot is invalid.  Stored on disk: never renumber. */
enum sc_invalid_reason {
  SC_VALID = 0,
  SC_INVALID_COPY_WRITE = 1,    /* writing a copy to the diff area failed */
  SC_INVALID_COPY_READ = 2,     /* reading old data from the origin failed */
  SC_INVALID_DIFF_FULL = 3,     /* no space in the diff area for a copy */
  SC_INVALID_METADATA = 4,      /* a diff-area metadata write failed */
  SC_INVALID_VOLATILE = 5,      /* unclean stop while copies were volatile */
  /* Why a policy deleted a snapshot (SC_REC_SNAP_DROP). */
  SC_DROPPED_DIFF_FULL = 6,     /* on-full=delete-oldest made room */
  SC_DROPPED_MAX_SNAPSHOTS = 7, /* a create at max-snapshots made room */
  SC_DROPPED_SHRINK = 8,        /* resize --max --force below the use */
  /* Why a snapshot might be wrong (never served). */
  SC_INVALID_DAMAGED = 9,       /* copied data failed its checksum */
  SC_INVALID_ORIGIN_CHANGED = 10, /* origin written while the server was
                                     stopped */
  SC_INVALID_SALVAGED = 11,     /* journal damaged: the salvage could not
                                   prove this snapshot intact */
  SC_DROPPED_MAX_CHECKPOINTS = 12, /* a checkpoint at max-checkpoints made
                                      room (SC_REC_SNAP_DROP) */
  SC_INVALID_ORIGIN_FLUSH = 13, /* the origin's flush at its creation
                                   failed */
};
/* A short human description, e.g. "copy-on-write write failed". */
const char *sc_invalid_reason_text (uint32_t reason);

struct sc_snapshot_info {
  uint64_t id;                  /* unique, never reused in one diff area */
  uint32_t epoch;
  char name[SC_NAME_MAX + 1];
  uint64_t ctime_ns;            /* creation time, Unix ns, UTC */
  uint64_t volume_size;         /* volume size when created */
  uint32_t invalid_reason;      /* SC_VALID or enum sc_invalid_reason */
  int32_t invalid_errno;        /* errno of the failure, if any */
  uint64_t invalid_chunk;       /* chunk whose copy failed */
  uint64_t used_bytes;          /* diff-area bytes that deleting it frees */
  uint64_t discarded_bytes;     /* discarded by its reader (reads zeros) */
  bool auto_release;            /* dies with its creating session */
  bool in_set;                  /* belongs to the snapshot set set_id */
  uint8_t set_id[16];
  bool checkpoint;              /* a checkpoint: records which chunks
                                   change after it, keeps no data; never
                                   exported */
  uint8_t uuid[16];             /* random at creation, never reused (a
                                   snapshot of an older diff area: derived
                                   from the volume's UUID and its id) */
  uint64_t meta_bytes;          /* a checkpoint: journal bytes of the
                                   changes only it needs (list only) */
  bool clone;                   /* a writable clone (cow/clone.c) */
  uint64_t base_id;             /* a clone: its base snapshot's id */
  char base_name[SC_NAME_MAX + 1];      /* ... and name */
};

struct sc_diff_stats {
  uint64_t volume_size;
  uint32_t chunk_size;
  uint64_t snapshots;           /* listed snapshots, valid or not (with
                                   checkpoints and clones) */
  uint64_t copies;              /* copies kept, including zero copies */
  uint64_t data_slots;          /* slots holding copied data */
  uint64_t journal_slots;       /* slots holding the metadata journal */
  uint64_t used_bytes;          /* superblocks + journal + data */
  uint64_t file_bytes;          /* size of the diff-area file */
  uint64_t free_slots;          /* free slots below the end of the file */
  uint64_t journal_records;     /* records in the journal since checkpoint */
  uint32_t epoch;               /* current epoch of the live volume */
  uint64_t max_bytes;           /* size limit (0: unbounded) */
  uint64_t dropped;             /* snapshots deleted by a policy, ever */
  uint64_t full_failures;       /* copies refused (on-full=fail-writes) */
  uint64_t invalid;             /* listed snapshots that are invalid */
  uint64_t invalidations;       /* snapshots invalidated since the open */
  uint64_t discarded_bytes;     /* discarded by snapshot readers, total */
  uint64_t space_waits;         /* copies that waited for a deleted
                                   snapshot's space (reads in flight) */
  uint64_t checksum_errors;     /* copied data that failed its checksum
                                   since the open (reads and scrubs) */
  uint64_t damaged_freed;       /* damaged copies freed since the open */
  uint64_t damaged;             /* listed snapshots that are damaged */
  uint64_t checkpoints;         /* listed checkpoints (in snapshots) */
  uint64_t clones;              /* listed writable clones (in
                                   snapshots) */
  uint64_t clone_slots;         /* data slots they hold (in data_slots) */
  uint8_t uuid[16];
  struct sc_origin_id origin;
  /* The page cache of the copy map and the checksums, this open's:
   * cache_budget is its size in bytes (its max_pages, whole pages). */
  uint64_t cache_budget;
  struct sc_pc_stats cache;
};

/* Open flags. */
/* The start of an open's message when the scratch file of the copy map
 * and the checksums failed (an I/O error of its file system): the diff
 * area itself is not at fault. */
#define SC_DIFF_SCRATCH_FAILED \
  "the scratch file of the copy map and checksums failed"

#define SC_DIFF_RDONLY  0x1     /* never write; shared lock */
#define SC_DIFF_CREATE  0x2     /* format the file if it is missing */
#define SC_DIFF_NOWAIT  0x4     /* fail with -EWOULDBLOCK if locked */
#define SC_DIFF_VOLATILE 0x8    /* durability=volatile: copies and their
                                   records are not synced; after an unclean
                                   stop every snapshot is invalid */

/* Open (and with SC_DIFF_CREATE, create and format) a diff area.
 *
 * `origin`: when non-NULL, the diff area must belong to this origin (same
 * size, device and inode); when the file is created it is recorded.  The
 * offline CLI passes NULL.
 * `chunk_size`: used only when formatting; 0 means the default.
 *
 * The diff area is locked with flock(): exclusive for read-write opens,
 * shared for SC_DIFF_RDONLY.  A read-write open replays the journal and
 * then writes a checkpoint (a compact new journal), so the journal that
 * follows starts clean.
 *
 * Auto-release snapshots (sc_snapshot_opts.auto_release) found by any open
 * belong to a session that has ended: they are not listed, and a
 * read-write open deletes them for good.
 */
int sc_diff_open (const char *path, unsigned flags,
                  const struct sc_origin_id *origin, uint32_t chunk_size,
                  struct sc_diff **out, char *err, size_t errlen);

/* The page cache of the copy map and the checksums (cow/pagecache.h):
 * its budget in bytes, the server's `index-cache=SIZE`, not stored.  It
 * bounds the memory the map and the sums take, whatever the copies; a
 * budget is rounded down to whole pages (SC_PC_PAGE).  The default
 * leaves room for the rest of a server (about 13 MiB measured with ten
 * million copies: 4K chunks, one connection) under 256 MiB of RSS. */
#define SC_DIFF_CACHE_DEFAULT (UINT64_C (224) << 20)
#define SC_DIFF_CACHE_MIN ((uint64_t) SC_PC_MIN_PAGES * SC_PC_PAGE)
#define SC_DIFF_CACHE_MAX ((uint64_t) (UINT32_MAX / 4) * SC_PC_PAGE)

/* sc_diff_open with a cache of `cache_bytes` (0: SC_DIFF_CACHE_DEFAULT).
 * -EINVAL, saying so in err, if it is below SC_DIFF_CACHE_MIN or above
 * SC_DIFF_CACHE_MAX. */
int sc_diff_open_cache (const char *path, unsigned flags,
                        const struct sc_origin_id *origin,
                        uint32_t chunk_size, uint64_t cache_bytes,
                        struct sc_diff **out, char *err, size_t errlen);

/* ---- the origin's stamp (cow/origin-stamp.c) ------------------------ */

/* At a server's start, before its first write of the origin: compare
 * `now` (NULL: it could not be taken, `why` says why) with the stamp the
 * superblock holds.  A change that did not come through shadowcopy
 * marks every listed snapshot invalid (SC_INVALID_ORIGIN_CHANGED),
 * durably, and says what changed; with SC_ORIGIN_ACCEPT it is only
 * logged, loudly.  Then `now` becomes the stamp (SC_STAMP_UNWRITTEN).
 * Returns how many snapshots it invalidated, or a negative errno
 * (-EROFS on a read-only open). */
#define SC_ORIGIN_ACCEPT 0x1
int sc_diff_origin_check (struct sc_diff *d, const struct sc_origin_stamp *now,
                          const char *why, unsigned flags);
/* Did the check at open find the disk changed while no server ran? */
bool sc_diff_origin_found_changed (struct sc_diff *d);
/* When the stamp the open found was taken (wall clock, ns; 0: none): the
 * previous session's open or clean stop.  Only a write-back log of
 * version 1, which holds no session id, is judged by it. */
uint64_t sc_diff_origin_stamped_ns (struct sc_diff *d);

/* The server session that last opened the diff area to write the origin
 * (cow/session.c): its id, random and never 0; 0 if none is recorded
 * (the diff area was made by this open, or last used by a shadowcopy
 * that did not record one).  With uuid, also the diff area's UUID. */
uint64_t sc_diff_session_id (struct sc_diff *d, uint8_t uuid[16]);

/* Does a write-back log of the last session (killed) hold writes that
 * the diff area and the origin do not show yet?  Offline, the live
 * volume is then not what the diff area says. */
bool sc_diff_wblog_pending (struct sc_diff *d);
/* The session's write-back log is gone, every write in it on the origin
 * (a server's clean stop): the next store records it. */
void sc_diff_wblog_closed (struct sc_diff *d);

/* Before this session may write the origin: a new id (never 0 nor the
 * last one), then recorded durably with whether the session keeps a
 * write-back log (`logged`).  From then on a write-back log of an
 * earlier session is not the origin's latest word.  A negative errno if
 * no random id could be had, or the superblock write failed (nothing
 * else is changed). */
int sc_diff_next_session (struct sc_diff *d, uint64_t *id);
int sc_diff_record_session (struct sc_diff *d, uint64_t id, bool logged);

/* Before the server's first write of the origin since the check: the
 * stamp no longer describes it (durably: SC_STAMP_WRITTEN).  A failed
 * superblock write fails the diff area (every snapshot invalid); the
 * origin may be written either way. */
int sc_diff_origin_writing (struct sc_diff *d);

/* While the server runs: the origin is no longer the disk the snapshots
 * belong to (`why` says how it was found).  Every listed valid snapshot
 * becomes invalid (SC_INVALID_ORIGIN_CHANGED), durably; a failed journal
 * write fails the diff area.  Returns how many, or a negative errno. */
int sc_diff_origin_changed (struct sc_diff *d, const char *why);

/* At a clean stop, after the server's last write and flush of the
 * origin: sc_diff_close records `now` as the stamp with the clean
 * close.  Without this call the stamp is carried forward as it is (the
 * offline CLI never touches the origin). */
void sc_diff_origin_stamp_at_close (struct sc_diff *d,
                                    const struct sc_origin_stamp *now);

/* Write a final checkpoint (read-write opens) and free everything.
 * Returns the checkpoint's error, if any; the diff area is closed anyway
 * (the journal already holds every committed change). */
int sc_diff_close (struct sc_diff *d);

uint32_t sc_diff_chunk_size (const struct sc_diff *d);
void sc_diff_stats (struct sc_diff *d, struct sc_diff_stats *st);

/* ---- the journal checkpoint in the background (docs/design.md,
 * "Journal checkpoints") ------------------------------------------------
 *
 * A serving diff area rewrites its journal when it has grown long.  With
 * no runner registered, the commit that finds it long writes that
 * checkpoint itself (tools, tests).  With one, that commit only notes
 * that a checkpoint is due and calls wake(arg), and the runner's thread
 * writes it with sc_diff_ckpt_run; a commit that finds the journal at
 * twice its limit still writes it itself, so the journal stays bounded
 * whatever the runner does.  wake is called with the diff area's lock
 * held: it must only signal the runner, never call into the diff area.
 * NULL unregisters; once that returns, wake is not called any more. */
void sc_diff_set_ckpt_runner (struct sc_diff *d, void (*wake) (void *arg),
                              void *arg);
/* Is a checkpoint due?  Without the lock (one atomic read), so that a
 * runner can look before it sleeps. */
bool sc_diff_ckpt_due (const struct sc_diff *d);
/* The runner: write the checkpoint that is due, if the journal is still
 * long.  1 if one was written, 0 if none was due or needed any more, or
 * the checkpoint's negative errno (the journal carries on; a commit
 * that finds it long again notes it due again). */
int sc_diff_ckpt_run (struct sc_diff *d);

/* ---- snapshots ---------------------------------------------------- */

/* Snapshot names: 1..128 of [A-Za-z0-9._:+-], not starting with '.',
 * not "live".  Returns true if valid. */
bool sc_snapshot_name_valid (const char *name);

/* How a snapshot is created.  NULL (or all zero) means the defaults: a
 * persistent snapshot on its own, failing when there are too many. */
struct sc_snapshot_opts {
  const uint8_t *set_id;        /* 16-byte id of its snapshot set, or NULL */
  bool auto_release;            /* deleted with the session that made it */
  bool delete_oldest;           /* at max-snapshots, delete the oldest */
  bool checkpoint;              /* a checkpoint (no data kept), counted
                                   against max-checkpoints */
};

/* Record a new snapshot at the current epoch and move to the next epoch.
 * The caller has drained and holds every write of the live volume.  With
 * `name` NULL, the name is the creation time (UTC, ISO 8601).  Durable
 * when it returns 0.  Errors: -EINVAL (bad name), -EEXIST, -EMFILE (too
 * many snapshots), I/O errors. */
int sc_diff_snapshot_create (struct sc_diff *d, const char *name,
                             const struct sc_snapshot_opts *opts,
                             struct sc_snapshot_info *out);
/* The same without waiting: the snapshot is recorded (in memory and in
 * the journal's tail) when it returns 0, and durable once
 * sc_diff_commit (d, *seq) returns 0.  A creation can so release the
 * writes before the origin's flush and the journal's write and sync: a
 * write after the release copies for the new snapshot, and its own
 * commit makes the snapshot's record durable before the origin changes.
 * Until then a crash forgets the snapshot.  Every commit of the journal
 * is held back from the record on (cow/journal.h, sc_journal_hold_leads)
 * until sc_diff_snapshot_settle: the creator flushes the origin, whose
 * content before the hold the snapshot shows, meanwhile.  If the flush
 * failed (origin_err < 0) the snapshot is invalid
 * (SC_INVALID_ORIGIN_FLUSH), in its record too, which the held leads
 * have kept unwritten: the record cannot reach the disk valid. */
int sc_diff_snapshot_record_held (struct sc_diff *d, const char *name,
                                  const struct sc_snapshot_opts *opts,
                                  struct sc_snapshot_info *out,
                                  uint64_t *seq);
void sc_diff_snapshot_settle (struct sc_diff *d, uint64_t id,
                              int origin_err);

/* Delete a snapshot by name.  Durable when it returns 0.  Waits for reads
 * of that snapshot in flight (see sc_diff_snapshot_get), then frees the
 * copies no remaining snapshot needs.  -ENOENT if there is none. */
int sc_diff_snapshot_delete (struct sc_diff *d, const char *name);
/* The same, only if snapshot name has this UUID: -ESTALE, nothing
 * deleted, when it has another (deleted and made again under its
 * name).  The UUID is compared under the lock the delete holds. */
int sc_diff_snapshot_delete_uuid (struct sc_diff *d, const char *name,
                                  const uint8_t uuid[16]);

/* Batch deletes (delete --all): between hold and release, a delete
 * returns once its record is durable, and the copies of all of them are
 * freed by one pass of garbage collection at the release (which may
 * return its error).  Holds nest. */
void sc_diff_gc_hold (struct sc_diff *d);
int sc_diff_gc_release (struct sc_diff *d);

/* Listed snapshots in creation order.  *out is malloc'd; free() it. */
int sc_diff_snapshot_list (struct sc_diff *d,
                           struct sc_snapshot_info **out, size_t *n);

/* Find a snapshot by name.  -ENOENT if none.  find fills in used_bytes,
 * which takes a pass over the whole index; lookup leaves it 0 and is
 * O(1): for callers that only need the snapshot's identity. */
int sc_diff_snapshot_find (struct sc_diff *d, const char *name,
                           struct sc_snapshot_info *out);
int sc_diff_snapshot_lookup (struct sc_diff *d, const char *name,
                             struct sc_snapshot_info *out);

/* Keep snapshot `name` as a checkpoint of the same name, id, UUID and
 * epoch: its data goes as with sc_diff_snapshot_delete (its copies that
 * no other snapshot needs are freed; a checkpoint keeps only a data-less
 * mark of each chunk changed after it), and it is never served again.
 * Durable when it returns 0.  -ENOENT if there is none, -EINVAL if it is
 * a checkpoint already, -ESTALE if it is invalid (nothing to keep). */
int sc_diff_snapshot_keep_checkpoint (struct sc_diff *d, const char *name);

/* ---- writable clones (cow/clone.c) ----------------------------------
 *
 * A clone is a read-write image that starts as a snapshot (its base) and
 * keeps what is written to it in slots of its own (redirect-on-write: a
 * written chunk goes whole to a new slot; the origin is never written).
 * It shares the snapshots' name space and ids and is listed with them
 * (info.clone, info.base_id, info.base_name; its epoch is its base's),
 * but it is no epoch of the copy map: its base keeps the copies it reads,
 * and cannot be deleted, kept as a checkpoint or dropped by a policy
 * while it has clones.  Its slots count against the size limit; no
 * policy drops a clone. */

/* Make clone `name` of snapshot `base`, durably.  -EINVAL (a bad name, or
 * a base that is a checkpoint, a clone or auto-release), -EEXIST,
 * -ENOENT (no base of that name), -EIO (the base is invalid), -EMFILE,
 * -EROFS offline read-only; err says which. */
int sc_diff_clone_create (struct sc_diff *d, const char *base,
                          const char *name, struct sc_snapshot_info *out,
                          char *err, size_t errlen);

/* Pin clone `id` for I/O (it is not deleted until the put): -ENOENT if
 * there is none, -EIO (and *info filled) if it or its base is invalid
 * (damaged, or its base invalidated). */
int sc_diff_clone_get (struct sc_diff *d, uint64_t id,
                       struct sc_snapshot_info *info);
void sc_diff_clone_put (struct sc_diff *d, uint64_t id);

/* Where a pinned clone finds `chunk`: SC_WHERE_DIFF (its own slot, byte
 * offset in *offset, read verified with sc_diff_copy_read), SC_WHERE_ZERO,
 * or SC_WHERE_ORIGIN: not written, the base's view (read as a snapshot
 * read of info.base_id). */
enum sc_where sc_diff_clone_resolve (struct sc_diff *d, uint64_t id,
                                     uint64_t chunk, uint64_t *offset);

/* A new slot for a write to a pinned clone: its byte offset in *offset.
 * -ENOSPC at the size limit (no policy makes room for a clone: slots
 * freed by its earlier writes are made free first, by a commit). */
int sc_diff_clone_slot_reserve (struct sc_diff *d, uint64_t id,
                                uint64_t *offset);

/* Chunk `chunk` of clone `id` is now the data written to the slot at
 * `offset` (sums from sc_diff_copy_write), or with SC_COPY_ZERO reads as
 * zeros: the CLONE_DATA record appended, visible at once, durable after
 * sc_diff_commit(seq).  The slot it replaces is freed once the record is
 * durable. */
int sc_diff_clone_map (struct sc_diff *d, uint64_t id, uint64_t chunk,
                       uint64_t offset, const uint32_t *sums, uint64_t *seq);

/* The data slots clone `id` holds, in a malloc'd array (*n entries; free
 * it): for check, which reads them back.  -ENOENT, -ENOMEM. */
struct sc_clone_slot { uint64_t offset, chunk; };
int sc_diff_clone_slots (struct sc_diff *d, uint64_t id,
                         struct sc_clone_slot **out, size_t *n);

/* The clones of snapshot `base_id`, ", "-separated into buf (may be
 * NULL); returns how many. */
size_t sc_diff_clone_names (struct sc_diff *d, uint64_t base_id, char *buf,
                            size_t len);

/* sc_diff_snapshot_delete of a base with clones is -EBUSY; this deletes
 * its clones first (each durably), then the base. */
int sc_diff_snapshot_delete_with_clones (struct sc_diff *d,
                                         const char *name);
/* ---- revert (cow/revert.c; docs/design.md, "Revert") ------------------
 *
 * A revert makes the live volume read as a snapshot (its target) at once
 * and writes the target's content back to the origin chunk by chunk.
 * Chunk c is to do when it changed after the target and before the
 * revert (a copy or mark of an epoch W, target < W < start) or the
 * target's reader discarded it; it is done once a durable REVERT_DONE
 * covers it; pending = to do and not done.  A pending chunk reads as the
 * target's view (sc_diff_resolve at the target's epoch); any other chunk
 * reads from the origin.  While a revert runs its target is pinned
 * (delete, keep-checkpoint: -EBUSY; policies skip it) and no snapshot or
 * checkpoint can be created (-EBUSY).  One revert at a time. */

/* What reverting to a snapshot writes, and may need (--dry-run). */
struct sc_revert_plan {
  uint64_t target_id;
  uint32_t target_epoch;
  uint64_t todo_chunks;         /* chunks to write back */
  uint64_t copy_chunks;         /* upper bound of the copies it makes
                                   (every chunk to do, with a saved
                                   snapshot; else those a valid snapshot
                                   sees on the origin) */
  uint64_t max_bytes;           /* the limit (0: unbounded) */
  bool fits;                    /* the copies fit under the limit */
};

/* The running revert (or the last one that ended unfinished). */
struct sc_revert_info {
  bool active;
  uint64_t target_id;
  char target[SC_NAME_MAX + 1];
  uint32_t target_epoch;
  bool target_valid;            /* false: pending chunks fail with EIO */
  uint64_t saved_id;            /* 0: none, or deleted since */
  char saved[SC_NAME_MAX + 1];
  uint32_t start_epoch;
  uint64_t rate;                /* bytes/s, 0 unbounded */
  uint64_t todo_chunks;         /* to do in all, done included */
  uint64_t done_chunks;
  char ended_why[256];          /* not active: why the last revert ended
                                   unfinished at open ("" if none) */
};

/* Check that `name` can be reverted to and plan it: -ENOENT, -EINVAL (a
 * checkpoint, an auto-release snapshot), -ESTALE (invalid), -EALREADY (a
 * revert runs).  `save`: a snapshot of the current state will be made. */
int sc_diff_revert_plan (struct sc_diff *d, const char *name, bool save,
                         struct sc_revert_plan *plan);

/* Start a revert to `name`: with `save` non-NULL, snapshot `save` of the
 * current state first (its epoch + 1 is the revert's start), else the
 * live epoch moves on; then the REVERT record; durable, in one commit,
 * when it returns 0.  The caller holds every write of the live volume.
 * Errors as sc_diff_revert_plan's, and -ENOSPC when the plan does not
 * fit under the limit, -EEXIST/-EINVAL/-EMFILE for `save` as for
 * sc_diff_snapshot_create; -EROFS offline read-only. */
int sc_diff_revert_start (struct sc_diff *d, const char *name,
                          const char *save, uint64_t rate,
                          struct sc_revert_info *out);

/* The running revert: 0 and *out, or -ENOENT (out->ended_why may say
 * why the last one ended unfinished). */
int sc_diff_revert_info (struct sc_diff *d, struct sc_revert_info *out);

/* Is a revert running?  One atomic read, no lock. */
bool sc_diff_revert_active (struct sc_diff *d);

/* The pending chunks of [first, last], in order, into out[] (at most
 * max); *next is the first chunk not looked at (last + 1 when the scan
 * is complete).  None when no revert runs.  The caller holds the chunks'
 * range lock (shared at least) for the answer to stay true. */
size_t sc_diff_revert_pending (struct sc_diff *d, uint64_t first,
                               uint64_t last, uint64_t *out, size_t max,
                               uint64_t *next);

/* Chunks [first, first + count) of the origin hold the target's content,
 * durably (the caller synced the origin): record it, durably.  Chunks
 * not pending are allowed (they change nothing).  -ENOENT if no revert
 * runs. */
int sc_diff_revert_done (struct sc_diff *d, uint64_t first, uint64_t count);

/* End the revert once nothing is pending: REVERT_END, durably.  1 when
 * it ended, 0 when chunks are still pending, -ENOENT if none runs. */
int sc_diff_revert_finish (struct sc_diff *d);

/* Change the running revert's background rate (bytes/s, 0 unbounded),
 * durably (a REVERT_RATE record: a restart keeps it).  -ENOENT if none
 * runs, -EROFS offline read-only. */
int sc_diff_revert_set_rate (struct sc_diff *d, uint64_t rate);

/* ---- changed-block tracking (cow/changes.c) ---------------------------
 *
 * Which chunks may differ between two snapshots or checkpoints, or one
 * and the live volume, derived from the copy map: chunk c changed after
 * epoch F and up to epoch T exactly when c has a copy or mark made in an
 * epoch in (F, T]; the first such copy is needed by F's snapshot or
 * checkpoint, so it is kept while F is valid.  Chunks that either side's
 * reader discarded count as changed. */

#define SC_DIFF_LIVE UINT64_MAX /* to_id: the live volume now */
struct sc_chunk_range { uint64_t first, count; };

/* The changed chunks of `from_id` to `to_id` (a later snapshot or
 * checkpoint, or SC_DIFF_LIVE), from chunk `start` on: sorted, merged
 * runs into out[] (at most max; runs that touch are merged only within
 * one call), *n of them; *next is the chunk to go on from (the number
 * of chunks of the volume once complete).  A diff read from start 0 is
 * computed whole (one pass over the copy map, under the lock, and a
 * sort) and kept for the pages that follow while it is still the answer
 * (to the live volume: while no copy or mark was added since); past 8M
 * changed chunks each page is a pass of its own.  Errors: -ENOENT (no such id, or it is
 * deleted), -EIO (either is invalid: nothing can be said), -EINVAL
 * (to_id is not later than from_id). */
int sc_diff_changes (struct sc_diff *d, uint64_t from_id, uint64_t to_id,
                     uint64_t start, struct sc_chunk_range *out, size_t max,
                     size_t *n, uint64_t *next);

/* Find a listed snapshot or checkpoint by id (used_bytes left 0). */
int sc_diff_snapshot_by_id (struct sc_diff *d, uint64_t id,
                            struct sc_snapshot_info *out);

/* The write path's half: after the copy-on-write of a live change of
 * chunks [first, last] and before the origin is written, record a
 * data-less mark for each chunk that a valid checkpoint needs and that
 * has no copy or mark in this epoch yet.  *seq is the last record to
 * commit (sc_diff_commit) before the origin write; 0 if none. */
int sc_diff_mark_changes (struct sc_diff *d, uint64_t first, uint64_t last,
                          uint64_t *seq);

/* Mark every valid snapshot that needs the old content of `chunk` invalid
 * (checkpoints need no content: the write path's mark covers them),
 * durably if the journal can still be written. */
int sc_diff_invalidate_chunk (struct sc_diff *d, uint64_t chunk,
                              uint32_t reason, int err);

/* ---- the copy-on-write write path ---------------------------------
 *
 * The engine, holding `chunk` locked against other writers and snapshot
 * readers, asks whether a live write must first copy the chunk.  If so it
 * reserves a slot, writes the old content there itself, and commits.
 */

/* True if some valid snapshot still sees the current origin content of
 * `chunk`, i.e. it has not been copied in this epoch. */
bool sc_diff_needs_copy (struct sc_diff *d, uint64_t chunk);

/* The same for a range, in one call: puts the chunks of [first, last] that
 * need a copy, in order, into out[] (at most `max`) and returns how many.
 * *next is the first chunk not looked at (last + 1 once the scan is
 * complete); a call may look at fewer chunks than asked, so loop until
 * *next > last. */
size_t sc_diff_needs_copy_range (struct sc_diff *d, uint64_t first,
                                 uint64_t last, uint64_t *out, size_t max,
                                 uint64_t *next);

/* A hint, no answer: the query above will soon be asked for `chunk`.
 * Its lock-free answer (recent.h) reads a table entry that a random
 * write finds in no cache; the engine asks for it before it takes the
 * gate and the range lock, which then hide most of that wait. */
void sc_diff_needs_copy_prefetch (struct sc_diff *d, uint64_t chunk);

/* Reserve a slot for a copy.  Returns its byte offset in the diff-area
 * file in *offset.  -ENOSPC when the diff area cannot grow. */
int sc_diff_slot_reserve (struct sc_diff *d, uint64_t *offset);
/* Give back a slot reserved but not committed (the copy failed). */
void sc_diff_slot_cancel (struct sc_diff *d, uint64_t offset);

/* Record that `chunk` was copied in the current epoch: to the slot at
 * `offset`, whose data has the checksums `sums` (sc_diff_copy_sums, as
 * sc_diff_copy_write computes them), or, with offset == SC_COPY_ZERO (and
 * sums NULL), that its old content was all zeros.  The copy is visible to
 * readers at once; it is durable after sc_diff_commit() with the returned
 * sequence number.  (Replay after a crash checks the sums of copies whose
 * commit may not have completed.) */
#define SC_COPY_ZERO UINT64_MAX
int sc_diff_copy_record (struct sc_diff *d, uint64_t chunk, uint64_t offset,
                         const uint32_t *sums, uint64_t *seq);

/* The checksums of a chunk's data, as records carry them: one CRC32C per
 * block of max(4K, chunk_size / 16) bytes, into out[SC_COPY_SUMS_MAX]. */
#define SC_COPY_SUMS_MAX 16
void sc_diff_copy_sums (struct sc_diff *d, const void *chunk, uint32_t *out);

/* Make every journal record up to `seq` durable (data written to the
 * diff-area file before the call is durable too).  Concurrent callers
 * share one fdatasync (group commit). */
int sc_diff_commit (struct sc_diff *d, uint64_t seq);

/* Make everything appended so far durable. */
int sc_diff_sync (struct sc_diff *d);

/* ---- the copied data (cow/copydata.c) -------------------------------
 *
 * Only cow/ reads and writes the diff-area file: the engine hands over the
 * old content of chunks, and asks for it back, here. */

struct sc_copy_io {
  uint64_t offset;              /* the slot's byte offset */
  void *buf;                    /* write: chunk_size bytes; read: len */
  uint32_t at;                  /* read: where in the slot to start */
  uint32_t len;                 /* read: bytes, at + len <= chunk_size */
  uint32_t sums[SC_COPY_SUMS_MAX];      /* write, out: its checksums */
  int result;                   /* out: 0 or a negative errno */
};

/* Write each copy's chunk_size bytes to its reserved slot (one batch of
 * I/O per 64 copies), and compute its checksums for sc_diff_copy_record.
 * Each io[i].result says how that copy went; returns the first error. */
int sc_diff_copy_write (struct sc_diff *d, struct sc_copy_io *io, size_t n);

/* Read io[i].len bytes at io[i].at of each slot into io[i].buf, for a
 * pinned snapshot, verified against the copy's checksums before it is
 * returned: a piece that covers whole checksum blocks is read and checked
 * in place; any other piece reads the blocks that cover it (the whole
 * chunk for a copy of format version 1) into a bounce buffer of the
 * calling thread (one chunk at most).  A mismatch fails that piece with
 * -EIO, and the snapshots that need the copy are marked damaged
 * (SC_INVALID_DAMAGED), durably.  Returns the first error (io[i].result
 * each).  This is the one verified read of copied data: snapshot reads,
 * backups, the scrub and check --data all go through it or through
 * sc_diff_verify_next. */
int sc_diff_copy_read (struct sc_diff *d, struct sc_copy_io *io, size_t n);

/* What sc_diff_verify_next found. */
struct sc_copy_verify {
  uint64_t slot;                /* the data slot verified */
  uint64_t chunk;               /* the copy's chunk and epoch */
  uint32_t epoch;
  uint32_t bytes;               /* bytes read (chunk_size) */
  bool damaged;                 /* it failed its checksum */
  uint32_t block;               /* when damaged: the first bad block */
  bool freed;                   /* damaged, needed by no valid snapshot
                                   any more (after marking), and freed */
  char needed_by[512];          /* when damaged: the snapshots that need
                                   the copy, ", "-separated ("" if none) */
  bool walk_failed;             /* with an error: the walk cannot go on
                                   (the checksums cannot be read); slot
                                   and chunk say nothing */
};

/* Verify the copy in the first data slot at or after `slot`: read it
 * whole into buf (chunk_size bytes) without holding the diff area's
 * lock, and check every checksum.  Damage is handled as a read's is; a
 * copy freed while it was being read is skipped (not damage).  Returns 1
 * with *v filled, 0 when no data slot is left, or the negative errno of
 * a failed read (v->slot says which; carry on from v->slot + 1), or,
 * with v->walk_failed, of the checksums' store (cow/sums.h): the walk
 * cannot go on. */
int sc_diff_verify_next (struct sc_diff *d, uint64_t slot, void *buf,
                         struct sc_copy_verify *v);

/* The free space of the filesystem holding the diff area, in bytes. */
int sc_diff_fs_free (struct sc_diff *d, uint64_t *bytes);

/* ---- the snapshot read path ---------------------------------------- */

/* Pin a snapshot for reading: it will not be deleted (its copies not
 * freed) until sc_diff_snapshot_put.  -ENOENT if it was deleted, -EIO
 * (and *info filled) if it is invalid. */
int sc_diff_snapshot_get (struct sc_diff *d, uint64_t id,
                          struct sc_snapshot_info *info);
/* Unpin.  The last pin of a snapshot frees what only reads kept: a
 * dropped snapshot with its copies, damaged copies nothing valid needs. */
void sc_diff_snapshot_put (struct sc_diff *d, uint64_t id);

/* Where a pinned snapshot finds `chunk`: SC_WHERE_ORIGIN, SC_WHERE_ZERO,
 * or SC_WHERE_DIFF with the slot's byte offset in *offset.  O(1) for the
 * chunk plus O(log k) in the copies of that chunk. */
enum sc_where { SC_WHERE_ORIGIN, SC_WHERE_ZERO, SC_WHERE_DIFF,
                SC_WHERE_NONE /* a data-less mark: never for a valid
                                 snapshot; the read fails with EIO */ };
enum sc_where sc_diff_resolve (struct sc_diff *d, uint32_t epoch,
                               uint64_t chunk, uint64_t *offset);

/* ---- space management (see docs/design.md, "Size limit") -------------
 *
 * The limit counts the used slots of the whole file: superblocks, journal
 * and data.  A data slot is reserved only if the journal's room to be
 * rewritten by a checkpoint (its own size again, plus two slots) stays
 * free under the limit; journal slots themselves may use that reserve, so
 * metadata never deadlocks at the limit.  Freed slots are punched out of
 * the file and a free tail is truncated; the file grows in preallocated
 * steps of 1/16 of the limit (64 MiB at most; 16 MiB when unbounded).
 */

/* What to do when a copy does not fit. */
enum sc_on_full {
  SC_ON_FULL_DELETE_OLDEST = 0, /* drop the oldest snapshots (default) */
  SC_ON_FULL_FAIL_WRITES = 1,   /* refuse the live write with ENOSPC */
};

#define SC_MAX_SNAPSHOTS_DEFAULT 512
#define SC_MAX_SNAPSHOTS_MAX     65536
#define SC_MAX_CHECKPOINTS_DEFAULT 512
#define SC_MAX_CHECKPOINTS_MAX     65536

/* Not stored: the server's configuration. */
void sc_diff_set_policy (struct sc_diff *d, enum sc_on_full on_full,
                         uint32_t max_snapshots);
/* At most `max` checkpoints (0: SC_MAX_CHECKPOINTS_DEFAULT); a create
 * with delete_oldest drops the oldest checkpoint to make room. */
void sc_diff_set_max_checkpoints (struct sc_diff *d, uint32_t max);

/* Set the size limit (0: unbounded) and record it durably, so it
 * survives a restart.  If the diff area uses more than max_bytes (with
 * room for its journal): by default -ENOSPC and nothing changes; with
 * SC_MAX_FORCE the oldest snapshots are dropped (SC_DROPPED_SHRINK) until
 * it fits or none is left, *dropped counting them; with SC_MAX_LAZY it is
 * set as it is.  -EINVAL if max_bytes is below SC_DIFF_MAX_MIN_CHUNKS
 * chunks; -EROFS offline read-only. */
#define SC_DIFF_MAX_MIN_CHUNKS 16
#define SC_MAX_FORCE 0x1        /* drop the oldest snapshots to fit now */
#define SC_MAX_LAZY  0x2        /* set it even if over: the on-full policy
                                   acts at the next copy (start-up) */
int sc_diff_set_max (struct sc_diff *d, uint64_t max_bytes, unsigned flags,
                     uint64_t *dropped);
/* The limit in force (0: unbounded) and whether one was ever recorded. */
uint64_t sc_diff_get_max (struct sc_diff *d, bool *recorded);

/* The copy-on-write write path with the policy applied: reserve a slot
 * for a copy of `chunk`.  Returns 0 with *offset set, 1 if no snapshot
 * needs the chunk any more (policy drops may have removed the ones that
 * did), -ENOSPC if it does not fit and on-full=fail-writes (or nothing
 * is left to drop), SC_COPY_REFUSED if it does not fit (nothing left to
 * drop) and a protected snapshot (sc_diff_snapshot_protected) needs the
 * copy: the live write must fail with ENOSPC, as under fail-writes,
 * rather than invalidate it.  Other negative errnos on failure.  Slots a
 * clone is about to free (their records not durable yet) count as space
 * coming back: a commit frees them before any drop.  While a deleted
 * snapshot's copies are still kept (a read of it in flight, or its record
 * not yet durable) it waits for them to be freed rather than drop another
 * snapshot: the caller must not hold a snapshot pin (sc_diff_snapshot_get)
 * itself, and a pinned reader must not wait for the caller. */
#define SC_COPY_REFUSED 2
int sc_diff_copy_reserve (struct sc_diff *d, uint64_t chunk,
                          uint64_t *offset);
/* Does a protected snapshot need a copy of `chunk` now?  (A copy write
 * that failed for space: the caller refuses the live write then.) */
bool sc_diff_chunk_protected (struct sc_diff *d, uint64_t chunk);

/* A snapshot deleted by a policy. */
struct sc_drop_info {
  uint64_t id;
  char name[SC_NAME_MAX + 1];
  uint64_t ctime_ns, drop_ns;
  uint32_t reason;              /* SC_DROPPED_* */
};
#define SC_DROP_HISTORY 32      /* the most recent drops are kept */

/* The kept drop history, oldest first (*out malloc'd), and the number of
 * drops ever (*total). */
int sc_diff_drops (struct sc_diff *d, struct sc_drop_info **out, size_t *n,
                   uint64_t *total);

/* After pinning and locking: is snapshot `id` still servable?  0,
 * -ENOENT (deleted or dropped meanwhile) or -EIO (invalid meanwhile). */
int sc_diff_snapshot_check (struct sc_diff *d, uint64_t id);

/* Snapshot `id` (as read by its reader) no longer needs the whole chunks
 * [first, last]: record it durably, read them as zeros from now on and
 * free the copies no other snapshot needs.  -ENOENT if it is gone,
 * -EROFS offline, -EBUSY if it is protected (below). */
int sc_diff_snapshot_discard (struct sc_diff *d, uint64_t id,
                              uint64_t first, uint64_t last);

/* A protected snapshot: what it reads is what the live volume (the
 * target of a running revert) or a clone (a base) reads too, so its
 * content must not change: no discard, no policy drop, and a copy it
 * needs that cannot get space fails the live write (SC_COPY_REFUSED)
 * instead of invalidating it.  0 if `id` is not protected. */
#define SC_PROTECTED_REVERT 1   /* the target of the running revert */
#define SC_PROTECTED_CLONES 2   /* the base of clones */
int sc_diff_snapshot_protected (struct sc_diff *d, uint64_t id);

/* ---- a failed metadata write (docs/design.md, the write path) --------
 *
 * When a write of the diff area's metadata fails (the journal, its
 * fdatasync, a checkpoint), nothing more can be recorded: every snapshot
 * is invalidated (SC_INVALID_METADATA, in memory and, if it still takes
 * writes, in the superblock) and the diff area is failed.  The live
 * volume is not affected: with no valid snapshot nothing is copied, and
 * its flushes do not depend on the diff area.  A failed diff area
 * refuses new snapshots until sc_diff_recover succeeds. */
struct sc_diff_health {
  bool failed;                  /* failed, not recovered yet */
  int err;                      /* positive errno of the failure */
  char what[128];               /* which write, e.g. "writing the journal
                                   at slot 12 (offset 786432)" */
  uint64_t since_ns;            /* when it failed (Unix ns) */
  uint32_t invalidated;         /* snapshots it invalidated */
  bool sb_marked;               /* the superblock records it */
  uint64_t refused;             /* live changes refused (EIO) while it did
                                   not (sc_diff_change_check) */
  uint64_t retries;             /* recovery attempts since */
  uint64_t last_retry_ns;       /* the last one (Unix ns; 0: none) */
  int retry_err;                /* its positive errno */
  char retry_what[128];         /* which write failed then */
  uint64_t recoveries;          /* failures recovered from (this open) */
  uint64_t recovered_ns;        /* the last recovery (Unix ns; 0: none) */
};
void sc_diff_health (struct sc_diff *d, struct sc_diff_health *h);

/* Before a live write, zero or trim of chunks [first, last] reaches the
 * origin (after its copy-on-write): 0 if it may, or -EIO.  It may not
 * while the diff area is failed, its failure is not recorded on disk
 * (the superblock took no FAILED flag and no recovery was done: the
 * next open would replay the old journal and list its snapshots valid)
 * and a snapshot that the disk may still list as valid needs one of
 * those chunks as the origin holds it (the copy-on-write query, asked
 * as if those snapshots were valid).  Storing FAILED is tried again
 * first.  Without the lock, at the cost of one atomic read, while the
 * diff area is healthy or its failure recorded. */
int sc_diff_change_check (struct sc_diff *d, uint64_t first, uint64_t last);

/* Try to leave the failed state: write a checkpoint of the state in
 * memory (a new journal) and switch the superblock to it.  0 when the
 * diff area is healthy (at once if it was), or the retry's negative
 * errno.  Snapshots invalidated by the failure stay invalid. */
int sc_diff_recover (struct sc_diff *d);

/* One line for the user about a failed diff area: which write failed,
 * with which errno, what it means, what was done and what to do. */
void sc_diff_health_message (const struct sc_diff_health *h, char *buf,
                             size_t len);

/* ---- for tests only ------------------------------------------------
 *
 * The diff-area file's descriptor, for fault injection (matching
 * sc_io_fault_hook's requests) and for inspecting the file.  Nothing
 * above cow/ may read or write through it. */
int sc_diff_fd (const struct sc_diff *d);

/* When set: the journal length (in records) above which a checkpoint is
 * written, given the records a checkpoint would write (`live`), instead
 * of 2 * live + 65536; lets the crash harness reach checkpoints while
 * serving with a small diff area.  NULL in a server. */
extern uint64_t (*sc_ckpt_limit_hook) (uint64_t live);
/* An online checkpoint streams this many copies per hold of the lock
 * (tests lower it to reach many slices); sc_ckpt_stream_hook, when set,
 * is called each time it has dropped the lock (before it writes the new
 * journal's tail), so a test can act while it runs; sc_ckpt_strict
 * aborts on a change of the state while one runs (a path that missed
 * its wait). */
extern size_t sc_ckpt_slice;
extern void (*sc_ckpt_stream_hook) (struct sc_diff *d);
extern bool sc_ckpt_strict;

/* Diffs of up to this many changed chunks are computed whole and kept
 * for their pages (cow/changes.c; 8M); tests lower it to reach the
 * page-by-page path. */
extern size_t sc_changes_whole_max;

/* Replay adds the copies of a run of copy records to the copy map in
 * chunk order, this many at a time (cow/replay-order.c; 128K); tests
 * lower it to reach many batches. */
extern size_t sc_replay_order_max;

#endif
