/* shadowcopy: verbs that live in their own files (tools/cmd-*.c), and the
 * CLI helpers they share with tools/shadowcopy.c. */
#ifndef SHADOWCOPY_TOOLS_COMMANDS_H
#define SHADOWCOPY_TOOLS_COMMANDS_H

#include <stdint.h>

/* "shadowcopy: MESSAGE" on stderr, sanitized to one line. */
void sc_cli_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
/* The same with a pointer to --help; returns the usage exit status 2. */
int sc_cli_usage_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));
uint64_t sc_cli_mono_ms (void);

/* Each returns the exit status.  `socket` is the global -c (or
 * DIFF.sock of --diff), or NULL. */
int sc_cmd_create (const char *socket, int argc, char **argv);
int sc_cmd_mount (const char *socket, int argc, char **argv);
int sc_cmd_umount (int argc, char **argv);

#endif
