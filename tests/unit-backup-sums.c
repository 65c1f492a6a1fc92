/* Unit tests: a backup's block sums taken from the copy
 * (tools/backup-sums.c): a block is known only when one piece covers
 * all of it, with the CRC of exactly its bytes; zero pieces give the CRC
 * of zeros (the short last block's own), and count only when allowed. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"
#include "tools/backup-sums.h"

#define BS 4096u
#define SIZE (3 * BS + BS / 2)  /* blocks 0..3, the last 2048 bytes */

static uint8_t data[SIZE];
static uint8_t zeros[BS];

static void
fill (void)
{
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof data; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    data[i] = (uint8_t) x;
  }
}

static bool
known (const struct sc_backup_sums *s, uint64_t i, uint32_t want)
{
  uint32_t c = ~want;
  return sc_backup_sums_get (s, i, &c) && c == want;
}

static bool
unknown (const struct sc_backup_sums *s, uint64_t i)
{
  uint32_t c;
  return !sc_backup_sums_get (s, i, &c);
}

TestSuite (backup_sums, .init = fill);

Test (backup_sums, nothing_is_known_at_first)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  cr_assert_eq (s.nblocks, 4);
  for (uint64_t i = 0; i < 5; i++)
    cr_assert (unknown (&s, i));
  cr_assert_eq (sc_backup_sums_count (&s), 0);
  sc_backup_sums_free (&s);
  cr_assert (unknown (NULL, 0));
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, 0, true), -EINVAL);
}

Test (backup_sums, a_whole_block_in_one_piece_is_known)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  sc_backup_sums_piece (&s, BS, BS, data + BS);
  cr_assert (known (&s, 1, crc32c (0, data + BS, BS)));
  cr_assert (unknown (&s, 0));
  cr_assert (unknown (&s, 2));
  cr_assert_eq (sc_backup_sums_count (&s), 1);
  sc_backup_sums_free (&s);
}

Test (backup_sums, a_block_in_several_pieces_is_not_known)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  /* Block 0 in two data pieces; block 1 as data then zeros. */
  sc_backup_sums_piece (&s, 0, 100, data);
  sc_backup_sums_piece (&s, 100, BS - 100, data + 100);
  sc_backup_sums_piece (&s, BS, 512, data + BS);
  sc_backup_sums_piece (&s, BS + 512, BS - 512, NULL);
  cr_assert (unknown (&s, 0));
  cr_assert (unknown (&s, 1));
  cr_assert_eq (sc_backup_sums_count (&s), 0);
  sc_backup_sums_free (&s);
}

Test (backup_sums, a_piece_over_several_blocks_sums_each_whole_one)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  /* From inside block 0 to inside block 3: blocks 1 and 2 whole. */
  sc_backup_sums_piece (&s, 10, 3 * BS, data + 10);
  cr_assert (unknown (&s, 0));
  cr_assert (known (&s, 1, crc32c (0, data + BS, BS)));
  cr_assert (known (&s, 2, crc32c (0, data + 2 * BS, BS)));
  cr_assert (unknown (&s, 3));
  sc_backup_sums_free (&s);
}

Test (backup_sums, zero_pieces_give_the_crc_of_zeros)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  /* From inside block 0 to the end: blocks 1, 2 and the short 3. */
  sc_backup_sums_piece (&s, 1, SIZE - 1, NULL);
  cr_assert (unknown (&s, 0));
  cr_assert (known (&s, 1, crc32c (0, zeros, BS)));
  cr_assert (known (&s, 2, crc32c (0, zeros, BS)));
  cr_assert (known (&s, 3, crc32c (0, zeros, BS / 2)));
  sc_backup_sums_free (&s);
}

Test (backup_sums, the_short_last_block_from_data)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  sc_backup_sums_piece (&s, 3 * BS, BS / 2 - 1, data + 3 * BS);
  cr_assert (unknown (&s, 3));
  sc_backup_sums_piece (&s, 3 * BS, BS / 2, data + 3 * BS);
  cr_assert (known (&s, 3, crc32c (0, data + 3 * BS, BS / 2)));
  sc_backup_sums_free (&s);
}

Test (backup_sums, zero_pieces_are_ignored_when_not_allowed)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, false), 0);
  sc_backup_sums_piece (&s, 0, SIZE, NULL);
  sc_backup_sums_piece (&s, 2 * BS, BS, data + 2 * BS);
  cr_assert (unknown (&s, 0));
  cr_assert (unknown (&s, 1));
  cr_assert (known (&s, 2, crc32c (0, data + 2 * BS, BS)));
  cr_assert (unknown (&s, 3));
  sc_backup_sums_free (&s);
}

Test (backup_sums, the_last_piece_of_a_block_wins)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  sc_backup_sums_piece (&s, 0, BS, data);
  sc_backup_sums_piece (&s, 0, BS, NULL);
  cr_assert (known (&s, 0, crc32c (0, zeros, BS)));
  sc_backup_sums_free (&s);
}

Test (backup_sums, pieces_past_the_end_tell_nothing)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, SIZE, BS, true), 0);
  sc_backup_sums_piece (&s, 3 * BS, BS, NULL);
  sc_backup_sums_piece (&s, UINT64_MAX - 10, 20, NULL);
  cr_assert_eq (sc_backup_sums_count (&s), 0);
  sc_backup_sums_free (&s);
}

Test (backup_sums, an_empty_image)
{
  struct sc_backup_sums s;
  cr_assert_eq (sc_backup_sums_init (&s, 0, BS, true), 0);
  cr_assert_eq (s.nblocks, 0);
  sc_backup_sums_piece (&s, 0, 0, NULL);
  cr_assert (unknown (&s, 0));
  sc_backup_sums_free (&s);
}
