/* shadowcopy backup: a snapshot copied to a backup image, full or
 * incremental, with its manifest.
 *
 *   shadowcopy -c SOCK | --diff DIFF backup SNAPSHOT --to TARGET
 *              --nbd-socket NBDSOCK [--since BASE --base PREV]
 *              [--format raw] [--progress[=FD]] [--json] [--resume]
 *              [--connections N]
 *
 * The control socket says who the snapshot is and what changed; the
 * data comes over NBD from the snapshot's export (nbdkit -U NBDSOCK, the
 * export named after the snapshot), as for `mount`.  backup-job.h has
 * the steps of one backup; this file reads the command line and shows
 * the progress and the summary.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/backup-job.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/json.h"
#include "tools/writers.h"

struct args {
  const char *snapshot, *target, *since, *prev, *nbd_socket;
  enum sc_image_format format;
  bool json;
  bool resume;
  unsigned connections;         /* 0: the default */
  bool progress;
  int progress_fd;              /* -1: a bar on stderr */
};

struct progress_state {
  const struct args *a;
  uint64_t start_ms, last_ms;
  int last_pct;
};

static void
on_progress (void *opaque, uint64_t done, uint64_t total)
{
  struct progress_state *p = opaque;
  int pct = total ? (int) (done * 100 / total) : 100;
  uint64_t now = sc_cli_mono_ms ();

  if (p->a->progress_fd >= 0) {
    if (pct != p->last_pct)
      dprintf (p->a->progress_fd, "%d/100\n", pct);
    p->last_pct = pct;
    return;
  }
  if (pct == p->last_pct && now - p->last_ms < 500 && done != total)
    return;
  p->last_pct = pct;
  p->last_ms = now;
  double s = (double) (now - p->start_ms) / 1000.0;
  double rate = s > 0 ? (double) done / s : 0;
  double eta = rate > 0 ? (double) (total - done) / rate : 0;
  fprintf (stderr, "\r%3d%% %" PRIu64 "/%" PRIu64 " MiB %.1f MiB/s ETA %.0fs ",
           pct, done >> 20, total >> 20, rate / 1048576.0, eta);
  if (done == total)
    fputc ('\n', stderr);
}

static int
parse_args (int argc, char **argv, struct args *a)
{
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    const char **val = NULL;
    if (strcmp (s, "--to") == 0)
      val = &a->target;
    else if (strcmp (s, "--since") == 0)
      val = &a->since;
    else if (strcmp (s, "--base") == 0)
      val = &a->prev;
    else if (strcmp (s, "--nbd-socket") == 0)
      val = &a->nbd_socket;
    else if (strcmp (s, "--format") == 0) {
      if (i + 1 >= argc
          || sc_image_format_parse (argv[i + 1], &a->format) < 0)
        return sc_cli_usage_error ("backup: --format needs raw or qcow2");
      i++;
      continue;
    }
    else if (strcmp (s, "--json") == 0) {
      a->json = true;
      continue;
    }
    else if (strcmp (s, "--resume") == 0) {
      a->resume = true;
      continue;
    }
    else if (strcmp (s, "--connections") == 0) {
      char *end;
      long n = i + 1 < argc ? strtol (argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || !argv[i + 1][0] || *end || n < 1
          || n > SC_BACKUP_MAX_CONNECTIONS)
        return sc_cli_usage_error ("backup: --connections needs a number "
                                   "from 1 to %d", SC_BACKUP_MAX_CONNECTIONS);
      a->connections = (unsigned) n;
      i++;
      continue;
    }
    else if (strcmp (s, "--progress") == 0) {
      a->progress = true;
      continue;
    }
    else if (strncmp (s, "--progress=", 11) == 0) {
      char *end;
      long fd = strtol (s + 11, &end, 10);
      if (!s[11] || *end || fd < 0 || fd > INT_MAX)
        return sc_cli_usage_error ("backup: --progress=FD needs a file "
                                   "descriptor number");
      a->progress = true;
      a->progress_fd = (int) fd;
      continue;
    }
    else if (s[0] == '-')
      return sc_cli_usage_error ("backup: unexpected option '%s'", s);
    else if (!a->snapshot) {
      a->snapshot = s;
      continue;
    }
    else
      return sc_cli_usage_error ("backup: unexpected argument '%s'", s);
    if (i + 1 >= argc)
      return sc_cli_usage_error ("backup: %s needs a value", s);
    *val = argv[++i];
  }
  if (!a->snapshot || !a->target)
    return sc_cli_usage_error ("backup needs SNAPSHOT and --to TARGET");
  if (!a->nbd_socket)
    return sc_cli_usage_error ("backup needs --nbd-socket NBDSOCK (the "
                               "socket nbdkit serves the snapshot on)");
  if (!a->since != !a->prev)
    return sc_cli_usage_error ("backup: --since BASE and --base PREV go "
                               "together");
  if (!sc_cli_name_ok (a->snapshot) || (a->since && !sc_cli_name_ok (a->since)))
    return EXIT_FAILURE;
  if (!*a->target)
    return sc_cli_usage_error ("backup: --to needs a path");
  return EXIT_SUCCESS;
}

