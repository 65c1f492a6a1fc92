/* shadowcopy: replay: rebuilding the diff area's state from its journal.
 *
 * Notes on the design
 *
 * All state lives in memory and is rebuilt at open by replaying the
 * journal: the snapshot table, the copy map and the slot allocator.  The
 * journal is the only truth on disk; nothing else needs to be kept in
 * step.  Every record is checked before it is applied; anything a server
 * could not have written is corruption, reported with the record's
 * number, never guessed around.  Replay never writes.
 *
 * The end of the journal may be torn.  Copy records past the last point
 * the journal is known durable are "unsure": their data may not have
 * reached the disk (one fdatasync covers a copy's data and its record,
 * and the origin is only written after it completes), so their data is
 * checked against its CRC and a copy whose data is not there is dropped:
 * the origin still holds what it was to preserve.
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
#include "cow/pagecache.h"
#include "cow/io.h"

static int
unsure_push (struct sc_diff *d, uint64_t chunk, uint32_t epoch, uint64_t seq)
{
  struct unsure *u = sc_array_room (d->unsure, &d->unsure_cap, d->nunsure,
                                    sizeof *u, 64);
  if (!u)
    return -ENOMEM;
  d->unsure = u;
  d->unsure[d->nunsure++] = (struct unsure) { chunk, seq, epoch };
  return 0;
}

static int
unsure_bad_push (struct sc_diff *d, uint64_t slot,
                 const struct sc_sums_entry *e, uint32_t block)
{
  struct unsure_bad *u = sc_array_room (d->unsure_bad, &d->unsure_bad_cap,
                                        d->nunsure_bad, sizeof *u, 8);
  if (!u)
    return -ENOMEM;
  d->unsure_bad = u;
  d->unsure_bad[d->nunsure_bad++] = (struct unsure_bad) { slot, *e, block };
  return 0;
}

/* The unsure copies whose slot does not hold the data they name (checked
 * against every block's sum, or a version-1 copy's whole-chunk CRC).
 *
 * A copy whose data never reached the disk is dropped: its record and
 * data were made durable by one fdatasync, and the origin is only written
 * after it, so the origin still holds what the copy was to preserve.  But
 * data that reached the disk and then rotted looks the same, and there
 * the origin has been overwritten: dropping the copy would serve the new
 * data as the snapshot's.  The two can be told apart when the previous
 * session ran in this same boot: a process crash (kill -9) keeps every
 * write that returned in the page cache, so nothing was lost, and data
 * that does not check out is damage: the copy is kept, and its snapshots
 * are marked damaged once the journal runs (diff_mark_unsure_damage).
 * After a power cut or a kernel crash it cannot be told: a write cut
 * short may leave any mix of old and new content in a reused slot, so the
 * copy is dropped as before (docs/design.md says what that misses).
 *
 * A copy that no snapshot needs for its data, only checkpoints for the
 * mark it also is, is not judged by its data at all: its slot may have
 * been freed (and reused) once its snapshot was kept as a checkpoint,
 * while its record was durable but no commit marker vouched for it yet.
 * It becomes a mark, as garbage collection would make it: if its write
 * never reached the origin, a diff reports one chunk more. */
static bool
unsure_mark_only (struct sc_diff *d, uint64_t chunk, const struct sc_copy *c)
{
  uint32_t from = copymap_prev_epoch (d, chunk, c->epoch), to = c->epoch - 1;
  struct keepers data = { .epochs = d->valid, .n = d->nvalid };
  struct keepers marks = { .epochs = d->cvalid, .n = d->ncvalid };
  if (copymap_needed (d, &data, from, to, chunk))
    return false;
  if (copymap_needed (d, &marks, from, to, chunk))
    copymap_demote (d, chunk, from, c, false);
  else
    copymap_remove (d, chunk, c->epoch);
  return true;
}

