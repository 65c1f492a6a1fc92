/* shadowcopy: the diff area's shared state, for the files of cow/ only.
 *
 * cow/diffarea.h is the API; this header is the contract between the
 * files that implement it, one concept each:
 *
 *   diffarea.c        open (format or replay, then start the journal),
 *                     close, statistics
 *   transaction.c     a metadata change: reserve, append, apply, commit;
 *                     a failed metadata write fails the whole diff area
 *   records.c         the journal records of the diff area, encoded
 *   snapshot-table.c  the listed snapshots and the valid epochs
 *   snapshot.c        create, delete, list, pin for reading, invalidate
 *   copymap.c         the copy map: which copy each epoch sees, which
 *                     copies are still needed, the copy-on-write query
 *   gc.c              dropping unneeded copies, giving slots back
 *   replay.c          rebuilding the state from the journal at open
 *   checkpoint.c      rewriting the journal as the live state
 *   space.c           the size limit, the on-full and max-snapshots
 *                     policies, policy drops, slot reservation
 *   discard.c         the chunks a snapshot's reader no longer needs
 *   origin-stamp.c    the origin's stamp: stored, compared at start,
 *                     renewed at a clean stop
 *   sums.c            the checksums of the copied data, per slot
 *   clone.c           writable clones: their table, chunk maps, records
 *   damage.c          a copy that failed its checksum: its snapshots
 *                     damaged, durably; whole-copy verification (scrub,
 *                     check --data)
 *
 * Locking.  One mutex, sc_diff.lock, guards every field below and the
 * structures they own (index, allocator, journal, snapshots); every
 * function declared here is called with it held.  sc_journal_sync (a
 * group commit) and the waits for readers (readers_done) release it while
 * they sleep, so state may change across a commit: look snapshots up
 * again by id afterwards, never keep a `struct snap *` across one.  An
 * online checkpoint (checkpoint.c) drops it too, between slices, with
 * the state frozen: a path that changes the state calls diff_wait_ckpt
 * right after taking the lock and after each of those waits.
 *
 * Lock order, outermost first (the engine's locks are in
 * engine/volume.c): the volume's write gate, then a chunk range lock,
 * then this mutex.  A reader pins its snapshot (sc_diff_snapshot_get)
 * only after locking its chunk range, so a pinned reader never waits for
 * a writer, and a writer may wait here (space.c, wait_space) for pinned
 * readers to finish.
 */
#ifndef SHADOWCOPY_COW_DIFFAREA_INTERNAL_H
#define SHADOWCOPY_COW_DIFFAREA_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/alloc.h"
#include "cow/diffarea.h"
#include "cow/index.h"
#include "cow/recent.h"
#include "cow/io.h"
#include "cow/journal.h"
#include "cow/salvage.h"
#include "cow/sums.h"
#include "cow/superblock.h"

/* A run of chunks: [first, first + count). */
struct extent { uint64_t first, count; };

struct snap {
  struct sc_snapshot_info info;
  unsigned readers;             /* pinned by sc_diff_snapshot_get */
  bool deleted;                 /* unlisted: deleted or dropped */
  bool dropped;                 /* deleted by a policy: removed (and its
                                   copies freed) by its last reader */
  bool pending;                 /* deleted, but its delete or drop record
                                   is not durable yet: copies kept */
  bool keeping;                 /* its KEEP_CHECKPOINT is being committed:
                                   it cannot be cloned */
  struct extent *disc;          /* discarded chunks, sorted, disjoint */
  size_t ndisc, disc_cap;
  uint64_t invalid_seq;         /* invalid: the journal's next seq when it
                                   became so, which its SNAP_INVALID record
                                   gets or follows; 0 when replayed (known
                                   durable).  Durable once the journal is
                                   durable past it (failure.c). */
};

/* A copy whose record is appended but not known durable yet (copymap.c):
 * if the journal fails before it is, the copy is forgotten. */
struct fresh_copy { uint64_t chunk; uint64_t seq; uint32_t epoch; };
/* A damaged copy (chunk, epoch) not freed yet (damage.c). */
struct damaged_copy { uint64_t chunk; uint32_t epoch; };

/* A copy replay found past the last point the journal is known durable
 * (see replay.c). */
struct unsure { uint64_t chunk; uint64_t seq; uint32_t epoch; };
struct unsure_bad { uint64_t slot; struct sc_sums_entry e; uint32_t block; };

/* A writable clone (clone.c): chunk -> its own slot, or CLONE_ZERO. */
#define CLONE_ZERO UINT64_MAX
struct clone_ent { uint64_t chunk, slot; };
struct clone {
  struct sc_snapshot_info info; /* info.clone; epoch and base_id: its
                                   base's */
  struct clone_ent *map;        /* open addressing; chunk UINT64_MAX:
                                   empty */
  size_t nmap, map_cap;         /* map_cap: 0 or a power of two */
  uint64_t nslots;              /* entries with a slot of its own */
  unsigned users;               /* pinned by sc_diff_clone_get */
  bool based;                   /* replay: its CLONE_BASE was seen */
  bool deleted;                 /* its delete record is appended */
};
/* A slot a clone let go, freed once the record that replaced it (seq) is
 * durable. */
struct clone_free { uint64_t slot, seq; };
/* A CLONE_DATA record past the last durable point (replay): the mapping
 * it replaced, and that mapping's sums. */
struct clone_unsure {
  uint64_t id, chunk, seq, slot, prev;  /* prev: UINT64_MAX - 1 none */
  uint32_t prev_sums[SC_SUMS_MAX];
};

