/* shadowcopy: the live volume during a revert: reads served from the
 * target, pending chunks completed before a change, the background copy,
 * and the live connections a revert refuses or revokes.
 *
 * Notes on the design
 *
 * cow/revert.c knows which chunks are pending (to do and not done); this
 * file writes them back.  Completing a chunk reads the target's view of
 * it (pinned, verified, as a snapshot read), writes it to the origin
 * through the copy-on-write path (so the saved snapshot and every
 * snapshot that reads the chunk from the origin get their copy first),
 * syncs the origin, and only then records REVERT_DONE: a chunk recorded
 * done holds the target's content durably, and a chunk not recorded is
 * served from the target whatever a crash left of its write back.  It
 * runs under the chunk's range lock held exclusively (and the gate
 * shared), as a write does, so a live read (range shared) sees a chunk
 * either pending, read from the target, or done, read from the origin.
 *
 * The background thread takes the next pending chunk, locks a batch of
 * up to 1 MiB from it, completes what is pending there, and sleeps so
 * that it writes at most `rate` bytes/s (default 64 MiB/s, as the
 * scrub: a fast disk's tenth, leaving the rest to the live volume; 0:
 * unbounded).  A failure (the diff area full under fail-writes, an I/O
 * error) is counted and retried after a second.  When nothing is
 * pending it records REVERT_END.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/clock.h"
#include "engine/volume-impl.h"

#define WINDOW 1024             /* chunks looked at per pending query */
#define RETRY_NS 1000000000ull

struct sc_revert {
  pthread_mutex_t lock;         /* a leaf: guards everything below */
  pthread_cond_t wake;          /* stop, for the pacing sleep */
  pthread_t thread;
  bool joinable, running, stop, paused;
  int error;
  uint64_t errors, rate, session_bytes, started_ns, started_mono;
  uint64_t rate_gen;            /* +1 at each change of the rate */
  uint64_t live_ticket;         /* the ticket new connections get */
  uint64_t revoked_below;       /* tickets below it are revoked (stored
                                   atomically: sc_volume_live_check) */
  uint64_t live_count;          /* open live connections (not revoked) */
  uint64_t tentative_below;     /* a revoke not final yet: tickets from
                                   it up to revoked_below may come back */
  uint64_t tentative_closed;    /* of those, closed meanwhile */
  bool starting;                /* a revert is being recorded: opens wait */
  pthread_cond_t started;       /* starting went back to false */
};

void (*sc_vol_revert_start_hook) (struct sc_volume *v, int phase);

static uint64_t
wall_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

struct sc_revert *
sc_vol_revert_new (void)
{
  struct sc_revert *rv = calloc (1, sizeof *rv);
  if (!rv)
    return NULL;
  pthread_mutex_init (&rv->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&rv->wake, &attr);
  pthread_cond_init (&rv->started, NULL);
  pthread_condattr_destroy (&attr);
  rv->live_ticket = 1;
  rv->revoked_below = 1;
  return rv;
}

/* Stop the background copy and wait for it. */
static void
revert_stop (struct sc_revert *rv)
{
  pthread_mutex_lock (&rv->lock);
  rv->stop = true;
  pthread_cond_broadcast (&rv->wake);
  bool join = rv->joinable;
  rv->joinable = false;
  pthread_mutex_unlock (&rv->lock);
  if (join)
    pthread_join (rv->thread, NULL);
}

void
sc_vol_revert_free (struct sc_revert *rv)
{
  if (!rv)
    return;
  revert_stop (rv);
  pthread_mutex_destroy (&rv->lock);
  pthread_cond_destroy (&rv->wake);
  pthread_cond_destroy (&rv->started);
  free (rv);
}

/* ---- completing pending chunks ------------------------------------------ */

/* The target's view of chunks [first, first + n) into buf. */
static int
read_target (struct sc_volume *v, uint64_t target, uint64_t first,
             uint64_t n, uint8_t *buf)
{
  struct sc_snapshot_info info;
  int r = sc_diff_snapshot_get (v->diff, target, &info);
  if (r < 0)
    return -EIO;                /* never serve what might be wrong */
  uint64_t off = first << v->chunk_shift, end = (first + n) << v->chunk_shift;
  if (end > v->size)
    end = v->size;
  r = sc_vol_read_pinned (v, info.epoch, buf, off, end);
  sc_diff_snapshot_put (v->diff, target);
  return r;
}

