/* shadowcopy: the control server (see control.h and control-protocol.h).
 *
 * Notes on the design
 *
 * Who may talk to us: the socket is created mode 0600, and each peer's
 * credentials are checked too (the owner or root), so a permissive parent
 * directory or umask cannot open the door wider.
 *
 * Threads: one accept thread, and one thread per connection, at most
 * CONNS_MAX at once (more are refused with an ERR line, not queued, so a
 * flood of idle clients costs bounded memory).  Connection threads are
 * joinable and tracked in slots, so sc_control_stop can wake every one of
 * them (shutdown(2) on its socket) and wait until none touches the volume
 * any more; the caller may close the volume right after.  A finished slot
 * is joined when it is reused or at stop.
 *
 * A client that stops reading or writing is dropped after a timeout
 * (SO_RCVTIMEO / SO_SNDTIMEO), so it cannot pin a thread forever.  Requests
 * themselves are short: the longest, CREATE, holds writes for a bounded
 * time inside the engine.
 *
 * Sessions.  Each connection is a session (struct session): the snapshot
 * creation it has begun (BEGIN/HOLD/COMMIT/RELEASE/ABORT, see
 * control-protocol.h) and the auto-release snapshots it owns.  The
 * connection thread itself takes and drops the write gate (the engine's
 * rwlock must be unlocked by its locker), so it also keeps the deadline:
 * while a creation is in progress every read and every reply waits at
 * most until the deadline (an absolute one, polled before each read(2)
 * and send(2), so trickling bytes does not extend it), and when it
 * passes the thread aborts the creation by itself: the snapshot committed
 * under the hold is deleted, the writes are released, the creation slot
 * is freed.  The client learns it from the ETIMEDOUT answer to its next
 * request.  When the connection ends (EOF, error, kill -9 of the client,
 * server stop) the same abort runs, then the session's auto-release
 * snapshots are deleted.  A session that owns auto-release snapshots has
 * no idle timeout: it is the backup session and may last for hours.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "engine/clock.h"
#include "engine/control.h"
#include "engine/control-protocol.h"
#include "cow/io.h"
#include "engine/volume.h"

#define CONNS_MAX 64
#define RECV_TIMEOUT_SECS 60    /* an idle client is dropped after this */
#define BEGIN_TIMEOUT_MS_DEFAULT 120000   /* BEGIN: the whole creation */
#define BEGIN_TIMEOUT_MS_MAX 3600000
#define HOLD_TIMEOUT_MS_DEFAULT 10000     /* HOLD: the write hold (VSS) */
#define HOLD_TIMEOUT_MS_MAX 60000
#define SEND_TIMEOUT_SECS 10    /* and one that does not read its reply */

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

struct slot {
  struct sc_control *c;
  enum slot_state state;
  int fd;
  pthread_t thread;
};

struct sc_control {
  char *path;
  int listen_fd;
  int wake[2];                  /* stop writes here to end the accept loop */
  bool started;
  pthread_t acceptor;
  struct sc_volume *v;
  pthread_mutex_t lock;         /* protects slots[].state and .fd */
  struct slot slots[CONNS_MAX];
};

/* ---- sessions -------------------------------------------------------- */

/* An auto-release snapshot owned by a session. */
struct owned {
  uint64_t id;
  char name[SC_NAME_MAX + 1];
};

struct session {
  struct sc_volume *v;
  bool begun;                   /* owns the volume's creation slot */
  bool held;                    /* holds the write gate */
  uint64_t deadline;            /* monotonic ns; while begun */
  uint64_t hold_ms;             /* the hold's timeout, for messages */
  bool committed;               /* a snapshot was committed under the hold */
  struct sc_snapshot_info pending;
  char expired[256];            /* why the last creation was aborted by the
                                   server; told at the next request */
  struct owned *owned;          /* auto-release snapshots, deleted at end */
  size_t nowned;
};

static void
log_debug (const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  if (!sc_debug)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  sc_debug ("%s", msg);
}

/* Delete snapshot `id` by name, unless the name now belongs to another
 * snapshot (the user deleted ours and made a new one). */
static void
delete_by_id (struct sc_volume *v, uint64_t id, const char *name)
{
  struct sc_snapshot_info s;

  if (sc_diff_snapshot_lookup (sc_volume_diff (v), name, &s) < 0 ||
      s.id != id)
    return;
  int r = sc_volume_snapshot_delete (v, name);
  if (r < 0 && r != -ENOENT)
    log_debug ("control: cannot delete snapshot %s: %s", name,
               strerror (-r));
}

/* The session now owns auto-release snapshot `s`. */
static int
session_own (struct session *ss, const struct sc_snapshot_info *s)
{
  struct owned *o = realloc (ss->owned, (ss->nowned + 1) * sizeof *o);

  if (!o)
    return -ENOMEM;
  ss->owned = o;
  o[ss->nowned].id = s->id;
  snprintf (o[ss->nowned].name, sizeof o[ss->nowned].name, "%s", s->name);
  ss->nowned++;
  return 0;
}

/* End the creation in progress, if any: delete the snapshot committed
 * under it unless `keep`, release the writes, free the creation slot.
 * A kept auto-release snapshot becomes the session's. */
static void
session_end_creation (struct session *ss, bool keep)
{
  if (!ss->begun)
    return;
  if (ss->committed && !keep)
    delete_by_id (ss->v, ss->pending.id, ss->pending.name);
  if (ss->held)
    sc_volume_release (ss->v);
  if (ss->committed && keep && ss->pending.auto_release &&
      session_own (ss, &ss->pending) < 0)
    delete_by_id (ss->v, ss->pending.id, ss->pending.name);
  sc_volume_create_end (ss->v);
  ss->begun = ss->held = ss->committed = false;
}

