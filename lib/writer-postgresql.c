/* shadowcopy: the in-box writer postgresql:CONNINFO (writer-kinds.h):
 * in the prepare phase, before any writer freezes, `psql` runs CHECKPOINT on the cluster CONNINFO
 * names (a libpq connection string or URI), so that a database started
 * on the snapshot has little WAL to replay.  It holds no lock: the
 * snapshot is crash-consistent, which PostgreSQL recovers from; the
 * CHECKPOINT only shortens that recovery.  Its result and duration are
 * the phase's output.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/guardian.h"
#include "lib/writer-kinds.h"

static int
pg_parse (const char *arg, void **state, char *err, size_t len)
{
  if (!arg[0] || arg[0] == '-') {
    snprintf (err, len, "%s", arg[0] ? "a connection string cannot start "
              "with '-'" : "no connection string: postgresql:CONNINFO");
    return -EINVAL;
  }
  return (*state = strdup (arg)) ? 0 : -ENOMEM;
}

static int
pg_check (void *state, char *why, size_t len)
{
  (void) state;
  return sc_writer_kind_program ("psql", why, len);
}

static int
pg_checkpoint (void *state, uint64_t deadline, char *why, size_t len)
{
  char *argv[] = { (char *) "psql", (char *) "-X", (char *) "-q",
                   (char *) "-w", (char *) "-v", (char *) "ON_ERROR_STOP=1",
                   (char *) "-d", state, (char *) "-c",
                   (char *) "CHECKPOINT", NULL };
  char out[SC_GUARDIAN_WHY_MAX - 64];
  uint64_t t0 = sc_guardian_now_ms ();
  int status, r = sc_guardian_run (argv, deadline, &status, out, sizeof out);
  uint64_t ms = sc_guardian_now_ms () - t0;

  if (r == -ETIMEDOUT)
    snprintf (why, len, "CHECKPOINT timed out after %" PRIu64 " ms%s%s", ms,
              out[0] ? ": " : "", out);
  else if (r < 0)
    snprintf (why, len, "CHECKPOINT failed: %s",
              out[0] ? out : strerror (-r));
  else
    snprintf (why, len, "CHECKPOINT done in %" PRIu64 " ms", ms);
  return r == -ECHILD ? -EIO : r;
}

const struct sc_writer_kind_impl sc_writer_postgresql = {
  .prefix = "postgresql",
  .parse = pg_parse,
  .free = free,
  .check = pg_check,
  .once = pg_checkpoint,
};
