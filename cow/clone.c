/* shadowcopy: writable clones: their table, chunk maps and records.
 *
 * A clone starts as its base snapshot and keeps every chunk written to
 * it in a slot of its own (redirect-on-write): a write puts the whole
 * chunk into a NEW slot, appends CLONE_DATA, and the slot it replaces is
 * freed only once that record is durable (clone_frees_durable, after a
 * commit).  So after any crash the journal names, for every chunk, a
 * slot that still holds what it named: the new one if its data reached
 * the disk, else (the record past the last durable point, replay drops
 * it after a reboot) the previous one, which nothing could reuse before.
 * In the same boot a record whose data fails its sums is damage, as for
 * copies: nothing that returned was lost.
 *
 * A clone's slots have sums entries (sums.c) with epoch 0, which no copy
 * has: a read verifies them like a copy's, and damage.c hands a failure
 * to clone_damage_found.  A clone is no epoch of the copy map: it is not
 * in d->snaps (whose epochs ascend), never in valid[] or cvalid[], and no
 * policy sees it; its base, which it reads through, keeps the copies and
 * cannot go while it has clones (snap_has_clones).
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
#include "cow/uuid.h"

/* A map entry CLONE_UNMAPPED says "not written: the base's view" (replay
 * restores it when an unsure record that first mapped a chunk is
 * dropped). */
#define EMPTY CLONE_EMPTY
#define has_slot clone_has_slot

/* ---- the chunk map: open addressing, linear probing, no removal -------- */

static struct clone_ent *
map_find (const struct clone *c, uint64_t chunk)
{
  if (!c->map_cap)
    return NULL;
  size_t mask = c->map_cap - 1;
  for (size_t i = (chunk * 0x9E3779B97F4A7C15ull) >> 20 & mask;;
       i = (i + 1) & mask) {
    if (c->map[i].chunk == chunk)
      return &c->map[i];
    if (c->map[i].chunk == EMPTY)
      return NULL;
  }
}

/* Set chunk's entry; the old slot is returned (CLONE_UNMAPPED if none). */
static uint64_t
map_put (struct clone *c, uint64_t chunk, uint64_t slot)
{
  size_t mask = c->map_cap - 1;
  size_t i = (chunk * 0x9E3779B97F4A7C15ull) >> 20 & mask;
  while (c->map[i].chunk != EMPTY && c->map[i].chunk != chunk)
    i = (i + 1) & mask;
  uint64_t old = c->map[i].chunk == EMPTY ? CLONE_UNMAPPED : c->map[i].slot;
  if (c->map[i].chunk == EMPTY)
    c->nmap++;
  c->map[i] = (struct clone_ent) { chunk, slot };
  return old;
}

void
clone_map_insert (struct clone *c, uint64_t chunk, uint64_t slot)
{
  uint64_t old = map_put (c, chunk, slot);
  c->nslots += (uint64_t) has_slot (slot) - (uint64_t) has_slot (old);
}

/* Room for one more chunk (at most 3/4 full). */
int
clone_map_reserve (struct clone *c)
{
  if ((c->nmap + 1) * 4 <= c->map_cap * 3)
    return 0;
  size_t cap = c->map_cap ? c->map_cap * 2 : 64;
  struct clone_ent *old = c->map;
  size_t oldcap = c->map_cap;
  c->map = malloc (cap * sizeof *c->map);
  if (!c->map) {
    c->map = old;
    return -ENOMEM;
  }
  for (size_t i = 0; i < cap; i++)
    c->map[i].chunk = EMPTY;
  c->map_cap = cap;
  c->nmap = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].chunk != EMPTY)
      (void) map_put (c, old[i].chunk, old[i].slot);
  free (old);
  return 0;
}

uint64_t
clone_map_get (const struct clone *c, uint64_t chunk)
{
  const struct clone_ent *e = map_find (c, chunk);
  return e ? e->slot : CLONE_UNMAPPED;
}

/* ---- the table ----------------------------------------------------------- */

struct clone *
clone_by_id (struct sc_diff *d, uint64_t id)
{
  for (size_t i = 0; i < d->nclones; i++)
    if (d->clones[i]->info.id == id)
      return d->clones[i];
  return NULL;
}

