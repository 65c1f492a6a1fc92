/* shadowcopy: what every part of the CLI shares (see cli.h). */
#include <config.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/control-protocol.h"
#include "cow/diffarea.h"
#include "tools/cli.h"

/* ---- messages -------------------------------------------------------- */

static void
verror (const char *fmt, va_list ap)
{
  char msg[2048];

  vsnprintf (msg, sizeof msg, fmt, ap);
  sc_cli_sanitize (msg);
  fprintf (stderr, "shadowcopy: %s\n", msg);
}

void
sc_cli_error (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  verror (fmt, ap);
  va_end (ap);
}

int
sc_cli_usage_error (const char *fmt, ...)
{
  char msg[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  sc_cli_error ("%s (see shadowcopy --help)", msg);
  return SC_EXIT_USAGE;
}

void
sc_cli_sanitize (char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      *s = '?';
}

int
sc_cli_parse_u64 (const char *s, uint64_t *out)
{
  return sc_ctl_parse_u64 (s, out);
}

bool
sc_cli_is_checkpoint (const struct shadowcopy_snapshot *s)
{
  return strcmp (s->type, "checkpoint") == 0;
}

bool
sc_cli_name_ok (const char *name)
{
  if (sc_snapshot_name_valid (name))
    return true;
  sc_cli_error ("invalid snapshot name: %s", name);
  return false;
}

bool
sc_cli_options_end (char **argv, int *i)
{
  if (strcmp (argv[*i], "--") == 0) {
    ++*i;
    return true;
  }
  return argv[*i][0] != '-';
}

int
sc_cli_json_flag (const char *verb, int argc, char **argv, bool *json)
{
  *json = false;
  if (argc == 1 && strcmp (argv[0], "--json") == 0)
    *json = true;
  else if (argc > 0)
    return sc_cli_usage_error ("%s: unexpected argument '%s'", verb,
                               argv[0]);
  return 0;
}

/* ---- the clock ------------------------------------------------------- */

uint64_t
sc_cli_mono_ms (void)
{
  return sc_mono_ns () / 1000000u;
}

/* ---- the target ------------------------------------------------------ */

void
sc_cli_lib_error (void)
{
  sc_cli_error ("%s", shadowcopy_get_error ());
}

int
sc_cli_open_target (const struct sc_cli_target *t, int how,
                    struct shadowcopy **h)
{
  int r = t->socket ? shadowcopy_connect (t->socket, h)
                    : shadowcopy_open (t->diff, how, h);

  if (r < 0) {
    sc_cli_lib_error ();
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

int
sc_cli_close_target (struct shadowcopy *h, int status)
{
  if (shadowcopy_close (h) < 0) {
    sc_cli_lib_error ();
    return EXIT_FAILURE;
  }
  return status;
}

const char *
sc_cli_target_socket (const struct sc_cli_target *t, char *buf, size_t len)
{
  if (t->socket)
    return t->socket;
  if (t->diff) {
    snprintf (buf, len, "%s.sock", t->diff);
    return buf;
  }
  return NULL;
}

/* ---- the state directory --------------------------------------------- */

static int
mkdir_p (char *path)
{
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int r = mkdir (path, 0755);
    *p = '/';
    if (r < 0 && errno != EEXIST)
      return -errno;
  }
  if (mkdir (path, 0700) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

const char *
sc_cli_state_dir (bool create, char *err, size_t errlen)
{
  static char dir[4096];
  const char *e;

  if ((e = getenv ("SHADOWCOPY_STATE_DIR")) && *e)
    snprintf (dir, sizeof dir, "%s", e);
  else if ((e = getenv ("XDG_STATE_HOME")) && *e)
    snprintf (dir, sizeof dir, "%s/shadowcopy", e);
  else if (geteuid () == 0)
    snprintf (dir, sizeof dir, "/var/lib/shadowcopy");
  else {
    const char *home = getenv ("HOME");
    struct passwd *pw;
    if ((!home || !*home) && (pw = getpwuid (geteuid ())))
      home = pw->pw_dir;
    if (!home || !*home) {
      snprintf (err, errlen, "no state directory: set SHADOWCOPY_STATE_DIR");
      return NULL;
    }
    snprintf (dir, sizeof dir, "%s/.local/state/shadowcopy", home);
  }
  if (create) {
    int r = mkdir_p (dir);
    if (r < 0) {
      snprintf (err, errlen, "state directory %s: %s", dir, strerror (-r));
      return NULL;
    }
  }
  return dir;
}
