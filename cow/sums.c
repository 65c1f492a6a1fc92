/* shadowcopy: the checksums of the copied data, per slot (see sums.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "cow/sums.h"

/* An entry: the chunk (two words, NONE when the slot holds no data copy,
 * with WHOLE or'ed in for a version-1 copy), the epoch, the sums. */
#define NONE  UINT64_MAX
#define WHOLE (1ull << 62)      /* chunk numbers stay far below it */
#define HEAD_WORDS 3

static uint64_t
entry_chunk (const uint32_t *w)
{
  uint64_t c;
  memcpy (&c, w, sizeof c);
  return c;
}

void
sc_sums_init (struct sc_sums *s, uint32_t chunk_size)
{
  memset (s, 0, sizeof *s);
  s->chunk_size = chunk_size;
  s->block = sc_sums_block (chunk_size);
  s->nsums = chunk_size / s->block;
  s->stride = HEAD_WORDS + s->nsums;
}

void
sc_sums_free (struct sc_sums *s)
{
  free (s->words);
  s->words = NULL;
  s->cap = 0;
}

int
sc_sums_reserve (struct sc_sums *s, uint64_t slot)
{
  if (slot < s->cap)
    return 0;
  uint64_t cap = s->cap ? s->cap : 64;
  while (cap <= slot)
    cap *= 2;
  if (cap > SIZE_MAX / 4 / s->stride)
    return -ENOMEM;
  uint32_t *w = realloc (s->words, cap * s->stride * sizeof *w);
  if (!w)
    return -ENOMEM;
  /* NONE is all ones: every new entry starts empty. */
  memset (w + s->cap * s->stride, 0xff,
          (cap - s->cap) * s->stride * sizeof *w);
  s->words = w;
  s->cap = cap;
  return 0;
}

void
sc_sums_set (struct sc_sums *s, uint64_t slot, uint64_t chunk,
             uint32_t epoch, const uint32_t *sums, bool whole)
{
  uint32_t *w = s->words + slot * s->stride;
  uint64_t c = chunk | (whole ? WHOLE : 0);
  memcpy (w, &c, sizeof c);
  w[2] = epoch;
  memcpy (w + HEAD_WORDS, sums, (whole ? 1 : s->nsums) * sizeof *sums);
}

void
sc_sums_clear (struct sc_sums *s, uint64_t slot, uint64_t chunk,
               uint32_t epoch)
{
  if (slot >= s->cap)
    return;
  uint32_t *w = s->words + slot * s->stride;
  uint64_t c = entry_chunk (w);
  if (c == NONE || (c & ~WHOLE) != chunk || w[2] != epoch)
    return;
  memset (w, 0xff, HEAD_WORDS * sizeof *w);
}

bool
sc_sums_get (const struct sc_sums *s, uint64_t slot,
             struct sc_sums_entry *out)
{
  if (slot >= s->cap)
    return false;
  const uint32_t *w = s->words + slot * s->stride;
  uint64_t c = entry_chunk (w);
  if (c == NONE)
    return false;
  out->chunk = c & ~WHOLE;
  out->whole = c & WHOLE;
  out->epoch = w[2];
  memcpy (out->sums, w + HEAD_WORDS,
          (out->whole ? 1 : s->nsums) * sizeof *out->sums);
  return true;
}

uint64_t
sc_sums_next (const struct sc_sums *s, uint64_t slot)
{
  for (; slot < s->cap; slot++)
    if (entry_chunk (s->words + slot * s->stride) != NONE)
      return slot;
  return UINT64_MAX;
}

void
sc_sums_compute (const struct sc_sums *s, const void *chunk, uint32_t *out)
{
  const uint8_t *p = chunk;
  for (uint32_t b = 0; b < s->nsums; b++)
    out[b] = crc32c (0, p + (size_t) b * s->block, s->block);
}

int
sc_sums_verify (const struct sc_sums *s, const struct sc_sums_entry *e,
                const void *buf, uint32_t at, uint32_t len)
{
  const uint8_t *p = buf;
  if (e->whole)
    return crc32c (0, p, s->chunk_size) == e->sums[0] ? -1 : 0;
  for (uint32_t b = at / s->block; b < (at + len) / s->block; b++)
    if (crc32c (0, p + ((size_t) b * s->block - at), s->block) != e->sums[b])
      return (int) b;
  return -1;
}
