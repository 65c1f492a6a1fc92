/* shadowcopy: the backup copy engine (backup-copy.h).
 *
 * Notes on the design
 *
 * One thread, one NBD connection, `requests` slots of `request_size`
 * bytes.  The ranges are walked in windows of at most 1 GiB; each window's
 * block status is asked first (synchronously: it is small next to the
 * data), then its data extents are cut into reads issued with
 * nbd_aio_pread into free slots.  When no slot is free, nbd_poll runs
 * until a read completes; a completed slot is written to the sink (or
 * zeroed, when it read back as zeros) in the loop, never in libnbd's
 * callback, so a sink may itself be slow or talk NBD.  Writes to the sink
 * may thus come out of order; every range is written exactly once.
 *
 * On an error, the reads still in flight are waited for before the slots
 * are freed (libnbd writes into them until they complete).
 *
 * Multi-conn (a connection per worker where the server offers it) is
 * left for later: the engine's interface does not change for it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/backup-copy.h"

#define WINDOW (1ull << 30)

struct slot {
  char *buf;
  uint64_t offset;
  size_t len;
  bool busy;                    /* issued, not yet handed to the sink */
  bool done;                    /* completed by libnbd */
  int error;                    /* its errno */
};

struct engine {
  struct nbd_handle *nbd;
  const struct sc_backup_copy_opts *opts;
  const struct sc_backup_sink *sink;
  struct sc_backup_stats *stats;
  struct slot *slots;
  unsigned nslots;
  uint64_t done, total;
  char *err;
  size_t errlen;
};

/* One block status extent, clipped to its window. */
struct bs_extent { uint64_t offset, length; bool zero; };

struct bs_list {
  struct bs_extent *v;
  size_t n, cap;
  uint64_t start, end;          /* the window */
  uint64_t next;                /* where the next extent starts */
  int failed;
};

static void
progress (struct engine *e, uint64_t n)
{
  e->done += n;
  if (e->opts->progress)
    e->opts->progress (e->opts->progress_opaque, e->done, e->total);
}

static int
on_extents (void *opaque, const char *context, uint64_t offset,
            uint32_t *entries, size_t nr, int *error)
{
  struct bs_list *l = opaque;

  if (strcmp (context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr && l->next < l->end; i += 2) {
    uint64_t len = entries[i];
    bool zero = (entries[i + 1] & LIBNBD_STATE_ZERO) != 0;
    if (len == 0)
      break;
    if (len > l->end - l->next)
      len = l->end - l->next;
    if (l->n && l->v[l->n - 1].zero == zero)
      l->v[l->n - 1].length += len;
    else {
      if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct bs_extent *v = reallocarray (l->v, cap, sizeof *v);
        if (!v) {
          l->failed = ENOMEM;
          return -1;
        }
        l->v = v;
        l->cap = cap;
      }
      l->v[l->n++] = (struct bs_extent) { l->next, len, zero };
    }
    l->next += len;
  }
  return 0;
}

/* What is data and what is zero in [start, end): into l. */
static int
block_status (struct engine *e, uint64_t start, uint64_t end,
              struct bs_list *l)
{
  l->n = 0;
  l->start = l->next = start;
  l->end = end;
  l->failed = 0;
  if (!nbd_can_meta_context (e->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION)) {
    l->next = start;
    return on_extents (l, LIBNBD_CONTEXT_BASE_ALLOCATION, start,
                       (uint32_t[]) { (uint32_t) (end - start), 0 }, 2,
                       NULL) < 0 ? -ENOMEM : 0;
  }
  while (l->next < end) {
    uint64_t before = l->next;
    if (nbd_block_status (e->nbd, end - l->next, l->next,
                          (nbd_extent_callback) { .callback = on_extents,
                                                  .user_data = l }, 0) < 0) {
      int r = l->failed ? -l->failed : -(nbd_get_errno () ?: EIO);
      snprintf (e->err, e->errlen, "block status of the snapshot at %"
                PRIu64 ": %s", l->next, l->failed ? strerror (l->failed) :
                nbd_get_error ());
      return r;
    }
    if (l->next == before) {
      snprintf (e->err, e->errlen, "block status of the snapshot at %"
                PRIu64 ": the server said nothing about it", before);
      return -EPROTO;
    }
  }
  return 0;
}

static int
on_read_done (void *opaque, int *error)
{
  struct slot *s = opaque;

  s->done = true;
  s->error = *error;
  return 1;                     /* retire the command */
}

static bool
all_zero (const char *buf, size_t len)
{
  static const char zeros[4096];
  for (size_t i = 0; i < len; i += sizeof zeros) {
    size_t k = len - i < sizeof zeros ? len - i : sizeof zeros;
    if (memcmp (buf + i, zeros, k) != 0)
      return false;
  }
  return true;
}

