/* libshadowcopy: snapshot sets with writers (shadowcopy_set_*, in
 * lib/shadowcopy.h), over the creation sequence (create-sequence.c) and
 * the writers (writers.c).
 *
 * Notes on the design
 *
 * A set is a struct sc_create and what it points to, owned: the volumes'
 * names, the writers, the SHADOWCOPY_* lists.  The options only fill it;
 * shadowcopy_set_create runs identify and the attempts exactly as the
 * CLI always has, so a vendor's requester and `shadowcopy create` take
 * the same snapshots with the same writers' phases.
 *
 * Nothing here prints.  The sequence's notices (writers left out,
 * retries, an undo's steps, each failure as it happens) go to the set's
 * notify callback; the last attempt's first failure is also the call's
 * error (shadowcopy_get_error), so a requester that shows the notices
 * need not show it again.
 *
 * shadowcopy_interrupt only sets sc_interrupted (a sig_atomic_t): the
 * writers' phase loop and the retries look at it.  shadowcopy_set_new
 * clears it, so an interruption of one set does not spill into the
 * next.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/diffarea.h"
#include "cow/uuid.h"
#include "lib/api-internal.h"
#include "lib/api-set.h"
#include "lib/create-sequence.h"
#include "lib/shadowcopy.h"
#include "lib/writers.h"

#define NOTICES_KEPT 64

struct shadowcopy_set {
  struct sc_create cr;          /* cr.vols[i].socket is where[i] */
  char *where[SC_CREATE_VOLUMES_MAX];
  char prefix[SC_NAME_MAX + 1]; /* of the default name */
  bool taken;                   /* by shadowcopy_set_create */
  struct shadowcopy handles[SC_CREATE_VOLUMES_MAX];  /* set_handle's */
  /* shadowcopy_set_notify's callback, looked up at each notice (the
   * sequence's cr.notify is set_notice); the notices made while there
   * is none, kept for it (at most NOTICES_KEPT, then counted). */
  shadowcopy_notify_fn fn;
  void *fn_opaque;
  char *pending[NOTICES_KEPT];
  size_t npending, dropped;
};

/* Every notice of the set comes here: to the callback set now, or kept
 * until one is set (a writers directory added before
 * shadowcopy_set_notify warns of the writers it skips). */
static void
set_notice (const char *message, void *opaque)
{
  struct shadowcopy_set *s = opaque;

  if (s->fn)
    s->fn (message, s->fn_opaque);
  else if (s->npending < NOTICES_KEPT &&
           (s->pending[s->npending] = strdup (message)) != NULL)
    s->npending++;
  else
    s->dropped++;
}

void
shadowcopy_interrupt (void)
{
  sc_interrupted = 1;
}

int
shadowcopy_set_new (struct shadowcopy_set **out)
{
  struct shadowcopy_set *s = calloc (1, sizeof *s);
  uint8_t id[16];
  int r;

  if (!s)
    return sc_api_fail (ENOMEM, "snapshot set: %s", strerror (ENOMEM));
  r = sc_uuid_random (id);
  if (r < 0) {
    free (s);
    return sc_api_fail (-r, "cannot make a set id: %s", strerror (-r));
  }
  sc_uuid_format (id, s->cr.set_id);
  s->cr.freeze_ms = 60000;
  s->cr.hold_ms = 10000;
  s->cr.retry_delay_ms = 5000;
  s->cr.notify = set_notice;
  s->cr.notify_opaque = s;
  sc_interrupted = 0;
  *out = s;
  return 0;
}

static int
not_taken (const struct shadowcopy_set *s, const char *what)
{
  if (s->taken)
    return sc_api_fail (EBUSY, "snapshot set %s: taken already: %s comes "
                        "before shadowcopy_set_create", s->cr.set_id, what);
  return 0;
}

/* A control socket, as given: a diff area is not guessed at (its
 * server's is DIFF.sock), so that a file given by mistake fails with the
 * client's own message. */
