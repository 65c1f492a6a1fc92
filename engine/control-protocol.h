/* shadowcopy: the control protocol, shared by the server and its client
 * (libshadowcopy, lib/client.c).
 *
 * Notes on the design
 *
 * A control connection is a Unix stream socket.  The client sends request
 * lines; the server answers each with zero or more data lines and one
 * status line, then waits for the next request, until either side closes.
 * Text keeps it debuggable with socat; strict limits keep it safe to parse.
 *
 *   request  = verb *( SP arg ) LF          at most SC_CTL_LINE_MAX bytes
 *   verb     = 1*( ALPHA / "-" )            case-sensitive, upper case
 *   arg      = 1*( ALNUM / "." / "_" / ":" / "+" / "-" / "=" )
 *   data     = "* " kind *( TAB key "=" value ) LF
 *   status   = "OK" LF / "ERR" SP errname SP message LF
 *
 * Values never hold TAB, LF or other control characters (the server
 * replaces them with '?').  errname is a symbolic errno such as ENOENT.
 *
 * Requests (protocol version 1):
 *   HELLO                  -> * server  protocol=1 protocol-minor=1 version=...
 *   INFO                   -> * volume  size= chunk-size= diff-used=
 *                             diff-file= snapshots= copies= epoch= ...
 *                             and, when the server can tell, * listen
 *                             uri=NBD-URI (where it serves its exports)
 *   LIST                   -> * snapshot (one per snapshot, oldest first;
 *                             type=snapshot|checkpoint|clone, and for a
 *                             clone base=NAME; clones after the snapshots)
 *   CREATE [NAME] [set=UUID] [auto-release=1] [delete-oldest=1]
 *                          -> * snapshot (the new one); EBUSY while another
 *                             creation is in progress on the volume;
 *                             delete-oldest=1: at max-snapshots, drop the
 *                             oldest first
 *   DELETE NAME [keep-checkpoint=1 | uuid=UUID]
 *                          -> * deleted name=NAME.  keep-checkpoint=1:
 *                             delete snapshot NAME's data but keep a
 *                             checkpoint of the same name, id, UUID and
 *                             epoch (answers * deleted name=NAME
 *                             checkpoint=1); EINVAL if it is a checkpoint
 *                             already, ESTALE if it is invalid.
 *                             uuid=UUID: delete NAME only if its UUID is
 *                             UUID, compared as it is deleted (ESTALE,
 *                             nothing deleted, if it has another: made
 *                             again under that name).  A snapshot with
 *                             clones: EBUSY ("snapshot NAME has clones:
 *                             A, B; ..."), unless with-clones=1: its
 *                             clones are deleted first (* deleted
 *                             name=A, ...), then NAME
 *   DELETE NAME with-clones=1
 *   DELETE-OLDEST          -> * deleted name=... (the oldest snapshot; never
 *                             a checkpoint, never a clone)
 *   DELETE-ALL             -> * deleted name=... (one per snapshot; clones
 *                             first)
 *   CLONE SNAPSHOT NAME    -> * snapshot (the new clone, type=clone
 *                             base=SNAPSHOT).  A writable clone, exported
 *                             read-write as NAME (cow/diffarea.h).  EEXIST
 *                             (the name is taken), EINVAL (a bad name or
 *                             live, a base that is a checkpoint, a clone
 *                             or auto-release), ENOENT (no such snapshot),
 *                             EIO (the base is invalid); nothing changes
 *                             then.  Offline too
 *   RESIZE max=BYTES|unbounded [force=1]
 *                          -> * resized max= dropped=
 *   STATS                  -> * stats chunks-copied= bytes-copied= ...
 *                             (engine counters, see engine/control-space.c;
 *                             diff-failed= and the like: the diff area's
 *                             health in numbers)
 *   DELETE-SET UUID        -> * deleted name=... (each member of the set on
 *                             this volume); ENOENT if there is none
 *   SCRUB [rate=BYTES]     -> * scrub state=running ...  Verify every copy
 *                             in the background; EALREADY while one runs
 *                             (engine/control-scrub.c)
 *   SCRUB-STATUS           -> * scrub state= copies-checked= copies-total=
 *                             bytes-checked= bytes-total= damaged= freed=
 *                             read-errors= rate= started= finished=
 *   CHECKPOINT NAME [delete-oldest=1]
 *                          -> * snapshot (the new checkpoint, type=
 *                             checkpoint).  Created as CREATE creates a
 *                             snapshot, under a hold, but keeps no data:
 *                             it only marks a point that DIFF can start
 *                             from; never exported.  EBUSY while another
 *                             creation is in progress; EMFILE at
 *                             max-checkpoints (delete-oldest=1: drop the
 *                             oldest checkpoint first)
 *   DIFF FROM [TO] [start=CHUNK] [max=N]
 *                          -> * diff volume=UUID chunk-size=N volume-size=N
 *                             from=NAME from-id=N from-uuid=UUID
 *                             from-epoch=N from-type=snapshot|checkpoint
 *                             to=NAME|live [to-id=N to-uuid=UUID]
 *                             to-epoch=N to-type=snapshot|checkpoint|live
 *                             next=CHUNK|end
 *                             then * extent offset=BYTES length=BYTES, one
 *                             per run of changed chunks (sorted, disjoint;
 *                             the last clipped to the volume size).
 *                             Which byte ranges may differ between FROM
 *                             and TO (snapshots or checkpoints, FROM the
 *                             older), or FROM and the live volume (TO
 *                             omitted or "live"; to-id and to-uuid are
 *                             left out, to-epoch is the live epoch).  In
 *                             pages: the changed chunks from chunk `start`
 *                             (default 0) on, at most `max` runs (default
 *                             and cap SC_CTL_DIFF_MAX); next= is the start
 *                             of the next page, or "end".  Runs that touch
 *                             across pages are the client's to merge.  A
 *                             range left out is identical in FROM and TO;
 *                             a range listed may not differ (the unit is
 *                             the chunk).  ENOENT: no such name; EINVAL:
 *                             FROM newer than TO, FROM "live", bad
 *                             arguments; EIO: FROM or TO is invalid (the
 *                             message says which and why).  Works offline
 *                             too, where the live volume is the diff
 *                             area's state when its server stopped.
 *
 * Creation in steps (one connection; the requester runs writers between
 * them and holds every volume of a set before committing any):
 *   BEGIN [timeout=MS]     take the volume's creation slot, writes still
 *                          flowing; EBUSY ("busy: ...") if another
 *                          connection has it.  Default 120000, max 3600000.
 *   HOLD [timeout=MS]      -> * hold timeout=MS.  Drain the writes in flight
 *                          and hold new ones (BEGIN implied).  Default
 *                          10000, max 60000.
 *   COMMIT [NAME] [set=UUID] [auto-release=1] [delete-oldest=1]
 *          [release=1]     -> * snapshot.  Record the snapshot under the
 *                          hold (once per hold).  release=1 then releases
 *                          as RELEASE does, in the same request (and also
 *                          answers * released): safe for a set once every
 *                          volume is held, since no volume is committed
 *                          before all are held.
 *   RELEASE                -> * released held-ns=N [name=NAME].  Release
 *                          the writes, keep the snapshot, end the creation.
 *   ABORT                  -> [* deleted name=NAME].  Delete what COMMIT
 *                          made, release, end the creation.
 * The server enforces the deadline (BEGIN's, then HOLD's) by itself: when
 * it passes, the snapshot committed under it is deleted, the writes are
 * released and the creation ends; the next request of that connection
 * gets ERR ETIMEDOUT saying so.  A connection that closes (including a
 * killed client) aborts its creation the same way, at once.
 *
 * Auto-release: a snapshot created with auto-release=1 belongs to the
 * connection that created it and is deleted when that connection closes;
 * such a connection is never dropped for being idle.  The flag is stored,
 * so one left over by a server that stopped is deleted at its next start.
 *
 * A snapshot line carries: id, name, created (ISO 8601 UTC), epoch,
 * state (valid|invalid), used (bytes), discarded (bytes), type
 * (snapshot|checkpoint), uuid (its own, never reused), meta (a
 * checkpoint's: journal bytes of the changes only it needs), set (the
 * set's UUID, when it has one), auto-release=1 (when it is), reason
 * (when invalid).  Checkpoints are listed (and counted in INFO's
 * snapshots=) with the snapshots.  LIST ends with one "* dropped id= name= created= dropped-at=
 * reason=" line per kept policy drop.  INFO also carries diff-max=,
 * on-full=, max-snapshots=, dropped=, full-failures=, discarded=,
 * invalid=, damaged= (snapshots whose copied data failed its checksum),
 * checkpoints= (listed checkpoints), max-checkpoints= (a server's),
 * checksum-errors= (a server's) and, once something was dropped,
 * last-drop= and last-drop-reason=.  INFO's second line, "* diff-area state=ok|failed
 * recoveries= [recovered=]", says while failed: failed-since= errno=
 * failed-write= invalidated= recorded= retries= retry-every-ms=
 * [last-retry= last-retry-errno= last-retry-write=] message= (what it
 * means and what to do).  A request that fails because the diff area is
 * failed has that message in its ERR line.
 *
 * Connections: at most 64.  A client past the limit gets "ERR EBUSY too
 * many connections: ..." before it says anything, and the server closes
 * it.  From 48 connections on, one that waits for a request for 2 s with
 * nothing open (no creation, no auto-release snapshot) is closed; its
 * next request reads "ERR EBUSY too many connections: this idle one was
 * closed ...".
 */

