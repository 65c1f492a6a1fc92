/* shadowcopy: the write-back queue: live writes acknowledged before their
 * copy-on-write is durable.
 *
 * Notes on the design
 *
 * The first write to a chunk after a snapshot costs a read of the old
 * chunk, its write to the diff area and a commit (fdatasync) before the
 * new data may reach the origin.  NBD lets a server acknowledge a write
 * without FUA before it is durable, as long as a later flush makes it so
 * and reads see it.  So such a write (sc_vol_wb_eligible) is queued here
 * and acknowledged; one thread takes every write queued so far, makes
 * their copies, commits all their records with ONE fdatasync, then writes
 * their data to the origin.  The client meanwhile sends more writes, and
 * the next batch is larger: the fdatasyncs amortise over many copies
 * instead of the 16 or so requests a client keeps in flight.
 *
 * What stays true:
 * - Invariant 1: the origin write of a queued write comes after the
 *   commit of its copies, in the same order as before, only later.
 * - A queued write holds its chunk range exclusively from before it is
 *   queued until its data is on the origin, so later writes, zeroes and
 *   trims of those chunks, and snapshot reads of them, wait for it.
 * - Live reads see queued data: sc_vol_wb_overlay_begin copies the queued
 *   data that overlaps the read, the read goes to the origin, then the
 *   copies are laid over it.  A write that completes in between has put
 *   the same data on the origin; queued writes never overlap each other
 *   (their ranges are exclusive).
 * - A flush waits until every write queued before it is on the origin,
 *   then flushes the origin (sc_volume_flush).  A write hold (snapshot
 *   creation, revert) drains the queue once the gate is closed, before the
 *   epoch changes: a snapshot holds every write acknowledged before it.
 *   From the moment a creation takes its slot (before its writers
 *   freeze and its hold), no write is queued, so the queue is empty or
 *   nearly so when the hold starts: the hold does not wait for batches.
 *   The thread needs no gate: a write is queued only inside the gate,
 *   so while the queue is not empty the epoch cannot change but in a
 *   hold, which waits for the queue to empty before it seals the gate.
 * - Bounded (invariant 7): SC_WB_MAX_ITEMS writes and SC_WB_MAX_BYTES of
 *   data at most; a writer reserves its room before it queues.  When the
 *   queue is full the write copies in its own request, as without the
 *   queue (backpressure: it is acknowledged once its data is on the
 *   origin), so many writers copy in parallel beside the thread.
 * - A queued write that fails after its acknowledgement (its copy is
 *   refused for a protected snapshot, the failed diff area refuses the
 *   change, the origin write fails) cannot fail its request any more: the
 *   error is kept and the next flush fails with it, as a kernel reports a
 *   failed write-back at fsync.  The log keeps it too until a flush has
 *   reported it, so that the next server's first flush fails with it if
 *   this one is killed or stops first (writeback-log.c).
 *
 * The queue is on when the volume's configuration asks for it
 * (write_back: the plugin's `write-back=on`).  It is off by default: an
 * acknowledged write then survives a kill of the server even without a
 * flush (it is in the origin's page cache), which a queued write does not.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "engine/clock.h"
#include "engine/volume-impl.h"
#include "engine/writeback-log.h"

_Static_assert (SC_WB_MAX_ITEMS == SC_WB_LOG_SLOTS &&
                SC_WB_MAX_WRITE <= SC_WB_LOG_SLOT_SIZE,
                "every queued write has a slot in the log");

struct wb_item {
  struct wb_item *next;
  struct sc_range range;        /* held exclusively while queued */
  uint64_t offset;
  uint32_t count;
  unsigned slot;                /* its slot in the log */
  uint64_t seq;                 /* order of queueing, from 1 */
  int err;                      /* its copy-on-write said no */
  uint8_t *data;                /* in the log's slot */
};

struct sc_writeback {
  pthread_mutex_t lock;         /* a leaf, but for the range lock taken
                                   outside it */
  pthread_cond_t work;          /* the thread: writes queued, or stop */
  pthread_cond_t done;          /* drains: writes completed */
  struct wb_item *head, *tail;
  size_t items, bytes;          /* reserved: queued or about to be */
  uint64_t free_slots;          /* the log's slots not reserved (bits) */
  struct sc_wb_log *log;        /* where queued writes live (their data
                                   survives a kill of the server) */
  size_t queued;                /* atomic: on the list */
  uint64_t last_seq;            /* the newest queued */
  uint64_t done_seq;            /* every write up to it is on the origin */
  int error;                    /* the first failure not yet reported */
  uint64_t err_lo, err_hi;      /* the seqs of the failed writes not yet
                                   reported are in [err_lo, err_hi] */
  unsigned reporting;           /* flushes that took a failure and have
                                   not returned it yet */
  bool reported;                /* one has returned since: the next flush
                                   clears the log's word */
  bool stop;
  bool started;                 /* the thread runs */
  pthread_t thread;
};

