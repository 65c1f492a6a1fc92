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

#endif
