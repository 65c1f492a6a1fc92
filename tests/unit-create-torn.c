/* Unit tests: a snapshot creation that fails half-way through its
 * records is never served after a restart.
 *
 * A creation appends SNAP_CREATE, then SNAP_UUID (then SNAP_SET for a
 * member of a set).  If a later record cannot be appended (the journal
 * must switch slots there and cannot take one: the diff area is full),
 * the diff area fails and the snapshot is not kept in memory, but its
 * SNAP_CREATE is already in the journal's unwritten tail.  The
 * superblock cannot take FAILED either (its sectors refuse writes).  The
 * origin then changes with no copy made (no snapshot is left to copy
 * for, so nothing refuses the write: failure.c's guard), space comes
 * back and the server closes: its last recovery fails (the superblock),
 * and the close's commit would write that tail.  At the next open the
 * failed creation's snapshot must be absent or invalid, never a valid
 * snapshot reading the changed origin.  (The server wrote the origin
 * earlier in the session, so the origin's stamp cannot catch it.)
 *
 * The same tear with a live writer in a group commit (review 16): the
 * writer is told (refused while the failure cannot be recorded), the
 * server works again once space is back, and a copy whose record a
 * leader was writing when the failure came keeps its slot until the
 * disk no longer follows that journal. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/check.h"
#include "cow/diffarea-internal.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define SIZE (64u * CS)

/* ---- the faults: no new journal slot, no superblock write --------- */

static int fault_fd = -1;
static bool no_space, no_sb;

static int
fail_io (const struct sc_io_req *req)
{
  if (req->fd != fault_fd)
    return 0;
  if (req->op == SC_IO_FALLOCATE && __atomic_load_n (&no_space,
                                                     __ATOMIC_SEQ_CST))
    return -ENOSPC;
  if (req->op == SC_IO_WRITE && req->off < SC_SB_AREA &&
      __atomic_load_n (&no_sb, __ATOMIC_SEQ_CST))
    return -EIO;
  return 0;
}

static void
torn_teardown (void)
{
  sc_io_fault_hook = NULL;
  no_space = no_sb = false;
  uh_teardown ();
}

TestSuite (create_torn, .init = uh_setup, .fini = torn_teardown);

/* ---- the journal where record `k` of the creation needs a new slot - */

/* The sizes of a creation's records named `name` (set: with SNAP_SET). */
static size_t
create_records (const char *name, bool set, size_t *len)
{
  len[0] = sc_rec_padded (sizeof (struct sc_rec_snap_create) +
                          strlen (name));
  len[1] = sizeof (struct sc_rec_snap_uuid);
  len[2] = sizeof (struct sc_rec_snap_set);
  return set ? 3 : 2;
}

/* Records 0..k-1 fit in the current slot (with room for its NEXT
 * record), record k does not, and there is no spare to switch to. */
static bool
torn_at (const struct sc_journal *j, const size_t *len, size_t k)
{
  size_t before = j->pos + SC_REC_NEXT_SIZE;
  for (size_t i = 0; i < k; i++)
    before += len[i];
  return j->spare == 0 && before <= j->chunk_size &&
         before + len[k] > j->chunk_size;
}

/* With no space for a new slot, append commit markers (vouching for
 * nothing new, as a commit's own) until the creation's record k is the
 * one that needs a slot switch.  The first switch uses the spare and
 * cannot take another.  The diff area's lock held. */
static void
pad_journal_locked (struct sc_diff *d, const size_t *len, size_t k)
{
  int n = 0;
  while (!torn_at (&d->journal, len, k)) {
    struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                  .durable_seq = d->journal.durable_seq };
    int r = sc_journal_append (&d->journal, &mark, sizeof mark, NULL);
    cr_assert_eq (r, 0, "padding the journal: %d", r);
    cr_assert_lt (++n, 1000, "the journal never reached the spot");
  }
}

static void
pad_journal (struct sc_diff *d, const size_t *len, size_t k)
{
  pthread_mutex_lock (&d->lock);
  pad_journal_locked (d, len, k);
  pthread_mutex_unlock (&d->lock);
}

/* ---- the scenario ---------------------------------------------------- */

