/* nbdkit-shadowcopy-plugin: where this server listens (listen.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* nbdkit 1.32's options (`nbdkit --short-options`, `--long-options`).
 * Anything else (an abbreviation such as --uni, an option of a later
 * nbdkit) makes the address unknown: guessing would send clients to the
 * wrong place. */
static const char short_with_arg[] = "DegiPptUu";
static const char short_flags[] = "46fnorsvV";

static const char *const long_with_arg[] = {
  "debug", "export", "export-name", "exportname", "filter", "group",
  "ip-addr", "ipaddr", "log", "mask-handshake", "pid-file", "pidfile",
  "port", "run", "selinux-label", "threads", "tls", "tls-certificates",
  "tls-psk", "unix", "user", NULL,
};
static const char *const long_flags[] = {
  "ipv4-only", "ipv6-only", "dump-config", "dump-plugin",
  "exit-with-parent", "foreground", "no-fork", "help", "new-style",
  "newstyle", "no-sr", "old-style", "oldstyle", "read-only", "readonly",
  "single", "stdin", "swap", "tls-verify-peer", "verbose", "version",
  "vsock", NULL,
};

static bool
in_list (const char *const *list, const char *name, size_t n)
{
  for (size_t i = 0; list[i]; i++)
    if (strlen (list[i]) == n && strncmp (list[i], name, n) == 0)
      return true;
  return false;
}

static bool
is_long (const char *name, size_t n, const char *want)
{
  return strlen (want) == n && strncmp (name, want, n) == 0;
}

/* What the options say, in short letters: U p i T (--tls) R (--run)
 * s (-s, --single, --stdin) K (--vsock, which has no letter) 4 6. */
struct seen {
  const char *unix_path, *port, *ipaddr, *tls;
  bool run, stdin_, vsock, ip_family, twice;
};

static void
note (struct seen *s, char opt, const char *val)
{
  const char **slot = opt == 'U' ? &s->unix_path : opt == 'p' ? &s->port
                      : opt == 'i' ? &s->ipaddr : opt == 'T' ? &s->tls
                      : NULL;
  if (slot) {
    if (*slot)
      s->twice = true;          /* which one nbdkit keeps: not guessed */
    *slot = val;
  }
  else if (opt == 'R')
    s->run = true;
  else if (opt == 's')
    s->stdin_ = true;
  else if (opt == 'K')
    s->vsock = true;
  else if (opt == '4' || opt == '6')
    s->ip_family = true;
}

/* 1: on (or require), 0: off, -1: not a value nbdkit's --tls takes as we
 * know it. */
static int
tls_value (const char *v)
{
  static const char *const on[] = { "on", "require", "yes", "true", "1",
                                     NULL };
  static const char *const off[] = { "off", "no", "false", "0", NULL };
  for (size_t i = 0; on[i]; i++)
    if (strcasecmp (v, on[i]) == 0)
      return 1;
  for (size_t i = 0; off[i]; i++)
    if (strcasecmp (v, off[i]) == 0)
      return 0;
  return -1;
}

