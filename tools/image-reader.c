/* shadowcopy: a backup image read block by block, verified
 * (image-reader.h).
 *
 * Notes on the design
 *
 * A ring of W slots, one block each: block b lives in slot b % W.  The
 * loop issues reads for the blocks ahead (each block cut into reads of
 * at most PIECE bytes, NBD's requests being bounded) while fewer than W
 * are outstanding, then hands on the oldest block once all its reads are
 * in, and polls libnbd when it cannot do either.  So up to W blocks are
 * in flight and they come out in order.  Block status is asked a span
 * (at most 1 GiB) at a time, ahead of the reads; a block is "zero" only
 * when every byte of it was reported zero.
 *
 * On any error the reads still in flight are waited for before the slots
 * are freed (libnbd writes into them until they complete).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "tools/image-reader.h"

#define WINDOW_BYTES (16u << 20)
#define WINDOW_MAX 256u
#define PIECE (1u << 20)
#define STATUS_SPAN (1ull << 30)

struct slot {
  char *buf;
  size_t len;
  unsigned pending;             /* reads not completed yet */
  int error;                    /* the first read's errno */
  bool zero;                    /* block status: all zeros, not read */
};

/* Which blocks of [first, first + n) block status says are zero. */
struct zero_map {
  uint64_t first, n;
  bool *zero;
  uint64_t next;                /* the next byte the replies describe */
  uint64_t start, end;          /* the span asked, in bytes */
  uint64_t block_size;
};

struct reader {
  struct nbd_handle *nbd;
  const char *name;
  const struct sc_manifest *m;
  struct slot *slots;
  unsigned w;
  struct zero_map z;
  uint32_t crc_zero_block, crc_zero_last;
  char *err;
  size_t errlen;
};

