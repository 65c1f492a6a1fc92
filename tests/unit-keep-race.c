/* Unit tests: a keep (delete --keep-checkpoint) while its record waits
 * for its commit.  The keep applies only once the record is durable
 * (cow/marks.c), so the snapshot is still a plain snapshot meanwhile:
 * whatever else looks at it then must not take it for one that will
 * stay a snapshot.  Each test crashes after the race (the file as it is)
 * and opens the diff area again. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (keep_race, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

struct job { struct sc_diff *d; int r; };

static void *
keep_job (void *opaque)
{
  struct job *j = opaque;
  j->r = sc_diff_snapshot_keep_checkpoint (j->d, "s");
  return NULL;
}

static void *
revert_job (void *opaque)
{
  struct job *j = opaque;
  j->r = sc_diff_revert_start (j->d, "s", NULL, 0, NULL);
  return NULL;
}

/* Snapshot "s" with copies of chunks 0..9. */
static void
area_with_copies (struct uh_area *a)
{
  uh_area_create (a, 64 * CS, CS, 3);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_create (a->d, "s", NULL, &s), 0);
  for (uint64_t c = 0; c < 10; c++)
    uh_copy_chunk (a->d, c, 100 + c);
}

/* Wait (10 s at most) until the journal holds more than `records`. */
static bool
records_past (struct sc_diff *d, uint64_t records)
{
  for (int i = 0; i < 10000; i++) {
    if (uh_stats (d).journal_records > records)
      return true;
    usleep (1000);
  }
  return false;
}

/* A keep that leads its commit and is held in its fdatasync (the lock
 * dropped): its KEEP_CHECKPOINT is appended, the snapshot still plain. */
static void
keep_held (struct uh_area *a, struct job *keep, pthread_t *th)
{
  uh_syncs_stop (sc_diff_fd (a->d));
  pthread_create (th, NULL, keep_job, keep);
  cr_assert (uh_syncs_wait_stopped (), "the keep's commit did not sync");
}

/* A crash now: the file as it is, then the open. */
static void
crash_and_open (struct uh_area *a)
{
  size_t len;
  uint8_t *img = uh_read_file (a->diff_path, &len);
  uh_area_close (a);
  uh_write_file (a->diff_path, img, len);
  free (img);
  uh_area_open (a, 0);
}

/* Two keeps of one snapshot: the second finds it still a snapshot (the
 * first has not applied) and appends a second KEEP_CHECKPOINT, which
 * replay refuses (a keep of a checkpoint): the diff area does not open. */
Test (keep_race, two_keeps_of_one_snapshot_then_a_crash)
{
  struct uh_area a;
  area_with_copies (&a);
  struct job k1 = { .d = a.d }, k2 = { .d = a.d };
  pthread_t t1, t2;
  keep_held (&a, &k1, &t1);
  uint64_t records = uh_stats (a.d).journal_records;
  pthread_create (&t2, NULL, keep_job, &k2);
  bool appended = records_past (a.d, records);
  uh_syncs_go ();
  pthread_join (t1, NULL);
  pthread_join (t2, NULL);
  cr_assert_eq (k1.r, 0);
  cr_assert (k2.r == -EAGAIN || k2.r == -EINVAL,
             "second keep: %d (appended a record: %d)", k2.r, appended);
  cr_assert (uh_find (a.d, "s").checkpoint);
  crash_and_open (&a);          /* asserts the open succeeds */
  cr_assert (uh_find (a.d, "s").checkpoint);
  uh_area_free (&a);
}

/* A revert to the snapshot started while its keep waits: the revert's
 * target check (cow/revert.c target_of) sees no checkpoint yet; the keep
 * then frees the target's data under the running revert (which writes
 * the target's content back to the origin from it), and replay refuses
 * the REVERT record after the KEEP_CHECKPOINT. */
