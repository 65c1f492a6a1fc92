/* Unit tests: the control protocol codec (request and reply parsers,
 * writers, line reader, errno names, time and reason formatting). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "engine/control-protocol.h"

/* ---- helpers --------------------------------------------------------- */

/* Run a writer against a pipe (capture_fds[1]) and return what it wrote
 * (a static buffer).  The comma makes the pipe exist before the call. */
#define CAPTURE(r, call) (capture_begin (), capture_end (&(r), (call)))

static int capture_fds[2];
static char captured[4 * SC_CTL_LINE_MAX];

static void
capture_begin (void)
{
  cr_assert_eq (pipe (capture_fds), 0);
}

static const char *
capture_end (int *r, int result)
{
  ssize_t n;

  *r = result;
  close (capture_fds[1]);
  n = read (capture_fds[0], captured, sizeof captured - 1);
  cr_assert_geq (n, 0);
  captured[n] = '\0';
  close (capture_fds[0]);
  return captured;
}

static int
parse_req (const char *text, struct sc_ctl_request *req, const char **why)
{
  static char buf[2 * SC_CTL_LINE_MAX];

  snprintf (buf, sizeof buf, "%s", text);
  *why = NULL;
  return sc_ctl_parse_request (buf, req, why);
}

static int
parse_rep (const char *text, struct sc_ctl_line *line, const char **why)
{
  static char buf[2 * SC_CTL_LINE_MAX];

  snprintf (buf, sizeof buf, "%s", text);
  *why = NULL;
  return sc_ctl_parse_reply (buf, line, why);
}

static void
assert_bad_request (const char *text)
{
  struct sc_ctl_request req;
  const char *why;

  cr_assert_eq (parse_req (text, &req, &why), -EINVAL, "accepted: %s", text);
  cr_assert_not_null (why);
}

static void
assert_bad_reply (const char *text)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep (text, &line, &why), -EINVAL, "accepted: %s", text);
  cr_assert_not_null (why);
}

/* ---- request parser -------------------------------------------------- */

Test (request, splits_verb_and_arguments)
{
  struct sc_ctl_request req;
  const char *why;

  cr_assert_eq (parse_req ("DELETE snap-1", &req, &why), 0);
  cr_assert_str_eq (req.verb, "DELETE");
  cr_assert_eq (req.nargs, 1);
  cr_assert_str_eq (req.args[0], "snap-1");
}

Test (request, accepts_a_verb_alone)
{
  struct sc_ctl_request req;
  const char *why;

  cr_assert_eq (parse_req ("DELETE-OLDEST", &req, &why), 0);
  cr_assert_str_eq (req.verb, "DELETE-OLDEST");
  cr_assert_eq (req.nargs, 0);
}

Test (request, accepts_every_argument_character)
{
  struct sc_ctl_request req;
  const char *why;

  cr_assert_eq (parse_req ("CREATE 2026-11-24T19:00:51.123Z_a+b=c", &req,
                           &why), 0);
  cr_assert_str_eq (req.args[0], "2026-11-24T19:00:51.123Z_a+b=c");
}

Test (request, rejects_an_empty_line)
{
  assert_bad_request ("");
}

Test (request, rejects_a_lower_case_verb)
{
  assert_bad_request ("list");
  assert_bad_request ("List");
}

Test (request, rejects_a_verb_not_starting_with_a_letter)
{
  assert_bad_request ("-LIST");
  assert_bad_request ("1LIST");
}

Test (request, rejects_stray_spaces)
{
  assert_bad_request (" LIST");
  assert_bad_request ("LIST ");
  assert_bad_request ("DELETE  a");
  assert_bad_request ("DELETE a ");
}

Test (request, rejects_tabs_and_carriage_returns)
{
  assert_bad_request ("DELETE\ta");
  assert_bad_request ("LIST\r");
  assert_bad_request ("DELETE a\r");
}

Test (request, rejects_control_and_non_ascii_bytes_in_arguments)
{
  assert_bad_request ("DELETE a\x01");
  assert_bad_request ("DELETE a\x7f");
  assert_bad_request ("DELETE caf\xc3\xa9");
  assert_bad_request ("DELETE a/b");
  assert_bad_request ("DELETE a;b");
}

