/* shadowcopy mount / umount: a snapshot as a read-only filesystem, a
 * writable clone as a read-write one.
 *
 *   shadowcopy [-c SOCK] mount --nbd-socket NBDSOCK | --nbd-uri URI
 *              [-t TYPE] [-o OPTS] [--recover] NAME DIR
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
 * With --nbd-uri (a server on TCP, TLS: nbds://...?tls-psk-file=...),
 * always nbdfuse, which takes the URI with the export's name put in as
 * its path (nbd-target.h): nbd-client takes no NBD URI.
 * Then mount -o ro (with noload for ext3/ext4, whose journal cannot be
 * replayed on a read-only device).  A writable clone (its type in LIST,
 * or without a control socket its export's description) is attached and
 * mounted read-write, so its journal is replayed as after a crash.
 *
 * --recover (mount-recover.c): the device is a temporary writable clone
 * of the snapshot instead, attached read-write and mounted read-write,
 * so that the kernel replays the filesystem's journal into the clone,
 * then remounted read-only.  The clone is the lowest layer recorded.
 *
 * Every layer is recorded, as soon as it exists, in RUNSTATE/KEY (KEY:
 * a hash of DIR's absolute path, which the file's first line holds, so
 * any DIR fits in a file name; RUNSTATE: $SHADOWCOPY_STATE_DIR/mounts,
 * else /run/shadowcopy/mounts for root, which a reboot clears with the
 * layers themselves, else STATE/mounts), so umount (or a failed mount)
 * removes exactly what was set up, top down: the mount, the loop device,
 * nbdfuse (fusermount3 -u, then waiting for it to exit), the NBD device.
 * A layer that cannot be recorded is undone at once: mount fails.
 * umount carries on below a mount that is already gone (a plain umount
 * DIR), and touches a recorded loop device or nbdfuse process only if it
 * is still ours (its backing file, its command line).
 */
#include <config.h>

#include <errno.h>
#include <libnbd.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cow/diffarea.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/export-identity.h"
#include "tools/mount-recover.h"
#include "tools/mount-run.h"
#include "tools/nbd-listen.h"
#include "tools/nbd-target.h"

/* Where mount state lives (see the notes at the top). */
static const char *
mount_state_dir (char *buf, size_t len)
{
  char err[512];
  const char *e = getenv ("SHADOWCOPY_STATE_DIR");
  const char *st;

  if ((!e || !*e) && geteuid () == 0) {
    if (mkdir ("/run/shadowcopy", 0700) < 0 && errno != EEXIST) {
      sc_cli_error ("/run/shadowcopy: %s", strerror (errno));
      return NULL;
    }
    snprintf (buf, len, "/run/shadowcopy/mounts");
    return buf;
  }
  if (!(st = sc_cli_state_dir (true, err, sizeof err))) {
    sc_cli_error ("%s", err);
    return NULL;
  }
  snprintf (buf, len, "%s/mounts", st);
  return buf;
}

/* STATEFILE for DIR: named by a hash of DIR (any DIR fits), its first
 * line "dir DIR".  -1 (said) when unusable; *taken when it exists and
 * holds another DIR (a hash collision). */
static int
state_path (const char *dir, char *path, size_t len, bool create)
{
  char base[PATH_MAX];
  uint64_t h = 14695981039346656037u;

  for (const unsigned char *p = (const unsigned char *) dir; *p; p++)
    h = (h ^ *p) * 1099511628211u;
  if (!mount_state_dir (base, sizeof base))
    return -1;
  if (create && mkdir (base, 0700) < 0 && errno != EEXIST) {
    sc_cli_error ("%s: %s", base, strerror (errno));
    return -1;
  }
  snprintf (path, len, "%s/m-%016" PRIx64, base, h);

  /* A collision: refuse rather than act on another DIR's layers. */
  FILE *f = fopen (path, "r");
  if (f) {
    char line[PATH_MAX + 8];
    bool same = fgets (line, sizeof line, f) &&
                strncmp (line, "dir ", 4) == 0 &&
                (line[strcspn (line, "\n")] = '\0',
                 strcmp (line + 4, dir) == 0);
    fclose (f);
    if (!same) {
      sc_cli_error ("%s: mount state %s belongs to another directory",
                    dir, path);
      return -1;
    }
  }
  return 0;
}

