/* shadowcopy: block I/O through a per-thread io_uring, or pread/pwrite.
 *
 * Notes on the design
 *
 * nbdkit calls us from many worker threads, and a liburing ring must have
 * a single submitter and a single completer.  So each thread owns a ring,
 * made on its first request and freed by the pthread key destructor when
 * the thread ends (nbdkit's workers end with their connection).  A batch
 * is submitted in waves of at most RING_ENTRIES; requests resume after a
 * short transfer or -EAGAIN.
 *
 * Only batches go through the ring.  A lone request (the old chunk of a
 * 4k random write, the new data itself, a snapshot read) runs as a plain
 * syscall on the calling thread: on a buffered file the kernel cannot
 * finish a write, an fsync or a fallocate inline, so io_uring hands each
 * one to an io-wq worker, and that hand-off cost more than the whole
 * syscall.  docs/performance.md has the measurements.  A batch of copies
 * (a large write over small chunks) still gains from io_uring: its
 * requests run concurrently, in one submission.
 *
 * If the first ring cannot be made with EPERM or ENOSYS, io_uring is off
 * for the whole process and every request uses the plain syscalls.  The
 * environment variable SHADOWCOPY_NO_URING=1 forces that path (tests).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cow/io.h"

#define RING_ENTRIES 64

void (*sc_debug) (const char *fmt, ...);
void (*sc_notice) (const char *fmt, ...);
int (*sc_io_fault_hook) (const struct sc_io_req *req);
void (*sc_io_done_hook) (const struct sc_io_req *reqs, size_t n);
bool sc_debug_cow;

void
sc_say (const char *fmt, ...)
{
  void (*out) (const char *, ...) = sc_notice ? sc_notice : sc_debug;
  if (!out)
    return;
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  out ("%s", msg);
}

static pthread_key_t ring_key;
static pthread_once_t ring_key_once = PTHREAD_ONCE_INIT;
static atomic_bool uring_disabled;

#define debug(...) do { if (sc_debug) sc_debug (__VA_ARGS__); } while (0)

static void
ring_free (void *p)
{
  struct io_uring *ring = p;
  io_uring_queue_exit (ring);
  free (ring);
}

/* A child of fork() (nbdkit daemonizing after get_ready, say) inherits
 * the forking thread's ring pointer, but the ring's memory is shared with
 * the parent: drop the child's view of it and make a new ring on demand. */
static void
ring_forget_after_fork (void)
{
  struct io_uring *ring = pthread_getspecific (ring_key);
  if (ring) {
    pthread_setspecific (ring_key, NULL);
    ring_free (ring);
  }
}

static void
ring_key_init (void)
{
  if (pthread_key_create (&ring_key, ring_free) != 0 ||
      pthread_atfork (NULL, NULL, ring_forget_after_fork) != 0)
    atomic_store (&uring_disabled, true);
  const char *env = getenv ("SHADOWCOPY_NO_URING");
  if (env && strcmp (env, "1") == 0) {
    debug ("io_uring disabled by SHADOWCOPY_NO_URING, using pread/pwrite");
    atomic_store (&uring_disabled, true);
  }
}

/* The calling thread's ring, or NULL to use plain syscalls. */
static struct io_uring *
thread_ring (void)
{
  pthread_once (&ring_key_once, ring_key_init);
  if (atomic_load (&uring_disabled))
    return NULL;
  struct io_uring *ring = pthread_getspecific (ring_key);
  if (ring)
    return ring;

  ring = malloc (sizeof *ring);
  if (!ring)
    return NULL;
  int r = io_uring_queue_init (RING_ENTRIES, ring, 0);
  if (r < 0) {
    free (ring);
    if (r == -EPERM || r == -ENOSYS) {
      if (!atomic_exchange (&uring_disabled, true))
        debug ("io_uring unavailable (%s), falling back to pread/pwrite",
               strerror (-r));
    }
    else
      debug ("io_uring_queue_init: %s, using pread/pwrite for this thread",
             strerror (-r));
    return NULL;
  }
  if (pthread_setspecific (ring_key, ring) != 0) {
    ring_free (ring);
    return NULL;
  }
  return ring;
}

bool
sc_io_uring_active (void)
{
  return thread_ring () != NULL;
}

