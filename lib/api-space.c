/* libshadowcopy: the volume and its diff area (shadowcopy_info(3)): INFO,
 * STATS, RESIZE, SCRUB, SCRUB-STATUS. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/control-protocol.h"
#include "lib/api-internal.h"

void
sc_api_volume (const struct sc_client_volume *in,
               struct shadowcopy_volume *out)
{
  memset (out, 0, sizeof *out);
  out->volume_size = in->volume_size;
  out->chunk_size = in->chunk_size;
  out->diff_used_bytes = in->diff_used_bytes;
  out->diff_file_bytes = in->diff_file_bytes;
  out->diff_max = in->diff_max;
  out->snapshots = in->snapshots;
  out->checkpoints = in->checkpoints;
  out->copies = in->copies;
  out->epoch = in->epoch;
  out->max_snapshots = in->max_snapshots;
  out->max_checkpoints = in->max_checkpoints;
  out->invalid = in->invalid;
  out->damaged = in->damaged;
  out->dropped = in->dropped;
  out->full_failures = in->full_failures;
  out->discarded_bytes = in->discarded_bytes;
  SC_API_COPY (out->on_full, in->on_full);
  SC_API_COPY (out->origin, in->origin);
  SC_API_COPY (out->last_drop, in->last_drop);
  SC_API_COPY (out->last_drop_reason, in->last_drop_reason);
  out->have_holds = in->have_holds;
  out->holds = in->holds;
  out->hold_last_ns = in->hold_last_ns;
  out->hold_p50_ns = in->hold_p50_ns;
  out->hold_p99_ns = in->hold_p99_ns;
  out->hold_max_ns = in->hold_max_ns;
  out->failed = in->failed;
  SC_API_COPY (out->health_message, in->health_message);
  out->have_health = in->have_health;
  SC_API_COPY (out->failed_since, in->failed_since);
  SC_API_COPY (out->failed_errno, in->failed_errno);
  SC_API_COPY (out->failed_write, in->failed_write);
  out->invalidated = in->invalidated;
  out->retries = in->retries;
  out->retry_every_ms = in->retry_every_ms;
  out->recoveries = in->recoveries;
  out->recorded = in->recorded;
  SC_API_COPY (out->last_retry, in->last_retry);
  SC_API_COPY (out->last_retry_errno, in->last_retry_errno);
  SC_API_COPY (out->last_retry_write, in->last_retry_write);
  SC_API_COPY (out->recovered, in->recovered);
  out->have_revert = in->have_revert;
  sc_api_revert (&in->revert, &out->revert);
  SC_API_COPY (out->listen, in->listen);
}

int
shadowcopy_info (struct shadowcopy *h, struct shadowcopy_volume *out)
{
  char err[SC_API_ERRLEN];
  struct sc_client_volume v;
  int r;

  SC_API_CHECK (h);
  SC_API_NEED (out);
  r = sc_client_info (h->c, &v, err, sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  sc_api_volume (&v, out);
  return 0;
}

/* ---- STATS ----------------------------------------------------------- */

struct stats {
  shadowcopy_field_fn fn;
  void *opaque;
  int stopped;
  bool seen;
};

static int
on_stats (const struct sc_ctl_line *line, void *opaque)
{
  struct stats *x = opaque;

  if (strcmp (line->kind, "stats") != 0)
    return 0;
  x->seen = true;
  for (size_t i = 0; i < line->nfields && !x->stopped; i++) {
    int r = x->fn (line->fields[i].key, line->fields[i].value, x->opaque);
    if (r > 0)                  /* not 0, not an errno: a caller's slip */
      x->stopped = -EINVAL;
    else if (r < 0)
      x->stopped = r;
  }
  return 0;
}

int
shadowcopy_stats (struct shadowcopy *h, shadowcopy_field_fn fn,
                  void *opaque)
{
  char err[SC_API_ERRLEN];
  struct stats x = { fn, opaque, 0, false };
  int r;

  SC_API_CHECK (h);
  if (!fn)
    return sc_api_fail (EINVAL, "shadowcopy_stats: no callback given");
  r = sc_client_request (h->c, "STATS", NULL, 0, on_stats, &x, err,
                         sizeof err);
  if (r == -ENOTCONN)
    return sc_api_fail (ENOTCONN, "stats needs a running server (the "
                        "counters are the engine's)");
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (!x.seen)
    return sc_api_fail (EPROTO, "bad reply from the server: no stats line");
  if (x.stopped)
    return sc_api_fail (-x.stopped, "stats: stopped by the caller");
  return 0;
}