Test (request, accepts_the_maximum_number_of_arguments)
{
  struct sc_ctl_request req;
  const char *why;

  cr_assert_eq (parse_req ("X 1 2 3 4 5 6 7 8", &req, &why), 0);
  cr_assert_eq (req.nargs, SC_CTL_ARGS_MAX);
  cr_assert_str_eq (req.args[7], "8");
}

Test (request, rejects_too_many_arguments)
{
  assert_bad_request ("X 1 2 3 4 5 6 7 8 9");
}

Test (request, rejects_an_over_long_line)
{
  static char line[SC_CTL_LINE_MAX + 1];
  struct sc_ctl_request req;
  const char *why = NULL;

  memset (line, 'A', SC_CTL_LINE_MAX);
  line[SC_CTL_LINE_MAX] = '\0';
  cr_assert_eq (sc_ctl_parse_request (line, &req, &why), -EINVAL);
  cr_assert_not_null (why);
}

Test (request, accepts_a_line_of_maximum_length)
{
  static char line[SC_CTL_LINE_MAX];
  struct sc_ctl_request req;
  const char *why;

  memset (line, 'A', SC_CTL_LINE_MAX - 1);
  line[SC_CTL_LINE_MAX - 1] = '\0';
  cr_assert_eq (sc_ctl_parse_request (line, &req, &why), 0);
}

/* ---- reply parser ---------------------------------------------------- */

Test (reply, parses_ok)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("OK", &line, &why), 0);
  cr_assert_eq (line.type, SC_CTL_OK);
}

Test (reply, rejects_ok_with_anything_after_it)
{
  assert_bad_reply ("OK ");
  assert_bad_reply ("OKAY");
  assert_bad_reply ("ok");
}

Test (reply, parses_err_into_errno_and_message)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("ERR ENOENT no such snapshot: foo", &line, &why),
                0);
  cr_assert_eq (line.type, SC_CTL_ERR);
  cr_assert_eq (line.err, ENOENT);
  cr_assert_str_eq (line.message, "no such snapshot: foo");
}

Test (reply, accepts_err_without_a_message)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("ERR EIO", &line, &why), 0);
  cr_assert_eq (line.err, EIO);
  cr_assert_str_eq (line.message, "");
}

Test (reply, maps_an_unknown_error_name_to_eio)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("ERR EWHATEVER odd", &line, &why), 0);
  cr_assert_eq (line.err, EIO);
}

Test (reply, rejects_malformed_err_lines)
{
  assert_bad_reply ("ERR");
  assert_bad_reply ("ERR ");
  assert_bad_reply ("ERR enoent lower case");
  assert_bad_reply ("ERR ENOENT\tx");
  assert_bad_reply ("ERR ENOENT bell\a");
}

Test (reply, parses_data_fields_in_order)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("* snapshot\tid=1\tname=a\tused=0", &line, &why),
                0);
  cr_assert_eq (line.type, SC_CTL_DATA);
  cr_assert_str_eq (line.kind, "snapshot");
  cr_assert_eq (line.nfields, 3);
  cr_assert_str_eq (line.fields[1].key, "name");
  cr_assert_str_eq (sc_ctl_field (&line, "id"), "1");
  cr_assert_str_eq (sc_ctl_field (&line, "used"), "0");
  cr_assert_null (sc_ctl_field (&line, "reason"));
}

Test (reply, accepts_a_data_line_without_fields)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("* nothing", &line, &why), 0);
  cr_assert_eq (line.nfields, 0);
}

Test (reply, keeps_spaces_equals_and_utf8_in_values)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("* volume\torigin=/tmp/a b=c/\xc3\xa9\tx=", &line,
                           &why), 0);
  cr_assert_str_eq (sc_ctl_field (&line, "origin"), "/tmp/a b=c/\xc3\xa9");
  cr_assert_str_eq (sc_ctl_field (&line, "x"), "");
}

Test (reply, rejects_a_duplicate_field)
{
  assert_bad_reply ("* snapshot\tid=1\tid=2");
}

Test (reply, rejects_malformed_data_lines)
{
  assert_bad_reply ("*");
  assert_bad_reply ("* ");
  assert_bad_reply ("*snapshot");
  assert_bad_reply ("* Snapshot");
  assert_bad_reply ("* snapshot id=1");
  assert_bad_reply ("* snapshot\t");
  assert_bad_reply ("* snapshot\t=1");
  assert_bad_reply ("* snapshot\tid");
  assert_bad_reply ("* snapshot\tID=1");
  assert_bad_reply ("* snapshot\tid=1\r");
  assert_bad_reply ("* snapshot\tid=\x1b[31m");
}

