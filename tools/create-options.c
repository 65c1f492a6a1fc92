/* shadowcopy: the options of a snapshot creation (create-options.h), and
 * the library's snapshot set made from them. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/shadowcopy.h"
#include "tools/cli.h"
#include "tools/create-options.h"
#include "tools/writers-state.h"

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
  o->freeze_ms = 60000;
  o->hold_ms = 10000;
  o->retry_delay_ms = 5000;
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
  if (o->nvols == SHADOWCOPY_SET_VOLUMES_MAX)
    return sc_cli_usage_error ("%s: at most %d volumes", o->verb,
                               SHADOWCOPY_SET_VOLUMES_MAX);
  o->vols[o->nvols++] = socket;
  return EXIT_SUCCESS;
}

/* Option `a` (takes_value) with its value: 0, or SC_EXIT_USAGE (said). */
static int
set_valued_option (struct sc_create_options *o, const char *a,
                   const char *val)
{
  if (strcmp (a, "-c") == 0 || strcmp (a, "--control") == 0)
    return sc_create_options_volume (o, val);
  else if (strcmp (a, "--writer") == 0)
    o->writer_cmds[o->nwriter_cmds++] = (char *) val;
  else if (strcmp (a, "--writers-dir") == 0)
    o->writers_dir = val;
  else if (strcmp (a, "--run") == 0)
    o->run = val;
  else if (strcmp (a, "--retry") == 0) {
    if (sc_cli_parse_u64 (val, &o->retries) < 0 || o->retries > 100) {
      sc_cli_error ("%s: --retry wants a count 0..100: %s", o->verb, val);
      return SC_EXIT_USAGE;
    }
  }
  else if (strcmp (a, "--freeze-timeout") == 0)
    return parse_seconds (o, a, val, FREEZE_MS_MAX, &o->freeze_ms);
  else if (strcmp (a, "--hold-timeout") == 0)
    return parse_seconds (o, a, val, HOLD_MS_MAX, &o->hold_ms);
  else if (strcmp (a, "--retry-delay") == 0)
    return parse_seconds (o, a, val, SECONDS_MAX * 1000, &o->retry_delay_ms);
  return 0;
}

static bool
set_flag (struct sc_create_options *o, const char *a)
{
  if (strcmp (a, "--no-writers") == 0)
    o->no_writers = true;
  else if (strcmp (a, "--wait") == 0)
    o->wait = true;
  else if (strcmp (a, "--auto-release") == 0)
    o->auto_release = true;
  else if (strcmp (a, "--delete-oldest") == 0)
    o->delete_oldest = true;
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
  if (o->nvols == 0)
    return sc_cli_usage_error ("%s: say which volume: -c SOCKET (the "
                               "server's control socket) or --diff "
                               "DIFFAREA (the diff-area file, diff=)",
                               o->verb);
  if (o->no_writers && (o->nwriter_cmds || o->writers_dir))
    return sc_cli_usage_error ("%s: --no-writers with --writer or "
                               "--writers-dir", o->verb);
  return EXIT_SUCCESS;
}

/* ---- the set ---------------------------------------------------------- */

volatile sig_atomic_t sc_create_interrupted;

void
sc_create_on_signal (int sig)
{
  (void) sig;
  sc_create_interrupted = 1;
  shadowcopy_interrupt ();
}

/* SIGINT, SIGTERM and SIGHUP cut a writer phase short (the library's
 * shadowcopy_interrupt) and end the wait of an auto-release snapshot. */
static void
catch_signals (void)
{
  struct sigaction sa = { .sa_handler = sc_create_on_signal };

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

/* The library's notices are the CLI's messages. */
static void
notice (const char *message, void *opaque)
{
  (void) opaque;
  sc_cli_error ("%s", message);
}

/* Each --writer, then the writers directory.  On failure: said. */
static int
add_writers (struct sc_create_options *o)
{
  const char *dir = o->writers_dir;
  int r = 0;

  if (o->no_writers)
    return 0;
  for (size_t i = 0; i < o->nwriter_cmds && r == 0; i++)
    r = shadowcopy_set_add_writer (o->set, o->writer_cmds[i]);
  if (r == 0)
    r = shadowcopy_set_add_writers_dir (o->set, dir ? dir
                                        : SHADOWCOPY_WRITERS_DIR, !dir);
  return r;
}

/* The set and its options.  On failure: -1. */
static int
make_set (struct sc_create_options *o)
{
  struct shadowcopy_set *s;
  int r = 0;

  if (shadowcopy_set_new (&o->set) < 0)
    return -1;
  s = o->set;
  shadowcopy_set_notify (s, notice, NULL);
  for (size_t k = 0; k < o->nvols && r == 0; k++)
    r = shadowcopy_set_add_volume (s, o->vols[k]);
  if (r == 0)
    r = add_writers (o);
  if (r == 0 && o->have_name)
    r = shadowcopy_set_name (s, o->name);
  if (r == 0 && o->name_prefix)
    r = shadowcopy_set_name_prefix (s, o->name_prefix);
  shadowcopy_set_auto_release (s, o->auto_release);
  shadowcopy_set_delete_oldest (s, o->delete_oldest);
  shadowcopy_set_timeouts (s, o->freeze_ms, o->hold_ms);
  shadowcopy_set_retries (s, (unsigned) o->retries, o->retry_delay_ms,
                          o->wait);
  return r;
}

int
sc_create_options_start (struct sc_create_options *o)
{
  if (make_set (o) < 0) {
    sc_cli_error ("%s", shadowcopy_get_error ());
    return EXIT_FAILURE;
  }
  catch_signals ();
  return EXIT_SUCCESS;
}

void
sc_create_options_save (const struct sc_create_options *o)
{
  char err[2048];

  if (o->set && sc_writers_save (o->set, err, sizeof err) < 0)
    sc_cli_error ("warning: cannot record the writers' results: %s", err);
}

int
sc_create_options_take (struct sc_create_options *o)
{
  /* Each failure was said as it happened (notice): not again. */
  int r = shadowcopy_set_create (o->set);

  sc_create_options_save (o);
  return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

void
sc_create_options_free (struct sc_create_options *o)
{
  shadowcopy_set_free (o->set);
  o->set = NULL;
  free (o->writer_cmds);
  o->writer_cmds = NULL;
}