static void
torn_create (bool set, size_t k)
{
  struct uh_vol t;
  uh_vol_create (&t, SIZE, CS, 29, 0);
  struct sc_diff *d = sc_volume_diff (t.v);
  /* The server writes the origin in this session, as a live one does
   * (its stamp says WRITTEN: after an unclean stop, the origin's stamp
   * cannot tell the server's writes from others). */
  cr_assert_eq (uh_vol_write (&t, 40, 900), 0);
  uint8_t *at_create = malloc (SIZE);
  cr_assert_not_null (at_create);
  memcpy (at_create, t.live, SIZE);

  size_t len[3];
  create_records ("orphan", set, len);
  fault_fd = sc_diff_fd (d);
  sc_io_fault_hook = fail_io;
  __atomic_store_n (&no_space, true, __ATOMIC_SEQ_CST);
  pad_journal (d, len, k);

  /* The superblock's sectors refuse writes: FAILED cannot be stored. */
  __atomic_store_n (&no_sb, true, __ATOMIC_SEQ_CST);
  static const uint8_t set_id[16] = { 0x29, 0x17 };
  struct sc_snapshot_opts opts = { .set_id = set_id };
  struct sc_snapshot_info s;
  int r = sc_volume_snapshot_create (t.v, "orphan", set ? &opts : NULL, &s);
  cr_assert_lt (r, 0, "the creation did not fail");
  struct sc_diff_health h;
  sc_volume_diff_health (t.v, &h);
  cr_assert (h.failed, "the diff area did not fail");
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "orphan", &s), -ENOENT,
                "the failed creation is listed");

  /* No snapshot is left to copy for: the origin changes as it is. */
  for (uint64_t c = 0; c < 4; c++)
    cr_assert_eq (uh_vol_write (&t, c, 1000 + c), 0, "live write %lu",
                  (unsigned long) c);

  /* Space comes back; the superblock still takes no write.  Close. */
  __atomic_store_n (&no_space, false, __ATOMIC_SEQ_CST);
  uh_vol_close (&t);
  __atomic_store_n (&no_sb, false, __ATOMIC_SEQ_CST);
  sc_io_fault_hook = NULL;

  uh_vol_open (&t);
  r = sc_volume_snapshot_lookup (t.v, "orphan", &s);
  cr_assert (r == 0 || r == -ENOENT, "lookup: %d", r);
  if (r == 0 && s.invalid_reason == SC_VALID) {
    /* What it serves, then that it is listed at all. */
    uh_vol_assert_reads (&t, s.id, at_create, "the orphan snapshot");
    cr_assert_fail ("the failed creation's snapshot is listed valid after "
                    "a restart");
  }
  uh_vol_assert_reads (&t, 0, t.live, "the live volume");
  free (at_create);
  uh_vol_free (&t);
}

/* SNAP_UUID is the record that cannot be appended. */
Test (create_torn, failed_uuid_record_leaves_no_valid_snapshot)
{
  torn_create (false, 1);
}

/* A member of a set: SNAP_SET, the third record, cannot be appended. */
Test (create_torn, failed_set_record_leaves_no_valid_snapshot)
{
  torn_create (true, 2);
}

/* ---- the tear while a live writer waits in a group commit ---------- */

/* With the journal's leads held, start `job` (a live write that copies)
 * and return once its copy record waits in the tail. */
static pthread_t
start_waiting_writer (struct sc_diff *d, struct uh_vol_job *job)
{
  pthread_mutex_lock (&d->lock);
  sc_journal_hold_leads (&d->journal);
  uint64_t before = d->journal.next_seq;
  pthread_mutex_unlock (&d->lock);
  pthread_t th;
  cr_assert_eq (pthread_create (&th, NULL, uh_vol_write_job, job), 0);
  for (;;) {
    pthread_mutex_lock (&d->lock);
    bool in = d->journal.next_seq > before;
    pthread_mutex_unlock (&d->lock);
    if (in)
      return th;
    sched_yield ();
  }
}

/* A writer's copy record waits in the tail (the leads held) when the
 * creation tears.  sb_fails: the superblock cannot record the failure,
 * so the write must be refused; else it goes on, and once space is back
 * a new snapshot works and survives a restart.  Either way the snapshot
 * taken before stays right or is listed invalid, never wrong. */
