/* libshadowcopy: the requester API of shadowcopy.
 *
 * A requester is any program that takes, lists, diffs, reverts, clones or
 * deletes snapshots of a volume served by nbdkit-shadowcopy-plugin(1):
 * the `shadowcopy` CLI is one, a backup vendor's product another.  This
 * library speaks the control protocol (docs/control-protocol.md) for
 * them, and runs the writers (the application hooks) around a snapshot
 * set, as Windows' VSS does for its requesters.
 *
 *   #include <shadowcopy.h>
 *   cc prog.c $(pkg-config --cflags --libs libshadowcopy)
 *
 * Conventions
 *
 * - Every call that can fail returns 0 (or a count) on success and a
 *   negative errno on failure.  The failing call also leaves a message
 *   for the user, one line naming the server or writer at fault, in
 *   shadowcopy_get_error(); it is the calling thread's own and lasts
 *   until that thread's next failing call.
 * - A handle is used by one thread at a time.  Different handles are
 *   independent.
 * - Strings are NUL-terminated UTF-8; names are at most
 *   SHADOWCOPY_NAME_MAX bytes.  Structures are filled by the library and
 *   belong to the caller; arrays it allocates are released with free().
 * - The library never prints: what it would say goes to a notice
 *   callback (shadowcopy_set_notify), when one is set.
 * - The library installs no signal handler.  shadowcopy_interrupt() is
 *   async-signal-safe: a handler calls it to cut a writer phase short.
 * - The library changes no signal disposition of the caller's and works
 *   whatever its SIGCHLD disposition (SIG_IGN included): the programs it
 *   runs (writers, psql, virsh) run under an intermediate process of its
 *   own that reports their exit status, and a status it could not learn
 *   is a failure.  It reaps only children it started.
 */
#ifndef SHADOWCOPY_H
#define SHADOWCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHADOWCOPY_NAME_MAX 128         /* the diff area's SC_NAME_MAX */
#define SHADOWCOPY_UUID_LEN 37          /* 36 characters and a NUL */

/* The control protocol this library speaks: a server of another major
 * version is refused at open; a server of a newer minor version is
 * accepted (minor versions only add). */
#define SHADOWCOPY_PROTOCOL_MAJOR 1
#define SHADOWCOPY_PROTOCOL_MINOR 1

/* ---- errors and versions: shadowcopy_open(3) ------------------------ */

/* The message of this thread's last failing call, or "" (never NULL). */
const char *shadowcopy_get_error (void);
/* Its errno (positive), or 0. */
int shadowcopy_get_errno (void);
/* The library's version, e.g. "0.16.0". */
const char *shadowcopy_version (void);

/* ---- a connection to one volume: shadowcopy_open(3) ----------------- */

struct shadowcopy;

/* How shadowcopy_open may reach a volume whose server is not running. */
#define SHADOWCOPY_OPEN_SERVER   0  /* a server only: -ENOTCONN if none */
#define SHADOWCOPY_OPEN_READ     1  /* or the diff area itself, read-only */
#define SHADOWCOPY_OPEN_WRITE    2  /* or the diff area itself, read-write */

/* Connect to the server listening on control socket `socket`. */
int shadowcopy_connect (const char *socket, struct shadowcopy **out);

/* Reach the volume of diff area `diff`: the server listening on
 * DIFF.sock, or, when none listens there and `how` allows, the diff area
 * itself, served inside this process with the server's own code (a
 * verb that needs a running server, such as STATS, then fails with
 * -ENOTCONN).  A diff area opened read-write is checkpointed at close. */
int shadowcopy_open (const char *diff, int how, struct shadowcopy **out);

/* Reach configured volume `name` (SYSCONFDIR/shadowcopy/NAME.conf, or
 * $SHADOWCOPY_CONFDIR): its server's control socket. */
int shadowcopy_open_volume (const char *name, struct shadowcopy **out);

/* Close; 0, or the error of the checkpoint an offline read-write open
 * writes.  A creation in progress on this connection is aborted by the
 * server, and the connection's auto-release snapshots are deleted.
 * -EINVAL, closing nothing, for a handle of shadowcopy_set_handle (its
 * set closes it). */