/* Hand completed slots to the sink. */
static int
harvest (struct engine *e)
{
  for (unsigned i = 0; i < e->nslots; i++) {
    struct slot *s = &e->slots[i];
    int r;

    if (!s->busy || !s->done)
      continue;
    s->busy = false;
    if (s->error) {
      snprintf (e->err, e->errlen, "cannot read the snapshot at %" PRIu64
                " (%zu bytes): %s", s->offset, s->len, strerror (s->error));
      return -s->error;
    }
    e->stats->bytes_read += s->len;
    if (all_zero (s->buf, s->len)) {
      r = 0;
      if (!e->opts->target_is_zero) {
        r = e->sink->zero (e->sink->opaque, s->offset, s->len);
        e->stats->bytes_zeroed += s->len;
      }
    }
    else {
      r = e->sink->write (e->sink->opaque, s->buf, s->len, s->offset);
      e->stats->bytes_written += s->len;
    }
    if (r < 0) {
      snprintf (e->err, e->errlen, "cannot write %s at %" PRIu64 ": %s",
                e->sink->name, s->offset, strerror (-r));
      return r;
    }
    progress (e, s->len);
  }
  return 0;
}

static int
free_slot (struct engine *e, struct slot **out)
{
  for (;;) {
    int r = harvest (e);
    if (r < 0)
      return r;
    for (unsigned i = 0; i < e->nslots; i++)
      if (!e->slots[i].busy) {
        *out = &e->slots[i];
        return 0;
      }
    if (nbd_poll (e->nbd, -1) < 0) {
      snprintf (e->err, e->errlen, "reading the snapshot: %s",
                nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
  }
}

static int
read_data (struct engine *e, uint64_t off, uint64_t len)
{
  while (len) {
    struct slot *s = NULL;
    size_t k = len < e->opts->request_size ? (size_t) len
      : e->opts->request_size;
    int r = free_slot (e, &s);
    if (r < 0)
      return r;
    *s = (struct slot) { .buf = s->buf, .offset = off, .len = k,
                         .busy = true };
    if (nbd_aio_pread (e->nbd, s->buf, k, off,
                       (nbd_completion_callback) { .callback = on_read_done,
                                                   .user_data = s },
                       0) < 0) {
      s->busy = false;
      snprintf (e->err, e->errlen, "cannot read the snapshot at %" PRIu64
                ": %s", off, nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
    off += k;
    len -= k;
  }
  return 0;
}

static int
drain (struct engine *e, bool harvesting)
{
  for (;;) {
    bool busy = false;
    if (harvesting) {
      int r = harvest (e);
      if (r < 0)
        return r;
    }
    for (unsigned i = 0; i < e->nslots; i++)
      busy |= e->slots[i].busy && !(e->slots[i].done && !harvesting);
    if (!busy || nbd_aio_in_flight (e->nbd) <= 0)
      return 0;
    if (nbd_poll (e->nbd, -1) < 0) {
      if (harvesting) {
        snprintf (e->err, e->errlen, "reading the snapshot: %s",
                  nbd_get_error ());
        return -(nbd_get_errno () ?: EIO);
      }
      return 0;
    }
  }
}

int
sc_backup_copy (struct nbd_handle *nbd,
                const struct sc_backup_range *ranges, size_t n,
                const struct sc_backup_copy_opts *opts,
                const struct sc_backup_sink *sink,
                struct sc_backup_stats *stats, char *err, size_t errlen)
{
  struct sc_backup_copy_opts o = *opts;
  struct engine e = { .nbd = nbd, .opts = &o, .sink = sink, .stats = stats,
                      .err = err, .errlen = errlen };
  struct bs_list l = { .v = NULL };
  int r = 0;

  if (!o.requests)
    o.requests = 16;
  if (!o.request_size)
    o.request_size = 1024 * 1024;
  for (size_t i = 0; i < n; i++)
    e.total += ranges[i].length;
  e.slots = calloc (o.requests, sizeof *e.slots);
  if (!e.slots)
    goto nomem;
  e.nslots = o.requests;
  for (unsigned i = 0; i < e.nslots; i++)
    if (!(e.slots[i].buf = malloc (o.request_size)))
      goto nomem;

  for (size_t i = 0; i < n && r == 0; i++) {
    uint64_t pos = ranges[i].offset, end = pos + ranges[i].length;
    while (pos < end && r == 0) {
      uint64_t wend = end - pos > WINDOW ? pos + WINDOW : end;
      r = block_status (&e, pos, wend, &l);
      for (size_t x = 0; x < l.n && r == 0; x++) {
        if (!l.v[x].zero) {
          r = read_data (&e, l.v[x].offset, l.v[x].length);
          continue;
        }
        if (!o.target_is_zero) {
          r = sink->zero (sink->opaque, l.v[x].offset, l.v[x].length);
          if (r < 0) {
            snprintf (err, errlen, "cannot zero %s at %" PRIu64 ": %s",
                      sink->name, l.v[x].offset, strerror (-r));
            break;
          }
          stats->bytes_zeroed += l.v[x].length;
        }
        progress (&e, l.v[x].length);
      }
      pos = wend;
    }
  }
  if (r == 0)
    r = drain (&e, true);
  else
    drain (&e, false);
  goto out;

nomem:
  snprintf (err, errlen, "%s", strerror (ENOMEM));
  r = -ENOMEM;
out:
  for (unsigned i = 0; e.slots && i < e.nslots; i++)
    free (e.slots[i].buf);
  free (e.slots);
  free (l.v);
  return r;
}
