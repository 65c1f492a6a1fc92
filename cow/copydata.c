/* shadowcopy: the copied data: writing the old content of chunks to their
 * slots, and reading it back, verified, for snapshot readers.
 *
 * Only cow/ reads and writes the diff-area file.  The engine reads the
 * old data from the origin and hands it over here, in batches, with the
 * slots it reserved (sc_diff_copy_reserve); each batch is one submission
 * to the block I/O layer (cow/io.h).  Reads of adjacent pieces of
 * adjacent slots into adjacent memory are merged into one request.
 *
 * Notes on the design
 *
 * Every read is verified before it is returned (sums.h: one CRC32C per
 * block of max(4K, chunk / 16)).  A piece made of whole blocks is read
 * straight into the caller's buffer and checked there, so a 4K read of a
 * 64K chunk reads 4K.  Any other piece reads the blocks that cover it
 * into the calling thread's bounce buffer (one chunk, allocated once per
 * thread), is checked there and copied out; a copy that a version-1 COPY
 * record made has one CRC of the whole chunk, so a read of part of it
 * reads the whole slot.  A snapshot read covers whole chunks except at
 * its two ends, so at most two pieces of a request take the bounce path.
 *
 * The diff area's lock is taken once per batch, to copy the sums of its
 * slots out; the I/O and the checks run without it.  The slots belong to
 * their reserver until recorded, and a recorded slot is not freed while a
 * pinned snapshot may read it.
 *
 * SC_BENCH_NO_VERIFY (defined only by `make bench` for its comparison
 * build) compiles the checks out; nothing else may define it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"

/* Requests handed to the block I/O layer at once. */
#define COPY_BATCH 64

#ifdef SC_BENCH_NO_VERIFY
#define VERIFY_READS false
#else
#define VERIFY_READS true
#endif

_Static_assert (SC_COPY_SUMS_MAX == SC_SUMS_MAX, "one maximum of sums");

void
sc_diff_copy_sums (struct sc_diff *d, const void *chunk, uint32_t *out)
{
  sc_sums_compute (&d->sums, chunk, out);
}

int
sc_diff_copy_write (struct sc_diff *d, struct sc_copy_io *io, size_t n)
{
  struct sc_io_req reqs[COPY_BATCH];
  int first_err = 0;
  for (size_t done = 0; done < n; ) {
    size_t k = n - done < COPY_BATCH ? n - done : COPY_BATCH;
    for (size_t i = 0; i < k; i++) {
      struct sc_copy_io *c = &io[done + i];
      sc_sums_compute (&d->sums, c->buf, c->sums);
      reqs[i] = (struct sc_io_req) {
        .op = SC_IO_WRITE, .fd = d->fd, .buf = c->buf,
        .len = d->chunk_size, .off = c->offset,
      };
    }
    sc_io_run (reqs, k);
    for (size_t i = 0; i < k; i++) {
      io[done + i].result = reqs[i].result;
      if (reqs[i].result < 0 && !first_err)
        first_err = reqs[i].result;
    }
    done += k;
  }
  return first_err;
}

/* ---- the bounce buffer of a thread ------------------------------------- */

static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

struct bounce { size_t size; uint8_t data[]; };

static void
bounce_make_key (void)
{
  (void) pthread_key_create (&bounce_key, free);
}

/* This thread's buffer of at least `size` bytes (a chunk at most), kept
 * for its next reads and freed when it ends; NULL without memory. */
static uint8_t *
thread_bounce (size_t size)
{
  pthread_once (&bounce_once, bounce_make_key);
  struct bounce *b = pthread_getspecific (bounce_key);
  if (b && b->size >= size)
    return b->data;
  free (b);
  (void) pthread_setspecific (bounce_key, NULL);
  if (!(b = malloc (sizeof *b + size)))
    return NULL;
  b->size = size;
  if (pthread_setspecific (bounce_key, b) != 0) {
    free (b);
    return NULL;
  }
  return b->data;
}

