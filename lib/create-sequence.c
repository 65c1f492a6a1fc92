/* shadowcopy: the VSS creation sequence of create (see
 * create-sequence.h).
 *
 * Notes on the design
 *
 * First identify every writer (one that fails is left out, with a
 * warning).  Then one attempt, in VSS order:
 *   BEGIN on every volume (the creation slot: a busy volume fails the
 *   attempt, or with --wait is asked again every 200 ms);
 *   prepare, then freeze every writer (the freeze window starts);
 *   HOLD every volume, then COMMIT on every volume (all held before any
 *   commits, so the set is one point in time), each COMMIT releasing its
 *   volume (release=1);
 *   thaw every writer, post-snapshot.
 * Any failure from prepare on sends abort, then thaw, to every writer,
 * and ABORTs (or, once released, DELETEs) the snapshot on every volume:
 * no volume keeps a snapshot of a failed attempt.  --retry N makes up to
 * N more attempts, --retry-delay apart.
 *
 * The servers enforce the hold (hold-timeout) and the creation (BEGIN's
 * timeout) themselves, so a CLI that dies or hangs cannot hold writes
 * longer; the fsfreeze guardian thaws by itself at the end of the freeze
 * window (see writers.h).
 *
 * Without writers and with one volume, the snapshot is taken with the
 * one-shot CREATE: the hold is then not stretched by round trips.
 *
 * Below, each step of an attempt is a function of its own, in the order
 * they run, and says what it leaves behind when it fails.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/control-protocol.h"
#include "lib/create-sequence.h"

#define BUSY_RETRY_US 200000    /* --wait: a busy volume asked again */

/* The arguments of COMMIT, and of the one-shot CREATE:
 * NAME set=ID [auto-release=1] [delete-oldest=1] [release=1]. */
struct commit_args {
  char name[SC_NAME_MAX + 8];
  char set[SC_CTL_UUID_LEN + 8];
  const char *v[5];
  size_t n;
};

/* ---- notices and failures --------------------------------------------- */

static uint64_t
mono_ms (void)
{
  return sc_mono_ns () / 1000000u;
}

static void
vsay (const struct sc_create *cr, const char *fmt, va_list ap)
{
  char m[4096];

  if (!cr->notify)
    return;
  vsnprintf (m, sizeof m, fmt, ap);
  cr->notify (m, cr->notify_opaque);
}

/* A notice for the requester: a warning, a retry, a step of an undo. */
static void __attribute__ ((format (printf, 2, 3)))
say (const struct sc_create *cr, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsay (cr, fmt, ap);
  va_end (ap);
}

/* A failure of the attempt: a notice too, as it happens (so that the
 * undo's notices follow it), and, the attempt's first, kept in
 * cr->error for the caller. */
static void __attribute__ ((format (printf, 3, 4)))
fail (struct sc_create *cr, int r, const char *fmt, ...)
{
  va_list ap;

  if (!cr->error[0]) {
    va_start (ap, fmt);
    vsnprintf (cr->error, sizeof cr->error, fmt, ap);
    va_end (ap);
    cr->error_errno = r < 0 ? -r : EIO;
  }
  va_start (ap, fmt);
  vsay (cr, fmt, ap);
  va_end (ap);
}

/* ---- the writers ----------------------------------------------------- */

static struct sc_writer_env
env_of (const struct sc_create *cr)
{
  return (struct sc_writer_env) {
    .set_id = cr->set_id, .snapshot = cr->name,
    .snapshots = cr->snapshots, .volumes = cr->volumes,
    .backup_result = cr->backup_result,
    .notify = cr->notify, .notify_opaque = cr->notify_opaque,
  };
}