/* An unsure copy or clone write the replay dropped (replay-void.c). */
struct dropped {
  uint64_t seq, id, chunk, slot, prev;  /* id, prev: a clone's */
  uint64_t order;                       /* the drop's place: 0 first */
  uint32_t epoch;                       /* a copy's */
  bool clone;
  uint32_t prev_sums[SC_SUMS_MAX];
};

/* Per-snapshot usage (usage.c): copies counted by the range of epochs
 * they serve. */
struct usage_class {
  uint32_t from, to;            /* the range the copies serve */
  uint64_t data, marks;         /* data copies (own slot) and marks */
};
struct sc_usage {
  struct usage_class *v;        /* sorted by (from, to) */
  size_t n, cap;
  bool stale;                   /* a class could not be allocated: count
                                   again before the next answer */
  uint64_t demotes;             /* data copies made marks, ever */
};

struct sc_diff {
  pthread_mutex_t lock;
  pthread_cond_t readers_done;  /* a reader's put, a drop's completion */
  int fd;
  bool rdonly;
  struct sc_sb_disk sb;         /* the superblock in force */
  uint32_t chunk_size;
  uint64_t nchunks;             /* chunks of the origin */
  uint64_t first_slot;          /* the first slot past the superblocks */

  struct sc_alloc alloc;        /* slots: journal and data */
  struct sc_index index;        /* the copy map's storage: copymap.c only */
  struct sc_recent recent;      /* chunks copied lately: copymap.c only */
  struct sc_usage usage;        /* per-snapshot usage counters, kept in
                                   step by copymap.c (usage.c) */
  /* Sliced garbage collection (gc.c): passes asked for and done. */
  uint64_t gc_want, gc_done;
  bool gc_running;              /* a pass is under way (lock dropped
                                   between its slices) */
  unsigned gc_defer;            /* >0: passes wait for gc_release */
  uint64_t gc_unpunched;        /* slots freed from the map, not yet
                                   punched and given back */
  uint64_t gc_slice;            /* copies per slice (0: the default) */
  uint64_t gc_max_hold_ns;      /* the longest slice, this session */
  uint64_t gc_passes;           /* passes run, this session */
  void (*gc_between) (struct sc_diff *d);       /* tests: called between
                                                   slices, unlocked */
  struct sc_sums sums;          /* per data slot: its copy and checksums;
                                   kept in step by copymap.c */
  struct sc_pc *pc;             /* the page cache of the index and the sums
                                   (cow/pagecache.h), one per open */
  struct sc_journal journal;    /* read-write opens only */
  bool have_journal;
  bool volatile_mode;           /* durability=volatile */
  bool failed;                  /* a metadata write failed (failure.c);
                                   written with the lock held and atomically,
                                   read without the lock by the live path */
  struct sc_diff_health health; /* what failed, and the retries */
  bool failed_sb_marked;        /* the superblock says FAILED */
  bool unrecorded;              /* failed, and nothing on disk says so: the
                                   live path fails closed (failure.c);
                                   atomic like `failed` */
  uint32_t *prefail;            /* while unrecorded: the epochs of the
                                   snapshots the disk may still list as
                                   valid, ascending; NULL: all of them */
  size_t nprefail;
  struct fresh_copy *fresh;     /* copies not known durable, by seq */
  size_t nfresh, fresh_cap;
  uint64_t *quarantine;         /* slots of journals a failed superblock
                                   store may point at (checkpoint.c) */
  size_t nquarantine, quarantine_cap;

  struct snap **snaps;          /* listed, oldest first (= id, epoch order) */
  size_t nsnaps, snaps_cap;
  uint32_t *valid;              /* epochs of valid snapshots (data kept),
                                   ascending; room for snaps_cap */
  size_t nvalid;
  size_t nvalid_hint;           /* nvalid, stored atomically: the live
                                   path reads it without the lock */
  uint32_t *cvalid;             /* epochs of valid checkpoints (marks
                                   kept), ascending; room for snaps_cap */
  size_t ncvalid;
  size_t ncvalid_hint;          /* ncvalid, stored atomically: the live
                                   path reads it without the lock */

  uint32_t epoch;               /* the live volume's (stored atomically
                                   while serving: recent.h) */
  uint64_t next_id;
  uint64_t replayed_records;
  size_t replayed_slots;        /* journal slots found by replay */
  bool verify_tail;             /* replay: check unsure copies' data */
  bool journal_damaged;         /* replay refused the journal */
  struct sc_salvage_report *salv;       /* a salvage open: what replay
                                           went past (replay.c) */
  struct unsure *unsure;
  size_t nunsure, unsure_cap;
  struct unsure_bad *unsure_bad; /* unsure copies that are damage, to be
                                   marked once the journal runs */
  size_t nunsure_bad, unsure_bad_cap;
  uint64_t replay_max_slot;     /* replay: slots of the file */
  struct replay_copy *ordered;  /* replay: copies not yet in the map */
  size_t nordered, ordered_cap;

