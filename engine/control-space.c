/* shadowcopy: the control verbs about the volume and its space: INFO,
 * STATS, RESIZE (see control-verbs.h and control-protocol.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/control-verbs.h"

#define RESIZE_USAGE "usage: RESIZE max=BYTES|unbounded [force=1]"

/* The fields of one data line, built in order.  Numbers are formatted
 * into the line's own storage; strings must outlive it. */
struct line {
  struct sc_ctl_field f[SC_CTL_FIELDS_MAX];
  char text[SC_CTL_FIELDS_MAX][32];
  size_t n;
};

static void
add_str (struct line *l, const char *key, const char *value)
{
  l->f[l->n++] = (struct sc_ctl_field) { key, value };
}

static void __attribute__ ((format (printf, 3, 4)))
add_fmt (struct line *l, const char *key, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (l->text[l->n], sizeof l->text[l->n], fmt, ap);
  va_end (ap);
  add_str (l, key, l->text[l->n]);
}

static void
add_u64 (struct line *l, const char *key, uint64_t value)
{
  add_fmt (l, key, "%" PRIu64, value);
}

static int
write_line (int fd, const char *kind, const struct line *l)
{
  int r = sc_ctl_write_data (fd, kind, l->f, l->n);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* ---- INFO ------------------------------------------------------------ */

static const char *
on_full_name (enum sc_on_full p)
{
  return p == SC_ON_FULL_FAIL_WRITES ? "fail-writes" : "delete-oldest";
}

/* The write holds of snapshot creations: a server's own figures. */
static void
add_holds (struct line *l, struct sc_volume *v)
{
  struct sc_hold_stats hs;

  sc_volume_hold_stats (v, &hs);
  add_u64 (l, "holds", hs.count);
  add_u64 (l, "hold-last-ns", hs.last_ns);
  add_u64 (l, "hold-p50-ns", hs.p50_ns);
  add_u64 (l, "hold-p99-ns", hs.p99_ns);
  add_u64 (l, "hold-max-ns", hs.max_ns);
}

/* The space fields: the limit and what the policies did.  The on-full
 * policy and max-snapshots are the server's configuration, not stored,
 * so an offline volume has none to tell.  last_drop and last_reason
 * are the caller's storage. */
static void
add_space (struct line *l, struct sc_volume *v, const struct sc_diff_stats *st,
           char last_drop[SC_NAME_MAX + 1], char last_reason[128])
{
  const struct sc_volume_config *cfg = sc_volume_config (v);
  bool live = !sc_volume_offline (v);
  struct sc_drop_info *drops;
  size_t n;

  add_u64 (l, "diff-max", st->max_bytes);
  if (live) {
    add_str (l, "on-full", on_full_name (cfg->on_full));
    add_u64 (l, "max-snapshots", cfg->max_snapshots
             ? cfg->max_snapshots : SC_MAX_SNAPSHOTS_DEFAULT);
    add_u64 (l, "max-checkpoints", cfg->max_checkpoints
             ? cfg->max_checkpoints : SC_MAX_CHECKPOINTS_DEFAULT);
  }
  add_u64 (l, "dropped", st->dropped);
  if (live)
    add_u64 (l, "full-failures", st->full_failures);
  add_u64 (l, "discarded", st->discarded_bytes);
  add_u64 (l, "invalid", st->invalid);
  add_u64 (l, "damaged", st->damaged);
  if (live)
    add_u64 (l, "checksum-errors", st->checksum_errors);
  /* The last two are left out when nothing was ever dropped. */
  if (sc_volume_drops (v, &drops, &n, NULL) == 0) {
    if (n) {
      snprintf (last_drop, SC_NAME_MAX + 1, "%s", drops[n - 1].name);
      snprintf (last_reason, 128, "%s",
                sc_invalid_reason_text (drops[n - 1].reason));
      add_str (l, "last-drop", last_drop);
      add_str (l, "last-drop-reason", last_reason);
    }
    free (drops);
  }
}

/* INFO's second line, the diff area's health:
 *   * diff-area state=ok|failed recoveries=N [recovered=TIME]
 *     and when failed: failed-since=TIME errno=ENAME failed-write=WHAT
 *     invalidated=N recorded=0|1 retries=N retry-every-ms=N
 *     [last-retry=TIME last-retry-errno=ENAME last-retry-write=WHAT]
 *     message=TEXT (what it means and what to do) */
static int
write_health (struct sc_volume *v, int fd)
{
  struct sc_diff_health h;
  struct line l = { .n = 0 };
  char since[32], last[32], recovered[32], msg[1024];

  sc_volume_diff_health (v, &h);
  add_str (&l, "state", h.failed ? "failed" : "ok");
  add_u64 (&l, "recoveries", h.recoveries);
  if (h.recoveries) {
    sc_ctl_format_time (h.recovered_ns, recovered, sizeof recovered);
    add_str (&l, "recovered", recovered);
  }
  if (h.failed) {
    sc_ctl_format_time (h.since_ns, since, sizeof since);
    add_str (&l, "failed-since", since);
    add_str (&l, "errno", sc_ctl_errname (h.err));
    add_str (&l, "failed-write", h.what);
    add_u64 (&l, "invalidated", h.invalidated);
    add_u64 (&l, "recorded", h.sb_marked);
    add_u64 (&l, "retries", h.retries);
    if (!sc_volume_offline (v))
      add_u64 (&l, "retry-every-ms", sc_volume_config (v)->retry_ms
                                     ? sc_volume_config (v)->retry_ms
                                     : 30000);
    if (h.last_retry_ns) {
      sc_ctl_format_time (h.last_retry_ns, last, sizeof last);
      add_str (&l, "last-retry", last);
      add_str (&l, "last-retry-errno", sc_ctl_errname (h.retry_err));
      add_str (&l, "last-retry-write", h.retry_what);
    }
    sc_diff_health_message (&h, msg, sizeof msg);
    add_str (&l, "message", msg);
  }
  return sc_ctl_write_data (fd, "diff-area", l.f, l.n);
}

int
sc_verb_info (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_volume *v = ss->v;
  struct sc_diff_stats st;
  char last_drop[SC_NAME_MAX + 1], last_reason[128];
  struct line l = { .n = 0 };

  sc_volume_diff_stats (v, &st);
  st.origin.path[sizeof st.origin.path - 1] = '\0';
  add_u64 (&l, "size", sc_volume_size (v));
  add_u64 (&l, "chunk-size", sc_volume_chunk_size (v));
  add_u64 (&l, "diff-used", st.used_bytes);
  add_u64 (&l, "diff-file", st.file_bytes);
  add_u64 (&l, "snapshots", st.snapshots);
  add_u64 (&l, "checkpoints", st.checkpoints);
  add_u64 (&l, "copies", st.copies);
  add_u64 (&l, "data-slots", st.data_slots);
  add_u64 (&l, "journal-slots", st.journal_slots);
  add_u64 (&l, "journal-records", st.journal_records);
  add_u64 (&l, "epoch", st.epoch);
  if (!sc_volume_offline (v))
    add_holds (&l, v);
  add_str (&l, "origin", st.origin.path);
  add_space (&l, v, &st, last_drop, last_reason);
  int r = sc_ctl_write_data (fd, "volume", l.f, l.n);
  if (r == 0)
    r = write_health (v, fd);
  if (r == 0)
    r = sc_write_revert_line (v, fd);
  /* Where the server listens (issue 15): the plugin's NBD URI, opaque
   * here; a server that cannot tell, or the offline CLI, has no line. */
  if (r == 0 && ss->listen) {
    struct sc_ctl_field f = { "uri", ss->listen };
    r = sc_ctl_write_data (fd, "listen", &f, 1);
  }
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* ---- STATS ----------------------------------------------------------- */

/* The page cache of the copy map and checksums (index-cache=): whether
 * its budget fits what the volume's map needs shows in its misses and
 * write-backs. */
static void
add_index_cache (struct line *l, const struct sc_volume_stats *st)
{
  add_u64 (l, "index-cache-budget", st->index_cache_budget);
  add_u64 (l, "index-cache-pages", st->index_cache.pages);
  add_u64 (l, "index-cache-hits", st->index_cache.hits);
  add_u64 (l, "index-cache-misses", st->index_cache.misses);
  add_u64 (l, "index-cache-writebacks", st->index_cache.writebacks);
  add_u64 (l, "index-cache-unbacked", st->index_cache.unbacked);
}

/* STATS -> * stats chunks-copied= bytes-copied= zero-chunks=
 *   bytes-written= write-amplification= diff-used= diff-free= diff-max=
 *   cow-count= cow-p50-ns= cow-p99-ns= dropped= writes-refused=
 *   fill-rate= seconds-to-full= (-1: not filling) uptime-ns= invalidated=
 *   checksum-errors= damaged-freed=
 *   index-cache-budget= (bytes) index-cache-pages= index-cache-hits=
 *   index-cache-misses= index-cache-writebacks= index-cache-unbacked=
 *   diff-failed= (0|1) diff-failed-errno= diff-failed-since-ns=
 *   diff-retries= diff-recoveries= */
int
sc_verb_stats (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_volume_stats st;
  struct line l = { .n = 0 };

  sc_volume_stats (ss->v, &st);
  add_u64 (&l, "chunks-copied", st.chunks_copied);
  add_u64 (&l, "bytes-copied", st.bytes_copied);
  add_u64 (&l, "zero-chunks", st.zero_chunks);
  add_u64 (&l, "bytes-written", st.bytes_written);
  add_fmt (&l, "write-amplification", "%.3f", st.write_amplification);
  add_u64 (&l, "diff-used", st.diff_used);
  add_u64 (&l, "diff-free", st.diff_free);
  add_u64 (&l, "diff-max", st.diff_limit);
  add_u64 (&l, "cow-count", st.cow_count);
  add_u64 (&l, "cow-p50-ns", st.cow_p50_ns);
  add_u64 (&l, "cow-p99-ns", st.cow_p99_ns);
  add_u64 (&l, "dropped", st.dropped);
  add_u64 (&l, "writes-refused", st.writes_refused);
  add_fmt (&l, "fill-rate", "%.0f", st.fill_rate);
  add_fmt (&l, "seconds-to-full", "%" PRId64, st.seconds_to_full);
  add_u64 (&l, "uptime-ns", st.uptime_ns);
  add_u64 (&l, "invalidated", st.invalidated);
  add_u64 (&l, "checksum-errors", st.checksum_errors);
  add_u64 (&l, "damaged-freed", st.damaged_freed);
  add_index_cache (&l, &st);
  /* The diff area's health, in numbers (INFO says it in words). */
  struct sc_diff_health h;
  sc_volume_diff_health (ss->v, &h);
  add_u64 (&l, "diff-failed", h.failed);
  add_u64 (&l, "diff-failed-errno", h.failed ? (uint64_t) h.err : 0);
  add_u64 (&l, "diff-failed-since-ns", h.failed ? h.since_ns : 0);
  add_u64 (&l, "diff-retries", h.failed ? h.retries : 0);
  add_u64 (&l, "diff-recoveries", h.recoveries);
  return write_line (fd, "stats", &l);
}

/* ---- RESIZE ---------------------------------------------------------- */

/* max=BYTES|unbounded [force=0|1]: 1 and *max, *force if they are right,
 * or the answer to them. */
static int
parse_resize (const struct sc_ctl_request *req, uint64_t *max, bool *force,
              int fd)
{
  bool have_max = false;

  for (size_t i = 0; i < req->nargs; i++) {
    const char *a = req->args[i];

    if (strncmp (a, "max=", 4) == 0) {
      if (strcmp (a + 4, "unbounded") == 0)
        *max = 0;
      else if (sc_ctl_parse_u64 (a + 4, max) < 0 || *max == 0)
        return sc_ctl_write_err (fd, EINVAL, "max=%s: not a number of bytes "
                                 "or unbounded", a + 4);
      have_max = true;
    }
    else if (strcmp (a, "force=1") == 0)
      *force = true;
    else if (strcmp (a, "force=0") == 0)
      *force = false;
    else
      return sc_ctl_write_err (fd, EINVAL, RESIZE_USAGE);
  }
  if (!have_max)
    return sc_ctl_write_err (fd, EINVAL, RESIZE_USAGE);
  return 1;
}

int
sc_verb_resize (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_volume *v = ss->v;
  uint64_t max = 0, dropped = 0;
  bool force = false;
  struct line l = { .n = 0 };
  int r = parse_resize (req, &max, &force, fd);

  if (r <= 0)
    return r;
  r = sc_volume_resize (v, max, force, &dropped);
  if (r == -ENOSPC) {
    struct sc_diff_stats st;

    sc_volume_diff_stats (v, &st);
    return sc_ctl_write_err (fd, ENOSPC, "the diff area uses %" PRIu64
                             " bytes (with room for its journal), more than "
                             "%" PRIu64 ": shrinking deletes the oldest "
                             "snapshots; repeat with force=1 (resize --force)",
                             st.used_bytes,
                             max);
  }
  if (r == -EINVAL)
    return sc_ctl_write_err (fd, EINVAL, "max=%" PRIu64 ": the limit must be "
                             "at least %u chunks (%" PRIu64 " bytes)", max,
                             SC_DIFF_MAX_MIN_CHUNKS,
                             (uint64_t) SC_DIFF_MAX_MIN_CHUNKS
                             * sc_volume_chunk_size (v));
  if (r < 0)
    return sc_reply_volume_err (v, fd, r, "cannot resize the diff area");
  add_u64 (&l, "max", max);
  add_u64 (&l, "dropped", dropped);
  return write_line (fd, "resized", &l);
}
