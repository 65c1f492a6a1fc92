/* shadowcopy serve: one volume served as its configuration file says,
 * the ExecStart of shadowcopy@.service.
 *
 *   shadowcopy serve VOLUME [--config FILE] [--dry-run]
 *
 * Reads SYSCONFDIR/shadowcopy/VOLUME.conf (tools/volume-conf.h), checks
 * what can be checked before anything is written or created (the disk
 * exists, the diff area's directory exists; the plugin's own keys are
 * checked by the plugin, before it opens anything), makes the sockets'
 * directory, removes a stale NBD socket (only when a connect() to it is
 * refused: nobody listens), and becomes
 *
 *   nbdkit --foreground -U PATH | -i HOST -p PORT [--tls=...]
 *          [--tls-certificates=DIR] [--tls-psk=FILE] shadowcopy config=FILE
 *          [control=RUNDIR/VOLUME.ctl] [listen=unix:RUNDIR/VOLUME.nbd]
 *
 * so that systemd watches nbdkit itself.  nbdkit is found in PATH
 * ($SHADOWCOPY_NBDKIT overrides it) and the plugin by its name
 * ($SHADOWCOPY_PLUGIN: a path to the .so, for tests).  --dry-run prints
 * the command and does nothing.  control= and listen= are added when
 * the file has none: their defaults (volume-conf.h) are where --volume,
 * status and the snapshot unit look.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/volume-conf.h"

#define ARGS_MAX 16

struct serve_args {
  const char *volume, *config;
  bool dry_run;
};

static int
parse_serve_args (int argc, char **argv, struct serve_args *a)
{
  for (int i = 0; i < argc; i++) {
    if (strcmp (argv[i], "--dry-run") == 0)
      a->dry_run = true;
    else if (strcmp (argv[i], "--config") == 0) {
      if (i + 1 == argc)
        return sc_cli_usage_error ("serve: --config needs a FILE");
      a->config = argv[++i];
    }
    else if (argv[i][0] == '-')
      return sc_cli_usage_error ("serve: unknown option '%s'", argv[i]);
    else if (a->volume)
      return sc_cli_usage_error ("serve takes one VOLUME");
    else
      a->volume = argv[i];
  }
  if (!a->volume)
    return sc_cli_usage_error ("serve needs a VOLUME (its file: %s/"
                               "VOLUME.conf)", sc_volume_conf_dir ());
  return EXIT_SUCCESS;
}

static bool
is_nbd_uri (const char *s)
{
  return strncmp (s, "nbd://", 6) == 0 || strncmp (s, "nbds://", 7) == 0 ||
         strncmp (s, "nbd+unix://", 11) == 0 ||
         strncmp (s, "nbds+unix://", 12) == 0;
}

/* What must be there before nbdkit starts: EXIT_SUCCESS, or
 * EXIT_FAILURE (said). */
static int
check_paths (const struct sc_volume_conf *vc)
{
  struct stat st;

  if (!is_nbd_uri (vc->disk) && stat (vc->disk, &st) == -1) {
    sc_cli_error ("volume %s: disk %s: %s", vc->name, vc->disk,
                  strerror (errno));
    return EXIT_FAILURE;
  }
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s", vc->diff);
  char *slash = strrchr (dir, '/');
  if (slash) {
    slash[slash == dir] = '\0';         /* "/x" -> "/" */
    const char *why = stat (dir, &st) == -1 ? strerror (errno)
                      : !S_ISDIR (st.st_mode) ? "not a directory" : NULL;
    if (why) {
      sc_cli_error ("volume %s: diff %s: its directory %s: %s", vc->name,
                    vc->diff, dir, why);
      return EXIT_FAILURE;
    }
  }
  return EXIT_SUCCESS;
}

/* The directory of a socket path, made when missing (one level: the
 * runtime directory, /run/shadowcopy). */
