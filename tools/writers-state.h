/* shadowcopy: what the CLI keeps of the writers' results.
 *
 * STATE/writers (STATE is sc_cli_state_dir) holds the last phase each
 * writer ever ran, its result, when, and its output: `shadowcopy
 * writers` shows it.  The results themselves are the library's
 * (shadowcopy_set_writer_results); this is only where the CLI keeps
 * them between runs.
 */
#ifndef SHADOWCOPY_TOOLS_WRITERS_STATE_H
#define SHADOWCOPY_TOOLS_WRITERS_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/shadowcopy.h"

/* Record each writer's last result of set s in STATE/writers (merged
 * with what is there).  0, or a negative errno with err set. */
int sc_writers_save (const struct shadowcopy_set *s, char *err,
                     size_t errlen);

/* Print the writers of s (`shadowcopy writers`, or --json) with what
 * STATE/writers recorded of each. */
int sc_writers_print (const struct shadowcopy_set *s, bool json);

#endif
