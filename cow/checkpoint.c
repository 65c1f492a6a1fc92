/* shadowcopy: checkpoints: rewriting the journal as the live state.
 *
 * Notes on the design
 *
 * A checkpoint writes the whole state (snapshots, counters, space records
 * and kept copies) as a compact new journal with a fresh nonce, makes all
 * of it durable, and only then switches the superblock to it; the old
 * journal's slots are freed after the switch.  A crash at any point
 * leaves one of the two journals in force, whole.  A read-write open
 * writes one (so start-up reads at most the live state plus what one
 * session appended, and a torn tail of the old journal is left behind
 * with the old chain), and a serving diff area writes one whenever its
 * journal grows long next to the state.
 *
 * While serving, the checkpoint takes the journal's group-commit leader
 * role, so no commit writes the old journal meanwhile, and every record
 * appended to the old one is covered: the state it describes is in
 * memory, hence in the checkpoint.  But for a keep's KEEP_CHECKPOINT,
 * applied only once durable: the checkpoint writes it again.
 *
 * It writes about 48 bytes per copy (104 for a copy with 16 block
 * checksums), so it must not hold the lock for its whole length: it
 * freezes the state instead.  While it runs (d->ckpt_running), every
 * path that would change the state (copies and marks, snapshots,
 * invalidations, space, discards, clones, revert, gc) waits for its end
 * (diff_wait_ckpt, right after taking the lock and after anything that
 * dropped it); the checkpoint streams the copies in slices of
 * sc_ckpt_slice, dropping the lock between them, and writes the new
 * journal's tail and makes it durable with the lock dropped.  Reads,
 * snapshot reads and writes that need no copy go on meanwhile; writes
 * that need one wait, as they did.  The new journal is the checkpoint's
 * own: only its slot allocation (d->alloc) needs the lock, and that
 * happens while appending, under it.  The switch (superblock store,
 * journal replace, freeing the old chain) is done under the lock at the
 * end.  A waiter holds nothing the checkpoint needs (the lock and the
 * leader role only), so none can deadlock it.
 *
 * Who writes it: the commit that finds the journal long only marks it
 * due when a runner is registered (the engine's volume thread), so a
 * live write does not stream the whole state before it is acknowledged;
 * the runner writes it.  Without a runner (tools, cow/ alone), or once
 * the journal is twice its limit (the runner stuck or slow), the commit
 * writes it itself.  Either way the commit made its own records durable
 * first.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/io.h"

/* A checkpoint's tail is written out each time it holds this much. */
#define CKPT_TAIL_MAX (1u << 20)
/* Copies an online checkpoint appends per hold of the lock: about 0.15 ms
 * of encoding and checksums. */
#define CKPT_SLICE 512

uint64_t (*sc_ckpt_limit_hook) (uint64_t live);
size_t sc_ckpt_slice = CKPT_SLICE;
void (*sc_ckpt_stream_hook) (struct sc_diff *d);
bool sc_ckpt_strict;

static bool
ckpt_other_thread (const struct sc_diff *d)
{
  return d->ckpt_running && !pthread_equal (d->ckpt_thread, pthread_self ());
}

bool
diff_ckpt_frozen (const struct sc_diff *d)
{
  return ckpt_other_thread (d);
}

void
diff_wait_ckpt (struct sc_diff *d)
{
  while (ckpt_other_thread (d)) {
    d->ckpt_waits++;
    pthread_cond_wait (&d->ckpt_done, &d->lock);
  }
}

void
diff_frozen_check (struct sc_diff *d, const char *what)
{
  if (!ckpt_other_thread (d))
    return;
  diff_say ("internal error: %s while a journal checkpoint runs", what);
  if (sc_ckpt_strict)
    abort ();
}

/* The online checkpoint starts and ends: the state is frozen between. */
static void
ckpt_freeze (struct sc_diff *d)
{
  d->ckpt_running = true;
  d->ckpt_thread = pthread_self ();
}

static void
ckpt_thaw (struct sc_diff *d)
{
  d->ckpt_running = false;
  pthread_cond_broadcast (&d->ckpt_done);
}

/* I/O of the checkpoint's own journal with the lock dropped: the state
 * is frozen, and nothing but the checkpoint touches j. */
static int
ckpt_unlocked_tail (struct sc_diff *d, struct sc_journal *j, size_t max,
                    bool sync)
{
  pthread_mutex_unlock (&d->lock);
  if (sc_ckpt_stream_hook)
    sc_ckpt_stream_hook (d);
  int r = sc_journal_bound_tail (j, max);
  if (r == 0 && sync)
    r = sc_io_fdatasync (d->fd);        /* even volatile */
  if (max > 0 && j->tail_len > 0)
    sched_yield ();             /* nothing written: let waiters in */
  pthread_mutex_lock (&d->lock);
  return r;
}

