/* shadowcopy: the revert of the live volume to a snapshot: its records,
 * the chunks it still has to write back, its target pinned.
 *
 * Notes on the design
 *
 * Nothing per chunk is recorded to know what a revert has to do: the
 * copy map says it.  Chunk c changed after the target (epoch T) and
 * before the revert (start epoch S) exactly when it has a copy or mark
 * of an epoch W with T < W < S (cow/changes.c gives the reasoning); the
 * first such copy is what T reads, and it is kept while T is valid,
 * which the revert ensures by pinning T.  Every write after the REVERT
 * record has an epoch >= S (the saved snapshot or an epoch bump sees to
 * it), so what is to do never changes while the revert runs.  What is
 * done is recorded: REVERT_DONE extents, kept sorted and merged, each
 * written after the origin holds those chunks durably.  A crash thus
 * loses nothing: replay rebuilds both, and a chunk not recorded done is
 * served from the target again (its origin content, whatever the crash
 * left of a write back, is never read).
 *
 * While a revert runs no snapshot or checkpoint is created: it would see
 * the pre-revert content of the chunks not yet written back.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/search.h"

static bool
active (const struct sc_diff *d)
{
  return __atomic_load_n (&d->revert.active, __ATOMIC_ACQUIRE);
}

static void
set_active (struct sc_diff *d, bool on)
{
  __atomic_store_n (&d->revert.active, on, __ATOMIC_RELEASE);
}

bool
sc_diff_revert_active (struct sc_diff *d)
{
  return active (d);
}

bool
revert_pins (const struct sc_diff *d, uint64_t id)
{
  return active (d) && d->revert.target_id == id;
}

/* ---- done: sorted, merged extents ------------------------------------ */

struct chunk_key { const struct extent *e; uint64_t chunk; };

static bool
ends_before (const void *ctx, size_t i)
{
  const struct chunk_key *k = ctx;
  return k->e[i].first + k->e[i].count <= k->chunk;
}

static bool
is_done (const struct revert *rv, uint64_t chunk)
{
  struct chunk_key k = { rv->done, chunk };
  size_t i = sc_partition_point (rv->ndone, ends_before, &k);
  return i < rv->ndone && rv->done[i].first <= chunk;
}

/* Does extent i end before `chunk - 1`, neither covering nor touching
 * `chunk`? */
static bool
apart_before (const void *ctx, size_t i)
{
  const struct chunk_key *k = ctx;
  return k->e[i].first + k->e[i].count < k->chunk;
}

/* Add [first, first + count) to the done extents, merging what overlaps
 * or touches.  Inserting needs room for one more extent. */
static int
done_add (struct revert *rv, uint64_t first, uint64_t count)
{
  uint64_t end = first + count;
  struct chunk_key k = { rv->done, first };
  size_t i = sc_partition_point (rv->ndone, apart_before, &k), j = i;
  for (; j < rv->ndone && rv->done[j].first <= end; j++) {
    uint64_t e = rv->done[j].first + rv->done[j].count;
    first = rv->done[j].first < first ? rv->done[j].first : first;
    end = e > end ? e : end;
  }
  if (j == i) {                 /* nothing merged: make room at i */
    struct extent *v = sc_array_room (rv->done, &rv->done_cap, rv->ndone,
                                      sizeof *v, 16);
    if (!v)
      return -ENOMEM;
    rv->done = v;
    memmove (&v[i + 1], &v[i], (rv->ndone - i) * sizeof *v);
    rv->ndone++;
    j = i + 1;
  }
  rv->done[i] = (struct extent) { first, end - first };
  memmove (&rv->done[i + 1], &rv->done[j],
           (rv->ndone - j) * sizeof *rv->done);
  rv->ndone -= j - i - 1;
  return 0;
}

/* ---- what is to do ----------------------------------------------------- */

static bool
todo (struct sc_diff *d, const struct snap *t, uint64_t chunk)
{
  if (t && t->ndisc && !disc_needs (t, chunk))
    return true;                /* its reader discarded it: zeros */
  struct sc_copy c;
  if (copymap_seen_by (d, chunk, d->revert.target_epoch, &c))
    return c.epoch < d->revert.start_epoch;
  /* A failed lookup is no answer: pending, so a read goes to the target,
   * which fails (EIO), never to the origin. */
  return copymap_broken (d);
}