static int
verify_unsure (struct sc_diff *d, uint64_t durable)
{
  uint8_t *buf = NULL;
  int r = 0;
  bool same_boot = sc_boot_id_is_now (d->sb.session_boot_id);
  for (size_t i = 0; i < d->nunsure && r == 0; i++) {
    struct unsure *u = &d->unsure[i];
    struct sc_copy c;
    struct sc_sums_entry e;
    if (u->seq <= durable || !copymap_find (d, u->chunk, u->epoch, &c) ||
        unsure_mark_only (d, u->chunk, &c))
      continue;
    if (!buf && !(buf = malloc (d->chunk_size)))
      return -ENOMEM;
    int got = sc_sums_get (&d->sums, c.slot, &e);
    if (got < 0) {
      r = got;
      break;
    }
    bool have = got > 0 && e.chunk == u->chunk && e.epoch == u->epoch;
    if (have)
      r = sc_io_pread (d->fd, buf, d->chunk_size, c.slot * d->chunk_size);
    if (r < 0)
      break;
    int bad = have ? sc_sums_verify (&d->sums, &e, buf, 0, d->chunk_size)
                   : 0;
    if (bad < 0)
      continue;                 /* the data is there */
    if (have && same_boot) {
      diff_say ("the copy of chunk %" PRIu64 " (journal record %" PRIu64
                ") in diff-area slot %" PRIu64 " fails its checksum at "
                "block %d; the server stopped in this same boot, so its "
                "write cannot have been cut short: it is damage", u->chunk,
                u->seq, c.slot, bad);
      r = unsure_bad_push (d, c.slot, &e, (uint32_t) bad);
      continue;
    }
    copymap_remove (d, u->chunk, u->epoch);
    if ((r = void_push_copy (d, u->seq, u->chunk, u->epoch, c.slot)) < 0)
      break;
    if (sc_debug)
      sc_debug ("replay: dropping the copy of chunk %" PRIu64 " (record %"
                PRIu64 "): its data never reached the diff area",
                u->chunk, u->seq);
  }
  free (buf);
  free (d->unsure);
  d->unsure = NULL;
  d->nunsure = d->unsure_cap = 0;
  return r;
}

void
diff_mark_unsure_damage (struct sc_diff *d)
{
  LOCKED (d);
  for (size_t i = 0; i < d->nunsure_bad; i++)
    damage_found (d, d->unsure_bad[i].slot, &d->unsure_bad[i].e,
                  d->unsure_bad[i].block, NULL);
  free (d->unsure_bad);
  d->unsure_bad = NULL;
  d->nunsure_bad = d->unsure_bad_cap = 0;
}

/* ---- one function per record type -------------------------------------- */

static int
apply_state (struct sc_diff *d, const struct sc_rec_state *r, char *err,
             size_t errlen)
{
  if (r->epoch < d->epoch || r->next_snapshot_id < d->next_id)
    return CORRUPT ("journal record %" PRIu64 ": state goes backwards",
                    r->h.seq);
  d->epoch = r->epoch;
  d->next_id = r->next_snapshot_id;
  return 0;
}

static int
apply_create (struct sc_diff *d, const struct sc_rec_snap_create *r,
              char *err, size_t errlen)
{
  if (r->flags & SC_SNAP_F_CLONE)
    return clone_apply_create (d, r, err, errlen);
  struct snap *s = calloc (1, sizeof *s);
  if (!s)
    return -ENOMEM;
  memcpy (s->info.name, r->name, r->name_len);
  /* A NUL inside the recorded name would silently shorten it. */
  if (strlen (s->info.name) != r->name_len ||
      !sc_snapshot_name_valid (s->info.name) ||
      (r->flags & ~SC_SNAP_F_KNOWN) ||
      r->id < d->next_id || r->id == UINT64_MAX ||
      r->epoch < d->epoch || r->epoch == 0 ||
      r->epoch == UINT32_MAX || name_taken (d, s->info.name)) {
    free (s);
    return CORRUPT ("journal record %" PRIu64 ": bad snapshot record "
                    "(name, id %" PRIu64 " or epoch %u)", r->h.seq, r->id,
                    r->epoch);
  }
  s->info.id = r->id;
  s->info.epoch = r->epoch;
  s->info.ctime_ns = r->ctime_ns;
  s->info.volume_size = r->volume_size;
  s->info.auto_release = r->flags & SC_SNAP_F_AUTO_RELEASE;
  s->info.checkpoint = r->flags & SC_SNAP_F_CHECKPOINT;
  snap_derive_uuid (d, &s->info);       /* until its SNAP_UUID record */
  int e = snap_reserve (d);
  if (e < 0) {
    free (s);
    return e;
  }
  snap_push (d, s);
  d->next_id = r->id + 1;
  d->epoch = r->epoch + 1;
  if (r->flags & SC_SNAP_F_ORIGIN_UNFLUSHED)
    snap_set_invalid (d, s, SC_INVALID_ORIGIN_FLUSH, 0, 0);
  return 0;
}

static int
apply_set (struct sc_diff *d, const struct sc_rec_snap_set *r, char *err,
           size_t errlen)
{
  struct snap *s = snap_by_id (d, r->id, NULL);
  if (!s || s->info.in_set)
    return CORRUPT ("journal record %" PRIu64 ": puts unknown snapshot "
                    "id %" PRIu64 " in a set", r->h.seq, r->id);
  s->info.in_set = true;
  memcpy (s->info.set_id, r->set_id, sizeof s->info.set_id);
  return 0;
}

