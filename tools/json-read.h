/* shadowcopy: a JSON document read into a tree, for the output of other
 * programs (qemu-img info --output=json).
 *
 * A value is null, a boolean, a number (kept as its text), a string
 * (decoded: escapes and \uXXXX, surrogate pairs included, into UTF-8;
 * NUL refused), an array or an object (members in their order).  The
 * reader is strict JSON (RFC 8259), bounded: nesting at most
 * SC_JSON_DEPTH_MAX, and it never reads past `len`.
 *
 * The manifest has its own reader (manifest.c), which reads straight
 * into its fields; this one is for documents whose shape is another
 * program's.
 *
 * Errors: 0 or a negative errno (-EINVAL: not JSON, -ENOMEM), with one
 * line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_JSON_READ_H
#define SHADOWCOPY_TOOLS_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

#define SC_JSON_DEPTH_MAX 64

enum sc_jv_type {
  SC_JV_NULL, SC_JV_BOOL, SC_JV_NUMBER, SC_JV_STRING, SC_JV_ARRAY,
  SC_JV_OBJECT,
};

struct sc_jv {
  enum sc_jv_type type;
  bool b;                       /* SC_JV_BOOL */
  char *s;                      /* SC_JV_STRING, SC_JV_NUMBER: malloc'd */
  struct sc_jv *items;          /* an array's items, an object's values */
  char **keys;                  /* an object's member names */
  size_t n;
};

/* Parse text[0..len) (one value, white space around it) into *out. */
int sc_jv_parse (const char *text, size_t len, struct sc_jv *out, char *err,
                 size_t errlen);

/* The member `key` of an object (the first of that name), or NULL when
 * v is no object or has none. */
const struct sc_jv *sc_jv_get (const struct sc_jv *v, const char *key);

/* The string member `key` of an object, or NULL (absent, or no string). */
const char *sc_jv_get_string (const struct sc_jv *v, const char *key);

/* Free what parse allocated (not v itself). */
void sc_jv_free (struct sc_jv *v);

#endif