/* Write the target's content of the run [first, first + n) to the
 * origin through the copy-on-write path (not yet synced). */
static int
write_back (struct sc_volume *v, uint64_t target, uint64_t first,
            uint64_t n, uint8_t *buf)
{
  int r = read_target (v, target, first, n, buf);
  if (r == 0)
    r = sc_vol_cow_range (v, first, first + n - 1);
  if (r == 0) {
    sc_vol_watch_write (v);
    r = sc_diff_change_check (v->diff, first, first + n - 1);
  }
  uint64_t off = first << v->chunk_shift, len = n << v->chunk_shift;
  if (off + len > v->size)
    len = v->size - off;
  if (r == 0)
    r = sc_origin_pwrite (v->origin, buf, len, off, 0);
  return r;
}

/* The pending chunks of [first, last] in runs of at most batch_chunks:
 * written back, the origin synced, then recorded done. */
int
sc_vol_revert_complete (struct sc_volume *v, uint64_t first, uint64_t last)
{
  struct sc_revert_info ri;
  if (sc_diff_revert_info (v->diff, &ri) < 0)
    return 0;                   /* ended meanwhile */
  uint64_t pend[WINDOW], runs[WINDOW][2], next;
  uint8_t *buf = NULL;
  int r = 0;
  for (uint64_t c = first; c <= last && r == 0; c = next) {
    size_t n = sc_diff_revert_pending (v->diff, c, last, pend, WINDOW, &next);
    size_t nruns = 0;
    for (size_t i = 0; i < n; i++)
      if (nruns && runs[nruns - 1][0] + runs[nruns - 1][1] == pend[i] &&
          runs[nruns - 1][1] < v->batch_chunks)
        runs[nruns - 1][1]++;
      else {
        runs[nruns][0] = pend[i];
        runs[nruns++][1] = 1;
      }
    if (nruns && !buf && !(buf = malloc (v->batch_chunks * v->chunk_size)))
      return -ENOMEM;
    for (size_t i = 0; i < nruns && r == 0; i++)
      r = write_back (v, ri.target_id, runs[i][0], runs[i][1], buf);
    if (r == 0 && nruns)
      r = sc_origin_flush (v->origin);
    for (size_t i = 0; i < nruns && r == 0; i++)
      r = sc_diff_revert_done (v->diff, runs[i][0], runs[i][1]);
    if (r == 0 && nruns && v->revert) {
      pthread_mutex_lock (&v->revert->lock);
      for (size_t i = 0; i < nruns; i++)
        v->revert->session_bytes += runs[i][1] * v->chunk_size;
      pthread_mutex_unlock (&v->revert->lock);
    }
  }
  free (buf);
  return r;
}

/* ---- the live read ------------------------------------------------------- */

/* Read [off, end) of the origin, or of the target where `pending`. */
static int
read_piece (struct sc_volume *v, uint64_t target, bool pending, uint8_t *p,
            uint64_t off, uint64_t end)
{
  if (!pending)
    return sc_origin_pread (v->origin, p, end - off, off);
  struct sc_snapshot_info info;
  int r = sc_diff_snapshot_get (v->diff, target, &info);
  if (r < 0)
    return -EIO;                /* the target is invalid: never guess */
  r = sc_vol_read_pinned (v, info.epoch, p, off, end);
  sc_diff_snapshot_put (v->diff, target);
  return r;
}

