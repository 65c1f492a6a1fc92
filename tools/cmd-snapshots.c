/* shadowcopy list, delete, info, checkpoint: the snapshots (and
 * checkpoints) of a volume, and the volume itself.
 *
 *   shadowcopy -c SOCK | --diff DIFF list [--json]
 *   shadowcopy -c SOCK | --diff DIFF delete NAME... [--keep-checkpoint]
 *   shadowcopy -c SOCK | --diff DIFF delete --oldest | --all
 *   shadowcopy -c SOCK | --diff DIFF checkpoint NAME [--delete-oldest]
 *   shadowcopy [-c SOCK | --diff DIFF] delete --set ID [-c SOCK]...
 *   shadowcopy -c SOCK | --diff DIFF info [--json]
 *
 * Each but checkpoint (which holds the live writes, so needs a server)
 * works online through the server or, with --diff and no server,
 * offline on the diff area: the client hands back the same rows either
 * way, so the output is the same.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/uuid.h"
#include "tools/cli.h"
#include "tools/cmd-revert.h"
#include "tools/cmd-space.h"
#include "tools/commands.h"
#include "tools/json.h"

/* ---- list --------------------------------------------------------------- */

static const char *
state_text (const struct shadowcopy_snapshot *s, char *buf, size_t len)
{
  if (s->valid)
    return "valid";
  snprintf (buf, len, "invalid: %s", s->reason);
  return buf;
}

/* The USED column: what deleting a snapshot frees; for a checkpoint,
 * which keeps no data, the metadata bytes it costs. */
static uint64_t
used_of (const struct shadowcopy_snapshot *s)
{
  return sc_cli_is_checkpoint (s) ? s->meta_bytes : s->used_bytes;
}

static void
print_table (const struct shadowcopy_snapshot *s, size_t n)
{
  int wid = 2, wname = 4, wtype = 4, wcreated = 7, wstate = 5, wused = 4;
  int wuuid = 4;
  char buf[sizeof s->reason + 16];
  bool sets = false;
  size_t i;

#define WIDEN(w, len) do { if ((int) (len) > (w)) (w) = (len); } while (0)
  for (i = 0; i < n; i++) {
    WIDEN (wid, snprintf (NULL, 0, "%" PRIu64, s[i].id));
    WIDEN (wname, strlen (s[i].name));
    WIDEN (wtype, strlen (s[i].type));
    WIDEN (wcreated, strlen (s[i].created));
    WIDEN (wstate, strlen (state_text (&s[i], buf, sizeof buf)));
    WIDEN (wused, snprintf (NULL, 0, "%" PRIu64, used_of (&s[i])));
    WIDEN (wuuid, strlen (s[i].uuid));
    sets |= s[i].set[0] != '\0';
  }
#undef WIDEN
  /* The SET column only when some snapshot belongs to a set. */
  printf ("%-*s  %-*s  %-*s  %-*s  %-*s  %*s  %-*s%s\n", wid, "ID", wname,
          "NAME", wtype, "TYPE", wcreated, "CREATED", wstate, "STATE",
          wused, "USED", sets ? wuuid : 0, "UUID", sets ? "  SET" : "");
  for (i = 0; i < n; i++) {
    printf ("%-*" PRIu64 "  %-*s  %-*s  %-*s  %-*s  %*" PRIu64 "  %-*s",
            wid, s[i].id, wname, s[i].name, wtype, s[i].type, wcreated,
            s[i].created, wstate, state_text (&s[i], buf, sizeof buf),
            wused, used_of (&s[i]), sets ? wuuid : 0,
            s[i].uuid[0] ? s[i].uuid : "-");
    if (sets)
      printf ("  %s", s[i].set[0] ? s[i].set : "-");
    if (s[i].base[0])
      printf ("  (clone of %s)", s[i].base);
    printf ("%s\n", s[i].auto_release ? " (auto-release)" : "");
  }
}

