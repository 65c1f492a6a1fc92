/* Unit tests: a journal whose spare slot could not be taken (the diff
 * area's filesystem is full) never writes into a slot it does not own.
 *
 * After a slot switch the journal takes its next spare at once; when
 * that fails (fallocate says ENOSPC), the slot goes back to the free
 * space.  The journal must then know it has no spare: switching into
 * that slot anyway would write journal records over whatever a copy
 * stored there meanwhile (the copy path preallocates ahead, so copies go
 * on while fallocate fails), and a snapshot would read them as its
 * data. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define SIZE (64u * CS)

static int fault_fd = -1;
static bool no_space;

/* The filesystem is full: no fallocate of the diff area works. */
static int
fail_io (const struct sc_io_req *req)
{
  if (req->fd == fault_fd && req->op == SC_IO_FALLOCATE &&
      __atomic_load_n (&no_space, __ATOMIC_SEQ_CST))
    return -ENOSPC;
  return 0;
}

static void
spare_teardown (void)
{
  sc_io_fault_hook = NULL;
  no_space = false;
  uh_teardown ();
}

TestSuite (journal_spare, .init = uh_setup, .fini = spare_teardown);

/* Append commit markers (vouching for nothing new, as a commit's own)
 * until the journal has left slot `from`, or an append fails; then
 * commit (*sync gets its result).  The journal's slot at the end. */
static uint64_t
pad_past (struct sc_diff *d, uint64_t from, int *sync)
{
  pthread_mutex_lock (&d->lock);
  for (int n = 0; d->journal.slot == from; n++) {
    cr_assert_lt (n, 1000, "the journal never left its slot");
    struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                  .durable_seq = d->journal.durable_seq };
    if (sc_journal_append (&d->journal, &mark, sizeof mark, NULL) < 0)
      break;
  }
  uint64_t slot = d->journal.slot;
  pthread_mutex_unlock (&d->lock);
  *sync = sc_diff_sync (d);
  return slot;
}

/* Snapshot s is invalid, or reads what it showed when taken. */
static void
assert_unchanged (struct uh_vol *t, const uint8_t *at_snap, const char *when)
{
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_lookup (t->v, "s", &s), 0);
  char what[64];
  snprintf (what, sizeof what, "snapshot s, %s", when);
  if (s.invalid_reason == SC_VALID)
    uh_vol_assert_reads (t, s.id, at_snap, what);
}

Test (journal_spare, failed_spare_take_is_not_switched_into)
{
  struct uh_vol t;
  uh_vol_create (&t, SIZE, CS, 31, 0);
  struct sc_diff *d = sc_volume_diff (t.v);
  uh_vol_snap (&t, "s");
  uint8_t *at_snap = malloc (SIZE);
  cr_assert_not_null (at_snap);
  memcpy (at_snap, t.live, SIZE);

  fault_fd = sc_diff_fd (d);
  sc_io_fault_hook = fail_io;
  __atomic_store_n (&no_space, true, __ATOMIC_SEQ_CST);
  /* A switch into the spare, whose replacement cannot be taken. */
  pthread_mutex_lock (&d->lock);
  uint64_t first = d->journal.slot;
  pthread_mutex_unlock (&d->lock);
  int r;
  uint64_t second = pad_past (d, first, &r);
  cr_assert_eq (r, 0);
  cr_assert_neq (second, first);

  /* A copy for s takes the lowest free slot. */
  cr_assert_eq (uh_vol_write (&t, 0, 500), 0);
  /* The journal fills its slot: the next switch has nowhere to go, and
   * the commit fails the diff area (or the switch wrongly went on). */
  (void) pad_past (d, second, &r);
  assert_unchanged (&t, at_snap, "live");

  __atomic_store_n (&no_space, false, __ATOMIC_SEQ_CST);
  uh_vol_close (&t);
  sc_io_fault_hook = NULL;
  uh_vol_open (&t);
  assert_unchanged (&t, at_snap, "reopened");
  uh_vol_assert_reads (&t, 0, t.live, "the live volume, reopened");
  free (at_snap);
  uh_vol_free (&t);
}
