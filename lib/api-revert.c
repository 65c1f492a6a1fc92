/* libshadowcopy: revert (shadowcopy_revert(3)): REVERT, REVERT-STATUS,
 * REVERT-RESUME, REVERT-RATE, each answered by a "revert" line (and a
 * dry run by a "revert-plan" line). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "lib/api-internal.h"

void
sc_api_revert (const struct sc_client_revert *in,
               struct shadowcopy_revert *out)
{
  memset (out, 0, sizeof *out);
  SC_API_COPY (out->state, in->state);
  SC_API_COPY (out->target, in->target);
  SC_API_COPY (out->saved, in->saved);
  out->bytes_done = in->bytes_done;
  out->bytes_todo = in->bytes_todo;
  out->rate = in->rate;
  out->eta_s = in->eta_s;
  out->errors = in->errors;
  out->target_invalid = in->target_invalid;
  SC_API_COPY (out->error, in->error);
  SC_API_COPY (out->ended, in->ended);
}

struct reply {
  struct shadowcopy_revert *out;
  bool seen;
};

static int
u64 (const struct sc_ctl_line *line, const char *key, uint64_t *out)
{
  const char *v = sc_ctl_field (line, key);

  return v ? sc_ctl_parse_u64 (v, out) : -EPROTO;
}

static int
on_reply (const struct sc_ctl_line *line, void *opaque)
{
  struct reply *x = opaque;
  struct shadowcopy_revert *o = x->out;

  if (strcmp (line->kind, "revert-plan") == 0) {
    const char *fits = sc_ctl_field (line, "fits");
    x->seen = true;
    memset (o, 0, sizeof *o);
    SC_API_COPY (o->state, "none");
    o->have_plan = true;
    o->plan_fits = fits && strcmp (fits, "yes") == 0;
    if (!fits || u64 (line, "bytes-to-write", &o->plan_bytes_to_write) < 0 ||
        u64 (line, "space-needed", &o->plan_space_needed) < 0 ||
        u64 (line, "limit", &o->plan_limit) < 0)
      return -EPROTO;
    return 0;
  }
  if (strcmp (line->kind, "revert") != 0)
    return 0;
  struct sc_client_revert rv;
  x->seen = true;
  if (sc_client_revert_from_line (line, &rv) < 0)
    return -EPROTO;
  sc_api_revert (&rv, o);
  return 0;
}

static int
revert_request (struct shadowcopy *h, const char *verb,
                const char *const *args, size_t nargs,
                struct shadowcopy_revert *out)
{
  char err[SC_API_ERRLEN];
  struct shadowcopy_revert scratch;
  struct reply x = { out ? out : &scratch, false };
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, verb, args, nargs, on_reply, &x, err,
                         sizeof err);
  if (r == -ENOTCONN)
    return sc_api_fail (ENOTCONN, "revert needs a running server");
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (!x.seen)
    return sc_api_fail (EPROTO, "bad reply from the server: no revert "
                        "line");
  return 0;
}

int
shadowcopy_revert (struct shadowcopy *h, const char *name,
                   const struct shadowcopy_revert_args *a,
                   struct shadowcopy_revert *out)
{
  char args[6][SHADOWCOPY_NAME_MAX + 16];
  const char *av[6];
  size_t n = 0;

  if (!name)
    return sc_api_fail (EINVAL, "shadowcopy_revert: no snapshot given");
  snprintf (args[n++], sizeof args[0], "%s", name);
  if (a && a->save && a->nosave)
    return sc_api_fail (EINVAL, "revert %s: save and nosave do not go "
                        "together", name);
  if (a && a->save)
    snprintf (args[n++], sizeof args[0], "save=%s", a->save);
  if (a && a->nosave)
    snprintf (args[n++], sizeof args[0], "nosave");
  if (a && a->force)
    snprintf (args[n++], sizeof args[0], "force");
  if (a && a->dry_run)
    snprintf (args[n++], sizeof args[0], "dry-run");
  if (a && a->paused)
    snprintf (args[n++], sizeof args[0], "paused");
  if (a && a->rate)
    snprintf (args[n++], sizeof args[0], "rate=%" PRIu64,
              a->rate == SHADOWCOPY_RATE_UNBOUNDED ? 0 : a->rate);
  if (n > 6)
    return sc_api_fail (EINVAL, "revert %s: too many options", name);
  for (size_t i = 0; i < n; i++)
    av[i] = args[i];
  return revert_request (h, "REVERT", av, n, out);
}

int
shadowcopy_revert_status (struct shadowcopy *h, struct shadowcopy_revert *out)
{
  return revert_request (h, "REVERT-STATUS", NULL, 0, out);
}

int
shadowcopy_revert_resume (struct shadowcopy *h, struct shadowcopy_revert *out)
{
  return revert_request (h, "REVERT-RESUME", NULL, 0, out);
}

int
shadowcopy_revert_rate (struct shadowcopy *h, uint64_t rate,
                        struct shadowcopy_revert *out)
{
  char arg[24];
  const char *a = arg;

  snprintf (arg, sizeof arg, "%" PRIu64,
            rate == SHADOWCOPY_RATE_UNBOUNDED ? 0 : rate);
  return revert_request (h, "REVERT-RATE", &a, 1, out);
}