/* Keeps the journal under 3x the state plus 64k records, so start-up is
 * bounded.  Any kind of record counts: copies, but also snapshot creates
 * and deletes. */
static uint64_t
ckpt_journal_limit (const struct sc_diff *d)
{
  /* What a checkpoint writes: snapshots (and invalidations), the state,
   * the limit, discard extents, the drop history, and the copies. */
  uint64_t drops = d->drops_total < SC_DROP_HISTORY ? d->drops_total
                                                    : SC_DROP_HISTORY;
  uint64_t live = copymap_count (d) + 2 * d->nsnaps + 2 + d->ndisc_extents
                  + drops + clone_records (d) + revert_records (d);
  if (sc_ckpt_limit_hook)
    return sc_ckpt_limit_hook (live);
  return 2 * live + 65536;
}

bool
ckpt_journal_too_long (const struct sc_diff *d, uint64_t records)
{
  return records > ckpt_journal_limit (d);
}

/* Past twice the limit, a commit writes the checkpoint itself even with
 * a runner registered: the runner may be stuck (or slow), and the
 * journal must stay bounded.  The space reserve follows: a data slot is
 * granted only with the journal's current size free again (space.c), so
 * a journal at twice its limit reserves twice as much, and the
 * checkpoint, which writes the live state only, still fits in it. */
static bool
ckpt_journal_past_bound (const struct sc_diff *d, uint64_t records)
{
  uint64_t limit = ckpt_journal_limit (d);
  return limit <= UINT64_MAX / 2 && records > 2 * limit;
}

/* A checkpoint written where it was found due: the commit's thread, or
 * the runner's. */
static int
ckpt_write_due (struct sc_diff *d)
{
  int r = ckpt_write (d, 0, NULL, 0);
  if (r < 0 && sc_debug)
    sc_debug ("journal checkpoint: %s (the journal carries on, unless "
              "the superblock could not be stored either: then the diff "
              "area failed)", strerror (-r));
  return r;
}

void
ckpt_maybe (struct sc_diff *d)
{
  if (sc_journal_busy (&d->journal))
    return;
  uint64_t records = sc_journal_records (&d->journal);
  if (!ckpt_journal_too_long (d, records))
    return;
  if (d->ckpt_wake && !ckpt_journal_past_bound (d, records)) {
    /* The runner writes it: this commit's caller (a live write, a
     * snapshot's hold) does not wait for the whole stream. */
    if (!__atomic_exchange_n (&d->ckpt_due, true, __ATOMIC_ACQ_REL))
      d->ckpt_wake (d->ckpt_wake_arg);
    return;
  }
  if (d->ckpt_wake)
    diff_say ("the journal has grown to twice its checkpoint limit (%"
              PRIu64 " records) before the background checkpoint ran: "
              "written by a commit instead", records);
  (void) ckpt_write_due (d);
}

void
sc_diff_set_ckpt_runner (struct sc_diff *d, void (*wake) (void *arg),
                         void *arg)
{
  LOCKED (d);
  d->ckpt_wake = wake;
  d->ckpt_wake_arg = arg;
}

bool
sc_diff_ckpt_due (const struct sc_diff *d)
{
  return __atomic_load_n (&d->ckpt_due, __ATOMIC_ACQUIRE);
}

int
sc_diff_ckpt_run (struct sc_diff *d)
{
  LOCKED (d);
  return ckpt_run_due (d);
}

int
ckpt_run_due (struct sc_diff *d)
{
  /* Cleared first: a commit that finds the journal long again (this
   * checkpoint failed) notes it again and wakes the runner again. */
  if (!__atomic_exchange_n (&d->ckpt_due, false, __ATOMIC_ACQ_REL))
    return 0;
  if (!d->have_journal || d->failed)
    return 0;                   /* recovery writes one of its own */
  diff_wait_ckpt (d);           /* one written meanwhile (the bound) */
  if (!ckpt_journal_too_long (d, sc_journal_records (&d->journal)))
    return 0;
  int r = ckpt_write_due (d);
  return r < 0 ? r : 1;
}

struct ckpt {
  struct sc_diff *d;
  struct sc_journal *j;
  int err;
  bool online;                  /* the tail is written by the caller */
  uint64_t copies;              /* visited */
};

/* A data copy with per-block sums is written as COPY_SUMS; a zero copy,
 * or one a version-1 COPY record made (one CRC of the whole chunk), as
 * COPY. */
