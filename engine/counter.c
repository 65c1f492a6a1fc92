/* shadowcopy: the shards of statistics counters (engine/counter.h). */
#include <config.h>

#include "engine/counter.h"

static unsigned next_shard;
static _Thread_local unsigned my_shard; /* 0: not given yet, else shard + 1 */

unsigned
sc_counter_shard (void)
{
  if (!my_shard)
    my_shard = __atomic_fetch_add (&next_shard, 1, __ATOMIC_RELAXED)
               % SC_COUNTER_SHARDS + 1;
  return my_shard - 1;
}