int
sc_vol_revert_read (struct sc_volume *v, void *buf, uint32_t count,
                    uint64_t offset)
{
  struct sc_revert_info ri;
  struct sc_range range;
  uint64_t first = offset >> v->chunk_shift;
  uint64_t last = (offset + count - 1) >> v->chunk_shift;
  uint64_t pend[WINDOW], next;
  uint8_t *p = buf;
  int r = 0;

  sc_rangelock_lock (&v->chunks, &range, first, last, false);
  if (sc_diff_revert_info (v->diff, &ri) < 0) {   /* ended meanwhile */
    sc_rangelock_unlock (&v->chunks, &range);
    return sc_origin_pread (v->origin, buf, count, offset);
  }
  uint64_t pos = offset, end = offset + count;
  for (uint64_t c = first; c <= last && r == 0; c = next) {
    size_t n = sc_diff_revert_pending (v->diff, c, last, pend, WINDOW, &next);
    uint64_t stop = next > last ? end : next << v->chunk_shift;
    for (size_t i = 0; i <= n && r == 0; i++) {
      /* The origin up to the next pending chunk, then that chunk. */
      uint64_t at = i < n ? pend[i] << v->chunk_shift : stop;
      if (at < pos)
        at = pos;
      if (at > pos)
        r = read_piece (v, ri.target_id, false, p + (pos - offset), pos, at);
      pos = at;
      if (i == n || r < 0)
        break;
      uint64_t ce = (pend[i] + 1) << v->chunk_shift;
      ce = ce < end ? ce : end;
      r = read_piece (v, ri.target_id, true, p + (pos - offset), pos, ce);
      pos = ce;
    }
  }
  sc_rangelock_unlock (&v->chunks, &range);
  return r;
}

/* ---- the background copy ------------------------------------------------- */

/* Sleep until `due` (monotonic ns): PACE_DUE; or until the rate changes
 * from the one of generation `gen`: PACE_RATE; PACE_STOP once stopped. */
enum pace { PACE_STOP, PACE_DUE, PACE_RATE };
static enum pace
pace (struct sc_revert *rv, uint64_t due, uint64_t gen)
{
  pthread_mutex_lock (&rv->lock);
  struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u),
                         .tv_nsec = (long) (due % 1000000000u) };
  while (!rv->stop && rv->rate_gen == gen && sc_mono_ns () < due)
    pthread_cond_timedwait (&rv->wake, &rv->lock, &ts);
  enum pace p = rv->stop ? PACE_STOP : rv->rate_gen != gen ? PACE_RATE
                                                           : PACE_DUE;
  pthread_mutex_unlock (&rv->lock);
  return p;
}

/* One batch from the next pending chunk at or after *c: 0 with *c moved
 * on and *bytes counted, 1 when nothing is pending from *c, or an
 * error. */
static int
copy_batch (struct sc_volume *v, uint64_t *c, uint64_t *bytes)
{
  uint64_t nchunks = (v->size + v->chunk_size - 1) >> v->chunk_shift;
  uint64_t p, next;
  for (;;) {
    if (*c >= nchunks)
      return 1;
    if (sc_diff_revert_pending (v->diff, *c, nchunks - 1, &p, 1, &next)) {
      *c = p;
      break;
    }
    *c = next;
  }
  uint64_t last = *c + v->batch_chunks - 1;
  last = last < nchunks - 1 ? last : nchunks - 1;
  struct sc_range range;
  sc_gate_enter (&v->gate);
  sc_rangelock_lock (&v->chunks, &range, *c, last, true);
  uint64_t before = 0;
  pthread_mutex_lock (&v->revert->lock);
  before = v->revert->session_bytes;
  pthread_mutex_unlock (&v->revert->lock);
  int r = sc_vol_revert_complete (v, *c, last);
  sc_rangelock_unlock (&v->chunks, &range);
  sc_gate_leave (&v->gate);
  pthread_mutex_lock (&v->revert->lock);
  *bytes += v->revert->session_bytes - before;
  pthread_mutex_unlock (&v->revert->lock);
  if (r == 0)
    *c = last + 1;
  return r;
}

static void
note_error (struct sc_revert *rv, int r)
{
  pthread_mutex_lock (&rv->lock);
  rv->error = -r;
  rv->errors++;
  pthread_mutex_unlock (&rv->lock);
}

