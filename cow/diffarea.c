/* shadowcopy: the diff area: snapshots, copies, replay and checkpoints.
 *
 * Notes on the design
 *
 * All state lives in memory and is rebuilt at open by replaying the
 * journal: the snapshot list, the copy index and the slot allocator.  The
 * journal is the only truth on disk; nothing else needs to be kept in step.
 *
 * Which copies are kept is derived, not recorded: a copy of chunk c made in
 * epoch W holds what c was during epochs [P, W - 1], P being the epoch of
 * c's previous copy (0 for its first).  It is needed while a snapshot that
 * can be served (valid, or with reads in flight) has its epoch in that
 * range.  Deleting a snapshot records just its deletion and drops what is
 * no longer needed; replay drops the same copies, whatever the order in
 * which deletions happened.  A freed slot is reused only after the record
 * that freed it is durable, so replay never finds a slot claimed twice.
 *
 * A read-write open replays, then writes a checkpoint: a compact new
 * journal (state, snapshots, kept copies) with a fresh nonce, made current
 * by a superblock update.  So start-up reads at most the live state plus
 * what one session appended, and a torn tail of the old journal is left
 * behind with the old chain.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cow/alloc.h"
#include "cow/array.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/index.h"
#include "cow/io.h"
#include "cow/journal.h"
#include "cow/superblock.h"

struct extent { uint64_t first, count; };

struct snap {
  struct sc_snapshot_info info;
  unsigned readers;             /* pinned by sc_diff_snapshot_get */
  bool deleted;                 /* waiting for its readers to finish */
  bool dropped;                 /* deleted by a policy: removed (and its
                                   copies freed) by its last reader */
  bool pending;                 /* deleted, but its delete or drop record
                                   is not durable yet: copies kept */
  struct extent *disc;          /* discarded chunks, sorted, disjoint */
  size_t ndisc, disc_cap;
};

/* Must its copies be kept?  While it is valid and not (durably) deleted,
 * or while a read of it is in flight. */
static bool
snap_keeps_copies (const struct snap *s)
{
  return ((!s->deleted || s->pending) &&
          s->info.invalid_reason == SC_VALID) || s->readers;
}

struct sc_diff {
  pthread_mutex_t lock;
  pthread_cond_t readers_done;
  int fd;
  bool rdonly;
  struct sc_sb_disk sb;
  uint32_t chunk_size;
  uint64_t nchunks;             /* chunks of the origin */
  uint64_t first_slot;

  struct sc_alloc alloc;
  struct sc_index index;
  struct sc_journal journal;    /* read-write opens only */
  bool have_journal;
  bool volatile_mode;           /* durability=volatile */
  bool failed;                  /* a metadata write failed */

  struct snap **snaps;          /* listed, oldest first (= id, epoch order) */
  size_t nsnaps, snaps_cap;
  uint32_t *valid;              /* epochs of valid snapshots, ascending */
  size_t nvalid;

  uint32_t epoch;               /* the live volume's */
  uint64_t next_id;
  uint64_t replayed_records;
  size_t replayed_slots;        /* journal slots found by replay */
  bool verify_tail;             /* replay: check unsure copies' data */
  struct unsure *unsure;
  size_t nunsure, unsure_cap;

  /* Space management (see the "space" section). */
  uint64_t max_bytes;           /* 0: unbounded */
  bool max_recorded;            /* a LIMIT record exists */
  enum sc_on_full on_full;
  uint32_t max_snaps;
  uint64_t prealloc_end;        /* bytes of the file preallocated */
  struct sc_drop_info drops[SC_DROP_HISTORY];   /* a ring */
  uint64_t drops_total;         /* ever; drops[] holds the last ones */
  uint64_t full_failures;
  uint64_t space_waits;
  uint64_t invalidations;       /* this session */
  size_t ndisc_snaps;           /* snapshots with discarded chunks */
  uint64_t ndisc_extents;       /* their extents, all snapshots */
};

static void snap_free (struct sc_diff *d, struct snap *s);
static bool snap_needs (const struct snap *s, uint64_t chunk);
static struct snap *snap_by_epoch (struct sc_diff *d, uint32_t epoch);
static bool needed_in (struct sc_diff *d, uint32_t from, uint32_t to,
                       uint64_t chunk);
static int apply_space_record (struct sc_diff *d, const struct sc_rec_hdr *h,
                               char *err, size_t errlen);
static int ckpt_space (struct sc_diff *d, struct sc_journal *j);
static void free_slot (struct sc_diff *d, uint64_t slot);
static void shrink_tail (struct sc_diff *d);

#define LOCKED(d) \
  __attribute__((cleanup (unlock_ptr))) pthread_mutex_t *_lk = lock_ptr (d)
static inline pthread_mutex_t *
lock_ptr (struct sc_diff *d)
{
  pthread_mutex_lock (&d->lock);
  return &d->lock;
}
static inline void
unlock_ptr (pthread_mutex_t **m)
{
  pthread_mutex_unlock (*m);
}

/* ---- helpers -------------------------------------------------------- */

int
sc_origin_identify (int fd, const char *path, struct sc_origin_id *id)
{
  struct stat st;
  memset (id, 0, sizeof *id);
  if (fstat (fd, &st) == -1)
    return -errno;
  if (S_ISREG (st.st_mode)) {
    id->type = SC_ORIGIN_FILE;
    id->size = st.st_size;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
  }
  else if (S_ISBLK (st.st_mode)) {
    id->type = SC_ORIGIN_BLOCK;
    if (ioctl (fd, BLKGETSIZE64, &id->size) == -1)
      return -errno;
    id->dev = st.st_rdev;
  }
  else
    return -EINVAL;
  snprintf (id->path, sizeof id->path, "%s", path);
  return 0;
}

static uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static struct snap *
snap_by_id (struct sc_diff *d, uint64_t id, size_t *pos)
{
  size_t lo = 0, hi = d->nsnaps;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->snaps[mid]->info.id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < d->nsnaps && d->snaps[lo]->info.id == id) {
    if (pos)
      *pos = lo;
    return d->snaps[lo];
  }
  return NULL;
}

static struct snap *
snap_by_name (struct sc_diff *d, const char *name)
{
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted && strcmp (d->snaps[i]->info.name, name) == 0)
      return d->snaps[i];
  return NULL;
}

/* Index of the first element >= e in a sorted epoch array. */
static size_t
lower_bound (const uint32_t *a, size_t n, uint32_t e)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Is some epoch of a[] in [lo, hi]? */
static bool
any_in (const uint32_t *a, size_t n, uint32_t lo, uint32_t hi)
{
  size_t i = lower_bound (a, n, lo);
  return i < n && a[i] <= hi;
}

static void
valid_remove (struct sc_diff *d, uint32_t epoch)
{
  size_t i = lower_bound (d->valid, d->nvalid, epoch);
  if (i < d->nvalid && d->valid[i] == epoch) {
    memmove (&d->valid[i], &d->valid[i + 1],
             (d->nvalid - i - 1) * sizeof *d->valid);
    d->nvalid--;
  }
}

/* Snapshots are created in epoch order, so appending keeps both sorted. */
static int
snap_push (struct sc_diff *d, struct snap *s)
{
  if (d->nsnaps == d->snaps_cap) {
    size_t cap = d->snaps_cap ? d->snaps_cap * 2 : 16;
    struct snap **n = realloc (d->snaps, cap * sizeof *n);
    if (!n)
      return -ENOMEM;
    d->snaps = n;
    uint32_t *v = realloc (d->valid, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    d->valid = v;
    d->snaps_cap = cap;
  }
  d->snaps[d->nsnaps++] = s;
  if (s->info.invalid_reason == SC_VALID)
    d->valid[d->nvalid++] = s->info.epoch;
  return 0;
}

static void
snap_remove_at (struct sc_diff *d, size_t pos)
{
  struct snap *s = d->snaps[pos];
  valid_remove (d, s->info.epoch);
  memmove (&d->snaps[pos], &d->snaps[pos + 1],
           (d->nsnaps - pos - 1) * sizeof *d->snaps);
  d->nsnaps--;
  snap_free (d, s);
}

static void
snap_set_invalid (struct sc_diff *d, struct snap *s, uint32_t reason,
                  int err, uint64_t chunk)
{
  if (s->info.invalid_reason != SC_VALID)
    return;
  s->info.invalid_reason = reason;
  s->info.invalid_errno = err;
  s->info.invalid_chunk = chunk;
  valid_remove (d, s->info.epoch);
}

/* ---- garbage collection ------------------------------------------- */

struct gc {
  struct sc_diff *d;
  uint32_t *live;               /* epochs that may still be read */
  struct snap **snaps;          /* their snapshots */
  size_t nlive;
  bool free_slots;              /* return dropped slots to the allocator */
};

static bool
gc_keep (void *opaque, uint64_t chunk, uint32_t prev, const struct sc_copy *c)
{
  struct gc *g = opaque;
  if (!g->d->ndisc_snaps) {
    if (any_in (g->live, g->nlive, prev, c->epoch - 1))
      return true;
  }
  else
    for (size_t i = lower_bound (g->live, g->nlive, prev);
         i < g->nlive && g->live[i] <= c->epoch - 1; i++)
      if (snap_needs (g->snaps[i], chunk))
        return true;
  if (g->free_slots && c->slot != SC_SLOT_ZERO)
    free_slot (g->d, c->slot);
  return false;
}

/* Drop the copies no servable snapshot needs.  During open, before the
 * allocator is built, `free_slots` is false. */
static int
gc_run (struct sc_diff *d, bool free_slots)
{
  struct gc g = { .d = d, .free_slots = free_slots };
  g.live = malloc ((d->nsnaps + 1) * sizeof *g.live);
  g.snaps = malloc ((d->nsnaps + 1) * sizeof *g.snaps);
  if (!g.live || !g.snaps) {
    free (g.live);
    free (g.snaps);
    return -ENOMEM;
  }
  /* A deleted snapshot with a read in flight still needs its copies. */
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    if (snap_keeps_copies (s)) {
      g.snaps[g.nlive] = s;
      g.live[g.nlive++] = s->info.epoch;
    }
  }
  int r = sc_index_filter (&d->index, gc_keep, &g);
  free (g.live);
  free (g.snaps);
  if (free_slots)
    shrink_tail (d);
  return r;
}

