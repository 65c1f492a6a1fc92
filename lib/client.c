/* shadowcopy: the requester side of the CLI (see client.h).
 *
 * Notes on the design
 *
 * Every answer is a list of protocol data lines, turned into the rows of
 * client.h here, online or offline alike.  Offline, when no server runs,
 * the client opens a volume on the diff area itself
 * (sc_volume_open_offline) and serves its own requests on a thread of its
 * own with the server's code (sc_control_serve) over a socketpair: the
 * rules of LIST, DELETE-OLDEST, DELETE-ALL, DELETE-SET, INFO and RESIZE
 * exist once, in engine/control-*.c, so the CLI cannot tell the two
 * apart.
 *
 * Offline, the diff area is opened with SC_DIFF_NOWAIT: a server holds its
 * lock for as long as it runs, and a CLI that waited for it would hang.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "engine/clock.h"
#include "engine/control-protocol.h"
#include "engine/control.h"
#include "engine/volume.h"
#include "lib/client.h"

/* CREATE may wait for writes in flight to drain; anything longer than
 * this is a wedged server, and the user is better told so. */
#define REPLY_TIMEOUT_SECS 60
/* A server with too many connections is tried again for this long. */
#define CONNECT_RETRY_SECS 8

struct sc_client {
  char *where;                  /* socket or diff-area path, for messages */
  int fd;                       /* the control socket (offline: our end) */
  struct sc_ctl_reader rd;
  /* HELLO's answer: the server's protocol version and its own. */
  uint64_t protocol, protocol_minor;
  char version[64];
  /* Offline: the volume on the diff area, and the thread serving it on
   * the other end of a socketpair. */
  struct sc_volume *offline;
  int server_fd;
  pthread_t server;
};

