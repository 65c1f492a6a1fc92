/* shadowcopy mount: the programs it runs (blkid, losetup, mount, umount,
 * nbd-client), their output captured (mount-run.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/mount-run.h"

int
sc_mount_run (char *const argv[], char *out, size_t outlen, char *err,
              size_t errlen)
{
  int po[2], pe[2], status;

  if (pipe2 (po, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2 (pe, O_CLOEXEC) < 0) {
    int e = -errno;
    close (po[0]);
    close (po[1]);
    return e;
  }
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0) {
    int e = -errno;
    close (po[0]);
    close (po[1]);
    close (pe[0]);
    close (pe[1]);
    return e;
  }
  if (pid == 0) {
    int null = open ("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2 (null, 0);
    dup2 (po[1], 1);
    dup2 (pe[1], 2);
    close (po[0]);
    close (pe[0]);
    execvp (argv[0], argv);
    fprintf (stderr, "cannot run %s: %s", argv[0], strerror (errno));
    _exit (127);
  }
  close (po[1]);
  close (pe[1]);
  size_t no = 0, ne = 0;
  ssize_t k;
  char buf[512];
  /* Both pipes at once: a child filling one while we wait on the other
   * would block for ever. */
  struct pollfd pf[2] = { { .fd = po[0], .events = POLLIN },
                          { .fd = pe[0], .events = POLLIN } };
  while (pf[0].fd >= 0 || pf[1].fd >= 0) {
    if (poll (pf, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int w = 0; w < 2; w++) {
      if (pf[w].fd < 0 || !pf[w].revents)
        continue;
      k = read (pf[w].fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        close (pf[w].fd);
        pf[w].fd = -1;
        continue;
      }
      for (ssize_t j = 0; j < k; j++) {
        if (w == 0 && out && no + 1 < outlen)
          out[no++] = buf[j];
        else if (w == 1 && err && ne + 1 < errlen)
          err[ne++] = buf[j];
      }
    }
  }
  if (out)
    out[no] = '\0', out[strcspn (out, "\n")] = '\0';
  if (err) {
    err[ne] = '\0';
    while (ne && (err[ne - 1] == '\n' || err[ne - 1] == ' '))
      err[--ne] = '\0';
  }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -ECHILD;
}

int
sc_mount_run_or_say (char *const argv[], char *out, size_t outlen)
{
  char err[1024];
  int r = sc_mount_run (argv, out, outlen, err, sizeof err);
  if (r < 0)
    sc_cli_error ("%s failed%s%s", argv[0], err[0] ? ": " : "", err);
  return r;
}