struct clone *
clone_by_name (struct sc_diff *d, const char *name)
{
  for (size_t i = 0; i < d->nclones; i++)
    if (!d->clones[i]->deleted && strcmp (d->clones[i]->info.name, name) == 0)
      return d->clones[i];
  return NULL;
}

bool
name_taken (struct sc_diff *d, const char *name)
{
  return snap_by_name (d, name) || clone_by_name (d, name);
}

bool
snap_has_clones (const struct sc_diff *d, uint64_t id)
{
  for (size_t i = 0; i < d->nclones; i++)
    if (d->clones[i]->info.base_id == id)
      return true;
  return false;
}

int
clones_reserve (struct sc_diff *d)
{
  struct clone **v = sc_array_room (d->clones, &d->clones_cap, d->nclones,
                                    sizeof *v, 4);
  if (!v)
    return -ENOMEM;
  d->clones = v;
  return 0;
}

static void
clone_free_one (struct clone *c)
{
  free (c->map);
  free (c);
}

/* Unlist clone c; with free_slots, its slots go to the allocator. */
void
clone_remove (struct sc_diff *d, struct clone *c, bool free_slots)
{
  for (size_t i = 0; i < c->map_cap; i++)
    if (c->map[i].chunk != EMPTY && has_slot (c->map[i].slot)) {
      sc_sums_clear (&d->sums, c->map[i].slot, c->map[i].chunk, 0);
      if (free_slots)
        gc_free_slot (d, c->map[i].slot);
    }
  for (size_t i = 0; i < d->nclones; i++)
    if (d->clones[i] == c) {
      memmove (&d->clones[i], &d->clones[i + 1],
               (d->nclones - i - 1) * sizeof *d->clones);
      d->nclones--;
      break;
    }
  clone_free_one (c);
}

void
clone_free_all (struct sc_diff *d)
{
  for (size_t i = 0; i < d->nclones; i++)
    clone_free_one (d->clones[i]);
  free (d->clones);
  free (d->cfree);
  free (d->cunsure);
}

uint64_t
clone_slots (const struct sc_diff *d)
{
  uint64_t n = 0;
  for (size_t i = 0; i < d->nclones; i++)
    n += d->clones[i]->nslots;
  return n + d->ncfree;
}

uint64_t
clone_records (const struct sc_diff *d)
{
  uint64_t n = 0;
  for (size_t i = 0; i < d->nclones; i++)
    n += d->clones[i]->nmap + 3;
  return n;
}

void
clone_info (struct sc_diff *d, const struct clone *c,
            struct sc_snapshot_info *out)
{
  *out = c->info;
  struct snap *b = snap_by_id (d, c->info.base_id, NULL);
  snprintf (out->base_name, sizeof out->base_name, "%s",
            b ? b->info.name : "");
  if (out->invalid_reason == SC_VALID && b &&
      b->info.invalid_reason != SC_VALID) {
    out->invalid_reason = b->info.invalid_reason;       /* it reads its */
    out->invalid_errno = b->info.invalid_errno;         /* base: not */
    out->invalid_chunk = b->info.invalid_chunk;         /* served */
  }
  out->used_bytes = c->nslots * d->chunk_size;
}

size_t
clone_list (struct sc_diff *d, struct sc_snapshot_info *v)
{
  size_t k = 0;
  for (size_t i = 0; i < d->nclones; i++)
    if (!d->clones[i]->deleted)
      clone_info (d, d->clones[i], &v[k++]);
  return k;
}

int
sc_diff_clone_slots (struct sc_diff *d, uint64_t id,
                     struct sc_clone_slot **out, size_t *n)
{
  LOCKED (d);
  const struct clone *c = clone_by_id (d, id);
  if (!c || c->deleted)
    return -ENOENT;
  struct sc_clone_slot *v = malloc ((c->nslots ? c->nslots : 1) * sizeof *v);
  if (!v)
    return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < c->map_cap && k < c->nslots; i++)
    if (c->map[i].chunk != EMPTY && has_slot (c->map[i].slot))
      v[k++] = (struct sc_clone_slot) { c->map[i].slot * d->chunk_size,
                                        c->map[i].chunk };
  *out = v;
  *n = k;
  return 0;
}

