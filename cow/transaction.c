/* shadowcopy: a metadata change of the diff area, and what a failed one
 * does.
 *
 * Notes on the design
 *
 * Memory and journal must never disagree: a record appended but not
 * applied becomes durable with the next commit of anyone, and replay then
 * rebuilds a state the server never had (an id or epoch used twice, a
 * discard that "failed").  So every change reserves what it will allocate
 * before its first record is appended, and applies itself with code that
 * cannot fail (diffarea-internal.h, struct txn).
 *
 * A metadata write that fails is different: nothing more can be
 * recorded, so no snapshot can be trusted from now on.  diff_fail says so
 * in memory and, if the superblock still takes writes, on disk, so the
 * next open will not trust the journal's snapshots either; failure.c
 * holds that state and the way back out of it.
 */
#include <config.h>

#include <string.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"

void
diff_fail (struct sc_diff *d, int err)
{
  char what[128];
  if (d->failed)
    return;
  (void) sc_journal_error (&d->journal, what, sizeof what);
  failure_enter (d, err, what);         /* failure.c */
}

/* A commit of the write path or a flush: changes nothing after it, so
 * it need not wait for a checkpoint that started meanwhile. */
static int
commit_only (struct sc_diff *d, uint64_t seq)
{
  int r = sc_journal_sync (&d->journal, seq, &d->lock);
  if (r < 0)
    diff_fail (d, r);
  else {
    copymap_fresh_durable (d);  /* for the writers that followed too */
    if (d->ncfree)
      clone_frees_durable (d);  /* a clone's replaced slots */
  }
  return r;
}

/* The lock was dropped: a checkpoint may have started, and the caller
 * goes on changing the state. */
int
diff_commit (struct sc_diff *d, uint64_t seq)
{
  int r = commit_only (d, seq);
  diff_wait_ckpt (d);
  return r;
}

void
txn_begin (struct sc_diff *d, struct txn *t)
{
  diff_frozen_check (d, "a metadata change");
  t->first_seq = sc_journal_next_seq (&d->journal);
  t->seq = 0;
}

int
txn_append (struct sc_diff *d, struct txn *t, void *rec, size_t len)
{
  int r = sc_journal_append (&d->journal, rec, len, &t->seq);
  if (r < 0 && sc_journal_next_seq (&d->journal) != t->first_seq) {
    /* Part of the change is in the journal's unwritten tail: the next
     * commit of anyone (a close's) would make it durable without the
     * rest, e.g. a SNAP_CREATE whose snapshot was never kept and got no
     * copies.  So nothing more is written. */
    sc_journal_fail (&d->journal, r, SC_JOURNAL_FAILED_APPEND);
    diff_fail (d, r);
  }
  return r;
}

int
txn_commit (struct sc_diff *d, const struct txn *t)
{
  return diff_commit (d, t->seq);
}

/* ---- commits of the write path ----------------------------------------- */

/* Many writers wait for the same commit.  They wait for it without the
 * mutex (sc_journal_await), so that they do not all queue on it when it
 * ends, one after the other, before they may write the origin; a snapshot
 * creation's record waits behind them otherwise.  The leader keeps the
 * state up to date for them: copymap_fresh_durable and the checkpoint's
 * trigger. */
int
sc_diff_commit (struct sc_diff *d, uint64_t seq)
{
  if (sc_journal_durable (&d->journal, seq))
    return 0;
  pthread_mutex_lock (&d->lock);
  int r = 0;
  if (d->have_journal) {
    if (sc_journal_await (&d->journal, seq, &d->lock))
      return 0;                 /* the lock released */
    r = commit_only (d, seq);
    if (r == 0)
      ckpt_maybe (d);
  }
  pthread_mutex_unlock (&d->lock);
  return r;
}

/* A failed journal has nothing more to make durable, and a recovery may
 * hold the lock through its checkpoint's I/O: a live flush does not wait
 * for it (the flag is read without the lock, as in copymap.c). */
int
sc_diff_sync (struct sc_diff *d)
{
  if (__atomic_load_n (&d->failed, __ATOMIC_ACQUIRE))
    return 0;
  LOCKED (d);
  if (!d->have_journal)
    return 0;
  return commit_only (d, sc_journal_next_seq (&d->journal) - 1);
}
