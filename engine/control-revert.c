/* shadowcopy: the control verbs of a revert (see control-verbs.h and
 * docs/design.md, "Revert").
 *
 *   REVERT NAME [save=NAME|nosave] [rate=BYTES] [force] [dry-run] [paused]
 *        make the live volume read as snapshot NAME now and write it back
 *        in the background (rate in bytes/s, 0 unbounded; default
 *        SC_REVERT_RATE_DEFAULT); the current state is kept as snapshot
 *        save= (default pre-revert-<UTC time>) unless nosave; force
 *        revokes the live connections (refused with EBUSY otherwise);
 *        paused records it without starting the background copy
 *        (REVERT-RESUME starts it: snapshot sets); dry-run changes
 *        nothing -> * revert-plan target= bytes-to-write= space-needed=
 *        limit= fits=yes|no.  Otherwise -> * revert (as REVERT-STATUS)
 *   REVERT-STATUS -> * revert state=none|running|paused|stopped target=
 *        saved= bytes-done= bytes-todo= rate= eta= errors= [error=]
 *        [ended=]
 *   REVERT-RESUME    start the background copy of a paused revert
 *   REVERT-RATE BYTES    the running revert's rate from now on (0
 *        unbounded), durably -> * revert (as REVERT-STATUS)
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/control-verbs.h"

static const char *
revert_state (const struct sc_revert_status *st)
{
  if (!st->info.active)
    return "none";
  return st->running ? "running" : st->paused ? "paused" : "stopped";
}

/* The "revert" line of a status (REVERT, REVERT-STATUS, INFO). */
static int
write_status (int fd, const struct sc_revert_status *st)
{
  char text[8][32];
  struct sc_ctl_field f[SC_CTL_FIELDS_MAX];
  size_t n = 0;
  const uint64_t nums[] = { st->bytes_done, st->bytes_todo, st->rate,
                            st->errors, st->eta_s, st->session_bytes };
  const char *keys[] = { "bytes-done", "bytes-todo", "rate", "errors", "eta",
                         "session-bytes" };

  f[n++] = (struct sc_ctl_field) { "state", revert_state (st) };
  if (st->info.active) {
    f[n++] = (struct sc_ctl_field) { "target", st->info.target };
    if (st->info.saved[0])
      f[n++] = (struct sc_ctl_field) { "saved", st->info.saved };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
      if (nums[i] == UINT64_MAX)
        snprintf (text[i], sizeof text[i], "unknown");
      else
        snprintf (text[i], sizeof text[i], "%" PRIu64, nums[i]);
      f[n++] = (struct sc_ctl_field) { keys[i], text[i] };
    }
    if (!st->info.target_valid)
      f[n++] = (struct sc_ctl_field) { "target-invalid", "yes" };
  }
  if (st->error)
    f[n++] = (struct sc_ctl_field) { "error", strerror (st->error) };
  if (!st->info.active && st->info.ended_why[0])
    f[n++] = (struct sc_ctl_field) { "ended", st->info.ended_why };
  return sc_ctl_write_data (fd, "revert", f, n);
}

