/* shadowcopy: space: the size limit, the on-full and max-snapshots
 * policies, policy drops, and the reservation of data slots.
 *
 * Notes on the design
 *
 * The limit counts used slots (superblocks, journal, data).  A data slot
 * is granted only while the journal could still be rewritten under the
 * limit: its current slots again plus two stay free.  (A checkpoint
 * writes the live state, which the current journal always holds, so it
 * needs at most as many slots.)  Journal slots ignore the limit, so a
 * record can always be written.
 *
 * Policy drops write a SNAP_DROP record and commit it before any slot is
 * freed: until then the snapshot is `pending` and counts as alive.  A
 * dropped snapshot with a read in flight is unlisted at once and freed by
 * its last reader's put.  The writer that dropped it does not wait for
 * that put, but one still short of space does (wait_space) rather than
 * drop the next snapshot: readers pin only after taking their chunk range
 * (sc_volume_snapshot_read), so a pinned reader never waits for a writer.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/io.h"

bool
space_fits (struct sc_diff *d, uint64_t max_bytes, uint64_t extra)
{
  if (!max_bytes)
    return true;
  uint64_t reserve = (d->have_journal ? sc_journal_slots (&d->journal) : 0)
                     + 2;
  return (d->first_slot + sc_alloc_used (&d->alloc) + extra + reserve)
         * d->chunk_size <= max_bytes;
}

/* Growth in steps: when a slot reaches past what is preallocated, reserve
 * the next step of the file: 1/16 of the limit (at most 64 MiB, at least
 * a chunk, never past the limit), or 16 MiB when unbounded.  Best effort:
 * if the filesystem cannot give the whole step, the copy goes ahead
 * without preallocation.  Whatever part of the step it did give is kept:
 * punching the step back could hit slots in use (the journal takes its
 * slots without growing, so they can lie past prealloc_end), and
 * preallocated free slots cost nothing the limit does not count. */
#define GROW_UNBOUNDED (16u << 20)
#define GROW_MAX (64u << 20)
static void
grow (struct sc_diff *d, uint64_t slot)
{
  uint64_t need = (slot + 1) * d->chunk_size;
  if (need <= d->prealloc_end)
    return;
  uint64_t step = d->max_bytes ? d->max_bytes / 16 : GROW_UNBOUNDED;
  if (step > GROW_MAX)
    step = GROW_MAX;
  step = (step + d->chunk_size - 1) / d->chunk_size * d->chunk_size;
  if (step < d->chunk_size)
    step = d->chunk_size;
  uint64_t from = d->prealloc_end > slot * d->chunk_size
                  ? d->prealloc_end : slot * d->chunk_size;
  uint64_t to = need + step - d->chunk_size;
  uint64_t cap = (d->max_bytes / d->chunk_size) * d->chunk_size;
  if (d->max_bytes && to > cap)
    to = cap > need ? cap : need;
  if (sc_io_fallocate (d->fd, FALLOC_FL_KEEP_SIZE, from, to - from) == 0)
    d->prealloc_end = to;
  else
    d->prealloc_end = need;
}

/* The lowest free slot, preallocated: its byte offset in *offset. */
static int
take_slot (struct sc_diff *d, uint64_t *offset)
{
  uint64_t slot;
  int r = sc_alloc_get (&d->alloc, &slot);
  if (r < 0)
    return r;
  grow (d, slot);
  *offset = slot * d->chunk_size;
  return 0;
}

int
space_take_slot (struct sc_diff *d, uint64_t *offset)
{
  return take_slot (d, offset);
}

int
sc_diff_slot_reserve (struct sc_diff *d, uint64_t *offset)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  if (!space_fits (d, d->max_bytes, 1))
    return -ENOSPC;             /* the size limit (no policy here) */
  return take_slot (d, offset);
}

void
sc_diff_slot_cancel (struct sc_diff *d, uint64_t offset)
{
  LOCKED (d);
  sc_alloc_put (&d->alloc, offset / d->chunk_size);
}

/* ---- policy drops ----------------------------------------------------- */

