/* shadowcopy: a server's listening address as a volume's configuration
 * names it (listen=): unix:PATH or tcp:HOST:PORT.  One parser for the
 * plugin (where it says it listens) and `shadowcopy serve` (how it tells
 * nbdkit).  It knows sockets, not NBD. */
#ifndef SHADOWCOPY_ENGINE_LISTEN_ADDRESS_H
#define SHADOWCOPY_ENGINE_LISTEN_ADDRESS_H

#include <stddef.h>

#define SC_LISTEN_HOST_MAX 255
#define SC_LISTEN_PATH_MAX 107  /* sun_path less its NUL */

struct sc_listen_address {
  enum { SC_LISTEN_UNIX, SC_LISTEN_TCP } kind;
  char path[SC_LISTEN_PATH_MAX + 1];    /* unix: absolute */
  char host[SC_LISTEN_HOST_MAX + 1];    /* tcp: a name, IPv4 or IPv6
                                           (given as [ADDR], kept bare) */
  unsigned port;                        /* tcp: 1 to 65535 */
};

/* 0 and *out, or -EINVAL with why in err ("listen=VALUE: ..."). */
int sc_listen_parse (const char *value, struct sc_listen_address *out,
                     char *err, size_t errlen);

#endif
