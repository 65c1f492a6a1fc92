/* shadowcopy: a failed metadata write, and the way back.
 *
 * Notes on the design
 *
 * When a write of the metadata fails (a journal write, the commit's
 * fdatasync, a new journal slot), the journal can record nothing more:
 * records already handed to it may or may not be on disk.  So no
 * snapshot can be trusted: every one is invalidated in memory at once,
 * and the superblock gets the FAILED flag if it still takes writes, so
 * that the next open does not trust them either.  The diff area is then
 * failed: it creates no snapshot, and since no snapshot is valid the
 * live volume copies nothing and goes on as if there were none (its
 * copy-on-write query and flushes read the failed flag without the lock,
 * so they never wait on a retry's I/O: copymap.c, transaction.c).
 *
 * The way back is a checkpoint (checkpoint.c): a new journal, with a new
 * nonce, holding the state in memory (where every snapshot of before is
 * invalid, with its reason), made durable, and only then the superblock
 * switched to it with FAILED cleared.  If any of it fails, the old
 * superblock (FAILED) stays in force and the diff area stays failed.  If
 * it works, nothing of the failed journal is used again: what it held
 * that matters is in memory, hence in the checkpoint.  It is tried by
 * the next snapshot creation (sc_diff_snapshot_create, and the engine
 * before its hold), by a server's periodic retry, and at close.
 *
 * Nothing here can make a snapshot valid again: invalid is a one-way
 * state of a snapshot (snap_set_invalid), and the checkpoint records it.
 *
 * Failing closed.  If the superblock cannot take FAILED either (the disk
 * takes no write at all), the disk does not know: a stop before a retry
 * works would replay the old journal and list the snapshots valid.  So
 * until FAILED is stored or a recovery is done, the snapshots the disk
 * may list as valid (d->prefail: valid until the failure, or invalidated
 * by a record that is not durable) keep their data: a live change that
 * would overwrite a chunk one of them needs (the copy-on-write query,
 * asked of them) first tries to store FAILED again, and fails with EIO
 * before the origin is touched if that fails too
 * (sc_diff_change_check); copies whose records may not have reached the
 * disk are forgotten (copymap_forget_fresh), and gc keeps what those
 * snapshots need.  Writes that need no copy, reads and flushes go on.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/io.h"

/* What an errno from the diff area's file means, and what to do. */
static const char *
advice (int err)
{
  switch (err) {
  case EIO:
    return "the diff area's disk reported an I/O error: check it (dmesg, "
           "smartctl)";
  case ENOSPC:
  case EDQUOT:
    return "the diff area's filesystem is full: free space on it";
  case EROFS:
    return "the diff area's filesystem is read-only (remounted after an "
           "error?): check it (dmesg) and remount it read-write";
  case ENOMEM:
    return "the server ran out of memory";
  case ENODEV:
  case ENXIO:
    return "the diff area's disk went away: reconnect it";
  default:
    return "check the diff area's disk and filesystem (dmesg)";
  }
}

static const char *
errname (int err)
{
  const char *n = strerrorname_np (err);
  return n ? n : "error";
}

