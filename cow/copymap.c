/* shadowcopy: the copy map: which copy of an origin chunk each snapshot
 * sees, and which copies are still needed.
 *
 * Notes on the design
 *
 * Which copies are kept is derived, not recorded: a copy of chunk c made
 * in epoch W holds what c was during epochs [P, W - 1], P being the epoch
 * of c's previous copy (0 for its first), and it is needed while a
 * snapshot that can be served has its epoch in that range and has not
 * discarded c.  copymap_needed() is that rule; the copy-on-write query,
 * garbage collection and the per-snapshot usage all ask it.  Deleting a
 * snapshot records just its deletion; replay drops the same copies,
 * whatever the order in which deletions happened.
 *
 * Storage: a B+tree in a scratch file behind the diff area's bounded page
 * cache (cow/index.h), so memory does not grow with the copies.  Nothing
 * outside this file touches it.  Its pages can fail (an I/O error of the
 * scratch file): the diff area then fails as for a failed journal write
 * (map_failed), and a snapshot read whose lookup failed gets EIO, never
 * the origin's data.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/format.h"

bool
copymap_needed (struct sc_diff *d, const struct keepers *k, uint32_t from,
                uint32_t to, uint64_t chunk)
{
  size_t i = epochs_lower_bound (k->epochs, k->n, from);
  if (!d->ndisc_snaps)
    return i < k->n && k->epochs[i] <= to;
  for (; i < k->n && k->epochs[i] <= to; i++) {
    struct snap *s = snap_by_epoch (d, k->epochs[i]);
    if (!s || disc_needs (s, chunk))
      return true;
  }
  return false;
}

bool
copymap_needs_copy (struct sc_diff *d, uint64_t chunk)
{
  uint32_t from = copymap_last_epoch (d, chunk);
  struct keepers valid = { .epochs = d->valid, .n = d->nvalid };
  return from != d->epoch && copymap_needed (d, &valid, from, d->epoch - 1,
                                             chunk);
}

/* The copy map's pages failed (index.h: a sticky error of its scratch
 * file or cache): what it says can no longer be trusted, so while
 * serving, the diff area fails (failure.c: every snapshot invalid, the
 * live volume goes on).  A replay fails the open instead (replay.c).
 * Returns err. */
static int
map_failed (struct sc_diff *d, int err)
{
  if (d->have_journal && !d->failed)
    failure_enter (d, err, "in the copy map's scratch file (it is rebuilt "
                   "from the journal at the next open)");
  return err;
}

/* A lookup's answer: found, or not (false also after an error, which
 * failed the diff area). */
static bool
map_found (struct sc_diff *d, int r)
{
  if (r < 0)
    map_failed (d, r);
  return r > 0;
}

bool
copymap_broken (const struct sc_diff *d)
{
  return sc_index_error (&d->index) != 0;
}

/* Every change of a copy goes through here, so that the usage counters
 * (usage.c) follow: a copy's class is the range it serves, which starts
 * at its previous copy's epoch. */
int
copymap_add (struct sc_diff *d, uint64_t chunk, struct sc_copy c)
{
  diff_frozen_check (d, "a copy added");
  d->map_gen++;                 /* a diff to the live volume may change */
  uint32_t prev = 0;
  bool before = false;          /* an older copy's successor exists */
  struct sc_copy last, next;
  int r = sc_index_last (&d->index, chunk, &last);
  if (r > 0) {
    if (last.epoch < c.epoch)
      prev = last.epoch;        /* the common case: the newest copy */
    else if (last.epoch > c.epoch) {
      prev = copymap_prev_epoch (d, chunk, c.epoch);
      r = sc_index_after (&d->index, chunk, c.epoch, &next);
      before = r > 0;
    }
  }
  bool newest = r == 0 || (r > 0 && last.epoch < c.epoch);
  if (r >= 0)
    r = sc_index_add (&d->index, chunk, c);
  if (r < 0)
    return r == -EEXIST ? r : map_failed (d, r);
  if (newest)
    sc_recent_note (&d->recent, chunk, c.epoch);
  usage_count (&d->usage, prev, &c, +1);
  if (before)
    usage_move (&d->usage, &next, prev, c.epoch);
  return 0;
}

bool
copymap_find (struct sc_diff *d, uint64_t chunk, uint32_t epoch,
              struct sc_copy *out)
{
  return map_found (d, sc_index_find (&d->index, chunk, epoch, out));
}