size_t
sc_diff_clone_names (struct sc_diff *d, uint64_t base_id, char *buf,
                     size_t len)
{
  LOCKED (d);
  size_t n = 0, at = 0;
  if (buf && len)
    buf[0] = '\0';
  for (size_t i = 0; i < d->nclones; i++) {
    const struct clone *c = d->clones[i];
    if (c->deleted || c->info.base_id != base_id)
      continue;
    if (buf && at < len)
      at += (size_t) snprintf (buf + at, len - at, "%s%s", n ? ", " : "",
                               c->info.name);
    n++;
  }
  return n;
}

/* ---- create --------------------------------------------------------------- */

/* Can `b` (looked up as `base`) be cloned?  Says why not into err. */
static int
base_ok (struct snap *b, const char *base, char *err, size_t errlen)
{
  if (!b) {
    snprintf (err, errlen, "no snapshot named %s", base);
    return -ENOENT;
  }
  if (b->info.checkpoint) {
    snprintf (err, errlen, "%s is a checkpoint: it keeps no data; clone a "
              "snapshot", base);
    return -EINVAL;
  }
  if (b->info.auto_release) {
    snprintf (err, errlen, "%s is an auto-release snapshot: it ends with "
              "its session; clone a persistent snapshot", base);
    return -EINVAL;
  }
  if (b->keeping) {
    snprintf (err, errlen, "snapshot %s is being kept as a checkpoint",
              base);
    return -EBUSY;
  }
  if (b->info.invalid_reason != SC_VALID) {
    snprintf (err, errlen, "snapshot %s is invalid (%s): it cannot be "
              "cloned", base, sc_invalid_reason_text (b->info.invalid_reason));
    return -EIO;
  }
  return 0;
}

static int
clone_check_names (struct sc_diff *d, const char *base, const char *name,
                   char *err, size_t errlen)
{
  if (!sc_snapshot_name_valid (name)) {
    snprintf (err, errlen, "bad clone name '%s': 1 to 128 of A-Z a-z 0-9 "
              ". _ : + -, not starting with '.', not \"live\"", name);
    return -EINVAL;
  }
  if (name_taken (d, name)) {
    snprintf (err, errlen, "a snapshot, checkpoint or clone named %s "
              "exists already", name);
    return -EEXIST;
  }
  if (clone_by_name (d, base)) {
    snprintf (err, errlen, "%s is a clone: clone a snapshot", base);
    return -EINVAL;
  }
  return 0;
}

int
sc_diff_clone_create (struct sc_diff *d, const char *base, const char *name,
                      struct sc_snapshot_info *out, char *err, size_t errlen)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  int r = d->have_journal ? diff_recover (d) : -EROFS;
  if (r < 0) {
    snprintf (err, errlen, "the diff area cannot record: %s", strerror (-r));
    return r;
  }
  if ((r = clone_check_names (d, base, name, err, errlen)) < 0)
    return r;
  struct snap *b = snap_by_name (d, base);
  if ((r = base_ok (b, base, err, errlen)) < 0)
    return r;
  if (d->next_id == UINT64_MAX)
    return -EOVERFLOW;
  struct clone *c = calloc (1, sizeof *c);
  if (!c || clones_reserve (d) < 0) {
    free (c);
    return -ENOMEM;
  }
  c->info.clone = true;
  c->based = true;
  c->info.id = d->next_id;
  c->info.epoch = b->info.epoch;
  c->info.base_id = b->info.id;
  c->info.volume_size = b->info.volume_size;
  c->info.ctime_ns = diff_now_ns ();
  snprintf (c->info.name, sizeof c->info.name, "%s", name);
  if (sc_uuid_random (c->info.uuid) < 0) {
    free (c);
    return -EAGAIN;
  }
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_snapshot (rec, &c->info));
  if (r == 0)
    r = txn_append (d, &t, rec, rec_snapshot_uuid (rec, &c->info));
  if (r == 0)
    r = txn_append (d, &t, rec, rec_clone_base (rec, c->info.id,
                                                c->info.base_id));
  if (r < 0) {
    free (c);
    return r;
  }
  d->clones[d->nclones++] = c;
  d->next_id++;
  struct sc_snapshot_info info;
  clone_info (d, c, &info);
  r = txn_commit (d, &t);
  if (r < 0)
    return r;
  if (out)
    *out = info;
  ckpt_maybe (d);
  return 0;
}

