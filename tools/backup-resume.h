/* shadowcopy: a backup's resume state, TARGET.resume, beside
 * TARGET.partial: which backup the partial image belongs to, and how far
 * it got.
 *
 * Which backup: the volume's UUID, the snapshot's name, id and UUID, the
 * image format, the volume's size, for an incremental BASE's UUID and
 * PREV's manifest (its path and a fingerprint of its content), and a
 * fingerprint of the ranges to copy (their count, bytes and CRC32C).  A
 * later `backup --resume` continues only when all of these are those of
 * its own command (sc_resume_mismatch says why not).
 *
 * How far: every range below `watermark` is in TARGET.partial, durably;
 * bytes read, written and zeroed count the work below it, so a resumed
 * backup's manifest counts both runs.
 *
 * The rules that make it true (backup-job.c keeps them):
 *   - the state is written only after the target's sync made the data
 *     below its watermark durable, and only after an incremental's check
 *     of PREV's blocks (backup-job.c) passed;
 *   - it is written durably: TARGET.resume.tmp, fsync, rename, fsync of
 *     the directory;
 *   - a backup that will not continue an existing TARGET.partial removes
 *     TARGET.resume durably before it changes TARGET.partial.
 *
 * The file is one record of SC_RESUME_BYTES bytes, little-endian:
 *
 *   offset size  field
 *        0    8  magic "SCRESUME"
 *        8    4  version (1; another is refused)
 *       12    4  CRC32C of the record with this field zero
 *       16    4  flags: 1 = incremental (no other bit is allowed)
 *       20    4  format: 0 raw, 1 qcow2
 *       24   16  volume UUID
 *       40   16  snapshot UUID
 *       56   16  BASE's UUID (zeros for a full backup)
 *       72    8  snapshot id
 *       80    8  volume size
 *       88    8  ranges: count
 *       96    8  ranges: bytes
 *      104    4  ranges: CRC32C (sc_resume_ranges_crc)
 *      108    4  PREV's fingerprint (0 for a full backup)
 *      112    8  watermark
 *      120    8  bytes read
 *      128    8  bytes written
 *      136    8  bytes zeroed
 *      144   32  start time (ISO 8601 UTC, NUL-padded)
 *      176  136  snapshot name (NUL-padded)
 *      312 4096  PREV's manifest, an absolute path (NUL-padded; empty for
 *                a full backup)
 *
 * The parser is strict (every field in range, padding zero, so that a
 * record it accepts encodes back to the same bytes) and never reads past
 * its input (tests/fuzz/fuzz-resume.c).
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_RESUME_H
#define SHADOWCOPY_TOOLS_BACKUP_RESUME_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"
#include "cow/uuid.h"
#include "tools/backup-copy.h"

#define SC_RESUME_SUFFIX ".resume"
#define SC_RESUME_VERSION 1
#define SC_RESUME_BYTES 4408u
#define SC_RESUME_PATH_MAX 4096u

struct sc_resume_state {
  /* Which backup. */
  char volume_uuid[SC_UUID_TEXT_LEN];
  char snapshot_name[SC_NAME_MAX + 1];
  uint64_t snapshot_id;
  char snapshot_uuid[SC_UUID_TEXT_LEN];
  bool incremental;
  char base_uuid[SC_UUID_TEXT_LEN];      /* incremental only */
  char prev_manifest[SC_RESUME_PATH_MAX];       /* incremental only */
  uint32_t prev_fingerprint;            /* incremental only */
  char format[16];                      /* "raw" or "qcow2" */
  uint64_t volume_size;
  uint64_t ranges_count, ranges_bytes;
  uint32_t ranges_crc;
  char start_time[32];
  /* How far. */
  uint64_t watermark;
  uint64_t bytes_read, bytes_written, bytes_zeroed;
};

/* The CRC32C of ranges[0..n), each as its offset and length in 8 bytes
 * little-endian. */
uint32_t sc_resume_ranges_crc (const struct sc_backup_range *ranges,
                               size_t n);

/* The record of s into buf.  -EINVAL when a field cannot be encoded (a
 * string too long, a UUID that is none). */
int sc_resume_encode (const struct sc_resume_state *s,
                      unsigned char buf[SC_RESUME_BYTES]);

/* Parse buf[0..len) into s.  -EINVAL with err said. */
int sc_resume_decode (const void *buf, size_t len,
                      struct sc_resume_state *s, char *err, size_t errlen);

/* Read and parse the state at path.  -ENOENT when there is none (err
 * not said); -EINVAL for a damaged one. */
int sc_resume_read (const char *path, struct sc_resume_state *s, char *err,
                    size_t errlen);

/* Write s to path durably (path.tmp, fsync, rename, fsync of the
 * directory). */
int sc_resume_write (const char *path, const struct sc_resume_state *s,
                     char *err, size_t errlen);

/* Remove the state at path, durably (the fsync of its directory); no
 * state is not an error. */
int sc_resume_remove (const char *path);

/* Whether saved (on disk) is of another backup than now (this command's,
 * its progress fields ignored); if so, why in words, for the user, into
 * why. */
bool sc_resume_mismatch (const struct sc_resume_state *saved,
                         const struct sc_resume_state *now, char *why,
                         size_t whylen);

#endif
