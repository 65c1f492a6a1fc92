/* shadowcopy: where a server serves its NBD exports (nbd-listen.h). */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/nbd-listen.h"

int
sc_nbd_uri_unix_socket (const char *uri, char *path, size_t len)
{
  static const char *const prefixes[] = {
    "nbd+unix:///?socket=", "nbds+unix:///?socket=", NULL,
  };
  const char *s = NULL;
  size_t n = 0;

  for (size_t i = 0; prefixes[i] && !s; i++)
    if (strncmp (uri, prefixes[i], strlen (prefixes[i])) == 0)
      s = uri + strlen (prefixes[i]);
  if (!s)
    return -EINVAL;
  for (; *s && *s != '&'; s++) {
    char c = *s;
    if (c == '%') {
      char hex[3] = { s[1], s[1] ? s[2] : '\0', '\0' };
      if (!isxdigit ((unsigned char) hex[0]) ||
          !isxdigit ((unsigned char) hex[1]))
        return -EINVAL;
      c = (char) strtoul (hex, NULL, 16);
      if (c == '\0')
        return -EINVAL;
      s += 2;
    }
    if (n + 1 >= len)
      return -ENAMETOOLONG;
    path[n++] = c;
  }
  path[n] = '\0';
  return n && path[0] == '/' ? 0 : -EINVAL;
}

int
sc_nbd_listen_socket (const char *control, char *path, size_t len)
{
  struct shadowcopy_volume v;
  struct shadowcopy *c;
  int r;

  if (shadowcopy_connect (control, &c) < 0) {
    sc_cli_error ("%s (give the NBD socket with --nbd-socket)",
                  shadowcopy_get_error ());
    return EXIT_FAILURE;
  }
  r = shadowcopy_info (c, &v);
  if (r < 0)
    sc_cli_lib_error ();
  shadowcopy_close (c);
  if (r < 0)
    return EXIT_FAILURE;
  if (!v.listen[0]) {
    sc_cli_error ("the server on %s does not say where it serves NBD: "
                  "give --nbd-socket NBDSOCK or --nbd-uri URI", control);
    return EXIT_FAILURE;
  }
  r = sc_nbd_uri_unix_socket (v.listen, path, len);
  if (r < 0) {
    sc_cli_error ("the server on %s serves NBD at %s, not on a Unix "
                  "socket: give --nbd-uri with that address (and its TLS "
                  "key: tls-psk-file= or tls-certificates=)", control,
                  v.listen);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