struct sc_wb_overlay {
  size_t n;
  struct { uint32_t at, len; } seg[SC_WB_MAX_ITEMS];
  uint8_t data[];               /* `count` bytes, segments at their place */
};

bool
sc_vol_wb_eligible (struct sc_volume *v, uint32_t count, unsigned flags)
{
  if (!v->wb || (flags & SC_FUA) || count > SC_WB_MAX_WRITE ||
      v->cfg.on_full == SC_ON_FULL_FAIL_WRITES ||
      sc_diff_revert_active (v->diff))
    return false;
  /* While a snapshot is being made, writes copy in their own request:
   * the queue empties before the hold, which then waits for no batch.
   * Read without hold_lock, which every write would otherwise take: a
   * write that misses a creation just begun is queued, as it would be
   * had it come a moment earlier, and the hold drains it. */
  return !__atomic_load_n (&v->creating, __ATOMIC_ACQUIRE);
}

/* ---- the thread ------------------------------------------------------- */

static void
note_error (struct sc_writeback *wb, const struct wb_item *it, int err)
{
  sc_say ("write-back: the write of %" PRIu32 " bytes at %" PRIu64
          " failed after its acknowledgement: %s (the next flush that "
          "covers it fails)", it->count, it->offset, strerror (-err));
  pthread_mutex_lock (&wb->lock);
  if (!wb->error) {
    wb->error = err;
    wb->err_lo = it->seq;
    sc_wb_log_note_lost (wb->log, -err);       /* before its slot is freed */
  }
  wb->err_hi = it->seq;         /* (completed in seq order) */
  pthread_mutex_unlock (&wb->lock);
}

/* Complete the first n queued writes: their copies, one commit, then
 * their data on the origin. */
static void
complete_batch (struct sc_volume *v, struct wb_item *first, size_t n)
{
  struct sc_writeback *wb = v->wb;
  uint64_t seq = 0;
  uint64_t lo[SC_WB_MAX_ITEMS] = { 0 }, hi[SC_WB_MAX_ITEMS] = { 0 };
  int err[SC_WB_MAX_ITEMS];
  /* The links between the first n were set before they were taken; the
   * n-th's is the queue's, which a writer may be setting: never read. */
  struct wb_item *items[SC_WB_MAX_ITEMS];
  for (size_t i = 0; i < n; i++) {
    items[i] = i ? items[i - 1]->next : first;
    lo[i] = items[i]->range.first;
    hi[i] = items[i]->range.last;
  }
  sc_vol_cow_ranges_deferred (v, n, lo, hi, err, &seq);
  for (size_t i = 0; i < n; i++)
    items[i]->err = err[i];
  if (seq) {
    int r = sc_diff_commit (v->diff, seq);
    if (r < 0)
      debug ("write-back: committing copy records: %s (every snapshot is "
             "now invalid)", strerror (-r));
  }
  for (size_t i = 0; i < n; i++) {
    struct wb_item *it = items[i];
    int r = it->err;
    if (r == 0) {
      sc_vol_watch_write (v);
      r = sc_diff_change_check (v->diff, it->range.first, it->range.last);
    }
    if (r == 0)
      r = sc_origin_pwrite (v->origin, it->data, it->count, it->offset,
                            false);
    if (r == 0)
      sc_counter_add (&v->bytes_written, it->count);
    else {
      if (r == -ENOSPC)
        COUNT (v, writes_refused, 1);
      note_error (wb, it, r);
    }
  }
}

