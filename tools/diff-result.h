/* shadowcopy: a DIFF as the CLI keeps it: shadowcopy_diff's extents in
 * one sorted, disjoint array, with who FROM and TO are.  Used by `diff`
 * (cmd-diff.c), `backup` (backup-job.c, backup-auto.c) and `verify`
 * (cmd-verify.c). */
#ifndef SHADOWCOPY_TOOLS_DIFF_RESULT_H
#define SHADOWCOPY_TOOLS_DIFF_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/shadowcopy.h"

/* One side of the diff: the library's, and whether it has an id (a
 * snapshot or checkpoint; not the live volume). */
struct sc_diff_side {
  char name[SHADOWCOPY_NAME_MAX + 1];
  char type[16];
  bool has_id;
  uint64_t id, epoch;
  char uuid[SHADOWCOPY_UUID_LEN];
};

struct sc_diff_extent { uint64_t offset, length; };

struct sc_diff {
  char volume[SHADOWCOPY_UUID_LEN];
  uint64_t chunk_size, volume_size;
  struct sc_diff_side from, to;
  struct sc_diff_extent *v;     /* sorted, disjoint */
  size_t n, cap;
  uint64_t total;
};

/* DIFF FROM [TO] (to: NULL for live) into d (filled from scratch).  0, or a negative errno with the library's message in err
 * (-ESTALE: FROM or TO changed between pages).  Free d->v with free(). */
int sc_cli_diff_fetch (struct shadowcopy *h, const char *from, const char *to,
                   struct sc_diff *d, char *err, size_t errlen);

#endif
