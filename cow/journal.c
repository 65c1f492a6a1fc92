/* shadowcopy: the metadata journal: append, group commit, replay.
 *
 * Notes on the design
 *
 * Records never cross a slot boundary.  Before a record that would not fit
 * with room left for a NEXT record, a NEXT record naming the spare slot is
 * appended, the spare becomes the current slot and a new spare is taken.
 * The spare is taken (and fallocated) one slot ahead so that switching
 * slots never needs new space at the moment a copy is being recorded: a
 * full diff area still leaves room to record that snapshots became invalid.
 *
 * Durable data is never overwritten: appends go past the last record, and
 * a torn write can only damage records that were never acknowledged.
 *
 * Replay tells a torn write from damage by what a tear leaves: slots are
 * zeroed, durably, before records are written into them (a group that
 * writes into a slot taken in the same group syncs first), and a tear
 * leaves whole 512-byte sectors unwritten.  A record that fails its
 * checks ends the journal only if it has such a sector (or nothing was
 * written at all) and no commit marker or clean close vouches for it;
 * a record written whole that fails its checks is damage.  Salvage goes
 * past damage instead (docs/design.md, "Salvage").  A commit marker whose
 * header is intact but whose CRC or durable_seq is damaged holds no state:
 * replay goes past it, as if it vouched for nothing.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/array.h"
#include "cow/crc32c.h"
#include "cow/io.h"
#include "cow/journal.h"

uint32_t
sc_journal_seed (const uint8_t uuid[16], uint64_t nonce)
{
  uint32_t c = crc32c (0, uuid, 16);
  return crc32c (c, &nonce, sizeof nonce);
}

static uint32_t
rec_crc (uint32_t seed, const void *rec, size_t len)
{
  return crc32c (seed, (const uint8_t *) rec + 4, len - 4);
}

static int
chain_push (struct sc_journal *j, uint64_t slot)
{
  uint64_t *c = sc_array_room (j->chain, &j->chain_cap, j->nchain,
                               sizeof *c, 16);
  if (!c)
    return -ENOMEM;
  j->chain = c;
  j->chain[j->nchain++] = slot;
  return 0;
}

/* Make [off, off + len) read as zeros and, where the filesystem can,
 * reserve its space.  Punching first drops whatever an older use of the
 * slot left there; a filesystem that cannot punch gets written zeros. */
static int
zero_range (int fd, uint64_t off, uint64_t len)
{
  int r = sc_io_fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                           off, len);
  if (r == -EOPNOTSUPP) {
    void *zeros = calloc (1, len);
    if (!zeros)
      return -ENOMEM;
    r = sc_io_pwrite (fd, zeros, len, off, false);
    free (zeros);
    return r;
  }
  if (r == 0)
    r = sc_io_fallocate (fd, 0, off, len);
  return r == -EOPNOTSUPP ? 0 : r;
}

/* Take a slot for the journal: zeroed, so that no record of any earlier
 * journal can be found past the end of this one, and reserved, so that
 * appending to it never needs new space. */
static int
take_slot (struct sc_journal *j, uint64_t *slot)
{
  int r = sc_alloc_get (j->alloc, slot);
  if (r < 0)
    return r;
  r = zero_range (j->fd, *slot * j->chunk_size, j->chunk_size);
  if (r == 0)
    r = chain_push (j, *slot);
  if (r < 0) {
    sc_alloc_put (j->alloc, *slot);
    return r;
  }
  j->zeroed++;
  if (slot == &j->spare)
    j->spare_zeroed = j->zeroed;
  return 0;
}

int
sc_journal_start (struct sc_journal *j, int fd, uint32_t chunk_size,
                  uint32_t seed, struct sc_alloc *alloc, uint64_t first_seq)
{
  memset (j, 0, sizeof *j);
  j->fd = fd;
  j->chunk_size = chunk_size;
  j->seed = seed;
  j->alloc = alloc;
  j->next_seq = first_seq;
  j->durable_seq = first_seq - 1;
  j->head_seq = first_seq;
  pthread_cond_init (&j->synced, NULL);
  int r = take_slot (j, &j->slot);
  if (r == 0)
    r = take_slot (j, &j->spare);
  if (r < 0) {
    for (size_t i = 0; i < j->nchain; i++)
      sc_alloc_put (alloc, j->chain[i]);
    free (j->chain);
    j->chain = NULL;
    pthread_cond_destroy (&j->synced);
    return r;
  }
  j->head_slot = j->slot;
  return 0;
}

