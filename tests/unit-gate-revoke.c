/* Unit tests (review of the lock-free gate and the one-load ticket
 * check): live connections writing as fast as they can while a forced
 * revert revokes them.  Once the revert has finished, the live volume is
 * the snapshot, chunk for chunk: a revoked connection's write either
 * landed before the revert started (and was reverted) or failed with
 * ESHUTDOWN; none reached the origin after.  A write that lands after
 * the revoke is seen at the I/O layer (sc_io_fault_hook): a write by a
 * connection's thread to the origin once the revert's hold has revoked
 * the tickets (sc_vol_revert_start_hook, phase 1). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096
#define WRITERS 4
#define PER 8
#define CHUNKS (WRITERS * PER)
#define ROUNDS 12

static void
revoke_teardown (void)
{
  sc_io_fault_hook = NULL;
  sc_vol_revert_start_hook = NULL;
  uh_teardown ();
}

TestSuite (gate_revoke, .init = uh_setup, .fini = revoke_teardown);

static __thread bool connection_thread;
static int diff_fd = -1;
static bool revoked_now;        /* the revert's hold has revoked */
static unsigned long late_writes;

static int
io_hook (const struct sc_io_req *req)
{
  if (connection_thread && req->op == SC_IO_WRITE &&
      req->fd != __atomic_load_n (&diff_fd, __ATOMIC_ACQUIRE) &&
      __atomic_load_n (&revoked_now, __ATOMIC_SEQ_CST))
    __atomic_add_fetch (&late_writes, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void
revert_hook (struct sc_volume *v, int phase)
{
  (void) v;
  if (phase == 1)
    __atomic_store_n (&revoked_now, true, __ATOMIC_SEQ_CST);
}

struct wr {
  struct sc_volume *v;
  unsigned t;
  uint64_t ticket;
  unsigned long ok;             /* writes done */
};

static void *
writer (void *arg)
{
  struct wr *w = arg;
  connection_thread = true;
  uint64_t *buf = malloc (CS);
  for (uint64_t seq = 1;; seq++) {
    uint64_t c = w->t * PER + seq % PER;
    uh_stamp (buf, CS, c, seq);
    unsigned flags = seq % 3 == 0 ? SC_FUA : 0;
    int r = sc_volume_live_write (w->v, w->ticket, buf, CS, c * CS, flags);
    if (r == -ESHUTDOWN)
      break;
    cr_assert_eq (r, 0);
    w->ok++;
  }
  free (buf);
  return NULL;
}

static void
one_round (unsigned round)
{
  char name[32];
  snprintf (name, sizeof name, "origin%u", round);
  char *origin = uh_path (name);
  snprintf (name, sizeof name, "diff%u", round);
  char *diff = uh_path (name);
  uh_make_file (origin, CHUNKS * CS, round + 1);
  struct sc_volume_config cfg = {
    .origin_path = origin, .diff_path = diff, .chunk_size = CS,
    .write_back = round % 2 == 1,
  };
  struct sc_volume *v;
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &v, err, sizeof err), 0, "%s", err);
  uint64_t *buf = malloc (CS);
  for (uint64_t c = 0; c < CHUNKS; c++) {
    uh_stamp (buf, CS, c, 0);
    cr_assert_eq (sc_volume_write (v, buf, CS, c * CS, SC_FUA), 0);
  }
  cr_assert_eq (sc_volume_snapshot_create (v, "A", NULL, NULL), 0);
  __atomic_store_n (&revoked_now, false, __ATOMIC_SEQ_CST);
  __atomic_store_n (&late_writes, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n (&diff_fd, sc_diff_fd (sc_volume_diff (v)),
                    __ATOMIC_RELEASE);
  sc_io_fault_hook = io_hook;
  sc_vol_revert_start_hook = revert_hook;
  struct wr w[WRITERS];
  pthread_t t[WRITERS];
  for (unsigned i = 0; i < WRITERS; i++) {
    w[i] = (struct wr) { .v = v, .t = i, .ticket = sc_volume_live_open (v) };
    cr_assert_eq (pthread_create (&t[i], NULL, writer, &w[i]), 0);
  }
  usleep (20000 + round * 3000);
  /* Every chunk must be copied again for B: the writes are parked for
   * their copies' commits when the revert's hold comes. */
  cr_assert_eq (sc_volume_snapshot_create (v, "B", NULL, NULL), 0);
  usleep (round * 100);
  uint64_t live;
  cr_assert_eq (sc_volume_revert_start (v, "A", NULL, 0, SC_REVERT_FORCE,
                                        &live, NULL), 0);
  for (unsigned i = 0; i < WRITERS; i++) {
    pthread_join (t[i], NULL);
    sc_volume_live_close (v, w[i].ticket);
  }
  cr_expect_eq (late_writes, 0, "round %u: %lu writes of revoked "
                "connections reached the origin after the revoke", round,
                late_writes);
  sc_io_fault_hook = NULL;
  sc_vol_revert_start_hook = NULL;
  struct sc_revert_status st;
  for (int i = 0; sc_volume_revert_status (v, &st) == 0; i++) {
    cr_assert_lt (i, 10000, "the revert does not finish");
    usleep (1000);
  }
  for (uint64_t c = 0; c < CHUNKS; c++) {
    cr_assert_eq (sc_volume_read (v, buf, CS, c * CS), 0);
    cr_expect_eq (buf[0], c << 32, "round %u: chunk %" PRIu64 " is write "
                  "%" PRIu64 ", not the snapshot's", round, c,
                  buf[0] & 0xffffffff);
  }
  free (buf);
  cr_assert_eq (sc_volume_close (v), 0);
  free (origin);
  free (diff);
}

Test (gate_revoke, a_revoked_write_never_lands_after_the_revert,
      .timeout = 300)
{
  for (unsigned round = 0; round < ROUNDS; round++)
    one_round (round);
}