/* One request with plain syscalls. */
static int
run_sync (struct sc_io_req *r)
{
  uint64_t done = 0;
  switch (r->op) {
  case SC_IO_READ:
    while (done < r->len) {
      ssize_t n = pread (r->fd, (char *) r->buf + done, r->len - done,
                         r->off + done);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0)
        return -errno;
      if (n == 0) {
        memset ((char *) r->buf + done, 0, r->len - done);
        break;
      }
      done += n;
    }
    return 0;
  case SC_IO_WRITE:
    while (done < r->len) {
      /* pwritev2 only for its flags (RWF_DSYNC): the kernel copies and
       * checks the iovec first, measurably slower than a plain pwrite
       * for the 4k write every request of a rewrite is. */
      struct iovec iov = { (char *) r->buf + done, r->len - done };
      ssize_t n = r->flags ? pwritev2 (r->fd, &iov, 1, r->off + done,
                                       r->flags)
                           : pwrite (r->fd, iov.iov_base, iov.iov_len,
                                     r->off + done);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        return -EIO;
      done += n;
    }
    return 0;
  case SC_IO_FDATASYNC:
    return fdatasync (r->fd) == -1 ? -errno : 0;
  case SC_IO_FALLOCATE:
    return fallocate (r->fd, r->flags, r->off, r->len) == -1 ? -errno : 0;
  }
  return -EINVAL;
}

static void
prep (struct io_uring_sqe *sqe, struct sc_io_req *r, uint64_t done, size_t i)
{
  switch (r->op) {
  case SC_IO_READ:
    io_uring_prep_read (sqe, r->fd, (char *) r->buf + done,
                        (unsigned) (r->len - done), r->off + done);
    break;
  case SC_IO_WRITE:
    io_uring_prep_write (sqe, r->fd, (char *) r->buf + done,
                         (unsigned) (r->len - done), r->off + done);
    sqe->rw_flags = r->flags;
    break;
  case SC_IO_FDATASYNC:
    io_uring_prep_fsync (sqe, r->fd, IORING_FSYNC_DATASYNC);
    break;
  case SC_IO_FALLOCATE:
    io_uring_prep_fallocate (sqe, r->fd, r->flags, r->off, r->len);
    break;
  }
  io_uring_sqe_set_data64 (sqe, i);
}

/* A single read or write SQE moves at most this much; longer requests
 * simply resume where the short transfer ended. */
#define MAX_XFER (1u << 30)

/* A batch in flight on a ring. */
struct ring_run {
  struct io_uring *ring;
  struct sc_io_req *reqs;
  size_t n;
  uint64_t *done;               /* bytes transferred, per request */
  size_t next;                  /* next request never submitted */
  size_t inflight;
  /* Requests to resubmit after a short transfer or EAGAIN: a small stack,
   * since at most `inflight` of them can wait at once. */
  size_t resubmit[RING_ENTRIES];
  size_t nresubmit;
};

