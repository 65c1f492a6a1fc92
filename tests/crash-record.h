/* Crash-state test harness, part 1: the record of every write, fallocate
 * and fdatasync that cow/ and engine/ send to the origin and the diff
 * area, and the disk images a power loss could leave behind.
 *
 * Recording.  cr_record_start() installs sc_io_fault_hook, which sees
 * each request before it runs (it never fails one), and sc_io_done_hook,
 * which sees each sc_io_run batch when all of it is done.  Requests are
 * told apart by the file they go to (device and inode), so any fd of the
 * origin or the diff area is recognised; reads are not recorded; a write
 * to any other file is counted as foreign (the harness asserts there is
 * none), except to an unlinked scratch file (cow/pagecache.h), which no
 * crash leaves behind and which is ignored.  The payload of every write is copied.  Any number of threads
 * may issue I/O at once: the record is the order in which requests were
 * issued, as it happened, and each operation also notes how many had been
 * issued when it completed (op->done), and the tag its thread set
 * (cr_set_tag), which ties it to the workload's operation.
 *
 * What an operation does to an image:
 *   CR_WRITE   the payload at [off, off + len), growing the file;
 *   CR_ZERO    fallocate PUNCH_HOLE or ZERO_RANGE: zeros (with KEEP_SIZE,
 *              only below the file's size);
 *   CR_EXTEND  fallocate without KEEP_SIZE (mode 0): the size grows to
 *              off + len, the content is unchanged;
 *   CR_SYNC    fdatasync of that file.
 *
 * Crash states.  Crash point k is the moment just before operation k was
 * issued: operations 0..k-1 had been issued, and those whose done <= k
 * had completed.  An operation is durable at k if a sync of its file that
 * had completed by then (done <= k) was issued after it completed (its
 * done <= the sync's index).  For each file, the image at crash point k
 * holds the initial image plus every durable operation, in the order of
 * the record (the durable part), plus some of the other operations issued
 * before k (the pending part), chosen by the variant:
 *   CR_V_NONE     none of them;
 *   CR_V_ALL      all of them, in order (what a process kill leaves);
 *   CR_V_PREFIX   the first j of them in order, the last one maybe torn;
 *   CR_V_RANDOM   any subset, some torn, applied in a random order;
 *   CR_V_INPLACE  those that stay inside the durable size of the file, in
 *                 order, and none that grows it (what a filesystem leaves
 *                 when overwritten blocks reached the disk but the size
 *                 and allocation changes of its journal did not).
 * A torn operation applies only a prefix of its range, cut at a 512-byte
 * sector boundary (absolute file offsets).  Extensions are never torn.
 * Completion is noted when sc_io_run returns, which is when the engine
 * learns of it, so a request of a batch that finished early counts as
 * pending a little longer than it was: the engine cannot have relied on
 * it.  With one thread, a sync is issued after everything recorded
 * before it completed, and the durable part is every operation before the
 * last completed sync.  With several, applying the durable operations in
 * the record's order is right as long as no two overlapping changes were
 * in flight at once (cr_check_overlaps).
 */
#ifndef SHADOWCOPY_TESTS_CRASH_RECORD_H
#define SHADOWCOPY_TESTS_CRASH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cr_kind { CR_WRITE, CR_ZERO, CR_EXTEND, CR_SYNC };

#define CR_ORIGIN 0
#define CR_DIFF   1
#define CR_NFILES 2

#define CR_SECTOR 512u

struct cr_op {
  uint8_t kind;                 /* enum cr_kind */
  uint8_t file;                 /* CR_ORIGIN or CR_DIFF */
  bool keep_size;               /* CR_ZERO: FALLOC_FL_KEEP_SIZE */
  bool dsync;                   /* CR_WRITE: RWF_DSYNC (FUA) */
  uint32_t tag;                 /* the issuing thread's cr_set_tag() */
  uint64_t off, len;
  uint8_t *data;                /* CR_WRITE: a copy of the payload */
  size_t done;                  /* operations recorded when it had
                                   completed (CR_NEVER: it never did) */
};

#define CR_NEVER SIZE_MAX