static void
format_time (uint64_t ns, char *buf, size_t len)
{
  time_t t = (time_t) (ns / 1000000000u);
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The snapshots the disk may still list as valid, were the journal on
 * disk replayed without a FAILED flag: those valid until now, and those
 * invalidated by a record that is not durable (the failed write's own:
 * a copy that failed, then its SNAP_INVALID record with it).  Listed, or
 * deleted by a record that is not durable either.  Their epochs go to
 * d->prefail (NULL if out of memory: then every snapshot counts); returns
 * how many are listed. */
static uint32_t
prefail_take (struct sc_diff *d)
{
  uint64_t durable = d->journal.durable_seq;
  uint32_t listed = 0;
  free (d->prefail);
  d->prefail = malloc ((d->nsnaps + 1) * sizeof *d->prefail);
  d->nprefail = 0;
  for (size_t i = 0; i < d->nsnaps; i++) {
    const struct snap *s = d->snaps[i];
    bool valid_on_disk = s->info.invalid_reason == SC_VALID ||
                         s->invalid_seq > durable;
    if ((s->deleted && !s->pending) || !valid_on_disk)
      continue;
    listed += !s->deleted;
    if (d->prefail)
      d->prefail[d->nprefail++] = s->info.epoch;
  }
  return listed;
}

static void
prefail_drop (struct sc_diff *d)
{
  free (d->prefail);
  d->prefail = NULL;
  d->nprefail = 0;
  __atomic_store_n (&d->unrecorded, false, __ATOMIC_RELEASE);
}

void
failure_enter (struct sc_diff *d, int err, const char *what)
{
  struct sc_diff_health *h = &d->health;
  if (d->failed)
    return;
  __atomic_store_n (&d->failed, true, __ATOMIC_RELEASE);
  uint32_t n = prefail_take (d), now = 0;
  /* Deleted ones waiting for their record too: it may never be durable. */
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    now += !s->deleted && s->info.invalid_reason == SC_VALID;
    snap_set_invalid (d, s, SC_INVALID_METADATA, -err, 0);
  }
  d->invalidations += now;
  copymap_forget_fresh (d);
  h->failed = true;
  h->err = -err;
  snprintf (h->what, sizeof h->what, "%s", what);
  h->since_ns = diff_now_ns ();
  h->invalidated = n;
  h->retries = 0;
  h->last_retry_ns = 0;
  h->retry_err = 0;
  h->retry_what[0] = '\0';
  h->refused = 0;

  d->sb.flags |= SC_SB_FAILED;
  d->sb.flags &= ~SC_SB_CLEAN;
  d->failed_sb_marked = h->sb_marked = false;
  int r = diff_sb_store (d, &d->sb);   /* failure_recorded on success */
  /* Otherwise fail closed until the failure is on disk
   * (sc_diff_change_check).  A live write whose own copies this failure
   * leaves unsure learns of it from its commit, which returns after
   * this (under the lock); one that read `unrecorded` false before had
   * its copies committed, or needed none.
   * durability=volatile needs no FAILED flag: its superblock says
   * VOLATILE, so any stop but a clean close (which needs a recovery
   * first) invalidates every snapshot at the next open. */
  bool guard = d->nprefail > 0 || (!d->prefail && d->nsnaps > 0);
  if (r < 0 && guard && !d->volatile_mode)
    __atomic_store_n (&d->unrecorded, true, __ATOMIC_RELEASE);
  else
    prefail_drop (d);
  char just_before[96] = "";
  if (n > now)
    snprintf (just_before, sizeof just_before, ", %" PRIu32 " of them by "
              "the failed copy just before", n - now);
  diff_say ("diff area failed: %s (%s) %s; %" PRIu32 " snapshot%s invalidated "
            "(\"%s\"%s)%s; the live volume goes on without snapshots%s; %s; "
            "shadowcopy retries at the next create and periodically",
            errname (-err), strerror (-err), what, n, n == 1 ? "" : "s",
            sc_invalid_reason_text (SC_INVALID_METADATA), just_before,
            r == 0 ? ", recorded in the superblock"
                   : ", and the superblock could not record it either",
            d->unrecorded ? ", but until the superblock records it a live "
            "write that would overwrite data those snapshots need fails "
            "with EIO (a restart would list them valid)" : "",
            advice (-err));
}

void
failure_recorded (struct sc_diff *d)
{
  if (!d->failed || d->failed_sb_marked)
    return;
  d->failed_sb_marked = d->health.sb_marked = true;
  if (!d->unrecorded)
    return;
  prefail_drop (d);
  diff_say ("diff area: its failure is now recorded in the superblock; "
            "live writes go on without snapshots");
}

bool
failure_keeps (const struct sc_diff *d, uint32_t epoch)
{
  if (!d->unrecorded)
    return false;
  if (!d->prefail)
    return true;
  size_t i = epochs_lower_bound (d->prefail, d->nprefail, epoch);
  return i < d->nprefail && d->prefail[i] == epoch;
}

/* Does a snapshot the disk may still list as valid need the origin's
 * `chunk` as it is?  The copy-on-write query, asked of d->prefail. */
static bool
prefail_needs (struct sc_diff *d, uint64_t chunk)
{
  if (!d->prefail)
    return true;
  uint32_t from = copymap_last_epoch (d, chunk);
  struct keepers k = { .epochs = d->prefail, .n = d->nprefail };
  return from != d->epoch && copymap_needed (d, &k, from, d->epoch - 1,
                                             chunk);
}

