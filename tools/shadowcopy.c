/* shadowcopy: the command-line requester.
 *
 *   shadowcopy [-c SOCKET | --diff DIFFAREA | --volume VOLUME] VERB [ARGS...]
 *   shadowcopy check [--data] DIFFAREA
 *   shadowcopy serve VOLUME, shadowcopy status
 *
 * Exit status: 0 success, 1 error, 2 usage error.  For check: 0 clean
 * (warnings allowed), 1 damaged, 2 usage error or the check could not be
 * done (no such file, in use by a server, a newer format).  Every error
 * is one line on stderr starting "shadowcopy: ", so scripts can show it
 * as is.
 * Verbs check their arguments before touching the volume, so a usage
 * error never changes anything.
 *
 * This file is the global options and the table of verbs; each verb
 * lives in the tools/cmd-*.c of its topic (commands.h).
 */
#include <config.h>

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/volume-conf.h"

/* The verbs of backups, in the middle of usage's list. */
static void
usage_backup (void)
{
  printf (
          "  backup SNAPSHOT --to TARGET --nbd-socket SOCK [--since BASE\n"
          "         --base PREV | --auto [--base PREV]]\n"
          "         [--format raw|qcow2] [--progress[=FD]] [--json]\n"
          "         [--resume] [--connections N]\n"
          "         (--nbd-uri URI instead of --nbd-socket: a server on\n"
          "         TCP or with TLS, e.g. nbds://HOST:PORT?tls-psk-file=F;\n"
          "         also for verify and mount)\n"
          "                            copy a snapshot to a raw or qcow2\n"
          "                            image (full, or incremental on\n"
          "                            PREV) + manifest\n"
          "  backup --create [create's options] [--name NAME] --to TARGET\n"
          "         --nbd-socket SOCK (one of each per -c) [--since BASE\n"
          "         --base PREV... | --auto [--base PREV...]] ...\n"
          "                            snapshot with the writers, back up,\n"
          "                            backup-complete, keep a checkpoint\n"
          "  verify TARGET [--json]    check a backup and its chain against\n"
          "                            their manifests (offline; exit 1 when\n"
          "                            damaged)\n"
          "  verify TARGET --against SNAPSHOT --nbd-socket SOCK [--json]\n"
          "                            also compare it with the snapshot,\n"
          "                            byte for byte (with -c or --diff)\n"
          "  restore TARGET --to DEST [--progress[=FD]] [--json]\n"
          "                            write what a backup holds to a file,\n"
          "                            a block device or an NBD URI, each\n"
          "                            block checked first (offline)\n"
          );
}

static void
usage_revert (void)
{
  printf (
          "  revert NAME [--save-current NAME|--no-save-current]\n"
          "         [--rate BYTES/S] [--force] [--dry-run] [--wait]\n"
          "                            the live volume reads as NAME now;\n"
          "                            written back in the background\n"
          "  revert --status [--wait] [--json]\n"
          "                            the revert's progress (info too)\n"
          "  revert --resume           start a paused revert's copy\n"
          "  revert --rate BYTES/S     change the running revert's rate\n"
          "  revert --set ID [-c SOCKET]... [revert's options]\n"
          "                            revert every volume of a snapshot set\n"
          );
}

/* usage's lines on mounting and on volumes run as services. */
static void
usage_mount_serve (void)
{
  printf (
          "  mount [--nbd-socket SOCK | --nbd-uri URI] NAME DIR\n"
          "                            mount a snapshot read-only\n"
          "                            (a clone read-write)\n"
          "      --recover (replay its journal on a temporary clone first)\n"
          "  umount DIR                undo shadowcopy mount\n"
          "      (mount, backup, verify --against, create --auto-recover:\n"
          "      without --nbd-socket, the socket the server tells, -c)\n"
          "  serve VOLUME [--config FILE] [--dry-run]\n"
          "                            run nbdkit for VOLUME as its file\n"
          "                            (DIR/VOLUME.conf) says; DIR:\n");
  /* The compiled-in directory (configure's sysconfdir): /etc/shadowcopy
   * for the Debian packages, /usr/local/etc/shadowcopy by default. */
  printf ("                            %s/shadowcopy\n"
          "                            or $SHADOWCOPY_CONFDIR\n",
          SC_SYSCONFDIR);
  printf (
          "  status [--json]           every configured volume: running or\n"
          "                            not, snapshots, diff-area use\n"
          );
}

