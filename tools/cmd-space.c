/* shadowcopy: the CLI's space verbs (see cmd-space.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "engine/size.h"
#include "tools/cli.h"
#include "tools/cmd-space.h"
#include "tools/commands.h"
#include "tools/json.h"

/* ---- stats ------------------------------------------------------------ */

struct stats_ctx { bool json, seen; };

/* Every field of the stats line, its key with '_' for '-'. */
static void
print_stats_json (const struct sc_ctl_line *line)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  for (size_t i = 0; i < line->nfields; i++) {
    char key[64];

    snprintf (key, sizeof key, "%s", line->fields[i].key);
    for (size_t k = 0; key[k]; k++)
      if (key[k] == '-')
        key[k] = '_';
    sc_json_key (&j, key);
    sc_json_number_text (&j, line->fields[i].value);
  }
  sc_json_end_object (&j);
}

static int
on_stats (const struct sc_ctl_line *line, void *opaque)
{
  struct stats_ctx *x = opaque;

  if (strcmp (line->kind, "stats") != 0)
    return 0;
  x->seen = true;
  if (x->json) {
    print_stats_json (line);
    return 0;
  }
  const char *v;
  uint64_t n;
#define F(k) (sc_ctl_field (line, k) ? sc_ctl_field (line, k) : "?")
  printf ("chunks copied: %s (%s bytes)\n", F ("chunks-copied"),
          F ("bytes-copied"));
  printf ("zero chunks recorded: %s\n", F ("zero-chunks"));
  printf ("bytes written to the live volume: %s\n", F ("bytes-written"));
  printf ("write amplification: %s\n", F ("write-amplification"));
  printf ("diff area used: %s bytes\n", F ("diff-used"));
  printf ("diff area free: %s bytes\n", F ("diff-free"));
  v = sc_ctl_field (line, "diff-max");
  if (v && strcmp (v, "0") == 0)
    printf ("diff area limit: unbounded (free is the filesystem's)\n");
  else
    printf ("diff area limit: %s bytes\n", F ("diff-max"));
  printf ("copy-on-write: %s writes, p50 %.3f ms, p99 %.3f ms\n",
          F ("cow-count"),
          sc_ctl_parse_u64 (F ("cow-p50-ns"), &n) == 0 ? n / 1e6 : 0.0,
          sc_ctl_parse_u64 (F ("cow-p99-ns"), &n) == 0 ? n / 1e6 : 0.0);
  printf ("snapshots dropped by policy: %s\n", F ("dropped"));
  printf ("snapshots invalidated: %s\n", F ("invalidated"));
  printf ("copied data that failed its checksum: %s (damaged copies "
          "freed: %s)\n", F ("checksum-errors"), F ("damaged-freed"));
  printf ("writes refused (on-full=fail-writes): %s\n", F ("writes-refused"));
  v = sc_ctl_field (line, "diff-failed");
  if (v && strcmp (v, "1") == 0)
    printf ("diff area: FAILED (errno %s, %s retries; see shadowcopy info)"
            "\n", F ("diff-failed-errno"), F ("diff-retries"));
  else if (v)
    printf ("diff area: ok (%s recoveries)\n", F ("diff-recoveries"));
  v = F ("seconds-to-full");
  if (v[0] == '-')
    printf ("time until full: - (the diff area is not growing)\n");
  else
    printf ("time until full: %s s at %s bytes/s\n", v, F ("fill-rate"));
#undef F
  return 0;
}

int
space_stats (struct sc_client *c, bool json, char *err, size_t errlen)
{
  struct stats_ctx x = { .json = json };
  int r = sc_client_request (c, "STATS", NULL, 0, on_stats, &x, err,
                             errlen);

  if (r == -ENOTCONN)
    snprintf (err, errlen, "stats needs a running server (the counters "
              "are the engine's)");
  if (r == 0 && !x.seen) {
    snprintf (err, errlen, "bad reply from the server: no stats line");
    r = -EPROTO;
  }
  return r;
}

