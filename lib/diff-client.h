/* shadowcopy: the DIFF client: changed-block tracking as the CLI reads it.
 *
 * The server answers DIFF in pages (engine/control-diff.c): the extents
 * from a chunk on, and where the next page starts.  sc_diff_fetch asks
 * page after page until the answer says "end", checks that each page is
 * sorted, disjoint, within the volume and names the same FROM and TO (ids
 * and UUIDs: a name deleted and made again between two pages would mix
 * two diffs), and merges the extents that touch across pages.
 *
 * Used by `diff` (cmd-diff.c) and by `backup` (cmd-backup.c), which also
 * learns from the header who FROM and TO are (their UUIDs) and the
 * volume's UUID, chunk size and size.
 */
#ifndef SHADOWCOPY_LIB_DIFF_CLIENT_H
#define SHADOWCOPY_LIB_DIFF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"
#include "engine/control-protocol.h"
#include "lib/client.h"

/* One side of the diff, as the header of a page names it. */
struct sc_diff_side {
  char name[SC_NAME_MAX + 1];
  char type[16];                /* snapshot, checkpoint or live */
  bool has_id;                  /* not for live */
  uint64_t id, epoch;
  char uuid[SC_CTL_UUID_LEN];
};

struct sc_diff_extent { uint64_t offset, length; };

struct sc_diff {
  bool have_header;             /* of the current page */
  bool first_done;              /* the first page's header is kept */
  char volume[SC_CTL_UUID_LEN];
  uint64_t chunk_size, volume_size;
  struct sc_diff_side from, to;
  bool end;
  uint64_t next;
  struct sc_diff_extent *v;     /* merged, sorted, disjoint */
  size_t n, cap;
  uint64_t total;
  int failed;                   /* why a line was refused: -ESTALE (a
                                   side changed between pages), -ENOMEM */
};

/* Every page of DIFF FROM [TO] (to: NULL for live), merged into d, which
 * starts zeroed.  0, or a negative errno with err said (-ESTALE: FROM or
 * TO changed between pages).  Free d->v with free(). */
int sc_diff_fetch (struct sc_client *c, const char *from, const char *to,
                   struct sc_diff *d, char *err, size_t errlen);

#endif
