/* shadowcopy: snapshots: create, delete, list, invalidate, and pin for
 * reading.
 *
 * Creating a snapshot records it at the live volume's epoch E and moves
 * the live volume to E + 1: O(1), whatever the volume size or the number
 * of snapshots.  Deleting one records just its deletion; the copies it
 * alone needed are freed once the record is durable and no read of it is
 * in flight (snap_retire, shared with the policy drops of space.c).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/uuid.h"

static void
default_name (char *buf, size_t len, uint64_t ns)
{
  time_t t = (time_t) (ns / 1000000000u);
  struct tm tm;
  gmtime_r (&t, &tm);
  size_t n = strftime (buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf + n, len - n, ".%03uZ", (unsigned) (ns / 1000000u % 1000u));
}

/* The new snapshot's identity: its name (given, or the creation time,
 * with a suffix for two in one millisecond), id, epoch and options. */
static int
snap_new (struct sc_diff *d, const char *name,
          const struct sc_snapshot_opts *opts, struct snap **out)
{
  if (name && !sc_snapshot_name_valid (name))
    return -EINVAL;
  if (name && name_taken (d, name))
    return -EEXIST;
  struct snap *s = calloc (1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->info.ctime_ns = diff_now_ns ();
  if (name)
    snprintf (s->info.name, sizeof s->info.name, "%s", name);
  else {
    default_name (s->info.name, sizeof s->info.name, s->info.ctime_ns);
    size_t base = strlen (s->info.name);
    for (unsigned k = 2; name_taken (d, s->info.name); k++)
      snprintf (s->info.name + base, sizeof s->info.name - base, "+%u", k);
  }
  s->info.id = d->next_id;
  s->info.epoch = d->epoch;
  s->info.volume_size = d->sb.origin_size;
  if (sc_uuid_random (s->info.uuid) < 0) {
    free (s);
    return -EAGAIN;
  }
  if (opts) {
    s->info.checkpoint = opts->checkpoint;
    s->info.auto_release = opts->auto_release;
    if (opts->set_id) {
      s->info.in_set = true;
      memcpy (s->info.set_id, opts->set_id, sizeof s->info.set_id);
    }
  }
  *out = s;
  return 0;
}

int
snap_create_append (struct sc_diff *d, const char *name,
                    const struct sc_snapshot_opts *opts, struct txn *t,
                    struct sc_snapshot_info *out)
{
  if (d->epoch >= UINT32_MAX - 1 || d->next_id == UINT64_MAX)
    return -EOVERFLOW;
  struct snap *s;
  int r = snap_new (d, name, opts, &s);
  if (r < 0)
    return r;
  bool oldest = opts && opts->delete_oldest;
  if ((r = s->info.checkpoint ? space_room_for_checkpoint (d, oldest)
                              : space_room_for_snapshot (d, oldest)) < 0 ||
      (r = snap_reserve (d)) < 0) {
    free (s);
    return r;
  }
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, t);
  r = txn_append (d, t, rec, rec_snapshot (rec, &s->info));
  if (r == 0)
    r = txn_append (d, t, rec, rec_snapshot_uuid (rec, &s->info));
  if (r == 0 && s->info.in_set)
    r = txn_append (d, t, rec, rec_snapshot_set (rec, &s->info));
  if (r < 0) {
    free (s);
    return r;
  }
  snap_push (d, s);
  d->next_id++;
  __atomic_store_n (&d->epoch, d->epoch + 1, __ATOMIC_RELEASE); /* recent.h */
  if (out)
    *out = s->info;
  return 0;
}

/* Record a new snapshot, not yet durable (the lock held). */
static int
snap_record (struct sc_diff *d, const char *name,
             const struct sc_snapshot_opts *opts, struct txn *t,
             struct sc_snapshot_info *out)
{
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  /* A new snapshot would see pre-revert content in the chunks a running
   * revert has not written back yet (docs/design.md, "Revert"). */
  if (__atomic_load_n (&d->revert.active, __ATOMIC_RELAXED))
    return -EBUSY;
  /* A failed diff area takes snapshots again once a checkpoint of its
   * state is durable (failure.c); the engine tries before its hold. */
  int r = diff_recover (d);
  if (r < 0)
    return r;
  return snap_create_append (d, name, opts, t, out);
}

