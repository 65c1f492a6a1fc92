/* shadowcopy: a backup's block sums taken from the copy as it goes
 * (backup-sums.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "tools/backup-sums.h"

static uint64_t
block_len (const struct sc_backup_sums *s, uint64_t i)
{
  uint64_t start = i * s->block_size;
  return s->size - start < s->block_size ? s->size - start : s->block_size;
}

int
sc_backup_sums_init (struct sc_backup_sums *s, uint64_t size,
                     uint64_t block_size, bool zeros)
{
  memset (s, 0, sizeof *s);
  if (block_size == 0)
    return -EINVAL;
  s->size = size;
  s->block_size = block_size;
  s->nblocks = size / block_size + (size % block_size != 0);
  s->zeros = zeros;
  s->crc = calloc (s->nblocks ? s->nblocks : 1, sizeof *s->crc);
  s->known = calloc (s->nblocks / 64 + 1, sizeof *s->known);
  if (!s->crc || !s->known) {
    sc_backup_sums_free (s);
    return -ENOMEM;
  }
  s->zero_crc = crc32c_zeros (0, block_size);
  s->zero_crc_last = s->nblocks
    ? crc32c_zeros (0, block_len (s, s->nblocks - 1)) : 0;
  return 0;
}

void
sc_backup_sums_piece (void *opaque, uint64_t off, uint64_t len,
                      const void *buf)
{
  struct sc_backup_sums *s = opaque;
  uint64_t end = off + len, bs = s->block_size;

  if (!buf && !s->zeros)
    return;
  if (end > s->size || end < off)
    return;                     /* not of this image: tells nothing */
  /* Every block that lies wholly inside [off, end). */
  for (uint64_t i = off / bs + (off % bs != 0); i < s->nblocks; i++) {
    uint64_t start = i * bs, n = block_len (s, i);
    if (start + n > end)
      break;
    if (buf)
      s->crc[i] = crc32c (0, (const char *) buf + (start - off), (size_t) n);
    else
      s->crc[i] = i + 1 == s->nblocks ? s->zero_crc_last : s->zero_crc;
    s->known[i / 64] |= 1ull << (i % 64);
  }
}

bool
sc_backup_sums_get (const struct sc_backup_sums *s, uint64_t i,
                    uint32_t *crc)
{
  if (!s || !s->known || i >= s->nblocks
      || !(s->known[i / 64] & (1ull << (i % 64))))
    return false;
  *crc = s->crc[i];
  return true;
}

uint64_t
sc_backup_sums_count (const struct sc_backup_sums *s)
{
  uint64_t n = 0;
  for (uint64_t i = 0; s->known && i < s->nblocks / 64 + 1; i++)
    n += (uint64_t) __builtin_popcountll (s->known[i]);
  return n;
}

void
sc_backup_sums_free (struct sc_backup_sums *s)
{
  free (s->crc);
  free (s->known);
  s->crc = NULL;
  s->known = NULL;
}
