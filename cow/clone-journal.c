/* shadowcopy: writable clones in the journal: replay, the unsure tail,
 * checkpoints and salvage.
 *
 * Replay applies a clone's SNAP_CREATE (CLONE flag), CLONE_BASE and
 * CLONE_DATA records, checking every field.  A CLONE_DATA record past the
 * last point known durable is "unsure": its data and record were made
 * durable by one fdatasync, and the slot it replaced was freed only after
 * that, so if its data is not there (after a reboot) the record is
 * dropped and the previous mapping stands.  In the same boot nothing that
 * returned can be lost: data that fails its sums is damage, and the clone
 * is marked damaged once the journal runs (diff_mark_unsure_damage).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/boot-id.h"
#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "cow/io.h"

int
clone_apply_create (struct sc_diff *d, const struct sc_rec_snap_create *r,
                    char *err, size_t errlen)
{
  struct clone *c = calloc (1, sizeof *c);
  if (!c)
    return -ENOMEM;
  memcpy (c->info.name, r->name, r->name_len);
  if (strlen (c->info.name) != r->name_len ||
      !sc_snapshot_name_valid (c->info.name) ||
      r->flags != SC_SNAP_F_CLONE || r->id < d->next_id ||
      r->id == UINT64_MAX || r->epoch == 0 || r->epoch >= d->epoch ||
      name_taken (d, c->info.name)) {
    free (c);
    return CORRUPT ("journal record %" PRIu64 ": bad clone record (name, "
                    "id %" PRIu64 " or epoch %u)", r->h.seq, r->id,
                    r->epoch);
  }
  int e = clones_reserve (d);
  if (e < 0) {
    free (c);
    return e;
  }
  c->info.clone = true;
  c->info.id = r->id;
  c->info.epoch = r->epoch;
  c->info.ctime_ns = r->ctime_ns;
  c->info.volume_size = r->volume_size;
  d->clones[d->nclones++] = c;
  d->next_id = r->id + 1;
  return 0;
}

int
clone_apply_base (struct sc_diff *d, const struct sc_rec_clone_base *r,
                  char *err, size_t errlen)
{
  struct clone *c = clone_by_id (d, r->id);
  struct snap *b = snap_by_id (d, r->base_id, NULL);
  if (!c || c->based || !b || b->info.checkpoint ||
      b->info.epoch != c->info.epoch)
    return CORRUPT ("journal record %" PRIu64 ": bad clone base (clone id %"
                    PRIu64 ", base id %" PRIu64 ")", r->h.seq, r->id,
                    r->base_id);
  c->based = true;
  c->info.base_id = r->base_id;
  return 0;
}

static int
cunsure_push (struct sc_diff *d, const struct clone_unsure *u)
{
  struct clone_unsure *v = sc_array_room (d->cunsure, &d->cunsure_cap,
                                          d->ncunsure, sizeof *v, 16);
  if (!v)
    return -ENOMEM;
  d->cunsure = v;
  d->cunsure[d->ncunsure++] = *u;
  return 0;
}

/* The fields of a CLONE_DATA record, checked. */
static bool
data_ok (struct sc_diff *d, const struct sc_rec_clone_data *r,
         const struct clone *c)
{
  uint64_t nchunks = (c->info.volume_size + d->chunk_size - 1)
                     / d->chunk_size;
  bool zero = r->flags == SC_CLONE_F_ZERO;
  if (!c->based || r->chunk >= nchunks || r->chunk >= d->nchunks ||
      (r->flags & ~SC_CLONE_F_ZERO) || r->reserved != 0)
    return false;
  if (zero)
    return r->slot == 0 && r->nsums == 0;
  return r->nsums == d->sums.nsums && r->slot >= d->first_slot &&
         sizeof *r + r->nsums * sizeof r->sums[0] <= r->h.len;
}

int
clone_apply_data (struct sc_diff *d, const struct sc_rec_clone_data *r,
                  uint64_t durable, char *err, size_t errlen)
{
  struct clone *c = clone_by_id (d, r->id);
  if (!c || !data_ok (d, r, c))
    return CORRUPT ("journal record %" PRIu64 ": bad clone data record "
                    "(clone id %" PRIu64 ", chunk %" PRIu64 ", slot %"
                    PRIu64 ")", r->h.seq, r->id, r->chunk, r->slot);
  bool zero = r->flags == SC_CLONE_F_ZERO;
  uint64_t slot = zero ? CLONE_ZERO : r->slot;
  bool in_file = !zero && slot < d->replay_max_slot;
  uint32_t sums[SC_SUMS_MAX];
  if (!zero)
    memcpy (sums, (const uint8_t *) r + sizeof *r, r->nsums * sizeof sums[0]);
  int e = clone_map_reserve (c);
  if (e == 0 && in_file)
    e = sc_sums_reserve (&d->sums, slot);
  if (e < 0)
    return e;
  uint64_t prev = clone_map_get (c, r->chunk);
  struct clone_unsure u = { .id = r->id, .chunk = r->chunk, .seq = r->h.seq,
                            .slot = slot, .prev = prev };
  struct sc_sums_entry pe;
  int got = clone_has_slot (prev) ? sc_sums_get (&d->sums, prev, &pe) : 0;
  if (got < 0)
    return got;
  if (got > 0)
    memcpy (u.prev_sums, pe.sums, sizeof u.prev_sums);
  if (!zero && d->verify_tail && r->h.seq > durable &&
      (e = cunsure_push (d, &u)) < 0)
    return e;
  /* The new entry, then the old one cleared (sums.c: entries are
   * direct-mapped by slot, so the order no longer matters for room). */
  if (in_file && (e = sc_sums_set (&d->sums, slot, r->chunk, 0, sums,
                                   false)) < 0)
    return e;
  if (clone_has_slot (prev) && prev != slot)
    sc_sums_clear (&d->sums, prev, r->chunk, 0);
  clone_map_insert (c, r->chunk, slot);
  return 0;
}

