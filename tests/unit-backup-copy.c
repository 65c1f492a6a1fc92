/* Unit tests: the backup copy engine (tools/backup-copy.c) against a real
 * nbdkit (the pattern plugin, each read slowed down by the delay filter
 * so that reads are in flight when things go wrong): however the copy
 * ends, no read is still in flight when sc_backup_copy returns, since
 * it frees the buffers libnbd reads into (and the counts its completion
 * callback updates).  A stop whose last writes fail, and a server killed
 * during a copy over four connections.  And a server that answers part
 * of a read and says it is done: an error, never a buffer handed on. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <spawn.h>

#include "tests/unit-helpers.h"
#include "tools/backup-copy.h"

#define MiB (1024u * 1024u)
#define SIZE (64 * MiB)

static pid_t server = -1;
static char *sock;

static void
start_server (void)
{
  extern char **environ;
  char *argv[] = { (char *) "nbdkit", (char *) "-f", (char *) "-t",
                   (char *) "1", (char *) "-U", sock,
                   (char *) "--filter=delay", (char *) "pattern",
                   (char *) "size=64M", (char *) "rdelay=40ms", NULL };
  cr_assert_eq (posix_spawnp (&server, "nbdkit", NULL, NULL, argv,
                              environ), 0);
  for (int i = 0; i < 500 && access (sock, F_OK) < 0; i++)
    usleep (10000);
  cr_assert_eq (access (sock, F_OK), 0, "nbdkit did not start");
}

static void
setup (void)
{
  uh_setup ();
  if (system ("nbdkit --version > /dev/null 2>&1") != 0
      || system ("nbdkit pattern --version > /dev/null 2>&1") != 0
      || system ("nbdkit --filter=delay null --version > /dev/null 2>&1")
      != 0)
    cr_skip_test ("nbdkit, its pattern plugin or its delay filter is missing");
  sock = uh_path ("nbd.sock");
  start_server ();
}

static void
teardown (void)
{
  if (server > 0) {
    kill (server, SIGTERM);
    waitpid (server, NULL, 0);
    server = -1;
  }
  free (sock);
  uh_teardown ();
}

TestSuite (backup_copy, .init = setup, .fini = teardown);

/* The socket exists from nbdkit's bind, before its listen: a connect in
 * between is refused, so it is tried again for up to 5 s (a busy CI
 * machine saw the refusal). */
static struct nbd_handle *
connect_server (void)
{
  for (int i = 0;; i++) {
    struct nbd_handle *h = nbd_create ();
    cr_assert_not_null (h);
    if (nbd_connect_unix (h, sock) == 0)
      return h;
    cr_assert (nbd_get_errno () == ECONNREFUSED && i < 500,
               "connect: %s", nbd_get_error ());
    nbd_close (h);
    usleep (10000);
  }
}

/* A sink that counts the writes, and at the `at`th one does `what`. */
struct sink {
  unsigned writes, at;
  enum { STOP_THEN_FAIL, KILL_SERVER } what;
  volatile sig_atomic_t stop;
};

static int
sink_write (void *opaque, const void *buf, size_t len, uint64_t off)
{
  struct sink *s = opaque;
  (void) buf; (void) len; (void) off;
  s->writes++;
  if (s->what == STOP_THEN_FAIL) {
    if (s->writes == s->at)
      s->stop = 1;              /* as SIGTERM would */
    return s->writes > s->at ? -ENOSPC : 0;
  }
  if (s->writes == s->at)
    kill (server, SIGKILL);
  return 0;
}

static int
sink_zero (void *opaque, uint64_t off, uint64_t len)
{
  (void) opaque; (void) off; (void) len;
  return 0;
}

/* Copy the whole export over nconn connections into s; the result. */
static int
copy (struct nbd_handle **h, unsigned nconn, struct sink *s, char *err,
      size_t errlen)
{
  struct sc_backup_range range = { 0, SIZE };
  struct sc_backup_copy_opts o = { .target_is_zero = true,
                                   .requests = 16 * nconn,
                                   .stop = &s->stop };
  struct sc_backup_sink sink = { .opaque = s, .write = sink_write,
                                 .zero = sink_zero, .name = "the sink" };
  struct sc_backup_stats stats = { 0 };

  for (unsigned i = 0; i < nconn; i++)
    h[i] = connect_server ();
  return sc_backup_copy (h, nconn, &range, 1, &o, &sink, &stats, err,
                         errlen);
}

static void
assert_nothing_in_flight (struct nbd_handle **h, unsigned nconn)
{
  for (unsigned i = 0; i < nconn; i++)
    cr_assert_eq (nbd_aio_in_flight (h[i]), 0, "connection %u has %d "
                  "reads in flight after the copy returned", i,
                  nbd_aio_in_flight (h[i]));
  for (unsigned i = 0; i < nconn; i++) {
    nbd_shutdown (h[i], 0);
    nbd_close (h[i]);
  }
}

