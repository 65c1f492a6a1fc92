/* shadowcopy backup: a snapshot copied to a backup image, full or
 * incremental, with its manifest.
 *
 *   shadowcopy -c SOCK | --diff DIFF backup SNAPSHOT --to TARGET
 *              --nbd-socket NBDSOCK [--since BASE --base PREV | --auto
 *              [--base PREV]] [--format raw|qcow2] [--progress[=FD]] [--json]
 *              [--resume] [--connections N]
 *   shadowcopy -c SOCK [-c SOCK2]... backup --create [create's options]
 *              [--name NAME] --to TARGET [--to TARGET2]...
 *              --nbd-socket NBDSOCK [--nbd-socket NBDSOCK2]...
 *              [--since BASE --base PREV [--base PREV2]... | --auto
 *              [--base PREV]...] [--format raw|qcow2] [--progress[=FD]] [--json]
 *              [--connections N]
 *
 * The control socket says who the snapshot is and what changed; the
 * data comes over NBD from the snapshot's export (nbdkit -U NBDSOCK, the
 * export named after the snapshot), as for `mount`.  backup-job.h has
 * the steps of one backup, backup-auto.h the choice of --auto, and
 * backup-create.h the whole flow of --create (one TARGET, NBD socket and
 * PREV per volume, in the order of -c; --since once for every volume,
 * or once per volume); this file reads the command line and shows the
 * progress and the summary.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/backup-auto.h"
#include "tools/backup-create.h"
#include "tools/backup-job.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/json.h"
#include "tools/nbd-listen.h"
#include "tools/progress.h"
#include "tools/writers.h"

#define VOLS_MAX SC_CREATE_VOLUMES_MAX

/* One list per repeatable option: one value per volume. */
struct list {
  const char *v[VOLS_MAX];
  size_t n;
};

struct args {
  const char *snapshot, *name;
  struct list target, since, prev, nbd_socket;   /* nbd_socket: or URI */
  bool nbd_is_uri[VOLS_MAX];    /* nbd_socket.v[k] came from --nbd-uri */
  bool create, auto_base;
  struct sc_create_options *opts;       /* with --create */
  char first_socket[4096];              /* DIFF.sock, for --diff */
  enum sc_image_format format;
  bool json;
  struct sc_progress progress;
  bool resume;                  /* continue a TARGET.partial */
  unsigned connections;         /* 0: the default */
  char found[VOLS_MAX][128];    /* NBD sockets the servers told (INFO) */
};

/* The list of option `opt` (one that takes a value), or NULL. */
static struct list *
list_of (struct args *a, const char *opt)
{
  if (strcmp (opt, "--to") == 0)
    return &a->target;
  if (strcmp (opt, "--since") == 0)
    return &a->since;
  if (strcmp (opt, "--base") == 0)
    return &a->prev;
  if (strcmp (opt, "--nbd-socket") == 0 || strcmp (opt, "--nbd-uri") == 0)
    return &a->nbd_socket;
  return NULL;
}

/* One of backup's own options at argv[*i]: EXIT_SUCCESS, SC_EXIT_USAGE
 * (said), or -1 when it is not one. */
static int
parse_option (struct args *a, int argc, char **argv, int *i)
{
  const char *s = argv[*i];
  struct list *l = list_of (a, s);

  if (l || strcmp (s, "--name") == 0 || strcmp (s, "--format") == 0) {
    if (*i + 1 >= argc)
      return sc_cli_usage_error ("backup: %s needs a value", s);
    const char *val = argv[++*i];
    if (strcmp (s, "--format") == 0) {
      if (sc_image_format_parse (val, &a->format) < 0)
        return sc_cli_usage_error ("backup: --format needs raw or qcow2");
    }
    else if (strcmp (s, "--name") == 0)
      a->name = val;
    else if (l->n == VOLS_MAX)
      return sc_cli_usage_error ("backup: %s given more than %d times", s,
                                 VOLS_MAX);
    else {
      if (l == &a->nbd_socket)
        a->nbd_is_uri[l->n] = strcmp (s, "--nbd-uri") == 0;
      l->v[l->n++] = val;
    }
    return EXIT_SUCCESS;
  }
  if (strcmp (s, "--json") == 0)
    a->json = true;
  else if (strcmp (s, "--auto") == 0)
    a->auto_base = true;
  else if (strcmp (s, "--create") == 0)
    a->create = true;
  else if (strcmp (s, "--resume") == 0)
    a->resume = true;
  else if (strcmp (s, "--connections") == 0) {
    char *end;
    long n = *i + 1 < argc ? strtol (argv[*i + 1], &end, 10) : 0;
    if (*i + 1 >= argc || !argv[*i + 1][0] || *end || n < 1
        || n > SC_BACKUP_MAX_CONNECTIONS)
      return sc_cli_usage_error ("backup: --connections needs a number "
                                 "from 1 to %d", SC_BACKUP_MAX_CONNECTIONS);
    a->connections = (unsigned) n;
    ++*i;
  }
  else {
    int p = sc_progress_option ("backup", s, &a->progress);
    if (p == 0)
      return -1;
    if (p != 1)
      return p;
  }
  return EXIT_SUCCESS;
}