Test (reply, accepts_the_maximum_number_of_fields)
{
  char text[1024] = "* k";
  struct sc_ctl_line line;
  const char *why;
  int i;

  for (i = 0; i < SC_CTL_FIELDS_MAX; i++)
    snprintf (text + strlen (text), sizeof text - strlen (text),
              "\tf%d=%d", i, i);
  cr_assert_eq (parse_rep (text, &line, &why), 0);
  cr_assert_eq (line.nfields, SC_CTL_FIELDS_MAX);
}

/* "* k\tf0=0\tf1=1..." with n fields, in a static buffer. */
static const char *
fields_line (int n)
{
  static char text[SC_CTL_LINE_MAX];
  int i;

  snprintf (text, sizeof text, "* k");
  for (i = 0; i < n; i++)
    snprintf (text + strlen (text), sizeof text - strlen (text),
              "\tf%d=%d", i, i);
  return text;
}

/* A newer minor server may add keys: INFO's volume line had 31 fields
 * when a 33rd failed the whole reply. */
Test (reply, parses_a_line_of_40_fields)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep (fields_line (40), &line, &why), 0, "%s", why);
  cr_assert_eq (line.nfields, 40);
  cr_assert_str_eq (sc_ctl_field (&line, "f0"), "0");
  cr_assert_str_eq (sc_ctl_field (&line, "f31"), "31");
  cr_assert_str_eq (sc_ctl_field (&line, "f39"), "39");
}

Test (reply, keeps_the_first_fields_and_ignores_the_rest)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep (fields_line (SC_CTL_FIELDS_MAX + 7), &line, &why),
                0, "%s", why);
  cr_assert_eq (line.nfields, SC_CTL_FIELDS_MAX);
  cr_assert_eq (line.ignored, 7);
  cr_assert_str_eq (line.kind, "k");
  cr_assert_str_eq (sc_ctl_field (&line, "f0"), "0");
  cr_assert_str_eq (line.fields[SC_CTL_FIELDS_MAX - 1].value, "63");
  cr_assert_null (sc_ctl_field (&line, "f64"));
}

Test (reply, checks_the_syntax_of_ignored_fields)
{
  char text[SC_CTL_LINE_MAX];

  snprintf (text, sizeof text, "%s\tBAD=1", fields_line (SC_CTL_FIELDS_MAX));
  assert_bad_reply (text);
  snprintf (text, sizeof text, "%s\t=1", fields_line (SC_CTL_FIELDS_MAX));
  assert_bad_reply (text);
  snprintf (text, sizeof text, "%s\tx=\x1b", fields_line (SC_CTL_FIELDS_MAX));
  assert_bad_reply (text);
  snprintf (text, sizeof text, "%s\tf3=again",
            fields_line (SC_CTL_FIELDS_MAX));
  assert_bad_reply (text);
}

Test (reply, rejects_empty_and_unknown_lines)
{
  assert_bad_reply ("");
  assert_bad_reply ("HELLO");
  assert_bad_reply ("+OK");
}

Test (reply, field_lookup_ignores_status_lines)
{
  struct sc_ctl_line line;
  const char *why;

  cr_assert_eq (parse_rep ("OK", &line, &why), 0);
  cr_assert_null (sc_ctl_field (&line, "id"));
}

/* ---- garbage --------------------------------------------------------- */

/* Three times in four a character of `alphabet`, else any byte. */
static char
random_char (unsigned *seed, const char *alphabet)
{
  if (rand_r (seed) % 4 == 0)
    return rand_r (seed);
  return alphabet[rand_r (seed) % strlen (alphabet)];
}

/* Random bytes must never crash the parsers, and whatever they accept
 * must follow the grammar. */
