/* shadowcopy: the CLI's space verbs (see cmd-space.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/size.h"
#include "tools/cli.h"
#include "tools/cmd-space.h"
#include "tools/commands.h"
#include "tools/json.h"

/* ---- stats ------------------------------------------------------------ */

/* The counters of shadowcopy_stats, in the server's order. */
struct stats {
  struct { char *key, *value; } *f;
  size_t n, cap;
};

static int
on_stat (const char *key, const char *value, void *opaque)
{
  struct stats *x = opaque;

  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 32;
    void *f = reallocarray (x->f, cap, sizeof *x->f);
    if (!f)
      return -ENOMEM;
    x->f = f;
    x->cap = cap;
  }
  if (!(x->f[x->n].key = strdup (key)))
    return -ENOMEM;
  if (!(x->f[x->n].value = strdup (value))) {
    free (x->f[x->n].key);
    return -ENOMEM;
  }
  x->n++;
  return 0;
}

static const char *
stat_field (const struct stats *x, const char *key)
{
  for (size_t i = 0; i < x->n; i++)
    if (strcmp (x->f[i].key, key) == 0)
      return x->f[i].value;
  return NULL;
}

/* Every counter, its key with '_' for '-'. */
static void
print_stats_json (const struct stats *x)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  for (size_t i = 0; i < x->n; i++) {
    char key[64];

    snprintf (key, sizeof key, "%s", x->f[i].key);
    for (size_t k = 0; key[k]; k++)
      if (key[k] == '-')
        key[k] = '_';
    sc_json_key (&j, key);
    sc_json_number_text (&j, x->f[i].value);
  }
  sc_json_end_object (&j);
}

static void
print_stats (const struct stats *x)
{
  const char *v;
  uint64_t n;
#define F(k) (stat_field (x, k) ? stat_field (x, k) : "?")
  printf ("chunks copied: %s (%s bytes)\n", F ("chunks-copied"),
          F ("bytes-copied"));
  printf ("zero chunks recorded: %s\n", F ("zero-chunks"));
  printf ("bytes written to the live volume: %s\n", F ("bytes-written"));
  printf ("write amplification: %s\n", F ("write-amplification"));
  printf ("diff area used: %s bytes\n", F ("diff-used"));
  printf ("diff area free: %s bytes\n", F ("diff-free"));
  v = stat_field (x, "diff-max");
  if (v && strcmp (v, "0") == 0)
    printf ("diff area limit: unbounded (free is the filesystem's)\n");
  else
    printf ("diff area limit: %s bytes\n", F ("diff-max"));
  printf ("copy-on-write: %s writes, p50 %.3f ms, p99 %.3f ms\n",
          F ("cow-count"),
          sc_cli_parse_u64 (F ("cow-p50-ns"), &n) == 0 ? n / 1e6 : 0.0,
          sc_cli_parse_u64 (F ("cow-p99-ns"), &n) == 0 ? n / 1e6 : 0.0);
  printf ("snapshots dropped by policy: %s\n", F ("dropped"));
  printf ("snapshots invalidated: %s\n", F ("invalidated"));
  printf ("copied data that failed its checksum: %s (damaged copies "
          "freed: %s)\n", F ("checksum-errors"), F ("damaged-freed"));
  printf ("writes refused (on-full=fail-writes): %s\n", F ("writes-refused"));
  if (stat_field (x, "index-cache-budget"))
    printf ("index cache: %s bytes, %s hits, %s misses, %s write-backs\n",
            F ("index-cache-budget"), F ("index-cache-hits"),
            F ("index-cache-misses"), F ("index-cache-writebacks"));
  v = stat_field (x, "diff-failed");
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
}

int
space_stats (struct shadowcopy *c, bool json, char *err, size_t errlen)
{
  struct stats x = { NULL, 0, 0 };
  int r = shadowcopy_stats (c, on_stat, &x);

  if (r < 0)
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
  else if (json)
    print_stats_json (&x);
  else
    print_stats (&x);
  for (size_t i = 0; i < x.n; i++) {
    free (x.f[i].key);
    free (x.f[i].value);
  }
  free (x.f);
  return r;
}

/* ---- the index cache, for info ----------------------------------------- */