#ifndef SHADOWCOPY_ENGINE_CONTROL_PROTOCOL_H
#define SHADOWCOPY_ENGINE_CONTROL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "cow/uuid.h"

#define SC_CTL_PROTOCOL 1         /* the major version: HELLO protocol= */
#define SC_CTL_PROTOCOL_MINOR 1   /* HELLO protocol-minor= (0 if absent);
                                     minors only add verbs, keys, lines */
#define SC_CTL_LINE_MAX 4096
#define SC_CTL_ARGS_MAX 8
/* A data line's fields: a writer never sends more (-EMSGSIZE); the
 * parser keeps the first SC_CTL_FIELDS_MAX and checks, then ignores, the
 * rest, so that keys a newer minor server adds break no client. */
#define SC_CTL_FIELDS_MAX 64
#define SC_CTL_DIFF_MAX 65536     /* DIFF: extents per page, default and cap */

/* A parsed request.  Points into the buffer given to the parser. */
struct sc_ctl_request {
  const char *verb;
  const char *args[SC_CTL_ARGS_MAX];
  size_t nargs;
};

/* Parse one request line (without its LF, NUL-terminated, modified in
 * place).  Returns 0 or -EINVAL with *why set to a static description. */
int sc_ctl_parse_request (char *line, struct sc_ctl_request *req,
                          const char **why);