static int
apply_uuid (struct sc_diff *d, const struct sc_rec_snap_uuid *r, char *err,
            size_t errlen)
{
  struct snap *s = snap_by_id (d, r->id, NULL);
  struct clone *c = s ? NULL : clone_by_id (d, r->id);
  if (!s && !c)
    return CORRUPT ("journal record %" PRIu64 ": gives a UUID to unknown "
                    "snapshot id %" PRIu64, r->h.seq, r->id);
  memcpy (s ? s->info.uuid : c->info.uuid, r->uuid, sizeof s->info.uuid);
  return 0;
}

static int
apply_keep_checkpoint (struct sc_diff *d,
                       const struct sc_rec_keep_checkpoint *r, char *err,
                       size_t errlen)
{
  struct snap *s = snap_by_id (d, r->id, NULL);
  if (!s || s->info.checkpoint || snap_has_clones (d, r->id))
    return CORRUPT ("journal record %" PRIu64 ": keeps unknown snapshot "
                    "id %" PRIu64 " (or a base of clones) as a checkpoint",
                    r->h.seq, r->id);
  snap_make_checkpoint (d, s);
  return 0;
}

static int
apply_delete (struct sc_diff *d, const struct sc_rec_snap_delete *r,
              char *err, size_t errlen)
{
  size_t pos;
  if (clone_apply_delete (d, r->id) == 0)
    return 0;
  if (!snap_by_id (d, r->id, &pos) || snap_has_clones (d, r->id))
    return CORRUPT ("journal record %" PRIu64 ": deletes unknown "
                    "snapshot id %" PRIu64 " (or a base of clones)",
                    r->h.seq, r->id);
  snap_remove_at (d, pos);
  return 0;
}

static int
apply_invalid (struct sc_diff *d, const struct sc_rec_snap_invalid *r,
               char *err, size_t errlen)
{
  struct snap *s = snap_by_id (d, r->id, NULL);
  struct clone *c = s ? NULL : clone_by_id (d, r->id);
  if ((!s && !c) || r->reason == SC_VALID)
    return CORRUPT ("journal record %" PRIu64 ": invalidates unknown "
                    "snapshot id %" PRIu64, r->h.seq, r->id);
  if (c) {
    c->info.invalid_reason = r->reason;
    c->info.invalid_errno = r->err;
    c->info.invalid_chunk = r->chunk;
    return 0;
  }
  snap_set_invalid (d, s, r->reason, r->err, r->chunk);
  return 0;
}

/* Add a replayed copy to the map (in chunk order: replay-order.c) and,
 * for a data copy in the file, its checksums to the slot's entry
 * (`whole`: one CRC of the whole chunk, a version-1 COPY record).  A slot
 * past the end of the file is left for verify_unsure (a torn tail) or
 * build_alloc (corruption) to judge. */
static int
add_copy (struct sc_diff *d, uint64_t chunk, struct sc_copy c,
          const uint32_t *sums, bool whole, uint64_t seq, uint64_t durable,
          char *err, size_t errlen)
{
  bool zero = !sc_copy_has_slot (&c);
  bool in_file = !zero && c.slot < d->replay_max_slot;
  int e = in_file ? sc_sums_reserve (&d->sums, c.slot) : 0;
  /* First: a salvage replay adds it at once, and a copy refused there
   * must leave nothing behind. */
  if (e == 0)
    e = replay_order_add (d, chunk, c, seq, err, errlen);
  if (e == 0 && in_file)
    e = sc_sums_set (&d->sums, c.slot, chunk, c.epoch, sums, whole);
  if (e == 0 && !zero && d->verify_tail && seq > durable)
    e = unsure_push (d, chunk, c.epoch, seq);
  return e;
}