int
sc_create_writers_phase (struct sc_create *cr, const char *phase, bool all,
                         char *msg, size_t msglen)
{
  struct sc_writer_env env = env_of (cr);
  uint64_t timeout_ms = cr->freeze_ms;
  int first = 0;

  for (size_t i = 0; i < cr->nwriters; i++) {
    char m[2048];
    uint64_t limit = timeout_ms, now = mono_ms ();
    if (cr->writers[i].excluded)
      continue;
    /* prepare and freeze are bounded as a whole (the freeze window):
     * each writer gets what is left of it, and none once it is over. */
    if (cr->phase_end && now >= cr->phase_end && !all) {
      snprintf (msg, msglen, "writer %s: %s: the %s of %" PRIu64 " ms "
                "ended before it ran", cr->writers[i].name, phase,
                strcmp (phase, "freeze") == 0 ? "freeze window"
                : "time for prepare", cr->freeze_ms);
      return -ETIMEDOUT;
    }
    if (cr->phase_end && cr->phase_end - now < limit)
      limit = cr->phase_end - now;
    int r = sc_writer_run (&cr->writers[i], phase, &env, limit,
                           limit, m, sizeof m);
    if (r == -ETIMEDOUT && limit < timeout_ms)
      snprintf (m, sizeof m, "writer %s: %s: timed out: the %s of %" PRIu64
                " ms ended%s%s", cr->writers[i].name, phase,
                strcmp (phase, "freeze") == 0 ? "freeze window"
                : "time for prepare", cr->freeze_ms,
                cr->writers[i].output[0] ? ": " : "",
                cr->writers[i].output);
    if (r < 0 && !first) {
      first = r;
      snprintf (msg, msglen, "%s", m);
    }
    else if (r < 0)
      say (cr, "%s", m);
    if (r < 0 && !all)
      return r;
  }
  return first;
}

/* identify: a writer that fails is left out, with a warning.  Never
 * fails. */
void
sc_create_identify (struct sc_create *cr)
{
  char msg[2048];
  struct sc_writer_env env = env_of (cr);

  for (size_t k = 0; k < cr->nwriters; k++)
    if (sc_writer_run (&cr->writers[k], "identify", &env, cr->freeze_ms,
                       cr->freeze_ms, msg, sizeof msg) < 0) {
      cr->writers[k].excluded = true;
      say (cr, "warning: left out: %s", msg);
    }
}

static bool
writers_active (const struct sc_create *cr)
{
  for (size_t i = 0; i < cr->nwriters; i++)
    if (!cr->writers[i].excluded)
      return true;
  return false;
}

/* ---- the volumes ----------------------------------------------------- */

static int
simple (struct sc_create_volume *v, const char *verb,
        const char *const *args, size_t nargs, char *err, size_t errlen)
{
  return sc_client_request (v->c, verb, args, nargs, NULL, NULL, err,
                            errlen);
}

static int
on_snapshot (const struct sc_ctl_line *line, void *opaque)
{
  if (strcmp (line->kind, "snapshot") != 0)
    return 0;
  return sc_client_snapshot_from_line (line, opaque);
}

/* The client's message without the socket it starts with (most of its
 * messages name it), for a message that names the socket itself. */
static const char *
unnamed (const char *socket, const char *err)
{
  size_t n = strlen (socket);

  if (strncmp (err, socket, n) == 0 && strncmp (err + n, ": ", 2) == 0)
    return err + n + 2;
  return err;
}

int
sc_create_delete_member (const char *socket, struct sc_client *c,
                         const char *name, const char *set_id,
                         const char *uuid, char *err, size_t errlen)
{
  struct sc_client *own = NULL;
  struct sc_client_snapshot *list = NULL, *m = NULL;
  char e[1024], arg_uuid[8 + SC_CTL_UUID_LEN];
  const char *args[2] = { name, arg_uuid };
  size_t n = 0;
  int r;

  if (!c && (r = sc_client_connect (socket, &own, e, sizeof e)) < 0)
    goto out;
  if (!c)
    c = own;
  if ((r = sc_client_list (c, &list, &n, e, sizeof e)) < 0)
    goto out;
  /* Without a name, the one of the set (the set's ID is new to each
   * creation, and a volume holds one snapshot of a set). */
  for (size_t k = 0; k < n && !m; k++)
    if (name[0] ? strcmp (list[k].name, name) == 0
        : strcmp (list[k].set, set_id) == 0 && !list[k].checkpoint &&
          (!list[k].type[0] || strcmp (list[k].type, "snapshot") == 0))
      m = &list[k];
  /* Ours only while it is a snapshot of the set (a checkpoint kept from
   * it has the same name and UUID, and is the user's now). */
  if (!m || m->checkpoint ||
      (m->type[0] && strcmp (m->type, "snapshot") != 0) ||
      strcmp (m->set, set_id) != 0 ||
      (uuid && uuid[0] && strcmp (m->uuid, uuid) != 0)) {
    r = 0;
    goto out;
  }
  name = args[0] = m->name;
  snprintf (arg_uuid, sizeof arg_uuid, "uuid=%s", m->uuid);
  r = sc_client_request (c, "DELETE", args, m->uuid[0] ? 2 : 1, NULL, NULL,
                         e, sizeof e);
  /* Gone meanwhile, or another one of that name now: nothing of ours. */
  r = r == -ENOENT || r == -ESTALE ? 0 : r < 0 ? r : 1;
 out:
  if (r < 0)
    snprintf (err, errlen, "%s: deleting %s%s: %s", socket,
              name[0] ? name : "the snapshot of set ",
              name[0] ? "" : set_id, unnamed (socket, e));
  free (list);
  if (own)
    sc_client_close (own, e, sizeof e);
  return r;
}