void
copymap_remove (struct sc_diff *d, uint64_t chunk, uint32_t epoch)
{
  struct sc_copy c;
  diff_frozen_check (d, "a copy removed");
  sc_recent_forget (&d->recent, chunk);
  if (!copymap_find (d, chunk, epoch, &c))
    return;
  uint32_t prev = copymap_prev_epoch (d, chunk, epoch);
  struct sc_copy next;
  bool after = copymap_seen_by (d, chunk, epoch, &next);
  int r = sc_index_remove (&d->index, chunk, epoch);
  if (r <= 0) {                 /* the map is broken: it fails */
    map_found (d, r);
    return;
  }
  usage_count (&d->usage, prev, &c, -1);
  if (after)                    /* the next copy serves from prev now */
    usage_move (&d->usage, &next, epoch, prev);
  if (sc_copy_has_slot (&c))
    sc_sums_clear (&d->sums, c.slot, chunk, epoch);
}

bool
copymap_seen_by (struct sc_diff *d, uint64_t chunk, uint32_t epoch,
                 struct sc_copy *out)
{
  return map_found (d, sc_index_after (&d->index, chunk, epoch, out));
}

uint32_t
copymap_prev_epoch (struct sc_diff *d, uint64_t chunk, uint32_t epoch)
{
  struct sc_copy c;
  return map_found (d, sc_index_before (&d->index, chunk, epoch, &c))
         ? c.epoch : 0;
}

/* 0 also when the map is broken, which fails the diff area: nothing then
 * needs a copy, except to failure.c's check while the failure is not
 * recorded, which a newest epoch of 0 makes fail closed. */
uint32_t
copymap_last_epoch (struct sc_diff *d, uint64_t chunk)
{
  struct sc_copy last;
  return map_found (d, sc_index_last (&d->index, chunk, &last))
         ? last.epoch : 0;
}

uint64_t
copymap_count (const struct sc_diff *d)
{
  return d->index.copies;
}

void
copymap_set_mark (struct sc_diff *d, uint64_t chunk, uint32_t prev,
                  uint32_t epoch)
{
  if (map_found (d, sc_index_set_slot (&d->index, chunk, epoch, SC_SLOT_MARK,
                                       0)))
    usage_demote (&d->usage, prev, epoch);
}

/* The checksums of a slot go with the copy that used it.  A chunk's
 * copies are visited together, oldest first, each with its previous
 * copy as it was (the index removes after the chunk's visit): the usage
 * counters follow the removals with the epoch of the last copy kept. */
struct visit {
  struct sc_diff *d;
  sc_index_visit_fn keep;
  void *opaque;
  bool have;
  uint64_t chunk;               /* the chunk being visited */
  uint32_t kept_prev;           /* its last copy kept so far */
};

static bool
visit_one (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct visit *w = opaque;
  if (!w->have || chunk != w->chunk) {
    w->have = true;
    w->chunk = chunk;
    w->kept_prev = 0;
  }
  struct sc_copy was = *c;
  uint64_t demotes = w->d->usage.demotes;
  bool keep = w->keep (w->opaque, chunk, prev, c);
  if (w->d->usage.demotes != demotes)
    was.slot = SC_SLOT_MARK;    /* made a mark by keep (counted there) */
  if (keep) {
    usage_move (&w->d->usage, &was, prev, w->kept_prev);
    w->kept_prev = c->epoch;
    return true;
  }
  usage_count (&w->d->usage, prev, &was, -1);
  if (sc_copy_has_slot (c))
    sc_sums_clear (&w->d->sums, c->slot, chunk, c->epoch);
  return false;
}

int
copymap_visit (struct sc_diff *d, sc_index_visit_fn keep, void *opaque)
{
  struct visit w = { .d = d, .keep = keep, .opaque = opaque };
  int r = sc_index_filter (&d->index, visit_one, &w);
  return r < 0 && r != -ENOMEM ? map_failed (d, r) : r;
}

int
copymap_visit_slice (struct sc_diff *d, uint64_t *cursor, uint64_t budget,
                     sc_index_visit_fn keep, void *opaque)
{
  struct visit w = { .d = d, .keep = keep, .opaque = opaque };
  int r = sc_index_filter_slice (&d->index, cursor, budget, visit_one, &w);
  return r < 0 && r != -ENOMEM ? map_failed (d, r) : r;
}

/* ---- the copy-on-write query and copies -------------------------------- */

/* A failed diff area has no valid snapshot (every one was invalidated
 * with the failure), so nothing needs a copy: its flag is read without
 * the lock, which a recovery holds through its checkpoint's I/O, so that
 * live writes never wait for a retry on a slow, failing disk.  No valid
 * snapshot can appear behind a writer's back: a creation recovers first
 * (the store of `failed` false happens under the lock, before its hold),
 * and its hold takes the write gate exclusive, so every write that read
 * `failed` true has ended before the snapshot exists, and every write
 * after the hold reads false.  What the disk may still list as valid is
 * failure.c's business (sc_diff_change_check), not a copy's. */
