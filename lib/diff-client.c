/* shadowcopy: the DIFF client (diff-client.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/diff-client.h"

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
                struct sc_diff_side *s)
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
same_side (const struct sc_diff_side *a, const struct sc_diff_side *b)
{
  return strcmp (a->name, b->name) == 0 && strcmp (a->type, b->type) == 0 &&
    a->has_id == b->has_id && a->id == b->id &&
    strcmp (a->uuid, b->uuid) == 0 && (!a->has_id || a->epoch == b->epoch);
}

static int
on_header (const struct sc_ctl_line *l, struct sc_diff *d)
{
  char vol[SC_CTL_UUID_LEN], next[24];
  uint64_t cs, size;
  struct sc_diff_side from, to;

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
on_extent (const struct sc_ctl_line *l, struct sc_diff *d)
{
  uint64_t off, len;

  if (!d->have_header || field_u64 (l, "offset", &off) < 0 ||
      field_u64 (l, "length", &len) < 0 || len == 0 ||
      off > d->volume_size || len > d->volume_size - off)
    return -EPROTO;
  if (d->n) {
    struct sc_diff_extent *last = &d->v[d->n - 1];
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
    struct sc_diff_extent *v = reallocarray (d->v, cap, sizeof *v);
    if (!v)
      return d->failed = -ENOMEM;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->n++] = (struct sc_diff_extent) { off, len };
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

int
sc_diff_fetch (struct sc_client *c, const char *from, const char *to,
       struct sc_diff *d, char *err, size_t errlen)
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