struct count_ctx {
  struct sc_diff *d;
  const struct snap *t;
  uint32_t from, to;            /* copies of epochs in (from, to) */
  bool need_copy;               /* count the copies a write would make */
  uint64_t todo, pending, copies;
};

static bool
count_copy (void *opaque, uint64_t chunk, uint32_t prev,
            const struct sc_copy *c)
{
  struct count_ctx *k = opaque;
  if (prev > k->from || c->epoch <= k->from || c->epoch >= k->to ||
      (k->t->ndisc && !disc_needs (k->t, chunk)))
    return true;                /* discarded chunks: counted apart */
  k->todo++;
  if (!is_done (&k->d->revert, chunk)) {
    k->pending++;
    if (k->need_copy && copymap_needs_copy (k->d, chunk))
      k->copies++;
  }
  return true;
}

/* Count the chunks to do (and pending) of a revert to t starting at
 * epoch `start`; with need_copy, those whose write needs a copy.  0, or
 * the map's error. */
static int
count_todo (struct sc_diff *d, const struct snap *t, uint32_t start,
            bool need_copy, struct count_ctx *k)
{
  *k = (struct count_ctx) { .d = d, .t = t, .from = t->info.epoch,
                            .to = start, .need_copy = need_copy };
  int r = copymap_visit (d, count_copy, k);
  if (r < 0)
    return r;
  for (size_t i = 0; i < t->ndisc; i++)
    for (uint64_t c = t->disc[i].first;
         c < t->disc[i].first + t->disc[i].count; c++) {
      k->todo++;
      if (!is_done (&d->revert, c)) {
        k->pending++;
        if (need_copy && copymap_needs_copy (d, c))
          k->copies++;
      }
    }
  return 0;
}

static void
recount (struct sc_diff *d)
{
  struct snap *t = snap_by_id (d, d->revert.target_id, NULL);
  if (!t)
    return;
  struct count_ctx k;
  if (count_todo (d, t, d->revert.start_epoch, false, &k) < 0)
    return;                     /* not counted; the map failed */
  d->revert.todo = k.todo;
  d->revert.ndone_chunks = k.todo - k.pending;
  d->revert.counted = true;
}

size_t
sc_diff_revert_pending (struct sc_diff *d, uint64_t first, uint64_t last,
                        uint64_t *out, size_t max, uint64_t *next)
{
  *next = last + 1;
  if (!active (d))
    return 0;
  LOCKED (d);
  if (!active (d))
    return 0;
  const struct snap *t = snap_by_id (d, d->revert.target_id, NULL);
  size_t n = 0;
  uint64_t c = first;
  /* At most 65536 chunks looked at per call: the lock is not held long. */
  for (; c <= last && n < max && c - first < 65536; c++)
    if (c < d->nchunks && !is_done (&d->revert, c) && todo (d, t, c))
      out[n++] = c;
  *next = c;
  return n;
}

/* ---- plan and start ------------------------------------------------------ */

/* The target named, checked. */
static int
target_of (struct sc_diff *d, const char *name, struct snap **out)
{
  if (active (d))
    return -EALREADY;
  struct snap *t = snap_by_name (d, name);
  if ((!t || t->deleted) && clone_by_name (d, name))
    return -EINVAL;             /* a writable clone: not a point in time */
  if (!t || t->deleted)
    return -ENOENT;
  if (t->info.checkpoint || t->info.auto_release)
    return -EINVAL;
  if (t->info.invalid_reason != SC_VALID)
    return -ESTALE;
  if (t->keeping)
    return -EAGAIN;             /* being made a checkpoint: its data goes */
  *out = t;
  return 0;
}

static int
plan_locked (struct sc_diff *d, const char *name, bool save,
             struct sc_revert_plan *p)
{
  struct snap *t;
  int r = target_of (d, name, &t);
  if (r < 0)
    return r;
  struct count_ctx k;
  d->revert.ndone = 0;          /* not active: nothing is done */
  if ((r = count_todo (d, t, d->epoch + 1, !save, &k)) < 0)
    return r;
  *p = (struct sc_revert_plan) {
    .target_id = t->info.id, .target_epoch = t->info.epoch,
    .todo_chunks = k.todo, .copy_chunks = save ? k.todo : k.copies,
    .max_bytes = d->max_bytes,
  };
  p->fits = !d->max_bytes || space_fits (d, d->max_bytes, p->copy_chunks);
  return 0;
}

