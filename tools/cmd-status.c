/* shadowcopy status: every volume configured on this host, one line
 * each, from its configuration file (tools/volume-conf.h) and, when its
 * server answers on its control socket, INFO.
 *
 *   shadowcopy status [--json]
 *
 * A volume is "running" when its control socket answers, "stopped" when
 * nothing listens there, "invalid" when its file cannot be used (the
 * reason on stderr, and the exit status 1).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/json.h"
#include "tools/volume-conf.h"

#define VOLUMES_MAX 1024

struct volume_status {
  char name[SC_VOLUME_NAME_MAX + 1];
  const char *state;            /* running, stopped, invalid */
  struct shadowcopy_volume info; /* when running */
  char control[4096];
};

static int
by_name (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The volume names of DIR/NAME.conf, sorted: their count, or -1 (said). */
static int
volume_names (const char *dir, char ***out)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  char **names = NULL;
  int n = 0;

  if (!d) {
    if (errno == ENOENT) {
      *out = NULL;
      return 0;
    }
    sc_cli_error ("%s: %s", dir, strerror (errno));
    return -1;
  }
  while ((e = readdir (d)) && n < VOLUMES_MAX) {
    size_t len = strlen (e->d_name);
    if (len <= 5 || strcmp (e->d_name + len - 5, ".conf") != 0 ||
        e->d_name[0] == '.')
      continue;
    char **more = realloc (names, (size_t) (n + 1) * sizeof *names);
    if (!more || !(more[n] = strndup (e->d_name, len - 5))) {
      names = more ? more : names;
      sc_cli_error ("out of memory");
      for (int i = 0; i < n; i++)
        free (names[i]);
      free (names);
      closedir (d);
      return -1;
    }
    names = more;
    n++;
  }
  closedir (d);
  qsort (names, (size_t) n, sizeof *names, by_name);
  *out = names;
  return n;
}

static void
one_status (const char *name, struct volume_status *s, bool *bad)
{
  struct sc_volume_conf vc;
  struct shadowcopy *c;
  char err[4096];

  memset (s, 0, sizeof *s);
  snprintf (s->name, sizeof s->name, "%s", name);
  if (sc_volume_conf_load (name, NULL, &vc, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    s->state = "invalid";
    *bad = true;
    return;
  }
  snprintf (s->control, sizeof s->control, "%s", vc.control);
  sc_volume_conf_free (&vc);
  s->state = "stopped";
  if (shadowcopy_connect (s->control, &c) < 0)
    return;
  if (shadowcopy_info (c, &s->info) == 0)
    s->state = "running";
  else
    sc_cli_error ("volume %s: %s", name, shadowcopy_get_error ());
  shadowcopy_close (c);
}

static void
print_json (const struct volume_status *v, int n)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_array (&j);
  for (int i = 0; i < n; i++) {
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "volume", v[i].name);
    sc_json_member_string (&j, "state", v[i].state);
    if (v[i].control[0])
      sc_json_member_string (&j, "control", v[i].control);
    if (strcmp (v[i].state, "running") == 0) {
      sc_json_member_uint (&j, "snapshots", v[i].info.snapshots);
      sc_json_member_uint (&j, "diff_used_bytes", v[i].info.diff_used_bytes);
      sc_json_member_uint (&j, "diff_max_bytes", v[i].info.diff_max);
      if (v[i].info.listen[0])
        sc_json_member_string (&j, "listen", v[i].info.listen);
    }
    sc_json_end_object (&j);
  }
  sc_json_end_array (&j);
}

static void
print_table (const struct volume_status *v, int n)
{
  printf ("%-16s %-8s %9s %12s %12s  %s\n", "VOLUME", "STATE", "SNAPSHOTS",
          "DIFF-USED", "DIFF-MAX", "LISTEN");
  for (int i = 0; i < n; i++) {
    if (strcmp (v[i].state, "running") != 0) {
      printf ("%-16s %-8s %9s %12s %12s  %s\n", v[i].name, v[i].state, "-",
              "-", "-", "-");
      continue;
    }
    char max[24];
    if (v[i].info.diff_max)
      snprintf (max, sizeof max, "%" PRIu64, v[i].info.diff_max);
    else
      snprintf (max, sizeof max, "unbounded");
    printf ("%-16s %-8s %9" PRIu64 " %12" PRIu64 " %12s  %s\n", v[i].name,
            v[i].state, v[i].info.snapshots, v[i].info.diff_used_bytes, max,
            v[i].info.listen[0] ? v[i].info.listen : "-");
  }
}

int
sc_cmd_status (const struct sc_cli_target *t, int argc, char **argv)
{
  struct volume_status *v;
  char **names;
  bool json, bad = false;
  int n, st = sc_cli_json_flag ("status", argc, argv, &json);

  if (st != EXIT_SUCCESS)
    return st;
  if (t->socket || t->diff)
    return sc_cli_usage_error ("status shows every volume of %s: no -c or "
                               "--diff", sc_volume_conf_dir ());
  n = volume_names (sc_volume_conf_dir (), &names);
  if (n < 0)
    return EXIT_FAILURE;
  v = calloc ((size_t) n + 1, sizeof *v);
  if (!v) {
    sc_cli_error ("out of memory");
    st = EXIT_FAILURE;
  }
  for (int i = 0; v && i < n; i++)
    one_status (names[i], &v[i], &bad);
  if (v && json)
    print_json (v, n);
  else if (v)
    print_table (v, n);
  for (int i = 0; i < n; i++)
    free (names[i]);
  free (names);
  free (v);
  return st != EXIT_SUCCESS || bad ? EXIT_FAILURE : EXIT_SUCCESS;
}
