/* shadowcopy: a long verb's progress.
 *
 * --progress: a line on stderr, redrawn (at most twice a second, or
 * when the percentage changes), with the percentage, MiB done of the
 * total, the rate and the time left; --progress=FD: a line "N/100" on
 * FD each time the percentage changes (nbdcopy's convention), ending
 * with 100/100.  backup and restore show it.
 */
#ifndef SHADOWCOPY_TOOLS_PROGRESS_H
#define SHADOWCOPY_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct sc_progress {
  bool on;
  int fd;                       /* -1: the bar on stderr */
  uint64_t start_ms, last_ms;
  int last_pct;
};

/* Off, for a verb to fill in from its options. */
#define SC_PROGRESS_INIT { .on = false, .fd = -1, .last_pct = -1 }

/* Whether arg is --progress or --progress=FD: 1 (p set), 0 (another
 * argument), or SC_EXIT_USAGE (said, naming verb). */
int sc_progress_option (const char *verb, const char *arg,
                        struct sc_progress *p);

/* Start the clock of the rate and the time left. */
void sc_progress_start (struct sc_progress *p);

/* done of total bytes: an sc_backup_progress_fn, opaque the
 * struct sc_progress. */
void sc_progress_update (void *opaque, uint64_t done, uint64_t total);

#endif