/* ---- metadata failure ----------------------------------------------- */

/* A journal write failed: nothing more can be recorded, so no snapshot can
 * be trusted from now on.  Say so in the superblock if it still takes
 * writes, so the next open will not trust the journal's snapshots either.
 * Called with the lock held. */
static void
diff_fail (struct sc_diff *d, int err)
{
  if (d->failed)
    return;
  d->failed = true;
  void (*say) (const char *, ...) = sc_notice ? sc_notice : sc_debug;
  if (say)
    say ("a diff-area metadata write failed (%s): every snapshot is now "
         "invalid", strerror (-err));
  for (size_t i = 0; i < d->nsnaps; i++)
    snap_set_invalid (d, d->snaps[i], SC_INVALID_METADATA, -err, 0);
  d->sb.flags |= SC_SB_FAILED;
  d->sb.flags &= ~SC_SB_CLEAN;
  (void) sc_sb_store (d->fd, &d->sb);
}

/* Commit with the lock held; a failure fails the diff area. */
static int
commit_locked (struct sc_diff *d, uint64_t seq)
{
  int r = sc_journal_sync (&d->journal, seq, &d->lock);
  if (r < 0)
    diff_fail (d, r);
  return r;
}

static bool journal_too_long (const struct sc_diff *d, uint64_t records);
static int checkpoint (struct sc_diff *d, uint64_t first_seq,
                       const uint64_t *old_chain, size_t old_nchain);

/* After a commit: rewrite the journal if it has grown long (any kind of
 * record counts: copies, but also snapshot creates and deletes). */
static void
maybe_checkpoint (struct sc_diff *d)
{
  if (d->journal.syncing || !journal_too_long (d, d->journal.records))
    return;
  int r = checkpoint (d, 0, NULL, 0);
  if (r < 0 && sc_debug)
    sc_debug ("journal checkpoint: %s (the journal carries on)",
              strerror (-r));
}

/* Copy records past the last point the journal is known durable: their
 * data may not have reached the disk (one fdatasync covers a copy's data
 * and its record, and the origin is only written after it completes). */
struct unsure { uint64_t chunk; uint64_t seq; uint32_t epoch; };

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

/* Drop the unsure copies whose slot does not hold the data they name:
 * the crash came before their commit, so the origin still holds what
 * they were to preserve.  Never writes. */
static int
verify_unsure (struct sc_diff *d, uint64_t durable)
{
  uint8_t *buf = NULL;
  int r = 0;
  for (size_t i = 0; i < d->nunsure && r == 0; i++) {
    struct unsure *u = &d->unsure[i];
    struct sc_copy c;
    if (u->seq <= durable || !sc_index_find (&d->index, u->chunk, u->epoch, &c))
      continue;
    if (!buf && !(buf = malloc (d->chunk_size)))
      return -ENOMEM;
    r = sc_io_pread (d->fd, buf, d->chunk_size, c.slot * d->chunk_size);
    if (r == 0 && crc32c (0, buf, d->chunk_size) != c.crc) {
      sc_index_remove (&d->index, u->chunk, u->epoch);
      if (sc_debug)
        sc_debug ("replay: dropping the copy of chunk %" PRIu64 " (record %"
                  PRIu64 "): its data never reached the diff area",
                  u->chunk, u->seq);
    }
  }
  free (buf);
  free (d->unsure);
  d->unsure = NULL;
  d->nunsure = d->unsure_cap = 0;
  return r;
}

/* ---- replay --------------------------------------------------------- */

#define CORRUPT(...) (snprintf (err, errlen, __VA_ARGS__), -EINVAL)

static int
apply_record (void *opaque, const struct sc_rec_hdr *h, uint64_t durable,
              char *err, size_t errlen)
{
  struct sc_diff *d = opaque;
  if (d->nunsure && d->unsure[d->nunsure - 1].seq <= durable)
    d->nunsure = 0;             /* a commit marker vouched for them */
  switch (h->type) {
  case SC_REC_STATE: {
    const struct sc_rec_state *r = (const void *) h;
    if (r->epoch < d->epoch || r->next_snapshot_id < d->next_id)
      return CORRUPT ("journal record %" PRIu64 ": state goes backwards",
                      h->seq);
    d->epoch = r->epoch;
    d->next_id = r->next_snapshot_id;
    return 0;
  }
  case SC_REC_SNAP_CREATE: {
    const struct sc_rec_snap_create *r = (const void *) h;
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
        r->epoch == UINT32_MAX || snap_by_name (d, s->info.name)) {
      free (s);
      return CORRUPT ("journal record %" PRIu64 ": bad snapshot record "
                      "(name, id %" PRIu64 " or epoch %u)", h->seq, r->id,
                      r->epoch);
    }
    s->info.id = r->id;
    s->info.epoch = r->epoch;
    s->info.ctime_ns = r->ctime_ns;
    s->info.volume_size = r->volume_size;
    s->info.auto_release = r->flags & SC_SNAP_F_AUTO_RELEASE;
    int e = snap_push (d, s);
    if (e < 0) {
      free (s);
      return e;
    }
    d->next_id = r->id + 1;
    d->epoch = r->epoch + 1;
    return 0;
  }
  case SC_REC_SNAP_SET: {
    const struct sc_rec_snap_set *r = (const void *) h;
    struct snap *s = snap_by_id (d, r->id, NULL);
    if (!s || s->info.in_set)
      return CORRUPT ("journal record %" PRIu64 ": puts unknown snapshot "
                      "id %" PRIu64 " in a set", h->seq, r->id);
    s->info.in_set = true;
    memcpy (s->info.set_id, r->set_id, sizeof s->info.set_id);
    return 0;
  }
  case SC_REC_SNAP_DELETE: {
    const struct sc_rec_snap_delete *r = (const void *) h;
    size_t pos;
    if (!snap_by_id (d, r->id, &pos))
      return CORRUPT ("journal record %" PRIu64 ": deletes unknown "
                      "snapshot id %" PRIu64, h->seq, r->id);
    snap_remove_at (d, pos);
    return 0;
  }
  case SC_REC_SNAP_INVALID: {
    const struct sc_rec_snap_invalid *r = (const void *) h;
    struct snap *s = snap_by_id (d, r->id, NULL);
    if (!s || r->reason == SC_VALID)
      return CORRUPT ("journal record %" PRIu64 ": invalidates unknown "
                      "snapshot id %" PRIu64, h->seq, r->id);
    snap_set_invalid (d, s, r->reason, r->err, r->chunk);
    return 0;
  }
  case SC_REC_COPY: {
    const struct sc_rec_copy *r = (const void *) h;
    bool zero = r->flags & SC_COPY_F_ZERO;
    if (r->chunk >= d->nchunks || r->epoch == 0 || r->epoch > d->epoch ||
        (r->flags & ~SC_COPY_F_ZERO) || (zero && r->slot != 0) ||
        (zero && r->data_crc != 0) || r->reserved != 0 ||
        (!zero && r->slot < d->first_slot))
      return CORRUPT ("journal record %" PRIu64 ": bad copy record "
                      "(chunk %" PRIu64 ", epoch %u, slot %" PRIu64 ")",
                      h->seq, r->chunk, r->epoch, r->slot);
    struct sc_copy c = { .slot = zero ? SC_SLOT_ZERO : r->slot,
                         .epoch = r->epoch, .crc = zero ? 0 : r->data_crc };
    int e = sc_index_add (&d->index, r->chunk, c);
    if (e == -EEXIST)
      return CORRUPT ("journal record %" PRIu64 ": chunk %" PRIu64
                      " copied twice in epoch %u", h->seq, r->chunk,
                      r->epoch);
    if (e == 0 && !zero && d->verify_tail && h->seq > durable)
      e = unsure_push (d, r->chunk, r->epoch, h->seq);
    return e;
  }
  case SC_REC_SNAP_DROP:
  case SC_REC_LIMIT:
  case SC_REC_DISCARD:
    return apply_space_record (d, h, err, errlen);
  }
  return CORRUPT ("journal record %" PRIu64 ": unknown type %u", h->seq,
                  h->type);
}

struct mark_ctx { struct sc_diff *d; uint64_t max_slot; uint64_t bad; };

