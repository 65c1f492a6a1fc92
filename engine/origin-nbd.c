/* shadowcopy: an origin that is an export of an NBD server, reached with
 * libnbd (disk=NBD-URI; see origin.h).
 *
 * Notes on the design
 *
 * Connections.  One connection to the server, or up to `connections`
 * when the server advertises multi-conn (then a flush on any connection
 * covers the writes every connection completed, so the volume's flush
 * stays one command).  The first connection is made at open; the others
 * when a request first picks them.  Requests pick a connection round
 * robin.
 *
 * Several requests in flight per connection, without a thread of our
 * own: a request submits its commands with libnbd's asynchronous calls,
 * then waits.  One of the waiting threads of a connection drives it (polls
 * its socket and tells libnbd, which runs the completion callbacks); the
 * others sleep on the connection's condition variable and take over when
 * the driver's own commands are done.  libnbd writes a new command at
 * once when it can; when some of it is left to write, the submitter wakes
 * the driver through an eventfd so that it polls for writing.  With no
 * thread of ours, nothing has to be started after nbdkit forks: the
 * socket made at open (in .get_ready, before the fork) is the child's as
 * it was the parent's.
 *
 * Locks: a connection's mutex, then libnbd's handle lock (taken inside
 * every nbd_* call).  The completion callbacks run under libnbd's lock and
 * touch nothing but atomics of their command; the driver wakes the
 * waiters once its nbd_aio_notify_* has returned.
 *
 * Failures.  A command the server answers with an error fails with that
 * errno.  A command not answered within io-timeout fails with EIO and its
 * connection is dropped.  NBD has no fencing: a modification (write,
 * zero, trim) whose connection went before its answer may have been
 * applied, or not, or be applied later, after a newer write of the same
 * range; one acknowledged but not yet covered by a flush may be lost by a
 * remote that restarts.  So the origin counts modifications in flight per
 * connection and acknowledged ones globally (`acked`), and a flush that
 * succeeds covers what was acknowledged when it was SENT (`covered`; with
 * multi-conn a flush on any connection covers every connection's
 * completed writes).  A connection dropped while any of these is in
 * doubt fails the origin closed: every later request fails with EIO,
 * logged once, until the server is restarted; a modification is never
 * sent again.  A read or flush whose connection went with nothing in
 * doubt is tried once more on a new connection, and an idle connection
 * whose server went away is noticed before a command is sent on it
 * (its socket reads as ended), so a clean loss stays transparent.
 *
 * Connecting (at open and again) is retried for `retry_ms` with a
 * back-off from 0.1 s doubling to 5 s; while one request of a connection
 * connects, the others wait for its outcome and share it.  A new
 * connection must still reach the disk of the open: the same size, the
 * same promises the flushes rely on (multi-conn when several connections
 * are used, flush, FUA), and the same content in the SC_STAMP_SAMPLES sampled blocks (read at open,
 * cow/diffarea.h sc_origin_stamp_sample) that no modification of ours
 * touched since (a bitmap, marked before a modification is sent).
 * Otherwise every later request fails with EIO, and for another content
 * the volume invalidates the snapshots (sc_origin_on_changed).  With
 * origin-check=off no sample is read, and only the size is compared.
 *
 * What the server cannot do is done otherwise: no FUA, a write and a
 * flush; no write-zeroes, zeros written; no trim, nothing (it is
 * advisory); no flush, nothing (the server says its writes are durable);
 * no base:allocation, every extent data.  is_hole is false: a query per
 * copied chunk would cost a round trip each, and the copy-on-write path
 * finds all-zero chunks by reading them anyway.
 *
 * Identity: the export name (not the URI, whose host or socket may move)
 * and the size (cow/diffarea.c compares both).  The stamp is the sampled
 * blocks alone (origin.c).  Nothing here can lock the export against other
 * writers: that is the server's business (see the README).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "engine/clock.h"
#include "engine/origin-impl.h"
#include "engine/origin-nbd-impl.h"

static inline struct nbd_origin *
nbd_of (const struct sc_origin *o)
{
  return (struct nbd_origin *) o;
}

bool
sc_origin_is_nbd_uri (const char *s)
{
  static const char *const schemes[] = { "nbd://", "nbds://", "nbd+unix://",
                                         "nbds+unix://" };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp (s, schemes[i], strlen (schemes[i])) == 0)
      return true;
  return false;
}


/* ---- driving a connection ------------------------------------------- */

