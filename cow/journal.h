/* shadowcopy: the metadata journal of the diff area.
 *
 * An append-only chain of records (cow/format.h) in journal slots.  Appends
 * go to an in-memory tail; sc_journal_sync() writes the tail and
 * fdatasyncs, and concurrent callers share one leader's write and sync
 * (group commit).  Replay reads the chain back up to the last valid record.
 *
 * Locking: every function is called with the diff area's mutex held, and
 * sc_journal_sync() drops it while it does I/O.
 */
#ifndef SHADOWCOPY_COW_JOURNAL_H
#define SHADOWCOPY_COW_JOURNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/alloc.h"
#include "cow/format.h"

struct sc_journal_seg { uint64_t off; size_t len; size_t at; };

struct sc_journal {
  int fd;
  uint32_t chunk_size;
  uint32_t seed;                /* CRC seed: volume UUID and nonce */
  struct sc_alloc *alloc;

  uint64_t head_slot, head_seq; /* where replay starts */
  uint64_t slot;                /* slot being appended to */
  uint32_t pos;                 /* append offset in that slot */
  uint64_t spare;               /* next slot, allocated ahead (0: none) */
  uint64_t next_seq;            /* sequence number of the next record */
  uint64_t durable_seq;         /* records up to here are durable */
  uint64_t records;             /* records since head */

  uint64_t *chain;              /* journal slots, in order, incl. spare */
  size_t nchain, chain_cap;

  uint8_t *tail;                /* appended, not yet written */
  size_t tail_len, tail_cap;
  struct sc_journal_seg *segs;
  size_t nsegs, segs_cap;

  bool volatile_mode;           /* write records, never fdatasync */
  bool syncing;                 /* a leader is writing */
  bool held;                    /* no new lead (sc_journal_hold_leads) */
  /* Slots are zeroed when taken; that must be durable before records
   * are written into them (a torn write must show zeros, see replay). */
  uint64_t zeroed;              /* slots zeroed so far */
  uint64_t zeroed_durable;      /* of those, made durable by a sync */
  uint64_t spare_zeroed;        /* `zeroed` when the spare was taken */
  bool presync;                 /* the tail writes into a slot whose
                                   zeroing may not be durable yet */
  pthread_cond_t synced;
  /* Bumped each time a leader lets go (sc_journal_await's futex): a
   * follower waits on it without the diff area's mutex. */
  uint32_t leads_ended;
  uint32_t sleepers;            /* followers asleep on leads_ended */
  int error;                    /* sticky write error */
  int error_op;                 /* what failed: SC_JOURNAL_FAILED_* */
  uint64_t error_off;           /* the file offset of a failed write */
};

/* Which of the journal's writes failed (sc_journal_error). */
#define SC_JOURNAL_FAILED_WRITE 1       /* writing records */
#define SC_JOURNAL_FAILED_SYNC  2       /* the commit's fdatasync */
#define SC_JOURNAL_FAILED_APPEND 3      /* a commit marker, or a change's
                                           later record: no slot */
#define SC_JOURNAL_FAILED_HELD 4        /* leads held back for a record
                                           that must never be written */

uint32_t sc_journal_seed (const uint8_t uuid[16], uint64_t nonce);
/* Shared by journal.c and journal-replay.c: a record's CRC (bytes 4 to
 * len, seeded), and adding a slot to the chain. */
uint32_t sc_journal_rec_crc (uint32_t seed, const void *rec, size_t len);
int sc_journal_chain_push (struct sc_journal *j, uint64_t slot);

/* Start a new, empty journal: allocates its first slot and a spare. */
int sc_journal_start (struct sc_journal *j, int fd, uint32_t chunk_size,
                      uint32_t seed, struct sc_alloc *alloc,
                      uint64_t first_seq);
void sc_journal_free (struct sc_journal *j);

/* Continue the journal that replay found, after its last valid record
 * (`chain`, from sc_journal_replay, is taken over).  For when a
 * checkpoint cannot be written (no space): the torn tail, if any, is
 * zeroed first. */
