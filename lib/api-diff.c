/* libshadowcopy: changed blocks (shadowcopy_diff(3)): every page of DIFF,
 * checked and merged by the internal DIFF client (diff-client.c), handed
 * to the caller extent by extent. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/api-internal.h"
#include "lib/diff-client.h"

static void
side (const struct sc_diff_side *in, struct shadowcopy_diff_side *out)
{
  memset (out, 0, sizeof *out);
  SC_API_COPY (out->name, in->name);
  SC_API_COPY (out->type, in->type);
  out->id = in->has_id ? in->id : 0;
  SC_API_COPY (out->uuid, in->uuid);
  out->epoch = in->epoch;
}

int
shadowcopy_diff (struct shadowcopy *h, const char *from, const char *to,
                 shadowcopy_extent_fn fn, void *opaque,
                 struct shadowcopy_diff *out)
{
  char err[SC_API_ERRLEN];
  struct sc_diff d;
  int r;

  SC_API_CHECK (h);
  if (!from)
    return sc_api_fail (EINVAL, "shadowcopy_diff: no FROM given");
  memset (&d, 0, sizeof d);
  r = sc_diff_fetch (h->c, from, to, &d, err, sizeof err);
  if (r < 0) {
    free (d.v);
    return sc_api_fail (-r, "%s", err);
  }
  if (out) {
    memset (out, 0, sizeof *out);
    SC_API_COPY (out->volume, d.volume);
    out->chunk_size = d.chunk_size;
    out->volume_size = d.volume_size;
    side (&d.from, &out->from);
    side (&d.to, &out->to);
    out->bytes = d.total;
  }
  for (size_t i = 0; fn && i < d.n && r == 0; i++)
    r = fn (d.v[i].offset, d.v[i].length, opaque);
  free (d.v);
  /* Only 0 goes on: a callback that returned a count or true by mistake
   * must not make a short list of changes look whole. */
  if (r > 0)
    return sc_api_fail (EINVAL, "diff %s: the extent callback returned %d "
                        "(it must return 0, or a negative errno to stop)",
                        from, r);
  if (r < 0)
    return sc_api_fail (-r, "diff %s: stopped by the caller: %s", from,
                        strerror (-r));
  return 0;
}