int shadowcopy_close (struct shadowcopy *h);

/* Who answers. */
struct shadowcopy_server {
  unsigned protocol_major, protocol_minor;
  char version[64];             /* the server's shadowcopy version */
  bool offline;                 /* the diff area, served in-process */
  char where[4096];             /* the socket or diff area */
};
int shadowcopy_server (struct shadowcopy *h, struct shadowcopy_server *out);

/* The control socket's descriptor, to poll for the server going away. */
int shadowcopy_fd (struct shadowcopy *h);

/* ---- snapshots: shadowcopy_list(3) ---------------------------------- */

struct shadowcopy_snapshot {
  uint64_t id;
  char name[SHADOWCOPY_NAME_MAX + 1];
  char type[16];                /* "snapshot", "checkpoint", "clone" */
  char base[SHADOWCOPY_NAME_MAX + 1];   /* a clone's base snapshot, or "" */
  char uuid[SHADOWCOPY_UUID_LEN];
  char set[SHADOWCOPY_UUID_LEN];        /* its set's UUID, or "" */
  char created[32];             /* ISO 8601 UTC */
  uint64_t epoch;
  bool valid;
  char reason[256];             /* why it is invalid, or "" */
  bool auto_release;
  uint64_t used_bytes;          /* diff-area bytes it alone holds */
  uint64_t discarded_bytes;
  uint64_t meta_bytes;          /* a checkpoint's journal bytes */
};

/* Every snapshot, checkpoint and clone, oldest first (clones last).
 * *out is malloc'd (NULL when *n is 0). */
int shadowcopy_list (struct shadowcopy *h, struct shadowcopy_snapshot **out,
                     size_t *n);

/* One by name: -ENOENT if there is none. */
int shadowcopy_find (struct shadowcopy *h, const char *name,
                     struct shadowcopy_snapshot *out);

/* ---- the volume: shadowcopy_info(3) --------------------------------- */

struct shadowcopy_revert {
  char state[16];               /* none, running, paused, stopped */
  char target[SHADOWCOPY_NAME_MAX + 1];
  char saved[SHADOWCOPY_NAME_MAX + 1];  /* "" if the state was not kept */
  uint64_t bytes_done, bytes_todo;
  uint64_t rate;                /* bytes/s; 0: unbounded */
  uint64_t eta_s;               /* UINT64_MAX: unknown */
  uint64_t errors;
  bool target_invalid;
  char error[128];              /* the last failure, or "" */
  char ended[256];              /* why the last one ended unfinished */
  /* A dry run's plan (shadowcopy_revert with dry_run): have_plan set. */
  bool have_plan;
  uint64_t plan_bytes_to_write, plan_space_needed;
  uint64_t plan_limit;          /* 0: unbounded */
  bool plan_fits;
};

struct shadowcopy_volume {
  uint64_t volume_size, chunk_size;
  uint64_t diff_used_bytes, diff_file_bytes, diff_max; /* 0: unbounded */
  uint64_t snapshots, checkpoints, copies, epoch;
  uint64_t max_snapshots, max_checkpoints;
  uint64_t invalid, damaged, dropped, full_failures, discarded_bytes;
  char on_full[24];
  char origin[256];
  char last_drop[SHADOWCOPY_NAME_MAX + 1], last_drop_reason[128];
  /* The creation holds; from a server only. */
  bool have_holds;
  uint64_t holds, hold_last_ns, hold_p50_ns, hold_p99_ns, hold_max_ns;
  /* The diff area's health. */
  bool failed;
  char health_message[1024];    /* while failed: what it means, what to do */
  bool have_health;             /* the server said (older ones do not) */
  char failed_since[32], failed_errno[24], failed_write[128];
  uint64_t invalidated, retries, retry_every_ms, recoveries;
  bool recorded;                /* the failure is recorded in the area */
  char last_retry[32], last_retry_errno[24], last_retry_write[128];
  char recovered[32];           /* when it last recovered, or "" */
  /* A revert in progress, if any. */
  bool have_revert;
  struct shadowcopy_revert revert;
  /* Where the exports are served (an NBD URI), or "" if unknown. */
  char listen[1024];
};
int shadowcopy_info (struct shadowcopy *h, struct shadowcopy_volume *out);