static int
apply_copy (struct sc_diff *d, const struct sc_rec_copy *r, uint64_t durable,
            char *err, size_t errlen)
{
  bool mark = r->flags == SC_COPY_F_MARK;
  bool zero = (r->flags & SC_COPY_F_ZERO) || mark;
  if (r->chunk >= d->nchunks || r->epoch == 0 || r->epoch > d->epoch ||
      (r->flags & ~SC_COPY_F_ZERO && !mark) || (zero && r->slot != 0) ||
      (zero && r->data_crc != 0) || r->reserved != 0 ||
      (!zero && r->slot < d->first_slot))
    return CORRUPT ("journal record %" PRIu64 ": bad copy record "
                    "(chunk %" PRIu64 ", epoch %u, slot %" PRIu64 ")",
                    r->h.seq, r->chunk, r->epoch, r->slot);
  struct sc_copy c = { .slot = mark ? SC_SLOT_MARK
                                   : zero ? SC_SLOT_ZERO : r->slot,
                       .epoch = r->epoch, .crc = zero ? 0 : r->data_crc };
  uint32_t whole = r->data_crc;
  return add_copy (d, r->chunk, c, &whole, true, r->h.seq, durable, err,
                   errlen);
}

/* A data copy with a checksum per block (format version 2). */
static int
apply_copy_sums (struct sc_diff *d, const struct sc_rec_copy_sums *r,
                 uint64_t durable, char *err, size_t errlen)
{
  if (r->chunk >= d->nchunks || r->epoch == 0 || r->epoch > d->epoch ||
      r->nsums != d->sums.nsums || r->reserved != 0 ||
      sizeof *r + r->nsums * sizeof r->sums[0] > r->h.len ||
      r->slot < d->first_slot)
    return CORRUPT ("journal record %" PRIu64 ": bad copy record "
                    "(chunk %" PRIu64 ", epoch %u, slot %" PRIu64 ", %u "
                    "checksums)", r->h.seq, r->chunk, r->epoch, r->slot,
                    r->nsums);
  struct sc_copy c = { .slot = r->slot, .epoch = r->epoch };
  uint32_t sums[SC_SUMS_MAX];
  memcpy (sums, (const uint8_t *) r + sizeof *r, r->nsums * sizeof sums[0]);
  return add_copy (d, r->chunk, c, sums, false, r->h.seq, durable, err,
                   errlen);
}

static int
apply_drop (struct sc_diff *d, const struct sc_rec_snap_drop *r, char *err,
            size_t errlen)
{
  struct sc_drop_info di = { .id = r->id, .ctime_ns = r->ctime_ns,
                             .drop_ns = r->drop_ns, .reason = r->reason };
  if (r->name_len == 0 || r->name_len > SC_NAME_MAX ||
      sizeof *r + r->name_len > r->h.len ||
      ((r->reason < SC_DROPPED_DIFF_FULL || r->reason > SC_DROPPED_SHRINK) &&
       r->reason != SC_DROPPED_MAX_CHECKPOINTS))
    return CORRUPT ("journal record %" PRIu64 ": bad drop record", r->h.seq);
  /* Drops are numbered 1, 2, ... with no gap; a checkpoint's history
   * starts at its oldest kept drop, so the first one may be higher. */
  if (d->drops_total ? r->total != d->drops_total + 1
                     : r->total == 0 || r->total > UINT64_MAX / 2)
    return CORRUPT ("journal record %" PRIu64 ": drop number %" PRIu64
                    " does not follow %" PRIu64, r->h.seq, r->total,
                    d->drops_total);
  memcpy (di.name, r->name, r->name_len);
  /* As for snapshot records: a NUL inside would shorten the name. */
  if (strlen (di.name) != r->name_len || !sc_snapshot_name_valid (di.name))
    return CORRUPT ("journal record %" PRIu64 ": bad name in a drop "
                    "record", r->h.seq);
  size_t pos;
  if (snap_has_clones (d, r->id))
    return CORRUPT ("journal record %" PRIu64 ": drops a base of clones",
                    r->h.seq);
  if (snap_by_id (d, r->id, &pos))
    snap_remove_at (d, pos);
  space_drop_push (d, &di, r->total);
  return 0;
}

static int
apply_limit (struct sc_diff *d, const struct sc_rec_limit *r, char *err,
             size_t errlen)
{
  if (r->reserved != 0 ||
      (r->max_bytes != 0 &&
       r->max_bytes < SC_DIFF_MAX_MIN_CHUNKS * (uint64_t) d->chunk_size))
    return CORRUPT ("journal record %" PRIu64 ": bad limit record (%"
                    PRIu64 " bytes; the smallest limit is %u chunks)",
                    r->h.seq, r->max_bytes, SC_DIFF_MAX_MIN_CHUNKS);
  d->max_bytes = r->max_bytes;
  d->max_recorded = true;
  return 0;
}

