/* Unit tests: sc_size_parse, the one parser of sizes given by the user
 * (the plugin's chunk-size= and diff-max=, the CLI's resize --max), in
 * both of its spellings. */
#include <config.h>

#include <errno.h>
#include <stdint.h>

#include <criterion/criterion.h>

#include "engine/size.h"

#define CLI (SC_SIZE_PERCENT | SC_SIZE_UNBOUNDED)
#define PLUGIN (SC_SIZE_NBDKIT | SC_SIZE_PERCENT | SC_SIZE_UNBOUNDED)

static uint64_t
bytes (const char *s, unsigned flags)
{
  struct sc_size sz;

  cr_assert_eq (sc_size_parse (s, flags, &sz), 0, "'%s' refused", s);
  cr_assert_eq (sz.kind, SC_SIZE_BYTES, "'%s' is not a byte count", s);
  return sz.n;
}

static void
refused (const char *s, unsigned flags)
{
  struct sc_size sz = { SC_SIZE_BYTES, 12345 };

  cr_assert_eq (sc_size_parse (s, flags, &sz), -EINVAL, "'%s' accepted", s);
  cr_assert_eq (sz.n, 12345, "'%s': the result was written on failure", s);
}

Test (size, plain_bytes_in_both_spellings)
{
  cr_assert_eq (bytes ("0", 0), 0);
  cr_assert_eq (bytes ("4096", 0), 4096);
  cr_assert_eq (bytes ("4096", SC_SIZE_NBDKIT), 4096);
  cr_assert_eq (bytes ("010", 0), 10, "decimal, never octal");
}

Test (size, suffixes_are_powers_of_1024_in_any_case)
{
  cr_assert_eq (bytes ("64K", 0), 64u << 10);
  cr_assert_eq (bytes ("64k", SC_SIZE_NBDKIT), 64u << 10);
  cr_assert_eq (bytes ("3m", 0), 3u << 20);
  cr_assert_eq (bytes ("10G", SC_SIZE_NBDKIT), 10ull << 30);
  cr_assert_eq (bytes ("2t", 0), 2ull << 40);
}

Test (size, the_cli_accepts_b_and_ib_after_a_suffix)
{
  cr_assert_eq (bytes ("10GiB", 0), 10ull << 30);
  cr_assert_eq (bytes ("10gib", 0), 10ull << 30);
  cr_assert_eq (bytes ("10GB", 0), 10ull << 30);
  cr_assert_eq (bytes ("10Mb", 0), 10ull << 20);
  refused ("10B", 0);
  refused ("10iB", 0);
  refused ("10KiBs", 0);
}

Test (size, the_cli_takes_digits_and_nothing_else)
{
  refused ("", 0);
  refused (" 64K", 0);
  refused ("+64K", 0);
  refused ("-1", 0);
  refused ("64K ", 0);
  refused ("1P", 0);
  refused ("128s", 0);
  refused ("1.5M", 0);
  refused ("0x10", 0);
  refused ("12Q", 0);
}

Test (size, nbdkit_spelling_is_nbdkit_parse_size)
{
  cr_assert_eq (bytes ("65536b", SC_SIZE_NBDKIT), 65536);
  cr_assert_eq (bytes ("65536B", SC_SIZE_NBDKIT), 65536);
  cr_assert_eq (bytes ("128s", SC_SIZE_NBDKIT), 65536, "512-byte sectors");
  cr_assert_eq (bytes (" 64K", SC_SIZE_NBDKIT), 65536);
  cr_assert_eq (bytes ("+64K", SC_SIZE_NBDKIT), 65536);
  cr_assert_eq (bytes ("-0", SC_SIZE_NBDKIT), 0);
  cr_assert_eq (bytes ("1P", SC_SIZE_NBDKIT), 1ull << 50);
  cr_assert_eq (bytes ("7E", SC_SIZE_NBDKIT), 7ull << 60);
  refused ("64KiB", SC_SIZE_NBDKIT);
  refused ("64KB", SC_SIZE_NBDKIT);
  refused ("64K ", SC_SIZE_NBDKIT);
  refused ("-1", SC_SIZE_NBDKIT);
  refused ("", SC_SIZE_NBDKIT);
  refused ("abc", SC_SIZE_NBDKIT);
}

Test (size, overflow_is_refused_not_wrapped)
{
  cr_assert_eq (bytes ("18446744073709551615", 0), UINT64_MAX);
  refused ("18446744073709551616", 0);
  refused ("16777216T", 0);
  cr_assert_eq (bytes ("9223372036854775807", SC_SIZE_NBDKIT), INT64_MAX);
  refused ("9223372036854775808", SC_SIZE_NBDKIT);
  refused ("8E", SC_SIZE_NBDKIT);
}

Test (size, percent_of_the_volume_from_1_to_1000)
{
  struct sc_size sz;

  cr_assert_eq (sc_size_parse ("20%", CLI, &sz), 0);
  cr_assert_eq (sz.kind, SC_SIZE_OF_VOLUME);
  cr_assert_eq (sz.n, 20);
  cr_assert_eq (sc_size_bytes (&sz, 16u << 20), (16u << 20) / 5);
  cr_assert_eq (sc_size_parse ("1000%", PLUGIN, &sz), 0);
  cr_assert_eq (sc_size_parse ("1%", PLUGIN, &sz), 0);
  refused ("0%", CLI);
  refused ("1001%", PLUGIN);
  refused ("%", CLI);
  refused ("x%", PLUGIN);
  refused ("10K%", CLI);
  refused ("99999999999999999999%", CLI);
}

Test (size, percent_and_unbounded_only_where_allowed)
{
  struct sc_size sz;

  refused ("20%", 0);
  refused ("20%", SC_SIZE_NBDKIT);
  refused ("unbounded", 0);
  cr_assert_eq (sc_size_parse ("unbounded", CLI, &sz), 0);
  cr_assert_eq (sz.kind, SC_SIZE_NO_LIMIT);
  cr_assert_eq (sc_size_bytes (&sz, 1u << 30), 0);
  refused ("Unbounded", CLI);
}

Test (size, a_percentage_rounds_down_without_overflowing_early)
{
  cr_assert_eq (sc_size_percent (199, 50), 99);
  cr_assert_eq (sc_size_percent (UINT64_MAX, 100), UINT64_MAX);
  cr_assert_eq (sc_size_percent (UINT64_MAX / 10, 1000),
                18446744073709551610ull);
}
