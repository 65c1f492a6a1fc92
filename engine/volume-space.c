/* shadowcopy: the volume's space limits, discards and statistics. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/volume-impl.h"

#define WINDOW_NS 60000000000ull        /* fill-rate window: one minute */

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

void
sc_vol_percentiles (uint64_t *samples, size_t n, uint64_t *p50,
                    uint64_t *p99)
{
  qsort (samples, n, sizeof *samples, cmp_u64);
  *p50 = samples[(n - 1) / 2];
  *p99 = samples[(n * 99 + 99) / 100 - 1];
}

/* Two 60-second windows: the fill rate is measured from the start of the
 * older one, so it covers the last one to two minutes.  hold_lock held. */
static void
rotate_windows (struct sc_volume *v, uint64_t now, uint64_t bytes)
{
  while (now - v->win_ns[1] >= WINDOW_NS) {
    v->win_ns[0] = v->win_ns[1];
    v->win_bytes[0] = v->win_bytes[1];
    v->win_ns[1] = now - v->win_ns[1] >= 2 * WINDOW_NS
                   ? now : v->win_ns[1] + WINDOW_NS;
    v->win_bytes[1] = bytes;
  }
}

void
sc_vol_note_cow (struct sc_volume *v, uint64_t ns)
{
  uint64_t now = sc_mono_ns (), bytes = __atomic_load_n (&v->bytes_copied,
                                                         __ATOMIC_RELAXED);
  pthread_mutex_lock (&v->hold_lock);
  v->cows[v->ncows++ % SC_COW_SAMPLES] = ns;
  rotate_windows (v, now, bytes);
  pthread_mutex_unlock (&v->hold_lock);
}

/* The diff area's part of the statistics: its use, its limit, what is
 * left and how fast it fills (from the window that began at w_ns with
 * w_bytes copied). */
static void
diff_space (struct sc_volume *v, struct sc_volume_stats *st, uint64_t now,
            uint64_t w_ns, uint64_t w_bytes)
{
  struct sc_diff_stats ds;

  sc_diff_stats (v->diff, &ds);
  st->diff_used = ds.used_bytes;
  st->diff_limit = ds.max_bytes;
  st->dropped = ds.dropped;
  st->invalidated = ds.invalidations;
  st->checksum_errors = ds.checksum_errors;
  st->damaged_freed = ds.damaged_freed;
  st->index_cache_budget = ds.cache_budget;
  st->index_cache = ds.cache;
  if (ds.max_bytes)
    st->diff_free = ds.max_bytes > ds.used_bytes
                    ? ds.max_bytes - ds.used_bytes : 0;
  else
    (void) sc_diff_fs_free (v->diff, &st->diff_free);
  double secs = (double) (now - w_ns) / 1e9;
  if (secs >= 1)
    st->fill_rate = (double) (st->bytes_copied - w_bytes) / secs;
  st->seconds_to_full = st->fill_rate > 0
                        ? (int64_t) ((double) st->diff_free / st->fill_rate)
                        : -1;
}

void
sc_volume_stats (struct sc_volume *v, struct sc_volume_stats *st)
{
  static uint64_t sorted[SC_COW_SAMPLES];
  static pthread_mutex_t sorted_lock = PTHREAD_MUTEX_INITIALIZER;
  memset (st, 0, sizeof *st);
  st->chunks_copied = __atomic_load_n (&v->chunks_copied, __ATOMIC_RELAXED);
  st->bytes_copied = __atomic_load_n (&v->bytes_copied, __ATOMIC_RELAXED);
  st->zero_chunks = __atomic_load_n (&v->zero_chunks, __ATOMIC_RELAXED);
  st->bytes_written = sc_counter_read (&v->bytes_written);
  st->writes_refused = __atomic_load_n (&v->writes_refused,
                                        __ATOMIC_RELAXED);
  if (st->bytes_written)
    st->write_amplification = (double) (st->bytes_written + st->bytes_copied)
                              / (double) st->bytes_written;
  uint64_t now = sc_mono_ns ();
  st->uptime_ns = now - v->start_ns;

  pthread_mutex_lock (&sorted_lock);
  pthread_mutex_lock (&v->hold_lock);
  rotate_windows (v, now, st->bytes_copied);
  size_t n = v->ncows < SC_COW_SAMPLES ? v->ncows : SC_COW_SAMPLES;
  st->cow_count = v->ncows;
  memcpy (sorted, v->cows, n * sizeof *sorted);
  uint64_t w_ns = v->win_ns[0], w_bytes = v->win_bytes[0];
  pthread_mutex_unlock (&v->hold_lock);
  if (n)
    sc_vol_percentiles (sorted, n, &st->cow_p50_ns, &st->cow_p99_ns);
  pthread_mutex_unlock (&sorted_lock);

  diff_space (v, st, now, w_ns, w_bytes);
}

void
sc_volume_diff_stats (struct sc_volume *v, struct sc_diff_stats *st)
{
  sc_diff_stats (v->diff, st);
}

int
sc_volume_drops (struct sc_volume *v, struct sc_drop_info **out, size_t *n,
                 uint64_t *total)
{
  return sc_diff_drops (v->diff, out, n, total);
}

int
sc_volume_snapshot_discard (struct sc_volume *v, uint64_t id, uint32_t count,
                            uint64_t offset)
{
  int r = sc_vol_check_io (v, count, offset);
  if (r < 0 || count == 0)
    return r;
  uint64_t first = (offset + v->chunk_size - 1) >> v->chunk_shift;
  uint64_t end = offset + count;
  uint64_t last_end = end == v->size ? (end + v->chunk_size - 1)
                                       >> v->chunk_shift
                                     : end >> v->chunk_shift;
  if (last_end <= first)
    return 0;                   /* no whole chunk */
  /* Lock out live writes to the range, so none decides on a copy while
   * the needs of this snapshot change. */
  struct sc_range range;
  sc_rangelock_lock (&v->chunks, &range, first, last_end - 1, true);
  r = sc_diff_snapshot_discard (v->diff, id, first, last_end - 1);
  sc_rangelock_unlock (&v->chunks, &range);
  return r;
}

int
sc_volume_snapshot_protected (struct sc_volume *v, uint64_t id)
{
  return sc_diff_snapshot_protected (v->diff, id);
}

int
sc_volume_resize (struct sc_volume *v, uint64_t max_bytes, bool force,
                  uint64_t *dropped)
{
  return sc_diff_set_max (v->diff, max_bytes, force ? SC_MAX_FORCE : 0,
                          dropped);
}

const struct sc_volume_config *
sc_volume_config (const struct sc_volume *v)
{
  return &v->cfg;
}

void
sc_volume_gc_hold (struct sc_volume *v)
{
  sc_diff_gc_hold (v->diff);
}

int
sc_volume_gc_release (struct sc_volume *v)
{
  return sc_diff_gc_release (v->diff);
}
