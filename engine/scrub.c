/* shadowcopy: the scrub: every copy in the diff area read back and
 * verified, in the background, while the volume serves.
 *
 * Notes on the design
 *
 * One thread per volume at most, started by sc_volume_scrub_start.  It
 * walks the data slots in order with sc_diff_verify_next, which reads a
 * whole copy without holding the diff area's lock and checks every block
 * against its checksum; damage is handled there as on a snapshot read
 * (the snapshots that need the copy are marked damaged, durably, and a
 * damaged copy no valid snapshot needs is freed).  Live I/O is never
 * waited for and never waits: the scrub takes no range lock and holds the
 * diff area's lock only to look a slot up (a copy freed while it was read
 * is skipped there), and its pace is bounded by the rate (bytes per
 * second, 0 for none), kept by sleeping until the bytes read so far are
 * due.  The sleep is a wait on a condition variable, so stopping the
 * volume (sc_vol_scrub_free at close) ends it at once; a slot being read
 * is finished first.
 *
 * The status counts copies and bytes checked of the total the scrub
 * found at its start (copies made meanwhile in higher slots are checked
 * too, and raise the total), the damage found, the damaged copies freed,
 * read errors, and the start and end times (wall clock).
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

struct sc_scrub {
  pthread_mutex_t lock;         /* a leaf: guards everything below */
  pthread_cond_t wake;          /* stop, for the pacing sleep */
  pthread_t thread;
  bool joinable;                /* thread started and not joined */
  bool stop;
  struct sc_scrub_status st;
};

static uint64_t
wall_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

struct sc_scrub *
sc_vol_scrub_new (void)
{
  struct sc_scrub *s = calloc (1, sizeof *s);
  if (!s)
    return NULL;
  pthread_mutex_init (&s->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&s->wake, &attr);
  pthread_condattr_destroy (&attr);
  return s;
}

void
sc_vol_scrub_free (struct sc_scrub *s)
{
  if (!s)
    return;
  pthread_mutex_lock (&s->lock);
  s->stop = true;
  pthread_cond_broadcast (&s->wake);
  bool join = s->joinable;
  s->joinable = false;
  pthread_mutex_unlock (&s->lock);
  if (join)
    pthread_join (s->thread, NULL);
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->wake);
  free (s);
}

/* Sleep until `bytes` are due at `rate` since `t0` (monotonic), or the
 * scrub is stopped: false then. */
static bool
pace (struct sc_scrub *s, uint64_t t0, uint64_t bytes, uint64_t rate)
{
  pthread_mutex_lock (&s->lock);
  if (rate) {
    uint64_t due = t0 + (uint64_t) ((double) bytes * 1e9 / (double) rate);
    struct timespec ts = { .tv_sec = (time_t) (due / 1000000000u),
                           .tv_nsec = (long) (due % 1000000000u) };
    while (!s->stop && sc_mono_ns () < due)
      pthread_cond_timedwait (&s->wake, &s->lock, &ts);
  }
  bool go = !s->stop;
  pthread_mutex_unlock (&s->lock);
  return go;
}

/* One verified copy's results into the status. */
static void
note (struct sc_volume *v, const struct sc_copy_verify *cv, int r)
{
  struct sc_scrub *s = v->scrub;
  pthread_mutex_lock (&s->lock);
  if (r < 0)
    s->st.read_errors++;
  else {
    s->st.copies_checked++;
    s->st.bytes_checked += cv->bytes;
    s->st.damaged += cv->damaged;
    s->st.freed += cv->freed;
  }
  if (s->st.copies_checked > s->st.copies_total) {
    s->st.copies_total = s->st.copies_checked;
    s->st.bytes_total = s->st.bytes_checked;
  }
  pthread_mutex_unlock (&s->lock);
  if (r < 0)
    debug ("scrub: reading diff-area slot %" PRIu64 " (chunk %" PRIu64
           "): %s", cv->slot, cv->chunk, strerror (-r));
  else if (cv->damaged && sc_notice)
    sc_notice ("scrub: the copy of chunk %" PRIu64 " in diff-area slot %"
               PRIu64 " failed its checksum%s%s%s", cv->chunk, cv->slot,
               cv->needed_by[0] ? "; damaged snapshot(s): " : "",
               cv->needed_by, cv->freed ? "; the copy was freed" : "");
}

static void *
scrub_thread (void *opaque)
{
  struct sc_volume *v = opaque;
  struct sc_scrub *s = v->scrub;
  uint8_t *buf = malloc (v->chunk_size);
  uint64_t t0 = sc_mono_ns (), bytes = 0, rate = s->st.rate;
  struct sc_copy_verify cv;
  int r = buf ? 0 : -ENOMEM;

  for (uint64_t slot = 0; r == 0 && pace (s, t0, bytes, rate);
       slot = cv.slot + 1) {
    int e = sc_diff_verify_next (v->diff, slot, buf, &cv);
    if (e == 0)
      break;
    if (cv.walk_failed) {       /* no slot to skip: the scrub fails */
      r = e;
      break;
    }
    note (v, &cv, e);
    bytes += v->chunk_size;
  }
  free (buf);
  pthread_mutex_lock (&s->lock);
  s->st.running = false;
  s->st.stopped = s->stop;
  s->st.finished_ns = wall_ns ();
  s->st.error = -r;
  pthread_mutex_unlock (&s->lock);
  debug ("scrub: %s: %" PRIu64 " copies (%" PRIu64 " bytes) checked, %"
         PRIu64 " damaged", r < 0 ? "failed" : s->stop ? "stopped"
         : "finished", s->st.copies_checked, s->st.bytes_checked,
         s->st.damaged);
  return NULL;
}

int
sc_volume_scrub_start (struct sc_volume *v, uint64_t rate,
                       struct sc_scrub_status *out)
{
  struct sc_scrub *s = v->scrub;
  struct sc_diff_stats ds;

  if (sc_volume_offline (v))
    return -ENODEV;
  sc_diff_stats (v->diff, &ds);
  pthread_mutex_lock (&s->lock);
  if (s->st.running || s->stop) {
    if (out)
      *out = s->st;
    pthread_mutex_unlock (&s->lock);
    return s->stop ? -ESHUTDOWN : -EALREADY;
  }
  if (s->joinable) {            /* the previous scrub's thread has ended */
    pthread_join (s->thread, NULL);
    s->joinable = false;
  }
  memset (&s->st, 0, sizeof s->st);
  s->st.running = s->st.ever = true;
  s->st.rate = rate;
  s->st.started_ns = wall_ns ();
  s->st.copies_total = ds.data_slots;
  s->st.bytes_total = ds.data_slots * ds.chunk_size;
  int r = pthread_create (&s->thread, NULL, scrub_thread, v);
  if (r != 0) {
    s->st.running = s->st.ever = false;
    pthread_mutex_unlock (&s->lock);
    return -r;
  }
  s->joinable = true;
  if (out)
    *out = s->st;
  pthread_mutex_unlock (&s->lock);
  return 0;
}

void
sc_volume_scrub_status (struct sc_volume *v, struct sc_scrub_status *out)
{
  struct sc_scrub *s = v->scrub;
  pthread_mutex_lock (&s->lock);
  *out = s->st;
  pthread_mutex_unlock (&s->lock);
}