static bool
ckpt_copy (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct ckpt *k = opaque;
  uint8_t rec[SC_REC_MAX];
  struct sc_sums_entry e;
  if (k->err)
    return true;
  size_t len;
  int got = sc_copy_has_slot (c) ? sc_sums_get (&k->d->sums, c->slot, &e)
                                 : 0;
  if (got < 0) {
    k->err = got;               /* never a checkpoint without the sums */
    return true;
  }
  if (got > 0 && !e.whole)
    len = rec_copy_sums (rec, chunk, c, e.sums, k->d->sums.nsums);
  else
    len = rec_copy (rec, chunk, c);
  k->err = sc_journal_append (k->j, rec, len, NULL);
  if (!k->err && !k->online)
    k->err = sc_journal_bound_tail (k->j, CKPT_TAIL_MAX);
  k->copies++;
  return true;
}

/* The copies into j: offline in one visit; online in slices, with the
 * lock dropped between them and for each write of the tail. */
static int
ckpt_copies (struct sc_diff *d, struct sc_journal *j, bool online)
{
  struct ckpt k = { .d = d, .j = j, .online = online };
  if (!online) {
    int r = copymap_visit (d, ckpt_copy, &k);
    return r < 0 ? r : k.err;   /* a checkpoint short of copies loses them */
  }
  uint64_t cursor = 0, total = copymap_count (d);
  size_t slice = sc_ckpt_slice ? sc_ckpt_slice : 1;
  for (;;) {
    int done = copymap_visit_slice (d, &cursor, slice, ckpt_copy, &k);
    if (done < 0)
      return done;
    if (k.err)
      return k.err;
    int r = ckpt_unlocked_tail (d, j, CKPT_TAIL_MAX, false);
    if (r < 0)
      return r;
    if (done)
      break;
  }
  /* Frozen: every copy was seen once.  Anything else is a bug, and the
   * old journal stays in force. */
  if (k.copies != total || copymap_count (d) != total) {
    diff_say ("internal error: a journal checkpoint saw %" PRIu64
              " copies of %" PRIu64, k.copies, total);
    return -EIO;
  }
  return 0;
}

/* The whole state into j: snapshots first (replay checks they come in id
 * and epoch order), then the counters, then the copies (whose epochs the
 * counters bound), then a commit marker: the superblock switches to this
 * journal only once all of it is durable, so replay never needs to doubt
 * a checkpoint's records. */
/* The clones' chunks, online: in slices like the copies. */
static int
ckpt_clones (struct sc_diff *d, struct sc_journal *j)
{
  struct clone_cursor at = { 0, 0 };
  size_t slice = sc_ckpt_slice ? sc_ckpt_slice : 1;
  for (;;) {
    int done = clone_ckpt_data_slice (d, j, &at, slice, false);
    if (done < 0)
      return done;
    if (d->nclones == 0)
      return 0;
    int r = ckpt_unlocked_tail (d, j, CKPT_TAIL_MAX, false);
    if (r < 0 || done)
      return r;
  }
}

static int
ckpt_fill (struct sc_diff *d, struct sc_journal *j, bool online)
{
  uint8_t rec[SC_REC_MAX];
  int r = 0;
  size_t ci = 0;                /* clones go in id order among them */
  for (size_t i = 0; r == 0 && i <= d->nsnaps; i++) {
    uint64_t next = i < d->nsnaps ? d->snaps[i]->info.id : UINT64_MAX;
    for (; r == 0 && ci < d->nclones && d->clones[ci]->info.id < next; ci++)
      r = clone_ckpt_create (d, j, d->clones[ci]);
    if (i == d->nsnaps || r < 0)
      break;
    const struct sc_snapshot_info *s = &d->snaps[i]->info;
    if (d->snaps[i]->deleted)
      continue;
    r = rec_append_snapshot (j, s, NULL);
    if (r == 0 && s->invalid_reason != SC_VALID)
      r = sc_journal_append (j, rec, rec_invalid (rec, s), NULL);
    /* Its KEEP_CHECKPOINT is in the old journal's tail, which this
     * checkpoint covers, but applied only once durable (marks.c): carry
     * it, or the keep returns, frees the data, and a crash brings the
     * snapshot back.  (A recovery's, not online, finds every snapshot
     * invalid: failure.c.) */
    if (r == 0 && online && d->snaps[i]->keeping)
      r = sc_journal_append (j, rec, rec_keep_checkpoint (rec, s->id), NULL);
  }
  if (r == 0)
    r = sc_journal_append (j, rec, rec_state (rec, d->epoch, d->next_id),
                           NULL);
  if (r == 0)
    r = space_checkpoint (d, j);
  if (r == 0)
    r = revert_checkpoint (d, j);       /* after the state: its epoch */
  if (r == 0)
    r = ckpt_copies (d, j, online);
  if (r == 0 && !online)
    r = clone_ckpt_data (d, j);
  else if (r == 0)
    r = ckpt_clones (d, j);
  struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                .durable_seq = sc_journal_next_seq (j) - 1 };
  if (r == 0)
    r = sc_journal_append (j, &mark, sizeof mark, NULL);
  if (r == 0 && online)
    r = ckpt_unlocked_tail (d, j, 0, true);
  else if (r == 0)
    r = sc_journal_write_tail (j);
  return r;
}

