/* Unit tests: snapshots (cow/snapshot.c): deletion and slot reuse,
 * pinned readers, invalidation, names, listing and per-snapshot usage. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (snapshot, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

static void
area (struct uh_area *a, uint64_t nchunks)
{
  uh_area_create (a, nchunks * CS, CS, 9);
}

/* ---- deletion --------------------------------------------------------- */

Test (snapshot, delete_frees_copies_no_snapshot_needs)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  uh_copy_chunk (a.d, 0, 10);   /* only a needs it */
  uh_snap (a.d, "b");
  uh_copy_chunk (a.d, 0, 20);   /* only b needs it */
  uh_copy_chunk (a.d, 1, 21);   /* a and b need it */
  cr_assert_eq (uh_stats (a.d).data_slots, 3);
  cr_assert_eq (uh_stats (a.d).copies, 3);

  cr_assert_eq (sc_diff_snapshot_delete (a.d, "a"), 0);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, 2, "the copy only a needed is freed");
  cr_assert_eq (st.copies, 2);
  cr_assert_eq (st.snapshots, 1);
  uh_assert_sees_copy (a.d, "b", 0, 20);
  uh_assert_sees_copy (a.d, "b", 1, 21);

  cr_assert_eq (sc_diff_snapshot_delete (a.d, "b"), 0);
  st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, 0);
  cr_assert_eq (st.copies, 0);
  cr_assert_eq (st.snapshots, 0);
  cr_assert (!sc_diff_needs_copy (a.d, 0));
  uh_area_free (&a);
}

Test (snapshot, delete_keeps_copies_a_remaining_snapshot_needs)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  uh_snap (a.d, "b");
  uh_copy_chunk (a.d, 2, 22);   /* shared by a and b */
  uint64_t off_before;
  cr_assert_eq (uh_resolve (a.d, "b", 2, &off_before), SC_WHERE_DIFF);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "a"), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 1);
  uint64_t off_after;
  cr_assert_eq (uh_resolve (a.d, "b", 2, &off_after), SC_WHERE_DIFF);
  cr_assert_eq (off_after, off_before);
  uh_assert_slot_data (a.d, off_after, 22);
  /* Deleting the newest instead keeps what the oldest needs. */
  uh_snap (a.d, "c");
  uh_copy_chunk (a.d, 3, 33);   /* shared by b and c */
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "c"), 0);
  uh_assert_sees_copy (a.d, "b", 3, 33);
  uh_assert_sees_copy (a.d, "b", 2, 22);
  cr_assert_eq (uh_stats (a.d).data_slots, 2);
  uh_area_free (&a);
}

Test (snapshot, delete_of_the_middle_snapshot_of_three)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "s1");
  uh_copy_chunk (a.d, 0, 100);  /* s1 only */
  uh_copy_chunk (a.d, 1, 101);  /* s1 only */
  uh_snap (a.d, "s2");
  uh_copy_chunk (a.d, 0, 200);  /* s2 only: freed */
  uh_copy_chunk (a.d, 2, 202);  /* s1 and s2: kept */
  uh_snap (a.d, "s3");
  uh_copy_chunk (a.d, 0, 300);  /* s3 only */
  uh_copy_chunk (a.d, 1, 301);  /* s2 and s3: kept for s3 */
  uh_copy_chunk (a.d, 3, 303);  /* all three */
  cr_assert_eq (uh_stats (a.d).data_slots, 7);

  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s2"), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 6);
  struct sc_snapshot_info s2;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "s2", &s2), -ENOENT);
  uh_assert_sees_copy (a.d, "s1", 0, 100);
  uh_assert_sees_copy (a.d, "s1", 1, 101);
  uh_assert_sees_copy (a.d, "s1", 2, 202);
  uh_assert_sees_copy (a.d, "s1", 3, 303);
  uh_assert_sees_copy (a.d, "s3", 0, 300);
  uh_assert_sees_copy (a.d, "s3", 1, 301);
  uh_assert_sees_origin (a.d, "s3", 2);
  uh_assert_sees_copy (a.d, "s3", 3, 303);
  uh_area_free (&a);
}

