/* nbdkit-shadowcopy-plugin: who may open which export (access.c).
 *
 *   tls-for=write|all|none   which exports need TLS, when nbdkit runs
 *                            with --tls=on (plaintext clients allowed)
 *   allow-uid=UID[,UID...]   the uids Unix-socket clients may have
 *
 * Parsed once, before any thread starts; read-only afterwards.
 */
#ifndef SHADOWCOPY_PLUGIN_ACCESS_H
#define SHADOWCOPY_PLUGIN_ACCESS_H

#include <stdbool.h>

/* nbdkit's TLS mode, from its own command line (--tls). */
enum access_tls_mode {
  ACCESS_TLS_OFF,               /* no --tls, or --tls=off */
  ACCESS_TLS_ON,                /* --tls=on: TLS offered, plaintext allowed */
  ACCESS_TLS_REQUIRE,           /* --tls=require: every client uses TLS */
  ACCESS_TLS_UNKNOWN,           /* /proc/self/cmdline could not be read,
                                   or --tls has a value nbdkit does not
                                   take */
};

/* The keys: 0, or -1 after nbdkit_error. */
int access_config_tls_for (const char *value);
int access_config_allow_uid (const char *value);
/* From .config_complete: the default of tls-for, and its check against
 * nbdkit's --tls.  0, or -1 after nbdkit_error. */
int access_config_complete (void);
void access_config_free (void);

/* nbdkit's TLS mode as its arguments (argv, argc) set it: --tls=X or
 * --tls X, the last one winning. */
enum access_tls_mode access_tls_mode_of (char *const *argv, int argc);
/* Does nbdkit's command line name TLS keys (--tls-certificates,
 * --tls-psk)? */
bool access_tls_keys_given (char *const *argv, int argc);

/* .preconnect: a Unix-socket client whose uid allow-uid does not list
 * is refused.  0, or -1 after nbdkit_error. */
int access_preconnect (void);

/* May a client see (list_exports) an export?  writable: the live volume
 * or a writable clone. */
bool access_may_list (bool writable, bool is_tls);
/* .open of export name: 0, or -1 after nbdkit_error naming the export
 * and why. */
int access_check_open (const char *name, bool writable, bool is_tls);
/* A read-only snapshot opened without TLS under tls-for=write is served
 * read-only for everything: no trim even with discard-snapshots=on (a
 * trim changes what the snapshot keeps). */
bool access_plaintext_readonly (bool is_tls);

#define access_config_help \
  "tls-for=write|all|none  With --tls=on: exports that need TLS (default\n" \
  "                    write: the live volume and clones).\n" \
  "allow-uid=UID[,UID...]  Unix-socket clients allowed, by uid."

#endif