static void
waiter_scenario (bool sb_fails)
{
  struct uh_vol t;
  uh_vol_create (&t, SIZE, CS, 29, 0);
  struct sc_diff *d = sc_volume_diff (t.v);
  cr_assert_eq (uh_vol_write (&t, 40, 900), 0);
  struct sc_snapshot_info s = uh_vol_snap (&t, "s");
  uint8_t *at_snap = malloc (SIZE);
  memcpy (at_snap, t.live, SIZE);

  size_t len[3];
  create_records ("orphan", false, len);
  fault_fd = sc_diff_fd (d);
  sc_io_fault_hook = fail_io;
  __atomic_store_n (&no_space, true, __ATOMIC_SEQ_CST);

  uint8_t *live_before = malloc (SIZE);
  memcpy (live_before, t.live, SIZE);
  struct uh_vol_job job = { .t = &t, .chunk = 5, .tag = 1234 };
  pthread_t th = start_waiting_writer (d, &job);
  pad_journal (d, len, 1);
  if (sb_fails)
    __atomic_store_n (&no_sb, true, __ATOMIC_SEQ_CST);
  struct sc_snapshot_info o;
  int r = sc_diff_snapshot_create (d, "orphan", NULL, &o);
  cr_assert_lt (r, 0);
  pthread_mutex_lock (&d->lock);
  sc_journal_release_leads (&d->journal);
  pthread_mutex_unlock (&d->lock);
  pthread_join (th, NULL);
  if (job.r < 0)
    memcpy (t.live, live_before, SIZE);

  __atomic_store_n (&no_space, false, __ATOMIC_SEQ_CST);
  if (!sb_fails) {
    /* Space is back: a new snapshot works (recovery). */
    struct sc_snapshot_info n = uh_vol_snap (&t, "n");
    uint8_t *at_n = malloc (SIZE);
    memcpy (at_n, t.live, SIZE);
    cr_assert_eq (uh_vol_write (&t, 6, 77), 0);
    cr_assert_eq (uh_vol_write (&t, 5, 78), 0);
    uh_vol_assert_reads (&t, n.id, at_n, "n live");
    uh_vol_close (&t);
    sc_io_fault_hook = NULL;
    uh_vol_open (&t);
    cr_assert_eq (sc_volume_snapshot_lookup (t.v, "n", &n), 0);
    cr_assert_eq (n.invalid_reason, SC_VALID);
    uh_vol_assert_reads (&t, n.id, at_n, "n reopened");
    free (at_n);
  } else {
    uh_vol_close (&t);
    __atomic_store_n (&no_sb, false, __ATOMIC_SEQ_CST);
    sc_io_fault_hook = NULL;
    uh_vol_open (&t);
  }
  r = sc_volume_snapshot_lookup (t.v, "s", &s);
  cr_assert_eq (r, 0);
  if (s.invalid_reason == SC_VALID)
    uh_vol_assert_reads (&t, s.id, at_snap, "s reopened");
  r = sc_volume_snapshot_lookup (t.v, "orphan", &o);
  cr_assert (r == -ENOENT || o.invalid_reason != SC_VALID);
  uh_vol_assert_reads (&t, 0, t.live, "live reopened");
  free (at_snap);
  free (live_before);
  uh_vol_free (&t);
}

Test (create_torn, a_waiting_writer_when_the_failure_cannot_be_recorded)
{
  waiter_scenario (true);
}

Test (create_torn, a_waiting_writer_when_the_failure_is_recorded)
{
  waiter_scenario (false);
}

/* ---- a torn creation while a leader writes the journal ------------- */

static struct sc_diff *race_d;
static bool race_armed;
static int race_create_r = 1;

static int
race_io (const struct sc_io_req *req)
{
  if (req->fd == fault_fd && req->op == SC_IO_WRITE &&
      req->off >= SC_SB_AREA &&
      __atomic_exchange_n (&race_armed, false, __ATOMIC_SEQ_CST)) {
    struct sc_snapshot_info o;
    race_create_r = sc_diff_snapshot_create (race_d, "orphan", NULL, &o);
  }
  return fail_io (req);
}


/* A volume with snapshot `s`, whose live write of chunk 5 copies for
 * it; the creation of "orphan" tears (no journal slot for SNAP_UUID)
 * while the group-commit leader writes that copy's record.  sb_fails:
 * the superblock refuses every write from then on. */