int
plugin_listen_from_argv (int argc, char *const *argv, char *const *envp,
                         char *uri, size_t len)
{
  struct seen s = { NULL };
  bool operands = false, posix = false;

  for (size_t i = 0; envp && envp[i]; i++) {
    /* Socket activation: nbdkit listens on the sockets it was given. */
    if (strncmp (envp[i], "LISTEN_FDS=", 11) == 0 ||
        strncmp (envp[i], "LISTEN_PID=", 11) == 0)
      return 0;
    if (strncmp (envp[i], "POSIXLY_CORRECT=", 16) == 0)
      posix = true;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    char opt;

    if (strcmp (a, "--") == 0)
      break;                    /* the rest: the plugin's and its keys */
    if (a[0] != '-' || a[1] == '\0') {
      operands = true;          /* the plugin, its keys: nbdkit (getopt)
                                   still takes options after them */
      continue;
    }
    if (operands && posix)
      return 0;                 /* getopt would stop at the first operand */
    if (a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr (name, '=');
      size_t n = eq ? (size_t) (eq - name) : strlen (name);
      if (in_list (long_flags, name, n)) {
        if (eq)
          return 0;
        opt = is_long (name, n, "vsock") ? 'K'
            : is_long (name, n, "single") || is_long (name, n, "stdin") ? 's'
            : is_long (name, n, "ipv4-only") ? '4'
            : is_long (name, n, "ipv6-only") ? '6' : 0;
        note (&s, opt, NULL);
        continue;
      }
      if (!in_list (long_with_arg, name, n))
        return 0;               /* an abbreviation, or unknown */
      if (eq)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return 0;
      opt = is_long (name, n, "unix") ? 'U'
          : is_long (name, n, "port") ? 'p'
          : is_long (name, n, "ipaddr") || is_long (name, n, "ip-addr") ? 'i'
          : is_long (name, n, "tls") ? 'T'
          : is_long (name, n, "run") ? 'R' : 0;
      note (&s, opt, val);
    }
    else {
      /* A cluster such as -fv or -fU PATH: flags, then perhaps one option
       * with its argument, attached or next. */
      const char *p = a + 1;
      for (; *p && !strchr (short_with_arg, *p); p++) {
        if (!strchr (short_flags, *p))
          return 0;
        note (&s, *p, NULL);
      }
      if (!*p)
        continue;
      opt = *p;
      if (p[1])
        val = p + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return 0;
      note (&s, opt, val);
    }
  }

  int tls = s.tls ? tls_value (s.tls) : 0;
  if (tls < 0 || s.twice || s.vsock || s.stdin_)
    return 0;
  struct sc_listen_address addr = { .kind = SC_LISTEN_UNIX };
  if (s.unix_path) {
    if (s.port || s.ipaddr || s.unix_path[0] != '/' ||
        strlen (s.unix_path) > SC_LISTEN_PATH_MAX)
      return 0;                 /* "-": a private socket; or relative */
    strcpy (addr.path, s.unix_path);
  }
  else {
    if (s.run && !s.port)
      return 0;                 /* --run makes a private socket */
    if (s.ip_family && !s.ipaddr)
      return 0;                 /* -4/-6: is "localhost" that family? */
    addr.kind = SC_LISTEN_TCP;
    addr.port = 10809;
    if (s.port) {
      char *end;
      unsigned long n = strtoul (s.port, &end, 10);
      if (!*s.port || *end || n < 1 || n > 65535)
        return 0;               /* a service name: not followed */
      addr.port = (unsigned) n;
    }
    snprintf (addr.host, sizeof addr.host, "%s",
              s.ipaddr ? s.ipaddr : "localhost");
  }
  return plugin_listen_uri (&addr, tls, uri, len) == 0 ? 1 : 0;
}

/* /proc/self/FILE's NUL-separated strings into v (NULL-terminated, at
 * most max - 1), in a malloc'd buffer returned (NULL: unreadable). */
static char *
proc_strings (const char *file, char **v, int max, int *count)
{
  enum { BYTES_MAX = 65536 };
  int fd = open (file, O_RDONLY | O_CLOEXEC);
  size_t got = 0;
  char *buf;

  *count = 0;
  if (fd == -1)
    return NULL;
  buf = malloc (BYTES_MAX + 1);
  if (!buf) {
    close (fd);
    return NULL;
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
  for (size_t p = 0; p < got && *count < max - 1; p += strlen (buf + p) + 1)
    v[(*count)++] = buf + p;
  v[*count] = NULL;
  return buf;
}

int
plugin_listen_from_proc (char *uri, size_t len)
{
  enum { ARGS_MAX = 1024, ENV_MAX = 4096 };
  static char *argv[ARGS_MAX], *envp[ENV_MAX];
  int argc, envc, r = 0;
  char *args = proc_strings ("/proc/self/cmdline", argv, ARGS_MAX, &argc);
  /* The environment nbdkit started with (LISTEN_FDS even if unset
   * since). */
  char *env = proc_strings ("/proc/self/environ", envp, ENV_MAX, &envc);

  if (args && env && argc < ARGS_MAX - 1 && envc < ENV_MAX - 1)
    r = plugin_listen_from_argv (argc, argv, envp, uri, len);
  free (args);
  free (env);
  return r;
}
