/* shadowcopy: snapshot creation, deletion and lookups (see the notes in
 * volume.c on creation and holds). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/volume-impl.h"

#define PREFLUSH_MAX 4                  /* origin flushes before a hold */
#define PREFLUSH_QUICK_NS 1000000       /* a flush this quick is enough */

int
sc_volume_create_begin (struct sc_volume *v)
{
  int r = 0;
  if (!v->origin)
    return -ENODEV;             /* offline: nothing to take a snapshot of */
  pthread_mutex_lock (&v->hold_lock);
  if (v->creating)
    r = -EBUSY;
  else
    __atomic_store_n (&v->creating, true, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&v->hold_lock);
  return r;
}

void
sc_volume_create_end (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  __atomic_store_n (&v->creating, false, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&v->hold_lock);
}

bool
sc_volume_create_busy (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  bool busy = v->creating;
  pthread_mutex_unlock (&v->hold_lock);
  return busy;
}

/* Flush before the hold, so that the flush inside it has little to do.
 * Under a steady write load the first flush finds a lot dirty and takes
 * long, while new writes dirty more: flush again (a few times at most)
 * until one is quick, since the in-hold flush will take about as long as
 * the last one did. */
static int
preflush (struct sc_volume *v)
{
  for (int i = 0; i < PREFLUSH_MAX; i++) {
    uint64_t t = sc_mono_ns ();
    int r = sc_origin_flush (v->origin);
    if (r < 0)
      return r;
    if (sc_mono_ns () - t < PREFLUSH_QUICK_NS)
      break;
  }
  return 0;
}

int
sc_volume_hold (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  bool ok = v->creating && !v->holding;
  pthread_mutex_unlock (&v->hold_lock);
  if (!ok)
    return -EINVAL;
  /* From here on, a failed sync of the origin by anyone may have been
   * the loss of what the snapshot shows (snapshot_origin_flush). */
  uint64_t failures = sc_origin_failures (v->origin);
  /* A failed diff area's recovery writes a checkpoint: before the hold,
   * so that writes do not wait for it. */
  int r = sc_diff_recover (v->diff);
  if (r < 0)
    return r;
  r = preflush (v);
  if (r < 0)
    return r;

  /* New writes wait from the moment the gate closes, while those in
   * flight drain, except those waiting for their copies to be durable
   * (engine/gate.h): the hold starts here. */
  uint64_t start = sc_mono_ns ();
  sc_gate_close (&v->gate);
  sc_vol_wb_drain (v);          /* acknowledged writes belong before it */
  sc_gate_seal (&v->gate);
  uint64_t drained = sc_mono_ns ();
  pthread_mutex_lock (&v->hold_lock);
  v->holding = true;
  v->hold_start = start;
  v->hold_drained = drained;
  v->hold_flush_ns = 0;
  v->hold_failures = failures;
  pthread_mutex_unlock (&v->hold_lock);
  return 0;
}

/* The origin's flush for the snapshot of a hold: it fails if any sync of
 * the origin failed since the hold began, this one or another's.  The
 * kernel reports a lost write-back once, to the first sync after it: a
 * client's flush during the creation may take the error of data that the
 * snapshot shows, and this flush then succeeds. */
static int
snapshot_origin_flush (struct sc_volume *v)
{
  int r = sc_origin_flush (v->origin);
  pthread_mutex_lock (&v->hold_lock);
  uint64_t failures = v->hold_failures;
  pthread_mutex_unlock (&v->hold_lock);
  if (r == 0 && sc_origin_failures (v->origin) != failures)
    r = -EIO;
  return r;
}

/* The origin's flush under the hold: what a snapshot shows of the origin
 * must be durable before the snapshot is. */
int
sc_vol_hold_flush (struct sc_volume *v)
{
  uint64_t t = sc_mono_ns ();
  int r = snapshot_origin_flush (v);
  pthread_mutex_lock (&v->hold_lock);
  v->hold_flush_ns += sc_mono_ns () - t;
  pthread_mutex_unlock (&v->hold_lock);
  return r;
}

int
sc_volume_hold_commit (struct sc_volume *v, const char *name,
                       const struct sc_snapshot_opts *opts,
                       struct sc_snapshot_info *out)
{
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  pthread_mutex_lock (&v->hold_lock);
  bool ok = v->holding;
  pthread_mutex_unlock (&v->hold_lock);
  if (!ok)
    return -EINVAL;
  int r = sc_vol_hold_flush (v);
  return r < 0 ? r : sc_diff_snapshot_create (v->diff, name, opts, out);
}

uint64_t
sc_volume_release (struct sc_volume *v)
{
  pthread_mutex_lock (&v->hold_lock);
  if (!v->holding) {
    pthread_mutex_unlock (&v->hold_lock);
    return 0;
  }
  uint64_t now = sc_mono_ns ();
  uint64_t held = now - v->hold_start;
  uint64_t drain = v->hold_drained - v->hold_start;
  uint64_t flush = v->hold_flush_ns;
  v->holding = false;
  v->holds[v->nholds++ % SC_HOLD_SAMPLES] = held;
  pthread_mutex_unlock (&v->hold_lock);
  sc_gate_open (&v->gate);
  debug ("writes held for %" PRIu64 " us: drain %" PRIu64 " us, origin "
         "flush %" PRIu64 " us, record %" PRIu64 " us", held / 1000,
         drain / 1000, flush / 1000, (held - drain - flush) / 1000);
  return held;
}

