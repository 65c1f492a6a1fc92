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

void
sc_gate_enter (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  while (g->closing)
    pthread_cond_wait (&g->changed, &g->lock);
  g->inside++;
  pthread_mutex_unlock (&g->lock);
}

/* One change fewer inside (g->lock held). */
static void
out (struct sc_gate *g)
{
  if (--g->inside == 0 && g->closing)
    pthread_cond_broadcast (&g->changed);
}

void
sc_gate_leave (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  out (g);
  pthread_mutex_unlock (&g->lock);
}

uint64_t
sc_gate_park (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  out (g);
  uint64_t seals = g->seals;
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
  g->inside++;
  bool sealed_since = g->seals != parked_at;
  pthread_mutex_unlock (&g->lock);
  return sealed_since;
}

static void
wait_empty (struct sc_gate *g)
{
  while (g->inside)
    pthread_cond_wait (&g->changed, &g->lock);
}

void
sc_gate_close (struct sc_gate *g)
{
  pthread_mutex_lock (&g->lock);
  while (g->closing)
    pthread_cond_wait (&g->changed, &g->lock);
  g->closing = true;
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
  g->closing = g->sealed = false;
  pthread_cond_broadcast (&g->changed);
  pthread_mutex_unlock (&g->lock);
}
