/* shadowcopy revert: make the live volume read as a snapshot now, and
 * write it back in the background.
 *
 *   shadowcopy revert NAME [--save-current NAME|--no-save-current]
 *                     [--rate BYTES/S] [--force] [--dry-run] [--wait]
 *   shadowcopy revert --status [--wait]
 *   shadowcopy revert --rate BYTES/S     (the running revert's, durably)
 *
 * The server does the work (engine/volume-revert.c); --wait polls
 * REVERT-STATUS with a progress bar until the revert has ended.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cow/diffarea.h"
#include "cow/uuid.h"
#include "engine/size.h"
#include "tools/cli.h"
#include "tools/cmd-revert.h"
#include "tools/commands.h"
#include "tools/json.h"
#include "tools/progress.h"

struct revert_ctx {
  bool seen, quiet, json;
  struct shadowcopy_revert rv;
};

void
sc_revert_print_text (const struct shadowcopy_revert *r)
{
  printf ("revert: %s\n", r->state);
  if (strcmp (r->state, "none") != 0) {
    printf ("target: %s\n", r->target);
    printf ("saved current state: %s\n", r->saved[0] ? r->saved : "-");
    printf ("bytes done: %" PRIu64 " of %" PRIu64 "\n", r->bytes_done,
            r->bytes_todo);
    if (r->rate == 0)
      printf ("rate: unbounded\n");
    else
      printf ("rate: %" PRIu64 " bytes/s\n", r->rate);
    if (r->eta_s == UINT64_MAX)
      printf ("eta: unknown\n");
    else
      printf ("eta: %" PRIu64 " s\n", r->eta_s);
  }
  if (r->target_invalid)
    printf ("the target is invalid: chunks not written back fail to read\n");
  if (r->error[0])
    printf ("last error: %s (retried)\n", r->error);
  if (r->ended[0])
    printf ("%s\n", r->ended);
}

void
sc_revert_json (const struct shadowcopy_revert *r, struct sc_json *j)
{
  sc_json_begin_object (j);
  sc_json_member_string (j, "state", r->state);
  if (strcmp (r->state, "none") != 0) {
    sc_json_member_string (j, "target", r->target);
    if (r->saved[0])
      sc_json_member_string (j, "saved", r->saved);
    else {
      sc_json_key (j, "saved");
      sc_json_null (j);
    }
    sc_json_member_uint (j, "bytes_done", r->bytes_done);
    sc_json_member_uint (j, "bytes_todo", r->bytes_todo);
    sc_json_member_uint (j, "rate", r->rate);
    sc_json_key (j, "eta_s");
    if (r->eta_s == UINT64_MAX)
      sc_json_null (j);
    else
      sc_json_uint (j, r->eta_s);
    sc_json_member_uint (j, "errors", r->errors);
    sc_json_member_bool (j, "target_valid", !r->target_invalid);
  }
  if (r->error[0])
    sc_json_member_string (j, "error", r->error);
  if (r->ended[0])
    sc_json_member_string (j, "ended", r->ended);
  sc_json_end_object (j);
}

/* Show what a REVERT, REVERT-STATUS, REVERT-RESUME or REVERT-RATE
 * answered: a dry run's plan, or the revert's status (unless quiet). */
static void
show (const struct revert_ctx *x)
{
  const struct shadowcopy_revert *rv = &x->rv;

  if (rv->have_plan) {
    if (x->json) {
      struct sc_json j;
      sc_json_init (&j, stdout);
      sc_json_begin_object (&j);
      sc_json_member_uint (&j, "bytes_to_write", rv->plan_bytes_to_write);
      sc_json_member_uint (&j, "space_needed", rv->plan_space_needed);
      sc_json_member_uint (&j, "limit", rv->plan_limit);
      sc_json_member_bool (&j, "fits", rv->plan_fits);
      sc_json_end_object (&j);
      return;
    }
    printf ("bytes to write: %" PRIu64 "\n", rv->plan_bytes_to_write);
    printf ("diff-area space needed (at most): %" PRIu64 "\n",
            rv->plan_space_needed);
    if (rv->plan_limit)
      printf ("limit: %" PRIu64 "\n", rv->plan_limit);
    else
      printf ("limit: unbounded\n");
    printf ("fits: %s\n", rv->plan_fits ? "yes" : "no");
    return;
  }
  if (x->quiet)
    return;
  if (x->json) {
    struct sc_json j;
    sc_json_init (&j, stdout);
    sc_revert_json (rv, &j);
  }
  else
    sc_revert_print_text (rv);
}