static void
print_summary (const struct args *a, const struct sc_backup_result *res)
{
  const struct sc_manifest *m = &res->m;

  if (a->json) {
    struct sc_json j;
    sc_json_init (&j, stdout);
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "target", a->target);
    sc_json_member_string (&j, "type", m->incremental ? "incremental"
                           : "full");
    sc_json_member_string (&j, "format", m->format);
    sc_json_member_string (&j, "snapshot", m->snapshot_name);
    sc_json_member_string (&j, "snapshot-uuid", m->snapshot_uuid);
    if (m->incremental) {
      sc_json_member_string (&j, "base-uuid", m->base_uuid);
      sc_json_member_bool (&j, "reflinked", res->reflinked);
    }
    sc_json_member_uint (&j, "volume-size", m->volume_size);
    sc_json_member_uint (&j, "bytes-read", m->bytes_read);
    sc_json_member_uint (&j, "bytes-written", m->bytes_written);
    sc_json_member_uint (&j, "bytes-zeroed", m->bytes_zeroed);
    sc_json_member_string (&j, "start-time", m->start_time);
    sc_json_member_string (&j, "end-time", m->end_time);
    sc_json_member_uint (&j, "connections", res->connections);
    sc_json_member_bool (&j, "resumed", res->resumed);
    if (res->resumed)
      sc_json_member_uint (&j, "resumed-from", res->resumed_from);
    sc_json_key (&j, "this-run");
    sc_json_begin_object (&j);
    sc_json_member_uint (&j, "bytes-read", res->run.bytes_read);
    sc_json_member_uint (&j, "bytes-written", res->run.bytes_written);
    sc_json_member_uint (&j, "bytes-zeroed", res->run.bytes_zeroed);
    sc_json_end_object (&j);
    sc_json_end_object (&j);
  }
  else
    printf ("%s: %s backup of %s: %" PRIu64 " bytes read, %" PRIu64
            " written, %" PRIu64 " zeroed\n", a->target,
            m->incremental ? "incremental" : "full", m->snapshot_name,
            m->bytes_read, m->bytes_written, m->bytes_zeroed);
  if (!a->json && res->resumed)
    printf ("%s: resumed at byte %" PRIu64 ": %" PRIu64 " bytes read in "
            "this run\n", a->target, res->resumed_from, res->run.bytes_read);
}

static void
on_signal (int sig)
{
  (void) sig;
  sc_interrupted = 1;
}

int
sc_cmd_backup (const struct sc_cli_target *t, int argc, char **argv)
{
  struct args a = { .progress_fd = -1 };
  struct sc_backup_result res;
  struct sc_client *c = NULL;
  char err[2048] = "";
  int st, r;

  st = parse_args (argc, argv, &a);
  if (st != EXIT_SUCCESS)
    return st;
  if (sc_cli_open_target (t, SC_CLIENT_SERVER, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;

  struct progress_state ps = { .a = &a, .start_ms = sc_cli_mono_ms (),
                               .last_pct = -1 };
  struct sc_backup_job job = {
    .snapshot = a.snapshot, .target = a.target, .since = a.since,
    .prev = a.prev, .nbd_socket = a.nbd_socket, .format = a.format,
    .progress = a.progress ? on_progress : NULL, .progress_opaque = &ps,
    .resume = a.resume, .connections = a.connections,
    .stop = &sc_interrupted,
  };
  /* SIGINT and SIGTERM stop the copy keeping its work (--resume); a
   * second one ends the command at once (a request hung elsewhere). */
  struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  r = sc_backup_run (c, &job, &res, err, sizeof err);
  if (r == 0)
    print_summary (&a, &res);
  else
    sc_cli_error ("backup %s to %s: %s", a.snapshot, a.target, err);
  sc_manifest_free (&res.m);
  return sc_cli_close_target (c, r == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
