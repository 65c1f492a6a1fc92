/* shadowcopy: the in-box writer qemu-ga:SOCKET[:MOUNT,MOUNT...], a VM's
 * filesystems frozen through its QEMU guest agent (writer-kinds.h).
 *
 * SOCKET is the host side of the agent's channel (a virtio-serial
 * chardev socket, or qemu-ga's own unix-listen socket); the MOUNTs are
 * the guest's mount points to freeze (all of its filesystems when none
 * is given).  The guardian holds the one connection the agent takes:
 *   freeze: guest-sync-delimited (stale replies before its 0xFF
 *           delimiter are dropped), guest-fsfreeze-freeze or
 *           guest-fsfreeze-freeze-list, guest-fsfreeze-status "frozen";
 *   thaw:   guest-sync-delimited, guest-fsfreeze-thaw,
 *           guest-fsfreeze-status "thawed".
 * Every call has a deadline; a sync has at most SYNC_MS.  Replies are
 * one JSON object a line (tools/json-read.h parses them).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/guardian.h"
#include "lib/writer-kinds.h"
#include "tools/json-read.h"

#define SYNC_MS 5000            /* an agent that does not sync in this */
#define LINE_MAX_BYTES 65536    /* a longer reply line is garbage */

struct qga {
  char *socket;
  char **mounts;                /* none: every filesystem of the guest */
  size_t nmounts;
  int fd;                       /* the connection, in the guardian */
  bool sent_freeze;             /* we may have frozen: thaw it */
  bool agent_refused;           /* the last call's answer was an error */
  char buf[LINE_MAX_BYTES];
  size_t blen;
};

static void
qga_free (void *state)
{
  struct qga *q = state;

  if (!q)
    return;
  free (q->socket);
  for (size_t i = 0; i < q->nmounts; i++)
    free (q->mounts[i]);
  free (q->mounts);
  if (q->fd >= 0)
    close (q->fd);
  free (q);
}

static int
qga_parse (const char *arg, void **state, char *err, size_t len)
{
  struct qga *q = calloc (1, sizeof *q);
  const char *colon = strchr (arg, ':');
  size_t slen = colon ? (size_t) (colon - arg) : strlen (arg);

  if (!q)
    return -ENOMEM;
  q->fd = -1;
  if (slen == 0 || slen >= sizeof ((struct sockaddr_un *) 0)->sun_path) {
    snprintf (err, len, "%s", slen ? "the socket path is too long"
              : "no socket: qemu-ga:SOCKET[:MOUNT,MOUNT...]");
    qga_free (q);
    return -EINVAL;
  }
  if (!(q->socket = strndup (arg, slen)))
    goto nomem;
  if (colon) {
    char *list = strdup (colon + 1), *save = NULL;
    if (!list)
      goto nomem;
    for (char *m = strtok_r (list, ",", &save); m;
         m = strtok_r (NULL, ",", &save)) {
      if (m[0] != '/') {
        snprintf (err, len, "guest mount point '%s' is not an absolute path",
                  m);
        free (list);
        qga_free (q);
        return -EINVAL;
      }
      char **nm = realloc (q->mounts, (q->nmounts + 1) * sizeof *nm);
      if (!nm || !(nm[q->nmounts] = strdup (m))) {
        if (nm)
          q->mounts = nm;
        free (list);
        goto nomem;
      }
      q->mounts = nm;
      q->nmounts++;
    }
    free (list);
    if (q->nmounts == 0) {
      snprintf (err, len, "no mount point after the socket's ':'");
      qga_free (q);
      return -EINVAL;
    }
  }
  *state = q;
  return 0;
 nomem:
  qga_free (q);
  return -ENOMEM;
}

static int
qga_check (void *state, char *why, size_t len)
{
  struct qga *q = state;
  struct stat st;

  if (stat (q->socket, &st) < 0) {
    int e = -errno;
    snprintf (why, len, "agent socket %s: %s", q->socket, strerror (-e));
    return e;
  }
  if (!S_ISSOCK (st.st_mode)) {
    snprintf (why, len, "agent socket %s: not a socket", q->socket);
    return -ENOTSOCK;
  }
  return 0;
}

/* ---- the connection ------------------------------------------------------ */

