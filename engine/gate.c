/* shadowcopy: a volume's write gate (engine/gate.h). */
#include <config.h>

#include "engine/gate.h"

void
sc_gate_init (struct sc_gate *g)
{
  *g = (struct sc_gate) { .inside = 0 };
  pthread_mutex_init (&g->lock, NULL);
  pthread_cond_init (&g->changed, NULL);
}

void
sc_gate_destroy (struct sc_gate *g)
{
  pthread_mutex_destroy (&g->lock);
  pthread_cond_destroy (&g->changed);
}

static bool
closing (struct sc_gate *g)
{
  return __atomic_load_n (&g->closing, __ATOMIC_SEQ_CST);
}

/* One change fewer inside.  True if it was the last and a hold waits for
 * the gate to empty: only that hold is to be woken, not every change
 * waiting at a sealed gate that one stepping back would wake. */
static bool
last_out (struct sc_gate *g)
{
  return __atomic_sub_fetch (&g->inside, 1, __ATOMIC_SEQ_CST) == 0 &&
         __atomic_load_n (&g->draining, __ATOMIC_SEQ_CST);
}

static void
out (struct sc_gate *g)
{
  if (last_out (g)) {
    pthread_mutex_lock (&g->lock);
    pthread_cond_broadcast (&g->changed);
    pthread_mutex_unlock (&g->lock);
  }
}

void
sc_gate_enter (struct sc_gate *g)
{
  __atomic_add_fetch (&g->inside, 1, __ATOMIC_SEQ_CST);
  if (!closing (g))
    return;
  out (g);                      /* a hold comes first: wait outside */
  pthread_mutex_lock (&g->lock);
  while (g->closing)
    pthread_cond_wait (&g->changed, &g->lock);
  __atomic_add_fetch (&g->inside, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock (&g->lock);
}

void
sc_gate_leave (struct sc_gate *g)
{
  out (g);
}

/* Out and the count of seals in one step under the lock: a hold that
 * seals once this change is out must count as sealed since. */
uint64_t
sc_gate_park (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  uint64_t seals = g->seals;
  if (last_out (g))
    pthread_cond_broadcast (&g->changed);
  pthread_mutex_unlock (&g->lock);
  return seals;
}

/* While the hold is only closing, a parked change comes back in: the
 * hold waits for it as for any change inside, and may itself wait for
 * the chunks it holds (the write-back queue's drain). */
bool
sc_gate_unpark (struct sc_gate *g, uint64_t parked_at)
{
  pthread_mutex_lock (&g->lock);
  while (g->sealed)
    pthread_cond_wait (&g->changed, &g->lock);
  __atomic_add_fetch (&g->inside, 1, __ATOMIC_SEQ_CST);
  bool sealed_since = g->seals != parked_at;
  pthread_mutex_unlock (&g->lock);
  return sealed_since;
}

/* `draining` is set before `inside` is read (both sequentially
 * consistent), so the last change out either is seen out or sees it and
 * wakes this wait. */
static void
wait_empty (struct sc_gate *g)
{
  __atomic_store_n (&g->draining, true, __ATOMIC_SEQ_CST);
  while (__atomic_load_n (&g->inside, __ATOMIC_SEQ_CST))
    pthread_cond_wait (&g->changed, &g->lock);
  __atomic_store_n (&g->draining, false, __ATOMIC_SEQ_CST);
}

void
sc_gate_close (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  while (g->closing)
    pthread_cond_wait (&g->changed, &g->lock);
  __atomic_store_n (&g->closing, true, __ATOMIC_SEQ_CST);
  wait_empty (g);
  pthread_mutex_unlock (&g->lock);
}

void
sc_gate_seal (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  wait_empty (g);
  g->sealed = true;
  g->seals++;
  pthread_mutex_unlock (&g->lock);
}

void
sc_gate_open (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  g->sealed = false;
  __atomic_store_n (&g->closing, false, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast (&g->changed);
  pthread_mutex_unlock (&g->lock);
}