Test (backup_copy, a_stop_whose_writes_fail_leaves_no_read_in_flight)
{
  struct nbd_handle *h[1];
  struct sink s = { .at = 3, .what = STOP_THEN_FAIL };
  char err[1024] = "";

  int r = copy (h, 1, &s, err, sizeof err);
  cr_assert_eq (r, -ENOSPC, "the copy returned %d (%s), not -ENOSPC", r,
                err);
  cr_assert (strstr (err, "cannot write the sink at"), "%s", err);
  assert_nothing_in_flight (h, 1);
}

Test (backup_copy, a_server_killed_leaves_no_read_in_flight_on_any_connection)
{
  struct nbd_handle *h[4];
  struct sink s = { .at = 3, .what = KILL_SERVER };
  char err[1024] = "";

  int r = copy (h, 4, &s, err, sizeof err);
  waitpid (server, NULL, 0);
  server = -1;
  cr_assert_lt (r, 0, "the copy succeeded with its server killed");
  cr_assert (strstr (err, "the NBD server closed the connection"), "%s",
             err);
  assert_nothing_in_flight (h, 4);
}

/* ---- a server that sends half of each read ---------------------------- */

/* Newstyle, structured replies; each read gets an OFFSET_DATA chunk for
 * its first half, then a NONE chunk with the DONE flag: "success". */
static const char short_server[] =
  "import socket, struct, sys, os\n"
  "ls = socket.socket(socket.AF_UNIX); ls.bind(sys.argv[1]); import time; time.sleep(0.3); ls.listen(1)\n"
  "c, _ = ls.accept()\n"
  "def rx(n):\n"
  "    b = b''\n"
  "    while len(b) < n:\n"
  "        k = c.recv(n - len(b))\n"
  "        if not k: sys.exit(0)\n"
  "        b += k\n"
  "    return b\n"
  "c.sendall(b'NBDMAGIC' + b'IHAVEOPT' + struct.pack('>H', 3)); rx(4)\n"
  "def orep(opt, typ, data=b''):\n"
  "    c.sendall(struct.pack('>QIII', 0x3e889045565a9, opt, typ, len(data))"
  " + data)\n"
  "while True:\n"
  "    magic, opt, ln = struct.unpack('>QII', rx(16)); rx(ln)\n"
  "    if opt == 8: orep(opt, 1)\n"
  "    elif opt == 7:\n"
  "        orep(opt, 3, struct.pack('>HQH', 0, 1 << 20, 1)); orep(opt, 1)"
  "; break\n"
  "    else: orep(opt, (1 << 31) | 1)\n"
  "while True:\n"
  "    magic, fl, typ, handle, off, ln = struct.unpack('>IHHQQI', rx(28))\n"
  "    if typ != 0: break\n"
  "    data = struct.pack('>Q', off) + b'\\x11' * (ln // 2)\n"
  "    c.sendall(struct.pack('>IHHQI', 0x668e33ef, 0, 1, handle, len(data))"
  " + data)\n"
  "    c.sendall(struct.pack('>IHHQI', 0x668e33ef, 1, 0, handle, 0))\n";

TestSuite (backup_copy_short, .init = uh_setup, .fini = uh_teardown);

Test (backup_copy_short, a_read_answered_in_part_is_an_error)
{
  extern char **environ;
  char *path = uh_path ("short.sock");
  char *argv[] = { (char *) "python3", (char *) "-c",
                   (char *) short_server, path, NULL };
  struct sink s = { .at = 0, .what = STOP_THEN_FAIL };
  struct sc_backup_range range = { 0, MiB };
  struct sc_backup_copy_opts o = { .target_is_zero = true, .stop = &s.stop };
  struct sc_backup_sink sink = { .opaque = &s, .write = sink_write,
                                 .zero = sink_zero, .name = "the sink" };
  struct sc_backup_stats stats = { 0 };
  struct nbd_handle *h;
  char err[1024] = "";
  pid_t pid;

  if (system ("python3 -c pass > /dev/null 2>&1") != 0)
    cr_skip_test ("python3 is missing");
  cr_assert_eq (posix_spawnp (&pid, "python3", NULL, NULL, argv, environ), 0);
  /* The socket file appears at bind(), a moment before listen(): until
   * then a connect is refused.  Try again for up to 5 s. */
  int c = -1;
  for (int i = 0; i < 500 && c < 0; i++) {
    h = nbd_create ();
    cr_assert_not_null (h);
    c = nbd_connect_unix (h, path);
    if (c < 0) {
      nbd_close (h);
      usleep (10000);
    }
  }
  cr_assert_eq (c, 0, "connect: %s", nbd_get_error ());
  nbd_set_pread_initialize (h, false);
  int r = sc_backup_copy (&h, 1, &range, 1, &o, &sink, &stats, err,
                          sizeof err);
  cr_assert_eq (r, -EIO, "the copy returned %d (%s), not -EIO", r, err);
  cr_assert_eq (s.writes, 0, "a half-read buffer was handed to the sink");
  nbd_close (h);
  waitpid (pid, NULL, 0);
  free (path);
}
