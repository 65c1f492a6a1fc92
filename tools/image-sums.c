/* shadowcopy: the CRC32C of each fixed block of an image file
 * (image-sums.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "tools/image-sums.h"

int
sc_image_block_crc (int fd, const char *path, uint64_t size,
                    uint64_t block_size, uint64_t i, uint32_t *crc,
                    char *err, size_t errlen)
{
  char *buf;
  int r = 0;
  uint64_t start = i * block_size, end, pos;
  uint32_t c = 0;

  if (start >= size) {
    snprintf (err, errlen, "%s: block %" PRIu64 " is past the end", path, i);
    return -EINVAL;
  }
  end = size - start < block_size ? size : start + block_size;
  if (!(buf = malloc (65536))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  pos = start;
  while (pos < end) {
    /* Skip a hole: it reads as zeros. */
    off_t data = lseek (fd, (off_t) pos, SEEK_DATA);
    uint64_t d = data < 0 ? (errno == ENXIO ? end : pos) : (uint64_t) data;
    if (d > end)
      d = end;
    if (d > pos) {
      c = crc32c_zeros (c, d - pos);
      pos = d;
      continue;
    }
    size_t want = end - pos < 65536 ? (size_t) (end - pos) : 65536;
    ssize_t k = pread (fd, buf, want, (off_t) pos);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      int e = errno;
      snprintf (err, errlen, "cannot read %s at %" PRIu64 ": %s", path, pos,
                strerror (e));
      r = -e;
      break;
    }
    if (k == 0) {
      snprintf (err, errlen, "%s is shorter than its volume: it ends at %"
                PRIu64 ", before %" PRIu64, path, pos, size);
      r = -EIO;
      break;
    }
    c = crc32c (c, buf, (size_t) k);
    pos += (uint64_t) k;
  }
  free (buf);
  if (r == 0)
    *crc = c;
  return r;
}

int
sc_image_first_bad_block (int fd, const char *path, uint64_t size,
                          uint64_t block_size, const uint32_t *want,
                          uint64_t nblocks, uint64_t *bad, uint32_t *found,
                          char *err, size_t errlen)
{
  for (uint64_t i = 0; i < nblocks; i++) {
    uint32_t c;
    int r = sc_image_block_crc (fd, path, size, block_size, i, &c, err,
                                errlen);
    if (r < 0)
      return r;
    if (c != want[i]) {
      *bad = i;
      *found = c;
      return 0;
    }
  }
  *bad = nblocks;
  return 0;
}
