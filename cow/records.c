/* shadowcopy: the journal records of the diff area, encoded.
 *
 * Each record type (cow/format.h) is encoded here and nowhere else, for
 * the live journal and for checkpoints alike; replay.c decodes them.
 * Every encoder zeroes its buffer first, so reserved fields and padding
 * are zero.
 */
#include <config.h>

#include <string.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"

/* Declare `var`, a record of struct `tag` in buf, zeroed, of type `t`. */
#define REC(tag, var, buf, t) \
  struct tag *var = memset (buf, 0, sizeof *var); \
  var->h.type = t

size_t
rec_snapshot (void *buf, const struct sc_snapshot_info *s)
{
  size_t name_len = strlen (s->name);
  size_t len = sc_rec_padded (sizeof (struct sc_rec_snap_create) + name_len);
  memset (buf, 0, len);
  REC (sc_rec_snap_create, r, buf, SC_REC_SNAP_CREATE);
  r->id = s->id;
  r->epoch = s->epoch;
  r->ctime_ns = s->ctime_ns;
  r->volume_size = s->volume_size;
  r->flags = (s->auto_release ? SC_SNAP_F_AUTO_RELEASE : 0) |
             (s->checkpoint ? SC_SNAP_F_CHECKPOINT : 0) |
             (s->clone ? SC_SNAP_F_CLONE : 0);
  r->name_len = (uint16_t) name_len;
  memcpy (r->name, s->name, name_len);
  return len;
}

size_t
rec_snapshot_set (void *buf, const struct sc_snapshot_info *s)
{
  REC (sc_rec_snap_set, r, buf, SC_REC_SNAP_SET);
  r->id = s->id;
  memcpy (r->set_id, s->set_id, sizeof r->set_id);
  return sizeof *r;
}

size_t
rec_invalid (void *buf, const struct sc_snapshot_info *s)
{
  REC (sc_rec_snap_invalid, r, buf, SC_REC_SNAP_INVALID);
  r->id = s->id;
  r->reason = s->invalid_reason;
  r->err = s->invalid_errno;
  r->chunk = s->invalid_chunk;
  return sizeof *r;
}

size_t
rec_delete (void *buf, uint64_t id)
{
  REC (sc_rec_snap_delete, r, buf, SC_REC_SNAP_DELETE);
  r->id = id;
  return sizeof *r;
}

size_t
rec_state (void *buf, uint32_t epoch, uint64_t next_id)
{
  REC (sc_rec_state, r, buf, SC_REC_STATE);
  r->epoch = epoch;
  r->next_snapshot_id = next_id;
  return sizeof *r;
}

size_t
rec_copy (void *buf, uint64_t chunk, const struct sc_copy *c)
{
  REC (sc_rec_copy, r, buf, SC_REC_COPY);
  r->chunk = chunk;
  r->epoch = c->epoch;
  r->flags = c->slot == SC_SLOT_ZERO ? SC_COPY_F_ZERO
             : c->slot == SC_SLOT_MARK ? SC_COPY_F_MARK : 0;
  r->slot = sc_copy_has_slot (c) ? c->slot : 0;
  r->data_crc = sc_copy_has_slot (c) ? c->crc : 0;
  return sizeof *r;
}

size_t
rec_copy_sums (void *buf, uint64_t chunk, const struct sc_copy *c,
               const uint32_t *sums, uint32_t nsums)
{
  size_t len = sc_rec_padded (sizeof (struct sc_rec_copy_sums)
                              + nsums * sizeof *sums);
  memset (buf, 0, len);
  REC (sc_rec_copy_sums, r, buf, SC_REC_COPY_SUMS);
  r->chunk = chunk;
  r->epoch = c->epoch;
  r->nsums = (uint16_t) nsums;
  r->slot = c->slot;
  memcpy (r->sums, sums, nsums * sizeof *sums);
  return len;
}

size_t
rec_drop (void *buf, const struct sc_drop_info *di, uint64_t total)
{
  size_t name_len = strlen (di->name);
  size_t len = sc_rec_padded (sizeof (struct sc_rec_snap_drop) + name_len);
  memset (buf, 0, len);
  REC (sc_rec_snap_drop, r, buf, SC_REC_SNAP_DROP);
  r->id = di->id;
  r->ctime_ns = di->ctime_ns;
  r->drop_ns = di->drop_ns;
  r->total = total;
  r->reason = (uint16_t) di->reason;
  r->name_len = (uint16_t) name_len;
  memcpy (r->name, di->name, name_len);
  return len;
}

