/* shadowcopy: lowest-first slot allocation over a bitmap. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/alloc.h"

void
sc_alloc_init (struct sc_alloc *a, uint64_t first_slot)
{
  memset (a, 0, sizeof *a);
  a->first = a->end = a->hint = first_slot;
}

void
sc_alloc_free_all (struct sc_alloc *a)
{
  free (a->bits);
  a->bits = NULL;
  a->words = 0;
}

static int
ensure (struct sc_alloc *a, uint64_t slot)
{
  uint64_t need = slot / 64 + 1;
  if (need <= a->words)
    return 0;
  uint64_t words = a->words ? a->words : 64;
  while (words < need)
    words *= 2;
  uint64_t *bits = realloc (a->bits, words * sizeof *bits);
  if (!bits)
    return -ENOMEM;
  memset (bits + a->words, 0, (words - a->words) * sizeof *bits);
  a->bits = bits;
  a->words = words;
  return 0;
}

bool
sc_alloc_is_used (const struct sc_alloc *a, uint64_t slot)
{
  return slot / 64 < a->words && (a->bits[slot / 64] >> (slot % 64) & 1);
}

static void
set_used (struct sc_alloc *a, uint64_t slot)
{
  a->bits[slot / 64] |= 1ull << (slot % 64);
  a->used++;
  if (slot >= a->end)
    a->end = slot + 1;
}

int
sc_alloc_mark (struct sc_alloc *a, uint64_t slot)
{
  if (slot < a->first)
    return -EINVAL;
  int r = ensure (a, slot);
  if (r < 0)
    return r;
  if (sc_alloc_is_used (a, slot))
    return -EEXIST;
  set_used (a, slot);
  return 0;
}

int
sc_alloc_get (struct sc_alloc *a, uint64_t *slot)
{
  /* Below `end` first: reuse freed space before growing the file. */
  uint64_t s = a->hint;
  while (s < a->end) {
    uint64_t w = a->bits[s / 64] | ((1ull << (s % 64)) - 1);
    if (w != UINT64_MAX) {
      s = (s & ~63ull) + (uint64_t) __builtin_ctzll (~w);
      break;
    }
    s = (s & ~63ull) + 64;
  }
  if (s > a->end)
    s = a->end;
  int r = ensure (a, s);
  if (r < 0)
    return r;
  set_used (a, s);
  a->hint = s + 1;
  *slot = s;
  return 0;
}

void
sc_alloc_put (struct sc_alloc *a, uint64_t slot)
{
  if (!sc_alloc_is_used (a, slot))
    abort ();
  a->bits[slot / 64] &= ~(1ull << (slot % 64));
  a->used--;
  if (slot < a->hint)
    a->hint = slot;
}

uint64_t
sc_alloc_trim_end (struct sc_alloc *a)
{
  uint64_t s = a->end;
  while (s > a->first) {
    uint64_t w = (s - 1) / 64;
    uint64_t bits = w < a->words ? a->bits[w] : 0;
    unsigned top = (unsigned) ((s - 1) % 64);
    bits &= top == 63 ? UINT64_MAX : (2ull << top) - 1;
    if (bits) {
      s = w * 64 + 64 - (uint64_t) __builtin_clzll (bits);
      break;
    }
    s = w * 64;
  }
  if (s < a->first)
    s = a->first;
  a->end = s;
  if (a->hint > s)
    a->hint = s;
  return s;
}
