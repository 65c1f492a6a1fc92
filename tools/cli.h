/* shadowcopy: what every part of the CLI shares.
 *
 * Its conventions (tools/shadowcopy.c states them for the user): exit
 * status 0, 1 or SC_EXIT_USAGE; every error one line on stderr starting
 * "shadowcopy: ", sanitized so that a hostile name or server cannot
 * break it.  The volume the global options name, the one monotonic
 * clock of the CLI's timeouts, and where the CLI keeps its state.
 *
 * The bottom layer of tools/ above libshadowcopy: nothing here calls a
 * verb.
 */
#ifndef SHADOWCOPY_TOOLS_CLI_H
#define SHADOWCOPY_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/shadowcopy.h"

#define SC_EXIT_USAGE 2

/* "shadowcopy: MESSAGE" on stderr, sanitized to one line. */
void sc_cli_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
/* The same with a pointer to --help; returns SC_EXIT_USAGE. */
int sc_cli_usage_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

/* Replace what cannot go on one line of a terminal (control characters)
 * with '?', in place. */
void sc_cli_sanitize (char *s);

/* A decimal number, nothing else: 0, or -EINVAL. */
int sc_cli_parse_u64 (const char *s, uint64_t *out);

/* Whether s is a checkpoint (keeps no data). */
bool sc_cli_is_checkpoint (const struct shadowcopy_snapshot *s);

/* Whether NAME is a valid snapshot name; if not, says so. */
bool sc_cli_name_ok (const char *name);

/* Whether argv[*i] ends a verb's options: "--" (*i then moves past it)
 * or an operand, which does not start with '-'.  For
 *   for (i = 0; i < argc && !sc_cli_options_end (argv, &i); i++) */
bool sc_cli_options_end (char **argv, int *i);

/* "--json" or nothing: the only option of list, info and stats.  0, or
 * SC_EXIT_USAGE (said). */
int sc_cli_json_flag (const char *verb, int argc, char **argv, bool *json);

/* CLOCK_MONOTONIC in milliseconds: the clock of every timeout, deadline
 * and freeze window of the CLI. */
uint64_t sc_cli_mono_ms (void);

/* The volume named by the global options; either may be NULL. */
struct sc_cli_target {
  const char *socket;           /* -c: a server, nothing else */
  const char *diff;             /* --diff: DIFF.sock, or DIFF offline */
  /* -c given again: the other volumes of a set, in order (only for
   * verbs that take a set: create, backup --create). */
  const char *const *more_sockets;
  size_t nmore_sockets;
};

/* Open the target, offline only as `how` (SHADOWCOPY_OPEN_*) allows:
 * EXIT_SUCCESS, or EXIT_FAILURE with the error said. */
int sc_cli_open_target (const struct sc_cli_target *t, int how,
                        struct shadowcopy **h);
/* Close h: `status`, or EXIT_FAILURE (said) when closing failed. */
int sc_cli_close_target (struct shadowcopy *h, int status);
/* The library's last error, said ("shadowcopy: MESSAGE"). */
void sc_cli_lib_error (void);
/* The target's control socket (-c, or DIFF.sock in buf), for verbs that
 * need a server; NULL when the global options name none. */
const char *sc_cli_target_socket (const struct sc_cli_target *t, char *buf,
                                  size_t len);

/* Where the CLI keeps its state: $SHADOWCOPY_STATE_DIR, else
 * $XDG_STATE_HOME/shadowcopy, else /var/lib/shadowcopy for root and
 * ~/.local/state/shadowcopy for others.  Created (mode 0700) when
 * `create` is set.  Returns a static buffer, or NULL with err set. */
const char *sc_cli_state_dir (bool create, char *err, size_t errlen);

#endif
