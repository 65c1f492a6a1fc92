/* libshadowcopy: the snapshots (shadowcopy_list(3)) and their deletion
 * (shadowcopy_delete(3)): LIST, DELETE, DELETE-OLDEST, DELETE-ALL,
 * DELETE-SET. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "lib/api-internal.h"

void
sc_api_snapshot (const struct sc_client_snapshot *in,
                 struct shadowcopy_snapshot *out)
{
  memset (out, 0, sizeof *out);
  out->id = in->id;
  SC_API_COPY (out->name, in->name);
  SC_API_COPY (out->type, in->type);
  SC_API_COPY (out->base, in->base);
  SC_API_COPY (out->uuid, in->uuid);
  SC_API_COPY (out->set, in->set);
  SC_API_COPY (out->created, in->created);
  out->epoch = in->epoch;
  out->valid = in->valid;
  SC_API_COPY (out->reason, in->reason);
  out->auto_release = in->auto_release;
  out->used_bytes = in->used_bytes;
  out->discarded_bytes = in->discarded_bytes;
  out->meta_bytes = in->meta_bytes;
}

int
shadowcopy_list (struct shadowcopy *h, struct shadowcopy_snapshot **out,
                 size_t *n)
{
  char err[SC_API_ERRLEN];
  struct sc_client_snapshot *rows;
  struct shadowcopy_snapshot *v = NULL;
  size_t k;
  int r;

  SC_API_CHECK (h);
  r = sc_client_list (h->c, &rows, &k, err, sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (k && !(v = calloc (k, sizeof *v))) {
    free (rows);
    return sc_api_fail (ENOMEM, "%s", strerror (ENOMEM));
  }
  for (size_t i = 0; i < k; i++)
    sc_api_snapshot (&rows[i], &v[i]);
  free (rows);
  *out = v;
  *n = k;
  return 0;
}

int
shadowcopy_find (struct shadowcopy *h, const char *name,
                 struct shadowcopy_snapshot *out)
{
  struct shadowcopy_snapshot *v;
  size_t n;
  int r;

  if (!name)
    return sc_api_fail (EINVAL, "shadowcopy_find: no name given");
  r = shadowcopy_list (h, &v, &n);
  if (r < 0)
    return r;
  r = -ENOENT;
  for (size_t i = 0; i < n && r < 0; i++)
    if (strcmp (v[i].name, name) == 0) {
      *out = v[i];
      r = 0;
    }
  free (v);
  return r < 0 ? sc_api_fail (ENOENT, "no snapshot named %s", name) : 0;
}

/* ---- the space policy's drops (the "dropped" lines of LIST) ---------- */

struct drops {
  struct shadowcopy_dropped *v;
  size_t n, cap;
};

static int
on_dropped (const struct sc_ctl_line *line, void *opaque)
{
  struct drops *d = opaque;

  if (strcmp (line->kind, "dropped") != 0)
    return 0;
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 8;
    struct shadowcopy_dropped *v = reallocarray (d->v, cap, sizeof *v);
    if (!v)
      return -ENOMEM;
    d->v = v;
    d->cap = cap;
  }
  struct shadowcopy_dropped *x = &d->v[d->n++];
  const char *f;
  memset (x, 0, sizeof *x);
#define GET(key, buf) \
  SC_API_COPY (buf, (f = sc_ctl_field (line, key)) ? f : "?")
  GET ("name", x->name);
  GET ("created", x->created);
  GET ("dropped-at", x->dropped_at);
  GET ("reason", x->reason);
#undef GET
  return 0;
}

int
shadowcopy_list_dropped (struct shadowcopy *h,
                         struct shadowcopy_dropped **out, size_t *n)
{
  char err[SC_API_ERRLEN];
  struct drops d = { NULL, 0, 0 };
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, "LIST", NULL, 0, on_dropped, &d, err,
                         sizeof err);
  if (r < 0) {
    free (d.v);
    return sc_api_fail (-r, "%s", err);
  }
  *out = d.v;
  *n = d.n;
  return 0;
}

/* ---- delete ---------------------------------------------------------- */

struct deleted {
  shadowcopy_deleted_fn fn;
  void *opaque;
  size_t n;
};

static int
on_deleted (const struct sc_ctl_line *line, void *opaque)
{
  struct deleted *d = opaque;
  const char *name = sc_ctl_field (line, "name");

  if (strcmp (line->kind, "deleted") != 0)
    return 0;
  if (!name)
    return -EPROTO;
  d->n++;
  if (d->fn)
    d->fn (name, d->opaque);
  return 0;
}

static int
delete_request (struct shadowcopy *h, const char *verb,
                const char *const *args, size_t nargs,
                shadowcopy_deleted_fn fn, void *opaque, size_t *count)
{
  char err[SC_API_ERRLEN];
  struct deleted d = { fn, opaque, 0 };
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, verb, args, nargs, on_deleted, &d, err,
                         sizeof err);
  if (count)
    *count = d.n;
  return r < 0 ? sc_api_fail (-r, "%s", err) : 0;
}

int
shadowcopy_delete (struct shadowcopy *h, const char *name, const char *uuid,
                   unsigned flags, shadowcopy_deleted_fn fn, void *opaque)
{
  char opt[64];
  const char *args[2] = { name, opt };
  size_t nargs = 1;

  if (!name)
    return sc_api_fail (EINVAL, "shadowcopy_delete: no name given");
  if ((uuid != NULL) + !!(flags & SHADOWCOPY_DELETE_KEEP_CHECKPOINT)
      + !!(flags & SHADOWCOPY_DELETE_WITH_CLONES) > 1)
    return sc_api_fail (EINVAL, "delete %s: a UUID, keep-checkpoint and "
                        "with-clones do not go together", name);
  if (flags & ~(unsigned) (SHADOWCOPY_DELETE_KEEP_CHECKPOINT
                           | SHADOWCOPY_DELETE_WITH_CLONES))
    return sc_api_fail (EINVAL, "delete %s: unknown flags 0x%x", name,
                        flags);
  if (uuid) {
    snprintf (opt, sizeof opt, "uuid=%s", uuid);
    nargs = 2;
  }
  else if (flags & SHADOWCOPY_DELETE_KEEP_CHECKPOINT) {
    snprintf (opt, sizeof opt, "keep-checkpoint=1");
    nargs = 2;
  }
  else if (flags & SHADOWCOPY_DELETE_WITH_CLONES) {
    snprintf (opt, sizeof opt, "with-clones=1");
    nargs = 2;
  }
  return delete_request (h, "DELETE", args, nargs, fn, opaque, NULL);
}

int
shadowcopy_delete_oldest (struct shadowcopy *h, shadowcopy_deleted_fn fn,
                          void *opaque)
{
  return delete_request (h, "DELETE-OLDEST", NULL, 0, fn, opaque, NULL);
}

int
shadowcopy_delete_all (struct shadowcopy *h, shadowcopy_deleted_fn fn,
                       void *opaque)
{
  return delete_request (h, "DELETE-ALL", NULL, 0, fn, opaque, NULL);
}

int
shadowcopy_delete_set (struct shadowcopy *h, const char *set,
                       shadowcopy_deleted_fn fn, void *opaque)
{
  size_t n = 0;
  int r;

  if (!set)
    return sc_api_fail (EINVAL, "shadowcopy_delete_set: no set given");
  r = delete_request (h, "DELETE-SET", &set, 1, fn, opaque, &n);
  if (r == 0 && n == 0)
    return sc_api_fail (ENOENT, "no snapshot of set %s", set);
  return r;
}