Test (garbage, random_lines_never_break_the_request_parser)
{
  static char line[SC_CTL_LINE_MAX + 64];
  unsigned seed = 1;
  int i;

  for (i = 0; i < 20000; i++) {
    struct sc_ctl_request req;
    const char *why = NULL;
    size_t len = rand_r (&seed) % sizeof line, j;
    int r;

    /* Mostly grammar characters, so some lines get deep. */
    for (j = 0; j < len; j++)
      line[j] = random_char (&seed, "AZ- az09.=\t\n\r\x01\x80\xff");
    line[len] = '\0';
    r = sc_ctl_parse_request (line, &req, &why);
    if (r == 0) {
      cr_assert_leq (req.nargs, SC_CTL_ARGS_MAX);
      cr_assert (strspn (req.verb, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-")
                 == strlen (req.verb));
      for (j = 0; j < req.nargs; j++)
        cr_assert_gt (strlen (req.args[j]), 0);
    }
    else {
      cr_assert_eq (r, -EINVAL);
      cr_assert_not_null (why);
    }
  }
}

Test (garbage, random_lines_never_break_the_reply_parser)
{
  static char line[SC_CTL_LINE_MAX + 64];
  unsigned seed = 2;
  int i;

  for (i = 0; i < 20000; i++) {
    struct sc_ctl_line out;
    const char *why = NULL;
    size_t len = rand_r (&seed) % 200, j;
    int r;

    /* Start like a real reply three times in four. */
    static const char *const starts[] = { "* ", "ERR ", "OK", "" };
    strcpy (line, starts[rand_r (&seed) % 4]);
    for (j = strlen (line); j < len; j++)
      line[j] = random_char (&seed, "az-=\tAZ \x01\x7f\xc3");
    line[j] = '\0';
    r = sc_ctl_parse_reply (line, &out, &why);
    if (r == 0)
      cr_assert_leq (out.nfields, SC_CTL_FIELDS_MAX);
    else
      cr_assert_not_null (why);
  }
}

/* ---- errno names ----------------------------------------------------- */

Test (errname, round_trips_every_named_errno)
{
  int e;

  for (e = 1; e < 256; e++) {
    const char *name = sc_ctl_errname (e);

    if (strcmp (name, "EIO") != 0)
      cr_assert_eq (sc_ctl_errnum (name), e, "%s", name);
  }
  cr_assert_str_eq (sc_ctl_errname (ENOENT), "ENOENT");
  cr_assert_eq (sc_ctl_errnum ("EEXIST"), EEXIST);
}

Test (errname, accepts_negative_errnos)
{
  cr_assert_str_eq (sc_ctl_errname (-EEXIST), "EEXIST");
}

Test (errname, maps_unknown_values_to_eio)
{
  cr_assert_str_eq (sc_ctl_errname (0), "EIO");
  cr_assert_str_eq (sc_ctl_errname (100000), "EIO");
  cr_assert_eq (sc_ctl_errnum ("ENOTHING"), EIO);
  cr_assert_eq (sc_ctl_errnum (""), EIO);
}

/* ---- text ------------------------------------------------------------ */

Test (time, formats_the_epoch)
{
  char buf[32];

  sc_ctl_format_time (0, buf, sizeof buf);
  cr_assert_str_eq (buf, "1970-01-01T00:00:00.000Z");
}

Test (time, formats_utc_with_milliseconds)
{
  char buf[32];

  sc_ctl_format_time (1795546851123456789ULL, buf, sizeof buf);
  cr_assert_str_eq (buf, "2026-11-24T19:00:51.123Z");
}

Test (time, truncates_to_a_short_buffer)
{
  char buf[8];

  sc_ctl_format_time (0, buf, sizeof buf);
  cr_assert_str_eq (buf, "1970-01");
}

Test (time, survives_the_largest_value)
{
  char buf[32];

  sc_ctl_format_time (UINT64_MAX, buf, sizeof buf);
  cr_assert_str_eq (buf, "2554-07-21T23:34:33.709Z");
}

Test (reason, adds_strerror_only_with_an_errno)
{
  char buf[128];

  sc_ctl_format_reason ("no space", 0, buf, sizeof buf);
  cr_assert_str_eq (buf, "no space");
  sc_ctl_format_reason ("copy failed", EIO, buf, sizeof buf);
  cr_assert_str_eq (buf, "copy failed: Input/output error");
}

Test (snapshot_error, names_the_snapshot)
{
  char buf[128];

  sc_ctl_snapshot_error (-ENOENT, "delete", "foo", buf, sizeof buf);
  cr_assert_str_eq (buf, "no such snapshot: foo");
  sc_ctl_snapshot_error (-EEXIST, "create", "foo", buf, sizeof buf);
  cr_assert_str_eq (buf, "snapshot already exists: foo");
  sc_ctl_snapshot_error (-EIO, "create", NULL, buf, sizeof buf);
  cr_assert_str_eq (buf, "cannot create snapshot: Input/output error");
}

Test (sanitize, replaces_control_characters)
{
  char s[] = "a\tb\nc\x7f" "d\xc3\xa9";

  sc_ctl_sanitize (s);
  cr_assert_str_eq (s, "a?b?c?d\xc3\xa9");
}

Test (u64, parses_plain_decimals)
{
  uint64_t v;

  cr_assert_eq (sc_ctl_parse_u64 ("0", &v), 0);
  cr_assert_eq (v, 0);
  cr_assert_eq (sc_ctl_parse_u64 ("18446744073709551615", &v), 0);
  cr_assert_eq (v, UINT64_MAX);
}

Test (u64, rejects_anything_else)
{
  uint64_t v;

  cr_assert_eq (sc_ctl_parse_u64 ("", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 ("-1", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 ("+1", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 (" 1", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 ("1 ", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 ("0x10", &v), -EINVAL);
  cr_assert_eq (sc_ctl_parse_u64 ("18446744073709551616", &v), -EINVAL);
}

/* ---- writers --------------------------------------------------------- */

Test (write, data_line_escapes_control_characters_in_values)
{
  struct sc_ctl_field f[] = { { "name", "a\tb\nc" }, { "empty", NULL } };
  const char *out;
  int r;

  out = CAPTURE (r, sc_ctl_write_data (capture_fds[1], "snapshot", f, 2));
  cr_assert_eq (r, 0);
  cr_assert_str_eq (out, "* snapshot\tname=a?b?c\tempty=\n");
}

Test (write, data_line_round_trips_through_the_parser)
{
  struct sc_ctl_field f[] = { { "id", "7" }, { "origin", "/x y/z=1" } };
  struct sc_ctl_line line;
  const char *why;
  char *out;
  int r;

  out = (char *) CAPTURE (r, sc_ctl_write_data (capture_fds[1], "volume",
                                                f, 2));
  cr_assert_eq (r, 0);
  out[strlen (out) - 1] = '\0';         /* the LF */
  cr_assert_eq (sc_ctl_parse_reply (out, &line, &why), 0);
  cr_assert_str_eq (sc_ctl_field (&line, "origin"), "/x y/z=1");
}

Test (write, over_long_data_line_is_refused_and_not_written)
{
  static char big[SC_CTL_LINE_MAX];
  struct sc_ctl_field f = { "v", big };
  const char *out;
  int r;

  memset (big, 'x', sizeof big - 1);
  out = CAPTURE (r, sc_ctl_write_data (capture_fds[1], "k", &f, 1));
  cr_assert_eq (r, -EMSGSIZE);
  cr_assert_str_eq (out, "");
}

/* The parser drops fields past the cap, so a writer never sends them. */
Test (write, data_line_with_more_fields_than_the_cap_is_refused)
{
  struct sc_ctl_field f[SC_CTL_FIELDS_MAX + 1];
  const char *out;
  int r, i;

  for (i = 0; i <= SC_CTL_FIELDS_MAX; i++)
    f[i] = (struct sc_ctl_field) { "k", "v" };
  out = CAPTURE (r, sc_ctl_write_data (capture_fds[1], "k", f,
                                       SC_CTL_FIELDS_MAX + 1));
  cr_assert_eq (r, -EMSGSIZE);
  cr_assert_str_eq (out, "");
}

Test (write, err_line_carries_name_and_message)
{
  const char *out;
  int r;

  out = CAPTURE (r, sc_ctl_write_err (capture_fds[1], -ENOENT,
                                      "no such snapshot: %s", "x"));
  cr_assert_eq (r, 0);
  cr_assert_str_eq (out, "ERR ENOENT no such snapshot: x\n");
}

Test (write, err_line_is_sanitized_and_truncated_to_one_valid_line)
{
  static char big[2 * SC_CTL_LINE_MAX];
  struct sc_ctl_line line;
  const char *why;
  char *out;
  int r;

  memset (big, 'm', sizeof big - 1);
  big[10] = '\n';
  out = (char *) CAPTURE (r, sc_ctl_write_err (capture_fds[1], EIO, "%s",
                                               big));
  cr_assert_eq (r, 0);
  cr_assert_eq (strlen (out), SC_CTL_LINE_MAX);
  cr_assert_eq (strchr (out, '\n'), out + SC_CTL_LINE_MAX - 1);
  out[SC_CTL_LINE_MAX - 1] = '\0';
  cr_assert_eq (sc_ctl_parse_reply (out, &line, &why), 0);
  cr_assert_eq (line.message[10], '?');
}

Test (write, ok_line)
{
  const char *out;
  int r;

  out = CAPTURE (r, sc_ctl_write_ok (capture_fds[1]));
  cr_assert_eq (r, 0);
  cr_assert_str_eq (out, "OK\n");
}

Test (write, request_joins_verb_and_arguments)
{
  const char *args[] = { "snap" };
  const char *out;
  int r;

  out = CAPTURE (r, sc_ctl_write_request (capture_fds[1], "DELETE", args, 1));
  cr_assert_eq (r, 0);
  cr_assert_str_eq (out, "DELETE snap\n");
}

Test (write, request_refuses_to_smuggle_a_second_line)
{
  const char *nl[] = { "a\nDELETE-ALL" };
  const char *sp[] = { "a b" };
  const char *empty[] = { "" };
  const char *out;
  int r;

  out = CAPTURE (r, sc_ctl_write_request (capture_fds[1], "DELETE", nl, 1));
  cr_assert_eq (r, -EINVAL);
  cr_assert_str_eq (out, "");
  out = CAPTURE (r, sc_ctl_write_request (capture_fds[1], "DELETE", sp, 1));
  cr_assert_eq (r, -EINVAL);
  out = CAPTURE (r, sc_ctl_write_request (capture_fds[1], "DELETE", empty, 1));
  cr_assert_eq (r, -EINVAL);
  out = CAPTURE (r, sc_ctl_write_request (capture_fds[1], "delete", NULL, 0));
  cr_assert_eq (r, -EINVAL);
}

Test (write, to_a_closed_socket_is_epipe_not_a_signal)
{
  int sv[2];

  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close (sv[1]);
  cr_assert_eq (sc_ctl_write_ok (sv[0]), -EPIPE);
  close (sv[0]);
}

/* ---- reader ---------------------------------------------------------- */

struct feed {
  int sv[2];
  struct sc_ctl_reader rd;
};

/* A socket whose other end has sent `len` bytes of `data` and closed. */
static void
feed (struct feed *f, const void *data, size_t len)
{
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
  cr_assert_eq (write (f->sv[1], data, len), (ssize_t) len);
  close (f->sv[1]);
  sc_ctl_reader_init (&f->rd, f->sv[0]);
}

Test (reader, returns_lines_in_order_then_end_of_input)
{
  struct feed f;
  const char *why;
  char *line;

  feed (&f, "LIST\nINFO\n", 10);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 1);
  cr_assert_str_eq (line, "LIST");
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 1);
  cr_assert_str_eq (line, "INFO");
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 0);
  close (f.sv[0]);
}

Test (reader, joins_a_line_split_across_reads)
{
  struct sc_ctl_reader rd;
  const char *why;
  char *line;
  int sv[2];

  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  sc_ctl_reader_init (&rd, sv[0]);
  cr_assert_eq (write (sv[1], "DEL", 3), 3);
  cr_assert_eq (write (sv[1], "ETE a\nLI", 8), 8);
  cr_assert_eq (sc_ctl_read_line (&rd, &line, &why), 1);
  cr_assert_str_eq (line, "DELETE a");
  cr_assert_eq (write (sv[1], "ST\n", 3), 3);
  cr_assert_eq (sc_ctl_read_line (&rd, &line, &why), 1);
  cr_assert_str_eq (line, "LIST");
  close (sv[0]);
  close (sv[1]);
}

Test (reader, rejects_a_nul_byte_and_reads_on)
{
  struct feed f;
  const char *why = NULL;
  char *line;

  feed (&f, "LI\0ST\nINFO\n", 11);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), -EINVAL);
  cr_assert_not_null (why);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 1);
  cr_assert_str_eq (line, "INFO");
  close (f.sv[0]);
}