/* ---- I/O: pin, resolve, write ----------------------------------------- */

/* Is clone c servable?  Its base too must be valid. */
static int
clone_servable (struct sc_diff *d, const struct clone *c,
                struct sc_snapshot_info *info)
{
  if (c->deleted)
    return -ENOENT;
  if (info)
    clone_info (d, c, info);
  if (c->info.invalid_reason != SC_VALID)
    return -EIO;
  struct snap *b = snap_by_id (d, c->info.base_id, NULL);
  if (!b || b->info.invalid_reason != SC_VALID) {
    if (info && b)
      info->invalid_reason = b->info.invalid_reason;
    return -EIO;
  }
  return 0;
}

int
sc_diff_clone_get (struct sc_diff *d, uint64_t id,
                   struct sc_snapshot_info *info)
{
  LOCKED (d);
  struct clone *c = clone_by_id (d, id);
  if (!c)
    return -ENOENT;
  int r = clone_servable (d, c, info);
  if (r == 0)
    c->users++;
  return r;
}

void
sc_diff_clone_put (struct sc_diff *d, uint64_t id)
{
  LOCKED (d);
  struct clone *c = clone_by_id (d, id);
  if (c && c->users && --c->users == 0)
    pthread_cond_broadcast (&d->readers_done);
}

enum sc_where
sc_diff_clone_resolve (struct sc_diff *d, uint64_t id, uint64_t chunk,
                       uint64_t *offset)
{
  LOCKED (d);
  struct clone *c = clone_by_id (d, id);
  uint64_t slot = c ? clone_map_get (c, chunk) : CLONE_UNMAPPED;
  if (slot == CLONE_ZERO)
    return SC_WHERE_ZERO;
  if (slot == CLONE_UNMAPPED)
    return SC_WHERE_ORIGIN;
  *offset = slot * d->chunk_size;
  return SC_WHERE_DIFF;
}

void
clone_frees_durable (struct sc_diff *d)
{
  size_t k = 0;
  uint64_t durable = d->have_journal ? d->journal.durable_seq : 0;
  while (k < d->ncfree && d->cfree[k].seq <= durable) {
    gc_free_slot (d, d->cfree[k].slot);
    k++;
  }
  if (k == 0)
    return;
  memmove (d->cfree, d->cfree + k, (d->ncfree - k) * sizeof *d->cfree);
  d->ncfree -= k;
  gc_shrink_tail (d);
}

int
sc_diff_clone_slot_reserve (struct sc_diff *d, uint64_t id, uint64_t *offset)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  struct clone *c = clone_by_id (d, id);
  if (!c || c->deleted)
    return -ENOENT;
  if (!space_fits (d, d->max_bytes, 1) && d->ncfree) {
    /* Slots this clone's writes let go come back once their records are
     * durable. */
    int r = diff_commit (d, d->cfree[d->ncfree - 1].seq);
    if (r < 0)
      return r;
    clone_frees_durable (d);
  }
  if (!space_fits (d, d->max_bytes, 1)) {
    d->full_failures++;
    return -ENOSPC;             /* no policy makes room for a clone */
  }
  return space_take_slot (d, offset);
}