int
sc_diff_revert_plan (struct sc_diff *d, const char *name, bool save,
                     struct sc_revert_plan *plan)
{
  LOCKED (d);
  return plan_locked (d, name, save, plan);
}

static void
info_locked (struct sc_diff *d, struct sc_revert_info *out)
{
  const struct revert *rv = &d->revert;
  memset (out, 0, sizeof *out);
  snprintf (out->ended_why, sizeof out->ended_why, "%s", rv->ended_why);
  out->active = active (d);
  if (!out->active)
    return;
  if (!rv->counted)
    recount (d);
  const struct snap *t = snap_by_id (d, rv->target_id, NULL);
  const struct snap *s = rv->saved_id ? snap_by_id (d, rv->saved_id, NULL)
                                      : NULL;
  out->target_id = rv->target_id;
  out->target_epoch = rv->target_epoch;
  if (t)
    snprintf (out->target, sizeof out->target, "%s", t->info.name);
  out->target_valid = t && t->info.invalid_reason == SC_VALID;
  if (s && !s->deleted) {
    out->saved_id = s->info.id;
    snprintf (out->saved, sizeof out->saved, "%s", s->info.name);
  }
  out->start_epoch = rv->start_epoch;
  out->rate = rv->rate;
  out->todo_chunks = rv->todo;
  out->done_chunks = rv->ndone_chunks;
}

int
sc_diff_revert_info (struct sc_diff *d, struct sc_revert_info *out)
{
  LOCKED (d);
  info_locked (d, out);
  return out->active ? 0 : -ENOENT;
}

int
sc_diff_revert_set_rate (struct sc_diff *d, uint64_t rate)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!active (d))
    return -ENOENT;
  if (!d->have_journal)
    return -EROFS;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  int r = txn_append (d, &t, rec, rec_revert_rate (rec, d->revert.target_id,
                                                   rate));
  if (r < 0)
    return r;
  d->revert.rate = rate;
  return txn_commit (d, &t);
}

/* The saved snapshot (if any) and the REVERT record, appended to t. */
static int
start_append (struct sc_diff *d, struct snap *target, const char *save,
              uint64_t rate, struct txn *t)
{
  struct sc_snapshot_info saved;
  int r = 0;
  if (save)
    r = snap_create_append (d, save, NULL, t, &saved);
  else if (d->epoch >= UINT32_MAX - 1)
    r = -EOVERFLOW;
  else
    txn_begin (d, t);
  if (r < 0)
    return r;
  struct revert rv = {
    .target_id = target->info.id, .target_epoch = target->info.epoch,
    .saved_id = save ? saved.id : 0,
    .start_epoch = save ? d->epoch : d->epoch + 1, .rate = rate,
  };
  uint8_t rec[SC_REC_MAX];
  r = txn_append (d, t, rec, rec_revert (rec, &rv));
  if (r < 0)
    return r;
  /* A no-op after the saved snapshot; atomic for recent.h's readers. */
  __atomic_store_n (&d->epoch, rv.start_epoch, __ATOMIC_RELEASE);
  d->revert.target_id = rv.target_id;
  d->revert.target_epoch = rv.target_epoch;
  d->revert.saved_id = rv.saved_id;
  d->revert.start_epoch = rv.start_epoch;
  d->revert.rate = rate;
  d->revert.ndone = 0;
  d->revert.ended_why[0] = '\0';
  set_active (d, true);
  return 0;
}

int
sc_diff_revert_start (struct sc_diff *d, const char *name, const char *save,
                      uint64_t rate, struct sc_revert_info *out)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  int r = diff_recover (d);
  if (r < 0)
    return r;
  struct sc_revert_plan plan;
  if ((r = plan_locked (d, name, save != NULL, &plan)) < 0)
    return r;
  if (!plan.fits)
    return -ENOSPC;
  struct snap *target = snap_by_id (d, plan.target_id, NULL);
  struct txn t;
  if ((r = start_append (d, target, save, rate, &t)) < 0)
    return r;
  d->revert.todo = plan.todo_chunks;
  d->revert.ndone_chunks = 0;
  d->revert.counted = true;
  r = txn_commit (d, &t);
  if (r < 0)
    return r;
  if (out)
    info_locked (d, out);
  ckpt_maybe (d);
  return 0;
}