struct race {
  struct uh_vol t;
  struct sc_diff *d;
  struct sc_snapshot_info s;
  uint8_t *at_snap, *live_before;
  uint64_t slot;                /* the copy's */
};

static void
race_run (struct race *r, int (*hook) (const struct sc_io_req *),
          bool sb_fails)
{
  uh_vol_create (&r->t, SIZE, CS, 29, 0);
  r->d = race_d = sc_volume_diff (r->t.v);
  cr_assert_eq (uh_vol_write (&r->t, 40, 900), 0);
  r->s = uh_vol_snap (&r->t, "s");
  r->at_snap = malloc (SIZE);
  r->live_before = malloc (SIZE);
  cr_assert (r->at_snap && r->live_before);
  memcpy (r->at_snap, r->t.live, SIZE);
  memcpy (r->live_before, r->t.live, SIZE);

  size_t len[4];
  len[0] = sizeof (struct sc_rec_commit);       /* the leader's marker */
  create_records ("orphan", false, len + 1);
  fault_fd = sc_diff_fd (r->d);
  sc_io_fault_hook = hook;
  __atomic_store_n (&no_space, true, __ATOMIC_SEQ_CST);

  struct uh_vol_job job = { .t = &r->t, .chunk = 5, .tag = 1234 };
  pthread_t th = start_waiting_writer (r->d, &job);
  pthread_mutex_lock (&r->d->lock);
  struct sc_copy c;
  cr_assert (copymap_find (r->d, 5, r->d->epoch, &c), "no copy of chunk 5");
  r->slot = c.slot;
  pad_journal_locked (r->d, len, 2);
  if (sb_fails)
    __atomic_store_n (&no_sb, true, __ATOMIC_SEQ_CST);
  race_create_r = 1;
  __atomic_store_n (&race_armed, true, __ATOMIC_SEQ_CST);
  sc_journal_release_leads (&r->d->journal);
  pthread_mutex_unlock (&r->d->lock);
  pthread_join (th, NULL);
  cr_assert_lt (race_create_r, 0, "the creation did not run or fail");
  if (job.r < 0)
    memcpy (r->t.live, r->live_before, SIZE);
}

static void
race_free (struct race *r)
{
  free (r->at_snap);
  free (r->live_before);
  uh_vol_free (&r->t);
}

/* The creation tears while a leader writes the writer's commit (the
 * lock dropped): the failure cannot know that record will be durable. */
Test (create_torn, during_a_leaders_write_the_copy_keeps_its_slot)
{
  struct race r;
  race_run (&r, race_io, true);

  /* Space comes back; the superblock still takes no write: the close's
   * recovery writes a new journal, then cannot switch to it. */
  __atomic_store_n (&no_space, false, __ATOMIC_SEQ_CST);
  uh_vol_close (&r.t);
  __atomic_store_n (&no_sb, false, __ATOMIC_SEQ_CST);
  sc_io_fault_hook = NULL;
  uh_vol_open (&r.t);
  cr_assert_eq (sc_volume_snapshot_lookup (r.t.v, "s", &r.s), 0);
  /* The disk never learnt of the failure: s is listed, and the write
   * that would have changed its data was refused to keep it.  Its copy
   * of chunk 5 is durable in the old journal, in a slot the failure
   * forgot (copymap_forget_fresh): had it been given back, the failed
   * recovery's journal would have taken it.  s must still read what it
   * showed, not be damaged. */
  cr_assert_eq (r.s.invalid_reason, SC_VALID, "s after the restart: "
                "invalid reason %d (9: damaged)", r.s.invalid_reason);
  uh_vol_assert_reads (&r.t, r.s.id, r.at_snap, "s reopened");
  uh_vol_assert_reads (&r.t, 0, r.t.live, "live reopened");
  race_free (&r);
}

/* ---- review 17: the FAILED flag stored, the slot given back -------- */

static bool no_journal_write;

static int
race_io_rec (const struct sc_io_req *req)
{
  if (req->fd == fault_fd && req->op == SC_IO_FDATASYNC &&
      __atomic_load_n (&no_journal_write, __ATOMIC_SEQ_CST))
    return -EIO;
  return race_io (req);
}

