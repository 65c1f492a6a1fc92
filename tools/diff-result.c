/* shadowcopy: a DIFF as the CLI keeps it (diff-result.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/diff-result.h"

static int
add (uint64_t offset, uint64_t length, void *opaque)
{
  struct sc_diff *d = opaque;

  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    struct sc_diff_extent *v = reallocarray (d->v, cap, sizeof *v);
    if (!v)
      return -ENOMEM;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->n++] = (struct sc_diff_extent) { offset, length };
  return 0;
}

static void
side (const struct shadowcopy_diff_side *in, struct sc_diff_side *out)
{
  memset (out, 0, sizeof *out);
  snprintf (out->name, sizeof out->name, "%s", in->name);
  snprintf (out->type, sizeof out->type, "%s", in->type);
  out->has_id = strcmp (in->type, "live") != 0;
  out->id = in->id;
  out->epoch = in->epoch;
  snprintf (out->uuid, sizeof out->uuid, "%s", in->uuid);
}

int
sc_cli_diff_fetch (struct shadowcopy *h, const char *from, const char *to,
               struct sc_diff *d, char *err, size_t errlen)
{
  struct shadowcopy_diff info;
  int r;

  memset (d, 0, sizeof *d);
  r = shadowcopy_diff (h, from, to, add, d, &info);
  if (r < 0) {
    snprintf (err, errlen, "%s", shadowcopy_get_error ());
    return r;
  }
  snprintf (d->volume, sizeof d->volume, "%s", info.volume);
  d->chunk_size = info.chunk_size;
  d->volume_size = info.volume_size;
  side (&info.from, &d->from);
  side (&info.to, &d->to);
  d->total = info.bytes;
  return 0;
}
