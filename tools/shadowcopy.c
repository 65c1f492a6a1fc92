/* shadowcopy: the command-line requester.
 *
 *   shadowcopy [-c SOCKET | --diff DIFFAREA] VERB [ARGS...]
 *   shadowcopy check DIFFAREA
 *
 * Exit status: 0 success, 1 error, 2 usage error.  For check: 0 clean
 * (warnings allowed), 1 damaged, 2 usage error or the check could not be
 * done (no such file, in use by a server, a newer format).  Every error
 * is one line on stderr starting "shadowcopy: ", so scripts can show it
 * as is.
 * Verbs check their arguments before touching the volume, so a usage
 * error never changes anything.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/check.h"
#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/cmd-space.h"
#include "tools/commands.h"
#include "tools/writers.h"

static void
usage (void)
{
  printf ("Usage: shadowcopy [-c SOCKET | --diff DIFFAREA] VERB [ARGS...]\n"
          "       shadowcopy check DIFFAREA\n"
          "\n"
          "Manage the snapshots of a shadowcopy volume.\n"
          "\n"
          "  -c, --control=SOCKET  talk to the server listening on SOCKET\n"
          "      --diff=DIFFAREA   talk to the server on DIFFAREA.sock, or\n"
          "                        open DIFFAREA itself if none runs\n"
          "  -h, --help            show this help\n"
          "  -V, --version         show the version\n"
          "\n"
          "Verbs:\n"
          "  create [OPTIONS] [NAME]   take a snapshot (default name: the\n"
          "                            UTC time), print its name; options:\n"
          "      -c SOCKET (repeat: a snapshot set across volumes),\n"
          "      --writer CMD|fsfreeze:MNT, --writers-dir DIR, --no-writers,\n"
          "      --freeze-timeout S, --hold-timeout S, --retry N,\n"
          "      --retry-delay S, --wait, --auto-release, --run COMMAND,\n"
          "      --delete-oldest (at max-snapshots, delete the oldest first)\n"
          "  writers [--json] [--writer CMD]... [--writers-dir DIR]\n"
          "                            list writers and their last results\n"
          "  mount --nbd-socket SOCK NAME DIR   mount a snapshot read-only\n"
          "  umount DIR                undo shadowcopy mount\n"
          "  list [--json]             list the snapshots, oldest first\n"
          "  delete NAME...            delete snapshots by name\n"
          "  delete --oldest | --all   delete the oldest, or every snapshot\n"
          "  delete --set ID           delete every snapshot of a set\n"
          "  info [--json]             show the volume and its diff area\n"
          "  stats [--json]            copy-on-write and diff-area counters\n"
          "  resize --max SIZE|N%%|unbounded [--force]\n"
          "                            set the diff area's size limit;\n"
          "                            below its use, --force deletes the\n"
          "                            oldest snapshots\n"
          "  check DIFFAREA            check a diff area offline (read-only)\n"
          "                            (or: --diff DIFFAREA check)\n"
          "\n"
          "create needs a running server; list, info and delete also work\n"
          "offline with --diff; check works only offline.\n"
          "Exit status: 0 ok, 1 error, 2 usage.  check: 0 clean, 1 damaged,\n"
          "2 usage, or the diff area cannot be checked (missing, in use).\n");
}

static void
json_string (const char *s)
{
  putchar ('"');
  for (; *s; s++) {
    unsigned char ch = *s;

    if (ch == '"' || ch == '\\')
      printf ("\\%c", ch);
    else if (ch < 0x20 || ch == 0x7f)
      printf ("\\u%04x", ch);
    else
      putchar (ch);
  }
  putchar ('"');
}

/* ---- verbs ----------------------------------------------------------- */

static int
cmd_create (const struct sc_cli_target *t, int argc, char **argv)
{
  char buf[4096];

  return sc_cmd_create (sc_cli_target_socket (t, buf, sizeof buf), argc, argv);
}

static int
cmd_mount (const struct sc_cli_target *t, int argc, char **argv)
{
  char buf[4096];

  return sc_cmd_mount (sc_cli_target_socket (t, buf, sizeof buf), argc, argv);
}

static int
cmd_umount (const struct sc_cli_target *t, int argc, char **argv)
{
  return sc_cmd_umount (argc, argv);
}

