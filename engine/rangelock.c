/* shadowcopy: chunk range locks (striped by bucket of chunks; the design
 * and its proof are at the top of rangelock.h). */
#include <config.h>

#include "engine/rangelock.h"

#define STRIPE_MASK ((uint64_t) SC_RANGELOCK_STRIPES - 1)
_Static_assert ((SC_RANGELOCK_STRIPES & (SC_RANGELOCK_STRIPES - 1)) == 0 &&
                SC_RANGELOCK_STRIPES <= 64,
                "stripes: a power of two that fits a uint64_t mask");

void
sc_rangelock_init (struct sc_rangelock *rl)
{
  for (unsigned s = 0; s < SC_RANGELOCK_STRIPES; s++) {
    struct sc_rangelock_stripe *st = &rl->stripe[s];
    pthread_mutex_init (&st->lock, NULL);
    st->held = NULL;
    st->waiting.head = st->waiting.tail = NULL;
  }
}

void
sc_rangelock_destroy (struct sc_rangelock *rl)
{
  for (unsigned s = 0; s < SC_RANGELOCK_STRIPES; s++)
    pthread_mutex_destroy (&rl->stripe[s].lock);
}

/* The stripes of the buckets of [first, last]. */
static uint64_t
stripes_of (uint64_t first, uint64_t last)
{
  uint64_t b0 = first >> SC_RANGELOCK_BUCKET_SHIFT;
  uint64_t b1 = last >> SC_RANGELOCK_BUCKET_SHIFT;
  if (b1 - b0 >= STRIPE_MASK)
    return UINT64_MAX;
  uint64_t mask = 0;
  for (uint64_t b = b0; b <= b1; b++)
    mask |= UINT64_C (1) << (b & STRIPE_MASK);
  return mask;
}

static bool
conflict (const struct sc_range *a, const struct sc_range *b)
{
  return a->first <= b->last && b->first <= a->last &&
         (a->exclusive || b->exclusive);
}

/* ---- the lists of one stripe (its mutex held) ------------------------ */

static void
held_add (struct sc_rangelock_stripe *st, unsigned s, struct sc_range *r)
{
  r->link[s].prev = NULL;
  r->link[s].next = st->held;
  if (st->held)
    st->held->link[s].prev = r;
  st->held = r;
}

static void
held_remove (struct sc_rangelock_stripe *st, unsigned s, struct sc_range *r)
{
  struct sc_range *prev = r->link[s].prev, *next = r->link[s].next;
  if (prev)
    prev->link[s].next = next;
  else
    st->held = next;
  if (next)
    next->link[s].prev = prev;
}

static void
wait_append (struct sc_rangelock_stripe *st, unsigned s, struct sc_range *r)
{
  r->link[s].next = NULL;
  r->link[s].prev = st->waiting.tail;
  if (st->waiting.tail)
    st->waiting.tail->link[s].next = r;
  else
    st->waiting.head = r;
  st->waiting.tail = r;
}

static void
wait_remove (struct sc_rangelock_stripe *st, unsigned s, struct sc_range *r)
{
  struct sc_range *prev = r->link[s].prev, *next = r->link[s].next;
  if (prev)
    prev->link[s].next = next;
  else
    st->waiting.head = next;
  if (next)
    next->link[s].prev = prev;
  else
    st->waiting.tail = prev;
}

/* Whether `r` must wait in stripe s: a held range conflicts, or a range
 * queued before `stop` (NULL: the whole queue) does. */
static bool
blocked (const struct sc_rangelock_stripe *st, unsigned s,
         const struct sc_range *r, const struct sc_range *stop)
{
  for (const struct sc_range *h = st->held; h; h = h->link[s].next)
    if (conflict (h, r))
      return true;
  for (const struct sc_range *w = st->waiting.head; w != stop;
       w = w->link[s].next)
    if (conflict (w, r))
      return true;
  return false;
}

/* ---- lock and unlock -------------------------------------------------- */

void
sc_rangelock_lock (struct sc_rangelock *rl, struct sc_range *r,
                   uint64_t first, uint64_t last, bool exclusive)
{
  r->first = first;
  r->last = last;
  r->exclusive = exclusive;
  r->cond_ready = false;
  r->stripes = 0;
  uint64_t todo = stripes_of (first, last);
  while (todo) {
    unsigned s = (unsigned) __builtin_ctzll (todo);
    struct sc_rangelock_stripe *st = &rl->stripe[s];
    pthread_mutex_lock (&st->lock);
    if (!blocked (st, s, r, NULL))
      held_add (st, s, r);
    else {
      if (!r->cond_ready) {
        pthread_cond_init (&r->wake, NULL);
        r->cond_ready = true;
      }
      r->granted = false;
      wait_append (st, s, r);
      while (!r->granted)               /* grant() moved it to held */
        pthread_cond_wait (&r->wake, &st->lock);
    }
    pthread_mutex_unlock (&st->lock);
    r->stripes |= UINT64_C (1) << s;
    todo &= todo - 1;
  }
  if (r->cond_ready)
    pthread_cond_destroy (&r->wake);
}

/* After `gone` left stripe s: let in the waiters that it blocked and that
 * nothing blocks now.  A waiter that does not overlap `gone` was blocked
 * by something else, which still blocks it (a waiter let in here blocks
 * as a holder whatever it blocked as a waiter). */
static void
grant (struct sc_rangelock_stripe *st, unsigned s,
       const struct sc_range *gone)
{
  struct sc_range *w = st->waiting.head;
  while (w) {
    struct sc_range *next = w->link[s].next;
    if (w->first <= gone->last && gone->first <= w->last &&
        !blocked (st, s, w, w)) {
      wait_remove (st, s, w);
      held_add (st, s, w);
      w->granted = true;
      pthread_cond_signal (&w->wake);
    }
    w = next;
  }
}

void
sc_rangelock_unlock (struct sc_rangelock *rl, struct sc_range *r)
{
  uint64_t todo = r->stripes;
  while (todo) {
    unsigned s = (unsigned) __builtin_ctzll (todo);
    struct sc_rangelock_stripe *st = &rl->stripe[s];
    pthread_mutex_lock (&st->lock);
    held_remove (st, s, r);
    if (st->waiting.head)
      grant (st, s, r);
    pthread_mutex_unlock (&st->lock);
    todo &= todo - 1;
  }
  r->stripes = 0;
}