Test (snapshot, freed_slots_are_reused_and_the_file_does_not_grow)
{
  struct uh_area a;
  area (&a, 16);
  uh_snap (a.d, "a");
  uint64_t freed[4];
  for (int i = 0; i < 4; i++)
    freed[i] = uh_copy_chunk (a.d, i, 10 + i);
  uh_snap (a.d, "b");
  for (int i = 4; i < 8; i++)
    uh_copy_chunk (a.d, i, 10 + i);   /* a and b share these */
  uint64_t size = uh_file_size (a.diff_path);
  uint64_t lowest = freed[0];
  for (int i = 1; i < 4; i++)
    if (freed[i] < lowest)
      lowest = freed[i];

  cr_assert_eq (sc_diff_snapshot_delete (a.d, "a"), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 4);
  cr_assert_geq (uh_stats (a.d).free_slots, 4);

  /* The next copies go to the freed slots, lowest first. */
  uint64_t got[4];
  for (int i = 0; i < 4; i++)
    got[i] = uh_copy_chunk (a.d, 8 + i, 20 + i);
  cr_assert_eq (got[0], lowest, "first reserve after the delete: %lu, the "
                "lowest freed slot is %lu", (unsigned long) got[0],
                (unsigned long) lowest);
  for (int i = 0; i < 4; i++) {
    bool was_freed = false;
    for (int k = 0; k < 4; k++)
      was_freed |= got[i] == freed[k];
    cr_assert (was_freed, "copy %d went to offset %lu, not a freed slot", i,
               (unsigned long) got[i]);
  }
  cr_assert_eq (uh_file_size (a.diff_path), size, "the file grew");
  for (int i = 0; i < 4; i++)
    uh_assert_sees_copy (a.d, "b", 8 + i, 20 + i);
  for (int i = 4; i < 8; i++)
    uh_assert_sees_copy (a.d, "b", i, 10 + i);
  uh_area_free (&a);
}

Test (snapshot, cancelled_slots_are_reused)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  uint64_t o1, o2;
  cr_assert_eq (sc_diff_slot_reserve (a.d, &o1), 0);
  sc_diff_slot_cancel (a.d, o1);
  cr_assert_eq (sc_diff_slot_reserve (a.d, &o2), 0);
  cr_assert_eq (o1, o2);
  sc_diff_slot_cancel (a.d, o2);
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  uh_area_free (&a);
}

Test (snapshot, deletion_persists_across_reopen)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "a");
  uh_copy_chunk (a.d, 0, 10);
  uh_snap (a.d, "b");
  uh_copy_chunk (a.d, 0, 20);
  uh_copy_chunk (a.d, 1, 21);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "a"), 0);
  struct sc_diff_stats st = uh_stats (a.d);

  for (int ro = 0; ro < 2; ro++) {
    uh_area_reopen (&a, ro ? SC_DIFF_RDONLY : 0);
    struct sc_snapshot_info s;
    cr_assert_eq (sc_diff_snapshot_find (a.d, "a", &s), -ENOENT);
    struct sc_diff_stats st2 = uh_stats (a.d);
    cr_assert_eq (st2.snapshots, 1);
    cr_assert_eq (st2.copies, st.copies);
    cr_assert_eq (st2.data_slots, st.data_slots);
    uh_assert_sees_copy (a.d, "b", 0, 20);
    uh_assert_sees_copy (a.d, "b", 1, 21);
  }
  uh_area_free (&a);
}

Test (snapshot, deleting_every_snapshot_frees_every_copy)
{
  struct uh_area a;
  char name[16];
  area (&a, 32);
  for (int i = 0; i < 10; i++) {
    snprintf (name, sizeof name, "s%d", i);
    uh_snap (a.d, name);
    for (uint64_t c = i; c < 32; c += 3)
      uh_copy_chunk (a.d, c, 100 * i + c);
    if (sc_diff_needs_copy (a.d, 31 - i))
      uh_copy_zero (a.d, 31 - i);
  }
  cr_assert_gt (uh_stats (a.d).copies, 100);
  /* Oldest, newest, then the rest from the middle. */
  const int order[] = { 0, 9, 5, 4, 6, 1, 8, 2, 7, 3 };
  for (int k = 0; k < 10; k++) {
    snprintf (name, sizeof name, "s%d", order[k]);
    cr_assert_eq (sc_diff_snapshot_delete (a.d, name), 0);
  }
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.snapshots, 0);
  cr_assert_eq (st.copies, 0);
  cr_assert_eq (st.data_slots, 0);
  uh_area_reopen (&a, 0);
  st = uh_stats (a.d);
  cr_assert_eq (st.copies, 0);
  cr_assert_eq (st.data_slots, 0);
  uh_area_free (&a);
}

