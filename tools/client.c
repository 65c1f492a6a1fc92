/* shadowcopy: the requester side of the CLI (see client.h).
 *
 * Notes on the design
 *
 * Online, every answer is a list of protocol data lines; offline, the
 * diff area hands back C structs.  Both are turned into the rows of
 * client.h here, with the protocol library's own formatters (time, reason,
 * error text, sanitizing), so the CLI cannot tell the two apart.
 *
 * Offline, the diff area is opened with SC_DIFF_NOWAIT: a server holds its
 * lock for as long as it runs, and a CLI that waited for it would hang.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "engine/control-protocol.h"
#include "tools/client.h"

/* CREATE may wait for writes in flight to drain; anything longer than
 * this is a wedged server, and the user is better told so. */
#define REPLY_TIMEOUT_SECS 60

struct sc_client {
  char *where;                  /* socket or diff-area path, for messages */
  int fd;                       /* online: the control socket, else -1 */
  struct sc_diff *diff;         /* offline: the open diff area */
  struct sc_ctl_reader rd;
};

static struct sc_client *
client_new (const char *where)
{
  struct sc_client *c = calloc (1, sizeof *c);

  if (!c || !(c->where = strdup (where))) {
    free (c);
    return NULL;
  }
  c->fd = -1;
  return c;
}

static void
client_free (struct sc_client *c)
{
  if (c->fd >= 0)
    close (c->fd);
  free (c->where);
  free (c);
}

/* ---- online ---------------------------------------------------------- */

/* Called for each data line of a reply; -EPROTO if it makes no sense. */
typedef int (*line_fn) (const struct sc_ctl_line *line, void *opaque);

/* Send one request and read its reply up to the status line.  A server's
 * ERR becomes its errno and its message, as it is meant for the user. */
static int
request_v (struct sc_client *c, const char *verb, const char *const *args,
           size_t nargs, line_fn fn, void *opaque, char *err, size_t errlen)
{
  int bad = 0;
  int r;

  r = sc_ctl_write_request (c->fd, verb, args, nargs);
  if (r < 0) {
    snprintf (err, errlen, "%s: cannot send %s request: %s",
              c->where, verb, strerror (-r));
    return r;
  }

  for (;;) {
    struct sc_ctl_line line;
    const char *why = NULL;
    char *text;

    r = sc_ctl_read_line (&c->rd, &text, &why);
    if (r == 0) {
      snprintf (err, errlen, "%s: the server closed the connection",
                c->where);
      return -ECONNRESET;
    }
    if (r == -EAGAIN) {
      snprintf (err, errlen, "%s: the server did not answer within %d s",
                c->where, REPLY_TIMEOUT_SECS);
      return -ETIMEDOUT;
    }
    if (r < 0 && !why) {
      snprintf (err, errlen, "%s: %s", c->where, strerror (-r));
      return r;
    }
    if (r < 0 || sc_ctl_parse_reply (text, &line, &why) < 0) {
      snprintf (err, errlen, "%s: bad reply from the server: %s",
                c->where, why);
      return -EPROTO;
    }

    switch (line.type) {
    case SC_CTL_OK:
      if (bad) {
        snprintf (err, errlen, "%s: bad reply from the server: "
                  "malformed %s line", c->where, verb);
        return -EPROTO;
      }
      return 0;
    case SC_CTL_ERR:
      snprintf (err, errlen, "%s", line.message);
      return -line.err;
    case SC_CTL_DATA:
      /* Read on to the status line even so, to stay in step. */
      if (fn && !bad && fn (&line, opaque) < 0)
        bad = 1;
      break;
    }
  }
}

static int
request (struct sc_client *c, const char *verb, const char *arg,
         line_fn fn, void *opaque, char *err, size_t errlen)
{
  return request_v (c, verb, &arg, arg ? 1 : 0, fn, opaque, err, errlen);
}