static bool
mark_slot (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct mark_ctx *m = opaque;
  if (c->slot == SC_SLOT_ZERO || m->bad)
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
  sc_index_filter (&d->index, mark_slot, &m);
  if (m.bad)
    return CORRUPT ("data slot %" PRIu64 " (offset %" PRIu64 ") is outside "
                    "the file or used twice", m.bad,
                    m.bad * d->chunk_size);
  return 0;
}

/* ---- checkpoint ----------------------------------------------------- */

struct ckpt { struct sc_journal *j; int err; };

static bool
ckpt_copy (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct ckpt *k = opaque;
  if (k->err)
    return true;
  struct sc_rec_copy r = {
    .h.type = SC_REC_COPY, .chunk = chunk, .epoch = c->epoch,
    .flags = c->slot == SC_SLOT_ZERO ? SC_COPY_F_ZERO : 0, .slot = c->slot,
    .data_crc = c->crc,
  };
  k->err = sc_journal_append (k->j, &r, sizeof r, NULL);
  if (!k->err && k->j->tail_len >= (1u << 20))
    k->err = sc_journal_write_tail (k->j);
  return true;
}

static int
append_snapshot (struct sc_journal *j, const struct sc_snapshot_info *s,
                 uint64_t *seq)
{
  uint8_t buf[SC_REC_MAX] = { 0 };
  struct sc_rec_snap_create *r = (void *) buf;
  size_t name_len = strlen (s->name);
  r->h.type = SC_REC_SNAP_CREATE;
  r->id = s->id;
  r->epoch = s->epoch;
  r->ctime_ns = s->ctime_ns;
  r->volume_size = s->volume_size;
  r->flags = s->auto_release ? SC_SNAP_F_AUTO_RELEASE : 0;
  r->name_len = (uint16_t) name_len;
  memcpy (r->name, s->name, name_len);
  int e = sc_journal_append (j, r, sc_rec_padded (sizeof *r + name_len), seq);
  if (e == 0 && s->in_set) {
    struct sc_rec_snap_set set = { .h.type = SC_REC_SNAP_SET, .id = s->id };
    memcpy (set.set_id, s->set_id, sizeof set.set_id);
    e = sc_journal_append (j, &set, sizeof set, seq);
  }
  return e;
}

/* Auto-release snapshots found at open belong to a session that is gone
 * (the server that made them stopped, or this is an offline open): drop
 * them, with their copies.  Their ids go to *ids (malloc'd) so a journal
 * continued in place can record the deletes. */
static int
drop_released (struct sc_diff *d, uint64_t **ids, size_t *n)
{
  *ids = NULL;
  *n = 0;
  for (size_t i = 0; i < d->nsnaps; ) {
    if (!d->snaps[i]->info.auto_release) {
      i++;
      continue;
    }
    uint64_t *v = realloc (*ids, (*n + 1) * sizeof *v);
    if (!v)
      return -ENOMEM;
    *ids = v;
    v[(*n)++] = d->snaps[i]->info.id;
    if (sc_debug)
      sc_debug ("snapshot %s (id %" PRIu64 ") was auto-release and its "
                "session is gone: deleting it", d->snaps[i]->info.name,
                d->snaps[i]->info.id);
    snap_remove_at (d, i);
  }
  return 0;
}

static int
append_invalid (struct sc_journal *j, const struct sc_snapshot_info *s,
                uint64_t *seq)
{
  struct sc_rec_snap_invalid r = {
    .h.type = SC_REC_SNAP_INVALID, .id = s->id, .reason = s->invalid_reason,
    .err = s->invalid_errno, .chunk = s->invalid_chunk,
  };
  return sc_journal_append (j, &r, sizeof r, seq);
}

/* The superblock flags of a read-write session. */
static uint32_t
session_flags (const struct sc_diff *d, uint32_t flags)
{
  flags &= ~(SC_SB_CLEAN | SC_SB_VOLATILE);
  return flags | (d->volatile_mode ? SC_SB_VOLATILE : 0);
}

/* Is the journal long enough, next to the live state, to rewrite it?
 * Keeps it under 3x the state plus 64k records, so start-up is bounded. */
static bool
journal_too_long (const struct sc_diff *d, uint64_t records)
{
  /* What a checkpoint writes: snapshots (and invalidations), the state,
   * the limit, discard extents, the drop history, and the copies. */
  uint64_t drops = d->drops_total < SC_DROP_HISTORY ? d->drops_total
                                                    : SC_DROP_HISTORY;
  uint64_t live = d->index.copies + 2 * d->nsnaps + 2 + d->ndisc_extents
                  + drops;
  return records > 2 * live + 65536;
}

/* Write the whole state as a new journal and switch the superblock to it;
 * then free the old journal's slots (old_chain at open, the current
 * journal's while serving).  Called with the lock held.  While serving it
 * takes the journal's leader role, so no commit writes the old journal
 * meanwhile, and every record appended to the old one is covered: the
 * state it describes is in memory, hence in the checkpoint.
 *
 * The I/O is done with the lock held: writers wait for the duration of
 * one checkpoint, which writes about 40 bytes per copy. */
static int
checkpoint (struct sc_diff *d, uint64_t first_seq, const uint64_t *old_chain,
            size_t old_nchain)
{
  bool online = d->have_journal;
  int r;
  if (online) {
    while (d->journal.syncing)
      pthread_cond_wait (&d->journal.synced, &d->lock);
    if (d->journal.error)
      return d->journal.error;
    d->journal.syncing = true;
    first_seq = d->journal.next_seq;
  }

  uint64_t nonce;
  struct sc_journal j;
  if (getrandom (&nonce, sizeof nonce, 0) != sizeof nonce) {
    r = -EIO;
    goto out_unlead;
  }
  r = sc_journal_start (&j, d->fd, d->chunk_size,
                        sc_journal_seed (d->sb.uuid, nonce), &d->alloc,
                        first_seq);
  if (r < 0)
    goto out_unlead;
  j.volatile_mode = d->volatile_mode;

  /* Snapshots first (replay checks they come in id and epoch order), then
   * the counters, then the copies (whose epochs the counters bound). */
  for (size_t i = 0; r == 0 && i < d->nsnaps; i++) {
    if (d->snaps[i]->deleted)
      continue;
    r = append_snapshot (&j, &d->snaps[i]->info, NULL);
    if (r == 0 && d->snaps[i]->info.invalid_reason != SC_VALID)
      r = append_invalid (&j, &d->snaps[i]->info, NULL);
  }
  struct sc_rec_state st = {
    .h.type = SC_REC_STATE, .epoch = d->epoch, .next_snapshot_id = d->next_id,
  };
  if (r == 0)
    r = sc_journal_append (&j, &st, sizeof st, NULL);
  if (r == 0)
    r = ckpt_space (d, &j);
  if (r == 0) {
    struct ckpt k = { .j = &j };
    sc_index_filter (&d->index, ckpt_copy, &k);
    r = k.err;
  }
  /* The superblock switches to this journal only once all of it is
   * durable, so a marker can say so already: replay then never needs to
   * doubt a checkpoint's records. */
  struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                .durable_seq = j.next_seq - 1 };
  if (r == 0)
    r = sc_journal_append (&j, &mark, sizeof mark, NULL);
  if (r == 0)
    r = sc_journal_write_tail (&j);
  if (r == 0)
    r = sc_io_fdatasync (d->fd);  /* even in volatile mode */
  if (r == 0) {
    struct sc_sb_disk sb = d->sb;
    sb.journal_head = j.head_slot;
    sb.journal_seq = j.head_seq;
    sb.journal_nonce = nonce;
    sb.flags = session_flags (d, sb.flags) & ~SC_SB_FAILED;
    r = sc_sb_store (d->fd, &sb);
    if (r == 0)
      d->sb = sb;
  }
  if (r < 0) {
    for (size_t i = 0; i < j.nchain; i++)
      sc_alloc_put (&d->alloc, j.chain[i]);
    sc_journal_free (&j);
    goto out_unlead;
  }
  j.durable_seq = j.next_seq - 1;

  if (online) {
    uint64_t *chain;
    size_t nchain;
    sc_journal_replace (&d->journal, &j, &chain, &nchain);
    for (size_t i = 0; i < nchain; i++)
      sc_alloc_put (&d->alloc, chain[i]);
    free (chain);
  }
  else {
    d->journal = j;
    d->have_journal = true;
    for (size_t i = 0; i < old_nchain; i++)
      sc_alloc_put (&d->alloc, old_chain[i]);
  }
  return 0;

 out_unlead:
  if (online) {
    d->journal.syncing = false;
    pthread_cond_broadcast (&d->journal.synced);
  }
  return r;
}

/* Continue the replayed journal in place (see sc_journal_resume), and
 * record the invalidations this open decided, if any. */
static int
resume (struct sc_diff *d, uint64_t *chain, size_t nchain, uint32_t end_pos,
        uint64_t end_seq, bool record_invalid)
{
  int r = sc_journal_resume (&d->journal, d->fd, d->chunk_size,
                             sc_journal_seed (d->sb.uuid,
                                              d->sb.journal_nonce),
                             &d->alloc, d->sb.journal_head,
                             d->sb.journal_seq, chain, nchain, end_pos,
                             end_seq, d->replayed_records);
  if (r < 0)
    return r;
  d->have_journal = true;
  d->journal.volatile_mode = d->volatile_mode;
  for (size_t i = 0; record_invalid && r == 0 && i < d->nsnaps; i++)
    if (d->snaps[i]->info.invalid_reason != SC_VALID)
      r = append_invalid (&d->journal, &d->snaps[i]->info, NULL);
  if (r == 0)
    r = sc_journal_sync (&d->journal, d->journal.next_seq - 1, &d->lock);
  if (r == 0)
    r = sc_io_fdatasync (d->fd);
  struct sc_sb_disk sb = d->sb;
  sb.flags = session_flags (d, sb.flags);
  if (record_invalid)
    sb.flags &= ~SC_SB_FAILED;
  if (r == 0)
    r = sc_sb_store (d->fd, &sb);
  if (r == 0)
    d->sb = sb;
  return r;
}