/* ---- RESIZE ---------------------------------------------------------- */

static int
on_resized (const struct sc_ctl_line *line, void *opaque)
{
  const char *d;

  if (strcmp (line->kind, "resized") != 0)
    return 0;
  d = sc_ctl_field (line, "dropped");
  return d ? sc_ctl_parse_u64 (d, opaque) : 0;
}

int
shadowcopy_resize (struct shadowcopy *h, uint64_t max_bytes, bool force,
                   uint64_t *dropped)
{
  char err[SC_API_ERRLEN], arg_max[40];
  const char *args[2] = { arg_max, "force=1" };
  uint64_t n = 0;
  int r;

  SC_API_CHECK (h);
  if (max_bytes == 0)
    return sc_api_fail (EINVAL, "resize: a limit of 0 bytes (UINT64_MAX: "
                        "unbounded)");
  if (max_bytes == UINT64_MAX)
    snprintf (arg_max, sizeof arg_max, "max=unbounded");
  else
    snprintf (arg_max, sizeof arg_max, "max=%" PRIu64, max_bytes);
  r = sc_client_request (h->c, "RESIZE", args, force ? 2 : 1, on_resized,
                         &n, err, sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (dropped)
    *dropped = n;
  return 0;
}

/* ---- SCRUB ----------------------------------------------------------- */

struct scrub {
  struct shadowcopy_scrub *out;
  bool seen, bad;
};

static int
on_scrub (const struct sc_ctl_line *line, void *opaque)
{
  struct scrub *x = opaque;
  struct shadowcopy_scrub *o = x->out;
  struct { const char *key; uint64_t *v; } nums[] = {
    { "rate", &o->rate }, { "copies-checked", &o->copies_checked },
    { "copies-total", &o->copies_total },
    { "bytes-checked", &o->bytes_checked },
    { "bytes-total", &o->bytes_total }, { "damaged", &o->damaged },
    { "freed", &o->freed }, { "read-errors", &o->read_errors },
  };
  const char *v;

  if (strcmp (line->kind, "scrub") != 0)
    return 0;
  x->seen = true;
  memset (o, 0, sizeof *o);
  if (!(v = sc_ctl_field (line, "state")))
    return -EPROTO;
  SC_API_COPY (o->state, v);
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
    if ((v = sc_ctl_field (line, nums[i].key)) &&
        sc_ctl_parse_u64 (v, nums[i].v) < 0)
      return -EPROTO;
  if ((v = sc_ctl_field (line, "started")))
    SC_API_COPY (o->started, v);
  if ((v = sc_ctl_field (line, "finished")))
    SC_API_COPY (o->finished, v);
  if ((v = sc_ctl_field (line, "error")))
    SC_API_COPY (o->error, v);
  return 0;
}

static int
scrub_request (struct shadowcopy *h, const char *verb,
               const char *const *args, size_t nargs,
               struct shadowcopy_scrub *out)
{
  char err[SC_API_ERRLEN];
  struct shadowcopy_scrub scratch;
  struct scrub x = { out ? out : &scratch, false, false };
  int r;

  SC_API_CHECK (h);
  r = sc_client_request (h->c, verb, args, nargs, on_scrub, &x, err,
                         sizeof err);
  if (r == -ENOTCONN)
    return sc_api_fail (ENOTCONN, "scrub needs a running server (offline, "
                        "`shadowcopy check --data DIFFAREA` verifies every "
                        "copy)");
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  if (!x.seen)
    return sc_api_fail (EPROTO, "bad reply from the server: no scrub line");
  return 0;
}

int
shadowcopy_scrub (struct shadowcopy *h, uint64_t rate,
                  struct shadowcopy_scrub *out)
{
  char arg[40];
  const char *a = arg;

  snprintf (arg, sizeof arg, "rate=%" PRIu64,
            rate == SHADOWCOPY_RATE_UNBOUNDED ? 0 : rate);
  return scrub_request (h, "SCRUB", &a, rate ? 1 : 0, out);
}

int
shadowcopy_scrub_status (struct shadowcopy *h, struct shadowcopy_scrub *out)
{
  return scrub_request (h, "SCRUB-STATUS", NULL, 0, out);
}