  /* Space management (space.c). */
  uint64_t max_bytes;           /* 0: unbounded */
  bool max_recorded;            /* a LIMIT record exists */
  enum sc_on_full on_full;
  uint32_t max_snaps;
  uint32_t max_ckpts;
  uint64_t prealloc_end;        /* bytes of the file preallocated */
  struct sc_drop_info drops[SC_DROP_HISTORY];   /* a ring */
  uint64_t drops_total;         /* ever; drops[] holds the last ones */
  uint64_t full_failures;
  uint64_t space_waits;
  uint64_t invalidations;       /* this session */
  uint64_t checksum_errors;     /* copies that failed a checksum, this
                                   session (damage.c) */
  uint64_t damaged_freed;       /* damaged copies freed, this session */
  struct damaged_copy *damaged_kept;    /* damaged copies kept only for
                                           reads in flight (damage.c) */
  size_t ndamaged_kept, damaged_kept_cap;
  uint64_t disc_gen;            /* +1 at every discard */
  uint64_t map_gen;             /* +1 at every copy or mark added */
  struct changes_cache {        /* the last whole diff (changes.c) */
    uint64_t from_id, to_id;    /* to_id SC_DIFF_LIVE: to the live volume */
    uint64_t disc_gen, map_gen; /* when it was made */
    struct sc_chunk_range *runs;
    size_t n;
  } changes;
  size_t ndisc_snaps;           /* snapshots with discarded chunks */
  uint64_t ndisc_extents;       /* their extents, all snapshots */

  /* Writable clones (clone.c), by id ascending. */
  struct clone **clones;
  size_t nclones, clones_cap;
  struct clone_free *cfree;     /* slots to free once durable */
  size_t ncfree, cfree_cap;
  struct clone_unsure *cunsure; /* replay: unsure CLONE_DATA records */
  size_t ncunsure, cunsure_cap;
  struct dropped *dropped;      /* replay: unsure records dropped */
  size_t ndropped, dropped_cap;
  /* The revert of the live volume that runs, if any (revert.c). */
  struct revert {
    bool active;                /* atomic: the live path reads it unlocked */
    uint64_t target_id, saved_id;
    uint32_t target_epoch, start_epoch;
    uint64_t rate;
    struct extent *done;        /* REVERT_DONE chunks: sorted, merged */
    size_t ndone, done_cap;
    uint64_t todo, ndone_chunks;        /* chunks to do, and done */
    bool counted;               /* todo is known */
    char ended_why[256];        /* the last revert ended unfinished: why */
    bool end_unrecorded;        /* ended by the replay: no REVERT_END */
  } revert;

  /* The origin's stamp to record at a clean close (origin-stamp.c). */
  struct sc_origin_stamp close_stamp;
  bool have_close_stamp;
  bool origin_checked;          /* a server's session: the origin's
                                   stamp was checked at open */
  bool origin_found_changed;    /* ... and found changed since the last
                                   session */
  uint64_t origin_found_ns;     /* ... and when the stamp it found was
                                   taken (wall clock; 0: none) */

  /* An online checkpoint is streaming the state (checkpoint.c): it holds
   * the journal's leader role and drops the lock between slices; nothing
   * changes the state until it ends (diff_wait_ckpt). */
  bool ckpt_running;
  pthread_t ckpt_thread;        /* the thread writing it */
  pthread_cond_t ckpt_done;     /* broadcast when it ends */
  uint64_t ckpt_waits;          /* changes that waited for one */
  /* A checkpoint in the background (sc_diff_set_ckpt_runner): a commit
   * that finds the journal long sets ckpt_due (atomic: the runner reads
   * it without the lock) and calls ckpt_wake, under the lock. */
  bool ckpt_due;
  void (*ckpt_wake) (void *arg);
  void *ckpt_wake_arg;
};

/* Hold d->lock for the rest of the enclosing scope. */
#define LOCKED(d) \
  __attribute__((cleanup (diff_unlock_ptr))) pthread_mutex_t *_lk = \
    diff_lock_ptr (d)
static inline pthread_mutex_t *
diff_lock_ptr (struct sc_diff *d)
{
  pthread_mutex_lock (&d->lock);
  return &d->lock;
}
static inline void
diff_unlock_ptr (pthread_mutex_t **m)
{
  pthread_mutex_unlock (*m);
}

/* A corrupt-input error: writes the message to err and is -EINVAL. */
#define CORRUPT(...) (snprintf (err, errlen, __VA_ARGS__), -EINVAL)

/* sc_diff_open_cache, and with `salv` a salvage open (salvage.c): replay
 * goes past damaged records and reports them there (never with RDONLY or
 * CREATE).  `cache_bytes`: the page cache's budget, 0 the default. */
int diff_open (const char *path, unsigned flags,
               const struct sc_origin_id *origin, uint32_t chunk_size,
               uint64_t cache_bytes, struct sc_salvage_report *salv,
               struct sc_diff **out, char *err, size_t errlen);

/* Where notices go: sc_notice, or sc_debug when there is none. */
#define diff_say sc_say            /* cow/io.h */

uint64_t diff_now_ns (void);    /* wall clock, for creation times */

/* ---- transaction.c ---------------------------------------------------- */

/* A metadata change in the order that keeps memory and journal in step:
 * every allocation `apply` needs is reserved first, then the records are
 * appended, then `apply` (which cannot fail) changes the memory, then
 * the records are committed.  The steps are the caller's:
 *
 *   r = reserve...;                    nothing changed if it fails
 *   r = txn_append (d, &t, rec, len);  repeat per record
 *   apply...;                          only if every append succeeded
 *   r = txn_commit (d, &t);
 *
 * A failed append with nothing appended changes nothing; once a record
 * of the change is in the journal, a failure fails the diff area (a
 * half-appended change would be replayed).  A failed commit fails the
 * diff area too (diff_fail). */
