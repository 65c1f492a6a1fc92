/* shadowcopy mount --recover: a crash-consistent snapshot's filesystem
 * mounted with its journal replayed, on a temporary writable clone.
 *
 * A snapshot taken without a writer's freeze holds a filesystem as a
 * power cut would have left it: its journal must be replayed before it
 * is consistent, and a read-only device cannot be written to replay it
 * (hence mount's noload / norecovery, which show the filesystem without
 * the journal's last transactions).  VSS calls the cure auto-recovery.
 * Here the snapshot stays untouched: a clone of it (CLONE, redirect-on-
 * write in the diff area, the origin never written) takes the replay's
 * writes, is mounted read-write so that the kernel replays the journal,
 * then remounted read-only; umount deletes the clone, and the replay's
 * writes with it.  cmd-mount.c records the clone as the lowest layer of
 * the mount, so a failed mount or umount removes it last.
 *
 * create --auto-recover keeps such a clone instead, NAME.recovered: the
 * CLI mounts it read-write (the kernel replays the journal) and unmounts
 * it with its own mount and umount verbs, so every layer is set up and
 * removed as a mount's are.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/mount-recover.h"

/* CLONE name clone through the control socket: 0, or -1 (said, after
 * `what`). */
static int
make_clone (const char *socket, const char *name, const char *clone,
            const char *what)
{
  struct shadowcopy *c;

  if (shadowcopy_connect (socket, &c) < 0) {
    sc_cli_lib_error ();
    return -1;
  }
  int r = shadowcopy_clone (c, name, clone, NULL);
  if (r < 0)
    sc_cli_error ("%scannot clone %s as %s: %s", what, name, clone,
                  shadowcopy_get_error ());
  shadowcopy_close (c);
  if (r < 0)
    return -1;
  return 0;
}

int
sc_mount_recover_clone (const char *socket, const char *name, char *clone,
                        size_t len)
{
  char suffix[40];

  snprintf (suffix, sizeof suffix, ".recover-%ld", (long) getpid ());
  /* Names are at most SC_NAME_MAX (128) characters. */
  snprintf (clone, len, "%.*s%s", (int) (128 - strlen (suffix)), name,
            suffix);
  return make_clone (socket, name, clone, "--recover: ");
}

/* Run this program with argv[1..] (argv[0] is replaced), stdout to
 * /dev/null.  0 if it exited 0. */
static int
run_self (char **argv)
{
  char self[PATH_MAX];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n < 0)
    return -errno;
  self[n] = '\0';
  argv[0] = self;
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    if (!freopen ("/dev/null", "w", stdout))
      _exit (127);
    execv (self, argv);
    _exit (127);
  }
  int status;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -ECHILD;
}

int
sc_mount_recover_delete (const char *socket, const char *clone)
{
  struct shadowcopy *c;

  if (shadowcopy_connect (socket, &c) < 0) {
    sc_cli_error ("deleting the recovery clone %s: %s", clone,
                  shadowcopy_get_error ());
    return -1;
  }
  int r = shadowcopy_delete (c, clone, NULL, 0, NULL, NULL);
  if (r < 0 && r != -ENOENT)
    sc_cli_error ("deleting the recovery clone %s: %s", clone,
                  shadowcopy_get_error ());
  shadowcopy_close (c);
  if (r < 0 && r != -ENOENT)
    return -1;
  return 0;
}

int
sc_recover_kept_clone (const char *socket, const char *nbd, const char *name,
                       char *clone, size_t len)
{
  char dir[] = "/tmp/shadowcopy-recover-XXXXXX";

  if (strlen (name) + sizeof ".recovered" - 1 > 128) {
    sc_cli_error ("--auto-recover: %s.recovered would be longer than 128 "
                  "characters", name);
    return -1;
  }
  snprintf (clone, len, "%s.recovered", name);
  if (make_clone (socket, name, clone, "--auto-recover: ") < 0)
    return -1;
  if (!mkdtemp (dir)) {
    sc_cli_error ("--auto-recover: %s: %s", dir, strerror (errno));
    sc_mount_recover_delete (socket, clone);
    return -1;
  }
  char *mount_argv[] = { NULL, "-c", (char *) socket, "mount",
                         "--nbd-socket", (char *) nbd, clone, dir, NULL };
  char *umount_argv[] = { NULL, "umount", dir, NULL };
  int r = run_self (mount_argv);
  if (r < 0) {
    rmdir (dir);
    sc_cli_error ("--auto-recover: the journal of %s could not be replayed "
                  "on clone %s (its mount failed, said above); the "
                  "snapshot is kept, the clone deleted", name, clone);
    sc_mount_recover_delete (socket, clone);
    return -1;
  }
  if (run_self (umount_argv) < 0) {
    sc_cli_error ("--auto-recover: shadowcopy umount %s failed: the "
                  "recovered clone %s is still mounted there", dir, clone);
    return -1;
  }
  rmdir (dir);
  return 0;
}