static struct sc_client *
client_new (const char *where)
{
  struct sc_client *c = calloc (1, sizeof *c);

  if (!c || !(c->where = strdup (where))) {
    free (c);
    return NULL;
  }
  c->fd = c->server_fd = -1;
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

/* A server's ERR: its message is meant for the user as it is; one that
 * says nothing is named with the socket and the verb. */
static int
server_err (const struct sc_client *c, const char *verb,
            const struct sc_ctl_line *line, char *err, size_t errlen)
{
  if (line->message[0])
    snprintf (err, errlen, "%s", line->message);
  else
    snprintf (err, errlen, "%s: the server refused %s (%s) without saying "
              "why", c->where, verb, strerror (line->err));
  return -line->err;
}

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
    /* A server that refused us (too many connections) or closed an idle
     * connection said why before closing: that is the answer. */
    struct sc_ctl_line line;
    const char *why;
    char *text;
    if ((r == -EPIPE || r == -ECONNRESET) &&
        sc_ctl_read_line (&c->rd, &text, &why) > 0 &&
        sc_ctl_parse_reply (text, &line, &why) == 0 &&
        line.type == SC_CTL_ERR)
      return server_err (c, verb, &line, err, errlen);
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
      return server_err (c, verb, &line, err, errlen);
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
  return request_v (c, verb, args, nargs, fn, opaque, err, errlen);
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
  /* Optional (older servers: snapshots only, no UUIDs). */
  if (field_str (line, "type", s->type, sizeof s->type) < 0)
    strcpy (s->type, "snapshot");
  s->checkpoint = strcmp (s->type, "checkpoint") == 0;
  field_str (line, "uuid", s->uuid, sizeof s->uuid);
  field_u64 (line, "meta", &s->meta_bytes);
  field_str (line, "base", s->base, sizeof s->base);
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
  field_u64 (line, "damaged", &v->damaged);
  field_u64 (line, "checkpoints", &v->checkpoints);
  field_u64 (line, "max-checkpoints", &v->max_checkpoints);
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

/* HELLO's "server" line: protocol= (the major version), protocol-minor=
 * (0 when missing: servers before it was added), version=. */
static int
on_hello (const struct sc_ctl_line *line, void *opaque)
{
  struct sc_client *c = opaque;

  if (!is_kind (line, "server"))
    return 0;
  c->protocol_minor = 0;
  field_u64 (line, "protocol-minor", &c->protocol_minor);
  field_str (line, "version", c->version, sizeof c->version);
  return field_u64 (line, "protocol", &c->protocol);
}

/* Start talking on c->fd: check we speak the same major protocol. */
static int
greet (struct sc_client *c, char *err, size_t errlen)
{
  int r;

  sc_ctl_reader_init (&c->rd, c->fd);
  c->protocol = 0;
  r = request (c, "HELLO", NULL, on_hello, c, err, errlen);
  if (r == 0 && c->protocol != SC_CTL_PROTOCOL) {
    snprintf (err, errlen, "%s: the server speaks control protocol %" PRIu64
              ", libshadowcopy speaks %d (upgrade %s)", c->where,
              c->protocol, SC_CTL_PROTOCOL,
              c->protocol > SC_CTL_PROTOCOL ? "libshadowcopy and the "
              "requester built on it" : "the server, "
              "nbdkit-shadowcopy-plugin");
    r = -EPROTO;
  }
  return r;
}

void
sc_client_server (const struct sc_client *c, unsigned *major,
                  unsigned *minor, const char **version, const char **where,
                  bool *offline)
{
  *major = (unsigned) c->protocol;
  *minor = c->protocol_minor > UINT_MAX ? UINT_MAX
                                        : (unsigned) c->protocol_minor;
  *version = c->version;
  *where = c->where;
  *offline = c->offline != NULL;
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

/* Why nobody answers at `path`, in err: it does not exist, it is not a
 * socket (the diff-area file given to -c instead of --diff, say), or it
 * is a socket nobody listens on (the server stopped or crashed). */
static void
not_listening (const char *path, char *err, size_t errlen)
{
  struct stat st;

  if (stat (path, &st) < 0)
    snprintf (err, errlen, "no server is listening on %s: %s; is nbdkit "
              "running? (-c names the control socket: the plugin's "
              "control=, by default DIFFAREA.sock)", path, strerror (errno));
  else if (S_ISREG (st.st_mode))
    snprintf (err, errlen, "%s is not a socket but a file: did you mean "
              "--diff %s? (-c names the server's control socket, --diff "
              "the diff-area file)", path, path);
  else if (!S_ISSOCK (st.st_mode))
    snprintf (err, errlen, "%s is not a socket (%s): -c names the "
              "server's control socket (control=, by default "
              "DIFFAREA.sock)", path,
              S_ISDIR (st.st_mode) ? "a directory" : "not a file either");
  else
    snprintf (err, errlen, "no server is listening on %s; is nbdkit "
              "running? (a socket left by a server that stopped)", path);
}

/* Does the server at `path` greet in NBD ("NBDMAGIC"), as nbdkit's -U
 * socket does?  Asked only once the control protocol failed there. */
static bool
speaks_nbd (const char *path)
{
  char magic[8];
  int fd;
  ssize_t n = 0, k;

  if (connect_socket (path, &fd) < 0)
    return false;
  struct timeval tv = { .tv_sec = 2 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (n < (ssize_t) sizeof magic &&
         (k = recv (fd, magic + n, sizeof magic - n, 0)) > 0)
    n += k;
  close (fd);
  return n == sizeof magic && memcmp (magic, "NBDMAGIC", 8) == 0;
}

/* Connect and check we speak the same protocol.  -ENOENT and
 * -ECONNREFUSED (and only they) mean that nobody listens. */
static int
open_server_once (const char *path, struct sc_client **out,
                  char *err, size_t errlen)
{
  struct sc_client *c = client_new (path);
  int r;

  if (!c) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = connect_socket (path, &c->fd);
  if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTSOCK)
    not_listening (path, err, errlen);
  else if (r == -ENAMETOOLONG)
    snprintf (err, errlen, "%s: path too long for a Unix socket", path);
  else if (r < 0)
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
  if (r < 0)
    goto fail;

  r = greet (c, err, errlen);
  if (r < 0 && r != -EPROTO && speaks_nbd (path))
    snprintf (err, errlen, "%s is an NBD socket (nbdkit -U), not the "
              "control socket: give -c the control socket (control=, by "
              "default DIFFAREA.sock), or --diff DIFFAREA", path);
  if (r < 0)
    goto fail;
  *out = c;
  return 0;

 fail:
  client_free (c);
  return r;
}

/* A server at its connection limit answers HELLO with EBUSY, and closes
 * its idle connections soon (engine/control.c): try again for a while
 * before giving up, so that management gets through. */
static int
open_server (const char *path, struct sc_client **out,
             char *err, size_t errlen)
{
  uint64_t until = sc_mono_ns () + CONNECT_RETRY_SECS * 1000000000ull;
  int r;

  while ((r = open_server_once (path, out, err, errlen)) == -EBUSY &&
         sc_mono_ns () < until)
    nanosleep (&(struct timespec) { .tv_nsec = 200000000 }, NULL);
  return r;
}

int
sc_client_connect (const char *socket, struct sc_client **out,
                   char *err, size_t errlen)
{
  return open_server (socket, out, err, errlen);
}

/* ---- offline --------------------------------------------------------- */

static void *
serve_offline (void *arg)
{
  struct sc_client *c = arg;

  sc_control_serve (c->offline, c->server_fd, SC_CONTROL_IN_PROCESS);
  /* Whatever ended the session, the client must see the end of the
   * replies rather than wait for more. */
  shutdown (c->server_fd, SHUT_RDWR);
  return NULL;
}

/* Open the diff area `diff` as a volume and serve it to ourselves.
 * `sock` is where no server answered, for messages. */
static int
open_offline (const char *diff, bool rdonly, const char *sock,
              struct sc_client **out, char *err, size_t errlen)
{
  struct sc_client *c = client_new (diff);
  int sv[2], r;

  if (!c) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = sc_volume_open_offline (diff, rdonly, &c->offline, err, errlen);
  if (r == -EWOULDBLOCK)
    /* Held open read-write elsewhere: maybe no server at all. */
    snprintf (err, errlen, "%s: the diff area is in use by another program "
              "(a server that does not listen on %s, or another offline "
              "user such as a shadowcopy command or a libshadowcopy "
              "program); use -c SOCKET if a server runs", diff, sock);
  if (r == 0 && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    r = -errno;
  else if (r == 0) {
    c->fd = sv[0];
    c->server_fd = sv[1];
    r = -pthread_create (&c->server, NULL, serve_offline, c);
    if (r < 0)
      close (c->server_fd);
  }
  if (r < 0) {
    if (c->offline)
      snprintf (err, errlen, "%s: %s", diff, strerror (-r));
    sc_volume_close (c->offline);
    client_free (c);
    return r;
  }
  r = greet (c, err, errlen);
  if (r < 0) {
    sc_client_close (c, NULL, 0);
    return r;
  }
  *out = c;
  return 0;
}

bool
sc_client_diff_is_socket (const char *diff, char *err, size_t errlen)
{
  struct stat st;

  if (stat (diff, &st) < 0 || !S_ISSOCK (st.st_mode))
    return false;
  snprintf (err, errlen, "--diff %s: %s is a socket; the diff area is the "
            "file the server was started with (diff=); its control socket "
            "is given with -c", diff, diff);
  return true;
}

int
sc_client_open_diff (const char *diff, enum sc_client_access access,
                     struct sc_client **out, char *err, size_t errlen)
{
  char *sock;
  struct stat st;
  int r;

  if (sc_client_diff_is_socket (diff, err, errlen))
    return -EINVAL;
  if (asprintf (&sock, "%s.sock", diff) < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  r = open_server (sock, out, err, errlen);
  if (r == -ENOENT || r == -ECONNREFUSED || r == -ENAMETOOLONG) {
    if (access == SC_CLIENT_SERVER) {
      snprintf (err, errlen, "this needs a running server; "
                "nobody listens on %s (is nbdkit running with diff=%s? "
                "with another control=, give that socket with -c)",
                sock, diff);
      r = -ENOTCONN;
    }
    else if (stat (diff, &st) < 0 && errno == ENOENT) {
      snprintf (err, errlen, "--diff %s: no such file, and no server "
                "listens on %s: --diff names the diff-area file the "
                "server was started with (diff=)", diff, sock);
      r = -ENOENT;
    }
    else
      r = open_offline (diff, access == SC_CLIENT_READ, sock, out, err,
                        errlen);
  }
  free (sock);
  return r;
}

int
sc_client_close (struct sc_client *c, char *err, size_t errlen)
{
  int r = 0;

  if (c->offline) {
    /* Our end closed, the server sees the end of its input. */
    close (c->fd);
    c->fd = -1;
    pthread_join (c->server, NULL);
    close (c->server_fd);
    r = sc_volume_close (c->offline);
    if (r < 0 && err)
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
  int r = request (c, "LIST", NULL, on_snapshot, &rows, err, errlen);

  if (r < 0) {
    free (rows.v);
    return r;
  }
  *out = rows.v;
  *n = rows.n;
  return 0;
}

/* A number of a "revert" line, or "unknown" -> UINT64_MAX. */
static int
field_u64_or_unknown (const struct sc_ctl_line *line, const char *key,
                      uint64_t *out)
{
  const char *v = sc_ctl_field (line, key);
  if (v && strcmp (v, "unknown") == 0) {
    *out = UINT64_MAX;
    return 0;
  }
  return field_u64 (line, key, out);
}

int
sc_client_revert_from_line (const struct sc_ctl_line *line,
                            struct sc_client_revert *r)
{
  memset (r, 0, sizeof *r);
  if (field_str (line, "state", r->state, sizeof r->state) < 0)
    return -EPROTO;
  field_str (line, "error", r->error, sizeof r->error);
  field_str (line, "ended", r->ended, sizeof r->ended);
  if (strcmp (r->state, "none") == 0)
    return 0;
  if (field_str (line, "target", r->target, sizeof r->target) < 0 ||
      field_u64_or_unknown (line, "bytes-done", &r->bytes_done) < 0 ||
      field_u64_or_unknown (line, "bytes-todo", &r->bytes_todo) < 0 ||
      field_u64_or_unknown (line, "rate", &r->rate) < 0 ||
      field_u64_or_unknown (line, "eta", &r->eta_s) < 0)
    return -EPROTO;
  field_str (line, "saved", r->saved, sizeof r->saved);
  field_u64 (line, "errors", &r->errors);
  r->target_invalid = sc_ctl_field (line, "target-invalid") != NULL;
  return 0;
}

struct one_volume {
  struct sc_client_volume *v;
  bool seen;
};

/* The "diff-area" line: the optional fields stay empty or 0. */
static int
health_from_line (const struct sc_ctl_line *line, struct sc_client_volume *v)
{
  char state[16];

  if (field_str (line, "state", state, sizeof state) < 0)
    return -EPROTO;
  v->have_health = true;
  v->failed = strcmp (state, "failed") == 0;
  field_u64 (line, "recoveries", &v->recoveries);
  field_str (line, "recovered", v->recovered, sizeof v->recovered);
  if (!v->failed)
    return 0;
  uint64_t recorded = 0;
  field_str (line, "failed-since", v->failed_since, sizeof v->failed_since);
  field_str (line, "errno", v->failed_errno, sizeof v->failed_errno);
  field_str (line, "failed-write", v->failed_write, sizeof v->failed_write);
  field_u64 (line, "invalidated", &v->invalidated);
  field_u64 (line, "recorded", &recorded);
  v->recorded = recorded;
  field_u64 (line, "retries", &v->retries);
  field_u64 (line, "retry-every-ms", &v->retry_every_ms);
  field_str (line, "last-retry", v->last_retry, sizeof v->last_retry);
  field_str (line, "last-retry-errno", v->last_retry_errno,
             sizeof v->last_retry_errno);
  field_str (line, "last-retry-write", v->last_retry_write,
             sizeof v->last_retry_write);
  field_str (line, "message", v->health_message, sizeof v->health_message);
  return 0;
}

static int
on_volume (const struct sc_ctl_line *line, void *opaque)
{
  struct one_volume *o = opaque;

  if (is_kind (line, "diff-area"))
    return health_from_line (line, o->v);
  if (is_kind (line, "listen")) {
    field_str (line, "uri", o->v->listen, sizeof o->v->listen);
    return 0;
  }
  if (is_kind (line, "revert")) {
    o->v->have_revert = true;
    return sc_client_revert_from_line (line, &o->v->revert);
  }
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
  int r = request (c, "INFO", NULL, on_volume, &o, err, errlen);

  if (r == 0 && !o.seen) {
    snprintf (err, errlen, "%s: bad reply from the server: "
              "no volume line", c->where);
    r = -EPROTO;
  }
  return r;
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

int
sc_client_delete (struct sc_client *c, enum sc_client_delete_what what,
                  const char *name, sc_client_deleted_fn deleted,
                  void *opaque, char *err, size_t errlen)
{
  struct deleted d = { deleted, opaque };

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
