/* libFuzzer harness: libshadowcopy's reply parser, as a requester meets a
 * server that answers anything.
 *
 * Input: the bytes a server sends back to one request.  A thread of the
 * harness plays the server on a Unix socket in a temporary directory: to
 * each connection it answers HELLO properly (protocol 1), then writes the
 * input as the reply to the next request, all at once, and shuts its side
 * down.  The requester is the library's public API, one connection per
 * call: shadowcopy_list, shadowcopy_list_dropped, shadowcopy_info,
 * shadowcopy_diff (a reply that asks for another page gets the rest of
 * the input as that page), shadowcopy_stats, shadowcopy_revert_status,
 * shadowcopy_scrub_status, shadowcopy_release and shadowcopy_request.
 * Whatever the input, each call must return 0 or a negative errno with a
 * message (never a crash, a leak or a hang), and on success what it hands
 * back must be sane: names within their buffers, DIFF extents sorted,
 * disjoint, within the volume, adding up to its byte count.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/shadowcopy.h"

/* control-protocol.c is built with -Dread=fuzz_ctl_read for fuzz-control;
 * here the socket is real. */
ssize_t fuzz_ctl_read (int fd, void *buf, size_t count);
ssize_t
fuzz_ctl_read (int fd, void *buf, size_t count)
{
  return read (fd, buf, count);
}

static char dir[256], sock_path[300];
static int listen_fd = -1;
static pthread_t server;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The harness's own copy of the input: the server thread may still be
 * sending it to a requester that stopped reading when libFuzzer frees
 * its own (the lock is held while it sends). */
static uint8_t *input;
static size_t input_len;

static void
die (const char *what)
{
  fprintf (stderr, "fuzz-reply: %s: %s\n", what, strerror (errno));
  abort ();
}

/* One request line from fd: false at its end. */
static bool
read_request (int fd)
{
  char c;
  ssize_t n;

  while ((n = read (fd, &c, 1)) == 1)
    if (c == '\n')
      return true;
  return false;
}

static void
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len) {
    ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
    if (n <= 0)
      return;                   /* the requester gave up: fine */
    p += n;
    len -= (size_t) n;
  }
}

static void *
serve (void *arg)
{
  static const char hello[] =
    "* server\tprotocol=1\tprotocol-minor=1\tversion=fuzz\nOK\n";
  (void) arg;

  for (;;) {
    int fd = accept (listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      return NULL;
    }
    if (read_request (fd)) {
      write_all (fd, hello, sizeof hello - 1);
      if (read_request (fd)) {
        pthread_mutex_lock (&lock);
        write_all (fd, input, input_len);
        pthread_mutex_unlock (&lock);
      }
    }
    shutdown (fd, SHUT_WR);
    while (read_request (fd))   /* more pages: they see the end */
      ;
    close (fd);
  }
}