int
shadowcopy_set_add_volume (struct shadowcopy_set *s, const char *where)
{
  struct sc_create *cr = &s->cr;
  char *w;
  int r;

  if ((r = not_taken (s, "a volume")) < 0)
    return r;
  if (!where || !*where)
    return sc_api_fail (EINVAL, "snapshot set: a volume needs a control "
                        "socket or a diff area");
  if (cr->nvols == SC_CREATE_VOLUMES_MAX)
    return sc_api_fail (E2BIG, "snapshot set: at most %d volumes",
                        SC_CREATE_VOLUMES_MAX);
  if (!(w = strdup (where)))
    return sc_api_fail (ENOMEM, "snapshot set: %s", strerror (ENOMEM));
  s->where[cr->nvols] = w;
  cr->vols[cr->nvols++].socket = w;
  return 0;
}

int
shadowcopy_set_add_writer (struct shadowcopy_set *s, const char *writer)
{
  char err[4096];
  int r;

  if ((r = not_taken (s, "a writer")) < 0)
    return r;
  if (!writer || !*writer)
    return sc_api_fail (EINVAL, "snapshot set: an empty writer");
  r = sc_writers_add (&s->cr.writers, &s->cr.nwriters, writer, err,
                      sizeof err);
  return r < 0 ? sc_api_fail (-r, "%s", err) : 0;
}

int
shadowcopy_set_add_writers_dir (struct shadowcopy_set *s, const char *dir,
                                bool optional)
{
  char err[4096];
  int r;

  if ((r = not_taken (s, "a writers directory")) < 0)
    return r;
  if (!dir || !*dir)
    return sc_api_fail (EINVAL, "snapshot set: an empty writers directory");
  r = sc_writers_add_dir (&s->cr.writers, &s->cr.nwriters, dir, optional,
                          s->cr.notify, s->cr.notify_opaque, err,
                          sizeof err);
  return r < 0 ? sc_api_fail (-r, "%s", err) : 0;
}

const char *
shadowcopy_set_writer (const struct shadowcopy_set *s, size_t i)
{
  return i < s->cr.nwriters ? s->cr.writers[i].name : NULL;
}

/* ---- options --------------------------------------------------------- */

int
shadowcopy_set_name (struct shadowcopy_set *s, const char *name)
{
  int r;

  if ((r = not_taken (s, "its name")) < 0)
    return r;
  if (!name) {
    s->cr.have_name = false;
    return 0;
  }
  if (!sc_snapshot_name_valid (name))
    return sc_api_fail (EINVAL, "invalid snapshot name '%s' (1 to %d of "
                        "A-Z a-z 0-9 . _ : + -, not starting with '.', "
                        "not \"live\")", name, SC_NAME_MAX);
  snprintf (s->cr.name, sizeof s->cr.name, "%s", name);
  s->cr.have_name = true;
  return 0;
}

int
shadowcopy_set_name_prefix (struct shadowcopy_set *s, const char *prefix)
{
  int r;

  if ((r = not_taken (s, "its name's prefix")) < 0)
    return r;
  if (!prefix || !*prefix) {
    s->cr.name_prefix = NULL;
    return 0;
  }
  /* The prefix and a UTC time ("2026-01-02T03:04:05.678Z", 24) must
   * make a valid name. */
  char probe[SC_NAME_MAX + 64];
  snprintf (probe, sizeof probe, "%s2026-01-02T03:04:05.678Z", prefix);
  if (strlen (prefix) > SC_NAME_MAX - 32 || !sc_snapshot_name_valid (probe))
    return sc_api_fail (EINVAL, "invalid snapshot name prefix '%s'",
                        prefix);
  snprintf (s->prefix, sizeof s->prefix, "%s", prefix);
  s->cr.name_prefix = s->prefix;
  return 0;
}

void
shadowcopy_set_auto_release (struct shadowcopy_set *s, bool on)
{
  s->cr.auto_release = on;
}

void
shadowcopy_set_delete_oldest (struct shadowcopy_set *s, bool on)
{
  s->cr.delete_oldest = on;
}

