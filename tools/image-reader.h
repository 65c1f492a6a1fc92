/* shadowcopy: a backup image read over NBD block by block, in order,
 * each block checked against its manifest's CRC32C before it is handed
 * on.
 *
 * The image is an export (image-nbd.h: qemu-nbd on a raw or qcow2
 * image, its backing chain included); its manifest gives the block size
 * and one CRC32C per block of the image's content.  Several blocks are
 * read at once (libnbd's asynchronous API), but each is handed to the
 * caller's function in order and only once its CRC matched: a restore
 * writes nothing the manifest does not vouch for, and the damage found
 * is the first one.  A block that block status reports as all zeros is
 * not read; its CRC is that of zeros, and the caller is told.
 *
 * Memory: a window of blocks in flight, about 16 MiB (one block at
 * least, so a manifest's block size bounds it).
 *
 * Errors: 0, -EBADMSG when a block's CRC differs (*bad says which, err
 * names its byte range), another negative errno (a read, or the
 * caller's function) with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_IMAGE_READER_H
#define SHADOWCOPY_TOOLS_IMAGE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

#include "tools/backup-copy.h"
#include "tools/manifest.h"

/* One verified block: [off, off + len) of the image.  buf holds it, or
 * is NULL when block status said it is all zeros (nothing was read).
 * 0, or a negative errno with err said: the reading stops. */
typedef int (*sc_image_block_fn) (void *opaque, uint64_t off,
                                  const char *buf, size_t len, char *err,
                                  size_t errlen);

struct sc_image_damage {
  uint64_t block;               /* its number */
  uint64_t offset, length;      /* its byte range */
  uint32_t found, want;         /* CRC32C read, and the manifest's */
};

/* Read every block of the export behind nbd (named `name` in messages)
 * against m, handing each to fn (NULL: only verify).  progress (NULL:
 * none) gets the bytes done so far. */
int sc_image_read_verified (struct nbd_handle *nbd, const char *name,
                            const struct sc_manifest *m,
                            sc_image_block_fn fn, void *opaque,
                            sc_backup_progress_fn progress,
                            void *progress_opaque,
                            struct sc_image_damage *bad, char *err,
                            size_t errlen);

#endif
