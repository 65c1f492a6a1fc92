/* Unit tests: writes acknowledged from the write-back queue survive a
 * kill -9 of the server at any moment (engine/writeback.c,
 * engine/writeback-log.c).
 *
 * A child process is the server: it opens the volume with write-back on,
 * its diff area's I/O slowed so that the queue holds writes, and writes
 * 4 KiB blocks (each filled with an id of its own), half of them to a
 * few hot blocks, and takes a snapshot every 48 writes (so that first
 * writes, which are queued, keep coming, and later ones to the same
 * bytes go straight to the disk).  It tells the parent through a pipe of
 * each write and snapshot before it begins and once it is acknowledged.
 * The parent kills it with SIGKILL after a random time, then opens the
 * volume as the next server would (which writes what the log holds), and
 * checks:
 *   - every block holds the last acknowledged write to it, or the write
 *     that was under way at the kill (or, before any write to it, its
 *     old content);
 *   - every snapshot reads exactly the image it was taken of (the
 *     replay copies first), and one whose creation returned exists and
 *     is valid;
 * then deletes the child's snapshots, takes one of its own and starts
 * the next round.  The test
 * also asserts that some kills left queued writes in the log, so that
 * the replay was exercised, and prints how many.
 *
 * Unlike the crash harness (unit-crash.c), which rebuilds the disk of a
 * power cut and so drops the log, a kill keeps both the page cache and
 * the log: no acknowledged write may be lost.
 *
 * The kills land where the scheduler puts them: a slot freed before its
 * data is on the disk is caught at once, but a window of a few
 * microseconds (a slot freed just after its range is released, rather
 * than before) is not; widened to 3 ms by a sleep, it was caught within
 * a dozen rounds. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cow/io.h"
#include "engine/volume.h"
#include "engine/volume-impl.h"
#include "tests/unit-wblog.h"

TestSuite (wbkill, .init = wbt_setup, .fini = wbt_teardown);

#define BLOCK 4096u
#define KILL_VOL (1u << 20)
#define NBLOCKS (KILL_VOL / BLOCK)
#define HOT 8                           /* hot blocks, in 8 chunks */
#define ROUNDS 40
#define SNAP_EVERY 48                   /* writes */
#define MAX_SNAPS 64                    /* the child's, a round */

/* What the child tells the parent. */
enum { REC_READY, REC_BEGIN, REC_DONE, REC_SNAP_BEGIN, REC_SNAP_DONE };
struct rec {
  uint32_t kind;
  uint32_t block;
  uint64_t id;
};

static void
fill (uint8_t *buf, uint64_t id)
{
  for (size_t i = 0; i < BLOCK; i += sizeof id)
    memcpy (buf + i, &id, sizeof id);
}

/* The diff area's writes and syncs, slowed (up to 0.4 ms each), so that
 * writes wait in the queue for their copies. */
static int
slow_io (const struct sc_io_req *req)
{
  if (req->op != SC_IO_READ)
    usleep ((useconds_t) (rand () % 400));
  return 0;
}

static void
say (int fd, uint32_t kind, uint32_t block, uint64_t id)
{
  struct rec r = { kind, block, id };
  if (write (fd, &r, sizeof r) != (ssize_t) sizeof r)
    _exit (4);
}