/* x->rv from the call's result r: 0, or r with err said. */
static int
answered (int r, char *err, size_t errlen)
{
  if (r < 0)
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
  return r;
}

/* Poll the status until the revert has ended, with a progress bar;
 * with json, print the last status as JSON instead of a line. */
static int
wait_end (struct shadowcopy *c, bool json, char *err, size_t errlen)
{
  struct sc_progress p = SC_PROGRESS_INIT;
  p.on = isatty (2);
  sc_progress_start (&p);
  for (;;) {
    struct revert_ctx x = { .quiet = true };
    int r = answered (shadowcopy_revert_status (c, &x.rv), err, errlen);
    if (r < 0)
      return r;
    if (strcmp (x.rv.state, "none") == 0) {
      if (p.on)
        sc_progress_update (&p, 1, 1);
      if (json) {
        struct sc_json j;
        sc_json_init (&j, stdout);
        sc_revert_json (&x.rv, &j);
      }
      else
        printf ("revert: finished\n");
      return 0;
    }
    if (p.on)
      sc_progress_update (&p, x.rv.bytes_done,
                          x.rv.bytes_todo ? x.rv.bytes_todo : 1);
    usleep (200000);
  }
}

#define SET_VOLUMES_MAX 64

struct revert_opts {
  const char *name, *save, *rate, *set;
  bool nosave, force, dry_run, wait, status, json, resume;
  const char *sockets[SET_VOLUMES_MAX];         /* revert --set: -c */
  size_t nsockets;
};

static int
parse (int argc, char **argv, struct revert_opts *o)
{
  memset (o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--status") == 0)
      o->status = true;
    else if (strcmp (a, "--resume") == 0)
      o->resume = true;
    else if (strcmp (a, "--wait") == 0)
      o->wait = true;
    else if (strcmp (a, "--json") == 0)
      o->json = true;
    else if (strcmp (a, "--force") == 0)
      o->force = true;
    else if (strcmp (a, "--dry-run") == 0)
      o->dry_run = true;
    else if (strcmp (a, "--no-save-current") == 0)
      o->nosave = true;
    else if (strcmp (a, "--save-current") == 0 && i + 1 < argc)
      o->save = argv[++i];
    else if (strcmp (a, "--rate") == 0 && i + 1 < argc)
      o->rate = argv[++i];
    else if (strcmp (a, "--set") == 0 && i + 1 < argc && !o->set)
      o->set = argv[++i];
    else if ((strcmp (a, "-c") == 0 || strcmp (a, "--control") == 0) &&
             i + 1 < argc && o->set && o->nsockets < SET_VOLUMES_MAX)
      o->sockets[o->nsockets++] = argv[++i];
    else if (a[0] != '-' && !o->name && !o->set)
      o->name = a;
    else
      return sc_cli_usage_error ("revert: unexpected argument '%s'", a);
  }
  if ((o->status || o->resume) &&
      (o->name || o->save || o->nosave || o->rate || o->force ||
       o->dry_run || o->set))
    return sc_cli_usage_error ("revert: --status and --resume take only "
                               "--wait and --json");
  if (o->status && o->resume)
    return sc_cli_usage_error ("revert: --status or --resume, not both");
  if (o->set && o->dry_run)
    return sc_cli_usage_error ("revert --set: --dry-run works per volume "
                               "(revert NAME --dry-run)");
  if (!o->status && !o->resume && !o->name && !o->set && !o->rate)
    return sc_cli_usage_error ("revert: which snapshot? revert NAME");
  if (o->rate && !o->name && !o->set &&
      (o->save || o->nosave || o->force || o->dry_run))
    return sc_cli_usage_error ("revert --rate N alone changes the rate of "
                               "the running revert: it takes only --wait "
                               "and --json");
  if (o->save && o->nosave)
    return sc_cli_usage_error ("revert: --save-current or "
                               "--no-save-current, not both");
  if (o->name && !sc_cli_name_ok (o->name))
    return SC_EXIT_USAGE;       /* said */
  if (o->save && !sc_cli_name_ok (o->save))
    return SC_EXIT_USAGE;       /* said */
  return 0;
}

