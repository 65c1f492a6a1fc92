/* shadowcopy diff: which byte ranges may differ between two points in
 * time (changed-block tracking).
 *
 *   shadowcopy -c SOCK | --diff DIFF diff FROM [TO] [--json | --summary]
 *
 * Notes on the design
 *
 * The server answers DIFF in pages (engine/control-diff.c): the extents
 * from a chunk on, and where the next page starts.  The client asks page
 * after page until the answer says "end", checks that each page is sorted,
 * disjoint, within the volume and names the same FROM and TO (ids and
 * UUIDs: a name deleted and made again between two pages would mix two
 * diffs), and merges the extents that touch across pages.  Nothing is
 * printed before the last page is in, so an error never leaves half an
 * answer on standard output.
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

#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/json.h"

/* One side of the diff, as the header of a page names it. */
struct side {
  char name[SC_NAME_MAX + 1];
  char type[16];                /* snapshot, checkpoint or live */
  bool has_id;                  /* not for live */
  uint64_t id, epoch;
  char uuid[SC_CTL_UUID_LEN];
};

struct extent { uint64_t offset, length; };

struct diff {
  bool have_header;             /* of the current page */
  bool first_done;              /* the first page's header is kept */
  char volume[SC_CTL_UUID_LEN];
  uint64_t chunk_size, volume_size;
  struct side from, to;
  bool end;
  uint64_t next;
  struct extent *v;             /* merged, sorted, disjoint */
  size_t n, cap;
  uint64_t total;
  int failed;                   /* why a line was refused: -ESTALE (a
                                   side changed between pages), -ENOMEM */
};

static int
field_u64 (const struct sc_ctl_line *l, const char *key, uint64_t *out)
{
  const char *s = sc_ctl_field (l, key);
  return s ? sc_ctl_parse_u64 (s, out) : -EPROTO;
}

static int
field_str (const struct sc_ctl_line *l, const char *key, char *buf,
           size_t len)
{
  const char *s = sc_ctl_field (l, key);
  if (!s || strlen (s) >= len)
    return -EPROTO;
  strcpy (buf, s);
  return 0;
}

static int
side_from_line (const struct sc_ctl_line *l, const char *prefix,
                struct side *s)
{
  char k[32];

  memset (s, 0, sizeof *s);
  snprintf (k, sizeof k, "%s-type", prefix);
  if (field_str (l, prefix, s->name, sizeof s->name) < 0 ||
      field_str (l, k, s->type, sizeof s->type) < 0)
    return -EPROTO;
  snprintf (k, sizeof k, "%s-epoch", prefix);
  if (field_u64 (l, k, &s->epoch) < 0)
    return -EPROTO;
  if (strcmp (s->type, "live") == 0)
    return 0;
  if (strcmp (s->type, "snapshot") != 0 && strcmp (s->type, "checkpoint"))
    return -EPROTO;
  s->has_id = true;
  snprintf (k, sizeof k, "%s-id", prefix);
  if (field_u64 (l, k, &s->id) < 0)
    return -EPROTO;
  snprintf (k, sizeof k, "%s-uuid", prefix);
  return field_str (l, k, s->uuid, sizeof s->uuid);
}

/* Two pages name the same side: the same object, not just its name.
 * (A live side's epoch may move on between pages: it is the live
 * volume's.) */
static bool
same_side (const struct side *a, const struct side *b)
{
  return strcmp (a->name, b->name) == 0 && strcmp (a->type, b->type) == 0 &&
    a->has_id == b->has_id && a->id == b->id &&
    strcmp (a->uuid, b->uuid) == 0 && (!a->has_id || a->epoch == b->epoch);
}