int
sc_journal_resume (struct sc_journal *j, int fd, uint32_t chunk_size,
                   uint32_t seed, struct sc_alloc *alloc, uint64_t head_slot,
                   uint64_t head_seq, uint64_t *chain, size_t nchain,
                   uint32_t end_pos, uint64_t next_seq, uint64_t records)
{
  if (nchain == 0)
    return -EINVAL;
  uint64_t slot = chain[nchain - 1];
  /* A torn tail may hold pieces of unacknowledged records: clear them
   * before appending over them.  The zeros are made durable before any
   * record is written over them: a record torn later must show them. */
  int r = zero_range (fd, slot * chunk_size + end_pos, chunk_size - end_pos);
  if (r == 0)
    r = sc_io_fdatasync (fd);
  if (r < 0)
    return r;
  memset (j, 0, sizeof *j);
  j->fd = fd;
  j->chunk_size = chunk_size;
  j->seed = seed;
  j->alloc = alloc;
  j->head_slot = head_slot;
  j->head_seq = head_seq;
  j->slot = slot;
  j->pos = end_pos;
  j->next_seq = next_seq;
  j->durable_seq = next_seq - 1;
  j->records = records;
  j->chain = chain;
  j->nchain = j->chain_cap = nchain;
  pthread_cond_init (&j->synced, NULL);
  (void) take_slot (j, &j->spare);  /* if full, the next switch retries */
  if (j->spare && sc_io_fdatasync (fd) == 0)
    j->zeroed_durable = j->zeroed;
  return 0;
}

void
sc_journal_free (struct sc_journal *j)
{
  free (j->chain);
  free (j->tail);
  free (j->segs);
  pthread_cond_destroy (&j->synced);
  memset (j, 0, sizeof *j);
}

/* Copy `len` bytes bound for file offset `off` into the unwritten tail. */
static int
tail_add (struct sc_journal *j, uint64_t off, const void *p, size_t len)
{
  if (j->tail_len + len > j->tail_cap) {
    size_t cap = j->tail_cap ? j->tail_cap : 4096;
    while (cap < j->tail_len + len)
      cap *= 2;
    uint8_t *t = realloc (j->tail, cap);
    if (!t)
      return -ENOMEM;
    j->tail = t;
    j->tail_cap = cap;
  }
  struct sc_journal_seg *last = j->nsegs ? &j->segs[j->nsegs - 1] : NULL;
  if (last && last->off + last->len == off)
    last->len += len;
  else {
    struct sc_journal_seg *s = sc_array_room (j->segs, &j->segs_cap,
                                              j->nsegs, sizeof *s, 8);
    if (!s)
      return -ENOMEM;
    j->segs = s;
    j->segs[j->nsegs++] = (struct sc_journal_seg) {
      .off = off, .len = len, .at = j->tail_len
    };
  }
  memcpy (j->tail + j->tail_len, p, len);
  j->tail_len += len;
  return 0;
}

/* Seal a record and add it to the tail at the current position. */
static int
put_record (struct sc_journal *j, void *rec, size_t len, uint64_t *seq)
{
  struct sc_rec_hdr *h = rec;
  h->len = (uint16_t) len;
  h->seq = j->next_seq;
  h->crc = rec_crc (j->seed, rec, len);
  int r = tail_add (j, j->slot * j->chunk_size + j->pos, rec, len);
  if (r < 0)
    return r;
  j->pos += (uint32_t) len;
  j->next_seq++;
  j->records++;
  if (seq)
    *seq = h->seq;
  return 0;
}

int
sc_journal_append (struct sc_journal *j, void *rec, size_t len,
                   uint64_t *seq)
{
  if (j->error)
    return j->error;
  if (len < sizeof (struct sc_rec_hdr) || len % SC_REC_ALIGN ||
      len > SC_REC_MAX)
    return -EINVAL;

  if (j->pos + len + SC_REC_NEXT_SIZE > j->chunk_size) {
    if (j->spare == 0) {
      int r = take_slot (j, &j->spare);
      if (r < 0)
        return r;
    }
    struct sc_rec_next next = {
      .h.type = SC_REC_NEXT, .slot = j->spare,
    };
    int r = put_record (j, &next, sizeof next, NULL);
    if (r < 0)
      return r;
    /* A group of records spanning two slot switches writes into a slot
     * taken in the same group: its zeros must be synced first. */
    if (j->spare_zeroed > j->zeroed_durable && !j->volatile_mode)
      j->presync = true;
    j->slot = j->spare;
    j->pos = 0;
    j->spare = 0;
    /* Take the next spare now; if the diff area is full, the current slot
     * still has room and the next switch tries again. */
    (void) take_slot (j, &j->spare);
  }
  return put_record (j, rec, len, seq);
}