/* ---- open and close ------------------------------------------------- */

static int
format (struct sc_diff *d, const struct sc_origin_id *origin,
        uint32_t chunk_size)
{
  memset (&d->sb, 0, sizeof d->sb);
  if (getrandom (d->sb.uuid, sizeof d->sb.uuid, 0) != sizeof d->sb.uuid)
    return -EIO;
  d->sb.chunk_shift = (uint32_t) __builtin_ctz (chunk_size);
  d->sb.origin_size = origin->size;
  d->sb.origin_dev = origin->dev;
  d->sb.origin_ino = origin->ino;
  d->sb.origin_type = origin->type;
  d->sb.format_time_ns = now_ns ();
  snprintf (d->sb.origin_path, sizeof d->sb.origin_path, "%s", origin->path);
  d->epoch = 1;
  d->next_id = 1;
  return 0;
}

static int
check_origin (const struct sc_sb_disk *sb, const struct sc_origin_id *o,
              char *err, size_t errlen)
{
  if (sb->origin_size != o->size)
    return CORRUPT ("it belongs to a disk of %" PRIu64 " bytes (%s), but "
                    "%s has %" PRIu64 " bytes", sb->origin_size,
                    sb->origin_path, o->path, o->size);
  if (sb->origin_type != o->type || sb->origin_dev != o->dev ||
      sb->origin_ino != o->ino)
    return CORRUPT ("it belongs to another disk (%s, device %#" PRIx64
                    ", inode %" PRIu64 "), not %s (device %#" PRIx64
                    ", inode %" PRIu64 ")", sb->origin_path,
                    sb->origin_dev, sb->origin_ino, o->path, o->dev, o->ino);
  return 0;
}

static void
diff_free (struct sc_diff *d)
{
  if (d->have_journal)
    sc_journal_free (&d->journal);
  sc_index_free (&d->index);
  sc_alloc_free_all (&d->alloc);
  for (size_t i = 0; i < d->nsnaps; i++)
    snap_free (d, d->snaps[i]);
  free (d->snaps);
  free (d->valid);
  free (d->unsure);
  if (d->fd >= 0)
    close (d->fd);
  pthread_mutex_destroy (&d->lock);
  pthread_cond_destroy (&d->readers_done);
  free (d);
}

