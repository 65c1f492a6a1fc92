/* shadowcopy: the CLI's one JSON emitter (see json.h). */
#include <config.h>

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "tools/json.h"

/* ---- strings --------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0.
 * Stops at the terminating NUL, which is never a continuation byte. */
static size_t
utf8_length (const unsigned char *s)
{
  unsigned char lo = 0x80, hi = 0xbf;   /* the second byte's range */
  size_t n, i;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef) {
    n = 3;
    if (s[0] == 0xe0)
      lo = 0xa0;                /* overlong */
    else if (s[0] == 0xed)
      hi = 0x9f;                /* UTF-16 surrogates */
  }
  else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    n = 4;
    if (s[0] == 0xf0)
      lo = 0x90;                /* overlong */
    else if (s[0] == 0xf4)
      hi = 0x8f;                /* beyond U+10FFFF */
  }
  else
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

static void
write_string (FILE *f, const char *str)
{
  const unsigned char *s = (const unsigned char *) str;
  size_t n;

  putc ('"', f);
  for (; *s; s += n) {
    n = utf8_length (s);
    if (n == 0) {
      fputs ("\\ufffd", f);
      n = 1;
    }
    else if (*s == '"' || *s == '\\')
      fprintf (f, "\\%c", *s);
    else if (*s < 0x20 || *s == 0x7f)
      fprintf (f, "\\u%04x", *s);
    else
      fwrite (s, 1, n, f);
  }
  putc ('"', f);
}

/* ---- layout ---------------------------------------------------------- */

void
sc_json_init (struct sc_json *j, FILE *f)
{
  *j = (struct sc_json) { .f = f };
}

static void
newline_indent (struct sc_json *j, unsigned depth)
{
  putc ('\n', j->f);
  for (unsigned i = 0; i < depth; i++)
    fputs ("  ", j->f);
}

/* Before a value: in an array its comma and its line, in an object the
 * key already written. */
static void
before_value (struct sc_json *j)
{
  if (j->depth == 0)
    return;
  if (j->in_array[j->depth]) {
    if (j->members[j->depth]++)
      putc (',', j->f);
    newline_indent (j, j->depth);
    return;
  }
  assert (j->have_key);
  j->have_key = false;
}

/* After a value: the document ends with a newline. */
static void
after_value (struct sc_json *j)
{
  if (j->depth == 0)
    putc ('\n', j->f);
}

static void
begin (struct sc_json *j, bool array)
{
  before_value (j);
  assert (j->depth < SC_JSON_DEPTH_MAX);
  putc (array ? '[' : '{', j->f);
  j->depth++;
  j->in_array[j->depth] = array;
  j->members[j->depth] = 0;
}

void
sc_json_begin_object (struct sc_json *j)
{
  begin (j, false);
}

void
sc_json_begin_array (struct sc_json *j)
{
  begin (j, true);
}

void
sc_json_end_object (struct sc_json *j)
{
  assert (j->depth > 0 && !j->in_array[j->depth] && !j->have_key);
  putc ('}', j->f);
  j->depth--;
  after_value (j);
}

void
sc_json_end_array (struct sc_json *j)
{
  assert (j->depth > 0 && j->in_array[j->depth]);
  if (j->members[j->depth])
    newline_indent (j, j->depth - 1);
  putc (']', j->f);
  j->depth--;
  after_value (j);
}

void
sc_json_key (struct sc_json *j, const char *key)
{
  assert (j->depth > 0 && !j->in_array[j->depth] && !j->have_key);
  if (j->members[j->depth]++)
    fputs (", ", j->f);
  write_string (j->f, key);
  fputs (": ", j->f);
  j->have_key = true;
}

/* ---- values ---------------------------------------------------------- */

/* A value already formatted as JSON. */
static void
write_token (struct sc_json *j, const char *token)
{
  before_value (j);
  fputs (token, j->f);
  after_value (j);
}

void
sc_json_string (struct sc_json *j, const char *s)
{
  before_value (j);
  write_string (j->f, s);
  after_value (j);
}

void
sc_json_uint (struct sc_json *j, uint64_t n)
{
  char buf[24];

  snprintf (buf, sizeof buf, "%" PRIu64, n);
  write_token (j, buf);
}

void
sc_json_int (struct sc_json *j, int64_t n)
{
  char buf[24];

  snprintf (buf, sizeof buf, "%" PRId64, n);
  write_token (j, buf);
}

void
sc_json_double (struct sc_json *j, double d)
{
  char buf[32];

  if (!isfinite (d)) {
    write_token (j, "null");
    return;
  }
  for (int digits = 1; digits <= 17; digits++) {
    snprintf (buf, sizeof buf, "%.*g", digits, d);
    if (strtod (buf, NULL) == d)
      break;
  }
  write_token (j, buf);
}

void
sc_json_bool (struct sc_json *j, bool b)
{
  write_token (j, b ? "true" : "false");
}

void
sc_json_null (struct sc_json *j)
{
  write_token (j, "null");
}

/* Skip the digits at *s; how many there were. */
static size_t
skip_digits (const char **s)
{
  const char *p = *s;

  while (**s >= '0' && **s <= '9')
    (*s)++;
  return *s - p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
is_json_number (const char *s)
{
  if (*s == '-')
    s++;
  if (*s == '0')
    s++;
  else if (*s < '1' || *s > '9' || !skip_digits (&s))
    return false;
  if (*s == '.' && (s++, !skip_digits (&s)))
    return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    if (!skip_digits (&s))
      return false;
  }
  return *s == '\0';
}

void
sc_json_number_text (struct sc_json *j, const char *text)
{
  if (is_json_number (text))
    write_token (j, text);
  else
    sc_json_string (j, text);
}

void
sc_json_member_string (struct sc_json *j, const char *key, const char *s)
{
  sc_json_key (j, key);
  sc_json_string (j, s);
}

void
sc_json_member_uint (struct sc_json *j, const char *key, uint64_t n)
{
  sc_json_key (j, key);
  sc_json_uint (j, n);
}

void
sc_json_member_bool (struct sc_json *j, const char *key, bool b)
{
  sc_json_key (j, key);
  sc_json_bool (j, b);
}
