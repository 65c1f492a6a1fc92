/* Unit tests: the chunk range lock (engine/rangelock.h): overlapping
 * ranges are never held at once, a waiter is always woken once it can
 * go, and a large range is granted while small ones keep arriving. */
#include <config.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <criterion/criterion.h>

#include "engine/rangelock.h"

static uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void
sleep_us (unsigned us)
{
  struct timespec ts = { 0, (long) us * 1000 };
  nanosleep (&ts, NULL);
}

/* Spawn n threads running fn(arg[i]) and join them. */
static void
run_threads (size_t n, void *(*fn) (void *), void *args, size_t argsize)
{
  pthread_t t[16];
  cr_assert (n <= 16);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq (pthread_create (&t[i], NULL, fn,
                                  (char *) args + i * argsize), 0);
  for (size_t i = 0; i < n; i++)
    pthread_join (t[i], NULL);
}

/* ---- no false sharing ------------------------------------------------- */

/* One thread takes them one after another: if any waited, it would wait
 * for itself and the test would time out. */
Test (rangelock, disjoint_and_shared_ranges_are_held_together,
      .timeout = 10)
{
  struct sc_rangelock rl;
  struct sc_range a, b, c, d, e, f;
  sc_rangelock_init (&rl);
  sc_rangelock_lock (&rl, &a, 0, 0, true);
  sc_rangelock_lock (&rl, &b, 1, 1, true);       /* same bucket */
  sc_rangelock_lock (&rl, &c, 1024, 1024, true); /* same stripe */
  sc_rangelock_lock (&rl, &d, 2, 1023, false);   /* every stripe */
  sc_rangelock_lock (&rl, &e, 4, 9, false);      /* shared over shared */
  sc_rangelock_lock (&rl, &f, 1025, UINT64_MAX, true);
  cr_assert_eq (d.first, 2);
  cr_assert_eq (d.last, 1023);
  cr_assert (!d.exclusive);
  sc_rangelock_unlock (&rl, &f);
  sc_rangelock_unlock (&rl, &e);
  sc_rangelock_unlock (&rl, &d);
  sc_rangelock_unlock (&rl, &c);
  sc_rangelock_unlock (&rl, &b);
  sc_rangelock_unlock (&rl, &a);
  sc_rangelock_destroy (&rl);
}

/* ---- exclusion -------------------------------------------------------- */

#define SPACE 4096              /* chunks: 256 buckets, every stripe 4 times */
#define EX_THREADS 8
#define EX_ROUNDS 3000

static struct sc_rangelock ex_rl;
static int writer[SPACE], readers[SPACE];
static int violations;

struct ex_arg {
  unsigned seed;
};

static void
pick (unsigned *seed, uint64_t *first, uint64_t *last)
{
  unsigned k = (unsigned) rand_r (seed) % 100;
  uint64_t len;
  if (k < 55)
    len = 1;
  else if (k < 90)
    len = 1 + (unsigned) rand_r (seed) % 40;    /* across buckets */
  else if (k < 98)
    len = 1 + (unsigned) rand_r (seed) % 1500;  /* up to every stripe */
  else
    len = SPACE;
  *first = len >= SPACE ? 0 : (unsigned) rand_r (seed) % (SPACE - len + 1);
  *last = *first + len - 1;
}

static void *
ex_worker (void *p)
{
  struct ex_arg *a = p;
  for (int i = 0; i < EX_ROUNDS; i++) {
    uint64_t first, last;
    pick (&a->seed, &first, &last);
    bool exclusive = rand_r (&a->seed) % 100 < 70;
    struct sc_range r;
    sc_rangelock_lock (&ex_rl, &r, first, last, exclusive);
    for (uint64_t c = first; c <= last; c++) {
      if (exclusive) {
        if (__atomic_exchange_n (&writer[c], 1, __ATOMIC_SEQ_CST) ||
            __atomic_load_n (&readers[c], __ATOMIC_SEQ_CST))
          __atomic_fetch_add (&violations, 1, __ATOMIC_SEQ_CST);
      }
      else {
        __atomic_fetch_add (&readers[c], 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n (&writer[c], __ATOMIC_SEQ_CST))
          __atomic_fetch_add (&violations, 1, __ATOMIC_SEQ_CST);
      }
    }
    if (i % 8 == 0)
      sched_yield ();
    for (uint64_t c = first; c <= last; c++) {
      if (exclusive)
        __atomic_store_n (&writer[c], 0, __ATOMIC_SEQ_CST);
      else
        __atomic_fetch_sub (&readers[c], 1, __ATOMIC_SEQ_CST);
    }
    sc_rangelock_unlock (&ex_rl, &r);
  }
  return NULL;
}

Test (rangelock, overlapping_ranges_are_never_held_at_once, .timeout = 120)
{
  struct ex_arg args[EX_THREADS];
  sc_rangelock_init (&ex_rl);
  for (unsigned i = 0; i < EX_THREADS; i++)
    args[i].seed = 1234 + i;
  run_threads (EX_THREADS, ex_worker, args, sizeof args[0]);
  sc_rangelock_destroy (&ex_rl);
  cr_assert_eq (violations, 0, "%d times two conflicting ranges were held "
                "at once", violations);
}