/* *failed_off gets the offset of the first write that failed. */
static int
write_segs (int fd, const uint8_t *buf, const struct sc_journal_seg *segs,
            size_t n, uint64_t *failed_off)
{
  struct sc_io_req reqs[16];
  for (size_t i = 0; i < n;) {
    size_t k = 0;
    for (; k < 16 && i < n; k++, i++)
      reqs[k] = (struct sc_io_req) {
        .op = SC_IO_WRITE, .fd = fd, .buf = (void *) (buf + segs[i].at),
        .len = segs[i].len, .off = segs[i].off,
      };
    int r = sc_io_run (reqs, k);
    if (r < 0) {
      for (size_t q = 0; q < k; q++)
        if (reqs[q].result < 0) {
          *failed_off = reqs[q].off;
          break;
        }
      return r;
    }
  }
  return 0;
}

/* Make `err` the journal's sticky error, remembering which write. */
static int
set_error (struct sc_journal *j, int err, int op, uint64_t off)
{
  if (!j->error) {
    j->error_op = op;
    j->error_off = off;
  }
  return j->error = err;
}

int
sc_journal_write_tail (struct sc_journal *j)
{
  uint64_t off = 0;
  int r = write_segs (j->fd, j->tail, j->segs, j->nsegs, &off);
  if (r < 0)
    return set_error (j, r, SC_JOURNAL_FAILED_WRITE, off);
  j->tail_len = 0;
  j->nsegs = 0;
  return 0;
}

int
sc_journal_sync (struct sc_journal *j, uint64_t seq, pthread_mutex_t *lock)
{
  for (;;) {
    if (j->durable_seq >= seq)
      return 0;
    if (j->error)
      return j->error;
    if (j->syncing) {
      pthread_cond_wait (&j->synced, lock);
      continue;
    }

    /* Lead: take the whole tail, so every record appended so far rides
     * on this fdatasync.  In safe mode it opens with a commit marker
     * saying how far the journal was already durable. */
    if (!j->volatile_mode) {
      struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                    .durable_seq = j->durable_seq };
      int r = sc_journal_append (j, &mark, sizeof mark, NULL);
      if (r < 0)
        return set_error (j, r, SC_JOURNAL_FAILED_APPEND, 0);
    }
    j->syncing = true;
    uint64_t target = j->next_seq - 1;
    uint64_t zeroed = j->zeroed;
    bool presync = j->presync;
    j->presync = false;
    uint8_t *buf = j->tail;
    struct sc_journal_seg *segs = j->segs;
    size_t nsegs = j->nsegs;
    j->tail = NULL;
    j->tail_len = j->tail_cap = 0;
    j->segs = NULL;
    j->nsegs = j->segs_cap = 0;

    pthread_mutex_unlock (lock);
    uint64_t failed_off = 0;
    int op = SC_JOURNAL_FAILED_SYNC;
    int r = presync ? sc_io_fdatasync (j->fd) : 0;
    if (r == 0) {
      op = SC_JOURNAL_FAILED_WRITE;
      r = write_segs (j->fd, buf, segs, nsegs, &failed_off);
    }
    if (r == 0 && !j->volatile_mode) {
      op = SC_JOURNAL_FAILED_SYNC;
      r = sc_io_fdatasync (j->fd);
    }
    pthread_mutex_lock (lock);

    free (buf);
    free (segs);
    j->syncing = false;
    if (r < 0)
      set_error (j, r, op, failed_off);
    else {
      if (target > j->durable_seq)
        j->durable_seq = target;
      if (!j->volatile_mode && zeroed > j->zeroed_durable)
        j->zeroed_durable = zeroed;
    }
    pthread_cond_broadcast (&j->synced);
  }
}

void
sc_journal_replace (struct sc_journal *j, struct sc_journal *n,
                    uint64_t **old_chain, size_t *old_nchain)
{
  *old_chain = j->chain;
  *old_nchain = j->nchain;
  free (j->tail);
  free (j->segs);
  pthread_cond_t synced = j->synced;
  pthread_cond_destroy (&n->synced);
  *j = *n;
  j->synced = synced;
  memset (n, 0, sizeof *n);
  pthread_cond_broadcast (&j->synced);
}

/* ---- replay --------------------------------------------------------- */