static int
apply_discard (struct sc_diff *d, const struct sc_rec_discard *r, char *err,
               size_t errlen)
{
  struct snap *s = snap_by_id (d, r->id, NULL);
  if (!s || r->count == 0 || r->first >= d->nchunks ||
      r->count > d->nchunks - r->first)
    return CORRUPT ("journal record %" PRIu64 ": bad discard record "
                    "(snapshot id %" PRIu64 ", chunks %" PRIu64 "+%"
                    PRIu64 ")", r->h.seq, r->id, r->first, r->count);
  return disc_add (d, s, r->first, r->count);
}

static int
apply_record (void *opaque, const struct sc_rec_hdr *h, uint64_t durable,
              char *err, size_t errlen)
{
  struct sc_diff *d = opaque;
  if (d->nunsure && d->unsure[d->nunsure - 1].seq <= durable)
    d->nunsure = 0;             /* a commit marker vouched for them */
  const void *r = h;
  if (h->type != SC_REC_COPY && h->type != SC_REC_COPY_SUMS) {
    int e = replay_order_flush (d, err, errlen);      /* it may look */
    if (e < 0)
      return e;
  }
  switch (h->type) {
  case SC_REC_STATE:        return apply_state (d, r, err, errlen);
  case SC_REC_SNAP_CREATE:  return apply_create (d, r, err, errlen);
  case SC_REC_SNAP_SET:     return apply_set (d, r, err, errlen);
  case SC_REC_SNAP_DELETE:  return apply_delete (d, r, err, errlen);
  case SC_REC_SNAP_INVALID: return apply_invalid (d, r, err, errlen);
  case SC_REC_COPY:         return apply_copy (d, r, durable, err, errlen);
  case SC_REC_COPY_SUMS:    return apply_copy_sums (d, r, durable, err,
                                                    errlen);
  case SC_REC_SNAP_DROP:    return apply_drop (d, r, err, errlen);
  case SC_REC_LIMIT:        return apply_limit (d, r, err, errlen);
  case SC_REC_DISCARD:      return apply_discard (d, r, err, errlen);
  case SC_REC_SNAP_UUID:    return apply_uuid (d, r, err, errlen);
  case SC_REC_KEEP_CHECKPOINT:
    return apply_keep_checkpoint (d, r, err, errlen);
  case SC_REC_CLONE_BASE:   return clone_apply_base (d, r, err, errlen);
  case SC_REC_CLONE_DATA:   return clone_apply_data (d, r, durable, err,
                                                     errlen);
  case SC_REC_REVERT:
  case SC_REC_REVERT_DONE:
  case SC_REC_REVERT_END:
  case SC_REC_REVERT_RATE:  return revert_apply (d, h, err, errlen);
  case SC_REC_VOID:         return void_apply (d, r, err, errlen);
  }
  return CORRUPT ("journal record %" PRIu64 ": unknown type %u", h->seq,
                  h->type);
}

/* ---- salvage ------------------------------------------------------------ *
 *
 * A salvage replay (d->salv, see cow/salvage.h) goes past damaged records
 * (the journal finds where it goes on, and says what it went past), and
 * keeps to what later records can still say: once records are lost, a
 * later record may concern what they made (the delete of a snapshot
 * whose create was lost, a copy of an epoch a lost create began).  Every
 * snapshot listed when records were lost is marked invalid at the end:
 * any lost record may have been a copy it needed or its own delete. */

static int
salvage_lost (void *opaque, const struct sc_journal_loss *l)
{
  struct sc_diff *d = opaque;
  struct sc_salvage_report *sv = d->salv;
  sv->nlosses_total++;
  if (d->next_id > sv->suspect_below)
    sv->suspect_below = d->next_id;
  diff_say ("salvage: journal records %" PRIu64 "%s lost: %s", l->first_seq,
            l->last_seq == SC_JOURNAL_LOST_TO_END ? " to the end" :
            l->last_seq == l->first_seq ? "" : " on", l->why);
  if (sv->nlosses >= SC_SALVAGE_LOSSES_MAX)
    return 0;
  struct sc_salvage_loss *v = realloc (sv->losses,
                                       (sv->nlosses + 1) * sizeof *v);
  if (!v)
    return -ENOMEM;
  sv->losses = v;
  v[sv->nlosses++] = (struct sc_salvage_loss) {
    .first_seq = l->first_seq, .offset = l->offset,
    .last_seq = l->last_seq == SC_JOURNAL_LOST_TO_END ? SC_SALVAGE_TO_END
                                                      : l->last_seq,
  };
  snprintf (v[sv->nlosses - 1].why, sizeof v->why, "%s", l->why);
  return 0;
}

