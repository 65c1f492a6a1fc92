/* shadowcopy: the options of a snapshot creation (create-options.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/create-options.h"
#include "tools/writers.h"

/* The creation slot (BEGIN) must cover prepare and the window, each at
 * most freeze_ms, and the server keeps it at most 1 h. */
#define FREEZE_MS_MAX 1200000
#define HOLD_MS_MAX 60000
#define SECONDS_MAX 86400

int
sc_create_options_init (struct sc_create_options *o, const char *verb,
                        int argc)
{
  memset (o, 0, sizeof *o);
  o->verb = verb;
  o->seq.freeze_ms = 60000;
  o->seq.hold_ms = 10000;
  o->seq.retry_delay_ms = 5000;
  o->writer_cmds = calloc ((size_t) argc + 1, sizeof *o->writer_cmds);
  if (!o->writer_cmds) {
    sc_cli_error ("%s", strerror (ENOMEM));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* 0, or SC_EXIT_USAGE (said) unless S is a number of seconds in
 * (0, SECONDS_MAX] giving at most max_ms. */
static int
parse_seconds (const struct sc_create_options *o, const char *opt,
               const char *s, uint64_t max_ms, uint64_t *ms)
{
  char *end;
  errno = 0;
  double d = strtod (s, &end);
  if (errno || end == s || *end || !(d > 0) || d > SECONDS_MAX) {
    sc_cli_error ("%s: %s wants a number of seconds > 0: %s", o->verb, opt,
                  s);
    return SC_EXIT_USAGE;
  }
  *ms = (uint64_t) (d * 1000 + 0.5);
  if (*ms == 0)
    *ms = 1;
  if (*ms > max_ms) {
    sc_cli_error ("%s: %s is at most %" PRIu64 " s", o->verb, opt,
                  max_ms / 1000);
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

int
sc_create_options_volume (struct sc_create_options *o, const char *socket)
{
  struct sc_create *cr = &o->seq;

  if (cr->nvols == SC_CREATE_VOLUMES_MAX)
    return sc_cli_usage_error ("%s: at most %d volumes", o->verb,
                               SC_CREATE_VOLUMES_MAX);
  cr->vols[cr->nvols++].socket = socket;
  return EXIT_SUCCESS;
}

/* Option `a` (takes_value) with its value: 0, or SC_EXIT_USAGE (said). */
static int
set_valued_option (struct sc_create_options *o, const char *a,
                   const char *val)
{
  struct sc_create *cr = &o->seq;

  if (strcmp (a, "-c") == 0 || strcmp (a, "--control") == 0)
    return sc_create_options_volume (o, val);
  else if (strcmp (a, "--writer") == 0)
    o->writer_cmds[o->nwriter_cmds++] = (char *) val;
  else if (strcmp (a, "--writers-dir") == 0)
    o->writers_dir = val;
  else if (strcmp (a, "--run") == 0)
    o->run = val;
  else if (strcmp (a, "--retry") == 0) {
    if (sc_cli_parse_u64 (val, &cr->retries) < 0 || cr->retries > 100) {
      sc_cli_error ("%s: --retry wants a count 0..100: %s", o->verb, val);
      return SC_EXIT_USAGE;
    }
  }
  else if (strcmp (a, "--freeze-timeout") == 0)
    return parse_seconds (o, a, val, FREEZE_MS_MAX, &cr->freeze_ms);
  else if (strcmp (a, "--hold-timeout") == 0)
    return parse_seconds (o, a, val, HOLD_MS_MAX, &cr->hold_ms);
  else if (strcmp (a, "--retry-delay") == 0)
    return parse_seconds (o, a, val, SECONDS_MAX * 1000, &cr->retry_delay_ms);
  return 0;
}

static bool
set_flag (struct sc_create_options *o, const char *a)
{
  if (strcmp (a, "--no-writers") == 0)
    o->no_writers = true;
  else if (strcmp (a, "--wait") == 0)
    o->seq.wait = true;
  else if (strcmp (a, "--auto-release") == 0)
    o->seq.auto_release = true;
  else if (strcmp (a, "--delete-oldest") == 0)
    o->seq.delete_oldest = true;
  else
    return false;
  return true;
}

int
sc_create_option (struct sc_create_options *o, int argc, char **argv,
                  int *i)
{
  const char *a = argv[*i];

  if (set_flag (o, a))
    return EXIT_SUCCESS;
  if (!takes_value (a))
    return -1;
  if (*i + 1 == argc)
    return sc_cli_usage_error ("%s: %s needs an argument", o->verb, a);
  return set_valued_option (o, a, argv[++*i]);
}

int
sc_create_options_check (const struct sc_create_options *o)
{
  if (o->seq.nvols == 0)
    return sc_cli_usage_error ("%s: say which volume: -c SOCKET (the "
                               "server's control socket) or --diff "
                               "DIFFAREA (the diff-area file, diff=)",
                               o->verb);
  if (o->no_writers && (o->nwriter_cmds || o->writers_dir))
    return sc_cli_usage_error ("%s: --no-writers with --writer or "
                               "--writers-dir", o->verb);
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

void
sc_create_signals_default (void)
{
  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGHUP, SIG_DFL);
}

/* Each --writer, then the writers directory.  On failure: said. */
static int
collect_writers (struct sc_create_options *o)
{
  const char *dir = o->writers_dir;
  char err[2048];

  if (o->no_writers)
    return EXIT_SUCCESS;
  if (sc_writers_collect (o->writer_cmds, o->nwriter_cmds,
                          dir ? dir : SC_WRITERS_DIR_DEFAULT, !dir,
                          &o->seq.writers, &o->seq.nwriters, err,
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

  int r = sc_uuid_random (id);
  if (r < 0) {
    sc_cli_error ("cannot make a set id: %s", strerror (-r));
    return EXIT_FAILURE;
  }
  sc_uuid_format (id, cr->set_id);

  for (size_t k = 0; k < cr->nvols; k++)
    lv += strlen (cr->vols[k].socket) + 1;
  cr->volumes = calloc (1, lv + 1);
  cr->snapshots = calloc (1, lv + cr->nvols * (SC_NAME_MAX + 2) + 1);
  if (!cr->volumes || !cr->snapshots)
    return EXIT_FAILURE;
  return EXIT_SUCCESS;
}

int
sc_create_options_start (struct sc_create_options *o)
{
  int status = collect_writers (o);

  if (status != EXIT_SUCCESS)
    return status;
  catch_signals ();
  return prepare_set (&o->seq);
}

void
sc_create_options_free (struct sc_create_options *o)
{
  sc_create_close (&o->seq);
  sc_writers_free (o->seq.writers, o->seq.nwriters);
  o->seq.writers = NULL;
  o->seq.nwriters = 0;
  free (o->seq.volumes);
  free (o->seq.snapshots);
  free (o->writer_cmds);
  o->seq.volumes = o->seq.snapshots = NULL;
  o->writer_cmds = NULL;
}