struct txn {
  uint64_t first_seq;           /* the journal's next_seq at the start */
  uint64_t seq;                 /* the last record appended */
};
void txn_begin (struct sc_diff *d, struct txn *t);
int txn_append (struct sc_diff *d, struct txn *t, void *rec, size_t len);
int txn_commit (struct sc_diff *d, const struct txn *t);

/* A metadata write failed: every snapshot invalid, the superblock says
 * so, and nothing more is recorded until diff_recover. */
void diff_fail (struct sc_diff *d, int err);
/* Make the journal durable up to seq; a failure fails the diff area. */
int diff_commit (struct sc_diff *d, uint64_t seq);

/* ---- failure.c -------------------------------------------------------- *
 *
 * The failed state of the diff area: what failed, and the way back.  A
 * failed diff area keeps serving the live volume (no snapshot is valid,
 * so nothing is copied); diff_recover writes a checkpoint of the state in
 * memory and switches the superblock to it, after which new snapshots
 * can be taken.  The snapshots invalidated by the failure stay invalid. */

/* Enter the failed state: `what` failed with `err` (negative). */
void failure_enter (struct sc_diff *d, int err, const char *what);
/* Try to leave it: 0 once healthy, or the retry's negative errno. */
int diff_recover (struct sc_diff *d);
/* A superblock with the FAILED flag is durable: the failure is recorded,
 * and the live path need not fail closed any more. */
void failure_recorded (struct sc_diff *d);
/* Must the copies that `prefail` needs be kept (gc)?  While the failure
 * is unrecorded, the journal on disk may still be replayed. */
bool failure_keeps (const struct sc_diff *d, uint32_t epoch);

/* ---- records.c -------------------------------------------------------- */

/* Encode one record of the diff area into buf (at least SC_REC_MAX
 * bytes) and return its padded length. */
size_t rec_snapshot (void *buf, const struct sc_snapshot_info *s);
size_t rec_snapshot_set (void *buf, const struct sc_snapshot_info *s);
size_t rec_invalid (void *buf, const struct sc_snapshot_info *s);
size_t rec_delete (void *buf, uint64_t id);
size_t rec_state (void *buf, uint32_t epoch, uint64_t next_id);
size_t rec_copy (void *buf, uint64_t chunk, const struct sc_copy *c);
size_t rec_copy_sums (void *buf, uint64_t chunk, const struct sc_copy *c,
                      const uint32_t *sums, uint32_t nsums);
size_t rec_drop (void *buf, const struct sc_drop_info *di, uint64_t total);
size_t rec_limit (void *buf, uint64_t max_bytes);
size_t rec_discard (void *buf, uint64_t id, uint64_t first, uint64_t count);
size_t rec_snapshot_uuid (void *buf, const struct sc_snapshot_info *s);
size_t rec_keep_checkpoint (void *buf, uint64_t id);
size_t rec_clone_base (void *buf, uint64_t id, uint64_t base_id);
size_t rec_clone_data (void *buf, uint64_t id, uint64_t chunk, uint64_t slot,
                       const uint32_t *sums, uint32_t nsums);
size_t rec_void (void *buf, const struct dropped *x);
/* Append a snapshot's records (create, its UUID, and its set if in one)
 * to j. */
int rec_append_snapshot (struct sc_journal *j,
                         const struct sc_snapshot_info *s, uint64_t *seq);

size_t rec_revert (void *buf, const struct revert *rv);
size_t rec_revert_done (void *buf, uint64_t first, uint64_t count);
size_t rec_revert_end (void *buf, uint64_t target_id);
size_t rec_revert_rate (void *buf, uint64_t target_id, uint64_t rate);

/* ---- revert.c --------------------------------------------------------- */

/* Is snapshot `id` the target of the running revert (pinned: never
 * deleted, kept as a checkpoint or dropped)? */
bool revert_pins (const struct sc_diff *d, uint64_t id);
/* Replay of the three records (every field checked). */
int revert_apply (struct sc_diff *d, const struct sc_rec_hdr *h, char *err,
                  size_t errlen);
/* After replay, before garbage collection: a revert whose target cannot
 * be served any more is ended (in memory; the open's checkpoint or
 * continued journal records it). */
void revert_replayed (struct sc_diff *d);
/* A journal continued as it is after a replay that ended a revert gets
 * its REVERT_END: 1 if appended, 0 if none is due, or an error. */
int revert_end_replayed (struct sc_diff *d, struct sc_journal *j);
/* Salvage lost records while a revert ran: it is ended, its target
 * named. */
void revert_salvaged (struct sc_diff *d);
/* The checkpoint's share: REVERT and its REVERT_DONE extents. */
int revert_checkpoint (struct sc_diff *d, struct sc_journal *j);
/* Records a checkpoint writes for it. */
uint64_t revert_records (const struct sc_diff *d);
/* Free the revert's memory. */
void revert_free (struct sc_diff *d);

/* ---- snapshot-table.c ------------------------------------------------- */

/* Must its copies be kept?  While it is valid and not (durably) deleted,
 * or while a read of it is in flight. */
static inline bool
snap_keeps_copies (const struct snap *s)
{
  return ((!s->deleted || s->pending) &&
          s->info.invalid_reason == SC_VALID) || s->readers;
}

