/* shadowcopy: chunk range locks.
 *
 * A live write holds its chunks exclusively from before the copy-on-write
 * until its data is on the origin; a snapshot read holds its chunks shared
 * while it resolves and reads them.  So a snapshot read never sees an
 * origin chunk that a write has changed but not yet copied (invariant 3).
 *
 * The chunk space is cut in buckets of SC_RANGELOCK_BUCKET chunks, and
 * bucket b belongs to stripe b % SC_RANGELOCK_STRIPES.  Each stripe has
 * its own mutex, the ranges held in it and a queue of the ranges waiting
 * in it.  A range joins every stripe its buckets belong to, in ascending
 * stripe order, and waits in a stripe (on its own condition variable)
 * while it overlaps, with an exclusive on either side, a range held there
 * or a range that waits there before it.  An unlock wakes only the
 * waiters of its stripes that overlap it and that nothing blocks any more.
 * Requests on unrelated chunks thus meet at no common mutex or list, and
 * a request touches as many stripes as its range has buckets (at most
 * all of them, for a large range).
 *
 * Why it is exact: two overlapping ranges share a bucket, hence a stripe,
 * and a stripe never holds two conflicting ranges.  Why it cannot
 * deadlock: a range waits only in the highest stripe it has reached, for
 * a range held there (which waits, if at all, in a higher stripe) or for
 * one that queued there before it, so no chain of waits closes a cycle.
 * Why nobody starves: within a stripe, a range that conflicts with a
 * waiter queues behind it, so the set of ranges a waiter waits for only
 * shrinks; a large exclusive range is granted even while small ones keep
 * arriving, and shared ranges cannot starve an exclusive one.
 *
 * Lock order: a volume's range lock comes after its write gate and
 * before the diff area's mutex; a snapshot is pinned only once its range
 * is held (engine/volume-impl.h, struct sc_volume).  The stripes' mutexes
 * are leaves: nothing else is locked while one is held. */
#ifndef SHADOWCOPY_ENGINE_RANGELOCK_H
#define SHADOWCOPY_ENGINE_RANGELOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SC_RANGELOCK_STRIPES 64         /* a stripe mask is a uint64_t */
#define SC_RANGELOCK_BUCKET_SHIFT 4     /* 16 chunks per bucket */
#define SC_RANGELOCK_BUCKET (1u << SC_RANGELOCK_BUCKET_SHIFT)

struct sc_range;

/* A range's place in one stripe's held list or wait queue. */
struct sc_range_link {
  struct sc_range *prev, *next;
};

/* The caller's storage for one hold, from lock to unlock (not to be
 * moved or copied meanwhile).  first, last and exclusive may be read by
 * the holder; the rest is the lock's. */
struct sc_range {
  uint64_t first, last;         /* chunks, inclusive */
  bool exclusive;
  bool granted;                 /* set by the unlock that let it in */
  bool cond_ready;              /* `wake` was initialized */
  uint64_t stripes;             /* bit s: joined stripe s */
  pthread_cond_t wake;          /* its own: signalled when granted */
  struct sc_range_link link[SC_RANGELOCK_STRIPES];
};

struct sc_range_list {
  struct sc_range *head, *tail;
};

/* Cache lines of its own (one on x86-64 glibc, two where the mutex is
 * larger): requests on different stripes do not take each other's lines
 * (a range lock's storage must be aligned to match). */
struct sc_rangelock_stripe {
  pthread_mutex_t lock;
  struct sc_range *held;        /* in no order, linked through link[s] */
  struct sc_range_list waiting; /* first come first, through link[s] */
} __attribute__ ((aligned (64)));

struct sc_rangelock {
  struct sc_rangelock_stripe stripe[SC_RANGELOCK_STRIPES];
};

void sc_rangelock_init (struct sc_rangelock *rl);
void sc_rangelock_destroy (struct sc_rangelock *rl);

/* Wait until [first, last] (first <= last) can be held and hold it; `r`
 * is the caller's storage for the hold (usually on its stack) until
 * unlock. */
void sc_rangelock_lock (struct sc_rangelock *rl, struct sc_range *r,
                        uint64_t first, uint64_t last, bool exclusive);
void sc_rangelock_unlock (struct sc_rangelock *rl, struct sc_range *r);

#endif
