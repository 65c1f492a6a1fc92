/* shadowcopy: the control server, the requester's door into a running
 * volume.  It listens on a Unix socket (mode 0600) and answers the
 * requests of engine/control-protocol.h, one thread per connection. */
#ifndef SHADOWCOPY_ENGINE_CONTROL_H
#define SHADOWCOPY_ENGINE_CONTROL_H

#include <stddef.h>

struct sc_volume;
struct sc_control;

/* Bind and listen on `path` (no threads yet: call before fork).  A stale
 * socket left by a dead server is replaced; a live one is -EADDRINUSE. */
int sc_control_bind (const char *path, struct sc_control **out,
                     char *err, size_t errlen);

/* Where the server listens for data, an opaque string (the plugin's NBD
 * URI) that INFO reports as its `listen` line; NULL: no line.  Call
 * before sc_control_start.  0 or -ENOMEM. */
int sc_control_set_listen (struct sc_control *c, const char *listen);

/* Start serving requests for `v` in background threads (after fork). */
int sc_control_start (struct sc_control *c, struct sc_volume *v);

/* Stop serving, close the socket and unlink its path. */
void sc_control_stop (struct sc_control *c);

/* Serve one connection on `fd` (a socket, or one end of a socketpair)
 * in the calling thread, as a connection thread of the server does:
 * read requests from `fd` and answer them on it until the peer closes
 * it, idles out or goes away; then end the session as at any
 * disconnection.  The caller still owns `fd`.  The offline CLI serves
 * itself this way on a volume of sc_volume_open_offline, with
 * SC_CONTROL_IN_PROCESS: its peer is its own process, which may take as
 * long as it likes between requests or to read a reply (its output may
 * be a slow pipe), so there are no idle or send timeouts. */
#define SC_CONTROL_IN_PROCESS 0x1
void sc_control_serve (struct sc_volume *v, int fd, unsigned flags);

/* Answer one request line on behalf of a client: writes the reply lines
 * to `fd`.  A session of that one request.  Exposed for tests and
 * fuzzing. */
int sc_control_handle_line (struct sc_volume *v, char *line, int fd);

#endif
