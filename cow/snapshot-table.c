/* shadowcopy: the snapshot table of the diff area.
 *
 * Listed snapshots are kept oldest first.  Ids and epochs both grow with
 * each create, so the table is sorted by both and every lookup but by
 * name is a binary search.  valid[] holds the epochs of the snapshots
 * that new writes must still copy for, ascending: the copy map's hot
 * query (copymap_needs_copy) searches it; cvalid[] those of the valid
 * checkpoints, for which new writes leave a data-less mark.  Deleted snapshots stay in the
 * table, unlisted, while their copies must be kept (see snap_keeps_copies).
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/crc32c.h"
#include "cow/diffarea-internal.h"
#include "cow/fault.h"
#include "cow/search.h"

struct id_key { struct snap *const *snaps; uint64_t id; };

static bool
id_before (const void *ctx, size_t i)
{
  const struct id_key *k = ctx;
  return k->snaps[i]->info.id < k->id;
}

struct snap *
snap_by_id (struct sc_diff *d, uint64_t id, size_t *pos)
{
  struct id_key k = { d->snaps, id };
  size_t i = sc_partition_point (d->nsnaps, id_before, &k);
  if (i < d->nsnaps && d->snaps[i]->info.id == id) {
    if (pos)
      *pos = i;
    return d->snaps[i];
  }
  return NULL;
}

struct snap *
snap_by_name (struct sc_diff *d, const char *name)
{
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted && strcmp (d->snaps[i]->info.name, name) == 0)
      return d->snaps[i];
  return NULL;
}

struct epoch_key { struct snap *const *snaps; uint32_t epoch; };

static bool
snap_epoch_before (const void *ctx, size_t i)
{
  const struct epoch_key *k = ctx;
  return k->snaps[i]->info.epoch < k->epoch;
}

static size_t
snap_first_at (struct sc_diff *d, uint32_t e)
{
  struct epoch_key k = { d->snaps, e };
  return sc_partition_point (d->nsnaps, snap_epoch_before, &k);
}

struct snap *
snap_by_epoch (struct sc_diff *d, uint32_t epoch)
{
  size_t i = snap_first_at (d, epoch);
  return i < d->nsnaps && d->snaps[i]->info.epoch == epoch ? d->snaps[i]
                                                           : NULL;
}

struct epochs_key { const uint32_t *a; uint32_t e; };

static bool
epoch_before (const void *ctx, size_t i)
{
  const struct epochs_key *k = ctx;
  return k->a[i] < k->e;
}

size_t
epochs_lower_bound (const uint32_t *a, size_t n, uint32_t e)
{
  struct epochs_key k = { a, e };
  return sc_partition_point (n, epoch_before, &k);
}

static void
epochs_remove (uint32_t *a, size_t *n, uint32_t e)
{
  size_t i = epochs_lower_bound (a, *n, e);
  if (i < *n && a[i] == e) {
    memmove (&a[i], &a[i + 1], (*n - i - 1) * sizeof *a);
    (*n)--;
  }
}

static void
epochs_insert (uint32_t *a, size_t *n, uint32_t e)
{
  size_t i = epochs_lower_bound (a, *n, e);
  if (i < *n && a[i] == e)
    return;
  memmove (&a[i + 1], &a[i], (*n - i) * sizeof *a);
  a[i] = e;
  (*n)++;
}

/* The write path asks whether any snapshot (cow/copymap.c) or checkpoint
 * (cow/marks.c) is valid without the lock: a creation holds every write,
 * and a checkpoint kept from a snapshot was copied for until then.  The
 * checkpoints' count is stored first: a writer that reads a kept
 * snapshot gone from nvalid_hint (acquire) then reads its checkpoint in
 * ncvalid_hint, and marks the chunks it no longer copies. */
static void
hint_valid (struct sc_diff *d)
{
  __atomic_store_n (&d->ncvalid_hint, d->ncvalid, __ATOMIC_RELEASE);
  __atomic_store_n (&d->nvalid_hint, d->nvalid, __ATOMIC_RELEASE);
}

void
snap_unvalidate (struct sc_diff *d, struct snap *s)
{
  epochs_remove (d->valid, &d->nvalid, s->info.epoch);
  epochs_remove (d->cvalid, &d->ncvalid, s->info.epoch);
  hint_valid (d);
}

void
snap_make_checkpoint (struct sc_diff *d, struct snap *s)
{
  if (s->info.checkpoint)
    return;
  s->info.checkpoint = true;
  /* Kept to be the base of a later diff: it outlives the session that
   * made it, and the set it was taken in (delete --set takes the set's
   * snapshots, not it); replay does the same at KEEP_CHECKPOINT. */
  s->info.auto_release = false;
  s->info.in_set = false;
  if (s->info.invalid_reason != SC_VALID)
    return;
  epochs_remove (d->valid, &d->nvalid, s->info.epoch);
  epochs_insert (d->cvalid, &d->ncvalid, s->info.epoch);
  hint_valid (d);
}

