/* shadowcopy mount / umount: a snapshot as a read-only filesystem.
 *
 *   shadowcopy [-c SOCK] mount --nbd-socket NBDSOCK [-t TYPE] [-o OPTS]
 *              NAME DIR
 *   shadowcopy umount DIR
 *
 * Notes on the design
 *
 * The CLI reaches the snapshot's data over NBD, so it needs the NBD
 * socket nbdkit listens on (nbdkit -U NBDSOCK): the control socket does
 * not carry data.  Two ways to a block device:
 *   - the kernel's NBD client, where /dev/nbd* exists and nbd-client is
 *     installed: nbd-client -unix NBDSOCK /dev/nbdN -N NAME -readonly;
 *   - otherwise nbdfuse (read-only, in the background) exposes the export
 *     as a file, and losetup -r turns that file into /dev/loopN.
 * Then mount -o ro (with noload for ext3/ext4, whose journal cannot be
 * replayed on a read-only device).
 *
 * Every layer is recorded, as soon as it exists, in STATE/mounts/KEY
 * (KEY: DIR's absolute path, escaped), so umount (or a failed mount)
 * removes exactly what was set up, top down: the mount, the loop device,
 * nbdfuse (fusermount3 -u, then waiting for it to exit), the NBD device.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/client.h"
#include "tools/commands.h"
#include "tools/writers.h"

/* Run argv, stdout into out (first line kept), stderr into err. */
static int
run (char *const argv[], char *out, size_t outlen, char *err, size_t errlen)
{
  int po[2], pe[2], status;

  if (pipe (po) < 0 || pipe (pe) < 0)
    return -errno;
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0)
    return -errno;
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
  while ((k = read (po[0], buf, sizeof buf)) > 0)
    for (ssize_t j = 0; j < k; j++)
      if (out && no + 1 < outlen)
        out[no++] = buf[j];
  while ((k = read (pe[0], buf, sizeof buf)) > 0)
    for (ssize_t j = 0; j < k; j++)
      if (err && ne + 1 < errlen)
        err[ne++] = buf[j];
  close (po[0]);
  close (pe[0]);
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

static int
run_or_say (char *const argv[], char *out, size_t outlen)
{
  char err[1024];
  int r = run (argv, out, outlen, err, sizeof err);
  if (r < 0)
    sc_cli_error ("%s failed%s%s", argv[0], err[0] ? ": " : "", err);
  return r;
}

static int
state_path (const char *dir, char *path, size_t len, bool create)
{
  char err[512], key[PATH_MAX * 3 + 1];
  const char *st = sc_state_dir (create, err, sizeof err);
  size_t k = 0;

  if (!st) {
    sc_cli_error ("%s", err);
    return -1;
  }
  for (const char *p = dir; *p && k + 4 < sizeof key; p++) {
    if (*p == '/' || *p == '%')
      k += sprintf (key + k, "%%%02X", (unsigned char) *p);
    else
      key[k++] = *p;
  }
  key[k] = '\0';
  snprintf (path, len, "%s/mounts", st);
  if (create && mkdir (path, 0700) < 0 && errno != EEXIST) {
    sc_cli_error ("%s: %s", path, strerror (errno));
    return -1;
  }
  snprintf (path + strlen (path), len - strlen (path), "/%s", key);
  return 0;
}

static void
state_add (const char *path, const char *kind, const char *a, const char *b)
{
  FILE *f = fopen (path, "a");
  if (!f) {
    sc_cli_error ("%s: %s", path, strerror (errno));
    return;
  }
  fprintf (f, "%s %s%s%s\n", kind, a, b[0] ? " " : "", b);
  fclose (f);
}

/* Tear down what STATE says, top down.  0 if all of it went. */
static int
teardown (const char *statefile)
{
  static char lines[8][PATH_MAX + 64];
  int n = 0, bad = 0;
  FILE *f = fopen (statefile, "r");

  if (!f)
    return -errno;
  while (n < 8 && fgets (lines[n], sizeof lines[n], f)) {
    lines[n][strcspn (lines[n], "\n")] = '\0';
    n++;
  }
  fclose (f);
  for (int i = n - 1; i >= 0; i--) {
    char *l = lines[i], *arg = strchr (l, ' ');
    if (!arg)
      continue;
    *arg++ = '\0';
    if (strcmp (l, "mount") == 0) {
      char *argv[] = { "umount", arg, NULL };
      if (run_or_say (argv, NULL, 0) < 0)
        return -EBUSY;          /* keep the rest: it is still in use */
    }
    else if (strcmp (l, "loop") == 0) {
      char *argv[] = { "losetup", "-d", arg, NULL };
      bad |= run_or_say (argv, NULL, 0) < 0;
    }
    else if (strcmp (l, "nbd") == 0) {
      char *argv[] = { "nbd-client", "-d", arg, NULL };
      bad |= run_or_say (argv, NULL, 0) < 0;
    }
    else if (strcmp (l, "nbdfuse") == 0) {
      char *dir = strchr (arg, ' ');
      if (!dir)
        continue;
      *dir++ = '\0';
      pid_t pid = (pid_t) atol (arg);
      char *argv[] = { "fusermount3", "-u", dir, NULL };
      if (run (argv, NULL, 0, NULL, 0) < 0 && pid > 0)
        kill (pid, SIGTERM);
      for (int t = 0; pid > 0 && t < 100 && kill (pid, 0) == 0; t++)
        usleep (100000);
      if (pid > 0 && kill (pid, 0) == 0) {
        sc_cli_error ("nbdfuse %ld did not exit", (long) pid);
        bad = 1;
      }
      rmdir (dir);
    }
  }
  if (!bad) {
    char extra[PATH_MAX + 80];
    snprintf (extra, sizeof extra, "%s.log", statefile);
    unlink (extra);
    snprintf (extra, sizeof extra, "%s.pid", statefile);
    unlink (extra);
    unlink (statefile);
  }
  return bad ? -EIO : 0;
}

