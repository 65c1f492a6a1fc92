/* Unit tests: the JSON reader for other programs' output (tools/json-read.c):
 * qemu-img's shape read, members found, strings decoded (escapes,
 * surrogate pairs), and malformed or too deep documents refused with a
 * message, never read past their end. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tools/json-read.h"

static int
parse (const char *text, struct sc_jv *v, char *err, size_t errlen)
{
  return sc_jv_parse (text, strlen (text), v, err, errlen);
}

Test (json_read, reads_qemu_img_backing_chain_shape)
{
  const char *text =
    "[\n  {\n    \"virtual-size\": 4194304,\n    \"filename\": \"top\",\n"
    "    \"format\": \"qcow2\",\n    \"format-specific\": {\"type\": "
    "\"qcow2\", \"data\": {\"corrupt\": false, \"x\": [1, 2.5e3, -0]}},\n"
    "    \"backing-filename\": \"base\",\n    \"dirty-flag\": false\n  },\n"
    "  {\"filename\": \"base\", \"format\": \"raw\", \"n\": null}\n]\n";
  struct sc_jv v;
  char err[256];

  cr_assert_eq (parse (text, &v, err, sizeof err), 0, "%s", err);
  cr_assert_eq (v.type, SC_JV_ARRAY);
  cr_assert_eq (v.n, 2);
  cr_assert_str_eq (sc_jv_get_string (&v.items[0], "filename"), "top");
  cr_assert_str_eq (sc_jv_get_string (&v.items[0], "backing-filename"),
                    "base");
  cr_assert_null (sc_jv_get_string (&v.items[1], "backing-filename"));
  cr_assert_null (sc_jv_get_string (&v.items[0], "virtual-size"));
  cr_assert_eq (sc_jv_get (&v.items[0], "virtual-size")->type,
                SC_JV_NUMBER);
  cr_assert_str_eq (sc_jv_get (&v.items[0], "virtual-size")->s, "4194304");
  cr_assert_eq (sc_jv_get (&v.items[1], "n")->type, SC_JV_NULL);
  cr_assert_null (sc_jv_get (&v, "filename"), "an array has no members");
  sc_jv_free (&v);
}

Test (json_read, decodes_escapes_and_surrogate_pairs)
{
  struct sc_jv v;
  char err[256];

  cr_assert_eq (parse ("{\"f\": \"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}",
                       &v, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq (sc_jv_get_string (&v, "f"),
                    "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
  sc_jv_free (&v);
}

Test (json_read, refuses_malformed_documents)
{
  static const char *const bad[] = {
    "", "[", "{", "{\"a\"}", "{\"a\": 1,}", "[1,]", "[01]", "[1.]", "[-]",
    "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u0000\"",
    "\"a\tb\"", "tru", "nul", "[1] [2]", "{1: 2}", "[\"\\u12\"]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct sc_jv v;
    char err[256] = "";
    cr_assert_eq (parse (bad[i], &v, err, sizeof err), -EINVAL,
                  "accepted: %s", bad[i]);
    cr_assert_neq (err[0], '\0', "no message for: %s", bad[i]);
    cr_assert_eq (v.n, 0);
    cr_assert_null (v.items);
  }
}

Test (json_read, bounds_nesting)
{
  char deep[2 * SC_JSON_DEPTH_MAX + 8], ok[2 * SC_JSON_DEPTH_MAX];
  struct sc_jv v;
  char err[256];
  size_t n = SC_JSON_DEPTH_MAX + 1;

  memset (deep, '[', n);
  memset (deep + n, ']', n);
  deep[2 * n] = '\0';
  cr_assert_eq (parse (deep, &v, err, sizeof err), -EINVAL);
  cr_assert (strstr (err, "nested deeper") != NULL, "%s", err);
  n = SC_JSON_DEPTH_MAX;
  memset (ok, '[', n);
  memset (ok + n, ']', n - 1);
  ok[2 * n - 1] = '\0';
  memcpy (deep, ok, 2 * n - 1);
  deep[2 * n - 1] = ']';
  deep[2 * n] = '\0';
  cr_assert_eq (parse (deep, &v, err, sizeof err), 0, "%s", err);
  sc_jv_free (&v);
}

Test (json_read, never_reads_past_len)
{
  /* The text goes on past len: a reader that looked would see it. */
  const char text[] = "[\"ab\"]xyz";
  struct sc_jv v;
  char err[256];

  cr_assert_eq (sc_jv_parse (text, 6, &v, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq (v.items[0].s, "ab");
  sc_jv_free (&v);
  cr_assert_eq (sc_jv_parse (text, 4, &v, err, sizeof err), -EINVAL);
}