/* ---- done and the end ------------------------------------------------ */

int
sc_diff_revert_done (struct sc_diff *d, uint64_t first, uint64_t count)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!active (d))
    return -ENOENT;
  if (!d->have_journal)
    return -EROFS;
  if (count == 0 || first >= d->nchunks || count > d->nchunks - first)
    return -EINVAL;
  const struct snap *tg = snap_by_id (d, d->revert.target_id, NULL);
  uint64_t newly = 0;
  for (uint64_t c = first; c < first + count; c++)
    if (!is_done (&d->revert, c) && todo (d, tg, c))
      newly++;
  struct extent *v = sc_array_room (d->revert.done, &d->revert.done_cap,
                                    d->revert.ndone, sizeof *v, 16);
  if (!v)
    return -ENOMEM;             /* room for done_add, so it cannot fail */
  d->revert.done = v;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  int r = txn_append (d, &t, rec, rec_revert_done (rec, first, count));
  if (r < 0)
    return r;
  done_add (&d->revert, first, count);
  d->revert.ndone_chunks += newly;
  r = txn_commit (d, &t);
  if (r == 0)
    ckpt_maybe (d);
  return r;
}

int
sc_diff_revert_finish (struct sc_diff *d)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!active (d))
    return -ENOENT;
  if (!d->revert.counted)
    recount (d);
  if (d->revert.ndone_chunks < d->revert.todo)
    return 0;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  int r = txn_append (d, &t, rec, rec_revert_end (rec, d->revert.target_id));
  if (r < 0)
    return r;
  /* Ended in memory before the commit, which lets go of the lock while it
   * syncs: a revert seen running then would take a rate or a done record
   * after REVERT_END, and the replay would refuse the area.  A crash
   * before the commit is durable resumes a revert with nothing to do. */
  set_active (d, false);
  d->revert.ndone = 0;
  r = txn_commit (d, &t);
  return r < 0 ? r : 1;
}

/* ---- replay, salvage, checkpoints -------------------------------------- */

static void end_unfinished (struct sc_diff *d, const char *why);

/* A REVERT while one runs whose target is invalid or gone: only an open
 * that ended that revert without recording its end (before it did so)
 * let a new one start.  It is ended here as that open did; the new
 * REVERT stands for its end, so none is to be recorded. */
static void
end_superseded (struct sc_diff *d)
{
  if (!active (d))
    return;
  const struct snap *old = snap_by_id (d, d->revert.target_id, NULL);
  if (old && !old->deleted && old->info.invalid_reason == SC_VALID)
    return;
  end_unfinished (d, "a later revert started after an open ended it");
}

static int
apply_revert (struct sc_diff *d, const struct sc_rec_revert *r, char *err,
              size_t errlen)
{
  end_superseded (d);
  const struct snap *t = snap_by_id (d, r->target_id, NULL);
  const struct snap *s = r->saved_id ? snap_by_id (d, r->saved_id, NULL)
                                     : NULL;
  if (active (d) || !t || t->deleted || t->info.checkpoint ||
      t->info.auto_release || r->flags != 0 ||
      r->start_epoch <= t->info.epoch || r->start_epoch == UINT32_MAX ||
      r->start_epoch < d->epoch || r->start_epoch > d->epoch + 1 ||
      (r->saved_id && (!s || s->info.epoch + 1 != r->start_epoch)))
    return CORRUPT ("journal record %" PRIu64 ": bad revert record (target "
                    "id %" PRIu64 ", saved id %" PRIu64 ", start epoch %u)",
                    r->h.seq, r->target_id, r->saved_id, r->start_epoch);
  d->epoch = r->start_epoch;
  d->revert.target_id = r->target_id;
  d->revert.target_epoch = t->info.epoch;
  d->revert.saved_id = r->saved_id;
  d->revert.start_epoch = r->start_epoch;
  d->revert.rate = r->rate;
  d->revert.ndone = 0;
  d->revert.counted = false;
  d->revert.ended_why[0] = '\0';
  set_active (d, true);
  return 0;
}

