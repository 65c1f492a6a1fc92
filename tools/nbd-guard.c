/* shadowcopy: an NBD connection ended politely even when the CLI is
 * killed (see nbd-guard.h).
 *
 * Notes on the design
 *
 * Why it exists.  nbdkit 1.32.5, Debian 12's, has a bug (fixed upstream
 * in 1.33.10 by commit 9d82aa4f, "server: Don't assert on send if client
 * hangs up early"; Red Hat bug 2173054): when a client disappears while
 * several worker threads hold replies for it, the first worker whose
 * send fails (EPIPE) marks the connection dead, which shuts the socket
 * and sets it to -1; a second worker that had already passed its status
 * check then sends anyway and nbdkit dies on "raw_send_socket: Assertion
 * `sock >= 0' failed".  A backup keeps 16 reads of 1 MiB in flight per
 * connection, so a kill -9 (or the OOM killer) of `shadowcopy backup`
 * brought down the whole server, with the live volume every VM or
 * filesystem writes to.  nbdkit cannot be changed here, and the plugin
 * never sees the socket, so the cure is on the client's side: the
 * server must never be left sending into a socket nobody reads.
 *
 * How.  The CLI makes the Unix socket itself and gives it to libnbd
 * (nbd_connect_socket).  Once the handshake is done it forks the
 * guardian, which keeps a copy of the socket and one end of a control
 * socketpair, and closes every other descriptor (close_range): it holds
 * no flock (TARGET.partial's), no qemu-nbd socket, no other guardian's
 * control end (which would keep that one from seeing the CLI go), no
 * stdout.  It then waits:
 * - a byte from the CLI (sc_nbd_guard_close, after nbd_shutdown and
 *   nbd_close): the connection was ended cleanly; it exits at once.
 * - EOF without that byte: the CLI died.  Its copy of the socket keeps
 *   the connection open, so the server's replies still have a reader.
 *   It sends NBD_CMD_DISC (nbdkit then stops reading requests, finishes
 *   the ones it has and sends their replies: the connection goes to
 *   "client done", which, unlike "dead", never shuts the socket under a
 *   worker), shuts its writing side, and reads and discards everything
 *   until the server closes the connection, at most
 *   SC_NBD_GUARD_DRAIN_SECONDS; then it exits.
 *
 * Why NBD_CMD_DISC always lands on a request boundary.  A request cut
 * in the middle would make the server read the DISC as the rest of it
 * (a protocol error: the connection dead, the very abort avoided here).
 * libnbd 1.14 sends each request header (28 bytes: magic, flags, type,
 * cookie, offset, length) with one send() on a non-blocking socket, and
 * on an AF_UNIX stream socket Linux queues a send that small as a single
 * buffer, whole or not at all (EAGAIN): a kill cannot leave a prefix.
 * The guarded connections send only READ and BLOCK_STATUS (and libnbd's
 * own DISC): no payload.  A WRITE's payload could be cut anywhere, so
 * connections that write (restore to an NBD URI) are not guarded.
 *
 * Over TLS or TCP (--nbd-uri).  libnbd makes the connection
 * (nbd_connect_uri) and the guardian gets a copy of its socket
 * (nbd_aio_get_fd).  It cannot send NBD_CMD_DISC there: inside TLS only
 * libnbd's session could write it, and on TCP a 28-byte send is not
 * queued whole or not at all.  So a guardian whose CLI died only reads
 * and discards until the server has been silent for
 * SC_NBD_GUARD_QUIET_MS (the replies of every request in flight sent),
 * then closes: the server then meets the end of its connection while
 * waiting for a request, with no reply left to send, which is harmless.
 * A request slower than that can still meet the nbdkit bug.
 *
 * How it fails safe.
 * - No guardian can be started (no socketpair, no fork): the connection
 *   is refused with a clear error rather than run unguarded.
 * - The guardian dies or is killed: the CLI still owns the connection
 *   and ends it cleanly; the byte it sends is lost (MSG_NOSIGNAL).
 * - The CLI is killed after its clean close but before it told the
 *   guardian: the DISC meets a closed or half-closed socket (EPIPE,
 *   ignored; SIGPIPE is ignored too) and EOF ends the guardian.
 * - The server dies or is stopped: EOF or ECONNRESET ends the guardian.
 * - The server never closes (a request stuck on its disk): the guardian
 *   gives up after SC_NBD_GUARD_DRAIN_SECONDS and closes; that is the
 *   only case where the nbdkit bug can still be hit.
 * - The guardian writes nothing to the socket but the one DISC, and only
 *   after the CLI (the only other writer; the socket is close-on-exec)
 *   is gone, so its bytes never interleave with libnbd's.
 * - It is in its own session and ignores SIGINT, SIGTERM, SIGHUP (a
 *   Ctrl-C or a stop of the CLI's process group reaches the CLI, which
 *   ends its connections cleanly), so it lives exactly as long as it is
 *   needed; it ends by itself in every case above.
 * - Its code after fork() is system calls only (the CLI may have
 *   threads).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/nbd-guard.h"
#include "tools/nbd-target.h"

struct sc_nbd_guard {
  pid_t pid;                    /* the guardian */
  int ctl;                      /* the CLI's end of the control pair */
};

