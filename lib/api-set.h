/* libshadowcopy: what the set's internals offer the rest of the library
 * (and, until the CLI runs on shadowcopy handles, the CLI).
 */
#ifndef SHADOWCOPY_LIB_API_SET_H
#define SHADOWCOPY_LIB_API_SET_H

#include <stddef.h>

#include "lib/shadowcopy.h"

struct sc_client;

/* Volume i's connection, owned by the set (open once the set is taken,
 * until shadowcopy_set_free): the one that owns its auto-release
 * snapshot.  NULL when i is out of range or the connection is closed. */
struct sc_client *sc_set_client (struct shadowcopy_set *s, size_t i);

#endif
