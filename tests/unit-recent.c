/* Unit tests: the chunks copied in the current epoch (cow/recent.h), on
 * their own and as the diff area's lock-free answer to "needs a copy?". */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "cow/recent.h"
#include "tests/unit-helpers.h"

TestSuite (recent, .init = uh_setup, .fini = uh_teardown);

Test (recent, says_copied_only_for_the_epoch_noted)
{
  struct sc_recent r;
  cr_assert_eq (sc_recent_init (&r, 4), 0);
  cr_assert (!sc_recent_all (&r, 3, 3, 1), "nothing noted yet");
  sc_recent_note (&r, 3, 1);
  cr_assert (sc_recent_all (&r, 3, 3, 1));
  cr_assert (!sc_recent_all (&r, 3, 3, 2), "a newer epoch: ask the map");
  cr_assert (!sc_recent_all (&r, 3, 4, 1), "chunk 4 was not noted");
  sc_recent_note (&r, 4, 1);
  cr_assert (sc_recent_all (&r, 3, 4, 1));
  sc_recent_forget (&r, 3);
  cr_assert (!sc_recent_all (&r, 3, 3, 1), "a copy of it was removed");
  cr_assert (sc_recent_all (&r, 4, 4, 1));
  sc_recent_free (&r);
}

Test (recent, chunks_that_share_an_entry_evict_each_other)
{
  struct sc_recent r;
  cr_assert_eq (sc_recent_init (&r, 4), 0);      /* 16 entries */
  sc_recent_note (&r, 5, 7);
  sc_recent_note (&r, 5 + 16, 7);
  cr_assert (!sc_recent_all (&r, 5, 5, 7), "evicted");
  cr_assert (sc_recent_all (&r, 21, 21, 7));
  sc_recent_forget (&r, 5);
  cr_assert (sc_recent_all (&r, 21, 21, 7), "forgetting 5 keeps 21");
  sc_recent_free (&r);
}

Test (recent, a_long_range_asks_the_map)
{
  struct sc_recent r;
  cr_assert_eq (sc_recent_init (&r, 8), 0);
  for (uint64_t c = 0; c < 64; c++)
    sc_recent_note (&r, c, 2);
  cr_assert (sc_recent_all (&r, 0, SC_RECENT_RANGE - 1, 2));
  cr_assert (!sc_recent_all (&r, 0, SC_RECENT_RANGE, 2));
  sc_recent_free (&r);
}

/* A reader racing the setter sees a pair that was true, never a chunk
 * with another chunk's epoch: chunk c is only ever noted with epoch c. */
struct race { struct sc_recent *r; bool stop; uint64_t wrong, hits; };

static void *
race_reader (void *p)
{
  struct race *x = p;
  while (!__atomic_load_n (&x->stop, __ATOMIC_ACQUIRE))
    for (uint64_t c = 1; c < 64; c++) {
      if (sc_recent_all (x->r, c, c, (uint32_t) c))
        x->hits++;
      for (uint32_t e = 1; e < 64; e += 7)
        if (e != c && sc_recent_all (x->r, c, c, e))
          x->wrong++;
    }
  return NULL;
}

Test (recent, a_racing_reader_never_mixes_two_entries)
{
  struct sc_recent r;
  cr_assert_eq (sc_recent_init (&r, 3), 0);      /* 8 entries, 64 chunks */
  struct race x = { &r, false, 0, 0 };
  pthread_t t;
  cr_assert_eq (pthread_create (&t, NULL, race_reader, &x), 0);
  for (int i = 0; i < 2000000; i++) {
    uint64_t c = 1 + (uint64_t) (i * 37) % 63;
    if (i % 5 == 0)
      sc_recent_forget (&r, c);
    else
      sc_recent_note (&r, c, (uint32_t) c);
  }
  __atomic_store_n (&x.stop, true, __ATOMIC_RELEASE);
  pthread_join (t, NULL);
  cr_assert_eq (x.wrong, 0, "%" PRIu64 " answers mixed two entries", x.wrong);
  sc_recent_free (&r);
}

/* The diff area: a chunk copied in this epoch needs no copy until the
 * next snapshot; a copy removed (its snapshots deleted) leaves nothing
 * behind that would skip the copy a later snapshot needs. */
Test (recent, the_diff_area_copies_again_after_each_snapshot)
{
  struct uh_area a;
  uh_area_create (&a, 16 * 4096, 4096, 5);
  uh_snap (a.d, "s1");
  cr_assert (sc_diff_needs_copy (a.d, 2));
  uh_copy_chunk (a.d, 2, 20);
  cr_assert (!sc_diff_needs_copy (a.d, 2), "copied in this epoch");
  uh_snap (a.d, "s2");
  cr_assert (sc_diff_needs_copy (a.d, 2), "s2 needs its own copy");
  uh_copy_chunk (a.d, 2, 21);
  cr_assert (!sc_diff_needs_copy (a.d, 2));
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s2"), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  cr_assert (!sc_diff_needs_copy (a.d, 2), "no snapshot at all");
  uh_snap (a.d, "s3");
  cr_assert (sc_diff_needs_copy (a.d, 2), "s3 needs a copy: the copies "
             "of the deleted snapshots are no answer");
  uh_copy_chunk (a.d, 2, 22);
  uh_assert_sees_copy (a.d, "s3", 2, 22);
  uh_area_free (&a);
}