Test (snapshot, snapshot_ids_are_never_reused)
{
  struct uh_area a;
  area (&a, 4);
  struct sc_snapshot_info s1 = uh_snap (a.d, "x");
  struct sc_snapshot_info s2 = uh_snap (a.d, "y");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "y"), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "x"), 0);
  uh_area_reopen (&a, 0);
  struct sc_snapshot_info s3 = uh_snap (a.d, "x");
  cr_assert_gt (s3.id, s2.id, "id %lu reused after delete and reopen",
                (unsigned long) s3.id);
  cr_assert_gt (s2.id, s1.id);
  cr_assert_gt (s3.epoch, s2.epoch, "epochs never go back");
  uh_area_free (&a);
}

Test (snapshot, delete_unknown_is_enoent)
{
  struct uh_area a;
  area (&a, 4);
  uh_snap (a.d, "x");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "y"), -ENOENT);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, ""), -ENOENT);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "x"), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "x"), -ENOENT,
                "deleting twice");
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "x", &s), -ENOENT);
  uh_area_free (&a);
}

Test (snapshot, deleted_snapshot_cannot_be_pinned)
{
  struct uh_area a;
  area (&a, 4);
  struct sc_snapshot_info s = uh_snap (a.d, "x");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "x"), 0);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), -ENOENT);
  cr_assert_eq (sc_diff_snapshot_get (a.d, 999, NULL), -ENOENT);
  uh_area_free (&a);
}

/* A delete waits for reads of the snapshot in flight before freeing its
 * copies, so a pinned reader never reads a reused slot. */
struct deleter {
  struct sc_diff *d;
  const char *name;
  int result;
  bool done;
};

static void *
delete_thread (void *p)
{
  struct deleter *dl = p;
  dl->result = sc_diff_snapshot_delete (dl->d, dl->name);
  __atomic_store_n (&dl->done, true, __ATOMIC_SEQ_CST);
  return NULL;
}

Test (snapshot, delete_waits_for_pinned_readers)
{
  struct uh_area a;
  area (&a, 4);
  struct sc_snapshot_info s = uh_snap (a.d, "x");
  uint64_t off = uh_copy_chunk (a.d, 1, 11);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);

  struct deleter dl = { a.d, "x", 1, false };
  pthread_t t;
  cr_assert_eq (pthread_create (&t, NULL, delete_thread, &dl), 0);
  usleep (200 * 1000);
  bool early = __atomic_load_n (&dl.done, __ATOMIC_SEQ_CST);
  /* The pinned reader can still resolve and read its copy. */
  uint64_t got = 0;
  enum sc_where w = sc_diff_resolve (a.d, s.epoch, 1, &got);
  struct sc_diff_stats st = uh_stats (a.d);
  sc_diff_snapshot_put (a.d, s.id);
  cr_assert_eq (pthread_join (t, NULL), 0);

  cr_assert (!early, "delete returned while a read was pinned");
  cr_assert_eq (w, SC_WHERE_DIFF);
  cr_assert_eq (got, off);
  cr_assert_eq (st.data_slots, 1, "the copy was freed under a reader");
  cr_assert_eq (st.snapshots, 0, "a snapshot being deleted is not listed");
  cr_assert_eq (dl.result, 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 0, "freed once the read ended");
  uh_area_free (&a);
}

/* ---- invalidation ----------------------------------------------------- */

