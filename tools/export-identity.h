/* shadowcopy: is the NBD export the CLI opened the snapshot its control
 * socket named?
 *
 * The CLI learns a snapshot's identity (its UUID) from the control
 * socket and reads its bytes from an NBD server named apart (--nbd-uri,
 * --nbd-socket): nothing but a check ties the two.  The plugin puts the
 * snapshot's UUID in each export's description ("uuid=..."); a server
 * whose export has another UUID, or none (not a shadowcopy server, or an
 * older one), is not the volume the control socket speaks for.
 *
 * The handle must have been connected with nbd_set_full_info (h, true),
 * or the description is never asked for.
 */
#ifndef SHADOWCOPY_TOOLS_EXPORT_IDENTITY_H
#define SHADOWCOPY_TOOLS_EXPORT_IDENTITY_H

#include <stddef.h>

#include <libnbd.h>

/* The UUID a description carries (its "uuid=" word: 36 characters)
 * into out (37 bytes).  0, or -ENOENT when it has none. */
int sc_export_description_uuid (const char *desc, char out[37]);

/* Export name on server (for the message) opened as h must be the
 * snapshot of UUID uuid.  0, or -EXDEV with one line in err naming both
 * UUIDs and the server. */
int sc_export_identity_check (struct nbd_handle *h, const char *name,
                              const char *server, const char *uuid,
                              char *err, size_t errlen);

#endif
