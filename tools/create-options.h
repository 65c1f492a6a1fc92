/* shadowcopy: the options of a snapshot creation, shared by `create` and
 * `backup --create` (one parser, so both take the same options with the
 * same meaning and messages).
 *
 *   -c SOCKET (repeated: a set), --writer CMD, --writers-dir DIR,
 *   --no-writers, --freeze-timeout S, --hold-timeout S, --retry N,
 *   --retry-delay S, --wait, --auto-release, --delete-oldest, --run CMD
 *
 * The verb calls sc_create_option on each of its arguments (it handles
 * the ones it does not know), then sc_create_options_check, then
 * sc_create_options_start: the library's snapshot set made from them
 * (lib/shadowcopy.h: its notices printed as the CLI's messages, the
 * writers collected, the set id made) and the signals caught.
 * sc_create_options_free undoes all of it, closing the connections (and
 * so releasing auto-release snapshots).
 */
#ifndef SHADOWCOPY_TOOLS_CREATE_OPTIONS_H
#define SHADOWCOPY_TOOLS_CREATE_OPTIONS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"
#include "lib/shadowcopy.h"

struct sc_create_options {
  const char *verb;             /* "create", "backup": in messages */
  /* What the options ask for. */
  const char *vols[SHADOWCOPY_SET_VOLUMES_MAX]; /* control sockets */
  size_t nvols;
  char name[SC_NAME_MAX + 1];   /* given (have_name) */
  bool have_name;
  const char *name_prefix;      /* of the default name (the UTC time) */
  uint64_t freeze_ms, hold_ms, retries, retry_delay_ms;
  bool wait, auto_release, delete_oldest;
  char **writer_cmds;           /* each --writer, in order */
  size_t nwriter_cmds;
  const char *writers_dir;
  bool no_writers;
  const char *run;              /* --run COMMAND */
  /* The set, from sc_create_options_start. */
  struct shadowcopy_set *set;
};

/* Set by SIGINT, SIGTERM and SIGHUP once caught (sc_create_on_signal):
 * the CLI's own waits end on it. */
extern volatile sig_atomic_t sc_create_interrupted;

/* The CLI's handler of those signals: sets sc_create_interrupted and
 * tells the library (shadowcopy_interrupt). */
void sc_create_on_signal (int sig);

/* The defaults (freeze window 60 s, hold 10 s, retry delay 5 s), with
 * room for the writers of argc arguments.  EXIT_SUCCESS, or
 * EXIT_FAILURE (said). */
int sc_create_options_init (struct sc_create_options *o, const char *verb,
                            int argc);

/* A volume named by the global options (-c, or --diff's socket): the
 * set's first.  Usage errors as sc_create_option. */
int sc_create_options_volume (struct sc_create_options *o,
                              const char *socket);

/* argv[*i], if it is one of the options above: EXIT_SUCCESS with *i on
 * its value (if it takes one), or SC_EXIT_USAGE (said).  -1 when it is
 * not one of them: the verb's to handle. */
int sc_create_option (struct sc_create_options *o, int argc, char **argv,
                      int *i);

/* The checks across options, once all are in: EXIT_SUCCESS, or
 * SC_EXIT_USAGE (said). */
int sc_create_options_check (const struct sc_create_options *o);

/* The set made (its notices printed as "shadowcopy: MESSAGE"), the
 * writers collected, SIGINT, SIGTERM and SIGHUP caught.  EXIT_SUCCESS,
 * or EXIT_FAILURE (said). */
int sc_create_options_start (struct sc_create_options *o);

/* Take the set, the writers' results recorded (`shadowcopy writers`).
 * EXIT_SUCCESS, or EXIT_FAILURE (each failure said, as it happened). */
int sc_create_options_take (struct sc_create_options *o);

/* The writers' results recorded; a failure is a warning. */
void sc_create_options_save (const struct sc_create_options *o);

/* SIGINT, SIGTERM and SIGHUP back to their default: they end the CLI. */
void sc_create_signals_default (void);

/* The connections closed, everything freed. */
void sc_create_options_free (struct sc_create_options *o);

#endif