int
clone_apply_delete (struct sc_diff *d, uint64_t id)
{
  struct clone *c = clone_by_id (d, id);
  if (!c)
    return -ENOENT;
  clone_remove (d, c, false);   /* replay: the allocator is built after */
  return 0;
}

/* Unsure record u does not hold its data: after a reboot it is dropped
 * and the mapping before it stands; in this boot it is damage. */
static int
unsure_bad (struct sc_diff *d, struct clone *c, const struct clone_unsure *u,
            const struct sc_sums_entry *e, int block, bool same_boot)
{
  if (same_boot && e) {
    diff_say ("chunk %" PRIu64 " of clone %s (journal record %" PRIu64
              ") in diff-area slot %" PRIu64 " fails its checksum at block "
              "%d; the server stopped in this same boot, so its write "
              "cannot have been cut short: it is damage", u->chunk,
              c->info.name, u->seq, u->slot, block);
    struct unsure_bad *v = sc_array_room (d->unsure_bad, &d->unsure_bad_cap,
                                          d->nunsure_bad, sizeof *v, 8);
    if (!v)
      return -ENOMEM;
    d->unsure_bad = v;
    d->unsure_bad[d->nunsure_bad++] =
      (struct unsure_bad) { u->slot, *e, (uint32_t) block };
    return 0;
  }
  if (clone_has_slot (u->prev)) {
    int r = sc_sums_reserve (&d->sums, u->prev);
    if (r == 0)
      r = sc_sums_set (&d->sums, u->prev, u->chunk, 0, u->prev_sums, false);
    if (r < 0)
      return r;
  }
  if (e)
    sc_sums_clear (&d->sums, u->slot, u->chunk, 0);
  clone_map_insert (c, u->chunk, u->prev);
  if (sc_debug)
    sc_debug ("replay: dropping the write of chunk %" PRIu64 " of clone %s "
              "(record %" PRIu64 "): its data never reached the diff area",
              u->chunk, c->info.name, u->seq);
  return void_push_clone (d, u);
}

/* The unsure records, newest first: a record still in force whose data
 * fails its sums falls back to the one before it, which is then judged
 * in turn if it was unsure too. */
static int
verify_cunsure (struct sc_diff *d, uint64_t durable)
{
  bool same_boot = sc_boot_id_is_now (d->sb.session_boot_id);
  uint8_t *buf = NULL;
  int r = 0;
  for (size_t i = d->ncunsure; i-- > 0 && r == 0; ) {
    const struct clone_unsure *u = &d->cunsure[i];
    struct clone *c = clone_by_id (d, u->id);
    if (u->seq <= durable || !c || clone_map_get (c, u->chunk) != u->slot)
      continue;
    struct sc_sums_entry e;
    int got = sc_sums_get (&d->sums, u->slot, &e);
    if (got < 0) {
      r = got;
      break;
    }
    bool have = got > 0 && e.chunk == u->chunk && e.epoch == 0;
    if (!buf && !(buf = malloc (d->chunk_size)))
      return -ENOMEM;
    if (have && (r = sc_io_pread (d->fd, buf, d->chunk_size,
                                  u->slot * d->chunk_size)) < 0)
      break;
    int bad = have ? sc_sums_verify (&d->sums, &e, buf, 0, d->chunk_size) : 0;
    if (bad >= 0)
      r = unsure_bad (d, c, u, have ? &e : NULL, bad, same_boot);
  }
  free (buf);
  return r;
}

int
clone_replay_end (struct sc_diff *d, uint64_t durable, char *err,
                  size_t errlen)
{
  for (size_t i = 0; i < d->nclones; ) {
    struct clone *c = d->clones[i];
    if (c->based) {
      i++;
      continue;
    }
    if (!d->salv)
      return CORRUPT ("clone %s (id %" PRIu64 ") has no base record",
                      c->info.name, c->info.id);
    /* Its base went with lost records: nothing can be read through it,
     * and no checkpoint could record it.  It goes (its slots free). */
    diff_say ("salvage: clone %s (id %" PRIu64 ") lost its base record: "
              "it is dropped", c->info.name, c->info.id);
    (void) clone_apply_delete (d, c->info.id);
  }
  int r = verify_cunsure (d, durable);
  free (d->cunsure);
  d->cunsure = NULL;
  d->ncunsure = d->cunsure_cap = 0;
  if (r < 0)
    snprintf (err, errlen, "reading clone data at the end of the journal: "
              "%s", strerror (-r));
  return r;
}

