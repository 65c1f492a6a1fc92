/* Unit tests (review of the lock-free gate): snapshots created while
 * live writes run, some parked for their copies' commit, some queued
 * for write-back, show for every chunk exactly one of the writes that
 * could be at their point in time: every write acknowledged before the
 * creation began, none begun after it returned. */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096
#define WRITERS 4
#define PER 8                   /* chunks of one writer */
#define CHUNKS (WRITERS * PER)
#define SNAPS 120
#define MAXW 200000             /* writes of one chunk, at most */

TestSuite (gate_snap, .init = uh_setup, .fini = uh_teardown);

static struct sc_volume *vol;
static uint64_t holds_started, holds_done;
static bool stop;
/* Per write of a chunk: creations done before it began, and creations
 * begun before it was acknowledged. */
static uint32_t (*w_before)[MAXW], (*w_after)[MAXW];
static uint32_t nwrites[CHUNKS];
static uint32_t shown[SNAPS + 1][CHUNKS];

static void *
writer (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg;
  uint64_t *buf = malloc (CS);
  for (uint32_t round = 1; round < MAXW; round++) {
    if (__atomic_load_n (&stop, __ATOMIC_ACQUIRE))
      break;
    for (unsigned i = 0; i < PER; i++) {
      uint64_t c = t * PER + i;
      uh_stamp (buf, CS, c, round);
      w_before[c][round] = __atomic_load_n (&holds_done, __ATOMIC_SEQ_CST);
      unsigned flags = (round + i) % 3 == 0 ? SC_FUA : 0;
      cr_assert_eq (sc_volume_write (vol, buf, CS, c * CS, flags), 0);
      w_after[c][round] = __atomic_load_n (&holds_started,
                                           __ATOMIC_SEQ_CST);
      __atomic_store_n (&nwrites[c], round, __ATOMIC_RELEASE);
    }
  }
  free (buf);
  return NULL;
}

static void
snap_read (uint64_t id, uint32_t k)
{
  uint64_t *buf = malloc (CS);
  for (uint64_t c = 0; c < CHUNKS; c++) {
    cr_assert_eq (sc_volume_snapshot_read (vol, id, buf, CS, c * CS), 0);
    for (size_t i = 1; i < CS / 8; i++)
      cr_assert_eq (buf[i], buf[0], "snapshot %u chunk %" PRIu64
                    " is torn", k, c);
    cr_assert_eq (buf[0] >> 32, c, "snapshot %u chunk %" PRIu64
                  " shows another chunk", k, c);
    shown[k][c] = (uint32_t) buf[0];
  }
  free (buf);
}

/* Snapshot k shows of chunk c a write no older than the last one
 * acknowledged before k began, and older than the first one begun after
 * k returned. */
static void
check (uint32_t k, uint64_t c)
{
  uint32_t n = nwrites[c], lo = 0, hi = UINT32_MAX;
  for (uint32_t s = 1; s <= n; s++) {
    if (w_after[c][s] < k)
      lo = s;
    if (w_before[c][s] >= k && s < hi)
      hi = s;
  }
  uint32_t s = shown[k][c];
  cr_expect (s >= lo && s < hi, "snapshot %u chunk %" PRIu64 " shows "
             "write %u, not in [%u, %u)", k, c, s, lo, hi);
}

Test (gate_snap, snapshots_show_their_point_in_time, .timeout = 300)
{
  w_before = calloc (CHUNKS, sizeof *w_before);
  w_after = calloc (CHUNKS, sizeof *w_after);
  cr_assert (w_before && w_after);
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, CHUNKS * CS, 3);
  struct sc_volume_config cfg = {
    .origin_path = origin, .diff_path = diff, .chunk_size = CS,
    .write_back = true,
  };
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &vol, err, sizeof err), 0, "%s", err);
  uint64_t *buf = malloc (CS);
  for (uint64_t c = 0; c < CHUNKS; c++) {
    uh_stamp (buf, CS, c, 0);
    cr_assert_eq (sc_volume_write (vol, buf, CS, c * CS, SC_FUA), 0);
  }
  free (buf);
  pthread_t t[WRITERS];
  for (unsigned i = 0; i < WRITERS; i++)
    cr_assert_eq (pthread_create (&t[i], NULL, writer,
                                  (void *) (uintptr_t) i), 0);
  for (uint32_t k = 1; k <= SNAPS; k++) {
    char name[32];
    snprintf (name, sizeof name, "s%u", k);
    struct sc_snapshot_info si;
    __atomic_store_n (&holds_started, k, __ATOMIC_SEQ_CST);
    cr_assert_eq (sc_volume_snapshot_create (vol, name, NULL, &si), 0);
    __atomic_store_n (&holds_done, k, __ATOMIC_SEQ_CST);
    snap_read (si.id, k);
    if (k > 2) {
      snprintf (name, sizeof name, "s%u", k - 2);
      cr_assert_eq (sc_volume_snapshot_delete (vol, name), 0);
    }
  }
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (unsigned i = 0; i < WRITERS; i++)
    pthread_join (t[i], NULL);
  uint64_t total = 0;
  for (uint64_t c = 0; c < CHUNKS; c++)
    total += nwrites[c];
  cr_log_info ("%" PRIu64 " writes across %u snapshots", total, SNAPS);
  for (uint32_t k = 1; k <= SNAPS; k++)
    for (uint64_t c = 0; c < CHUNKS; c++)
      check (k, c);
  cr_assert_eq (sc_volume_close (vol), 0);
  free (origin);
  free (diff);
  free (w_before);
  free (w_after);
}
