/* Unit tests: CRC32C, the checksum of every metadata block and record
 * (known vectors, chaining, and agreement with a bitwise reference at
 * every length and alignment). */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"

/* The definition, one bit at a time (reflected Castagnoli polynomial),
 * with the same pre- and post-inversion as crc32c(). */
static uint32_t
crc32c_reference (uint32_t crc, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  uint32_t c = ~crc;
  while (len--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

static void
fill (uint8_t *buf, size_t len, uint32_t seed)
{
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    buf[i] = (uint8_t) x;
  }
}

Test (crc32c, check_value_of_123456789)
{
  cr_assert_eq (crc32c (0, "123456789", 9), 0xe3069283u);
}

Test (crc32c, empty_input_leaves_the_crc_unchanged)
{
  cr_assert_eq (crc32c (0, "", 0), 0);
  cr_assert_eq (crc32c (0, NULL, 0), 0);
  cr_assert_eq (crc32c (0xdeadbeef, "", 0), 0xdeadbeef);
}

/* The iSCSI test patterns of RFC 3720, appendix B.4. */
Test (crc32c, rfc3720_vectors)
{
  uint8_t buf[32];

  memset (buf, 0, sizeof buf);
  cr_assert_eq (crc32c (0, buf, 32), 0x8a9136aau);
  memset (buf, 0xff, sizeof buf);
  cr_assert_eq (crc32c (0, buf, 32), 0x62a8ab43u);
  for (int i = 0; i < 32; i++)
    buf[i] = (uint8_t) i;
  cr_assert_eq (crc32c (0, buf, 32), 0x46dd794eu);
  for (int i = 0; i < 32; i++)
    buf[i] = (uint8_t) (31 - i);
  cr_assert_eq (crc32c (0, buf, 32), 0x113fdb5cu);
}

Test (crc32c, single_bytes_match_reference)
{
  for (unsigned b = 0; b < 256; b++) {
    uint8_t x = (uint8_t) b;
    cr_assert_eq (crc32c (0, &x, 1), crc32c_reference (0, &x, 1),
                  "byte %#x", b);
  }
}

Test (crc32c, chaining_equals_one_shot)
{
  uint8_t buf[1000];
  fill (buf, sizeof buf, 1);
  uint32_t whole = crc32c (0, buf, sizeof buf);
  for (size_t split = 0; split <= sizeof buf; split++) {
    uint32_t c = crc32c (crc32c (0, buf, split), buf + split,
                         sizeof buf - split);
    cr_assert_eq (c, whole, "split at %zu", split);
  }
  /* Three pieces, and a non-zero starting value. */
  uint32_t c = crc32c (0x12345678, buf, 333);
  c = crc32c (c, buf + 333, 7);
  c = crc32c (c, buf + 340, sizeof buf - 340);
  cr_assert_eq (c, crc32c (0x12345678, buf, sizeof buf));
}

Test (crc32c, every_length_and_alignment_matches_reference)
{
  enum { MAXLEN = 300 };
  uint8_t *buf = malloc (MAXLEN + 16);
  cr_assert_not_null (buf);
  fill (buf, MAXLEN + 16, 7);
  for (size_t align = 0; align < 16; align++)
    for (size_t len = 0; len <= MAXLEN; len++)
      cr_assert_eq (crc32c (0, buf + align, len),
                    crc32c_reference (0, buf + align, len),
                    "length %zu at alignment %zu", len, align);
  free (buf);
}

Test (crc32c, nonzero_seed_matches_reference)
{
  uint8_t buf[100];
  fill (buf, sizeof buf, 3);
  uint32_t seed = 1;
  for (int i = 0; i < 100; i++, seed = seed * 1664525u + 1013904223u)
    cr_assert_eq (crc32c (seed, buf, sizeof buf),
                  crc32c_reference (seed, buf, sizeof buf), "seed %#x", seed);
}

Test (crc32c, large_buffer_matches_reference)
{
  size_t len = (1 << 20) + 5;
  uint8_t *buf = malloc (len);
  cr_assert_not_null (buf);
  fill (buf, len, 11);
  cr_assert_eq (crc32c (0, buf + 1, len - 1),
                crc32c_reference (0, buf + 1, len - 1));
  free (buf);
}

Test (crc32c, detects_every_single_bit_flip)
{
  uint8_t buf[64];
  fill (buf, sizeof buf, 5);
  uint32_t good = crc32c (0, buf, sizeof buf);
  for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
    buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    cr_assert_neq (crc32c (0, buf, sizeof buf), good, "bit %zu", bit);
    buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
  }
}

/* Long buffers are summed in three lanes joined at the end (lanes of
 * 8192 bytes, then of 256): random lengths and alignments around and
 * past those sizes, random seeds, against the bitwise definition. */
Test (crc32c, three_lane_lengths_match_reference)
{
  enum { MAXLEN = 3 * 8192 * 3 + 3 * 256 * 2 + 64 };
  uint8_t *buf = malloc (MAXLEN + 64);
  cr_assert_not_null (buf);
  fill (buf, MAXLEN + 64, 17);
  static const size_t edges[] = { 767, 768, 769, 775, 776, 1536, 1543,
                                  24575, 24576, 24577, 24583, 24584,
                                  25344, 25351, 49152, 49152 + 768 + 7 };
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
    for (size_t align = 0; align < 9; align++)
      cr_assert_eq (crc32c (0, buf + align, edges[i]),
                    crc32c_reference (0, buf + align, edges[i]),
                    "length %zu at alignment %zu", edges[i], align);
  uint32_t x = 99;
  for (int i = 0; i < 200; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    size_t len = x % MAXLEN, align = (x >> 20) % 64;
    uint32_t seed = x * 2654435761u;
    cr_assert_eq (crc32c (seed, buf + align, len),
                  crc32c_reference (seed, buf + align, len),
                  "length %zu at alignment %zu, seed %#x", len, align, seed);
  }
  free (buf);
}