/* What the CLI sends the guardian when the connection was closed
 * cleanly. */
#define GUARD_DISMISS 'q'

/* NBD_CMD_DISC, as the NBD protocol spells it: request magic, flags,
 * type 2, cookie, offset, length (big-endian). */
static const unsigned char disc_request[28] = {
  0x25, 0x60, 0x95, 0x13,       /* NBD_REQUEST_MAGIC */
  0x00, 0x00,                   /* flags */
  0x00, 0x02,                   /* NBD_CMD_DISC */
  0x73, 0x63, 0x67, 0x75, 0x61, 0x72, 0x64, 0x00, /* cookie "scguard" */
  0, 0, 0, 0, 0, 0, 0, 0,       /* offset */
  0, 0, 0, 0,                   /* length */
};

/* Keep only ctl and sock, as fds 3 and 4; close everything else,
 * stdin, stdout and stderr included. */
static void
guardian_fds (int *ctl, int *sock)
{
  int c = fcntl (*ctl, F_DUPFD, 10);
  int s = fcntl (*sock, F_DUPFD, 10);

  if (c < 0 || s < 0 || dup2 (c, 3) < 0 || dup2 (s, 4) < 0)
    _exit (1);
  close_range (0, 2, 0);
  close_range (5, ~0U, 0);
  *ctl = 3;
  *sock = 4;
}

static void
ignore (int sig)
{
  struct sigaction sa = { .sa_handler = SIG_IGN };
  sigemptyset (&sa.sa_mask);
  sigaction (sig, &sa, NULL);
}

/* The CLI is gone: end the session politely, then wait (bounded) for
 * the server to close it, reading every reply. */
static void __attribute__ ((noreturn))
guardian_disconnect (int sock)
{
  static char sink[65536];
  uint64_t end = sc_cli_mono_ms () + SC_NBD_GUARD_DRAIN_SECONDS * 1000u;
  size_t sent = 0;
  bool sending = true;

  for (;;) {
    uint64_t now = sc_cli_mono_ms ();
    if (now >= end)
      _exit (2);
    struct pollfd p = {
      .fd = sock, .events = POLLIN | (sending ? POLLOUT : 0),
    };
    int k = poll (&p, 1, (int) (end - now));
    if (k < 0 && errno != EINTR)
      _exit (1);
    if (k <= 0)
      continue;
    if (sending && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = send (sock, disc_request + sent, sizeof disc_request - sent,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0)
        sent += (size_t) w;
      if (w < 0 && errno != EAGAIN && errno != EINTR)
        sending = false;        /* closed or half-closed: nothing to say */
      else if (sent == sizeof disc_request) {
        shutdown (sock, SHUT_WR);
        sending = false;
      }
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
      ssize_t n = recv (sock, sink, sizeof sink, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        _exit (0);              /* the server closed: done */
    }
  }
}

/* The CLI is gone and the session cannot be ended by a request (TLS,
 * or TCP: see the notes): every reply is read until the server has been
 * silent for SC_NBD_GUARD_QUIET_MS (every request in flight answered),
 * then the socket is closed, at most SC_NBD_GUARD_DRAIN_SECONDS after. */
static void __attribute__ ((noreturn))
guardian_drain_quiet (int sock)
{
  static char sink[65536];
  uint64_t end = sc_cli_mono_ms () + SC_NBD_GUARD_DRAIN_SECONDS * 1000u;
  uint64_t quiet = sc_cli_mono_ms () + SC_NBD_GUARD_QUIET_MS;

  for (;;) {
    uint64_t now = sc_cli_mono_ms ();
    if (now >= end)
      _exit (2);
    if (now >= quiet)
      _exit (0);                /* nothing more in flight: close */
    struct pollfd p = { .fd = sock, .events = POLLIN };
    int k = poll (&p, 1, (int) ((quiet < end ? quiet : end) - now));
    if (k < 0 && errno != EINTR)
      _exit (1);
    if (k <= 0)
      continue;
    ssize_t n = recv (sock, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      _exit (0);                /* the server closed: done */
    if (n > 0)
      quiet = sc_cli_mono_ms () + SC_NBD_GUARD_QUIET_MS;
  }
}

static void __attribute__ ((noreturn))
guardian (int ctl, int sock, bool disc)
{
  char c;
  ssize_t n;

  setsid ();
  ignore (SIGINT);
  ignore (SIGTERM);
  ignore (SIGHUP);
  ignore (SIGPIPE);
  prctl (PR_SET_NAME, SC_NBD_GUARD_NAME, 0, 0, 0);
  guardian_fds (&ctl, &sock);
  while ((n = read (ctl, &c, 1)) < 0 && errno == EINTR)
    ;
  if (n == 1 && c == GUARD_DISMISS)
    _exit (0);
  if (!disc)
    guardian_drain_quiet (sock);
  guardian_disconnect (sock);
}

/* A Unix stream socket connected to path, close-on-exec: another
 * program the CLI starts must not hold the connection open. */
static int
connect_unix (const char *path, char *err, size_t errlen)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd, e;

  if (strlen (path) >= sizeof sun.sun_path) {
    snprintf (err, errlen, "%s: socket path too long", path);
    return -ENAMETOOLONG;
  }
  memcpy (sun.sun_path, path, strlen (path) + 1);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    e = -errno;
    snprintf (err, errlen, "socket: %s", strerror (-e));
    return e;
  }
  while (connect (fd, (struct sockaddr *) &sun, sizeof sun) < 0) {
    if (errno == EINTR)
      continue;
    e = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-e));
    close (fd);
    return e;
  }
  return fd;
}

