/* shadowcopy: the metadata journal: append and group commit (replay is
 * journal-replay.c).
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
#include <limits.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

uint32_t
sc_journal_rec_crc (uint32_t seed, const void *rec, size_t len)
{
  return crc32c (seed, (const uint8_t *) rec + 4, len - 4);
}

int
sc_journal_chain_push (struct sc_journal *j, uint64_t slot)
{
  uint64_t *c = sc_array_room (j->chain, &j->chain_cap, j->nchain,
                               sizeof *c, 16);
  if (!c)
    return -ENOMEM;
  j->chain = c;
  j->chain[j->nchain++] = slot;
  return 0;
}

/* durable_seq is written under the diff area's mutex and read without it
 * by sc_journal_durable. */
static void
set_durable (struct sc_journal *j, uint64_t seq)
{
  __atomic_store_n (&j->durable_seq, seq, __ATOMIC_RELEASE);
}

/* A leader lets go: wake whoever waits for it, with the mutex
 * (sc_journal_sync's followers, a new leader) or without (the write
 * path's followers, sc_journal_await). */
static void
wake_waiters (struct sc_journal *j)
{
  __atomic_add_fetch (&j->leads_ended, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n (&j->sleepers, __ATOMIC_SEQ_CST))
    (void) syscall (SYS_futex, &j->leads_ended, FUTEX_WAKE_PRIVATE, INT_MAX,
                    NULL, NULL, 0);
  pthread_cond_broadcast (&j->synced);
}

static void
end_lead (struct sc_journal *j)
{
  j->syncing = false;
  wake_waiters (j);
}

/* Must a new leader wait? */
static bool
lead_waits (const struct sc_journal *j)
{
  return j->syncing || j->held;
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
    r = sc_journal_chain_push (j, *slot);
  if (r < 0) {
    /* Given back: the journal must not think it still owns it (a spare
     * of 0 is none, and the next switch tries again). */
    sc_alloc_put (j->alloc, *slot);
    *slot = 0;
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
  set_durable (j, first_seq - 1);
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
  set_durable (j, next_seq - 1);
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
  h->crc = sc_journal_rec_crc (j->seed, rec, len);
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
    if (lead_waits (j)) {
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
    if (r < 0)
      set_error (j, r, op, failed_off);
    else {
      if (target > j->durable_seq)
        set_durable (j, target);
      if (!j->volatile_mode && zeroed > j->zeroed_durable)
        j->zeroed_durable = zeroed;
    }
    end_lead (j);
  }
}

bool
sc_journal_durable (const struct sc_journal *j, uint64_t seq)
{
  return __atomic_load_n (&j->durable_seq, __ATOMIC_ACQUIRE) >= seq;
}

bool
sc_journal_await (struct sc_journal *j, uint64_t seq, pthread_mutex_t *lock)
{
  for (;;) {
    if (j->durable_seq >= seq) {
      pthread_mutex_unlock (lock);
      return true;
    }
    if (j->error || !lead_waits (j))
      return false;
    /* The leader (or sc_journal_release_leads) bumps leads_ended under
     * `lock`, which is held here: not before `seen` is read. */
    uint32_t seen = j->leads_ended;
    __atomic_add_fetch (&j->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock (lock);
    while (__atomic_load_n (&j->leads_ended, __ATOMIC_ACQUIRE) == seen)
      (void) syscall (SYS_futex, &j->leads_ended, FUTEX_WAIT_PRIVATE, seen,
                      NULL, NULL, 0);
    __atomic_sub_fetch (&j->sleepers, 1, __ATOMIC_SEQ_CST);
    if (sc_journal_durable (j, seq))
      return true;
    pthread_mutex_lock (lock);
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
  uint32_t leads_ended = j->leads_ended, sleepers = j->sleepers;
  bool held = j->held;
  pthread_cond_destroy (&n->synced);
  /* durable_seq is read without the lock: the copy leaves it as it was,
   * then it changes at once. */
  uint64_t durable = n->durable_seq;
  n->durable_seq = j->durable_seq;
  *j = *n;
  set_durable (j, durable);
  j->synced = synced;
  j->leads_ended = leads_ended;
  j->sleepers = sleepers;
  j->held = held;
  memset (n, 0, sizeof *n);
  end_lead (j);
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
  while (lead_waits (j))
    pthread_cond_wait (&j->synced, lock);
  if (j->error)
    return j->error;
  j->syncing = true;
  return 0;
}

void
sc_journal_lead_failed (struct sc_journal *j, pthread_mutex_t *lock)
{
  while (lead_waits (j))
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
  else if (j->error_op == SC_JOURNAL_FAILED_HELD)
    snprintf (what, len, "holding back the record of a snapshot whose "
              "origin flush failed");
  else
    snprintf (what, len, "writing the journal at slot %" PRIu64
              " (offset %" PRIu64 ")", j->error_off / j->chunk_size,
              j->error_off);
  return j->error;
}

void
sc_journal_unlead (struct sc_journal *j)
{
  end_lead (j);
}

bool
sc_journal_busy (const struct sc_journal *j)
{
  return lead_waits (j);
}

void
sc_journal_hold_leads (struct sc_journal *j)
{
  j->held = true;
}

void
sc_journal_release_leads (struct sc_journal *j)
{
  j->held = false;
  wake_waiters (j);
}

/* The tail holds whole records back to back (put_record). */
struct sc_rec_hdr *
sc_journal_unwritten (struct sc_journal *j, struct sc_rec_hdr *rec)
{
  uint8_t *p = rec ? (uint8_t *) rec + rec->len : j->tail;
  return p && p < j->tail + j->tail_len ? (struct sc_rec_hdr *) p : NULL;
}

void
sc_journal_reseal (const struct sc_journal *j, struct sc_rec_hdr *rec)
{
  rec->crc = sc_journal_rec_crc (j->seed, rec, rec->len);
}

void
sc_journal_fail (struct sc_journal *j, int err, int op)
{
  set_error (j, err, op, 0);
  wake_waiters (j);
}

int
sc_journal_bound_tail (struct sc_journal *j, size_t max)
{
  return j->tail_len >= max ? sc_journal_write_tail (j) : 0;
}

void
sc_journal_mark_durable (struct sc_journal *j)
{
  set_durable (j, j->next_seq - 1);
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