int
revert_apply (struct sc_diff *d, const struct sc_rec_hdr *h, char *err,
              size_t errlen)
{
  const void *p = h;
  if (h->type == SC_REC_REVERT)
    return apply_revert (d, p, err, errlen);
  if (h->type == SC_REC_REVERT_DONE) {
    const struct sc_rec_revert_done *r = p;
    if (!active (d) || r->count == 0 || r->first >= d->nchunks ||
        r->count > d->nchunks - r->first)
      return CORRUPT ("journal record %" PRIu64 ": bad revert-done record "
                      "(chunks %" PRIu64 "+%" PRIu64 ")", h->seq, r->first,
                      r->count);
    return done_add (&d->revert, r->first, r->count);
  }
  if (h->type == SC_REC_REVERT_RATE) {
    const struct sc_rec_revert_rate *r = p;
    if (!active (d) || r->target_id != d->revert.target_id)
      return CORRUPT ("journal record %" PRIu64 ": sets the rate of a "
                      "revert to snapshot id %" PRIu64 " that does not run",
                      h->seq, r->target_id);
    d->revert.rate = r->rate;
    return 0;
  }
  const struct sc_rec_revert_end *r = p;
  if (!active (d) || r->target_id != d->revert.target_id)
    return CORRUPT ("journal record %" PRIu64 ": ends a revert to "
                    "snapshot id %" PRIu64 " that does not run", h->seq,
                    r->target_id);
  set_active (d, false);
  d->revert.ndone = 0;
  return 0;
}

/* End the revert in memory (replay or salvage), saying why. */
static void
end_unfinished (struct sc_diff *d, const char *why)
{
  const struct snap *t = snap_by_id (d, d->revert.target_id, NULL);
  snprintf (d->revert.ended_why, sizeof d->revert.ended_why,
            "the revert to snapshot %s (id %" PRIu64 ") was ended "
            "unfinished: %s; chunks not written back yet hold their "
            "pre-revert content", t ? t->info.name : "(deleted)",
            d->revert.target_id, why);
  diff_say ("%s", d->revert.ended_why);
  set_active (d, false);
  d->revert.ndone = 0;
}

void
revert_replayed (struct sc_diff *d)
{
  if (!active (d))
    return;
  const struct snap *t = snap_by_id (d, d->revert.target_id, NULL);
  /* A live delete of the target is refused while the revert runs: the
   * journal has one only when an earlier open ended the revert here and
   * did not record the end (diff areas written before it did). */
  if (!t || t->deleted)
    end_unfinished (d, "its target was deleted");
  else if (t->info.invalid_reason == SC_VALID)
    return;
  else {
    char why[128];
    snprintf (why, sizeof why, "its target is invalid (%s)",
              sc_invalid_reason_text (t->info.invalid_reason));
    end_unfinished (d, why);
  }
  d->revert.end_unrecorded = true;      /* revert_end_replayed */
}

/* Without it the REVERT record stays open in the continued journal, and
 * the replay refuses the next revert's REVERT (one already runs). */
int
revert_end_replayed (struct sc_diff *d, struct sc_journal *j)
{
  if (!d->revert.end_unrecorded || active (d))
    return 0;
  uint8_t rec[SC_REC_MAX];
  int r = sc_journal_append (j, rec, rec_revert_end (rec,
                                                     d->revert.target_id),
                             NULL);
  if (r < 0)
    return r;
  d->revert.end_unrecorded = false;
  return 1;
}

void
revert_salvaged (struct sc_diff *d)
{
  if (active (d))
    end_unfinished (d, "journal records were lost (salvage)");
}

uint64_t
revert_records (const struct sc_diff *d)
{
  return active (d) ? 1 + d->revert.ndone : 0;
}

int
revert_checkpoint (struct sc_diff *d, struct sc_journal *j)
{
  if (!active (d))
    return 0;
  struct revert rv = d->revert;
  const struct snap *s = rv.saved_id ? snap_by_id (d, rv.saved_id, NULL)
                                     : NULL;
  if (!s || s->deleted)
    rv.saved_id = 0;            /* deleted since: no longer named */
  uint8_t rec[SC_REC_MAX];
  int r = sc_journal_append (j, rec, rec_revert (rec, &rv), NULL);
  for (size_t i = 0; r == 0 && i < rv.ndone; i++)
    r = sc_journal_append (j, rec, rec_revert_done (rec, rv.done[i].first,
                                                    rv.done[i].count), NULL);
  return r;
}

void
revert_free (struct sc_diff *d)
{
  free (d->revert.done);
  d->revert.done = NULL;
  d->revert.ndone = d->revert.done_cap = 0;
}
