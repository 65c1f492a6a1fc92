/* Unit tests: the sharded statistics counter (engine/counter.h): every
 * add is counted once, a read during adds never runs ahead of them, and
 * threads are spread over shards that do not share cache lines. */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "engine/counter.h"
#include "engine/rangelock.h"

#define ADDERS 8
#define ADDS 200000

static struct sc_counter counter;
static uint64_t added[ADDERS];          /* what each adder added */
static int adders_done;

static void *
adder (void *arg)
{
  size_t id = (size_t) (uintptr_t) arg;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < ADDS; i++) {
    uint64_t n = (i % 7) + id;          /* unequal adds, some zero */
    sc_counter_add (&counter, n);
    sum += n;
  }
  added[id] = sum;
  __atomic_add_fetch (&adders_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

Test (counter, every_add_is_counted_and_reads_never_run_ahead,
      .timeout = 60)
{
  uint64_t most = 0;
  for (size_t id = 0; id < ADDERS; id++)
    for (uint64_t i = 0; i < ADDS; i++)
      most += (i % 7) + id;

  pthread_t t[ADDERS];
  for (size_t i = 0; i < ADDERS; i++)
    cr_assert_eq (pthread_create (&t[i], NULL, adder, (void *) (uintptr_t) i),
                  0);
  uint64_t last = 0;
  size_t reads = 0;
  while (__atomic_load_n (&adders_done, __ATOMIC_ACQUIRE) < ADDERS) {
    uint64_t now = sc_counter_read (&counter);
    cr_assert_geq (now, last, "a read went back: %" PRIu64 " after %" PRIu64,
                   now, last);
    cr_assert_leq (now, most, "a read counted more than was added");
    last = now;
    reads++;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < ADDERS; i++) {
    pthread_join (t[i], NULL);
    total += added[i];
  }
  cr_assert_eq (total, most);
  cr_assert_eq (sc_counter_read (&counter), total,
                "counted %" PRIu64 " of %" PRIu64 " (after %zu reads)",
                sc_counter_read (&counter), total, reads);
}

static void *
shard_of (void *arg)
{
  *(unsigned *) arg = sc_counter_shard ();
  cr_assert_eq (sc_counter_shard (), *(unsigned *) arg,
                "a thread's shard changed");
  return NULL;
}

/* Threads made one after another get every shard once: 16 writers of a
 * volume do not pile onto one line. */
Test (counter, threads_in_turn_get_every_shard)
{
  unsigned shard[SC_COUNTER_SHARDS];
  for (size_t i = 0; i < SC_COUNTER_SHARDS; i++) {
    pthread_t t;
    cr_assert_eq (pthread_create (&t, NULL, shard_of, &shard[i]), 0);
    pthread_join (t, NULL);
  }
  uint64_t seen = 0;
  for (size_t i = 0; i < SC_COUNTER_SHARDS; i++) {
    cr_assert_lt (shard[i], SC_COUNTER_SHARDS);
    seen |= UINT64_C (1) << shard[i];
  }
  cr_assert_eq (seen, (UINT64_C (1) << SC_COUNTER_SHARDS) - 1,
                "shards given: %#" PRIx64, seen);
}

/* No two shards, and no two range-lock stripes, share a cache line,
 * wherever the structure is. */
Test (counter, shards_and_stripes_have_lines_of_their_own)
{
  struct sc_counter *c = aligned_alloc (_Alignof (struct sc_counter),
                                        sizeof *c);
  struct sc_rangelock *rl = aligned_alloc (_Alignof (struct sc_rangelock),
                                           sizeof *rl);
  cr_assert (c && rl);
  for (size_t i = 0; i < SC_COUNTER_SHARDS; i++)
    cr_assert_eq ((uintptr_t) &c->shard[i] % SC_CACHE_LINE, 0);
  for (size_t i = 0; i < SC_RANGELOCK_STRIPES; i++)
    cr_assert_eq ((uintptr_t) &rl->stripe[i] % SC_CACHE_LINE, 0);
  /* A whole number of lines (one on x86-64; a larger mutex, as arm64's
   * 48 bytes, makes it two). */
  cr_assert_eq (sizeof rl->stripe[0] % SC_CACHE_LINE, 0);
  free (c);
  free (rl);
}
