/* shadowcopy: the CLI's space verbs (stats, resize) and the space parts
 * of create, list and info.  Each function works on an open client and
 * prints its result; errors go to err (one line) with a negative errno. */
#ifndef SHADOWCOPY_TOOLS_CMD_SPACE_H
#define SHADOWCOPY_TOOLS_CMD_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/client.h"

int space_stats (struct sc_client *c, bool json, char *err, size_t errlen);

/* resize --max: prints the new limit and what was dropped. */
int space_resize (struct sc_client *c, const char *max, bool force,
                  char *err, size_t errlen);

/* After list's table: the kept history of policy drops, if any. */
void space_print_drops (struct sc_client *c);

/* After info's lines: the space lines. */
void space_print_info (const struct sc_client_volume *v);
/* Inside info's JSON object: the space members. */
struct sc_json;
void space_info_json (const struct sc_client_volume *v, struct sc_json *j);

#endif