/* The superblock flags of a read-write session. */
static uint32_t
session_flags (const struct sc_diff *d, uint32_t flags)
{
  flags &= ~(SC_SB_CLEAN | SC_SB_VOLATILE);
  return flags | (d->volatile_mode ? SC_SB_VOLATILE : 0);
}

/* ---- the superblock store, and journals it may point at ------------- *
 *
 * A superblock store that fails may still have written its copy: only
 * its fdatasync failed, or the write reached part of the disk.  Until a
 * later store succeeds (it writes the same copy, since a failed store
 * leaves the generation as it was), the newest copy on disk may point at
 * the journal the failed store was for.  That journal's slots are kept
 * out of the allocator meanwhile (quarantined): were they taken for
 * another journal, with another nonce, or for data, the next open would
 * follow that copy into slots holding something else and refuse the diff
 * area. */

void
diff_quarantine_slot (struct sc_diff *d, uint64_t slot)
{
  uint64_t *q = sc_array_room (d->quarantine, &d->quarantine_cap,
                               d->nquarantine, sizeof *q, 16);
  if (!q)
    return;                     /* it stays taken: never reused */
  d->quarantine = q;
  d->quarantine[d->nquarantine++] = slot;
}

static void
quarantine_journal (struct sc_diff *d, struct sc_journal *j)
{
  for (size_t i = 0; i < j->nchain; i++)
    diff_quarantine_slot (d, j->chain[i]);
  j->nchain = 0;                /* none goes back to the allocator */
  sc_journal_abandon (j);
}

int
diff_sb_store (struct sc_diff *d, struct sc_sb_disk *sb)
{
  int r = sc_sb_store (d->fd, sb);
  if (r < 0)
    return r;
  for (size_t i = 0; i < d->nquarantine; i++)
    sc_alloc_put (&d->alloc, d->quarantine[i]);
  d->nquarantine = 0;
  if (sb->flags & SC_SB_FAILED)
    failure_recorded (d);
  return 0;
}

/* Write a new journal holding the state, durably, and point the
 * superblock at it.  On failure nothing is left of it, but when the
 * superblock store failed (*sb_failed): its slots are quarantined. */
static int
ckpt_new_journal (struct sc_diff *d, uint64_t first_seq,
                  struct sc_journal *j, char *what, size_t len,
                  bool *sb_failed, bool online)
{
  uint64_t nonce;
  char dummy[8];
  if (!what) {
    what = dummy;
    len = sizeof dummy;
  }
  snprintf (what, len, "taking the slots of a new journal");
  if (getrandom (&nonce, sizeof nonce, 0) != sizeof nonce)
    return -EIO;
  int r = sc_journal_start (j, d->fd, d->chunk_size,
                            sc_journal_seed (d->sb.uuid, nonce), &d->alloc,
                            first_seq);
  if (r < 0)
    return r;
  sc_journal_set_volatile (j, d->volatile_mode);
  r = ckpt_fill (d, j, online);
  if (r < 0)
    (void) sc_journal_error (j, what, len);
  /* (online, ckpt_fill made it durable with the lock dropped) */
  if (r == 0 && !online &&
      (r = sc_io_fdatasync (d->fd)) < 0)                /* even volatile */
    snprintf (what, len, "the checkpoint's fdatasync");
  if (r == 0) {
    struct sc_sb_disk sb = d->sb;
    uint64_t head, head_seq;
    sc_journal_head (j, &head, &head_seq);
    sb.journal_head = head;
    sb.journal_seq = head_seq;
    sb.journal_nonce = nonce;
    sb.flags = session_flags (d, sb.flags) & ~SC_SB_FAILED;
    r = diff_sb_store (d, &sb);
    if (r == 0)
      d->sb = sb;
    else {
      snprintf (what, len, "writing the superblock");
      *sb_failed = true;
      quarantine_journal (d, j);
      return r;
    }
  }
  if (r < 0) {
    sc_journal_abandon (j);
    return r;
  }
  sc_journal_mark_durable (j);
  return 0;
}

