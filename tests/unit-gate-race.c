/* Unit tests (review of the lock-free gate, engine/gate.h): changes that
 * enter, park, come back and leave while two holders close, seal and
 * open the gate in turn; and what a change arriving at a sealed gate
 * costs the changes already waiting there. */
#include <config.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engine/gate.h"

#define CHANGERS 6
#define HOLDERS 2
#define HOLDS 4000              /* each */

static struct sc_gate gate;
static unsigned busy, sealed_flag;
static bool stop;
static unsigned long inside_sealed, missed_seals, seals_seen;

static unsigned
rnd (unsigned *s)
{
  *s = *s * 1103515245 + 12345;
  return *s >> 16;
}

/* A change inside: the gate must not be sealed (Dekker with the hold's
 * sealed_flag then busy, all sequentially consistent). */
static void
inside (void)
{
  __atomic_add_fetch (&busy, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n (&sealed_flag, __ATOMIC_SEQ_CST))
    __atomic_add_fetch (&inside_sealed, 1, __ATOMIC_SEQ_CST);
  __atomic_sub_fetch (&busy, 1, __ATOMIC_SEQ_CST);
}

/* Parks, up to three times a change: a hold that counted its seal
 * after the park returned sealed after it, so the unpark must say so. */
static void
park_some (unsigned *s)
{
  for (unsigned p = rnd (s) % 8; p < 3; p++) {
    uint64_t at = sc_gate_park (&gate);
    unsigned long before = __atomic_load_n (&seals_seen, __ATOMIC_SEQ_CST);
    if (rnd (s) % 4 == 0)
      sched_yield ();
    if (rnd (s) % 16 == 0)
      usleep (rnd (s) % 50);
    bool since = sc_gate_unpark (&gate, at);
    if (!since && __atomic_load_n (&seals_seen, __ATOMIC_SEQ_CST) != before)
      __atomic_add_fetch (&missed_seals, 1, __ATOMIC_SEQ_CST);
    inside ();
  }
}

static void *
changer (void *arg)
{
  unsigned s = (unsigned) (uintptr_t) arg * 7919 + 1;
  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    sc_gate_enter (&gate);
    inside ();
    park_some (&s);
    if (rnd (&s) % 8 == 0)
      sched_yield ();
    sc_gate_leave (&gate);
  }
  return NULL;
}

static void *
holder (void *arg)
{
  unsigned s = (unsigned) (uintptr_t) arg * 31 + 5;
  for (int i = 0; i < HOLDS; i++) {
    sc_gate_close (&gate);
    if (rnd (&s) % 4 == 0)
      sched_yield ();           /* the write-back drain */
    sc_gate_seal (&gate);
    __atomic_store_n (&sealed_flag, 1, __ATOMIC_SEQ_CST);
    for (int spin = 0; spin < 20; spin++)
      if (__atomic_load_n (&busy, __ATOMIC_SEQ_CST))
        __atomic_add_fetch (&inside_sealed, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch (&seals_seen, 1, __ATOMIC_SEQ_CST);
    if (rnd (&s) % 8 == 0)
      sched_yield ();
    __atomic_store_n (&sealed_flag, 0, __ATOMIC_SEQ_CST);
    sc_gate_open (&gate);
    if (rnd (&s) % 2)
      sched_yield ();
  }
  return NULL;
}

Test (gate_race, parks_and_two_holders, .timeout = 120)
{
  pthread_t c[CHANGERS], h[HOLDERS];
  sc_gate_init (&gate);
  for (uintptr_t i = 0; i < CHANGERS; i++)
    cr_assert_eq (pthread_create (&c[i], NULL, changer, (void *) i), 0);
  for (uintptr_t i = 0; i < HOLDERS; i++)
    cr_assert_eq (pthread_create (&h[i], NULL, holder, (void *) i), 0);
  for (int i = 0; i < HOLDERS; i++)
    pthread_join (h[i], NULL);
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (int i = 0; i < CHANGERS; i++)
    pthread_join (c[i], NULL);
  cr_expect_eq (inside_sealed, 0, "%lu times a change was inside a sealed "
                "gate", inside_sealed);
  cr_expect_eq (missed_seals, 0, "%lu unparks missed a seal", missed_seals);
  cr_expect_eq (gate.inside, 0, "%u changes left inside", gate.inside);
  sc_gate_destroy (&gate);
}

/* ---- a change arriving at a sealed gate ------------------------------ */

#define ARRIVALS 128

static void *
arrive (void *arg)
{
  usleep ((useconds_t) (uintptr_t) arg * 300);
  sc_gate_enter (&gate);
  sc_gate_leave (&gate);
  return NULL;
}

/* Each write arriving while a hold has the gate should wait, not wake
 * every write already waiting: ARRIVALS writes arriving one by one during
 * one hold cost about two voluntary context switches each (their own
 * wait, and their thread's creation), not one per write already there. */
Test (gate_race, an_arrival_at_a_sealed_gate_wakes_no_one, .timeout = 60)
{
  pthread_t t[ARRIVALS];
  sc_gate_init (&gate);
  sc_gate_close (&gate);
  sc_gate_seal (&gate);
  struct rusage a, b;
  getrusage (RUSAGE_SELF, &a);
  for (uintptr_t i = 0; i < ARRIVALS; i++)
    cr_assert_eq (pthread_create (&t[i], NULL, arrive, (void *) i), 0);
  usleep (ARRIVALS * 300 + 50000);
  getrusage (RUSAGE_SELF, &b);
  sc_gate_open (&gate);
  for (int i = 0; i < ARRIVALS; i++)
    pthread_join (t[i], NULL);
  long switches = b.ru_nvcsw - a.ru_nvcsw;
  cr_expect_lt (switches, 8 * ARRIVALS, "%ld context switches for %d "
                "arrivals at a sealed gate", switches, ARRIVALS);
  sc_gate_destroy (&gate);
}