int sc_journal_resume (struct sc_journal *j, int fd, uint32_t chunk_size,
                       uint32_t seed, struct sc_alloc *alloc,
                       uint64_t head_slot, uint64_t head_seq,
                       uint64_t *chain, size_t nchain, uint32_t end_pos,
                       uint64_t next_seq, uint64_t records);

/* Make `n` (a journal just written by a checkpoint) the journal `j`,
 * keeping j's condition variable, on which committers may sleep; wakes
 * them (n's records are durable, so are theirs).  j's chain is handed
 * back, to be freed once the superblock points at n. */
void sc_journal_replace (struct sc_journal *j, struct sc_journal *n,
                         uint64_t **old_chain, size_t *old_nchain);

/* Append a record (header filled in here).  *seq gets its number. */
int sc_journal_append (struct sc_journal *j, void *rec, size_t len,
                       uint64_t *seq);

/* Make every record up to `seq` durable.  `lock` is held on entry and
 * on return. */
int sc_journal_sync (struct sc_journal *j, uint64_t seq,
                     pthread_mutex_t *lock);

/* The write path's wait for a commit that another caller leads, without
 * taking `lock` back when it ends: every follower woken at once, none
 * queued behind the next on the mutex.  `lock` is held on entry.  True if
 * `seq` is durable, and `lock` is then released; false with `lock` still
 * held if the caller must call sc_journal_sync itself (no commit is being
 * written, the one that ended did not take `seq`, or the journal failed). */
bool sc_journal_await (struct sc_journal *j, uint64_t seq,
                       pthread_mutex_t *lock);
/* Hold back every lead until sc_journal_release_leads: records are appended to
 * the tail but none is written, so none becomes durable (a commit in
 * flight finishes).  Commits, leads and checkpoints wait meanwhile. */
void sc_journal_hold_leads (struct sc_journal *j);
void sc_journal_release_leads (struct sc_journal *j);
/* The records appended but not yet written, in order: the first after
 * `rec` (NULL: the first of all), or NULL.  While the leads are held, no
 * lead takes them: their holder may change one, then reseal it (its
 * CRC), and it is written as changed or not at all. */
struct sc_rec_hdr *sc_journal_unwritten (struct sc_journal *j,
                                         struct sc_rec_hdr *rec);
void sc_journal_reseal (const struct sc_journal *j, struct sc_rec_hdr *rec);
/* The tail must never be written (a record held back for a failed
 * origin flush, op SC_JOURNAL_FAILED_HELD; a change whose later record
 * could not be appended, SC_JOURNAL_FAILED_APPEND): the journal fails
 * (sticky), so every commit from now on returns `err` and nothing more
 * reaches the disk. */
void sc_journal_fail (struct sc_journal *j, int err, int op);

/* Is every record up to `seq` durable?  Read without the lock. */
bool sc_journal_durable (const struct sc_journal *j, uint64_t seq);

/* Write the tail now, without fdatasync (bounds memory in checkpoints). */
int sc_journal_write_tail (struct sc_journal *j);

/* Replay.  `apply` is called for every valid record but NEXT, in order; a
 * negative return stops replay with that error.  *chain, *nchain get the
 * journal slots visited (malloc'd); *records the count; *end_seq the
 * sequence number after the last valid record. */
/* `durable`: the journal is known durable up to this sequence number
 * (the best commit marker so far); records after it may be a torn tail
 * whose data never reached the disk. */
typedef int (*sc_journal_apply_fn) (void *opaque, const struct sc_rec_hdr *rec,
                                    uint64_t durable, char *err,
                                    size_t errlen);

/* A record that fails its checks ends the journal only when it can be a
 * torn write (see docs/design.md, "Journal"): nothing was written there,
 * or a 512-byte sector of it was not, and no commit marker covers it.  A
 * record that was written whole but fails its checks is damage, and
 * replay refuses it.  With SC_JOURNAL_TORN_ANY (a session that never
 * synced: durability=volatile, not closed cleanly) any damaged record
 * may be a torn tail. */
#define SC_JOURNAL_TORN_ANY 0x1
/* The journal was closed cleanly after record *durable (the input): it
 * ends there, and what follows is not looked at (unless it checks out as
 * the next record, which a clean close rules out: then the open refuses
 * the journal for not ending where it was closed). */
#define SC_JOURNAL_CLEAN 0x2

