/* shadowcopy: the control verbs of the scrub: SCRUB, SCRUB-STATUS (see
 * control-verbs.h and control-protocol.h).
 *
 *   SCRUB [rate=BYTES]   start verifying every copy in the background
 *                        (rate in bytes per second, 0: unbounded; default
 *                        SC_SCRUB_RATE_DEFAULT) -> * scrub ...; EALREADY
 *                        while one runs
 *   SCRUB-STATUS         -> * scrub state=never|running|finished|stopped
 *                        rate= started= finished= copies-checked=
 *                        copies-total= bytes-checked= bytes-total=
 *                        damaged= freed= read-errors=
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/control-verbs.h"

static const char *
scrub_state (const struct sc_scrub_status *st)
{
  if (!st->ever)
    return "never";
  if (st->running)
    return "running";
  return st->stopped || st->error ? "stopped" : "finished";
}

static int
reply_status (int fd, const struct sc_scrub_status *st)
{
  char text[11][32], started[32] = "", finished[32] = "";
  struct sc_ctl_field f[SC_CTL_FIELDS_MAX];
  size_t n = 0;
  const uint64_t nums[] = { st->rate, st->copies_checked, st->copies_total,
                            st->bytes_checked, st->bytes_total, st->damaged,
                            st->freed, st->read_errors };
  const char *keys[] = { "rate", "copies-checked", "copies-total",
                         "bytes-checked", "bytes-total", "damaged", "freed",
                         "read-errors" };

  f[n++] = (struct sc_ctl_field) { "state", scrub_state (st) };
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    snprintf (text[i], sizeof text[i], "%" PRIu64, nums[i]);
    f[n++] = (struct sc_ctl_field) { keys[i], text[i] };
  }
  if (st->started_ns) {
    sc_ctl_format_time (st->started_ns, started, sizeof started);
    f[n++] = (struct sc_ctl_field) { "started", started };
  }
  if (st->finished_ns) {
    sc_ctl_format_time (st->finished_ns, finished, sizeof finished);
    f[n++] = (struct sc_ctl_field) { "finished", finished };
  }
  if (st->error)
    f[n++] = (struct sc_ctl_field) { "error", strerror (st->error) };
  int r = sc_ctl_write_data (fd, "scrub", f, n);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

int
sc_verb_scrub (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  uint64_t rate = SC_SCRUB_RATE_DEFAULT;
  struct sc_scrub_status st;

  for (size_t i = 0; i < req->nargs; i++) {
    const char *a = req->args[i];
    if (strncmp (a, "rate=", 5) != 0 || sc_ctl_parse_u64 (a + 5, &rate) < 0)
      return sc_ctl_write_err (fd, EINVAL, "usage: SCRUB [rate=BYTES] "
                               "(bytes per second, 0: unbounded)");
  }
  int r = sc_volume_scrub_start (ss->v, rate, &st);
  if (r == -EALREADY)
    return sc_ctl_write_err (fd, EALREADY, "a scrub is already running "
                             "(%" PRIu64 " of %" PRIu64 " copies checked, %"
                             PRIu64 " damaged): see scrub --status",
                             st.copies_checked, st.copies_total, st.damaged);
  if (r < 0)
    return sc_ctl_write_err (fd, -r, "cannot start a scrub: %s",
                             strerror (-r));
  return reply_status (fd, &st);
}

int
sc_verb_scrub_status (struct session *ss, const struct sc_ctl_request *req,
                      int fd)
{
  struct sc_scrub_status st;

  sc_volume_scrub_status (ss->v, &st);
  return reply_status (fd, &st);
}