/* The REVERT options into a: 0, or -1 (said). */
static int
revert_args (const struct revert_opts *o, const char *save, bool paused,
             struct shadowcopy_revert_args *a)
{
  memset (a, 0, sizeof *a);
  a->save = save;
  a->nosave = o->nosave;
  a->force = o->force;
  a->dry_run = o->dry_run;
  a->paused = paused;
  if (o->rate) {
    struct sc_size size;
    if (sc_size_parse (o->rate, SC_SIZE_UNBOUNDED, &size) < 0) {
      sc_cli_usage_error ("revert: --rate %s: not a number of bytes per "
                          "second (e.g. 64M; 0 or unbounded: no limit)",
                          o->rate);
      return -1;
    }
    a->rate = sc_size_bytes (&size, 0);
    if (a->rate == 0)
      a->rate = SHADOWCOPY_RATE_UNBOUNDED;
  }
  return 0;
}

/* ---- revert --set ID ------------------------------------------------------
 *
 * Every volume's revert is recorded paused first (REVERT NAME ... paused:
 * durable, the live volume reads as its member at once), then each is
 * started (REVERT-RESUME); so each is durable before any copies.  A revert
 * cannot be rolled back without losing its undo point, so when a volume
 * fails, those recorded stay recorded: the error says, for each volume,
 * where it is and what to do.  Running the same command again picks up
 * the volumes already recorded (a paused revert to the set's member). */

enum set_state { SET_NOTHING, SET_RECORDED, SET_RUNNING, SET_FAILED };

struct set_volume {
  const char *where;
  struct shadowcopy *c;
  char member[SC_NAME_MAX + 1];
  enum set_state state;
  char err[1024];
  struct shadowcopy_revert rv;
};

static const char *
set_state_text (enum set_state s)
{
  switch (s) {
  case SET_RECORDED: return "revert recorded, paused (reads as the set "
                            "member; not copying yet)";
  case SET_RUNNING:  return "revert running";
  case SET_FAILED:   return "failed";
  case SET_NOTHING:
  default:           return "not reverted (unchanged)";
  }
}

/* The member of set `id` on the volume, into vol->member: 0, or -1 with
 * vol->err said. */
static int
find_member (struct set_volume *vol, const char *id)
{
  struct shadowcopy_snapshot *s;
  size_t n;
  int r = answered (shadowcopy_list (vol->c, &s, &n), vol->err,
                    sizeof vol->err);
  if (r < 0)
    return -1;
  vol->member[0] = '\0';
  for (size_t i = 0; i < n; i++)
    if (strcmp (s[i].set, id) == 0 && !sc_cli_is_checkpoint (&s[i]))
      snprintf (vol->member, sizeof vol->member, "%s", s[i].name);
  free (s);
  if (!vol->member[0]) {
    snprintf (vol->err, sizeof vol->err, "no snapshot of set %s", id);
    return -1;
  }
  return 0;
}

