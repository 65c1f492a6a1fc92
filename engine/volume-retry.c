/* shadowcopy: the volume's view of a failed diff area, the periodic
 * retry (see cow/failure.c for what failed means and how it recovers),
 * and the journal checkpoint in the background.
 *
 * A failed diff area is retried by the next snapshot creation, and by a
 * thread of the volume every retry interval (sc_volume_config.retry_ms),
 * so that it comes back by itself once its disk does: the thread does
 * the checkpoint I/O itself, never a control connection or a live
 * request.  It sleeps while the diff area is healthy (one check per
 * interval) and ends with the volume.  Its checkpoint holds the diff
 * area's lock through its I/O, but live writes and flushes of a failed
 * diff area do not take that lock (cow/copymap.c, cow/transaction.c), so
 * a slow, failing disk does not stall the live volume; only a write that
 * the fail-closed check must look at waits (cow/failure.c).
 *
 * The same thread is the diff area's checkpoint runner
 * (sc_diff_set_ckpt_runner): a commit that finds the journal long wakes
 * it, and it writes the online checkpoint, so the live write (or the
 * snapshot's hold) whose commit found it returns at once instead of
 * streaming the whole state.  The wake only signals retry_cond; the
 * thread looks at the due flag under retry_lock before it sleeps, and
 * the flag is set before the wake takes that lock, so no wake is lost.
 */
#include <config.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "engine/clock.h"
#include "engine/volume-impl.h"

#define RETRY_MS_DEFAULT 30000

void
sc_volume_diff_health (struct sc_volume *v, struct sc_diff_health *h)
{
  sc_diff_health (v->diff, h);
}

int
sc_volume_diff_recover (struct sc_volume *v)
{
  return sc_diff_recover (v->diff);
}

uint32_t
sc_vol_retry_ms (const struct sc_volume *v)
{
  return v->cfg.retry_ms ? v->cfg.retry_ms : RETRY_MS_DEFAULT;
}

/* Called by the diff area with its lock held: only a signal. */
static void
ckpt_wake (void *arg)
{
  struct sc_volume *v = arg;
  pthread_mutex_lock (&v->retry_lock);
  pthread_cond_broadcast (&v->retry_cond);
  pthread_mutex_unlock (&v->retry_lock);
}

static void
sleep_until (struct sc_volume *v, uint64_t at_ns)
{
  struct timespec ts = { .tv_sec = (time_t) (at_ns / 1000000000u),
                         .tv_nsec = (long) (at_ns % 1000000000u) };
  pthread_cond_timedwait (&v->retry_cond, &v->retry_lock, &ts);
}

static void *
retry_thread (void *arg)
{
  struct sc_volume *v = arg;
  uint64_t period = (uint64_t) sc_vol_retry_ms (v) * 1000000u;
  uint64_t next = sc_mono_ns () + period;       /* the next retry check */

  pthread_mutex_lock (&v->retry_lock);
  while (!v->retry_stop) {
    if (!sc_diff_ckpt_due (v->diff))
      sleep_until (v, next);
    if (v->retry_stop)
      break;
    pthread_mutex_unlock (&v->retry_lock);
    if (sc_diff_ckpt_due (v->diff))
      (void) sc_diff_ckpt_run (v->diff);        /* says how it went */
    if (sc_mono_ns () >= next) {
      struct sc_diff_health h;
      sc_diff_health (v->diff, &h);
      if (h.failed)
        (void) sc_diff_recover (v->diff);       /* says how it went */
      next = sc_mono_ns () + period;
    }
    pthread_mutex_lock (&v->retry_lock);
  }
  pthread_mutex_unlock (&v->retry_lock);
  return NULL;
}

int
sc_volume_start_retry (struct sc_volume *v)
{
  if (!v->origin || v->retry_started)
    return 0;
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_destroy (&v->retry_cond);
  pthread_cond_init (&v->retry_cond, &attr);
  pthread_condattr_destroy (&attr);
  int r = pthread_create (&v->retry, NULL, retry_thread, v);
  if (r != 0)
    return -r;
  v->retry_started = true;
  sc_diff_set_ckpt_runner (v->diff, ckpt_wake, v);
  return 0;
}

void
sc_vol_retry_stop (struct sc_volume *v)
{
  if (!v->retry_started)
    return;
  /* From now on commits write their checkpoints themselves (and the
   * close writes the last one): nothing wakes a thread that is gone. */
  sc_diff_set_ckpt_runner (v->diff, NULL, NULL);
  pthread_mutex_lock (&v->retry_lock);
  v->retry_stop = true;
  pthread_cond_broadcast (&v->retry_cond);
  pthread_mutex_unlock (&v->retry_lock);
  pthread_join (v->retry, NULL);
  v->retry_started = false;
}
