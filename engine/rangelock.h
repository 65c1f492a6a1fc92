/* shadowcopy: chunk range locks.
 *
 * A live write holds its chunks exclusively from before the copy-on-write
 * until its data is on the origin; a snapshot read holds its chunks shared
 * while it resolves and reads them.  So a snapshot read never sees an
 * origin chunk that a write has changed but not yet copied (invariant 3).
 * Few ranges are held at once (one per request in flight), so a list
 * under one mutex is both simple and exact: no false sharing between
 * unrelated chunks, unlike striped locks.
 *
 * Lock order: a volume's range lock comes after its write gate and
 * before the diff area's mutex; a snapshot is pinned only once its range
 * is held (engine/volume-impl.h, struct sc_volume). */
#ifndef SHADOWCOPY_ENGINE_RANGELOCK_H
#define SHADOWCOPY_ENGINE_RANGELOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sc_range {
  uint64_t first, last;         /* chunks, inclusive */
  bool exclusive;
  struct sc_range *next;
};

struct sc_rangelock {
  pthread_mutex_t lock;
  pthread_cond_t released;
  struct sc_range *held;
};

void sc_rangelock_init (struct sc_rangelock *rl);
void sc_rangelock_destroy (struct sc_rangelock *rl);

/* Wait until [first, last] can be held and hold it; `r` is the caller's
 * storage for the hold (usually on its stack) until unlock. */
void sc_rangelock_lock (struct sc_rangelock *rl, struct sc_range *r,
                        uint64_t first, uint64_t last, bool exclusive);
void sc_rangelock_unlock (struct sc_rangelock *rl, struct sc_range *r);

#endif