static int
state_add (const char *path, const char *kind, const char *a, const char *b)
{
  FILE *f = fopen (path, "a");
  if (!f) {
    sc_cli_error ("cannot record the %s layer in %s: %s", kind, path,
                  strerror (errno));
    return -1;
  }
  fprintf (f, "%s %s%s%s\n", kind, a, b[0] ? " " : "", b);
  if (fclose (f) != 0) {
    sc_cli_error ("cannot record the %s layer in %s: %s", kind, path,
                  strerror (errno));
    return -1;
  }
  return 0;
}

/* Is DIR a mount point now? */
static bool
is_mounted (const char *dir)
{
  FILE *f = fopen ("/proc/self/mountinfo", "r");
  char *line = NULL;
  size_t cap = 0;
  bool yes = false;

  if (!f)
    return true;                /* cannot tell: assume it is */
  while (!yes && getline (&line, &cap, f) > 0) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; octal escapes for spaces */
    char mp[PATH_MAX * 4];
    if (sscanf (line, "%*s %*s %*s %*s %4095s", mp) != 1)
      continue;
    char un[PATH_MAX * 4];
    size_t k = 0;
    for (const char *p = mp; *p && k + 1 < sizeof un; p++) {
      if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
        un[k++] = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
        p += 3;
      }
      else
        un[k++] = *p;
    }
    un[k] = '\0';
    yes = strcmp (un, dir) == 0;
  }
  free (line);
  fclose (f);
  return yes;
}

/* Is loop device DEV still backed by FILE? */
static bool
loop_is_ours (const char *dev, const char *file)
{
  char sys[PATH_MAX], back[PATH_MAX + 2] = "";
  const char *base = strrchr (dev, '/');
  FILE *f;

  snprintf (sys, sizeof sys, "/sys/block/%s/loop/backing_file",
            base ? base + 1 : dev);
  if (!(f = fopen (sys, "r")))
    return false;
  if (!fgets (back, sizeof back, f))
    back[0] = '\0';
  fclose (f);
  back[strcspn (back, "\n")] = '\0';
  return strcmp (back, file) == 0;
}

/* Has PID exited?  Reaped if it is our child: a failed mount tears
 * down the nbdfuse it started itself, and a zombie still answers kill 0. */
static bool
pid_gone (pid_t pid)
{
  waitpid (pid, NULL, WNOHANG);
  return kill (pid, 0) < 0;
}