static int
fsync_parent (const char *path)
{
  char *dir = strdup (path);
  if (!dir)
    return -ENOMEM;
  char *slash = strrchr (dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    strcpy (dir, ".");
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (dir);
  if (fd == -1)
    return -errno;
  int r = fsync (fd) == -1 ? -errno : 0;
  close (fd);
  return r;
}

int
sc_diff_open (const char *path, unsigned flags,
              const struct sc_origin_id *origin, uint32_t chunk_size,
              struct sc_diff **out, char *err, size_t errlen)
{
  uint64_t *released = NULL;    /* auto-release snapshots dropped */
  size_t nreleased = 0;
  bool rdonly = flags & SC_DIFF_RDONLY;
  bool created = false;
  int r;

  if (chunk_size && (chunk_size < SC_CHUNK_SIZE_MIN ||
                     chunk_size > SC_CHUNK_SIZE_MAX ||
                     (chunk_size & (chunk_size - 1)))) {
    snprintf (err, errlen, "chunk size %" PRIu32 " is not a power of two "
              "from 4K to 1M", chunk_size);
    return -EINVAL;
  }
  if (origin && origin->size < (chunk_size ? chunk_size
                                           : SC_CHUNK_SIZE_MIN)) {
    snprintf (err, errlen, "%s: the disk (%" PRIu64 " bytes) is smaller "
              "than one chunk", origin->path, origin->size);
    return -EINVAL;
  }

  struct sc_diff *d = calloc (1, sizeof *d);
  if (!d)
    return -ENOMEM;
  d->fd = -1;
  d->rdonly = rdonly;
  d->max_snaps = SC_MAX_SNAPSHOTS_DEFAULT;
  pthread_mutex_init (&d->lock, NULL);
  pthread_cond_init (&d->readers_done, NULL);
  if ((r = sc_index_init (&d->index)) < 0)
    goto fail_msg;

  d->fd = open (path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (d->fd == -1 && errno == ENOENT && (flags & SC_DIFF_CREATE) && !rdonly) {
    if (!origin) {
      r = -EINVAL;
      snprintf (err, errlen, "%s: cannot format a diff area without its "
                "disk", path);
      goto fail;
    }
    d->fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = d->fd >= 0;
  }
  if (d->fd == -1) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (flock (d->fd, (rdonly ? LOCK_SH : LOCK_EX) |
                   (flags & SC_DIFF_NOWAIT ? LOCK_NB : 0)) == -1) {
    r = -errno;
    if (errno == EWOULDBLOCK)
      snprintf (err, errlen, "%s: the diff area is in use by another "
                "process (a running server?)", path);
    else
      snprintf (err, errlen, "%s: flock: %s", path, strerror (errno));
    goto fail;
  }

  uint64_t *chain = NULL;
  size_t nchain = 0;
  uint64_t end_seq = 1;
  uint32_t end_pos = 0;
  bool invalidated = false;     /* snapshots this open found untrustworthy */
  d->volatile_mode = flags & SC_DIFF_VOLATILE;
  if (created) {
    uint32_t cs = chunk_size ? chunk_size : SC_CHUNK_SIZE_DEFAULT;
    if (origin->size < cs) {
      r = -EINVAL;
      snprintf (err, errlen, "%s: the disk (%" PRIu64 " bytes) is smaller "
                "than one chunk (%" PRIu32 ")", origin->path, origin->size,
                cs);
      goto fail;
    }
    if ((r = format (d, origin, cs)) < 0)
      goto fail_msg;
  }
  else {
    if ((r = sc_sb_load (d->fd, &d->sb, err, errlen)) < 0)
      goto fail_prefix;
    if (origin && (r = check_origin (&d->sb, origin, err, errlen)) < 0)
      goto fail_prefix;
    if (chunk_size && chunk_size != 1u << d->sb.chunk_shift) {
      r = -EINVAL;
      snprintf (err, errlen, "%s: the diff area has chunk size %u; "
                "chunk-size=%" PRIu32 " was given", path,
                1u << d->sb.chunk_shift, chunk_size);
      goto fail;
    }
  }
  d->chunk_size = 1u << d->sb.chunk_shift;
  d->nchunks = (d->sb.origin_size + d->chunk_size - 1) / d->chunk_size;
  d->first_slot = (SC_SB_AREA + d->chunk_size - 1) / d->chunk_size;

  struct stat st;
  if (fstat (d->fd, &st) == -1) {
    r = -errno;
    goto fail_msg;
  }
  uint64_t max_slot = ((uint64_t) st.st_size + d->chunk_size - 1)
                      / d->chunk_size;
  d->prealloc_end = (uint64_t) st.st_size;

  if (!created) {
    d->epoch = 0;
    d->next_id = 0;
    /* After a clean close everything is durable; after an unclean
     * volatile session no snapshot is trusted anyway. */
    d->verify_tail = !(d->sb.flags & (SC_SB_CLEAN | SC_SB_VOLATILE));
    uint64_t durable = d->sb.flags & SC_SB_CLEAN ? d->sb.clean_seq - 1 : 0;
    r = sc_journal_replay (d->fd, d->chunk_size,
                           sc_journal_seed (d->sb.uuid, d->sb.journal_nonce),
                           d->sb.journal_head, d->sb.journal_seq, max_slot,
                           apply_record, d, &chain, &nchain, &end_pos,
                           &d->replayed_records, &end_seq, &durable,
                           err, errlen);
    if (r < 0)
      goto fail_prefix;
    if ((r = verify_unsure (d, durable)) < 0) {
      snprintf (err, errlen, "reading copies at the end of the journal: %s",
                strerror (-r));
      goto fail_chain_prefix;
    }
    if (d->replayed_records == 0 || d->epoch == 0) {
      free (chain);
      r = -EINVAL;
      snprintf (err, errlen, "the journal at slot %" PRIu64 " (offset %"
                PRIu64 ") is empty or damaged at its start",
                d->sb.journal_head, d->sb.journal_head * d->chunk_size);
      goto fail_prefix;
    }
    if ((d->sb.flags & SC_SB_CLEAN) && end_seq != d->sb.clean_seq) {
      r = CORRUPT ("the diff area was closed cleanly at journal record %"
                   PRIu64 ", but the journal ends at record %" PRIu64
                   " (slot %" PRIu64 ", offset %" PRIu64 ")",
                   d->sb.clean_seq, end_seq, chain[nchain - 1],
                   chain[nchain - 1] * d->chunk_size + end_pos);
      goto fail_chain_prefix;
    }
    /* Snapshots the previous session may have left wrong. */
    uint32_t distrust =
      d->sb.flags & SC_SB_FAILED ? SC_INVALID_METADATA
      : (d->sb.flags & (SC_SB_VOLATILE | SC_SB_CLEAN)) == SC_SB_VOLATILE
        ? SC_INVALID_VOLATILE : SC_VALID;
    for (size_t i = 0; distrust && i < d->nsnaps; i++)
      if (d->snaps[i]->info.invalid_reason == SC_VALID) {
        snap_set_invalid (d, d->snaps[i], distrust, 0, 0);
        invalidated = true;
      }
    if ((r = drop_released (d, &released, &nreleased)) < 0)
      goto fail_chain;
    if ((r = gc_run (d, false)) < 0)
      goto fail_chain;
    d->replayed_slots = nchain;
    r = build_alloc (d, chain, nchain, max_slot, err, errlen);
    if (r < 0)
      goto fail_chain_prefix;
  }
  else
    sc_alloc_init (&d->alloc, d->first_slot);

  if (!rdonly) {
    pthread_mutex_lock (&d->lock);
    /* After a clean close the journal ends cleanly, so it is continued
     * as it is unless it has grown long; otherwise (a torn tail may be
     * there) a checkpoint starts a fresh one. */
    bool clean = !created && (d->sb.flags & SC_SB_CLEAN) && !invalidated &&
                 nreleased == 0;
    if (clean && !journal_too_long (d, d->replayed_records)) {
      r = resume (d, chain, nchain, end_pos, end_seq, false);
      if (d->have_journal)
        chain = NULL;
    }
    else
      r = checkpoint (d, end_seq, chain, nchain);
    if ((r == -ENOSPC || r == -EDQUOT) && !created && !d->have_journal) {
      /* No room for a compact copy of the journal (the diff area's
       * filesystem is full): carry on with the journal as it is, so the
       * volume can still be served and snapshots deleted. */
      if (sc_debug)
        sc_debug ("%s: no space for a checkpoint, continuing the journal "
                  "in place", path);
      r = resume (d, chain, nchain, end_pos, end_seq, invalidated);
      if (d->have_journal)
        chain = NULL;           /* now the journal's */
      for (size_t i = 0; r == 0 && i < nreleased; i++) {
        struct sc_rec_snap_delete del = { .h.type = SC_REC_SNAP_DELETE,
                                          .id = released[i] };
        r = sc_journal_append (&d->journal, &del, sizeof del, NULL);
      }
      if (r == 0 && nreleased)
        r = sc_journal_sync (&d->journal, d->journal.next_seq - 1, &d->lock);
    }
    pthread_mutex_unlock (&d->lock);
    /* Write the other superblock copy too, so both have their blocks:
     * a later superblock update then never needs new space. */
    if (r == 0 && created)
      r = sc_sb_store (d->fd, &d->sb);
    if (r == 0 && created)
      r = fsync_parent (path);
    if (r < 0) {
      snprintf (err, errlen, "%s: writing the journal checkpoint: %s", path,
                strerror (-r));
      goto fail_chain;
    }
  }
  free (chain);
  free (released);
  *out = d;
  return 0;

 fail_chain_prefix:
  free (chain);
 fail_prefix:
  {
    char tmp[512];
    snprintf (tmp, sizeof tmp, "%s", err);
    snprintf (err, errlen, "%s: damaged or foreign diff area: %s", path,
              tmp);
  }
  goto fail;
 fail_chain:
  free (chain);
 fail_msg:
  snprintf (err, errlen, "%s: %s", path, strerror (-r));
 fail:
  free (released);
  if (created)
    unlink (path);
  diff_free (d);
  return r;
}

int
sc_diff_close (struct sc_diff *d)
{
  int r = 0;
  if (d->have_journal) {
    pthread_mutex_lock (&d->lock);
    r = sc_journal_sync (&d->journal, d->journal.next_seq - 1, &d->lock);
    if (r == 0)
      r = sc_io_fdatasync (d->fd);      /* copies, in volatile mode */
    if (r == 0 && !d->failed) {
      d->sb.flags |= SC_SB_CLEAN;
      d->sb.clean_seq = d->journal.next_seq;
      r = sc_sb_store (d->fd, &d->sb);
    }
    pthread_mutex_unlock (&d->lock);
  }
  diff_free (d);
  return r;
}

int
sc_diff_fd (const struct sc_diff *d)
{
  return d->fd;
}

uint32_t
sc_diff_chunk_size (const struct sc_diff *d)
{
  return d->chunk_size;
}

void
sc_diff_stats (struct sc_diff *d, struct sc_diff_stats *st)
{
  LOCKED (d);
  memset (st, 0, sizeof *st);
  st->volume_size = d->sb.origin_size;
  st->chunk_size = d->chunk_size;
  for (size_t i = 0; i < d->nsnaps; i++)
    st->snapshots += !d->snaps[i]->deleted;
  st->copies = d->index.copies;
  /* The journal's spare slot is reserved but not yet part of the chain
   * on disk; leave it out so online and offline figures agree. */
  uint64_t spare = d->have_journal && d->journal.spare ? 1 : 0;
  st->journal_slots = d->have_journal ? d->journal.nchain - spare
                                      : d->replayed_slots;
  st->data_slots = d->alloc.used - spare - st->journal_slots;
  st->used_bytes = (d->first_slot + d->alloc.used - spare)
                   * (uint64_t) d->chunk_size;
  struct stat sb;
  if (fstat (d->fd, &sb) == 0)
    st->file_bytes = sb.st_size;
  st->free_slots = d->alloc.end - d->first_slot - d->alloc.used + spare;
  st->journal_records = d->have_journal ? d->journal.records
                                        : d->replayed_records;
  st->epoch = d->epoch;
  st->max_bytes = d->max_bytes;
  st->dropped = d->drops_total;
  st->full_failures = d->full_failures;
  st->space_waits = d->space_waits;
  st->invalidations = d->invalidations;
  for (size_t i = 0; i < d->nsnaps; i++)
    st->invalid += !d->snaps[i]->deleted &&
                   d->snaps[i]->info.invalid_reason != SC_VALID;
  for (size_t i = 0; i < d->nsnaps; i++)
    for (size_t k = 0; k < d->snaps[i]->ndisc && !d->snaps[i]->deleted; k++)
      st->discarded_bytes += d->snaps[i]->disc[k].count * d->chunk_size;
  memcpy (st->uuid, d->sb.uuid, 16);
  st->origin.size = d->sb.origin_size;
  st->origin.dev = d->sb.origin_dev;
  st->origin.ino = d->sb.origin_ino;
  st->origin.type = d->sb.origin_type;
  snprintf (st->origin.path, sizeof st->origin.path, "%s", d->sb.origin_path);
}

/* ---- snapshots ------------------------------------------------------ */

static int make_room_for_snapshot (struct sc_diff *d, bool delete_oldest);
static bool fits (struct sc_diff *d, uint64_t max_bytes, uint64_t extra);

static void
default_name (char *buf, size_t len, uint64_t ns)
{
  time_t t = (time_t) (ns / 1000000000u);
  struct tm tm;
  gmtime_r (&t, &tm);
  size_t n = strftime (buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf + n, len - n, ".%03uZ", (unsigned) (ns / 1000000u % 1000u));
}

int
sc_diff_snapshot_create (struct sc_diff *d, const char *name,
                         const struct sc_snapshot_opts *opts,
                         struct sc_snapshot_info *out)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  if (d->failed)
    return -EIO;
  if (d->epoch >= UINT32_MAX - 1 || d->next_id == UINT64_MAX)
    return -EOVERFLOW;

  struct snap *s = calloc (1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->info.ctime_ns = now_ns ();
  if (name) {
    if (!sc_snapshot_name_valid (name)) {
      free (s);
      return -EINVAL;
    }
    snprintf (s->info.name, sizeof s->info.name, "%s", name);
    if (snap_by_name (d, name)) {
      free (s);
      return -EEXIST;
    }
  }
  else {
    /* The creation time; two in one millisecond get a suffix. */
    default_name (s->info.name, sizeof s->info.name, s->info.ctime_ns);
    size_t base = strlen (s->info.name);
    for (unsigned k = 2; snap_by_name (d, s->info.name); k++)
      snprintf (s->info.name + base, sizeof s->info.name - base, "+%u", k);
  }
  s->info.id = d->next_id;
  s->info.epoch = d->epoch;
  s->info.volume_size = d->sb.origin_size;
  if (opts) {
    s->info.auto_release = opts->auto_release;
    if (opts->set_id) {
      s->info.in_set = true;
      memcpy (s->info.set_id, opts->set_id, sizeof s->info.set_id);
    }
  }

  int r = make_room_for_snapshot (d, opts && opts->delete_oldest);
  if (r < 0) {
    free (s);
    return r;
  }
  uint64_t seq;
  r = append_snapshot (&d->journal, &s->info, &seq);
  if (r == 0)
    r = snap_push (d, s);
  if (r < 0) {
    free (s);
    return r;
  }
  d->next_id++;
  d->epoch++;
  r = commit_locked (d, seq);
  if (r < 0)
    return r;                   /* listed, and invalid: see diff_fail */
  if (out)
    *out = s->info;
  maybe_checkpoint (d);
  return 0;
}

int
sc_diff_snapshot_delete (struct sc_diff *d, const char *name)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  struct snap *s = snap_by_name (d, name);
  if (!s)
    return -ENOENT;

  struct sc_rec_snap_delete rec = { .h.type = SC_REC_SNAP_DELETE,
                                    .id = s->info.id };
  uint64_t seq;
  int r = sc_journal_append (&d->journal, &rec, sizeof rec, &seq);
  if (r < 0)
    return r;
  /* Until the record is durable, a crash would bring the snapshot back:
   * writes keep copying for it and gc keeps its copies. */
  s->deleted = true;
  s->pending = true;
  uint64_t id = s->info.id;
  r = commit_locked (d, seq);
  if ((s = snap_by_id (d, id, NULL)))
    s->pending = false;
  if (r < 0)
    return r;
  if (s)
    valid_remove (d, s->info.epoch);

  /* Its copies may be freed once no read of it is in flight. */
  while ((s = snap_by_id (d, id, NULL)) && s->readers)
    pthread_cond_wait (&d->readers_done, &d->lock);
  size_t pos;
  if (snap_by_id (d, id, &pos))
    snap_remove_at (d, pos);
  r = gc_run (d, true);
  pthread_cond_broadcast (&d->readers_done);    /* space_pending changed */
  if (r == 0)
    maybe_checkpoint (d);
  return r;
}

static void
used_bytes (struct sc_diff *d, struct sc_snapshot_info *infos, size_t n);

int
sc_diff_snapshot_list (struct sc_diff *d, struct sc_snapshot_info **out,
                       size_t *n)
{
  LOCKED (d);
  struct sc_snapshot_info *v = calloc (d->nsnaps + 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    if (!d->snaps[i]->deleted)
      v[k++] = d->snaps[i]->info;
  used_bytes (d, v, k);
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
  if (!s)
    return -ENOENT;
  *out = s->info;
  used_bytes (d, out, 1);
  return 0;
}

int
sc_diff_snapshot_lookup (struct sc_diff *d, const char *name,
                         struct sc_snapshot_info *out)
{
  LOCKED (d);
  struct snap *s = snap_by_name (d, name);
  if (!s)
    return -ENOENT;
  *out = s->info;
  out->used_bytes = 0;
  return 0;
}

/* What deleting each snapshot would free: the data copies that no other
 * valid snapshot needs.  One pass over the index. */
struct used_ctx {
  uint32_t *epochs;             /* valid snapshot epochs, ascending */
  size_t n;
  uint64_t *bytes;              /* per entry of epochs */
  uint32_t chunk_size;
};

static bool
used_visit (void *opaque, uint64_t chunk, uint32_t prev,
            const struct sc_copy *c)
{
  struct used_ctx *u = opaque;
  if (c->slot == SC_SLOT_ZERO)
    return true;
  size_t i = lower_bound (u->epochs, u->n, prev);
  if (i < u->n && u->epochs[i] < c->epoch &&
      (i + 1 == u->n || u->epochs[i + 1] >= c->epoch))
    u->bytes[i] += u->chunk_size;
  return true;
}

static void
used_bytes (struct sc_diff *d, struct sc_snapshot_info *infos, size_t n)
{
  struct used_ctx u = { .epochs = d->valid, .n = d->nvalid,
                        .chunk_size = d->chunk_size };
  u.bytes = calloc (d->nvalid + 1, sizeof *u.bytes);
  if (!u.bytes)
    return;
  sc_index_filter (&d->index, used_visit, &u);
  for (size_t i = 0; i < n; i++) {
    infos[i].used_bytes = 0;
    size_t k = lower_bound (d->valid, d->nvalid, infos[i].epoch);
    if (infos[i].invalid_reason == SC_VALID && k < d->nvalid &&
        d->valid[k] == infos[i].epoch)
      infos[i].used_bytes = u.bytes[k];
  }
  free (u.bytes);
}

int
sc_diff_invalidate_chunk (struct sc_diff *d, uint64_t chunk, uint32_t reason,
                          int err)
{
  LOCKED (d);
  struct sc_copy last;
  uint32_t from = sc_index_last (&d->index, chunk, &last) ? last.epoch : 0;
  uint64_t seq = 0;
  int r = 0;
  bool pending = false;
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    /* A snapshot whose delete is not durable yet needs no record (replay
     * would not know it), but the origin must not change before it is. */
    if (s->pending && s->info.epoch >= from)
      pending = true;
    if (s->deleted || s->info.invalid_reason != SC_VALID ||
        s->info.epoch < from)
      continue;
    snap_set_invalid (d, s, reason, err, chunk);
    d->invalidations++;
    void (*say) (const char *, ...) = sc_notice ? sc_notice : sc_debug;
    if (say)
      say ("snapshot %s (id %" PRIu64 ") is now invalid: %s%s%s (chunk %"
           PRIu64 ")", s->info.name, s->info.id,
           sc_invalid_reason_text (reason), err ? ": " : "",
           err ? strerror (err) : "", chunk);
    if (d->have_journal && r == 0)
      r = append_invalid (&d->journal, &s->info, &seq);
  }
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  if (!seq && pending && d->have_journal)
    seq = d->journal.next_seq - 1;
  r = seq ? commit_locked (d, seq) : 0;
  if (r == 0 && seq)
    maybe_checkpoint (d);
  return r;
}

/* ---- the write path ------------------------------------------------- */

static void grow (struct sc_diff *d, uint64_t slot);

static bool
needs_copy_locked (struct sc_diff *d, uint64_t chunk)
{
  struct sc_copy last;
  uint32_t from = sc_index_last (&d->index, chunk, &last) ? last.epoch : 0;
  return from != d->epoch && needed_in (d, from, d->epoch - 1, chunk);
}

bool
sc_diff_needs_copy (struct sc_diff *d, uint64_t chunk)
{
  LOCKED (d);
  return needs_copy_locked (d, chunk);
}

/* Chunks looked at under one hold of the lock: bounds how long a large
 * write keeps other writers from the index. */
#define NEEDS_COPY_SCAN 1024

size_t
sc_diff_needs_copy_range (struct sc_diff *d, uint64_t first, uint64_t last,
                          uint64_t *out, size_t max, uint64_t *next)
{
  LOCKED (d);
  size_t n = 0;
  uint64_t c = first;
  if (d->nvalid == 0)           /* nothing to preserve: the common case */
    c = last + 1;
  for (uint64_t seen = 0; c <= last && n < max && seen < NEEDS_COPY_SCAN;
       c++, seen++)
    if (needs_copy_locked (d, c))
      out[n++] = c;
  *next = c;
  return n;
}

/* The lowest free slot, preallocated: its byte offset in *offset. */
static int
take_slot_locked (struct sc_diff *d, uint64_t *offset)
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
sc_diff_slot_reserve (struct sc_diff *d, uint64_t *offset)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  if (!fits (d, d->max_bytes, 1))
    return -ENOSPC;             /* the size limit (no policy here) */
  return take_slot_locked (d, offset);
}

