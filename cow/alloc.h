/* shadowcopy: the slot allocator of the diff area.
 *
 * A bitmap of slots, one bit each (so 1 TiB of 64K slots costs 2 MiB).
 * Allocation returns the lowest free slot, so space freed by deleting a
 * snapshot is reused before the file grows.  Not thread-safe: the diff
 * area's mutex protects it. */
#ifndef SHADOWCOPY_COW_ALLOC_H
#define SHADOWCOPY_COW_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

struct sc_alloc {
  uint64_t *bits;
  uint64_t words;               /* allocated words of bits */
  uint64_t first;               /* first usable slot */
  uint64_t end;                 /* one past the highest slot ever used */
  uint64_t used;                /* slots in use */
  uint64_t hint;                /* no free slot below this */
};

void sc_alloc_init (struct sc_alloc *a, uint64_t first_slot);
void sc_alloc_free_all (struct sc_alloc *a);

/* Mark `slot` used (replay).  -EEXIST if it already is, -EINVAL if it is
 * below the first usable slot, -ENOMEM. */
int sc_alloc_mark (struct sc_alloc *a, uint64_t slot);

/* Take the lowest free slot.  -ENOMEM. */
int sc_alloc_get (struct sc_alloc *a, uint64_t *slot);

/* Return a slot.  Freeing a free slot is a bug and aborts. */
void sc_alloc_put (struct sc_alloc *a, uint64_t slot);

/* Slots in use, and one past the highest slot ever used. */
static inline uint64_t
sc_alloc_used (const struct sc_alloc *a)
{
  return a->used;
}
static inline uint64_t
sc_alloc_end (const struct sc_alloc *a)
{
  return a->end;
}

bool sc_alloc_is_used (const struct sc_alloc *a, uint64_t slot);

/* Lower `end` to one past the highest used slot (at least `first`) and
 * return it: the file may be cut there. */
uint64_t sc_alloc_trim_end (struct sc_alloc *a);

#endif
