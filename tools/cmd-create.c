/* shadowcopy create: a snapshot, or a snapshot set across volumes, taken
 * while the writers are frozen.
 *
 *   shadowcopy [-c SOCK] create [-c SOCK]... [--writer CMD]...
 *       [--writers-dir DIR] [--no-writers] [--freeze-timeout S]
 *       [--hold-timeout S] [--retry N] [--retry-delay S] [--wait]
 *       [--auto-release] [--delete-oldest] [--run COMMAND] [NAME]
 *
 * The sequence itself, VSS phase by phase, is create-sequence.c; this
 * file is the verb around it: its options, the writers and the set id
 * before the attempts, and --run or the wait of an auto-release
 * snapshot after.
 *
 * Auto-release snapshots live as long as the control connections that
 * made them: with --run the command runs (with SHADOWCOPY_* in its
 * environment) and the snapshots go when it exits; without, the CLI stays
 * in the foreground until SIGINT, SIGTERM or SIGHUP.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/create-sequence.h"
#include "tools/writers.h"

/* The creation slot (BEGIN) must cover prepare and the window, each at
 * most freeze_ms, and the server keeps it at most 1 h. */
#define FREEZE_MS_MAX 1200000
#define HOLD_MS_MAX 60000
#define SECONDS_MAX 86400

/* The sequence's parameters, and the options only the verb reads. */
struct create {
  struct sc_create seq;
  char **writer_cmds;           /* each --writer, in order */
  size_t nwriter_cmds;
  const char *writers_dir;
  bool no_writers;
  const char *run;
};

/* ---- options --------------------------------------------------------- */

/* 0, or SC_EXIT_USAGE (said) unless S is a number of seconds in
 * (0, SECONDS_MAX] giving at most max_ms. */
static int
parse_seconds (const char *opt, const char *s, uint64_t max_ms, uint64_t *ms)
{
  char *end;
  errno = 0;
  double d = strtod (s, &end);
  if (errno || end == s || *end || !(d > 0) || d > SECONDS_MAX) {
    sc_cli_error ("create: %s wants a number of seconds > 0: %s", opt, s);
    return SC_EXIT_USAGE;
  }
  *ms = (uint64_t) (d * 1000 + 0.5);
  if (*ms == 0)
    *ms = 1;
  if (*ms > max_ms) {
    sc_cli_error ("create: %s is at most %" PRIu64 " s", opt, max_ms / 1000);
    return SC_EXIT_USAGE;
  }
  return 0;
}

static bool
takes_value (const char *a)
{
  static const char *const valued[] = {
    "-c", "--control", "--writer", "--writers-dir", "--freeze-timeout",
    "--hold-timeout", "--retry", "--retry-delay", "--run",
  };

  for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
    if (strcmp (a, valued[i]) == 0)
      return true;
  return false;
}

/* Option `a` (takes_value) with its value: 0, or SC_EXIT_USAGE (said). */
static int
set_valued_option (struct create *c, const char *a, const char *val)
{
  struct sc_create *cr = &c->seq;

  if (strcmp (a, "-c") == 0 || strcmp (a, "--control") == 0) {
    if (cr->nvols == SC_CREATE_VOLUMES_MAX)
      return sc_cli_usage_error ("create: at most %d volumes",
                                 SC_CREATE_VOLUMES_MAX);
    cr->vols[cr->nvols++].socket = val;
  }
  else if (strcmp (a, "--writer") == 0)
    c->writer_cmds[c->nwriter_cmds++] = (char *) val;
  else if (strcmp (a, "--writers-dir") == 0)
    c->writers_dir = val;
  else if (strcmp (a, "--run") == 0)
    c->run = val;
  else if (strcmp (a, "--retry") == 0) {
    if (sc_ctl_parse_u64 (val, &cr->retries) < 0 || cr->retries > 100) {
      sc_cli_error ("create: --retry wants a count 0..100: %s", val);
      return SC_EXIT_USAGE;
    }
  }
  else if (strcmp (a, "--freeze-timeout") == 0)
    return parse_seconds (a, val, FREEZE_MS_MAX, &cr->freeze_ms);
  else if (strcmp (a, "--hold-timeout") == 0)
    return parse_seconds (a, val, HOLD_MS_MAX, &cr->hold_ms);
  else if (strcmp (a, "--retry-delay") == 0)
    return parse_seconds (a, val, SECONDS_MAX * 1000, &cr->retry_delay_ms);
  return 0;
}

static bool
set_flag (struct create *c, const char *a)
{
  if (strcmp (a, "--no-writers") == 0)
    c->no_writers = true;
  else if (strcmp (a, "--wait") == 0)
    c->seq.wait = true;
  else if (strcmp (a, "--auto-release") == 0)
    c->seq.auto_release = true;
  else if (strcmp (a, "--delete-oldest") == 0)
    c->seq.delete_oldest = true;
  else
    return false;
  return true;
}

/* The options and the NAME.  Touches nothing: on failure, the exit
 * status with the error said. */