static bool
rec_len_ok (const struct sc_rec_hdr *h)
{
  switch (h->type) {
  case SC_REC_STATE: return h->len == sizeof (struct sc_rec_state);
  case SC_REC_SNAP_DELETE: return h->len == sizeof (struct sc_rec_snap_delete);
  case SC_REC_SNAP_INVALID:
    return h->len == sizeof (struct sc_rec_snap_invalid);
  case SC_REC_COPY: return h->len == sizeof (struct sc_rec_copy);
  case SC_REC_NEXT: return h->len == sizeof (struct sc_rec_next);
  case SC_REC_COMMIT: return h->len == sizeof (struct sc_rec_commit);
  case SC_REC_SNAP_SET: return h->len == sizeof (struct sc_rec_snap_set);
  case SC_REC_SNAP_CREATE: {
    const struct sc_rec_snap_create *c = (const void *) h;
    return h->len >= sizeof *c + 1 && c->name_len >= 1 &&
           c->name_len <= 128 &&
           h->len == sc_rec_padded (sizeof *c + c->name_len);
  }
  case SC_REC_SNAP_DROP: {
    const struct sc_rec_snap_drop *c = (const void *) h;
    return h->len >= sizeof *c + 1 && c->name_len >= 1 &&
           c->name_len <= 128 &&
           h->len == sc_rec_padded (sizeof *c + c->name_len);
  }
  case SC_REC_LIMIT: return h->len == sizeof (struct sc_rec_limit);
  case SC_REC_DISCARD: return h->len == sizeof (struct sc_rec_discard);
  case SC_REC_COPY_SUMS: {
    const struct sc_rec_copy_sums *c = (const void *) h;
    return h->len >= sizeof *c + sizeof (uint32_t) && c->nsums >= 1 &&
           c->nsums <= SC_SUMS_MAX &&
           h->len == sc_rec_padded (sizeof *c + c->nsums * sizeof (uint32_t));
  }
  default: return false;
  }
}

/* The length the record type at p has, as far as its header and name
 * length say (0: not a known type, or its name length is wrong). */
static uint32_t
type_len (const uint8_t *p, uint32_t room)
{
  struct sc_rec_hdr h;
  memcpy (&h, p, sizeof h);
  size_t fixed = 0, named = 0;
  switch (h.type) {
  case SC_REC_STATE: fixed = sizeof (struct sc_rec_state); break;
  case SC_REC_SNAP_DELETE: fixed = sizeof (struct sc_rec_snap_delete); break;
  case SC_REC_SNAP_INVALID: fixed = sizeof (struct sc_rec_snap_invalid); break;
  case SC_REC_COPY: fixed = sizeof (struct sc_rec_copy); break;
  case SC_REC_NEXT: fixed = sizeof (struct sc_rec_next); break;
  case SC_REC_COMMIT: fixed = sizeof (struct sc_rec_commit); break;
  case SC_REC_SNAP_SET: fixed = sizeof (struct sc_rec_snap_set); break;
  case SC_REC_LIMIT: fixed = sizeof (struct sc_rec_limit); break;
  case SC_REC_DISCARD: fixed = sizeof (struct sc_rec_discard); break;
  case SC_REC_SNAP_CREATE: named = sizeof (struct sc_rec_snap_create); break;
  case SC_REC_SNAP_DROP: named = sizeof (struct sc_rec_snap_drop); break;
  case SC_REC_COPY_SUMS: {
    struct sc_rec_copy_sums c;
    if (sizeof c > room)
      return 0;
    memcpy (&c, p, sizeof c);
    if (c.nsums < 1 || c.nsums > SC_SUMS_MAX)
      return 0;
    return sc_rec_padded (sizeof c + c.nsums * sizeof (uint32_t));
  }
  default: return 0;
  }
  if (fixed)
    return (uint32_t) fixed;
  if (named > room)
    return 0;
  uint16_t name_len;
  memcpy (&name_len, p + named - sizeof name_len, sizeof name_len);
  if (name_len < 1 || name_len > 128)
    return 0;
  return sc_rec_padded (named + name_len);
}

/* How far the damaged record at p reaches, at the shortest its header can
 * mean: a damaged length or type must not make it look longer, which
 * would take unwritten sectors after it for its own. */
static uint32_t
damaged_len (const uint8_t *p, uint32_t room)
{
  struct sc_rec_hdr h;
  memcpy (&h, p, sizeof h);
  uint32_t len = 0, t = type_len (p, room);
  if (h.len >= sizeof h && h.len % SC_REC_ALIGN == 0 && h.len <= room)
    len = h.len;
  if (t && t <= room && (len == 0 || t < len))
    len = t;
  return len ? len : (uint32_t) sizeof h;
}

static bool
all_zero (const uint8_t *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (p[i])
      return false;
  return true;
}

/* What a record that fails its checks can be.  Journal slots are zeroed,
 * durably, before records are written into them, and a torn write leaves
 * each 512-byte sector written or not: a record that was not written
 * whole has a sector that is all zeros from the record on. */
enum damage {
  DMG_NOTHING,                  /* nothing was written here (a byte of
                                   damage at most): the journal ends */
  DMG_TORN,                     /* a sector of it was never written */
  DMG_WHOLE,                    /* written whole, yet damaged: not a tear */
};
#define SECTOR 512u