/* A parsed reply line. */
struct sc_ctl_field { const char *key; const char *value; };
enum sc_ctl_line_type { SC_CTL_DATA, SC_CTL_OK, SC_CTL_ERR };
struct sc_ctl_line {
  enum sc_ctl_line_type type;
  const char *kind;                       /* SC_CTL_DATA */
  struct sc_ctl_field fields[SC_CTL_FIELDS_MAX];
  size_t nfields;
  size_t ignored;                         /* fields past the cap, dropped */
  int err;                                /* SC_CTL_ERR: positive errno */
  const char *message;                    /* SC_CTL_ERR */
};

/* Parse one reply line (without its LF, NUL-terminated, modified in
 * place).  Returns 0 or -EINVAL with *why set. */
int sc_ctl_parse_reply (char *line, struct sc_ctl_line *out, const char **why);

/* The value of `key` in a data line, or NULL. */
const char *sc_ctl_field (const struct sc_ctl_line *line, const char *key);

/* Symbolic errno names, both ways ("ENOENT" <-> ENOENT).  Unknown names
 * map to EIO, unknown numbers to "EIO". */
const char *sc_ctl_errname (int err);
int sc_ctl_errnum (const char *name);

/* Format `ns` (Unix ns) as ISO 8601 UTC, e.g. 2026-11-24T19:00:51.123Z.
 * buf must hold at least 32 bytes. */
void sc_ctl_format_time (uint64_t ns, char *buf, size_t len);

/* The reason an invalid snapshot gives: "TEXT", or "TEXT: strerror(err)"
 * when err != 0.  Server and offline CLI both use it, so they agree. */
void sc_ctl_format_reason (const char *text, int err, char *buf, size_t len);

