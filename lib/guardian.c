/* shadowcopy: a guardian, the process that holds a writer's freeze and
 * guarantees its thaw (see guardian.h).
 *
 * Notes on the design
 *
 * A writer's phase must not outlive the requester, but a freeze needs
 * the opposite: something that outlives it just long enough to thaw.
 * This is fsfreeze.c's guardian with the freeze and the thaw made
 * operations, so that what is frozen can be a VM's filesystems (through
 * its agent) or a database's tables (through a session the guardian
 * holds).  Reports go up the status pipe as one fixed-size record, less
 * than PIPE_BUF, so each write is atomic and survives the guardian's
 * exit.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/guardian.h"
#include "lib/spawn.h"

/* The guardian's record, after its freeze and after its thaw. */
struct report {
  int err;                      /* 0 or a negative errno */
  int expired;                  /* thaw: the window ended first */
  uint64_t took_ns;             /* how long the operation took */
  uint64_t frozen_ns;           /* thaw: freeze-to-thaw */
  char why[SC_GUARDIAN_WHY_MAX];
};

/* The parent's patience beyond an operation's own deadline. */
#define BACKSTOP_MS 5000

uint64_t
sc_guardian_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* The guardian keeps only its two pipes (as fds 3 and 4) and /dev/null:
 * an inherited copy of another guardian's pipe would keep that one from
 * seeing EOF, an inherited control socket would keep the server from
 * seeing the requester go. */
static void
guardian_fds (int *cmd, int *status)
{
  int c = fcntl (*cmd, F_DUPFD, 10);
  int s = fcntl (*status, F_DUPFD, 10);
  int null = open ("/dev/null", O_RDWR);

  if (c < 0 || s < 0 || null < 0)
    _exit (1);
  dup2 (null, 0);
  dup2 (null, 1);
  dup2 (null, 2);
  dup2 (c, 3);
  dup2 (s, 4);
  close_range (5, ~0U, 0);
  *cmd = 3;
  *status = 4;
}

static void
send_report (int status, const struct report *rep)
{
  if (write (status, rep, sizeof *rep) != sizeof *rep)
    (void) 0;                   /* the requester is gone: nobody to tell */
}

