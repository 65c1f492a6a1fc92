/* shadowcopy: the control verbs that list and delete snapshots (see
 * control-verbs.h and control-protocol.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/uuid.h"
#include "engine/control-verbs.h"

int
sc_reply_snapshot (int fd, const struct sc_snapshot_info *s)
{
  char id[24], epoch[16], created[32], used[24], reason[256], disc[24];
  char set[SC_CTL_UUID_LEN], uuid[SC_CTL_UUID_LEN], meta[24];
  bool valid = s->invalid_reason == SC_VALID;
  struct sc_ctl_field f[14] = {
    { "id", id }, { "name", s->name }, { "created", created },
    { "epoch", epoch }, { "state", valid ? "valid" : "invalid" },
    { "used", used }, { "discarded", disc },
    { "type", s->clone ? "clone" : s->checkpoint ? "checkpoint"
                                                 : "snapshot" },
    { "uuid", uuid },
  };
  size_t n = 9;
  if (s->clone)
    f[n++] = (struct sc_ctl_field) { "base", s->base_name };

  snprintf (disc, sizeof disc, "%" PRIu64, s->discarded_bytes);
  snprintf (id, sizeof id, "%" PRIu64, s->id);
  snprintf (epoch, sizeof epoch, "%" PRIu32, s->epoch);
  snprintf (used, sizeof used, "%" PRIu64, s->used_bytes);
  sc_ctl_format_time (s->ctime_ns, created, sizeof created);
  sc_uuid_format (s->uuid, uuid);
  if (s->checkpoint) {
    snprintf (meta, sizeof meta, "%" PRIu64, s->meta_bytes);
    f[n++] = (struct sc_ctl_field) { "meta", meta };
  }
  sc_ctl_format_reason (sc_invalid_reason_text (s->invalid_reason),
                        s->invalid_errno, reason, sizeof reason);
  if (s->in_set) {
    sc_uuid_format (s->set_id, set);
    f[n++] = (struct sc_ctl_field) { "set", set };
  }
  if (s->auto_release)
    f[n++] = (struct sc_ctl_field) { "auto-release", "1" };
  if (!valid)
    f[n++] = (struct sc_ctl_field) { "reason", reason };
  return sc_ctl_write_data (fd, "snapshot", f, n);
}

int
sc_reply_deleted (int fd, const char *name)
{
  struct sc_ctl_field f = { "name", name };

  return sc_ctl_write_data (fd, "deleted", &f, 1);
}

/* "* deleted name=NAME checkpoint=1": its data gone, its checkpoint kept. */
static int
reply_deleted_kept (int fd, const char *name)
{
  struct sc_ctl_field f[] = { { "name", name }, { "checkpoint", "1" } };

  return sc_ctl_write_data (fd, "deleted", f, 2);
}

int
sc_reply_snapshot_err (int fd, int err, const char *op, const char *name)
{
  char msg[256];

  sc_ctl_snapshot_error (err, op, name, msg, sizeof msg);
  return sc_ctl_write_err (fd, err, "%s", msg);
}

/* Errors a failed diff area causes: anything but the answers about the
 * request itself. */
static bool
maybe_diff_failure (int err)
{
  switch (err < 0 ? -err : err) {
  case ENOENT: case EEXIST: case EINVAL: case EMFILE: case EBUSY:
  case ENOTCONN: case ENODEV: case EROFS:
    return false;
  default:
    return true;
  }
}

int
sc_reply_volume_err (struct sc_volume *v, int fd, int err,
                     const char *context)
{
  struct sc_diff_health h;
  char msg[1024];

  if (err < 0)
    err = -err;
  sc_volume_diff_health (v, &h);
  if (!maybe_diff_failure (err) || !h.failed)
    return sc_ctl_write_err (fd, err, "%s: %s", context, strerror (err));
  sc_diff_health_message (&h, msg, sizeof msg);
  return sc_ctl_write_err (fd, err, "%s: %s", context, msg);
}

int
sc_reply_snapshot_verr (struct sc_volume *v, int fd, int err,
                        const char *op, const char *name)
{
  char context[256];

  if (!maybe_diff_failure (err))
    return sc_reply_snapshot_err (fd, err, op, name);
  snprintf (context, sizeof context, "cannot %s snapshot%s%s", op,
            name && name[0] ? " " : "", name ? name : "");
  return sc_reply_volume_err (v, fd, err, context);
}

/* LIST ends with the kept history of policy drops, oldest first:
 *   * dropped id= name= created= dropped-at= reason= */
