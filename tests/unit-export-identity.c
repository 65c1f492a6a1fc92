/* Unit tests: the snapshot UUID an export's description carries
 * (tools/export-identity.c): the uuid= word of the plugin's snapshot and
 * clone descriptions, and none in a description that has no such word,
 * a shorter value, or the word glued to another. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tools/export-identity.h"

#define U "0f8e5a3c-1b2d-4e6f-8a9b-0c1d2e3f4a5b"

static void
expect_uuid (const char *desc, const char *want)
{
  char got[37] = "";
  int r = sc_export_description_uuid (desc, got);
  if (want) {
    cr_assert_eq (r, 0, "%s", desc);
    cr_assert_str_eq (got, want, "%s", desc);
  }
  else
    cr_assert_eq (r, -ENOENT, "%s: found %s", desc, got);
}

Test (export_identity, the_plugins_descriptions)
{
  expect_uuid ("snapshot id=1 uuid=" U " created=2026-12-05T04:42:29.076Z "
               "(read-only)", U);
  expect_uuid ("writable clone of s1 id=2 uuid=" U " created=x (read-write)",
               U);
  expect_uuid ("uuid=" U, U);
}

Test (export_identity, none)
{
  expect_uuid ("snapshot id=1 created=2026-12-05T04:42:29.076Z (read-only)",
               NULL);
  expect_uuid ("", NULL);
  expect_uuid ("uuid=0f8e5a3c", NULL);                  /* too short */
  expect_uuid ("uuid=" U "x", NULL);                    /* too long */
  expect_uuid ("myuuid=" U, NULL);                      /* another word */
  expect_uuid ("live volume /dev/vg/uuid=" U, NULL);    /* inside a path */
}

Test (export_identity, the_first_good_word)
{
  expect_uuid ("olduuid=" U " uuid=" U, U);
  expect_uuid ("uuid=short uuid=" U, U);
}