void
sc_diff_slot_cancel (struct sc_diff *d, uint64_t offset)
{
  LOCKED (d);
  sc_alloc_put (&d->alloc, offset / d->chunk_size);
}

int
sc_diff_copy_record (struct sc_diff *d, uint64_t chunk, uint64_t offset,
                     uint32_t data_crc, uint64_t *seq)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  if (chunk >= d->nchunks)
    return -EINVAL;
  bool zero = offset == SC_COPY_ZERO;
  struct sc_copy c = { .slot = zero ? SC_SLOT_ZERO : offset / d->chunk_size,
                       .epoch = d->epoch, .crc = zero ? 0 : data_crc };
  struct sc_rec_copy rec = {
    .h.type = SC_REC_COPY, .chunk = chunk, .epoch = c.epoch,
    .flags = zero ? SC_COPY_F_ZERO : 0, .slot = c.slot, .data_crc = c.crc,
  };
  int r = sc_journal_append (&d->journal, &rec, sizeof rec, seq);
  if (r < 0)
    return r;
  return sc_index_add (&d->index, chunk, c);
}

int
sc_diff_commit (struct sc_diff *d, uint64_t seq)
{
  LOCKED (d);
  if (!d->have_journal)
    return 0;
  int r = commit_locked (d, seq);
  if (r == 0)
    maybe_checkpoint (d);
  return r;
}

int
sc_diff_sync (struct sc_diff *d)
{
  LOCKED (d);
  if (!d->have_journal)
    return 0;
  return commit_locked (d, d->journal.next_seq - 1);
}

/* ---- the read path -------------------------------------------------- */

int
sc_diff_snapshot_get (struct sc_diff *d, uint64_t id,
                      struct sc_snapshot_info *info)
{
  LOCKED (d);
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted)
    return -ENOENT;
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
  if (s && s->readers && --s->readers == 0) {
    pthread_cond_broadcast (&d->readers_done);
    if (s->dropped) {           /* nobody waits for it: free it here */
      snap_remove_at (d, pos);
      (void) gc_run (d, true);
      pthread_cond_broadcast (&d->readers_done);
    }
  }
}