/* ---- resize ----------------------------------------------------------- */

static int
on_resized (const struct sc_ctl_line *line, void *opaque)
{
  if (strcmp (line->kind, "resized") != 0)
    return 0;
  const char *max = sc_ctl_field (line, "max");
  const char *dropped = sc_ctl_field (line, "dropped");
  if (max && strcmp (max, "0") == 0)
    printf ("diff area limit: unbounded\n");
  else
    printf ("diff area limit: %s bytes\n", max ? max : "?");
  if (dropped && strcmp (dropped, "0") != 0)
    printf ("snapshots dropped to fit: %s\n", dropped);
  return 0;
}

int
space_resize (struct sc_client *c, const char *max, bool force, char *err,
              size_t errlen)
{
  struct sc_client_volume v;
  struct sc_size size;
  uint64_t bytes;
  int r;

  r = sc_client_info (c, &v, err, errlen);
  if (r < 0)
    return r;
  if (sc_size_parse (max, SC_SIZE_PERCENT | SC_SIZE_UNBOUNDED, &size) < 0 ||
      (size.kind == SC_SIZE_BYTES && size.n == 0) ||
      (size.kind == SC_SIZE_OF_VOLUME && v.volume_size == 0)) {
    snprintf (err, errlen, "resize: --max %s: not a size (e.g. 10G), N%% "
              "of the volume or unbounded", max);
    return -EINVAL;
  }
  bytes = sc_size_bytes (&size, v.volume_size);

  char arg_max[40];
  const char *args[2] = { arg_max, "force=1" };
  if (bytes == 0)
    snprintf (arg_max, sizeof arg_max, "max=unbounded");
  else
    snprintf (arg_max, sizeof arg_max, "max=%" PRIu64, bytes);
  return sc_client_request (c, "RESIZE", args, force ? 2 : 1, on_resized,
                            NULL, err, errlen);
}

/* ---- list and info ------------------------------------------------------ */

static int
on_dropped (const struct sc_ctl_line *line, void *opaque)
{
  int *n = opaque;
  const char *f[] = { "name", "created", "dropped-at", "reason" };
  const char *v[4];

  if (strcmp (line->kind, "dropped") != 0)
    return 0;
  for (int i = 0; i < 4; i++)
    if (!(v[i] = sc_ctl_field (line, f[i])))
      v[i] = "?";
  if ((*n)++ == 0)
    printf ("\nDropped by policy (most recent last):\n");
  printf ("  %s  created %s  dropped %s  %s\n", v[0], v[1], v[2], v[3]);
  return 0;
}

void
space_print_drops (struct sc_client *c)
{
  char err[256];
  int n = 0;

  (void) sc_client_request (c, "LIST", NULL, 0, on_dropped, &n, err,
                            sizeof err);
}