int
sc_client_request (struct sc_client *c, const char *verb,
                   const char *const *args, size_t nargs,
                   sc_client_line_fn fn, void *opaque,
                   char *err, size_t errlen)
{
  if (c->diff) {
    snprintf (err, errlen, "%s needs a running server", verb);
    return -ENOTCONN;
  }
  return request_v (c, verb, args, nargs, fn, opaque, err, errlen);
}

struct sc_diff *
sc_client_diff (struct sc_client *c)
{
  return c->diff;
}

int
sc_client_fd (const struct sc_client *c)
{
  return c->fd;
}

static int
field_u64 (const struct sc_ctl_line *line, const char *key, uint64_t *out)
{
  const char *v = sc_ctl_field (line, key);

  return v ? sc_ctl_parse_u64 (v, out) : -EPROTO;
}

static int
field_str (const struct sc_ctl_line *line, const char *key,
           char *buf, size_t len)
{
  const char *v = sc_ctl_field (line, key);

  if (!v || strlen (v) >= len)
    return -EPROTO;
  strcpy (buf, v);
  return 0;
}

static int
snapshot_from_line (const struct sc_ctl_line *line,
                    struct sc_client_snapshot *s)
{
  char state[16];

  memset (s, 0, sizeof *s);
  if (field_u64 (line, "id", &s->id) < 0 ||
      field_str (line, "name", s->name, sizeof s->name) < 0 ||
      field_str (line, "created", s->created, sizeof s->created) < 0 ||
      field_u64 (line, "epoch", &s->epoch) < 0 ||
      field_str (line, "state", state, sizeof state) < 0 ||
      field_u64 (line, "used", &s->used_bytes) < 0)
    return -EPROTO;
  s->valid = strcmp (state, "valid") == 0;
  if (!s->valid && strcmp (state, "invalid") != 0)
    return -EPROTO;
  if (!s->valid)
    field_str (line, "reason", s->reason, sizeof s->reason);
  field_u64 (line, "discarded", &s->discarded_bytes);   /* optional */
  field_str (line, "set", s->set, sizeof s->set);
  s->auto_release = sc_ctl_field (line, "auto-release") != NULL;
  return 0;
}

int
sc_client_snapshot_from_line (const struct sc_ctl_line *line,
                              struct sc_client_snapshot *s)
{
  return snapshot_from_line (line, s);
}

static int
volume_from_line (const struct sc_ctl_line *line, struct sc_client_volume *v)
{
  memset (v, 0, sizeof *v);
  if (field_u64 (line, "size", &v->volume_size) < 0 ||
      field_u64 (line, "chunk-size", &v->chunk_size) < 0 ||
      field_u64 (line, "diff-used", &v->diff_used_bytes) < 0 ||
      field_u64 (line, "diff-file", &v->diff_file_bytes) < 0 ||
      field_u64 (line, "snapshots", &v->snapshots) < 0 ||
      field_u64 (line, "copies", &v->copies) < 0 ||
      field_u64 (line, "epoch", &v->epoch) < 0 ||
      field_str (line, "origin", v->origin, sizeof v->origin) < 0)
    return -EPROTO;
  v->have_holds =
    field_u64 (line, "holds", &v->holds) == 0 &&
    field_u64 (line, "hold-last-ns", &v->hold_last_ns) == 0 &&
    field_u64 (line, "hold-p50-ns", &v->hold_p50_ns) == 0 &&
    field_u64 (line, "hold-p99-ns", &v->hold_p99_ns) == 0 &&
    field_u64 (line, "hold-max-ns", &v->hold_max_ns) == 0;
  /* Space management (optional: older servers do not say). */
  field_u64 (line, "diff-max", &v->diff_max);
  field_u64 (line, "max-snapshots", &v->max_snapshots);
  field_u64 (line, "dropped", &v->dropped);
  field_u64 (line, "full-failures", &v->full_failures);
  field_u64 (line, "discarded", &v->discarded_bytes);
  field_u64 (line, "invalid", &v->invalid);
  field_str (line, "on-full", v->on_full, sizeof v->on_full);
  field_str (line, "last-drop", v->last_drop, sizeof v->last_drop);
  field_str (line, "last-drop-reason", v->last_drop_reason,
             sizeof v->last_drop_reason);
  return 0;
}

