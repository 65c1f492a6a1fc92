/* Unit tests: the write gate (engine/gate.h), whose open path takes no
 * mutex: a sealed gate has no change inside, however the changes and the
 * hold interleave, and a parked change learns of a seal made while it
 * was out. */
#include <config.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <criterion/criterion.h>

#include "engine/gate.h"

#define CHANGERS 4
#define HOLDS 3000

static struct sc_gate gate;
static unsigned busy;           /* changes between enter and leave */
static bool sealed;             /* the hold has the gate */
static unsigned violations;     /* a change inside a sealed gate */
static bool stop;

static void *
changer (void *unused)
{
  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    sc_gate_enter (&gate);
    __atomic_add_fetch (&busy, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n (&sealed, __ATOMIC_SEQ_CST))
      __atomic_add_fetch (&violations, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch (&busy, 1, __ATOMIC_SEQ_CST);
    sc_gate_leave (&gate);
  }
  return NULL;
}

static void
hold_once (void)
{
  sc_gate_close (&gate);
  sc_gate_seal (&gate);
  __atomic_store_n (&sealed, true, __ATOMIC_SEQ_CST);
  for (int spin = 0; spin < 200; spin++)
    if (__atomic_load_n (&busy, __ATOMIC_SEQ_CST))
      __atomic_add_fetch (&violations, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n (&sealed, false, __ATOMIC_SEQ_CST);
  sc_gate_open (&gate);
}

Test (gate, a_sealed_gate_has_no_change_inside, .timeout = 60)
{
  pthread_t t[CHANGERS];
  sc_gate_init (&gate);
  for (int i = 0; i < CHANGERS; i++)
    cr_assert_eq (pthread_create (&t[i], NULL, changer, NULL), 0);
  for (int i = 0; i < HOLDS; i++)
    hold_once ();
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (int i = 0; i < CHANGERS; i++)
    pthread_join (t[i], NULL);
  cr_assert_eq (violations, 0, "%u times a change was inside a sealed gate",
                violations);
  sc_gate_destroy (&gate);
}

Test (gate, a_parked_change_learns_of_a_seal)
{
  struct sc_gate g;
  sc_gate_init (&g);
  sc_gate_enter (&g);
  uint64_t at = sc_gate_park (&g);
  cr_assert_not (sc_gate_unpark (&g, at), "no hold meanwhile");
  at = sc_gate_park (&g);
  sc_gate_close (&g);           /* the parked change is not waited for */
  sc_gate_seal (&g);
  sc_gate_open (&g);
  cr_assert (sc_gate_unpark (&g, at), "sealed while parked");
  sc_gate_leave (&g);
  sc_gate_destroy (&g);
}