int
sc_diff_snapshot_record_held (struct sc_diff *d, const char *name,
                              const struct sc_snapshot_opts *opts,
                              struct sc_snapshot_info *out, uint64_t *seq)
{
  LOCKED (d);
  struct txn t;
  int r = snap_record (d, name, opts, &t, out);
  if (r == 0) {
    sc_journal_hold_leads (&d->journal);      /* with the record, atomically */
    *seq = t.seq;
  }
  return r;
}

/* Mark snapshot `id` invalid in its own SNAP_CREATE record, still in the
 * journal's tail: the held leads have kept it unwritten, so it reaches
 * the disk invalid or not at all, torn or not.  (An invalidation
 * appended after it could be torn off, and a checkpoint to replace the
 * tail needs a new journal's space.)  The record's seq, or 0 if it is
 * not there. */
static uint64_t
snap_unflushed_in_record (struct sc_diff *d, uint64_t id)
{
  struct sc_rec_hdr *h = NULL;
  while ((h = sc_journal_unwritten (&d->journal, h)))
    if (h->type == SC_REC_SNAP_CREATE &&
        ((struct sc_rec_snap_create *) h)->id == id) {
      ((struct sc_rec_snap_create *) h)->flags |= SC_SNAP_F_ORIGIN_UNFLUSHED;
      sc_journal_reseal (&d->journal, h);
      return h->seq;
    }
  return 0;
}

void
sc_diff_snapshot_settle (struct sc_diff *d, uint64_t id, int origin_err)
{
  LOCKED (d);
  if (origin_err >= 0) {
    sc_journal_release_leads (&d->journal);
    return;
  }
  uint64_t seq = snap_unflushed_in_record (d, id);
  if (!seq) {
    /* Not in the tail (cannot happen while the leads are held): the
     * record must never be written, so nothing more is. */
    sc_journal_fail (&d->journal, -EIO, SC_JOURNAL_FAILED_HELD);
    diff_fail (d, -EIO);
  }
  struct snap *s = snap_by_id (d, id, NULL);
  if (s && !s->deleted && s->info.invalid_reason == SC_VALID) {
    snap_set_invalid (d, s, SC_INVALID_ORIGIN_FLUSH, -origin_err, 0);
    if (seq)
      s->invalid_seq = seq;     /* durable with its record */
    d->invalidations++;
    diff_say ("snapshot %s (id %" PRIu64 ") is invalid: %s (%s)",
              s->info.name, s->info.id,
              sc_invalid_reason_text (SC_INVALID_ORIGIN_FLUSH),
              strerror (-origin_err));
  }
  sc_journal_release_leads (&d->journal);
}

int
sc_diff_snapshot_create (struct sc_diff *d, const char *name,
                         const struct sc_snapshot_opts *opts,
                         struct sc_snapshot_info *out)
{
  LOCKED (d);
  struct txn t;
  struct sc_snapshot_info info;
  int r = snap_record (d, name, opts, &t, &info);
  if (r < 0)
    return r;
  r = txn_commit (d, &t);
  if (r < 0)
    return r;                   /* listed, and invalid: see diff_fail */
  if (out)
    *out = info;
  ckpt_maybe (d);
  return 0;
}

int
snap_retire (struct sc_diff *d, struct snap *s, uint64_t seq,
             bool wait_readers)
{
  /* Until the record is durable a crash brings the snapshot back, so its
   * copies stay (gc, and a reader's put, leave a pending snapshot alone)
   * and writes keep copying for it (it stays in valid[]). */
  uint64_t id = s->info.id;
  s->deleted = true;
  s->pending = true;
  int r = diff_commit (d, seq);
  size_t pos;
  if ((s = snap_by_id (d, id, &pos)))
    s->pending = false;
  if (r < 0)
    return r;
  if (s) {
    snap_unvalidate (d, s);
    if (wait_readers) {
      while ((s = snap_by_id (d, id, &pos)) && s->readers)
      {
        pthread_cond_wait (&d->readers_done, &d->lock);
        diff_wait_ckpt (d);
      }
      if (s)
        snap_remove_at (d, pos);
    }
    else if (s->readers == 0)
      snap_remove_at (d, pos);
    else
      s->dropped = true;        /* freed by its last reader's put */
  }
  r = gc_run (d, true);
  pthread_cond_broadcast (&d->readers_done);    /* space came back */
  return r;
}

