/* shadowcopy: the control server's verbs, shared by engine/control*.c
 * only (the protocol itself is engine/control-protocol.h):
 *
 *   control.c            the server: socket, connections, sessions' reads,
 *                        and the one table of verbs
 *   control-snapshots.c  LIST, DELETE, DELETE-OLDEST, DELETE-ALL,
 *                        DELETE-SET, and the snapshot lines of replies
 *   control-create.c     CREATE and the creation in steps (BEGIN, HOLD,
 *                        COMMIT, RELEASE, ABORT): the session's state
 *                        machine, its deadline and its auto-release
 *                        snapshots; CHECKPOINT
 *   control-diff.c       DIFF: changed-block tracking, in pages
 *   control-space.c      INFO, STATS, RESIZE
 *   control-scrub.c      SCRUB, SCRUB-STATUS
 *   control-revert.c     REVERT, REVERT-STATUS, REVERT-RESUME
 *
 * A handler answers one parsed request on `fd` (data lines, then OK or
 * ERR) and returns 0, or the negative errno of a failed write, which ends
 * the connection.  Whatever the request, a refusal is an ERR line and 0.
 * Handlers run on the connection's thread, one request at a time per
 * session; sessions run in parallel and share only the volume.
 */
#ifndef SHADOWCOPY_ENGINE_CONTROL_VERBS_H
#define SHADOWCOPY_ENGINE_CONTROL_VERBS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/control-protocol.h"
#include "engine/volume.h"

/* An auto-release snapshot owned by a session. */
struct owned {
  uint64_t id;
  char name[SC_NAME_MAX + 1];
};

/* A connection's state (see the notes in control.c). */
struct session {
  struct sc_volume *v;
  bool in_process;              /* SC_CONTROL_IN_PROCESS: no timeouts */
  bool begun;                   /* owns the volume's creation slot */
  bool held;                    /* holds the write gate */
  uint64_t deadline;            /* monotonic ns; while begun */
  uint64_t hold_ms;             /* the hold's timeout, for messages */
  bool committed;               /* a snapshot was committed under the hold */
  struct sc_snapshot_info pending;
  char expired[256];            /* why the last creation was aborted by the
                                   server; told at the next request */
  struct owned *owned;          /* auto-release snapshots, deleted at end */
  size_t nowned;
  const char *listen;           /* sc_control_set_listen's, or NULL */
};

typedef int (*sc_verb_fn) (struct session *ss,
                           const struct sc_ctl_request *req, int fd);

/* control-revert.c */
int sc_verb_revert (struct session *ss, const struct sc_ctl_request *req,
                    int fd);
int sc_verb_revert_status (struct session *ss,
                           const struct sc_ctl_request *req, int fd);
int sc_verb_revert_resume (struct session *ss,
                           const struct sc_ctl_request *req, int fd);
int sc_verb_revert_rate (struct session *ss,
                         const struct sc_ctl_request *req, int fd);
/* EBUSY: "a revert to NAME is running: N% done; see revert --status". */
int sc_reply_revert_busy (struct sc_volume *v, int fd);
/* INFO: the "revert" line (as REVERT-STATUS) when a revert runs. */
int sc_write_revert_line (struct sc_volume *v, int fd);

/* control-snapshots.c */
int sc_verb_list (struct session *ss, const struct sc_ctl_request *req,
                  int fd);
int sc_verb_delete (struct session *ss, const struct sc_ctl_request *req,
                    int fd);
int sc_verb_delete_oldest (struct session *ss,
                           const struct sc_ctl_request *req, int fd);
int sc_verb_delete_all (struct session *ss, const struct sc_ctl_request *req,
                        int fd);
int sc_verb_delete_set (struct session *ss, const struct sc_ctl_request *req,
                        int fd);

/* "* snapshot ..." and "* deleted name=NAME" lines, and the one-line
 * answer to a failed snapshot operation `op` on `name`. */
int sc_reply_snapshot (int fd, const struct sc_snapshot_info *s);
int sc_reply_deleted (int fd, const char *name);
int sc_reply_snapshot_err (int fd, int err, const char *op,
                           const char *name);
/* The same, and for I/O errors of a failed diff area, what failed and
 * what to do (sc_diff_health_message) instead of a bare strerror. */
int sc_reply_snapshot_verr (struct sc_volume *v, int fd, int err,
                            const char *op, const char *name);
/* "CONTEXT: why" for any request, why as above. */
int sc_reply_volume_err (struct sc_volume *v, int fd, int err,
                         const char *context);

/* control-create.c */
int sc_verb_create (struct session *ss, const struct sc_ctl_request *req,
                    int fd);
int sc_verb_begin (struct session *ss, const struct sc_ctl_request *req,
                   int fd);
int sc_verb_hold (struct session *ss, const struct sc_ctl_request *req,
                  int fd);
int sc_verb_commit (struct session *ss, const struct sc_ctl_request *req,
                    int fd);
int sc_verb_release (struct session *ss, const struct sc_ctl_request *req,
                     int fd);
int sc_verb_abort (struct session *ss, const struct sc_ctl_request *req,
                   int fd);
int sc_verb_checkpoint (struct session *ss, const struct sc_ctl_request *req,
                        int fd);

/* control-clone.c */
int sc_verb_clone (struct session *ss, const struct sc_ctl_request *req,
                   int fd);

/* control-diff.c */
int sc_verb_diff (struct session *ss, const struct sc_ctl_request *req,
                  int fd);

/* The creation's deadline passed: abort it, and remember why for the
 * client's next request. */
void sc_session_expire (struct session *ss);
/* The connection ended: abort a creation in progress, delete the
 * session's auto-release snapshots, free what it holds. */
void sc_session_close (struct session *ss);

/* control-space.c */
int sc_verb_info (struct session *ss, const struct sc_ctl_request *req,
                  int fd);
int sc_verb_stats (struct session *ss, const struct sc_ctl_request *req,
                   int fd);
int sc_verb_resize (struct session *ss, const struct sc_ctl_request *req,
                    int fd);

/* control-scrub.c */
int sc_verb_scrub (struct session *ss, const struct sc_ctl_request *req,
                   int fd);
int sc_verb_scrub_status (struct session *ss,
                          const struct sc_ctl_request *req, int fd);

#endif
