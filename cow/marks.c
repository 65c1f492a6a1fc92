/* shadowcopy: checkpoints' data-less marks (in progress). */
#include <config.h>

#include <errno.h>

#include "cow/diffarea-internal.h"

int
sc_diff_snapshot_keep_checkpoint (struct sc_diff *d, const char *name)
{
  (void) d; (void) name;
  return -ENOSYS;
}

int
sc_diff_mark_changes (struct sc_diff *d, uint64_t first, uint64_t last,
                      uint64_t *seq)
{
  (void) d; (void) first; (void) last;
  *seq = 0;
  return 0;
}

void
sc_diff_set_max_checkpoints (struct sc_diff *d, uint32_t max)
{
  (void) d; (void) max;
}
