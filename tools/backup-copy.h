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
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_COPY_H
#define SHADOWCOPY_TOOLS_BACKUP_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct sc_backup_copy_opts {
  bool target_is_zero;          /* zero ranges are skipped, not zeroed */
  unsigned requests;            /* reads in flight (default 16) */
  size_t request_size;          /* bytes per read (default 1 MiB) */
  sc_backup_progress_fn progress;       /* NULL: none */
  void *progress_opaque;
};

struct sc_backup_stats {
  uint64_t bytes_read;          /* over NBD */
  uint64_t bytes_written;       /* data handed to sink->write */
  uint64_t bytes_zeroed;        /* handed to sink->zero */
};

/* Copy ranges[0..n) (sorted, disjoint, inside the export) from the
 * connected handle nbd to sink.  stats are added to. */
int sc_backup_copy (struct nbd_handle *nbd,
                    const struct sc_backup_range *ranges, size_t n,
                    const struct sc_backup_copy_opts *opts,
                    const struct sc_backup_sink *sink,
                    struct sc_backup_stats *stats, char *err, size_t errlen);

#endif
