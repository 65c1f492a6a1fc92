/* shadowcopy: block I/O for the origin and the diff area.
 *
 * Every data read, write, fdatasync and fallocate goes through here.
 * Batches of requests run through a per-thread io_uring, created on first
 * use (so after nbdkit has forked) and freed when the thread ends; liburing
 * rings must not be shared between submitting threads.  A single request
 * is a plain syscall (see io.c for why).  Where io_uring cannot be set up
 * (EPERM or ENOSYS, as in some containers) batches use the syscalls too.
 */
#ifndef SHADOWCOPY_COW_IO_H
#define SHADOWCOPY_COW_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum sc_io_op { SC_IO_READ, SC_IO_WRITE, SC_IO_FDATASYNC, SC_IO_FALLOCATE };

struct sc_io_req {
  enum sc_io_op op;
  int fd;
  void *buf;                    /* READ, WRITE */
  uint64_t len;                 /* READ, WRITE, FALLOCATE */
  uint64_t off;                 /* READ, WRITE, FALLOCATE */
  int flags;                    /* WRITE: RWF_DSYNC; FALLOCATE: mode */
  int result;                   /* out: 0 or -errno */
};

/* Run a batch of independent requests concurrently (through the thread's
 * io_uring when n > 1) and wait for all of them.  Short transfers are
 * resumed; a read past end of file reads zeros.  Returns 0, or the first
 * request's error (each has its own in .result). */
int sc_io_run (struct sc_io_req *reqs, size_t n);

int sc_io_pread (int fd, void *buf, uint64_t len, uint64_t off);
int sc_io_pwrite (int fd, const void *buf, uint64_t len, uint64_t off,
                  bool dsync);
int sc_io_fdatasync (int fd);
int sc_io_fallocate (int fd, int mode, uint64_t off, uint64_t len);

/* Are the len bytes at buf all zero? */
static inline bool
sc_io_all_zero (const void *buf, size_t len)
{
  const uint8_t *p = buf;
  return len == 0 || (p[0] == 0 && memcmp (p, p + 1, len - 1) == 0);
}

/* flock(fd, op | LOCK_NB), but a lock held by someone else is asked for
 * again for up to SC_IO_FLOCK_GRACE_MS before -EWOULDBLOCK: a server
 * killed a moment ago can keep its files (and their locks) a little
 * while after it was reaped, until the kernel has torn down its io_uring
 * instances, so a restart right after a crash would be refused.  0 or a
 * negative errno. */
#define SC_IO_FLOCK_GRACE_MS 2000
int sc_io_flock (int fd, int op);

/* Whether the calling thread's batches use io_uring (false after a
 * fallback). */
bool sc_io_uring_active (void);

/* Debug messages of cow/ and engine/ (io_uring set-up, fallbacks, hold
 * times); the plugin points this at
 * nbdkit_debug.  NULL means silent. */
extern void (*sc_debug) (const char *fmt, ...)
  __attribute__((format (printf, 1, 2)));

/* Events an administrator must see whatever the debug setting: snapshots
 * deleted by a policy.  The plugin points this at nbdkit_error.  NULL:
 * they go to sc_debug. */
extern void (*sc_notice) (const char *fmt, ...)
  __attribute__((format (printf, 1, 2)));

/* Say a notice: to sc_notice, or to sc_debug when there is none. */
void sc_say (const char *fmt, ...) __attribute__((format (printf, 1, 2)));

/* Log every copy-on-write copy (-D shadowcopy.cow=1). */
extern bool sc_debug_cow;

/* Fault injection for tests: when set, called before each request; a
 * negative return fails that request with that errno, untouched. */
extern int (*sc_io_fault_hook) (const struct sc_io_req *req);
/* For tests (the crash harness): when set, called once per sc_io_run when
 * all of its `n` requests are done, in the thread that ran them, before
 * sc_io_run returns. */
extern void (*sc_io_done_hook) (const struct sc_io_req *reqs, size_t n);

#endif