/* Record the revert on vol, paused (or find it already recorded). */
static int
record_one (struct set_volume *vol, const struct revert_opts *o,
            const char *save)
{
  struct revert_ctx x = { .quiet = true };
  int r = answered (shadowcopy_revert_status (vol->c, &x.rv), vol->err,
                    sizeof vol->err);
  if (r < 0)
    return -1;
  if (strcmp (x.rv.state, "none") != 0) {
    if (strcmp (x.rv.target, vol->member) != 0) {
      snprintf (vol->err, sizeof vol->err, "a revert to %s is already "
                "running there; see revert --status", x.rv.target);
      return -1;
    }
    vol->rv = x.rv;     /* recorded by an earlier run: picked up */
    vol->state = strcmp (x.rv.state, "running") == 0 ? SET_RUNNING
                                                     : SET_RECORDED;
    return 0;
  }
  struct shadowcopy_revert_args a;
  if (revert_args (o, save, true, &a) < 0)
    return -2;
  x = (struct revert_ctx) { .quiet = true };
  r = answered (shadowcopy_revert (vol->c, vol->member, &a, &x.rv),
                vol->err, sizeof vol->err);
  if (r < 0)
    return -1;
  vol->rv = x.rv;
  vol->state = SET_RECORDED;
  return 0;
}

static int
start_one (struct set_volume *vol)
{
  if (vol->state == SET_RUNNING)
    return 0;
  struct revert_ctx x = { .quiet = true };
  int r = answered (shadowcopy_revert_resume (vol->c, &x.rv), vol->err,
                    sizeof vol->err);
  if (r < 0)
    return -1;
  vol->rv = x.rv;
  vol->state = SET_RUNNING;
  return 0;
}

/* The failure of volume `bad`: what each volume is in, what to do. */
static void
report_set_failure (struct set_volume *vols, size_t n, size_t bad,
                    const char *phase)
{
  sc_cli_error ("revert --set: %s failed on %s: %s", phase, vols[bad].where,
                vols[bad].err);
  bool any = false;
  for (size_t i = 0; i < n; i++) {
    bool rec = vols[i].state == SET_RECORDED || vols[i].state == SET_RUNNING;
    fprintf (stderr, "  %s: %s", vols[i].where,
             set_state_text (vols[i].state));
    if (rec)
      fprintf (stderr, "; to %s%s%s", vols[i].member,
               vols[i].rv.saved[0] ? "; current state saved as " : "",
               vols[i].rv.saved);
    fprintf (stderr, "\n");
    any |= rec;
  }
  if (any)
    fprintf (stderr, "A recorded revert cannot be taken back without losing "
             "its undo point, so those volumes stay as they are.  Fix the "
             "cause and run the same revert --set again (the reverts "
             "already recorded are picked up), or start each recorded one "
             "with `shadowcopy -c SOCKET revert --resume` and, once it has "
             "finished, undo it by reverting to its saved state.\n");
}