static int
reply_status (int fd, const struct sc_revert_status *st)
{
  int r = write_status (fd, st);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

int
sc_write_revert_line (struct sc_volume *v, int fd)
{
  struct sc_revert_status st;
  sc_volume_revert_status (v, &st);
  return st.info.active ? write_status (fd, &st) : 0;
}

int
sc_reply_revert_busy (struct sc_volume *v, int fd)
{
  struct sc_revert_status st;
  sc_volume_revert_status (v, &st);
  return sc_ctl_write_err (fd, EBUSY, "a revert to %s is running: %" PRIu64
                           "%% done; see revert --status", st.info.target,
                           st.bytes_todo ? st.bytes_done * 100 / st.bytes_todo
                                         : 100);
}

struct revert_args {
  const char *name, *save;
  bool nosave, force, dry_run, paused;
  uint64_t rate;
};

static int
parse_args (const struct sc_ctl_request *req, struct revert_args *a)
{
  *a = (struct revert_args) { .name = req->args[0],
                              .rate = SC_REVERT_RATE_DEFAULT };
  for (size_t i = 1; i < req->nargs; i++) {
    const char *s = req->args[i];
    if (strncmp (s, "save=", 5) == 0)
      a->save = s + 5;
    else if (strcmp (s, "nosave") == 0)
      a->nosave = true;
    else if (strcmp (s, "force") == 0)
      a->force = true;
    else if (strcmp (s, "dry-run") == 0)
      a->dry_run = true;
    else if (strcmp (s, "paused") == 0)
      a->paused = true;
    else if (strncmp (s, "rate=", 5) != 0 ||
             sc_ctl_parse_u64 (s + 5, &a->rate) < 0)
      return -EINVAL;
  }
  return a->save && a->nosave ? -EINVAL : 0;
}

/* The refusal of a revert to `name`, said once. */
static int
reply_refusal (struct sc_volume *v, int fd, int r, const char *name,
               const char *save, uint64_t live)
{
  struct sc_revert_status st;
  switch (r) {
  case -ENOENT:
    return sc_ctl_write_err (fd, ENOENT, "no snapshot named %s", name);
  case -EINVAL: {
    struct sc_snapshot_info info;
    if (sc_volume_snapshot_lookup (v, name, &info) == 0 && info.clone)
      return sc_ctl_write_err (fd, EINVAL, "%s is a writable clone; revert "
                               "to a snapshot", name);
    if (sc_volume_snapshot_lookup (v, name, &info) == 0 && info.checkpoint)
      return sc_ctl_write_err (fd, EINVAL, "cannot revert to %s: it is a "
                               "checkpoint (it keeps no data)", name);
    if (sc_volume_snapshot_lookup (v, name, &info) == 0 && info.auto_release)
      return sc_ctl_write_err (fd, EINVAL, "cannot revert to %s: it is an "
                               "auto-release snapshot", name);
    if (!save)
      return sc_ctl_write_err (fd, EINVAL, "cannot revert to %s",
                               name ? name : "(no name)");
    return sc_ctl_write_err (fd, EINVAL, "cannot save the current state as "
                             "'%s': not a valid snapshot name", save);
  }
  case -ESTALE:
    return sc_ctl_write_err (fd, ESTALE, "cannot revert to %s: the snapshot "
                             "is invalid", name);
  case -EALREADY:
    sc_volume_revert_status (v, &st);
    return sc_ctl_write_err (fd, EALREADY, "a revert to %s is already "
                             "running; see revert --status", st.info.target);
  case -EEXIST:
    return sc_ctl_write_err (fd, EEXIST, "cannot save the current state as "
                             "%s: a snapshot of that name exists",
                             save ? save : "(none)");
  case -EBUSY:
    if (live)
      return sc_ctl_write_err (fd, EBUSY, "volume in use: %" PRIu64 " live "
                               "connection%s (their caches would be stale; "
                               "--force revokes them)", live,
                               live == 1 ? "" : "s");
    return sc_ctl_write_err (fd, EBUSY, "busy: a snapshot creation is in "
                             "progress on this volume");
  case -EAGAIN:
    return sc_ctl_write_err (fd, EAGAIN, "snapshot %s is being kept as a "
                             "checkpoint (its data is going): not a revert "
                             "target", name);
  case -ENOSPC:
    return sc_ctl_write_err (fd, ENOSPC, "the revert to %s does not fit "
                             "under the diff area's limit (see revert "
                             "--dry-run; raise it with resize --max)", name);
  }
  return sc_reply_volume_err (v, fd, r, "revert");
}

static int
reply_plan (struct sc_volume *v, int fd, const struct sc_revert_plan *p)
{
  char text[4][32];
  uint32_t cs = sc_volume_chunk_size (v);
  snprintf (text[0], sizeof text[0], "%" PRIu64, p->todo_chunks * cs);
  snprintf (text[1], sizeof text[1], "%" PRIu64, p->copy_chunks * cs);
  snprintf (text[2], sizeof text[2], "%" PRIu64, p->max_bytes);
  struct sc_ctl_field f[] = {
    { "bytes-to-write", text[0] }, { "space-needed", text[1] },
    { "limit", text[2] }, { "fits", p->fits ? "yes" : "no" },
  };
  int r = sc_ctl_write_data (fd, "revert-plan", f, sizeof f / sizeof f[0]);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

int
sc_verb_revert (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct revert_args a;
  if (parse_args (req, &a) < 0)
    return sc_ctl_write_err (fd, EINVAL, "usage: REVERT NAME [save=NAME|"
                             "nosave] [rate=BYTES] [force] [dry-run] "
                             "[paused]");
  char save[SC_NAME_MAX + 1] = "";
  if (a.save)
    snprintf (save, sizeof save, "%s", a.save);
  else if (!a.nosave) {
    time_t t = time (NULL);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (save, sizeof save, "pre-revert-%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  const char *sp = a.nosave ? NULL : save;
  if (a.dry_run) {
    struct sc_revert_plan p;
    int r = sc_volume_revert_plan (ss->v, a.name, sp != NULL, &p);
    return r < 0 ? reply_refusal (ss->v, fd, r, a.name, sp, 0)
                 : reply_plan (ss->v, fd, &p);
  }
  unsigned flags = (a.force ? SC_REVERT_FORCE : 0) |
                   (a.paused ? SC_REVERT_PAUSED : 0);
  uint64_t live = 0;
  struct sc_revert_status st;
  int r = sc_volume_revert_start (ss->v, a.name, sp, a.rate, flags, &live,
                                  &st);
  if (r < 0)
    return reply_refusal (ss->v, fd, r, a.name, sp, live);
  return reply_status (fd, &st);
}

int
sc_verb_revert_status (struct session *ss, const struct sc_ctl_request *req,
                       int fd)
{
  struct sc_revert_status st;
  sc_volume_revert_status (ss->v, &st);
  return reply_status (fd, &st);
}

int
sc_verb_revert_resume (struct session *ss, const struct sc_ctl_request *req,
                       int fd)
{
  int r = sc_volume_revert_resume (ss->v);
  if (r == -ENOENT)
    return sc_ctl_write_err (fd, ENOENT, "no revert is running");
  if (r < 0)
    return sc_reply_volume_err (ss->v, fd, r, "revert resume");
  return sc_verb_revert_status (ss, req, fd);
}

int
sc_verb_revert_rate (struct session *ss, const struct sc_ctl_request *req,
                     int fd)
{
  uint64_t rate;
  if (sc_ctl_parse_u64 (req->args[0], &rate) < 0)
    return sc_ctl_write_err (fd, EINVAL, "usage: REVERT-RATE BYTES (bytes "
                             "per second, 0: unbounded)");
  int r = sc_volume_revert_set_rate (ss->v, rate);
  if (r == -ENOENT)
    return sc_ctl_write_err (fd, ENOENT, "no revert is running");
  if (r < 0)
    return sc_reply_volume_err (ss->v, fd, r, "revert rate");
  return sc_verb_revert_status (ss, req, fd);
}