enum sc_where
sc_diff_resolve (struct sc_diff *d, uint32_t epoch, uint64_t chunk,
                 uint64_t *offset)
{
  LOCKED (d);
  struct sc_copy c;
  if (d->ndisc_snaps) {
    struct snap *s = snap_by_epoch (d, epoch);
    if (s && !snap_needs (s, chunk))
      return SC_WHERE_ZERO;     /* discarded by its reader */
  }
  if (!sc_index_after (&d->index, chunk, epoch, &c))
    return SC_WHERE_ORIGIN;
  if (c.slot == SC_SLOT_ZERO)
    return SC_WHERE_ZERO;
  *offset = c.slot * d->chunk_size;
  return SC_WHERE_DIFF;
}

/* ---- space: limit, policies, discards -------------------------------
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

static void
snap_free (struct sc_diff *d, struct snap *s)
{
  if (s->ndisc && d->ndisc_snaps)
    d->ndisc_snaps--;
  d->ndisc_extents -= s->ndisc < d->ndisc_extents ? s->ndisc
                                                   : d->ndisc_extents;
  free (s->disc);
  free (s);
}

/* Does snapshot s still need `chunk` (not discarded by its reader)? */
static bool
snap_needs (const struct snap *s, uint64_t chunk)
{
  size_t lo = 0, hi = s->ndisc;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->disc[mid].first + s->disc[mid].count <= chunk)
      lo = mid + 1;
    else
      hi = mid;
  }
  return !(lo < s->ndisc && s->disc[lo].first <= chunk);
}

/* The first listed snapshot with epoch >= e (d->nsnaps if none). */
static size_t
snap_lower_bound (struct sc_diff *d, uint32_t e)
{
  size_t lo = 0, hi = d->nsnaps;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->snaps[mid]->info.epoch < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static struct snap *
snap_by_epoch (struct sc_diff *d, uint32_t epoch)
{
  size_t i = snap_lower_bound (d, epoch);
  return i < d->nsnaps && d->snaps[i]->info.epoch == epoch ? d->snaps[i]
                                                           : NULL;
}

/* Does a valid snapshot with epoch in [from, to] need `chunk`?  O(log n)
 * without discards; with them, O(log n) per discarding snapshot passed. */
static bool
needed_in (struct sc_diff *d, uint32_t from, uint32_t to, uint64_t chunk)
{
  if (!d->ndisc_snaps)
    return any_in (d->valid, d->nvalid, from, to);
  for (size_t i = lower_bound (d->valid, d->nvalid, from);
       i < d->nvalid && d->valid[i] <= to; i++) {
    struct snap *s = snap_by_epoch (d, d->valid[i]);
    if (!s || !s->ndisc || snap_needs (s, chunk))
      return true;
  }
  return false;
}

/* Add [first, first + count) to s's discarded chunks, kept sorted and
 * disjoint with touching extents merged: a binary search, then the
 * extents it overlaps or touches are merged into one in place.  O(log n)
 * plus a memmove, so replaying many discards stays near linear. */
static int
disc_add (struct sc_diff *d, struct snap *s, uint64_t first, uint64_t count)
{
  uint64_t end = first + count;
  /* The first extent that ends at or after `first`. */
  size_t lo = 0, hi = s->ndisc;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->disc[mid].first + s->disc[mid].count < first)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* [lo, k): the extents that overlap or touch the new one. */
  size_t k = lo;
  uint64_t merged = 0;
  while (k < s->ndisc && s->disc[k].first <= end)
    merged += s->disc[k++].count;
  if (k == lo) {                /* nothing to merge: insert at lo */
    struct extent *e = sc_array_room (s->disc, &s->disc_cap, s->ndisc,
                                      sizeof *e, 4);
    if (!e)
      return -ENOMEM;
    s->disc = e;
    if (s->ndisc == 0)
      d->ndisc_snaps++;
    memmove (&s->disc[lo + 1], &s->disc[lo],
             (s->ndisc - lo) * sizeof *s->disc);
    s->disc[lo] = (struct extent) { first, count };
    s->ndisc++;
    d->ndisc_extents++;
  }
  else {
    uint64_t f = s->disc[lo].first < first ? s->disc[lo].first : first;
    uint64_t e = s->disc[k - 1].first + s->disc[k - 1].count;
    if (e < end)
      e = end;
    s->disc[lo] = (struct extent) { f, e - f };
    memmove (&s->disc[lo + 1], &s->disc[k],
             (s->ndisc - k) * sizeof *s->disc);
    s->ndisc -= k - lo - 1;
    d->ndisc_extents -= k - lo - 1;
    count = e - f;
  }
  s->info.discarded_bytes += (count - merged) * d->chunk_size;
  return 0;
}

/* Record drop number `total` (the caller checked it follows the last). */
static void
drop_push (struct sc_diff *d, const struct sc_drop_info *di, uint64_t total)
{
  d->drops[(total - 1) % SC_DROP_HISTORY] = *di;
  d->drops_total = total;
}

static int
apply_space_record (struct sc_diff *d, const struct sc_rec_hdr *h,
                    char *err, size_t errlen)
{
  switch (h->type) {
  case SC_REC_SNAP_DROP: {
    const struct sc_rec_snap_drop *r = (const void *) h;
    struct sc_drop_info di = { .id = r->id, .ctime_ns = r->ctime_ns,
                               .drop_ns = r->drop_ns, .reason = r->reason };
    if (r->name_len == 0 || r->name_len > SC_NAME_MAX ||
        sizeof *r + r->name_len > h->len ||
        r->reason < SC_DROPPED_DIFF_FULL || r->reason > SC_DROPPED_SHRINK)
      return CORRUPT ("journal record %" PRIu64 ": bad drop record",
                      h->seq);
    /* Drops are numbered 1, 2, ... with no gap; a checkpoint's history
     * starts at its oldest kept drop, so the first one may be higher. */
    if (d->drops_total ? r->total != d->drops_total + 1
                       : r->total == 0 || r->total > UINT64_MAX / 2)
      return CORRUPT ("journal record %" PRIu64 ": drop number %" PRIu64
                      " does not follow %" PRIu64, h->seq, r->total,
                      d->drops_total);
    memcpy (di.name, r->name, r->name_len);
    /* As for snapshot records: a NUL inside would shorten the name. */
    if (strlen (di.name) != r->name_len || !sc_snapshot_name_valid (di.name))
      return CORRUPT ("journal record %" PRIu64 ": bad name in a drop "
                      "record", h->seq);
    size_t pos;
    if (snap_by_id (d, r->id, &pos))
      snap_remove_at (d, pos);
    drop_push (d, &di, r->total);
    return 0;
  }
  case SC_REC_LIMIT: {
    const struct sc_rec_limit *r = (const void *) h;
    if (r->reserved != 0 ||
        (r->max_bytes != 0 &&
         r->max_bytes < SC_DIFF_MAX_MIN_CHUNKS * (uint64_t) d->chunk_size))
      return CORRUPT ("journal record %" PRIu64 ": bad limit record (%"
                      PRIu64 " bytes; the smallest limit is %u chunks)",
                      h->seq, r->max_bytes, SC_DIFF_MAX_MIN_CHUNKS);
    d->max_bytes = r->max_bytes;
    d->max_recorded = true;
    return 0;
  }
  case SC_REC_DISCARD: {
    const struct sc_rec_discard *r = (const void *) h;
    struct snap *s = snap_by_id (d, r->id, NULL);
    if (!s || r->count == 0 || r->first >= d->nchunks ||
        r->count > d->nchunks - r->first)
      return CORRUPT ("journal record %" PRIu64 ": bad discard record "
                      "(snapshot id %" PRIu64 ", chunks %" PRIu64 "+%"
                      PRIu64 ")", h->seq, r->id, r->first, r->count);
    return disc_add (d, s, r->first, r->count);
  }
  }
  return -EINVAL;
}

static int
append_drop (struct sc_journal *j, const struct sc_drop_info *di,
             uint64_t total, uint64_t *seq)
{
  uint8_t buf[SC_REC_MAX] = { 0 };
  struct sc_rec_snap_drop *r = (void *) buf;
  size_t name_len = strlen (di->name);
  r->h.type = SC_REC_SNAP_DROP;
  r->id = di->id;
  r->ctime_ns = di->ctime_ns;
  r->drop_ns = di->drop_ns;
  r->total = total;
  r->reason = (uint16_t) di->reason;
  r->name_len = (uint16_t) name_len;
  memcpy (r->name, di->name, name_len);
  return sc_journal_append (j, r, sc_rec_padded (sizeof *r + name_len), seq);
}

static int
append_limit (struct sc_journal *j, uint64_t max_bytes, uint64_t *seq)
{
  struct sc_rec_limit r = { .h.type = SC_REC_LIMIT, .max_bytes = max_bytes };
  return sc_journal_append (j, &r, sizeof r, seq);
}

static int
append_discard (struct sc_journal *j, uint64_t id, uint64_t first,
                uint64_t count, uint64_t *seq)
{
  struct sc_rec_discard r = { .h.type = SC_REC_DISCARD, .id = id,
                              .first = first, .count = count };
  return sc_journal_append (j, &r, sizeof r, seq);
}

/* The checkpoint's share: the limit, every listed snapshot's discards and
 * the drop history (oldest first, with their running totals). */
