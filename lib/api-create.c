/* libshadowcopy: making snapshots (shadowcopy_create(3)): CREATE in one
 * request, or BEGIN, HOLD, COMMIT, RELEASE, ABORT in VSS steps; and
 * CHECKPOINT and CLONE, whose replies carry the same "snapshot" line. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "lib/api-internal.h"

struct one {
  struct sc_client_snapshot s;
  bool seen;
};

static int
on_snapshot (const struct sc_ctl_line *line, void *opaque)
{
  struct one *o = opaque;

  if (strcmp (line->kind, "snapshot") != 0)
    return 0;
  o->seen = true;
  return sc_client_snapshot_from_line (line, &o->s);
}

int
sc_api_request_snapshot (struct shadowcopy *h, const char *verb,
                         const char *const *args, size_t nargs,
                         struct shadowcopy_snapshot *out)
{
  char err[SC_API_ERRLEN];
  struct one o = { .seen = false };
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, verb, args, nargs, on_snapshot, &o, err,
                         sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (out) {
    if (!o.seen) {
      const char *where, *version;
      unsigned a, b;
      bool off;
      sc_client_server (h->c, &a, &b, &version, &where, &off);
      return sc_api_fail (EPROTO, "%s: bad reply from the server: no "
                          "snapshot line in the answer to %s", where, verb);
    }
    sc_api_snapshot (&o.s, out);
  }
  return 0;
}

/* NAME set=UUID auto-release=1 delete-oldest=1 [release=1]. */
struct create_args {
  char set[64];
  const char *v[5];
  size_t n;
};

static int
create_args (const struct shadowcopy_create_args *a, bool release,
             struct create_args *ca)
{
  ca->n = 0;
  if (!a)
    goto out;
  if (a->name) {
    if (a->name[0] == '\0' || strchr (a->name, '='))
      return sc_api_fail (EINVAL, "invalid snapshot name: %s", a->name);
    ca->v[ca->n++] = a->name;
  }
  if (a->set) {
    snprintf (ca->set, sizeof ca->set, "set=%s", a->set);
    ca->v[ca->n++] = ca->set;
  }
  if (a->auto_release)
    ca->v[ca->n++] = "auto-release=1";
  if (a->delete_oldest)
    ca->v[ca->n++] = "delete-oldest=1";
 out:
  if (release)
    ca->v[ca->n++] = "release=1";
  return 0;
}

int
shadowcopy_create (struct shadowcopy *h,
                   const struct shadowcopy_create_args *a,
                   struct shadowcopy_snapshot *out)
{
  struct create_args ca;
  int r = create_args (a, false, &ca);

  return r < 0 ? r : sc_api_request_snapshot (h, "CREATE", ca.v, ca.n, out);
}

static int
timed (struct shadowcopy *h, const char *verb, uint64_t timeout_ms)
{
  char arg[40];
  const char *a = arg;

  snprintf (arg, sizeof arg, "timeout=%" PRIu64, timeout_ms);
  return sc_api_request_snapshot (h, verb, &a, timeout_ms ? 1 : 0, NULL);
}

int
shadowcopy_begin (struct shadowcopy *h, uint64_t timeout_ms)
{
  return timed (h, "BEGIN", timeout_ms);
}

int
shadowcopy_hold (struct shadowcopy *h, uint64_t timeout_ms)
{
  return timed (h, "HOLD", timeout_ms);
}

int
shadowcopy_commit (struct shadowcopy *h,
                   const struct shadowcopy_create_args *a, bool release,
                   struct shadowcopy_snapshot *out)
{
  struct create_args ca;
  int r = create_args (a, release, &ca);

  return r < 0 ? r : sc_api_request_snapshot (h, "COMMIT", ca.v, ca.n, out);
}

static int
on_released (const struct sc_ctl_line *line, void *opaque)
{
  const char *v;

  if (strcmp (line->kind, "released") != 0)
    return 0;
  if (!(v = sc_ctl_field (line, "held-ns")))
    return -EPROTO;
  return sc_ctl_parse_u64 (v, opaque);
}

int
shadowcopy_release (struct shadowcopy *h, uint64_t *held_ns)
{
  char err[SC_API_ERRLEN];
  uint64_t ns = 0;
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, "RELEASE", NULL, 0, on_released, &ns, err,
                         sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (held_ns)
    *held_ns = ns;
  return 0;
}

int
shadowcopy_abort (struct shadowcopy *h)
{
  return sc_api_request_snapshot (h, "ABORT", NULL, 0, NULL);
}

int
shadowcopy_checkpoint (struct shadowcopy *h, const char *name,
                       bool delete_oldest, struct shadowcopy_snapshot *out)
{
  const char *args[2] = { name, "delete-oldest=1" };

  if (!name)
    return sc_api_fail (EINVAL, "shadowcopy_checkpoint: no name given");
  return sc_api_request_snapshot (h, "CHECKPOINT", args,
                                  delete_oldest ? 2 : 1, out);
}

int
shadowcopy_clone (struct shadowcopy *h, const char *snapshot,
                  const char *name, struct shadowcopy_snapshot *out)
{
  const char *args[2] = { snapshot, name };

  if (!snapshot || !name)
    return sc_api_fail (EINVAL, "shadowcopy_clone: needs a snapshot and "
                        "a name");
  return sc_api_request_snapshot (h, "CLONE", args, 2, out);
}
