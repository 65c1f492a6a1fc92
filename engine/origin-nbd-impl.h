/* shadowcopy: the NBD origin's own definitions, shared by its files
 * (engine/origin-nbd.c: requests and the operations; engine/origin-nbd-
 * connect.c: connecting, and whether the remote is still the same disk).
 * Nothing else includes this; see origin-nbd.c's notes for the design.
 */
#ifndef SHADOWCOPY_ENGINE_ORIGIN_NBD_IMPL_H
#define SHADOWCOPY_ENGINE_ORIGIN_NBD_IMPL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

#include "cow/diffarea.h"
#include "engine/clock.h"
#include "engine/origin-impl.h"

#define CONNECTIONS_MAX 16
#define PIECE_MAX (8u << 20)          /* bytes of data per command */
#define RANGE_MAX (1u << 30)          /* bytes per zero, trim, status */
#define GROUP_MAX 16                  /* commands submitted at once */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

/* Internal outcomes of one attempt (never returned to the volume). */
#define LOST (-ENOTCONN)        /* the connection went: try again */

struct nbd_origin;

struct conn {
  struct nbd_origin *no;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct nbd_handle *h;         /* NULL: not connected */
  int wake;                     /* eventfd: a command was submitted */
  bool driving;                 /* a waiter polls the socket */
  bool dying;                   /* being dropped: no new commands */
  bool connecting;              /* a request is connecting it */
  uint64_t gen;                 /* +1 at each drop */
  uint64_t attempts;            /* +1 at each connect outcome */
  bool last_failed;             /* the last connect failed */
  unsigned mods;                /* modifications sent, not answered */
};

struct nbd_origin {
  struct sc_origin o;           /* first: what the volume holds */
  char *uri;
  struct sc_origin_nbd_opts opts;
  bool can_fua, can_flush, can_zero, can_trim, can_status;
  uint64_t piece_max;
  unsigned nconn;
  unsigned next;                /* round robin (atomic) */
  bool fatal;                   /* (atomic) failed closed: every request EIO */
  /* Modifications the server acknowledged (without FUA), and how many of
   * them a successful flush covered (atomics; see the notes). */
  uint64_t acked, covered;
  /* The sampled blocks at open, and which ones our modifications touched
   * since (atomic bitmap). */
  uint64_t sample_off[SC_STAMP_SAMPLES];
  uint32_t sample_len[SC_STAMP_SAMPLES];
  uint32_t sample_crc[SC_STAMP_SAMPLES];
  uint32_t touched;
  bool have_samples;            /* sample_crc holds them */
  struct conn conn[CONNECTIONS_MAX];
};

/* One command in flight. */
struct cmd {
  int done;                     /* atomic: the callback ran */
  int err;                      /* its errno, 0 on success */
  /* block status: the extents the server gave (pairs length, flags) */
  uint64_t ext_off;
  uint32_t *ext;
  size_t next;
};

static inline uint64_t
ms_from_now (uint64_t ms)
{
  return sc_mono_ns () + ms * 1000000u;
}

/* A connected handle to the remote, tried for opts.retry_ms with a
 * back-off; NULL with the reason in `why`. */
struct nbd_handle *nbdo_connect_retry (struct nbd_origin *no, char *why,
                                       size_t len);

/* The sampled blocks read on `h` into crc[]: 0, or -1 (nbd_get_error). */
int nbdo_read_samples (struct nbd_origin *no, struct nbd_handle *h,
                       uint32_t *crc);

/* Whether the remote on a new connection `h` is still the disk of the
 * open: 0 if so, -1 if not, -2 if it cannot tell (`why` says). */
int nbdo_same_disk (struct nbd_origin *no, struct nbd_handle *h, char *why,
                    size_t len);

/* What a server answering again no longer offers that the open found
 * and the flushes rely on (multi-conn with several connections, flush,
 * FUA), or NULL. */
const char *nbdo_lost_capability (struct nbd_origin *no,
                                  struct nbd_handle *h);

#endif