void
space_drop_push (struct sc_diff *d, const struct sc_drop_info *di,
                 uint64_t total)
{
  d->drops[(total - 1) % SC_DROP_HISTORY] = *di;
  d->drops_total = total;
}

/* Delete the oldest listed snapshot by policy, durably (with `ckpt`, the
 * oldest checkpoint instead).  -ENOENT if there is none.  The lock is
 * released during the commit. */
static int
drop_oldest_of (struct sc_diff *d, uint32_t reason, bool ckpt)
{
  struct snap *s = ckpt ? snap_oldest_checkpoint (d) : snap_oldest_listed (d);
  if (!s)
    return -ENOENT;
  struct sc_drop_info di = { .id = s->info.id, .ctime_ns = s->info.ctime_ns,
                             .drop_ns = diff_now_ns (), .reason = reason };
  snprintf (di.name, sizeof di.name, "%s", s->info.name);
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  int r = txn_append (d, &t, rec, rec_drop (rec, &di, d->drops_total + 1));
  if (r < 0)
    return r;
  space_drop_push (d, &di, d->drops_total + 1);
  diff_say ("%s %s (id %" PRIu64 ") deleted: %s",
            ckpt ? "checkpoint" : "snapshot", di.name, di.id,
            sc_invalid_reason_text (reason));
  return snap_retire (d, s, t.seq, false);
}

static int
drop_oldest (struct sc_diff *d, uint32_t reason)
{
  return drop_oldest_of (d, reason, false);
}

/* Is space about to come back: a deleted snapshot whose copies are still
 * kept, for a read in flight or until its record is durable, or a
 * garbage collection pass not done (it frees in slices, gc.c)?  Dropping
 * another snapshot meanwhile would drop one too many. */
static bool
space_pending (const struct sc_diff *d)
{
  if (gc_pending (d))
    return true;                /* a garbage collection pass under way */
  for (size_t i = 0; i < d->nsnaps; i++)
    if (d->snaps[i]->deleted ||
        (d->snaps[i]->info.checkpoint && d->snaps[i]->readers))
      return true;              /* (a snapshot just kept as a checkpoint:
                                   its readers hold its data) */
  return false;
}

/* Wait for space_pending to change.  The readers of a dropped snapshot
 * hold no chunk lock a writer waits for (sc_volume_snapshot_read pins
 * after taking its range), so this ends when their I/O does. */
static int
wait_space (struct sc_diff *d)
{
  if (d->failed)
    return -EIO;
  d->space_waits++;
  pthread_cond_wait (&d->readers_done, &d->lock);
  diff_wait_ckpt (d);
  return 0;
}

int
space_room_for_snapshot (struct sc_diff *d, bool delete_oldest)
{
  while (snap_listed (d) >= d->max_snaps) {
    if (!delete_oldest)
      return -EMFILE;
    int r = drop_oldest (d, SC_DROPPED_MAX_SNAPSHOTS);
    if (r < 0)
      return r == -ENOENT ? -EMFILE : r;
  }
  return 0;
}

/* Checkpoints count against a limit of their own, and only a checkpoint
 * is dropped for a checkpoint. */
int
space_room_for_checkpoint (struct sc_diff *d, bool delete_oldest)
{
  while (snap_listed_checkpoints (d) >= d->max_ckpts) {
    if (!delete_oldest)
      return -EMFILE;
    int r = drop_oldest_of (d, SC_DROPPED_MAX_CHECKPOINTS, true);
    if (r < 0)
      return r == -ENOENT ? -EMFILE : r;
  }
  return 0;
}

/* ---- the limit and the policies ---------------------------------------- */

void
sc_diff_set_policy (struct sc_diff *d, enum sc_on_full on_full,
                    uint32_t max_snapshots)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  d->on_full = on_full;
  d->max_snaps = max_snapshots ? max_snapshots : SC_MAX_SNAPSHOTS_DEFAULT;
}

/* resize --max --force: drop the oldest snapshots until the diff area
 * fits under max_bytes or none is left, then compact the journal. */