/* Is PID still an nbdfuse? */
static bool
pid_is_nbdfuse (pid_t pid)
{
  char path[64], cmd[4096];
  size_t n;
  FILE *f;

  snprintf (path, sizeof path, "/proc/%ld/cmdline", (long) pid);
  if (!(f = fopen (path, "r")))
    return false;
  n = fread (cmd, 1, sizeof cmd - 1, f);
  fclose (f);
  cmd[n] = '\0';               /* argv[0] is the first string */
  const char *b = strrchr (cmd, '/');
  return strcmp (b ? b + 1 : cmd, "nbdfuse") == 0;
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
      char err[1024];
      /* Already unmounted (a plain umount DIR): go on below. */
      if (sc_mount_run (argv, NULL, 0, err, sizeof err) < 0 && is_mounted (arg)) {
        sc_cli_error ("umount failed%s%s", err[0] ? ": " : "", err);
        return -EBUSY;          /* keep the rest: it is still in use */
      }
    }
    else if (strcmp (l, "loop") == 0) {
      char file[PATH_MAX + 80];
      snprintf (file, sizeof file, "%s.fuse/disk", statefile);
      if (!loop_is_ours (arg, file))
        continue;               /* gone, or now someone else's */
      char *argv[] = { "losetup", "-d", arg, NULL };
      bad |= sc_mount_run_or_say (argv, NULL, 0) < 0;
    }
    else if (strcmp (l, "nbd") == 0) {
      char *argv[] = { "nbd-client", "-d", arg, NULL };
      bad |= sc_mount_run_or_say (argv, NULL, 0) < 0;
    }
    else if (strcmp (l, "clone") == 0) {
      char *sock = strchr (arg, ' ');       /* "clone NAME SOCKET" */
      if (sock) {
        *sock++ = '\0';
        bad |= sc_mount_recover_delete (sock, arg) < 0;
      }
    }
    else if (strcmp (l, "nbdfuse") == 0) {
      char *dir = strchr (arg, ' ');
      if (!dir)
        continue;
      *dir++ = '\0';
      pid_t pid = (pid_t) atol (arg);
      if (pid > 0 && !pid_is_nbdfuse (pid))
        pid = 0;                /* exited; the pid may be reused */
      char *argv[] = { "fusermount3", "-u", dir, NULL };
      if (sc_mount_run (argv, NULL, 0, NULL, 0) < 0 && pid > 0)
        kill (pid, SIGTERM);
      for (int t = 0; pid > 0 && t < 100 && !pid_gone (pid); t++)
        usleep (100000);
      if (pid > 0 && !pid_gone (pid)) {
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

/* Record the layer `kind` that is `what` in statefile, or undo it at
 * once with `undo`: a layer that is not recorded would never be removed.
 * 0, or -1 (said). */
static int
record_or_undo (const char *statefile, const char *kind, char *what,
                char *const undo[])
{
  if (state_add (statefile, kind, what, "") == 0)
    return 0;
  sc_mount_run_or_say (undo, NULL, 0);
  return -1;
}

static int
attach_nbd (const char *sock, const char *name, bool rw,
            const char *statefile, char *dev, size_t devlen)
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
                     "-N", (char *) name, rw ? NULL : "-readonly", NULL };
    if (sc_mount_run_or_say (argv, NULL, 0) < 0)
      return -1;
    char *dargv[] = { "nbd-client", "-d", dev, NULL };
    return record_or_undo (statefile, "nbd", dev, dargv);
  }
  sc_cli_error ("no free /dev/nbd device");
  return -1;
}

/* Until nbdfuse `pid` has written its pidfile and its file exists, for
 * at most 10 s.  0, or -1 (said, with the first line of its log if it
 * exited). */
static int
wait_fuse_ready (pid_t pid, const char *pidfile, const char *file,
                 const char *log, const char *uri)
{
  bool ready = false;

  for (int t = 0; t < 200; t++) {
    struct stat st;
    int status;
    if (stat (pidfile, &st) == 0 && st.st_size > 0 &&
        stat (file, &st) == 0) {
      ready = true;
      break;
    }
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
  if (!ready) {
    sc_cli_error ("nbdfuse %s did not become ready in 10 s", uri);
    return -1;
  }
  return 0;
}

/* nbdfuse on an export, then a loop device on its file: tail, the
 * arguments after nbdfuse's FILE (at most 10; an export's URI, or a
 * --command), uri for messages. */
static int
attach_fuse_argv (char *const *tail, const char *uri, bool rw,
                  const char *statefile, char *dev, size_t devlen)
{
  char fusedir[PATH_MAX + 80], file[PATH_MAX + 90], pidfile[PATH_MAX + 80];
  char log[PATH_MAX + 80];

  snprintf (fusedir, sizeof fusedir, "%s.fuse", statefile);
  snprintf (file, sizeof file, "%s/disk", fusedir);
  snprintf (pidfile, sizeof pidfile, "%s.pid", statefile);
  snprintf (log, sizeof log, "%s.log", statefile);
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
    char *argv[16] = { "nbdfuse", "-P", pidfile };
    int n = 3;
    if (!rw)
      argv[n++] = "-r";
    argv[n++] = file;
    for (int k = 0; tail[k] && n < 15; k++)
      argv[n++] = tail[k];
    argv[n] = NULL;
    execvp ("nbdfuse", argv);
    _exit (127);
  }
  if (pid < 0) {
    sc_cli_error ("fork: %s", strerror (errno));
    return -1;
  }
  char pidtxt[32];
  snprintf (pidtxt, sizeof pidtxt, "%ld", (long) pid);
  if (state_add (statefile, "nbdfuse", pidtxt, fusedir) < 0) {
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    return -1;
  }
  if (wait_fuse_ready (pid, pidfile, file, log, uri) < 0)
    return -1;
  char *ro_argv[] = { "losetup", "-r", "-f", "--show", file, NULL };
  char *rw_argv[] = { "losetup", "-f", "--show", file, NULL };
  if (sc_mount_run_or_say (rw ? rw_argv : ro_argv, dev, devlen) < 0 || !dev[0])
    return -1;
  char *dargv[] = { "losetup", "-d", dev, NULL };
  return record_or_undo (statefile, "loop", dev, dargv);
}

