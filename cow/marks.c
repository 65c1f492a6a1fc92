/* shadowcopy: checkpoints: points in time that keep no data, and the
 * data-less marks that record what changed after them.
 *
 * Notes on the design
 *
 * A checkpoint is a snapshot whose data is not kept.  It has an epoch
 * like any snapshot, and the copy map does for it what it does for a
 * snapshot, except that where a snapshot needs the old content of a
 * chunk, a checkpoint needs only to know that the chunk changed: the
 * first write of a chunk after a checkpoint leaves a mark (a copy with
 * no data, SC_SLOT_MARK) in the epoch of that write, unless a snapshot
 * needs a data copy there, which then serves both.  So the ordering of
 * a copy holds for a mark: it is recorded and committed before the
 * origin is written, in the same group commit as the copies of the
 * same request.
 *
 * `delete --keep-checkpoint` turns a snapshot into a checkpoint: a
 * KEEP_CHECKPOINT record, durable before anything is freed (as a
 * delete's); then garbage collection frees the data copies that no
 * snapshot needs any more and keeps, as marks, those a checkpoint still
 * needs (copymap_demote).  Replay does the same at its garbage
 * collection, so nothing else is recorded.
 */
#include <config.h>

#include <errno.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"

bool
copymap_needs_mark (struct sc_diff *d, uint64_t chunk)
{
  if (d->ncvalid == 0)
    return false;
  uint32_t from = copymap_last_epoch (d, chunk);
  struct keepers k = { .epochs = d->cvalid, .n = d->ncvalid };
  return from != d->epoch && copymap_needed (d, &k, from, d->epoch - 1,
                                             chunk);
}

/* Chunks looked at under one hold of the lock. */
#define MARK_SCAN 1024

int
sc_diff_mark_changes (struct sc_diff *d, uint64_t first, uint64_t last,
                      uint64_t *seq)
{
  *seq = 0;
  /* Without the lock, as the copy-on-write query: a recovery holds it
   * through its I/O, and most volumes have no checkpoint. */
  if (__atomic_load_n (&d->failed, __ATOMIC_ACQUIRE) ||
      __atomic_load_n (&d->ncvalid_hint, __ATOMIC_ACQUIRE) == 0)
    return 0;
  for (uint64_t c = first; c <= last;) {
    LOCKED (d);
    if (__atomic_load_n (&d->failed, __ATOMIC_ACQUIRE) || d->ncvalid == 0 ||
        !d->have_journal)
      return 0;
    if (last >= d->nchunks)
      return -EINVAL;
    bool frozen = false;        /* a checkpoint runs: a mark must wait */
    for (uint64_t seen = 0; c <= last && seen < MARK_SCAN; c++, seen++) {
      if (!copymap_needs_mark (d, c))
        continue;
      if ((frozen = diff_ckpt_frozen (d)))
        break;
      uint64_t s;
      int r = sc_diff_copy_record_locked (d, c, SC_COPY_MARK, NULL, &s);
      if (r < 0) {
        /* Nothing can record that the chunk changed: the checkpoints
         * that needed to know are invalid (the snapshots' rule for a
         * copy that cannot be recorded). */
        diff_invalidate_chunk_locked (d, c, SC_INVALID_METADATA, -r, true);
        continue;
      }
      *seq = s;
    }
    if (frozen) {
      diff_wait_ckpt (d);       /* then chunk c is looked at again */
      continue;
    }
    if (c == 0)
      break;                    /* last was UINT64_MAX */
  }
  return 0;
}

void
copymap_demote (struct sc_diff *d, uint64_t chunk, uint32_t prev,
                const struct sc_copy *c, bool free_slot)
{
  if (!sc_copy_has_slot (c))
    return;
  uint64_t slot = c->slot;
  sc_sums_clear (&d->sums, slot, chunk, c->epoch);
  copymap_set_mark (d, chunk, prev, c->epoch);  /* with its usage class */
  if (free_slot)
    gc_free_slot (d, slot);
}

int
sc_diff_snapshot_keep_checkpoint (struct sc_diff *d, const char *name)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  struct snap *s;
  int r = snap_for_change (d, name, &s);
  if (r < 0)
    return r;
  if (s->info.checkpoint)
    return -EINVAL;
  if (s->keeping)
    return -EAGAIN;             /* another keep of it waits for its commit */
  if (s->info.invalid_reason != SC_VALID)
    return -ESTALE;
  if (snap_has_clones (d, s->info.id))
    return -EBUSY;              /* its clones read its data */
  if (revert_pins (d, s->info.id))
    return -EBUSY;              /* the target of the running revert */
  if ((r = space_room_for_checkpoint (d, false)) < 0)
    return r;
  if (!(s = snap_by_name (d, name)))
    return -ENOENT;
  if (s->keeping)               /* (the lock was dropped) */
    return -EAGAIN;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_keep_checkpoint (rec, s->info.id));
  if (r < 0)
    return r;
  /* Until the record is durable a crash brings the snapshot back: its
   * data stays, and writes keep copying for it. */
  uint64_t id = s->info.id;
  s->keeping = true;            /* no clone of it meanwhile */
  r = diff_commit (d, t.seq);
  if ((s = snap_by_id (d, id, NULL)))
    s->keeping = false;
  if (r < 0)
    return r;
  if (!(s = snap_by_id (d, id, NULL)) || s->deleted)
    return 0;                   /* dropped meanwhile */
  snap_make_checkpoint (d, s);
  /* Its readers in flight keep its data (keepers_get); the last one's
   * put runs the garbage collection again. */
  r = gc_run (d, true);
  pthread_cond_broadcast (&d->readers_done);    /* space came back */
  if (r == 0)
    ckpt_maybe (d);
  return r;
}

void
sc_diff_set_max_checkpoints (struct sc_diff *d, uint32_t max)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  d->max_ckpts = max ? max : SC_MAX_CHECKPOINTS_DEFAULT;
}