static void
usage_create (void)
{
  printf (
          "  create [OPTIONS] [NAME]   take a snapshot (default name: the\n"
          "                            UTC time), print its name; options:\n"
          "      -c SOCKET (repeat: a snapshot set across volumes),\n"
          "      --writer CMD|KIND:ARG (in-box KINDs: fsfreeze, qemu-ga,\n"
          "      libvirt, postgresql, mysql; see writers),\n"
          "      --writers-dir DIR, --no-writers,\n"
          "      --freeze-timeout S, --hold-timeout S, --retry N,\n"
          "      --retry-delay S, --wait, --auto-release, --run COMMAND,\n"
          "      --delete-oldest (at max-snapshots, delete the oldest first)\n"
          "      --auto-recover --nbd-socket NBDSOCK (keep NAME.recovered,\n"
          "      a clone with its filesystem's journal replayed)\n"
          "  writers [--json] [--writer CMD]... [--writers-dir DIR]\n"
          "                            list writers and their last results\n"
          );
}

static void
usage (void)
{
  printf ("Usage: shadowcopy [-c SOCKET | --diff DIFFAREA | --volume VOLUME]\n"
          "                  VERB [ARGS...]\n"
          "       shadowcopy check [--data] DIFFAREA\n"
          "       shadowcopy serve VOLUME [--config FILE] [--dry-run]\n"
          "       shadowcopy status [--json]\n"
          "\n"
          "Manage the snapshots of a shadowcopy volume.\n"
          "\n"
          "  -c, --control=SOCKET  talk to the server listening on SOCKET\n"
          "                        (repeated: a set, for create and\n"
          "                        backup --create)\n"
          "      --diff=DIFFAREA   talk to the server on DIFFAREA.sock, or\n"
          "                        open DIFFAREA itself if none runs\n"
          "      --volume=VOLUME   -c with the control socket of VOLUME's\n"
          "                        configuration file (see serve)\n"
          "  -h, --help            show this help\n"
          "  -V, --version         show the version\n"
          "\n"
          "Verbs:\n"
          );
  usage_create ();
  usage_mount_serve ();
  printf (
          "  list [--json]             list the snapshots, oldest first\n"
          "  delete NAME...            delete snapshots by name\n"
          "  delete --oldest | --all   delete the oldest, or every snapshot\n"
          "  delete NAME... --keep-checkpoint\n"
          "                            delete snapshots' data, keeping a\n"
          "                            checkpoint of each (for diff)\n"
          "  delete NAME --with-clones delete a snapshot and its clones\n"
          "  delete --set ID           delete every snapshot of a set\n"
          "  clone SNAPSHOT NAME       a writable clone of SNAPSHOT, served\n"
          "                            read-write as export NAME\n"
          "  checkpoint [--delete-oldest] NAME\n"
          "                            mark this moment for diff, keeping\n"
          "                            no data (a server's)\n"
          "  diff FROM [TO] [--json | --summary]\n"
          "                            the byte ranges that may differ\n"
          "                            between FROM and TO (snapshots or\n"
          "                            checkpoints; TO default: live)\n"
          );
  usage_backup ();
  printf (
          "  info [--json]             show the volume and its diff area\n"
          "  stats [--json]            copy-on-write and diff-area counters\n"
          "  resize --max SIZE|N%%|unbounded [--force]\n"
          "                            set the diff area's size limit;\n"
          "                            below its use, --force deletes the\n"
          "                            oldest snapshots\n"
          "  scrub [--rate BYTES/S]    verify every copy in the background\n"
          "                            (server; default 64M/s, 0: no limit)\n"
          "  scrub --status [--json]   the scrub's progress\n"
          );
  usage_revert ();
  printf (
          "  check [--data] DIFFAREA   check a diff area offline (read-only);\n"
          "                            --data also verifies every copy\n"
          "                            (or: --diff DIFFAREA check)\n"
          "  salvage DIFFAREA          offline, when its journal is damaged:\n"
          "                            keep what can be proven intact, mark\n"
          "                            the other snapshots invalid\n"
          "\n"
          "create and checkpoint need a running server; list, info, delete,\n"
          "clone and diff also work offline with --diff; check and salvage\n"
          "work only offline.\n"
          "Exit status: 0 ok, 1 error, 2 usage.  check: 0 clean, 1 damaged,\n"
          "2 usage, or the diff area cannot be checked (missing, in use).\n");
}