static void *
revert_thread (void *opaque)
{
  struct sc_volume *v = opaque;
  struct sc_revert *rv = v->revert;
  uint64_t t0 = sc_mono_ns (), bytes = 0, c = 0, gen = 0;
  for (;;) {
    pthread_mutex_lock (&rv->lock);
    uint64_t rate = rv->rate;
    if (rv->rate_gen != gen) {  /* a new rate paces from now on */
      gen = rv->rate_gen;
      t0 = sc_mono_ns ();
      bytes = 0;
    }
    pthread_mutex_unlock (&rv->lock);
    uint64_t due = rate ? t0 + (uint64_t) ((double) bytes * 1e9 /
                                           (double) rate) : 0;
    enum pace p = pace (rv, due, gen);
    if (p == PACE_STOP)
      break;
    if (p == PACE_RATE)
      continue;
    int r = copy_batch (v, &c, &bytes);
    if (r == 1) {
      r = sc_diff_revert_finish (v->diff);
      if (r == 1 || r == -ENOENT)
        break;                  /* ended */
      c = 0;                    /* something failed on the way: again */
      if (r == 0)
        continue;
    }
    if (r < 0) {
      note_error (rv, r);
      debug ("revert: chunk %" PRIu64 ": %s (retried in a second)", c,
             strerror (-r));
      if (pace (rv, sc_mono_ns () + RETRY_NS, gen) == PACE_STOP)
        break;
    }
  }
  pthread_mutex_lock (&rv->lock);
  rv->running = false;
  pthread_mutex_unlock (&rv->lock);
  debug ("revert: background copy %s after %" PRIu64 " bytes",
         sc_diff_revert_active (v->diff) ? "stopped" : "finished", bytes);
  return NULL;
}

/* Start the background copy unless it runs; the caller knows a revert
 * runs. */
static int
thread_start (struct sc_volume *v)
{
  struct sc_revert *rv = v->revert;
  struct sc_revert_info ri;
  if (sc_diff_revert_info (v->diff, &ri) < 0)
    return -ENOENT;
  pthread_mutex_lock (&rv->lock);
  if (rv->running || rv->stop) {
    pthread_mutex_unlock (&rv->lock);
    return rv->stop ? -ESHUTDOWN : 0;
  }
  if (rv->joinable) {
    pthread_join (rv->thread, NULL);
    rv->joinable = false;
  }
  rv->rate = ri.rate;
  rv->paused = false;
  rv->running = true;
  rv->session_bytes = 0;
  rv->started_ns = wall_ns ();
  rv->started_mono = sc_mono_ns ();
  int r = pthread_create (&rv->thread, NULL, revert_thread, v);
  if (r != 0)
    rv->running = false;
  else
    rv->joinable = true;
  pthread_mutex_unlock (&rv->lock);
  return -r;
}

void
sc_vol_revert_resume_at_open (struct sc_volume *v)
{
  struct sc_revert_info ri;
  if (sc_diff_revert_info (v->diff, &ri) < 0) {
    if (ri.ended_why[0] && sc_notice)
      sc_notice ("%s", ri.ended_why);
    return;
  }
  if (sc_notice)
    sc_notice ("the revert to snapshot %s resumes: %" PRIu64 " of %" PRIu64
               " chunks done; the live volume reads as %s meanwhile",
               ri.target, ri.done_chunks, ri.todo_chunks, ri.target);
  int r = thread_start (v);
  if (r < 0)
    debug ("revert: the background copy did not start: %s", strerror (-r));
}

int
sc_volume_revert_resume (struct sc_volume *v)
{
  if (sc_volume_offline (v))
    return -ENODEV;
  return thread_start (v);
}

/* ---- start and status ----------------------------------------------------- */

int
sc_volume_revert_plan (struct sc_volume *v, const char *name, bool save,
                       struct sc_revert_plan *plan)
{
  return sc_diff_revert_plan (v->diff, name, save, plan);
}

/* Refuse the live connections (with force, they will be revoked: see
 * revoke). */
/* Enter (on) or leave the recording of a revert: entering counts the
 * live connections (-EBUSY without SC_REVERT_FORCE if any, *live set)
 * and holds new ones off until it is left. */
static int
starting (struct sc_revert *rv, bool on, unsigned flags, uint64_t *live)
{
  pthread_mutex_lock (&rv->lock);
  int r = 0;
  if (on) {
    if (live)
      *live = rv->live_count;
    if (rv->live_count && !(flags & SC_REVERT_FORCE))
      r = -EBUSY;
    else
      rv->starting = true;
  }
  else {
    rv->starting = false;
    pthread_cond_broadcast (&rv->started);
  }
  pthread_mutex_unlock (&rv->lock);
  return r;
}

