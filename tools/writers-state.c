/* shadowcopy: the writers' results kept by the CLI (writers-state.h).
 *
 * The results come from the library (shadowcopy_set_writer_results);
 * this file only keeps the last one of each writer under the CLI's state
 * directory and prints them for `shadowcopy writers`.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "lib/shadowcopy.h"
#include "tools/cli.h"
#include "tools/json.h"
#include "tools/writers-state.h"

/* STATE/writers: NAME TAB PHASE TAB RESULT TAB WHEN TAB OUTPUT, one line
 * per writer ever run. */
struct rec { char *line; char name[4096]; };

static size_t
load_state (const char *path, struct rec **out)
{
  FILE *f = fopen (path, "r");
  struct rec *v = NULL;
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;

  *out = NULL;
  if (!f)
    return 0;
  while (getline (&line, &cap, f) > 0) {
    line[strcspn (line, "\n")] = '\0';
    struct rec *nv = realloc (v, (n + 1) * sizeof *nv);
    if (!nv)
      break;
    v = nv;
    snprintf (v[n].name, sizeof v[n].name, "%.*s",
              (int) strcspn (line, "\t"), line);
    v[n].line = strdup (line);
    if (v[n].line)
      n++;
  }
  free (line);
  fclose (f);
  *out = v;
  return n;
}

/* Each writer's last result, as the set reports them. */
struct last {
  const char *writer;           /* the set's own string: one per writer */
  char phase[24], result[32], output[1024];
  uint64_t when;
};

struct lasts {
  struct last *v;
  size_t n;
  bool nomem;
};

static void
on_result (const struct shadowcopy_writer_result *r, void *opaque)
{
  struct lasts *l = opaque;

  if (!l->n || l->v[l->n - 1].writer != r->writer) {
    struct last *nv = realloc (l->v, (l->n + 1) * sizeof *nv);
    if (!nv) {
      l->nomem = true;
      return;
    }
    l->v = nv;
    l->v[l->n++].writer = r->writer;
  }
  struct last *w = &l->v[l->n - 1];
  snprintf (w->phase, sizeof w->phase, "%s", r->phase);
  snprintf (w->result, sizeof w->result, "%s", r->result);
  snprintf (w->output, sizeof w->output, "%s", r->output);
  w->when = r->when;
}

int
sc_writers_save (const struct shadowcopy_set *s, char *err, size_t errlen)
{
  const char *dir;
  char path[4200], tmp[4210];
  struct lasts w = { NULL, 0, false };
  struct rec *old;
  size_t nold, n;
  int r = 0;

  shadowcopy_set_writer_results (s, on_result, &w);
  n = w.n;
  if (!n) {
    free (w.v);
    return 0;
  }
  if (w.nomem || !(dir = sc_cli_state_dir (true, err, errlen))) {
    if (w.nomem)
      snprintf (err, errlen, "%s", strerror (ENOMEM));
    free (w.v);
    return w.nomem ? -ENOMEM : -EIO;
  }
  snprintf (path, sizeof path, "%s/writers", dir);
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  nold = load_state (path, &old);
  FILE *f = fopen (tmp, "w");
  if (!f) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", tmp, strerror (-r));
    for (size_t i = 0; i < nold; i++)
      free (old[i].line);
    free (old);
    free (w.v);
    return r;
  }
  for (size_t i = 0; i < nold; i++) {
    bool replaced = false;
    for (size_t j = 0; j < n; j++)
      if (strcmp (w.v[j].writer, old[i].name) == 0)
        replaced = true;
    if (!replaced)
      fprintf (f, "%s\n", old[i].line);
    free (old[i].line);
  }
  free (old);
  for (size_t j = 0; j < n; j++) {
    char name[4096];
    snprintf (name, sizeof name, "%s", w.v[j].writer);
    sc_cli_sanitize (name);
    fprintf (f, "%s\t%s\t%s\t%" PRIu64 "\t%s\n", name, w.v[j].phase,
             w.v[j].result, w.v[j].when, w.v[j].output);
  }
  free (w.v);
  if (fclose (f) != 0 || rename (tmp, path) < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    unlink (tmp);
    return r;
  }
  return 0;
}

