/* shadowcopy: where a restore writes: a file, a block device or an NBD
 * export.
 *
 * DEST is an NBD URI when it starts with a scheme of libnbd's
 * (nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock://,
 * nbds+vsock://; a file of such a name is written as ./NAME), and is
 * then opened with nbd_connect_uri (a shadowcopy server's live export,
 * `nbdkit memory`, any server).  Else it is a path: a file that does not
 * exist is created (mode 0600: it will hold a disk's data) with the
 * volume's size, sparse, and is known to read as zeros; an existing
 * regular file or a block device (opened O_EXCL: the kernel refuses one
 * that is mounted or otherwise held) is written in place.
 *
 * A DEST smaller than the volume is refused at open, naming both sizes;
 * a larger one is taken, and the bytes past the volume are left as they
 * were (the caller says so).
 *
 * zero writes zeros over a range, cheaply where DEST can (a hole punched
 * in a file, BLKZEROOUT on a block device, NBD_CMD_WRITE_ZEROES), so an
 * existing DEST reads as zeros where the image does.  flush makes it all
 * durable (fsync, and the directory of a file it created; NBD flush).
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_RESTORE_DEST_H
#define SHADOWCOPY_TOOLS_RESTORE_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sc_restore_dest;

/* Whether dest names an NBD URI (else a path). */
bool sc_restore_dest_is_uri (const char *dest);

/* Open dest for a volume of `size` bytes. */
int sc_restore_dest_open (const char *dest, uint64_t size,
                          struct sc_restore_dest **out, char *err,
                          size_t errlen);

/* "file", "new file", "block device" or "NBD export". */
const char *sc_restore_dest_kind (const struct sc_restore_dest *d);
/* Its size (at least the volume's). */
uint64_t sc_restore_dest_size (const struct sc_restore_dest *d);
/* Whether it reads as zeros where nothing was written (a file created
 * by open): zeros need not be written. */
bool sc_restore_dest_is_zero (const struct sc_restore_dest *d);

int sc_restore_dest_write (struct sc_restore_dest *d, const void *buf,
                           size_t len, uint64_t off, char *err,
                           size_t errlen);
int sc_restore_dest_zero (struct sc_restore_dest *d, uint64_t off,
                          uint64_t len, char *err, size_t errlen);
int sc_restore_dest_flush (struct sc_restore_dest *d, char *err,
                           size_t errlen);

/* Close (after flush, or after a failure); NULL is a no-op. */
void sc_restore_dest_close (struct sc_restore_dest *d);

#endif
