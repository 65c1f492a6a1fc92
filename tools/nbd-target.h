/* shadowcopy: where the CLI reaches a server's NBD exports: the Unix
 * socket of `nbdkit -U` (--nbd-socket), or an NBD URI (--nbd-uri:
 * nbd://HOST[:PORT], nbds://..., nbd+unix:///?socket=..., nbds+unix://
 * with libnbd's query parameters, tls-psk-file=, tls-certificates=...).
 *
 * The URI names the server only: the export is the snapshot's name,
 * which the CLI puts in as the URI's path.  One helper for every verb
 * that reads an export (mount, backup, verify), so that a target found
 * another way (the server's own word over the control protocol) goes
 * through the same code.
 */
#ifndef SHADOWCOPY_TOOLS_NBD_TARGET_H
#define SHADOWCOPY_TOOLS_NBD_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include <libnbd.h>

struct sc_nbd_target {
  const char *socket;           /* a Unix socket path, or NULL */
  const char *uri;              /* an NBD URI of the server, or NULL */
};

/* Does s start with an NBD URI scheme (nbd, nbds, nbd+unix, nbds+unix,
 * then "://")? */
bool sc_nbd_uri_is (const char *s);

/* Is a target given (socket or URI)? */
static inline bool
sc_nbd_target_set (const struct sc_nbd_target *t)
{
  return (t->socket && *t->socket) || (t->uri && *t->uri);
}

/* Check a --nbd-uri: an NBD scheme, and no export name in it (no path
 * but "/").  0, or -1 with one line for the user in err. */
int sc_nbd_uri_check (const char *uri, char *err, size_t errlen);

/* The URI of export name on the target (malloc'd; NULL: out of memory):
 * nbd+unix:///NAME?socket=PATH for a socket, the URI with NAME as its
 * path otherwise. */
char *sc_nbd_target_export_uri (const struct sc_nbd_target *t,
                                const char *name);

/* The target as the user gave it, for messages. */
const char *sc_nbd_target_text (const struct sc_nbd_target *t);

/* Connect h (options such as meta contexts already set) to export name
 * of a target given by URI: its local files (tls-psk-file=...) allowed,
 * since the user named them.  0, or -1 with libnbd's error in err. */
int sc_nbd_target_connect_uri (struct nbd_handle *h,
                               const struct sc_nbd_target *t,
                               const char *name, char *err, size_t errlen);

/* A URI's local-file query parameters, tls-psk-file= and
 * tls-certificates=, taken out for programs whose libnbd use refuses
 * them in a URI (nbdfuse, nbdkit's nbd plugin take them as options):
 * *rest is the URI without them, *psk and *certs their values decoded
 * (NULL: absent); all malloc'd.  0, or -ENOMEM. */
int sc_nbd_uri_split_files (const char *uri, char **rest, char **psk,
                            char **certs);

#endif
