/* shadowcopy: chunk range locks (a list of held ranges). */
#include <config.h>

#include "engine/rangelock.h"

void
sc_rangelock_init (struct sc_rangelock *rl)
{
  pthread_mutex_init (&rl->lock, NULL);
  pthread_cond_init (&rl->released, NULL);
  rl->held = NULL;
}

void
sc_rangelock_destroy (struct sc_rangelock *rl)
{
  pthread_mutex_destroy (&rl->lock);
  pthread_cond_destroy (&rl->released);
}

static bool
conflicts (const struct sc_rangelock *rl, const struct sc_range *r)
{
  for (const struct sc_range *h = rl->held; h; h = h->next)
    if (h->first <= r->last && r->first <= h->last &&
        (h->exclusive || r->exclusive))
      return true;
  return false;
}

void
sc_rangelock_lock (struct sc_rangelock *rl, struct sc_range *r,
                   uint64_t first, uint64_t last, bool exclusive)
{
  r->first = first;
  r->last = last;
  r->exclusive = exclusive;
  pthread_mutex_lock (&rl->lock);
  while (conflicts (rl, r))
    pthread_cond_wait (&rl->released, &rl->lock);
  r->next = rl->held;
  rl->held = r;
  pthread_mutex_unlock (&rl->lock);
}

void
sc_rangelock_unlock (struct sc_rangelock *rl, struct sc_range *r)
{
  pthread_mutex_lock (&rl->lock);
  for (struct sc_range **p = &rl->held; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      break;
    }
  pthread_cond_broadcast (&rl->released);
  pthread_mutex_unlock (&rl->lock);
}