/* One key=value pair of a reply line. */
struct shadowcopy_field { const char *key, *value; };

/* The engine's counters (STATS), one call of fn per counter; fn returns
 * 0, or a negative errno to stop (returned then). */
typedef int (*shadowcopy_field_fn) (const char *key, const char *value,
                                    void *opaque);
int shadowcopy_stats (struct shadowcopy *h, shadowcopy_field_fn fn,
                      void *opaque);

/* The snapshots the space policy dropped, most recent last. */
struct shadowcopy_dropped {
  char name[SHADOWCOPY_NAME_MAX + 1];
  char created[32], dropped_at[32];
  char reason[128];
};
int shadowcopy_list_dropped (struct shadowcopy *h,
                             struct shadowcopy_dropped **out, size_t *n);

/* ---- delete: shadowcopy_delete(3) ----------------------------------- */

/* Called with each name as soon as it is gone, so that a failure half way
 * still reports what was done.  May be NULL. */
typedef void (*shadowcopy_deleted_fn) (const char *name, void *opaque);

#define SHADOWCOPY_DELETE_KEEP_CHECKPOINT 1 /* keep a checkpoint of it */
#define SHADOWCOPY_DELETE_WITH_CLONES     2 /* its clones first */
/* Delete `name`; if `uuid` is not NULL, only if its UUID is that one
 * (-ESTALE otherwise, nothing deleted). */
int shadowcopy_delete (struct shadowcopy *h, const char *name,
                       const char *uuid, unsigned flags,
                       shadowcopy_deleted_fn fn, void *opaque);
int shadowcopy_delete_oldest (struct shadowcopy *h, shadowcopy_deleted_fn fn,
                              void *opaque);
int shadowcopy_delete_all (struct shadowcopy *h, shadowcopy_deleted_fn fn,
                           void *opaque);
/* Every member of snapshot set `set` on this volume (-ENOENT: none). */
int shadowcopy_delete_set (struct shadowcopy *h, const char *set,
                           shadowcopy_deleted_fn fn, void *opaque);

/* ---- create, one volume: shadowcopy_create(3) ----------------------- */

struct shadowcopy_create_args {
  const char *name;             /* NULL: the server's default name */
  const char *set;              /* a set's UUID, or NULL */
  bool auto_release;            /* deleted when this connection closes */
  bool delete_oldest;           /* at max-snapshots, drop the oldest */
};

/* In one request: the server holds writes, records, releases.  -EBUSY
 * while another creation is in progress on the volume. */
int shadowcopy_create (struct shadowcopy *h,
                       const struct shadowcopy_create_args *a,
                       struct shadowcopy_snapshot *out);

/* In VSS steps, for a requester that runs its own writers between them
 * or holds several volumes before committing any (timeouts in ms; 0:
 * the server's default).  BEGIN takes the creation slot, HOLD drains and
 * holds writes, COMMIT records the snapshot (and with `release` releases
 * at once), RELEASE lets writes go (held_ns: how long they were held),
 * ABORT deletes what COMMIT made and releases (a COMMIT with `release`
 * ends the creation: its snapshot stays).  HOLD without BEGIN begins.
 * The server enforces each deadline itself. */
int shadowcopy_begin (struct shadowcopy *h, uint64_t timeout_ms);
int shadowcopy_hold (struct shadowcopy *h, uint64_t timeout_ms);
int shadowcopy_commit (struct shadowcopy *h,
                       const struct shadowcopy_create_args *a, bool release,
                       struct shadowcopy_snapshot *out);
int shadowcopy_release (struct shadowcopy *h, uint64_t *held_ns);
int shadowcopy_abort (struct shadowcopy *h);

/* A checkpoint: a point that shadowcopy_diff can start from, keeping no
 * data. */
int shadowcopy_checkpoint (struct shadowcopy *h, const char *name,
                           bool delete_oldest,
                           struct shadowcopy_snapshot *out);

