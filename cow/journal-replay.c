/* shadowcopy: replaying the journal: reading records back, telling a torn
 * tail from damage, and going on past damage for salvage.  The notes on
 * the design are at the top of journal.c and in docs/design.md
 * ("Journal", "Damage is not a torn tail", "Salvage").
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "cow/io.h"
#include "cow/journal.h"

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
  case SC_REC_SNAP_UUID: return h->len == sizeof (struct sc_rec_snap_uuid);
  case SC_REC_KEEP_CHECKPOINT:
    return h->len == sizeof (struct sc_rec_keep_checkpoint);
  case SC_REC_CLONE_BASE: return h->len == sizeof (struct sc_rec_clone_base);
  case SC_REC_CLONE_DATA: {
    const struct sc_rec_clone_data *c = (const void *) h;
    return h->len >= sizeof *c && c->nsums <= SC_SUMS_MAX &&
           h->len == sc_rec_padded (sizeof *c + c->nsums * sizeof (uint32_t));
  }
  case SC_REC_REVERT: return h->len == sizeof (struct sc_rec_revert);
  case SC_REC_REVERT_DONE:
    return h->len == sizeof (struct sc_rec_revert_done);
  case SC_REC_REVERT_END: return h->len == sizeof (struct sc_rec_revert_end);
  case SC_REC_REVERT_RATE:
    return h->len == sizeof (struct sc_rec_revert_rate);
  case SC_REC_VOID: return h->len == sizeof (struct sc_rec_void);
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
  case SC_REC_SNAP_UUID: fixed = sizeof (struct sc_rec_snap_uuid); break;
  case SC_REC_KEEP_CHECKPOINT:
    fixed = sizeof (struct sc_rec_keep_checkpoint);
    break;
  case SC_REC_CLONE_BASE: fixed = sizeof (struct sc_rec_clone_base); break;
  case SC_REC_CLONE_DATA: {
    struct sc_rec_clone_data c;
    if (sizeof c > room)
      return 0;
    memcpy (&c, p, sizeof c);
    if (c.nsums > SC_SUMS_MAX)
      return 0;
    return sc_rec_padded (sizeof c + c.nsums * sizeof (uint32_t));
  }
  case SC_REC_REVERT: fixed = sizeof (struct sc_rec_revert); break;
  case SC_REC_REVERT_DONE: fixed = sizeof (struct sc_rec_revert_done); break;
  case SC_REC_REVERT_END: fixed = sizeof (struct sc_rec_revert_end); break;
  case SC_REC_REVERT_RATE: fixed = sizeof (struct sc_rec_revert_rate); break;
  case SC_REC_VOID: fixed = sizeof (struct sc_rec_void); break;
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
    if (sc_io_all_zero (buf + from, sec + SECTOR - from))
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
        c.durable_seq >= seq && c.h.crc == sc_journal_rec_crc (seed, buf + p, len)) {
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
      if (sc_journal_rec_crc (seed, rec, len) == h.crc)
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
         h.len <= room && h.crc == sc_journal_rec_crc (rp->seed, p, h.len);
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
    if ((r = sc_journal_chain_push (&rp.j, rp.slot)) < 0)
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