static void __attribute__ ((noreturn))
guardian (const struct sc_guardian_ops *ops, int cmd, int status,
          uint64_t op_ms, uint64_t window_ms)
{
  struct report rep = { 0 };
  char ignored[SC_GUARDIAN_WHY_MAX];
  uint64_t t0, end;

  setsid ();
  signal (SIGINT, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  /* Its own children's statuses (mysql's session) whatever the
   * requester's SIGCHLD disposition: this process is the library's. */
  signal (SIGCHLD, SIG_DFL);
  guardian_fds (&cmd, &status);

  t0 = now_ns ();
  end = sc_guardian_now_ms () + window_ms;
  rep.err = ops->freeze (ops->arg, sc_guardian_now_ms () + op_ms, rep.why,
                         sizeof rep.why);
  rep.took_ns = now_ns () - t0;
  /* Frozen from here: before the report, after which the requester may
   * count on it (a guardian descheduled after its report would else
   * count short). */
  uint64_t frozen_at = now_ns ();
  if (rep.err) {
    /* Half-way is not frozen: undo whatever part of it took. */
    ops->thaw (ops->arg, sc_guardian_now_ms () + op_ms, ignored,
               sizeof ignored);
    send_report (status, &rep);
    _exit (1);
  }
  if (write (status, &rep, sizeof rep) != sizeof rep) {
    ops->thaw (ops->arg, sc_guardian_now_ms () + op_ms, ignored,
               sizeof ignored);
    _exit (1);
  }

  struct pollfd p = { .fd = cmd, .events = POLLIN };
  for (;;) {
    uint64_t now = sc_guardian_now_ms ();
    if (now >= end) {
      rep.expired = 1;
      break;
    }
    int k = poll (&p, 1, (int) (end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k != 0)
      break;                    /* thaw, or the requester is gone */
  }
  t0 = now_ns ();
  rep.why[0] = '\0';
  rep.err = ops->thaw (ops->arg, sc_guardian_now_ms () + op_ms, rep.why,
                       sizeof rep.why);
  rep.took_ns = now_ns () - t0;
  rep.frozen_ns = now_ns () - frozen_at;
  send_report (status, &rep);
  _exit (rep.err ? 1 : 0);
}

/* Read the guardian's next report within ms; 0, or -ETIMEDOUT or -EIO. */
static int
read_report (int fd, uint64_t ms, struct report *rep)
{
  uint64_t end = sc_guardian_now_ms () + ms;
  struct pollfd p = { .fd = fd, .events = POLLIN };

  for (;;) {
    uint64_t now = sc_guardian_now_ms ();
    if (now >= end)
      return -ETIMEDOUT;
    int k = poll (&p, 1, (int) (end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    if (k > 0)
      break;
  }
  ssize_t n;
  while ((n = read (fd, rep, sizeof *rep)) < 0 && errno == EINTR)
    ;
  return n == sizeof *rep ? 0 : -EIO;
}

static void
reap (pid_t pid, bool kill_it)
{
  if (kill_it)
    kill (pid, SIGKILL);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

int
sc_guardian_start (struct sc_guardian *g, const struct sc_guardian_ops *ops,
                   uint64_t op_ms, uint64_t window_ms, char *why, size_t len)
{
  int cmd[2], st[2], e;
  struct report rep;

  why[0] = '\0';
  if (pipe2 (cmd, O_CLOEXEC) < 0) {
    e = -errno;
    snprintf (why, len, "cannot start its guardian: %s", strerror (-e));
    return e;
  }
  if (pipe2 (st, O_CLOEXEC) < 0) {
    e = -errno;
    close (cmd[0]);
    close (cmd[1]);
    snprintf (why, len, "cannot start its guardian: %s", strerror (-e));
    return e;
  }
  fflush (NULL);
  pid_t pid = fork ();
  if (pid == 0) {
    close (cmd[1]);
    close (st[0]);
    guardian (ops, cmd[0], st[1], op_ms, window_ms);
  }
  close (cmd[0]);
  close (st[1]);
  if (pid < 0) {
    e = -errno;
    close (cmd[1]);
    close (st[0]);
    snprintf (why, len, "cannot start its guardian: %s", strerror (-e));
    return e;
  }
  /* A failed freeze is reported after the thaw that undoes it: each
   * has op_ms. */
  e = read_report (st[0], 2 * op_ms + BACKSTOP_MS, &rep);
  if (e < 0 || rep.err) {
    if (e == -ETIMEDOUT)
      snprintf (why, len, "its guardian did not answer within %" PRIu64
                " ms", 2 * op_ms + BACKSTOP_MS);
    else if (e < 0)
      snprintf (why, len, "its guardian died");
    else
      snprintf (why, len, "%s", rep.why);
    close (cmd[1]);
    close (st[0]);
    reap (pid, e == -ETIMEDOUT);
    /* A call of the operation that went unanswered to its deadline is
     * named in why; -ETIME keeps it from reading as the freeze window's
     * end (-ETIMEDOUT) even when that deadline was the window's. */
    if (e == 0 && rep.err == -ETIMEDOUT)
      return -ETIME;
    return e < 0 ? e : rep.err;
  }
  snprintf (why, len, "froze in %" PRIu64 " ms%s%s",
            rep.took_ns / 1000000, rep.why[0] ? ": " : "", rep.why);
  *g = (struct sc_guardian) { .pid = pid, .cmd = cmd[1], .status = st[0] };
  return 0;
}

int
sc_guardian_stop (struct sc_guardian *g, uint64_t op_ms, uint64_t *frozen_ns,
                  char *why, size_t len)
{
  struct report rep;
  int e;

  why[0] = '\0';
  *frozen_ns = 0;
  if (!g->pid)
    return 0;
  close (g->cmd);               /* EOF: thaw */
  g->cmd = -1;
  e = read_report (g->status, op_ms + BACKSTOP_MS, &rep);
  reap (g->pid, e == -ETIMEDOUT);
  close (g->status);
  g->status = -1;
  g->pid = 0;
  if (e == -ETIMEDOUT) {
    snprintf (why, len, "its guardian did not thaw within %" PRIu64 " ms",
              op_ms + BACKSTOP_MS);
    return -EIO;
  }
  if (e < 0) {
    snprintf (why, len, "its guardian died before it said it thawed");
    return -EIO;
  }
  *frozen_ns = rep.frozen_ns;
  if (rep.err) {
    snprintf (why, len, "%s", rep.why);
    return rep.err;
  }
  if (rep.expired) {
    snprintf (why, len, "the freeze window ended before thaw: thawed "
              "early, after %" PRIu64 " ms", rep.frozen_ns / 1000000);
    return -ETIMEDOUT;
  }
  snprintf (why, len, "frozen for %" PRIu64 " ms%s%s",
            rep.frozen_ns / 1000000, rep.why[0] ? ": " : "", rep.why);
  return 0;
}

void
sc_guardian_close (struct sc_guardian *g)
{
  if (g->cmd >= 0)
    close (g->cmd);
  if (g->status >= 0)
    close (g->status);
  g->cmd = g->status = -1;
}

/* ---- a program to a deadline ------------------------------------------- */

struct run_args {
  char *const *argv;
  int out;
};

static void
run_program (void *arg)
{
  struct run_args *a = arg;
  int null;

  signal (SIGPIPE, SIG_DFL);
  null = open ("/dev/null", O_RDONLY);
  if (null >= 0)
    dup2 (null, 0);
  dup2 (a->out, 1);
  dup2 (a->out, 2);
  execvp (a->argv[0], a->argv);
  fprintf (stderr, "cannot run %s: %s", a->argv[0], strerror (errno));
  _exit (127);
}

int
sc_guardian_run (char *const argv[], uint64_t deadline, int *status,
                 char *out, size_t outlen)
{
  int p[2], sfd, st = 0, got = 0;
  size_t used = 0;
  bool timed_out = false;

  out[0] = '\0';
  *status = 0;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return -errno;
  fflush (NULL);
  struct run_args a = { .argv = argv, .out = p[1] };
  /* Its status through an intermediate: this process may ignore
   * SIGCHLD (see spawn.h). */
  pid_t pid = sc_spawn (run_program, &a, &sfd);
  close (p[1]);
  if (pid < 0) {
    close (p[0]);
    return pid;
  }
  for (;;) {
    uint64_t now = sc_guardian_now_ms ();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    int k = poll (&pf, 1, (int) (deadline - now));
    if (k <= 0)
      continue;
    char buf[512];
    ssize_t n = read (p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    /* The last of it: what went wrong is at the end. */
    if ((size_t) n >= outlen)
      n = outlen - 1;
    if (used + n >= outlen) {
      size_t drop = used + n - (outlen - 1);
      memmove (out, out + drop, used - drop);
      used -= drop;
    }
    memcpy (out + used, buf, n);
    used += n;
    out[used] = '\0';
  }
  close (p[0]);
  if (!timed_out) {
    got = sc_spawn_status (sfd, deadline, &st);
    if (got == 0)
      timed_out = true;
  }
  sc_spawn_end (pid, sfd);
  /* One line. */
  while (used && (out[used - 1] == '\n' || out[used - 1] == ' '))
    out[--used] = '\0';
  for (char *c = out; *c; c++)
    if (*c == '\n' || *c == '\r' || *c == '\t')
      *c = ' ';
  if (timed_out)
    return -ETIMEDOUT;
  if (got < 0) {
    /* Never "exited 0": a status nobody reported is a failure. */
    snprintf (out, outlen, "its exit status was lost");
    return -EPIPE;
  }
  *status = st;
  if (WIFEXITED (st) && WEXITSTATUS (st) == 0)
    return 0;
  if (WIFEXITED (st) && WEXITSTATUS (st) == 127 &&
      strncmp (out, "cannot run ", 11) == 0)
    return -ENOENT;
  return -ECHILD;
}