struct snap *snap_by_id (struct sc_diff *d, uint64_t id, size_t *pos);
struct snap *snap_by_name (struct sc_diff *d, const char *name);
struct snap *snap_by_epoch (struct sc_diff *d, uint32_t epoch);
/* Room for one more snapshot, so that snap_push cannot fail. */
int snap_reserve (struct sc_diff *d);
/* Append s (the newest: ids and epochs ascend); room reserved. */
void snap_push (struct sc_diff *d, struct snap *s);
void snap_remove_at (struct sc_diff *d, size_t pos);
void snap_free (struct sc_diff *d, struct snap *s);
void snap_set_invalid (struct sc_diff *d, struct snap *s, uint32_t reason,
                       int err, uint64_t chunk);
/* No longer valid for new copies (its delete is durable). */
void snap_unvalidate (struct sc_diff *d, struct snap *s);
/* Snapshot s is kept as a checkpoint from now on (its record durable). */
void snap_make_checkpoint (struct sc_diff *d, struct snap *s);
/* A snapshot of an older version without a SNAP_UUID record: its UUID,
 * derived from the volume's UUID and its id. */
void snap_derive_uuid (const struct sc_diff *d, struct sc_snapshot_info *s);
/* Listed checkpoints, and the oldest one. */
size_t snap_listed_checkpoints (const struct sc_diff *d);
struct snap *snap_oldest_checkpoint (struct sc_diff *d);
/* Listed snapshots (checkpoints not counted), and the oldest one. */
size_t snap_listed (const struct sc_diff *d);
struct snap *snap_oldest_listed (struct sc_diff *d);
/* Is snapshot `id` protected (SC_PROTECTED_*, or 0)? */
int snap_protected (const struct sc_diff *d, uint64_t id);

/* In a sorted epoch array: the position of the first epoch >= e. */
size_t epochs_lower_bound (const uint32_t *a, size_t n, uint32_t e);

/* ---- snapshot.c ------------------------------------------------------- */

/* The listed snapshot (or checkpoint) `name`, for a change to record:
 * -EROFS offline read-only, -ENOENT, or a failed diff area's recovery
 * error (it recovers first). */
int snap_for_change (struct sc_diff *d, const char *name, struct snap **out);

/* A new snapshot appended to t and applied (listed, the epoch moved on),
 * not committed: sc_diff_snapshot_create's first half, shared with the
 * revert's saved snapshot. */
struct txn;
int snap_create_append (struct sc_diff *d, const char *name,
                        const struct sc_snapshot_opts *opts, struct txn *t,
                        struct sc_snapshot_info *out);

/* Delete snapshot s durably with a record already appended (seq) by the
 * caller: it stays counted alive until the record is durable; then its
 * copies are freed, once its readers are done (wait: the caller waits for
 * them; otherwise the last reader frees it). */
int snap_retire (struct sc_diff *d, struct snap *s, uint64_t seq,
                 bool wait_readers);

/* ---- copymap.c -------------------------------------------------------- *
 *
 * The copy map records, per origin chunk, the copies made of it and the
 * epoch each was made in.  A copy of chunk c made in epoch W holds what c
 * was during epochs [P, W - 1], P being the epoch of c's previous copy (0
 * for its first): copymap_serves() is that rule.  A copy is needed while
 * a snapshot that can be served has its epoch in that range and has not
 * discarded c: copymap_needed() is that rule, for any set of snapshots.
 * Nothing outside this file knows how the map is stored. */

/* The snapshots whose needs are asked about: epochs ascending.  `marks`
 * (gc only): the checkpoints', which need a mark where a snapshot needs
 * data. */
struct keepers {
  const uint32_t *epochs;
  size_t n;
  const uint32_t *marks;
  size_t nmarks;
};

static inline void
copymap_serves (uint32_t prev, const struct sc_copy *c, uint32_t *from,
                uint32_t *to)
{
  *from = prev;
  *to = c->epoch - 1;
}

/* Does one of `k` with epoch in [from, to] still need `chunk`? */
bool copymap_needed (struct sc_diff *d, const struct keepers *k,
                     uint32_t from, uint32_t to, uint64_t chunk);
/* Does a valid snapshot see the current origin content of `chunk`? */
bool copymap_needs_copy (struct sc_diff *d, uint64_t chunk);
/* Does a valid checkpoint need to know that `chunk` changes now (and no
 * copy or mark of it was made in this epoch)? */
bool copymap_needs_mark (struct sc_diff *d, uint64_t chunk);
/* A data copy that only checkpoints need any more: its data goes (slot
 * freed with free_slot, else left to the caller), it stays as a mark. */
void copymap_demote (struct sc_diff *d, uint64_t chunk, uint32_t prev,
                     const struct sc_copy *c, bool free_slot);
/* The copy of `chunk` made in `epoch`, whose previous copy's epoch is
 * `prev`, becomes a mark (its slot is the caller's business). */
void copymap_set_mark (struct sc_diff *d, uint64_t chunk, uint32_t prev,
                       uint32_t epoch);

/* sc_diff_copy_record with the lock held; offset may also be
 * SC_COPY_MARK: a data-less mark (cow/marks.c). */
#define SC_COPY_MARK (UINT64_MAX - 1)
int sc_diff_copy_record_locked (struct sc_diff *d, uint64_t chunk,
                                uint64_t offset, const uint32_t *sums,
                                uint64_t *seq);
/* sc_diff_invalidate_chunk with the lock held, for the snapshots or
 * (with `checkpoints`) for the checkpoints. */
int diff_invalidate_chunk_locked (struct sc_diff *d, uint64_t chunk,
                                  uint32_t reason, int err, bool checkpoints);