/* The journal's write and sync of the snapshot's record wait outside
 * the hold: writes after the release commit after the record (one
 * journal, in order), so none reaches the origin before the snapshot is
 * durable, and a crash before that forgets the snapshot and the copies
 * made for it alike.  The origin's flush is outside too: the snapshot
 * must not become durable before what it shows of the origin, so the
 * journal's commits are held back from the record until the flush is
 * done (sc_diff_snapshot_record_held).  Writes after the release make
 * their copies meanwhile and wait for their commits; the hold is the
 * drain alone. */
int
sc_volume_hold_commit_release (struct sc_volume *v, const char *name,
                               const struct sc_snapshot_opts *opts,
                               struct sc_snapshot_info *out,
                               uint64_t *held_ns)
{
  *held_ns = 0;
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  pthread_mutex_lock (&v->hold_lock);
  bool ok = v->holding;
  pthread_mutex_unlock (&v->hold_lock);
  if (!ok)
    return -EINVAL;
  uint64_t seq;
  struct sc_snapshot_info s;
  int r = sc_diff_snapshot_record_held (v->diff, name, opts, &s, &seq);
  if (r < 0)
    return r;
  if (out)
    *out = s;
  *held_ns = sc_volume_release (v);
  uint64_t t = sc_mono_ns ();
  int flushed = snapshot_origin_flush (v);
  debug ("snapshot %s: origin flush %" PRIu64 " us after the release%s",
         s.name, (sc_mono_ns () - t) / 1000, flushed < 0 ? ", failed" : "");
  sc_diff_snapshot_settle (v->diff, s.id, flushed);
  r = sc_diff_commit (v->diff, seq);
  if (flushed < 0) {
    /* Invalid, so never served; the creation failed, so not kept. */
    (void) sc_volume_snapshot_delete_uuid (v, s.name, s.uuid);
    return flushed;
  }
  return r;
}

int
sc_volume_snapshot_create (struct sc_volume *v, const char *name,
                           const struct sc_snapshot_opts *opts,
                           struct sc_snapshot_info *out)
{
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  int r = sc_volume_create_begin (v);
  if (r < 0)
    return r;
  r = sc_volume_hold (v);
  if (r == 0) {
    uint64_t held;
    r = sc_volume_hold_commit_release (v, name, opts, out, &held);
    if (held == 0)
      sc_volume_release (v);
  }
  sc_volume_create_end (v);
  return r;
}

void
sc_volume_hold_stats (struct sc_volume *v, struct sc_hold_stats *st)
{
  uint64_t sorted[SC_HOLD_SAMPLES];
  memset (st, 0, sizeof *st);
  pthread_mutex_lock (&v->hold_lock);
  size_t n = v->nholds < SC_HOLD_SAMPLES ? v->nholds : SC_HOLD_SAMPLES;
  st->count = v->nholds;
  if (n)
    st->last_ns = v->holds[(v->nholds - 1) % SC_HOLD_SAMPLES];
  memcpy (sorted, v->holds, n * sizeof *sorted);
  pthread_mutex_unlock (&v->hold_lock);
  if (n == 0)
    return;
  sc_vol_percentiles (sorted, n, &st->p50_ns, &st->p99_ns);
  st->max_ns = sorted[n - 1];
}

/* ---- deletion and lookups ------------------------------------------- */

int
sc_volume_snapshot_delete (struct sc_volume *v, const char *name)
{
  return sc_diff_snapshot_delete (v->diff, name);
}

int
sc_volume_snapshot_delete_uuid (struct sc_volume *v, const char *name,
                                const uint8_t uuid[16])
{
  return sc_diff_snapshot_delete_uuid (v->diff, name, uuid);
}

int
sc_volume_snapshot_list (struct sc_volume *v, struct sc_snapshot_info **out,
                         size_t *n)
{
  return sc_diff_snapshot_list (v->diff, out, n);
}

int
sc_volume_snapshot_lookup (struct sc_volume *v, const char *name,
                           struct sc_snapshot_info *out)
{
  return sc_diff_snapshot_lookup (v->diff, name, out);
}

int
sc_volume_snapshot_keep_checkpoint (struct sc_volume *v, const char *name)
{
  return sc_diff_snapshot_keep_checkpoint (v->diff, name);
}

int
sc_volume_changes (struct sc_volume *v, uint64_t from_id, uint64_t to_id,
                   uint64_t start, struct sc_chunk_range *out, size_t max,
                   size_t *n, uint64_t *next)
{
  /* A queued write is acknowledged and read back on the live volume
   * before its copy or mark exists: a diff to the live volume waits for
   * the queue, or it would leave such a chunk out. */
  if (to_id == SC_DIFF_LIVE && sc_volume_live_pending (v))
    return -EAGAIN;
  if (to_id == SC_DIFF_LIVE)
    sc_vol_wb_drain (v);
  return sc_diff_changes (v->diff, from_id, to_id, start, out, max, n, next);
}

bool
sc_volume_live_pending (struct sc_volume *v)
{
  return !v->origin && sc_diff_wblog_pending (v->diff);
}
