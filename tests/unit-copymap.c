/* Unit tests: the copy map (cow/copymap.c): one copy per chunk per epoch
 * whatever the number of snapshots, which copy each snapshot sees, the
 * copy-on-write query, and zero copies. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea-internal.h"
#include "tests/unit-helpers.h"

TestSuite (copymap, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

static void
area (struct uh_area *a, uint64_t nchunks)
{
  uh_area_create (a, nchunks * CS, CS, 9);
}

/* ---- copy once -------------------------------------------------------- */

Test (copymap, no_snapshot_needs_no_copy)
{
  struct uh_area a;
  area (&a, 16);
  for (uint64_t c = 0; c < 16; c++)
    cr_assert (!sc_diff_needs_copy (a.d, c));
  uh_area_free (&a);
}

/* With n snapshots taken at once, the first write copies once and every
 * snapshot finds that one copy. */
static void
one_copy_for_n_snapshots (int n)
{
  struct uh_area a;
  char name[32];
  area (&a, 8);
  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "s%d", i);
    uh_snap (a.d, name);
  }
  uint64_t slots0 = uh_stats (a.d).data_slots;
  cr_assert (sc_diff_needs_copy (a.d, 5));
  uh_copy_chunk (a.d, 5, 55);
  cr_assert (!sc_diff_needs_copy (a.d, 5), "copied once in this epoch");
  cr_assert (sc_diff_needs_copy (a.d, 4), "other chunks still need it");
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.copies, 1, "%d snapshots: one copy", n);
  cr_assert_eq (st.data_slots, slots0 + 1);
  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "s%d", i);
    uh_assert_sees_copy (a.d, name, 5, 55);
    uh_assert_sees_origin (a.d, name, 4);
  }
  uh_area_free (&a);
}

Test (copymap, one_copy_serves_1_snapshot)
{
  one_copy_for_n_snapshots (1);
}

Test (copymap, one_copy_serves_10_snapshots)
{
  one_copy_for_n_snapshots (10);
}

Test (copymap, one_copy_serves_64_snapshots)
{
  one_copy_for_n_snapshots (64);
}

/* Snapshots interleaved with writes: each epoch copies a chunk at most
 * once, and each snapshot sees the oldest copy made after it. */
static void
interleaved (int n)
{
  enum { CHUNKS = 12 };
  struct uh_area a;
  char name[32];
  area (&a, CHUNKS);
  /* written[i][c]: chunk c was written after snapshot i (epoch i + 1). */
  bool written[64][CHUNKS];
  memset (written, 0, sizeof written);
  uint64_t copies = 0;
  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "s%d", i);
    struct sc_snapshot_info s = uh_snap (a.d, name);
    cr_assert_eq (s.epoch, (uint32_t) i + 1);
    for (uint64_t c = 0; c < CHUNKS; c++) {
      if ((c * 7 + (uint64_t) i * 3) % 4 == 0 && c != 0)
        continue;               /* not written in this epoch */
      /* Two writes to the chunk in one epoch: the first copies. */
      for (int w = 0; w < 2; w++) {
        bool needs = sc_diff_needs_copy (a.d, c);
        cr_assert_eq (needs, w == 0, "snapshot %d chunk %lu write %d: "
                      "needs_copy %d", i, (unsigned long) c, w, needs);
        if (needs) {
          uh_copy_chunk (a.d, c, 1000 * (uint64_t) i + c + 1);
          copies++;
        }
      }
      written[i][c] = true;
    }
  }
  cr_assert_eq (uh_stats (a.d).copies, copies);
  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "s%d", i);
    for (uint64_t c = 0; c < CHUNKS; c++) {
      int j = i;
      while (j < n && !written[j][c])
        j++;
      if (j == n)
        uh_assert_sees_origin (a.d, name, c);
      else
        uh_assert_sees_copy (a.d, name, c, 1000 * (uint64_t) j + c + 1);
    }
  }
  /* The same after a reopen. */
  uh_area_reopen (&a, SC_DIFF_RDONLY);
  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "s%d", i);
    for (uint64_t c = 0; c < CHUNKS; c++) {
      int j = i;
      while (j < n && !written[j][c])
        j++;
      if (j == n)
        uh_assert_sees_origin (a.d, name, c);
      else
        uh_assert_sees_copy (a.d, name, c, 1000 * (uint64_t) j + c + 1);
    }
  }
  uh_area_free (&a);
}

