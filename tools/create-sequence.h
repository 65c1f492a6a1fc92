/* shadowcopy: the VSS creation sequence of `shadowcopy create`, as the
 * requester: one snapshot of the same name on every volume of a set,
 * taken while the writers are frozen.
 *
 * The verb (cmd-create.c) fills a struct sc_create from its options,
 * with the writers collected and the set id made, then calls
 * sc_create_identify once and sc_create_attempts.  That leaves either a
 * snapshot on every volume, with the connections open (auto-release
 * snapshots live as long as they do) until sc_create_close, or no
 * snapshot of it on any volume, every writer thawed.  SIGINT, SIGTERM
 * and SIGHUP are the caller's to catch: they set sc_interrupted
 * (writers.h), which cuts a phase short and stops the retries.
 */
#ifndef SHADOWCOPY_TOOLS_CREATE_SEQUENCE_H
#define SHADOWCOPY_TOOLS_CREATE_SEQUENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/control-protocol.h"
#include "lib/client.h"
#include "tools/writers.h"

#define SC_CREATE_VOLUMES_MAX 64

struct sc_create_volume {
  const char *socket;
  struct sc_client *c;          /* open while an attempt holds it */
  bool begun, committed, released;
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
  char set_id[SC_CTL_UUID_LEN];
  /* The SHADOWCOPY_* lists, allocated with room for every volume and
   * SC_NAME_MAX names; filled in here. */
  char *snapshots, *volumes;
  /* The sequence's own. */
  uint64_t phase_end;           /* monotonic ms bounding a whole phase, 0 */
};

/* identify: a writer that fails is left out, with a warning. */
void sc_create_identify (struct sc_create *cr);

/* Attempts until one succeeds, or up to `retries` more of those that may
 * do better, `retry_delay_ms` apart.  EXIT_SUCCESS, with cr->name and
 * each volume's snap as created; or EXIT_FAILURE, each failure said. */
int sc_create_attempts (struct sc_create *cr);

/* Run `phase` on every writer not left out, each within freeze_ms.
 * Stops at the first failure (its message in msg) unless `all` (abort,
 * thaw: everyone must hear them); then the first failure is in msg and
 * the others are said. */
int sc_create_writers_phase (struct sc_create *cr, const char *phase,
                             bool all, char *msg, size_t msglen);

/* Close every connection (an auto-release snapshot goes with it). */
void sc_create_close (struct sc_create *cr);

#endif