/* The snapshot a record concerns by id (0: none). */
static uint64_t
record_snapshot (const struct sc_rec_hdr *h)
{
  const void *r = h;
  switch (h->type) {
  case SC_REC_SNAP_DELETE: return ((const struct sc_rec_snap_delete *) r)->id;
  case SC_REC_SNAP_INVALID:
    return ((const struct sc_rec_snap_invalid *) r)->id;
  case SC_REC_SNAP_SET: return ((const struct sc_rec_snap_set *) r)->id;
  case SC_REC_DISCARD: return ((const struct sc_rec_discard *) r)->id;
  case SC_REC_SNAP_UUID: return ((const struct sc_rec_snap_uuid *) r)->id;
  case SC_REC_KEEP_CHECKPOINT:
    return ((const struct sc_rec_keep_checkpoint *) r)->id;
  case SC_REC_CLONE_BASE: return ((const struct sc_rec_clone_base *) r)->id;
  case SC_REC_CLONE_DATA: return ((const struct sc_rec_clone_data *) r)->id;
  case SC_REC_REVERT: return ((const struct sc_rec_revert *) r)->target_id;
  case SC_REC_REVERT_RATE:
    return ((const struct sc_rec_revert_rate *) r)->target_id;
  case SC_REC_VOID: return ((const struct sc_rec_void *) r)->id;
  }
  return 0;
}

static int
salvage_apply (void *opaque, const struct sc_rec_hdr *h, uint64_t durable,
               char *err, size_t errlen)
{
  struct sc_diff *d = opaque;
  struct sc_salvage_report *sv = d->salv;
  if (sv->nlosses_total) {
    uint64_t id = record_snapshot (h);
    if (id && !snap_by_id (d, id, NULL) && !clone_by_id (d, id)) {
      sv->skipped++;            /* its snapshot went with lost records */
      return 0;
    }
    if ((h->type == SC_REC_REVERT_DONE || h->type == SC_REC_REVERT_END ||
         h->type == SC_REC_REVERT_RATE) &&
        !sc_diff_revert_active (d)) {
      sv->skipped++;            /* its revert went with lost records */
      return 0;
    }
    if (h->type == SC_REC_COPY || h->type == SC_REC_COPY_SUMS) {
      uint32_t epoch = h->type == SC_REC_COPY
        ? ((const struct sc_rec_copy *) (const void *) h)->epoch
        : ((const struct sc_rec_copy_sums *) (const void *) h)->epoch;
      if (epoch > d->epoch && epoch < UINT32_MAX)
        d->epoch = epoch;       /* lost creates had begun its epoch */
    }
    if (h->type == SC_REC_SNAP_CREATE) {
      /* Its name is that of a snapshot listed at a loss: a lost record
       * deleted that one (it would be marked invalid anyway). */
      const struct sc_rec_snap_create *c = (const void *) h;
      char name[SC_NAME_MAX + 1] = "";
      size_t pos;
      memcpy (name, c->name, c->name_len < SC_NAME_MAX ? c->name_len
                                                       : SC_NAME_MAX);
      struct snap *old = snap_by_name (d, name);
      if (old && old->info.id < sv->suspect_below &&
          snap_by_id (d, old->info.id, &pos)) {
        diff_say ("salvage: snapshot %s (id %" PRIu64 ") was deleted by a "
                  "lost record: journal record %" PRIu64 " creates a "
                  "snapshot of that name", name, old->info.id, h->seq);
        sv->superseded++;
        snap_remove_at (d, pos);
      }
    }
    if (h->type == SC_REC_SNAP_DROP) {
      const struct sc_rec_snap_drop *c = (const void *) h;
      if (c->total > d->drops_total + 1 && c->total <= UINT64_MAX / 2)
        d->drops_total = c->total - 1;  /* lost drops came before it */
    }
  }
  /* A record that checks out but makes no sense fails here, and the
   * journal reports it lost, as if damaged. */
  return apply_record (d, h, durable, err, errlen);
}

/* Every snapshot listed when records were lost: not proven intact. */
static int
salvage_distrust (struct sc_diff *d, struct replay_out *o)
{
  struct sc_salvage_report *sv = d->salv;
  if (sv->nlosses_total && sc_diff_revert_active (d)) {
    struct snap *t = snap_by_id (d, d->revert.target_id, NULL);
    snprintf (sv->revert_target, sizeof sv->revert_target, "%s",
              t ? t->info.name : "(unknown)");
    revert_salvaged (d);        /* a lost record may have been its end */
  }
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    if (s->info.id >= sv->suspect_below ||
        s->info.invalid_reason != SC_VALID)
      continue;
    uint64_t *v = realloc (sv->marked, (sv->nmarked + 1) * sizeof *v);
    if (!v)
      return -ENOMEM;
    sv->marked = v;
    v[sv->nmarked++] = s->info.id;
    snap_set_invalid (d, s, SC_INVALID_SALVAGED, 0, 0);
    o->invalidated = true;
  }
  return clone_salvage_distrust (d, sv->suspect_below);
}

