/* shadowcopy: growing arrays. */
#ifndef SHADOWCOPY_COW_ARRAY_H
#define SHADOWCOPY_COW_ARRAY_H

#include <stdlib.h>

/* Room for one more element in an array of *cap elements of elem bytes,
 * `n` of them in use: returns `items`, or the array moved to twice the
 * room (`first` elements for the first one) with *cap updated, or NULL
 * when out of memory (the array is then unchanged).  Use:
 *   struct x *a = sc_array_room (arr, &cap, n, sizeof *a, 16);
 *   if (!a) return -ENOMEM;
 *   arr = a; */
static inline void *
sc_array_room (void *items, size_t *cap, size_t n, size_t elem, size_t first)
{
  if (n < *cap)
    return items;
  size_t c = *cap ? *cap * 2 : first;
  void *p = realloc (items, c * elem);
  if (p)
    *cap = c;
  return p;
}

#endif