Test (snapshot, invalidation_marks_exactly_the_snapshots_that_needed_the_chunk)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "s1");
  uh_snap (a.d, "s2");
  uh_copy_chunk (a.d, 4, 44);   /* epoch 3: s1 and s2 have their copy */
  uh_snap (a.d, "s3");
  uh_snap (a.d, "s4");
  /* Copying chunk 4 in epoch 5 failed: s3 and s4 needed it. */
  cr_assert (sc_diff_needs_copy (a.d, 4));
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 4, SC_INVALID_DIFF_FULL,
                                          ENOSPC), 0);
  const char *valid[] = { "s1", "s2" }, *invalid[] = { "s3", "s4" };
  for (int i = 0; i < 2; i++) {
    struct sc_snapshot_info s = uh_find (a.d, valid[i]);
    cr_assert_eq (s.invalid_reason, SC_VALID, "%s", valid[i]);
    cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);
    sc_diff_snapshot_put (a.d, s.id);
    uh_assert_sees_copy (a.d, valid[i], 4, 44);
  }
  for (int i = 0; i < 2; i++) {
    struct sc_snapshot_info s = uh_find (a.d, invalid[i]);
    cr_assert_eq (s.invalid_reason, SC_INVALID_DIFF_FULL, "%s", invalid[i]);
    cr_assert_eq (s.invalid_errno, ENOSPC);
    cr_assert_eq (s.invalid_chunk, 4);
    struct sc_snapshot_info got;
    memset (&got, 0, sizeof got);
    cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, &got), -EIO);
    cr_assert_eq (got.id, s.id, "the info of an invalid snapshot is filled");
    cr_assert_eq (got.invalid_reason, SC_INVALID_DIFF_FULL);
  }
  cr_assert (!sc_diff_needs_copy (a.d, 4), "no valid snapshot needs it now");
  cr_assert_eq (uh_stats (a.d).snapshots, 4, "invalid ones stay listed");
  uh_area_free (&a);
}

Test (snapshot, invalidation_of_a_never_copied_chunk_marks_every_snapshot)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "s1");
  uh_snap (a.d, "s2");
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 6, SC_INVALID_COPY_READ, EIO),
                0);
  cr_assert_eq (uh_find (a.d, "s1").invalid_reason, SC_INVALID_COPY_READ);
  cr_assert_eq (uh_find (a.d, "s2").invalid_reason, SC_INVALID_COPY_READ);
  /* A snapshot taken afterwards is valid. */
  uh_snap (a.d, "s3");
  cr_assert_eq (uh_find (a.d, "s3").invalid_reason, SC_VALID);
  uh_area_free (&a);
}

Test (snapshot, invalidation_is_durable_across_reopen)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "s1");
  uh_copy_chunk (a.d, 2, 22);
  uh_snap (a.d, "s2");
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 2, SC_INVALID_COPY_WRITE, EIO),
                0);
  for (int k = 0; k < 3; k++) {
    uh_area_reopen (&a, k == 1 ? SC_DIFF_RDONLY : 0);
    struct sc_snapshot_info s1 = uh_find (a.d, "s1");
    struct sc_snapshot_info s2 = uh_find (a.d, "s2");
    cr_assert_eq (s1.invalid_reason, SC_VALID, "reopen %d", k);
    uh_assert_sees_copy (a.d, "s1", 2, 22);
    cr_assert_eq (s2.invalid_reason, SC_INVALID_COPY_WRITE, "reopen %d", k);
    cr_assert_eq (s2.invalid_errno, EIO);
    cr_assert_eq (s2.invalid_chunk, 2);
    cr_assert_eq (sc_diff_snapshot_get (a.d, s2.id, NULL), -EIO);
  }
  uh_area_free (&a);
}

Test (snapshot, invalid_snapshot_can_be_deleted)
{
  struct uh_area a;
  area (&a, 8);
  uh_snap (a.d, "s1");
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 2, SC_INVALID_DIFF_FULL,
                                          ENOSPC), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  cr_assert_eq (uh_stats (a.d).snapshots, 0);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_stats (a.d).snapshots, 0);
  uh_area_free (&a);
}

