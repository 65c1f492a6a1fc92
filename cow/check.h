/* shadowcopy: the offline check of a diff area.
 *
 * sc_diff_check() validates a diff area that no server holds, without
 * writing a byte: it takes the diff area's lock shared, loads it as a
 * read-only open does (superblock, the whole journal, the allocator), and
 * then looks for what such an open passes over in silence:
 *
 *   - a damaged superblock copy while the other copy is valid (the open
 *     falls back to the valid one, but the diff area has lost its second
 *     copy: damage);
 *   - non-zero bytes past the end of the journal in its last slot.
 *     Journal slots are zeroed when taken, so after an unclean stop they
 *     are a torn tail, which recovery drops: a warning, not damage.
 *     After a clean close nothing may follow the journal: damage;
 *   - data slots of kept copies that cannot be read back;
 *   - with SC_CHECK_DATA, every copy's data against its checksums (the
 *     same verification snapshot reads do, sc_diff_verify_next): each
 *     damaged copy is a finding naming its chunk, slot and the snapshots
 *     that need it.
 *
 * Whatever the open itself refuses (damaged superblocks, a damaged middle
 * of the journal, records that make no sense, ...) is reported as one
 * problem with the open's message, which names what and where.
 *
 * The result is a report: counters for a summary, and a list of findings.
 * The diff area is clean when no finding is damage.
 */
#ifndef SHADOWCOPY_COW_CHECK_H
#define SHADOWCOPY_COW_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/format.h"

enum sc_check_severity {
  SC_CHECK_WARNING = 1,         /* worth knowing; recovery deals with it */
  SC_CHECK_DAMAGE = 2,          /* the diff area is damaged */
};

/* A finding without one place in the file (its text may name several). */
#define SC_CHECK_NOWHERE UINT64_MAX

struct sc_check_finding {
  enum sc_check_severity severity;
  uint64_t offset;              /* byte offset in the diff area, or
                                   SC_CHECK_NOWHERE */
  char what[640];               /* one line naming what and where */
};

/* At most this many findings are kept; the counters count them all. */
#define SC_CHECK_FINDINGS_MAX 100

struct sc_check_sb {
  bool valid;
  uint64_t generation;          /* when valid */
  char why[96];                 /* when not valid: what is wrong */
};

struct sc_check_report {
  uint64_t file_bytes;
  struct sc_check_sb sb[SC_SB_COPIES];  /* A at 0, B at 4096 */

  /* The rest is set only when the diff area loads. */
  bool loaded;
  uint32_t sb_flags;            /* SC_SB_* of the current superblock */
  uint32_t chunk_size;
  uint64_t volume_size;
  uint32_t epoch;               /* of the live volume */
  uint64_t snapshots, snapshots_valid, snapshots_invalid;
  uint64_t clones, clones_valid, clones_invalid;  /* not in snapshots */
  uint64_t journal_records;     /* records replayed, NEXT and COMMIT too */
  uint64_t journal_slots;
  uint64_t journal_head_offset; /* where the journal starts ... */
  uint64_t journal_end_offset;  /* ... and where its last record ends */
  uint64_t copies;              /* kept copies, zero copies included */
  uint64_t zero_copies;
  uint64_t data_slots;          /* slots holding copied data, the
                                   copies' and the clones' */
  uint64_t clone_slots;         /* of those, held by clones */
  uint64_t data_slots_read;     /* of those, read back without error */
  uint64_t used_bytes;          /* superblocks + journal + data */
  uint64_t free_slots;          /* free slots below the end of the file */
  uint64_t free_bytes;

  /* With SC_CHECK_DATA. */
  bool data_checked;
  uint64_t copies_verified;     /* data copies read and checked */
  uint64_t bytes_verified;
  uint64_t copies_damaged;      /* of those, failed their checksum */

  size_t damage, warnings;      /* findings of each severity */
  struct sc_check_finding *findings;    /* the first SC_CHECK_FINDINGS_MAX */
  size_t nfindings;
};

/* Check the diff area at `path`.  Returns 0 when the check was done (the
 * report says what it found; free it with sc_check_report_free), or a
 * negative errno when it could not be done, with one line in err:
 * -ENOENT and the like (cannot open the file), -EINVAL (not a regular
 * file), -EWOULDBLOCK (a server or another process holds the diff area),
 * -EPROTONOSUPPORT (written by a newer shadowcopy), -ENOMEM. */
int sc_diff_check (const char *path, struct sc_check_report *rep,
                   char *err, size_t errlen);
/* The same, with options: SC_CHECK_DATA also verifies every copy's data
 * against its checksums. */
#define SC_CHECK_DATA 0x1
int sc_diff_check_with (const char *path, unsigned flags,
                        struct sc_check_report *rep, char *err,
                        size_t errlen);

void sc_check_report_free (struct sc_check_report *rep);

#endif