/* Queue requests until the ring is full or none is left. */
static void
ring_fill (struct ring_run *rr)
{
  while (rr->inflight < RING_ENTRIES && (rr->nresubmit || rr->next < rr->n)) {
    size_t i;
    if (rr->nresubmit)
      i = rr->resubmit[--rr->nresubmit];
    else {
      i = rr->next++;
      if (rr->reqs[i].result != 1)
        continue;               /* failed by the fault hook */
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe (rr->ring);
    if (!sqe) {                 /* cannot happen: inflight < entries */
      if (i == rr->next - 1 && rr->reqs[i].result == 1 && rr->done[i] == 0)
        rr->next--;
      else
        rr->resubmit[rr->nresubmit++] = i;
      return;
    }
    struct sc_io_req tmp = rr->reqs[i];
    if ((tmp.op == SC_IO_READ || tmp.op == SC_IO_WRITE) &&
        tmp.len - rr->done[i] > MAX_XFER)
      tmp.len = rr->done[i] + MAX_XFER;
    prep (sqe, &tmp, rr->done[i], i);
    rr->inflight++;
  }
}

/* One completion of request i: done, failed, or to be resubmitted for
 * the rest of a short transfer (a short read at the end of the file
 * reads zeros; a write of nothing is an error). */
static void
ring_complete (struct ring_run *rr, size_t i, int res)
{
  struct sc_io_req *q = &rr->reqs[i];
  if (res == -EAGAIN || res == -EINTR) {
    rr->resubmit[rr->nresubmit++] = i;
    return;
  }
  if (res < 0) {
    q->result = res;
    return;
  }
  if (q->op == SC_IO_READ || q->op == SC_IO_WRITE) {
    if (res == 0) {
      if (q->op == SC_IO_WRITE) {
        q->result = -EIO;
        return;
      }
      memset ((char *) q->buf + rr->done[i], 0, q->len - rr->done[i]);
      rr->done[i] = q->len;
    }
    rr->done[i] += (uint64_t) res;
    if (rr->done[i] < q->len) {
      rr->resubmit[rr->nresubmit++] = i;
      return;
    }
  }
  q->result = 0;
}

static int
run_ring (struct io_uring *ring, struct sc_io_req *reqs, size_t n)
{
  uint64_t done_stack[RING_ENTRIES];
  struct ring_run rr = { .ring = ring, .reqs = reqs, .n = n };
  rr.done = n <= RING_ENTRIES ? done_stack : calloc (n, sizeof *rr.done);
  if (!rr.done)
    return -ENOMEM;
  if (rr.done == done_stack)
    memset (done_stack, 0, n * sizeof *rr.done);
  for (;;) {
    ring_fill (&rr);
    if (rr.inflight == 0)
      break;
    int r = io_uring_submit_and_wait (ring, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN)
      debug ("io_uring_submit_and_wait: %s", strerror (-r));
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe (ring, head, cqe) {
      seen++;
      rr.inflight--;
      ring_complete (&rr, (size_t) io_uring_cqe_get_data64 (cqe), cqe->res);
    }
    io_uring_cq_advance (ring, seen);
    if (r < 0 && r != -EINTR && r != -EAGAIN && seen == 0) {
      /* Nothing completes: fail what is left rather than spin. */
      for (size_t i = 0; i < n; i++)
        if (reqs[i].result == 1)
          reqs[i].result = r;
      break;
    }
  }
  if (rr.done != done_stack)
    free (rr.done);
  return 0;
}

int
sc_io_run (struct sc_io_req *reqs, size_t n)
{
  struct io_uring *ring = n > 1 ? thread_ring () : NULL;

  /* Injected faults and the syscall path. */
  for (size_t i = 0; i < n; i++) {
    reqs[i].result = 1;         /* pending */
    if (sc_io_fault_hook) {
      int r = sc_io_fault_hook (&reqs[i]);
      if (r < 0)
        reqs[i].result = r;
    }
    if (!ring && reqs[i].result == 1)
      reqs[i].result = run_sync (&reqs[i]);
  }
  if (ring) {
    int r = run_ring (ring, reqs, n);
    if (r < 0) {
      if (sc_io_done_hook)
        sc_io_done_hook (reqs, n);
      return r;
    }
  }
  if (sc_io_done_hook)
    sc_io_done_hook (reqs, n);
  for (size_t i = 0; i < n; i++)
    if (reqs[i].result < 0)
      return reqs[i].result;
  return 0;
}

int
sc_io_pread (int fd, void *buf, uint64_t len, uint64_t off)
{
  struct sc_io_req r = { .op = SC_IO_READ, .fd = fd, .buf = buf,
                         .len = len, .off = off };
  return sc_io_run (&r, 1);
}

int
sc_io_pwrite (int fd, const void *buf, uint64_t len, uint64_t off, bool dsync)
{
  struct sc_io_req r = { .op = SC_IO_WRITE, .fd = fd, .buf = (void *) buf,
                         .len = len, .off = off,
                         .flags = dsync ? RWF_DSYNC : 0 };
  return sc_io_run (&r, 1);
}

int
sc_io_fdatasync (int fd)
{
  struct sc_io_req r = { .op = SC_IO_FDATASYNC, .fd = fd };
  return sc_io_run (&r, 1);
}

int
sc_io_flock (int fd, int op)
{
  for (unsigned waited = 0;; waited += 20) {
    if (flock (fd, op | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK || waited >= SC_IO_FLOCK_GRACE_MS)
      return -errno;
    usleep (20 * 1000);
  }
}

int
sc_io_fallocate (int fd, int mode, uint64_t off, uint64_t len)
{
  struct sc_io_req r = { .op = SC_IO_FALLOCATE, .fd = fd, .flags = mode,
                         .off = off, .len = len };
  return sc_io_run (&r, 1);
}
