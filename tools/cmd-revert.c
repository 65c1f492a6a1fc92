/* shadowcopy revert: make the live volume read as a snapshot now, and
 * write it back in the background.
 *
 *   shadowcopy revert NAME [--save-current NAME|--no-save-current]
 *                     [--rate BYTES/S] [--force] [--dry-run] [--wait]
 *   shadowcopy revert --status [--wait]
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
#include <unistd.h>

#include "engine/control-protocol.h"
#include "engine/size.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/progress.h"

struct revert_ctx {
  bool seen, quiet;
  char state[16];
  uint64_t done, todo;
};

static uint64_t
num (const struct sc_ctl_line *line, const char *key)
{
  const char *v = sc_ctl_field (line, key);
  return v ? strtoull (v, NULL, 10) : 0;
}

static int
on_reply (const struct sc_ctl_line *line, void *opaque)
{
  struct revert_ctx *x = opaque;
#define F(k) (sc_ctl_field (line, k) ? sc_ctl_field (line, k) : "-")
  if (strcmp (line->kind, "revert-plan") == 0) {
    x->seen = true;
    printf ("bytes to write: %s\n", F ("bytes-to-write"));
    printf ("diff-area space needed (at most): %s\n", F ("space-needed"));
    printf ("limit: %s\n", strcmp (F ("limit"), "0") ? F ("limit")
                                                      : "unbounded");
    printf ("fits: %s\n", F ("fits"));
    return 0;
  }
  if (strcmp (line->kind, "revert") != 0)
    return 0;
  x->seen = true;
  snprintf (x->state, sizeof x->state, "%s", F ("state"));
  x->done = num (line, "bytes-done");
  x->todo = num (line, "bytes-todo");
  if (x->quiet)
    return 0;
  printf ("revert: %s\n", x->state);
  if (strcmp (x->state, "none") != 0) {
    printf ("target: %s\n", F ("target"));
    printf ("saved current state: %s\n", F ("saved"));
    printf ("bytes done: %s of %s\n", F ("bytes-done"), F ("bytes-todo"));
    printf ("rate: %s\n", strcmp (F ("rate"), "0") ? F ("rate")
                                                    : "unbounded");
    printf ("eta: %s s\n", F ("eta"));
  }
  if (sc_ctl_field (line, "target-invalid"))
    printf ("the target is invalid: chunks not written back fail to read\n");
  if (sc_ctl_field (line, "error"))
    printf ("last error: %s (retried)\n", F ("error"));
  if (sc_ctl_field (line, "ended"))
    printf ("%s\n", F ("ended"));
#undef F
  return 0;
}

/* Poll the status until the revert has ended, with a progress bar. */
static int
wait_end (struct sc_client *c, char *err, size_t errlen)
{
  struct sc_progress p = SC_PROGRESS_INIT;
  p.on = isatty (2);
  sc_progress_start (&p);
  for (;;) {
    struct revert_ctx x = { .quiet = true };
    int r = sc_client_request (c, "REVERT-STATUS", NULL, 0, on_reply, &x,
                               err, errlen);
    if (r < 0)
      return r;
    if (strcmp (x.state, "none") == 0) {
      if (p.on)
        sc_progress_update (&p, 1, 1);
      printf ("revert: finished\n");
      return 0;
    }
    if (p.on)
      sc_progress_update (&p, x.done, x.todo ? x.todo : 1);
    usleep (200000);
  }
}

struct revert_opts {
  const char *name, *save, *rate;
  bool nosave, force, dry_run, wait, status;
};

static int
parse (int argc, char **argv, struct revert_opts *o)
{
  memset (o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--status") == 0)
      o->status = true;
    else if (strcmp (a, "--wait") == 0)
      o->wait = true;
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
    else if (a[0] != '-' && !o->name)
      o->name = a;
    else
      return sc_cli_usage_error ("revert: unexpected argument '%s'", a);
  }
  if (o->status && (o->name || o->save || o->nosave || o->rate || o->force ||
                    o->dry_run))
    return sc_cli_usage_error ("revert: --status takes only --wait");
  if (!o->status && !o->name)
    return sc_cli_usage_error ("revert: which snapshot? revert NAME");
  if (o->save && o->nosave)
    return sc_cli_usage_error ("revert: --save-current or "
                               "--no-save-current, not both");
  if (o->name && !sc_cli_name_ok (o->name))
    return SC_EXIT_USAGE;       /* said */
  return 0;
}

int
sc_cmd_revert (const struct sc_cli_target *t, int argc, char **argv)
{
  struct revert_opts o;
  char err[1024], args[6][160];
  const char *av[6];
  size_t n = 0;
  int st = parse (argc, argv, &o);
  if (st != 0)
    return st;
  if (!o.status) {
    snprintf (args[n++], sizeof args[0], "%s", o.name);
    if (o.save)
      snprintf (args[n++], sizeof args[0], "save=%s", o.save);
    if (o.nosave)
      snprintf (args[n++], sizeof args[0], "nosave");
    if (o.force)
      snprintf (args[n++], sizeof args[0], "force");
    if (o.dry_run)
      snprintf (args[n++], sizeof args[0], "dry-run");
    if (o.rate) {
      struct sc_size size;
      if (sc_size_parse (o.rate, SC_SIZE_UNBOUNDED, &size) < 0)
        return sc_cli_usage_error ("revert: --rate %s: not a number of "
                                   "bytes per second (e.g. 64M; 0 or "
                                   "unbounded: no limit)", o.rate);
      snprintf (args[n++], sizeof args[0], "rate=%" PRIu64,
                sc_size_bytes (&size, 0));
    }
  }
  for (size_t i = 0; i < n; i++)
    av[i] = args[i];
  struct sc_client *c;
  st = sc_cli_open_target (t, SC_CLIENT_SERVER, &c);
  if (st != EXIT_SUCCESS)
    return st;
  struct revert_ctx x = { .quiet = false };
  int r = sc_client_request (c, o.status ? "REVERT-STATUS" : "REVERT", av,
                             n, on_reply, &x, err, sizeof err);
  if (r == -ENOTCONN)
    snprintf (err, sizeof err, "revert needs a running server");
  if (r == 0 && !x.seen) {
    snprintf (err, sizeof err, "bad reply from the server: no revert line");
    r = -EPROTO;
  }
  if (r == 0 && o.wait && !o.dry_run)
    r = wait_end (c, err, sizeof err);
  if (r < 0) {
    sc_cli_error ("%s", err);
    st = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, st);
}
