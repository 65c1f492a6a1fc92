/* Unit tests: discards (cow/discard.c): a snapshot's reader gives chunks
 * back, they read as zeros and need no copy, the copies no one else needs
 * are freed, and the extents (merged in place) match a model and survive
 * a reopen. */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (discard, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

static void
area (struct uh_area *a, uint64_t nchunks)
{
  uh_area_create (a, nchunks * CS, CS, 5);
}

Test (discard, discard_frees_reads_zero_and_is_kept)
{
  struct uh_area a;
  area (&a, 16);
  struct sc_snapshot_info s = uh_snap (a.d, "a");
  for (uint64_t c = 0; c < 4; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, c + 1), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 4);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, 1, 2), 0);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, 8, 9), 0);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, 20, 21), -EINVAL);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, 999, 1, 1), -ENOENT);
  cr_assert_eq (uh_stats (a.d).data_slots, 2);
  cr_assert_eq (uh_find (a.d, "a").discarded_bytes, 4 * CS);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 1, &off), SC_WHERE_ZERO);
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 9, &off), SC_WHERE_ZERO);
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 3, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 4);
  cr_assert (!sc_diff_needs_copy (a.d, 8), "a discarded chunk needs no copy");
  cr_assert (sc_diff_needs_copy (a.d, 10));
  /* A newer snapshot needs the discarded chunks again. */
  struct sc_snapshot_info b = uh_snap (a.d, "b");
  cr_assert (sc_diff_needs_copy (a.d, 8));
  cr_assert_eq (uh_copy_reserved (a.d, 8, 88), 0);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_find (a.d, "a").discarded_bytes, 4 * CS);
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 8, &off), SC_WHERE_ZERO);
  cr_assert_eq (sc_diff_resolve (a.d, b.epoch, 8, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 88);
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 3, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 4);
  uh_area_free (&a);
}

Test (discard, discards_match_a_model_and_survive_a_reopen)
{
  enum { N = 512 };
  struct uh_area a;
  uh_area_create (&a, N * CS, CS, 5);
  struct sc_snapshot_info s = uh_snap (a.d, "a");
  bool model[N] = { false };
  uint64_t rng = 42;
  for (int i = 0; i < 300; i++) {
    uint64_t first = uh_rand_below (&rng, N);
    uint64_t len = 1 + uh_rand_below (&rng, i % 10 == 0 ? 40 : 4);
    uint64_t last = first + len - 1 < N ? first + len - 1 : N - 1;
    cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, first, last), 0);
    for (uint64_t c = first; c <= last; c++)
      model[c] = true;
  }
  for (int pass = 0; pass < 2; pass++) {
    uint64_t want = 0;
    for (uint64_t c = 0; c < N; c++) {
      uint64_t off;
      want += model[c];
      cr_assert_eq (sc_diff_resolve (a.d, s.epoch, c, &off),
                    model[c] ? SC_WHERE_ZERO : SC_WHERE_ORIGIN,
                    "chunk %lu (pass %d)", (unsigned long) c, pass);
      cr_assert_eq (sc_diff_needs_copy (a.d, c), !model[c]);
    }
    cr_assert_eq (uh_find (a.d, "a").discarded_bytes, want * CS);
    cr_assert_eq (uh_stats (a.d).discarded_bytes, want * CS);
    uh_area_close (&a);
    uh_sb_mark_unclean (a.diff_path);   /* replay, and checkpoint */
    uh_area_open (&a, 0);
  }
  uh_area_free (&a);
}