static bool
have_kernel_nbd (void)
{
  glob_t g;
  bool yes = glob ("/dev/nbd[0-9]*", 0, NULL, &g) == 0 && g.gl_pathc > 0;
  globfree (&g);
  if (getenv ("SHADOWCOPY_MOUNT_FUSE"))   /* tests: force nbdfuse */
    return false;
  return yes && (access ("/sbin/nbd-client", X_OK) == 0 ||
                 access ("/usr/sbin/nbd-client", X_OK) == 0);
}

static int
attach_nbd (const char *sock, const char *name, const char *statefile,
            char *dev, size_t devlen)
{
  for (int i = 0; i < 256; i++) {
    char sys[64];
    struct stat st;
    snprintf (dev, devlen, "/dev/nbd%d", i);
    snprintf (sys, sizeof sys, "/sys/block/nbd%d/pid", i);
    if (stat (dev, &st) < 0)
      break;
    if (access (sys, F_OK) == 0)
      continue;                 /* in use */
    char *argv[] = { "nbd-client", "-unix", (char *) sock, dev,
                     "-N", (char *) name, "-readonly", NULL };
    if (run_or_say (argv, NULL, 0) < 0)
      return -1;
    state_add (statefile, "nbd", dev, "");
    return 0;
  }
  sc_cli_error ("no free /dev/nbd device");
  return -1;
}

static int
attach_fuse (const char *sock, const char *name, const char *statefile,
             char *dev, size_t devlen)
{
  char fusedir[PATH_MAX + 80], file[PATH_MAX + 90], pidfile[PATH_MAX + 80];
  char uri[2 * PATH_MAX + 300], log[PATH_MAX + 80];

  snprintf (fusedir, sizeof fusedir, "%s.fuse", statefile);
  snprintf (file, sizeof file, "%s/disk", fusedir);
  snprintf (pidfile, sizeof pidfile, "%s.pid", statefile);
  snprintf (log, sizeof log, "%s.log", statefile);
  snprintf (uri, sizeof uri, "nbd+unix:///%s?socket=%s", name, sock);
  if (mkdir (fusedir, 0700) < 0 && errno != EEXIST) {
    sc_cli_error ("%s: %s", fusedir, strerror (errno));
    return -1;
  }
  unlink (pidfile);
  fflush (NULL);
  pid_t pid = fork ();
  if (pid == 0) {
    int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open ("/dev/null", O_RDONLY);
    setsid ();
    if (null >= 0)
      dup2 (null, 0);
    if (fd >= 0) {
      dup2 (fd, 1);
      dup2 (fd, 2);
    }
    execlp ("nbdfuse", "nbdfuse", "-r", "-P", pidfile, file, uri,
            (char *) NULL);
    _exit (127);
  }
  if (pid < 0) {
    sc_cli_error ("fork: %s", strerror (errno));
    return -1;
  }
  char pidtxt[32];
  snprintf (pidtxt, sizeof pidtxt, "%ld", (long) pid);
  state_add (statefile, "nbdfuse", pidtxt, fusedir);
  for (int t = 0; t < 200; t++) {
    struct stat st;
    int status;
    if (stat (pidfile, &st) == 0 && st.st_size > 0 &&
        stat (file, &st) == 0)
      break;
    if (waitpid (pid, &status, WNOHANG) == pid) {
      char msg[512] = "";
      FILE *f = fopen (log, "r");
      if (f) {
        if (!fgets (msg, sizeof msg, f))
          msg[0] = '\0';
        fclose (f);
      }
      msg[strcspn (msg, "\n")] = '\0';
      sc_cli_error ("nbdfuse %s exited%s%s", uri, msg[0] ? ": " : "", msg);
      return -1;
    }
    usleep (50000);
  }
  unlink (pidfile);
  char *argv[] = { "losetup", "-r", "-f", "--show", file, NULL };
  if (run_or_say (argv, dev, devlen) < 0 || !dev[0])
    return -1;
  state_add (statefile, "loop", dev, "");
  return 0;
}

