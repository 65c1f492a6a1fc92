/* shadowcopy: where a server serves its NBD exports, asked of the server
 * itself (INFO's listen line), for mount, backup, verify and create
 * --auto-recover when --nbd-socket is not given. */
#ifndef SHADOWCOPY_TOOLS_NBD_LISTEN_H
#define SHADOWCOPY_TOOLS_NBD_LISTEN_H

#include <stddef.h>

/* The Unix socket of an NBD URI nbd+unix:///?socket=PATH (or nbds+unix),
 * percent-decoded: 0, or -EINVAL when the URI names no Unix socket
 * (a TCP address) or is malformed, -ENAMETOOLONG. */
int sc_nbd_uri_unix_socket (const char *uri, char *path, size_t len);

/* The NBD Unix socket of the server on control socket `control`:
 * EXIT_SUCCESS and path, or EXIT_FAILURE with the error said (no
 * server, a server that cannot tell, one that listens on TCP). */
int sc_nbd_listen_socket (const char *control, char *path, size_t len);

#endif