/* What a verb needs of the global options. */
enum volume {
  VOLUME_NEEDED,                /* -c SOCKET or --diff DIFFAREA */
  VOLUME_OPTIONAL,              /* names it itself, or needs none */
  VOLUME_UNLESS_SET,            /* delete --set names its own with -c */
  VOLUME_SET,                   /* optional, and -c may be repeated (a
                                   set: create, backup --create) */
};

/* The -c given after the first one. */
#define MORE_SOCKETS_MAX 64

/* check and salvage name their diff area themselves: shadowcopy check
 * DIFFAREA; create
 * may name its volumes with its own -c; writers, mount and umount may
 * need no volume. */
static const struct verb {
  const char *name;
  int (*run) (const struct sc_cli_target *t, int argc, char **argv);
  enum volume volume;
} verbs[] = {
  { "create", sc_cmd_create, VOLUME_SET },
  { "writers", sc_cmd_writers, VOLUME_OPTIONAL },
  { "mount", sc_cmd_mount, VOLUME_OPTIONAL },
  { "umount", sc_cmd_umount, VOLUME_OPTIONAL },
  { "list", sc_cmd_list, VOLUME_NEEDED },
  { "delete", sc_cmd_delete, VOLUME_UNLESS_SET },
  { "info", sc_cmd_info, VOLUME_NEEDED },
  { "diff", sc_cmd_diff, VOLUME_NEEDED },
  { "checkpoint", sc_cmd_checkpoint, VOLUME_NEEDED },
  { "clone", sc_cmd_clone, VOLUME_NEEDED },
  { "backup", sc_cmd_backup, VOLUME_SET },
  { "verify", sc_cmd_verify, VOLUME_OPTIONAL },
  { "restore", sc_cmd_restore, VOLUME_OPTIONAL },
  { "check", sc_cmd_check, VOLUME_OPTIONAL },
  { "salvage", sc_cmd_salvage, VOLUME_OPTIONAL },
  { "stats", sc_cmd_stats, VOLUME_NEEDED },
  { "resize", sc_cmd_resize, VOLUME_NEEDED },
  { "scrub", sc_cmd_scrub, VOLUME_NEEDED },
  { "revert", sc_cmd_revert, VOLUME_UNLESS_SET },
  { "serve", sc_cmd_serve, VOLUME_OPTIONAL },
  { "status", sc_cmd_status, VOLUME_OPTIONAL },
};

static const struct verb *
find_verb (const char *name)
{
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (strcmp (name, verbs[i].name) == 0)
      return &verbs[i];
  return NULL;
}

/* Whether the verb (NULL: none or an unknown one) needs the global
 * options to name a volume. */
static bool
needs_volume (const struct verb *v, int argc, char **argv)
{
  if (!v)
    return true;
  if (v->volume == VOLUME_UNLESS_SET)
    return !(argc > 0 && strcmp (argv[0], "--set") == 0);
  return v->volume == VOLUME_NEEDED;
}

static const char *more_sockets[MORE_SOCKETS_MAX];

/* --volume NAME: its control socket, from its configuration file,
 * taken as a -c. */