/* ---- no lost wake-up -------------------------------------------------- */

/* Every thread in turn on a few overlapping ranges, some in one stripe,
 * some across two or all of them, with no pause: a waiter not woken
 * when it could go would hang the test (its timeout fails it), and an
 * unprotected counter checks the exclusion on the way. */
#define WK_THREADS 6
#define WK_ROUNDS 20000

static struct sc_rangelock wk_rl;
static uint64_t wk_count, wk_shared;

/* All hold chunk 16 (stripe 1); some join stripe 0, 2, or all. */
static const uint64_t wk_ranges[][2] = {
  { 16, 16 }, { 15, 16 }, { 0, 2000 }, { 16, 1023 }, { 16, 17 },
  { 10, 40 },
};

static void *
wk_worker (void *p)
{
  unsigned seed = *(unsigned *) p;
  for (int i = 0; i < WK_ROUNDS; i++) {
    const uint64_t *g = wk_ranges[(unsigned) rand_r (&seed) % 6];
    struct sc_range r;
    bool exclusive = rand_r (&seed) % 4 != 0;
    sc_rangelock_lock (&wk_rl, &r, g[0], g[1], exclusive);
    if (exclusive)
      wk_count++;
    else
      __atomic_fetch_add (&wk_shared, 1, __ATOMIC_RELAXED);
    sc_rangelock_unlock (&wk_rl, &r);
  }
  return NULL;
}

Test (rangelock, every_waiter_is_woken, .timeout = 120)
{
  unsigned seeds[WK_THREADS];
  sc_rangelock_init (&wk_rl);
  for (unsigned i = 0; i < WK_THREADS; i++)
    seeds[i] = 77 + i;
  run_threads (WK_THREADS, wk_worker, seeds, sizeof seeds[0]);
  sc_rangelock_destroy (&wk_rl);
  cr_assert_eq (wk_count + wk_shared, (uint64_t) WK_THREADS * WK_ROUNDS);
}

/* ---- fairness --------------------------------------------------------- */

/* SMALL threads keep chunks [0, 63] busy without a pause: at any time
 * some of them hold a chunk there, so a lock that let newcomers pass a
 * waiter would never find the whole range free.  A large exclusive range
 * over them must still be granted, well before the deadline. */
#define SMALL 8
#define FAIR_DEADLINE_NS 5000000000u

struct fair {
  struct sc_rangelock rl;
  bool small_exclusive;
  int stop;
  uint64_t granted_ns;          /* when the large range got in, 0 if not */
  unsigned seed[SMALL];
};

static struct fair fair;

static void *
small_worker (void *p)
{
  unsigned *seed = p;
  while (!__atomic_load_n (&fair.stop, __ATOMIC_ACQUIRE)) {
    uint64_t c = (unsigned) rand_r (seed) % 64;
    struct sc_range r;
    sc_rangelock_lock (&fair.rl, &r, c, c, fair.small_exclusive);
    sleep_us (500);
    sc_rangelock_unlock (&fair.rl, &r);
  }
  return NULL;
}

static void *
large_worker (void *p)
{
  (void) p;
  struct sc_range r;
  sc_rangelock_lock (&fair.rl, &r, 0, 63, true);
  __atomic_store_n (&fair.granted_ns, now_ns (), __ATOMIC_RELEASE);
  sleep_us (1000);
  sc_rangelock_unlock (&fair.rl, &r);
  return NULL;
}

static void
large_range_is_granted (bool small_exclusive)
{
  pthread_t small[SMALL], large;
  sc_rangelock_init (&fair.rl);
  fair.small_exclusive = small_exclusive;
  for (unsigned i = 0; i < SMALL; i++) {
    fair.seed[i] = 99 + i;
    cr_assert_eq (pthread_create (&small[i], NULL, small_worker,
                                  &fair.seed[i]), 0);
  }
  sleep_us (50000);
  uint64_t start = now_ns ();
  cr_assert_eq (pthread_create (&large, NULL, large_worker, NULL), 0);
  while (!__atomic_load_n (&fair.granted_ns, __ATOMIC_ACQUIRE) &&
         now_ns () - start < FAIR_DEADLINE_NS)
    sleep_us (1000);
  uint64_t granted = __atomic_load_n (&fair.granted_ns, __ATOMIC_ACQUIRE);
  if (granted)
    cr_log_info ("granted after %.3f ms", (double) (granted - start) / 1e6);
  /* Let everyone finish, granted or not, before judging. */
  __atomic_store_n (&fair.stop, 1, __ATOMIC_RELEASE);
  for (unsigned i = 0; i < SMALL; i++)
    pthread_join (small[i], NULL);
  pthread_join (large, NULL);
  sc_rangelock_destroy (&fair.rl);
  cr_assert (granted != 0 && granted - start < FAIR_DEADLINE_NS,
             "the large range waited more than 5 s behind %s small ones",
             small_exclusive ? "exclusive" : "shared");
}

Test (rangelock, large_range_is_granted_while_small_exclusive_ones_arrive,
      .timeout = 60)
{
  large_range_is_granted (true);
}

Test (rangelock, exclusive_range_is_granted_while_shared_ones_arrive,
      .timeout = 60)
{
  large_range_is_granted (false);
}
