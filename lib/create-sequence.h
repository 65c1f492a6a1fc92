/* libshadowcopy: the VSS creation sequence of a snapshot set, as the
 * requester: one snapshot of the same name on every volume of a set,
 * taken while the writers are frozen.
 *
 * The set (api-set.c) fills a struct sc_create from its options, with
 * the writers collected and the set id made, then calls
 * sc_create_identify once and sc_create_attempts.  That leaves either a
 * snapshot on every volume, with the connections open (auto-release
 * snapshots live as long as they do) until sc_create_close, or no
 * snapshot of it on any volume, every writer thawed.  Nothing is
 * printed: what the sequence has to say goes to cr->notify.  Signals
 * are the requester's to catch: its handler calls shadowcopy_interrupt,
 * which sets sc_interrupted (writers.h): that cuts a phase short and
 * stops the retries.
 */
#ifndef SHADOWCOPY_LIB_CREATE_SEQUENCE_H
#define SHADOWCOPY_LIB_CREATE_SEQUENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/control-protocol.h"
#include "lib/client.h"
#include "lib/shadowcopy.h"
#include "lib/writers.h"

#define SC_CREATE_VOLUMES_MAX SHADOWCOPY_SET_VOLUMES_MAX

struct sc_create_volume {
  const char *socket;
  struct sc_client *c;          /* open while an attempt holds it */
  bool begun, committed, released;
  /* COMMIT (or a one-shot CREATE) sent under this name and not answered
   * OK: it may have been recorded (a reply lost with the connection), so
   * an undo looks.  An empty name: a CREATE the server was to name. */
  bool commit_sent;
  char commit_name[SC_NAME_MAX + 8];
  struct sc_client_snapshot snap;       /* as the server made it */
};

struct sc_create {
  /* Set by the caller. */
  struct sc_create_volume vols[SC_CREATE_VOLUMES_MAX];
  size_t nvols;
  struct sc_writer *writers;
  size_t nwriters;
  uint64_t freeze_ms;           /* bounds prepare, and the freeze window */
  uint64_t hold_ms;             /* the servers release their hold then */
  bool wait;                    /* ask a busy volume again, 200 ms on */
  bool auto_release, delete_oldest;
  uint64_t retries, retry_delay_ms;
  char name[SC_NAME_MAX + 1];   /* given (have_name), or a default */
  bool have_name;
  const char *name_prefix;      /* of the default name (the UTC time) */
  const char *backup_result;    /* for backup-complete: "success", ... */
  shadowcopy_notify_fn notify;  /* notices; may be NULL */
  void *notify_opaque;
  char set_id[SC_CTL_UUID_LEN];
  /* The SHADOWCOPY_* lists, allocated with room for every volume and
   * SC_NAME_MAX names; filled in here. */
  char *snapshots, *volumes;
  /* The sequence's own. */
  uint64_t phase_end;           /* monotonic ms bounding a whole phase, 0 */
  char error[4096];             /* the last attempt's first failure */
  int error_errno;              /* its errno (positive) */
};

/* identify: a writer that fails is left out, with a warning (a notice). */
void sc_create_identify (struct sc_create *cr);

/* Attempts until one succeeds, or up to `retries` more of those that may
 * do better, `retry_delay_ms` apart.  0, with cr->name and each volume's
 * snap as created; or a negative errno, with the last attempt's first
 * failure in cr->error (each failure is also a notice, as it happens). */
int sc_create_attempts (struct sc_create *cr);

/* Run `phase` on every writer not left out, each within freeze_ms.
 * Stops at the first failure (its message in msg) unless `all` (abort,
 * thaw: everyone must hear them); then the first failure is in msg and
 * the others are notices. */
int sc_create_writers_phase (struct sc_create *cr, const char *phase,
                             bool all, char *msg, size_t msglen);

/* Delete the member of set `set_id` named `name` on volume `socket`
 * (over `c`, or a connection of its own when c is NULL), only if it is
 * still a snapshot: LIST first, then DELETE NAME uuid=UUID.  A checkpoint
 * kept from it (same name and UUID), a record of another set or UUID
 * (`uuid` if not NULL), or no such name is left alone.  1 when deleted,
 * 0 when there was nothing of ours to delete, a negative errno (err says
 * why) when it could not be confirmed either way.  An empty NAME (a
 * CREATE the server was to name) matches the snapshot of the set, whatever
 * its name. */
int sc_create_delete_member (const char *socket, struct sc_client *c,
                             const char *name, const char *set_id,
                             const char *uuid, char *err, size_t errlen);

/* Close every connection (an auto-release snapshot goes with it); a
 * failure to is a notice. */
void sc_create_close (struct sc_create *cr);

#endif