static bool
failed_now (struct sc_diff *d)
{
  return __atomic_load_n (&d->failed, __ATOMIC_ACQUIRE);
}

/* No valid snapshot, the common case of a volume without snapshots:
 * nothing needs a copy, and the query takes no lock, so that writers do
 * not queue on it one after the other.  Read without the lock for the
 * reason `failed` is: nvalid grows only at a creation (a revert's saved
 * snapshot is one), under a hold that takes the write gate exclusive,
 * and at replay, before any write; so a write that read 0 has ended
 * before a snapshot exists.  A write that reads it not 0 while a delete
 * or an invalidation empties valid[] asks under the lock as before.
 * Checkpoints need marks, not copies: sc_diff_mark_changes, after this
 * query, asks ncvalid_hint (see hint_valid for a kept checkpoint). */
static bool
nothing_to_copy (struct sc_diff *d)
{
  return failed_now (d) ||
         __atomic_load_n (&d->nvalid_hint, __ATOMIC_ACQUIRE) == 0;
}

/* No valid snapshot, or every chunk of [first, last] copied in this
 * epoch (recent.h): no copy needed, and no lock taken to learn it. */
static bool
nothing_to_copy_in (struct sc_diff *d, uint64_t first, uint64_t last)
{
  return nothing_to_copy (d) ||
         sc_recent_all (&d->recent, first, last,
                        __atomic_load_n (&d->epoch, __ATOMIC_ACQUIRE));
}

bool
sc_diff_needs_copy (struct sc_diff *d, uint64_t chunk)
{
  if (nothing_to_copy_in (d, chunk, chunk))
    return false;
  LOCKED (d);
  return copymap_needs_copy (d, chunk);
}

void
sc_diff_needs_copy_prefetch (struct sc_diff *d, uint64_t chunk)
{
  sc_recent_prefetch (&d->recent, chunk);
}

/* Chunks looked at under one hold of the lock: bounds how long a large
 * write keeps other writers from the map. */
#define NEEDS_COPY_SCAN 1024

size_t
sc_diff_needs_copy_range (struct sc_diff *d, uint64_t first, uint64_t last,
                          uint64_t *out, size_t max, uint64_t *next)
{
  if (nothing_to_copy_in (d, first, last)) {
    *next = last + 1;
    return 0;
  }
  LOCKED (d);
  size_t n = 0;
  uint64_t c = first;
  if (d->nvalid == 0)           /* emptied since the hint was read */
    c = last + 1;
  for (uint64_t seen = 0; c <= last && n < max && seen < NEEDS_COPY_SCAN;
       c++, seen++)
    if (copymap_needs_copy (d, c))
      out[n++] = c;
  *next = c;
  return n;
}

/* The copy is added to the map first and taken out again if its record
 * cannot be appended: removing cannot fail, so memory and journal never
 * disagree (transaction.c).  The caller holds the chunk locked, so no
 * reader sees it in between. */
int
sc_diff_copy_record (struct sc_diff *d, uint64_t chunk, uint64_t offset,
                     const uint32_t *sums, uint64_t *seq)
{
  if (offset == SC_COPY_MARK)
    return -EINVAL;
  LOCKED (d);
  diff_wait_ckpt (d);
  return sc_diff_copy_record_locked (d, chunk, offset, sums, seq);
}

int
sc_diff_copy_record_locked (struct sc_diff *d, uint64_t chunk,
                            uint64_t offset, const uint32_t *sums,
                            uint64_t *seq)
{
  if (!d->have_journal)
    return -EROFS;
  /* A failed journal records nothing: a copy recorded now would count as
   * made in this epoch although no record of it can reach the disk. */
  if (d->failed)
    return -EIO;
  bool mark = offset == SC_COPY_MARK;
  bool zero = offset == SC_COPY_ZERO || mark;
  if (chunk >= d->nchunks || (!zero && !sums))
    return -EINVAL;
  struct sc_copy c = { .slot = mark ? SC_SLOT_MARK : zero ? SC_SLOT_ZERO
                                                   : offset / d->chunk_size,
                       .epoch = d->epoch };
  struct fresh_copy *f = sc_array_room (d->fresh, &d->fresh_cap, d->nfresh,
                                        sizeof *f, 64);
  if (!f)
    return -ENOMEM;
  d->fresh = f;
  int r = zero ? 0 : sc_sums_reserve (&d->sums, c.slot);
  /* A failed store of sums (snapshot reads fail until the next open
   * rebuilds it from the journal) does not stop copies: the record
   * carries the sums.  No room for its page does: the copy fails. */
  if (r < 0 && sc_sums_error (&d->sums))
    r = 0;
  if (r == 0)
    r = copymap_add (d, chunk, c);
  if (r < 0)
    return r;
  if (!zero)
    (void) sc_sums_set (&d->sums, c.slot, chunk, c.epoch, sums, false);
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, zero ? rec_copy (rec, chunk, &c)
                  : rec_copy_sums (rec, chunk, &c, sums, d->sums.nsums));
  if (r < 0) {
    copymap_remove (d, chunk, c.epoch);
    return r;
  }
  d->fresh[d->nfresh++] = (struct fresh_copy) {
    .chunk = chunk, .seq = t.seq, .epoch = c.epoch,
  };
  *seq = t.seq;
  return 0;
}