void
space_info_json (const struct sc_client_volume *v, struct sc_json *j)
{
  sc_json_member_uint (j, "diff_max_bytes", v->diff_max);
  sc_json_member_uint (j, "dropped", v->dropped);
  sc_json_member_uint (j, "invalid", v->invalid);
  sc_json_member_uint (j, "damaged", v->damaged);
  sc_json_member_uint (j, "discarded_bytes", v->discarded_bytes);
  if (v->on_full[0]) {
    sc_json_member_string (j, "on_full", v->on_full);
    sc_json_member_uint (j, "max_snapshots", v->max_snapshots);
    if (v->max_checkpoints)
      sc_json_member_uint (j, "max_checkpoints", v->max_checkpoints);
    sc_json_member_uint (j, "full_failures", v->full_failures);
  }
  if (v->last_drop[0]) {
    sc_json_member_string (j, "last_drop", v->last_drop);
    sc_json_member_string (j, "last_drop_reason", v->last_drop_reason);
  }
  if (!v->have_health)
    return;
  /* "diff_area": {"state": "ok"|"failed", ...} */
  sc_json_key (j, "diff_area");
  sc_json_begin_object (j);
  sc_json_member_string (j, "state", v->failed ? "failed" : "ok");
  sc_json_member_uint (j, "recoveries", v->recoveries);
  if (v->recovered[0])
    sc_json_member_string (j, "recovered", v->recovered);
  if (v->failed) {
    sc_json_member_string (j, "failed_since", v->failed_since);
    sc_json_member_string (j, "errno", v->failed_errno);
    sc_json_member_string (j, "failed_write", v->failed_write);
    sc_json_member_uint (j, "invalidated", v->invalidated);
    sc_json_member_bool (j, "recorded", v->recorded);
    sc_json_member_uint (j, "retries", v->retries);
    if (v->retry_every_ms)
      sc_json_member_uint (j, "retry_every_ms", v->retry_every_ms);
    if (v->last_retry[0]) {
      sc_json_member_string (j, "last_retry", v->last_retry);
      sc_json_member_string (j, "last_retry_errno", v->last_retry_errno);
      sc_json_member_string (j, "last_retry_write", v->last_retry_write);
    }
    sc_json_member_string (j, "message", v->health_message);
  }
  sc_json_end_object (j);
}

/* The diff area's health, as info shows it. */
static void
print_health (const struct sc_client_volume *v)
{
  if (!v->have_health)
    return;
  if (!v->failed) {
    printf ("diff area: ok");
    if (v->recoveries)
      printf (" (recovered from %" PRIu64 " failure%s, last at %s)",
              v->recoveries, v->recoveries == 1 ? "" : "s", v->recovered);
    printf ("\n");
    return;
  }
  printf ("diff area: FAILED since %s: %s %s\n", v->failed_since,
          v->failed_errno, v->failed_write);
  printf ("  %" PRIu64 " snapshot%s invalidated%s; no new snapshots until "
          "it recovers\n", v->invalidated, v->invalidated == 1 ? "" : "s",
          v->recorded ? " (recorded in the superblock)"
                      : " (the superblock could not record it)");
  printf ("  retrying: at the next create");
  if (v->retry_every_ms)
    printf (" and every %" PRIu64 " s", v->retry_every_ms / 1000);
  printf ("; %" PRIu64 " retr%s so far", v->retries,
          v->retries == 1 ? "y" : "ies");
  if (v->last_retry[0])
    printf (", the last at %s failed: %s %s", v->last_retry,
            v->last_retry_errno, v->last_retry_write);
  printf ("\n  %s\n", v->health_message);
}

void
space_print_info (const struct sc_client_volume *v)
{
  if (v->diff_max)
    printf ("diff-area limit: %" PRIu64 "\n", v->diff_max);
  else
    printf ("diff-area limit: unbounded\n");
  if (v->on_full[0]) {
    printf ("on full: %s\nmax snapshots: %" PRIu64 "\n", v->on_full,
            v->max_snapshots);
    if (v->max_checkpoints)
      printf ("max checkpoints: %" PRIu64 "\n", v->max_checkpoints);
    printf ("copies refused when full: %" PRIu64 "\n", v->full_failures);
  }
  printf ("snapshots dropped by policy: %" PRIu64 "\n", v->dropped);
  printf ("invalid snapshots: %" PRIu64 "\n", v->invalid);
  printf ("damaged snapshots (copied data failed its checksum): %" PRIu64
          "\n", v->damaged);
  if (v->last_drop[0])
    printf ("last drop: %s (%s)\n", v->last_drop, v->last_drop_reason);
  printf ("discarded by snapshot readers: %" PRIu64 " bytes\n",
          v->discarded_bytes);
  print_health (v);
}

/* ---- the verbs stats and resize ------------------------------------- */

int
sc_cmd_stats (const struct sc_cli_target *t, int argc, char **argv)
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

int
sc_cmd_resize (const struct sc_cli_target *t, int argc, char **argv)
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
