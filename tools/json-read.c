/* shadowcopy: a JSON document read into a tree (json-read.h).
 *
 * A recursive-descent reader whose recursion is bounded by
 * SC_JSON_DEPTH_MAX; every value it builds is freed on any error, so a
 * failed parse leaves *out empty.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/json-read.h"

struct reader {
  const char *p, *end;
  char *err;
  size_t errlen;
  int failed;                   /* -EINVAL or -ENOMEM, once said */
};

static int __attribute__ ((format (printf, 2, 3)))
bad (struct reader *r, const char *fmt, ...)
{
  va_list ap;

  if (r->failed)
    return r->failed;
  va_start (ap, fmt);
  if (r->err && r->errlen)
    vsnprintf (r->err, r->errlen, fmt, ap);
  va_end (ap);
  r->failed = -EINVAL;
  return -EINVAL;
}

static int
nomem (struct reader *r)
{
  if (!r->failed && r->err && r->errlen)
    snprintf (r->err, r->errlen, "%s", strerror (ENOMEM));
  r->failed = -ENOMEM;
  return -ENOMEM;
}

static void
skip_ws (struct reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
                           *r->p == '\r'))
    r->p++;
}

/* A growing buffer for a decoded string. */
struct buf { char *s; size_t n, cap; };

static int
buf_add (struct reader *r, struct buf *b, const char *s, size_t k)
{
  if (b->n + k + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->n + k + 1)
      cap *= 2;
    char *p = realloc (b->s, cap);
    if (!p)
      return nomem (r);
    b->s = p;
    b->cap = cap;
  }
  memcpy (b->s + b->n, s, k);
  b->n += k;
  b->s[b->n] = '\0';
  return 0;
}

static int
hex4 (struct reader *r, unsigned *out)
{
  unsigned v = 0;

  if (r->end - r->p < 4)
    return bad (r, "short \\u escape");
  for (int i = 0; i < 4; i++) {
    char c = *r->p++;
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned) (c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned) (c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned) (c - 'A' + 10);
    else
      return bad (r, "bad \\u escape");
  }
  *out = v;
  return 0;
}