/* ---- after the records -------------------------------------------------- */

struct mark_ctx { struct sc_diff *d; uint64_t max_slot; uint64_t bad; };

static bool
mark_slot (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct mark_ctx *m = opaque;
  if (!sc_copy_has_slot (c) || m->bad)
    return true;
  if (c->slot >= m->max_slot || sc_alloc_mark (&m->d->alloc, c->slot) < 0)
    m->bad = c->slot;
  return true;
}

/* Rebuild the allocator from the journal chain and the kept copies. */
static int
build_alloc (struct sc_diff *d, const uint64_t *chain, size_t nchain,
             uint64_t max_slot, char *err, size_t errlen)
{
  sc_alloc_init (&d->alloc, d->first_slot);
  for (size_t i = 0; i < nchain; i++) {
    int r = sc_alloc_mark (&d->alloc, chain[i]);
    if (r < 0)
      return r == -ENOMEM ? r :
        CORRUPT ("journal slot %" PRIu64 " is used twice", chain[i]);
  }
  struct mark_ctx m = { .d = d, .max_slot = max_slot };
  int r = copymap_visit (d, mark_slot, &m);
  if (r < 0)
    return r;                   /* slots left free would be given twice */
  if (!m.bad)
    (void) clone_mark_slots (d, max_slot, &m.bad);
  if (m.bad)
    return CORRUPT ("data slot %" PRIu64 " (offset %" PRIu64 ") is outside "
                    "the file or used twice", m.bad,
                    m.bad * d->chunk_size);
  return 0;
}

/* Auto-release snapshots found at open belong to a session that is gone
 * (the server that made them stopped, or this is an offline open): drop
 * them, with their copies.  Their ids go to o->released so a journal
 * continued in place can record the deletes. */
static int
drop_released (struct sc_diff *d, struct replay_out *o)
{
  for (size_t i = 0; i < d->nsnaps; ) {
    if (!d->snaps[i]->info.auto_release) {
      i++;
      continue;
    }
    uint64_t *v = realloc (o->released, (o->nreleased + 1) * sizeof *v);
    if (!v)
      return -ENOMEM;
    o->released = v;
    v[o->nreleased++] = d->snaps[i]->info.id;
    if (sc_debug)
      sc_debug ("snapshot %s (id %" PRIu64 ") was auto-release and its "
                "session is gone: deleting it", d->snaps[i]->info.name,
                d->snaps[i]->info.id);
    snap_remove_at (d, i);
  }
  return 0;
}

/* Snapshots the previous session may have left wrong: all of them after
 * a failed metadata write, or after an unclean volatile session. */
static void
distrust (struct sc_diff *d, struct replay_out *o)
{
  uint32_t why =
    d->sb.flags & SC_SB_FAILED ? SC_INVALID_METADATA
    : (d->sb.flags & (SC_SB_VOLATILE | SC_SB_CLEAN)) == SC_SB_VOLATILE
      ? SC_INVALID_VOLATILE : SC_VALID;
  for (size_t i = 0; why && i < d->nsnaps; i++)
    if (d->snaps[i]->info.invalid_reason == SC_VALID) {
      snap_set_invalid (d, d->snaps[i], why, 0, 0);
      o->invalidated = true;
    }
}

/* The records, then the unsure copies; the journal must not be empty, and
 * must end where a clean close said it does. */
