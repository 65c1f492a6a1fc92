/* shadowcopy diff: which byte ranges may differ between two points in
 * time (changed-block tracking).
 *
 *   shadowcopy -c SOCK | --diff DIFF diff FROM [TO] [--json | --summary]
 *
 * Notes on the design
 *
 * The pages are fetched, checked and merged by libshadowcopy
 * (shadowcopy_diff; lib/diff-client.c) and kept by diff-result.c.
 * Nothing is printed before the last page is in, so an error never
 * leaves half an answer on standard output.
 *
 * Offline (--diff with no server) the same handler answers on the
 * diff-area file, opened read-only, so the output is the same byte for
 * byte.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/diff-result.h"
#include "tools/json.h"

/* 65536 -> "64 KiB", 5000 -> "4.9 KiB", 100 -> "100 B". */
static const char *
human (uint64_t n, char *buf, size_t len)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                       "PiB", "EiB" };
  unsigned u = 0;
  uint64_t scale = 1;

  while (u + 1 < sizeof units / sizeof units[0] && n / scale >= 1024) {
    scale *= 1024;
    u++;
  }
  if (n % scale == 0)
    snprintf (buf, len, "%" PRIu64 " %s", n / scale, units[u]);
  else
    snprintf (buf, len, "%.1f %s", (double) n / (double) scale, units[u]);
  return buf;
}

static void
print_table (const struct sc_diff *d)
{
  char h[32], g[32];
  int wo = 6, wl = 6, we = 3;

  for (size_t i = 0; i < d->n; i++) {
    int k = snprintf (NULL, 0, "%" PRIu64, d->v[i].offset);
    wo = k > wo ? k : wo;
    k = snprintf (NULL, 0, "%" PRIu64, d->v[i].length);
    wl = k > wl ? k : wl;
    k = snprintf (NULL, 0, "%" PRIu64, d->v[i].offset + d->v[i].length);
    we = k > we ? k : we;
  }
  printf ("%*s  %*s  %*s  %s\n", wo, "OFFSET", wl, "LENGTH", we, "END",
          "SIZE");
  for (size_t i = 0; i < d->n; i++)
    printf ("%*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "  %s\n", wo,
            d->v[i].offset, wl, d->v[i].length, we,
            d->v[i].offset + d->v[i].length,
            human (d->v[i].length, h, sizeof h));
  printf ("total: %" PRIu64 " bytes (%s) changed in %zu extent%s from %s "
          "to %s (granularity %s)\n", d->total, human (d->total, h, sizeof h),
          d->n, d->n == 1 ? "" : "s", d->from.name, d->to.name,
          human (d->chunk_size, g, sizeof g));
}

static void
json_side (struct sc_json *j, const char *key, const struct sc_diff_side *s)
{
  sc_json_key (j, key);
  sc_json_begin_object (j);
  sc_json_member_string (j, "name", s->name);
  if (s->has_id) {
    sc_json_member_uint (j, "id", s->id);
    sc_json_member_string (j, "uuid", s->uuid);
  }
  sc_json_member_uint (j, "epoch", s->epoch);
  sc_json_member_string (j, "type", s->type);
  sc_json_end_object (j);
}

static void
print_json (const struct sc_diff *d, bool extents)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  sc_json_member_string (&j, "volume-uuid", d->volume);
  json_side (&j, "from", &d->from);
  json_side (&j, "to", &d->to);
  sc_json_member_uint (&j, "chunk-size", d->chunk_size);
  sc_json_member_uint (&j, "volume-size", d->volume_size);
  sc_json_member_uint (&j, "granularity", d->chunk_size);
  if (extents) {
    sc_json_key (&j, "extents");
    sc_json_begin_array (&j);
    for (size_t i = 0; i < d->n; i++) {
      sc_json_begin_object (&j);
      sc_json_member_uint (&j, "offset", d->v[i].offset);
      sc_json_member_uint (&j, "length", d->v[i].length);
      sc_json_end_object (&j);
    }
    sc_json_end_array (&j);
  }
  sc_json_member_uint (&j, "total-bytes", d->total);
  sc_json_member_uint (&j, "extent-count", d->n);
  sc_json_end_object (&j);
}

int
sc_cmd_diff (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *from = NULL, *to = NULL;
  bool json = false, summary = false, operands = false;
  struct sc_diff d = { .v = NULL };
  struct shadowcopy *c;
  char err[1024] = "";
  int i, r;

  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!operands && strcmp (a, "--") == 0)
      operands = true;
    else if (!operands && strcmp (a, "--json") == 0)
      json = true;
    else if (!operands && strcmp (a, "--summary") == 0)
      summary = true;
    else if (!operands && a[0] == '-')
      return sc_cli_usage_error ("diff: unexpected option '%s'", a);
    else if (!from)
      from = a;
    else if (!to)
      to = a;
    else
      return sc_cli_usage_error ("diff: unexpected argument '%s'", a);
  }
  if (!from)
    return sc_cli_usage_error ("diff needs FROM (a snapshot or a "
                               "checkpoint), and optionally TO");
  if (strcmp (from, "live") == 0)
    return sc_cli_usage_error ("diff: FROM must be a snapshot or a "
                               "checkpoint; live can only be TO");
  if (!sc_cli_name_ok (from) ||
      (to && strcmp (to, "live") != 0 && !sc_cli_name_ok (to)))
    return EXIT_FAILURE;

  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_READ, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  r = sc_cli_diff_fetch (c, from, to, &d, err, sizeof err);
  if (r < 0) {
    sc_cli_error ("%s", err);
    free (d.v);
    return sc_cli_close_target (c, EXIT_FAILURE);
  }
  if (json)
    print_json (&d, !summary);
  else if (summary)
    printf ("%" PRIu64 " bytes changed in %zu extent%s (granularity %"
            PRIu64 ")\n", d.total, d.n, d.n == 1 ? "" : "s", d.chunk_size);
  else
    print_table (&d);
  free (d.v);
  return sc_cli_close_target (c, EXIT_SUCCESS);
}
