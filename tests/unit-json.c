/* Unit tests: the CLI's JSON emitter (tools/json.c): the layout of list
 * and info, commas, numbers, and strings escaped whatever their bytes. */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tools/json.h"

/* ---- helpers --------------------------------------------------------- */

static char *out;
static size_t outlen;
static struct sc_json j;

static void
open_output (void)
{
  FILE *f = open_memstream (&out, &outlen);

  cr_assert_not_null (f);
  sc_json_init (&j, f);
}

/* What was written so far (the stream stays open). */
static const char *
written (void)
{
  cr_assert_eq (fflush (j.f), 0);
  return out;
}

static void
close_output (void)
{
  fclose (j.f);
  free (out);
  out = NULL;
}

TestSuite (json, .init = open_output, .fini = close_output);

/* One string as a whole document. */
static const char *
string_doc (const char *s)
{
  sc_json_string (&j, s);
  return written ();
}

/* ---- layout ---------------------------------------------------------- */

Test (json, empty_array_and_object_each_end_with_a_newline)
{
  sc_json_begin_array (&j);
  sc_json_end_array (&j);
  sc_json_begin_object (&j);
  sc_json_end_object (&j);
  cr_assert_str_eq (written (), "[]\n{}\n");
}

Test (json, array_of_objects_has_one_element_per_line)
{
  sc_json_begin_array (&j);
  for (uint64_t id = 1; id <= 2; id++) {
    sc_json_begin_object (&j);
    sc_json_member_uint (&j, "id", id);
    sc_json_member_string (&j, "name", id == 1 ? "s1" : "s2");
    sc_json_member_bool (&j, "auto_release", id == 2);
    sc_json_end_object (&j);
  }
  sc_json_end_array (&j);
  cr_assert_str_eq (written (),
                    "[\n"
                    "  {\"id\": 1, \"name\": \"s1\", "
                    "\"auto_release\": false},\n"
                    "  {\"id\": 2, \"name\": \"s2\", "
                    "\"auto_release\": true}\n"
                    "]\n");
}

Test (json, nested_object_stays_on_its_parents_line)
{
  sc_json_begin_object (&j);
  sc_json_member_uint (&j, "snapshots", 3);
  sc_json_key (&j, "holds");
  sc_json_begin_object (&j);
  sc_json_member_uint (&j, "count", 7);
  sc_json_member_uint (&j, "max_ns", 0);
  sc_json_end_object (&j);
  sc_json_member_string (&j, "on_full", "delete-oldest");
  sc_json_end_object (&j);
  cr_assert_str_eq (written (),
                    "{\"snapshots\": 3, \"holds\": {\"count\": 7, "
                    "\"max_ns\": 0}, \"on_full\": \"delete-oldest\"}\n");
}

Test (json, array_inside_an_object_is_indented_by_depth)
{
  sc_json_begin_object (&j);
  sc_json_key (&j, "a");
  sc_json_begin_array (&j);
  sc_json_uint (&j, 1);
  sc_json_null (&j);
  sc_json_end_array (&j);
  sc_json_key (&j, "b");
  sc_json_begin_array (&j);
  sc_json_end_array (&j);
  sc_json_end_object (&j);
  cr_assert_str_eq (written (), "{\"a\": [\n    1,\n    null\n  ], "
                    "\"b\": []}\n");
}

/* ---- numbers --------------------------------------------------------- */

Test (json, integers_cover_their_whole_range)
{
  sc_json_begin_array (&j);
  sc_json_uint (&j, UINT64_MAX);
  sc_json_int (&j, INT64_MIN);
  sc_json_int (&j, -1);
  sc_json_uint (&j, 0);
  sc_json_end_array (&j);
  cr_assert_str_eq (written (), "[\n  18446744073709551615,\n"
                    "  -9223372036854775808,\n  -1,\n  0\n]\n");
}

Test (json, doubles_are_shortest_round_trip_and_null_when_not_finite)
{
  sc_json_begin_array (&j);
  sc_json_double (&j, 0.1);
  sc_json_double (&j, 3.0);
  sc_json_double (&j, -2.5e-300);
  sc_json_double (&j, 1.0 / 3.0);
  sc_json_double (&j, NAN);
  sc_json_double (&j, -INFINITY);
  sc_json_end_array (&j);
  cr_assert_str_eq (written (), "[\n  0.1,\n  3,\n  -2.5e-300,\n"
                    "  0.3333333333333333,\n  null,\n  null\n]\n");
}

