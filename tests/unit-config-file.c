/* Unit tests: sc_config_parse, the parser of key=value configuration
 * files (a volume's VOLUME.conf, the plugin's config=FILE). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engine/config-file.h"

static char err[512];

static struct sc_config_file
parsed (const char *text, size_t len)
{
  struct sc_config_file cf;
  int r = sc_config_parse ("v.conf", text, len, &cf, err, sizeof err);
  cr_assert_eq (r, 0, "refused: %s", err);
  return cf;
}

static void
refused (const char *text, size_t len, const char *want)
{
  struct sc_config_file cf;
  err[0] = '\0';
  int r = sc_config_parse ("v.conf", text, len, &cf, err, sizeof err);
  cr_assert_eq (r, -EINVAL, "accepted: %.*s", (int) len, text);
  cr_assert_str_eq (err, want);
}

#define S(s) s, sizeof s - 1

Test (config_file, keys_values_comments_and_blanks)
{
  struct sc_config_file cf = parsed (S ("# a volume\n"
                                        "\n"
                                        "  disk = /dev/vg/data  \n"
                                        "\t# indented comment\n"
                                        "diff=/var/lib/x#y.diff\n"
                                        "diff-max=\n"
                                        "listen = unix:/run/a b.nbd"));
  cr_assert_eq (cf.n, 4);
  cr_assert_str_eq (cf.entries[0].key, "disk");
  cr_assert_str_eq (cf.entries[0].value, "/dev/vg/data");
  cr_assert_eq (cf.entries[0].line, 3);
  cr_assert_str_eq (cf.entries[1].value, "/var/lib/x#y.diff");
  cr_assert_str_eq (cf.entries[2].value, "");
  cr_assert_str_eq (cf.entries[3].value, "unix:/run/a b.nbd");
  cr_assert_eq (cf.entries[3].line, 7);
  cr_assert_eq (sc_config_get (&cf, "diff"), &cf.entries[1]);
  cr_assert_null (sc_config_get (&cf, "control"));
  sc_config_free (&cf);
}

Test (config_file, crlf_lines_and_empty_file)
{
  struct sc_config_file cf = parsed (S ("disk=/a\r\ndiff=/b\r\n"));
  cr_assert_eq (cf.n, 2);
  cr_assert_str_eq (cf.entries[0].value, "/a");
  sc_config_free (&cf);
  cf = parsed ("", 0);
  cr_assert_eq (cf.n, 0);
  sc_config_free (&cf);
}

Test (config_file, a_line_without_equals_is_refused)
{
  refused (S ("disk=/a\ndiff /b\n"),
           "v.conf:2: no '=' (lines are key = value)");
}

Test (config_file, a_key_given_twice_names_both_lines)
{
  refused (S ("disk=/a\n# x\ndisk = /b\n"),
           "v.conf:3: disk= given twice (first at v.conf:1)");
}

Test (config_file, bad_keys_are_refused)
{
  refused (S ("=x\n"), "v.conf:1: '': not a key (a letter, then letters, "
           "digits, '-' or '_', at most 63)");
  refused (S ("Disk=x\n"), "v.conf:1: 'Disk': not a key (a letter, then "
           "letters, digits, '-' or '_', at most 63)");
  refused (S ("dis k=x\n"), "v.conf:1: 'dis k': not a key (a letter, then "
           "letters, digits, '-' or '_', at most 63)");
}

Test (config_file, nul_and_control_characters_are_refused)
{
  refused (S ("disk=/a\0b\n"), "v.conf:1: a NUL byte");
  refused (S ("\ndisk=/a\033b\n"), "v.conf:2: a control character (0x1b)");
  refused (S ("disk=/a\rb\n"), "v.conf:1: a control character (0x0d)");
  /* Found by fuzz-config: a tab is a blank around the value only. */
  refused (S ("disk=\t/a\tb\t\n"), "v.conf:1: a tab inside the value");
}

Test (config_file, an_overlong_line_is_refused)
{
  static char text[SC_CONFIG_LINE_MAX + 16];
  memset (text, 'a', sizeof text);
  memcpy (text, "disk=", 5);
  text[SC_CONFIG_LINE_MAX] = '\n';       /* exactly the limit: fine */
  struct sc_config_file cf = parsed (text, SC_CONFIG_LINE_MAX + 1);
  cr_assert_eq (strlen (cf.entries[0].value), SC_CONFIG_LINE_MAX - 5);
  sc_config_free (&cf);
  refused (text, SC_CONFIG_LINE_MAX + 2,
           "v.conf:2: no '=' (lines are key = value)");
  text[SC_CONFIG_LINE_MAX] = 'a';
  refused (text, SC_CONFIG_LINE_MAX + 1, "v.conf:1: longer than 4096 bytes");
}

Test (config_file, read_names_the_missing_file)
{
  struct sc_config_file cf;
  int r = sc_config_read ("/nonexistent/v.conf", &cf, err, sizeof err);
  cr_assert_eq (r, -ENOENT);
  cr_assert_str_eq (err, "/nonexistent/v.conf: No such file or directory");
}

Test (config_file, read_parses_a_file)
{
  char path[] = "/tmp/unit-config-XXXXXX";
  int fd = mkstemp (path);
  cr_assert_geq (fd, 0);
  cr_assert_eq (write (fd, "disk = /x\n", 10), 10);
  close (fd);
  struct sc_config_file cf;
  int r = sc_config_read (path, &cf, err, sizeof err);
  unlink (path);
  cr_assert_eq (r, 0, "%s", err);
  cr_assert_str_eq (sc_config_get (&cf, "disk")->value, "/x");
  cr_assert_str_eq (cf.path, path);
  sc_config_free (&cf);
}

/* A FIFO with no writer (or any file whose open() would block) is
 * refused at once, not waited on: status reads every VOLUME.conf. */
Test (config_file, read_refuses_a_fifo_without_blocking, .timeout = 5)
{
  char dir[] = "/tmp/unit-config-XXXXXX", path[64];
  cr_assert_not_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/v.conf", dir);
  cr_assert_eq (mkfifo (path, 0600), 0);
  struct sc_config_file cf;
  int r = sc_config_read (path, &cf, err, sizeof err);
  unlink (path);
  rmdir (dir);
  cr_assert_eq (r, -EINVAL);
  cr_assert_str_eq (err + strlen (path), ": not a regular file");
}
