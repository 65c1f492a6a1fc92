/* shadowcopy: the backup copy engine: ranges of a snapshot export read
 * over NBD and handed to a target.
 *
 * The engine knows NBD (libnbd, asynchronous API, several reads in
 * flight) and nothing of the target: a target is a sink that writes data
 * at an offset and writes zeros over a range (backup-raw.c for a raw
 * file; a qcow2 target will be another sink).
 *
 * For each range given (the whole volume for a full backup, the extents
 * of `diff BASE SNAPSHOT` for an incremental), the export's block status
 * (base:allocation) says what is data: only data is read.  A range the
 * export reports as zero or a hole, and data read back as all zeros, is
 * a zero range: skipped when the target starts out as zeros (a full
 * backup into a new sparse file: holes stay holes), else handed to the
 * sink's zero (an incremental: it must mask what PREV had there).
 *
 * Reads may complete out of order; the watermark (below it, every range
 * is done) is what a resume can rely on, and the engine reports it with
 * exact byte counts (see sc_backup_watermark_fn).  Where the export can
 * multi-conn, reads are spread over several connections.
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_COPY_H
#define SHADOWCOPY_TOOLS_BACKUP_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>

#include <libnbd.h>

struct sc_backup_range { uint64_t offset, length; };

/* Where the copied bytes go.  Both return 0 or a negative errno, and are
 * called from the engine's thread, one at a time. */
struct sc_backup_sink {
  void *opaque;
  int (*write) (void *opaque, const void *buf, size_t len, uint64_t off);
  int (*zero) (void *opaque, uint64_t off, uint64_t len);
  const char *name;             /* for messages: the target's path */
};

typedef void (*sc_backup_progress_fn) (void *opaque, uint64_t done,
                                       uint64_t total);

/* A piece of the ranges is handed to the target: [off, off + len) gets
 * buf's bytes (sink->write accepted them: written, or queued by a sink
 * that writes on a thread of its own and fails every later call, and the
 * backup, if that write fails), or, with buf NULL, reads as zeros (handed
 * to sink->zero, or skipped because the target starts as zeros).  Called from the engine's thread, once per piece, in no
 * particular order; buf is the engine's and only valid during the call. */
typedef void (*sc_backup_piece_fn) (void *opaque, uint64_t off, uint64_t len,
                                    const void *buf);

struct sc_backup_stats {
  uint64_t bytes_read;          /* over NBD */
  uint64_t bytes_written;       /* data handed to sink->write */
  uint64_t bytes_zeroed;        /* handed to sink->zero */
};

/* The watermark: every range below `watermark` was handed to the sink
 * and the sink returned; stats count exactly that work (with what the
 * caller's stats held at the start).  Called from the engine's thread
 * between sink calls, so it may sync the target.  A negative errno stops
 * the copy with that error (err said). */
typedef int (*sc_backup_watermark_fn) (void *opaque, uint64_t watermark,
                                       const struct sc_backup_stats *stats,
                                       char *err, size_t errlen);

struct sc_backup_copy_opts {
  bool target_is_zero;          /* zero ranges are skipped, not zeroed */
  unsigned requests;            /* reads in flight, over all connections
                                   (default 16) */
  size_t request_size;          /* bytes per read (default 1 MiB); a read
                                   never crosses a multiple of it */
  sc_backup_progress_fn progress;       /* NULL: none */
  void *progress_opaque;
  uint64_t start;               /* the ranges below are done already:
                                   skipped, and counted as done */
  sc_backup_watermark_fn watermark;     /* NULL: none */
  void *watermark_opaque;
  /* The watermark is reported when it has moved by watermark_bytes of
   * the ranges, or watermark_ms after the last report, whichever comes
   * first (0: 256 MiB, 5 s); and once more at the end, on success, on an
   * error (where it stopped; its error then ignored) and on stop. */
  uint64_t watermark_bytes;
  unsigned watermark_ms;
  /* Set (by a signal handler): the reads in flight are finished and
   * written, the watermark reported, and the copy returns -EINTR. */
  const volatile sig_atomic_t *stop;
  sc_backup_piece_fn piece;     /* NULL: none */
  void *piece_opaque;
};

#define SC_BACKUP_MAX_CONNECTIONS 16

/* Copy ranges[0..n) (sorted, disjoint, inside the export) from the
 * export, connected as nbd[0..nconn) (1 to SC_BACKUP_MAX_CONNECTIONS
 * connections to one export that can multi-conn; block status is asked
 * on the first), to sink.  stats: in, the counts of the work below
 * opts->start (an earlier run's); out, those of the work below the last
 * watermark (all of it, on success). */
int sc_backup_copy (struct nbd_handle *const *nbd, unsigned nconn,
                    const struct sc_backup_range *ranges, size_t n,
                    const struct sc_backup_copy_opts *opts,
                    const struct sc_backup_sink *sink,
                    struct sc_backup_stats *stats, char *err, size_t errlen);

#endif