static int
cmd_done (void *user_data, int *error)
{
  struct cmd *c = user_data;
  __atomic_store_n (&c->err, *error, __ATOMIC_RELAXED);
  __atomic_store_n (&c->done, 1, __ATOMIC_RELEASE);
  return 1;                     /* retire the command */
}

static int
cmd_extents (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t nr_entries, int *error)
{
  struct cmd *c = user_data;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || c->ext)
    return 0;
  c->ext = malloc (nr_entries * sizeof *entries);
  if (c->ext) {
    memcpy (c->ext, entries, nr_entries * sizeof *entries);
    c->next = nr_entries;
    c->ext_off = offset;
  }
  return 0;
}

/* Fail closed: from now on every request fails with EIO (logged once). */
static void
fail_closed (struct nbd_origin *no, const char *why)
{
  if (!__atomic_exchange_n (&no->fatal, true, __ATOMIC_ACQ_REL))
    sc_say ("NBD origin %s: %s", no->uri, why);
}

/* Modifications acknowledged and not yet covered by a flush. */
static uint64_t
unflushed (struct nbd_origin *no)
{
  return __atomic_load_n (&no->acked, __ATOMIC_ACQUIRE) -
         __atomic_load_n (&no->covered, __ATOMIC_ACQUIRE);
}

/* Drop the connection (lock held): wait for its driver to leave, close
 * the handle (libnbd then holds no buffer of ours), and let every waiter
 * see its commands gone. */
static void
conn_drop (struct conn *c)
{
  if (!c->h)
    return;
  c->dying = true;
  while (c->driving) {
    uint64_t one = 1;
    if (write (c->wake, &one, sizeof one) < 0) {
      /* the driver's poll times out within a second anyway */
    }
    pthread_cond_wait (&c->cond, &c->lock);
  }
  nbd_close (c->h);
  c->h = NULL;
  c->gen++;
  /* A modification in flight may be applied by the remote later, or
   * never; one acknowledged but not flushed may be lost: NBD has no
   * fencing, so the remote is in doubt from now on. */
  uint64_t n = unflushed (c->no);
  if (c->mods || n) {
    char why[512];
    if (c->mods)
      snprintf (why, sizeof why, "a write in flight");
    else
      snprintf (why, sizeof why, "%" PRIu64 " acknowledged writes not yet "
                "flushed", n);
    char msg[1024];
    const char *them = c->mods ? "it" : "them";
    snprintf (msg, sizeof msg, "the connection was lost with %s: the remote "
              "may have lost %s or may still apply %s later; every request "
              "now fails with EIO; check the remote, then restart the "
              "server", why, them, them);
    fail_closed (c->no, msg);
  }
  c->mods = 0;
  c->dying = false;
  pthread_cond_broadcast (&c->cond);
}