static int
check_live (struct sc_volume *v, unsigned flags, uint64_t *live)
{
  struct sc_revert *rv = v->revert;
  pthread_mutex_lock (&rv->lock);
  uint64_t n = rv->live_count;
  pthread_mutex_unlock (&rv->lock);
  if (live)
    *live = n;
  return n && !(flags & SC_REVERT_FORCE) ? -EBUSY : 0;
}

/* What a revoke undoes if the revert then fails to start. */
struct revoked { uint64_t below, count; };

/* Revoke every live connection open now; called under the hold, so that
 * no request of theirs is in the engine and every later one sees it
 * (sc_volume_live_write and the others check under the gate). */
static void
revoke (struct sc_revert *rv, struct revoked *was)
{
  pthread_mutex_lock (&rv->lock);
  *was = (struct revoked) { rv->revoked_below, rv->live_count };
  rv->tentative_below = rv->revoked_below;
  rv->tentative_closed = 0;
  __atomic_store_n (&rv->revoked_below, ++rv->live_ticket,
                    __ATOMIC_RELEASE);
  rv->live_count = 0;
  pthread_mutex_unlock (&rv->lock);
}

/* The revert did not start: the revoked connections work again (those
 * opened since keep their ticket, which stays valid). */
static void
unrevoke (struct sc_revert *rv, const struct revoked *was)
{
  pthread_mutex_lock (&rv->lock);
  __atomic_store_n (&rv->revoked_below, was->below, __ATOMIC_RELEASE);
  rv->live_count += was->count - rv->tentative_closed;
  rv->tentative_below = rv->tentative_closed = 0;
  pthread_mutex_unlock (&rv->lock);
}

/* The revert started: the revoke is final. */
static void
revoke_final (struct sc_revert *rv)
{
  pthread_mutex_lock (&rv->lock);
  rv->tentative_below = rv->tentative_closed = 0;
  pthread_mutex_unlock (&rv->lock);
}

int
sc_volume_revert_start (struct sc_volume *v, const char *name,
                        const char *save, uint64_t rate, unsigned flags,
                        uint64_t *live, struct sc_revert_status *out)
{
  if (live)
    *live = 0;
  if (sc_volume_offline (v))
    return -ENODEV;
  struct sc_revert_plan plan;
  int r = sc_diff_revert_plan (v->diff, name, save != NULL, &plan);
  if (r == 0 && !plan.fits)
    r = -ENOSPC;
  if (r == 0)
    r = check_live (v, flags, live);
  if (r < 0)
    return r;
  if ((r = sc_volume_create_begin (v)) < 0)
    return r;
  r = sc_volume_hold (v);
  if (r == 0 && (r = sc_vol_hold_flush (v)) < 0)
    sc_volume_release (v);
  struct sc_revert_info ri;
  if (r == 0) {
    if (sc_vol_revert_start_hook)
      sc_vol_revert_start_hook (v, 0);
    /* Counted again under the hold, new connections held off until the
     * revert is recorded or refused; revoked only under the hold, and
     * only for a revert that starts. */
    r = starting (v->revert, true, flags, live);
    bool entered = r == 0, revoked = r == 0 && (flags & SC_REVERT_FORCE);
    struct revoked was = { 0, 0 };
    if (revoked)
      revoke (v->revert, &was);
    if (r == 0 && sc_vol_revert_start_hook)
      sc_vol_revert_start_hook (v, 1);
    if (r == 0)
      r = sc_diff_revert_start (v->diff, name, save, rate, &ri);
    if (revoked && r < 0)
      unrevoke (v->revert, &was);
    else if (revoked)
      revoke_final (v->revert);
    if (entered)
      starting (v->revert, false, 0, NULL);
    sc_volume_release (v);
  }
  sc_volume_create_end (v);
  if (r == 0 && !(flags & SC_REVERT_PAUSED))
    r = thread_start (v);
  else if (r == 0) {
    pthread_mutex_lock (&v->revert->lock);
    v->revert->paused = true;
    v->revert->rate = rate;
    pthread_mutex_unlock (&v->revert->lock);
  }
  if (r == 0 && out)
    sc_volume_revert_status (v, out);
  return r;
}