/* Data lines of other kinds are skipped everywhere: a newer server may
 * say more than we know how to show. */
static inline bool
is_kind (const struct sc_ctl_line *line, const char *kind)
{
  return strcmp (line->kind, kind) == 0;
}

static int
on_hello (const struct sc_ctl_line *line, void *opaque)
{
  uint64_t *protocol = opaque;

  return !is_kind (line, "server") ? 0
    : field_u64 (line, "protocol", protocol);
}

static int
connect_socket (const char *path, int *fdp)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval tv = { .tv_sec = REPLY_TIMEOUT_SECS };
  int fd, r;

  if (strlen (path) >= sizeof addr.sun_path)
    return -ENAMETOOLONG;
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    r = -errno;
    close (fd);
    return r;
  }
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  *fdp = fd;
  return 0;
}

/* Connect and check we speak the same protocol.  -ENOENT and
 * -ECONNREFUSED (and only they) mean that nobody listens. */
static int
open_server (const char *path, struct sc_client **out,
             char *err, size_t errlen)
{
  struct sc_client *c = client_new (path);
  uint64_t protocol = 0;
  int r;

  if (!c) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = connect_socket (path, &c->fd);
  if (r == -ENOENT || r == -ECONNREFUSED)
    snprintf (err, errlen, "no server is listening on %s", path);
  else if (r == -ENAMETOOLONG)
    snprintf (err, errlen, "%s: path too long for a Unix socket", path);
  else if (r < 0)
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
  if (r < 0)
    goto fail;

  sc_ctl_reader_init (&c->rd, c->fd);
  r = request (c, "HELLO", NULL, on_hello, &protocol, err, errlen);
  if (r < 0)
    goto fail;
  if (protocol != SC_CTL_PROTOCOL) {
    snprintf (err, errlen, "%s: the server speaks control protocol %" PRIu64
              ", this shadowcopy speaks %d", path, protocol, SC_CTL_PROTOCOL);
    r = -EPROTO;
    goto fail;
  }
  *out = c;
  return 0;

 fail:
  client_free (c);
  return r;
}

int
sc_client_connect (const char *socket, struct sc_client **out,
                   char *err, size_t errlen)
{
  return open_server (socket, out, err, errlen);
}

/* ---- offline --------------------------------------------------------- */

static void
snapshot_from_info (const struct sc_snapshot_info *i,
                    struct sc_client_snapshot *s)
{
  memset (s, 0, sizeof *s);
  s->id = i->id;
  snprintf (s->name, sizeof s->name, "%.*s", SC_NAME_MAX, i->name);
  sc_ctl_sanitize (s->name);
  sc_ctl_format_time (i->ctime_ns, s->created, sizeof s->created);
  s->epoch = i->epoch;
  s->valid = i->invalid_reason == SC_VALID;
  if (!s->valid)
    sc_ctl_format_reason (sc_invalid_reason_text (i->invalid_reason),
                          i->invalid_errno, s->reason, sizeof s->reason);
  s->used_bytes = i->used_bytes;
  s->discarded_bytes = i->discarded_bytes;
  if (i->in_set)
    sc_ctl_format_uuid (i->set_id, s->set);
  s->auto_release = i->auto_release;
}

int
sc_client_open_diff (const char *diff, enum sc_client_access access,
                     struct sc_client **out, char *err, size_t errlen)
{
  struct sc_client *c;
  char *sock;
  unsigned flags = SC_DIFF_NOWAIT;
  int r;

