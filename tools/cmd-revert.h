/* shadowcopy: a revert's status as the CLI shows it (revert --status
 * and info). */
#ifndef SHADOWCOPY_TOOLS_CMD_REVERT_H
#define SHADOWCOPY_TOOLS_CMD_REVERT_H


struct sc_json;
/* The status lines ("revert: running", "target: ...", ...). */
void sc_revert_print_text (const struct shadowcopy_revert *r);
/* The status as one JSON object (state, target, saved, bytes_done,
 * bytes_todo, rate, eta_s, errors, target_valid, error, ended). */
void sc_revert_json (const struct shadowcopy_revert *r, struct sc_json *j);

#endif
