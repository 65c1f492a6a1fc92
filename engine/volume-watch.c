/* shadowcopy: the origin is watched.
 *
 * Notes on the design
 *
 * Snapshots read their unchanged chunks from the origin, so a write that
 * did not come through the server changes them silently.  The engine
 * takes the origin's stamp (engine/origin.h, sc_origin_stamp) and the
 * diff area stores and compares it (cow/origin-stamp.c):
 *
 *   open    flush the origin (so that writes a killed server left in the
 *           page cache are done before the counters are read), take the
 *           stamp, compare it with the one recorded, record it;
 *   write   before the first write of the origin in this session, the
 *           diff area durably records that the stamp no longer holds;
 *   close   after the last write and its flush, take the stamp again:
 *           the clean close records it.
 *
 * origin-check=off (engine/volume.h) skips the open's and the close's,
 * reading nothing: for a remote origin too slow to sample.
 *
 * The first write waits for one superblock update; every later one only
 * reads a flag.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/volume-impl.h"

/* The origin found, while serving, that it is another disk now. */
static void
watch_changed (void *opaque, const char *why)
{
  struct sc_volume *v = opaque;
  int r = sc_diff_origin_changed (v->diff, why);
  if (r < 0)
    debug ("recording that the disk changed: %s", strerror (-r));
}

int
sc_vol_watch_open (struct sc_volume *v, char *err, size_t errlen)
{
  struct sc_origin_stamp st;
  char why[256] = "";
  sc_origin_on_changed (v->origin, watch_changed, v);
  if (v->cfg.origin_check_off) {
    sc_say ("DANGER: origin-check=off: the disk is not checked for changes "
            "made while the server was stopped, so its snapshots may "
            "serve data written behind shadowcopy's back");
    return 0;
  }
  int r = sc_origin_flush (v->origin);
  if (r < 0)
    debug ("fdatasync of the disk at open: %s", strerror (-r));
  r = sc_origin_stamp (v->origin, &st);
  if (r < 0)
    snprintf (why, sizeof why, "reading its sampled blocks: %s",
              strerror (-r));
  r = sc_diff_origin_check (v->diff, r < 0 ? NULL : &st, why,
                            v->cfg.origin_changed_accept ? SC_ORIGIN_ACCEPT
                                                         : 0);
  if (r < 0) {
    snprintf (err, errlen, "recording the disk's state in the diff area: %s",
              strerror (-r));
    return r;
  }
  if (r > 0)
    debug ("the disk changed while the server was stopped: %d snapshot(s) "
           "invalidated", r);
  return 0;
}

void
sc_vol_watch_write (struct sc_volume *v)
{
  if (__atomic_load_n (&v->origin_written, __ATOMIC_ACQUIRE))
    return;
  pthread_mutex_lock (&v->watch_lock);
  if (!v->origin_written) {
    int r = sc_diff_origin_writing (v->diff);
    if (r < 0)
      debug ("recording that the disk is being written: %s", strerror (-r));
    __atomic_store_n (&v->origin_written, true, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock (&v->watch_lock);
}

void
sc_vol_watch_close (struct sc_volume *v)
{
  /* origin-check=off reads nothing at close either: the state recorded
   * before stays, and the next checked start compares with it only if
   * this session did not write the disk (the first write marked it
   * WRITTEN; that start then says the state was not recorded). */
  if (v->cfg.origin_check_off)
    return;
  struct sc_origin_stamp st;
  int r = sc_origin_stamp (v->origin, &st);
  if (r < 0)
    debug ("the disk's state at close: %s (the next start checks it "
           "against the state at open, or not at all after a write)",
           strerror (-r));
  else
    sc_diff_origin_stamp_at_close (v->diff, &st);
}