/* Records are appended in seq order, so the durable ones are a prefix. */
void
copymap_fresh_durable (struct sc_diff *d)
{
  size_t k = 0;
  while (k < d->nfresh && d->fresh[k].seq <= d->journal.durable_seq)
    k++;
  if (k == 0)
    return;                     /* (d->fresh may be NULL) */
  memmove (d->fresh, d->fresh + k, (d->nfresh - k) * sizeof *d->fresh);
  d->nfresh -= k;
}

/* The journal failed: a copy whose record is not known durable may be
 * missing from the journal on disk, which the next open may replay (the
 * superblock may not take the FAILED flag either).  Counting it as made
 * would let a later write of its chunk in this epoch go to the origin
 * without a copy the disk knows of.  Forgotten, the chunk needs a copy
 * again as far as failure.c's check is concerned.  Each writer holds its
 * chunks' range from before its copy until after its origin write, so no
 * reader is on them.  Its record may still become durable (a leader may
 * be writing it, the lock dropped), and the disk follows that journal
 * until a superblock store succeeds: so its slot is quarantined until
 * then, not given back (a recovery's new journal, which may fail to be
 * switched to, would take it first). */
void
copymap_forget_fresh (struct sc_diff *d)
{
  copymap_fresh_durable (d);
  for (size_t i = 0; i < d->nfresh; i++) {
    struct sc_copy c;
    const struct fresh_copy *f = &d->fresh[i];
    if (!copymap_find (d, f->chunk, f->epoch, &c))
      continue;
    copymap_remove (d, f->chunk, f->epoch);
    if (sc_copy_has_slot (&c))
      diff_quarantine_slot (d, c.slot);
  }
  d->nfresh = 0;
}

enum sc_where
sc_diff_resolve (struct sc_diff *d, uint32_t epoch, uint64_t chunk,
                 uint64_t *offset)
{
  LOCKED (d);
  struct sc_copy c;
  if (d->ndisc_snaps) {
    struct snap *s = snap_by_epoch (d, epoch);
    if (s && !disc_needs (s, chunk))
      return SC_WHERE_ZERO;     /* discarded by its reader */
  }
  if (!copymap_seen_by (d, chunk, epoch, &c))
    /* Not the origin if the lookup failed: the read fails (EIO). */
    return copymap_broken (d) ? SC_WHERE_NONE : SC_WHERE_ORIGIN;
  if (c.slot == SC_SLOT_ZERO)
    return SC_WHERE_ZERO;
  if (c.slot == SC_SLOT_MARK)
    return SC_WHERE_NONE;       /* no valid snapshot sees a mark */
  *offset = c.slot * d->chunk_size;
  return SC_WHERE_DIFF;
}

/* ---- what each snapshot uses ------------------------------------------- */

/* What deleting each snapshot would free: the data copies that no other
 * valid snapshot needs, i.e. whose range of epochs holds its epoch
 * alone; and what each checkpoint alone costs: the marks whose range
 * holds its epoch and no other snapshot's or checkpoint's, one journal
 * record each.  From the usage counters (usage.c): no scan of the map. */
void
copymap_used_bytes (struct sc_diff *d, struct sc_snapshot_info *infos,
                    size_t n)
{
  uint64_t *bytes = calloc (d->nvalid + d->ncvalid + 1, sizeof *bytes);
  if (bytes && usage_bytes (d, bytes, bytes + d->nvalid) < 0) {
    free (bytes);
    bytes = NULL;
  }
  uint64_t *cbytes = bytes ? bytes + d->nvalid : NULL;
  for (size_t i = 0; i < n; i++) {
    infos[i].used_bytes = infos[i].meta_bytes = 0;
    if (!bytes || infos[i].invalid_reason != SC_VALID)
      continue;
    const uint32_t *a = infos[i].checkpoint ? d->cvalid : d->valid;
    size_t na = infos[i].checkpoint ? d->ncvalid : d->nvalid;
    size_t k = epochs_lower_bound (a, na, infos[i].epoch);
    if (k < na && a[k] == infos[i].epoch && infos[i].checkpoint)
      infos[i].meta_bytes = cbytes[k];
    else if (k < na && a[k] == infos[i].epoch)
      infos[i].used_bytes = bytes[k];
  }
  free (bytes);
}