/* Start the guardian of h, connected (handshake done) on sock; disc:
 * whether it may end the session with NBD_CMD_DISC (see the notes). */
static int
start_guardian (struct nbd_handle *h, int sock, bool disc, char *err,
                size_t errlen)
{
  struct sc_nbd_guard *g;
  int pair[2], e;
  pid_t pid;

  /* The handshake is done and no request was sent yet: a CLI killed
   * before the guardian exists leaves nothing in flight. */
  if (!(g = malloc (sizeof *g))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
    e = -errno;
    snprintf (err, errlen, "cannot start the connection's guardian: "
              "socketpair: %s", strerror (-e));
    free (g);
    return e;
  }
  pid = fork ();
  if (pid == 0) {
    close (pair[0]);
    guardian (pair[1], sock, disc);
  }
  close (pair[1]);
  if (pid < 0) {
    e = -errno;
    snprintf (err, errlen, "cannot start the connection's guardian: "
              "fork: %s", strerror (-e));
    close (pair[0]);
    free (g);
    return e;
  }
  *g = (struct sc_nbd_guard) { .pid = pid, .ctl = pair[0] };
  nbd_set_private_data (h, (uintptr_t) g);
  return 0;
}

int
sc_nbd_guard_connect_unix (struct nbd_handle *h, const char *path,
                           char *err, size_t errlen)
{
  int sock = connect_unix (path, err, errlen);

  if (sock < 0)
    return sock;
  /* From here the handle owns sock, even when this fails. */
  if (nbd_connect_socket (h, sock) < 0) {
    snprintf (err, errlen, "%s", nbd_get_error ());
    return -EIO;
  }
  return start_guardian (h, sock, true, err, errlen);
}

int
sc_nbd_guard_connect (struct nbd_handle *h, const struct sc_nbd_target *t,
                      const char *name, char *err, size_t errlen)
{
  int sock;

  if (!t->uri) {
    if (nbd_set_export_name (h, name) < 0) {
      snprintf (err, errlen, "%s", nbd_get_error ());
      return -EIO;
    }
    return sc_nbd_guard_connect_unix (h, t->socket, err, errlen);
  }
  if (sc_nbd_target_connect_uri (h, t, name, err, errlen) < 0)
    return -EIO;
  sock = nbd_aio_get_fd (h);
  if (sock < 0) {
    snprintf (err, errlen, "%s", nbd_get_error ());
    return -EIO;
  }
  /* No program the CLI starts may hold the connection open. */
  if (fcntl (sock, F_SETFD, FD_CLOEXEC) < 0) {
    snprintf (err, errlen, "fcntl: %s", strerror (errno));
    return -errno;
  }
  return start_guardian (h, sock, false, err, errlen);
}

void
sc_nbd_guard_close (struct nbd_handle *h)
{
  const char c = GUARD_DISMISS;
  struct sc_nbd_guard *g;

  if (!h)
    return;
  g = (struct sc_nbd_guard *) nbd_get_private_data (h);
  nbd_shutdown (h, 0);
  nbd_close (h);
  if (!g)
    return;
  /* Lost if the guardian is already gone, which is harmless. */
  if (send (g->ctl, &c, 1, MSG_NOSIGNAL) < 0)
    (void) 0;
  close (g->ctl);
  while (waitpid (g->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  free (g);
}