int copymap_add (struct sc_diff *d, uint64_t chunk, struct sc_copy c);
bool copymap_find (struct sc_diff *d, uint64_t chunk, uint32_t epoch,
                   struct sc_copy *out);
void copymap_remove (struct sc_diff *d, uint64_t chunk, uint32_t epoch);
/* The copy a snapshot of `epoch` sees; false: the origin. */
bool copymap_seen_by (struct sc_diff *d, uint64_t chunk, uint32_t epoch,
                      struct sc_copy *out);
/* The epoch of the copy of `chunk` before the one made in `epoch` (0 if
 * none): the copy holds [that, epoch - 1]. */
uint32_t copymap_prev_epoch (struct sc_diff *d, uint64_t chunk,
                             uint32_t epoch);
/* The newest copy's epoch (0 if none). */
uint32_t copymap_last_epoch (struct sc_diff *d, uint64_t chunk);
uint64_t copymap_count (const struct sc_diff *d);
/* Did the map's storage fail (index.h)?  Every later lookup fails too. */
bool copymap_broken (const struct sc_diff *d);
/* Visit every copy (see sc_index_filter): `keep` false removes it. */
int copymap_visit (struct sc_diff *d, sc_index_visit_fn keep, void *opaque);
/* The same in slices (sc_index_filter_slice): 1 when the pass is done. */
int copymap_visit_slice (struct sc_diff *d, uint64_t *cursor, uint64_t budget,
                         sc_index_visit_fn keep, void *opaque);
/* What deleting each listed snapshot would free (infos[].used_bytes). */
void copymap_used_bytes (struct sc_diff *d, struct sc_snapshot_info *infos,
                         size_t n);
/* The fresh copies (not known durable): drop those the journal has made
 * durable; forget the others (the journal failed: their records may
 * never reach the disk), their slots back to the allocator. */
void copymap_fresh_durable (struct sc_diff *d);
void copymap_forget_fresh (struct sc_diff *d);

/* ---- clone.c ---------------------------------------------------------- */

struct clone *clone_by_id (struct sc_diff *d, uint64_t id);
/* Unlist clone c and free it (its sums cleared); with free_slots, its
 * slots go back to the allocator. */
void clone_remove (struct sc_diff *d, struct clone *c, bool free_slots);
struct clone *clone_by_name (struct sc_diff *d, const char *name);
/* Is `name` taken by a listed snapshot, checkpoint or clone? */
bool name_taken (struct sc_diff *d, const char *name);
/* Does snapshot `id` have clones (it cannot go)? */
bool snap_has_clones (const struct sc_diff *d, uint64_t id);
/* Delete clone c durably (its slots freed after the record is). */
int clone_delete (struct sc_diff *d, struct clone *c);
/* The listed clones into v[] (room for d->nclones), used_bytes filled;
 * returns how many. */
size_t clone_list (struct sc_diff *d, struct sc_snapshot_info *v);
void clone_info (struct sc_diff *d, const struct clone *c,
                 struct sc_snapshot_info *out);
/* After a commit: free the slots whose replacing record is durable. */
void clone_frees_durable (struct sc_diff *d);
/* Data slots held by clones (their pending frees too); the records a
 * checkpoint writes for them. */
uint64_t clone_slots (const struct sc_diff *d);
uint64_t clone_records (const struct sc_diff *d);
/* Room for one more chunk in c's map; the map as stored. */
int clone_map_reserve (struct clone *c);
void clone_map_insert (struct clone *c, uint64_t chunk, uint64_t slot);
uint64_t clone_map_get (const struct clone *c, uint64_t chunk);
#define CLONE_UNMAPPED (UINT64_MAX - 1)
#define CLONE_EMPTY UINT64_MAX
static inline bool
clone_has_slot (uint64_t slot)
{
  return slot != CLONE_ZERO && slot != CLONE_UNMAPPED;
}
int clones_reserve (struct sc_diff *d);
/* A clone's slot failed its checksum (damage_found, epoch 0 entries):
 * the clone is damaged, durably. */
void clone_damage_found (struct sc_diff *d, uint64_t slot,
                         const struct sc_sums_entry *e, uint32_t block,
                         struct sc_copy_verify *v);
/* Replay: the clone records, an unsure tail checked, slots to the
 * allocator; salvage: clones listed at a loss invalid. */
int clone_apply_create (struct sc_diff *d, const struct sc_rec_snap_create *r,
                        char *err, size_t errlen);
int clone_apply_base (struct sc_diff *d, const struct sc_rec_clone_base *r,
                      char *err, size_t errlen);
int clone_apply_data (struct sc_diff *d, const struct sc_rec_clone_data *r,
                      uint64_t durable, char *err, size_t errlen);
int clone_apply_delete (struct sc_diff *d, uint64_t id);
int clone_replay_end (struct sc_diff *d, uint64_t durable, char *err,
                      size_t errlen);
int clone_mark_slots (struct sc_diff *d, uint64_t max_slot, uint64_t *bad);
int clone_salvage_distrust (struct sc_diff *d, uint64_t suspect_below);
/* Checkpoint: clone c's create records, and every clone's chunks. */
int clone_ckpt_create (struct sc_diff *d, struct sc_journal *j,
                       const struct clone *c);
int clone_ckpt_data (struct sc_diff *d, struct sc_journal *j);
/* The same in slices of `budget` records from *at (0, 0 to begin), for a
 * checkpoint that drops the lock between them (the clones are frozen
 * meanwhile); `bound`: write the tail out when it grows long.  1 when
 * all were written, 0 if there are more, <0 on error. */