/* writers [--json] [--writer CMD]... [--writers-dir DIR] */
static int
cmd_writers (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_writer *w;
  size_t n, nc = 0;
  const char *dir = NULL;
  bool json = false;
  char err[1024];
  char **cmds = calloc (argc + 1, sizeof *cmds);
  int i;

  if (!cmds)
    return EXIT_FAILURE;
  for (i = 0; i < argc; i++) {
    if (strcmp (argv[i], "--json") == 0)
      json = true;
    else if (strcmp (argv[i], "--writer") == 0 && i + 1 < argc)
      cmds[nc++] = argv[++i];
    else if (strcmp (argv[i], "--writers-dir") == 0 && i + 1 < argc)
      dir = argv[++i];
    else {
      free (cmds);
      return sc_cli_usage_error ("writers: unexpected argument '%s'", argv[i]);
    }
  }
  if (sc_writers_collect (cmds, nc, dir ? dir : SC_WRITERS_DIR_DEFAULT,
                          !dir, &w, &n, err, sizeof err) < 0) {
    free (cmds);
    sc_cli_error ("%s", err);
    return EXIT_FAILURE;
  }
  free (cmds);
  sc_writers_print (w, n, json);
  sc_writers_free (w, n);
  return EXIT_SUCCESS;
}

static const char *
state_text (const struct sc_client_snapshot *s, char *buf, size_t len)
{
  if (s->valid)
    return "valid";
  snprintf (buf, len, "invalid: %s", s->reason);
  return buf;
}

static void
print_table (const struct sc_client_snapshot *s, size_t n)
{
  int wid = 2, wname = 4, wcreated = 7, wstate = 5;
  char buf[sizeof s->reason + 16];
  size_t i;

#define WIDEN(w, len) do { if ((int) (len) > (w)) (w) = (len); } while (0)
  for (i = 0; i < n; i++) {
    WIDEN (wid, snprintf (NULL, 0, "%" PRIu64, s[i].id));
    WIDEN (wname, strlen (s[i].name));
    WIDEN (wcreated, strlen (s[i].created));
    WIDEN (wstate, strlen (state_text (&s[i], buf, sizeof buf)));
  }
#undef WIDEN
  printf ("%-*s  %-*s  %-*s  %-*s  %-12s  %s\n", wid, "ID", wname, "NAME",
          wcreated, "CREATED", wstate, "STATE", "USED", "SET");
  for (i = 0; i < n; i++)
    printf ("%-*" PRIu64 "  %-*s  %-*s  %-*s  %-12" PRIu64 "  %s%s\n",
            wid, s[i].id, wname, s[i].name, wcreated, s[i].created,
            wstate, state_text (&s[i], buf, sizeof buf), s[i].used_bytes,
            s[i].set[0] ? s[i].set : "-",
            s[i].auto_release ? " (auto-release)" : "");
}

static void
print_json (const struct sc_client_snapshot *s, size_t n)
{
  size_t i;

  printf ("[");
  for (i = 0; i < n; i++) {
    printf ("%s\n  {\"id\": %" PRIu64 ", \"name\": ", i ? "," : "", s[i].id);
    json_string (s[i].name);
    printf (", \"created\": ");
    json_string (s[i].created);
    printf (", \"epoch\": %" PRIu64 ", \"state\": \"%s\"",
            s[i].epoch, s[i].valid ? "valid" : "invalid");
    if (!s[i].valid) {
      printf (", \"reason\": ");
      json_string (s[i].reason);
    }
    printf (", \"used_bytes\": %" PRIu64 ", \"discarded_bytes\": %" PRIu64,
            s[i].used_bytes, s[i].discarded_bytes);
    if (s[i].set[0])
      printf (", \"set\": \"%s\"", s[i].set);
    printf (", \"auto_release\": %s}", s[i].auto_release ? "true" : "false");
  }
  printf ("%s]\n", n ? "\n" : "");
}

