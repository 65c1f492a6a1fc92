/* shadowcopy: an NBD connection to a shadowcopy server that is ended
 * politely even when the CLI is killed (kill -9, the OOM killer).
 *
 * nbdkit 1.32.5 (Debian 12) aborts, taking the live volume down with
 * it, when a client vanishes while several of its requests are being
 * served (nbd-guard.c's notes say how, and how this works around it).
 * A guarded connection has a guardian process beside the CLI that holds
 * a copy of the socket and nothing else; if the CLI dies without having
 * closed the connection, the guardian sends NBD_CMD_DISC and reads
 * every reply until the server closes (at most
 * SC_NBD_GUARD_DRAIN_SECONDS), so that no reply is ever sent into a
 * dead socket.
 *
 * Only for connections whose requests carry no payload (READ,
 * BLOCK_STATUS, FLUSH...; no WRITE): the guardian's NBD_CMD_DISC must
 * start at a request boundary, which libnbd's 28-byte requests on a
 * Unix socket always leave (nbd-guard.c), but a WRITE's payload may be
 * cut anywhere.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_NBD_GUARD_H
#define SHADOWCOPY_TOOLS_NBD_GUARD_H

#include <stddef.h>

#include <libnbd.h>

#include "tools/nbd-target.h"

/* How long a guardian whose CLI died reads replies before it gives up
 * and closes the socket anyway (a server stuck in a request). */
#define SC_NBD_GUARD_DRAIN_SECONDS 60

/* Over TLS or TCP, how long the server must have been silent before a
 * guardian whose CLI died closes the connection (nbd-guard.c). */
#define SC_NBD_GUARD_QUIET_MS 3000

/* The name the guardian shows in ps (its comm). */
#define SC_NBD_GUARD_NAME "sc-nbd-guard"

/* Connect h (export name, meta contexts... already set) to the NBD
 * server on the Unix socket at path, then start the connection's
 * guardian, which the handle keeps in its private data
 * (nbd_set_private_data: the caller must not use it).  A guarded handle
 * must be ended with sc_nbd_guard_close, never with nbd_close alone.
 * On failure there is no guardian, and h must be nbd_close'd (it may be
 * connected: the guardian could not be started). */
int sc_nbd_guard_connect_unix (struct nbd_handle *h, const char *path,
                               char *err, size_t errlen);

/* Connect h (meta contexts... already set) to export name of target t,
 * guarded: on its Unix socket as above, or by its URI (libnbd makes
 * the connection, TLS included, and the guardian holds a copy of its
 * socket).  The same rules as sc_nbd_guard_connect_unix. */
int sc_nbd_guard_connect (struct nbd_handle *h,
                          const struct sc_nbd_target *t, const char *name,
                          char *err, size_t errlen);

/* End a connection cleanly: nbd_shutdown (the replies of any request
 * still in flight are read), nbd_close, then its guardian, if it has
 * one, is told, exits at once and is reaped.  NULL: nothing. */
void sc_nbd_guard_close (struct nbd_handle *h);

#endif
