/* shadowcopy: salvaging a diff area whose journal is damaged.
 *
 * sc_diff_salvage() is for a diff area that opens refuse because records
 * of its journal are damaged (docs/design.md, "Salvage").  It takes the
 * diff area's lock exclusively (a running server is refused), replays the
 * journal going past the damaged records to every later record that
 * checks out, marks invalid (SC_INVALID_SALVAGED) every snapshot the lost
 * records may have concerned, and writes the result as a new journal (a
 * checkpoint).  It never guesses and never writes the origin (it does not
 * even open it).
 *
 * The report says what was lost (record numbers) and, per snapshot,
 * whether it was kept or marked invalid.
 */
#ifndef SHADOWCOPY_COW_SALVAGE_H
#define SHADOWCOPY_COW_SALVAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"

/* last_seq of a loss that runs to the end of the journal: how many
 * records followed the damaged one is unknown. */
#define SC_SALVAGE_TO_END UINT64_MAX
/* At most this many losses are kept; nlosses_total counts them all. */
#define SC_SALVAGE_LOSSES_MAX 256

struct sc_salvage_loss {
  uint64_t first_seq, last_seq; /* the records lost (journal numbers) */
  uint64_t offset;              /* where the damage is in the file */
  char why[320];                /* what was wrong there */
};

struct sc_salvage_snap {
  uint64_t id;
  uint32_t epoch;
  char name[SC_NAME_MAX + 1];
  uint32_t reason;              /* SC_VALID: kept and served */
  bool marked;                  /* marked invalid by this salvage (not
                                   before) */
};

struct sc_salvage_report {
  bool needed;                  /* false: the diff area opens as it is;
                                   nothing was written */
  char refusal[1024];           /* why the diff area did not open */
  struct sc_salvage_loss *losses;
  size_t nlosses;
  uint64_t nlosses_total;
  uint64_t skipped;             /* later records about snapshots that went
                                   with the lost ones (e.g. their delete) */
  uint64_t superseded;          /* snapshots listed at a loss that a
                                   later create of their name shows were
                                   deleted by a lost record: gone */
  uint64_t suspect_below;       /* snapshots with lower ids existed when
                                   records were lost */
  uint64_t *marked;             /* ids of the snapshots it marked invalid */
  char revert_target[129];      /* a revert ran when records were lost: it
                                   was ended; its target ("" if none) */
  size_t nmarked;
  struct sc_salvage_snap *snaps;        /* the snapshots afterwards */
  size_t nsnaps;
};

/* Salvage the diff area at `path`.  Returns 0 when done (or when nothing
 * needed doing: rep->needed false), with the report to free with
 * sc_salvage_report_free; or a negative errno with one line in err:
 * -EWOULDBLOCK (a server holds it), -ENOENT and the like, -EINVAL (damage
 * salvage cannot go past, e.g. both superblocks), -ENOMEM, I/O errors. */
int sc_diff_salvage (const char *path, struct sc_salvage_report *rep,
                     char *err, size_t errlen);

void sc_salvage_report_free (struct sc_salvage_report *rep);

#endif