/* Salvage: with a `lost` callback, replay does not stop at damage but
 * goes on at the next record that checks out (in the same slot, or at
 * the start of another slot: a damaged NEXT record is searched past),
 * and reports the records it went past.  It never calls it for a torn
 * tail that no record or marker shows was acknowledged. */
#define SC_JOURNAL_LOST_TO_END UINT64_MAX
struct sc_journal_loss {
  uint64_t first_seq;           /* the first record lost */
  uint64_t last_seq;            /* the last one, or SC_JOURNAL_LOST_TO_END:
                                   the journal's end is lost with them */
  uint64_t offset;              /* byte offset of the damage in the file */
  const char *why;
};
typedef int (*sc_journal_lost_fn) (void *opaque,
                                   const struct sc_journal_loss *loss);

/* A commit marker that fails its checks but whose header reads exactly
 * the expected marker's (type, length, number) is damaged in its CRC or
 * durable_seq: it holds no state, so replay goes past it, as if it
 * vouched for nothing, and counts it in *marks (may be NULL); salvage
 * does not count it as lost. */
struct sc_journal_marks {
  uint64_t count;               /* damaged markers gone past */
  uint64_t first_seq;           /* the first of them */
  uint64_t first_offset;        /* its byte offset in the file */
};

int sc_journal_replay (int fd, uint32_t chunk_size, uint32_t seed,
                       uint64_t head_slot, uint64_t head_seq,
                       uint64_t max_slot, unsigned flags,
                       sc_journal_apply_fn apply, sc_journal_lost_fn lost,
                       void *opaque, uint64_t **chain, size_t *nchain,
                       uint32_t *end_pos, uint64_t *records, uint64_t *end_seq,
                       uint64_t *durable, struct sc_journal_marks *marks,
                       char *err, size_t errlen);
/* (*durable is also an input: what is known durable before replay, e.g.
 * everything before the clean-close point; 0 if nothing is.) */

/* ---- what the diff area asks of a journal ---------------------------- */

/* The sequence number the next record gets. */
uint64_t sc_journal_next_seq (const struct sc_journal *j);
/* Records since the head. */
uint64_t sc_journal_records (const struct sc_journal *j);
/* Slots the journal holds, its spare (allocated ahead) included; and the
 * spare alone (0 or 1), which is not yet part of the chain on disk. */
size_t sc_journal_slots (const struct sc_journal *j);
size_t sc_journal_spare_slots (const struct sc_journal *j);
/* Where replay of this journal starts. */
void sc_journal_head (const struct sc_journal *j, uint64_t *slot,
                      uint64_t *seq);
/* durability=volatile: records are written, never fdatasync'd. */
void sc_journal_set_volatile (struct sc_journal *j, bool volatile_mode);

/* Take the group-commit leader role for work of the caller's own (a
 * checkpoint): waits for the current leader, with `lock` held on entry
 * and return.  No commit writes the journal until sc_journal_unlead.
 * Returns the journal's sticky error, if any (then not leading). */
int sc_journal_lead (struct sc_journal *j, pthread_mutex_t *lock);
/* The same, whatever the sticky error: for the checkpoint that replaces
 * a failed journal (recovery), which never writes this one. */
void sc_journal_lead_failed (struct sc_journal *j, pthread_mutex_t *lock);

/* The sticky write error (0 if none), and which write it was, in words:
 * "writing the journal at slot 12 (offset 786432)" or "the journal
 * commit's fdatasync". */
int sc_journal_error (const struct sc_journal *j, char *what, size_t len);
void sc_journal_unlead (struct sc_journal *j);
/* Is a leader writing right now, or are leads held back? */
bool sc_journal_busy (const struct sc_journal *j);

/* Write the tail now if it holds `max` bytes or more (bounds the memory
 * of a long run of appends, e.g. a checkpoint's). */
int sc_journal_bound_tail (struct sc_journal *j, size_t max);
/* A journal just written in full and made durable (a checkpoint's). */
void sc_journal_mark_durable (struct sc_journal *j);
/* Give a journal that will never be used back: its slots to the
 * allocator, its memory freed. */
void sc_journal_abandon (struct sc_journal *j);

#endif
