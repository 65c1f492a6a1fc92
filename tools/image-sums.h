/* shadowcopy: the CRC32C of each fixed block of an image file.
 *
 * A backup's manifest (manifest.h) keeps one CRC32C per block_size block
 * of the image (the last block may be shorter), so that damage is found
 * and located to a block.  backup computes them from the image as
 * written; verify compares them.  Holes are read as zeros without being
 * read (SEEK_DATA), so a sparse image is summed at the speed of its data.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_IMAGE_SUMS_H
#define SHADOWCOPY_TOOLS_IMAGE_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CRC32C of block i of the image in fd (size bytes), into *crc.
 * path is for messages. */
int sc_image_block_crc (int fd, const char *path, uint64_t size,
                        uint64_t block_size, uint64_t i, uint32_t *crc,
                        char *err, size_t errlen);

/* The first block in [0, nblocks) whose CRC32C differs from want[], into
 * *bad (with the CRC found in *found); *bad = nblocks when all match. */
int sc_image_first_bad_block (int fd, const char *path, uint64_t size,
                              uint64_t block_size, const uint32_t *want,
                              uint64_t nblocks, uint64_t *bad,
                              uint32_t *found, char *err, size_t errlen);

#endif