Test (json, number_text_is_kept_only_when_it_is_a_json_number)
{
  static const struct { const char *text, *want; } cases[] = {
    { "0", "0\n" }, { "12", "12\n" }, { "-1", "-1\n" },
    { "1.500", "1.500\n" }, { "2e10", "2e10\n" }, { "-0.5E-3", "-0.5E-3\n" },
    { "", "\"\"\n" }, { "-", "\"-\"\n" }, { "1.2.3", "\"1.2.3\"\n" },
    { "01", "\"01\"\n" }, { "1.", "\"1.\"\n" }, { ".5", "\".5\"\n" },
    { "inf", "\"inf\"\n" }, { "nan", "\"nan\"\n" }, { "1e", "\"1e\"\n" },
    { "12 ", "\"12 \"\n" }, { "0x10", "\"0x10\"\n" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    close_output ();
    open_output ();
    sc_json_number_text (&j, cases[i].text);
    cr_assert_str_eq (written (), cases[i].want, "'%s'", cases[i].text);
  }
}

/* ---- strings --------------------------------------------------------- */

Test (json, quotes_and_backslashes_are_escaped)
{
  cr_assert_str_eq (string_doc ("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"\n");
}

Test (json, control_characters_are_escaped_as_u00xx)
{
  cr_assert_str_eq (string_doc ("\x01\t\n\r\x1b\x1f\x7f "),
                    "\"\\u0001\\u0009\\u000a\\u000d\\u001b\\u001f"
                    "\\u007f \"\n");
}

Test (json, well_formed_utf8_passes_through)
{
  const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  char want[64];

  snprintf (want, sizeof want, "\"%s\"\n", s);
  cr_assert_str_eq (string_doc (s), want);
}

Test (json, each_byte_of_ill_formed_utf8_becomes_a_replacement_character)
{
  /* stray continuation, invalid lead, overlong '/', surrogate D800,
   * beyond U+10FFFF, and a sequence cut short by the end */
  cr_assert_str_eq (string_doc ("\x80|\xff|\xc0\xaf|\xed\xa0\x80|"
                                "\xf4\x90\x80\x80|\xe2\x82"),
                    "\"\\ufffd|\\ufffd|\\ufffd\\ufffd|"
                    "\\ufffd\\ufffd\\ufffd|"
                    "\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"\n");
}

Test (json, keys_are_escaped_too)
{
  sc_json_begin_object (&j);
  sc_json_member_uint (&j, "a\"b\n", 1);
  sc_json_end_object (&j);
  cr_assert_str_eq (written (), "{\"a\\\"b\\u000a\": 1}\n");
}

/* What `shadowcopy writers --json` prints for a writer whose path and
 * output hold odd bytes, and `list --json` for an odd reason. */
Test (json, writer_record_with_odd_bytes_stays_valid_json)
{
  sc_json_begin_array (&j);
  sc_json_begin_object (&j);
  sc_json_member_string (&j, "writer", "/etc/w\"q\\\x01");
  sc_json_member_string (&j, "result", "exit status 3");
  sc_json_member_string (&j, "output", "a\"b\\c\tq\x7f \xc3\xa9 \xff end");
  sc_json_end_object (&j);
  sc_json_begin_object (&j);
  sc_json_member_string (&j, "name", "s.1:2+3-4_5");
  sc_json_member_string (&j, "reason", "origin \xfe\x0a changed");
  sc_json_end_object (&j);
  sc_json_end_array (&j);
  cr_assert_str_eq (written (),
                    "[\n"
                    "  {\"writer\": \"/etc/w\\\"q\\\\\\u0001\", "
                    "\"result\": \"exit status 3\", "
                    "\"output\": \"a\\\"b\\\\c\\u0009q\\u007f \xc3\xa9 "
                    "\\ufffd end\"},\n"
                    "  {\"name\": \"s.1:2+3-4_5\", "
                    "\"reason\": \"origin \\ufffd\\u000a changed\"}\n"
                    "]\n");
}
