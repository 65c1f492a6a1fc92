/* shadowcopy mount: the programs it runs, their output captured. */
#ifndef SHADOWCOPY_TOOLS_MOUNT_RUN_H
#define SHADOWCOPY_TOOLS_MOUNT_RUN_H

#include <stddef.h>

/* Run argv (found on PATH): its stdout into out (the first line kept),
 * its stderr into err; either may be NULL.  0 if it exited 0, else a
 * negative errno (-ECHILD: it failed). */
int sc_mount_run (char *const argv[], char *out, size_t outlen, char *err,
                  size_t errlen);

/* sc_mount_run, saying on stderr what failed. */
int sc_mount_run_or_say (char *const argv[], char *out, size_t outlen);

#endif