static void *
wb_thread (void *arg)
{
  struct sc_volume *v = arg;
  struct sc_writeback *wb = v->wb;

  (void) pthread_setname_np (pthread_self (), "sc-writeback");
  pthread_mutex_lock (&wb->lock);
  for (;;) {
    if (!wb->head) {
      if (wb->stop)
        break;
      pthread_cond_wait (&wb->work, &wb->lock);
      continue;
    }
    /* Writes queued from now on wait for the next batch. */
    struct wb_item *first = wb->head;
    size_t n = wb->queued;
    pthread_mutex_unlock (&wb->lock);

    complete_batch (v, first, n);

    /* Off the list and out of the log before their ranges are free: a
     * read that misses them then finds their data on the origin, and
     * after a kill the next open does not write them again over a later
     * write of the same bytes. */
    pthread_mutex_lock (&wb->lock);
    struct wb_item *done = wb->head, *last = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
      last = wb->head;
      bytes += last->count;
      sc_wb_log_retire (wb->log, last->slot);
      wb->free_slots |= UINT64_C (1) << last->slot;
      wb->head = last->next;
    }
    if (!wb->head)
      wb->tail = NULL;
    __atomic_store_n (&wb->queued, wb->queued - n, __ATOMIC_RELEASE);
    wb->items -= n;
    wb->bytes -= bytes;
    wb->done_seq = last->seq;
    pthread_cond_broadcast (&wb->done);
    pthread_mutex_unlock (&wb->lock);

    for (size_t i = 0; i < n; i++) {
      struct wb_item *next = done->next;
      sc_rangelock_unlock (&v->chunks, &done->range);
      free (done);
      done = next;
    }
    pthread_mutex_lock (&wb->lock);
  }
  pthread_mutex_unlock (&wb->lock);
  return NULL;
}

/* The queue, with its log; `lost`: the error of a write a killed server
 * lost, for the first flush. */
static int
wb_begin (struct sc_volume *v, struct sc_wb_log *log, int lost, char *err,
          size_t errlen)
{
  struct sc_writeback *wb = calloc (1, sizeof *wb);
  if (!wb) {
    sc_wb_log_close (log, !lost);       /* (a lost write's error kept) */
    snprintf (err, errlen, "making the write-back queue: %s",
              strerror (ENOMEM));
    return -ENOMEM;
  }
  wb->log = log;
  wb->free_slots = ~UINT64_C (0);
  wb->error = -lost;                    /* err_lo = err_hi = 0: any flush */
  pthread_mutex_init (&wb->lock, NULL);
  pthread_cond_init (&wb->work, NULL);
  pthread_cond_init (&wb->done, NULL);
  v->wb = wb;
  return 0;
}

/* The message of a failed store of this session's id, after `written`
 * writes of a killed server's log. */
static void
session_failed (int r, size_t written, char *err, size_t errlen)
{
  if (written)
    snprintf (err, errlen, "recording this session in the diff area's "
              "superblock: %s (the %zu queued writes of the write-back log "
              "were written to the disk and the log deleted; nothing else "
              "was written, and the snapshots are as they were)",
              strerror (-r), written);
  else
    snprintf (err, errlen, "recording this session in the diff area's "
              "superblock: %s (nothing was written to the disk; the "
              "snapshots are as they were)", strerror (-r));
}

int
sc_vol_wb_start (struct sc_volume *v, const char *origin_path,
                 const char *diff_path, char *err, size_t errlen)
{
  uint8_t key[SC_WB_LOG_KEY];
  char *path = NULL, why[512];
  size_t written = 0;
  int r = sc_vol_wb_log_where (v, origin_path, key, &path, why, sizeof why);
  if (r == -ENOMEM) {
    snprintf (err, errlen, "the write-back log: %s", why);
    return r;
  }
  char *here = realpath (diff_path, NULL);      /* NULL: unknown */
  int lost = 0;
  if (r < 0)
    /* (Nor can a log a killed server left there be trusted; one that is
     * found later is dropped as another session's, cow/session.c.) */
    sc_say ("%sno write-back log of a killed server is looked for: %s",
            v->cfg.write_back ? "write-back is off, and " : "", why);
  /* First the writes a killed server acknowledged from its queue. */
  else if ((r = sc_vol_wb_recover (v, path, key, here, &written, &lost, err,
                                   errlen)) < 0)
    goto out;                           /* the open fails, the log kept */
  else if (r > 0) {
    sc_say ("write-back is off: another disk's log is where this one's "
            "would be");
    free (path);
    path = NULL;
  }
  /* This session may write the disk from now on: a log of an earlier
   * one that was not found here is no longer to be written.  Its own log
   * is made first (empty, a kill before the record loses nothing), so
   * that the record says whether there is one. */
  struct sc_wb_log_owner owner;
  struct sc_wb_log *log = NULL;
  if ((r = sc_diff_next_session (v->diff, &owner.session)) < 0) {
    session_failed (r, written, err, errlen);
    goto out;
  }
  (void) sc_diff_session_id (v->diff, owner.diff_uuid);
  sc_wb_log_owner_path (&owner, here);
  if (path && v->cfg.write_back &&
      sc_wb_log_create (path, key, &owner, lost, &log, why, sizeof why) < 0)
    sc_say ("write-back is off: its log: %s", why);
  if ((r = sc_diff_record_session (v->diff, owner.session,
                                   log != NULL)) < 0) {
    sc_wb_log_close (log, !lost);       /* (a lost write's error kept) */
    session_failed (r, written, err, errlen);
    goto out;
  }
  if (lost && !log) {
    /* No log of this session's: the old one keeps the error on file
     * until a flush has reported it. */
    v->wb_lost_log = strdup (path);     /* (NULL: it stays) */
    __atomic_store_n (&v->wb_lost, -lost, __ATOMIC_RELEASE);
  }
  r = log ? wb_begin (v, log, lost, err, errlen) : 0;
 out:
  free (here);
  free (path);
  return r;
}


