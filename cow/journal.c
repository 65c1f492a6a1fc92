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
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
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
  if (r < 0)
    sc_alloc_put (j->alloc, *slot);
  return r;
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
   * before appending over them. */
  int r = zero_range (fd, slot * chunk_size + end_pos, chunk_size - end_pos);
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
    j->slot = j->spare;
    j->pos = 0;
    j->spare = 0;
    /* Take the next spare now; if the diff area is full, the current slot
     * still has room and the next switch tries again. */
    (void) take_slot (j, &j->spare);
  }
  return put_record (j, rec, len, seq);
}

static int
write_segs (int fd, const uint8_t *buf, const struct sc_journal_seg *segs,
            size_t n)
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
    if (r < 0)
      return r;
  }
  return 0;
}

int
sc_journal_write_tail (struct sc_journal *j)
{
  int r = write_segs (j->fd, j->tail, j->segs, j->nsegs);
  if (r < 0)
    return j->error = r;
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
        return j->error = r;
    }
    j->syncing = true;
    uint64_t target = j->next_seq - 1;
    uint8_t *buf = j->tail;
    struct sc_journal_seg *segs = j->segs;
    size_t nsegs = j->nsegs;
    j->tail = NULL;
    j->tail_len = j->tail_cap = 0;
    j->segs = NULL;
    j->nsegs = j->segs_cap = 0;

    pthread_mutex_unlock (lock);
    int r = write_segs (j->fd, buf, segs, nsegs);
    if (r == 0 && !j->volatile_mode)
      r = sc_io_fdatasync (j->fd);
    pthread_mutex_lock (lock);

    free (buf);
    free (segs);
    j->syncing = false;
    if (r < 0)
      j->error = r;
    else if (target > j->durable_seq)
      j->durable_seq = target;
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
  default: return false;
  }
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

int
sc_journal_replay (int fd, uint32_t chunk_size, uint32_t seed,
                   uint64_t head_slot, uint64_t head_seq, uint64_t max_slot,
                   sc_journal_apply_fn apply, void *opaque,
                   uint64_t **chain_out, size_t *nchain_out,
                   uint32_t *end_pos, uint64_t *records_out,
                   uint64_t *end_seq, uint64_t *durable_out,
                   char *err, size_t errlen)
{
  struct sc_journal j = { .chain = NULL };
  uint8_t *buf = malloc (chunk_size);
  if (!buf)
    return -ENOMEM;

  uint64_t slot = head_slot, seq = head_seq, records = 0;
  uint32_t pos = 0;
  uint64_t durable = *durable_out; /* best commit marker so far */
  int r = 0;
  bool end = false;
  while (!end) {
    if ((r = chain_push (&j, slot)) < 0)
      break;
    r = sc_io_pread (fd, buf, chunk_size, slot * chunk_size);
    if (r < 0) {
      snprintf (err, errlen, "reading journal slot %" PRIu64
                " at offset %" PRIu64 ": %s",
                slot, slot * chunk_size, strerror (-r));
      break;
    }
    uint64_t next_slot = 0;
    pos = 0;
    while (!end && next_slot == 0) {
      struct sc_rec_hdr h;
      if (pos + sizeof h > chunk_size) {
        end = true;
        break;
      }
      memcpy (&h, buf + pos, sizeof h);
      if (h.seq != seq || h.len < sizeof h || h.len % SC_REC_ALIGN ||
          h.len > chunk_size - pos ||
          h.crc != rec_crc (seed, buf + pos, h.len)) {
        /* The end of the journal, or a torn tail, unless a later commit
         * marker shows this record had been durable. */
        uint32_t at;
        uint64_t mark;
        if (committed_later (buf, chunk_size, pos, seed, seq, &at, &mark)) {
          snprintf (err, errlen, "journal record %" PRIu64 " at offset %"
                    PRIu64 " is damaged, but commit record %" PRIu64
                    " at offset %" PRIu64 " shows it had been durable",
                    seq, slot * chunk_size + pos, mark,
                    slot * chunk_size + at);
          r = -EINVAL;
          goto out;
        }
        end = true;
        break;
      }
      if (!rec_len_ok ((const void *) (buf + pos))) {
        snprintf (err, errlen, "journal record %" PRIu64 " at offset %"
                  PRIu64 ": unknown type %u or bad length %u", seq,
                  slot * chunk_size + pos, h.type, h.len);
        r = -EINVAL;
        goto out;
      }
      if (h.type == SC_REC_NEXT) {
        const struct sc_rec_next *n = (const void *) (buf + pos);
        next_slot = n->slot;
        if (next_slot >= max_slot && next_slot != 0 && seq > durable) {
          /* Not known durable, and the file never grew to its target
           * (a volatile session, or a crash before the commit): the
           * end of the journal. */
          next_slot = 0;
          end = true;
          break;
        }
        if (next_slot == 0 || next_slot >= max_slot) {
          snprintf (err, errlen, "journal record %" PRIu64 " at offset %"
                    PRIu64 ": next journal slot %" PRIu64 " is outside "
                    "the diff area", seq, slot * chunk_size + pos,
                    next_slot);
          r = -EINVAL;
          goto out;
        }
        for (size_t i = 0; i < j.nchain; i++)
          if (j.chain[i] == next_slot) {
            snprintf (err, errlen, "journal record %" PRIu64 " at offset %"
                      PRIu64 ": journal chain loops back to slot %" PRIu64,
                      seq, slot * chunk_size + pos, next_slot);
            r = -EINVAL;
            goto out;
          }
      }
      else if (h.type == SC_REC_COMMIT) {
        const struct sc_rec_commit *c = (const void *) (buf + pos);
        if (c->durable_seq >= seq) {
          snprintf (err, errlen, "journal record %" PRIu64 " at offset %"
                    PRIu64 ": commit marker vouches for later records",
                    seq, slot * chunk_size + pos);
          r = -EINVAL;
          goto out;
        }
        if (c->durable_seq > durable)
          durable = c->durable_seq;
      }
      else if ((r = apply (opaque, (const void *) (buf + pos), durable, err,
                           errlen)) < 0)
        goto out;
      pos += h.len;
      seq++;
      records++;
    }
    slot = next_slot;
  }
 out:
  free (buf);
  if (r < 0) {
    free (j.chain);
    return r;
  }
  *chain_out = j.chain;
  *nchain_out = j.nchain;
  *end_pos = pos;
  *durable_out = durable;
  *records_out = records;
  *end_seq = seq;
  return 0;
}
