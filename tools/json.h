/* shadowcopy: the CLI's one JSON emitter.
 *
 * Every JSON document the CLI prints (list, info, stats, writers with
 * --json) is written through here, so that every string is escaped and
 * the commas are always right.  The layout is the one scripts have seen
 * so far: an object on one line ({"key": value, "key": value}), each
 * element of an array on a line of its own, indented two spaces per
 * level, and a newline after the document:
 *
 *   [
 *     {"id": 1, "name": "s1"},
 *     {"id": 2, "name": "s2"}
 *   ]
 *
 * Strings: '"' and '\' are escaped with a backslash, control characters
 * (U+0000 to U+001F, and DEL) as \u00XX, and each byte that is not part
 * of well-formed UTF-8 (a stray continuation byte, a truncated or
 * overlong sequence, a surrogate, beyond U+10FFFF) as \ufffd, the
 * replacement character: the output is valid JSON in UTF-8 whatever the
 * bytes of a path, a server's message or a writer's output.
 *
 * Calls must nest: a value inside an object follows sc_json_key, and
 * every begin has its end; a broken sequence is a bug (assert).  Write
 * errors are the stream's (ferror), as for the CLI's other output.
 */
#ifndef SHADOWCOPY_TOOLS_JSON_H
#define SHADOWCOPY_TOOLS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SC_JSON_DEPTH_MAX 8

struct sc_json {
  FILE *f;
  unsigned depth;               /* 0: outside the document */
  bool in_array[SC_JSON_DEPTH_MAX + 1];
  uint64_t members[SC_JSON_DEPTH_MAX + 1];  /* written at each depth */
  bool have_key;                /* a key awaits its value */
};

void sc_json_init (struct sc_json *j, FILE *f);

void sc_json_begin_object (struct sc_json *j);
void sc_json_end_object (struct sc_json *j);
void sc_json_begin_array (struct sc_json *j);
void sc_json_end_array (struct sc_json *j);

/* The key of the next member of the current object. */
void sc_json_key (struct sc_json *j, const char *key);

void sc_json_string (struct sc_json *j, const char *s);
void sc_json_uint (struct sc_json *j, uint64_t n);
void sc_json_int (struct sc_json *j, int64_t n);
/* The shortest decimal that reads back as d; null when not finite. */
void sc_json_double (struct sc_json *j, double d);
void sc_json_bool (struct sc_json *j, bool b);
void sc_json_null (struct sc_json *j);
/* A number someone else formatted (a server's counter): as it is when
 * it is a JSON number, else as a string. */
void sc_json_number_text (struct sc_json *j, const char *text);

/* key + value, for the common members. */
void sc_json_member_string (struct sc_json *j, const char *key,
                            const char *s);
void sc_json_member_uint (struct sc_json *j, const char *key, uint64_t n);
void sc_json_member_bool (struct sc_json *j, const char *key, bool b);

#endif