struct cr_log {
  struct cr_op *ops;
  size_t n, cap;
  uint64_t dev[CR_NFILES], ino[CR_NFILES];
  size_t foreign;               /* writes, syncs, fallocates elsewhere */
  size_t origin_changes;        /* guard mode: writes/fallocates to origin */
  bool guard;                   /* guard mode: count, do not record */
};

/* Identify the two files (they must exist) and start an empty log. */
void cr_log_init (struct cr_log *log, const char *origin, const char *diff);
void cr_log_free (struct cr_log *log);

/* Record every request to the two files from now on (installs
 * sc_io_fault_hook), until cr_record_stop(). */
void cr_record_start (struct cr_log *log);
void cr_record_stop (void);
/* Operations recorded so far. */
size_t cr_record_count (void);
/* Tag the operations this thread issues from now on (0: none). */
void cr_set_tag (uint32_t tag);

/* Two writes or fallocates that change overlapping bytes of one file
 * while both are in flight (neither had completed when the other was
 * issued) leave either order on the disk: a bug of the engine, which the
 * crash states would not model.  Returns false and says which, if any. */
bool cr_check_overlaps (const struct cr_log *log, char *msg, size_t len);

/* Guard mode: record nothing, but count every write or fallocate that
 * reaches the origin (recovery must never write to it). */
void cr_guard_start (struct cr_log *log);
size_t cr_guard_stop (void);

/* ---- images ---------------------------------------------------------- */

struct cr_image {
  uint8_t *buf;
  uint64_t size;                /* bytes [0, size) are the file */
  uint64_t cap;                 /* bytes allocated */
};

void cr_image_alloc (struct cr_image *img, uint64_t cap);
void cr_image_free (struct cr_image *img);
void cr_image_copy (struct cr_image *dst, const struct cr_image *src);
/* Read a whole file into img (growing it as needed). */
void cr_image_load (struct cr_image *img, const char *path);

/* Apply the first `cut` bytes of op's range (cut == op->len: all of it). */
void cr_apply (struct cr_image *img, const struct cr_op *op, uint64_t cut);

/* The largest offset any operation of `file` reaches, or `floor`. */
uint64_t cr_max_end (const struct cr_log *log, int file, uint64_t floor);

/* ---- crash states ------------------------------------------------------ */

enum cr_variant { CR_V_NONE, CR_V_ALL, CR_V_PREFIX, CR_V_RANDOM,
                  CR_V_INPLACE, CR_V_COUNT };

struct cr_builder {
  const struct cr_log *log;
  struct cr_image durable[CR_NFILES];
  size_t low[CR_NFILES];        /* ops of the file below this index are
                                   all in its durable image */
  size_t last_sync[CR_NFILES];  /* index of the last-issued sync that had
                                   completed before k, +1 (0: none) */
  size_t k;                     /* last crash point scanned */
  bool *is_durable;             /* per op: in its file's durable image */
  size_t *syncs, nsyncs;        /* the indices of the syncs */
  size_t *scratch;
  /* What the last cr_build did with each operation below k: 'D' durable,
   * 'a' applied, 't' torn, '-' lost, 's' a completed sync, 'i' one in
   * flight. */
  char *fate;
};

/* Start from the initial images (copied). */
void cr_builder_init (struct cr_builder *b, const struct cr_log *log,
                      const struct cr_image init[CR_NFILES]);
void cr_builder_free (struct cr_builder *b);

/* What one crash state took from the pending operations. */
struct cr_state_info {
  size_t durable_ops[CR_NFILES];   /* ops in the durable part */
  size_t pending[CR_NFILES];       /* ops after the last sync */
  size_t applied[CR_NFILES];       /* of those, applied whole */
  size_t torn[CR_NFILES];          /* of those, applied torn */
};

/* Build the images of crash point k (k never decreases between calls)
 * into out[] (allocated by the caller with enough capacity).  `rng` is a
 * splitmix64 state. */
void cr_build (struct cr_builder *b, size_t k, enum cr_variant variant,
               uint64_t *rng, struct cr_image out[CR_NFILES],
               struct cr_state_info *info);

const char *cr_variant_name (enum cr_variant v);

#endif