/* Whether --create is among the arguments: create's options are taken
 * only with it. */
static bool
has_create (int argc, char **argv)
{
  for (int i = 0; i < argc && strcmp (argv[i], "--") != 0; i++)
    if (strcmp (argv[i], "--create") == 0)
      return true;
  return false;
}

/* The counts of the per-volume options against the `n` volumes. */
static int
check_counts (const struct args *a, size_t n)
{
  if (a->target.n != n || (a->nbd_socket.n && a->nbd_socket.n != n))
    return sc_cli_usage_error ("backup: one --to TARGET and one "
                               "--nbd-socket NBDSOCK or --nbd-uri URI per "
                               "volume (%zu), or neither (asked of each "
                               "server)", n);
  for (size_t k = 0; k < a->nbd_socket.n; k++) {
    char err[1024];
    if (a->nbd_is_uri[k] && sc_nbd_uri_check (a->nbd_socket.v[k], err,
                                              sizeof err) < 0)
      return sc_cli_usage_error ("backup: %s", err);
  }
  if (a->auto_base && a->since.n)
    return sc_cli_usage_error ("backup: --auto chooses BASE itself: "
                               "without --since");
  if (a->prev.n && a->prev.n != n)
    return sc_cli_usage_error ("backup: one --base PREV per volume (%zu)",
                               n);
  if (!a->auto_base && !a->since.n != !a->prev.n)
    return sc_cli_usage_error ("backup: --since BASE and --base PREV go "
                               "together");
  if (a->since.n > 1 && a->since.n != n)
    return sc_cli_usage_error ("backup: --since once for every volume, or "
                               "once per volume (%zu)", n);
  for (size_t k = 0; k < a->since.n; k++)
    if (!sc_cli_name_ok (a->since.v[k]))
      return EXIT_FAILURE;
  for (size_t k = 0; k < a->target.n; k++)
    if (!*a->target.v[k])
      return sc_cli_usage_error ("backup: --to needs a path");
  return EXIT_SUCCESS;
}

/* --create: the checks once every option is in. */
static int
parse_create (struct args *a)
{
  struct sc_create_options *o = a->opts;
  int st;

  if (a->snapshot)
    return sc_cli_usage_error ("backup --create makes its snapshot: no "
                               "SNAPSHOT (--name NAME names it)");
  if (a->resume)
    return sc_cli_usage_error ("backup --create makes a new snapshot each "
                               "time: there is nothing to --resume");
  if (o->run)
    return sc_cli_usage_error ("backup --create: --run is create's (the "
                               "backup is what runs)");
  if ((st = sc_create_options_check (o)) != EXIT_SUCCESS)
    return st;
  if (a->name) {
    if (!sc_cli_name_ok (a->name))
      return EXIT_FAILURE;
    snprintf (o->seq.name, sizeof o->seq.name, "%s", a->name);
    o->seq.have_name = true;
  }
  return check_counts (a, o->seq.nvols);
}

/* --create: the volumes of the global options first (-c, repeated). */
static int
create_volumes (struct args *a, const struct sc_cli_target *t)
{
  const char *first = sc_cli_target_socket (t, a->first_socket,
                                            sizeof a->first_socket);
  int st;

  if (first && (st = sc_create_options_volume (a->opts, first))
      != EXIT_SUCCESS)
    return st;
  for (size_t k = 0; k < t->nmore_sockets; k++)
    if ((st = sc_create_options_volume (a->opts, t->more_sockets[k]))
        != EXIT_SUCCESS)
      return st;
  return EXIT_SUCCESS;
}

/* No --nbd-socket: each volume's NBD socket as its server tells it
 * (INFO's listen line), in the order of the -c.  EXIT_SUCCESS, or
 * EXIT_FAILURE (said). */