int
sc_diff_clone_map (struct sc_diff *d, uint64_t id, uint64_t chunk,
                   uint64_t offset, const uint32_t *sums, uint64_t *seq)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (!d->have_journal)
    return -EROFS;
  struct clone *c = clone_by_id (d, id);
  if (!c || c->deleted)
    return -ENOENT;
  uint64_t slot = offset == SC_COPY_ZERO ? CLONE_ZERO
                                         : offset / d->chunk_size;
  struct clone_free *f = sc_array_room (d->cfree, &d->cfree_cap, d->ncfree,
                                        sizeof *f, 16);
  if (!f)
    return -ENOMEM;
  d->cfree = f;
  int r = clone_map_reserve (c);
  if (r == 0 && has_slot (slot) &&
      (r = sc_sums_reserve (&d->sums, slot)) < 0 && sc_sums_error (&d->sums))
    r = 0;                      /* failed store: as copymap.c's copies */
  if (r < 0)
    return r;
  uint8_t rec[SC_REC_MAX];
  struct txn t;
  txn_begin (d, &t);
  r = txn_append (d, &t, rec, rec_clone_data (rec, id, chunk, slot, sums,
                                              d->sums.nsums));
  if (r < 0)
    return r;
  /* The new entry, then the old one cleared (sums.c: entries are
   * direct-mapped by slot, so the order no longer matters for room). */
  if (has_slot (slot))         /* fails only if the store has failed */
    (void) sc_sums_set (&d->sums, slot, chunk, 0, sums, false);
  uint64_t old = clone_map_get (c, chunk);
  if (has_slot (old) && old != slot) {
    sc_sums_clear (&d->sums, old, chunk, 0);
    d->cfree[d->ncfree++] = (struct clone_free) { old, t.seq };
  }
  clone_map_insert (c, chunk, slot);
  *seq = t.seq;
  return 0;
}

/* ---- delete ------------------------------------------------------------- */

int
clone_delete (struct sc_diff *d, struct clone *c)
{
  uint64_t id = c->info.id;
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  txn_begin (d, &t);
  int r = txn_append (d, &t, rec, rec_delete (rec, id));
  if (r < 0)
    return r;
  c->deleted = true;            /* no new I/O; a crash brings it back */
  r = diff_commit (d, t.seq);
  if (r < 0)
    return r;
  while ((c = clone_by_id (d, id)) && c->users) {
    pthread_cond_wait (&d->readers_done, &d->lock);
    diff_wait_ckpt (d);
  }
  if (c)
    clone_remove (d, c, true);
  gc_shrink_tail (d);
  pthread_cond_broadcast (&d->readers_done);    /* space came back */
  return 0;
}

/* ---- damage --------------------------------------------------------------- */

void
clone_damage_found (struct sc_diff *d, uint64_t slot,
                    const struct sc_sums_entry *e, uint32_t block,
                    struct sc_copy_verify *v)
{
  struct clone *c = NULL;
  struct sc_sums_entry cur;
  for (size_t i = 0; i < d->nclones && !c; i++)
    if (!d->clones[i]->deleted && clone_map_get (d->clones[i], e->chunk) == slot)
      c = d->clones[i];
  /* Rewritten (and the slot reused) while it was read: not damage. */
  if (!c || sc_sums_get (&d->sums, slot, &cur) <= 0 ||
      memcmp (cur.sums, e->sums, d->sums.nsums * sizeof cur.sums[0]) != 0)
    return;
  d->checksum_errors++;
  if (v) {
    v->damaged = true;
    v->block = block;
    snprintf (v->needed_by, sizeof v->needed_by, "%s", c->info.name);
  }
  if (c->info.invalid_reason != SC_VALID)
    return;
  c->info.invalid_reason = SC_INVALID_DAMAGED;
  c->info.invalid_chunk = e->chunk;
  d->invalidations++;
  diff_say ("clone %s (id %" PRIu64 ") is now damaged: its chunk %" PRIu64
            " in diff-area slot %" PRIu64 " (offset %" PRIu64 ") failed its "
            "checksum (block %u); it is no longer served", c->info.name,
            c->info.id, e->chunk, slot, slot * d->chunk_size, block);
  if (!d->have_journal || d->failed)
    return;
  uint8_t rec[SC_REC_MAX];
  uint64_t seq;
  int r = sc_journal_append (&d->journal, rec, rec_invalid (rec, &c->info),
                             &seq);
  if (r < 0)
    diff_fail (d, r);
  else
    (void) diff_commit (d, seq);
}