Test (reader, accepts_a_line_of_maximum_length)
{
  static char data[SC_CTL_LINE_MAX];
  struct feed f;
  const char *why;
  char *line;

  memset (data, 'A', sizeof data - 1);
  data[sizeof data - 1] = '\n';
  feed (&f, data, sizeof data);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 1);
  cr_assert_eq (strlen (line), SC_CTL_LINE_MAX - 1);
  close (f.sv[0]);
}

Test (reader, rejects_an_over_long_line_and_reads_on)
{
  static char data[3 * SC_CTL_LINE_MAX + 6];
  struct sc_ctl_reader rd;
  const char *why = NULL;
  char *line;
  int sv[2];

  /* Bigger than the socket buffer would take at once, and bigger than
   * the reader's buffer several times over: it must skip as it reads. */
  memset (data, 'A', sizeof data);
  data[sizeof data - 6] = '\n';
  memcpy (data + sizeof data - 5, "INFO\n", 5);
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  sc_ctl_reader_init (&rd, sv[0]);
  cr_assert_eq (write (sv[1], data, sizeof data), (ssize_t) sizeof data);
  close (sv[1]);
  cr_assert_eq (sc_ctl_read_line (&rd, &line, &why), -EINVAL);
  cr_assert_not_null (why);
  cr_assert_eq (sc_ctl_read_line (&rd, &line, &why), 1);
  cr_assert_str_eq (line, "INFO");
  cr_assert_eq (sc_ctl_read_line (&rd, &line, &why), 0);
  close (sv[0]);
}

