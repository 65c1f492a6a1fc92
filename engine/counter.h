/* shadowcopy: a statistics counter that many threads add to at once.
 *
 * One shared atomic that every write adds to is one cache line that
 * every core takes in turn, exclusively: on a machine with many cores
 * serving one volume, that line, not the work, would set the pace.  So
 * the counter is split into shards, one cache line each, and a thread
 * adds to the shard it was given the first time it counted; a read sums
 * them.  Threads may share a shard (the adds stay atomic), and a read
 * while adds go on sees each shard at some moment, which is all a
 * statistic needs.  Safe from any thread.
 */
#ifndef SHADOWCOPY_ENGINE_COUNTER_H
#define SHADOWCOPY_ENGINE_COUNTER_H

#include <stdint.h>

#define SC_COUNTER_SHARDS 16
#define SC_CACHE_LINE 64

struct sc_counter {
  struct {
    uint64_t n;
  } __attribute__ ((aligned (SC_CACHE_LINE))) shard[SC_COUNTER_SHARDS];
};

/* This thread's shard, given round robin on its first use. */
unsigned sc_counter_shard (void);

static inline void
sc_counter_add (struct sc_counter *c, uint64_t n)
{
  __atomic_fetch_add (&c->shard[sc_counter_shard ()].n, n, __ATOMIC_RELAXED);
}

static inline uint64_t
sc_counter_read (const struct sc_counter *c)
{
  uint64_t sum = 0;
  for (unsigned i = 0; i < SC_COUNTER_SHARDS; i++)
    sum += __atomic_load_n (&c->shard[i].n, __ATOMIC_RELAXED);
  return sum;
}

#endif