Test (snapshot, invalid_reasons_have_text)
{
  /* Every reason the format defines, each with its own text. */
  uint32_t reasons[] = {
    SC_INVALID_COPY_WRITE, SC_INVALID_COPY_READ, SC_INVALID_DIFF_FULL,
    SC_INVALID_METADATA, SC_INVALID_VOLATILE, SC_DROPPED_DIFF_FULL,
    SC_DROPPED_MAX_SNAPSHOTS, SC_DROPPED_SHRINK,
  };
  size_t n = sizeof reasons / sizeof reasons[0];
  cr_assert_eq (n, SC_DROPPED_SHRINK, "a reason is missing from this test");
  const char *unknown = sc_invalid_reason_text (SC_DROPPED_SHRINK + 1);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq (reasons[i], i + 1);
    const char *t = sc_invalid_reason_text (reasons[i]);
    cr_assert (t && *t);
    cr_assert_str_neq (t, sc_invalid_reason_text (SC_VALID));
    cr_assert_str_neq (t, unknown, "reason %u has no text", reasons[i]);
    for (size_t k = 0; k < i; k++)
      cr_assert_str_neq (t, sc_invalid_reason_text (reasons[k]));
  }
  cr_assert_str_eq (sc_invalid_reason_text (SC_INVALID_DIFF_FULL),
                    "diff area full");
}

/* ---- names ------------------------------------------------------------ */

Test (snapshot, snapshot_name_validation)
{
  char max[SC_NAME_MAX + 1], over[SC_NAME_MAX + 2];
  memset (max, 'a', SC_NAME_MAX);
  max[SC_NAME_MAX] = '\0';
  memset (over, 'b', SC_NAME_MAX + 1);
  over[SC_NAME_MAX + 1] = '\0';
  const char *good[] = {
    "a", "A", "0", "backup", "2024-01-02T03:04:05.678Z", "x.y", "x..",
    "a:b", "a+b", "a-b", "a_b", "-leading-dash", "_", "Live", "live2",
    "lives", "x.live", max,
  };
  const char *bad[] = {
    "", "live", ".x", ".", "..", "a/b", "/", "a b", " a", "a ", "a\tb",
    "a\nb", "a*b", "a?b", "a\\b", "a,b", "a;b", "a=b", "a@b", "a#b", "\xc3\xa9",
    "a'b", "a\"b", over,
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_assert (sc_snapshot_name_valid (good[i]), "refused \"%s\"", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert (!sc_snapshot_name_valid (bad[i]), "accepted \"%s\"", bad[i]);
  cr_assert_eq (strlen (max), 128);
  cr_assert_eq (strlen (over), 129);
}

Test (snapshot, create_refuses_invalid_names)
{
  struct uh_area a;
  area (&a, 4);
  const char *bad[] = { "", "live", ".x", "a/b", "a b" };
  for (size_t i = 0; i < 5; i++)
    cr_assert_eq (sc_diff_snapshot_create (a.d, bad[i], NULL, NULL), -EINVAL,
                  "\"%s\"", bad[i]);
  char over[SC_NAME_MAX + 2];
  memset (over, 'c', SC_NAME_MAX + 1);
  over[SC_NAME_MAX + 1] = '\0';
  cr_assert_eq (sc_diff_snapshot_create (a.d, over, NULL, NULL), -EINVAL);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.snapshots, 0);
  cr_assert_eq (st.epoch, 1, "a refused create does not move the epoch");
  uh_area_free (&a);
}

Test (snapshot, a_128_character_name_round_trips)
{
  struct uh_area a;
  area (&a, 4);
  char max[SC_NAME_MAX + 1];
  for (int i = 0; i < SC_NAME_MAX; i++)
    max[i] = "abcXYZ019._:+-"[i % 14];
  max[SC_NAME_MAX] = '\0';
  cr_assert (sc_snapshot_name_valid (max));
  struct sc_snapshot_info s = uh_snap (a.d, max);
  cr_assert_str_eq (s.name, max);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_find (a.d, max).id, s.id);
  uh_area_free (&a);
}

Test (snapshot, duplicate_name_is_eexist)
{
  struct uh_area a;
  area (&a, 4);
  uh_snap (a.d, "same");
  cr_assert_eq (sc_diff_snapshot_create (a.d, "same", NULL, NULL), -EEXIST);
  cr_assert_eq (uh_stats (a.d).snapshots, 1);
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_snapshot_create (a.d, "same", NULL, NULL), -EEXIST,
                "after a reopen too");
  cr_assert_eq (sc_diff_snapshot_create (a.d, "Same", NULL, NULL), 0,
                "names are case-sensitive");
  uh_area_free (&a);
}