/* nbdfuse on export name of the target, then a loop device.  A URI's
 * tls-psk-file= and tls-certificates= are local files, which nbdfuse
 * (libnbd 1.14) refuses in a URI: with --nbd-uri, nbdfuse runs nbdkit's
 * nbd plugin as its command (nbdkit -s), given those as options. */
static int
attach_fuse (const struct sc_nbd_target *t, const char *name, bool rw,
             const char *statefile, char *dev, size_t devlen)
{
  char *uri = sc_nbd_target_export_uri (t, name);
  char *rest = NULL, *psk = NULL, *certs = NULL;
  char *a_uri = NULL, *a_psk = NULL, *a_certs = NULL;
  int r = -1;

  if (!uri)
    goto nomem;
  if (!t->uri) {
    char *tail[] = { uri, NULL };
    r = attach_fuse_argv (tail, uri, rw, statefile, dev, devlen);
    free (uri);
    return r;
  }
  if (sc_nbd_uri_split_files (uri, &rest, &psk, &certs) < 0)
    goto nomem;
  if (asprintf (&a_uri, "uri=%s", rest) < 0) {
    a_uri = NULL;
    goto nomem;
  }
  if (psk && asprintf (&a_psk, "tls-psk=%s", psk) < 0) {
    a_psk = NULL;
    goto nomem;
  }
  if (certs && asprintf (&a_certs, "tls-certificates=%s", certs) < 0) {
    a_certs = NULL;
    goto nomem;
  }
  char *tail[12] = { "--command", "nbdkit", "-s", "--exit-with-parent" };
  int n = 4;
  if (!rw)
    tail[n++] = "-r";
  tail[n++] = "nbd";
  tail[n++] = a_uri;
  if (a_psk)
    tail[n++] = a_psk;
  if (a_certs)
    tail[n++] = a_certs;
  tail[n] = NULL;
  r = attach_fuse_argv (tail, uri, rw, statefile, dev, devlen);
  goto out;

 nomem:
  sc_cli_error ("%s", strerror (ENOMEM));
 out:
  free (uri);
  free (rest);
  free (psk);
  free (certs);
  free (a_uri);
  free (a_psk);
  free (a_certs);
  return r;
}

/* mount's arguments. */
struct mount_args {
  const char *nbd, *type, *opts, *name, *dir;   /* nbd: --nbd-socket */
  const char *nbd_uri;                          /* --nbd-uri */
  bool rw;                      /* a writable clone, or --recover's */
  bool recover;                 /* on a temporary clone, the journal
                                   replayed, then remounted read-only */
};