/* Poll the socket once (lock held on entry and exit, released inside). */
static void
conn_drive (struct conn *c, uint64_t deadline)
{
  struct nbd_handle *h = c->h;
  c->driving = true;
  pthread_mutex_unlock (&c->lock);

  int fd = nbd_aio_get_fd (h);
  unsigned dir = nbd_aio_get_direction (h);
  struct pollfd p[2] = {
    { .fd = fd, .events = (short) ((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                                   (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)) },
    { .fd = c->wake, .events = POLLIN },
  };
  int ms = 1000;
  if (deadline) {
    uint64_t now = sc_mono_ns ();
    uint64_t left = deadline > now ? (deadline - now) / 1000000u + 1 : 0;
    if (left < (uint64_t) ms)
      ms = (int) left;
  }
  int n = fd >= 0 ? poll (p, 2, ms) : 0;
  if (n > 0 && (p[1].revents & POLLIN)) {
    uint64_t v;
    if (read (c->wake, &v, sizeof v) < 0) {
      /* nothing to drain */
    }
  }
  if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
    nbd_aio_notify_read (h);
  else if (n > 0 && (p[0].revents & POLLOUT))
    nbd_aio_notify_write (h);
  bool dead = fd < 0 || nbd_aio_is_dead (h) || nbd_aio_is_closed (h);

  pthread_mutex_lock (&c->lock);
  c->driving = false;
  pthread_cond_broadcast (&c->cond);
  if (dead && c->h == h) {
    sc_say ("NBD origin: the connection to the server was lost: %s",
         nbd_get_error () ? nbd_get_error () : "closed");
    conn_drop (c);
  }
}

/* Wait for commands submitted at generation `gen` (lock held): 0, the
 * first command's error, LOST if the connection went, or -EIO if one was
 * not answered by `deadline` (0: none), after dropping the connection. */
static int
conn_wait (struct nbd_origin *no, struct conn *c, struct cmd *cmds,
           size_t n, uint64_t gen, uint64_t deadline)
{
  for (;;) {
    size_t left = 0;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
      if (!__atomic_load_n (&cmds[i].done, __ATOMIC_ACQUIRE))
        left++;
      else if (cmds[i].err && !err)
        err = cmds[i].err;
    }
    /* A command failed by the connection's end, not by the server. */
    if (left == 0 && err && (c->gen != gen || err == ENOTCONN ||
                             err == EPIPE || err == ECONNRESET ||
                             err == ESHUTDOWN)) {
      if (c->gen == gen) {      /* (ESHUTDOWN: the server is stopping) */
        sc_say ("NBD origin %s: the connection to the server ends: %s",
             no->uri, strerror (err));
        conn_drop (c);
      }
      return LOST;
    }
    if (left == 0)
      return err ? -err : 0;
    if (c->gen != gen)
      return LOST;
    uint64_t now = sc_mono_ns ();
    if (deadline && now >= deadline) {
      sc_say ("NBD origin %s: a request was not answered within %u ms: it "
           "fails with EIO, and the connection is dropped and made again",
           no->uri, no->opts.io_timeout_ms);
      conn_drop (c);
      return -EIO;
    }
    if (!c->driving && !c->dying && c->h) {
      conn_drive (c, deadline);
      continue;
    }
    struct timespec ts;
    uint64_t until = now + 1000000000u;
    if (deadline && deadline < until)
      until = deadline;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec
                  + (until - now);
    ts.tv_sec = (time_t) (at / 1000000000u);
    ts.tv_nsec = (long) (at % 1000000000u);
    pthread_cond_timedwait (&c->cond, &c->lock, &ts);
  }
}

/* ---- connecting ------------------------------------------------------ */

/* An idle connection (lock held) whose server went away: its socket
 * says so before we send anything on it (a server sends nothing unasked,
 * so an idle socket that is readable is at its end).  Finding it now,
 * rather than by losing the next command, keeps a write out of doubt. */
