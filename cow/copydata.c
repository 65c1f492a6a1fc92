/* shadowcopy: the copied data: writing the old content of chunks to their
 * slots, and reading it back for snapshot readers.
 *
 * Only cow/ reads and writes the diff-area file.  The engine reads the
 * old data from the origin and hands it over here, in batches, with the
 * slots it reserved (sc_diff_copy_reserve); each batch is one submission
 * to the block I/O layer (cow/io.h).  Reads of adjacent pieces of
 * adjacent slots into adjacent memory are merged into one request.
 *
 * No lock is taken: the slots belong to their reserver until recorded,
 * and a recorded slot is not freed while a pinned snapshot may read it.
 */
#include <config.h>

#include <errno.h>
#include <sys/statvfs.h>

#include "cow/crc32c.h"
#include "cow/diffarea-internal.h"
#include "cow/io.h"

/* Requests handed to the block I/O layer at once. */
#define COPY_BATCH 64

int
sc_diff_copy_write (struct sc_diff *d, struct sc_copy_io *io, size_t n)
{
  struct sc_io_req reqs[COPY_BATCH];
  int first_err = 0;
  for (size_t done = 0; done < n; ) {
    size_t k = n - done < COPY_BATCH ? n - done : COPY_BATCH;
    for (size_t i = 0; i < k; i++) {
      struct sc_copy_io *c = &io[done + i];
      c->crc = crc32c (0, c->buf, d->chunk_size);
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

/* Can piece b be read by the request of piece a, extended? */
static bool
contiguous (const struct sc_io_req *a, const struct sc_copy_io *b)
{
  return a->off + a->len == b->offset + b->at &&
         (uint8_t *) a->buf + a->len == (uint8_t *) b->buf;
}

/* Run nr merged reads; request r read the pieces [owner[r], owner[r + 1])
 * (the last one up to `end`).  Returns the first error. */
static int
run_reads (struct sc_io_req *reqs, const size_t *owner, size_t nr,
           struct sc_copy_io *io, size_t end)
{
  int first_err = 0;
  sc_io_run (reqs, nr);
  for (size_t r = 0; r < nr; r++) {
    size_t to = r + 1 < nr ? owner[r + 1] : end;
    for (size_t p = owner[r]; p < to; p++)
      io[p].result = reqs[r].result;
    if (reqs[r].result < 0 && !first_err)
      first_err = reqs[r].result;
  }
  return first_err;
}

int
sc_diff_copy_read (struct sc_diff *d, struct sc_copy_io *io, size_t n)
{
  struct sc_io_req reqs[COPY_BATCH];
  size_t owner[COPY_BATCH];     /* the first piece each request reads */
  size_t nr = 0;
  int first_err = 0, e;
  for (size_t i = 0; i < n; i++) {
    if (nr && contiguous (&reqs[nr - 1], &io[i])) {
      reqs[nr - 1].len += io[i].len;
      continue;
    }
    if (nr == COPY_BATCH) {
      e = run_reads (reqs, owner, nr, io, i);
      first_err = first_err ? first_err : e;
      nr = 0;
    }
    owner[nr] = i;
    reqs[nr++] = (struct sc_io_req) {
      .op = SC_IO_READ, .fd = d->fd, .buf = io[i].buf, .len = io[i].len,
      .off = io[i].offset + io[i].at,
    };
  }
  if (nr) {
    e = run_reads (reqs, owner, nr, io, n);
    first_err = first_err ? first_err : e;
  }
  return first_err;
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
