/* shadowcopy: a backup target: the image a backup writes, whatever its
 * format.
 *
 * Every format follows the same life: open makes TARGET.partial (a new
 * image, or for an incremental one that starts as PREV's content), the
 * copy engine writes through the sink (backup-copy.h), sync makes it
 * durable, block_crc sums the image's content as a disk (what a reader
 * of the image sees, backing files included), and commit renames it to
 * TARGET, never over an existing file.  abort removes TARGET.partial;
 * keep closes it as it is, for `backup --resume` (backup-resume.h) to
 * continue.  PREV is only ever read.
 *
 * Formats: raw (backup-raw.c: a sparse file, a reflink or sparse copy
 * of PREV for an incremental); qcow2 (backup-qcow2.c: a qcow2 image
 * made and written by QEMU's tools, for an incremental an overlay whose
 * backing file is PREV).
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_TARGET_H
#define SHADOWCOPY_TOOLS_BACKUP_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/backup-copy.h"

enum sc_image_format { SC_IMAGE_RAW, SC_IMAGE_QCOW2 };

/* "raw", "qcow2". */
const char *sc_image_format_name (enum sc_image_format f);
/* 0, or -EINVAL for a name that is no format. */
int sc_image_format_parse (const char *name, enum sc_image_format *f);

struct sc_backup_target_spec {
  enum sc_image_format format;
  const char *target;           /* the final path */
  const char *prev;             /* an incremental's PREV; NULL: full */
  enum sc_image_format prev_format;
  uint64_t size;                /* the volume's */
  bool resume;                  /* keep a TARGET.partial left earlier */
};

struct sc_backup_target;

struct sc_backup_target_ops {
  int (*open) (const struct sc_backup_target_spec *spec,
               struct sc_backup_target **out, char *err, size_t errlen);
  void (*sink) (struct sc_backup_target *t, struct sc_backup_sink *s);
  int (*sync) (struct sc_backup_target *t, char *err, size_t errlen);
  int (*block_crc) (struct sc_backup_target *t, uint64_t block_size,
                    uint64_t i, uint32_t *crc, char *err, size_t errlen);
  int (*commit) (struct sc_backup_target *t, char *err, size_t errlen);
  void (*abort) (struct sc_backup_target *t);
  /* Close, leaving TARGET.partial as it is; NULL: the format cannot be
   * resumed (keep then aborts). */
  void (*keep) (struct sc_backup_target *t);
};

/* The head of every format's target. */
struct sc_backup_target {
  const struct sc_backup_target_ops *ops;
  bool reflinked;               /* PREV was cloned, not copied */
  bool resumed;                 /* an existing TARGET.partial was kept */
  bool overlay;                 /* it reads PREV as its backing file */
};

extern const struct sc_backup_target_ops sc_raw_target_ops;
extern const struct sc_backup_target_ops sc_qcow2_target_ops;

/* For the formats: open (creating it) and lock TARGET.partial, so that
 * a second backup to the same TARGET is refused (-EBUSY, said) while a
 * stale one, whose backup was killed, is not locked.  0 or a negative
 * errno, with the message naming partial. */
int sc_backup_partial_open (const char *partial, int *fd, char *err,
                            size_t errlen);

/* For the formats' commit: rename partial to target (never over an
 * existing file) and fsync the directory.  0; 1 when target is in place
 * but its directory could not be synced (err says so); or a negative
 * errno with nothing renamed (the caller aborts). */
int sc_backup_partial_commit (const char *partial, const char *target,
                              char *err, size_t errlen);

/* Make TARGET.partial for spec (locked: a second backup to the same
 * TARGET is refused; a stale one is started over unless spec->resume).
 * Refuses a TARGET that exists.  With spec->resume, a TARGET.partial
 * that cannot be kept is refused with -ESTALE, left as it is (err says
 * why): a resume state may still describe it, and must go first (then
 * open again without spec->resume). */
int sc_backup_target_open (const struct sc_backup_target_spec *spec,
                           struct sc_backup_target **out, char *err,
                           size_t errlen);

/* The sink that writes into TARGET.partial. */
void sc_backup_target_sink (struct sc_backup_target *t,
                            struct sc_backup_sink *s);

/* Make everything written durable. */
int sc_backup_target_sync (struct sc_backup_target *t, char *err,
                           size_t errlen);

/* The CRC32C of block i (block_size bytes; the last may be shorter) of
 * the image's content, after sync. */
int sc_backup_target_block_crc (struct sc_backup_target *t,
                                uint64_t block_size, uint64_t i,
                                uint32_t *crc, char *err, size_t errlen);

/* Rename TARGET.partial to TARGET (never over an existing file), fsync
 * the directory, and free t.  0; 1 when TARGET is in place but its
 * directory could not be synced (err says so); or a negative errno with
 * nothing renamed and TARGET.partial removed. */
int sc_backup_target_commit (struct sc_backup_target *t, char *err,
                             size_t errlen);

/* Remove TARGET.partial and free t (after a failure); NULL is a no-op. */
void sc_backup_target_abort (struct sc_backup_target *t);

/* Close TARGET.partial as it is and free t (after a failure that a
 * resume can continue from: whatever was synced stays).  false when the
 * format cannot keep one: it was removed, as by abort. */
bool sc_backup_target_keep (struct sc_backup_target *t);

#endif