int
clone_mark_slots (struct sc_diff *d, uint64_t max_slot, uint64_t *bad)
{
  for (size_t i = 0; i < d->nclones; i++) {
    const struct clone *c = d->clones[i];
    for (size_t k = 0; k < c->map_cap; k++) {
      uint64_t slot = c->map[k].slot;
      if (c->map[k].chunk == CLONE_EMPTY || !clone_has_slot (slot))
        continue;
      if (slot >= max_slot || sc_alloc_mark (&d->alloc, slot) < 0) {
        *bad = slot;
        return -EINVAL;
      }
    }
  }
  return 0;
}

/* ---- checkpoints ------------------------------------------------------ */

int
clone_ckpt_create (struct sc_diff *d, struct sc_journal *j,
                   const struct clone *c)
{
  if (c->deleted)
    return 0;
  uint8_t rec[SC_REC_MAX];
  int r = rec_append_snapshot (j, &c->info, NULL);
  if (r == 0 && c->info.invalid_reason != SC_VALID)
    r = sc_journal_append (j, rec, rec_invalid (rec, &c->info), NULL);
  return r;
}

int
clone_ckpt_data_slice (struct sc_diff *d, struct sc_journal *j,
                       struct clone_cursor *at, uint64_t budget, bool bound)
{
  uint8_t rec[SC_REC_MAX];
  int r = 0;
  uint64_t n = 0;
  for (; r == 0 && at->clone < d->nclones; at->clone++, at->pos = 0) {
    const struct clone *c = d->clones[at->clone];
    for (; r == 0 && !c->deleted && at->pos < c->map_cap; at->pos++) {
      const struct clone_ent *m = &c->map[at->pos];
      struct sc_sums_entry e = { .chunk = 0 };
      if (m->chunk == CLONE_EMPTY || m->slot == CLONE_UNMAPPED)
        continue;
      if (n == budget)
        return 0;               /* more from here */
      int got = m->slot != CLONE_ZERO ? sc_sums_get (&d->sums, m->slot, &e)
                                      : 1;
      if (got <= 0)             /* every clone slot has its sums */
        return got < 0 ? got : -EIO;
      r = sc_journal_append (j, rec, rec_clone_data (rec, c->info.id,
                                                     m->chunk, m->slot,
                                                     e.sums, d->sums.nsums),
                             NULL);
      if (r == 0 && bound)
        r = sc_journal_bound_tail (j, 1u << 20);
      n++;
    }
    if (r < 0)
      return r;
  }
  return r < 0 ? r : 1;
}

int
clone_ckpt_data (struct sc_diff *d, struct sc_journal *j)
{
  struct clone_cursor at = { 0, 0 };
  int r = clone_ckpt_data_slice (d, j, &at, UINT64_MAX, true);
  return r < 0 ? r : 0;
}

/* ---- salvage ------------------------------------------------------------ */

/* Does a clone other than c, not distrusted, map chunk to slot? */
static bool
kept_by_another (struct sc_diff *d, const struct clone *c,
                 uint64_t suspect_below, uint64_t chunk, uint64_t slot)
{
  for (size_t i = 0; i < d->nclones; i++)
    if (d->clones[i] != c && d->clones[i]->info.id >= suspect_below &&
        clone_map_get (d->clones[i], chunk) == slot)
      return true;
  return false;
}

/* A clone listed at a loss is never served again, and its map may be
 * stale: a lost rewrite leaves it on a slot freed and reused since.  The
 * map goes, with the sums of the slots no kept clone maps, before the
 * allocator is rebuilt (which would find such a slot used twice). */
int
clone_salvage_distrust (struct sc_diff *d, uint64_t suspect_below)
{
  struct sc_salvage_report *sv = d->salv;
  for (size_t i = 0; i < d->nclones; i++) {
    struct clone *c = d->clones[i];
    if (c->info.id >= suspect_below)
      continue;
    if (c->info.invalid_reason == SC_VALID) {
      uint64_t *v = realloc (sv->marked, (sv->nmarked + 1) * sizeof *v);
      if (!v)
        return -ENOMEM;
      sv->marked = v;
      v[sv->nmarked++] = c->info.id;
      c->info.invalid_reason = SC_INVALID_SALVAGED;
    }
    for (size_t k = 0; k < c->map_cap; k++) {
      const struct clone_ent *m = &c->map[k];
      if (m->chunk != CLONE_EMPTY && clone_has_slot (m->slot) &&
          !kept_by_another (d, c, suspect_below, m->chunk, m->slot))
        sc_sums_clear (&d->sums, m->slot, m->chunk, 0);
    }
    free (c->map);
    c->map = NULL;
    c->map_cap = c->nmap = 0;
    c->nslots = 0;
  }
  return 0;
}