/* 0, or the exit status with the error said. */
static int
parse_mount_args (int argc, char **argv, struct mount_args *m)
{
  int i;

  m->nbd = getenv ("SHADOWCOPY_NBD_SOCKET");
  for (i = 0; i < argc && !sc_cli_options_end (argv, &i); i++) {
    const char *a = argv[i];
    if (strcmp (a, "--recover") == 0) {
      m->recover = true;
      continue;
    }
    if (i + 1 == argc)
      return sc_cli_usage_error ("mount: %s needs an argument", a);
    if (strcmp (a, "--nbd-socket") == 0)
      m->nbd = argv[++i];
    else if (strcmp (a, "--nbd-uri") == 0)
      m->nbd_uri = argv[++i];
    else if (strcmp (a, "-t") == 0 || strcmp (a, "--type") == 0)
      m->type = argv[++i];
    else if (strcmp (a, "-o") == 0 || strcmp (a, "--options") == 0)
      m->opts = argv[++i];
    else
      return sc_cli_usage_error ("mount: unknown option '%s'", a);
  }
  if (argc - i != 2)
    return sc_cli_usage_error ("mount needs NAME and DIR");
  m->name = argv[i];
  m->dir = argv[i + 1];
  if (m->nbd_uri) {
    char err[1024];
    if (sc_nbd_uri_check (m->nbd_uri, err, sizeof err) < 0)
      return sc_cli_usage_error ("mount: %s", err);
    m->nbd = NULL;              /* the URI wins over SHADOWCOPY_NBD_SOCKET */
    for (int k = 0; k < i; k++)
      if (strcmp (argv[k], "--nbd-socket") == 0)
        return sc_cli_usage_error ("mount: --nbd-socket or --nbd-uri, not "
                                   "both");
  }
  else if (m->nbd && !*m->nbd)
    m->nbd = NULL;              /* asked of the server (-c), or an error */
  if (!sc_cli_name_ok (m->name))
    return EXIT_FAILURE;
  return 0;
}

/* Without a control socket: is export NAME a writable clone?  Its
 * description says so ("writable clone of ..."); taking writes does not,
 * since a snapshot takes trims with discard-snapshots=on. */