int
sc_volume_revert_set_rate (struct sc_volume *v, uint64_t rate)
{
  int r = sc_diff_revert_set_rate (v->diff, rate);
  if (r < 0)
    return r;
  pthread_mutex_lock (&v->revert->lock);
  v->revert->rate = rate;
  v->revert->rate_gen++;
  pthread_cond_broadcast (&v->revert->wake);
  pthread_mutex_unlock (&v->revert->lock);
  return 0;
}

int
sc_volume_revert_status (struct sc_volume *v, struct sc_revert_status *st)
{
  struct sc_revert *rv = v->revert;
  memset (st, 0, sizeof *st);
  int r = sc_diff_revert_info (v->diff, &st->info);
  pthread_mutex_lock (&rv->lock);
  st->running = rv->running;
  st->paused = rv->paused;
  st->error = rv->error;
  st->errors = rv->errors;
  st->rate = rv->running || rv->paused ? rv->rate : st->info.rate;
  st->session_bytes = rv->session_bytes;
  st->started_ns = rv->started_ns;
  uint64_t elapsed = sc_mono_ns () - rv->started_mono;
  pthread_mutex_unlock (&rv->lock);
  st->bytes_todo = st->info.todo_chunks * v->chunk_size;
  st->bytes_done = st->info.done_chunks * v->chunk_size;
  uint64_t left = st->bytes_todo - st->bytes_done;
  double seen = elapsed && st->session_bytes
                ? (double) st->session_bytes * 1e9 / (double) elapsed : 0;
  /* The background copy never goes faster than its rate, on average:
   * its first batch, unpaced, does not count as a speed. */
  double speed = seen && (!st->rate || seen < (double) st->rate)
                 ? seen : (double) st->rate;
  st->eta_s = left == 0 ? 0 : speed > 0 ? (uint64_t) (left / speed + 0.5)
                                        : UINT64_MAX;
  return r;
}

/* ---- live connections ------------------------------------------------------ */

uint64_t
sc_volume_live_open (struct sc_volume *v)
{
  struct sc_revert *rv = v->revert;
  pthread_mutex_lock (&rv->lock);
  /* Not while a revert is being recorded: the connection could read the
   * content from before it and keep it in its cache. */
  while (rv->starting)
    pthread_cond_wait (&rv->started, &rv->lock);
  uint64_t t = rv->live_ticket;
  rv->live_count++;
  pthread_mutex_unlock (&rv->lock);
  return t;
}

void
sc_volume_live_close (struct sc_volume *v, uint64_t ticket)
{
  struct sc_revert *rv = v->revert;
  pthread_mutex_lock (&rv->lock);
  if (ticket >= rv->revoked_below && rv->live_count)
    rv->live_count--;           /* a revoked one was no longer counted */
  else if (rv->tentative_below && ticket >= rv->tentative_below)
    rv->tentative_closed++;     /* unless the revoke is undone */
  pthread_mutex_unlock (&rv->lock);
}

int
sc_volume_live_check (struct sc_volume *v, uint64_t ticket)
{
  struct sc_revert *rv = v->revert;
  /* Every request asks, twice for a write: a ticket at or above
   * revoked_below is valid whatever else the lock guards says, so one
   * atomic load answers for all but the revoked and the tentative. */
  if (ticket >= __atomic_load_n (&rv->revoked_below, __ATOMIC_ACQUIRE))
    return 0;
  pthread_mutex_lock (&rv->lock);
  /* A revoke not final yet (a forced revert being recorded, under its
   * write hold) does not fail requests: the revert may still be refused,
   * and the engine checks again under the write gate, when it is final. */
  bool ok = ticket >= rv->revoked_below ||
            (rv->tentative_below && ticket >= rv->tentative_below);
  pthread_mutex_unlock (&rv->lock);
  return ok ? 0 : -ESHUTDOWN;
}

uint64_t
sc_volume_live_count (struct sc_volume *v)
{
  struct sc_revert *rv = v->revert;
  pthread_mutex_lock (&rv->lock);
  uint64_t n = rv->live_count;
  pthread_mutex_unlock (&rv->lock);
  return n;
}
