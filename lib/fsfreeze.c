/* shadowcopy: a mounted filesystem frozen for a bounded window (see
 * fsfreeze.h).
 *
 * Notes on the design
 *
 * A writer's phase must not outlive the CLI, but a freeze needs the
 * opposite: something that outlives the CLI just long enough to thaw.
 * The guardian (a forked child in its own session, deaf to terminal
 * signals) freezes, reports, then waits on a pipe from the CLI; EOF on
 * that pipe (thaw, abort, the CLI's death) or the end of the freeze
 * window makes it thaw and exit.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/clock.h"
#include "lib/fsfreeze.h"

/* What the guardian reports after a thaw when the freeze window ended
 * first: the filesystem was thawed before the CLI asked. */
#define GUARD_WINDOW_ENDED (-1)

/* The guardian keeps only its two pipes (as fds 3 and 4) and /dev/null:
 * an inherited copy of another guardian's pipe would keep that one from
 * seeing EOF, an inherited control socket would keep the server from
 * seeing the CLI go, and an inherited stdout would keep whoever reads
 * the CLI's output waiting until the window ends. */
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

static void __attribute__ ((noreturn))
guardian (const char *mnt, int cmd, int status, uint64_t window_ms)
{
  int fd, e = 0;
  bool expired = false;

  setsid ();
  signal (SIGINT, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  guardian_fds (&cmd, &status);
  fd = open (mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ioctl (fd, FIFREEZE, 0) < 0)
    e = errno;
  if (write (status, &e, sizeof e) != sizeof e || e) {
    /* Frozen but could not say so: thaw now. */
    if (!e)
      ioctl (fd, FITHAW, 0);
    _exit (1);
  }
  struct pollfd p = { .fd = cmd, .events = POLLIN };
  uint64_t end = (sc_mono_ns () / 1000000u) + window_ms;
  for (;;) {
    uint64_t now = (sc_mono_ns () / 1000000u);
    if (now >= end) {
      expired = true;
      break;
    }
    int k = poll (&p, 1, (int) (end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k != 0)
      break;                    /* thaw, or the CLI is gone */
  }
  e = ioctl (fd, FITHAW, 0) < 0 ? errno : 0;
  if (e == 0 && expired)
    e = GUARD_WINDOW_ENDED;
  /* No waiting for the CLI: the status pipe keeps the answer. */
  if (write (status, &e, sizeof e) < 0)
    (void) 0;
  _exit (e ? 1 : 0);
}

int
sc_fsfreeze_freeze (struct sc_fsfreeze *g, const char *mnt,
                    uint64_t window_ms, char *why, size_t whylen)
{
  int cmd[2], st[2], e = 0;

  why[0] = '\0';
  if (pipe2 (cmd, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2 (st, O_CLOEXEC) < 0) {
    e = -errno;
    close (cmd[0]);
    close (cmd[1]);
    return e;
  }
  pid_t pid = fork ();
  if (pid == 0) {
    close (cmd[1]);
    close (st[0]);
    guardian (mnt, cmd[0], st[1], window_ms);
  }
  close (cmd[0]);
  close (st[1]);
  if (pid < 0) {
    e = -errno;
    close (cmd[1]);
    close (st[0]);
    return e;
  }
  ssize_t k;
  while ((k = read (st[0], &e, sizeof e)) < 0 && errno == EINTR)
    ;
  if (k != sizeof e || e) {
    snprintf (why, whylen, "FIFREEZE %s: %s", mnt,
              k == sizeof e ? strerror (e) : "the freezer died");
    close (cmd[1]);
    close (st[0]);
    waitpid (pid, NULL, 0);
    return -(k == sizeof e ? e : EIO);
  }
  *g = (struct sc_fsfreeze) { .guard = pid, .cmd = cmd[1], .status = st[0] };
  return 0;
}

/* Tell the guardian to thaw, and wait for its answer: 0, an errno of
 * FITHAW, or GUARD_WINDOW_ENDED. */
static int
guardian_thaw (struct sc_fsfreeze *g)
{
  int e = 0;
  ssize_t k;

  close (g->cmd);               /* EOF: thaw */
  g->cmd = -1;
  while ((k = read (g->status, &e, sizeof e)) < 0 && errno == EINTR)
    ;
  if (k != sizeof e)
    e = EIO;
  while (waitpid (g->guard, NULL, 0) < 0 && errno == EINTR)
    ;
  close (g->status);
  g->status = -1;
  g->guard = 0;
  return e;
}

int
sc_fsfreeze_thaw (struct sc_fsfreeze *g, const char *mnt, char *why,
                  size_t whylen)
{
  int e = 0;

  why[0] = '\0';
  /* Only what we froze is thawed: without a guardian (our FIFREEZE
   * failed, perhaps with EBUSY because someone else froze it, or we
   * thawed already) a FITHAW would end someone else's freeze. */
  if (g->guard)
    e = guardian_thaw (g);
  if (e == GUARD_WINDOW_ENDED) {
    snprintf (why, whylen, "the freeze window ended before thaw: "
              "%s was thawed early", mnt);
    return -ETIMEDOUT;
  }
  if (e) {
    snprintf (why, whylen, "FITHAW %s: %s", mnt, strerror (e));
    return -e;
  }
  return 0;
}

void
sc_fsfreeze_close (struct sc_fsfreeze *g)
{
  if (g->cmd >= 0)
    close (g->cmd);
  if (g->status >= 0)
    close (g->status);
  g->cmd = g->status = -1;
}
