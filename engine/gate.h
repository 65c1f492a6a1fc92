/* shadowcopy: a volume's write gate.
 *
 * Every live change passes the gate for its whole life (sc_gate_enter,
 * sc_gate_leave); a write hold closes it.  Closing has two steps:
 * sc_gate_close stops new changes at the gate (from then on, so a stream
 * of writes cannot starve a hold) and waits until no change is inside;
 * sc_gate_seal waits for that once more and seals the gate, which then
 * stays sealed until sc_gate_open.  Between the two the hold can drain
 * work that changes inside may still wait for (the write-back queue).
 *
 * A change that would wait inside for its copies to become durable (a
 * group commit: an fdatasync, often milliseconds, longer on a busy
 * machine) parks instead (sc_gate_park), so that a hold does not wait for
 * the disk.  It has recorded its copies and not yet written the origin,
 * and it keeps its chunk range.  Coming back (sc_gate_unpark) waits while
 * the gate is sealed and says whether it was sealed meanwhile: a snapshot
 * may then have been created, or a revert started, that the change's
 * decisions did not see, so it decides again (copies for the new
 * snapshot, its ticket checked again) before it writes.
 *
 * One hold at a time: a second sc_gate_close waits for sc_gate_open.  The
 * gate's mutex is a leaf: nothing else is locked while it is held.  Any
 * thread may open the gate (unlike a pthread rwlock).
 *
 * Every write passes the gate twice, so entering and leaving an open gate
 * take no mutex: `inside` is counted with atomic operations and `closing`
 * read without the lock; the mutex is for the waits.  Why no change slips
 * past a closing hold: a change increments `inside`, then reads
 * `closing`; a hold sets `closing`, then reads `inside` (all sequentially
 * consistent).  Whichever comes second sees the other's write, so either
 * the change sees `closing` and steps back out to wait, or the hold sees
 * the change inside and waits for it.  A hold that waits for the gate to
 * empty sets `draining` before it reads `inside`; the last change out
 * that sees `draining` wakes it under the mutex, so that the wake-up
 * cannot fall between the hold's test of `inside` and its wait, and a
 * change that steps back from a sealed gate wakes no one.  Parking leaves
 * under the mutex, in one step with its reading of `seals`: a hold that
 * seals after the change is out must count as sealed since. */
#ifndef SHADOWCOPY_ENGINE_GATE_H
#define SHADOWCOPY_ENGINE_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sc_gate {
  pthread_mutex_t lock;
  pthread_cond_t changed;       /* inside reached 0, the gate opened */
  unsigned inside;              /* changes inside, not parked (atomic) */
  bool closing;                 /* a hold stops new changes (set under
                                   the lock, also read without it) */
  bool sealed;                  /* ... and has the gate */
  bool draining;                /* a hold waits for inside to reach 0
                                   (set under the lock, also read
                                   without it) */
  uint64_t seals;               /* times sealed, ever */
};

void sc_gate_init (struct sc_gate *g);
void sc_gate_destroy (struct sc_gate *g);

void sc_gate_enter (struct sc_gate *g);
void sc_gate_leave (struct sc_gate *g);

/* Step aside while waiting for the disk; the return value goes to
 * sc_gate_unpark, which returns true if the gate was sealed since. */
uint64_t sc_gate_park (struct sc_gate *g);
bool sc_gate_unpark (struct sc_gate *g, uint64_t parked_at);

void sc_gate_close (struct sc_gate *g);
void sc_gate_seal (struct sc_gate *g);
void sc_gate_open (struct sc_gate *g);

#endif