/* Wait for `events` on the connection until deadline: 0, -ETIMEDOUT. */
static int
qga_wait (struct qga *q, short events, uint64_t deadline)
{
  for (;;) {
    uint64_t now = sc_guardian_now_ms ();
    if (now >= deadline)
      return -ETIMEDOUT;
    struct pollfd p = { .fd = q->fd, .events = events };
    int k = poll (&p, 1, (int) (deadline - now));
    if (k < 0 && errno != EINTR)
      return -errno;
    if (k > 0)
      return 0;
  }
}

static void
qga_disconnect (struct qga *q)
{
  if (q->fd >= 0)
    close (q->fd);
  q->fd = -1;
  q->blen = 0;
}

static int
qga_connect (struct qga *q, uint64_t deadline, char *why, size_t len)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int e;

  qga_disconnect (q);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", q->socket);
  q->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (q->fd < 0) {
    e = -errno;
    snprintf (why, len, "socket: %s", strerror (-e));
    return e;
  }
  if (connect (q->fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
    e = -errno;
    if (e == -EINPROGRESS || e == -EAGAIN) {
      socklen_t sl = sizeof e;
      int r = qga_wait (q, POLLOUT, deadline);
      if (r < 0) {
        snprintf (why, len, "connect %s: no answer in time", q->socket);
        qga_disconnect (q);
        return r;
      }
      if (getsockopt (q->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
        e = errno;
      e = -e;
    }
    if (e < 0) {
      snprintf (why, len, "connect %s: %s", q->socket, strerror (-e));
      qga_disconnect (q);
      return e;
    }
  }
  return 0;
}

static int
qga_send (struct qga *q, const char *text, size_t n, uint64_t deadline,
          const char *what, char *why, size_t len)
{
  while (n) {
    ssize_t k = send (q->fd, text, n, MSG_NOSIGNAL);
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (qga_wait (q, POLLOUT, deadline) < 0) {
        snprintf (why, len, "%s: the agent on %s takes nothing (timed out)",
                  what, q->socket);
        return -ETIMEDOUT;
      }
      continue;
    }
    if (k < 0) {
      int e = -errno;
      snprintf (why, len, "%s: sending to %s: %s", what, q->socket,
                strerror (-e));
      return e;
    }
    text += k;
    n -= k;
  }
  return 0;
}

/* Read more into the buffer: 0, or an error in why. */
static int
qga_fill (struct qga *q, uint64_t deadline, const char *what, char *why,
          size_t len)
{
  if (q->blen == sizeof q->buf) {
    snprintf (why, len, "%s: the agent on %s sent a reply line longer than "
              "%d bytes: not a guest agent?", what, q->socket,
              LINE_MAX_BYTES);
    return -EPROTO;
  }
  for (;;) {
    ssize_t k = recv (q->fd, q->buf + q->blen, sizeof q->buf - q->blen, 0);
    if (k > 0) {
      q->blen += k;
      return 0;
    }
    if (k == 0) {
      snprintf (why, len, "%s: the agent on %s closed the connection", what,
                q->socket);
      return -ECONNRESET;
    }
    if (errno != EAGAIN && errno != EINTR) {
      int e = -errno;
      snprintf (why, len, "%s: reading from %s: %s", what, q->socket,
                strerror (-e));
      return e;
    }
    if (qga_wait (q, POLLIN, deadline) < 0) {
      snprintf (why, len, "%s: the agent on %s did not answer in time", what,
                q->socket);
      return -ETIMEDOUT;
    }
  }
}

/* The next reply line, parsed into *v. */
static int
qga_reply (struct qga *q, uint64_t deadline, const char *what,
           struct sc_jv *v, char *why, size_t len)
{
  char *nl;
  int r;

  while (!(nl = memchr (q->buf, '\n', q->blen)))
    if ((r = qga_fill (q, deadline, what, why, len)) < 0)
      return r;
  size_t n = nl - q->buf;
  char perr[128];
  r = sc_jv_parse (q->buf, n, v, perr, sizeof perr);
  if (r == 0 && v->type != SC_JV_OBJECT) {
    sc_jv_free (v);
    r = -EINVAL;
    snprintf (perr, sizeof perr, "not an object");
  }
  if (r < 0) {
    char shown[64];
    size_t i, k;
    for (i = k = 0; i < n && k + 1 < sizeof shown; i++)
      shown[k++] = (q->buf[i] >= 0x20 && q->buf[i] < 0x7f) ? q->buf[i] : '?';
    shown[k] = '\0';
    snprintf (why, len, "%s: the agent on %s answered garbage (%s): '%s'",
              what, q->socket, perr, shown);
    r = r == -ENOMEM ? r : -EPROTO;
  }
  memmove (q->buf, nl + 1, q->blen - n - 1);
  q->blen -= n + 1;
  return r;
}

/* Call `execute` (with `args`, a JSON object, or NULL): its "return"
 * value in *ret (to be freed with *v), or an error. */
static int
qga_call (struct qga *q, const char *execute, const char *args,
          uint64_t deadline, struct sc_jv *v, const struct sc_jv **ret,
          char *why, size_t len)
{
  char *text;
  int r, n = asprintf (&text, "{\"execute\":\"%s\"%s%s}\n", execute,
                       args ? ",\"arguments\":" : "", args ? args : "");

  if (n < 0)
    return -ENOMEM;
  r = qga_send (q, text, n, deadline, execute, why, len);
  free (text);
  q->agent_refused = false;
  if (r < 0 || (r = qga_reply (q, deadline, execute, v, why, len)) < 0)
    return r;
  const struct sc_jv *e = sc_jv_get (v, "error");
  if (e) {
    q->agent_refused = true;
    const char *desc = sc_jv_get_string (e, "desc");
    snprintf (why, len, "%s: the agent said: %s", execute,
              desc ? desc : "an error without a description");
    sc_jv_free (v);
    return -EIO;
  }
  if (!(*ret = sc_jv_get (v, "return"))) {
    snprintf (why, len, "%s: the agent on %s answered without a \"return\"",
              execute, q->socket);
    sc_jv_free (v);
    return -EPROTO;
  }
  return 0;
}

/* guest-sync-delimited: whatever the agent had queued for an earlier
 * client is dropped with everything before the 0xFF delimiter. */
static int
qga_sync (struct qga *q, uint64_t deadline, char *why, size_t len)
{
  static const char *what = "guest-sync-delimited";
  uint32_t id = 0;
  char text[128], want[16];
  struct sc_jv v;
  int r;

  if (getrandom (&id, sizeof id, 0) != sizeof id)
    id = (uint32_t) sc_guardian_now_ms ();
  id &= 0x7fffffff;
  if (deadline > sc_guardian_now_ms () + SYNC_MS)
    deadline = sc_guardian_now_ms () + SYNC_MS;
  /* A lone 0xFF first resets the agent's parser of any partial input. */
  int n = snprintf (text, sizeof text, "\xff{\"execute\":\"%s\","
                    "\"arguments\":{\"id\":%" PRIu32 "}}\n", what, id);
  if ((r = qga_send (q, text, n, deadline, what, why, len)) < 0)
    return r;
  for (;;) {
    char *ff = memchr (q->buf, 0xff, q->blen);
    if (ff) {
      size_t drop = ff - q->buf + 1;
      memmove (q->buf, ff + 1, q->blen - drop);
      q->blen -= drop;
      break;
    }
    q->blen = 0;
    if ((r = qga_fill (q, deadline, what, why, len)) < 0)
      return r;
  }
  if ((r = qga_reply (q, deadline, what, &v, why, len)) < 0)
    return r;
  const struct sc_jv *ret = sc_jv_get (&v, "return");
  snprintf (want, sizeof want, "%" PRIu32, id);
  if (!ret || ret->type != SC_JV_NUMBER || strcmp (ret->s, want) != 0) {
    snprintf (why, len, "%s: the agent on %s did not echo the id %s", what,
              q->socket, want);
    sc_jv_free (&v);
    return -EPROTO;
  }
  sc_jv_free (&v);
  return 0;
}

/* guest-fsfreeze-status must say `want`. */
static int
qga_status (struct qga *q, const char *want, uint64_t deadline, char *why,
            size_t len)
{
  static const char *what = "guest-fsfreeze-status";
  const struct sc_jv *ret;
  struct sc_jv v;
  int r = qga_call (q, what, NULL, deadline, &v, &ret, why, len);

  if (r < 0)
    return r;
  if (ret->type != SC_JV_STRING || strcmp (ret->s, want) != 0) {
    snprintf (why, len, "%s: the agent says '%s', not '%s'", what,
              ret->type == SC_JV_STRING ? ret->s : "(not a string)", want);
    sc_jv_free (&v);
    return -EIO;
  }
  sc_jv_free (&v);
  return 0;
}

/* A JSON string of s (mount points are paths: anything but NUL). */
static void
json_string (FILE *f, const char *s)
{
  fputc ('"', f);
  for (; *s; s++) {
    unsigned char c = *s;
    if (c == '"' || c == '\\')
      fprintf (f, "\\%c", c);
    else if (c < 0x20)
      fprintf (f, "\\u%04x", c);
    else
      fputc (c, f);
  }
  fputc ('"', f);
}

static int
qga_freeze (void *state, uint64_t deadline, char *why, size_t len)
{
  struct qga *q = state;
  const struct sc_jv *ret;
  struct sc_jv v;
  char *args = NULL;
  size_t alen;
  int r;

  if ((r = qga_connect (q, deadline, why, len)) < 0 ||
      (r = qga_sync (q, deadline, why, len)) < 0)
    return r;
  if (q->nmounts) {
    FILE *f = open_memstream (&args, &alen);
    if (!f)
      return -ENOMEM;
    fputs ("{\"mountpoints\":[", f);
    for (size_t i = 0; i < q->nmounts; i++) {
      if (i)
        fputc (',', f);
      json_string (f, q->mounts[i]);
    }
    fputs ("]}", f);
    if (fclose (f) != 0)
      return -ENOMEM;
  }
  /* A guest someone else froze (an admin, another tool) is theirs: our
   * freeze would be refused and our thaw would end their freeze. */
  r = qga_call (q, "guest-fsfreeze-status", NULL, deadline, &v, &ret, why,
                len);
  if (r == 0) {
    bool thawed = ret->type == SC_JV_STRING && strcmp (ret->s, "thawed") == 0;
    sc_jv_free (&v);
    if (!thawed) {
      free (args);
      snprintf (why, len, "the guest's filesystems are already frozen by "
                "someone else; not touching them");
      return -EBUSY;
    }
  }
  else {
    free (args);
    return r;
  }
  /* From here on, unless the agent answers with an error, it may have
   * frozen: a lost or late answer is thawed. */
  q->sent_freeze = true;
  r = qga_call (q, q->nmounts ? "guest-fsfreeze-freeze-list"
                : "guest-fsfreeze-freeze", args, deadline, &v, &ret, why, len);
  free (args);
  if (r < 0) {
    /* An error answer: the agent froze nothing (it undoes a partial
     * freeze itself); thawing would end someone else's. */
    if (q->agent_refused)
      q->sent_freeze = false;
    return r;
  }
  char count[32];
  snprintf (count, sizeof count, "%s",
            ret->type == SC_JV_NUMBER ? ret->s : "?");
  sc_jv_free (&v);
  if ((r = qga_status (q, "frozen", deadline, why, len)) < 0)
    return r;
  snprintf (why, len, "%s guest filesystem%s frozen", count,
            strcmp (count, "1") == 0 ? "" : "s");
  return 0;
}

static int
qga_thaw (void *state, uint64_t deadline, char *why, size_t len)
{
  struct qga *q = state;
  const struct sc_jv *ret;
  struct sc_jv v;
  int r;

  if (!q->sent_freeze)
    return 0;                   /* nothing was asked to freeze */
  /* The connection we froze with, or a new one when it broke. */
  if (q->fd < 0 || qga_sync (q, deadline, why, len) < 0)
    if ((r = qga_connect (q, deadline, why, len)) < 0 ||
        (r = qga_sync (q, deadline, why, len)) < 0)
      return r;
  if ((r = qga_call (q, "guest-fsfreeze-thaw", NULL, deadline, &v, &ret,
                     why, len)) < 0)
    return r;
  char count[32];
  snprintf (count, sizeof count, "%s",
            ret->type == SC_JV_NUMBER ? ret->s : "?");
  sc_jv_free (&v);
  if ((r = qga_status (q, "thawed", deadline, why, len)) < 0)
    return r;
  q->sent_freeze = false;
  snprintf (why, len, "%s guest filesystem%s thawed", count,
            strcmp (count, "1") == 0 ? "" : "s");
  qga_disconnect (q);
  return 0;
}

const struct sc_writer_kind_impl sc_writer_qemu_ga = {
  .prefix = "qemu-ga",
  .parse = qga_parse,
  .free = qga_free,
  .check = qga_check,
  .freeze = qga_freeze,
  .thaw = qga_thaw,
};