/* What STATE/writers holds of writer `name`, for the table. */
struct shown {
  const char *phase, *result, *output;
  char when[32];
};

/* Splits the record of `name` in place (a second writer of the same
 * name finds it split, and shows "never run"). */
static void
shown_of (struct rec *st, size_t nst, const char *name, struct shown *sh)
{
  char *fields[5] = { NULL };

  for (size_t k = 0; k < nst; k++)
    if (strcmp (st[k].name, name) == 0) {
      char *p = st[k].line;
      for (int f = 0; f < 5; f++) {
        fields[f] = strsep (&p, "\t");
        if (!fields[f])
          break;
      }
    }
  sh->phase = fields[1] ? fields[1] : "";
  sh->result = fields[2] ? fields[2] : "never run";
  sh->output = fields[4] ? fields[4] : "";
  sh->when[0] = '\0';
  if (fields[3]) {
    uint64_t t = strtoull (fields[3], NULL, 10);
    sc_ctl_format_time (t * 1000000000u, sh->when, sizeof sh->when);
  }
}

/* The in-box writers, first: what each takes, needs and does. */
static void
print_in_box (struct sc_json *j, bool json)
{
  const struct shadowcopy_writer_kind *k = shadowcopy_writers_list ();

  if (!json)
    printf ("%-40s  %s\n", "IN-BOX WRITER", "NEEDS / DOES");
  for (; k->prefix; k++) {
    char spelled[128];
    snprintf (spelled, sizeof spelled, "%s:%s", k->prefix, k->argument);
    if (json) {
      sc_json_begin_object (j);
      sc_json_member_string (j, "writer", spelled);
      sc_json_member_bool (j, "in_box", true);
      sc_json_member_string (j, "needs", k->needs);
      sc_json_member_string (j, "does", k->does);
      sc_json_end_object (j);
    }
    else
      printf ("%-40s  needs: %s\n%-40s  does: %s\n", spelled, k->needs, "",
              k->does);
  }
  if (!json)
    printf ("\n");
}

int
sc_writers_print (const struct shadowcopy_set *s, bool json)
{
  char err[256], path[4200];
  const char *dir = sc_cli_state_dir (false, err, sizeof err);
  struct rec *st = NULL;
  size_t nst = 0;
  struct sc_json j;

  if (dir) {
    snprintf (path, sizeof path, "%s/writers", dir);
    nst = load_state (path, &st);
  }
  sc_json_init (&j, stdout);
  if (json)
    sc_json_begin_array (&j);
  print_in_box (&j, json);
  if (!json)
    printf ("%-40s  %-16s  %-24s  %-20s  %s\n", "WRITER", "LAST PHASE",
            "RESULT", "WHEN", "OUTPUT");
  for (size_t i = 0; shadowcopy_set_writer (s, i); i++) {
    const char *name = shadowcopy_set_writer (s, i);
    struct shown sh;

    shown_of (st, nst, name, &sh);
    if (json) {
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "writer", name);
      sc_json_member_string (&j, "phase", sh.phase);
      sc_json_member_string (&j, "result", sh.result);
      sc_json_member_string (&j, "when", sh.when);
      sc_json_member_string (&j, "output", sh.output);
      sc_json_end_object (&j);
    }
    else
      printf ("%-40s  %-16s  %-24s  %-20s  %s\n", name,
              sh.phase[0] ? sh.phase : "-", sh.result,
              sh.when[0] ? sh.when : "-", sh.output);
  }
  if (json)
    sc_json_end_array (&j);
  for (size_t k = 0; k < nst; k++)
    free (st[k].line);
  free (st);
  return 0;
}
