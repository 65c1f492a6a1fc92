/* Unit tests: where the server listens, as INFO's listen line says it
 * (nbdkit-plugin/listen.c): the URI of a listen= address, and nbdkit's
 * own command line followed as nbdkit reads it; and the parser of
 * listen= (engine/listen-address.c). */
#include <config.h>

#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/listen-address.h"
#include "nbdkit-plugin/listen.h"

static char uri[1024];

static const char *
from_argv_env (char *const *argv, char *const *envp)
{
  int argc = 0;
  while (argv[argc])
    argc++;
  uri[0] = '\0';
  return plugin_listen_from_argv (argc, argv, envp, uri, sizeof uri) == 1
         ? uri : NULL;
}

static const char *
from_argv (char *const *argv)
{
  return from_argv_env (argv, (char *const []) { "PATH=/usr/bin", NULL });
}

#define ARGV(...) ((char *const []) { "nbdkit", __VA_ARGS__, NULL })

Test (listen, unix_socket_forms)
{
  cr_assert_str_eq (from_argv (ARGV ("-U", "/run/a.nbd", "shadowcopy",
                                     "disk=/x")),
                    "nbd+unix:///?socket=/run/a.nbd");
  cr_assert_str_eq (from_argv (ARGV ("--unix=/run/a b.nbd", "shadowcopy")),
                    "nbd+unix:///?socket=/run/a%20b.nbd");
  cr_assert_str_eq (from_argv (ARGV ("-fvU/run/c.nbd", "--tls=require",
                                     "shadowcopy")),
                    "nbds+unix:///?socket=/run/c.nbd");
  cr_assert_str_eq (from_argv (ARGV ("--unix", "/run/d.nbd", "--tls", "off",
                                     "shadowcopy")),
                    "nbd+unix:///?socket=/run/d.nbd");
}

Test (listen, tcp_forms)
{
  cr_assert_str_eq (from_argv (ARGV ("shadowcopy", "disk=/x")),
                    "nbd://localhost:10809");
  cr_assert_str_eq (from_argv (ARGV ("-p", "10900", "-i", "192.0.2.1",
                                     "shadowcopy")),
                    "nbd://192.0.2.1:10900");
  cr_assert_str_eq (from_argv (ARGV ("--ipaddr=::1", "--port=10901",
                                     "--tls=on", "shadowcopy")),
                    "nbds://[::1]:10901");
  /* An option's argument that looks like an option is still its. */
  cr_assert_str_eq (from_argv (ARGV ("-e", "-U", "-p", "10902",
                                     "shadowcopy")),
                    "nbd://localhost:10902");
}

Test (listen, untold)
{
  cr_assert_null (from_argv (ARGV ("-U", "-", "shadowcopy")));
  cr_assert_null (from_argv (ARGV ("--vsock", "shadowcopy")));
  cr_assert_null (from_argv (ARGV ("--run", "nbdinfo $uri", "shadowcopy")));
  cr_assert_null (from_argv (ARGV ("-p", "nbd", "shadowcopy")));
  cr_assert_null (from_argv (ARGV ("-U")));
}

/* Options nbdkit 1.32 knows that do not change where it listens, in
 * every spelling: followed, not taken for the end of nbdkit's options. */
Test (listen, other_options_followed)
{
  cr_assert_str_eq (from_argv (ARGV ("-f", "--pid-file", "/run/p", "-U",
                                     "/run/s.nbd", "shadowcopy")),
                    "nbd+unix:///?socket=/run/s.nbd");
  cr_assert_str_eq (from_argv (ARGV ("--ip-addr", "127.0.0.1", "-p", "10998",
                                     "shadowcopy")),
                    "nbd://127.0.0.1:10998");
  cr_assert_str_eq (from_argv (ARGV ("--export-name", "x", "-U", "/run/s.nbd",
                                     "shadowcopy")),
                    "nbd+unix:///?socket=/run/s.nbd");
  cr_assert_str_eq (from_argv (ARGV ("--export=x", "--filter", "log",
                                     "-e", "y", "-rv", "--exportname=z",
                                     "-U", "/run/s.nbd", "shadowcopy")),
                    "nbd+unix:///?socket=/run/s.nbd");
  cr_assert_null (from_argv (ARGV ("-U/run/a.nbd", "-U", "/run/s.nbd",
                                   "shadowcopy")),
                  "-U twice: which one nbdkit keeps is not guessed");
  cr_assert_str_eq (from_argv (ARGV ("--tls=yes", "-U", "/run/s.nbd",
                                     "shadowcopy")),
                    "nbds+unix:///?socket=/run/s.nbd");
}

