/* shadowcopy: a server's listening address (listen-address.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/listen-address.h"

static int
parse_port (const char *s, unsigned *port)
{
  unsigned long n = 0;

  if (!*s || strlen (s) > 5)
    return -EINVAL;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -EINVAL;
    n = n * 10 + (unsigned long) (*p - '0');
  }
  if (n < 1 || n > 65535)
    return -EINVAL;
  *port = (unsigned) n;
  return 0;
}

int
sc_listen_parse (const char *value, struct sc_listen_address *out,
                 char *err, size_t errlen)
{
  struct sc_listen_address a = { .kind = SC_LISTEN_UNIX };

  if (strncmp (value, "unix:", 5) == 0) {
    const char *path = value + 5;
    if (path[0] != '/') {
      snprintf (err, errlen, "listen=%s: the socket must be an absolute "
                "path (unix:/run/shadowcopy/VOLUME.nbd)", value);
      return -EINVAL;
    }
    if (strlen (path) > SC_LISTEN_PATH_MAX) {
      snprintf (err, errlen, "listen=%s: a Unix socket path is at most %d "
                "bytes", value, SC_LISTEN_PATH_MAX);
      return -EINVAL;
    }
    strcpy (a.path, path);
    *out = a;
    return 0;
  }
  if (strncmp (value, "tcp:", 4) == 0) {
    const char *host = value + 4, *colon;
    size_t hlen;

    a.kind = SC_LISTEN_TCP;
    if (host[0] == '[') {
      const char *close = strchr (host, ']');
      if (!close || close[1] != ':')
        goto bad_tcp;
      host++;
      hlen = (size_t) (close - host);
      colon = close + 1;
    }
    else {
      colon = strchr (host, ':');
      if (!colon || strchr (colon + 1, ':'))
        goto bad_tcp;
      hlen = (size_t) (colon - host);
    }
    if (hlen == 0 || hlen > SC_LISTEN_HOST_MAX ||
        parse_port (colon + 1, &a.port) < 0)
      goto bad_tcp;
    memcpy (a.host, host, hlen);
    a.host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
      if (a.host[i] == '/' || a.host[i] == ' ' || a.host[i] == '[' ||
          a.host[i] == ']' || a.host[i] == '@' || a.host[i] == '?' ||
          a.host[i] == '#')
        goto bad_tcp;
    *out = a;
    return 0;
  }
  snprintf (err, errlen, "listen=%s: must be unix:PATH or tcp:HOST:PORT",
            value);
  return -EINVAL;

 bad_tcp:
  snprintf (err, errlen, "listen=%s: must be tcp:HOST:PORT (a port from 1 "
            "to 65535; an IPv6 address in brackets)", value);
  return -EINVAL;
}
