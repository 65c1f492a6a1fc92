/* Unit tests: where the CLI reaches an NBD server (tools/nbd-target.c):
 * the export's name put in as a URI's path (query and user kept, odd
 * bytes percent-encoded), a socket's URI, a --nbd-uri naming an export
 * or not NBD refused, and the local-file query parameters split out
 * (decoded) for nbdfuse's nbdkit. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tools/nbd-target.h"

static void
expect_uri (const char *server, const char *name, const char *want)
{
  struct sc_nbd_target t = { .uri = server };
  char *got = sc_nbd_target_export_uri (&t, name);
  cr_assert_not_null (got);
  cr_assert_str_eq (got, want, "%s + %s", server, name);
  free (got);
}

Test (nbd_target, export_put_in_as_the_path)
{
  expect_uri ("nbds://alice@h:10809/?tls-psk-file=/k.psk", "s1",
              "nbds://alice@h:10809/s1?tls-psk-file=/k.psk");
  expect_uri ("nbds://h:10809?tls-psk-file=/k.psk", "s1",
              "nbds://h:10809/s1?tls-psk-file=/k.psk");
  expect_uri ("nbd://h", "a:b+c-1.x_y", "nbd://h/a:b+c-1.x_y");
  expect_uri ("nbd://[::1]:9/", "s", "nbd://[::1]:9/s");
  expect_uri ("nbd+unix:///?socket=/run/x.sock", "s",
              "nbd+unix:///s?socket=/run/x.sock");
  expect_uri ("nbd://h/#frag", "s", "nbd://h/s#frag");
  expect_uri ("nbd://h/", "a b/%", "nbd://h/a%20b%2F%25");
}

Test (nbd_target, socket_uri)
{
  struct sc_nbd_target t = { .socket = "/run/disk.sock" };
  char *got = sc_nbd_target_export_uri (&t, "nightly");
  cr_assert_str_eq (got, "nbd+unix:///nightly?socket=/run/disk.sock");
  free (got);
  cr_assert_str_eq (sc_nbd_target_text (&t), "/run/disk.sock");
}

Test (nbd_target, checks)
{
  char err[256];
  cr_assert_eq (sc_nbd_uri_check ("nbds://h:1/?tls-psk-file=/a", err,
                                  sizeof err), 0);
  cr_assert_eq (sc_nbd_uri_check ("nbd://h", err, sizeof err), 0);
  cr_assert_eq (sc_nbd_uri_check ("nbds+unix:///?socket=/s", err,
                                  sizeof err), 0);
  cr_assert_eq (sc_nbd_uri_check ("nbd://h/live", err, sizeof err), -1);
  cr_assert (strstr (err, "names the export 'live'"), "%s", err);
  cr_assert_eq (sc_nbd_uri_check ("nbd+unix:///s1?socket=/s", err,
                                  sizeof err), -1);
  cr_assert_eq (sc_nbd_uri_check ("/run/disk.sock", err, sizeof err), -1);
  cr_assert (strstr (err, "not an NBD URI"), "%s", err);
  cr_assert_eq (sc_nbd_uri_check ("nbdx://h", err, sizeof err), -1);
  cr_assert (!sc_nbd_uri_is ("nbd:/h"));
  cr_assert (sc_nbd_uri_is ("nbds+unix://"));
}

Test (nbd_target, local_files_split_out)
{
  char *rest, *psk, *certs;
  cr_assert_eq (sc_nbd_uri_split_files (
      "nbds://u@h:1/s?tls-psk-file=/a%20b.psk&tls-verify-peer=false"
      "&tls-certificates=/pki#f", &rest, &psk, &certs), 0);
  cr_assert_str_eq (rest, "nbds://u@h:1/s?tls-verify-peer=false#f");
  cr_assert_str_eq (psk, "/a b.psk");
  cr_assert_str_eq (certs, "/pki");
  free (rest), free (psk), free (certs);

  cr_assert_eq (sc_nbd_uri_split_files ("nbd://h/s", &rest, &psk, &certs),
                0);
  cr_assert_str_eq (rest, "nbd://h/s");
  cr_assert_null (psk);
  cr_assert_null (certs);
  free (rest);

  cr_assert_eq (sc_nbd_uri_split_files ("nbds://h/s?tls-psk-file=/k",
                                        &rest, &psk, &certs), 0);
  cr_assert_str_eq (rest, "nbds://h/s");
  cr_assert_str_eq (psk, "/k");
  free (rest), free (psk);
}
