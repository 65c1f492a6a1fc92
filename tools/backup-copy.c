/* shadowcopy: the backup copy engine (backup-copy.h).
 *
 * Notes on the design
 *
 * One thread, one to SC_BACKUP_MAX_CONNECTIONS NBD connections, and
 * `requests` slots of `request_size` bytes.  The ranges are walked in
 * windows of at most 1 GiB; each window's block status is asked first on
 * the first connection (synchronously: it is small next to the data),
 * then its data extents are cut into reads issued with nbd_aio_pread
 * into free slots, each on the connection with the fewest reads in
 * flight.  When no slot is free, poll(2) waits on every connection's
 * socket (libnbd's own nbd_poll waits on one, and goes on through EINTR,
 * where a stop request must be seen).  A completed slot is written to
 * the sink (or zeroed, when it read back as zeros) in the loop, never in
 * libnbd's callback, so a sink may itself be slow or talk NBD.  Writes to
 * the sink may thus come out of order; every range is written exactly
 * once.  A read never crosses a multiple of request_size, so that with
 * the manifest's block size as request_size a data block is the one read
 * of its block (the caller's piece callback can sum it from the buffer).
 *
 * The watermark.  Every piece of the ranges (a read, or a zero extent
 * handled at once) gets an entry in a ring, in offset order, with the
 * bytes it read, wrote and zeroed once done.  Done entries at the head
 * are retired into the counts below the watermark, which is the offset
 * of the oldest entry not done (or where issuing got to).  So the counts
 * reported with a watermark are exact, without draining the reads in
 * flight.  The ring holds four times the slots: when a slow read at its
 * head keeps it full, no new read is issued until that one is done, so
 * the work above the watermark (redone by a resume) stays bounded.
 *
 * On an error, the reads still in flight are waited for before the slots
 * are freed (libnbd writes into them until they complete): on every
 * connection, until none has a read in flight, whatever the wait meets
 * (a connection that dies has its reads retired by libnbd, with an
 * error), also after a stop's drain failed.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cow/io.h"
#include "tools/backup-copy.h"

#define WINDOW (1ull << 30)
#define DEFAULT_WATERMARK_BYTES (256ull << 20)
#define DEFAULT_WATERMARK_MS 5000u
#define POLL_MS 1000            /* a stop request is seen at least this often */

struct conn {
  struct nbd_handle *nbd;
  unsigned in_flight;
};

struct slot {
  char *buf;
  uint64_t offset;
  size_t len;
  uint64_t seq;                 /* its entry in the ring */
  struct conn *conn;
  bool busy;                    /* issued, not yet handed to the sink */
  bool done;                    /* completed by libnbd */
  int error;                    /* its errno */
  size_t seen;                  /* bytes the server sent (data or hole) */
};

/* A piece of the ranges, in offset order. */
struct entry {
  uint64_t offset, len;
  bool done;
  struct sc_backup_stats stats; /* its own counts, once done */
};