static int
cmd_list (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_client_snapshot *s;
  struct sc_client *c;
  char err[1024];
  size_t n;
  bool json;
  int status;

  status = sc_cli_json_flag ("list", argc, argv, &json);
  if (status == 0)
    status = sc_cli_open_target (t, SC_CLIENT_READ, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (sc_client_list (c, &s, &n, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  if (json)
    print_json (s, n);
  else {
    print_table (s, n);
    space_print_drops (c);
  }
  free (s);
  return sc_cli_close_target (c, EXIT_SUCCESS);
}

static int
cmd_info (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_client_volume v;
  struct sc_client *c;
  char err[1024];
  bool json;
  int status;

  status = sc_cli_json_flag ("info", argc, argv, &json);
  if (status == 0)
    status = sc_cli_open_target (t, SC_CLIENT_READ, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (sc_client_info (c, &v, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  if (json) {
    printf ("{\"volume_size\": %" PRIu64 ", \"chunk_size\": %" PRIu64
            ", \"diff_used_bytes\": %" PRIu64
            ", \"diff_file_bytes\": %" PRIu64 ", \"snapshots\": %" PRIu64
            ", \"copies\": %" PRIu64 ", \"epoch\": %" PRIu64
            ", \"origin\": ",
            v.volume_size, v.chunk_size, v.diff_used_bytes,
            v.diff_file_bytes, v.snapshots, v.copies, v.epoch);
    json_string (v.origin);
    if (v.have_holds)
      printf (", \"holds\": {\"count\": %" PRIu64 ", \"last_ns\": %" PRIu64
              ", \"p50_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
              ", \"max_ns\": %" PRIu64 "}", v.holds, v.hold_last_ns,
              v.hold_p50_ns, v.hold_p99_ns, v.hold_max_ns);
    space_print_info (&v, true);
    printf ("}\n");
  }
  else {
    printf ("volume size: %" PRIu64 "\n"
            "chunk size: %" PRIu64 "\n"
            "diff-area bytes used: %" PRIu64 "\n"
            "diff-area file bytes: %" PRIu64 "\n"
            "snapshots: %" PRIu64 "\n"
            "copies: %" PRIu64 "\n"
            "epoch: %" PRIu64 "\n"
            "origin: %s\n",
            v.volume_size, v.chunk_size, v.diff_used_bytes,
            v.diff_file_bytes, v.snapshots, v.copies, v.epoch, v.origin);
    if (v.have_holds && v.holds)
      printf ("write holds at creation: %" PRIu64 " (last %.3f ms, "
              "p50 %.3f ms, p99 %.3f ms, max %.3f ms)\n", v.holds,
              v.hold_last_ns / 1e6, v.hold_p50_ns / 1e6,
              v.hold_p99_ns / 1e6, v.hold_max_ns / 1e6);
    space_print_info (&v, false);
  }
  return sc_cli_close_target (c, EXIT_SUCCESS);
}

static void
print_deleted (const char *name, void *opaque)
{
  printf ("%s\n", name);
  fflush (stdout);
}

/* A "deleted" line of DELETE-SET: print the name, count it. */
static int
on_set_deleted (const struct sc_ctl_line *line, void *opaque)
{
  const char *name = sc_ctl_field (line, "name");

  if (strcmp (line->kind, "deleted") != 0)
    return 0;
  if (!name)
    return -EPROTO;
  print_deleted (name, NULL);
  ++*(size_t *) opaque;
  return 0;
}

/* delete --set ID [-c SOCKET]...: every member of the set on each volume
 * (the global target and each -c); online in one DELETE-SET request,
 * offline by name.  Fails if no volume had one. */
static int
delete_set (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *id = argv[1];
  uint8_t raw[16];
  char norm[SC_CTL_UUID_LEN], err[1024];
  int status = EXIT_SUCCESS, i;
  size_t found = 0;

  if (sc_ctl_parse_uuid (id, raw) < 0)
    return sc_cli_usage_error ("delete --set: not a set id (UUID): %s", id);
  sc_ctl_format_uuid (raw, norm);
  for (i = 2; i < argc; i++)
    if ((strcmp (argv[i], "-c") != 0 && strcmp (argv[i], "--control") != 0)
        || i + 1 == argc)
      return sc_cli_usage_error ("delete --set: unexpected argument '%s'", argv[i]);
    else
      i++;
  for (i = 0; i < argc; i += 2) {
    struct sc_cli_target one = { NULL, NULL };
    struct sc_client_snapshot *s;
    struct sc_client *c;
    size_t n, k;

    if (i == 0) {
      if (!t->socket && !t->diff)
        continue;
      one = *t;
    }
    else
      one.socket = argv[i + 1];
    if (sc_cli_open_target (&one, SC_CLIENT_WRITE, &c) != EXIT_SUCCESS) {
      status = EXIT_FAILURE;
      continue;
    }
    if (!sc_client_diff (c)) {
      const char *a = norm;
      int r = sc_client_request (c, "DELETE-SET", &a, 1, on_set_deleted,
                                 &found, err, sizeof err);
      if (r < 0 && r != -ENOENT) {
        sc_cli_error ("%s", err);
        status = EXIT_FAILURE;
      }
      status = sc_cli_close_target (c, status);
      continue;
    }
    if (sc_client_list (c, &s, &n, err, sizeof err) < 0) {
      sc_cli_error ("%s", err);
      status = sc_cli_close_target (c, EXIT_FAILURE);
      continue;
    }
    for (k = 0; k < n; k++) {
      if (strcmp (s[k].set, norm) != 0)
        continue;
      found++;
      if (sc_client_delete (c, SC_CLIENT_DELETE_NAME, s[k].name,
                            print_deleted, NULL, err, sizeof err) < 0) {
        sc_cli_error ("%s", err);
        status = EXIT_FAILURE;
      }
    }
    free (s);
    status = sc_cli_close_target (c, status);
  }
  if (found == 0 && status == EXIT_SUCCESS) {
    sc_cli_error ("no snapshot of set %s", norm);
    status = EXIT_FAILURE;
  }
  return status;
}

static int
cmd_delete (const struct sc_cli_target *t, int argc, char **argv)
{
  enum sc_client_delete_what what = SC_CLIENT_DELETE_NAME;
  struct sc_client *c;
  char err[1024];
  int i, status = EXIT_SUCCESS, todo = 0;

  if (argc >= 2 && strcmp (argv[0], "--set") == 0)
    return delete_set (t, argc, argv);
  if (argc == 1 && strcmp (argv[0], "--oldest") == 0)
    what = SC_CLIENT_DELETE_OLDEST;
  else if (argc == 1 && strcmp (argv[0], "--all") == 0)
    what = SC_CLIENT_DELETE_ALL;
  else {
    if (argc > 0 && strcmp (argv[0], "--") == 0) {
      argc--;
      argv++;
    }
    else
      for (i = 0; i < argc; i++)
        if (argv[i][0] == '-')
          return sc_cli_usage_error ("delete: unexpected option '%s'", argv[i]);
    if (argc == 0)
      return sc_cli_usage_error ("delete needs NAME..., --oldest or --all");
    /* Report every bad name, and drop it from the list to do. */
    for (i = 0; i < argc; i++) {
      if (sc_cli_name_ok (argv[i]))
        argv[todo++] = argv[i];
      else
        status = EXIT_FAILURE;
    }
    if (todo == 0)
      return status;
  }

  if (sc_cli_open_target (t, SC_CLIENT_WRITE, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  if (what != SC_CLIENT_DELETE_NAME) {
    if (sc_client_delete (c, what, NULL, print_deleted, NULL,
                          err, sizeof err) < 0) {
      sc_cli_error ("%s", err);
      status = EXIT_FAILURE;
    }
  }
  for (i = 0; i < todo; i++) {
    if (sc_client_delete (c, what, argv[i], print_deleted, NULL,
                          err, sizeof err) < 0) {
      sc_cli_error ("%s", err);
      status = EXIT_FAILURE;
    }
  }
  return sc_cli_close_target (c, status);
}

/* One line of the report on stdout: the file's own bytes never reach
 * the terminal unsanitized. */
static void
print_finding (const struct sc_check_finding *f)
{
  char line[sizeof f->what];

  snprintf (line, sizeof line, "%s", f->what);
  sc_ctl_sanitize (line);
  printf ("%s: %s\n", f->severity == SC_CHECK_DAMAGE ? "problem" : "warning",
          line);
}

static const char *
plural (uint64_t n)
{
  return n == 1 ? "" : "s";
}

static const char *
check_state (uint32_t flags)
{
  if (flags & SC_SB_CLEAN)
    return "closed cleanly";
  if (flags & SC_SB_FAILED)
    return "a metadata write failed in the last session: "
           "no snapshot of it is trusted";
  if (flags & SC_SB_VOLATILE)
    return "not closed cleanly, with durability=volatile: "
           "no snapshot of it is trusted";
  return "not closed cleanly: the next start recovers it";
}

static void
print_check (const char *path, const struct sc_check_report *r)
{
  size_t i;

  printf ("diff area: %s\n", path);
  printf ("file size: %" PRIu64 " bytes\n", r->file_bytes);
  for (i = 0; i < SC_SB_COPIES; i++) {
    if (r->sb[i].valid)
      printf ("superblock %c (offset %zu): valid, generation %" PRIu64 "\n",
              "AB"[i], i * SC_SB_SIZE, r->sb[i].generation);
    else
      printf ("superblock %c (offset %zu): damaged: %s\n", "AB"[i],
              i * SC_SB_SIZE, r->sb[i].why);
  }
  if (r->loaded) {
    printf ("state: %s\n", check_state (r->sb_flags));
    printf ("volume size: %" PRIu64 " bytes\n"
            "chunk size: %" PRIu32 " bytes\n"
            "epoch: %" PRIu32 "\n"
            "snapshots: %" PRIu64 " (%" PRIu64 " valid, %" PRIu64
            " invalid)\n"
            "journal: %" PRIu64 " record%s in %" PRIu64 " slot%s, from "
            "offset %" PRIu64 ", ending at offset %" PRIu64 "\n"
            "copies: %" PRIu64 " (%" PRIu64 " in data slots, %" PRIu64
            " of zeros)\n"
            "data slots read back: %" PRIu64 " of %" PRIu64 "\n"
            "bytes used: %" PRIu64 "\n"
            "bytes free: %" PRIu64 " (%" PRIu64 " free slot%s below the end "
            "of the file)\n",
            r->volume_size, r->chunk_size, r->epoch, r->snapshots,
            r->snapshots_valid, r->snapshots_invalid, r->journal_records,
            plural (r->journal_records), r->journal_slots,
            plural (r->journal_slots), r->journal_head_offset,
            r->journal_end_offset, r->copies, r->data_slots, r->zero_copies,
            r->data_slots_read, r->data_slots, r->used_bytes, r->free_bytes,
            r->free_slots, plural (r->free_slots));
  }
  printf ("problems: %zu\n", r->damage);
  printf ("warnings: %zu\n", r->warnings);
  for (i = 0; i < r->nfindings; i++)
    print_finding (&r->findings[i]);
  if (r->nfindings < r->damage + r->warnings)
    printf ("(%zu more not shown)\n",
            r->damage + r->warnings - r->nfindings);
}

/* check DIFFAREA, or --diff DIFFAREA check: offline and read-only, so
 * never through a server's socket.  0 clean (warnings allowed), 1
 * damaged, 2 usage or cannot check. */
static int
cmd_check (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_check_report rep;
  const char *path = t->diff;
  char err[1024];
  int r;

  if (t->socket)
    return sc_cli_usage_error ("check works on the diff-area file, not through a "
                        "server: shadowcopy check DIFFAREA");
  if (argc > 0 && strcmp (argv[0], "--") == 0) {
    argc--;
    argv++;
  }
  else if (argc > 0 && argv[0][0] == '-')
    return sc_cli_usage_error ("check: unknown option '%s'", argv[0]);
  if (argc > 1)
    return sc_cli_usage_error ("check takes one DIFFAREA");
  if (argc == 1 && path)
    return sc_cli_usage_error ("check: give the diff area once, with --diff or "
                        "as the argument");
  if (argc == 1)
    path = argv[0];
  if (!path)
    return sc_cli_usage_error ("check needs DIFFAREA");

  r = sc_diff_check (path, &rep, err, sizeof err);
  if (r < 0) {
    sc_cli_error ("%s", err);
    return SC_EXIT_USAGE;
  }
  print_check (path, &rep);
  r = EXIT_SUCCESS;
  if (rep.damage) {
    fflush (stdout);
    sc_cli_error ("%s: damaged: %zu problem%s found", path, rep.damage,
           plural (rep.damage));
    r = EXIT_FAILURE;
  }
  sc_check_report_free (&rep);
  return r;
}

static int
cmd_stats (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_client *c;
  char err[1024];
  bool json;
  int status = sc_cli_json_flag ("stats", argc, argv, &json);

  if (status == 0)
    status = sc_cli_open_target (t, SC_CLIENT_SERVER, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (space_stats (c, json, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    status = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, status);
}

static int
cmd_resize (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *max = NULL;
  bool force = false;
  struct sc_client *c;
  char err[1024];
  int i, status;

  for (i = 0; i < argc; i++) {
    if (strcmp (argv[i], "--force") == 0)
      force = true;
    else if (strcmp (argv[i], "--max") == 0 && i + 1 < argc)
      max = argv[++i];
    else if (strncmp (argv[i], "--max=", 6) == 0)
      max = argv[i] + 6;
    else
      return sc_cli_usage_error ("resize: unexpected argument '%s'", argv[i]);
  }
  if (!max)
    return sc_cli_usage_error ("resize needs --max SIZE|N%%|unbounded");
  status = sc_cli_open_target (t, SC_CLIENT_WRITE, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (space_resize (c, max, force, err, sizeof err) < 0) {
    sc_cli_error ("%s%s", strstr (err, "--force") || strstr (err, "force=1")
           ? "warning: " : "", err);
    status = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, status);
}

static const struct verb {
  const char *name;
  int (*run) (const struct sc_cli_target *t, int argc, char **argv);
} verbs[] = {
  { "create", cmd_create },
  { "writers", cmd_writers },
  { "mount", cmd_mount },
  { "umount", cmd_umount },
  { "list", cmd_list },
  { "delete", cmd_delete },
  { "info", cmd_info },
  { "check", cmd_check },
  { "stats", cmd_stats },
  { "resize", cmd_resize },
};

int
main (int argc, char *argv[])
{
  enum { OPT_DIFF = 256 };
  static const struct option long_options[] = {
    { "control", required_argument, NULL, 'c' },
    { "diff", required_argument, NULL, OPT_DIFF },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  struct sc_cli_target t = { NULL, NULL };
  int opt, status;
  size_t i;

  /* A server that hangs up mid-request is an error to report, not a
   * signal to die of. */
  signal (SIGPIPE, SIG_IGN);

  opterr = 0;                   /* our own one-line messages instead */
  while ((opt = getopt_long (argc, argv, "+:c:hV", long_options,
                             NULL)) != -1) {
    switch (opt) {
    case 'c':
      t.socket = optarg;
      break;
    case OPT_DIFF:
      t.diff = optarg;
      break;
    case 'h':
      usage ();
      return EXIT_SUCCESS;
    case 'V':
      printf ("shadowcopy %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    case ':':
      return sc_cli_usage_error ("option '%s' needs an argument", argv[optind - 1]);
    default:
      if (optopt)
        return sc_cli_usage_error ("unknown option '-%c'", optopt);
      return sc_cli_usage_error ("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (t.socket && t.diff)
    return sc_cli_usage_error ("use either -c SOCKET or --diff DIFFAREA, not both");
  /* check names its diff area itself: shadowcopy check DIFFAREA; create
   * may name its volumes with its own -c; writers, mount and umount may
   * need no volume. */
  if (!t.socket && !t.diff &&
      !(optind < argc && (strcmp (argv[optind], "check") == 0 ||
                          (strcmp (argv[optind], "delete") == 0 &&
                           optind + 1 < argc &&
                           strcmp (argv[optind + 1], "--set") == 0) ||
                          strcmp (argv[optind], "create") == 0 ||
                          strcmp (argv[optind], "writers") == 0 ||
                          strcmp (argv[optind], "mount") == 0 ||
                          strcmp (argv[optind], "umount") == 0)))
    return sc_cli_usage_error ("say which volume: -c SOCKET or --diff DIFFAREA");
  if (optind == argc)
    return sc_cli_usage_error ("no verb given");

  status = -1;
  for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (strcmp (argv[optind], verbs[i].name) == 0)
      status = verbs[i].run (&t, argc - optind - 1, argv + optind + 1);
  if (status == -1)
    return sc_cli_usage_error ("unknown verb '%s'", argv[optind]);

  if (fflush (stdout) == EOF || ferror (stdout)) {
    sc_cli_error ("error writing to standard output");
    return EXIT_FAILURE;
  }
  return status;
}