Test (keep_race, revert_started_while_a_keep_waits)
{
  struct uh_area a;
  area_with_copies (&a);
  uint64_t slots = uh_stats (a.d).data_slots;
  cr_assert_eq (slots, 10);
  struct job keep = { .d = a.d }, rv = { .d = a.d };
  pthread_t tk, tr;
  keep_held (&a, &keep, &tk);
  uint64_t records = uh_stats (a.d).journal_records;
  pthread_create (&tr, NULL, revert_job, &rv);
  (void) records_past (a.d, records);
  usleep (100000);              /* (a refused revert appends nothing) */
  uh_syncs_go ();
  pthread_join (tk, NULL);
  pthread_join (tr, NULL);
  cr_assert (keep.r == 0 || rv.r == 0, "keep %d, revert %d", keep.r, rv.r);
  if (keep.r == 0 && rv.r == 0)
    cr_assert_eq (uh_stats (a.d).data_slots, slots,
                  "the running revert's target lost its data (%" PRIu64
                  " slots of %" PRIu64 ")",
                  uh_stats (a.d).data_slots, slots);
  crash_and_open (&a);          /* asserts the open succeeds */
  uh_area_free (&a);
}

/* A keep covered by an online journal checkpoint (its KEEP_CHECKPOINT
 * carried into the new journal, right after the snapshot's records and
 * before the state and the copies), then its freed slots reused by the
 * copies of a later snapshot: after a crash the later snapshot reads its
 * own copies, and the kept one is a valid checkpoint. */
static bool ckpt_armed;

static uint64_t
ckpt_once (uint64_t live)
{
  (void) live;
  return __atomic_exchange_n (&ckpt_armed, false, __ATOMIC_SEQ_CST)
         ? 0 : UINT64_MAX;
}

static void *
copy_job (void *opaque)
{
  struct job *j = opaque;
  j->r = uh_copy_reserved (j->d, 20, 500);      /* commits, leads */
  return NULL;
}

Test (keep_race, covered_keep_then_its_slots_reused_then_a_crash)
{
  struct uh_area a;
  area_with_copies (&a);
  struct sc_sb_disk before, after;
  uh_sb_newest (a.diff_path, &before);
  uh_syncs_stop (sc_diff_fd (a.d));
  struct job copy = { .d = a.d }, keep = { .d = a.d };
  pthread_t tc, tk;
  pthread_create (&tc, NULL, copy_job, &copy);
  cr_assert (uh_syncs_wait_stopped (), "the copy's commit did not sync");
  uint64_t records = uh_stats (a.d).journal_records;
  pthread_create (&tk, NULL, keep_job, &keep);
  cr_assert (records_past (a.d, records), "the keep appended nothing");
  __atomic_store_n (&ckpt_armed, true, __ATOMIC_SEQ_CST);
  sc_ckpt_limit_hook = ckpt_once;
  uh_syncs_go ();
  pthread_join (tc, NULL);
  pthread_join (tk, NULL);
  cr_assert_eq (copy.r, 0);
  cr_assert_eq (keep.r, 0);
  uh_sb_newest (a.diff_path, &after);
  cr_assert_neq (before.journal_nonce, after.journal_nonce,
                 "no journal checkpoint was written");
  sc_ckpt_limit_hook = NULL;
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  struct sc_snapshot_info t;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "t", NULL, &t), 0);
  for (uint64_t c = 0; c < 12; c++)
    uh_copy_chunk (a.d, c, 200 + c);
  crash_and_open (&a);
  struct sc_snapshot_info s = uh_find (a.d, "s");
  cr_assert (s.checkpoint, "the keep was lost");
  cr_assert_eq (s.invalid_reason, SC_VALID);
  cr_assert_eq (uh_find (a.d, "t").invalid_reason, SC_VALID);
  for (uint64_t c = 0; c < 12; c++)
    uh_assert_sees_copy (a.d, "t", c, 200 + c);
  uh_area_free (&a);
}
