/* shadowcopy: writers, the application hooks around a snapshot.
 *
 * A writer is an executable called with one phase argument (identify,
 * prepare, freeze, thaw, abort, post-snapshot, backup-complete) and these
 * environment variables:
 *   SHADOWCOPY_PHASE      the phase, again
 *   SHADOWCOPY_SET_ID     the snapshot set's UUID
 *   SHADOWCOPY_SNAPSHOT   the snapshot name (the same on every volume)
 *   SHADOWCOPY_SNAPSHOTS  one SOCKET=NAME per volume, space-separated
 *   SHADOWCOPY_VOLUMES    the control sockets of the volumes, space-separated
 *   SHADOWCOPY_WRITER     the writer's own name
 *   SHADOWCOPY_BACKUP_RESULT  in backup-complete only, when the requester
 *                         says: "success", or "failure" (a backup did not
 *                         complete: nothing that relies on it, such as
 *                         truncating logs, may be done)
 * Exit status 0 is success.  Its standard output and error are captured
 * (the last SC_WRITER_OUTPUT_MAX bytes): a failure message quotes them.
 * A writer that outlives its time limit is killed (SIGKILL to its
 * process group).
 *
 * The built-in writer fsfreeze:MOUNTPOINT freezes the filesystem mounted
 * there (FIFREEZE) in its freeze phase and thaws it (FITHAW) in thaw and
 * abort.  The freeze is done by a guardian process that thaws by itself
 * when told to, when the CLI dies (its pipe closes, even on kill -9) or
 * when the freeze window ends, whichever comes first: a filesystem is
 * never left frozen.  A thaw after the window ended (the guardian had
 * already thawed) fails with "window expired".  The guardian keeps no
 * descriptor but its own two pipes.
 *
 * The other in-box writers, qemu-ga:, libvirt:, postgresql: and mysql:
 * (lib/writer-kinds.h), are handed to sc_writer_kind_run; those that
 * hold a freeze hold it in a guardian of lib/guardian.c, with the same
 * guarantees.
 *
 * External writers have no guardian: if the CLI is killed (kill -9)
 * between freeze and thaw, they are not told abort or thaw; a writer
 * must bound its own freeze itself.
 */
#ifndef SHADOWCOPY_LIB_WRITERS_H
#define SHADOWCOPY_LIB_WRITERS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/fsfreeze.h"
#include "lib/guardian.h"
#include "lib/shadowcopy.h"

#define SC_WRITER_OUTPUT_MAX 1024
#define SC_WRITER_HISTORY_MAX 16
#define SC_WRITERS_DIR_DEFAULT SHADOWCOPY_WRITERS_DIR

/* What one phase of a writer did. */
struct sc_writer_result {
  char phase[24];
  char result[32];              /* "ok", "exit status 3", "timed out ..." */
  char output[SC_WRITER_OUTPUT_MAX];    /* one line, sanitized */
  uint64_t when;                /* Unix seconds */
  uint64_t frozen_ns;           /* thaw: since the freeze ended, or 0 */
};

struct sc_writer_kind_impl;

struct sc_writer {
  char *name;                   /* as given: a path or fsfreeze:MOUNTPOINT */
  char *mountpoint;             /* fsfreeze: only */
  bool excluded;                /* failed identify: left out */
  struct sc_fsfreeze freeze;    /* fsfreeze: its guardian */
  /* The other in-box writers (lib/writer-kinds.h): KIND:ARG. */
  const struct sc_writer_kind_impl *kind;
  void *kind_state;
  struct sc_guardian guardian;
  /* The last phase run, for `shadowcopy writers`. */
  char phase[24];
  char result[32];              /* "ok", "exit 3", "timeout", ... */
  char output[SC_WRITER_OUTPUT_MAX];
  uint64_t when;                /* Unix seconds */
  /* Every phase run, in order (the newest SC_WRITER_HISTORY_MAX): what a
   * backup's manifest records. */
  struct sc_writer_result history[SC_WRITER_HISTORY_MAX];
  size_t nhistory;
  uint64_t frozen_at;           /* monotonic ns a freeze ended, or 0 */
};

struct sc_writer_env {
  const char *set_id, *snapshot, *snapshots, *volumes;
  const char *backup_result;    /* SHADOWCOPY_BACKUP_RESULT, or NULL */
  shadowcopy_notify_fn notify;  /* what an in-box writer says; may be NULL */
  void *notify_opaque;
};

/* Set by shadowcopy_interrupt (a requester's SIGINT/SIGTERM/SIGHUP
 * handler calls it): a writer phase in progress is cut short (its writer
 * killed) and reported as interrupted, except thaw and abort, which
 * always run to the end or their limit.  Cleared by shadowcopy_set_new. */
extern volatile sig_atomic_t sc_interrupted;

/* Writer `name` (a path, or fsfreeze:MOUNTPOINT) appended to *v, its
 * spelling checked.  On failure: err set. */
int sc_writers_add (struct sc_writer **v, size_t *n, const char *name,
                    char *err, size_t errlen);
/* The executables of `dir` in name order (skipping names starting with
 * '.' and ending with '~'), appended to *v; a missing `dir` is no error
 * when `dir_optional`.  A file or directory that is not to be trusted is
 * left out with a warning to fn (may be NULL).  On failure: err set. */
int sc_writers_add_dir (struct sc_writer **v, size_t *n, const char *dir,
                        bool dir_optional, shadowcopy_notify_fn fn,
                        void *opaque, char *err, size_t errlen);
void sc_writers_free (struct sc_writer *w, size_t n);

/* Run one phase of writer `w` within timeout_ms.  0 on success; else a
 * negative errno (-ETIMEDOUT, -EINTR, -ECHILD for a non-zero exit) and
 * msg says "writer NAME: PHASE: what happened: its output".
 * `freeze_ms` bounds the fsfreeze guardian (the freeze window). */
int sc_writer_run (struct sc_writer *w, const char *phase,
                   const struct sc_writer_env *env, uint64_t timeout_ms,
                   uint64_t freeze_ms, char *msg, size_t msglen);

/* Record what a phase of w did (for the in-box writers' code). */
void sc_writer_record (struct sc_writer *w, const char *phase,
                       const char *result, const char *output,
                       uint64_t frozen_ns);

#endif