static int
discover_nbd_sockets (struct args *a, const struct sc_cli_target *t)
{
  char buf[4096];
  const char *first = sc_cli_target_socket (t, buf, sizeof buf);
  size_t n = a->target.n;

  for (size_t k = 0; k < n; k++) {
    const char *control = k == 0 ? first : t->more_sockets[k - 1];
    if (!control || sc_nbd_listen_socket (control, a->found[k],
                                          sizeof a->found[k])
        != EXIT_SUCCESS)
      return EXIT_FAILURE;
    a->nbd_socket.v[k] = a->found[k];
  }
  a->nbd_socket.n = n;
  return EXIT_SUCCESS;
}

static int
parse_args (int argc, char **argv, const struct sc_cli_target *t,
            struct args *a)
{
  int st;

  a->create = has_create (argc, argv);
  if (a->create && (st = create_volumes (a, t)) != EXIT_SUCCESS)
    return st;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    st = parse_option (a, argc, argv, &i);
    if (st == -1 && a->create)
      st = sc_create_option (a->opts, argc, argv, &i);
    if (st >= 0 && st != EXIT_SUCCESS)
      return st;
    if (st == EXIT_SUCCESS)
      continue;
    if (s[0] == '-')
      return sc_cli_usage_error ("backup: unexpected option '%s'", s);
    if (a->snapshot)
      return sc_cli_usage_error ("backup: unexpected argument '%s'", s);
    a->snapshot = s;
  }
  if (a->create)
    return parse_create (a);
  if (a->name)
    return sc_cli_usage_error ("backup: --name is for --create");
  if (!t->socket && !t->diff)
    return sc_cli_usage_error ("say which volume: -c SOCKET (the server's "
                               "control socket) or --diff DIFFAREA (the "
                               "diff-area file, diff=)");
  if (!a->snapshot || !a->target.n)
    return sc_cli_usage_error ("backup needs SNAPSHOT and --to TARGET");
  if (!sc_cli_name_ok (a->snapshot))
    return EXIT_FAILURE;
  return check_counts (a, 1);
}

/* One backup's summary: a JSON object (its members: the caller's
 * object is open), or a line. */
static void
print_summary (const struct args *a, struct sc_json *j, const char *target,
               const struct sc_backup_result *res, const char *why)
{
  const struct sc_manifest *m = &res->m;

  if (!a->json) {
    printf ("%s: %s backup of %s: %" PRIu64 " bytes read, %" PRIu64
            " written, %" PRIu64 " zeroed\n", target,
            m->incremental ? "incremental" : "full", m->snapshot_name,
            m->bytes_read, m->bytes_written, m->bytes_zeroed);
    if (res->resumed)
      printf ("%s: resumed at byte %" PRIu64 ": %" PRIu64 " bytes read in "
              "this run\n", target, res->resumed_from, res->run.bytes_read);
    return;
  }
  sc_json_member_string (j, "target", target);
  sc_json_member_string (j, "type", m->incremental ? "incremental" : "full");
  if (why)
    sc_json_member_string (j, "why", why);
  sc_json_member_string (j, "format", m->format);
  sc_json_member_string (j, "snapshot", m->snapshot_name);
  sc_json_member_string (j, "snapshot-uuid", m->snapshot_uuid);
  if (m->incremental) {
    sc_json_member_string (j, "base-uuid", m->base_uuid);
    sc_json_member_bool (j, "reflinked", res->reflinked);
  }
  sc_json_member_uint (j, "volume-size", m->volume_size);
  sc_json_member_uint (j, "bytes-read", m->bytes_read);
  sc_json_member_uint (j, "bytes-written", m->bytes_written);
  sc_json_member_uint (j, "bytes-zeroed", m->bytes_zeroed);
  sc_json_member_string (j, "start-time", m->start_time);
  sc_json_member_string (j, "end-time", m->end_time);
  sc_json_member_uint (j, "connections", res->connections);
  sc_json_member_bool (j, "resumed", res->resumed);
  if (res->resumed)
    sc_json_member_uint (j, "resumed-from", res->resumed_from);
  sc_json_key (j, "this-run");
  sc_json_begin_object (j);
  sc_json_member_uint (j, "bytes-read", res->run.bytes_read);
  sc_json_member_uint (j, "bytes-written", res->run.bytes_written);
  sc_json_member_uint (j, "bytes-zeroed", res->run.bytes_zeroed);
  sc_json_end_object (j);
}

static void
on_signal (int sig)
{
  (void) sig;
  sc_interrupted = 1;
}

/* SIGINT and SIGTERM stop the copy keeping its work (--resume); a
 * second one ends the command at once (a request hung elsewhere). */
static void
catch_stop (void)
{
  struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
}