/* The user's message for a failed snapshot operation `op` ("create",
 * "delete") on `name` (NULL: the default name): "no such snapshot: NAME",
 * "snapshot already exists: NAME", "invalid snapshot name: NAME", "too
 * many snapshots" or "cannot OP snapshot NAME: strerror".  Shared by the
 * server and the offline CLI so both say the same. */
void sc_ctl_snapshot_error (int err, const char *op, const char *name,
                            char *buf, size_t len);

/* Replace control characters (including TAB and LF) with '?' in place:
 * what the writers do to every value and message. */
void sc_ctl_sanitize (char *s);

/* A UUID as text in a message (cow/uuid.h: sc_uuid_format, parse). */
#define SC_CTL_UUID_LEN SC_UUID_TEXT_LEN

/* Parse a decimal unsigned number, strictly: digits only, no sign, no
 * spaces, no overflow.  Returns 0 or -EINVAL. */
int sc_ctl_parse_u64 (const char *s, uint64_t *out);

/* ---- writing ----------------------------------------------------------
 *
 * Each function writes one whole line with as few write(2) calls as the
 * socket allows, retrying on EINTR and short writes.  They return 0 or a
 * negative errno; a socket peer that went away is -EPIPE, never SIGPIPE.
 */

/* A request.  -EINVAL if verb or an argument breaks the grammar above, so
 * no caller can smuggle a second request into one line. */
int sc_ctl_write_request (int fd, const char *verb,
                          const char *const *args, size_t nargs);

/* A data line.  Values are sanitized; -EMSGSIZE if the line would exceed
 * SC_CTL_LINE_MAX or n SC_CTL_FIELDS_MAX (nothing is written then). */
int sc_ctl_write_data (int fd, const char *kind,
                       const struct sc_ctl_field *fields, size_t n);

/* Many data lines in one reply (DIFF's extents): formatted as
 * sc_ctl_write_data does, gathered in o->buf and sent when it is full
 * and by sc_ctl_flush, so that a long reply is a few large writes. */
struct sc_ctl_out {
  int fd;
  size_t len;
  char buf[64 * 1024];
};
int sc_ctl_buffer_data (struct sc_ctl_out *o, const char *kind,
                        const struct sc_ctl_field *fields, size_t n);
int sc_ctl_flush (struct sc_ctl_out *o);
int sc_ctl_write_ok (int fd);
/* "ERR ENAME message": the message is sanitized and truncated to fit. */
int sc_ctl_write_err (int fd, int err, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* ---- reading ----------------------------------------------------------
 *
 * A buffered reader of LF-terminated lines from a socket.  A line is at
 * most SC_CTL_LINE_MAX bytes with its LF.
 */
struct sc_ctl_reader {
  int fd;
  uint64_t deadline;            /* CLOCK_MONOTONIC ns; 0: none */
  size_t start, end;            /* unread bytes are buf[start..end) */
  int skipping;                 /* discarding the rest of an over-long line */
  char buf[SC_CTL_LINE_MAX];
};

void sc_ctl_reader_init (struct sc_ctl_reader *r, int fd);

/* An absolute deadline (CLOCK_MONOTONIC, ns; 0 for none) for the reads
 * of sc_ctl_read_line: once it has passed, sc_ctl_read_line returns
 * -EAGAIN even in the middle of a line (the bytes already read are
 * kept), however the peer trickles its bytes. */
void sc_ctl_reader_set_deadline (struct sc_ctl_reader *r, uint64_t ns);

/* The same for every sc_ctl_write_* of the calling thread: a send that
 * cannot complete by the deadline fails with -ETIMEDOUT.  0: none. */
void sc_ctl_set_send_deadline (uint64_t ns);

/* Read the next line.  Returns 1 with *line pointing at it (LF removed,
 * NUL-terminated, valid until the next call), 0 at a clean end of input,
 * -EINVAL with *why set for an over-long line, a NUL byte or input that
 * ends in the middle of a line, or the negative errno of read(2) (-EAGAIN
 * when a SO_RCVTIMEO timeout expired or the reader's deadline passed).  After -EINVAL the reader has
 * dropped the bad line (an over-long one up to its LF, as it arrives), so
 * the next call reads the line after it. */
int sc_ctl_read_line (struct sc_ctl_reader *r, char **line,
                      const char **why);

#endif