static int
on_cache_stat (const char *key, const char *value, void *opaque)
{
  static const char prefix[] = "index-cache-";
  struct space_cache *k = opaque;
  uint64_t n;

  if (strncmp (key, prefix, sizeof prefix - 1) != 0)
    return 0;
  key += sizeof prefix - 1;
  if (sc_cli_parse_u64 (value, &n) < 0)
    return 0;                   /* a field this CLI cannot read: left out */
  uint64_t *f = strcmp (key, "budget") == 0 ? &k->budget
    : strcmp (key, "pages") == 0 ? &k->pages
    : strcmp (key, "hits") == 0 ? &k->hits
    : strcmp (key, "misses") == 0 ? &k->misses
    : strcmp (key, "writebacks") == 0 ? &k->writebacks
    : strcmp (key, "unbacked") == 0 ? &k->unbacked : NULL;
  if (f)
    *f = n;
  if (f == &k->budget)
    k->have = true;
  return 0;
}

int
space_cache_get (struct shadowcopy *c, struct space_cache *out, char *err,
                 size_t errlen)
{
  memset (out, 0, sizeof *out);
  int r = shadowcopy_stats (c, on_cache_stat, out);
  if (r == -ENOTCONN) {
    memset (out, 0, sizeof *out);
    return 0;
  }
  if (r < 0)
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
  return r;
}

void
space_cache_print (const struct space_cache *k)
{
  if (k->have)
    printf ("index cache: %" PRIu64 " bytes (%" PRIu64 " pages held), %"
            PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " write-backs, %"
            PRIu64 " pages waiting for disk space\n", k->budget, k->pages,
            k->hits, k->misses, k->writebacks, k->unbacked);
}

void
space_cache_json (const struct space_cache *k, struct sc_json *j)
{
  if (!k->have)
    return;
  sc_json_key (j, "index_cache");
  sc_json_begin_object (j);
  sc_json_member_uint (j, "budget", k->budget);
  sc_json_member_uint (j, "pages", k->pages);
  sc_json_member_uint (j, "hits", k->hits);
  sc_json_member_uint (j, "misses", k->misses);
  sc_json_member_uint (j, "writebacks", k->writebacks);
  sc_json_member_uint (j, "unbacked", k->unbacked);
  sc_json_end_object (j);
}

/* ---- resize ----------------------------------------------------------- */

int
space_resize (struct shadowcopy *c, const char *max, bool force, char *err,
              size_t errlen)
{
  struct shadowcopy_volume v;
  struct sc_size size;
  uint64_t bytes, dropped = 0;
  int r;

  r = shadowcopy_info (c, &v);
  if (r < 0) {
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
    return r;
  }
  if (sc_size_parse (max, SC_SIZE_PERCENT | SC_SIZE_UNBOUNDED, &size) < 0 ||
      (size.kind == SC_SIZE_BYTES && size.n == 0) ||
      (size.kind == SC_SIZE_OF_VOLUME && v.volume_size == 0)) {
    snprintf (err, errlen, "resize: --max %s: not a size (e.g. 10G), N%% "
              "of the volume or unbounded", max);
    return -EINVAL;
  }
  bytes = sc_size_bytes (&size, v.volume_size);
  r = shadowcopy_resize (c, bytes ? bytes : UINT64_MAX, force, &dropped);
  if (r < 0) {
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
    return r;
  }
  if (bytes == 0)
    printf ("diff area limit: unbounded\n");
  else
    printf ("diff area limit: %" PRIu64 " bytes\n", bytes);
  if (dropped)
    printf ("snapshots dropped to fit: %" PRIu64 "\n", dropped);
  return 0;
}

/* ---- list and info ------------------------------------------------------ */

void
space_print_drops (struct shadowcopy *c)
{
  struct shadowcopy_dropped *d;
  size_t n;

  if (shadowcopy_list_dropped (c, &d, &n) < 0)
    return;
  for (size_t i = 0; i < n; i++) {
    if (i == 0)
      printf ("\nDropped by policy (most recent last):\n");
    printf ("  %s  created %s  dropped %s  %s\n", d[i].name, d[i].created,
            d[i].dropped_at, d[i].reason);
  }
  free (d);
}

void
space_info_json (const struct shadowcopy_volume *v, struct sc_json *j)
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
print_health (const struct shadowcopy_volume *v)
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
space_print_info (const struct shadowcopy_volume *v)
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
  struct shadowcopy *c;
  char err[1024];
  bool json;
  int status = sc_cli_json_flag ("stats", argc, argv, &json);

  if (status == 0)
    status = sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c);
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
  struct shadowcopy *c;
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
  status = sc_cli_open_target (t, SHADOWCOPY_OPEN_WRITE, &c);
  if (status != EXIT_SUCCESS)
    return status;
  if (space_resize (c, max, force, err, sizeof err) < 0) {
    sc_cli_error ("%s%s", strstr (err, "--force") || strstr (err, "force=1")
                  ? "warning: " : "", err);
    status = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, status);
}