static int
on_extents (void *opaque, const char *context, uint64_t offset,
            uint32_t *entries, size_t nr, int *error)
{
  struct zero_map *z = opaque;

  if (strcmp (context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr && z->next < z->end; i += 2) {
    uint64_t len = entries[i];
    if (len == 0)
      break;
    if (len > z->end - z->next)
      len = z->end - z->next;
    if (!(entries[i + 1] & LIBNBD_STATE_ZERO))
      for (uint64_t b = z->next / z->block_size;
           b <= (z->next + len - 1) / z->block_size; b++)
        z->zero[b - z->first] = false;
    z->next += len;
  }
  return 0;
}

/* Block status for the span of blocks from `first`. */
static int
map_zeros (struct reader *r, uint64_t first)
{
  struct zero_map *z = &r->z;
  uint64_t bs = r->m->block_size, size = r->m->volume_size;
  uint64_t n = STATUS_SPAN / bs ? STATUS_SPAN / bs : 1;

  if (n > r->m->nblocks - first)
    n = r->m->nblocks - first;
  z->first = first;
  z->n = n;
  z->start = z->next = first * bs;
  z->end = (first + n) * bs < size ? (first + n) * bs : size;
  z->block_size = bs;
  if (!nbd_can_meta_context (r->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION)) {
    memset (z->zero, 0, n * sizeof *z->zero);
    return 0;
  }
  for (uint64_t i = 0; i < n; i++)
    z->zero[i] = true;
  while (z->next < z->end) {
    uint64_t before = z->next;
    if (nbd_block_status (r->nbd, z->end - z->next, z->next,
                          (nbd_extent_callback) { .callback = on_extents,
                                                  .user_data = z }, 0) < 0) {
      snprintf (r->err, r->errlen, "block status of %s at %" PRIu64 ": %s",
                r->name, z->next, nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
    if (z->next == before) {
      snprintf (r->err, r->errlen, "block status of %s at %" PRIu64 ": the "
                "server said nothing about it", r->name, before);
      return -EPROTO;
    }
  }
  return 0;
}

static int
on_read_done (void *opaque, int *error)
{
  struct slot *s = opaque;

  s->pending--;
  if (*error && !s->error)
    s->error = *error;
  return 1;                     /* retire the command */
}

/* Start reading block b into its slot. */
static int
issue (struct reader *r, uint64_t b)
{
  struct slot *s = &r->slots[b % r->w];
  uint64_t bs = r->m->block_size, off = b * bs;
  int e;

  if (b >= r->z.first + r->z.n && (e = map_zeros (r, b)) < 0)
    return e;
  s->len = r->m->volume_size - off < bs ? (size_t) (r->m->volume_size - off)
    : (size_t) bs;
  s->pending = 0;
  s->error = 0;
  s->zero = r->z.zero[b - r->z.first];
  if (s->zero)
    return 0;
  for (size_t done = 0; done < s->len; done += PIECE) {
    size_t k = s->len - done < PIECE ? s->len - done : PIECE;
    s->pending++;
    if (nbd_aio_pread (r->nbd, s->buf + done, k, off + done,
                       (nbd_completion_callback) { .callback = on_read_done,
                                                   .user_data = s },
                       0) < 0) {
      s->pending--;
      snprintf (r->err, r->errlen, "cannot read %s at %" PRIu64 ": %s",
                r->name, off + done, nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
  }
  return 0;
}

/* Block b, all read: its CRC checked, then handed on. */
static int
hand_on (struct reader *r, uint64_t b, sc_image_block_fn fn, void *opaque,
         struct sc_image_damage *bad)
{
  struct slot *s = &r->slots[b % r->w];
  uint64_t off = b * r->m->block_size;
  uint32_t crc;

  if (s->error) {
    snprintf (r->err, r->errlen, "cannot read %s at %" PRIu64 " (%zu "
              "bytes): %s", r->name, off, s->len, strerror (s->error));
    return -s->error;
  }
  if (s->zero)
    crc = s->len == r->m->block_size ? r->crc_zero_block : r->crc_zero_last;
  else
    crc = crc32c (0, s->buf, s->len);
  if (crc != r->m->crc[b]) {
    *bad = (struct sc_image_damage) { .block = b, .offset = off,
                                      .length = s->len, .found = crc,
                                      .want = r->m->crc[b] };
    snprintf (r->err, r->errlen, "%s is damaged: bytes %" PRIu64 "-%" PRIu64
              " (block %" PRIu64 " of %" PRIu64 " bytes): CRC32C %08x, the "
              "manifest says %08x", r->name, off, off + s->len - 1, b,
              r->m->block_size, crc, r->m->crc[b]);
    return -EBADMSG;
  }
  return fn ? fn (opaque, off, s->zero ? NULL : s->buf, s->len, r->err,
                  r->errlen) : 0;
}

int
sc_image_read_verified (struct nbd_handle *nbd, const char *name,
                        const struct sc_manifest *m, sc_image_block_fn fn,
                        void *opaque, sc_backup_progress_fn progress,
                        void *progress_opaque, struct sc_image_damage *bad,
                        char *err, size_t errlen)
{
  struct reader r = { .nbd = nbd, .name = name, .m = m, .err = err,
                      .errlen = errlen };
  uint64_t next_issue = 0, next_done = 0;
  uint64_t span = STATUS_SPAN / m->block_size ? STATUS_SPAN / m->block_size
    : 1;
  int ret = 0;

  r.w = WINDOW_BYTES / m->block_size;
  r.w = r.w < 1 ? 1 : r.w > WINDOW_MAX ? WINDOW_MAX : r.w;
  r.crc_zero_block = crc32c_zeros (0, m->block_size);
  r.crc_zero_last = crc32c_zeros (0, m->volume_size % m->block_size);
  r.slots = calloc (r.w, sizeof *r.slots);
  r.z.zero = calloc (span, sizeof *r.z.zero);
  if (!r.slots || !r.z.zero)
    goto nomem;
  for (unsigned i = 0; i < r.w; i++)
    if (!(r.slots[i].buf = malloc (m->block_size)))
      goto nomem;

  while (next_done < m->nblocks && ret == 0) {
    while (next_issue < m->nblocks && next_issue - next_done < r.w &&
           ret == 0)
      if ((ret = issue (&r, next_issue)) == 0)
        next_issue++;
    if (ret < 0)
      break;
    if (r.slots[next_done % r.w].pending > 0) {
      if (nbd_poll (nbd, -1) < 0) {
        snprintf (err, errlen, "reading %s: %s", name, nbd_get_error ());
        ret = -(nbd_get_errno () ?: EIO);
      }
      continue;
    }
    if ((ret = hand_on (&r, next_done, fn, opaque, bad)) < 0)
      break;
    next_done++;
    if (progress) {
      uint64_t done = next_done * m->block_size;
      progress (progress_opaque, done < m->volume_size ? done
                : m->volume_size, m->volume_size);
    }
  }
  if (m->nblocks == 0 && progress)
    progress (progress_opaque, 0, 0);
  goto out;

nomem:
  snprintf (err, errlen, "%s", strerror (ENOMEM));
  ret = -ENOMEM;
out:
  while (nbd_aio_in_flight (nbd) > 0)
    if (nbd_poll (nbd, -1) < 0)
      break;
  for (unsigned i = 0; r.slots && i < r.w; i++)
    free (r.slots[i].buf);
  free (r.slots);
  free (r.z.zero);
  return ret;
}
