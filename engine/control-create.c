/* shadowcopy: snapshot creation over the control protocol: CREATE, and
 * the creation in steps BEGIN, HOLD, COMMIT, RELEASE, ABORT; CHECKPOINT,
 * created as CREATE creates (see control-verbs.h and
 * control-protocol.h).
 *
 * Notes on the design
 *
 * Each connection is a session (struct session): the snapshot creation
 * it has begun and the auto-release snapshots it owns.  The connection
 * thread itself closes and opens the write gate, so it also keeps the
 * deadline (see the
 * notes in control.c on how reads and replies wait for it); when it
 * passes, sc_session_expire aborts the creation: the snapshot committed
 * under it is deleted, the writes are released, the creation slot is
 * freed, and the next request learns it (ETIMEDOUT).  When the
 * connection ends the same abort runs, then the session's auto-release
 * snapshots are deleted (sc_session_close).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/io.h"
#include "engine/clock.h"
#include "engine/control-verbs.h"

#define BEGIN_TIMEOUT_MS_DEFAULT 120000   /* BEGIN: the whole creation */
#define BEGIN_TIMEOUT_MS_MAX 3600000
#define HOLD_TIMEOUT_MS_DEFAULT 10000     /* HOLD: the write hold (VSS) */
#define HOLD_TIMEOUT_MS_MAX 60000

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

/* ---- sessions -------------------------------------------------------- */

/* Delete snapshot `id` by name, unless the name now belongs to another
 * snapshot (the user deleted ours and made a new one), or, with
 * `released`, unless it is no longer auto-release (it was kept as a
 * checkpoint: that one outlives its session). */
static void
delete_snapshot (struct sc_volume *v, uint64_t id, const char *name,
                 bool released)
{
  struct sc_snapshot_info s;

  if (sc_volume_snapshot_lookup (v, name, &s) < 0 || s.id != id ||
      (released && !s.auto_release))
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
    delete_snapshot (ss->v, ss->pending.id, ss->pending.name, false);
  if (ss->held)
    sc_volume_release (ss->v);
  if (ss->committed && keep && ss->pending.auto_release &&
      session_own (ss, &ss->pending) < 0)
    delete_snapshot (ss->v, ss->pending.id, ss->pending.name, false);
  sc_volume_create_end (ss->v);
  ss->begun = ss->held = ss->committed = false;
}

void
sc_session_expire (struct session *ss)
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

void
sc_session_close (struct session *ss)
{
  if (ss->begun)
    log_debug ("control: connection closed during a snapshot creation: "
               "aborting it");
  session_end_creation (ss, false);
  for (size_t i = 0; i < ss->nowned; i++) {
    log_debug ("control: session ended: deleting auto-release snapshot %s",
               ss->owned[i].name);
    delete_snapshot (ss->v, ss->owned[i].id, ss->owned[i].name, true);
  }
  free (ss->owned);
  ss->owned = NULL;
  ss->nowned = 0;
}

