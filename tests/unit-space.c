/* Unit tests: diff-area space management: the size limit and what it
 * counts, on-full policies (drops and refusals), resize, max-snapshots,
 * the drop history, and that all of it is kept across a reopen. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (space, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

static void
area (struct uh_area *a, uint64_t nchunks)
{
  uh_area_create (a, nchunks * CS, CS, 5);
}

static size_t
nsnaps (struct sc_diff *d)
{
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  free (v);
  return n;
}

Test (space, fail_writes_refuses_at_the_limit_and_keeps_the_snapshot)
{
  struct uh_area a;
  area (&a, 64);
  sc_diff_set_policy (a.d, SC_ON_FULL_FAIL_WRITES, 0);
  cr_assert_eq (sc_diff_set_max (a.d, 20 * CS, 0, NULL), 0);
  uh_snap (a.d, "a");
  uint64_t copied = 0;
  int r = 0;
  for (uint64_t c = 0; c < 64 && r == 0; c++)
    if ((r = uh_copy_reserved (a.d, c, 100 + c)) == 0)
      copied++;
  cr_assert_eq (r, -ENOSPC);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_leq (st.used_bytes, 20 * CS, "used %lu over the limit",
                 (unsigned long) st.used_bytes);
  cr_assert_gt (copied, 8, "only %lu copies fit in 20 slots",
                (unsigned long) copied);
  cr_assert_eq (st.full_failures, 1);
  cr_assert_eq (uh_find (a.d, "a").invalid_reason, SC_VALID);
  /* Every copy made is still served. */
  for (uint64_t c = 0; c < copied; c++) {
    uint64_t off;
    cr_assert_eq (sc_diff_resolve (a.d, uh_find (a.d, "a").epoch, c, &off),
                  SC_WHERE_DIFF);
    uh_assert_slot_data (a.d, off, 100 + c);
  }
  /* A chunk copied in this epoch needs nothing more. */
  cr_assert (!sc_diff_needs_copy (a.d, 0));
  uh_area_free (&a);
}

Test (space, delete_oldest_drops_until_the_copy_fits_and_it_is_recorded)
{
  struct uh_area a;
  area (&a, 64);
  cr_assert_eq (sc_diff_set_max (a.d, 32 * CS, 0, NULL), 0);
  /* Three snapshots, 6 private copies each: 18 slots plus metadata. */
  const char *names[] = { "a", "b", "c" };
  for (int s = 0; s < 3; s++) {
    uh_snap (a.d, names[s]);
    for (uint64_t c = 0; c < 6; c++)
      cr_assert_eq (uh_copy_reserved (a.d, s * 6 + c, s * 100 + c), 0);
  }
  cr_assert_eq (nsnaps (a.d), 3);
  /* More copies for c: a goes first, then b if needed; never c. */
  for (uint64_t c = 18; c < 26; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, 300 + c), 0);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_leq (st.used_bytes, 32 * CS);
  cr_assert_geq (st.dropped, 1);
  cr_assert_eq (sc_diff_snapshot_find (a.d, "a", &(struct sc_snapshot_info)
                                       { 0 }), -ENOENT);
  struct sc_snapshot_info c = uh_find (a.d, "c");
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, c.epoch, 25, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 325);

  struct sc_drop_info *drops;
  size_t n;
  uint64_t total;
  cr_assert_eq (sc_diff_drops (a.d, &drops, &n, &total), 0);
  cr_assert_eq (n, total);
  cr_assert_str_eq (drops[0].name, "a");
  cr_assert_eq (drops[0].reason, SC_DROPPED_DIFF_FULL);
  free (drops);

  /* The limit, the history and the count are kept. */
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_get_max (a.d, NULL), 32 * CS);
  cr_assert_eq (sc_diff_drops (a.d, &drops, &n, &total), 0);
  cr_assert_eq (total, st.dropped);
  cr_assert_str_eq (drops[0].name, "a");
  free (drops);
  cr_assert_eq (sc_diff_resolve (a.d, uh_find (a.d, "c").epoch, 25, &off),
                SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 325);
  /* And offline, read-only. */
  uh_area_close (&a);
  uh_area_open (&a, SC_DIFF_RDONLY);
  cr_assert_eq (sc_diff_get_max (a.d, NULL), 32 * CS);
  uh_area_free (&a);
}