Test (snapshot, a_deleted_name_can_be_used_again)
{
  struct uh_area a;
  area (&a, 4);
  struct sc_snapshot_info old = uh_snap (a.d, "again");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "again"), 0);
  struct sc_snapshot_info s = uh_snap (a.d, "again");
  cr_assert_neq (s.id, old.id);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_find (a.d, "again").id, s.id);
  uh_area_free (&a);
}

/* ---- usage ------------------------------------------------------------ */

static struct sc_snapshot_info
listed (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i].name, name) == 0) {
      struct sc_snapshot_info s = v[i];
      free (v);
      return s;
    }
  cr_assert_fail ("%s is not listed", name);
  free (v);
  return (struct sc_snapshot_info) { 0 };
}

Test (snapshot, list_is_in_creation_order)
{
  struct uh_area a;
  area (&a, 4);
  const char *names[] = { "zeta", "alpha", "mid", "beta" };
  for (int i = 0; i < 4; i++)
    uh_snap (a.d, names[i]);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "alpha"), 0);
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (a.d, &v, &n), 0);
  cr_assert_eq (n, 3);
  cr_assert_str_eq (v[0].name, "zeta");
  cr_assert_str_eq (v[1].name, "mid");
  cr_assert_str_eq (v[2].name, "beta");
  cr_assert_lt (v[0].id, v[1].id);
  cr_assert_lt (v[1].epoch, v[2].epoch);
  free (v);
  uh_area_free (&a);
}

Test (snapshot, used_bytes_is_what_deleting_the_snapshot_frees)
{
  struct uh_area a;
  area (&a, 16);
  uh_snap (a.d, "s1");
  uh_copy_chunk (a.d, 0, 1);    /* s1 only */
  uh_copy_chunk (a.d, 1, 2);    /* s1 only */
  uh_copy_zero (a.d, 9);        /* s1 only, but takes no space */
  uh_snap (a.d, "s2");
  uh_copy_chunk (a.d, 0, 3);    /* s2 only */
  uh_copy_chunk (a.d, 2, 4);    /* s1 and s2: nobody's alone */
  uh_snap (a.d, "s3");          /* nothing copied after it */

  cr_assert_eq (listed (a.d, "s1").used_bytes, 2 * CS);
  cr_assert_eq (listed (a.d, "s2").used_bytes, 1 * CS);
  cr_assert_eq (listed (a.d, "s3").used_bytes, 0);
  cr_assert_eq (uh_find (a.d, "s1").used_bytes, 2 * CS, "find agrees");

  /* The figures survive a reopen (read-only too). */
  uh_area_reopen (&a, SC_DIFF_RDONLY);
  cr_assert_eq (listed (a.d, "s1").used_bytes, 2 * CS);
  cr_assert_eq (listed (a.d, "s2").used_bytes, 1 * CS);
  uh_area_reopen (&a, 0);

  /* Deleting s1 frees exactly its figure. */
  uint64_t before = uh_stats (a.d).data_slots;
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  cr_assert_eq ((before - uh_stats (a.d).data_slots) * CS, 2 * CS);
  /* Now the shared copy of chunk 2 is s2's alone. */
  cr_assert_eq (listed (a.d, "s2").used_bytes, 2 * CS);
  before = uh_stats (a.d).data_slots;
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s2"), 0);
  cr_assert_eq ((before - uh_stats (a.d).data_slots) * CS, 2 * CS);
  uh_area_free (&a);
}

Test (snapshot, stats_count_copies_and_slots)
{
  struct uh_area a;
  area (&a, 16);
  uh_snap (a.d, "s");
  for (uint64_t c = 0; c < 5; c++)
    uh_copy_chunk (a.d, c, c + 1);
  uh_copy_zero (a.d, 7);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.snapshots, 1);
  cr_assert_eq (st.copies, 6);
  cr_assert_eq (st.data_slots, 5);
  cr_assert_eq (st.chunk_size, CS);
  cr_assert_eq (st.volume_size, 16 * CS);
  cr_assert_geq (st.used_bytes, SC_SB_AREA + 5 * CS + st.journal_slots * CS);
  cr_assert_geq (st.file_bytes, st.used_bytes - CS,
                 "used %lu, file %lu", (unsigned long) st.used_bytes,
                 (unsigned long) st.file_bytes);
  uh_area_free (&a);
}