static bool
export_writable (const struct sc_nbd_target *t, const char *name)
{
  static const char clone_desc[] = "writable clone of ";
  struct nbd_handle *h = nbd_create ();
  char err[1024];
  bool rw = false;
  if (h && nbd_set_export_name (h, name) == 0 &&
      nbd_set_full_info (h, true) == 0 &&
      (t->uri ? sc_nbd_target_connect_uri (h, t, name, err, sizeof err)
              : nbd_connect_unix (h, t->socket)) == 0 &&
      nbd_is_read_only (h) == 0) {
    char *desc = nbd_get_export_description (h);
    rw = desc && strncmp (desc, clone_desc, sizeof clone_desc - 1) == 0;
    free (desc);
  }
  if (h) {
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
  return rw;
}

/* With a control socket: export name on t must be the snapshot of UUID
 * uuid the control socket named, not another volume's
 * (export-identity.h).  0, or -1 (said). */
static int
check_export (const struct sc_nbd_target *t, const char *name,
              const char *uuid)
{
  struct nbd_handle *h = nbd_create ();
  char err[2048], why[1024] = "";
  int r = -1;

  if (!h) {
    sc_cli_error ("libnbd: %s", nbd_get_error ());
    return -1;
  }
  if (nbd_set_export_name (h, name) < 0 || nbd_set_full_info (h, true) < 0)
    snprintf (err, sizeof err, "%s", nbd_get_error ());
  else if ((t->uri ? sc_nbd_target_connect_uri (h, t, name, why, sizeof why)
                   : nbd_connect_unix (h, t->socket)) < 0) {
    if (!t->uri)
      snprintf (why, sizeof why, "%s", nbd_get_error ());
    snprintf (err, sizeof err, "cannot open the export of %s on %s: %s",
              name, sc_nbd_target_text (t), why);
  }
  else
    r = sc_export_identity_check (h, name, sc_nbd_target_text (t), uuid,
                                  err, sizeof err) < 0 ? -1 : 0;
  nbd_shutdown (h, 0);
  nbd_close (h);
  if (r < 0)
    sc_cli_error ("mount %s: %s", name, err);
  return r;
}

/* With a control socket, a missing snapshot, or a checkpoint (which
 * keeps no data to mount), is named clearly; *rw: it is a writable
 * clone.  0, or -1 (said). */
static int
check_snapshot (const char *socket, const char *name, bool *rw,
                char uuid[37])
{
  struct shadowcopy *c;
  struct shadowcopy_snapshot *s;
  size_t n;
  bool found = false, checkpoint = false;

  if (shadowcopy_connect (socket, &c) < 0)
    goto said;
  if (shadowcopy_list (c, &s, &n) < 0) {
    shadowcopy_close (c);
    goto said;
  }
  for (size_t k = 0; k < n; k++)
    if (strcmp (s[k].name, name) == 0) {
      found = true;
      checkpoint = sc_cli_is_checkpoint (&s[k]);
      *rw = strcmp (s[k].type, "clone") == 0;
      snprintf (uuid, 37, "%s", s[k].uuid);
    }
  free (s);
  shadowcopy_close (c);
  if (!found) {
    sc_cli_error ("no such snapshot: %s", name);
    return -1;
  }
  if (checkpoint) {
    sc_cli_error ("%s is a checkpoint: it keeps no data; mount a snapshot",
                  name);
    return -1;
  }
  return 0;

 said:
  sc_cli_lib_error ();
  return -1;
}

/* Mount DEV read-only on absdir, and record it: without replaying a
 * journal, or with --recover (DEV is then a clone's, writable) mounted
 * read-write first so that the kernel replays it, then remounted
 * read-only.  0, or -1 (said; what is mounted is recorded). */
static int
mount_device (const struct mount_args *m, char *dev, char *absdir,
              const char *statefile)
{
  char fstype[64] = "", mopts[1024];
  /* -p: probe the device itself.  Plain blkid believes its cache
   * (blkid.tab) about a device probed less than 2 s before, so a loop
   * device just detached by another mount and attached again here would
   * get the type of what it held then (ext4 for an XFS clone, say). */
  char *bargv[] = { "blkid", "-p", "-o", "value", "-s", "TYPE", dev, NULL };
  int r;

  sc_mount_run (bargv, fstype, sizeof fstype, NULL, 0);
  if (!m->type && !fstype[0]) {
    sc_cli_error ("%s: blkid -p finds no filesystem type on it (none, or "
                  "two signatures); give it with -t TYPE", dev);
    return -1;
  }
  const char *t = m->type ? m->type : fstype;
  bool journal = strcmp (t, "ext3") == 0 || strcmp (t, "ext4") == 0;
  bool xfs = strcmp (t, "xfs") == 0;
  /* XFS refuses a second filesystem with the UUID of one mounted: the
   * live volume's, here as often as not. */
  if (m->recover)
    snprintf (mopts, sizeof mopts, "rw%s%s%s", xfs ? ",nouuid" : "",
              m->opts ? "," : "", m->opts ? m->opts : "");
  else
    snprintf (mopts, sizeof mopts, "%s%s%s%s%s", m->rw ? "rw" : "ro",
              m->rw ? "" : journal ? ",noload" : xfs ? ",norecovery" : "",
              xfs ? ",nouuid" : "", m->opts ? "," : "",
              m->opts ? m->opts : "");
  char *margv[] = { "mount", "-o", mopts, "-t", (char *) t, dev, absdir,
                    NULL };
  char *uargv[] = { "umount", absdir, NULL };
  r = sc_mount_run_or_say (margv, NULL, 0);
  if (r == 0)
    r = record_or_undo (statefile, "mount", absdir, uargv);
  if (r == 0 && m->recover) {
    char *rargv[] = { "mount", "-o", "remount,ro", absdir, NULL };
    r = sc_mount_run_or_say (rargv, NULL, 0);
  }
  return r;
}

int
sc_cmd_mount (const struct sc_cli_target *target, int argc, char **argv)
{
  char buf[4096];
  const char *socket = sc_cli_target_socket (target, buf, sizeof buf);
  struct mount_args m = { NULL };
  char absdir[PATH_MAX], absnbd[PATH_MAX];
  char found[PATH_MAX];
  int status = parse_mount_args (argc, argv, &m);

  if (status == 0 && !m.nbd && !m.nbd_uri && !socket)
    status = sc_cli_usage_error ("mount: give the server's NBD socket with "
                                 "--nbd-socket (nbdkit -U SOCKET) or its URI "
                                 "with --nbd-uri (nbds://HOST:PORT...), or "
                                 "its control socket with -c");
  if (status != 0)
    return status;
  /* Neither --nbd-socket nor --nbd-uri: where the server says it listens
   * (INFO). */
  if (!m.nbd && !m.nbd_uri) {
    if (sc_nbd_listen_socket (socket, found, sizeof found) != EXIT_SUCCESS)
      return EXIT_FAILURE;
    m.nbd = found;
  }
  if (!realpath (m.dir, absdir)) {
    sc_cli_error ("%s: %s", m.dir, strerror (errno));
    return EXIT_FAILURE;
  }
  if (m.nbd && !realpath (m.nbd, absnbd)) {
    sc_cli_error ("%s: %s", m.nbd, strerror (errno));
    return EXIT_FAILURE;
  }
  struct sc_nbd_target nbd = m.nbd_uri
    ? (struct sc_nbd_target) { .uri = m.nbd_uri }
    : (struct sc_nbd_target) { .socket = absnbd };
  if (m.recover && !socket) {
    sc_cli_error ("mount --recover needs the server's control socket (-c "
                  "SOCKET, or --diff DIFFAREA of a running server): it "
                  "makes a clone to replay the journal on");
    return EXIT_FAILURE;
  }
  char uuid[37] = "";
  if (socket && check_snapshot (socket, m.name, &m.rw, uuid) < 0)
    return EXIT_FAILURE;
  if (socket && uuid[0] && check_export (&nbd, m.name, uuid) < 0)
    return EXIT_FAILURE;
  if (!socket)
    m.rw = export_writable (&nbd, m.name);
  if (m.recover && m.rw) {
    sc_cli_error ("%s is a writable clone: mount it without --recover (it "
                  "is mounted read-write, and its journal replayed in it)",
                  m.name);
    return EXIT_FAILURE;
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
  if (state_add (statefile, "dir", absdir, "") < 0) {
    unlink (statefile);
    return EXIT_FAILURE;
  }

  char dev[PATH_MAX] = "", clone[SC_NAME_MAX + 1];
  const char *export = m.name;
  int r = 0;
  if (m.recover) {
    r = sc_mount_recover_clone (socket, m.name, clone, sizeof clone);
    if (r == 0 && state_add (statefile, "clone", clone, socket) < 0) {
      sc_mount_recover_delete (socket, clone);
      r = -1;
    }
    export = clone;
    m.rw = true;
  }
  if (r == 0)
    r = !m.nbd_uri && have_kernel_nbd ()
      ? attach_nbd (absnbd, export, m.rw, statefile, dev, sizeof dev)
      : attach_fuse (&nbd, export, m.rw, statefile, dev, sizeof dev);
  if (r == 0)
    r = mount_device (&m, dev, absdir, statefile);
  if (r < 0) {
    teardown (statefile);
    return EXIT_FAILURE;
  }
  printf ("%s\n", dev);
  return EXIT_SUCCESS;
}

int
sc_cmd_umount (const struct sc_cli_target *t, int argc, char **argv)
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