/* A \u escape (after the "\u"), a surrogate pair as one, into UTF-8. */
static int
unicode_escape (struct reader *r, struct buf *b)
{
  unsigned u, lo;
  char out[4];
  size_t k;

  if (hex4 (r, &u) < 0)
    return -EINVAL;
  if (u >= 0xd800 && u <= 0xdbff) {
    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
      return bad (r, "a lone surrogate in a string");
    r->p += 2;
    if (hex4 (r, &lo) < 0)
      return -EINVAL;
    if (lo < 0xdc00 || lo > 0xdfff)
      return bad (r, "a lone surrogate in a string");
    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
  }
  else if (u >= 0xdc00 && u <= 0xdfff)
    return bad (r, "a lone surrogate in a string");
  if (u == 0)
    return bad (r, "NUL in a string");
  if (u < 0x80) {
    out[0] = (char) u;
    k = 1;
  }
  else if (u < 0x800) {
    out[0] = (char) (0xc0 | (u >> 6));
    out[1] = (char) (0x80 | (u & 0x3f));
    k = 2;
  }
  else if (u < 0x10000) {
    out[0] = (char) (0xe0 | (u >> 12));
    out[1] = (char) (0x80 | ((u >> 6) & 0x3f));
    out[2] = (char) (0x80 | (u & 0x3f));
    k = 3;
  }
  else {
    out[0] = (char) (0xf0 | (u >> 18));
    out[1] = (char) (0x80 | ((u >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((u >> 6) & 0x3f));
    out[3] = (char) (0x80 | (u & 0x3f));
    k = 4;
  }
  return buf_add (r, b, out, k);
}

/* A string (at its opening quote), decoded into *out (malloc'd). */
static int
read_string (struct reader *r, char **out)
{
  struct buf b = { NULL, 0, 0 };
  int ret = 0;

  r->p++;                       /* the '"' */
  if (buf_add (r, &b, "", 0) < 0)
    return -ENOMEM;
  for (;;) {
    if (r->p >= r->end) {
      ret = bad (r, "unterminated string");
      break;
    }
    char c = *r->p++;
    if (c == '"')
      break;
    if ((unsigned char) c < 0x20) {
      ret = bad (r, "control character in a string");
      break;
    }
    if (c != '\\') {
      ret = buf_add (r, &b, &c, 1);
    }
    else if (r->p >= r->end)
      ret = bad (r, "unterminated string");
    else {
      char e = *r->p++, o;
      switch (e) {
      case '"': case '\\': case '/': o = e; break;
      case 'b': o = '\b'; break;
      case 'f': o = '\f'; break;
      case 'n': o = '\n'; break;
      case 'r': o = '\r'; break;
      case 't': o = '\t'; break;
      case 'u': o = 0; break;
      default: o = 0; ret = bad (r, "bad escape in a string"); break;
      }
      if (ret == 0)
        ret = e == 'u' ? unicode_escape (r, &b) : buf_add (r, &b, &o, 1);
    }
    if (ret < 0)
      break;
  }
  if (ret < 0) {
    free (b.s);
    return ret;
  }
  *out = b.s;
  return 0;
}

static bool
digit (struct reader *r)
{
  return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* A number, by JSON's grammar, kept as its text. */
static int
read_number (struct reader *r, char **out)
{
  const char *start = r->p;

  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (!digit (r))
    return bad (r, "bad number");
  if (*r->p == '0')
    r->p++;
  else
    while (digit (r))
      r->p++;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (!digit (r))
      return bad (r, "bad number");
    while (digit (r))
      r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (!digit (r))
      return bad (r, "bad number");
    while (digit (r))
      r->p++;
  }
  if (!(*out = strndup (start, (size_t) (r->p - start))))
    return nomem (r);
  return 0;
}

static int
literal (struct reader *r, const char *word)
{
  size_t k = strlen (word);
  if ((size_t) (r->end - r->p) < k || memcmp (r->p, word, k) != 0)
    return bad (r, "unexpected character");
  r->p += k;
  return 0;
}

static int read_value (struct reader *r, struct sc_jv *v, unsigned depth);

/* Room for one more item (and key) in an array or object. */
static int
grow (struct reader *r, struct sc_jv *v, size_t *cap)
{
  if (v->n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 8;
  struct sc_jv *items = reallocarray (v->items, c, sizeof *items);
  if (!items)
    return nomem (r);
  v->items = items;
  if (v->type == SC_JV_OBJECT) {
    char **keys = reallocarray (v->keys, c, sizeof *keys);
    if (!keys)
      return nomem (r);
    v->keys = keys;
  }
  *cap = c;
  return 0;
}

/* An array or object (at its opening bracket). */
static int
read_container (struct reader *r, struct sc_jv *v, unsigned depth)
{
  bool object = *r->p == '{';
  char close = object ? '}' : ']';
  size_t cap = 0;

  v->type = object ? SC_JV_OBJECT : SC_JV_ARRAY;
  if (depth >= SC_JSON_DEPTH_MAX)
    return bad (r, "nested deeper than %d", SC_JSON_DEPTH_MAX);
  r->p++;
  skip_ws (r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return 0;
  }
  for (;;) {
    char *key = NULL;
    int ret;

    skip_ws (r);
    if (object) {
      if (r->p >= r->end || *r->p != '"')
        return bad (r, "expected a member name");
      if ((ret = read_string (r, &key)) < 0)
        return ret;
      skip_ws (r);
      if (r->p >= r->end || *r->p != ':') {
        free (key);
        return bad (r, "expected ':'");
      }
      r->p++;
    }
    if ((ret = grow (r, v, &cap)) < 0) {
      free (key);
      return ret;
    }
    memset (&v->items[v->n], 0, sizeof v->items[v->n]);
    if (object)
      v->keys[v->n] = key;
    v->n++;                     /* freed with v from here on */
    if ((ret = read_value (r, &v->items[v->n - 1], depth + 1)) < 0)
      return ret;
    skip_ws (r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return 0;
    }
    return bad (r, "expected ',' or '%c'", close);
  }
}

static int
read_value (struct reader *r, struct sc_jv *v, unsigned depth)
{
  skip_ws (r);
  if (r->p >= r->end)
    return bad (r, "unexpected end");
  switch (*r->p) {
  case '{': case '[':
    return read_container (r, v, depth);
  case '"':
    v->type = SC_JV_STRING;
    return read_string (r, &v->s);
  case 't':
    v->type = SC_JV_BOOL;
    v->b = true;
    return literal (r, "true");
  case 'f':
    v->type = SC_JV_BOOL;
    return literal (r, "false");
  case 'n':
    v->type = SC_JV_NULL;
    return literal (r, "null");
  default:
    v->type = SC_JV_NUMBER;
    return read_number (r, &v->s);
  }
}

int
sc_jv_parse (const char *text, size_t len, struct sc_jv *out, char *err,
             size_t errlen)
{
  struct reader r = { text, text + len, err, errlen, 0 };
  int ret;

  memset (out, 0, sizeof *out);
  ret = read_value (&r, out, 0);
  if (ret == 0) {
    skip_ws (&r);
    if (r.p != r.end)
      ret = bad (&r, "text after the JSON value");
  }
  if (ret < 0) {
    if (r.err && r.errlen && r.failed == -EINVAL) {
      char where[64];
      snprintf (where, sizeof where, " at byte %zu", (size_t) (r.p - text));
      size_t k = strlen (r.err);
      if (k + strlen (where) < r.errlen)
        memcpy (r.err + k, where, strlen (where) + 1);
    }
    sc_jv_free (out);
  }
  return ret;
}

const struct sc_jv *
sc_jv_get (const struct sc_jv *v, const char *key)
{
  if (!v || v->type != SC_JV_OBJECT)
    return NULL;
  for (size_t i = 0; i < v->n; i++)
    if (strcmp (v->keys[i], key) == 0)
      return &v->items[i];
  return NULL;
}

const char *
sc_jv_get_string (const struct sc_jv *v, const char *key)
{
  const struct sc_jv *m = sc_jv_get (v, key);
  return m && m->type == SC_JV_STRING ? m->s : NULL;
}

void
sc_jv_free (struct sc_jv *v)
{
  for (size_t i = 0; i < v->n; i++) {
    sc_jv_free (&v->items[i]);
    if (v->keys)
      free (v->keys[i]);
  }
  free (v->items);
  free (v->keys);
  free (v->s);
  memset (v, 0, sizeof *v);
}