/* With no queue: done with the log that kept a lost write's error;
 * `remove` it (the error was reported). */
static void
forget_lost_log (struct sc_volume *v, bool remove)
{
  if (v->wb_lost_log && remove && unlink (v->wb_lost_log) < 0 &&
      errno != ENOENT)
    sc_say ("write-back log %s: deleting it: %s", v->wb_lost_log,
            strerror (errno));
  free (v->wb_lost_log);
  v->wb_lost_log = NULL;
}

void
sc_vol_wb_stop (struct sc_volume *v)
{
  struct sc_writeback *wb = v->wb;
  if (!wb) {
    /* A lost write's error reported (by a flush that returned): its
     * log goes; otherwise it stays for the next server. */
    forget_lost_log (v, !v->wb_lost);
    return;
  }
  pthread_mutex_lock (&wb->lock);
  wb->stop = true;
  pthread_cond_broadcast (&wb->work);
  bool started = wb->started;
  pthread_mutex_unlock (&wb->lock);
  if (started)
    pthread_join (wb->thread, NULL);    /* it empties the queue first */
  if (wb->error)
    sc_say ("write-back: a queued write failed and no flush reported it "
            "(%s): the log keeps the failure for the first flush of the "
            "disk's next server", strerror (-wb->error));
  v->wb = NULL;
  /* Every write is on the origin; a failure no flush reported stays in
   * the log for the next server's first flush. */
  sc_wb_log_close (wb->log, !wb->error);
  sc_diff_wblog_closed (v->diff);
  pthread_mutex_destroy (&wb->lock);
  pthread_cond_destroy (&wb->work);
  pthread_cond_destroy (&wb->done);
  free (wb);
}

/* ---- writers, flushes, holds ------------------------------------------ */

int
sc_vol_wb_queue (struct sc_volume *v, const void *buf, uint32_t count,
                 uint64_t offset)
{
  struct sc_writeback *wb = v->wb;
  struct wb_item *it = malloc (sizeof *it);
  if (!it)
    return -EAGAIN;
  it->offset = offset;
  it->count = count;
  it->err = 0;
  it->next = NULL;

  /* Room first, then the range.  A full queue sends the write back to
   * copy in its own request: with many writers (several connections, a
   * deep queue) their copies then run in parallel, beside the thread's
   * batches, instead of all waiting for one thread. */
  pthread_mutex_lock (&wb->lock);
  /* The thread starts with the first queued write: a server opens its
   * volume before nbdkit forks into the background, and a thread made
   * then would not exist in the child. */
  if (!wb->started && !wb->stop &&
      pthread_create (&wb->thread, NULL, wb_thread, v) == 0)
    wb->started = true;
  if (!wb->started || wb->stop || wb->items >= SC_WB_MAX_ITEMS ||
      wb->bytes + count > SC_WB_MAX_BYTES) {
    pthread_mutex_unlock (&wb->lock);
    free (it);
    return -EAGAIN;
  }
  wb->items++;
  wb->bytes += count;
  it->slot = (unsigned) __builtin_ctzll (wb->free_slots);  /* items < 64 */
  wb->free_slots &= ~(UINT64_C (1) << it->slot);
  pthread_mutex_unlock (&wb->lock);

  it->data = sc_wb_log_data (wb->log, it->slot);
  memcpy (it->data, buf, count);
  uint32_t crc = crc32c (0, buf, count);
  sc_rangelock_lock (&v->chunks, &it->range, offset >> v->chunk_shift,
                     (offset + count - 1) >> v->chunk_shift, true);

  /* In the log from now on, behind any earlier write of its range: it
   * survives a kill of the server. */
  pthread_mutex_lock (&wb->lock);
  it->seq = ++wb->last_seq;
  sc_wb_log_publish (wb->log, it->slot, it->seq, offset, count, crc);
  if (wb->tail)
    wb->tail->next = it;
  else
    wb->head = it;
  wb->tail = it;
  __atomic_store_n (&wb->queued, wb->queued + 1, __ATOMIC_RELEASE);
  pthread_cond_signal (&wb->work);
  pthread_mutex_unlock (&wb->lock);
  return 0;
}