static enum damage
classify (const uint8_t *buf, uint32_t chunk_size, uint32_t pos)
{
  const uint8_t *p = buf + pos;
  uint32_t room = chunk_size - pos;
  unsigned nonzero = 0;
  for (uint32_t i = 0; i < room && nonzero < 2; i++)
    nonzero += p[i] != 0;
  if (nonzero < 2)
    return DMG_NOTHING;
  uint32_t end = pos + damaged_len (p, room);
  for (uint32_t sec = pos & ~(SECTOR - 1); sec < end; sec += SECTOR) {
    uint32_t from = sec > pos ? sec : pos;
    if (all_zero (buf + from, sec + SECTOR - from))
      return DMG_TORN;
  }
  return DMG_WHOLE;
}

/* Is there, past `from` in this slot, a valid commit marker covering
 * record `seq`? */
static bool
committed_later (const uint8_t *buf, uint32_t chunk_size, uint32_t from,
                 uint32_t seed, uint64_t seq, uint32_t *at, uint64_t *mark)
{
  const uint32_t len = sizeof (struct sc_rec_commit);
  for (uint32_t p = from + SC_REC_ALIGN; p + len <= chunk_size;
       p += SC_REC_ALIGN) {
    struct sc_rec_commit c;
    memcpy (&c, buf + p, len);
    if (c.h.type == SC_REC_COMMIT && c.h.len == len && c.h.seq > seq &&
        c.durable_seq >= seq && c.h.crc == rec_crc (seed, buf + p, len)) {
      *at = p;
      *mark = c.h.seq;
      return true;
    }
  }
  return false;
}

/* Is the record at p, which fails its checks, a damaged commit marker?
 * Its header reads exactly what the next commit marker's would (type,
 * length and number), so one damaged byte can only be in its CRC or its
 * durable_seq: a record of another type whose type byte was damaged
 * would check out with that byte set back, and is not taken for one
 * (NEXT and SNAP_DELETE records have a marker's length; NEXT's type
 * differs from COMMIT's in one bit).  A marker holds no state: replay
 * goes on past it, vouching for nothing (docs/design.md, "Journal"). */
static bool
damaged_marker (const uint8_t *p, uint32_t room, uint32_t seed, uint64_t seq)
{
  const uint32_t len = sizeof (struct sc_rec_commit);
  struct sc_rec_hdr h;
  if (room < len)
    return false;
  memcpy (&h, p, sizeof h);
  if (h.type != SC_REC_COMMIT || h.len != len || h.seq != seq)
    return false;
  uint8_t rec[sizeof (struct sc_rec_commit)];
  memcpy (rec, p, len);
  const size_t type_at = offsetof (struct sc_rec_hdr, type);
  for (size_t b = type_at; b < type_at + sizeof h.type; b++)
    for (unsigned v = 0; v < 256; v++) {
      if (v == p[b])
        continue;
      rec[b] = (uint8_t) v;
      if (rec_crc (seed, rec, len) == h.crc)
        return false;           /* another record, its type damaged */
      rec[b] = p[b];
    }
  return true;
}

/* Where replay is, and what it was asked. */
struct replay {
  int fd;
  uint32_t chunk_size, seed;
  uint64_t max_slot;
  unsigned flags;
  sc_journal_apply_fn apply;
  sc_journal_lost_fn lost;      /* salvage */
  void *opaque;
  struct sc_journal j;          /* only its chain: the slots visited */
  uint8_t *buf;                 /* the slot being replayed */
  uint64_t slot, seq, records;
  uint32_t pos;                 /* of the record in buf */
  uint64_t durable;             /* best commit marker so far */
  uint64_t clean_end;           /* SC_JOURNAL_CLEAN: where it ends */
  struct sc_journal_marks *marks;       /* damaged markers gone past */
  char *err;
  size_t errlen;
};

/* The byte offset of the current record in the file. */
static uint64_t
replay_offset (const struct replay *rp)
{
  return rp->slot * rp->chunk_size + rp->pos;
}

#define REPLAY_CORRUPT(rp, ...) \
  (snprintf ((rp)->err, (rp)->errlen, __VA_ARGS__), -EINVAL)

/* Does the record at p (room bytes left in its slot) check out as record
 * `seq` of this journal? */
static bool
rec_valid (const struct replay *rp, const uint8_t *p, uint32_t room,
           uint64_t seq)
{
  struct sc_rec_hdr h;
  memcpy (&h, p, sizeof h);
  return h.seq == seq && h.len >= sizeof h && h.len % SC_REC_ALIGN == 0 &&
         h.len <= room && h.crc == rec_crc (rp->seed, p, h.len);
}

/* The message of a record that cannot be a torn tail; 2. */
static int
not_a_tear (struct replay *rp, const char *what)
{
  snprintf (rp->err, rp->errlen, "journal record %" PRIu64 " (journal "
            "slot %" PRIu64 ", offset %" PRIu64 ") is damaged: %s", rp->seq,
            rp->slot, replay_offset (rp), what);
  return 2;
}