static int
shrink_to (struct sc_diff *d, uint64_t max_bytes, uint64_t *dropped)
{
  bool any = false, compacted = false;
  while (!space_fits (d, max_bytes, 0)) {
    if (ckpt_run_due (d) != 0)
      continue;                 /* the journal shrank first, or it failed:
                                   either way the lock went, look again */
    if (space_pending (d)) {
      int r = wait_space (d);
      if (r < 0)
        return r;
      continue;
    }
    /* Snapshots first; then checkpoints, whose marks are metadata: a
     * dropped one frees no slot until the journal is rewritten, and the
     * rewrite alone may be enough, so it comes before each drop. */
    int r = drop_oldest (d, SC_DROPPED_SHRINK);
    if (r == -ENOENT && !compacted) {
      compacted = true;
      r = ckpt_write (d, 0, NULL, 0);
      if (r < 0 && sc_debug)
        sc_debug ("resize: journal checkpoint: %s", strerror (-r));
      continue;
    }
    if (r == -ENOENT) {
      r = drop_oldest_of (d, SC_DROPPED_SHRINK, true);
      compacted = false;
    }
    if (r == -ENOENT)
      break;
    if (r < 0)
      return r;
    any = true;
    if (dropped)
      (*dropped)++;
  }
  /* The journal shrinks to the live state too. */
  if (any && !compacted) {
    int r = ckpt_write (d, 0, NULL, 0);
    if (r < 0 && sc_debug)
      sc_debug ("resize: journal checkpoint: %s", strerror (-r));
  }
  return 0;
}

int
sc_diff_set_max (struct sc_diff *d, uint64_t max_bytes, unsigned flags,
                 uint64_t *dropped)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (dropped)
    *dropped = 0;
  if (!d->have_journal)
    return -EROFS;
  int r = diff_recover (d);     /* a failed journal records nothing */
  if (r < 0)
    return r;
  if (max_bytes && max_bytes < SC_DIFF_MAX_MIN_CHUNKS * (uint64_t) d->chunk_size)
    return -EINVAL;
  if (d->max_recorded && d->max_bytes == max_bytes &&
      (!(flags & SC_MAX_FORCE) || space_fits (d, max_bytes, 0)))
    return 0;                   /* nothing to record or to drop */
  if (!space_fits (d, max_bytes, 0) && !(flags & SC_MAX_LAZY)) {
    if (!(flags & SC_MAX_FORCE))
      return -ENOSPC;
    r = shrink_to (d, max_bytes, dropped);
    if (r < 0)
      return r;
  }
  if (d->max_recorded && d->max_bytes == max_bytes)
    return 0;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_limit (rec, max_bytes));
  if (r < 0)
    return r;
  d->max_bytes = max_bytes;
  d->max_recorded = true;
  r = txn_commit (d, &t);
  if (r == 0)
    gc_shrink_tail (d);
  return r;
}

uint64_t
sc_diff_get_max (struct sc_diff *d, bool *recorded)
{
  LOCKED (d);
  if (recorded)
    *recorded = d->max_recorded;
  return d->max_bytes;
}

/* Does a protected snapshot (snap_protected) see the current origin
 * content of `chunk`, so that a copy made now is one it needs? */
static bool
protected_needs_copy (struct sc_diff *d, uint64_t chunk)
{
  uint32_t from = copymap_last_epoch (d, chunk);
  if (from == d->epoch)
    return false;               /* copied in this epoch already */
  for (size_t i = 0; i < d->nsnaps; i++) {
    const struct snap *s = d->snaps[i];
    if (!s->deleted && !s->info.checkpoint &&
        s->info.invalid_reason == SC_VALID && s->info.epoch >= from &&
        s->info.epoch < d->epoch && snap_protected (d, s->info.id) &&
        (!s->ndisc || disc_needs (s, chunk)))
      return true;
  }
  return false;
}

bool
sc_diff_chunk_protected (struct sc_diff *d, uint64_t chunk)
{
  LOCKED (d);
  return protected_needs_copy (d, chunk);
}

/* No room for a copy and nothing left to drop: a protected snapshot that
 * needs it makes the live write fail; the others are invalidated as
 * before (the caller does it on -ENOSPC). */