static int
make_socket_dir (const struct sc_volume_conf *vc, const char *sock)
{
  char dir[PATH_MAX];

  snprintf (dir, sizeof dir, "%s", sock);
  char *slash = strrchr (dir, '/');
  if (!slash || slash == dir)
    return EXIT_SUCCESS;
  *slash = '\0';
  if (mkdir (dir, 0755) == -1 && errno != EEXIST) {
    sc_cli_error ("volume %s: %s: %s", vc->name, dir, strerror (errno));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* A socket left at `path` by a server that is gone is removed; a live
 * one (or anything else there) is an error.  EXIT_SUCCESS, or
 * EXIT_FAILURE (said). */
static int
remove_stale_socket (const struct sc_volume_conf *vc, const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct stat st;

  if (lstat (path, &st) == -1)
    return EXIT_SUCCESS;
  if (!S_ISSOCK (st.st_mode)) {
    sc_cli_error ("volume %s: %s exists and is not a socket: remove it or "
                  "change listen=", vc->name, path);
    return EXIT_FAILURE;
  }
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    sc_cli_error ("socket: %s", strerror (errno));
    return EXIT_FAILURE;
  }
  int r = connect (fd, (struct sockaddr *) &sa, sizeof sa);
  int e = errno;
  close (fd);
  if (r == 0) {
    sc_cli_error ("volume %s: a server already listens on %s", vc->name,
                  path);
    return EXIT_FAILURE;
  }
  if (e != ECONNREFUSED) {
    sc_cli_error ("volume %s: %s: %s (not removed)", vc->name, path,
                  strerror (e));
    return EXIT_FAILURE;
  }
  if (unlink (path) == -1 && errno != ENOENT) {
    sc_cli_error ("volume %s: removing the stale socket %s: %s", vc->name,
                  path, strerror (errno));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* One argument as a shell would need it, for --dry-run. */
static void
print_quoted (const char *s)
{
  if (*s && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789@%+=:,./_-") == strlen (s)) {
    fputs (s, stdout);
    return;
  }
  putchar ('\'');
  for (; *s; s++)
    if (*s == '\'')
      fputs ("'\\''", stdout);
    else
      putchar (*s);
  putchar ('\'');
}

int
sc_cmd_serve (const struct sc_cli_target *t, int argc, char **argv)
{
  struct serve_args a = { NULL };
  struct sc_volume_conf vc;
  char err[8192], conf[PATH_MAX], port[16];
  char tls[32], certs[PATH_MAX + 32], psk[PATH_MAX + 32], config[PATH_MAX + 8];
  char control[sizeof vc.control + 16], listen[sizeof vc.listen.path + 16];
  const char *args[ARGS_MAX];
  size_t n = 0;
  int st = parse_serve_args (argc, argv, &a);

  if (st != EXIT_SUCCESS)
    return st;
  if (t->socket || t->diff)
    return sc_cli_usage_error ("serve names its volume itself: no -c or "
                               "--diff");
  if (sc_volume_conf_load (a.volume, a.config, &vc, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return EXIT_FAILURE;
  }
  st = check_paths (&vc);
  if (st == EXIT_SUCCESS && !realpath (vc.path, conf)) {
    sc_cli_error ("volume %s: %s: %s", vc.name, vc.path, strerror (errno));
    st = EXIT_FAILURE;
  }
  if (st != EXIT_SUCCESS)
    goto out;

  const char *nbdkit = getenv ("SHADOWCOPY_NBDKIT");
  const char *plugin = getenv ("SHADOWCOPY_PLUGIN");
  args[n++] = nbdkit && *nbdkit ? nbdkit : "nbdkit";
  args[n++] = "--foreground";
  if (vc.listen.kind == SC_LISTEN_UNIX) {
    args[n++] = "-U";
    args[n++] = vc.listen.path;
  }
  else {
    snprintf (port, sizeof port, "%u", vc.listen.port);
    args[n++] = "-i";
    args[n++] = vc.listen.host;
    args[n++] = "-p";
    args[n++] = port;
  }
  snprintf (tls, sizeof tls, "--tls=%s", vc.tls);
  args[n++] = tls;
  if (vc.tls_certificates) {
    snprintf (certs, sizeof certs, "--tls-certificates=%s",
              vc.tls_certificates);
    args[n++] = certs;
  }
  if (vc.tls_psk) {
    snprintf (psk, sizeof psk, "--tls-psk=%s", vc.tls_psk);
    args[n++] = psk;
  }
  args[n++] = plugin && *plugin ? plugin : "shadowcopy";
  snprintf (config, sizeof config, "config=%s", conf);
  args[n++] = config;
  /* The defaults the CLI finds the volume by (--volume, status, the
   * snapshot unit: sc_volume_conf_load) are told to the plugin, whose
   * own default control socket would be DIFF.sock.  Only when the file
   * has no such key: a key twice is refused. */
  if (vc.control_default) {
    snprintf (control, sizeof control, "control=%s", vc.control);
    args[n++] = control;
  }
  if (vc.listen_default) {
    snprintf (listen, sizeof listen, "listen=unix:%s", vc.listen.path);
    args[n++] = listen;
  }
  args[n] = NULL;

  if (a.dry_run) {
    for (size_t i = 0; i < n; i++) {
      if (i)
        putchar (' ');
      print_quoted (args[i]);
    }
    putchar ('\n');
    goto out;
  }
  if (vc.listen.kind == SC_LISTEN_UNIX &&
      ((st = make_socket_dir (&vc, vc.listen.path)) != EXIT_SUCCESS ||
       (st = remove_stale_socket (&vc, vc.listen.path)) != EXIT_SUCCESS))
    goto out;
  if ((st = make_socket_dir (&vc, vc.control)) != EXIT_SUCCESS)
    goto out;
  fflush (stdout);
  execvp (args[0], (char *const *) args);
  sc_cli_error ("volume %s: cannot run %s: %s", vc.name, args[0],
                strerror (errno));
  st = EXIT_FAILURE;

 out:
  sc_volume_conf_free (&vc);
  return st;
}
