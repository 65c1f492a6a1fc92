/* nbdkit-shadowcopy-plugin: where this server listens, as an NBD URI,
 * for the INFO line `listen` (engine/control.h takes it as an opaque
 * string).  From the server key listen= (with tls=) when given, else
 * from nbdkit's own command line.  No nbdkit calls: unit-tested alone. */
#ifndef SHADOWCOPY_PLUGIN_LISTEN_H
#define SHADOWCOPY_PLUGIN_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/listen-address.h"

/* The URI of an address: nbd+unix:///?socket=PATH or nbd://HOST:PORT
 * (nbds with TLS).  Characters outside [A-Za-z0-9-._~/] of the path or
 * host are percent-encoded.  0, or -ENAMETOOLONG. */
int plugin_listen_uri (const struct sc_listen_address *a, bool tls,
                       char *uri, size_t len);

/* From nbdkit's arguments (argv[0] is nbdkit; its options may come
 * before or after the plugin's name and keys, as getopt permutes them,
 * until "--") and its environment (envp, NULL-terminated, or NULL):
 * -U/--unix PATH, -p/--port PORT, -i/--ipaddr/--ip-addr ADDR,
 * --tls=on|require|off.  1 and uri, or 0 when it cannot be told for
 * sure: -U -, --vsock, -s/--single/--stdin, --run with no socket named,
 * -4/-6 without -i, an option given twice, socket activation
 * (LISTEN_FDS or LISTEN_PID in envp), POSIXLY_CORRECT with options after
 * the plugin, or any option or argument it does not know as nbdkit
 * 1.32's (an abbreviation such as --uni included). */
int plugin_listen_from_argv (int argc, char *const *argv, char *const *envp,
                             char *uri, size_t len);

/* The same from /proc/self/cmdline and /proc/self/environ. */
int plugin_listen_from_proc (char *uri, size_t len);

#endif