/* A writable clone NAME of snapshot `snapshot`, exported read-write. */
int shadowcopy_clone (struct shadowcopy *h, const char *snapshot,
                      const char *name, struct shadowcopy_snapshot *out);

/* ---- changed blocks: shadowcopy_diff(3) ----------------------------- */

struct shadowcopy_diff_side {
  char name[SHADOWCOPY_NAME_MAX + 1];   /* "live" for the live volume */
  char type[16];                /* snapshot, checkpoint, live */
  uint64_t id;                  /* 0 for live */
  char uuid[SHADOWCOPY_UUID_LEN];       /* "" for live */
  uint64_t epoch;
};

struct shadowcopy_diff {
  char volume[SHADOWCOPY_UUID_LEN];     /* the volume's UUID */
  uint64_t chunk_size, volume_size;
  struct shadowcopy_diff_side from, to;
  uint64_t bytes;               /* the sum of the extents' lengths */
};

/* Which byte ranges may differ between `from` and `to` (NULL: the live
 * volume): fn is called per extent, sorted and disjoint, merged across
 * the server's pages; a range left out is identical.  -ESTALE if FROM or
 * TO was deleted and made again while the pages were read.  `out` (may
 * be NULL) receives who FROM and TO are. */
typedef int (*shadowcopy_extent_fn) (uint64_t offset, uint64_t length,
                                     void *opaque);
int shadowcopy_diff (struct shadowcopy *h, const char *from, const char *to,
                     shadowcopy_extent_fn fn, void *opaque,
                     struct shadowcopy_diff *out);

/* ---- revert: shadowcopy_revert(3) ----------------------------------- */

#define SHADOWCOPY_RATE_UNBOUNDED UINT64_MAX

struct shadowcopy_revert_args {
  const char *save;             /* keep the current state as this name;
                                   NULL: the server's default name */
  bool nosave;                  /* do not keep the current state */
  uint64_t rate;                /* bytes/s of the background copy; 0:
                                   the server's default;
                                   SHADOWCOPY_RATE_UNBOUNDED: no limit */
  bool force;                   /* even with clients connected */
  bool dry_run;                 /* only say whether it would fit */
  bool paused;                  /* start paused (snapshot sets) */
};

/* Revert the live volume to snapshot `name`: at once for readers, with
 * the copy in the background.  `out` is the revert's status. */
int shadowcopy_revert (struct shadowcopy *h, const char *name,
                       const struct shadowcopy_revert_args *a,
                       struct shadowcopy_revert *out);
int shadowcopy_revert_status (struct shadowcopy *h,
                              struct shadowcopy_revert *out);
int shadowcopy_revert_resume (struct shadowcopy *h,
                              struct shadowcopy_revert *out);
/* The running revert's rate from now on (0 or SHADOWCOPY_RATE_UNBOUNDED:
 * no limit). */
int shadowcopy_revert_rate (struct shadowcopy *h, uint64_t rate,
                            struct shadowcopy_revert *out);

/* ---- space and scrub: shadowcopy_info(3) ---------------------------- */

/* The diff area's limit: max_bytes, or UINT64_MAX for unbounded.  Without
 * `force`, a limit below what is used fails with -ENOSPC; with it the
 * oldest snapshots are dropped (*dropped: how many; may be NULL). */
int shadowcopy_resize (struct shadowcopy *h, uint64_t max_bytes, bool force,
                       uint64_t *dropped);

struct shadowcopy_scrub {
  char state[16];               /* never, running, finished, stopped */
  uint64_t copies_checked, copies_total, bytes_checked, bytes_total;
  uint64_t damaged, freed, read_errors, rate;
  char started[32], finished[32];
  char error[256];              /* why it stopped, or "" */
};
/* Start verifying every copy in the background (rate: bytes/s, 0: the
 * server's default, SHADOWCOPY_RATE_UNBOUNDED: no limit); -EALREADY
 * while one runs. */
int shadowcopy_scrub (struct shadowcopy *h, uint64_t rate,
                      struct shadowcopy_scrub *out);