/* The header of the record at rp->pos: 0 if it is a valid record, 1 if
 * the journal ends here (end of the slot, nothing written, a torn tail),
 * 2 if it is damaged (rp->err says how) and cannot be a torn tail that was
 * never acknowledged, 3 if it is a damaged commit marker (gone past),
 * -EINVAL if it checks out but its type or length is wrong. */
static int
replay_header (struct replay *rp, struct sc_rec_hdr *h)
{
  if (rp->pos + sizeof *h > rp->chunk_size)
    return 1;
  memcpy (h, rp->buf + rp->pos, sizeof *h);
  if (rec_valid (rp, rp->buf + rp->pos, rp->chunk_size - rp->pos, rp->seq)) {
    if (!rec_len_ok ((const void *) (rp->buf + rp->pos)))
      return REPLAY_CORRUPT (rp, "journal record %" PRIu64 " at offset %"
                             PRIu64 ": unknown type %u or bad length %u",
                             rp->seq, replay_offset (rp), h->type, h->len);
    return 0;
  }
  if ((rp->flags & SC_JOURNAL_CLEAN) && rp->seq == rp->clean_end)
    return 1;
  if (damaged_marker (rp->buf + rp->pos, rp->chunk_size - rp->pos,
                      rp->seed, rp->seq))
    return 3;
  enum damage dmg = classify (rp->buf, rp->chunk_size, rp->pos);
  if (rp->seq <= rp->durable) {
    char what[96];
    snprintf (what, sizeof what, "%s, but the journal was closed cleanly "
              "after record %" PRIu64, dmg == DMG_NOTHING
              ? "it reads as zeros" : dmg == DMG_TORN
              ? "a sector of it reads as zeros" : "it fails its checks",
              rp->durable);
    return not_a_tear (rp, what);
  }
  if (dmg == DMG_NOTHING)
    return 1;
  uint32_t at;
  uint64_t mark;
  if (committed_later (rp->buf, rp->chunk_size, rp->pos, rp->seed, rp->seq,
                       &at, &mark)) {
    snprintf (rp->err, rp->errlen, "journal record %" PRIu64 " at offset %"
              PRIu64 " is damaged, but commit record %" PRIu64
              " at offset %" PRIu64 " shows it had been durable",
              rp->seq, replay_offset (rp), mark,
              rp->slot * rp->chunk_size + at);
    return 2;
  }
  if (dmg == DMG_TORN || (rp->flags & SC_JOURNAL_TORN_ANY))
    return 1;
  return not_a_tear (rp, "it was written whole, so it is not a torn "
                     "write, and it and the records after it may have "
                     "been acknowledged");
}

/* A NEXT record: *next_slot the slot the journal goes on in; 1 if the
 * journal ends here instead. */
static int
replay_next (struct replay *rp, const struct sc_rec_next *n,
             uint64_t *next_slot)
{
  uint64_t to = n->slot;
  if (to >= rp->max_slot && to != 0 && rp->seq > rp->durable)
    return 1;   /* not known durable, and the file never grew to its target
                   (a volatile session, or a crash before the commit) */
  if (to == 0 || to >= rp->max_slot)
    return REPLAY_CORRUPT (rp, "journal record %" PRIu64 " at offset %"
                           PRIu64 ": next journal slot %" PRIu64 " is "
                           "outside the diff area", rp->seq,
                           replay_offset (rp), to);
  for (size_t i = 0; i < rp->j.nchain; i++)
    if (rp->j.chain[i] == to)
      return REPLAY_CORRUPT (rp, "journal record %" PRIu64 " at offset %"
                             PRIu64 ": journal chain loops back to slot %"
                             PRIu64, rp->seq, replay_offset (rp), to);
  *next_slot = to;
  return 0;
}

static int
replay_commit (struct replay *rp, const struct sc_rec_commit *c)
{
  if (c->durable_seq >= rp->seq)
    return REPLAY_CORRUPT (rp, "journal record %" PRIu64 " at offset %"
                           PRIu64 ": commit marker vouches for later "
                           "records", rp->seq, replay_offset (rp));
  if (c->durable_seq > rp->durable)
    rp->durable = c->durable_seq;
  return 0;
}

/* ---- salvage: going on past damage ------------------------------------ */

/* A record of this journal numbered after `seq`, anywhere in buf (one
 * slot) from `from` on: its position in *pos and number in *found. */