uint64_t
sc_vol_wb_drain (struct sc_volume *v)
{
  struct sc_writeback *wb = v->wb;
  if (!wb)
    return 0;
  pthread_mutex_lock (&wb->lock);
  uint64_t target = wb->last_seq;
  while (wb->done_seq < target)
    pthread_cond_wait (&wb->done, &wb->lock);
  pthread_mutex_unlock (&wb->lock);
  return target;
}

/* A flush reports the failures of the writes it covers (queued up to
 * `target`), and only those: a later write's failure is kept for the
 * flush that covers it.  Failures are kept as a range of seqs; a flush
 * that covers part of it reports it and keeps the rest, so a failure is
 * never missed (a later flush may fail for one already reported, never
 * pass over one that is not). */
int
sc_vol_wb_take_error (struct sc_volume *v, uint64_t target)
{
  struct sc_writeback *wb = v->wb;
  if (!wb)
    return __atomic_exchange_n (&v->wb_lost, 0, __ATOMIC_ACQ_REL);
  pthread_mutex_lock (&wb->lock);
  int r = 0;
  if (wb->error && wb->err_lo <= target) {
    r = wb->error;
    wb->reporting++;                    /* until sc_vol_wb_reported */
    if (wb->err_hi <= target)
      wb->error = 0;                    /* (the log's word stays) */
    else
      wb->err_lo = target + 1;
  }
  pthread_mutex_unlock (&wb->lock);
  return r;
}

/* The log keeps a failure's word until the flush that reported it has
 * returned: a kill before its reply goes out leaves the word, and the
 * next server reports the failure again, rather than never.  So the
 * word is cleared by the next flush to begin after that one returned
 * (sc_vol_wb_settle), unless another failure is waiting or another flush
 * that took one has not returned yet. */
void
sc_vol_wb_reported (struct sc_volume *v)
{
  struct sc_writeback *wb = v->wb;
  if (!wb) {
    __atomic_store_n (&v->wb_lost_returned, true, __ATOMIC_RELEASE);
    return;
  }
  pthread_mutex_lock (&wb->lock);
  wb->reporting--;
  wb->reported = true;
  pthread_mutex_unlock (&wb->lock);
}

void
sc_vol_wb_settle (struct sc_volume *v)
{
  struct sc_writeback *wb = v->wb;
  if (!wb) {
    /* (One failure at most, carried from the log at open.) */
    if (__atomic_exchange_n (&v->wb_lost_returned, false, __ATOMIC_ACQ_REL))
      forget_lost_log (v, true);
    return;
  }
  pthread_mutex_lock (&wb->lock);
  if (wb->reported && wb->reporting == 0) {
    if (!wb->error)
      sc_wb_log_note_lost (wb->log, 0);
    wb->reported = false;
  }
  pthread_mutex_unlock (&wb->lock);
}

/* ---- live reads ------------------------------------------------------- */

int
sc_vol_wb_overlay_begin (struct sc_volume *v, uint32_t count,
                         uint64_t offset, struct sc_wb_overlay **out)
{
  struct sc_writeback *wb = v->wb;
  *out = NULL;
  if (!wb || __atomic_load_n (&wb->queued, __ATOMIC_ACQUIRE) == 0)
    return 0;
  struct sc_wb_overlay *o = NULL;
  uint64_t end = offset + count;
  pthread_mutex_lock (&wb->lock);
  for (struct wb_item *it = wb->head; it; it = it->next) {
    uint64_t lo = it->offset > offset ? it->offset : offset;
    uint64_t hi = it->offset + it->count < end ? it->offset + it->count : end;
    if (lo >= hi)
      continue;
    if (!o) {
      if (!(o = malloc (sizeof *o + count))) {
        pthread_mutex_unlock (&wb->lock);
        return -ENOMEM;
      }
      o->n = 0;
      *out = o;
    }
    memcpy (o->data + (lo - offset), it->data + (lo - it->offset), hi - lo);
    o->seg[o->n].at = (uint32_t) (lo - offset);
    o->seg[o->n].len = (uint32_t) (hi - lo);
    o->n++;
  }
  pthread_mutex_unlock (&wb->lock);
  return 0;
}

void
sc_vol_wb_overlay_end (struct sc_wb_overlay *o, void *buf)
{
  if (!o)
    return;
  for (size_t i = 0; i < o->n; i++)
    memcpy ((uint8_t *) buf + o->seg[i].at, o->data + o->seg[i].at,
            o->seg[i].len);
  free (o);
}
