/* shadowcopy: the engine's clock.
 *
 * Deadlines, hold times and rates are measured on CLOCK_MONOTONIC, which
 * never jumps with the wall clock; creation times that are stored or
 * shown are CLOCK_REALTIME and are cow/'s business.  Safe from any thread.
 */
#ifndef SHADOWCOPY_ENGINE_CLOCK_H
#define SHADOWCOPY_ENGINE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an arbitrary point (boot, on Linux). */
static inline uint64_t
sc_mono_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

#endif
