/* shadowcopy: the one binary search of cow/.
 *
 * Every sorted table of the diff area (snapshots by id or epoch, valid
 * epochs, discarded extents) is searched for its partition point: the
 * first element for which "is it before what I look for?" is false.  The
 * helper is static inline with the predicate a static function of the
 * caller, so the compiler turns each use back into a plain loop.
 */
#ifndef SHADOWCOPY_COW_SEARCH_H
#define SHADOWCOPY_COW_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

/* The first i in [0, n) with before(ctx, i) false, or n.  `before` must
 * be true for a prefix of [0, n) and false for the rest. */
static inline size_t
sc_partition_point (size_t n, bool (*before) (const void *ctx, size_t i),
                    const void *ctx)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (before (ctx, mid))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

#endif
