/* shadowcopy: DIFF, the changed-block tracking verb (see control-verbs.h
 * and control-protocol.h).
 *
 *   DIFF FROM [TO] [start=CHUNK] [max=N]
 *
 * Notes on the design
 *
 * The answer comes from the copy map (sc_diff_changes, cow/changes.c) in
 * pages: each request answers the changed chunks from `start` on, at most
 * `max` runs of them, and says where the next page starts (next=) or that
 * there is none (next=end).  So a volume with millions of changed chunks
 * never needs one huge reply, nor a lock held for one.  A page is a
 * consistent answer of its own; the client asks again with start=NEXT and
 * merges the runs that touch across pages.  It checks that every page
 * names the same FROM and TO (ids and UUIDs), so a name deleted and made
 * again between two pages cannot mix two diffs.
 *
 * Runs of chunks become byte ranges here, the last one clipped to the
 * volume size, so no client needs to know how chunks map to bytes.
 *
 * The sides are resolved by name here, before the copy map is asked, so
 * that each refusal says which side is wrong and why: an unknown name
 * (ENOENT), FROM newer than TO (EINVAL), an invalid side (EIO, with its
 * reason).  The copy map checks again under its lock (by id): a side
 * deleted or invalidated in between is refused the same way.
 *
 * The offline CLI runs this very handler on the diff-area file, read-only:
 * the live volume is then the diff area's state when its server stopped.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/control-verbs.h"

#define DIFF_USAGE "usage: DIFF FROM [TO] [start=CHUNK] [max=N]"

struct diff_args {
  const char *from, *to;        /* to NULL: the live volume */
  uint64_t start;
  uint64_t max;
};

/* The arguments, or an ERR line (*answered). */
static int
parse_diff_args (const struct sc_ctl_request *req, struct diff_args *a,
                 int fd, bool *answered)
{
  *answered = true;
  memset (a, 0, sizeof *a);
  a->max = SC_CTL_DIFF_MAX;
  for (size_t i = 0; i < req->nargs; i++) {
    const char *s = req->args[i];
    const char *eq = strchr (s, '=');

    if (!eq && i == 0)
      a->from = s;
    else if (!eq && i == 1)
      a->to = s;
    else if (!eq)
      return sc_ctl_write_err (fd, EINVAL, "DIFF: unexpected argument: %s "
                               "(%s)", s, DIFF_USAGE);
    else if (i == 0)
      return sc_ctl_write_err (fd, EINVAL, "DIFF: FROM is missing (%s)",
                               DIFF_USAGE);
    else if (strncmp (s, "start=", 6) == 0) {
      if (sc_ctl_parse_u64 (eq + 1, &a->start) < 0)
        return sc_ctl_write_err (fd, EINVAL, "DIFF: start must be a chunk "
                                 "number: %s", eq + 1);
    }
    else if (strncmp (s, "max=", 4) == 0) {
      if (sc_ctl_parse_u64 (eq + 1, &a->max) < 0 || a->max == 0)
        return sc_ctl_write_err (fd, EINVAL, "DIFF: max must be a number of "
                                 "extents > 0: %s", eq + 1);
      if (a->max > SC_CTL_DIFF_MAX)
        a->max = SC_CTL_DIFF_MAX;
    }
    else
      return sc_ctl_write_err (fd, EINVAL, "DIFF: unknown option: %.*s",
                               (int) (eq - s), s);
  }
  if (a->to && strcmp (a->to, "live") == 0)
    a->to = NULL;
  if (strcmp (a->from, "live") == 0)
    return sc_ctl_write_err (fd, EINVAL, "DIFF: FROM must be a snapshot or "
                             "a checkpoint; live can only be TO");
  if (!sc_snapshot_name_valid (a->from))
    return sc_ctl_write_err (fd, EINVAL, "invalid snapshot name: %s",
                             a->from);
  if (a->to && !sc_snapshot_name_valid (a->to))
    return sc_ctl_write_err (fd, EINVAL, "invalid snapshot name: %s", a->to);
  *answered = false;
  return 0;
}

static const char *
type_of (const struct sc_snapshot_info *s)
{
  return s->checkpoint ? "checkpoint" : "snapshot";
}