  if (asprintf (&sock, "%s.sock", diff) < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = open_server (sock, out, err, errlen);
  if (r != -ENOENT && r != -ECONNREFUSED && r != -ENAMETOOLONG) {
    free (sock);
    return r;
  }
  if (access == SC_CLIENT_SERVER) {
    snprintf (err, errlen, "create needs a running server; "
              "nobody listens on %s", sock);
    free (sock);
    return -ENOTCONN;
  }

  c = client_new (diff);
  if (!c) {
    free (sock);
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (access == SC_CLIENT_READ)
    flags |= SC_DIFF_RDONLY;
  err[0] = '\0';
  r = sc_diff_open (diff, flags, NULL, 0, &c->diff, err, errlen);
  if (r == -EWOULDBLOCK)
    snprintf (err, errlen, "%s: the diff area is in use by a running "
              "server that does not listen on %s; use -c SOCKET",
              diff, sock);
  else if (r < 0 && err[0] == '\0')
    snprintf (err, errlen, "%s: %s", diff, strerror (-r));
  free (sock);
  if (r < 0) {
    client_free (c);
    return r;
  }
  *out = c;
  return 0;
}

int
sc_client_close (struct sc_client *c, char *err, size_t errlen)
{
  int r = 0;

  if (c->diff) {
    r = sc_diff_close (c->diff);
    if (r < 0)
      snprintf (err, errlen, "%s: cannot close the diff area: %s",
                c->where, strerror (-r));
  }
  client_free (c);
  return r;
}

/* ---- requests -------------------------------------------------------- */

struct rows {
  struct sc_client_snapshot *v;
  size_t n, cap;
};

static int
rows_add (struct rows *rows, struct sc_client_snapshot **slot)
{
  if (rows->n == rows->cap) {
    size_t cap = rows->cap ? rows->cap * 2 : 16;
    struct sc_client_snapshot *v = reallocarray (rows->v, cap, sizeof *v);

    if (!v)
      return -ENOMEM;
    rows->v = v;
    rows->cap = cap;
  }
  *slot = &rows->v[rows->n++];
  return 0;
}

static int
on_snapshot (const struct sc_ctl_line *line, void *opaque)
{
  struct sc_client_snapshot *s;

  if (!is_kind (line, "snapshot"))
    return 0;
  if (rows_add (opaque, &s) < 0)
    return -ENOMEM;
  return snapshot_from_line (line, s);
}

int
sc_client_list (struct sc_client *c, struct sc_client_snapshot **out,
                size_t *n, char *err, size_t errlen)
{
  struct rows rows = { 0 };
  int r = 0;

  if (c->diff) {
    struct sc_snapshot_info *list;
    struct sc_client_snapshot *s;
    size_t i, count;

    r = sc_diff_snapshot_list (c->diff, &list, &count);
    if (r == 0) {
      for (i = 0; r == 0 && i < count; i++) {
        r = rows_add (&rows, &s);
        if (r == 0)
          snapshot_from_info (&list[i], s);
      }
      free (list);
    }
    if (r < 0)
      snprintf (err, errlen, "%s: cannot list snapshots: %s",
                c->where, strerror (-r));
  }
  else
    r = request (c, "LIST", NULL, on_snapshot, &rows, err, errlen);

  if (r < 0) {
    free (rows.v);
    return r;
  }
  *out = rows.v;
  *n = rows.n;
  return 0;
}

struct one_volume {
  struct sc_client_volume *v;
  bool seen;
};

static int
on_volume (const struct sc_ctl_line *line, void *opaque)
{
  struct one_volume *o = opaque;

  if (!is_kind (line, "volume"))
    return 0;
  o->seen = true;
  return volume_from_line (line, o->v);
}

int
sc_client_info (struct sc_client *c, struct sc_client_volume *out,
                char *err, size_t errlen)
{
  struct one_volume o = { .v = out };
  struct sc_diff_stats st;
  int r;

  if (!c->diff) {
    r = request (c, "INFO", NULL, on_volume, &o, err, errlen);
    if (r == 0 && !o.seen) {
      snprintf (err, errlen, "%s: bad reply from the server: "
                "no volume line", c->where);
      r = -EPROTO;
    }
    return r;
  }

  sc_diff_stats (c->diff, &st);
  memset (out, 0, sizeof *out);
  out->volume_size = st.volume_size;
  out->chunk_size = st.chunk_size;
  out->diff_used_bytes = st.used_bytes;
  out->diff_file_bytes = st.file_bytes;
  out->snapshots = st.snapshots;
  out->copies = st.copies;
  out->epoch = st.epoch;
  out->diff_max = st.max_bytes;
  out->dropped = st.dropped;
  out->discarded_bytes = st.discarded_bytes;
  out->invalid = st.invalid;
  {
    struct sc_drop_info *drops;
    size_t n;
    if (sc_diff_drops (c->diff, &drops, &n, NULL) == 0) {
      if (n) {
        snprintf (out->last_drop, sizeof out->last_drop, "%s",
                  drops[n - 1].name);
        snprintf (out->last_drop_reason, sizeof out->last_drop_reason, "%s",
                  sc_invalid_reason_text (drops[n - 1].reason));
      }
      free (drops);
    }
  }
  snprintf (out->origin, sizeof out->origin, "%.*s",
            (int) sizeof st.origin.path, st.origin.path);
  sc_ctl_sanitize (out->origin);
  return 0;
}

struct deleted {
  sc_client_deleted_fn fn;
  void *opaque;
};

static int
on_deleted (const struct sc_ctl_line *line, void *opaque)
{
  struct deleted *d = opaque;
  const char *name = sc_ctl_field (line, "name");

  if (!is_kind (line, "deleted"))
    return 0;
  if (!name)
    return -EPROTO;
  d->fn (name, d->opaque);
  return 0;
}

static int
delete_offline (struct sc_client *c, const char *name,
                sc_client_deleted_fn deleted, void *opaque,
                char *err, size_t errlen)
{
  int r = sc_diff_snapshot_delete (c->diff, name);

  if (r < 0) {
    sc_ctl_snapshot_error (r, "delete", name, err, errlen);
    return r;
  }
  deleted (name, opaque);
  return 0;
}

/* The same rules as the server's DELETE-OLDEST and DELETE-ALL. */
static int
delete_listed_offline (struct sc_client *c, bool all,
                       sc_client_deleted_fn deleted, void *opaque,
                       char *err, size_t errlen)
{
  struct sc_snapshot_info *list;
  size_t i, n;
  int r;

  r = sc_diff_snapshot_list (c->diff, &list, &n);
  if (r < 0) {
    snprintf (err, errlen, "%s: cannot list snapshots: %s",
              c->where, strerror (-r));
    return r;
  }
  if (n == 0 && !all) {
    snprintf (err, errlen, "no snapshots");
    r = -ENOENT;
  }
  for (i = 0; r == 0 && i < (all ? n : 1); i++)
    r = delete_offline (c, list[i].name, deleted, opaque, err, errlen);
  free (list);
  return r;
}

int
sc_client_delete (struct sc_client *c, enum sc_client_delete_what what,
                  const char *name, sc_client_deleted_fn deleted,
                  void *opaque, char *err, size_t errlen)
{
  struct deleted d = { deleted, opaque };

  if (c->diff) {
    switch (what) {
    case SC_CLIENT_DELETE_NAME:
      return delete_offline (c, name, deleted, opaque, err, errlen);
    case SC_CLIENT_DELETE_OLDEST:
      return delete_listed_offline (c, false, deleted, opaque, err, errlen);
    case SC_CLIENT_DELETE_ALL:
      return delete_listed_offline (c, true, deleted, opaque, err, errlen);
    }
  }
  switch (what) {
  case SC_CLIENT_DELETE_NAME:
    return request (c, "DELETE", name, on_deleted, &d, err, errlen);
  case SC_CLIENT_DELETE_OLDEST:
    return request (c, "DELETE-OLDEST", NULL, on_deleted, &d, err, errlen);
  case SC_CLIENT_DELETE_ALL:
  default:
    return request (c, "DELETE-ALL", NULL, on_deleted, &d, err, errlen);
  }
}