/* CRC32C of (volume UUID, id, i) for each 4 bytes: stable across opens
 * and versions, distinct between volumes and ids; a version-8 UUID. */
void
snap_derive_uuid (const struct sc_diff *d, struct sc_snapshot_info *s)
{
  for (uint32_t i = 0; i < 4; i++) {
    uint8_t in[16 + 8 + 4];
    memcpy (in, d->sb.uuid, 16);
    memcpy (in + 16, &s->id, 8);
    memcpy (in + 24, &i, 4);
    uint32_t c = crc32c (0, in, sizeof in);
    memcpy (s->uuid + 4 * i, &c, 4);
  }
  s->uuid[6] = (uint8_t) ((s->uuid[6] & 0x0f) | 0x80);
  s->uuid[8] = (uint8_t) ((s->uuid[8] & 0x3f) | 0x80);
}

size_t
snap_listed_checkpoints (const struct sc_diff *d)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    n += !d->snaps[i]->deleted && d->snaps[i]->info.checkpoint;
  return n;
}

struct snap *
snap_oldest_checkpoint (struct sc_diff *d)
{
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted && d->snaps[i]->info.checkpoint)
      return d->snaps[i];
  return NULL;
}

int
snap_reserve (struct sc_diff *d)
{
  if (d->nsnaps < d->snaps_cap)
    return 0;
  int r = sc_fault ("snapshot-table");
  if (r < 0)
    return r;
  size_t cap = d->snaps_cap;
  struct snap **n = sc_array_room (d->snaps, &cap, d->nsnaps, sizeof *n, 16);
  if (!n)
    return -ENOMEM;
  d->snaps = n;
  uint32_t *v = realloc (d->valid, cap * sizeof *v);
  if (!v)
    return -ENOMEM;             /* snaps keeps its larger room: harmless */
  d->valid = v;
  v = realloc (d->cvalid, cap * sizeof *v);
  if (!v)
    return -ENOMEM;
  d->cvalid = v;
  d->snaps_cap = cap;
  return 0;
}

void
snap_push (struct sc_diff *d, struct snap *s)
{
  diff_frozen_check (d, "a snapshot listed");
  d->snaps[d->nsnaps++] = s;
  if (s->info.invalid_reason == SC_VALID && s->info.checkpoint)
    d->cvalid[d->ncvalid++] = s->info.epoch;
  else if (s->info.invalid_reason == SC_VALID)
    d->valid[d->nvalid++] = s->info.epoch;
  hint_valid (d);
}

void
snap_free (struct sc_diff *d, struct snap *s)
{
  if (s->ndisc && d->ndisc_snaps)
    d->ndisc_snaps--;
  d->ndisc_extents -= s->ndisc < d->ndisc_extents ? s->ndisc
                                                   : d->ndisc_extents;
  free (s->disc);
  free (s);
}

void
snap_remove_at (struct sc_diff *d, size_t pos)
{
  struct snap *s = d->snaps[pos];
  diff_frozen_check (d, "a snapshot removed");
  snap_unvalidate (d, s);
  memmove (&d->snaps[pos], &d->snaps[pos + 1],
           (d->nsnaps - pos - 1) * sizeof *d->snaps);
  d->nsnaps--;
  snap_free (d, s);
}

void
snap_set_invalid (struct sc_diff *d, struct snap *s, uint32_t reason,
                  int err, uint64_t chunk)
{
  if (s->info.invalid_reason != SC_VALID)
    return;
  diff_frozen_check (d, "a snapshot invalidated");
  s->info.invalid_reason = reason;
  s->info.invalid_errno = err;
  s->info.invalid_chunk = chunk;
  /* Its record, if any, is appended next: it gets this seq or a later
   * one (failure.c asks whether the invalidation is durable). */
  s->invalid_seq = d->have_journal ? sc_journal_next_seq (&d->journal) : 0;
  snap_unvalidate (d, s);
}

size_t
snap_listed (const struct sc_diff *d)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    n += !d->snaps[i]->deleted && !d->snaps[i]->info.checkpoint;
  return n;
}

int
snap_protected (const struct sc_diff *d, uint64_t id)
{
  if (revert_pins (d, id))
    return SC_PROTECTED_REVERT;
  return snap_has_clones (d, id) ? SC_PROTECTED_CLONES : 0;
}

/* A protected snapshot (a base of clones, a revert's target) is never
 * dropped by a policy: it is skipped. */
struct snap *
snap_oldest_listed (struct sc_diff *d)
{
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted && !d->snaps[i]->info.checkpoint &&
        !snap_protected (d, d->snaps[i]->info.id))
      return d->snaps[i];
  return NULL;
}
