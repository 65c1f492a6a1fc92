/* Unit tests: replay adds the copies of a run of copy records to the
 * copy map in chunk order, a batch at a time (cow/replay-order.c).  What
 * a reopened diff area serves, and what each snapshot would free, must be
 * what it was before, whatever order the copies were recorded in, across
 * batches and the other records between them. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/format.h"
#include "tests/unit-helpers.h"

static size_t saved_order_max;

static void
setup (void)
{
  uh_setup ();
  saved_order_max = sc_replay_order_max;
  sc_replay_order_max = 5;      /* many batches, cut anywhere */
}

static void
teardown (void)
{
  sc_replay_order_max = saved_order_max;
  uh_teardown ();
}

TestSuite (replay_order, .init = setup, .fini = teardown);

#define CS 4096u
#define NCHUNKS 97u             /* prime: i * k % NCHUNKS permutes */
#define NSNAPS 3

static const char *const names[NSNAPS] = { "a", "b", "c" };

/* What every snapshot finds at every chunk, and what it would free. */
struct view {
  enum sc_where where[NSNAPS][NCHUNKS];
  uint64_t off[NSNAPS][NCHUNKS];
  uint64_t used[NSNAPS];
  uint64_t copies;
};

static void
take_view (struct sc_diff *d, struct view *v)
{
  memset (v, 0, sizeof *v);
  for (int s = 0; s < NSNAPS; s++) {
    for (uint64_t c = 0; c < NCHUNKS; c++)
      v->where[s][c] = uh_resolve (d, names[s], c, &v->off[s][c]);
    v->used[s] = uh_find (d, names[s]).used_bytes;
  }
  v->copies = uh_stats (d).copies;
}

static void
assert_same_view (struct sc_diff *d, const struct view *want,
                  const char *when)
{
  struct view got;
  take_view (d, &got);
  cr_assert_eq (got.copies, want->copies, "%s: %" PRIu64 " copies, not %"
                PRIu64, when, got.copies, want->copies);
  for (int s = 0; s < NSNAPS; s++) {
    cr_assert_eq (got.used[s], want->used[s], "%s: snapshot %s would free %"
                  PRIu64 " bytes, not %" PRIu64, when, names[s],
                  got.used[s], want->used[s]);
    for (uint64_t c = 0; c < NCHUNKS; c++)
      cr_assert (got.where[s][c] == want->where[s][c] &&
                 got.off[s][c] == want->off[s][c],
                 "%s: snapshot %s finds chunk %" PRIu64 " at %d/%" PRIu64
                 ", not %d/%" PRIu64, when, names[s], c, got.where[s][c],
                 got.off[s][c], want->where[s][c], want->off[s][c]);
  }
}

/* Copies of n chunks in the order i * k + first (mod NCHUNKS), every
 * seventh a zero copy, tagged `tag` + chunk. */
static void
copy_scattered (struct sc_diff *d, unsigned n, unsigned k, unsigned first,
                uint64_t tag)
{
  for (unsigned i = 0; i < n; i++) {
    uint64_t c = ((uint64_t) i * k + first) % NCHUNKS;
    if (!sc_diff_needs_copy (d, c))
      continue;
    if (i % 7 == 3)
      uh_copy_zero (d, c);
    else
      uh_copy_chunk (d, c, tag + c);
  }
}

/* Three snapshots over copies recorded out of order, with a snapshot
 * made, copied for and deleted between them. */
static void
make_scattered (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 3);
  uh_snap (a->d, "a");
  copy_scattered (a->d, 60, 37, 0, 1000);
  uh_snap (a->d, "b");
  copy_scattered (a->d, 50, 53, 11, 2000);
  uh_snap (a->d, "gone");
  copy_scattered (a->d, 30, 29, 5, 3000);
  cr_assert_eq (sc_diff_snapshot_delete (a->d, "gone"), 0);
  uh_snap (a->d, "c");
  copy_scattered (a->d, 70, 61, 3, 4000);
}

Test (replay_order, scattered_copies_reopen_as_they_were)
{
  struct uh_area a;
  make_scattered (&a);
  struct view v;
  take_view (a.d, &v);
  cr_assert_gt (v.copies, 150, "only %" PRIu64 " copies", v.copies);
  uh_area_reopen (&a, SC_DIFF_RDONLY);
  assert_same_view (a.d, &v, "a clean close, read-only");
  uh_area_reopen (&a, 0);
  assert_same_view (a.d, &v, "a clean close, read-write");
  uh_area_free (&a);
}

Test (replay_order, scattered_copies_reopen_after_a_crash)
{
  struct uh_area a;
  make_scattered (&a);
  struct view v;
  take_view (a.d, &v);
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  uh_area_open (&a, SC_DIFF_RDONLY);
  assert_same_view (a.d, &v, "a crash, read-only");
  uh_area_reopen (&a, 0);
  assert_same_view (a.d, &v, "a crash, read-write (replay, checkpoint)");
  uh_area_reopen (&a, 0);
  assert_same_view (a.d, &v, "after the checkpoint");
  uh_area_free (&a);
}

/* A chunk copied twice in one epoch, among copies still set aside: the
 * error names the second copy's record. */
Test (replay_order, a_chunk_copied_twice_is_reported_with_its_record)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 3);
  uh_snap (a.d, "a");
  copy_scattered (a.d, 20, 37, 0, 1000);
  uh_area_close (&a);
  uint64_t chunk = 37;          /* copied (i = 1), in epoch 2 */
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_rec_copy r = {
    .h.type = SC_REC_COPY, .chunk = chunk, .epoch = 2,
    .flags = SC_COPY_F_ZERO,
  };
  uh_journal_append (a.diff_path, &r, sizeof r);
  struct sc_rec_copy other = {
    .h.type = SC_REC_COPY, .chunk = 90, .epoch = 2, .flags = SC_COPY_F_ZERO,
  };
  uh_journal_append (a.diff_path, &other, sizeof other);
  struct sc_diff *d = NULL;
  char err[512] = "";
  int e = sc_diff_open (a.diff_path, SC_DIFF_RDONLY, &a.id, 0, &d, err,
                        sizeof err);
  cr_assert_eq (e, -EINVAL, "the open said %d (%s)", e, err);
  char want[128];
  snprintf (want, sizeof want, "journal record %" PRIu64 ": chunk %" PRIu64
            " copied twice in epoch 2", je.next_seq, chunk);
  cr_assert (strstr (err, want), "the error is \"%s\", not about \"%s\"",
             err, want);
  uh_area_free (&a);
}