static int
ckpt_space (struct sc_diff *d, struct sc_journal *j)
{
  int r = 0;
  if (d->max_recorded)
    r = append_limit (j, d->max_bytes, NULL);
  for (size_t i = 0; r == 0 && i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    for (size_t k = 0; r == 0 && !s->deleted && k < s->ndisc; k++)
      r = append_discard (j, s->info.id, s->disc[k].first, s->disc[k].count,
                          NULL);
  }
  uint64_t n = d->drops_total < SC_DROP_HISTORY ? d->drops_total
                                                : SC_DROP_HISTORY;
  for (uint64_t i = 0; r == 0 && i < n; i++) {
    uint64_t t = d->drops_total - n + 1 + i;
    r = append_drop (j, &d->drops[(t - 1) % SC_DROP_HISTORY], t, NULL);
  }
  return r;
}

/* A slot no copy uses any more: back to the allocator, and its space back
 * to the filesystem (best effort). */
static void
free_slot (struct sc_diff *d, uint64_t slot)
{
  sc_alloc_put (&d->alloc, slot);
  if (d->have_journal)
    (void) sc_io_fallocate (d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            slot * d->chunk_size, d->chunk_size);
}

/* After frees: the allocator's end drops to the last used slot.  The file
 * keeps its apparent size (cutting it is not modelled by the crash
 * harness and buys nothing: the freed slots are holes already). */
static void
shrink_tail (struct sc_diff *d)
{
  if (!d->have_journal)
    return;
  (void) sc_alloc_trim_end (&d->alloc);
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
static void
grow (struct sc_diff *d, uint64_t slot)
{
  uint64_t need = (slot + 1) * d->chunk_size;
  if (need <= d->prealloc_end)
    return;
  uint64_t step = d->max_bytes ? d->max_bytes / 16 : GROW_UNBOUNDED;
  if (step > 64u << 20)
    step = 64u << 20;
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

/* Would `extra` more data slots fit under max_bytes? */
static bool
fits (struct sc_diff *d, uint64_t max_bytes, uint64_t extra)
{
  if (!max_bytes)
    return true;
  uint64_t reserve = (d->have_journal ? d->journal.nchain : 0) + 2;
  return (d->first_slot + d->alloc.used + extra + reserve) * d->chunk_size
         <= max_bytes;
}

/* Delete the oldest listed snapshot by policy, durably.  -ENOENT if there
 * is none.  Called with the lock held (released during the commit). */
static int
drop_oldest (struct sc_diff *d, uint32_t reason)
{
  struct snap *s = NULL;
  for (size_t i = 0; i < d->nsnaps && !s; i++)
    if (!d->snaps[i]->deleted)
      s = d->snaps[i];
  if (!s)
    return -ENOENT;
  struct sc_drop_info di = { .id = s->info.id, .ctime_ns = s->info.ctime_ns,
                             .drop_ns = now_ns (), .reason = reason };
  snprintf (di.name, sizeof di.name, "%s", s->info.name);
  uint64_t seq;
  int r = append_drop (&d->journal, &di, d->drops_total + 1, &seq);
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  drop_push (d, &di, d->drops_total + 1);
  /* Until the record is durable a crash brings the snapshot back, so its
   * copies stay (gc, and a reader's put, leave a pending snapshot alone)
   * and writes keep copying for it (it stays in valid[]). */
  s->deleted = true;
  s->pending = true;
  uint64_t id = s->info.id;
  void (*say) (const char *, ...) = sc_notice ? sc_notice : sc_debug;
  if (say)
    say ("snapshot %s (id %" PRIu64 ") deleted: %s", di.name, id,
         sc_invalid_reason_text (reason));
  r = commit_locked (d, seq);
  size_t pos;
  s = snap_by_id (d, id, &pos);
  if (s)
    s->pending = false;
  if (r < 0)
    return r;
  if (s) {
    valid_remove (d, s->info.epoch);
    if (s->readers == 0)
      snap_remove_at (d, pos);
    else
      s->dropped = true;        /* freed by its last reader's put */
  }
  r = gc_run (d, true);
  pthread_cond_broadcast (&d->readers_done);
  return r;
}

/* Is space about to come back: a deleted snapshot whose copies are still
 * kept, for a read in flight or until its record is durable?  Dropping
 * another snapshot meanwhile would drop one too many. */
static bool
space_pending (const struct sc_diff *d)
{
  for (size_t i = 0; i < d->nsnaps; i++)
    if (d->snaps[i]->deleted)
      return true;
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
  return 0;
}

static size_t
listed (const struct sc_diff *d)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    n += !d->snaps[i]->deleted;
  return n;
}

static int
make_room_for_snapshot (struct sc_diff *d, bool delete_oldest)
{
  while (listed (d) >= d->max_snaps) {
    if (!delete_oldest)
      return -EMFILE;
    int r = drop_oldest (d, SC_DROPPED_MAX_SNAPSHOTS);
    if (r < 0)
      return r == -ENOENT ? -EMFILE : r;
  }
  return 0;
}

void
sc_diff_set_policy (struct sc_diff *d, enum sc_on_full on_full,
                    uint32_t max_snapshots)
{
  LOCKED (d);
  d->on_full = on_full;
  d->max_snaps = max_snapshots ? max_snapshots : SC_MAX_SNAPSHOTS_DEFAULT;
}

int
sc_diff_set_max (struct sc_diff *d, uint64_t max_bytes, unsigned flags,
                 uint64_t *dropped)
{
  LOCKED (d);
  if (dropped)
    *dropped = 0;
  if (!d->have_journal)
    return -EROFS;
  if (d->failed)
    return -EIO;
  if (max_bytes && max_bytes < SC_DIFF_MAX_MIN_CHUNKS * (uint64_t) d->chunk_size)
    return -EINVAL;
  if (d->max_recorded && d->max_bytes == max_bytes &&
      (!(flags & SC_MAX_FORCE) || fits (d, max_bytes, 0)))
    return 0;                   /* nothing to record or to drop */
  if (!fits (d, max_bytes, 0) && !(flags & SC_MAX_LAZY)) {
    if (!(flags & SC_MAX_FORCE))
      return -ENOSPC;
    bool any = false;
    while (!fits (d, max_bytes, 0)) {
      if (space_pending (d)) {
        int r = wait_space (d);
        if (r < 0)
          return r;
        continue;
      }
      int r = drop_oldest (d, SC_DROPPED_SHRINK);
      if (r == -ENOENT)
        break;
      if (r < 0)
        return r;
      any = true;
      if (dropped)
        (*dropped)++;
    }
    /* The journal shrinks to the live state too. */
    if (any) {
      int r = checkpoint (d, 0, NULL, 0);
      if (r < 0 && sc_debug)
        sc_debug ("resize: journal checkpoint: %s", strerror (-r));
    }
  }
  if (d->max_recorded && d->max_bytes == max_bytes)
    return 0;
  uint64_t seq;
  int r = append_limit (&d->journal, max_bytes, &seq);
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  d->max_bytes = max_bytes;
  d->max_recorded = true;
  r = commit_locked (d, seq);
  if (r == 0)
    shrink_tail (d);
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

int
sc_diff_copy_reserve (struct sc_diff *d, uint64_t chunk, uint64_t *offset)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  for (;;) {
    if (!needs_copy_locked (d, chunk))
      return 1;
    if (fits (d, d->max_bytes, 1))
      return take_slot_locked (d, offset);
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
    if (r < 0)
      return r == -ENOENT ? -ENOSPC : r;
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

int
sc_diff_snapshot_check (struct sc_diff *d, uint64_t id)
{
  LOCKED (d);
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted)
    return -ENOENT;
  return s->info.invalid_reason != SC_VALID ? -EIO : 0;
}

/* Free the copies of `chunk` that no servable snapshot needs any more. */
static void
chunk_gc (struct sc_diff *d, uint64_t chunk)
{
  uint32_t drop[64];
  size_t ndrop = 0;
  uint32_t prev = 0;
  struct sc_copy c;
  while (ndrop < 64 && sc_index_after (&d->index, chunk, prev, &c)) {
    bool keep = false;
    for (size_t i = snap_lower_bound (d, prev);
         !keep && i < d->nsnaps && d->snaps[i]->info.epoch < c.epoch; i++) {
      struct snap *s = d->snaps[i];
      if (snap_keeps_copies (s) && snap_needs (s, chunk))
        keep = true;
    }
    if (!keep)
      drop[ndrop++] = c.epoch;
    prev = c.epoch;
  }
  for (size_t i = 0; i < ndrop; i++) {
    if (!sc_index_find (&d->index, chunk, drop[i], &c))
      continue;
    sc_index_remove (&d->index, chunk, drop[i]);
    if (c.slot != SC_SLOT_ZERO)
      free_slot (d, c.slot);
  }
}

int
sc_diff_snapshot_discard (struct sc_diff *d, uint64_t id, uint64_t first,
                          uint64_t last)
{
  LOCKED (d);
  if (!d->have_journal)
    return -EROFS;
  if (first > last || last >= d->nchunks)
    return -EINVAL;
  struct snap *s = snap_by_id (d, id, NULL);
  if (!s || s->deleted)
    return -ENOENT;
  if (s->info.invalid_reason != SC_VALID)
    return -EIO;
  uint64_t seq;
  int r = append_discard (&d->journal, id, first, last - first + 1, &seq);
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  if ((r = disc_add (d, s, first, last - first + 1)) < 0)
    return r;
  if ((r = commit_locked (d, seq)) < 0)
    return r;
  for (uint64_t c = first; c <= last; c++)
    chunk_gc (d, c);
  shrink_tail (d);
  maybe_checkpoint (d);
  return 0;
}