static int
write_drops (struct sc_volume *v, int fd)
{
  struct sc_drop_info *drops;
  size_t i, n;
  int r = sc_volume_drops (v, &drops, &n, NULL);

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

int
sc_verb_list (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  struct sc_snapshot_info *list;
  size_t i, n;
  int r;

  r = sc_volume_snapshot_list (ss->v, &list, &n);
  if (r < 0)
    return sc_ctl_write_err (fd, r, "cannot list snapshots: %s",
                             strerror (-r));
  for (i = 0; i < n && r == 0; i++)
    r = sc_reply_snapshot (fd, &list[i]);
  free (list);
  if (r == 0)
    r = write_drops (ss->v, fd);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* The clones of snapshot `name`, from a listing (*list, free it): *n
 * of them, moved to its front.  A missing snapshot has none. */
static int
clones_of (struct sc_volume *v, const char *name,
           struct sc_snapshot_info **list, size_t *n)
{
  struct sc_snapshot_info s;
  size_t all = 0, k = 0;
  *list = NULL;
  *n = 0;
  if (sc_volume_snapshot_lookup (v, name, &s) < 0)
    return 0;
  int r = sc_volume_snapshot_list (v, list, &all);
  if (r < 0)
    return r;
  for (size_t i = 0; i < all; i++)
    if ((*list)[i].clone && (*list)[i].base_id == s.id)
      (*list)[k++] = (*list)[i];
  *n = k;
  return 0;
}

/* A protected snapshot cannot go: the running revert's target, or a
 * snapshot with clones: which clones (as many as a client's one-line
 * error holds, then how many more). */
static int
reply_busy (struct sc_volume *v, int fd, const char *name)
{
  struct sc_snapshot_info *c;
  size_t n, i;
  char names[640] = "";
  size_t at = 0;
  struct sc_snapshot_info s;
  if (sc_volume_snapshot_lookup (v, name, &s) == 0 &&
      sc_volume_snapshot_protected (v, s.id) == SC_PROTECTED_REVERT)
    return sc_ctl_write_err (fd, EBUSY, "snapshot %s is the target of the "
                             "running revert; see revert --status", name);
  if (clones_of (v, name, &c, &n) < 0)
    n = 0;
  for (i = 0; i < n; i++) {
    size_t len = strlen (c[i].name);
    if (at + len + 32 > sizeof names)
      break;
    at += (size_t) snprintf (names + at, sizeof names - at, "%s%s",
                             i ? ", " : "", c[i].name);
  }
  if (i < n)
    snprintf (names + at, sizeof names - at, " and %zu more", n - i);
  free (c);
  return sc_ctl_write_err (fd, EBUSY, "snapshot %s has clones: %s; delete "
                           "them first or use --with-clones", name,
                           names[0] ? names : "(being deleted)");
}

/* DELETE NAME keep-checkpoint=1: why a snapshot cannot be kept as a
 * checkpoint. */
static int
reply_keep_err (struct sc_volume *v, int fd, int err, const char *name)
{
  switch (-err) {
  case EINVAL:
    return sc_ctl_write_err (fd, EINVAL, "%s is a checkpoint already: "
                             "nothing to delete but the checkpoint (delete "
                             "it without keep-checkpoint)", name);
  case ESTALE:
    return sc_ctl_write_err (fd, ESTALE, "snapshot %s is invalid: it cannot "
                             "be kept as a checkpoint (its changes since are "
                             "unknown); delete it without keep-checkpoint",
                             name);
  case EMFILE:
    return sc_ctl_write_err (fd, EMFILE, "cannot keep %s as a checkpoint: "
                             "the limit max-checkpoints is reached; delete "
                             "a checkpoint first", name);
  case EBUSY:
    return reply_busy (v, fd, name);
  case EAGAIN:
    return sc_ctl_write_err (fd, EAGAIN, "snapshot %s is being kept as a "
                             "checkpoint by another request already", name);
  default:
    return sc_reply_snapshot_verr (v, fd, err, "delete", name);
  }
}

/* DELETE NAME uuid=UUID: deletes NAME only if it is still that snapshot
 * (a client that named it earlier never deletes one made since under
 * the same name). */
static int
delete_uuid (struct sc_volume *v, int fd, const char *name, const char *arg)
{
  uint8_t id[16];
  int r;

  if (sc_uuid_parse (arg, id) < 0)
    return sc_ctl_write_err (fd, EINVAL, "invalid uuid= (want a UUID): %s",
                             arg);
  r = sc_volume_snapshot_delete_uuid (v, name, id);
  if (r == -ESTALE)
    return sc_ctl_write_err (fd, ESTALE, "snapshot %s is not the one of "
                             "UUID %s (deleted and made again): not "
                             "deleted", name, arg);
  if (r < 0)
    return sc_reply_snapshot_verr (v, fd, r, "delete", name);
  r = sc_reply_deleted (fd, name);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

int
sc_verb_delete (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  const char *name = req->args[0], *uuid = NULL;
  bool keep = false, with_clones = false;
  int r;

  if (req->nargs > 1) {
    if (strcmp (req->args[1], "keep-checkpoint=1") == 0)
      keep = true;
    else if (strcmp (req->args[1], "with-clones=1") == 0)
      with_clones = true;
    else if (strncmp (req->args[1], "uuid=", 5) == 0)
      uuid = req->args[1] + 5;
    else if (strcmp (req->args[1], "keep-checkpoint=0") != 0)
      return sc_ctl_write_err (fd, EINVAL, "usage: DELETE NAME "
                               "[keep-checkpoint=1 | uuid=UUID | "
                               "with-clones=1]");
  }
  if (!sc_snapshot_name_valid (name))
    return sc_reply_snapshot_err (fd, -EINVAL, "delete", name);
  if (uuid)
    return delete_uuid (ss->v, fd, name, uuid);
  if (keep) {
    r = sc_volume_snapshot_keep_checkpoint (ss->v, name);
    if (r < 0)
      return reply_keep_err (ss->v, fd, r, name);
    r = reply_deleted_kept (fd, name);
    return r < 0 ? r : sc_ctl_write_ok (fd);
  }
  struct sc_snapshot_info *clones = NULL;
  size_t nclones = 0;
  if (with_clones && (r = clones_of (ss->v, name, &clones, &nclones)) < 0)
    return sc_ctl_write_err (fd, -r, "cannot list the clones of %s: %s",
                             name, strerror (-r));
  r = with_clones ? sc_volume_snapshot_delete_with_clones (ss->v, name)
                  : sc_volume_snapshot_delete (ss->v, name);
  if (r < 0) {
    free (clones);
    return r == -EBUSY ? reply_busy (ss->v, fd, name)
                       : sc_reply_snapshot_verr (ss->v, fd, r, "delete", name);
  }
  for (size_t i = 0; r == 0 && i < nclones; i++)
    r = sc_reply_deleted (fd, clones[i].name);
  free (clones);
  if (r == 0)
    r = sc_reply_deleted (fd, name);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

static void
sort_clones_first (struct sc_snapshot_info *list, size_t n)
{
  for (size_t i = 0, k = 0; i < n; i++)
    if (list[i].clone) {
      struct sc_snapshot_info t = list[i];
      memmove (&list[k + 1], &list[k], (i - k) * sizeof *list);
      list[k++] = t;
    }
}

/* DELETE-OLDEST, DELETE-ALL and DELETE-SET work on a listing taken
 * first: a snapshot that another client deletes meanwhile is simply no
 * longer ours to report (ALL, SET), or is reported as gone (OLDEST: the
 * user asked for that one and did not get it).  `set`: only the members
 * of that snapshot set, ENOENT when there is none.  OLDEST is the oldest
 * snapshot (it frees space; a checkpoint holds none), ALL takes
 * checkpoints too.  The offline CLI runs these very handlers, so online
 * and offline follow the same rules. */
static int
delete_listed (struct sc_volume *v, int fd, bool all, const uint8_t *set,
               const char *set_text)
{
  struct sc_snapshot_info *list;
  size_t i, n, found = 0;
  int r = 0;

  r = sc_volume_snapshot_list (v, &list, &n);
  if (r < 0)
    return sc_ctl_write_err (fd, r, "cannot list snapshots: %s",
                             strerror (-r));
  size_t kept = 0;
  if (!all) {                   /* the oldest snapshot, first in the list */
    size_t k = 0;               /* (a protected one is skipped: the
                                   revert's target, a base of clones) */
    for (i = 0; i < n; i++)
      if (!list[i].checkpoint && !list[i].clone &&
          !(sc_volume_snapshot_protected (v, list[i].id) && ++kept))
        list[k++] = list[i];
    n = k;
  }
  else                          /* clones before their bases */
    sort_clones_first (list, n);
  if (n == 0 && !all) {
    free (list);
    if (kept)
      return sc_ctl_write_err (fd, ENOENT, "no snapshot can go: the "
                               "running revert's target and the bases of "
                               "clones are kept");
    return sc_ctl_write_err (fd, ENOENT, "no snapshots");
  }
  /* ALL and SET free their copies in one pass at the end, not one pass
   * over the copy map per snapshot. */
  if (all)
    sc_volume_gc_hold (v);
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
      if (all)
        (void) sc_volume_gc_release (v);
      r = sc_reply_snapshot_verr (v, fd, r, "delete", list[i].name);
      free (list);
      return r < 0 ? r : 0;
    }
    r = sc_reply_deleted (fd, list[i].name);
    if (r < 0)
      break;
  }
  if (all) {
    int g = sc_volume_gc_release (v);
    if (g < 0 && r == 0) {
      free (list);
      return sc_ctl_write_err (fd, -g, "snapshots deleted, but freeing "
                               "their space failed: %s", strerror (-g));
    }
  }
  free (list);
  if (r == 0 && set && found == 0)
    return sc_ctl_write_err (fd, ENOENT, "no snapshot of set %s on this "
                             "volume", set_text);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* DELETE-SET UUID: every snapshot of the set on this volume. */
int
sc_verb_delete_set (struct session *ss, const struct sc_ctl_request *req,
                    int fd)
{
  uint8_t id[16];

  if (sc_uuid_parse (req->args[0], id) < 0)
    return sc_ctl_write_err (fd, EINVAL, "invalid set id (want a UUID): %s",
                             req->args[0]);
  return delete_listed (ss->v, fd, true, id, req->args[0]);
}

int
sc_verb_delete_oldest (struct session *ss, const struct sc_ctl_request *req,
                       int fd)
{
  return delete_listed (ss->v, fd, false, NULL, NULL);
}

int
sc_verb_delete_all (struct session *ss, const struct sc_ctl_request *req,
                    int fd)
{
  return delete_listed (ss->v, fd, true, NULL, NULL);
}