/* Undo on every volume: ABORT where the creation is open, DELETE where a
 * snapshot was already released.  A COMMIT (or one-shot CREATE) sent but
 * not answered OK may have been recorded (its reply lost with the
 * connection): after the ABORT, the member of the set of that name (or,
 * unnamed, of the set) is looked for and deleted, over a new connection
 * if this one is gone. */
static void
undo_volumes (struct sc_create *cr)
{
  for (size_t i = 0; i < cr->nvols; i++) {
    struct sc_create_volume *v = &cr->vols[i];
    const char *name = v->snap.name;
    char err[1024];
    bool undone = true, maybe = v->committed;
    if (v->begun && !v->released) {
      if (simple (v, "ABORT", NULL, 0, err, sizeof err) < 0) {
        say (cr, "%s: abort: %s", v->socket, unnamed (v->socket, err));
        undone = false;
      }
    }
    else if (v->released && v->committed) {
      const char *a = v->snap.name;
      if (simple (v, "DELETE", &a, 1, err, sizeof err) < 0) {
        say (cr, "%s: deleting %s: %s", v->socket, a,
             unnamed (v->socket, err));
        undone = false;
      }
    }
    if (v->commit_sent && !v->committed) {
      maybe = true;
      name = v->commit_name;
      undone = sc_create_delete_member (v->socket, undone ? v->c : NULL,
                                        name, cr->set_id, NULL, err,
                                        sizeof err) >= 0;
      if (!undone)
        say (cr, "%s", err);
    }
    /* A server that died after COMMIT keeps the snapshot (see
     * docs/design.md): say how to remove it once it is back. */
    if (!undone && maybe && name[0])
      say (cr, "%s: snapshot %s of set %s may remain: remove it with "
           "shadowcopy -c %s delete --set %s", v->socket, name,
           cr->set_id, v->socket, cr->set_id);
    else if (!undone && maybe)
      say (cr, "%s: a snapshot of set %s may remain: remove it with "
           "shadowcopy -c %s delete --set %s", v->socket, cr->set_id,
           v->socket, cr->set_id);
    v->begun = v->committed = v->released = v->commit_sent = false;
  }
}

void
sc_create_close (struct sc_create *cr)
{
  for (size_t i = 0; i < cr->nvols; i++) {
    char err[1024];
    if (cr->vols[i].c && sc_client_close (cr->vols[i].c, err, sizeof err) < 0)
      say (cr, "%s", err);
    cr->vols[i].c = NULL;
  }
}

/* The SHADOWCOPY_* lists, after cr->name. */
static void
set_env (struct sc_create *cr)
{
  size_t lv = 0, ls = 0;

  for (size_t k = 0; k < cr->nvols; k++) {
    lv += sprintf (cr->volumes + lv, "%s%s", k ? " " : "",
                   cr->vols[k].socket);
    ls += sprintf (cr->snapshots + ls, "%s%s=%s", k ? " " : "",
                   cr->vols[k].socket, cr->name);
  }
}

/* The default name, the UTC time after name_prefix, when none was
 * given. */
