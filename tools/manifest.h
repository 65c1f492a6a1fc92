/* shadowcopy: a backup's manifest, TARGET.manifest.json.
 *
 * Beside every backup image: what it is an image of (the volume's UUID,
 * the snapshot's name, id and UUID), what it was made from (for an
 * incremental, BASE's UUID and PREV's manifest), its geometry, when and
 * how much was copied, a CRC32C per fixed block of the image
 * (block-size bytes; the last block may be shorter), so that damage is
 * located to a block, not to the whole file, and, for a backup that made
 * its own snapshot (`backup --create`), what each writer reported in
 * each phase around it ("writers"; absent from other manifests, and from
 * those written before it existed, which still parse).
 *
 * The parser is strict: one JSON object, every known member of the right
 * type and in range, none twice, the CRC list exactly as long as the
 * image has blocks.  Members it does not know are skipped if they are
 * well-formed JSON (nested at most SC_MANIFEST_DEPTH_MAX), so a newer
 * writer can add members; a change that older readers must refuse bumps
 * format-version.  It never reads past `len` and never crashes
 * (tests/fuzz/fuzz-manifest.c).
 *
 * Errors: 0 or a negative errno, with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_MANIFEST_H
#define SHADOWCOPY_TOOLS_MANIFEST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cow/diffarea.h"
#include "cow/uuid.h"

#define SC_MANIFEST_VERSION 1
#define SC_MANIFEST_BLOCK_SIZE (1024u * 1024u)  /* what backup writes */
#define SC_MANIFEST_DEPTH_MAX 16
#define SC_MANIFEST_SUFFIX ".manifest.json"
#define SC_MANIFEST_MAX_BYTES (256u * 1024u * 1024u)
#define SC_MANIFEST_WRITERS_MAX 256
#define SC_MANIFEST_PHASES_MAX 16       /* per writer: the newest kept */
#define SC_MANIFEST_OUTPUT_MAX 1024     /* a phase's output, one line */

/* What one writer reported in one phase. */
struct sc_manifest_phase {
  char phase[24];               /* identify, prepare, freeze, thaw, ... */
  char result[32];              /* "ok", "exit status 3", ... */
  char output[SC_MANIFEST_OUTPUT_MAX];  /* the end of what it printed */
  char time[32];                /* ISO 8601 UTC */
};

struct sc_manifest_writer {
  char name[PATH_MAX];          /* a path, or fsfreeze:MOUNTPOINT */
  struct sc_manifest_phase phases[SC_MANIFEST_PHASES_MAX];
  size_t nphases;
};

struct sc_manifest {
  uint64_t version;             /* SC_MANIFEST_VERSION */
  char format[16];              /* "raw" or "qcow2" */
  char volume_uuid[SC_UUID_TEXT_LEN];
  char snapshot_name[SC_NAME_MAX + 1];
  uint64_t snapshot_id;
  char snapshot_uuid[SC_UUID_TEXT_LEN];
  bool incremental;             /* base_uuid and prev_manifest are set */
  char base_uuid[SC_UUID_TEXT_LEN];
  char prev_manifest[PATH_MAX];
  uint64_t chunk_size, volume_size;
  char start_time[32], end_time[32];    /* ISO 8601 UTC */
  uint64_t bytes_read;          /* read from the snapshot export */
  uint64_t bytes_written;       /* data written to the image */
  uint64_t bytes_zeroed;        /* ranges written as zeros / punched */
  uint64_t block_size;          /* a power of two, 4 KiB to 1 GiB */
  uint32_t *crc;                /* one per block: malloc'd */
  uint64_t nblocks;             /* ceil(volume_size / block_size) */
  bool have_writers;            /* "writers" given (maybe empty) */
  struct sc_manifest_writer *writers;   /* malloc'd */
  size_t nwriters;
};

/* The number of blocks of a volume_size image in block_size blocks. */
static inline uint64_t
sc_manifest_blocks (uint64_t volume_size, uint64_t block_size)
{
  return volume_size / block_size + (volume_size % block_size != 0);
}

/* Parse text[0..len) into m (which the caller zeroes or frees; on
 * success m->crc is malloc'd).  -EINVAL (bad), -ENOMEM. */
int sc_manifest_parse (const char *text, size_t len, struct sc_manifest *m,
                       char *err, size_t errlen);

/* Read and parse the file at path; the messages name it. */
int sc_manifest_read (const char *path, struct sc_manifest *m, char *err,
                      size_t errlen);

/* Write m as JSON to f (the parser reads it back the same).  0, or -EIO
 * when f failed. */
int sc_manifest_print (const struct sc_manifest *m, FILE *f);

/* Write m to path durably: path.partial, fsync, rename (never over an
 * existing path: -EEXIST), fsync of the directory.  *written (NULL: not
 * wanted) gets the file's stat, to tell it from one put in its place
 * later. */
int sc_manifest_write (const struct sc_manifest *m, const char *path,
                       struct stat *written, char *err, size_t errlen);

/* Append a writer (have_writers set): 0, -ENOMEM, or -E2BIG past
 * SC_MANIFEST_WRITERS_MAX.  *out is zeroed but for its name (truncated
 * to fit); the caller fills its phases. */
int sc_manifest_add_writer (struct sc_manifest *m, const char *name,
                            struct sc_manifest_writer **out);

/* m's writers (have_writers set) as a copy of the n of w: 0 or -ENOMEM. */
int sc_manifest_set_writers (struct sc_manifest *m,
                             const struct sc_manifest_writer *w, size_t n);

/* Free what parse allocated; m can be parsed into again. */
void sc_manifest_free (struct sc_manifest *m);

#endif