size_t
rec_limit (void *buf, uint64_t max_bytes)
{
  REC (sc_rec_limit, r, buf, SC_REC_LIMIT);
  r->max_bytes = max_bytes;
  return sizeof *r;
}

size_t
rec_discard (void *buf, uint64_t id, uint64_t first, uint64_t count)
{
  REC (sc_rec_discard, r, buf, SC_REC_DISCARD);
  r->id = id;
  r->first = first;
  r->count = count;
  return sizeof *r;
}

size_t
rec_snapshot_uuid (void *buf, const struct sc_snapshot_info *s)
{
  REC (sc_rec_snap_uuid, r, buf, SC_REC_SNAP_UUID);
  r->id = s->id;
  memcpy (r->uuid, s->uuid, sizeof r->uuid);
  return sizeof *r;
}

size_t
rec_keep_checkpoint (void *buf, uint64_t id)
{
  REC (sc_rec_keep_checkpoint, r, buf, SC_REC_KEEP_CHECKPOINT);
  r->id = id;
  return sizeof *r;
}

size_t
rec_clone_base (void *buf, uint64_t id, uint64_t base_id)
{
  REC (sc_rec_clone_base, r, buf, SC_REC_CLONE_BASE);
  r->id = id;
  r->base_id = base_id;
  return sizeof *r;
}

/* slot CLONE_ZERO: the chunk reads as zeros (no slot, no sums). */
size_t
rec_clone_data (void *buf, uint64_t id, uint64_t chunk, uint64_t slot,
                const uint32_t *sums, uint32_t nsums)
{
  bool zero = slot == CLONE_ZERO;
  size_t len = sc_rec_padded (sizeof (struct sc_rec_clone_data)
                              + (zero ? 0 : nsums * sizeof *sums));
  memset (buf, 0, len);
  REC (sc_rec_clone_data, r, buf, SC_REC_CLONE_DATA);
  r->id = id;
  r->chunk = chunk;
  r->flags = zero ? SC_CLONE_F_ZERO : 0;
  r->nsums = zero ? 0 : (uint16_t) nsums;
  r->slot = zero ? 0 : slot;
  if (!zero)
    memcpy (r->sums, sums, nsums * sizeof *sums);
  return len;
}

/* A dropped copy's, or (x->clone) clone chunk's, VOID record. */
size_t
rec_void (void *buf, const struct dropped *x)
{
  REC (sc_rec_void, r, buf, SC_REC_VOID);
  r->seq = x->seq;
  r->id = x->id;
  r->chunk = x->chunk;
  r->slot = x->slot;
  r->epoch = x->epoch;
  r->flags = x->clone ? SC_VOID_F_CLONE : 0;
  return sizeof *r;
}

size_t
rec_revert (void *buf, const struct revert *rv)
{
  REC (sc_rec_revert, r, buf, SC_REC_REVERT);
  r->target_id = rv->target_id;
  r->saved_id = rv->saved_id;
  r->start_epoch = rv->start_epoch;
  r->rate = rv->rate;
  return sizeof *r;
}

size_t
rec_revert_done (void *buf, uint64_t first, uint64_t count)
{
  REC (sc_rec_revert_done, r, buf, SC_REC_REVERT_DONE);
  r->first = first;
  r->count = count;
  return sizeof *r;
}

size_t
rec_revert_end (void *buf, uint64_t target_id)
{
  REC (sc_rec_revert_end, r, buf, SC_REC_REVERT_END);
  r->target_id = target_id;
  return sizeof *r;
}

size_t
rec_revert_rate (void *buf, uint64_t target_id, uint64_t rate)
{
  REC (sc_rec_revert_rate, r, buf, SC_REC_REVERT_RATE);
  r->target_id = target_id;
  r->rate = rate;
  return sizeof *r;
}

int
rec_append_snapshot (struct sc_journal *j, const struct sc_snapshot_info *s,
                     uint64_t *seq)
{
  uint8_t rec[SC_REC_MAX];
  int r = sc_journal_append (j, rec, rec_snapshot (rec, s), seq);
  if (r == 0)
    r = sc_journal_append (j, rec, rec_snapshot_uuid (rec, s), seq);
  if (r == 0 && s->in_set)
    r = sc_journal_append (j, rec, rec_snapshot_set (rec, s), seq);
  if (r == 0 && s->clone)
    r = sc_journal_append (j, rec, rec_clone_base (rec, s->id, s->base_id),
                           seq);
  return r;
}
