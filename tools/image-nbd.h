/* shadowcopy: a backup image opened as an NBD export, through QEMU's own
 * qemu-nbd.
 *
 * qcow2 images are read and written only by QEMU's code: qemu-nbd is
 * started on the image (socket activation: libnbd makes the socket and
 * starts qemu-nbd with it, so no path is left behind), and the image is
 * read or written over NBD with libnbd.  qemu-nbd runs in a session of
 * its own (setsid), so that a Ctrl-C on the terminal reaches only the
 * CLI, which then stops as it means to.  qemu-nbd exits when the handle
 * is closed.  A raw image can be opened the same way, so that a reader
 * of images (verify, restore) has one path for every format.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_IMAGE_NBD_H
#define SHADOWCOPY_TOOLS_IMAGE_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

#include "tools/backup-target.h"

/* Open the image at path (format f; a qcow2 image with its backing
 * chain) through qemu-nbd, read-only unless writable.  A relative path
 * is given to qemu-nbd as "./PATH", so that a name starting with '-' or
 * holding a ':' is a file name, not an option or a protocol.  *size gets the
 * image's virtual size (NULL: not wanted). */
int sc_image_nbd_open (const char *path, enum sc_image_format f,
                       bool writable, struct nbd_handle **out,
                       uint64_t *size, char *err, size_t errlen);

/* The CRC32C of block i (block_size bytes; the last may be shorter) of
 * the export (size bytes) behind nbd.  name is for messages. */
int sc_image_nbd_block_crc (struct nbd_handle *nbd, const char *name,
                            uint64_t size, uint64_t block_size, uint64_t i,
                            uint32_t *crc, char *err, size_t errlen);

#endif
