/* shadowcopy: the requester side of the CLI.
 *
 * A client reaches a volume either through a running server's control
 * socket or, when no server runs, by opening the diff area itself and
 * answering its requests in-process with the server's own code.  Either
 * way it speaks the control protocol and hands back the same rows, so
 * the CLI prints the same thing online and offline.
 *
 * Errors: functions return 0 or a negative errno and write one line for
 * the user (without the "shadowcopy: " prefix) into err.
 */
#ifndef SHADOWCOPY_LIB_CLIENT_H
#define SHADOWCOPY_LIB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"

struct sc_client;

/* One snapshot, as the CLI shows it. */
struct sc_client_snapshot {
  uint64_t id;
  char name[SC_NAME_MAX + 1];
  char created[32];             /* ISO 8601 UTC */
  uint64_t epoch;
  bool valid;
  char reason[256];             /* when !valid */
  uint64_t used_bytes;
  uint64_t discarded_bytes;     /* discarded by its reader */
  char set[37];                 /* its snapshot set's UUID, or "" */
  bool auto_release;            /* dies with the session that made it */
  char type[16];                /* "snapshot", "checkpoint", or what a
                                   newer server says */
  bool checkpoint;              /* type "checkpoint": keeps no data */
  char uuid[37];                /* its own UUID, or "" (older servers) */
  uint64_t meta_bytes;          /* a checkpoint's metadata bytes */
  char base[SC_NAME_MAX + 1];   /* type "clone": its base snapshot */
};

/* A revert, as the CLI shows it (the "revert" line of REVERT,
 * REVERT-STATUS and INFO). */
struct sc_client_revert {
  char state[16];               /* none, running, paused, stopped */
  char target[SC_NAME_MAX + 1];
  char saved[SC_NAME_MAX + 1];  /* "" when the current state was not kept */
  uint64_t bytes_done, bytes_todo;
  uint64_t rate;                /* bytes/s, 0 unbounded */
  uint64_t eta_s;               /* UINT64_MAX: unknown */
  uint64_t errors;
  bool target_invalid;
  char error[128];              /* last failure, "" */
  char ended[256];              /* why the last one ended unfinished, "" */
};
/* Fill r from a "revert" line: 0 or -EPROTO. */
struct sc_ctl_line;
int sc_client_revert_from_line (const struct sc_ctl_line *line,
                                struct sc_client_revert *r);

/* The volume, as the CLI shows it. */
struct sc_client_volume {
  uint64_t volume_size;
  uint64_t chunk_size;
  uint64_t diff_used_bytes;
  uint64_t diff_file_bytes;
  uint64_t snapshots;
  uint64_t copies;
  uint64_t epoch;
  char origin[256];
  /* Write holds of snapshot creations; from a server only. */
  bool have_holds;
  uint64_t holds, hold_last_ns, hold_p50_ns, hold_p99_ns, hold_max_ns;
  /* Space management (0 / empty when not known). */
  uint64_t diff_max, max_snapshots, dropped, full_failures, discarded_bytes;
  uint64_t invalid;
  uint64_t damaged;             /* invalid: copied data failed its checksum */
  uint64_t checkpoints, max_checkpoints;
  char on_full[24];
  char last_drop[SC_NAME_MAX + 1];
  char last_drop_reason[128];
  /* The diff area's health (the "diff-area" line; have_health false
   * from servers that do not send it). */
  bool have_health;
  bool failed;
  char failed_since[32], failed_errno[24], failed_write[128];
  uint64_t invalidated, retries, retry_every_ms, recoveries;
  bool recorded;
  char last_retry[32], last_retry_errno[24], last_retry_write[128];
  char recovered[32];
  char health_message[1024];
  /* A running revert (the "revert" line of INFO). */
  bool have_revert;
  struct sc_client_revert revert;
  /* Where the server serves its exports: an NBD URI (the "listen" line);
   * empty when it cannot tell, or offline. */
  char listen[1024];
};

/* What a verb needs from the volume when no server answers. */
enum sc_client_access {
  SC_CLIENT_SERVER,             /* a server, nothing else (create) */
  SC_CLIENT_READ,               /* or the diff area, read-only */
  SC_CLIENT_WRITE,              /* or the diff area, read-write */
};

/* Talk to the server listening on `socket`. */
int sc_client_connect (const char *socket, struct sc_client **out,
                       char *err, size_t errlen);

/* Is DIFF, given as --diff, a socket (the control socket given by
 * mistake)?  Then true, with the error in err. */
bool sc_client_diff_is_socket (const char *diff, char *err, size_t errlen);

/* Talk to the server listening on DIFF.sock or, if nobody listens there,
 * open the diff area DIFF itself as `access` allows, served in-process
 * (a verb that needs a running server, such as STATS, then gets
 * ENOTCONN). */
int sc_client_open_diff (const char *diff, enum sc_client_access access,
                         struct sc_client **out, char *err, size_t errlen);

/* Close; for a diff area opened read-write, this writes its checkpoint,
 * whose failure is reported here. */
int sc_client_close (struct sc_client *c, char *err, size_t errlen);

/* Snapshots in creation order; *out is malloc'd, free() it. */
int sc_client_list (struct sc_client *c, struct sc_client_snapshot **out,
                    size_t *n, char *err, size_t errlen);

int sc_client_info (struct sc_client *c, struct sc_client_volume *out,
                    char *err, size_t errlen);

/* Delete one snapshot by name, the oldest, or all of them.  `deleted` is
 * called with each name as soon as it is gone, so a failure half way
 * through DELETE_ALL still reports what was done. */
enum sc_client_delete_what {
  SC_CLIENT_DELETE_NAME,
  SC_CLIENT_DELETE_OLDEST,
  SC_CLIENT_DELETE_ALL,
};
typedef void (*sc_client_deleted_fn) (const char *name, void *opaque);
int sc_client_delete (struct sc_client *c, enum sc_client_delete_what what,
                      const char *name, sc_client_deleted_fn deleted,
                      void *opaque, char *err, size_t errlen);

/* Any request: `fn` sees each data line (return < 0 if it makes no
 * sense: the reply is then -EPROTO).  A server's ERR is its negative
 * errno with its message in err. */
struct sc_ctl_line;
typedef int (*sc_client_line_fn) (const struct sc_ctl_line *line,
                                  void *opaque);
int sc_client_request (struct sc_client *c, const char *verb,
                       const char *const *args, size_t nargs,
                       sc_client_line_fn fn, void *opaque,
                       char *err, size_t errlen);
int sc_client_snapshot_from_line (const struct sc_ctl_line *line,
                                  struct sc_client_snapshot *s);
/* Who answered HELLO: its protocol (major, minor: 0 when it does not
 * say), its version ("" when it does not say), where it was reached, and
 * whether it is the diff area served in-process. */
void sc_client_server (const struct sc_client *c, unsigned *major,
                       unsigned *minor, const char **version,
                       const char **where, bool *offline);
/* The control socket, to watch for the server going away. */
int sc_client_fd (const struct sc_client *c);

#endif