static int
on_header (const struct sc_ctl_line *l, struct diff *d)
{
  char vol[SC_CTL_UUID_LEN], next[24];
  uint64_t cs, size;
  struct side from, to;

  if (d->have_header)
    return -EPROTO;
  if (field_str (l, "volume", vol, sizeof vol) < 0 ||
      field_u64 (l, "chunk-size", &cs) < 0 || cs == 0 ||
      field_u64 (l, "volume-size", &size) < 0 ||
      field_str (l, "next", next, sizeof next) < 0 ||
      side_from_line (l, "from", &from) < 0 || !from.has_id ||
      side_from_line (l, "to", &to) < 0)
    return -EPROTO;
  if (strcmp (next, "end") == 0)
    d->end = true;
  else if (sc_ctl_parse_u64 (next, &d->next) < 0)
    return -EPROTO;
  if (!d->first_done) {
    snprintf (d->volume, sizeof d->volume, "%s", vol);
    d->chunk_size = cs;
    d->volume_size = size;
    d->from = from;
    d->to = to;
    d->first_done = true;
  }
  else if (strcmp (d->volume, vol) != 0 || d->chunk_size != cs ||
           d->volume_size != size || !same_side (&d->from, &from) ||
           !same_side (&d->to, &to))
    return d->failed = -ESTALE;
  d->have_header = true;
  return 0;
}

static int
on_extent (const struct sc_ctl_line *l, struct diff *d)
{
  uint64_t off, len;

  if (!d->have_header || field_u64 (l, "offset", &off) < 0 ||
      field_u64 (l, "length", &len) < 0 || len == 0 ||
      off > d->volume_size || len > d->volume_size - off)
    return -EPROTO;
  if (d->n) {
    struct extent *last = &d->v[d->n - 1];
    uint64_t end = last->offset + last->length;
    if (off < end)
      return -EPROTO;           /* unsorted or overlapping */
    if (off == end) {           /* touches: runs cut by a page */
      last->length += len;
      d->total += len;
      return 0;
    }
  }
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    struct extent *v = reallocarray (d->v, cap, sizeof *v);
    if (!v)
      return d->failed = -ENOMEM;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->n++] = (struct extent) { off, len };
  d->total += len;
  return 0;
}

static int
on_diff_line (const struct sc_ctl_line *l, void *opaque)
{
  if (strcmp (l->kind, "diff") == 0)
    return on_header (l, opaque);
  if (strcmp (l->kind, "extent") == 0)
    return on_extent (l, opaque);
  return 0;                     /* a newer server may say more */
}

/* Every page, merged into d.  0, or a negative errno with err said. */
static int
fetch (struct sc_client *c, const char *from, const char *to,
       struct diff *d, char *err, size_t errlen)
{
  uint64_t start = 0;
  char arg[32];

  for (;;) {
    const char *args[3];
    size_t nargs = 0;
    int r;

    args[nargs++] = from;
    if (to)
      args[nargs++] = to;
    if (start) {
      snprintf (arg, sizeof arg, "start=%" PRIu64, start);
      args[nargs++] = arg;
    }
    d->have_header = false;
    d->end = false;
    r = sc_client_request (c, "DIFF", args, nargs, on_diff_line, d, err,
                           errlen);
    if (r == -EPROTO && d->failed == -ENOMEM)
      snprintf (err, errlen, "%s", strerror (ENOMEM));
    if (r == -EPROTO && d->failed == -ESTALE)
      snprintf (err, errlen, "%s or %s changed during the diff (deleted, "
                "made again, or kept as a checkpoint): run it again", from,
                to ? to : "live");
    if (r == -EPROTO && d->failed)
      r = d->failed;
    if (r < 0)
      return r;
    if (!d->have_header) {
      snprintf (err, errlen, "bad reply from the server: DIFF without its "
                "diff line");
      return -EPROTO;
    }
    if (d->end)
      return 0;
    if (d->next <= start) {
      snprintf (err, errlen, "bad reply from the server: DIFF page at "
                "chunk %" PRIu64 " says the next starts at %" PRIu64,
                start, d->next);
      return -EPROTO;
    }
    start = d->next;
  }
}

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
print_table (const struct diff *d)
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
json_side (struct sc_json *j, const char *key, const struct side *s)
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
print_json (const struct diff *d, bool extents)
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
  struct diff d = { .have_header = false };
  struct sc_client *c;
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

  if (sc_cli_open_target (t, SC_CLIENT_READ, &c) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  r = fetch (c, from, to, &d, err, sizeof err);
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