Test (space, a_copy_nobody_needs_after_the_drops_is_skipped)
{
  struct uh_area a;
  area (&a, 64);
  cr_assert_eq (sc_diff_set_max (a.d, 16 * CS, 0, NULL), 0);
  uh_snap (a.d, "only");
  int r = 0;
  uint64_t c;
  for (c = 0; c < 64 && r == 0; c++)
    r = uh_copy_reserved (a.d, c, c);
  cr_assert_eq (r, 1, "the drop of the last snapshot leaves nothing to copy");
  cr_assert_eq (nsnaps (a.d), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  cr_assert (!sc_diff_needs_copy (a.d, c));
  uh_area_free (&a);
}

Test (space, resize_below_the_use_needs_force)
{
  struct uh_area a;
  area (&a, 64);
  uh_snap (a.d, "a");
  for (uint64_t c = 0; c < 10; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, c), 0);
  uh_snap (a.d, "b");
  for (uint64_t c = 10; c < 14; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, c), 0);
  uint64_t dropped = 99;
  cr_assert_eq (sc_diff_set_max (a.d, 2 * CS, 0, NULL), -EINVAL);
  cr_assert_eq (sc_diff_set_max (a.d, 16 * CS, 0, &dropped), -ENOSPC);
  cr_assert_eq (dropped, 0);
  cr_assert_eq (nsnaps (a.d), 2);
  cr_assert_eq (sc_diff_get_max (a.d, NULL), 0, "a refused resize changed it");
  cr_assert_eq (sc_diff_set_max (a.d, 16 * CS, SC_MAX_FORCE, &dropped), 0);
  cr_assert_eq (dropped, 1);
  cr_assert_eq (nsnaps (a.d), 1);
  cr_assert_leq (uh_stats (a.d).used_bytes, 16 * CS);
  struct sc_drop_info *drops;
  size_t n;
  cr_assert_eq (sc_diff_drops (a.d, &drops, &n, NULL), 0);
  cr_assert_eq (n, 1);
  cr_assert_eq (drops[0].reason, SC_DROPPED_SHRINK);
  free (drops);
  /* Up, and unbounded. */
  cr_assert_eq (sc_diff_set_max (a.d, 64 * CS, 0, NULL), 0);
  cr_assert_eq (sc_diff_set_max (a.d, 0, 0, NULL), 0);
  uh_area_reopen (&a, 0);
  bool recorded = false;
  cr_assert_eq (sc_diff_get_max (a.d, &recorded), 0);
  cr_assert (recorded);
  uh_area_free (&a);
}

Test (space, max_snapshots_refuses_or_deletes_the_oldest)
{
  struct uh_area a;
  area (&a, 8);
  sc_diff_set_policy (a.d, SC_ON_FULL_DELETE_OLDEST, 2);
  uh_snap (a.d, "a");
  uh_snap (a.d, "b");
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "c", NULL, &s), -EMFILE);
  cr_assert_eq (nsnaps (a.d), 2);
  struct sc_snapshot_opts o = { .delete_oldest = true };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "c", &o, &s), 0);
  cr_assert_eq (nsnaps (a.d), 2);
  cr_assert_eq (sc_diff_snapshot_find (a.d, "a", &s), -ENOENT);
  struct sc_drop_info *drops;
  size_t n;
  cr_assert_eq (sc_diff_drops (a.d, &drops, &n, NULL), 0);
  cr_assert_eq (n, 1);
  cr_assert_eq (drops[0].reason, SC_DROPPED_MAX_SNAPSHOTS);
  cr_assert_str_eq (drops[0].name, "a");
  free (drops);
  uh_area_free (&a);
}