/* Where volume k's snapshot is served: --nbd-socket or --nbd-uri. */
static struct sc_nbd_target
nbd_target (const struct args *a, size_t k)
{
  return a->nbd_is_uri[k]
    ? (struct sc_nbd_target) { .uri = a->nbd_socket.v[k] }
    : (struct sc_nbd_target) { .socket = a->nbd_socket.v[k] };
}

/* backup SNAPSHOT. */
static int
backup_one (const struct sc_cli_target *t, struct args *a,
            struct sc_progress *ps)
{
  struct sc_backup_result res = { .m = { .crc = NULL } };
  struct sc_backup_base b;
  struct shadowcopy *c = NULL;
  char err[4096] = "";
  int r = 0;

  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  struct sc_backup_job job = {
    .snapshot = a->snapshot, .target = a->target.v[0],
    .since = a->since.n ? a->since.v[0] : NULL,
    .prev = a->prev.n ? a->prev.v[0] : NULL,
    .nbd = nbd_target (a, 0), .format = a->format,
    .progress = a->progress.on ? sc_progress_update : NULL,
    .progress_opaque = ps,
    .resume = a->resume, .connections = a->connections,
    .stop = &sc_interrupted,
  };
  catch_stop ();
  if (a->auto_base) {
    r = sc_backup_auto (c, a->snapshot, job.target, job.prev, &b, err,
                        sizeof err);
    if (r == 0) {
      sc_cli_error ("%s", b.why);
      job.since = b.incremental ? b.base : NULL;
      job.prev = b.incremental ? b.prev : NULL;
    }
  }
  if (r == 0)
    r = sc_backup_run (c, &job, &res, err, sizeof err);
  if (r == 0) {
    struct sc_json j;
    if (a->json) {
      sc_json_init (&j, stdout);
      sc_json_begin_object (&j);
    }
    print_summary (a, &j, job.target, &res, a->auto_base ? b.why : NULL);
    if (a->json)
      sc_json_end_object (&j);
  }
  else
    sc_cli_error ("backup %s to %s: %s", a->snapshot, job.target, err);
  sc_manifest_free (&res.m);
  return sc_cli_close_target (c, r == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

/* backup --create; the summary when every volume was backed up. */
static int
backup_create (struct args *a, struct sc_progress *ps)
{
  struct sc_backup_create bc = {
    .opts = a->opts, .auto_base = a->auto_base, .format = a->format,
    .progress = a->progress.on ? sc_progress_update : NULL,
    .progress_opaque = ps,
    .connections = a->connections,
  };
  struct sc_create *cr = &a->opts->seq;
  struct sc_json j;
  int st;

  for (size_t k = 0; k < cr->nvols; k++) {
    bc.vols[k].target = a->target.v[k];
    bc.vols[k].nbd = nbd_target (a, k);
    bc.vols[k].since = a->since.n ? a->since.v[a->since.n > 1 ? k : 0]
                       : NULL;
    bc.vols[k].prev = a->prev.n ? a->prev.v[k] : NULL;
  }
  st = sc_backup_create_run (&bc);
  if (st == EXIT_SUCCESS && a->json) {
    sc_json_init (&j, stdout);
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "snapshot", cr->name);
    if (cr->nvols > 1)
      sc_json_member_string (&j, "set", cr->set_id);
    sc_json_key (&j, "volumes");
    sc_json_begin_array (&j);
  }
  for (size_t k = 0; k < cr->nvols; k++) {
    struct sc_backup_create_volume *v = &bc.vols[k];
    if (st == EXIT_SUCCESS && a->json) {
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "volume", cr->vols[k].socket);
    }
    if (st == EXIT_SUCCESS)
      print_summary (a, &j, v->target, &v->res,
                     a->auto_base ? v->chosen.why : NULL);
    if (st == EXIT_SUCCESS && a->json) {
      sc_json_member_bool (&j, "checkpoint-kept", v->kept);
      sc_json_end_object (&j);
    }
    sc_manifest_free (&v->res.m);
  }
  if (st == EXIT_SUCCESS && a->json) {
    sc_json_end_array (&j);
    sc_json_end_object (&j);
  }
  return st;
}

int
sc_cmd_backup (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_create_options opts;
  struct args a = { .progress = SC_PROGRESS_INIT, .opts = &opts };
  int st;

  if (sc_create_options_init (&opts, "backup", argc) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  st = parse_args (argc, argv, t, &a);
  if (st == EXIT_SUCCESS && !a.nbd_socket.n)
    st = discover_nbd_sockets (&a, t);
  sc_progress_start (&a.progress);
  if (st == EXIT_SUCCESS)
    st = a.create ? backup_create (&a, &a.progress)
         : backup_one (t, &a, &a.progress);
  sc_create_options_free (&opts);
  return st;
}
