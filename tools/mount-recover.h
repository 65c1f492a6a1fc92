/* shadowcopy: the temporary clone of `mount --recover` (mount-recover.c). */
#ifndef SHADOWCOPY_TOOLS_MOUNT_RECOVER_H
#define SHADOWCOPY_TOOLS_MOUNT_RECOVER_H

#include <stddef.h>

/* Make a writable clone of snapshot `name` through the control socket,
 * named `name`.recover-PID (cut to fit), for a filesystem's journal to
 * be replayed on.  Its name goes to clone[len].  0, or -1 (said). */
int sc_mount_recover_clone (const char *socket, const char *name,
                            char *clone, size_t len);

/* create --auto-recover: clone `name` (a snapshot just made) as
 * `name`.recovered and replay its filesystem's journal there, by this
 * program's own `mount` of the clone (read-write) and `umount`, through
 * the server's NBD socket `nbd`.  The clone is kept: it is the
 * recovered image.  The clone's name goes to clone[len].  0, or -1
 * (said; a clone that could not be recovered is deleted). */
int sc_recover_kept_clone (const char *socket, const char *nbd,
                           const char *name, char *clone, size_t len);

/* Delete that clone (its writes go with it).  0, or -1 (said); a clone
 * that is already gone is not an error. */
int sc_mount_recover_delete (const char *socket, const char *clone);

#endif