Test (reader, ends_cleanly_inside_an_over_long_line)
{
  static char data[SC_CTL_LINE_MAX + 10];
  struct feed f;
  const char *why;
  char *line;

  memset (data, 'A', sizeof data);
  feed (&f, data, sizeof data);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), -EINVAL);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 0);
  close (f.sv[0]);
}

Test (reader, rejects_input_ending_mid_line)
{
  struct feed f;
  const char *why = NULL;
  char *line;

  feed (&f, "LIST", 4);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), -EINVAL);
  cr_assert_not_null (why);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 0);
  close (f.sv[0]);
}

Test (reader, reports_an_empty_line_as_a_line)
{
  struct feed f;
  const char *why;
  char *line;

  feed (&f, "\n", 1);
  cr_assert_eq (sc_ctl_read_line (&f.rd, &line, &why), 1);
  cr_assert_str_eq (line, "");
  close (f.sv[0]);
}

Test (uuid, format_and_parse)
{
  char buf[SC_CTL_UUID_LEN];
  uint8_t back[16];
  static const uint8_t set_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                     12, 13, 14, 15, 16 };
  sc_uuid_format (set_a, buf);
  cr_assert_str_eq (buf, "01020304-0506-0708-090a-0b0c0d0e0f10");
  cr_assert_eq (sc_uuid_parse (buf, back), 0);
  cr_assert_eq (memcmp (back, set_a, 16), 0);
  cr_assert_eq (sc_uuid_parse ("01020304-0506-0708-090A-0B0C0D0E0F10",
                               back), 0);
  cr_assert_eq (sc_uuid_parse ("01020304-0506-0708-090a-0b0c0d0e0f1",
                               back), -EINVAL);
  cr_assert_eq (sc_uuid_parse ("0102030405060708090a0b0c0d0e0f1011",
                               back), -EINVAL);
  cr_assert_eq (sc_uuid_parse ("01020304-0506-0708-090a-0b0c0d0e0fxx",
                               back), -EINVAL);
  cr_assert_eq (sc_uuid_parse ("", back), -EINVAL);
}

Test (uuid, random_is_rfc4122_version_4)
{
  char buf[SC_CTL_UUID_LEN];
  uint8_t a[16], b[16];

  cr_assert_eq (sc_uuid_random (a), 0);
  cr_assert_eq (sc_uuid_random (b), 0);
  cr_assert_neq (memcmp (a, b, 16), 0);
  sc_uuid_format (a, buf);
  cr_assert_eq (buf[14], '4', "version nibble in %s", buf);
  cr_assert (strchr ("89ab", buf[19]), "variant in %s", buf);
}
