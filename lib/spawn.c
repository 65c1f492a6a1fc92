/* shadowcopy: a child whose exit status the library learns whatever the
 * caller's SIGCHLD disposition (see spawn.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/spawn.h"

static uint64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pid_t
sc_spawn (void (*run) (void *arg), void *arg, int *status_fd)
{
  int p[2];

  if (pipe2 (p, O_CLOEXEC) < 0)
    return -errno;
  pid_t pid = fork ();
  if (pid < 0) {
    int e = -errno;
    close (p[0]);
    close (p[1]);
    return e;
  }
  if (pid == 0) {
    /* The intermediate. */
    int st = 0;
    setpgid (0, 0);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    signal (SIGCHLD, SIG_DFL);
    close (p[0]);
    pid_t child = fork ();
    if (child < 0)
      _exit (1);                /* no status: a failure */
    if (child == 0) {
      close (p[1]);
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      run (arg);
      _exit (127);
    }
    int s = fcntl (p[1], F_DUPFD, 3);
    if (s < 0)
      _exit (1);
    close_range (3, s - 1, 0);
    close_range (s + 1, ~0U, 0);
    while (waitpid (child, &st, 0) < 0)
      if (errno != EINTR)
        _exit (1);
    if (write (s, &st, sizeof st) != sizeof st)
      _exit (1);
    _exit (0);
  }
  setpgid (pid, pid);           /* both sides, whoever runs first */
  close (p[1]);
  *status_fd = p[0];
  return pid;
}

int
sc_spawn_status (int status_fd, uint64_t deadline, int *wstatus)
{
  struct pollfd pf = { .fd = status_fd, .events = POLLIN };

  for (;;) {
    int ms = -1;
    if (deadline != UINT64_MAX) {
      uint64_t now = now_ms ();
      if (now >= deadline)
        return 0;
      ms = (int) (deadline - now);
    }
    int k = poll (&pf, 1, ms);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -EIO;
    if (k == 0)
      continue;
    int st;
    ssize_t n;
    while ((n = read (status_fd, &st, sizeof st)) < 0 && errno == EINTR)
      ;
    if (n != sizeof st)
      return -EIO;
    *wstatus = st;
    return 1;
  }
}

void
sc_spawn_end (pid_t pid, int status_fd)
{
  kill (-pid, SIGKILL);
  /* ECHILD when the caller ignores SIGCHLD: the kernel reaped it. */
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (status_fd >= 0)
    close (status_fd);
}