struct clone_cursor { size_t clone, pos; };
int clone_ckpt_data_slice (struct sc_diff *d, struct sc_journal *j,
                           struct clone_cursor *at, uint64_t budget,
                           bool bound);
void clone_free_all (struct sc_diff *d);

/* ---- damage.c --------------------------------------------------------- */

/* What a failed checksum found (sc_copy_verify's fields). */
struct sc_copy_verify;
/* The data in `slot` (entry e, as copied out before the read) failed
 * its checksum at `block`: if that copy is still kept, mark every valid
 * snapshot that needs it damaged (durably when the journal can be
 * written), say so, and free the copy if nothing valid needs it any
 * more.  Fills v (may be NULL).  Called with the lock held. */
void damage_found (struct sc_diff *d, uint64_t slot,
                   const struct sc_sums_entry *e, uint32_t block,
                   struct sc_copy_verify *v);
/* The last pinned read of a snapshot ended: free the damaged copies that
 * reads in flight kept and nothing else needs now.  Called with the lock
 * held. */
void damage_release (struct sc_diff *d);

/* ---- usage.c ---------------------------------------------------------- */

void usage_init (struct sc_usage *u);
void usage_free (struct sc_usage *u);
/* Count (delta +1) or uncount (-1) copy c, whose previous copy's epoch is
 * prev; zero copies are not counted. */
void usage_count (struct sc_usage *u, uint32_t prev, const struct sc_copy *c,
                  int delta);
/* Copy c now follows new_prev instead of old_prev. */
void usage_move (struct sc_usage *u, const struct sc_copy *c,
                 uint32_t old_prev, uint32_t new_prev);
/* The data copy of class (prev, epoch) became a mark. */
void usage_demote (struct sc_usage *u, uint32_t prev, uint32_t epoch);
/* Count again from the map (after an allocation failure). */
int usage_rebuild (struct sc_diff *d);
/* Add to bytes[i] what deleting the snapshot of epoch d->valid[i] would
 * free, and to cbytes[i] the marks checkpoint d->cvalid[i] alone
 * keeps.  Costs the number of classes. */
int usage_bytes (struct sc_diff *d, uint64_t *bytes, uint64_t *cbytes);

/* ---- gc.c ------------------------------------------------------------- */

/* The epochs of the snapshots whose copies must be kept
 * (snap_keeps_copies); free with keepers_free. */
int keepers_get (struct sc_diff *d, struct keepers *k);
void keepers_free (struct keepers *k);
/* Drop the copies no servable snapshot needs.  During open, before the
 * allocator is built, `free_slots` is false (one pass, lock held);
 * otherwise the pass runs in slices and the lock is dropped between them
 * (the caller must expect that, as around a commit). */
int gc_run (struct sc_diff *d, bool free_slots);
/* One pass with the lock held throughout, freeing slots. */
int gc_run_held (struct sc_diff *d);
/* The same for the chunks [first, last] only. */
int gc_chunks (struct sc_diff *d, uint64_t first, uint64_t last);
/* While held (gc_hold), passes asked for wait for the last release,
 * which runs one (delete --all: one pass, not one per snapshot). */
void gc_hold (struct sc_diff *d);
int gc_release (struct sc_diff *d);
/* Is a pass asked for and not done, or are freed slots not yet given
 * back: space that will come back without a drop. */
bool gc_pending (const struct sc_diff *d);
/* A slot no copy uses any more: to the allocator, and punched. */
void gc_free_slot (struct sc_diff *d, uint64_t slot);
/* After frees: the allocator's end drops to the last used slot. */
void gc_shrink_tail (struct sc_diff *d);

/* ---- replay.c --------------------------------------------------------- */

/* Rebuild the state of an existing diff area from its journal: the
 * snapshots (with the distrust its superblock calls for), the copy map
 * and the allocator.  *chain gets the journal's slots (malloc'd), with
 * the end of the journal in *end_pos and *end_seq; *invalidated whether
 * this open found snapshots untrustworthy; *released the ids of the
 * auto-release snapshots it deleted (malloc'd). */
struct replay_out {
  uint64_t *chain;
  size_t nchain;
  uint32_t end_pos;
  uint64_t end_seq;
  bool invalidated;
  uint64_t *released;
  size_t nreleased;
};
/* Mark the snapshots of the unsure copies replay found damaged (not torn);
 * once the journal runs, so the marks are recorded. */
void diff_mark_unsure_damage (struct sc_diff *d);
int replay_run (struct sc_diff *d, uint64_t max_slot, struct replay_out *o,
                char *err, size_t errlen);

/* ---- replay-void.c ---------------------------------------------------- */

/* Note an unsure copy, or clone write, that replay dropped. */
int void_push_copy (struct sc_diff *d, uint64_t seq, uint64_t chunk,
                    uint32_t epoch, uint64_t slot);
int void_push_clone (struct sc_diff *d, const struct clone_unsure *u);
/* A journal continued in place: append the records that undo them (a
 * VOID a copy; a clone chunk's mapping before, or a VOID), so later
 * commit markers do not vouch for the dropped records.  The caller
 * empties the list (void_free) once they are written. */
int void_append (struct sc_diff *d, struct sc_journal *j);
void void_free (struct sc_diff *d);
/* Replay of a VOID record: CORRUPT unless what it voids is in force. */
int void_apply (struct sc_diff *d, const struct sc_rec_void *r, char *err,
                size_t errlen);

/* ---- replay-order.c --------------------------------------------------- */