struct engine {
  struct conn conns[SC_BACKUP_MAX_CONNECTIONS];
  unsigned nconn;
  const struct sc_backup_copy_opts *opts;
  const struct sc_backup_sink *sink;
  struct slot *slots;
  unsigned nslots;
  struct entry *ring;
  uint64_t cap, head, tail;     /* entries head..tail-1 are in the ring */
  uint64_t issued;              /* where issuing got to */
  struct sc_backup_stats below; /* the work below the watermark */
  uint64_t done_below;          /* the ranges' bytes below it */
  uint64_t done, total;         /* for progress: done out of order too */
  uint64_t reported, reported_done, reported_ms;
  bool report_failed;
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

static uint64_t
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static bool
stopped (struct engine *e)
{
  if (!e->opts->stop || !*e->opts->stop)
    return false;
  snprintf (e->err, e->errlen, "interrupted");
  return true;
}

static void
progress (struct engine *e, uint64_t n)
{
  e->done += n;
  if (e->opts->progress)
    e->opts->progress (e->opts->progress_opaque, e->done, e->total);
}

static uint64_t
watermark (const struct engine *e)
{
  return e->head < e->tail ? e->ring[e->head % e->cap].offset : e->issued;
}

/* Report the watermark if it moved enough (or at all, when forced). */
static int
report (struct engine *e, bool force)
{
  const struct sc_backup_copy_opts *o = e->opts;
  uint64_t wm = watermark (e), now;
  int r;

  if (!o->watermark || wm <= e->reported)
    return 0;
  now = mono_ms ();
  if (!force && e->done_below - e->reported_done < o->watermark_bytes
      && now - e->reported_ms < o->watermark_ms)
    return 0;
  r = o->watermark (o->watermark_opaque, wm, &e->below, e->err, e->errlen);
  if (r < 0) {
    e->report_failed = true;
    return r;
  }
  e->reported = wm;
  e->reported_done = e->done_below;
  e->reported_ms = now;
  return 0;
}

/* Retire the done entries at the head of the ring. */
static int
advance (struct engine *e)
{
  while (e->head < e->tail && e->ring[e->head % e->cap].done) {
    const struct entry *x = &e->ring[e->head % e->cap];
    e->below.bytes_read += x->stats.bytes_read;
    e->below.bytes_written += x->stats.bytes_written;
    e->below.bytes_zeroed += x->stats.bytes_zeroed;
    e->done_below += x->len;
    e->head++;
  }
  return report (e, false);
}

static struct entry *
push (struct engine *e, uint64_t offset, uint64_t len, uint64_t *seq)
{
  struct entry *x = &e->ring[e->tail % e->cap];
  *x = (struct entry) { .offset = offset, .len = len };
  if (seq)
    *seq = e->tail;
  e->tail++;
  e->issued = offset + len;
  return x;
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
  struct nbd_handle *nbd = e->conns[0].nbd;

  l->n = 0;
  l->start = l->next = start;
  l->end = end;
  l->failed = 0;
  if (!nbd_can_meta_context (nbd, LIBNBD_CONTEXT_BASE_ALLOCATION)) {
    l->next = start;
    return on_extents (l, LIBNBD_CONTEXT_BASE_ALLOCATION, start,
                       (uint32_t[]) { (uint32_t) (end - start), 0 }, 2,
                       NULL) < 0 ? -ENOMEM : 0;
  }
  while (l->next < end) {
    uint64_t before = l->next;
    if (nbd_block_status (nbd, end - l->next, l->next,
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

/* Each piece of a read's reply: libnbd has put it in the buffer (a hole
 * as zeros).  Counted, because libnbd checks that a read got all its
 * bytes only for a command retired by nbd_aio_command_completed, not one
 * retired by its completion callback: a server that answered part of a
 * read and said it was done would leave the rest of the buffer as it was
 * (an earlier read's data, pread_initialize being off). */
static int
on_read_chunk (void *opaque, const void *subbuf, size_t count,
               uint64_t offset, unsigned status, int *error)
{
  struct slot *s = opaque;
  (void) subbuf; (void) offset; (void) status; (void) error;
  s->seen += count;
  return 0;
}

static int
on_read_done (void *opaque, int *error)
{
  struct slot *s = opaque;

  s->done = true;
  s->error = *error;
  if (s->error == 0 && s->seen != s->len)
    s->error = EIO;             /* a short reply: never trusted */
  s->conn->in_flight--;
  return 1;                     /* retire the command */
}

/* An errno that says the connection is gone. */
static bool
server_gone (int err)
{
  return err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET
    || err == EPIPE;
}

/* Tell the caller that [off, off + len) is in the target. */
static void
piece (struct engine *e, uint64_t off, uint64_t len, const void *buf)
{
  if (e->opts->piece)
    e->opts->piece (e->opts->piece_opaque, off, len, buf);
}

/* Hand completed slots to the sink. */
static int
harvest (struct engine *e)
{
  for (unsigned i = 0; i < e->nslots; i++) {
    struct slot *s = &e->slots[i];
    struct entry *x = &e->ring[s->seq % e->cap];
    int r;

    if (!s->busy || !s->done)
      continue;
    s->busy = false;
    if (s->error) {
      snprintf (e->err, e->errlen, "cannot read the snapshot at %" PRIu64
                " (%zu bytes): %s%s", s->offset, s->len, strerror (s->error),
                server_gone (s->error) ? " (the NBD server closed the "
                "connection)" : "");
      return -s->error;
    }
    x->stats.bytes_read = s->len;
    bool zero = sc_io_all_zero (s->buf, s->len);
    if (zero) {
      r = 0;
      if (!e->opts->target_is_zero) {
        r = e->sink->zero (e->sink->opaque, s->offset, s->len);
        x->stats.bytes_zeroed = s->len;
      }
    }
    else {
      r = e->sink->write (e->sink->opaque, s->buf, s->len, s->offset);
      x->stats.bytes_written = s->len;
    }
    if (r < 0) {
      snprintf (e->err, e->errlen, "cannot write %s at %" PRIu64 ": %s",
                e->sink->name, s->offset, strerror (-r));
      return r;
    }
    piece (e, s->offset, s->len, zero ? NULL : s->buf);
    x->done = true;
    progress (e, s->len);
    if ((r = advance (e)) < 0)
      return r;
  }
  return 0;
}

/* Reads in flight on a connection that is not dead (libnbd retires
 * those of a dead one, with an error). */
static bool
any_in_flight (const struct engine *e)
{
  for (unsigned i = 0; i < e->nconn; i++)
    if (nbd_aio_in_flight (e->conns[i].nbd) > 0
        && !nbd_aio_is_dead (e->conns[i].nbd))
      return true;
  return false;
}

/* Wait for any connection to make progress (or POLL_MS, or a signal).
 * Every connection that is ready is served, also after one failed (the
 * first error is returned), so a drain goes on with the others. */
static int
wait_io (struct engine *e)
{
  struct pollfd pfd[SC_BACKUP_MAX_CONNECTIONS];
  unsigned dir[SC_BACKUP_MAX_CONNECTIONS];
  int first = 0;

  for (unsigned i = 0; i < e->nconn; i++) {
    struct nbd_handle *h = e->conns[i].nbd;
    dir[i] = nbd_aio_get_direction (h);
    pfd[i] = (struct pollfd) {
      .fd = nbd_aio_is_dead (h) || nbd_aio_is_closed (h) ? -1
        : nbd_aio_get_fd (h),
      .events = (short) (((dir[i] & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
                         | ((dir[i] & LIBNBD_AIO_DIRECTION_WRITE)
                            ? POLLOUT : 0)),
    };
  }
  if (poll (pfd, e->nconn, POLL_MS) < 0) {
    if (errno == EINTR)
      return 0;
    snprintf (e->err, e->errlen, "poll: %s", strerror (errno));
    return -errno;
  }
  for (unsigned i = 0; i < e->nconn; i++) {
    struct nbd_handle *h = e->conns[i].nbd;
    short ev = pfd[i].revents;
    int r = 0;

    if (pfd[i].fd < 0 || ev == 0)
      continue;
    if (ev & (POLLIN | POLLHUP))
      r = nbd_aio_notify_read (h);
    else if (ev & POLLOUT)
      r = nbd_aio_notify_write (h);
    else {
      if (!first)
        snprintf (e->err, e->errlen, "reading the snapshot: the server "
                  "closed the connection");
      first = first ?: -ENOTCONN;
      continue;
    }
    if (r < 0 && !first) {
      int err = nbd_get_errno () ?: EIO;
      snprintf (e->err, e->errlen, "reading the snapshot: %s%s",
                nbd_get_error (), server_gone (err) ? " (the NBD server "
                "closed the connection)" : "");
      first = -err;
    }
  }
  return first;
}

/* A free slot, with room in the ring for its entry. */
static int
free_slot (struct engine *e, struct slot **out)
{
  for (;;) {
    int r = harvest (e);
    if (r < 0)
      return r;
    if (stopped (e))
      return -EINTR;
    if (e->tail - e->head < e->cap) {
      for (unsigned i = 0; i < e->nslots; i++)
        if (!e->slots[i].busy) {
          *out = &e->slots[i];
          return 0;
        }
    }
    if ((r = wait_io (e)) < 0)
      return r;
  }
}

/* Room in the ring for an entry done at once. */
static int
ring_room (struct engine *e)
{
  while (e->tail - e->head >= e->cap) {
    int r = harvest (e);
    if (r < 0)
      return r;
    if (e->tail - e->head < e->cap)
      break;
    if (stopped (e))
      return -EINTR;
    if ((r = wait_io (e)) < 0)
      return r;
  }
  return stopped (e) ? -EINTR : 0;
}

static struct conn *
least_busy (struct engine *e)
{
  struct conn *best = &e->conns[0];
  for (unsigned i = 1; i < e->nconn; i++)
    if (e->conns[i].in_flight < best->in_flight)
      best = &e->conns[i];
  return best;
}

static int
read_data (struct engine *e, uint64_t off, uint64_t len)
{
  while (len) {
    struct slot *s = NULL;
    uint64_t rs = e->opts->request_size, room = rs - off % rs;
    size_t k = (size_t) (len < room ? len : room);
    int r = free_slot (e, &s);
    if (r < 0)
      return r;
    struct conn *c = least_busy (e);
    *s = (struct slot) { .buf = s->buf, .offset = off, .len = k,
                         .conn = c, .busy = true };
    if (nbd_aio_pread_structured (c->nbd, s->buf, k, off,
                                  (nbd_chunk_callback) {
                                    .callback = on_read_chunk,
                                    .user_data = s },
                                  (nbd_completion_callback) {
                                    .callback = on_read_done,
                                    .user_data = s },
                                  0) < 0) {
      s->busy = false;
      snprintf (e->err, e->errlen, "cannot read the snapshot at %" PRIu64
                ": %s", off, nbd_get_error ());
      return -(nbd_get_errno () ?: EIO);
    }
    c->in_flight++;
    push (e, off, k, &s->seq);
    off += k;
    len -= k;
  }
  return 0;
}

/* A zero extent: zeroed in the sink unless the target starts as zeros. */
static int
zero_extent (struct engine *e, uint64_t off, uint64_t len)
{
  struct entry *x;
  int r = ring_room (e);

  if (r < 0)
    return r;
  if (!e->opts->target_is_zero) {
    r = e->sink->zero (e->sink->opaque, off, len);
    if (r < 0) {
      snprintf (e->err, e->errlen, "cannot zero %s at %" PRIu64 ": %s",
                e->sink->name, off, strerror (-r));
      return r;
    }
  }
  piece (e, off, len, NULL);
  x = push (e, off, len, NULL);
  x->stats.bytes_zeroed = e->opts->target_is_zero ? 0 : len;
  x->done = true;
  progress (e, len);
  return advance (e);
}

/* Wait for every read in flight; with harvesting, hand them to the sink
 * (and return at the first error).  Without, only the reads matter,
 * before the slots they read into are freed: the errors of the wait are
 * not the caller's (its message stays), and the wait goes on until no
 * connection has a read in flight (a dead one has none). */
static int
drain (struct engine *e, bool harvesting)
{
  if (!harvesting) {
    char *err = e->err, ignored[256];
    size_t errlen = e->errlen;
    e->err = ignored;
    e->errlen = sizeof ignored;
    while (any_in_flight (e))
      wait_io (e);
    e->err = err;
    e->errlen = errlen;
    return 0;
  }
  for (;;) {
    bool busy = false;
    if (harvesting) {
      int r = harvest (e);
      if (r < 0)
        return r;
    }
    for (unsigned i = 0; i < e->nslots; i++)
      busy |= e->slots[i].busy;
    if (!busy || !any_in_flight (e))
      return 0;
    int r = wait_io (e);
    if (r < 0)
      return r;
  }
}

/* The copy itself, from opts->start on. */
static int
copy (struct engine *e, const struct sc_backup_range *ranges, size_t n,
      struct bs_list *l)
{
  uint64_t start = e->opts->start;
  int r = 0;

  for (size_t i = 0; i < n && r == 0; i++) {
    uint64_t pos = ranges[i].offset, end = pos + ranges[i].length;
    if (end <= start)
      continue;
    if (pos < start)
      pos = start;
    while (pos < end && r == 0) {
      uint64_t wend = end - pos > WINDOW ? pos + WINDOW : end;
      r = block_status (e, pos, wend, l);
      for (size_t x = 0; x < l->n && r == 0; x++)
        r = l->v[x].zero ? zero_extent (e, l->v[x].offset, l->v[x].length)
          : read_data (e, l->v[x].offset, l->v[x].length);
      pos = wend;
    }
  }
  return r == 0 ? drain (e, true) : r;
}

int
sc_backup_copy (struct nbd_handle *const *nbd, unsigned nconn,
                const struct sc_backup_range *ranges, size_t n,
                const struct sc_backup_copy_opts *opts,
                const struct sc_backup_sink *sink,
                struct sc_backup_stats *stats, char *err, size_t errlen)
{
  struct sc_backup_copy_opts o = *opts;
  struct engine e = { .opts = &o, .sink = sink, .below = *stats,
                      .err = err, .errlen = errlen };
  struct bs_list l = { .v = NULL };
  int r = 0;

  if (nconn < 1 || nconn > SC_BACKUP_MAX_CONNECTIONS) {
    snprintf (err, errlen, "%u connections (1 to %d)", nconn,
              SC_BACKUP_MAX_CONNECTIONS);
    return -EINVAL;
  }
  e.nconn = nconn;
  for (unsigned i = 0; i < nconn; i++)
    e.conns[i].nbd = nbd[i];
  if (!o.requests)
    o.requests = 16;
  if (!o.request_size)
    o.request_size = 1024 * 1024;
  if (!o.watermark_bytes)
    o.watermark_bytes = DEFAULT_WATERMARK_BYTES;
  if (!o.watermark_ms)
    o.watermark_ms = DEFAULT_WATERMARK_MS;
  for (size_t i = 0; i < n; i++) {
    e.total += ranges[i].length;
    if (ranges[i].offset + ranges[i].length <= o.start)
      e.done_below += ranges[i].length;
    else if (ranges[i].offset < o.start)
      e.done_below += o.start - ranges[i].offset;
  }
  e.done = e.reported_done = e.done_below;
  e.issued = e.reported = o.start;
  e.reported_ms = mono_ms ();
  e.cap = 4 * (uint64_t) o.requests;
  e.ring = calloc (e.cap, sizeof *e.ring);
  e.slots = calloc (o.requests, sizeof *e.slots);
  if (!e.ring || !e.slots)
    goto nomem;
  e.nslots = o.requests;
  for (unsigned i = 0; i < e.nslots; i++)
    if (!(e.slots[i].buf = malloc (o.request_size)))
      goto nomem;
  if (o.progress && e.done)
    progress (&e, 0);

  r = copy (&e, ranges, n, &l);
  if (r == -EINTR) {
    /* Asked to stop: what is in flight is written, then reported. */
    int d = drain (&e, true);
    if (d < 0)
      r = d;
  }
  /* After any error (that drain's too, which stops at its first one),
   * the reads still in flight are waited for: the slots are freed
   * below. */
  if (r < 0)
    drain (&e, false);
  if (!e.report_failed) {
    /* Where it got to, also after an error: an error of this report is
     * not the copy's (and its message would hide the copy's). */
    char why[512];
    e.err = r < 0 ? why : err;
    e.errlen = r < 0 ? sizeof why : errlen;
    int rr = report (&e, true);
    if (r == 0)
      r = rr;
  }
  *stats = e.below;
  goto out;

nomem:
  snprintf (err, errlen, "%s", strerror (ENOMEM));
  r = -ENOMEM;
out:
  for (unsigned i = 0; e.slots && i < e.nslots; i++)
    free (e.slots[i].buf);
  free (e.slots);
  free (e.ring);
  free (l.v);
  return r;
}