static int
volume_socket (const char *name, struct sc_cli_target *t)
{
  static char sockets[MORE_SOCKETS_MAX + 1][4096];
  static size_t nsockets;
  struct sc_volume_conf vc;
  char err[8192];

  if (nsockets == MORE_SOCKETS_MAX + 1) {
    sc_cli_error ("at most %d volumes", MORE_SOCKETS_MAX + 1);
    return EXIT_FAILURE;
  }
  if (sc_volume_conf_load (name, NULL, &vc, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return EXIT_FAILURE;
  }
  char *sock = sockets[nsockets++];
  snprintf (sock, sizeof sockets[0], "%s", vc.control);
  sc_volume_conf_free (&vc);
  if (!t->socket)
    t->socket = sock;
  else if (t->nmore_sockets == MORE_SOCKETS_MAX) {
    sc_cli_error ("at most %d volumes", MORE_SOCKETS_MAX + 1);
    return EXIT_FAILURE;
  }
  else
    more_sockets[t->nmore_sockets++] = sock;
  return EXIT_SUCCESS;
}

/* The global options, up to the verb: -1 to go on with the verb at
 * argv[optind], else the exit status. */
static int
parse_global_options (int argc, char **argv, struct sc_cli_target *t)
{
  enum { OPT_DIFF = 256, OPT_VOLUME };
  static const struct option long_options[] = {
    { "control", required_argument, NULL, 'c' },
    { "diff", required_argument, NULL, OPT_DIFF },
    { "volume", required_argument, NULL, OPT_VOLUME },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  int opt;

  opterr = 0;                   /* our own one-line messages instead */
  while ((opt = getopt_long (argc, argv, "+:c:hV", long_options,
                             NULL)) != -1) {
    switch (opt) {
    case 'c':
      if (!t->socket)
        t->socket = optarg;
      else if (t->nmore_sockets == MORE_SOCKETS_MAX)
        return sc_cli_usage_error ("at most %d volumes",
                                   MORE_SOCKETS_MAX + 1);
      else
        more_sockets[t->nmore_sockets++] = optarg;
      break;
    case OPT_DIFF:
      t->diff = optarg;
      break;
    case OPT_VOLUME:
      /* --volume NAME: -c with the control socket of NAME's file. */
      if (volume_socket (optarg, t) != EXIT_SUCCESS)
        return EXIT_FAILURE;
      break;
    case 'h':
      usage ();
      return EXIT_SUCCESS;
    case 'V':
      printf ("shadowcopy %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    case ':':
      return sc_cli_usage_error ("option '%s' needs an argument",
                                 argv[optind - 1]);
    default:
      if (optopt)
        return sc_cli_usage_error ("unknown option '-%c'", optopt);
      return sc_cli_usage_error ("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (t->socket && t->diff)
    return sc_cli_usage_error ("use either -c SOCKET or --diff DIFFAREA, "
                               "not both");
  return -1;
}

int
main (int argc, char *argv[])
{
  struct sc_cli_target t = { .socket = NULL };
  const struct verb *verb = NULL;
  char **args = NULL;
  int nargs = 0, status;

  /* A server that hangs up mid-request is an error to report, not a
   * signal to die of. */
  signal (SIGPIPE, SIG_IGN);

  status = parse_global_options (argc, argv, &t);
  if (status != -1)
    return status;
  if (optind < argc) {
    verb = find_verb (argv[optind]);
    args = argv + optind + 1;
    nargs = argc - optind - 1;
  }
  if (t.nmore_sockets && verb && verb->volume != VOLUME_SET)
    return sc_cli_usage_error ("-c given more than once: only create and "
                               "backup --create take several volumes");
  t.more_sockets = more_sockets;
  if (!t.socket && !t.diff && needs_volume (verb, nargs, args))
    return sc_cli_usage_error ("say which volume: -c SOCKET (the server's "
                               "control socket) or --diff DIFFAREA (the "
                               "diff-area file, diff=)");
  /* Every verb takes --diff as the diff-area file (or its DIFF.sock):
   * the control socket given there is a mistake, said as such. */
  if (t.diff) {
    struct stat st;
    if (stat (t.diff, &st) == 0 && S_ISSOCK (st.st_mode))
      return sc_cli_usage_error ("--diff %s: %s is a socket; the diff area "
                                 "is the file the server was started with "
                                 "(diff=); its control socket is given "
                                 "with -c", t.diff, t.diff);
  }
  if (optind == argc)
    return sc_cli_usage_error ("no verb given");
  if (!verb)
    return sc_cli_usage_error ("unknown verb '%s'", argv[optind]);

  status = verb->run (&t, nargs, args);
  if (fflush (stdout) == EOF || ferror (stdout)) {
    sc_cli_error ("error writing to standard output");
    return EXIT_FAILURE;
  }
  return status;
}