/* Look up one side: 0, or the negative errno with why in msg. */
static int
lookup_side (struct sc_volume *v, const char *role, const char *name,
             struct sc_snapshot_info *s, char *msg, size_t len)
{
  int r = sc_volume_snapshot_lookup (v, name, s);

  if (r == -ENOENT)
    snprintf (msg, len, "no such snapshot or checkpoint: %s (%s)", name,
              role);
  else if (r < 0)
    snprintf (msg, len, "cannot look up %s %s: %s", role, name,
              strerror (-r));
  else if (s->clone) {
    /* It has no epoch of its own to compare. */
    snprintf (msg, len, "cannot diff: %s is a writable clone: diff compares "
              "snapshots and checkpoints (%s)", name, role);
    r = -EINVAL;
  }
  return r;
}

/* An invalid side: -EIO with which and why in msg; else 0. */
static int
check_valid (const char *role, const struct sc_snapshot_info *s,
             char *msg, size_t len)
{
  char reason[256];

  if (s->invalid_reason == SC_VALID)
    return 0;
  sc_ctl_format_reason (sc_invalid_reason_text (s->invalid_reason),
                        s->invalid_errno, reason, sizeof reason);
  snprintf (msg, len, "cannot diff: %s %s %s is invalid (%s): nothing can "
            "be said of what changed since or until it", role, type_of (s),
            s->name, reason);
  return -EIO;
}

/* Resolve FROM and TO (to->id SC_DIFF_LIVE for the live volume): 0, or
 * the negative errno with the user's message in msg. */
static int
resolve (struct sc_volume *v, const struct diff_args *a,
         struct sc_snapshot_info *from, struct sc_snapshot_info *to,
         char *msg, size_t len)
{
  int r = lookup_side (v, "FROM", a->from, from, msg, len);

  memset (to, 0, sizeof *to);
  to->id = SC_DIFF_LIVE;
  if (r == 0 && a->to)
    r = lookup_side (v, "TO", a->to, to, msg, len);
  if (r < 0)
    return r;
  if (to->id == SC_DIFF_LIVE && sc_volume_live_pending (v)) {
    snprintf (msg, len, "TO the live volume: its server stopped uncleanly "
              "while keeping a write-back log, whose writes may be in "
              "neither the diff area nor the disk yet; start the server "
              "(it writes them), then ask again");
    return -EAGAIN;
  }
  if (to->id < from->id) {
    snprintf (msg, len, "cannot diff: FROM %s (id %" PRIu64 ") is newer "
              "than TO %s (id %" PRIu64 "); give the older one first",
              from->name, from->id, to->name, to->id);
    return -EINVAL;
  }
  r = check_valid ("FROM", from, msg, len);
  if (r == 0 && a->to)
    r = check_valid ("TO", to, msg, len);
  return r;
}

/* "* diff volume= chunk-size= volume-size= from= from-id= from-uuid=
 *  from-epoch= from-type= to= [to-id= to-uuid=] to-epoch= to-type= next=" */