/* The server: writes until it is killed.  Never returns. */
static void __attribute__((noreturn))
serve (struct uh_vol *t, int fd, unsigned round)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff,
    .chunk_size = t->chunk_size, .write_back = true,
  };
  char err[512];
  struct sc_volume *v;
  srand (round * 7919u + 1);
  sc_io_fault_hook = slow_io;
  if (sc_volume_open (&cfg, &v, err, sizeof err) < 0 || !v->wb) {
    fprintf (stderr, "the child's open: %s\n", v ? "no write-back" : err);
    _exit (2);
  }
  say (fd, REC_READY, 0, 0);
  uint8_t buf[BLOCK];
  for (uint64_t i = 1;; i++) {
    if (i % SNAP_EVERY == 0 && i / SNAP_EVERY < MAX_SNAPS) {
      uint32_t k = (uint32_t) (i / SNAP_EVERY);
      char name[32];
      snprintf (name, sizeof name, "c%u-%" PRIu32, round, k);
      say (fd, REC_SNAP_BEGIN, k, 0);
      if (sc_volume_snapshot_create (v, name, NULL, NULL) < 0)
        _exit (3);
      say (fd, REC_SNAP_DONE, k, 0);
    }
    uint32_t b = rand () % 2
      ? (uint32_t) (rand () % HOT) * (NBLOCKS / HOT) + 3
      : (uint32_t) rand () % NBLOCKS;
    uint64_t id = (uint64_t) (round + 1) << 32 | i;
    fill (buf, id);
    say (fd, REC_BEGIN, b, id);
    if (sc_volume_write (v, buf, BLOCK, (uint64_t) b * BLOCK, 0) < 0)
      _exit (3);
    say (fd, REC_DONE, b, id);
    if (i % 64 == 0 && sc_volume_flush (v) < 0)
      _exit (3);
  }
}

/* How many queued writes the log at path holds (0 if there is none). */
static size_t
queued_in (const char *path)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return 0;
  size_t len, n = 0;
  uint8_t *img = wbt_image (path, &len);
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  struct sc_wb_log_owner owner;
  char err[512] = "";
  int lost;
  int r = sc_wb_log_scan (img, len, wbt_key_a, wbt_boot_now, KILL_VOL, e,
                          &n, &owner, &lost, err, sizeof err);
  free (img);
  cr_assert_geq (r, 0, "the killed server's log is damaged: %s", err);
  return n;
}

/* The child's snapshots of a round: the image each was taken of, and
 * whether its creation returned. */
struct snaps {
  uint8_t *image[MAX_SNAPS];
  bool done[MAX_SNAPS];
};

/* One round: start the server, kill it, and bring the model up to what
 * it acknowledged.  *inflight is the block of the write under way at the
 * kill (its id in *inflight_id), or NBLOCKS. */
static void
serve_and_kill (struct uh_vol *t, unsigned round, struct snaps *snaps,
                uint32_t *inflight, uint64_t *inflight_id)
{
  int fds[2];
  cr_assert_eq (pipe (fds), 0);
  (void) fcntl (fds[1], F_SETPIPE_SZ, 1 << 20);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    close (fds[0]);
    serve (t, fds[1], round);
  }
  close (fds[1]);
  struct rec r;
  cr_assert_eq (read (fds[0], &r, sizeof r), (ssize_t) sizeof r,
                "the server did not start");
  cr_assert_eq (r.kind, REC_READY);
  usleep ((useconds_t) (2000 + rand () % 30000));
  kill (pid, SIGKILL);
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
             "the server ended before the kill (status %d)", status);

  *inflight = NBLOCKS;
  ssize_t got;
  while ((got = read (fds[0], &r, sizeof r)) == (ssize_t) sizeof r) {
    cr_assert_lt (r.block, NBLOCKS);
    if (r.kind == REC_SNAP_BEGIN) {
      cr_assert_lt (r.block, MAX_SNAPS);
      snaps->image[r.block] = malloc (KILL_VOL);
      cr_assert_not_null (snaps->image[r.block]);
      memcpy (snaps->image[r.block], t->live, KILL_VOL);
    }
    else if (r.kind == REC_SNAP_DONE)
      snaps->done[r.block] = true;
    else if (r.kind == REC_BEGIN) {
      *inflight = r.block;
      *inflight_id = r.id;
    }
    else {
      fill (t->live + (uint64_t) r.block * BLOCK, r.id);
      *inflight = NBLOCKS;
    }
  }
  cr_assert_eq (got, 0, "a torn record");
  close (fds[0]);
}

/* The child's snapshots read their images; those whose creation returned
 * exist and are valid.  Then they are deleted. */