int
snap_for_change (struct sc_diff *d, const char *name, struct snap **out)
{
  if (!d->have_journal)
    return -EROFS;
  if (!snap_by_name (d, name))
    return -ENOENT;
  int r = diff_recover (d);     /* a failed journal records nothing */
  if (r < 0)
    return r;
  *out = snap_by_name (d, name);        /* the recovery let go of the lock */
  return *out ? 0 : -ENOENT;
}

/* Delete clone `name` (with uuid, only if it has that UUID). */
static int
clone_delete_named (struct sc_diff *d, const char *name, const uint8_t *uuid)
{
  if (!d->have_journal)
    return -EROFS;
  int r = diff_recover (d);
  struct clone *c = clone_by_name (d, name);
  if (r < 0 || !c)
    return r < 0 ? r : -ENOENT;
  if (uuid && memcmp (c->info.uuid, uuid, sizeof c->info.uuid) != 0)
    return -ESTALE;
  r = clone_delete (d, c);
  if (r == 0)
    ckpt_maybe (d);
  return r;
}

/* Delete snapshot name; when uuid, only if it is still that snapshot
 * (compared under the lock the delete holds: nothing comes between).
 * The base of clones goes only with them (with_clones: first). */
static int
snapshot_delete_locked (struct sc_diff *d, const char *name,
                        const uint8_t *uuid, bool with_clones)
{
  if (clone_by_name (d, name))
    return clone_delete_named (d, name, uuid);
  struct snap *s;
  int r = snap_for_change (d, name, &s);
  if (r < 0)
    return r;
  if (uuid && memcmp (s->info.uuid, uuid, sizeof s->info.uuid) != 0)
    return -ESTALE;
  if (revert_pins (d, s->info.id))
    return -EBUSY;              /* the target of the running revert */
  uint64_t id = s->info.id;
  while (with_clones && snap_has_clones (d, id)) {
    struct clone *c = NULL;
    for (size_t i = 0; i < d->nclones && !c; i++)
      if (d->clones[i]->info.base_id == id && !d->clones[i]->deleted)
        c = d->clones[i];
    if (!c)
      return -EBUSY;            /* a delete of one is under way */
    if ((r = clone_delete (d, c)) < 0)
      return r;
  }
  if (snap_has_clones (d, id))
    return -EBUSY;
  if (!(s = snap_by_id (d, id, NULL)) || s->deleted)
    return -ENOENT;             /* went while the clones did */
  if (revert_pins (d, id))
    return -EBUSY;              /* a revert to it started meanwhile */
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_delete (rec, s->info.id));
  if (r < 0)
    return r;
  r = snap_retire (d, s, t.seq, true);
  if (r == 0)
    ckpt_maybe (d);
  return r;
}

int
sc_diff_snapshot_delete (struct sc_diff *d, const char *name)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  return snapshot_delete_locked (d, name, NULL, false);
}

int
sc_diff_snapshot_delete_uuid (struct sc_diff *d, const char *name,
                              const uint8_t uuid[16])
{
  LOCKED (d);
  diff_wait_ckpt (d);
  return snapshot_delete_locked (d, name, uuid, false);
}

int
sc_diff_snapshot_delete_with_clones (struct sc_diff *d, const char *name)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  return snapshot_delete_locked (d, name, NULL, true);
}

int
sc_diff_snapshot_list (struct sc_diff *d, struct sc_snapshot_info **out,
                       size_t *n)
{
  LOCKED (d);
  struct sc_snapshot_info *v = calloc (d->nsnaps + d->nclones + 1,
                                       sizeof *v);
  if (!v)
    return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted)
      v[k++] = d->snaps[i]->info;
  copymap_used_bytes (d, v, k);
  k += clone_list (d, v + k);   /* after the snapshots, in id order */
  *out = v;
  *n = k;
  return 0;
}

int
sc_diff_snapshot_find (struct sc_diff *d, const char *name,
                       struct sc_snapshot_info *out)
{
  LOCKED (d);
  struct snap *s = snap_by_name (d, name);
  struct clone *c = s ? NULL : clone_by_name (d, name);
  if (c)
    clone_info (d, c, out);
  if (!s)
    return c ? 0 : -ENOENT;
  *out = s->info;
  copymap_used_bytes (d, out, 1);
  return 0;
}