static int
revert_set (const struct sc_cli_target *t, const struct revert_opts *o)
{
  uint8_t raw[16];
  char id[SC_UUID_TEXT_LEN], save[SC_NAME_MAX + 1] = "";
  struct set_volume vols[SET_VOLUMES_MAX + 1];
  size_t n = 0;
  int status = EXIT_SUCCESS;

  if (sc_uuid_parse (o->set, raw) < 0)
    return sc_cli_usage_error ("revert --set: not a set id (UUID): %s",
                               o->set);
  sc_uuid_format (raw, id);
  /* One saved name on every volume (the same instant). */
  if (o->save)
    snprintf (save, sizeof save, "%s", o->save);
  else if (!o->nosave) {
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (save, sizeof save, "pre-revert-%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  const char *sp = o->nosave ? NULL : save;
  memset (vols, 0, sizeof vols);
  if (t->socket || t->diff)
    vols[n++].where = t->socket ? t->socket : t->diff;
  for (size_t i = 0; i < o->nsockets; i++)
    vols[n++].where = o->sockets[i];
  if (n == 0)
    return sc_cli_usage_error ("revert --set: say the set's volumes: "
                               "-c SOCKET (repeated)");
  for (size_t i = 0; i < n; i++) {
    struct sc_cli_target one = { .socket = vols[i].where };
    if (i == 0 && (t->socket || t->diff))
      one = *t, one.more_sockets = NULL, one.nmore_sockets = 0;
    if (sc_cli_open_target (&one, SHADOWCOPY_OPEN_SERVER, &vols[i].c)
        != EXIT_SUCCESS) {
      for (size_t k = 0; k < i; k++)
        sc_cli_close_target (vols[k].c, EXIT_SUCCESS);
      return EXIT_FAILURE;      /* said; nothing changed */
    }
  }
  /* Find every member first: nothing changes unless all are there. */
  for (size_t i = 0; i < n && status == EXIT_SUCCESS; i++)
    if (find_member (&vols[i], id) < 0) {
      sc_cli_error ("revert --set: %s: %s; nothing was reverted",
                    vols[i].where, vols[i].err);
      status = EXIT_FAILURE;
    }
  /* Record every revert, paused; then start each. */
  for (size_t i = 0; i < n && status == EXIT_SUCCESS; i++) {
    int r = record_one (&vols[i], o, sp);
    if (r == -2)
      status = SC_EXIT_USAGE;
    else if (r < 0) {
      vols[i].state = SET_FAILED;
      report_set_failure (vols, n, i, "recording the revert");
      status = EXIT_FAILURE;
    }
  }
  for (size_t i = 0; i < n && status == EXIT_SUCCESS; i++)
    if (start_one (&vols[i]) < 0) {
      vols[i].state = SET_FAILED;
      report_set_failure (vols, n, i, "starting the copy");
      status = EXIT_FAILURE;
    }
  if (status == EXIT_SUCCESS && !o->json)
    for (size_t i = 0; i < n; i++)
      printf ("%s: reverting to %s%s%s\n", vols[i].where, vols[i].member,
              vols[i].rv.saved[0] ? "; current state saved as " : "",
              vols[i].rv.saved);
  if (status == EXIT_SUCCESS && o->json) {
    struct sc_json j;
    sc_json_init (&j, stdout);
    sc_json_begin_array (&j);
    for (size_t i = 0; i < n; i++) {
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "volume", vols[i].where);
      sc_json_key (&j, "revert");
      sc_revert_json (&vols[i].rv, &j);
      sc_json_end_object (&j);
    }
    sc_json_end_array (&j);
  }
  for (size_t i = 0; i < n && status == EXIT_SUCCESS && o->wait; i++) {
    char err[1024];
    if (wait_end (vols[i].c, false, err, sizeof err) < 0) {
      sc_cli_error ("%s: %s", vols[i].where, err);
      status = EXIT_FAILURE;
    }
  }
  for (size_t i = 0; i < n; i++)
    status = sc_cli_close_target (vols[i].c, status);
  return status;
}

int
sc_cmd_revert (const struct sc_cli_target *t, int argc, char **argv)
{
  struct revert_opts o;
  struct shadowcopy_revert_args a;
  char err[1024];
  int st = parse (argc, argv, &o);
  if (st != 0)
    return st;
  if (o.set)
    return revert_set (t, &o);
  if (!t->socket && !t->diff)
    return sc_cli_usage_error ("say which volume: -c SOCKET (the server's "
                               "control socket) or --diff DIFFAREA (the "
                               "diff-area file, diff=)");
  bool set_rate = !o.name && o.rate && !o.status && !o.resume;
  if ((o.name || set_rate) && revert_args (&o, o.save, false, &a) < 0)
    return SC_EXIT_USAGE;
  struct shadowcopy *c;
  st = sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c);
  if (st != EXIT_SUCCESS)
    return st;
  struct revert_ctx x = { .quiet = o.json && o.wait, .json = o.json };
  int r = o.status ? shadowcopy_revert_status (c, &x.rv)
          : o.resume ? shadowcopy_revert_resume (c, &x.rv)
          : set_rate ? shadowcopy_revert_rate (c, a.rate, &x.rv)
          : shadowcopy_revert (c, o.name, &a, &x.rv);
  answered (r, err, sizeof err);
  if (r == 0)
    show (&x);
  if (r == 0 && o.wait && !o.dry_run)
    r = wait_end (c, o.json, err, sizeof err);
  if (r < 0) {
    sc_cli_error ("%s", err);
    st = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, st);
}