int
sc_diff_change_check (struct sc_diff *d, uint64_t first, uint64_t last)
{
  if (!__atomic_load_n (&d->unrecorded, __ATOMIC_ACQUIRE))
    return 0;
  LOCKED (d);
  if (!d->unrecorded)
    return 0;
  bool needed = false;
  for (uint64_t c = first; c <= last && c < d->nchunks && !needed; c++)
    needed = prefail_needs (d, c);
  if (!needed)
    return 0;
  if (diff_sb_store (d, &d->sb) == 0)   /* FAILED: failure_recorded */
    return 0;
  d->health.refused++;
  if (d->health.refused == 1)
    diff_say ("diff area: a live write was refused (EIO): it would overwrite "
              "data that snapshots need, and the superblock still cannot "
              "record that they are invalid (a restart would serve them); "
              "writes that need no copy go on; %s", advice (d->health.err));
  else if (sc_debug)
    sc_debug ("diff area: live write of chunks %" PRIu64 "-%" PRIu64
              " refused (%" PRIu64 " so far): the failure is not recorded",
              first, last, d->health.refused);
  return -EIO;
}

int
diff_recover (struct sc_diff *d)
{
  struct sc_diff_health *h = &d->health;
  if (!d->failed)
    return 0;
  if (!d->have_journal)
    return -EROFS;
  h->retries++;
  h->last_retry_ns = diff_now_ns ();
  char what[128] = "";
  int r = ckpt_replace_failed (d, what, sizeof what);
  if (r < 0) {
    h->retry_err = -r;
    snprintf (h->retry_what, sizeof h->retry_what, "%s", what);
    if (sc_debug)
      sc_debug ("diff area: retry %" PRIu64 " failed: %s (%s) %s",
                h->retries, errname (-r), strerror (-r), what);
    if (!d->failed_sb_marked) {         /* at least say FAILED now */
      d->sb.flags |= SC_SB_FAILED;
      d->sb.flags &= ~SC_SB_CLEAN;
      (void) diff_sb_store (d, &d->sb);
    }
    return r;
  }
  __atomic_store_n (&d->failed, false, __ATOMIC_RELEASE);
  prefail_drop (d);
  h->failed = false;
  h->recoveries++;
  h->recovered_ns = diff_now_ns ();
  char since[32];
  format_time (h->since_ns, since, sizeof since);
  diff_say ("diff area recovered: a fresh journal was written and the "
            "superblock switched to it (after %" PRIu64 " attempt%s); new "
            "snapshots can be taken; the snapshots invalidated at %s stay "
            "invalid", h->retries, h->retries == 1 ? "" : "s", since);
  /* Their invalidation is durable now: their copies can go (in one pass
   * with the lock held: a recovery's callers count on it, and it is
   * rare). */
  (void) gc_run_held (d);
  pthread_cond_broadcast (&d->readers_done);
  return 0;
}

int
sc_diff_recover (struct sc_diff *d)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  return diff_recover (d);
}

void
sc_diff_health (struct sc_diff *d, struct sc_diff_health *h)
{
  LOCKED (d);
  *h = d->health;
  h->failed = d->failed;
}

void
sc_diff_health_message (const struct sc_diff_health *h, char *buf,
                        size_t len)
{
  char since[32];
  if (!h->failed) {
    snprintf (buf, len, "the diff area is healthy");
    return;
  }
  format_time (h->since_ns, since, sizeof since);
  int n = snprintf (buf, len, "the diff area failed at %s: %s (%s) %s; %s; "
                    "its snapshots were invalidated", since,
                    errname (h->err), strerror (h->err), h->what,
                    advice (h->err));
  if (n < 0 || (size_t) n >= len)
    return;
  if (h->retries && h->retry_err)
    snprintf (buf + n, len - n, "; %" PRIu64 " retr%s failed, the last "
              "with %s %s; shadowcopy retries at the next create and "
              "periodically",
              h->retries, h->retries == 1 ? "y" : "ies",
              errname (h->retry_err), h->retry_what);
  else
    snprintf (buf + n, len - n, "; shadowcopy retries at the next create "
              "and periodically");
}