Test (space, drop_history_keeps_the_last_ones_and_the_total)
{
  struct uh_area a;
  area (&a, 8);
  sc_diff_set_policy (a.d, SC_ON_FULL_DELETE_OLDEST, 1);
  struct sc_snapshot_opts o = { .delete_oldest = true };
  struct sc_snapshot_info s;
  char name[16];
  for (int i = 0; i < SC_DROP_HISTORY + 8; i++) {
    snprintf (name, sizeof name, "s%d", i);
    cr_assert_eq (sc_diff_snapshot_create (a.d, name, &o, &s), 0);
  }
  uh_area_reopen (&a, 0);
  struct sc_drop_info *drops;
  size_t n;
  uint64_t total;
  cr_assert_eq (sc_diff_drops (a.d, &drops, &n, &total), 0);
  cr_assert_eq (total, SC_DROP_HISTORY + 7);
  cr_assert_eq (n, SC_DROP_HISTORY);
  snprintf (name, sizeof name, "s%d", SC_DROP_HISTORY + 6);
  cr_assert_str_eq (drops[n - 1].name, name);
  free (drops);
  uh_area_free (&a);
}

Test (space, a_dropped_snapshot_being_read_is_freed_by_its_last_reader)
{
  struct uh_area a;
  area (&a, 64);
  cr_assert_eq (sc_diff_set_max (a.d, 16 * CS, 0, NULL), 0);
  struct sc_snapshot_info s = uh_snap (a.d, "read");
  for (uint64_t c = 0; c < 4; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, c + 7), 0);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);
  int r = 0;
  for (uint64_t c = 4; c < 64 && r == 0; c++)
    r = uh_copy_reserved (a.d, c, c);
  cr_assert_eq (sc_diff_snapshot_check (a.d, s.id), -ENOENT);
  /* Its copies are still there for the read in flight. */
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 2, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a.d, off, 9);
  cr_assert_gt (uh_stats (a.d).data_slots, 0);
  sc_diff_snapshot_put (a.d, s.id);
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  cr_assert_eq (uh_stats (a.d).copies, 0);
  uh_area_free (&a);
}

Test (space, invalidations_are_counted)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  uh_snap (a.d, "b");
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 3, SC_INVALID_DIFF_FULL,
                                          ENOSPC), 0);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.invalid, 2);
  cr_assert_eq (st.invalidations, 2);
  uh_area_reopen (&a, 0);
  st = uh_stats (a.d);
  cr_assert_eq (st.invalid, 2, "invalid snapshots stay listed as such");
  cr_assert_eq (st.invalidations, 0, "the counter is per session");
  uh_area_free (&a);
}

/* Allocated bytes of the diff-area file. */
static uint64_t
allocated (struct sc_diff *d)
{
  struct stat st;
  cr_assert_eq (fstat (sc_diff_fd (d), &st), 0);
  return (uint64_t) st.st_blocks * 512;
}

Test (space, the_file_grows_in_preallocated_steps_and_frees_punch_holes)
{
  struct uh_area a;
  area (&a, 1024);
  /* Can this filesystem preallocate and punch at all? */
  char *probe = uh_path ("probe");
  int fd = open (probe, O_RDWR | O_CREAT, 0600);
  cr_assert_geq (fd, 0);
  bool can = fallocate (fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0 &&
             fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                        1 << 20) == 0;
  close (fd);
  free (probe);
  if (!can) {
    uh_area_free (&a);
    cr_skip_test ("no fallocate on this filesystem");
  }
  cr_assert_eq (sc_diff_set_max (a.d, 512 * CS, 0, NULL), 0);
  uh_snap (a.d, "a");
  uint64_t before = allocated (a.d);
  cr_assert_eq (uh_copy_reserved (a.d, 0, 1), 0);
  /* One copy reserves a step of 1/16 of the limit: 32 slots. */
  cr_assert_geq (allocated (a.d), before + 16 * CS,
                 "allocated %lu after one uh_copy_reserved (from %lu)",
                 (unsigned long) allocated (a.d), (unsigned long) before);
  cr_assert_leq (allocated (a.d), 512 * CS + 64 * CS);
  for (uint64_t c = 1; c < 100; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, c + 1), 0);
  uint64_t full = allocated (a.d);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "a"), 0);
  cr_assert_leq (allocated (a.d), full - 90 * CS,
                 "deleting 100 copies gave back only %lu bytes",
                 (unsigned long) (full - allocated (a.d)));
  uh_area_free (&a);
}