/* ---- creation ------------------------------------------------------- */

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
        return sc_reply_snapshot_err (fd, -EINVAL, "create", a);
      o->name = a;
    }
    else if (snapshot_opts && strncmp (a, "set=", 4) == 0) {
      if (sc_uuid_parse (eq + 1, o->set_id) < 0)
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

/* What CREATE and COMMIT ask of the new snapshot; points into `o`. */
static struct sc_snapshot_opts
snapshot_opts (const struct create_opts *o)
{
  return (struct sc_snapshot_opts) {
    .set_id = o->has_set ? o->set_id : NULL,
    .auto_release = o->auto_release,
    .delete_oldest = o->delete_oldest,
  };
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
write_busy (struct sc_volume *v, int fd)
{
  if (sc_diff_revert_active (sc_volume_diff (v)))
    return sc_reply_revert_busy (v, fd);
  return sc_ctl_write_err (fd, EBUSY, "busy: another snapshot creation is "
                           "in progress on this volume");
}

/* -EMFILE from a checkpoint's creation: max-checkpoints is reached. */
static int
write_too_many_checkpoints (struct sc_volume *v, int fd)
{
  const struct sc_volume_config *cfg = sc_volume_config (v);
  return sc_ctl_write_err (fd, EMFILE, "too many checkpoints: the limit "
                           "max-checkpoints=%u is reached; delete some, or "
                           "create with delete-oldest=1 (shadowcopy "
                           "checkpoint --delete-oldest)", cfg->max_checkpoints
                           ? cfg->max_checkpoints
                           : SC_MAX_CHECKPOINTS_DEFAULT);
}

/* CREATE and CHECKPOINT: hold, commit, release in one request. */
static int
create_now (struct session *ss, const struct create_opts *o, bool checkpoint,
            int fd)
{
  struct sc_snapshot_opts so = snapshot_opts (o);
  struct sc_snapshot_info s;
  int r;

  if (ss->begun)
    return sc_ctl_write_err (fd, EINVAL, "%s: this connection has a "
                             "creation in progress (RELEASE or ABORT it)",
                             checkpoint ? "CHECKPOINT" : "CREATE");
  so.checkpoint = checkpoint;
  r = sc_volume_snapshot_create (ss->v, o->name, &so, &s);
  if (r == -EBUSY)
    return write_busy (ss->v, fd);
  if (r == -EMFILE)
    return checkpoint ? write_too_many_checkpoints (ss->v, fd)
                      : write_too_many (ss->v, fd);
  if (r < 0)
    return sc_reply_snapshot_verr (ss->v, fd, r, "create", o->name);
  if (s.auto_release && session_own (ss, &s) < 0) {
    delete_snapshot (ss->v, s.id, s.name, false);
    return sc_ctl_write_err (fd, ENOMEM, "cannot track auto-release "
                             "snapshot %s: deleted it", s.name);
  }
  r = sc_reply_snapshot (fd, &s);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* CREATE [NAME] [set=UUID] [auto-release=1] [delete-oldest=1] */
int
sc_verb_create (struct session *ss, const struct sc_ctl_request *req,
                int fd)
{
  struct create_opts o;
  bool answered;
  int r = parse_create_opts (req, true, true, false, &o, fd, &answered);

  return answered ? r : create_now (ss, &o, false, fd);
}

/* CHECKPOINT NAME [delete-oldest=1]: a checkpoint, created as CREATE
 * creates a snapshot (under a hold, so that it marks one point between
 * the live writes), but keeping no data. */
int
sc_verb_checkpoint (struct session *ss, const struct sc_ctl_request *req,
                    int fd)
{
  struct create_opts o;
  bool answered;
  int r = parse_create_opts (req, true, true, false, &o, fd, &answered);

  if (answered)
    return r;
  if (!o.name)
    return sc_ctl_write_err (fd, EINVAL, "usage: CHECKPOINT NAME "
                             "[delete-oldest=1]");
  if (o.has_set || o.auto_release)
    return sc_ctl_write_err (fd, EINVAL, "CHECKPOINT: a checkpoint belongs "
                             "to no set and is never auto-released");
  return create_now (ss, &o, true, fd);
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
int
sc_verb_begin (struct session *ss, const struct sc_ctl_request *req,
               int fd)
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
    return write_busy (ss->v, fd);
  ss->expired[0] = '\0';
  ss->begun = true;
  ss->hold_ms = o.has_timeout ? o.timeout_ms : BEGIN_TIMEOUT_MS_DEFAULT;
  ss->deadline = sc_mono_ns () + ss->hold_ms * 1000000u;
  return sc_ctl_write_ok (fd);
}

/* HOLD [timeout=MS]: drain and hold writes (BEGIN first if needed). */
int
sc_verb_hold (struct session *ss, const struct sc_ctl_request *req,
              int fd)
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
      return write_busy (ss->v, fd);
    ss->begun = true;
  }
  /* The hold starts when new writes start to wait (at the write lock
   * request, before the drain and the flush), so the deadline does. */
  ss->hold_ms = o.has_timeout ? o.timeout_ms : HOLD_TIMEOUT_MS_DEFAULT;
  ss->deadline = sc_mono_ns () + ss->hold_ms * 1000000u;
  r = sc_volume_hold (ss->v);
  if (r < 0) {
    session_end_creation (ss, false);
    return sc_reply_volume_err (ss->v, fd, r, "cannot hold writes");
  }
  ss->held = true;
  sc_ctl_set_send_deadline (ss->deadline);
  snprintf (ms, sizeof ms, "%" PRIu64, ss->hold_ms);
  r = sc_ctl_write_data (fd, "hold", &f, 1);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* COMMIT [NAME] [set=UUID] [auto-release=1]: record the snapshot under
 * the hold; it is kept only if RELEASE comes before the deadline. */
int
sc_verb_commit (struct session *ss, const struct sc_ctl_request *req,
                int fd)
{
  struct sc_snapshot_opts so;
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
  so = snapshot_opts (&o);
  /* release=1: RELEASE in the same request, one round trip less while
   * the writes are held, and the journal's sync after the release. */
  uint64_t ns = 0;
  if (o.release) {
    r = sc_volume_hold_commit_release (ss->v, o.name, &so, &ss->pending,
                                       &ns);
    if (ns)
      ss->held = false;
  }
  else
    r = sc_volume_hold_commit (ss->v, o.name, &so, &ss->pending);
  if (r == -EMFILE)
    return write_too_many (ss->v, fd);
  if (r < 0)
    return sc_reply_snapshot_verr (ss->v, fd, r, "create", o.name);
  ss->committed = true;
  r = sc_reply_snapshot (fd, &ss->pending);
  if (r < 0 || !o.release)
    return r < 0 ? r : sc_ctl_write_ok (fd);

  char held[24];
  struct sc_ctl_field f[] = { { "held-ns", held },
                              { "name", ss->pending.name } };
  snprintf (held, sizeof held, "%" PRIu64, ns);
  r = sc_ctl_write_data (fd, "released", f, 2);
  session_end_creation (ss, true);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* RELEASE: let the writes go and keep the committed snapshot. */
int
sc_verb_release (struct session *ss, const struct sc_ctl_request *req,
                 int fd)
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
int
sc_verb_abort (struct session *ss, const struct sc_ctl_request *req,
               int fd)
{
  char name[SC_NAME_MAX + 1];
  bool committed = ss->committed;
  int r;

  ss->expired[0] = '\0';
  if (committed)
    snprintf (name, sizeof name, "%s", ss->pending.name);
  session_end_creation (ss, false);
  r = committed ? sc_reply_deleted (fd, name) : 0;
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