static void
setup (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  const char *t = getenv ("TMPDIR");

  snprintf (dir, sizeof dir, "%s/fuzz-reply.XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp (dir))
    die ("mkdtemp");
  snprintf (sock_path, sizeof sock_path, "%s/ctl.sock", dir);
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
  listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0 ||
      bind (listen_fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
      listen (listen_fd, 16) < 0)
    die ("listen");
  if (pthread_create (&server, NULL, serve, NULL) != 0)
    die ("pthread_create");
}

static void
cleanup (void)
{
  unlink (sock_path);
  rmdir (dir);
}

/* A failing call must say why. */
static void
check_result (int r, const char *call)
{
  if (r > 0 || (r < 0 && shadowcopy_get_error ()[0] == '\0')) {
    fprintf (stderr, "fuzz-reply: %s returned %d with no message\n", call, r);
    abort ();
  }
}

static void
check_str (const char *s, size_t size, const char *what)
{
  if (strnlen (s, size) == size) {
    fprintf (stderr, "fuzz-reply: %s not terminated\n", what);
    abort ();
  }
}

#define STR(field, what) check_str ((field), sizeof (field), (what))

struct extents {
  uint64_t end, bytes, size;
  bool first;
};

static int
on_extent (uint64_t offset, uint64_t length, void *opaque)
{
  struct extents *e = opaque;

  if (length == 0 || offset > e->size || length > e->size - offset ||
      (!e->first && offset <= e->end)) {
    fprintf (stderr, "fuzz-reply: bad extent %lu+%lu\n",
             (unsigned long) offset, (unsigned long) length);
    abort ();
  }
  e->first = false;
  e->end = offset + length;
  e->bytes += length;
  return 0;
}

static int
on_field (const char *key, const char *value, void *opaque)
{
  (void) opaque;
  if (!key || !value)
    abort ();
  return 0;
}

static int
on_line (const char *kind, const struct shadowcopy_field *f, size_t n,
         void *opaque)
{
  (void) opaque;
  if (!kind)
    abort ();
  for (size_t i = 0; i < n; i++)
    if (!f[i].key || !f[i].value)
      abort ();
  return 0;
}

/* One call on a fresh connection. */
static void
one (int which)
{
  struct shadowcopy *h;
  int r = 0;

  if (shadowcopy_connect (sock_path, &h) < 0) {
    fprintf (stderr, "fuzz-reply: connect: %s\n", shadowcopy_get_error ());
    abort ();
  }
  switch (which) {
  case 0: {
    struct shadowcopy_snapshot *s = NULL;
    size_t n = 0;
    r = shadowcopy_list (h, &s, &n);
    check_result (r, "shadowcopy_list");
    for (size_t i = 0; r == 0 && i < n; i++) {
      STR (s[i].name, "name");
      STR (s[i].uuid, "uuid");
      STR (s[i].set, "set");
      STR (s[i].reason, "reason");
      STR (s[i].type, "type");
      STR (s[i].base, "base");
    }
    free (s);
    break;
  }
  case 1: {
    struct shadowcopy_dropped *d = NULL;
    size_t n = 0;
    r = shadowcopy_list_dropped (h, &d, &n);
    check_result (r, "shadowcopy_list_dropped");
    for (size_t i = 0; r == 0 && i < n; i++)
      STR (d[i].reason, "reason");
    free (d);
    break;
  }
  case 2: {
    struct shadowcopy_volume v;
    r = shadowcopy_info (h, &v);
    check_result (r, "shadowcopy_info");
    if (r == 0) {
      STR (v.origin, "origin");
      STR (v.listen, "listen");
      STR (v.health_message, "message");
      STR (v.revert.target, "revert target");
    }
    break;
  }
  case 3: {
    struct shadowcopy_diff d;
    /* The volume's size is the reply's: checked against it after. */
    struct extents e = { 0, 0, UINT64_MAX, true };
    r = shadowcopy_diff (h, "a", "b", on_extent, &e, &d);
    check_result (r, "shadowcopy_diff");
    if (r == 0 && (e.bytes != d.bytes || e.end > d.volume_size)) {
      fprintf (stderr, "fuzz-reply: diff adds up to %lu, says %lu\n",
               (unsigned long) e.bytes, (unsigned long) d.bytes);
      abort ();
    }
    break;
  }
  case 4:
    r = shadowcopy_stats (h, on_field, NULL);
    check_result (r, "shadowcopy_stats");
    break;
  case 5: {
    struct shadowcopy_revert rv;
    r = shadowcopy_revert_status (h, &rv);
    check_result (r, "shadowcopy_revert_status");
    if (r == 0)
      STR (rv.state, "revert state");
    break;
  }
  case 6: {
    struct shadowcopy_scrub sc;
    r = shadowcopy_scrub_status (h, &sc);
    check_result (r, "shadowcopy_scrub_status");
    if (r == 0)
      STR (sc.error, "scrub error");
    break;
  }
  case 7: {
    uint64_t ns;
    r = shadowcopy_release (h, &ns);
    check_result (r, "shadowcopy_release");
    break;
  }
  default: {
    const char *args[] = { "x" };
    r = shadowcopy_request (h, "ANY", args, 1, on_line, NULL);
    check_result (r, "shadowcopy_request");
    break;
  }
  }
  if (shadowcopy_close (h) < 0)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool ready;

  if (!ready) {
    setup ();
    atexit (cleanup);
    ready = true;
  }
  pthread_mutex_lock (&lock);
  free (input);
  input = malloc (size ? size : 1);
  if (!input)
    abort ();
  memcpy (input, data, size);
  input_len = size;
  pthread_mutex_unlock (&lock);
  for (int which = 0; which < 9; which++)
    one (which);
  return 0;
}