static int
replay_journal (struct sc_diff *d, uint64_t max_slot, struct replay_out *o,
                char *err, size_t errlen)
{
  /* After a clean close everything is durable; after an unclean volatile
   * session no snapshot is trusted anyway. */
  d->verify_tail = !(d->sb.flags & (SC_SB_CLEAN | SC_SB_VOLATILE));
  uint64_t durable = d->sb.flags & SC_SB_CLEAN ? d->sb.clean_seq - 1 : 0;
  /* An unclean volatile session never synced: its journal may end in
   * any state, and none of its snapshots is trusted anyway. */
  unsigned flags = d->sb.flags & SC_SB_CLEAN ? SC_JOURNAL_CLEAN
                   : d->sb.flags & SC_SB_VOLATILE ? SC_JOURNAL_TORN_ANY : 0;
  struct sc_journal_marks marks;
  int r = sc_journal_replay (d->fd, d->chunk_size,
                             sc_journal_seed (d->sb.uuid, d->sb.journal_nonce),
                             d->sb.journal_head, d->sb.journal_seq, max_slot,
                             flags, d->salv ? salvage_apply : apply_record,
                             d->salv ? salvage_lost : NULL, d, &o->chain,
                             &o->nchain, &o->end_pos, &d->replayed_records,
                             &o->end_seq, &durable, &marks, err, errlen);
  if (r == 0)
    r = replay_order_flush (d, err, errlen);
  replay_order_free (d);
  if (r < 0) {
    d->journal_damaged = r == -EINVAL;
    return r;
  }
  if (marks.count)
    diff_say ("journal record %" PRIu64 " (offset %" PRIu64 ") is a "
              "damaged commit marker%s: a marker holds no state, so replay "
              "went past it, trusting nothing it said", marks.first_seq,
              marks.first_offset, marks.count > 1 ? " (and others)" : "");
  if ((r = verify_unsure (d, durable)) < 0) {
    snprintf (err, errlen, "reading copies at the end of the journal: %s",
              strerror (-r));
    return r;
  }
  if ((r = clone_replay_end (d, durable, err, errlen)) < 0)
    return r;
  if (d->salv && d->salv->nlosses_total && d->epoch == 0 &&
      d->replayed_records)
    d->epoch = 1;               /* the state record was lost */
  d->journal_damaged = true;    /* if one of these fails */
  if (d->replayed_records == 0 || d->epoch == 0)
    return CORRUPT ("the journal at slot %" PRIu64 " (offset %" PRIu64
                    ") is empty or damaged at its start",
                    d->sb.journal_head, d->sb.journal_head * d->chunk_size);
  if ((d->sb.flags & SC_SB_CLEAN) && o->end_seq != d->sb.clean_seq &&
      !d->salv)
    return CORRUPT ("the diff area was closed cleanly at journal record %"
                    PRIu64 ", but the journal ends at record %" PRIu64
                    " (slot %" PRIu64 ", offset %" PRIu64 ")",
                    d->sb.clean_seq, o->end_seq, o->chain[o->nchain - 1],
                    o->chain[o->nchain - 1] * d->chunk_size + o->end_pos);
  d->journal_damaged = false;
  return 0;
}

/* The message of a damaged diff area: "damaged or foreign diff area: "
 * before what is wrong. */
static int
damaged (int r, char *err, size_t errlen)
{
  char tmp[512];
  snprintf (tmp, sizeof tmp, "%s", err);
  snprintf (err, errlen, "damaged or foreign diff area: %s", tmp);
  return r;
}

int
replay_run (struct sc_diff *d, uint64_t max_slot, struct replay_out *o,
            char *err, size_t errlen)
{
  d->epoch = 0;
  d->next_id = 0;
  d->replay_max_slot = max_slot;
  int r = replay_journal (d, max_slot, o, err, errlen);
  /* A lookup of the map that failed answered "none": the replay is not
   * to be trusted, whatever it returned. */
  int scratch = d->pc ? sc_pc_error (d->pc) : 0;
  if (!scratch)
    scratch = sc_index_error (&d->index);
  if (scratch) {                /* not the file's fault */
    snprintf (err, errlen, SC_DIFF_SCRATCH_FAILED ": %s",
              strerror (scratch));
    return r < 0 ? r : -scratch;
  }
  if (r == -ENOMEM || r == -EBUSY)      /* not the file's fault */
    snprintf (err, errlen, "%s", r == -EBUSY
              ? "the cache of the copy map's checksums is full of pages "
                "waiting for disk space (its scratch file's file system "
                "is full)" : strerror (ENOMEM));
  if (r == -EBUSY)
    return r;
  if (r < 0)
    return r == -ENOMEM ? r : damaged (r, err, errlen);
  if (d->salv && (r = salvage_distrust (d, o)) < 0) {
    snprintf (err, errlen, "%s", strerror (-r));
    return r;
  }
  distrust (d, o);
  revert_replayed (d);          /* before gc: its target may be invalid */
  if ((r = drop_released (d, o)) < 0 || (r = gc_run (d, false)) < 0) {
    snprintf (err, errlen, "%s", strerror (-r));
    return r;
  }
  d->replayed_slots = o->nchain;
  r = build_alloc (d, o->chain, o->nchain, max_slot, err, errlen);
  if (r == -ENOMEM)
    snprintf (err, errlen, "%s", strerror (-r));
  else if (r < 0)
    return damaged (r, err, errlen);
  return r;
}