void
shadowcopy_set_timeouts (struct shadowcopy_set *s, uint64_t freeze_ms,
                         uint64_t hold_ms)
{
  s->cr.freeze_ms = freeze_ms ? freeze_ms : 60000;
  s->cr.hold_ms = hold_ms ? hold_ms : 10000;
}

void
shadowcopy_set_retries (struct shadowcopy_set *s, unsigned retries,
                        uint64_t delay_ms, bool wait)
{
  s->cr.retries = retries;
  s->cr.retry_delay_ms = delay_ms;
  s->cr.wait = wait;
}

void
shadowcopy_set_notify (struct shadowcopy_set *s, shadowcopy_notify_fn fn,
                       void *opaque)
{
  s->fn = fn;
  s->fn_opaque = opaque;
  if (!fn)
    return;
  for (size_t i = 0; i < s->npending; i++) {
    fn (s->pending[i], opaque);
    free (s->pending[i]);
  }
  s->npending = 0;
  if (s->dropped) {
    char m[128];
    snprintf (m, sizeof m, "%zu more notices made before "
              "shadowcopy_set_notify were dropped", s->dropped);
    s->dropped = 0;
    fn (m, opaque);
  }
}

/* ---- taking it -------------------------------------------------------- */

/* Room for the SHADOWCOPY_* lists of one name on every volume, so
 * writers know both before the snapshot exists. */
static int
make_lists (struct sc_create *cr)
{
  size_t lv = 0;

  free (cr->volumes);
  free (cr->snapshots);
  for (size_t k = 0; k < cr->nvols; k++)
    lv += strlen (cr->vols[k].socket) + 1;
  cr->volumes = calloc (1, lv + 1);
  cr->snapshots = calloc (1, lv + cr->nvols * (SC_NAME_MAX + 2) + 1);
  if (!cr->volumes || !cr->snapshots)
    return sc_api_fail (ENOMEM, "snapshot set: %s", strerror (ENOMEM));
  return 0;
}

int
shadowcopy_set_create (struct shadowcopy_set *s)
{
  struct sc_create *cr = &s->cr;
  int r;

  if (s->taken)
    return sc_api_fail (EALREADY, "snapshot set %s: taken already",
                        cr->set_id);
  if (cr->nvols == 0)
    return sc_api_fail (EINVAL, "snapshot set: no volume (add one with "
                        "shadowcopy_set_add_volume)");
  if ((r = make_lists (cr)) < 0)
    return r;
  sc_create_identify (cr);
  r = sc_create_attempts (cr);
  if (r < 0)
    return sc_api_fail (-r, "%s", cr->error);
  s->taken = true;
  return 0;
}

const char *
shadowcopy_set_id (const struct shadowcopy_set *s)
{
  return s->cr.set_id;
}

const char *
shadowcopy_set_snapshot_name (const struct shadowcopy_set *s)
{
  return s->taken ? s->cr.name : "";
}

size_t
shadowcopy_set_volumes (const struct shadowcopy_set *s)
{
  return s->cr.nvols;
}

static void
snapshot_out (const struct sc_client_snapshot *c,
              struct shadowcopy_snapshot *o)
{
  memset (o, 0, sizeof *o);
  o->id = c->id;
  snprintf (o->name, sizeof o->name, "%s", c->name);
  snprintf (o->type, sizeof o->type, "%s", c->type[0] ? c->type
            : "snapshot");
  snprintf (o->base, sizeof o->base, "%s", c->base);
  snprintf (o->uuid, sizeof o->uuid, "%s", c->uuid);
  snprintf (o->set, sizeof o->set, "%s", c->set);
  snprintf (o->created, sizeof o->created, "%s", c->created);
  o->epoch = c->epoch;
  o->valid = c->valid;
  snprintf (o->reason, sizeof o->reason, "%s", c->reason);
  o->auto_release = c->auto_release;
  o->used_bytes = c->used_bytes;
  o->discarded_bytes = c->discarded_bytes;
  o->meta_bytes = c->meta_bytes;
}

