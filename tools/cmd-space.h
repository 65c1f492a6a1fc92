/* shadowcopy: the CLI's space verbs (stats, resize) and the space parts
 * of create, list and info.  Each function works on an open client and
 * prints its result; errors go to err (one line) with a negative errno. */
#ifndef SHADOWCOPY_TOOLS_CMD_SPACE_H
#define SHADOWCOPY_TOOLS_CMD_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/shadowcopy.h"


int space_stats (struct shadowcopy *c, bool json, char *err, size_t errlen);

/* resize --max: prints the new limit and what was dropped. */
int space_resize (struct shadowcopy *c, const char *max, bool force,
                  char *err, size_t errlen);

/* After list's table: the kept history of policy drops, if any. */
void space_print_drops (struct shadowcopy *c);

/* After info's lines: the space lines. */
void space_print_info (const struct shadowcopy_volume *v);
/* Inside info's JSON object: the space members. */
struct sc_json;
void space_info_json (const struct shadowcopy_volume *v, struct sc_json *j);

/* The page cache of the copy map and checksums (index-cache=), from a
 * running server's STATS: `have` is false offline (STATS needs a
 * server) or from a server that does not tell. */
struct space_cache {
  bool have;
  uint64_t budget, pages, hits, misses, writebacks, unbacked;
};
/* 0, or a negative errno with err set (not -ENOTCONN: offline is
 * `have` false). */
int space_cache_get (struct shadowcopy *c, struct space_cache *out,
                     char *err, size_t errlen);
/* info's line, and its JSON member "index_cache"; nothing if !have. */
void space_cache_print (const struct space_cache *k);
void space_cache_json (const struct space_cache *k, struct sc_json *j);

#endif