int
sc_cmd_mount (const char *socket, int argc, char **argv)
{
  const char *nbd = getenv ("SHADOWCOPY_NBD_SOCKET"), *type = NULL;
  const char *opts = NULL;
  int i;

  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-')
      break;
    if (i + 1 == argc)
      return sc_cli_usage_error ("mount: %s needs an argument", a);
    if (strcmp (a, "--nbd-socket") == 0)
      nbd = argv[++i];
    else if (strcmp (a, "-t") == 0 || strcmp (a, "--type") == 0)
      type = argv[++i];
    else if (strcmp (a, "-o") == 0 || strcmp (a, "--options") == 0)
      opts = argv[++i];
    else
      return sc_cli_usage_error ("mount: unknown option '%s'", a);
  }
  if (argc - i != 2)
    return sc_cli_usage_error ("mount needs NAME and DIR");
  const char *name = argv[i], *dir = argv[i + 1];
  if (!nbd || !*nbd)
    return sc_cli_usage_error ("mount: give the server's NBD socket with "
                               "--nbd-socket (nbdkit -U SOCKET)");
  if (!sc_snapshot_name_valid (name)) {
    sc_cli_error ("invalid snapshot name: %s", name);
    return EXIT_FAILURE;
  }
  char absdir[PATH_MAX], absnbd[PATH_MAX];
  if (!realpath (dir, absdir)) {
    sc_cli_error ("%s: %s", dir, strerror (errno));
    return EXIT_FAILURE;
  }
  if (!realpath (nbd, absnbd)) {
    sc_cli_error ("%s: %s", nbd, strerror (errno));
    return EXIT_FAILURE;
  }

  /* With a control socket, a missing snapshot is named clearly. */
  if (socket) {
    struct sc_client *c;
    struct sc_client_snapshot *s;
    size_t n;
    char err[1024];
    bool found = false;
    if (sc_client_connect (socket, &c, err, sizeof err) < 0 ||
        sc_client_list (c, &s, &n, err, sizeof err) < 0) {
      sc_cli_error ("%s", err);
      return EXIT_FAILURE;
    }
    for (size_t k = 0; k < n; k++)
      found |= strcmp (s[k].name, name) == 0;
    free (s);
    sc_client_close (c, err, sizeof err);
    if (!found) {
      sc_cli_error ("no such snapshot: %s", name);
      return EXIT_FAILURE;
    }
  }

  char statefile[PATH_MAX + 64];
  struct stat st;
  if (state_path (absdir, statefile, sizeof statefile, true) < 0)
    return EXIT_FAILURE;
  if (stat (statefile, &st) == 0) {
    sc_cli_error ("%s: already mounted by shadowcopy (shadowcopy umount "
                  "%s first)", absdir, absdir);
    return EXIT_FAILURE;
  }

  char dev[PATH_MAX] = "";
  int r = have_kernel_nbd ()
    ? attach_nbd (absnbd, name, statefile, dev, sizeof dev)
    : attach_fuse (absnbd, name, statefile, dev, sizeof dev);
  if (r == 0) {
    char fstype[64] = "", mopts[1024];
    char *bargv[] = { "blkid", "-o", "value", "-s", "TYPE", dev, NULL };
    run (bargv, fstype, sizeof fstype, NULL, 0);
    const char *t = type ? type : fstype;
    bool journal = strcmp (t, "ext3") == 0 || strcmp (t, "ext4") == 0;
    snprintf (mopts, sizeof mopts, "ro%s%s%s", journal ? ",noload" : "",
              opts ? "," : "", opts ? opts : "");
    char *margv[] = { "mount", "-o", mopts, "-t", (char *) (t[0] ? t : "auto"),
                      dev, absdir, NULL };
    r = run_or_say (margv, NULL, 0);
    if (r == 0)
      state_add (statefile, "mount", absdir, "");
  }
  if (r < 0) {
    teardown (statefile);
    return EXIT_FAILURE;
  }
  printf ("%s\n", dev);
  return EXIT_SUCCESS;
}

int
sc_cmd_umount (int argc, char **argv)
{
  char absdir[PATH_MAX], statefile[PATH_MAX + 64];

  if (argc == 2 && strcmp (argv[0], "--") == 0) {
    argc--;
    argv++;
  }
  if (argc != 1 || argv[0][0] == '-')
    return sc_cli_usage_error ("umount needs DIR");
  if (!realpath (argv[0], absdir))
    snprintf (absdir, sizeof absdir, "%s", argv[0]);
  if (state_path (absdir, statefile, sizeof statefile, false) < 0)
    return EXIT_FAILURE;
  int r = teardown (statefile);
  if (r == -ENOENT) {
    sc_cli_error ("%s: not mounted by shadowcopy mount", absdir);
    return EXIT_FAILURE;
  }
  return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
