/* shadowcopy: a mounted filesystem frozen for a bounded window.
 *
 * The freeze is held by a guardian process that thaws the filesystem by
 * itself when told to, when the CLI dies (its pipe closes, even on
 * kill -9) or when the freeze window ends, whichever comes first: a
 * filesystem is never left frozen.  The guardian keeps no descriptor but
 * its own two pipes.
 *
 * The mechanism only: the built-in writer fsfreeze:MOUNTPOINT (writers.c)
 * runs it and records what happened.
 */
#ifndef SHADOWCOPY_LIB_FSFREEZE_H
#define SHADOWCOPY_LIB_FSFREEZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sc_fsfreeze {
  pid_t guard;                  /* the guardian, or 0 */
  int cmd, status;              /* its pipes, or -1 */
};

#define SC_FSFREEZE_INIT ((struct sc_fsfreeze) { 0, -1, -1 })

/* Freeze the filesystem mounted on `mnt` for at most window_ms.  0; or a
 * negative errno, with `why` saying what failed when the guardian was
 * started (FIFREEZE failed, or the guardian died), and empty when it
 * could not be (no pipe, no fork). */
int sc_fsfreeze_freeze (struct sc_fsfreeze *g, const char *mnt,
                        uint64_t window_ms, char *why, size_t whylen);

/* Thaw: through the guardian; without one (never frozen by us, its
 * freeze failed, or already thawed) nothing is done, so a filesystem
 * someone else froze (FIFREEZE then fails with EBUSY) stays frozen.  0; -ETIMEDOUT when the window
 * ended first (the guardian thawed before it was asked, so what was
 * taken since is not consistent); or the negative errno of FITHAW.  `why`
 * says what failed. */
int sc_fsfreeze_thaw (struct sc_fsfreeze *g, const char *mnt,
                      char *why, size_t whylen);

/* Close the pipes left open (a guardian still waiting then thaws). */
void sc_fsfreeze_close (struct sc_fsfreeze *g);

#endif