int shadowcopy_scrub_status (struct shadowcopy *h,
                             struct shadowcopy_scrub *out);

/* ---- any request: shadowcopy_request(3) ----------------------------- */

/* Send one request line (verb and arguments as the protocol spells them)
 * and hand each data line of the reply to fn: its kind ("snapshot",
 * "volume", ...) and its fields.  For verbs this library does not wrap
 * yet.  fn returns 0, or a negative errno to refuse the line (the call
 * then returns -EPROTO once the reply is read). */
typedef int (*shadowcopy_line_fn) (const char *kind,
                                   const struct shadowcopy_field *fields,
                                   size_t n, void *opaque);
int shadowcopy_request (struct shadowcopy *h, const char *verb,
                        const char *const *args, size_t nargs,
                        shadowcopy_line_fn fn, void *opaque);

/* ---- snapshot sets with writers: shadowcopy_set(3) ------------------ */

/* A snapshot set: one snapshot of the same name on every volume, taken
 * while every writer is frozen, as `shadowcopy create` takes it:
 * identify, BEGIN every volume, prepare, freeze, HOLD every volume, then
 * COMMIT every volume with release (no separate RELEASE), thaw,
 * post-snapshot.  Either every volume has its snapshot, or none does and
 * every writer is thawed. */
struct shadowcopy_set;

/* The most volumes a set takes (shadowcopy_set_add_volume: -E2BIG). */
#define SHADOWCOPY_SET_VOLUMES_MAX 64

int shadowcopy_set_new (struct shadowcopy_set **out);
/* A volume, by its server's control socket (a diff area DIFF is served
 * at DIFF.sock; its server must run).  The socket is named as given in
 * the writers' SHADOWCOPY_VOLUMES and SHADOWCOPY_SNAPSHOTS. */
int shadowcopy_set_add_volume (struct shadowcopy_set *s, const char *where);
/* A writer: an executable's path, or an in-box writer such as
 * "fsfreeze:/mnt", "qemu-ga:/run/vm1.qga", "postgresql:dbname=app" (see
 * shadowcopy_writers_list and shadowcopy(1)). */
int shadowcopy_set_add_writer (struct shadowcopy_set *s, const char *writer);
/* The executables of `dir`, in name order; a missing dir is no error
 * when `optional`.  SHADOWCOPY_WRITERS_DIR is the machine's (what
 * `shadowcopy create` runs by default). */
#define SHADOWCOPY_WRITERS_DIR "/etc/shadowcopy/writers.d"
int shadowcopy_set_add_writers_dir (struct shadowcopy_set *s,
                                    const char *dir, bool optional);
/* Writer i, as given or found, in the order they run; NULL past the
 * last. */
const char *shadowcopy_set_writer (const struct shadowcopy_set *s, size_t i);

/* Options; each has the CLI's default. */
int shadowcopy_set_name (struct shadowcopy_set *s, const char *name);
/* Without a name, the snapshots are named after the UTC time; with a
 * prefix, PREFIX then the time (the next free PREFIXTIME+k if another
 * creation took it in the same millisecond), e.g. "backup-". */
int shadowcopy_set_name_prefix (struct shadowcopy_set *s,
                                const char *prefix);
void shadowcopy_set_auto_release (struct shadowcopy_set *s, bool on);
void shadowcopy_set_delete_oldest (struct shadowcopy_set *s, bool on);
/* freeze_ms bounds prepare and the freeze window (default 60000);
 * hold_ms the servers' hold (default 10000). */
void shadowcopy_set_timeouts (struct shadowcopy_set *s, uint64_t freeze_ms,
                              uint64_t hold_ms);
/* Attempts after a failure that may do better (default 0), delay_ms
 * apart; `wait`: ask a busy volume again until the freeze timeout. */
void shadowcopy_set_retries (struct shadowcopy_set *s, unsigned retries,
                             uint64_t delay_ms, bool wait);
/* Where the library's notices go (warnings, retries, writers left out).
 * The callback is looked up at each notice; the notices made before one
 * is set (shadowcopy_set_add_writers_dir's warnings) are kept, up to 64,
 * and given to it when it is set. */