/* ---- verified reads ---------------------------------------------------- */

/* Can piece b be read by the request of piece a, extended? */
static bool
contiguous (const struct sc_io_req *a, const struct sc_copy_io *b)
{
  return a->off + a->len == b->offset + b->at &&
         (uint8_t *) a->buf + a->len == (uint8_t *) b->buf;
}

/* A piece whose checks need no bounce buffer: whole blocks (the whole
 * chunk for a version-1 copy). */
static bool
in_place (const struct sc_diff *d, const struct sc_sums_entry *e,
          const struct sc_copy_io *io)
{
  if (e->whole)
    return io->at == 0 && io->len == d->chunk_size;
  return io->at % d->sums.block == 0 && io->len % d->sums.block == 0;
}

/* Data that failed its checksum: the read fails, the copy's snapshots
 * are damaged. */
static int
bad_data (struct sc_diff *d, const struct sc_copy_io *io,
          const struct sc_sums_entry *e, int block)
{
  LOCKED (d);
  damage_found (d, io->offset / d->chunk_size, e, (uint32_t) block, NULL);
  return -EIO;
}

/* A piece that is not whole blocks: the covering blocks through the
 * bounce buffer. */
static int
read_bounced (struct sc_diff *d, struct sc_copy_io *io,
              const struct sc_sums_entry *e)
{
  uint32_t b = d->sums.block;
  uint32_t lo = e->whole ? 0 : io->at / b * b;
  uint32_t hi = e->whole ? d->chunk_size : (io->at + io->len + b - 1) / b * b;
  uint8_t *buf = thread_bounce (d->chunk_size);
  if (!buf)
    return -ENOMEM;
  int r = sc_io_pread (d->fd, buf, hi - lo, io->offset + lo);
  if (r < 0)
    return r;
  int bad = sc_sums_verify (&d->sums, e, buf, lo, hi - lo);
  if (bad >= 0)
    return bad_data (d, io, e, bad);
  memcpy (io->buf, buf + (io->at - lo), io->len);
  return 0;
}

/* Run nr merged reads; request r read the pieces listed in
 * pieces[owner[r]] up to pieces[owner[r + 1]] (the last one up to
 * `np`).  Then check each piece that was read. */
static void
run_reads (struct sc_diff *d, struct sc_io_req *reqs, const size_t *owner,
           size_t nr, const size_t *pieces, size_t np, struct sc_copy_io *io,
           const struct sc_sums_entry *ent)
{
  sc_io_run (reqs, nr);
  for (size_t r = 0; r < nr; r++) {
    size_t to = r + 1 < nr ? owner[r + 1] : np;
    for (size_t k = owner[r]; k < to; k++) {
      size_t p = pieces[k];
      io[p].result = reqs[r].result;
      int bad = VERIFY_READS && io[p].result == 0
                ? sc_sums_verify (&d->sums, &ent[p], io[p].buf, io[p].at,
                                  io[p].len)
                : -1;
      if (bad >= 0)
        io[p].result = bad_data (d, &io[p], &ent[p], bad);
    }
  }
}

