/* shadowcopy create: a snapshot, or a snapshot set across volumes, taken
 * while the writers are frozen.
 *
 *   shadowcopy [-c SOCK] create [-c SOCK]... [--writer CMD]...
 *       [--writers-dir DIR] [--no-writers] [--freeze-timeout S]
 *       [--hold-timeout S] [--retry N] [--retry-delay S] [--wait]
 *       [--auto-release] [--delete-oldest] [--run COMMAND]
 *       [--auto-recover --nbd-socket NBDSOCK] [NAME]
 *
 * The sequence itself, VSS phase by phase, is create-sequence.c, and
 * the options (shared with backup --create) create-options.c; this file
 * is the verb around them: the NAME, and --run or the wait of an
 * auto-release snapshot after.
 *
 * Auto-release snapshots live as long as the control connections that
 * made them: with --run the command runs (with SHADOWCOPY_* in its
 * environment) and the snapshots go when it exits; without, the CLI stays
 * in the foreground until SIGINT, SIGTERM or SIGHUP.
 *
 * --auto-recover (VSS's auto-recovery, for a crash-consistent snapshot
 * taken without a writer's freeze): the snapshot is cloned as
 * NAME.recovered and the clone's filesystem journal replayed
 * (mount-recover.c), so that NAME.recovered mounts, and is read, as the
 * filesystem would be after a reboot.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "lib/client.h"
#include "tools/commands.h"
#include "tools/create-options.h"
#include "tools/create-sequence.h"
#include "tools/mount-recover.h"
#include "tools/nbd-listen.h"
#include "tools/writers.h"

/* create's own options. */
struct create_args {
  bool auto_recover;
  const char *nbd;              /* --nbd-socket (--auto-recover) */
  char found[128];              /* or the one the server told (INFO) */
};

/* --auto-recover's checks, once every option is in: EXIT_SUCCESS or
 * SC_EXIT_USAGE (said). */
static int
check_recover (const struct sc_create_options *o, struct create_args *a)
{
  if (!a->auto_recover)
    return a->nbd ? sc_cli_usage_error ("create: --nbd-socket is for "
                                        "--auto-recover") : EXIT_SUCCESS;
  if (!a->nbd)
    a->nbd = getenv ("SHADOWCOPY_NBD_SOCKET");
  if (a->nbd && !*a->nbd)
    a->nbd = NULL;              /* asked of the server (INFO) */
  if (o->seq.nvols != 1)
    return sc_cli_usage_error ("create --auto-recover takes one volume");
  if (o->seq.auto_release)
    return sc_cli_usage_error ("create --auto-recover keeps a clone of the "
                               "snapshot: not with --auto-release");
  return EXIT_SUCCESS;
}

/* The options, and the NAME.  Touches nothing: on failure, the exit
 * status with the error said. */
static int
parse_args (struct sc_create_options *o, struct create_args *a,
            const struct sc_cli_target *target, const char *global_socket,
            int argc, char **argv)
{
  struct sc_create *cr = &o->seq;
  int i, status;

  if (global_socket)
    cr->vols[cr->nvols++].socket = global_socket;
  for (size_t k = 0; k < target->nmore_sockets; k++)
    if ((status = sc_create_options_volume (o, target->more_sockets[k]))
        != EXIT_SUCCESS)
      return status;
  for (i = 0; i < argc && !sc_cli_options_end (argv, &i); i++) {
    if (strcmp (argv[i], "--auto-recover") == 0) {
      a->auto_recover = true;
      continue;
    }
    if (strcmp (argv[i], "--nbd-socket") == 0) {
      if (i + 1 == argc)
        return sc_cli_usage_error ("create: --nbd-socket needs an argument");
      a->nbd = argv[++i];
      continue;
    }
    status = sc_create_option (o, argc, argv, &i);
    if (status < 0)
      return sc_cli_usage_error ("create: unknown option '%s'", argv[i]);
    if (status != EXIT_SUCCESS)
      return status;
  }
  if (argc - i > 1)
    return sc_cli_usage_error ("create takes at most one NAME");
  status = sc_create_options_check (o);
  if (status == EXIT_SUCCESS)
    status = check_recover (o, a);
  if (status != EXIT_SUCCESS)
    return status;
  if (argc - i == 1) {
    if (!sc_cli_name_ok (argv[i]))
      return EXIT_FAILURE;
    snprintf (cr->name, sizeof cr->name, "%s", argv[i]);
    cr->have_name = true;
  }
  return EXIT_SUCCESS;
}

/* ---- the attempts, and after ----------------------------------------- */

/* identify, the attempts, the writers' results recorded; then the name
 * (and the set) printed.  On failure: said. */
