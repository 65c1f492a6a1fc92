/* libshadowcopy: any request (shadowcopy_request(3)), for the verbs the
 * library does not wrap: each data line to the caller as its kind and
 * fields. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "lib/api-internal.h"

struct lines {
  shadowcopy_line_fn fn;
  void *opaque;
};

static int
on_line (const struct sc_ctl_line *line, void *opaque)
{
  struct lines *x = opaque;
  struct shadowcopy_field f[SC_CTL_FIELDS_MAX];
  size_t n = line->nfields < SC_CTL_FIELDS_MAX ? line->nfields
                                               : SC_CTL_FIELDS_MAX;

  for (size_t i = 0; i < n; i++) {
    f[i].key = line->fields[i].key;
    f[i].value = line->fields[i].value;
  }
  return x->fn (line->kind, f, n, x->opaque) < 0 ? -EPROTO : 0;
}

int
shadowcopy_request (struct shadowcopy *h, const char *verb,
                    const char *const *args, size_t nargs,
                    shadowcopy_line_fn fn, void *opaque)
{
  char err[SC_API_ERRLEN];
  struct lines x = { fn, opaque };
  int r;

  SC_API_CHECK (h);
  if (!verb || !*verb || (nargs && !args))
    return sc_api_fail (EINVAL, "shadowcopy_request: no verb given");
  for (size_t i = 0; i < nargs; i++)
    if (!args[i])
      return sc_api_fail (EINVAL, "shadowcopy_request: %s: argument %zu "
                          "is NULL", verb, i + 1);
  r = sc_client_request (h->c, verb, args, nargs, fn ? on_line : NULL, &x,
                         err, sizeof err);
  return r < 0 ? sc_api_fail (-r, "%s", err) : 0;
}