/* The close's failed recovery wrote its journal into `slot`, and the
 * offline check, reading every copy, finds nothing wrong. */
static void
recovery_wrote_slot_and_check_is_clean (struct race *r, uint64_t slot)
{
  uint8_t *buf = malloc (CS);
  cr_assert_not_null (buf);
  uh_pread (r->t.diff, buf, CS, slot * CS);
  cr_assert_neq (memcmp (buf, r->live_before + 5 * CS, CS), 0,
                 "the failed recovery did not write slot %" PRIu64, slot);
  free (buf);
  struct sc_check_report rep;
  char err[256];
  cr_assert_eq (sc_diff_check_with (r->t.diff, SC_CHECK_DATA, &rep, err,
                                    sizeof err), 0, "check: %s", err);
  for (size_t i = 0; i < rep.nfindings; i++)
    cr_log_error ("check: %s", rep.findings[i].what);
  size_t damage = rep.damage;
  sc_check_report_free (&rep);
  cr_expect_eq (damage, 0, "the offline check finds %zu problem(s)", damage);
}

/* As above, but the superblock takes the FAILED flag: the forgotten
 * copy's slot goes back at once, the close's recovery takes it for its
 * journal, writes it, and fails at its fdatasync.  After a restart the disk follows
 * the old journal, whose durable record names that slot: every
 * snapshot must be invalid (FAILED), the open must work, and the live
 * volume read what was written. */
Test (create_torn, failed_recorded_then_the_recovery_fails_writing)
{
  struct race r;
  race_run (&r, race_io_rec, false);
  struct sc_diff *d = r.d;
  uint64_t x = r.slot;
  pthread_mutex_lock (&d->lock);
  size_t nq = d->nquarantine;
  bool marked = d->failed_sb_marked;
  uint64_t lowest = d->first_slot;
  while (sc_alloc_is_used (&d->alloc, lowest))
    lowest++;
  bool xused = sc_alloc_is_used (&d->alloc, x);
  pthread_mutex_unlock (&d->lock);
  cr_assert (marked, "FAILED not stored");
  /* The slot went back with the FAILED flag stored, first in line for
   * the close's recovery. */
  cr_assert (!xused && lowest == x, "slot %" PRIu64 " used %d, lowest free %"
             PRIu64, x, xused, lowest);
  cr_assert_eq (nq, 0, "quarantine kept after FAILED stored: %zu", nq);
  __atomic_store_n (&no_space, false, __ATOMIC_SEQ_CST);
  __atomic_store_n (&no_journal_write, true, __ATOMIC_SEQ_CST);
  uh_vol_close (&r.t);
  __atomic_store_n (&no_journal_write, false, __ATOMIC_SEQ_CST);
  sc_io_fault_hook = NULL;
  recovery_wrote_slot_and_check_is_clean (&r, x);

  uh_vol_open (&r.t);
  cr_assert_eq (sc_volume_snapshot_lookup (r.t.v, "s", &r.s), 0);
  cr_assert_neq (r.s.invalid_reason, SC_VALID, "s served after FAILED");
  struct sc_snapshot_info o;
  int e = sc_volume_snapshot_lookup (r.t.v, "orphan", &o);
  cr_assert (e == -ENOENT || o.invalid_reason != SC_VALID);
  uh_vol_assert_reads (&r.t, 0, r.t.live, "live reopened");
  /* A new snapshot works and survives a restart. */
  struct sc_snapshot_info n = uh_vol_snap (&r.t, "n");
  uint8_t *at_n = malloc (SIZE);
  cr_assert_not_null (at_n);
  memcpy (at_n, r.t.live, SIZE);
  cr_assert_eq (uh_vol_write (&r.t, 5, 79), 0);
  cr_assert_eq (uh_vol_write (&r.t, 6, 80), 0);
  uh_vol_close (&r.t);
  uh_vol_open (&r.t);
  cr_assert_eq (sc_volume_snapshot_lookup (r.t.v, "n", &n), 0);
  cr_assert_eq (n.invalid_reason, SC_VALID);
  uh_vol_assert_reads (&r.t, n.id, at_n, "n reopened");
  uh_vol_assert_reads (&r.t, 0, r.t.live, "live reopened 2");
  free (at_n);
  race_free (&r);
}
