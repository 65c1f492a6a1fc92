/* shadowcopy: the chunks copied in the current epoch (cow/recent.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "cow/recent.h"

int
sc_recent_init (struct sc_recent *r, unsigned order)
{
  r->mask = (UINT64_C (1) << order) - 1;
  r->e = calloc (r->mask + 1, sizeof *r->e);
  return r->e ? 0 : -ENOMEM;
}

void
sc_recent_free (struct sc_recent *r)
{
  free (r->e);
  r->e = NULL;
}

/* Neighbouring chunks in neighbouring entries: a sequential write's
 * chunks do not evict one another. */
static struct sc_recent_entry *
entry (const struct sc_recent *r, uint64_t chunk)
{
  return &r->e[chunk & r->mask];
}

void
sc_recent_note (struct sc_recent *r, uint64_t chunk, uint32_t epoch)
{
  if (!r->e)
    return;
  struct sc_recent_entry *e = entry (r, chunk);
  __atomic_store_n (&e->chunk1, 0, __ATOMIC_RELAXED);
  __atomic_thread_fence (__ATOMIC_RELEASE);
  __atomic_store_n (&e->epoch, epoch, __ATOMIC_RELAXED);
  __atomic_store_n (&e->chunk1, chunk + 1, __ATOMIC_RELEASE);
}

void
sc_recent_forget (struct sc_recent *r, uint64_t chunk)
{
  if (!r->e)
    return;
  struct sc_recent_entry *e = entry (r, chunk);
  if (__atomic_load_n (&e->chunk1, __ATOMIC_RELAXED) == chunk + 1)
    __atomic_store_n (&e->chunk1, 0, __ATOMIC_RELEASE);
}

void
sc_recent_prefetch (const struct sc_recent *r, uint64_t chunk)
{
  if (r->e)
    __builtin_prefetch (entry (r, chunk));
}

static bool
copied (const struct sc_recent *r, uint64_t chunk, uint32_t epoch)
{
  const struct sc_recent_entry *e = entry (r, chunk);
  uint64_t c1 = __atomic_load_n (&e->chunk1, __ATOMIC_ACQUIRE);
  if (c1 != chunk + 1)
    return false;
  uint32_t got = __atomic_load_n (&e->epoch, __ATOMIC_RELAXED);
  __atomic_thread_fence (__ATOMIC_ACQUIRE);
  return __atomic_load_n (&e->chunk1, __ATOMIC_RELAXED) == c1 &&
         got == epoch;
}

bool
sc_recent_all (const struct sc_recent *r, uint64_t first, uint64_t last,
               uint32_t epoch)
{
  if (!r->e || last - first >= SC_RECENT_RANGE)
    return false;
  for (uint64_t c = first; c <= last; c++)
    if (!copied (r, c, epoch))
      return false;
  return true;
}