/* The deadline passed: abort, and remember why for the client. */
static void
session_expire (struct session *ss)
{
  bool held = ss->held;

  if (ss->committed)
    snprintf (ss->expired, sizeof ss->expired,
              "the %s of %" PRIu64 " ms expired: writes were released and "
              "snapshot %s was deleted", held ? "write hold" : "creation",
              ss->hold_ms, ss->pending.name);
  else
    snprintf (ss->expired, sizeof ss->expired,
              "the %s of %" PRIu64 " ms expired: %s", held ? "write hold"
              : "creation", ss->hold_ms, held ? "writes were released and "
              "no snapshot was taken" : "no snapshot was taken");
  log_debug ("control: %s", ss->expired);
  session_end_creation (ss, false);
}

static void
session_close (struct session *ss)
{
  if (ss->begun)
    log_debug ("control: connection closed during a snapshot creation: "
               "aborting it");
  session_end_creation (ss, false);
  for (size_t i = 0; i < ss->nowned; i++) {
    log_debug ("control: session ended: deleting auto-release snapshot %s",
               ss->owned[i].name);
    delete_by_id (ss->v, ss->owned[i].id, ss->owned[i].name);
  }
  free (ss->owned);
  ss->owned = NULL;
  ss->nowned = 0;
}

/* ---- requests -------------------------------------------------------- */

typedef int (*command_fn) (struct sc_volume *v,
                           const struct sc_ctl_request *req, int fd);
/* Requests that need the session (creation, auto-release). */
typedef int (*session_fn) (struct session *ss,
                           const struct sc_ctl_request *req, int fd);

static int
write_snapshot (int fd, const struct sc_snapshot_info *s)
{
  char id[24], epoch[16], created[32], used[24], reason[256], disc[24];
  char set[SC_CTL_UUID_LEN];
  bool valid = s->invalid_reason == SC_VALID;
  struct sc_ctl_field f[10] = {
    { "id", id }, { "name", s->name }, { "created", created },
    { "epoch", epoch }, { "state", valid ? "valid" : "invalid" },
    { "used", used }, { "discarded", disc },
  };
  size_t n = 7;

  snprintf (disc, sizeof disc, "%" PRIu64, s->discarded_bytes);
  snprintf (id, sizeof id, "%" PRIu64, s->id);
  snprintf (epoch, sizeof epoch, "%" PRIu32, s->epoch);
  snprintf (used, sizeof used, "%" PRIu64, s->used_bytes);
  sc_ctl_format_time (s->ctime_ns, created, sizeof created);
  sc_ctl_format_reason (sc_invalid_reason_text (s->invalid_reason),
                        s->invalid_errno, reason, sizeof reason);
  if (s->in_set) {
    sc_ctl_format_uuid (s->set_id, set);
    f[n++] = (struct sc_ctl_field) { "set", set };
  }
  if (s->auto_release)
    f[n++] = (struct sc_ctl_field) { "auto-release", "1" };
  if (!valid)
    f[n++] = (struct sc_ctl_field) { "reason", reason };
  return sc_ctl_write_data (fd, "snapshot", f, n);
}

static int
write_deleted (int fd, const char *name)
{
  struct sc_ctl_field f = { "name", name };

  return sc_ctl_write_data (fd, "deleted", &f, 1);
}

/* The one-line answer to a failed snapshot operation. */
static int
write_snapshot_err (int fd, int err, const char *op, const char *name)
{
  char msg[256];

  sc_ctl_snapshot_error (err, op, name, msg, sizeof msg);
  return sc_ctl_write_err (fd, err, "%s", msg);
}