static void
print_json (const struct shadowcopy_snapshot *s, size_t n)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_array (&j);
  for (size_t i = 0; i < n; i++) {
    sc_json_begin_object (&j);
    sc_json_member_uint (&j, "id", s[i].id);
    sc_json_member_string (&j, "name", s[i].name);
    sc_json_member_string (&j, "type", s[i].type);
    if (s[i].uuid[0])
      sc_json_member_string (&j, "uuid", s[i].uuid);
    sc_json_member_string (&j, "created", s[i].created);
    sc_json_member_uint (&j, "epoch", s[i].epoch);
    sc_json_member_string (&j, "state", s[i].valid ? "valid" : "invalid");
    if (!s[i].valid)
      sc_json_member_string (&j, "reason", s[i].reason);
    sc_json_member_uint (&j, "used_bytes", s[i].used_bytes);
    if (sc_cli_is_checkpoint (&s[i]))
      sc_json_member_uint (&j, "meta-bytes", s[i].meta_bytes);
    if (s[i].base[0])
      sc_json_member_string (&j, "base", s[i].base);
    sc_json_member_uint (&j, "discarded_bytes", s[i].discarded_bytes);
    if (s[i].set[0])
      sc_json_member_string (&j, "set", s[i].set);
    sc_json_member_bool (&j, "auto_release", s[i].auto_release);
    sc_json_end_object (&j);
  }
  sc_json_end_array (&j);
}