static int
parse_args (struct create *c, const char *global_socket, int argc,
            char **argv)
{
  struct sc_create *cr = &c->seq;
  int i, status;

  if (global_socket)
    cr->vols[cr->nvols++].socket = global_socket;
  for (i = 0; i < argc && !sc_cli_options_end (argv, &i); i++) {
    const char *a = argv[i];
    if (set_flag (c, a))
      continue;
    if (!takes_value (a))
      return sc_cli_usage_error ("create: unknown option '%s'", a);
    if (i + 1 == argc)
      return sc_cli_usage_error ("create: %s needs an argument", a);
    status = set_valued_option (c, a, argv[++i]);
    if (status != EXIT_SUCCESS)
      return status;
  }
  if (argc - i > 1)
    return sc_cli_usage_error ("create takes at most one NAME");
  if (cr->nvols == 0)
    return sc_cli_usage_error ("create: say which volume: -c SOCKET");
  if (c->no_writers && (c->nwriter_cmds || c->writers_dir))
    return sc_cli_usage_error ("create: --no-writers with --writer or "
                               "--writers-dir");
  if (argc - i == 1) {
    if (!sc_cli_name_ok (argv[i]))
      return EXIT_FAILURE;
    snprintf (cr->name, sizeof cr->name, "%s", argv[i]);
    cr->have_name = true;
  }
  return EXIT_SUCCESS;
}

/* ---- before the attempts --------------------------------------------- */

static void
on_signal (int sig)
{
  (void) sig;
  sc_interrupted = 1;
}

/* SIGINT, SIGTERM and SIGHUP cut a writer phase short (writers.h) and
 * end the wait of an auto-release snapshot. */
static void
catch_signals (void)
{
  struct sigaction sa = { .sa_handler = on_signal };

  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

/* Each --writer, then the writers directory.  On failure: said. */
static int
collect_writers (struct create *c)
{
  const char *dir = c->writers_dir;
  char err[2048];

  if (c->no_writers)
    return EXIT_SUCCESS;
  if (sc_writers_collect (c->writer_cmds, c->nwriter_cmds,
                          dir ? dir : SC_WRITERS_DIR_DEFAULT, !dir,
                          &c->seq.writers, &c->seq.nwriters, err,
                          sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* The set id, and room for the SHADOWCOPY_* lists of one name on every
 * volume (the UTC time unless given), so writers know both before the
 * snapshot exists.  On failure: EXIT_FAILURE. */
static int
prepare_set (struct sc_create *cr)
{
  uint8_t id[16];
  size_t lv = 0;

  if (getrandom (id, sizeof id, 0) != sizeof id) {
    sc_cli_error ("cannot make a set id: %s", strerror (errno));
    return EXIT_FAILURE;
  }
  id[6] = (id[6] & 0x0f) | 0x40;  /* a version 4 UUID */
  id[8] = (id[8] & 0x3f) | 0x80;
  sc_uuid_format (id, cr->set_id);

  for (size_t k = 0; k < cr->nvols; k++)
    lv += strlen (cr->vols[k].socket) + 1;
  cr->volumes = calloc (1, lv + 1);
  cr->snapshots = calloc (1, lv + cr->nvols * (SC_NAME_MAX + 2) + 1);
  if (!cr->volumes || !cr->snapshots)
    return EXIT_FAILURE;
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
run_and_complete (struct create *c)
{
  struct sc_create *cr = &c->seq;
  char msg[2048], err[2048];
  int rc = run_command (cr, c->run);

  if (rc != 0) {
    sc_cli_error ("--run: the command exited with status %d", rc);
    return rc > 0 && rc < 256 ? rc : EXIT_FAILURE;
  }
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

static void
create_free (struct create *c)
{
  sc_create_close (&c->seq);
  sc_writers_free (c->seq.writers, c->seq.nwriters);
  free (c->seq.volumes);
  free (c->seq.snapshots);
  free (c->writer_cmds);
}

int
sc_cmd_create (const struct sc_cli_target *target, int argc, char **argv)
{
  struct create c = {
    .seq = { .freeze_ms = 60000, .hold_ms = 10000, .retry_delay_ms = 5000 },
  };
  char buf[4096];
  int status;

  c.writer_cmds = calloc (argc + 1, sizeof *c.writer_cmds);
  if (!c.writer_cmds)
    return EXIT_FAILURE;
  status = parse_args (&c, sc_cli_target_socket (target, buf, sizeof buf),
                       argc, argv);
  if (status == EXIT_SUCCESS)
    status = collect_writers (&c);
  if (status == EXIT_SUCCESS) {
    catch_signals ();
    status = prepare_set (&c.seq);
  }
  if (status == EXIT_SUCCESS)
    status = take_snapshots (&c.seq);
  if (status == EXIT_SUCCESS && c.run)
    status = run_and_complete (&c);
  else if (status == EXIT_SUCCESS && c.seq.auto_release)
    status = hold_auto_release (&c.seq);
  create_free (&c);
  return status;
}