static void
check_snaps (struct uh_vol *t, unsigned round, struct snaps *snaps)
{
  for (uint32_t k = 0; k < MAX_SNAPS; k++) {
    if (!snaps->image[k])
      continue;
    char name[32];
    snprintf (name, sizeof name, "c%u-%" PRIu32, round, k);
    struct sc_snapshot_info s;
    int r = sc_volume_snapshot_lookup (t->v, name, &s);
    cr_assert (r == 0 || (r == -ENOENT && !snaps->done[k]),
               "snapshot %s, whose creation returned: %d", name, r);
    if (r == 0) {
      cr_assert_eq (s.invalid_reason, SC_VALID, "snapshot %s: %s", name,
                    sc_invalid_reason_text (s.invalid_reason));
      uh_vol_assert_reads (t, s.id, snaps->image[k], name);
      cr_assert_eq (sc_volume_snapshot_delete (t->v, name), 0);
    }
    free (snaps->image[k]);
  }
}

/* The live volume reads the model, but for the block under way at the
 * kill, which may hold its write or not: the model takes what it holds. */
static void
check_live (struct uh_vol *t, uint32_t inflight, uint64_t inflight_id,
            unsigned round)
{
  uint8_t got[BLOCK], want[BLOCK];
  for (uint32_t b = 0; b < NBLOCKS; b++) {
    uint8_t *model = t->live + (uint64_t) b * BLOCK;
    cr_assert_eq (sc_volume_read (t->v, got, BLOCK, (uint64_t) b * BLOCK),
                  0);
    if (memcmp (got, model, BLOCK) == 0)
      continue;
    fill (want, inflight_id);
    cr_assert (b == inflight && memcmp (got, want, BLOCK) == 0,
               "round %u: block %" PRIu32 " reads id %#" PRIx64 ", not "
               "its last acknowledged write (id %#" PRIx64 ")", round, b,
               *(uint64_t *) got, *(uint64_t *) model);
    memcpy (model, got, BLOCK);
  }
}

Test (wbkill, acknowledged_writes_survive_kills_at_any_moment,
      .timeout = 300)
{
  struct uh_vol t;
  uh_vol_create (&t, KILL_VOL, 65536, 5, 0);
  uint8_t key[SC_WB_LOG_KEY];
  char *log = wbt_where (&t, key);
  memcpy (wbt_key_a, key, sizeof key);
  uint8_t *images[ROUNDS];
  char name[32];
  srand (12345);

  size_t with_queued = 0, queued_total = 0;
  for (unsigned round = 0; round < ROUNDS; round++) {
    snprintf (name, sizeof name, "r%u", round);
    uh_vol_snap (&t, name);
    images[round] = malloc (KILL_VOL);
    cr_assert_not_null (images[round]);
    memcpy (images[round], t.live, KILL_VOL);
    uh_vol_close (&t);

    uint32_t inflight;
    uint64_t inflight_id = 0;
    struct snaps snaps;
    memset (&snaps, 0, sizeof snaps);
    serve_and_kill (&t, round, &snaps, &inflight, &inflight_id);
    size_t n = queued_in (log);
    with_queued += n > 0;
    queued_total += n;

    uh_vol_open (&t);                   /* writes what the log holds */
    check_live (&t, inflight, inflight_id, round);
    check_snaps (&t, round, &snaps);
    for (unsigned s = 0; s <= round; s++) {
      snprintf (name, sizeof name, "r%u", s);
      uh_vol_assert_reads (&t, uh_find (sc_volume_diff (t.v), name).id,
                           images[s], name);
    }
  }
  uh_vol_close (&t);
  cr_log_info ("%u kills, %zu left queued writes in the log (%zu in all)",
               ROUNDS, with_queued, queued_total);
  printf ("wbkill: %u kills, %zu left queued writes in the log (%zu in "
          "all)\n", ROUNDS, with_queued, queued_total);
  cr_assert_geq (with_queued, ROUNDS / 4, "too few kills found queued "
                 "writes (%zu of %u): the replay was hardly exercised",
                 with_queued, ROUNDS);
  for (unsigned s = 0; s < ROUNDS; s++)
    free (images[s]);
  free (log);
  uh_vol_free (&t);
}