static int
no_room (struct sc_diff *d, uint64_t chunk)
{
  if (!protected_needs_copy (d, chunk))
    return -ENOSPC;
  d->full_failures++;
  diff_say ("the diff area is full (limit %" PRIu64 " bytes): a write to "
            "chunk %" PRIu64 " fails with ENOSPC: the copy it needs is "
            "for a snapshot the live volume or a clone reads (a running "
            "revert's target, or a base of clones), which is never "
            "invalidated for room", d->max_bytes, chunk);
  return SC_COPY_REFUSED;
}

int
sc_diff_copy_reserve (struct sc_diff *d, uint64_t chunk, uint64_t *offset)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  for (;;) {
    if (!copymap_needs_copy (d, chunk))
      return 1;
    if (space_fits (d, d->max_bytes, 1))
      return take_slot (d, offset);
    if (d->ncfree) {
      /* Slots a clone let go come back once the records that replaced
       * them are durable: one commit, before any drop or refusal. */
      int r = diff_commit (d, d->cfree[d->ncfree - 1].seq);
      if (r < 0)
        return r;
      clone_frees_durable (d);
      if (space_fits (d, d->max_bytes, 1))
        continue;               /* needs looked up again: the lock went */
    }
    /* A checkpoint due, left to the runner, frees the journal's room (and
     * its reserve): written now rather than a snapshot dropped or this
     * write refused for want of it. */
    if (ckpt_run_due (d) != 0)  /* written or failed (then no longer due) */
      continue;                 /* needs looked up again: the lock went */
    if (d->on_full == SC_ON_FULL_FAIL_WRITES && gc_pending (d)) {
      int r = wait_space (d);   /* frees under way: not full yet */
      if (r < 0)
        return r;
      continue;
    }
    if (d->on_full == SC_ON_FULL_FAIL_WRITES) {
      d->full_failures++;
      if (sc_debug)
        sc_debug ("policy: the diff area is full (limit %" PRIu64 " bytes): "
                  "refusing a write to chunk %" PRIu64 " (on-full="
                  "fail-writes)", d->max_bytes, chunk);
      return -ENOSPC;
    }
    int r = space_pending (d) ? wait_space (d)
                              : drop_oldest (d, SC_DROPPED_DIFF_FULL);
    if (r == -ENOENT)
      return no_room (d, chunk);
    if (r < 0)
      return r;
  }
}

int
sc_diff_drops (struct sc_diff *d, struct sc_drop_info **out, size_t *n,
               uint64_t *total)
{
  LOCKED (d);
  uint64_t k = d->drops_total < SC_DROP_HISTORY ? d->drops_total
                                                : SC_DROP_HISTORY;
  struct sc_drop_info *v = calloc (k + 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  for (uint64_t i = 0; i < k; i++)
    v[i] = d->drops[(d->drops_total - k + i) % SC_DROP_HISTORY];
  *out = v;
  *n = k;
  if (total)
    *total = d->drops_total;
  return 0;
}

/* The limit, every listed snapshot's discards and the drop history
 * (oldest first, with their running totals). */
int
space_checkpoint (struct sc_diff *d, struct sc_journal *j)
{
  uint8_t rec[SC_REC_MAX];
  int r = 0;
  if (d->max_recorded)
    r = sc_journal_append (j, rec, rec_limit (rec, d->max_bytes), NULL);
  for (size_t i = 0; r == 0 && i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    for (size_t k = 0; r == 0 && !s->deleted && k < s->ndisc; k++)
      r = sc_journal_append (j, rec, rec_discard (rec, s->info.id,
                                                  s->disc[k].first,
                                                  s->disc[k].count), NULL);
  }
  uint64_t n = d->drops_total < SC_DROP_HISTORY ? d->drops_total
                                                : SC_DROP_HISTORY;
  for (uint64_t i = 0; r == 0 && i < n; i++) {
    uint64_t t = d->drops_total - n + 1 + i;
    r = sc_journal_append (j, rec, rec_drop (rec, &d->drops[(t - 1) %
                                                            SC_DROP_HISTORY],
                                             t), NULL);
  }
  return r;
}