Test (copymap, each_epoch_copies_once_with_1_snapshot)
{
  interleaved (1);
}

Test (copymap, each_epoch_copies_once_with_10_snapshots)
{
  interleaved (10);
}

Test (copymap, each_epoch_copies_once_with_64_snapshots)
{
  interleaved (64);
}

Test (copymap, a_new_snapshot_makes_copied_chunks_need_a_copy_again)
{
  struct uh_area a;
  area (&a, 4);
  uh_snap (a.d, "a");
  uh_copy_chunk (a.d, 1, 1);
  cr_assert (!sc_diff_needs_copy (a.d, 1));
  uh_snap (a.d, "b");
  cr_assert (sc_diff_needs_copy (a.d, 1));
  uh_copy_chunk (a.d, 1, 2);
  cr_assert (!sc_diff_needs_copy (a.d, 1));
  uh_assert_sees_copy (a.d, "a", 1, 1);
  uh_assert_sees_copy (a.d, "b", 1, 2);
  uh_area_free (&a);
}

Test (copymap, needs_copy_survives_reopen)
{
  struct uh_area a;
  area (&a, 4);
  uh_snap (a.d, "a");
  uh_copy_chunk (a.d, 1, 1);
  uh_area_reopen (&a, 0);
  cr_assert (!sc_diff_needs_copy (a.d, 1), "copied before the restart");
  cr_assert (sc_diff_needs_copy (a.d, 2));
  uh_area_free (&a);
}

/* ---- no valid snapshot: the query takes no lock ----------------------- */

struct asker {
  struct sc_diff *d;
  bool done;
  size_t n;                     /* chunks the range query found */
  bool one;                     /* what the single query said */
};

static void *
ask (void *opaque)
{
  struct asker *k = opaque;
  uint64_t out[4], next = 0;
  k->n = sc_diff_needs_copy_range (k->d, 0, 15, out, 4, &next);
  cr_assert_eq (next, 16, "the whole range looked at");
  k->one = sc_diff_needs_copy (k->d, 3);
  __atomic_store_n (&k->done, true, __ATOMIC_SEQ_CST);
  return NULL;
}

/* Both queries answer "no copy" while someone else holds the diff
 * area's lock (a writer recording a copy, a commit, a retry's I/O). */
static void
assert_asks_without_the_lock (struct sc_diff *d, const char *when)
{
  struct asker k = { .d = d };
  pthread_t t;
  pthread_mutex_lock (&d->lock);
  cr_assert_eq (pthread_create (&t, NULL, ask, &k), 0);
  for (int i = 0; i < 2500 && !__atomic_load_n (&k.done, __ATOMIC_SEQ_CST);
       i++)
    usleep (2000);              /* 5 s at most */
  bool done = __atomic_load_n (&k.done, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock (&d->lock);
  pthread_join (t, NULL);
  cr_assert (done, "%s: the copy-on-write query waited for the lock", when);
  cr_assert_eq (k.n, 0, "%s", when);
  cr_assert (!k.one, "%s", when);
}

/* Fails without the fix: with no valid snapshot, every live write took
 * the diff area's lock to learn that nothing needs a copy, so writers
 * queued on it one after the other. */
Test (copymap, no_valid_snapshot_asks_without_the_lock, .timeout = 60)
{
  struct uh_area a;
  area (&a, 16);
  assert_asks_without_the_lock (a.d, "no snapshot yet");
  uh_snap (a.d, "s");
  cr_assert (sc_diff_needs_copy (a.d, 3), "a snapshot: the copy again");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s"), 0);
  assert_asks_without_the_lock (a.d, "its snapshot deleted");
  uh_snap (a.d, "c");
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "c"), 0);
  assert_asks_without_the_lock (a.d, "a checkpoint kept");
  /* A checkpoint needs a mark, not a copy: the write path leaves one. */
  uint64_t seq = 0;
  cr_assert_eq (sc_diff_mark_changes (a.d, 3, 3, &seq), 0);
  cr_assert_neq (seq, 0, "the checkpoint's mark");
  uh_snap (a.d, "t");
  cr_assert (sc_diff_needs_copy (a.d, 3), "a snapshot after the checkpoint");
  uh_area_free (&a);
}