static int
take_snapshots (struct sc_create *cr)
{
  char err[2048];
  int status;

  sc_create_identify (cr);
  status = sc_create_attempts (cr);
  if (cr->nwriters && sc_writers_save (cr->writers, cr->nwriters, err,
                                       sizeof err) < 0)
    sc_cli_error ("warning: cannot record the writers' results: %s", err);
  if (status != EXIT_SUCCESS)
    return status;
  printf ("%s\n", cr->vols[0].snap.name);
  if (cr->nvols > 1)
    printf ("set %s\n", cr->set_id);
  fflush (stdout);
  return EXIT_SUCCESS;
}

static int
run_command (const struct sc_create *cr, const char *cmd)
{
  pid_t pid = fork ();
  int status;

  if (pid < 0) {
    sc_cli_error ("--run: fork: %s", strerror (errno));
    return -1;
  }
  if (pid == 0) {
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    signal (SIGPIPE, SIG_DFL);
    setenv ("SHADOWCOPY_SET_ID", cr->set_id, 1);
    setenv ("SHADOWCOPY_SNAPSHOT", cr->name, 1);
    setenv ("SHADOWCOPY_SNAPSHOTS", cr->snapshots, 1);
    setenv ("SHADOWCOPY_VOLUMES", cr->volumes, 1);
    execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
    _exit (127);
  }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

/* --run: the command, then backup-complete to the writers if it
 * succeeded.  A failing command's status is ours. */
static int
run_and_complete (struct sc_create_options *c)
{
  struct sc_create *cr = &c->seq;
  char msg[2048], err[2048];
  int rc = run_command (cr, c->run);

  if (rc != 0) {
    sc_cli_error ("--run: the command exited with status %d", rc);
    return rc > 0 && rc < 256 ? rc : EXIT_FAILURE;
  }
  cr->backup_result = "success";
  if (sc_create_writers_phase (cr, "backup-complete", true, msg,
                               sizeof msg) < 0)
    sc_cli_error ("warning: %s", msg);
  if (cr->nwriters)
    sc_writers_save (cr->writers, cr->nwriters, err, sizeof err);
  return EXIT_SUCCESS;
}

/* Without --run, auto-release snapshots are kept until a signal, or
 * until a server goes away (its snapshot went with the session): then
 * EXIT_FAILURE. */
static int
hold_auto_release (struct sc_create *cr)
{
  struct pollfd p[SC_CREATE_VOLUMES_MAX];

  sc_cli_error ("auto-release snapshot %s: kept until this process ends "
                "(SIGINT, SIGTERM or SIGHUP)", cr->vols[0].snap.name);
  for (size_t k = 0; k < cr->nvols; k++)
    p[k] = (struct pollfd) { .fd = sc_client_fd (cr->vols[k].c),
                             .events = POLLIN };
  while (!sc_interrupted) {
    int k = poll (p, cr->nvols, -1);
    if (k < 0 && errno != EINTR)
      break;
    if (k > 0) {
      for (size_t j = 0; j < cr->nvols; j++)
        if (p[j].revents)
          sc_cli_error ("%s: the server closed the connection: the "
                        "auto-release snapshot is gone", cr->vols[j].socket);
      return EXIT_FAILURE;
    }
  }
  return EXIT_SUCCESS;
}

int
sc_cmd_create (const struct sc_cli_target *target, int argc, char **argv)
{
  struct sc_create_options c;
  struct create_args a = { .auto_recover = false };
  char buf[4096], clone[SC_NAME_MAX + 1];
  int status;

  if (sc_create_options_init (&c, "create", argc) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  status = parse_args (&c, &a, target,
                       sc_cli_target_socket (target, buf, sizeof buf),
                       argc, argv);
  /* --auto-recover without --nbd-socket: where the server says it
   * listens, asked before anything is created. */
  if (status == EXIT_SUCCESS && a.auto_recover && !a.nbd) {
    status = c.seq.nvols == 1 && c.seq.vols[0].socket
             ? sc_nbd_listen_socket (c.seq.vols[0].socket, a.found,
                                     sizeof a.found)
             : sc_cli_usage_error ("create --auto-recover needs the server's "
                                   "NBD socket: --nbd-socket NBDSOCK");
    a.nbd = a.found;
  }
  if (status == EXIT_SUCCESS)
    status = sc_create_options_start (&c);
  if (status == EXIT_SUCCESS)
    status = take_snapshots (&c.seq);
  if (status == EXIT_SUCCESS && a.auto_recover) {
    if (sc_recover_kept_clone (c.seq.vols[0].socket, a.nbd,
                               c.seq.vols[0].snap.name, clone,
                               sizeof clone) < 0)
      status = EXIT_FAILURE;
    else
      printf ("recovered %s\n", clone);
  }
  if (status == EXIT_SUCCESS && c.run)
    status = run_and_complete (&c);
  else if (status == EXIT_SUCCESS && c.seq.auto_release)
    status = hold_auto_release (&c.seq);
  sc_create_options_free (&c);
  return status;
}