static bool
find_after (const struct replay *rp, const uint8_t *buf, uint32_t from,
            uint64_t seq, uint32_t *pos, uint64_t *found)
{
  for (uint32_t p = from; p + sizeof (struct sc_rec_hdr) <= rp->chunk_size;
       p += SC_REC_ALIGN) {
    struct sc_rec_hdr h;
    memcpy (&h, buf + p, sizeof h);
    if (h.seq <= seq || h.len < sizeof h || h.len > SC_REC_MAX ||
        h.len > rp->chunk_size - p ||
        !rec_len_ok ((const void *) (buf + p)) ||
        !rec_valid (rp, buf + p, rp->chunk_size - p, h.seq))
      continue;
    *pos = p;
    *found = h.seq;
    return true;
  }
  return false;
}

/* Where the journal goes on after damage at rp->pos: the first record
 * numbered after it in the rest of this slot, or else the lowest numbered
 * one after it in any other slot of the file (a damaged NEXT record hides
 * which slot comes next; the slots are searched for it).  Records of other
 * journals cannot pass: their CRCs have another seed. */
static int
find_continuation (struct replay *rp, uint64_t *slot, uint32_t *pos,
                   uint64_t *found)
{
  if (find_after (rp, rp->buf, rp->pos + SC_REC_ALIGN, rp->seq, pos, found)) {
    *slot = rp->slot;
    return 1;
  }
  uint8_t *buf = malloc (rp->chunk_size);
  if (!buf)
    return -ENOMEM;
  uint64_t first = (SC_SB_AREA + rp->chunk_size - 1) / rp->chunk_size;
  bool any = false;
  for (uint64_t s = first; s < rp->max_slot; s++) {
    if (s == rp->slot)
      continue;
    int r = sc_io_pread (rp->fd, buf, rp->chunk_size, s * rp->chunk_size);
    if (r < 0)
      continue;                 /* an unreadable slot cannot be used */
    uint32_t p;
    uint64_t f;
    if (find_after (rp, buf, 0, rp->seq, &p, &f) && (!any || f < *found)) {
      any = true;
      *slot = s;
      *pos = p;
      *found = f;
    }
  }
  free (buf);
  return any;
}

/* Salvage at damage (rp->err says what; `not_torn`: it cannot be a torn
 * tail): go on at the next record that checks out, reporting the records
 * skipped; 0 to go on (*jump set when that is in another slot, at
 * rp->pos), 1 if the journal ends here. */
static int
salvage_skip (struct replay *rp, bool not_torn, uint64_t *jump)
{
  uint64_t slot = 0, found = 0;
  uint32_t pos = 0;
  int r = find_continuation (rp, &slot, &pos, &found);
  if (r < 0)
    return r;
  if (r == 0 && !not_torn && rp->seq > rp->durable)
    return 1;                   /* a torn tail, and nothing after it */
  struct sc_journal_loss loss = {
    .first_seq = rp->seq, .offset = replay_offset (rp), .why = rp->err,
    .last_seq = r ? found - 1
                  : rp->durable >= rp->seq ? rp->durable   /* clean close */
                                           : SC_JOURNAL_LOST_TO_END,
  };
  if ((r = rp->lost (rp->opaque, &loss)) < 0)
    return r;
  if (found == 0)
    return 1;
  rp->seq = found;
  rp->pos = pos;
  if (slot != rp->slot)
    *jump = slot;
  return 0;
}

/* The records of the slot in rp->buf, in order from rp->pos: 0 with
 * *next_slot where the journal goes on (at rp->pos, 0 after a NEXT
 * record), 1 if it ends in this slot (at rp->pos). */
static int
replay_slot (struct replay *rp, uint64_t *next_slot)
{
  *next_slot = 0;
  while (*next_slot == 0) {
    struct sc_rec_hdr h;
    int r = replay_header (rp, &h);
    bool not_torn = r == 2 || r == -EINVAL;
    if (r == 3) {               /* a damaged marker: no state, go on */
      if (rp->marks) {
        if (rp->marks->count++ == 0) {
          rp->marks->first_seq = rp->seq;
          rp->marks->first_offset = replay_offset (rp);
        }
      }
      rp->pos += sizeof (struct sc_rec_commit);
      rp->seq++;
      rp->records++;
      continue;
    }
    if (r == 0) {
      const void *rec = rp->buf + rp->pos;
      if (h.type == SC_REC_NEXT)
        r = replay_next (rp, rec, next_slot);
      else if (h.type == SC_REC_COMMIT)
        r = replay_commit (rp, rec);
      else
        r = rp->apply (rp->opaque, rec, rp->durable, rp->err, rp->errlen);
      if (r == 0) {
        rp->pos = *next_slot ? 0 : rp->pos + h.len;
        rp->seq++;
        rp->records++;
        continue;
      }
      not_torn = true;          /* it checks out: it was written */
    }
    if (r == 1)
      return 1;
    if (r == 2)
      r = -EINVAL;
    if (r != -EINVAL || !rp->lost)
      return r;
    r = salvage_skip (rp, not_torn, next_slot);
    if (r != 0)
      return r;
  }
  return 0;
}