int
shadowcopy_set_snapshot (const struct shadowcopy_set *s, size_t i,
                         const char **where, struct shadowcopy_snapshot *out)
{
  if (i >= s->cr.nvols)
    return sc_api_fail (EINVAL, "snapshot set %s: no volume %zu (it has "
                        "%zu)", s->cr.set_id, i, s->cr.nvols);
  if (where)
    *where = s->cr.vols[i].socket;
  if (!s->taken)
    return sc_api_fail (ENOENT, "snapshot set %s: not taken",
                        s->cr.set_id);
  if (out)
    snapshot_out (&s->cr.vols[i].snap, out);
  return 0;
}

struct sc_client *
sc_set_client (struct shadowcopy_set *s, size_t i)
{
  return i < s->cr.nvols ? s->cr.vols[i].c : NULL;
}

struct shadowcopy *
shadowcopy_set_handle (struct shadowcopy_set *s, size_t i)
{
  struct sc_client *c = s ? sc_set_client (s, i) : NULL;

  if (!c) {
    sc_api_fail (ENOTCONN, "snapshot set: volume %zu has no connection "
                 "(the set is not taken, or i is out of range)", i);
    return NULL;
  }
  s->handles[i].c = c;
  s->handles[i].set_owned = true;
  return &s->handles[i];
}

/* ---- after ------------------------------------------------------------ */

int
shadowcopy_set_backup_complete (struct shadowcopy_set *s, bool success)
{
  char msg[4096];
  int r;

  if (!s->taken)
    return sc_api_fail (ENOENT, "snapshot set %s: not taken",
                        s->cr.set_id);
  s->cr.backup_result = success ? "success" : "failure";
  r = sc_create_writers_phase (&s->cr, "backup-complete", true, msg,
                               sizeof msg);
  return r < 0 ? sc_api_fail (-r, "%s", msg) : 0;
}

void
shadowcopy_set_writer_results (const struct shadowcopy_set *s,
                               shadowcopy_writer_result_fn fn, void *opaque)
{
  for (size_t i = 0; i < s->cr.nwriters; i++) {
    const struct sc_writer *w = &s->cr.writers[i];
    for (size_t k = 0; k < w->nhistory; k++) {
      const struct sc_writer_result *h = &w->history[k];
      struct shadowcopy_writer_result r = {
        .writer = w->name, .phase = h->phase, .result = h->result,
        .output = h->output, .when = h->when, .frozen_ns = h->frozen_ns,
      };
      fn (&r, opaque);
    }
  }
}

int
shadowcopy_set_delete (struct shadowcopy_set *s)
{
  char err[4096], first[4096] = "";
  int r, ret = 0;

  if (!s->taken)
    return sc_api_fail (ENOENT, "snapshot set %s: not taken",
                        s->cr.set_id);
  for (size_t i = 0; i < s->cr.nvols; i++) {
    struct sc_create_volume *v = &s->cr.vols[i];
    if (!v->committed)
      continue;
    /* Only while it is still the set's snapshot: a checkpoint kept from
     * it (shadowcopy_set_handle, SHADOWCOPY_DELETE_KEEP_CHECKPOINT) has
     * its name and UUID but is the requester's to keep.  Over the set's
     * own connection, or a new one when that is closed. */
    r = sc_create_delete_member (v->socket, v->c, v->snap.name,
                                 s->cr.set_id, v->snap.uuid, err,
                                 sizeof err);
    if (r >= 0)
      v->committed = false;
    else if (!ret) {
      ret = r;
      snprintf (first, sizeof first, "%s", err);
    }
    else
      s->cr.notify (err, s->cr.notify_opaque);
  }
  return ret < 0 ? sc_api_fail (-ret, "%s", first) : 0;
}

void
shadowcopy_set_free (struct shadowcopy_set *s)
{
  if (!s)
    return;
  sc_create_close (&s->cr);
  sc_writers_free (s->cr.writers, s->cr.nwriters);
  free (s->cr.volumes);
  free (s->cr.snapshots);
  for (size_t i = 0; i < s->cr.nvols; i++)
    free (s->where[i]);
  for (size_t i = 0; i < s->npending; i++)
    free (s->pending[i]);
  free (s);
}
