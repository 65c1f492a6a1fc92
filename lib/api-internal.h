/* libshadowcopy: what the public calls (lib/api-*.c) share.
 *
 * Every public call that fails goes through sc_api_fail, which keeps the
 * message for shadowcopy_get_error() in a thread-local buffer and returns
 * the negative errno, so that `return sc_api_fail (-r, "...")` ends a
 * call.
 */
#ifndef SHADOWCOPY_LIB_API_INTERNAL_H
#define SHADOWCOPY_LIB_API_INTERNAL_H

#include "lib/shadowcopy.h"

/* Record `err` (positive errno) and the message; returns -err. */
int sc_api_fail (int err, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* A call that succeeded leaves the last error as it was (libnbd does the
 * same); this clears it, for the calls whose callers test "" first. */
void sc_api_clear_error (void);

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/client.h"

/* A handle: the internal client of one volume.  set_owned: a handle
 * shadowcopy_set_handle gave, inside the set, on the set's own
 * connection; shadowcopy_close refuses it (the set closes it). */
struct shadowcopy {
  struct sc_client *c;
  bool set_owned;
};

/* The message buffers the internal client writes its one line into. */
#define SC_API_ERRLEN 2048

/* Which handle a call was given: -EINVAL (said) for NULL. */
#define SC_API_CHECK(h) \
  do { if (!(h)) return sc_api_fail (EINVAL, "%s: no handle", __func__); } \
  while (0)

/* A pointer the caller must give: -EINVAL (said) for NULL. */
#define SC_API_NEED(p) \
  do { if (!(p)) return sc_api_fail (EINVAL, "%s: %s is NULL", __func__, \
                                     #p); } while (0)

/* Internal rows to public structs (api-snapshots.c, api-revert.c,
 * api-space.c). */
void sc_api_snapshot (const struct sc_client_snapshot *in,
                      struct shadowcopy_snapshot *out);
void sc_api_revert (const struct sc_client_revert *in,
                    struct shadowcopy_revert *out);
void sc_api_volume (const struct sc_client_volume *in,
                    struct shadowcopy_volume *out);

/* One request whose reply carries one "snapshot" line (CREATE, COMMIT,
 * CHECKPOINT, CLONE): out (may be NULL) gets it.  api-create.c. */
int sc_api_request_snapshot (struct shadowcopy *h, const char *verb,
                             const char *const *args, size_t nargs,
                             struct shadowcopy_snapshot *out);

/* Copy s into a fixed buffer, cut at its size. */
#define SC_API_COPY(buf, s) snprintf ((buf), sizeof (buf), "%s", (s))

#endif