static int
write_header (struct sc_volume *v, int fd,
              const struct sc_snapshot_info *from,
              const struct sc_snapshot_info *to, uint64_t next,
              uint64_t nchunks)
{
  struct sc_diff_stats st;
  char vol[SC_CTL_UUID_LEN], fuuid[SC_CTL_UUID_LEN], tuuid[SC_CTL_UUID_LEN];
  char cs[16], size[24], fid[24], fepoch[16], tid[24], tepoch[16], nx[24];
  bool live = to->id == SC_DIFF_LIVE;
  struct sc_ctl_field f[16];
  size_t n = 0;

  sc_volume_diff_stats (v, &st);
  sc_uuid_format (st.uuid, vol);
  sc_uuid_format (from->uuid, fuuid);
  snprintf (cs, sizeof cs, "%" PRIu32, sc_volume_chunk_size (v));
  snprintf (size, sizeof size, "%" PRIu64, sc_volume_size (v));
  snprintf (fid, sizeof fid, "%" PRIu64, from->id);
  snprintf (fepoch, sizeof fepoch, "%" PRIu32, from->epoch);
  snprintf (tepoch, sizeof tepoch, "%" PRIu32, live ? st.epoch : to->epoch);
  snprintf (nx, sizeof nx, "%" PRIu64, next);
  f[n++] = (struct sc_ctl_field) { "volume", vol };
  f[n++] = (struct sc_ctl_field) { "chunk-size", cs };
  f[n++] = (struct sc_ctl_field) { "volume-size", size };
  f[n++] = (struct sc_ctl_field) { "from", from->name };
  f[n++] = (struct sc_ctl_field) { "from-id", fid };
  f[n++] = (struct sc_ctl_field) { "from-uuid", fuuid };
  f[n++] = (struct sc_ctl_field) { "from-epoch", fepoch };
  f[n++] = (struct sc_ctl_field) { "from-type", type_of (from) };
  f[n++] = (struct sc_ctl_field) { "to", live ? "live" : to->name };
  if (!live) {
    snprintf (tid, sizeof tid, "%" PRIu64, to->id);
    sc_uuid_format (to->uuid, tuuid);
    f[n++] = (struct sc_ctl_field) { "to-id", tid };
    f[n++] = (struct sc_ctl_field) { "to-uuid", tuuid };
  }
  f[n++] = (struct sc_ctl_field) { "to-epoch", tepoch };
  f[n++] = (struct sc_ctl_field) { "to-type", live ? "live" : type_of (to) };
  f[n++] = (struct sc_ctl_field) { "next", next >= nchunks ? "end" : nx };
  return sc_ctl_write_data (fd, "diff", f, n);
}

/* "* extent offset= length=": a run of chunks in bytes, clipped to the
 * volume's end (its last chunk may be partial). */
static int
write_extent (struct sc_ctl_out *o, const struct sc_chunk_range *run,
              uint32_t cs, uint64_t size)
{
  char off[24], len[24];
  struct sc_ctl_field f[] = { { "offset", off }, { "length", len } };
  uint64_t a = run->first * cs, b = (run->first + run->count) * cs;

  if (b > size)
    b = size;
  snprintf (off, sizeof off, "%" PRIu64, a);
  snprintf (len, sizeof len, "%" PRIu64, b - a);
  return sc_ctl_buffer_data (o, "extent", f, 2);
}

int
sc_verb_diff (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_volume *v = ss->v;
  struct sc_snapshot_info from, to;
  struct diff_args a;
  struct sc_chunk_range *runs;
  uint32_t cs = sc_volume_chunk_size (v);
  uint64_t size = sc_volume_size (v);
  uint64_t nchunks = (size + cs - 1) / cs;
  uint64_t next;
  char msg[512];
  bool answered;
  size_t n;
  int r;

  r = parse_diff_args (req, &a, fd, &answered);
  if (answered)
    return r;
  r = resolve (v, &a, &from, &to, msg, sizeof msg);
  if (r < 0)
    return sc_ctl_write_err (fd, -r, "%s", msg);

  runs = malloc (a.max * sizeof *runs);
  if (!runs)
    return sc_ctl_write_err (fd, ENOMEM, "DIFF: %s", strerror (ENOMEM));
  r = sc_volume_changes (v, from.id, to.id, a.start, runs, a.max, &n, &next);
  if (r == -ENOENT || r == -EIO || r == -EINVAL) {
    /* Deleted or invalidated since the lookup: say which, as above. */
    int r2 = resolve (v, &a, &from, &to, msg, sizeof msg);
    free (runs);
    if (r2 < 0)
      return sc_ctl_write_err (fd, -r2, "%s", msg);
    return sc_reply_volume_err (v, fd, r, "cannot diff");
  }
  if (r < 0) {
    free (runs);
    return sc_reply_volume_err (v, fd, r, "cannot diff");
  }
  struct sc_ctl_out *o = malloc (sizeof *o);
  if (!o) {
    free (runs);
    return sc_ctl_write_err (fd, ENOMEM, "DIFF: %s", strerror (ENOMEM));
  }
  o->fd = fd;
  o->len = 0;
  r = write_header (v, fd, &from, &to, next, nchunks);
  for (size_t i = 0; i < n && r == 0; i++)
    r = write_extent (o, &runs[i], cs, size);
  if (r == 0)
    r = sc_ctl_flush (o);
  free (o);
  free (runs);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}