int
sc_journal_replay (int fd, uint32_t chunk_size, uint32_t seed,
                   uint64_t head_slot, uint64_t head_seq, uint64_t max_slot,
                   unsigned flags, sc_journal_apply_fn apply,
                   sc_journal_lost_fn lost, void *opaque,
                   uint64_t **chain_out, size_t *nchain_out,
                   uint32_t *end_pos, uint64_t *records_out,
                   uint64_t *end_seq, uint64_t *durable_out,
                   struct sc_journal_marks *marks, char *err, size_t errlen)
{
  struct replay rp = {
    .fd = fd, .chunk_size = chunk_size, .seed = seed, .max_slot = max_slot,
    .flags = flags, .apply = apply, .lost = lost, .opaque = opaque,
    .slot = head_slot, .seq = head_seq, .durable = *durable_out,
    .clean_end = *durable_out + 1, .marks = marks, .err = err,
    .errlen = errlen,
  };
  if (marks)
    memset (marks, 0, sizeof *marks);
  if (!(rp.buf = malloc (chunk_size)))
    return -ENOMEM;
  int r = 0;
  while (r == 0) {
    if ((r = chain_push (&rp.j, rp.slot)) < 0)
      break;
    r = sc_io_pread (fd, rp.buf, chunk_size, rp.slot * chunk_size);
    if (r < 0) {
      snprintf (err, errlen, "reading journal slot %" PRIu64
                " at offset %" PRIu64 ": %s",
                rp.slot, rp.slot * chunk_size, strerror (-r));
      break;
    }
    uint64_t next_slot;
    r = replay_slot (&rp, &next_slot);
    if (r == 0)
      rp.slot = next_slot;
  }
  free (rp.buf);
  if (r < 0) {
    free (rp.j.chain);
    return r;
  }
  *chain_out = rp.j.chain;
  *nchain_out = rp.j.nchain;
  *end_pos = rp.pos;
  *durable_out = rp.durable;
  *records_out = rp.records;
  *end_seq = rp.seq;
  return 0;
}

/* ---- what the diff area asks of a journal ---------------------------- */

uint64_t
sc_journal_next_seq (const struct sc_journal *j)
{
  return j->next_seq;
}

uint64_t
sc_journal_records (const struct sc_journal *j)
{
  return j->records;
}

size_t
sc_journal_slots (const struct sc_journal *j)
{
  return j->nchain;
}

size_t
sc_journal_spare_slots (const struct sc_journal *j)
{
  return j->spare ? 1 : 0;
}

void
sc_journal_head (const struct sc_journal *j, uint64_t *slot, uint64_t *seq)
{
  *slot = j->head_slot;
  *seq = j->head_seq;
}

void
sc_journal_set_volatile (struct sc_journal *j, bool volatile_mode)
{
  j->volatile_mode = volatile_mode;
}

int
sc_journal_lead (struct sc_journal *j, pthread_mutex_t *lock)
{
  while (j->syncing)
    pthread_cond_wait (&j->synced, lock);
  if (j->error)
    return j->error;
  j->syncing = true;
  return 0;
}

void
sc_journal_lead_failed (struct sc_journal *j, pthread_mutex_t *lock)
{
  while (j->syncing)
    pthread_cond_wait (&j->synced, lock);
  j->syncing = true;
}

int
sc_journal_error (const struct sc_journal *j, char *what, size_t len)
{
  if (!j->error || j->error_op == SC_JOURNAL_FAILED_APPEND)
    snprintf (what, len, "appending to the journal (a new journal slot)");
  else if (j->error_op == SC_JOURNAL_FAILED_SYNC)
    snprintf (what, len, "the journal commit's fdatasync");
  else
    snprintf (what, len, "writing the journal at slot %" PRIu64
              " (offset %" PRIu64 ")", j->error_off / j->chunk_size,
              j->error_off);
  return j->error;
}

void
sc_journal_unlead (struct sc_journal *j)
{
  j->syncing = false;
  pthread_cond_broadcast (&j->synced);
}

bool
sc_journal_busy (const struct sc_journal *j)
{
  return j->syncing;
}

int
sc_journal_bound_tail (struct sc_journal *j, size_t max)
{
  return j->tail_len >= max ? sc_journal_write_tail (j) : 0;
}

void
sc_journal_mark_durable (struct sc_journal *j)
{
  j->durable_seq = j->next_seq - 1;
  j->zeroed_durable = j->zeroed;
  j->presync = false;
}

void
sc_journal_abandon (struct sc_journal *j)
{
  for (size_t i = 0; i < j->nchain; i++)
    sc_alloc_put (j->alloc, j->chain[i]);
  sc_journal_free (j);
}