/* A replayed copy: added to the copy map in chunk order, by
 * replay_order_flush, which replay calls before any other record and at
 * the end (a salvage replay adds it at once).  CORRUPT if the chunk was
 * copied twice in the epoch. */
struct replay_copy { uint64_t chunk, seq; struct sc_copy copy; };
int replay_order_add (struct sc_diff *d, uint64_t chunk, struct sc_copy c,
                      uint64_t seq, char *err, size_t errlen);
int replay_order_flush (struct sc_diff *d, char *err, size_t errlen);
void replay_order_free (struct sc_diff *d);

/* ---- checkpoint.c ----------------------------------------------------- */

/* Is a journal of `records` records long next to the live state? */
bool ckpt_journal_too_long (const struct sc_diff *d, uint64_t records);
/* Write the whole state as a new journal and switch the superblock to
 * it, then free the old journal's slots (old_chain at open; the current
 * journal's while serving). */
int ckpt_write (struct sc_diff *d, uint64_t first_seq,
                const uint64_t *old_chain, size_t old_nchain);
/* After a commit: rewrite the journal if it has grown long; with a
 * runner registered, only note that it is due and wake the runner,
 * unless the journal has grown to twice its limit meanwhile. */
void ckpt_maybe (struct sc_diff *d);
/* The checkpoint a commit found due and left to the runner, written now
 * (the lock held; it may be dropped meanwhile): by the runner, or by a
 * caller short of the room it frees, before a snapshot is dropped or a
 * write refused for want of it.  1 if written, 0 if none was due, or the
 * write's -errno. */
int ckpt_run_due (struct sc_diff *d);
/* Replace a failed journal with a checkpoint of the state (recovery);
 * on failure `what` says which write failed. */
int ckpt_replace_failed (struct sc_diff *d, char *what, size_t len);
/* Every path that changes the state (map, snapshots, space, clones,
 * revert, discards) calls this right after taking the lock, and again
 * after anything that dropped it (a commit, a wait for readers): it
 * waits while an online checkpoint streams the state (not in the
 * checkpoint's own thread).  The caller must hold nothing else the
 * checkpoint needs: only the lock and the journal's leader role. */
void diff_wait_ckpt (struct sc_diff *d);
/* Would diff_wait_ckpt wait?  For a path that changes the state only
 * sometimes (marks): it looks first, and waits only to change. */
bool diff_ckpt_frozen (const struct sc_diff *d);
/* In the internals that change the state: a change while a checkpoint
 * streams is a missed diff_wait_ckpt (said; fatal under
 * sc_ckpt_strict, which the tests set). */
void diff_frozen_check (struct sc_diff *d, const char *what);
/* Store sb as the superblock (sc_sb_store).  Once one store succeeds,
 * no superblock copy on disk can point at a journal a failed one was
 * written for: their quarantined slots go back to the allocator; and a
 * stored FAILED flag records the failure (failure_recorded). */
int diff_sb_store (struct sc_diff *d, struct sc_sb_disk *sb);
/* Keep `slot` out of the allocator until a superblock store succeeds: a
 * journal that the disk may still follow may point at it. */
void diff_quarantine_slot (struct sc_diff *d, uint64_t slot);
/* Continue the replayed journal in place, recording the invalidations
 * this open decided if asked to. */
int ckpt_resume (struct sc_diff *d, uint64_t *chain, size_t nchain,
                 uint32_t end_pos, uint64_t end_seq, bool record_invalid);

/* ---- space.c ---------------------------------------------------------- */

/* The lowest free slot, preallocated (no limit, no policy). */
int space_take_slot (struct sc_diff *d, uint64_t *offset);

/* Would `extra` more data slots fit under max_bytes? */
bool space_fits (struct sc_diff *d, uint64_t max_bytes, uint64_t extra);
/* Room for one more snapshot under max-snapshots (dropping the oldest if
 * allowed): -EMFILE otherwise. */
int space_room_for_snapshot (struct sc_diff *d, bool delete_oldest);
/* The same under max-checkpoints, dropping the oldest checkpoint. */
int space_room_for_checkpoint (struct sc_diff *d, bool delete_oldest);
/* Apply drop number `total` to the history (replay and policy drops). */
void space_drop_push (struct sc_diff *d, const struct sc_drop_info *di,
                      uint64_t total);
/* The checkpoint's share: limit, discards and drop history records. */
int space_checkpoint (struct sc_diff *d, struct sc_journal *j);

/* ---- discard.c -------------------------------------------------------- */

/* Does snapshot s still need `chunk` (not discarded by its reader)? */
bool disc_needs (const struct snap *s, uint64_t chunk);
/* Room for the one extent disc_add may insert, so that it cannot fail. */
int disc_reserve (struct snap *s);
/* Add the chunks [first, first + count) to s's discards; -ENOMEM only
 * without a reservation. */
int disc_add (struct sc_diff *d, struct snap *s, uint64_t first,
              uint64_t count);

/* ---- origin-stamp.c --------------------------------------------------- */

/* At a clean close: the stamp given by sc_diff_origin_stamp_at_close, if
 * any, goes into d->sb (then stored with the CLEAN flag), and a server's
 * session marks it SC_STAMP_F_CLEAN_STOP. */
void diff_stamp_close (struct sc_diff *d);
/* A new random session id (not 0, not the superblock's), the lock held
 * (cow/session.c): 0, or a negative errno. */
int diff_session_new_id (struct sc_diff *d, uint64_t *id);

#endif
