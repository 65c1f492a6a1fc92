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
 * flushes never wait on the diff area: engine/volume.c).
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
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
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

void
failure_enter (struct sc_diff *d, int err, const char *what)
{
  struct sc_diff_health *h = &d->health;
  if (d->failed)
    return;
  d->failed = true;
  uint32_t n = 0;
  /* Deleted ones waiting for their record too: it may never be durable. */
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    n += !s->deleted && s->info.invalid_reason == SC_VALID;
    snap_set_invalid (d, s, SC_INVALID_METADATA, -err, 0);
  }
  d->invalidations += n;
  h->failed = true;
  h->err = -err;
  snprintf (h->what, sizeof h->what, "%s", what);
  h->since_ns = diff_now_ns ();
  h->invalidated = n;
  h->retries = 0;
  h->last_retry_ns = 0;
  h->retry_err = 0;
  h->retry_what[0] = '\0';

  d->sb.flags |= SC_SB_FAILED;
  d->sb.flags &= ~SC_SB_CLEAN;
  int r = sc_sb_store (d->fd, &d->sb);
  d->failed_sb_marked = h->sb_marked = r == 0;
  diff_say ("diff area failed: %s (%s) %s; %" PRIu32 " snapshot%s invalidated "
            "(\"%s\")%s; the live volume goes on without snapshots; %s; "
            "shadowcopy retries at the next create and periodically",
            errname (-err), strerror (-err), what, n, n == 1 ? "" : "s",
            sc_invalid_reason_text (SC_INVALID_METADATA),
            r == 0 ? ", recorded in the superblock"
                   : ", and the superblock could not record it either",
            advice (-err));
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
      d->failed_sb_marked = h->sb_marked = sc_sb_store (d->fd, &d->sb) == 0;
    }
    return r;
  }
  d->failed = false;
  h->failed = false;
  h->recoveries++;
  h->recovered_ns = diff_now_ns ();
  char since[32];
  format_time (h->since_ns, since, sizeof since);
  diff_say ("diff area recovered: a fresh journal was written and the "
            "superblock switched to it (after %" PRIu64 " attempt%s); new "
            "snapshots can be taken; the snapshots invalidated at %s stay "
            "invalid", h->retries, h->retries == 1 ? "" : "s", since);
  /* Their invalidation is durable now: their copies can go. */
  (void) gc_run (d, true);
  pthread_cond_broadcast (&d->readers_done);
  return 0;
}

int
sc_diff_recover (struct sc_diff *d)
{
  LOCKED (d);
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
