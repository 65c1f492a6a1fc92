/* shadowcopy: the origin, the disk whose snapshots the volume keeps.
 *
 * The volume reaches its origin only through this interface, so that an
 * origin need not be a local file.  An origin is an opaque handle on a
 * table of operations (engine/origin-impl.h); each kind of origin is one
 * file that fills the table:
 *
 *   engine/origin-file.c   a regular file or a block device (disk=PATH)
 *   engine/origin-nbd.c    an export of an NBD server, reached with libnbd
 *                          (disk=NBD-URI)
 *
 * Errors: every function that can fail returns 0 (or what it says) or a
 * negative errno; nothing is left in errno.  The open functions also
 * write one line for the user into `err`, naming the path.
 *
 * Threads: every operation may be called from many threads at once, on
 * overlapping ranges too; ordering writes against reads is the caller's
 * business (the volume's chunk range locks).  Only sc_origin_close must
 * be called alone, once nothing else uses the origin.
 */
#ifndef SHADOWCOPY_ENGINE_ORIGIN_H
#define SHADOWCOPY_ENGINE_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cow/diffarea.h"

struct sc_origin;

/* Open a regular file or a block device read-write.  -EINVAL ("not a
 * regular file or block device") for anything else. */
int sc_origin_open_file (const char *path, struct sc_origin **out,
                         char *err, size_t errlen);

/* True if `s` names an NBD export (nbd://, nbds://, nbd+unix://,
 * nbds+unix://): anything else is a path. */
bool sc_origin_is_nbd_uri (const char *s);

/* How an NBD origin connects, and how long it waits. */
struct sc_origin_nbd_opts {
  uint32_t retry_ms;            /* keep trying to connect this long (at
                                   open and after a lost connection) */
  uint32_t io_timeout_ms;       /* a request not answered by then fails
                                   with EIO and its connection is made
                                   again; 0: wait for ever */
  uint32_t connections;         /* at most this many when the server has
                                   multi-conn (0: 4); else one */
  bool no_samples;              /* origin-check=off: read no sampled
                                   blocks at open, so a new connection
                                   cannot be checked against them */
};
#define SC_ORIGIN_NBD_RETRY_MS_DEFAULT 30000u
#define SC_ORIGIN_NBD_IO_TIMEOUT_MS_DEFAULT 30000u

/* Connect to the NBD export named by `uri` (libnbd's URI syntax, local
 * files such as tls-psk-file= allowed).  -EIO if it cannot be reached
 * within opts->retry_ms, -EROFS if it is read-only.  Its identity is
 * SC_ORIGIN_NBD with the export name as its path. */
int sc_origin_open_nbd (const char *uri,
                        const struct sc_origin_nbd_opts *opts,
                        struct sc_origin **out, char *err, size_t errlen);

/* Release the origin (no flush: call sc_origin_flush first if the data
 * must be durable).  NULL is allowed. */
void sc_origin_close (struct sc_origin *o);

/* Its size in bytes, fixed from the open on. */
uint64_t sc_origin_size (const struct sc_origin *o);

/* What the diff area records about the origin, to recognise it at the
 * next start (cow/diffarea.h). */
void sc_origin_identity (const struct sc_origin *o, struct sc_origin_id *id);

/* The sequence number of the disk a block device `rdev` is on (a
 * partition's whole disk's): new each time the kernel makes a disk or
 * attaches a loop device, whatever the I/O accounting; 0 if the kernel
 * does not say. */
uint64_t sc_block_diskseq (dev_t rdev);

/* What identifies the origin's content now, cheaply (cow/diffarea.h,
 * struct sc_origin_stamp): a file's size and times, a block device's
 * write counters since boot, and the CRC32C of SC_STAMP_SAMPLES sampled
 * blocks.  Meaningful only while nothing writes the origin: at open,
 * before the first write, and at close, after the last write and its
 * flush.  A file is fsynced first, so that its times are durable.  An
 * error is one of that fsync or of reading the samples. */
int sc_origin_stamp (struct sc_origin *o, struct sc_origin_stamp *st);

/* Call `cb` (once, from a request's thread) if the origin finds that it
 * is no longer the disk it was at the open: an NBD remote that came back
 * with another content (engine/origin-nbd.c).  Its requests fail with EIO
 * from then on. */
void sc_origin_on_changed (struct sc_origin *o,
                           void (*cb) (void *opaque, const char *why),
                           void *opaque);

/* Request flags, shared with the volume (engine/volume.h). */
#define SC_FUA       0x1        /* durable before returning */
#define SC_MAY_TRIM  0x2        /* zero may deallocate */

/* Every range below lies within the size: the caller checks.
 *
 * Data.  A short transfer is resumed, so success means all `len` bytes. */
int sc_origin_pread (struct sc_origin *o, void *buf, uint64_t len,
                     uint64_t off);
int sc_origin_pwrite (struct sc_origin *o, const void *buf, uint64_t len,
                      uint64_t off, unsigned flags);  /* SC_FUA */

/* Make every completed write durable. */
int sc_origin_flush (struct sc_origin *o);

/* How many flushes, and writes, zeroes and trims with SC_FUA, have failed
 * so far.  A lost write-back is reported once per open file (Linux's
 * errseq), to whichever of them syncs first, and then never again: one
 * caller's failure may be another's lost data. */
uint64_t sc_origin_failures (const struct sc_origin *o);

/* Make [off, off + len) read as zeros, deallocating it if SC_MAY_TRIM
 * allows and the origin can; falls back to writing zeros, so it only
 * fails if writing does. */
int sc_origin_zero (struct sc_origin *o, uint64_t len, uint64_t off,
                    unsigned flags);                  /* SC_FUA, SC_MAY_TRIM */

/* Deallocate [off, off + len) if the origin can: advisory, so an origin
 * that cannot is no error.  What it then reads is unspecified. */
int sc_origin_trim (struct sc_origin *o, uint64_t len, uint64_t off,
                    unsigned flags);                  /* SC_FUA */

/* The allocation map of [off, off + len), in ascending order:
 * cb(opaque, offset, length, SC_EXTENT_* flags).  Where the origin cannot
 * tell, it reports data.  Stops at the first non-zero return of cb and
 * returns it. */
#define SC_EXTENT_HOLE 0x1
#define SC_EXTENT_ZERO 0x2
typedef int (*sc_extent_cb) (void *opaque, uint64_t offset, uint64_t length,
                             unsigned flags);
int sc_origin_extents (struct sc_origin *o, uint64_t len, uint64_t off,
                       sc_extent_cb cb, void *opaque);

/* True only if [off, off + len) is known to be one hole (it reads as
 * zeros and holds nothing): the copy-on-write path records such a chunk
 * as a zero copy without reading it.  One cheap query; false when in
 * doubt. */
bool sc_origin_is_hole (struct sc_origin *o, uint64_t off, uint64_t len);

/* For batches through io_uring (cow/io.h): the file descriptor that
 * sc_io_req reads and writes the origin with, or -1 if the origin has
 * none (an NBD origin).  Then the caller must use sc_origin_pread and
 * sc_origin_pwrite instead.  The descriptor belongs to the origin: use
 * it only for data transfers, never close it. */
int sc_origin_fd (const struct sc_origin *o);


/* The kinds of origin this build can open, as a comma list (what
 * `nbdkit shadowcopy --dump-plugin` reports as shadowcopy_origin_backends):
 * one name per origin-*.c file above. */
#define SC_ORIGIN_BACKENDS "file,nbd"

#endif