static void
default_name (struct sc_create *cr)
{
  if (!cr->have_name) {
    struct timespec ts;
    char t[64];
    clock_gettime (CLOCK_REALTIME, &ts);
    sc_ctl_format_time ((uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec,
                        t, sizeof t);
    snprintf (cr->name, sizeof cr->name, "%s%s",
              cr->name_prefix ? cr->name_prefix : "", t);
  }
  set_env (cr);
}

static bool
is_busy (int r)
{
  return r == -EBUSY;
}

/* Whether a busy volume is to be asked again (--wait). */
static bool
ask_again (const struct sc_create *cr, int r)
{
  return is_busy (r) && cr->wait && !sc_interrupted;
}

static void
commit_args_init (struct commit_args *ca, const struct sc_create *cr)
{
  snprintf (ca->name, sizeof ca->name, "%s", cr->name);
  snprintf (ca->set, sizeof ca->set, "set=%s", cr->set_id);
  ca->v[0] = ca->name;
  ca->v[1] = ca->set;
  ca->n = 2;
  if (cr->auto_release)
    ca->v[ca->n++] = "auto-release=1";
  if (cr->delete_oldest)
    ca->v[ca->n++] = "delete-oldest=1";
}

/* ---- one attempt, step by step --------------------------------------- */

/* A connection to every volume.  On failure: said, none left open. */
static int
connect_volumes (struct sc_create *cr)
{
  char err[2048];
  int r;

  for (size_t i = 0; i < cr->nvols; i++)
    if ((r = sc_client_connect (cr->vols[i].socket, &cr->vols[i].c, err,
                                sizeof err)) < 0) {
      fail (cr, r, "%s", err);
      sc_create_close (cr);
      return -1;
    }
  return 0;
}

/* No writer and one volume: the snapshot in one CREATE, so the hold is
 * not stretched by round trips.  On failure: said, no snapshot (a CREATE
 * whose reply was lost is looked for by name and set, and deleted; if
 * that cannot be confirmed, a notice says it may remain), the connection
 * closed. */
static int
create_one_shot (struct sc_create *cr, const struct commit_args *ca,
                 bool *retryable)
{
  /* Without a NAME the server names it, so that concurrent creations
   * never pick the same time; a default name with a prefix is ours, and
   * taken in the same millisecond as another, the next free NAME+k. */
  struct sc_create_volume *v = &cr->vols[0];
  bool named = cr->have_name || cr->name_prefix;
  const char *const *args = named ? ca->v : ca->v + 1;
  size_t nargs = named ? ca->n : ca->n - 1;
  struct commit_args again = *ca;
  char err[2048];
  int r;

  again.v[0] = again.name;
  args = named ? again.v : args;
  v->commit_sent = true;
  for (unsigned k = 2;; ) {
    snprintf (v->commit_name, sizeof v->commit_name, "%s",
              named ? again.name : "");
    r = sc_client_request (v->c, "CREATE", args, nargs, on_snapshot,
                           &v->snap, err, sizeof err);
    if (r == -EEXIST && !cr->have_name && cr->name_prefix && k < 100) {
      snprintf (again.name, sizeof again.name, "%s+%u", cr->name, k++);
      continue;
    }
    if (!ask_again (cr, r))
      break;
    usleep (BUSY_RETRY_US);
  }
  if (r < 0) {
    fail (cr, r, "%s: %s", v->socket, unnamed (v->socket, err));
    *retryable = is_busy (r) || r == -ETIMEDOUT;
    /* Its reply may be lost with the connection: look over a new one. */
    sc_create_close (cr);
    undo_volumes (cr);
    return -1;
  }
  v->commit_sent = false;
  v->committed = v->released = true;
  snprintf (cr->name, sizeof cr->name, "%s", v->snap.name);
  set_env (cr);
  return 0;
}

/* BEGIN: the creation slot on every volume, before any writer is
 * disturbed.  It must outlast prepare and the freeze window (each
 * bounded by freeze_ms as a whole, and freeze_ms <= FREEZE_MS_MAX keeps
 * this under the server's 1 h limit); HOLD then sets its own deadline.
 * On failure: said, no slot kept on any volume, the connections
 * closed. */
static int
begin_all (struct sc_create *cr, bool *retryable)
{
  char arg_to[40], err[2048];
  const char *to = arg_to;
  int r;

  snprintf (arg_to, sizeof arg_to, "timeout=%" PRIu64,
            cr->freeze_ms * 2 + 30000);
  for (size_t i = 0; i < cr->nvols; i++) {
    struct sc_create_volume *v = &cr->vols[i];
    for (;;) {
      r = simple (v, "BEGIN", &to, 1, err, sizeof err);
      if (!ask_again (cr, r))
        break;
      /* Give back what we hold while we wait, or two waiters could
       * deadlock each other. */
      undo_volumes (cr);
      i = 0;
      v = &cr->vols[0];
      usleep (BUSY_RETRY_US);
    }
    if (r < 0) {
      fail (cr, r, "%s: %s", v->socket, unnamed (v->socket, err));
      *retryable = is_busy (r);
      undo_volumes (cr);
      sc_create_close (cr);
      return -1;
    }
    v->begun = true;
  }
  return 0;
}

/* prepare, then freeze, every writer, each phase bounded as a whole by
 * freeze_ms; the freeze window starts at *t_freeze.  On failure: msg
 * says why, and the writers are left to rollback (abort and thaw). */
static int
freeze_writers (struct sc_create *cr, uint64_t *t_freeze, char *msg,
                size_t msglen)
{
  int r;

  cr->phase_end = mono_ms () + cr->freeze_ms;
  r = sc_create_writers_phase (cr, "prepare", false, msg, msglen);
  cr->phase_end = 0;
  if (r < 0)
    return r;
  *t_freeze = mono_ms ();
  cr->phase_end = *t_freeze + cr->freeze_ms;
  r = sc_create_writers_phase (cr, "freeze", false, msg, msglen);
  cr->phase_end = 0;
  return r;
}

/* HOLD every volume: its writes wait, until COMMIT or the server's own
 * deadline (--hold-timeout).  On failure: msg says why, and the volumes
 * are left to rollback. */
static int
hold_all (struct sc_create *cr, uint64_t window_end, char *msg, size_t msglen)
{
  char arg_to[40], err[2048];
  const char *to = arg_to;
  int r = 0;

  snprintf (arg_to, sizeof arg_to, "timeout=%" PRIu64, cr->hold_ms);
  for (size_t i = 0; i < cr->nvols && r == 0; i++) {
    r = simple (&cr->vols[i], "HOLD", &to, 1, err, sizeof err);
    if (r < 0)
      snprintf (msg, msglen, "%s: %s", cr->vols[i].socket,
                unnamed (cr->vols[i].socket, err));
  }
  /* Every hold must start inside the freeze window: after it the
   * writers (fsfreeze's guardian) may have thawed, and the point in time
   * is no longer application-consistent. */
  if (r == 0 && writers_active (cr) && mono_ms () >= window_end) {
    snprintf (msg, msglen, "the freeze window of %" PRIu64 " ms "
              "ended before every volume was held: no snapshot taken "
              "(raise --freeze-timeout)", cr->freeze_ms);
    r = -ETIMEDOUT;
  }
  return r;
}

/* COMMIT on every volume, each also releasing its own (release=1); the
 * first one settles the name.  On failure: msg says why, and what was
 * committed is marked for rollback to delete. */
static int
commit_all (struct sc_create *cr, struct commit_args *ca, char *msg,
            size_t msglen)
{
  char err[2048];
  int r = 0;

  for (size_t i = 0; i < cr->nvols && r == 0; i++) {
    struct sc_create_volume *v = &cr->vols[i];
    v->commit_sent = true;
    snprintf (v->commit_name, sizeof v->commit_name, "%s", ca->name);
    r = sc_client_request (v->c, "COMMIT", ca->v, ca->n, on_snapshot,
                           &v->snap, err, sizeof err);
    /* A default name taken in the same millisecond as the last snapshot:
     * the next free NAME+k, as the server itself does. */
    for (unsigned k = 2; r == -EEXIST && i == 0 && !cr->have_name && k < 100;
         k++) {
      snprintf (ca->name, sizeof ca->name, "%s+%u", cr->name, k);
      snprintf (v->commit_name, sizeof v->commit_name, "%s", ca->name);
      r = sc_client_request (v->c, "COMMIT", ca->v, ca->n, on_snapshot,
                             &v->snap, err, sizeof err);
    }
    if (r == 0 && i == 0) {
      snprintf (cr->name, sizeof cr->name, "%s", v->snap.name);
      snprintf (ca->name, sizeof ca->name, "%s", cr->name);
      set_env (cr);
    }
    if (r < 0)
      snprintf (msg, msglen, "%s: %s", v->socket, unnamed (v->socket, err));
    else
      v->committed = v->released = true;  /* COMMIT release=1 */
  }
  return r;
}

/* thaw every writer (each one hears it, whatever the others do), then
 * post-snapshot, whose failure is only a warning.  A writer that could
 * not thaw may have seen a bad point in time: then abort goes to every
 * writer and the snapshots are undone.  On failure: said, no snapshot
 * kept, the connections closed. */
static int
thaw_writers (struct sc_create *cr, uint64_t t_freeze)
{
  char msg[4096];
  int r = sc_create_writers_phase (cr, "thaw", true, msg, sizeof msg);

  if (getenv ("SHADOWCOPY_REPORT_FREEZE"))
    say (cr, "freeze to thaw: %" PRIu64 " ms", mono_ms () - t_freeze);
  if (r < 0) {
    fail (cr, r, "%s", msg);
    sc_create_writers_phase (cr, "abort", true, msg, sizeof msg);
    undo_volumes (cr);
    sc_create_close (cr);
    return -1;
  }
  r = sc_create_writers_phase (cr, "post-snapshot", true, msg, sizeof msg);
  if (r < 0)
    say (cr, "warning: %s", msg);
  return 0;
}

/* Undo a failed attempt after BEGIN: msg said, the snapshot ABORTed or
 * DELETEd on every volume, abort and thaw sent to every writer (frozen
 * or not), the connections closed.  Always -1. */
static int
rollback (struct sc_create *cr, int r, const char *msg, bool *retryable)
{
  char m[4096];

  if (sc_interrupted)
    *retryable = false;
  fail (cr, r, "%s", msg);
  undo_volumes (cr);
  sc_create_writers_phase (cr, "abort", true, m, sizeof m);
  sc_create_writers_phase (cr, "thaw", true, m, sizeof m);
  sc_create_close (cr);
  return -1;
}

/* One attempt, in VSS order.  0, with the connections open (they carry
 * auto-release snapshots); or -1 with the message already printed and
 * nothing left behind: no snapshot of it on any volume, every writer
 * thawed, no connection open.  *retryable says whether another attempt
 * may do better. */
static int
attempt (struct sc_create *cr, bool *retryable)
{
  struct commit_args ca;
  char msg[4096];
  uint64_t t_freeze = 0;
  int r;

  *retryable = false;
  if (connect_volumes (cr) < 0)
    return -1;
  commit_args_init (&ca, cr);
  if (!writers_active (cr) && cr->nvols == 1)
    return create_one_shot (cr, &ca, retryable);
  /* Each COMMIT also releases its volume: every volume is held before
   * the first COMMIT, so the point in time is the same on all of them,
   * and the writes wait one round trip less. */
  ca.v[ca.n++] = "release=1";

  if (begin_all (cr, retryable) < 0)
    return -1;
  /* Every volume's creation slot is ours: a default name taken now cannot
   * race with another creation of these volumes. */
  default_name (cr);
  snprintf (ca.name, sizeof ca.name, "%s", cr->name);

  r = freeze_writers (cr, &t_freeze, msg, sizeof msg);
  if (r < 0) {
    *retryable = true;
    return rollback (cr, r, msg, retryable);
  }
  r = hold_all (cr, t_freeze + cr->freeze_ms, msg, sizeof msg);
  if (r == 0)
    r = commit_all (cr, &ca, msg, sizeof msg);
  if (r < 0) {
    /* EEXIST of a default name on a later volume of a set: the next
     * attempt takes a new name. */
    *retryable = r == -ETIMEDOUT || is_busy (r) ||
                 (r == -EEXIST && !cr->have_name);
    return rollback (cr, r, msg, retryable);
  }
  return thaw_writers (cr, t_freeze);
}

/* ---- the attempts ---------------------------------------------------- */

/* Attempts until one succeeds, or up to --retry more of those that may
 * do better, --retry-delay apart.  On failure: each one said. */
int
sc_create_attempts (struct sc_create *cr)
{
  for (uint64_t n = 0; ; n++) {
    bool retryable;
    cr->error[0] = '\0';
    cr->error_errno = 0;
    default_name (cr);
    if (attempt (cr, &retryable) == 0)
      return 0;
    if (!cr->error[0])          /* every failure says why: a slip if not */
      fail (cr, -EIO, "the snapshot set could not be taken");
    if (!retryable || n >= cr->retries || sc_interrupted)
      return -cr->error_errno;
    say (cr, "retrying in %.1f s (attempt %" PRIu64 " of %" PRIu64 ")",
         cr->retry_delay_ms / 1000.0, n + 2, cr->retries + 1);
    for (uint64_t t = 0; t < cr->retry_delay_ms && !sc_interrupted; t += 100)
      usleep (100000);
  }
}

