/* nbdkit-shadowcopy-plugin: where this server listens (listen.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkit-plugin/listen.h"

static int
append_encoded (char *out, size_t len, size_t *pos, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";

  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || strchr ("-._~/", c);
    if (*pos + (plain ? 1 : 3) >= len)
      return -ENAMETOOLONG;
    if (plain)
      out[(*pos)++] = (char) c;
    else {
      out[(*pos)++] = '%';
      out[(*pos)++] = hex[c >> 4];
      out[(*pos)++] = hex[c & 15];
    }
  }
  out[*pos] = '\0';
  return 0;
}

int
plugin_listen_uri (const struct sc_listen_address *a, bool tls, char *uri,
                   size_t len)
{
  const char *s = tls ? "s" : "";
  size_t pos;
  int n;

  if (a->kind == SC_LISTEN_UNIX) {
    n = snprintf (uri, len, "nbd%s+unix:///?socket=", s);
    if (n < 0 || (size_t) n >= len)
      return -ENAMETOOLONG;
    pos = (size_t) n;
    return append_encoded (uri, len, &pos, a->path);
  }
  bool v6 = strchr (a->host, ':') != NULL;
  n = snprintf (uri, len, "nbd%s://%s", s, v6 ? "[" : "");
  if (n < 0 || (size_t) n >= len)
    return -ENAMETOOLONG;
  pos = (size_t) n;
  if (v6) {                     /* ':' kept: the brackets delimit it */
    n = snprintf (uri + pos, len - pos, "%s]", a->host);
    if (n < 0 || (size_t) n >= len - pos)
      return -ENAMETOOLONG;
    pos += (size_t) n;
  }
  else if (append_encoded (uri, len, &pos, a->host) < 0)
    return -ENAMETOOLONG;
  n = snprintf (uri + pos, len - pos, ":%u", a->port);
  return n < 0 || (size_t) n >= len - pos ? -ENAMETOOLONG : 0;
}

/* nbdkit's options (nbdkit 1.32) that take an argument. */
static bool
short_takes_arg (char c)
{
  return c && strchr ("DegiPptUu", c);
}

static const char *const long_with_arg[] = {
  "debug", "exportname", "filter", "group", "ipaddr", "log",
  "mask-handshake", "pidfile", "port", "run", "selinux-label", "threads",
  "tls", "tls-certificates", "tls-psk", "unix", "user", NULL,
};

static bool
long_takes_arg (const char *name, size_t n)
{
  for (size_t i = 0; long_with_arg[i]; i++)
    if (strlen (long_with_arg[i]) == n &&
        strncmp (long_with_arg[i], name, n) == 0)
      return true;
  return false;
}

int
plugin_listen_from_argv (int argc, char *const *argv, char *uri, size_t len)
{
  const char *unix_path = NULL, *port = NULL, *ipaddr = NULL;
  bool tls = false, vsock = false, run = false;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *name, *val = NULL;
    char opt;

    if (strcmp (a, "--") == 0 || a[0] != '-' || a[1] == '\0')
      break;                    /* the plugin's name: nbdkit's options end */
    if (a[1] == '-') {
      name = a + 2;
      const char *eq = strchr (name, '=');
      size_t n = eq ? (size_t) (eq - name) : strlen (name);
      if (strncmp (name, "vsock", n) == 0 && n == 5)
        vsock = true;
      if (!long_takes_arg (name, n))
        continue;
      if (eq)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return 0;
      opt = n == 4 && strncmp (name, "unix", 4) == 0 ? 'U'
          : n == 4 && strncmp (name, "port", 4) == 0 ? 'p'
          : n == 6 && strncmp (name, "ipaddr", 6) == 0 ? 'i'
          : n == 3 && strncmp (name, "tls", 3) == 0 ? 'T'
          : n == 3 && strncmp (name, "run", 3) == 0 ? 'R' : 0;
    }
    else {
      /* A cluster such as -fv or -fU PATH: flags, then perhaps one option
       * with its argument, attached or next. */
      const char *p = a + 1;
      while (*p && !short_takes_arg (*p))
        p++;
      if (!*p)
        continue;
      opt = *p;
      if (p[1])
        val = p + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return 0;
    }
    switch (opt) {
    case 'U': unix_path = val; break;
    case 'p': port = val; break;
    case 'i': ipaddr = val; break;
    case 'T': tls = strcmp (val, "on") == 0 || strcmp (val, "require") == 0;
      break;
    case 'R': run = true; break;
    default: break;
    }
  }

  struct sc_listen_address addr = { .kind = SC_LISTEN_UNIX };
  if (vsock)
    return 0;
  if (unix_path) {
    if (unix_path[0] != '/' || strlen (unix_path) > SC_LISTEN_PATH_MAX)
      return 0;                 /* "-": a private socket; or relative */
    strcpy (addr.path, unix_path);
  }
  else {
    if (run && !port)
      return 0;                 /* --run makes a private socket */
    addr.kind = SC_LISTEN_TCP;
    addr.port = 10809;
    if (port) {
      char *end;
      unsigned long n = strtoul (port, &end, 10);
      if (*end || n < 1 || n > 65535)
        return 0;               /* a service name: not followed */
      addr.port = (unsigned) n;
    }
    snprintf (addr.host, sizeof addr.host, "%s",
              ipaddr ? ipaddr : "localhost");
  }
  return plugin_listen_uri (&addr, tls, uri, len) == 0 ? 1 : 0;
}

int
plugin_listen_from_proc (char *uri, size_t len)
{
  enum { ARGS_MAX = 1024, BYTES_MAX = 65536 };
  int fd = open ("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  char *buf, *argv[ARGS_MAX];
  size_t got = 0;
  int argc = 0, r;

  if (fd == -1)
    return 0;
  buf = malloc (BYTES_MAX + 1);
  if (!buf) {
    close (fd);
    return 0;
  }
  for (;;) {
    ssize_t k = read (fd, buf + got, BYTES_MAX - got);
    if (k <= 0)
      break;
    got += (size_t) k;
    if (got == BYTES_MAX)
      break;
  }
  close (fd);
  buf[got] = '\0';
  for (size_t p = 0; p < got && argc < ARGS_MAX; p += strlen (buf + p) + 1)
    argv[argc++] = buf + p;
  r = plugin_listen_from_argv (argc, argv, uri, len);
  free (buf);
  return r;
}