typedef void (*shadowcopy_notify_fn) (const char *message, void *opaque);
void shadowcopy_set_notify (struct shadowcopy_set *s, shadowcopy_notify_fn fn,
                            void *opaque);

/* Take the set.  0, or a negative errno with the first failure in
 * shadowcopy_get_error() (nothing of the set is left on any volume, no
 * writer frozen).  Each failure is also a notice as it happens, followed
 * by what undoing it said: a requester that shows the notices need not
 * show the error again.  With retries, the error is the last
 * attempt's. */
int shadowcopy_set_create (struct shadowcopy_set *s);

/* The set taken: its UUID, the snapshots' common name, and each volume's
 * snapshot (i < shadowcopy_set_volumes). */
const char *shadowcopy_set_id (const struct shadowcopy_set *s);
const char *shadowcopy_set_snapshot_name (const struct shadowcopy_set *s);
size_t shadowcopy_set_volumes (const struct shadowcopy_set *s);
int shadowcopy_set_snapshot (const struct shadowcopy_set *s, size_t i,
                             const char **where,
                             struct shadowcopy_snapshot *out);

/* Volume i's connection, the one that owns its snapshot (an auto-release
 * set's snapshots live as long as it does), as a handle for the calls
 * above: to back the snapshot up, keep it as a checkpoint
 * (SHADOWCOPY_DELETE_KEEP_CHECKPOINT), watch shadowcopy_fd for the server
 * going away.  Owned by the set: shadowcopy_close refuses it (-EINVAL,
 * the connection left open); valid until
 * shadowcopy_set_free.  NULL (with the error set) before the set is
 * taken or when i is out of range. */
struct shadowcopy *shadowcopy_set_handle (struct shadowcopy_set *s,
                                          size_t i);

/* Tell the writers the backup is done (their backup-complete phase, with
 * SHADOWCOPY_BACKUP_RESULT=success or failure). */
int shadowcopy_set_backup_complete (struct shadowcopy_set *s, bool success);

/* What each writer's phases did, in order. */
struct shadowcopy_writer_result {
  const char *writer;           /* as given */
  const char *phase;            /* identify, prepare, freeze, thaw, ... */
  const char *result;           /* "ok", "exit status 3", "timed out" */
  const char *output;           /* its last output, one line */
  uint64_t when;                /* Unix seconds */
  uint64_t frozen_ns;           /* thaw: how long it was frozen, or 0 */
};
typedef void (*shadowcopy_writer_result_fn)
  (const struct shadowcopy_writer_result *r, void *opaque);
void shadowcopy_set_writer_results (const struct shadowcopy_set *s,
                                    shadowcopy_writer_result_fn fn,
                                    void *opaque);

/* Delete the set's snapshot from every volume, each only while it is
 * still a snapshot of the set with its UUID (listed first, then deleted
 * by UUID): one already gone, or kept as a checkpoint (through
 * shadowcopy_set_handle, SHADOWCOPY_DELETE_KEEP_CHECKPOINT), is left
 * alone and is no error.  Then, or without it,
 * shadowcopy_set_free closes the connections (an auto-release set's
 * snapshots go with them). */
int shadowcopy_set_delete (struct shadowcopy_set *s);
void shadowcopy_set_free (struct shadowcopy_set *s);

/* Async-signal-safe: cut the writer phase in progress short (except thaw
 * and abort, which run to their end) and stop retrying.  It holds for
 * the process until the next shadowcopy_set_new. */
void shadowcopy_interrupt (void);

/* ---- writers: shadowcopy_writers(3) --------------------------------- */

/* The in-box writers: their prefix ("fsfreeze", "qemu-ga", ...), the
 * argument they take, what each needs on the machine and what it does. */
struct shadowcopy_writer_kind {
  const char *prefix, *argument, *needs, *does;
};
/* The table, ending with a zeroed entry. */
const struct shadowcopy_writer_kind *shadowcopy_writers_list (void);

#ifdef __cplusplus
}
#endif

#endif /* SHADOWCOPY_H */