/* getopt permutes: nbdkit takes options after the plugin and its keys,
 * until "--". */
Test (listen, options_after_the_plugin)
{
  cr_assert_str_eq (from_argv (ARGV ("-f", "shadowcopy", "disk=/x",
                                     "-U", "/run/s.nbd")),
                    "nbd+unix:///?socket=/run/s.nbd");
  cr_assert_str_eq (from_argv (ARGV ("shadowcopy", "--", "-U", "/run/s")),
                    "nbd://localhost:10809");
  cr_assert_null (from_argv_env (ARGV ("shadowcopy", "-U", "/run/s.nbd"),
                                 (char *const []) { "POSIXLY_CORRECT=1",
                                                    NULL }));
}

/* Whatever it does not fully understand: nothing said, never a guess. */
Test (listen, unknown_says_nothing)
{
  static const char *const cases[][6] = {
    { "--uni", "/run/s.nbd", "shadowcopy", NULL },      /* abbreviation */
    { "--po=10900", "shadowcopy", NULL },
    { "--frobnicate", "-U", "/run/s.nbd", "shadowcopy" },
    { "-Z", "-U", "/run/s.nbd", "shadowcopy" },
    { "-fZ", "-U", "/run/s.nbd", "shadowcopy" },
    { "-s", "shadowcopy", NULL },
    { "--stdin", "shadowcopy", NULL },
    { "--single", "-U", "/run/s.nbd", "shadowcopy" },
    { "--tls=maybe", "-U", "/run/s.nbd", "shadowcopy" },
    { "--verbose=1", "-U", "/run/s.nbd", "shadowcopy" },
    { "-4", "shadowcopy", NULL },
    { "-U", "/run/s.nbd", "-p", "10900", "shadowcopy" },
    { "-p", "10900", "-p", "10901", "shadowcopy" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *argv[8] = { "nbdkit" };
    for (size_t j = 0; j < 6 && cases[i][j]; j++)
      argv[j + 1] = (char *) cases[i][j];
    const char *got = from_argv (argv);
    cr_assert_null (got, "case %zu (%s %s) said %s", i, cases[i][0],
                    cases[i][1], got);
  }
  /* Socket activation: the sockets nbdkit was given, not its options. */
  cr_assert_null (from_argv_env (ARGV ("-U", "/run/s.nbd", "shadowcopy"),
                                 (char *const []) { "LISTEN_PID=1",
                                                    "LISTEN_FDS=1", NULL }));
  cr_assert_null (from_argv_env (ARGV ("shadowcopy"),
                                 (char *const []) { "LISTEN_FDS=1", NULL }));
}

Test (listen, address_parser)
{
  struct sc_listen_address a;
  char err[256];

  cr_assert_eq (sc_listen_parse ("unix:/run/v.nbd", &a, err, sizeof err), 0);
  cr_assert_eq (a.kind, SC_LISTEN_UNIX);
  cr_assert_str_eq (a.path, "/run/v.nbd");
  cr_assert_eq (sc_listen_parse ("tcp:[fe80::1]:10809", &a, err,
                                 sizeof err), 0);
  cr_assert_str_eq (a.host, "fe80::1");
  cr_assert_eq (a.port, 10809);
  cr_assert_eq (plugin_listen_uri (&a, false, uri, sizeof uri), 0);
  cr_assert_str_eq (uri, "nbd://[fe80::1]:10809");
  static const char *const bad[] = {
    "unix:run/v.nbd", "unix:", "tcp:host", "tcp::10809", "tcp:h:0",
    "tcp:h:65536", "tcp:h:1x", "tcp:a:b:1", "tcp:[::1]10809", "udp:h:1",
    "/run/v.nbd", "tcp:h/x:1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq (sc_listen_parse (bad[i], &a, err, sizeof err), -EINVAL,
                  "accepted %s", bad[i]);
  cr_assert_str_eq (err, "listen=tcp:h/x:1: must be tcp:HOST:PORT (a port "
                    "from 1 to 65535; an IPv6 address in brackets)");
}