int
sc_cmd_list (const struct sc_cli_target *t, int argc, char **argv)
{
  struct shadowcopy_snapshot *s;
  struct shadowcopy *c;
  size_t n;
  bool json;
  int status;

  status = sc_cli_json_flag ("list", argc, argv, &json);
  if (status == 0)
    status = sc_cli_open_target (t, SHADOWCOPY_OPEN_READ, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (shadowcopy_list (c, &s, &n) < 0) {
    sc_cli_lib_error ();
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

/* ---- info --------------------------------------------------------------- */

static void
print_info_json (const struct shadowcopy_volume *v,
                 const struct space_cache *k)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  sc_json_member_uint (&j, "volume_size", v->volume_size);
  sc_json_member_uint (&j, "chunk_size", v->chunk_size);
  sc_json_member_uint (&j, "diff_used_bytes", v->diff_used_bytes);
  sc_json_member_uint (&j, "diff_file_bytes", v->diff_file_bytes);
  sc_json_member_uint (&j, "snapshots", v->snapshots);
  sc_json_member_uint (&j, "checkpoints", v->checkpoints);
  sc_json_member_uint (&j, "copies", v->copies);
  sc_json_member_uint (&j, "epoch", v->epoch);
  sc_json_member_string (&j, "origin", v->origin);
  if (v->have_holds) {
    sc_json_key (&j, "holds");
    sc_json_begin_object (&j);
    sc_json_member_uint (&j, "count", v->holds);
    sc_json_member_uint (&j, "last_ns", v->hold_last_ns);
    sc_json_member_uint (&j, "p50_ns", v->hold_p50_ns);
    sc_json_member_uint (&j, "p99_ns", v->hold_p99_ns);
    sc_json_member_uint (&j, "max_ns", v->hold_max_ns);
    sc_json_end_object (&j);
  }
  space_info_json (v, &j);
  space_cache_json (k, &j);
  if (v->have_revert) {
    sc_json_key (&j, "revert");
    sc_revert_json (&v->revert, &j);
  }
  if (v->listen[0])
    sc_json_member_string (&j, "listen", v->listen);
  sc_json_end_object (&j);
}

static void
print_info_text (const struct shadowcopy_volume *v,
                 const struct space_cache *k)
{
  printf ("volume size: %" PRIu64 "\n"
          "chunk size: %" PRIu64 "\n"
          "diff-area bytes used: %" PRIu64 "\n"
          "diff-area file bytes: %" PRIu64 "\n"
          "snapshots: %" PRIu64 " (checkpoints among them: %" PRIu64 ")\n"
          "copies: %" PRIu64 "\n"
          "epoch: %" PRIu64 "\n"
          "origin: %s\n",
          v->volume_size, v->chunk_size, v->diff_used_bytes,
          v->diff_file_bytes, v->snapshots, v->checkpoints, v->copies,
          v->epoch, v->origin);
  if (v->have_holds && v->holds)
    printf ("write holds at creation: %" PRIu64 " (last %.3f ms, "
            "p50 %.3f ms, p99 %.3f ms, max %.3f ms)\n", v->holds,
            v->hold_last_ns / 1e6, v->hold_p50_ns / 1e6,
            v->hold_p99_ns / 1e6, v->hold_max_ns / 1e6);
  space_print_info (v);
  space_cache_print (k);
  if (v->have_revert)
    sc_revert_print_text (&v->revert);
  if (v->listen[0])
    printf ("listen: %s\n", v->listen);
}

int
sc_cmd_info (const struct sc_cli_target *t, int argc, char **argv)
{
  struct shadowcopy_volume v;
  struct space_cache k = { .have = false };
  struct shadowcopy *c;
  char err[1024];
  bool json;
  int status;

  status = sc_cli_json_flag ("info", argc, argv, &json);
  if (status == 0)
    status = sc_cli_open_target (t, SHADOWCOPY_OPEN_READ, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (shadowcopy_info (c, &v) < 0) {
    sc_cli_lib_error ();
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  /* The cache's figures are the running server's (STATS): offline, the
   * CLI's own open of the diff area would say nothing of it. */
  if (v.have_holds && space_cache_get (c, &k, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  if (json)
    print_info_json (&v, &k);
  else
    print_info_text (&v, &k);
  return sc_cli_close_target (c, EXIT_SUCCESS);
}

/* ---- delete ------------------------------------------------------------- */

static void
print_deleted (const char *name, void *opaque)
{
  printf ("%s\n", name);
  fflush (stdout);
}

/* A snapshot of a set gone: print the name, count it. */
static void
on_set_deleted (const char *name, void *opaque)
{
  print_deleted (name, NULL);
  ++*(size_t *) opaque;
}

/* delete --set ID [-c SOCKET]...: every member of the set on each volume
 * (the global target and each -c), in one DELETE-SET request each.
 * Fails if no volume had one. */
static int
delete_set (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *id = argv[1];
  uint8_t raw[16];
  char norm[SC_UUID_TEXT_LEN];
  int status = EXIT_SUCCESS, i;
  size_t found = 0;

  if (sc_uuid_parse (id, raw) < 0)
    return sc_cli_usage_error ("delete --set: not a set id (UUID): %s", id);
  sc_uuid_format (raw, norm);
  for (i = 2; i < argc; i++)
    if ((strcmp (argv[i], "-c") != 0 && strcmp (argv[i], "--control") != 0)
        || i + 1 == argc)
      return sc_cli_usage_error ("delete --set: unexpected argument '%s'",
                                 argv[i]);
    else
      i++;
  for (i = 0; i < argc; i += 2) {
    struct sc_cli_target one = { .socket = NULL };
    struct shadowcopy *c;
    int r;

    if (i == 0) {
      if (!t->socket && !t->diff)
        continue;
      one = *t;
    }
    else
      one.socket = argv[i + 1];
    if (sc_cli_open_target (&one, SHADOWCOPY_OPEN_WRITE, &c) != EXIT_SUCCESS) {
      status = EXIT_FAILURE;
      continue;
    }
    r = shadowcopy_delete_set (c, norm, on_set_deleted, &found);
    if (r < 0 && r != -ENOENT) {
      sc_cli_lib_error ();
      status = EXIT_FAILURE;
    }
    status = sc_cli_close_target (c, status);
  }
  if (found == 0 && status == EXIT_SUCCESS) {
    sc_cli_error ("no snapshot of set %s", norm);
    status = EXIT_FAILURE;
  }
  return status;
}

/* delete NAME... --keep-checkpoint: each snapshot's data goes, a
 * checkpoint of the same name stays. */
static int
delete_keep (struct shadowcopy *c, const char *name, unsigned how)
{
  size_t n = 0;
  int r = shadowcopy_delete (c, name, NULL, how, on_set_deleted, &n);

  if (r < 0)
    sc_cli_lib_error ();
  return r;
}

int
sc_cmd_delete (const struct sc_cli_target *t, int argc, char **argv)
{
  enum { DELETE_NAME, DELETE_OLDEST, DELETE_ALL } what = DELETE_NAME;
  struct shadowcopy *c;
  int i, status = EXIT_SUCCESS, todo = 0;
  bool keep = false, operands = false, with_clones = false;

  if (argc >= 2 && strcmp (argv[0], "--set") == 0)
    return delete_set (t, argc, argv);
  if (argc == 1 && strcmp (argv[0], "--oldest") == 0)
    what = DELETE_OLDEST;
  else if (argc == 1 && strcmp (argv[0], "--all") == 0)
    what = DELETE_ALL;
  else {
    /* NAME... with --keep-checkpoint anywhere before a "--". */
    for (i = 0; i < argc; i++) {
      if (!operands && strcmp (argv[i], "--") == 0)
        operands = true;
      else if (!operands && strcmp (argv[i], "--keep-checkpoint") == 0)
        keep = true;
      else if (!operands && strcmp (argv[i], "--with-clones") == 0)
        with_clones = true;
      else if (!operands && argv[i][0] == '-')
        return sc_cli_usage_error ("delete: unexpected option '%s'",
                                   argv[i]);
      else
        argv[todo++] = argv[i];
    }
    argc = todo;
    todo = 0;
    if (keep && with_clones)
      return sc_cli_usage_error ("delete: --keep-checkpoint and "
                                 "--with-clones do not go together");
    if (argc == 0)
      return sc_cli_usage_error (keep ? "delete --keep-checkpoint needs "
                                 "NAME..." : "delete needs NAME..., "
                                 "--oldest or --all");
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

  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_WRITE, &c) != EXIT_SUCCESS)
                          return EXIT_FAILURE;
  if (what != DELETE_NAME) {
    if ((what == DELETE_OLDEST
         ? shadowcopy_delete_oldest (c, print_deleted, NULL)
         : shadowcopy_delete_all (c, print_deleted, NULL)) < 0) {
      sc_cli_lib_error ();
      status = EXIT_FAILURE;
    }
  }
  for (i = 0; i < todo; i++) {
    if (keep || with_clones) {
      if (delete_keep (c, argv[i], keep ? SHADOWCOPY_DELETE_KEEP_CHECKPOINT
                                        : SHADOWCOPY_DELETE_WITH_CLONES) < 0)
        status = EXIT_FAILURE;
    }
    else if (shadowcopy_delete (c, argv[i], NULL, 0, print_deleted,
                                NULL) < 0) {
      sc_cli_lib_error ();
      status = EXIT_FAILURE;
    }
  }
  return sc_cli_close_target (c, status);
}

/* ---- clone -------------------------------------------------------------- */

/* clone SNAPSHOT NAME: a writable clone, served as export NAME. */
int
sc_cmd_clone (const struct sc_cli_target *t, int argc, char **argv)
{
  struct shadowcopy_snapshot s = { .id = 0 };
  const char *args[2];
  size_t nargs = 0;
  bool operands = false;
  struct shadowcopy *c;

  for (int i = 0; i < argc; i++) {
    if (!operands && strcmp (argv[i], "--") == 0)
      operands = true;
    else if (!operands && argv[i][0] == '-')
      return sc_cli_usage_error ("clone: unexpected option '%s'", argv[i]);
    else if (nargs == 2)
      return sc_cli_usage_error ("clone: unexpected argument '%s'",
                                 argv[i]);
    else
      args[nargs++] = argv[i];
  }
  if (nargs != 2)
    return sc_cli_usage_error ("clone needs SNAPSHOT NAME");
  if (!sc_cli_name_ok (args[0]) || !sc_cli_name_ok (args[1]))
    return EXIT_FAILURE;
  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_WRITE, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  if (shadowcopy_clone (c, args[0], args[1], &s) < 0) {
    sc_cli_lib_error ();
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  printf ("%s\n", s.name[0] ? s.name : args[1]);
  return sc_cli_close_target (c, EXIT_SUCCESS);
}

/* ---- checkpoint --------------------------------------------------------- */

/* checkpoint NAME [--delete-oldest]: a checkpoint now (a server's). */
int
sc_cmd_checkpoint (const struct sc_cli_target *t, int argc, char **argv)
{
  struct shadowcopy_snapshot s = { .id = 0 };
  const char *name = NULL;
  bool delete_oldest = false, operands = false;
  struct shadowcopy *c;
  int i;

  for (i = 0; i < argc; i++) {
    if (!operands && strcmp (argv[i], "--") == 0)
      operands = true;
    else if (!operands && strcmp (argv[i], "--delete-oldest") == 0)
      delete_oldest = true;
    else if (!operands && argv[i][0] == '-')
      return sc_cli_usage_error ("checkpoint: unexpected option '%s'",
                                 argv[i]);
    else if (name)
      return sc_cli_usage_error ("checkpoint: unexpected argument '%s'",
                                 argv[i]);
    else
      name = argv[i];
  }
  if (!name)
    return sc_cli_usage_error ("checkpoint needs NAME");
  if (!sc_cli_name_ok (name))
    return EXIT_FAILURE;

  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  if (shadowcopy_checkpoint (c, name, delete_oldest, &s) < 0) {
    sc_cli_lib_error ();
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  printf ("%s\n", s.name[0] ? s.name : name);
  return sc_cli_close_target (c, EXIT_SUCCESS);
}