int
ckpt_write (struct sc_diff *d, uint64_t first_seq, const uint64_t *old_chain,
            size_t old_nchain)
{
  bool online = d->have_journal;
  int r;
  if (online) {
    if ((r = sc_journal_lead (&d->journal, &d->lock)) < 0)
      return r;
    first_seq = sc_journal_next_seq (&d->journal);
    ckpt_freeze (d);
  }
  struct sc_journal j;
  bool sb_failed = false;
  r = ckpt_new_journal (d, first_seq, &j, NULL, 0, &sb_failed, online);
  if (r < 0 && online && sb_failed) {
    /* The newest superblock copy may point at the new journal, which
     * knows nothing of what the old one records from now on: store the
     * superblock in force again over it, or fail the diff area (nothing
     * more is recorded, and the FAILED flag says so, if it can). */
    int r2 = diff_sb_store (d, &d->sb);
    sc_journal_unlead (&d->journal);
    ckpt_thaw (d);
    if (r2 < 0) {
      char what[128];
      if (!d->failed) {
        snprintf (what, sizeof what, "writing the superblock (a journal "
                  "checkpoint)");
        failure_enter (d, r2, what);
      }
    }
    return r;
  }
  if (r < 0) {
    if (online) {
      sc_journal_unlead (&d->journal);
      ckpt_thaw (d);
    }
    return r;
  }
  if (online) {
    uint64_t *chain;
    size_t nchain;
    sc_journal_replace (&d->journal, &j, &chain, &nchain);
    for (size_t i = 0; i < nchain; i++)
      sc_alloc_put (&d->alloc, chain[i]);
    free (chain);
    clone_frees_durable (d);    /* the new journal maps none of them */
    ckpt_thaw (d);
  }
  else {
    d->journal = j;
    d->have_journal = true;
    for (size_t i = 0; i < old_nchain; i++)
      sc_alloc_put (&d->alloc, old_chain[i]);
  }
  return 0;
}

int
ckpt_replace_failed (struct sc_diff *d, char *what, size_t len)
{
  /* The failed journal is never written again: lead it whatever its
   * error, so that no committer touches it meanwhile. */
  sc_journal_lead_failed (&d->journal, &d->lock);
  struct sc_journal j;
  bool sb_failed = false;
  int r = ckpt_new_journal (d, sc_journal_next_seq (&d->journal), &j, what,
                            len, &sb_failed, false);
  if (r < 0) {
    sc_journal_unlead (&d->journal);
    return r;
  }
  uint64_t *chain;
  size_t nchain;
  sc_journal_replace (&d->journal, &j, &chain, &nchain);
  for (size_t i = 0; i < nchain; i++)
    sc_alloc_put (&d->alloc, chain[i]);
  free (chain);
  return 0;
}

int
ckpt_resume (struct sc_diff *d, uint64_t *chain, size_t nchain,
             uint32_t end_pos, uint64_t end_seq, bool record_invalid)
{
  int r = sc_journal_resume (&d->journal, d->fd, d->chunk_size,
                             sc_journal_seed (d->sb.uuid,
                                              d->sb.journal_nonce),
                             &d->alloc, d->sb.journal_head,
                             d->sb.journal_seq, chain, nchain, end_pos,
                             end_seq, d->replayed_records);
  if (r < 0)
    return r;
  d->have_journal = true;
  sc_journal_set_volatile (&d->journal, d->volatile_mode);
  /* First, in the write that follows: the records replay dropped stay
   * dropped once later commit markers vouch for them (replay-void.c).
   * They are durable before the superblock below records this boot. */
  r = void_append (d, &d->journal);
  uint8_t rec[SC_REC_MAX];
  for (size_t i = 0; record_invalid && r == 0 && i < d->nsnaps; i++)
    if (d->snaps[i]->info.invalid_reason != SC_VALID)
      r = sc_journal_append (&d->journal, rec,
                             rec_invalid (rec, &d->snaps[i]->info), NULL);
  if (r == 0)
    r = sc_journal_sync (&d->journal, sc_journal_next_seq (&d->journal) - 1,
                         &d->lock);
  /* Written: an open that fails from here on did not fail for want of
   * room for them (build_state's message). */
  if (r == 0)
    void_free (d);
  if (r == 0)
    r = sc_io_fdatasync (d->fd);
  struct sc_sb_disk sb = d->sb;
  sb.flags = session_flags (d, sb.flags);
  if (record_invalid)
    sb.flags &= ~SC_SB_FAILED;
  if (r == 0)
    r = diff_sb_store (d, &sb);
  if (r == 0)
    d->sb = sb;
  return r;
}