/* The range form agrees with sc_diff_needs_copy chunk by chunk, however
 * the caller splits the range and however small its output array. */
static void
assert_range_matches (struct sc_diff *d, uint64_t first, uint64_t last,
                      size_t max)
{
  uint64_t got[64], c = first, want = first;
  cr_assert_leq (max, 64);
  while (c <= last) {
    uint64_t next;
    size_t n = sc_diff_needs_copy_range (d, c, last, got, max, &next);
    cr_assert_leq (n, max);
    cr_assert_gt (next, c, "the scan makes progress");
    cr_assert_leq (next, last + 1);
    for (size_t i = 0; i < n; i++) {
      while (want < got[i]) {
        cr_assert (!sc_diff_needs_copy (d, want), "chunk %lu skipped",
                   (unsigned long) want);
        want++;
      }
      cr_assert (sc_diff_needs_copy (d, got[i]));
      want = got[i] + 1;
    }
    for (; want < next; want++)
      cr_assert (!sc_diff_needs_copy (d, want), "chunk %lu skipped",
                 (unsigned long) want);
    c = next;
  }
}

Test (copymap, needs_copy_range_agrees_with_needs_copy)
{
  struct uh_area a;
  area (&a, 4096);
  assert_range_matches (a.d, 0, 4095, 64);     /* no snapshot at all */
  uh_snap (a.d, "a");
  uint64_t rng = 7;
  for (int i = 0; i < 1500; i++) {
    uint64_t c = i * 2 + uh_rand_below (&rng, 2);
    uh_copy_chunk (a.d, c, c);
  }
  uh_snap (a.d, "b");
  for (int i = 0; i < 300; i++) {
    uint64_t c = uh_rand_below (&rng, 4096);
    if (sc_diff_needs_copy (a.d, c))
      uh_copy_chunk (a.d, c, c);
  }
  assert_range_matches (a.d, 0, 4095, 64);
  assert_range_matches (a.d, 0, 4095, 1);
  assert_range_matches (a.d, 100, 3000, 7);
  assert_range_matches (a.d, 4095, 4095, 3);
  uh_area_free (&a);
}

Test (copymap, copy_record_beyond_the_volume_is_einval)
{
  struct uh_area a;
  area (&a, 4);
  uh_snap (a.d, "a");
  uint64_t seq;
  cr_assert_eq (sc_diff_copy_record (a.d, 4, SC_COPY_ZERO, NULL, &seq), -EINVAL);
  cr_assert_eq (sc_diff_copy_record (a.d, UINT64_MAX, SC_COPY_ZERO, NULL, &seq),
                -EINVAL);
  cr_assert_eq (uh_stats (a.d).copies, 0);
  uh_area_free (&a);
}

/* ---- zero copies ------------------------------------------------------ */

Test (copymap, zero_copies_take_no_slot)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  struct sc_diff_stats st0 = uh_stats (a.d);
  uh_copy_zero (a.d, 3);
  struct sc_diff_stats st1 = uh_stats (a.d);
  cr_assert_eq (st1.copies, st0.copies + 1);
  cr_assert_eq (st1.data_slots, st0.data_slots, "a zero copy uses no slot");
  cr_assert (!sc_diff_needs_copy (a.d, 3));
  cr_assert_eq (uh_resolve (a.d, "a", 3, NULL), SC_WHERE_ZERO);
  cr_assert_eq (uh_find (a.d, "a").used_bytes, 0);
  /* The next data copy takes the first data slot. */
  uint64_t off = uh_copy_chunk (a.d, 4, 4);
  cr_assert_eq (uh_stats (a.d).data_slots, st0.data_slots + 1);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_resolve (a.d, "a", 3, NULL), SC_WHERE_ZERO);
  uint64_t off2;
  cr_assert_eq (uh_resolve (a.d, "a", 4, &off2), SC_WHERE_DIFF);
  cr_assert_eq (off2, off);
  cr_assert_eq (uh_stats (a.d).data_slots, 1);
  uh_area_free (&a);
}