/* At most COPY_BATCH pieces. */
static void
read_group (struct sc_diff *d, struct sc_copy_io *io, size_t n)
{
  struct sc_sums_entry ent[COPY_BATCH];
  int have[COPY_BATCH];         /* sc_sums_get: 1, 0 none, or -errno */
  struct sc_io_req reqs[COPY_BATCH];
  size_t owner[COPY_BATCH];     /* the first of pieces[] each request reads */
  size_t pieces[COPY_BATCH];    /* the pieces read in place, in order */
  size_t nr = 0, np = 0;

  if (VERIFY_READS) {
    LOCKED (d);
    for (size_t i = 0; i < n; i++)
      have[i] = sc_sums_get (&d->sums, io[i].offset / d->chunk_size,
                             &ent[i]);
    if (sc_sums_error (&d->sums) && !d->sums.said) {
      d->sums.said = true;
      diff_say ("the checksums of the copied data cannot be read (%s: their "
                "scratch file or its cache failed): snapshot reads and "
                "scrubs fail with EIO until the next open, which makes them "
                "anew from the journal; no copy is damaged, and copies go "
                "on being made", strerror (sc_sums_error (&d->sums)));
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (VERIFY_READS && !(have[i] > 0 && in_place (d, &ent[i], &io[i])))
      continue;
    if (nr && contiguous (&reqs[nr - 1], &io[i]))
      reqs[nr - 1].len += io[i].len;
    else {
      owner[nr] = np;
      reqs[nr++] = (struct sc_io_req) {
        .op = SC_IO_READ, .fd = d->fd, .buf = io[i].buf, .len = io[i].len,
        .off = io[i].offset + io[i].at,
      };
    }
    pieces[np++] = i;
  }
  if (nr)
    run_reads (d, reqs, owner, nr, pieces, np, io, ent);
  if (!VERIFY_READS || np == n)
    return;
  for (size_t i = 0, k = 0; i < n; i++) {
    if (k < np && pieces[k] == i) {
      k++;
      continue;
    }
    if (have[i] > 0)
      io[i].result = read_bounced (d, &io[i], &ent[i]);
    else if (have[i] < 0) {
      /* The sums cannot be had: never served unchecked, and not damage
       * either (the store failed, not the data). */
      if (sc_debug)
        sc_debug ("diff-area slot %" PRIu64 ": its checksums cannot be "
                  "read (%s): its read fails", io[i].offset / d->chunk_size,
                  strerror (-have[i]));
      io[i].result = -EIO;
    }
    else {
      /* Never served unchecked; every recorded copy has sums. */
      diff_say ("diff-area slot %" PRIu64 " (offset %" PRIu64 ") has no "
                "checksum: its read fails", io[i].offset / d->chunk_size,
                io[i].offset);
      io[i].result = -EIO;
    }
  }
}

int
sc_diff_copy_read (struct sc_diff *d, struct sc_copy_io *io, size_t n)
{
  int first_err = 0;
  for (size_t done = 0; done < n; ) {
    size_t k = n - done < COPY_BATCH ? n - done : COPY_BATCH;
    read_group (d, io + done, k);
    for (size_t i = done; i < done + k; i++)
      if (io[i].result < 0 && !first_err)
        first_err = io[i].result;
    done += k;
  }
  return first_err;
}

/* ---- whole copies: the scrub and check --data --------------------------- */

int
sc_diff_verify_next (struct sc_diff *d, uint64_t slot, void *buf,
                     struct sc_copy_verify *v)
{
  struct sc_sums_entry e;
  memset (v, 0, sizeof *v);
  {
    LOCKED (d);
    int r = sc_sums_next (&d->sums, slot, &slot);
    if (r > 0)
      r = sc_sums_get (&d->sums, slot, &e);
    if (r == 0)
      return 0;                 /* the end */
    if (r < 0) {
      v->walk_failed = true;    /* the walk cannot go on */
      return r;
    }
  }
  v->slot = slot;
  v->chunk = e.chunk;
  v->epoch = e.epoch;
  v->bytes = d->chunk_size;
  int r = sc_io_pread (d->fd, buf, d->chunk_size, slot * d->chunk_size);
  if (r < 0)
    return r;
  int bad = VERIFY_READS ? sc_sums_verify (&d->sums, &e, buf, 0,
                                           d->chunk_size) : -1;
  if (bad >= 0) {
    LOCKED (d);
    damage_found (d, slot, &e, (uint32_t) bad, v);
  }
  return 1;
}

int
sc_diff_fs_free (struct sc_diff *d, uint64_t *bytes)
{
  struct statvfs fs;
  if (fstatvfs (d->fd, &fs) == -1)
    return -errno;
  *bytes = (uint64_t) fs.f_bavail * fs.f_frsize;
  return 0;
}