static int
do_hello (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  char protocol[16];
  struct sc_ctl_field f[] = {
    { "protocol", protocol }, { "version", PACKAGE_VERSION },
  };
  int r;

  snprintf (protocol, sizeof protocol, "%d", SC_CTL_PROTOCOL);
  r = sc_ctl_write_data (fd, "server", f, sizeof f / sizeof f[0]);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* ---- space: limits, policies, statistics ------------------------------ */

static const char *
on_full_name (enum sc_on_full p)
{
  return p == SC_ON_FULL_FAIL_WRITES ? "fail-writes" : "delete-oldest";
}

static void
space_info (struct sc_volume *v, const struct sc_diff_stats *st,
            char *max, char *maxsnaps, char *dropped, char *failures,
            char *discarded, char *on_full, char *last_drop,
            char *last_reason)
{
  struct sc_drop_info *drops;
  size_t n;
  uint64_t total;
  const struct sc_volume_config *cfg = sc_volume_config (v);

  snprintf (max, 24, "%" PRIu64, st->max_bytes);
  snprintf (maxsnaps, 24, "%" PRIu32, cfg->max_snapshots
            ? cfg->max_snapshots : SC_MAX_SNAPSHOTS_DEFAULT);
  snprintf (dropped, 24, "%" PRIu64, st->dropped);
  snprintf (failures, 24, "%" PRIu64, st->full_failures);
  snprintf (discarded, 24, "%" PRIu64, st->discarded_bytes);
  snprintf (on_full, 24, "%s", on_full_name (cfg->on_full));
  if (sc_diff_drops (sc_volume_diff (v), &drops, &n, &total) == 0) {
    if (n) {
      snprintf (last_drop, SC_NAME_MAX + 1, "%s", drops[n - 1].name);
      snprintf (last_reason, 128, "%s",
                sc_invalid_reason_text (drops[n - 1].reason));
    }
    free (drops);
  }
}

/* LIST ends with the kept history of policy drops, oldest first:
 *   * dropped id= name= created= dropped-at= reason= */
static int
write_drops (struct sc_volume *v, int fd)
{
  struct sc_drop_info *drops;
  size_t i, n;
  int r = sc_diff_drops (sc_volume_diff (v), &drops, &n, NULL);

  if (r < 0)
    return 0;
  for (i = 0; i < n && r == 0; i++) {
    char id[24], created[32], at[32];
    struct sc_ctl_field f[] = {
      { "id", id }, { "name", drops[i].name }, { "created", created },
      { "dropped-at", at },
      { "reason", sc_invalid_reason_text (drops[i].reason) },
    };
    snprintf (id, sizeof id, "%" PRIu64, drops[i].id);
    sc_ctl_format_time (drops[i].ctime_ns, created, sizeof created);
    sc_ctl_format_time (drops[i].drop_ns, at, sizeof at);
    r = sc_ctl_write_data (fd, "dropped", f, sizeof f / sizeof f[0]);
  }
  free (drops);
  return r;
}

static int
do_resize (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  uint64_t max = 0, dropped = 0;
  bool force = false, have_max = false;
  char num[24], ndropped[24];
  size_t i;
  int r;

  for (i = 0; i < req->nargs; i++) {
    const char *a = req->args[i];

    if (strncmp (a, "max=", 4) == 0) {
      if (strcmp (a + 4, "unbounded") == 0)
        max = 0;
      else if (sc_ctl_parse_u64 (a + 4, &max) < 0 || max == 0)
        return sc_ctl_write_err (fd, EINVAL, "max=%s: not a number of bytes "
                                 "or unbounded", a + 4);
      have_max = true;
    }
    else if (strcmp (a, "force=1") == 0)
      force = true;
    else if (strcmp (a, "force=0") == 0)
      force = false;
    else
      return sc_ctl_write_err (fd, EINVAL, "usage: RESIZE max=BYTES|unbounded "
                               "[force=1]");
  }
  if (!have_max)
    return sc_ctl_write_err (fd, EINVAL, "usage: RESIZE max=BYTES|unbounded "
                             "[force=1]");
  r = sc_volume_resize (v, max, force, &dropped);
  if (r == -ENOSPC) {
    struct sc_diff_stats st;

    sc_diff_stats (sc_volume_diff (v), &st);
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
    return sc_ctl_write_err (fd, r, "cannot resize the diff area: %s",
                             strerror (-r));
  snprintf (num, sizeof num, "%" PRIu64, max);
  snprintf (ndropped, sizeof ndropped, "%" PRIu64, dropped);
  {
    struct sc_ctl_field f[] = { { "max", num }, { "dropped", ndropped } };
    r = sc_ctl_write_data (fd, "resized", f, 2);
  }
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* STATS -> * stats chunks-copied= bytes-copied= zero-chunks=
 *   bytes-written= write-amplification= diff-used= diff-free= diff-max=
 *   cow-count= cow-p50-ns= cow-p99-ns= dropped= writes-refused=
 *   fill-rate= seconds-to-full= (-1: not filling) uptime-ns= invalidated= */
static int
do_stats (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  struct sc_volume_stats st;
  char num[17][32];
  struct sc_ctl_field f[] = {
    { "chunks-copied", num[0] }, { "bytes-copied", num[1] },
    { "zero-chunks", num[2] }, { "bytes-written", num[3] },
    { "write-amplification", num[4] }, { "diff-used", num[5] },
    { "diff-free", num[6] }, { "diff-max", num[7] },
    { "cow-count", num[8] }, { "cow-p50-ns", num[9] },
    { "cow-p99-ns", num[10] }, { "dropped", num[11] },
    { "writes-refused", num[12] }, { "fill-rate", num[13] },
    { "seconds-to-full", num[14] }, { "uptime-ns", num[15] },
    { "invalidated", num[16] },
  };
  int r;

  sc_volume_stats (v, &st);
  snprintf (num[0], 32, "%" PRIu64, st.chunks_copied);
  snprintf (num[1], 32, "%" PRIu64, st.bytes_copied);
  snprintf (num[2], 32, "%" PRIu64, st.zero_chunks);
  snprintf (num[3], 32, "%" PRIu64, st.bytes_written);
  snprintf (num[4], 32, "%.3f", st.write_amplification);
  snprintf (num[5], 32, "%" PRIu64, st.diff_used);
  snprintf (num[6], 32, "%" PRIu64, st.diff_free);
  snprintf (num[7], 32, "%" PRIu64, st.diff_limit);
  snprintf (num[8], 32, "%" PRIu64, st.cow_count);
  snprintf (num[9], 32, "%" PRIu64, st.cow_p50_ns);
  snprintf (num[10], 32, "%" PRIu64, st.cow_p99_ns);
  snprintf (num[11], 32, "%" PRIu64, st.dropped);
  snprintf (num[12], 32, "%" PRIu64, st.writes_refused);
  snprintf (num[13], 32, "%.0f", st.fill_rate);
  snprintf (num[14], 32, "%" PRId64, st.seconds_to_full);
  snprintf (num[15], 32, "%" PRIu64, st.uptime_ns);
  snprintf (num[16], 32, "%" PRIu64, st.invalidated);
  r = sc_ctl_write_data (fd, "stats", f, sizeof f / sizeof f[0]);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

static int
do_info (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  struct sc_diff_stats st;
  struct sc_hold_stats hs;
  char num[21][24];
  char on_full[24], last_drop[SC_NAME_MAX + 1] = "", last_reason[128] = "";
  struct sc_ctl_field f[] = {
    { "size", num[0] }, { "chunk-size", num[1] }, { "diff-used", num[2] },
    { "diff-file", num[3] }, { "snapshots", num[4] }, { "copies", num[5] },
    { "data-slots", num[6] }, { "journal-slots", num[7] },
    { "journal-records", num[8] }, { "epoch", num[9] },
    { "holds", num[10] }, { "hold-last-ns", num[11] },
    { "hold-p50-ns", num[12] }, { "hold-p99-ns", num[13] },
    { "hold-max-ns", num[14] },
    { "origin", st.origin.path },
    { "diff-max", num[15] }, { "on-full", on_full },
    { "max-snapshots", num[16] }, { "dropped", num[17] },
    { "full-failures", num[18] }, { "discarded", num[19] },
    { "invalid", num[20] },
    { "last-drop", last_drop }, { "last-drop-reason", last_reason },
  };
  int r;

  sc_diff_stats (sc_volume_diff (v), &st);
  st.origin.path[sizeof st.origin.path - 1] = '\0';
  snprintf (num[0], sizeof num[0], "%" PRIu64, sc_volume_size (v));
  snprintf (num[1], sizeof num[1], "%" PRIu32, sc_volume_chunk_size (v));
  snprintf (num[2], sizeof num[2], "%" PRIu64, st.used_bytes);
  snprintf (num[3], sizeof num[3], "%" PRIu64, st.file_bytes);
  snprintf (num[4], sizeof num[4], "%" PRIu64, st.snapshots);
  snprintf (num[5], sizeof num[5], "%" PRIu64, st.copies);
  snprintf (num[6], sizeof num[6], "%" PRIu64, st.data_slots);
  snprintf (num[7], sizeof num[7], "%" PRIu64, st.journal_slots);
  snprintf (num[8], sizeof num[8], "%" PRIu64, st.journal_records);
  snprintf (num[9], sizeof num[9], "%" PRIu32, st.epoch);
  sc_volume_hold_stats (v, &hs);
  snprintf (num[10], sizeof num[10], "%" PRIu64, hs.count);
  snprintf (num[11], sizeof num[11], "%" PRIu64, hs.last_ns);
  snprintf (num[12], sizeof num[12], "%" PRIu64, hs.p50_ns);
  snprintf (num[13], sizeof num[13], "%" PRIu64, hs.p99_ns);
  snprintf (num[14], sizeof num[14], "%" PRIu64, hs.max_ns);
  space_info (v, &st, num[15], num[16], num[17], num[18], num[19], on_full,
              last_drop, last_reason);
  snprintf (num[20], sizeof num[20], "%" PRIu64, st.invalid);
  /* The last two are left out when nothing was ever dropped. */
  r = sc_ctl_write_data (fd, "volume", f, sizeof f / sizeof f[0]
                                          - (last_drop[0] ? 0 : 2));
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

static int
do_list (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  struct sc_snapshot_info *list;
  size_t i, n;
  int r;

  r = sc_diff_snapshot_list (sc_volume_diff (v), &list, &n);
  if (r < 0)
    return sc_ctl_write_err (fd, r, "cannot list snapshots: %s",
                             strerror (-r));
  for (i = 0; i < n && r == 0; i++)
    r = write_snapshot (fd, &list[i]);
  free (list);
  if (r == 0)
    r = write_drops (v, fd);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* Options after the positional arguments: key=value.  `name` gets the
 * first positional argument, if any (snapshot names never hold '='). */
struct create_opts {
  const char *name;
  bool has_set;
  uint8_t set_id[16];
  bool auto_release;
  bool delete_oldest;
  bool release;                 /* COMMIT release=1 */
  uint64_t timeout_ms;
  bool has_timeout;
};

static int
parse_create_opts (const struct sc_ctl_request *req, bool name_allowed,
                   bool snapshot_opts, bool timeout_allowed,
                   struct create_opts *o, int fd, bool *answered)
{
  *answered = true;
  memset (o, 0, sizeof *o);
  for (size_t i = 0; i < req->nargs; i++) {
    const char *a = req->args[i];
    const char *eq = strchr (a, '=');
    uint64_t n;

    if (!eq) {
      if (!name_allowed || o->name || i > 0)
        return sc_ctl_write_err (fd, EINVAL, "%s: unexpected argument: %s",
                                 req->verb, a);
      if (!sc_snapshot_name_valid (a))
        return write_snapshot_err (fd, -EINVAL, "create", a);
      o->name = a;
    }
    else if (snapshot_opts && strncmp (a, "set=", 4) == 0) {
      if (sc_ctl_parse_uuid (eq + 1, o->set_id) < 0)
        return sc_ctl_write_err (fd, EINVAL, "invalid set id (want a "
                                 "UUID): %s", eq + 1);
      o->has_set = true;
    }
    else if (snapshot_opts && strncmp (a, "auto-release=", 13) == 0) {
      if (strcmp (eq + 1, "0") != 0 && strcmp (eq + 1, "1") != 0)
        return sc_ctl_write_err (fd, EINVAL, "auto-release must be 0 or "
                                 "1: %s", eq + 1);
      o->auto_release = eq[1] == '1';
    }
    else if (snapshot_opts && strncmp (a, "delete-oldest=", 14) == 0) {
      if (strcmp (eq + 1, "0") != 0 && strcmp (eq + 1, "1") != 0)
        return sc_ctl_write_err (fd, EINVAL, "delete-oldest must be 0 or "
                                 "1: %s", eq + 1);
      o->delete_oldest = eq[1] == '1';
    }
    else if (strcmp (req->verb, "COMMIT") == 0 &&
             strncmp (a, "release=", 8) == 0) {
      if (strcmp (eq + 1, "0") != 0 && strcmp (eq + 1, "1") != 0)
        return sc_ctl_write_err (fd, EINVAL, "release must be 0 or 1: %s",
                                 eq + 1);
      o->release = eq[1] == '1';
    }
    else if (timeout_allowed && strncmp (a, "timeout=", 8) == 0) {
      if (sc_ctl_parse_u64 (eq + 1, &n) < 0 || n == 0)
        return sc_ctl_write_err (fd, EINVAL, "timeout must be a number of "
                                 "milliseconds > 0: %s", eq + 1);
      o->timeout_ms = n;
      o->has_timeout = true;
    }
    else
      return sc_ctl_write_err (fd, EINVAL, "%s: unknown option: %.*s",
                               req->verb, (int) (eq - a), a);
  }
  *answered = false;
  return 0;
}

/* -EMFILE from a creation: say which limit and how to get past it. */
static int
write_too_many (struct sc_volume *v, int fd)
{
  const struct sc_volume_config *cfg = sc_volume_config (v);
  return sc_ctl_write_err (fd, EMFILE, "too many snapshots: the limit "
                           "max-snapshots=%u is reached; delete some, or "
                           "create with delete-oldest=1 (shadowcopy create "
                           "--delete-oldest)", cfg->max_snapshots
                           ? cfg->max_snapshots : SC_MAX_SNAPSHOTS_DEFAULT);
}

static int
write_busy (int fd)
{
  return sc_ctl_write_err (fd, EBUSY, "busy: another snapshot creation is "
                           "in progress on this volume");
}

/* CREATE [NAME] [set=UUID] [auto-release=1]: hold, commit, release in
 * one request. */
static int
do_create (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_snapshot_opts so = { 0 };
  struct create_opts o;
  struct sc_snapshot_info s;
  bool answered;
  int r;

  r = parse_create_opts (req, true, true, false, &o, fd, &answered);
  if (answered)
    return r;
  if (ss->begun)
    return sc_ctl_write_err (fd, EINVAL, "CREATE: this connection has a "
                             "creation in progress (RELEASE or ABORT it)");
  so.set_id = o.has_set ? o.set_id : NULL;
  so.auto_release = o.auto_release;
  so.delete_oldest = o.delete_oldest;
  r = sc_volume_snapshot_create (ss->v, o.name, &so, &s);
  if (r == -EBUSY)
    return write_busy (fd);
  if (r == -EMFILE)
    return write_too_many (ss->v, fd);
  if (r < 0)
    return write_snapshot_err (fd, r, "create", o.name);
  if (s.auto_release && session_own (ss, &s) < 0) {
    delete_by_id (ss->v, s.id, s.name);
    return sc_ctl_write_err (fd, ENOMEM, "cannot track auto-release "
                             "snapshot %s: deleted it", s.name);
  }
  r = write_snapshot (fd, &s);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* A creation of this session that the server aborted: tell it once. */
static int
report_expired (struct session *ss, int fd)
{
  char msg[sizeof ss->expired];

  snprintf (msg, sizeof msg, "%s", ss->expired);
  ss->expired[0] = '\0';
  return sc_ctl_write_err (fd, ETIMEDOUT, "%s", msg);
}

/* BEGIN [timeout=MS]: take the creation slot, without holding writes. */
static int
do_begin (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct create_opts o;
  bool answered;
  int r;

  r = parse_create_opts (req, false, false, true, &o, fd, &answered);
  if (answered)
    return r;
  if (ss->begun)
    return sc_ctl_write_err (fd, EINVAL, "BEGIN: a creation is already in "
                             "progress on this connection");
  if (o.has_timeout && o.timeout_ms > BEGIN_TIMEOUT_MS_MAX)
    return sc_ctl_write_err (fd, EINVAL, "BEGIN: timeout at most %d ms",
                             BEGIN_TIMEOUT_MS_MAX);
  if (sc_volume_create_begin (ss->v) < 0)
    return write_busy (fd);
  ss->expired[0] = '\0';
  ss->begun = true;
  ss->hold_ms = o.has_timeout ? o.timeout_ms : BEGIN_TIMEOUT_MS_DEFAULT;
  ss->deadline = sc_mono_ns () + ss->hold_ms * 1000000u;
  return sc_ctl_write_ok (fd);
}

/* HOLD [timeout=MS]: drain and hold writes (BEGIN first if needed). */
static int
do_hold (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct create_opts o;
  bool answered;
  char ms[24];
  struct sc_ctl_field f = { "timeout", ms };
  int r;

  r = parse_create_opts (req, false, false, true, &o, fd, &answered);
  if (answered)
    return r;
  if (o.has_timeout && o.timeout_ms > HOLD_TIMEOUT_MS_MAX)
    return sc_ctl_write_err (fd, EINVAL, "HOLD: timeout at most %d ms",
                             HOLD_TIMEOUT_MS_MAX);
  if (ss->held)
    return sc_ctl_write_err (fd, EINVAL, "HOLD: writes are already held by "
                             "this connection");
  if (!ss->begun && ss->expired[0])
    return report_expired (ss, fd);
  if (!ss->begun) {
    if (sc_volume_create_begin (ss->v) < 0)
      return write_busy (fd);
    ss->begun = true;
  }
  /* The hold starts when new writes start to wait (at the write lock
   * request, before the drain and the flush), so the deadline does. */
  ss->hold_ms = o.has_timeout ? o.timeout_ms : HOLD_TIMEOUT_MS_DEFAULT;
  ss->deadline = sc_mono_ns () + ss->hold_ms * 1000000u;
  r = sc_volume_hold (ss->v);
  if (r < 0) {
    session_end_creation (ss, false);
    return sc_ctl_write_err (fd, -r, "cannot hold writes: %s",
                             strerror (-r));
  }
  ss->held = true;
  sc_ctl_set_send_deadline (ss->deadline);
  snprintf (ms, sizeof ms, "%" PRIu64, ss->hold_ms);
  r = sc_ctl_write_data (fd, "hold", &f, 1);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* COMMIT [NAME] [set=UUID] [auto-release=1]: record the snapshot under
 * the hold; it is kept only if RELEASE comes before the deadline. */
static int
do_commit (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_snapshot_opts so = { 0 };
  struct create_opts o;
  bool answered;
  int r;

  r = parse_create_opts (req, true, true, false, &o, fd, &answered);
  if (answered)
    return r;
  if (!ss->held && ss->expired[0])
    return report_expired (ss, fd);
  if (!ss->held)
    return sc_ctl_write_err (fd, EINVAL, "COMMIT: no writes are held "
                             "(HOLD first)");
  if (ss->committed)
    return sc_ctl_write_err (fd, EINVAL, "COMMIT: snapshot %s is already "
                             "committed under this hold", ss->pending.name);
  so.set_id = o.has_set ? o.set_id : NULL;
  so.auto_release = o.auto_release;
  so.delete_oldest = o.delete_oldest;
  r = sc_volume_hold_commit (ss->v, o.name, &so, &ss->pending);
  if (r == -EMFILE)
    return write_too_many (ss->v, fd);
  if (r < 0)
    return write_snapshot_err (fd, r, "create", o.name);
  ss->committed = true;
  r = write_snapshot (fd, &ss->pending);
  if (r < 0 || !o.release)
    return r < 0 ? r : sc_ctl_write_ok (fd);

  /* release=1: RELEASE in the same request, one round trip less while
   * the writes are held. */
  char held[24];
  struct sc_ctl_field f[] = { { "held-ns", held },
                              { "name", ss->pending.name } };
  uint64_t ns = sc_volume_release (ss->v);
  ss->held = false;
  snprintf (held, sizeof held, "%" PRIu64, ns);
  r = sc_ctl_write_data (fd, "released", f, 2);
  session_end_creation (ss, true);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* RELEASE: let the writes go and keep the committed snapshot. */
static int
do_release (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  char held[24], name[SC_NAME_MAX + 1] = "";
  struct sc_ctl_field f[] = { { "held-ns", held }, { "name", name } };
  bool committed = ss->committed;
  uint64_t ns = 0;
  int r;

  if (!ss->begun && ss->expired[0])
    return report_expired (ss, fd);
  if (!ss->begun)
    return sc_ctl_write_err (fd, EINVAL, "RELEASE: no snapshot creation in "
                             "progress on this connection");
  if (committed)
    snprintf (name, sizeof name, "%s", ss->pending.name);
  if (ss->held) {
    ns = sc_volume_release (ss->v);
    ss->held = false;
  }
  session_end_creation (ss, true);
  snprintf (held, sizeof held, "%" PRIu64, ns);
  r = sc_ctl_write_data (fd, "released", f, committed ? 2 : 1);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* ABORT: delete what was committed under the hold, release, end. */
static int
do_abort (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  char name[SC_NAME_MAX + 1];
  struct sc_ctl_field f = { "name", name };
  bool committed = ss->committed;
  int r;

  ss->expired[0] = '\0';
  if (committed)
    snprintf (name, sizeof name, "%s", ss->pending.name);
  session_end_creation (ss, false);
  r = committed ? sc_ctl_write_data (fd, "deleted", &f, 1) : 0;
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

static int
do_delete (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  const char *name = req->args[0];
  int r;

  if (!sc_snapshot_name_valid (name))
    return write_snapshot_err (fd, -EINVAL, "delete", name);
  r = sc_volume_snapshot_delete (v, name);
  if (r < 0)
    return write_snapshot_err (fd, r, "delete", name);
  r = write_deleted (fd, name);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* DELETE-OLDEST, DELETE-ALL and DELETE-SET work on a listing taken
 * first: a snapshot that another client deletes meanwhile is simply no
 * longer ours to report (ALL, SET), or is reported as gone (OLDEST: the
 * user asked for that one and did not get it).  `set`: only the members
 * of that snapshot set, ENOENT when there is none. */
static int
delete_listed (struct sc_volume *v, int fd, bool all, const uint8_t *set,
               const char *set_text)
{
  struct sc_snapshot_info *list;
  size_t i, n, found = 0;
  int r = 0;

  r = sc_diff_snapshot_list (sc_volume_diff (v), &list, &n);
  if (r < 0)
    return sc_ctl_write_err (fd, r, "cannot list snapshots: %s",
                             strerror (-r));
  if (n == 0 && !all) {
    free (list);
    return sc_ctl_write_err (fd, ENOENT, "no snapshots");
  }
  for (i = 0; i < (all ? n : 1); i++) {
    if (set && (!list[i].in_set || memcmp (list[i].set_id, set, 16) != 0))
      continue;
    found++;
    r = sc_volume_snapshot_delete (v, list[i].name);
    if (r == -ENOENT && all) {
      r = 0;
      continue;
    }
    if (r < 0) {
      r = write_snapshot_err (fd, r, "delete", list[i].name);
      free (list);
      return r < 0 ? r : 0;
    }
    r = write_deleted (fd, list[i].name);
    if (r < 0)
      break;
  }
  free (list);
  if (r == 0 && set && found == 0)
    return sc_ctl_write_err (fd, ENOENT, "no snapshot of set %s on this "
                             "volume", set_text);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* DELETE-SET UUID: every snapshot of the set on this volume. */
static int
do_delete_set (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  uint8_t id[16];

  if (sc_ctl_parse_uuid (req->args[0], id) < 0)
    return sc_ctl_write_err (fd, EINVAL, "invalid set id (want a UUID): %s",
                             req->args[0]);
  return delete_listed (v, fd, true, id, req->args[0]);
}

static int
do_delete_oldest (struct sc_volume *v, const struct sc_ctl_request *req,
                  int fd)
{
  return delete_listed (v, fd, false, NULL, NULL);
}

static int
do_delete_all (struct sc_volume *v, const struct sc_ctl_request *req, int fd)
{
  return delete_listed (v, fd, true, NULL, NULL);
}

static const struct command {
  const char *verb;
  size_t min_args, max_args;
  command_fn run;
  const char *usage;
} commands[] = {
  { "HELLO", 0, 0, do_hello, "HELLO" },
  { "INFO", 0, 0, do_info, "INFO" },
  { "LIST", 0, 0, do_list, "LIST" },
  { "RESIZE", 1, 2, do_resize, "RESIZE max=BYTES|unbounded [force=1]" },
  { "STATS", 0, 0, do_stats, "STATS" },
  { "DELETE-SET", 1, 1, do_delete_set, "DELETE-SET UUID" },
  { "DELETE", 1, 1, do_delete, "DELETE NAME" },
  { "DELETE-OLDEST", 0, 0, do_delete_oldest, "DELETE-OLDEST" },
  { "DELETE-ALL", 0, 0, do_delete_all, "DELETE-ALL" },
};

/* Requests about the session's creation and auto-release snapshots. */
static const struct session_command {
  const char *verb;
  size_t min_args, max_args;
  session_fn run;
  const char *usage;
} session_commands[] = {
  { "CREATE", 0, 4, do_create,
    "CREATE [NAME] [set=UUID] [auto-release=1] [delete-oldest=1]" },
  { "BEGIN", 0, 1, do_begin, "BEGIN [timeout=MS]" },
  { "HOLD", 0, 1, do_hold, "HOLD [timeout=MS]" },
  { "COMMIT", 0, 5, do_commit,
    "COMMIT [NAME] [set=UUID] [auto-release=1] [delete-oldest=1] "
    "[release=1]" },
  { "RELEASE", 0, 0, do_release, "RELEASE" },
  { "ABORT", 0, 0, do_abort, "ABORT" },
};

static int
handle_line (struct session *ss, char *line, int fd)
{
  struct sc_volume *v = ss->v;
  struct sc_ctl_request req;
  const char *why;
  size_t i;

  if (sc_ctl_parse_request (line, &req, &why) < 0)
    return sc_ctl_write_err (fd, EINVAL, "%s", why);
  for (i = 0; i < sizeof session_commands / sizeof session_commands[0];
       i++) {
    const struct session_command *cmd = &session_commands[i];

    if (strcmp (req.verb, cmd->verb) != 0)
      continue;
    if (req.nargs < cmd->min_args || req.nargs > cmd->max_args)
      return sc_ctl_write_err (fd, EINVAL, "usage: %s", cmd->usage);
    return cmd->run (ss, &req, fd);
  }
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    const struct command *cmd = &commands[i];

    if (strcmp (req.verb, cmd->verb) != 0)
      continue;
    if (req.nargs < cmd->min_args || req.nargs > cmd->max_args)
      return sc_ctl_write_err (fd, EINVAL, "usage: %s", cmd->usage);
    return cmd->run (v, &req, fd);
  }
  /* The verb passed the parser, so it is safe to echo. */
  return sc_ctl_write_err (fd, EINVAL, "unknown request: %s", req.verb);
}

/* Outside a connection (tests, fuzzing): a session of one request. */
int
sc_control_handle_line (struct sc_volume *v, char *line, int fd)
{
  struct session ss = { .v = v };
  int r = handle_line (&ss, line, fd);

  session_close (&ss);
  return r;
}

/* ---- connections ----------------------------------------------------- */

/* The socket timeouts for the session's next read: until the deadline
 * of a creation in progress, none for a session that owns auto-release
 * snapshots (the backup session), RECV_TIMEOUT_SECS otherwise.  Replies
 * never block past a deadline either. */
static void
session_timeouts (struct session *ss, struct sc_ctl_reader *rd, int fd)
{
  struct timeval rcv = { .tv_sec = RECV_TIMEOUT_SECS };
  struct timeval snd = { .tv_sec = SEND_TIMEOUT_SECS };

  if (ss->begun) {
    uint64_t now = sc_mono_ns ();
    uint64_t left = ss->deadline > now ? ss->deadline - now : 0;
    if (left < 1000000)
      left = 1000000;           /* 0 would mean no timeout */
    rcv.tv_sec = (time_t) (left / 1000000000u);
    rcv.tv_usec = (suseconds_t) (left % 1000000000u / 1000u);
    if (left < (uint64_t) SEND_TIMEOUT_SECS * 1000000000u)
      snd = rcv;
  }
  else if (ss->nowned)
    rcv.tv_sec = 0;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
  /* The socket timeouts restart with every read(2) or partial send: a
   * peer trickling bytes would extend them without end.  The absolute
   * deadline bounds the whole line and the whole reply instead. */
  sc_ctl_reader_set_deadline (rd, ss->begun ? ss->deadline : 0);
  sc_ctl_set_send_deadline (ss->begun ? ss->deadline : 0);
}

static void *
connection_thread (void *arg)
{
  struct slot *s = arg;
  struct sc_control *c = s->c;
  struct sc_ctl_reader rd;
  struct session ss = { .v = c->v };
  char *line;
  const char *why;
  int r;

  /* A bad line gets its ERR and the next one is read as usual: garbage
   * costs the client an answer, not the connection.  EOF, a timeout or a
   * failed write end it; the deadline of a creation does not (see the
   * notes at the top). */
  sc_ctl_reader_init (&rd, s->fd);
  for (;;) {
    if (ss.begun && sc_mono_ns () >= ss.deadline)
      session_expire (&ss);
    session_timeouts (&ss, &rd, s->fd);
    r = sc_ctl_read_line (&rd, &line, &why);
    if (r == -EAGAIN && ss.begun)
      continue;                 /* the deadline: checked above; a partial
                                 * line stays buffered */
    if (r == -EINVAL)
      r = sc_ctl_write_err (s->fd, EINVAL, "%s", why);
    else if (r > 0)
      r = handle_line (&ss, line, s->fd);
    else
      break;
    if (r < 0)
      break;
  }
  session_close (&ss);

  pthread_mutex_lock (&c->lock);
  close (s->fd);
  s->fd = -1;
  s->state = SLOT_DONE;
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

static void
set_timeouts (int fd)
{
  struct timeval rcv = { .tv_sec = RECV_TIMEOUT_SECS };
  struct timeval snd = { .tv_sec = SEND_TIMEOUT_SECS };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
}

static bool
peer_allowed (int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return false;
  return cred.uid == 0 || cred.uid == geteuid ();
}

/* Hand a new connection to a thread, or refuse it with a reason. */
static void
admit (struct sc_control *c, int fd)
{
  struct slot *s = NULL;
  size_t i;
  int r;

  set_timeouts (fd);
  if (!peer_allowed (fd)) {
    sc_ctl_write_err (fd, EACCES, "permission denied");
    close (fd);
    return;
  }

  /* A DONE slot's thread has already let go of the lock, so joining it
   * here is immediate. */
  pthread_mutex_lock (&c->lock);
  for (i = 0; i < CONNS_MAX && !s; i++)
    if (c->slots[i].state != SLOT_RUNNING)
      s = &c->slots[i];
  if (s) {
    if (s->state == SLOT_DONE)
      pthread_join (s->thread, NULL);
    s->c = c;
    s->fd = fd;
    s->state = SLOT_RUNNING;
  }
  pthread_mutex_unlock (&c->lock);
  if (!s) {
    sc_ctl_write_err (fd, EBUSY, "too many control connections");
    close (fd);
    return;
  }

  r = pthread_create (&s->thread, NULL, connection_thread, s);
  if (r != 0) {
    pthread_mutex_lock (&c->lock);
    s->state = SLOT_FREE;
    s->fd = -1;
    pthread_mutex_unlock (&c->lock);
    sc_ctl_write_err (fd, r, "cannot start a thread: %s", strerror (r));
    close (fd);
  }
}

static void *
accept_thread (void *arg)
{
  struct sc_control *c = arg;

  for (;;) {
    struct pollfd p[2] = {
      { .fd = c->listen_fd, .events = POLLIN },
      { .fd = c->wake[0], .events = POLLIN },
    };
    int fd;

    if (poll (p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return NULL;
    }
    if (p[1].revents)
      return NULL;
    if (!(p[0].revents & POLLIN))
      continue;

    fd = accept4 (c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      /* Out of fds or memory: back off rather than spin, but stay
       * responsive to stop. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        poll (&p[1], 1, 100);
      continue;
    }
    admit (c, fd);
  }
}

/* ---- lifetime -------------------------------------------------------- */

/* Is someone answering at `path`?  1 yes, 0 no (stale), or -errno. */
static int
is_listening (const struct sockaddr_un *addr)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int r;

  if (fd < 0)
    return -errno;
  r = connect (fd, (const struct sockaddr *) addr, sizeof *addr);
  r = r == 0 ? 1 : errno == ECONNREFUSED ? 0 : -errno;
  close (fd);
  return r;
}

/* Make way for our socket: replace a stale one, but never touch a live
 * server's socket or anything that is not a socket. */
static int
clear_path (const struct sockaddr_un *addr, char *err, size_t errlen)
{
  const char *path = addr->sun_path;
  struct stat st;
  int r;

  if (lstat (path, &st) < 0) {
    if (errno == ENOENT)
      return 0;
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if (!S_ISSOCK (st.st_mode)) {
    snprintf (err, errlen, "%s: exists and is not a socket", path);
    return -EEXIST;
  }
  r = is_listening (addr);
  if (r == 1) {
    snprintf (err, errlen, "%s: a server is already listening", path);
    return -EADDRINUSE;
  }
  if (r == -ENOENT)             /* removed since lstat */
    return 0;
  if (r < 0) {
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if (unlink (path) < 0 && errno != ENOENT) {
    r = -errno;
    snprintf (err, errlen, "%s: cannot remove stale socket: %s",
              path, strerror (-r));
    return r;
  }
  return 0;
}

int
sc_control_bind (const char *path, struct sc_control **out,
                 char *err, size_t errlen)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct sc_control *c;
  size_t i;
  int r;

  if (strlen (path) >= sizeof addr.sun_path) {
    snprintf (err, errlen, "%s: path too long for a Unix socket", path);
    return -ENAMETOOLONG;
  }
  strcpy (addr.sun_path, path);

  c = calloc (1, sizeof *c);
  if (!c || !(c->path = strdup (path))) {
    free (c);
    snprintf (err, errlen, "%s: %s", path, strerror (ENOMEM));
    return -ENOMEM;
  }
  c->wake[0] = c->wake[1] = -1;
  pthread_mutex_init (&c->lock, NULL);
  for (i = 0; i < CONNS_MAX; i++)
    c->slots[i].fd = -1;

  r = clear_path (&addr, err, errlen);
  if (r < 0)
    goto fail;

  c->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->listen_fd < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: socket: %s", path, strerror (-r));
    goto fail;
  }
  /* Linux creates the socket file with the socket inode's mode (less the
   * umask): setting it first means the path never exists wider than 0600,
   * and unlike umask(2) it does not race with other threads. */
  if (fchmod (c->listen_fd, 0600) < 0 ||
      bind (c->listen_fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    goto fail_close;
  }
  if (listen (c->listen_fd, 16) < 0 || pipe2 (c->wake, O_CLOEXEC) < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    unlink (path);
    goto fail_close;
  }
  *out = c;
  return 0;

 fail_close:
  close (c->listen_fd);
 fail:
  pthread_mutex_destroy (&c->lock);
  free (c->path);
  free (c);
  return r;
}

int
sc_control_start (struct sc_control *c, struct sc_volume *v)
{
  sigset_t all, old;
  int r;

  c->v = v;
  /* Signals are nbdkit's business: our threads (and the connection
   * threads, which inherit the mask) never take them. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  r = pthread_create (&c->acceptor, NULL, accept_thread, c);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0)
    return -r;
  c->started = true;
  return 0;
}

void
sc_control_stop (struct sc_control *c)
{
  size_t i;

  if (!c)
    return;
  if (c->started) {
    while (write (c->wake[1], "", 1) < 0 && errno == EINTR)
      ;
    pthread_join (c->acceptor, NULL);

    /* No new connections now.  Wake the ones blocked in read; a request
     * being answered finishes first, then its thread sees EOF. */
    pthread_mutex_lock (&c->lock);
    for (i = 0; i < CONNS_MAX; i++)
      if (c->slots[i].state == SLOT_RUNNING)
        shutdown (c->slots[i].fd, SHUT_RDWR);
    pthread_mutex_unlock (&c->lock);
    for (i = 0; i < CONNS_MAX; i++)
      if (c->slots[i].state != SLOT_FREE)
        pthread_join (c->slots[i].thread, NULL);
  }
  close (c->listen_fd);
  close (c->wake[0]);
  close (c->wake[1]);
  unlink (c->path);
  pthread_mutex_destroy (&c->lock);
  free (c->path);
  free (c);
}