static bool
conn_idle_dead (struct conn *c)
{
  if (c->driving || nbd_aio_in_flight (c->h) != 0)
    return false;
  struct pollfd p = { .fd = nbd_aio_get_fd (c->h), .events = POLLIN };
  if (p.fd < 0)
    return true;
  if (poll (&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
    nbd_aio_notify_read (c->h);
  return nbd_aio_is_dead (c->h) || nbd_aio_is_closed (c->h);
}

/* A connected handle on `c` (lock held): 0, or -EIO. */
static int
conn_ready (struct nbd_origin *no, struct conn *c)
{
  for (;;) {
    if (__atomic_load_n (&no->fatal, __ATOMIC_ACQUIRE))
      return -EIO;
    if (c->h && !c->dying && conn_idle_dead (c)) {
      sc_say ("NBD origin %s: the connection to the server was lost while "
              "idle", no->uri);
      conn_drop (c);
      continue;
    }
    if (c->h && !c->dying)
      return 0;
    if (c->connecting || c->dying) {
      uint64_t seen = c->attempts;
      while ((c->connecting || c->dying) && c->attempts == seen)
        pthread_cond_wait (&c->cond, &c->lock);
      if (c->attempts != seen && c->last_failed)
        return -EIO;
      continue;
    }
    char why[512];
    c->connecting = true;
    pthread_mutex_unlock (&c->lock);
    struct nbd_handle *h = nbdo_connect_retry (no, why, sizeof why);
    int64_t size = h ? nbd_get_size (h) : -1;
    char differs[256] = "";
    const char *gone = h && size >= 0 && (uint64_t) size == no->o.id.size
                       ? nbdo_lost_capability (no, h) : NULL;
    int same = h && !gone && size >= 0 && (uint64_t) size == no->o.id.size
               ? nbdo_same_disk (no, h, differs, sizeof differs) : 0;
    if (gone) {
      char msg[512];
      snprintf (msg, sizeof msg, "the server answers again without %s, "
                "which the writes acknowledged so far relied on; every "
                "request now fails with EIO (restart the server)", gone);
      fail_closed (no, msg);
      nbd_close (h);
      h = NULL;
      same = -1;                /* said by fail_closed */
    }
    else if (same == -2) {
      snprintf (why, sizeof why, "%s", differs);
      nbd_close (h);
      h = NULL;
    }
    else if (same < 0) {
      char msg[1024];
      snprintf (msg, sizeof msg, "the server answers again, but the remote's "
                "content changed under us (%s): another disk, or a remote "
                "restarted without its cache; every request now fails with "
                "EIO, and the snapshots are invalid", differs);
      fail_closed (no, msg);
      nbd_close (h);
      h = NULL;
      if (no->o.changed)
        no->o.changed (no->o.changed_opaque, differs);
    }
    pthread_mutex_lock (&c->lock);
    c->connecting = false;
    c->attempts++;
    c->last_failed = !h;
    if (h && (size < 0 || (uint64_t) size != no->o.id.size)) {
      if (!__atomic_exchange_n (&no->fatal, true, __ATOMIC_ACQ_REL))
        sc_say ("NBD origin %s: the server answers again, but its export is "
             "now %" PRId64 " bytes, not %" PRIu64 ": it is not the disk "
             "the snapshots belong to, and every request now fails with "
             "EIO (restart the server with the right disk)", no->uri,
             size, no->o.id.size);
      nbd_close (h);
      c->last_failed = true;
      h = NULL;
    }
    else if (!h && same == -1)
      ;                         /* logged by fail_closed */
    else if (!h)
      sc_say ("NBD origin %s: cannot connect (retried for %g s): %s",
           no->uri, no->opts.retry_ms / 1000.0, why);
    else if (c->gen)
      sc_say ("NBD origin %s: connected again", no->uri);
    c->h = h;
    pthread_cond_broadcast (&c->cond);
    if (!h)
      return -EIO;
  }
}

/* ---- commands -------------------------------------------------------- */

enum op { OP_READ, OP_WRITE, OP_FLUSH, OP_ZERO, OP_TRIM, OP_STATUS };

/* Submit one command (lock held): its cookie, or -1 (cmd->err set). */
static int64_t
submit (struct nbd_origin *no, struct nbd_handle *h, enum op op,
        struct cmd *cmd, void *buf, uint64_t len, uint64_t off,
        uint32_t flags)
{
  nbd_completion_callback done = { .callback = cmd_done, .user_data = cmd };
  int64_t r = -1;
  switch (op) {
  case OP_READ:
    r = nbd_aio_pread (h, buf, len, off, done, 0);
    break;
  case OP_WRITE:
    r = nbd_aio_pwrite (h, buf, len, off, done, flags);
    break;
  case OP_FLUSH:
    r = nbd_aio_flush (h, done, 0);
    break;
  case OP_ZERO:
    r = nbd_aio_zero (h, len, off, done, flags);
    break;
  case OP_TRIM:
    r = nbd_aio_trim (h, len, off, done, flags);
    break;
  case OP_STATUS: {
    nbd_extent_callback ext = { .callback = cmd_extents, .user_data = cmd };
    r = nbd_aio_block_status (h, len, off, ext, done, 0);
    break;
  }
  }
  (void) no;
  if (r == -1) {
    int e = nbd_get_errno ();
    cmd->err = e ? e : EIO;
    cmd->done = 1;
  }
  return r;
}

static bool
is_mod (enum op op)
{
  return op == OP_WRITE || op == OP_ZERO || op == OP_TRIM;
}

/* A modification of [off, off + len) is about to be sent: the samples it
 * overlaps no longer tell whether the remote is the same disk. */
static void
mark_touched (struct nbd_origin *no, uint64_t off, uint64_t len)
{
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++)
    if (off < no->sample_off[i] + no->sample_len[i] &&
        no->sample_off[i] < off + len)
      __atomic_fetch_or (&no->touched, 1u << i, __ATOMIC_ACQ_REL);
}

/* One attempt at [off, off + len) as commands of at most `piece` bytes,
 * on one connection. */
static int
attempt (struct nbd_origin *no, struct conn *c, enum op op, uint8_t *buf,
         uint64_t len, uint64_t off, uint32_t flags, uint64_t piece,
         struct cmd *status)
{
  struct cmd cmds[GROUP_MAX];
  int r = 0;
  bool mod = is_mod (op);

  pthread_mutex_lock (&c->lock);
  while (r == 0) {
    if ((r = conn_ready (no, c)) < 0)
      break;
    size_t n = 0;
    unsigned sent = 0;
    uint64_t gen = c->gen;
    bool lost = false;
    /* A flush covers what was acknowledged before it was sent. */
    uint64_t flush_seq = __atomic_load_n (&no->acked, __ATOMIC_ACQUIRE);
    do {
      uint64_t l = len < piece ? len : piece;
      struct cmd *cmd = status ? status : &cmds[n];
      memset (cmd, 0, sizeof *cmd);
      n++;
      if (mod)
        mark_touched (no, off, l);
      if (submit (no, c->h, op, cmd, buf, l, off, flags) != -1) {
        if (mod) {
          sent++;
          c->mods++;
        }
      }
      else if (nbd_aio_is_dead (c->h) || nbd_aio_is_closed (c->h))
        lost = true;
      if (buf)
        buf += l;
      off += l;
      len -= l;
    } while (len && n < GROUP_MAX && !status && !lost);
    /* libnbd sends a command at once when it can: the driver only needs
     * waking when some of it still waits to be written. */
    uint64_t one = 1;
    if (!lost && c->driving &&
        (nbd_aio_get_direction (c->h) & LIBNBD_AIO_DIRECTION_WRITE) &&
        write (c->wake, &one, sizeof one) < 0) {
      /* the driver's poll times out within a second anyway */
    }
    if (lost) {
      conn_drop (c);
      r = LOST;
      break;
    }
    uint64_t deadline = no->opts.io_timeout_ms
                        ? ms_from_now (no->opts.io_timeout_ms) : 0;
    r = conn_wait (no, c, status ? status : cmds, n, gen, deadline);
    if (mod && c->gen == gen)   /* (a drop counted them, and zeroed) */
      c->mods -= sent;
    if (r == 0 && mod && no->can_flush && !(flags & LIBNBD_CMD_FLAG_FUA))
      __atomic_fetch_add (&no->acked, sent, __ATOMIC_ACQ_REL);
    if (r == 0 && op == OP_FLUSH) {
      uint64_t cov = __atomic_load_n (&no->covered, __ATOMIC_ACQUIRE);
      while (cov < flush_seq &&
             !__atomic_compare_exchange_n (&no->covered, &cov, flush_seq,
                                           false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE))
        ;
    }
    if (len == 0 || status)
      break;
  }
  pthread_mutex_unlock (&c->lock);
  return r;
}

/* A command on a connection picked round robin.  A read or a flush whose
 * connection went is tried once more on a new connection; a modification
 * is not: it is in doubt, and the drop failed the origin closed (see the
 * notes at the top). */
static int
run (struct nbd_origin *no, enum op op, void *buf, uint64_t len,
     uint64_t off, uint32_t flags, uint64_t piece, struct cmd *status)
{
  if (__atomic_load_n (&no->fatal, __ATOMIC_ACQUIRE))
    return -EIO;
  unsigned i = __atomic_fetch_add (&no->next, 1, __ATOMIC_RELAXED);
  struct conn *c = &no->conn[op == OP_FLUSH ? 0 : i % no->nconn];
  int r = attempt (no, c, op, buf, len, off, flags, piece, status);
  if (r == LOST && !is_mod (op)) {
    if (status) {
      free (status->ext);
      status->ext = NULL;
    }
    r = attempt (no, c, op, buf, len, off, flags, piece, status);
  }
  return r == LOST ? -EIO : r;
}

/* ---- the operations -------------------------------------------------- */

static int
nbd_o_pread (struct sc_origin *o, void *buf, uint64_t len, uint64_t off)
{
  struct nbd_origin *no = nbd_of (o);
  return run (no, OP_READ, buf, len, off, 0, no->piece_max, NULL);
}

static int
nbd_o_flush (struct sc_origin *o)
{
  struct nbd_origin *no = nbd_of (o);
  if (!no->can_flush)
    return __atomic_load_n (&no->fatal, __ATOMIC_ACQUIRE) ? -EIO : 0;
  return run (no, OP_FLUSH, NULL, 0, 0, 0, 1, NULL);
}

/* FUA where the server has it, else the command and a flush. */
static int
with_fua (struct nbd_origin *no, enum op op, void *buf, uint64_t len,
          uint64_t off, uint32_t flags, unsigned sc_flags, uint64_t piece)
{
  bool fua = (sc_flags & SC_FUA) != 0;
  if (fua && no->can_fua)
    flags |= LIBNBD_CMD_FLAG_FUA;
  int r = run (no, op, buf, len, off, flags, piece, NULL);
  if (r == 0 && fua && !no->can_fua)
    r = nbd_o_flush (&no->o);
  return r;
}

static int
nbd_o_pwrite (struct sc_origin *o, const void *buf, uint64_t len,
              uint64_t off, unsigned flags)
{
  struct nbd_origin *no = nbd_of (o);
  return with_fua (no, OP_WRITE, (void *) buf, len, off, 0, flags,
                   no->piece_max);
}

static int
nbd_o_zero (struct sc_origin *o, uint64_t len, uint64_t off, unsigned flags)
{
  struct nbd_origin *no = nbd_of (o);
  if (no->can_zero)
    return with_fua (no, OP_ZERO, NULL, len, off,
                     flags & SC_MAY_TRIM ? 0 : LIBNBD_CMD_FLAG_NO_HOLE,
                     flags, RANGE_MAX);
  uint64_t n = len < no->piece_max ? len : no->piece_max;
  void *zeros = calloc (1, n);
  int r = zeros ? 0 : -ENOMEM;
  while (r == 0 && len) {
    uint64_t l = len < n ? len : n;
    r = run (no, OP_WRITE, zeros, l, off, 0, no->piece_max, NULL);
    off += l;
    len -= l;
  }
  free (zeros);
  if (r == 0 && (flags & SC_FUA))
    r = nbd_o_flush (o);
  return r;
}

static int
nbd_o_trim (struct sc_origin *o, uint64_t len, uint64_t off, unsigned flags)
{
  struct nbd_origin *no = nbd_of (o);
  if (!no->can_trim)
    return 0;                   /* advisory */
  return with_fua (no, OP_TRIM, NULL, len, off, 0, flags, RANGE_MAX);
}

static int
nbd_o_extents (struct sc_origin *o, uint64_t len, uint64_t off,
               sc_extent_cb cb, void *opaque)
{
  struct nbd_origin *no = nbd_of (o);
  uint64_t end = off + len;
  int r;

  if (!no->can_status)
    return cb (opaque, off, len, 0);
  while (off < end) {
    struct cmd st = { 0 };
    uint64_t ask = end - off < RANGE_MAX ? end - off : RANGE_MAX;
    r = run (no, OP_STATUS, NULL, ask, off, 0, ask, &st);
    if (r < 0) {
      free (st.ext);
      return r;
    }
    uint64_t at = off;
    for (size_t i = 0; st.ext && i + 1 < st.next && at < end; i += 2) {
      uint64_t l = st.ext[i];
      if (l == 0)
        break;
      if (l > end - at)
        l = end - at;
      unsigned f = (st.ext[i + 1] & LIBNBD_STATE_HOLE ? SC_EXTENT_HOLE : 0) |
                   (st.ext[i + 1] & LIBNBD_STATE_ZERO ? SC_EXTENT_ZERO : 0);
      if ((r = cb (opaque, at, l, f)) != 0) {
        free (st.ext);
        return r;
      }
      at += l;
    }
    free (st.ext);
    if (at == off)              /* the server said nothing: data */
      return cb (opaque, off, end - off, 0);
    off = at;
  }
  return 0;
}

static bool
nbd_o_is_hole (struct sc_origin *o, uint64_t off, uint64_t len)
{
  return false;                 /* see the notes at the top */
}

static void
nbd_o_close (struct sc_origin *o)
{
  struct nbd_origin *no = nbd_of (o);
  for (unsigned i = 0; i < CONNECTIONS_MAX; i++) {
    struct conn *c = &no->conn[i];
    if (c->h) {
      nbd_aio_disconnect (c->h, 0);
      nbd_close (c->h);
    }
    if (c->wake >= 0)
      close (c->wake);
    pthread_mutex_destroy (&c->lock);
    pthread_cond_destroy (&c->cond);
  }
  free (no->uri);
  free (no);
}

static const struct sc_origin_ops nbd_ops = {
  .close   = nbd_o_close,
  .pread   = nbd_o_pread,
  .pwrite  = nbd_o_pwrite,
  .flush   = nbd_o_flush,
  .zero    = nbd_o_zero,
  .trim    = nbd_o_trim,
  .extents = nbd_o_extents,
  .is_hole = nbd_o_is_hole,
  .fd      = NULL,              /* no descriptor: request by request */
  .stamp   = NULL,              /* the samples alone */
};

int
sc_origin_open_nbd (const char *uri, const struct sc_origin_nbd_opts *opts,
                    struct sc_origin **out, char *err, size_t errlen)
{
  struct nbd_origin *no = calloc (1, sizeof *no);
  char why[512];

  if (!no || !(no->uri = strdup (uri))) {
    free (no);
    snprintf (err, errlen, "%s: %s", uri, strerror (ENOMEM));
    return -ENOMEM;
  }
  no->o.ops = &nbd_ops;
  no->opts = *opts;
  pthread_condattr_t attr;       /* conn_wait's deadlines are monotonic */
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  for (unsigned i = 0; i < CONNECTIONS_MAX; i++) {
    no->conn[i].no = no;
    pthread_mutex_init (&no->conn[i].lock, NULL);
    pthread_cond_init (&no->conn[i].cond, &attr);
    no->conn[i].wake = -1;
  }
  pthread_condattr_destroy (&attr);
  for (unsigned i = 0; i < CONNECTIONS_MAX; i++)
    if ((no->conn[i].wake = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
      int r = -errno;
      snprintf (err, errlen, "%s: eventfd: %s", uri, strerror (-r));
      nbd_o_close (&no->o);
      return r;
    }

  struct nbd_handle *h = nbdo_connect_retry (no, why, sizeof why);
  if (!h) {
    snprintf (err, errlen, "%s: cannot connect to the NBD server (retried "
              "for %g s; retry= sets how long): %s", uri,
              no->opts.retry_ms / 1000.0, why);
    nbd_o_close (&no->o);
    return -EIO;
  }
  no->conn[0].h = h;
  int64_t size = nbd_get_size (h);
  char *name = nbd_get_export_name (h);
  if (size < 0 || !name) {
    snprintf (err, errlen, "%s: %s", uri, nbd_get_error ());
    free (name);
    nbd_o_close (&no->o);
    return -EIO;
  }
  no->have_samples = !opts->no_samples;
  if (nbd_is_read_only (h) == 1) {
    snprintf (err, errlen, "%s: the NBD export is read-only: shadowcopy "
              "must write its disk", uri);
    free (name);
    nbd_o_close (&no->o);
    return -EROFS;
  }
  no->o.id.type = SC_ORIGIN_NBD;
  no->o.id.size = (uint64_t) size;
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++)
    sc_origin_stamp_sample (no->o.id.size, i, &no->sample_off[i],
                            &no->sample_len[i]);
  if (!opts->no_samples && nbdo_read_samples (no, h, no->sample_crc) < 0) {
    snprintf (err, errlen, "%s: reading its sampled blocks: %s", uri,
              nbd_get_error ());
    free (name);
    nbd_o_close (&no->o);
    return -EIO;
  }
  snprintf (no->o.id.path, sizeof no->o.id.path, "%s", name);
  free (name);
  no->can_fua = nbd_can_fua (h) == 1;
  no->can_flush = nbd_can_flush (h) == 1;
  no->can_zero = nbd_can_zero (h) == 1;
  no->can_trim = nbd_can_trim (h) == 1;
  no->can_status = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)
                   == 1;
  no->piece_max = PIECE_MAX;
  int64_t max = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  if (max > 0 && (uint64_t) max < no->piece_max)
    no->piece_max = (uint64_t) max;
  unsigned want = opts->connections ? opts->connections : 4;
  if (want > CONNECTIONS_MAX)
    want = CONNECTIONS_MAX;
  no->nconn = nbd_can_multi_conn (h) == 1 ? want : 1;
  if (sc_debug)
    sc_debug ("NBD origin %s: export \"%s\", %" PRIu64 " bytes, %u "
              "connection(s), fua %d flush %d zero %d trim %d "
              "base:allocation %d", uri, no->o.id.path, no->o.id.size,
              no->nconn, no->can_fua, no->can_flush, no->can_zero,
              no->can_trim, no->can_status);
  *out = &no->o;
  return 0;
}