int
sc_diff_snapshot_lookup (struct sc_diff *d, const char *name,
                         struct sc_snapshot_info *out)
{
  LOCKED (d);
  struct snap *s = snap_by_name (d, name);
  struct clone *c = s ? NULL : clone_by_name (d, name);
  if (c) {
    clone_info (d, c, out);
    out->used_bytes = 0;
  }
  if (!s)
    return c ? 0 : -ENOENT;
  *out = s->info;
  out->used_bytes = 0;
  return 0;
}

/* The snapshots that see the origin's `chunk` lose it: the invalidation
 * is applied in memory first, since the origin is about to change, and
 * must then reach the journal, or the whole diff area fails.  Checkpoints
 * lose nothing when a copy fails: they need only a mark, which the write
 * path records next (sc_diff_mark_changes), or else invalidates them. */
int
sc_diff_invalidate_chunk (struct sc_diff *d, uint64_t chunk, uint32_t reason,
                          int err)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  return diff_invalidate_chunk_locked (d, chunk, reason, err, false);
}

int
diff_invalidate_chunk_locked (struct sc_diff *d, uint64_t chunk,
                              uint32_t reason, int err, bool checkpoints)
{
  uint32_t from = copymap_last_epoch (d, chunk);
  uint64_t seq = 0;
  int r = 0;
  bool pending = false;
  uint8_t rec[SC_REC_MAX];
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    /* A snapshot whose delete is not durable yet needs no record (replay
     * would not know it), but the origin must not change before it is. */
    if (s->pending && s->info.epoch >= from)
      pending = true;
    if (s->deleted || s->info.invalid_reason != SC_VALID ||
        s->info.epoch < from || s->info.checkpoint != checkpoints)
      continue;
    snap_set_invalid (d, s, reason, err, chunk);
    d->invalidations++;
    diff_say ("snapshot %s (id %" PRIu64 ") is now invalid: %s%s%s (chunk %"
              PRIu64 ")", s->info.name, s->info.id,
              sc_invalid_reason_text (reason), err ? ": " : "",
              err ? strerror (err) : "", chunk);
    if (d->have_journal && r == 0)
      r = sc_journal_append (&d->journal, rec, rec_invalid (rec, &s->info),
                             &seq);
  }
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  if (!seq && pending && d->have_journal)
    seq = sc_journal_next_seq (&d->journal) - 1;
  r = seq ? diff_commit (d, seq) : 0;
  if (r == 0 && seq)
    ckpt_maybe (d);
  return r;
}

/* ---- pins: the read path's hold on a snapshot ------------------------- */

int
sc_diff_snapshot_get (struct sc_diff *d, uint64_t id,
                      struct sc_snapshot_info *info)
{
  LOCKED (d);
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted || s->info.checkpoint)
    return -ENOENT;             /* a checkpoint has no data to read */
  if (info)
    *info = s->info;
  if (s->info.invalid_reason != SC_VALID)
    return -EIO;
  s->readers++;
  return 0;
}

void
sc_diff_snapshot_put (struct sc_diff *d, uint64_t id)
{
  LOCKED (d);
  size_t pos;
  struct snap *s = snap_by_id (d, id, &pos);
  /* The last reader may free copies: not while a checkpoint runs. */
  if (s && s->readers == 1 &&
      (s->dropped || s->info.checkpoint || d->ndamaged_kept)) {
    diff_wait_ckpt (d);
    s = snap_by_id (d, id, &pos);
  }
  if (s && s->readers && --s->readers == 0) {
    pthread_cond_broadcast (&d->readers_done);
    if (s->dropped) {           /* nobody waits for it: free it here */
      snap_remove_at (d, pos);
      (void) gc_run (d, true);
      pthread_cond_broadcast (&d->readers_done);
    }
    else if (s->info.checkpoint) {      /* kept as a checkpoint meanwhile:
                                           its data can go now */
      (void) gc_run (d, true);
      pthread_cond_broadcast (&d->readers_done);
    }
    if (d->ndamaged_kept)
      damage_release (d);
  }
}

int
sc_diff_snapshot_check (struct sc_diff *d, uint64_t id)
{
  LOCKED (d);
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted || s->info.checkpoint)
    return -ENOENT;
  return s->info.invalid_reason != SC_VALID ? -EIO : 0;
}
