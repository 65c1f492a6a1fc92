/* A diff area with many copies, made offline, for bench/run.sh's `stalls`
 * and `mem-scale` parts (issue 17): writing millions of chunks through
 * NBD would take longer than the measurement.
 *
 *   copies-probe DIR COPIES ORIGIN-CHUNKS CHUNK-SIZE SNAPSHOTS [MARGIN]
 *
 * Makes DIR/origin, a sparse file of ORIGIN-CHUNKS chunks, and DIR/diff,
 * a diff area for it with CHUNK-SIZE chunks and SNAPSHOTS snapshots s1..sN
 * created one after the other, then records COPIES copies (chunks 0 to
 * COPIES - 1), made after the last creation, so every copy serves every
 * snapshot.  The slots are reserved but never written (their
 * preallocation is punched out again): they read as zeros, and the copies
 * carry the checksums of zeros, so snapshot reads verify.  Closes cleanly, so a server's open continues the journal
 * (replay, no checkpoint) unless it is too long.
 *
 * With MARGIN, the journal is then lengthened (copies recorded for a
 * passing snapshot that is deleted again, then empty snapshots made and
 * deleted) until it is MARGIN records short of the length at which the
 * diff area writes a checkpoint (ckpt_journal_too_long): a few more
 * records while serving, such as a snapshot made and deleted, then make
 * the server write an online checkpoint of all the copies.
 *
 * Prints "copies N", "journal-records N", "checkpoint-limit N" (the
 * largest record count without a checkpoint) and the build time. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cow/diffarea-internal.h"

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void
check (int r, const char *what)
{
  if (r < 0) {
    fprintf (stderr, "copies-probe: %s: %s\n", what, strerror (-r));
    exit (1);
  }
}

/* While building, the diff area never writes a checkpoint by itself. */
static uint64_t
no_checkpoint (uint64_t live)
{
  (void) live;
  return UINT64_MAX;
}

/* The largest journal length that writes no checkpoint. */
static uint64_t
checkpoint_limit (struct sc_diff *d)
{
  uint64_t (*hook) (uint64_t) = sc_ckpt_limit_hook;
  sc_ckpt_limit_hook = NULL;
  uint64_t lo = 0, hi = UINT64_MAX / 2;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (ckpt_journal_too_long (d, mid))
      hi = mid - 1;
    else
      lo = mid;
  }
  sc_ckpt_limit_hook = hook;
  return lo;
}

static uint64_t
records (struct sc_diff *d)
{
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  return st.journal_records;
}

static uint64_t
gcd (uint64_t a, uint64_t b)
{
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static uint64_t slots_end;      /* the end of the highest slot reserved */

/* The diff area preallocates its slots; the probe's are given back to the
 * file system (a hole reads as zeros, as the sums say), so that millions
 * of copies take no disk space.  Runs of adjacent slots are punched at
 * once. */
static uint64_t run_start, run_end;

static void
punch_run (struct sc_diff *d)
{
  if (run_end > run_start &&
      fallocate (sc_diff_fd (d), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 (off_t) run_start, (off_t) (run_end - run_start)) < 0) {
    perror ("copies-probe: punching the slots");
    exit (1);
  }
  run_start = run_end = 0;
}

/* With COPIES_PROBE_ORDER=scattered, chunks are recorded in a scattered
 * order (a fixed permutation of [0, n)), as random first writes make
 * them; else in ascending order. */
static uint64_t
chunk_at (uint64_t i, uint64_t n)
{
  static int scattered = -1;
  if (scattered < 0) {
    const char *o = getenv ("COPIES_PROBE_ORDER");
    scattered = o && strcmp (o, "scattered") == 0;
  }
  if (!scattered || n < 2)
    return i;
  uint64_t step = 2654435761u % n;      /* coprime with n: a permutation */
  while (step < 2 || gcd (step, n) != 1)
    step++;
  return (unsigned __int128) i * step % n;
}

/* Record copies of chunks [0, n) for the current epoch. */
static void
record_copies (struct sc_diff *d, uint64_t n, const uint32_t *sums)
{
  uint64_t seq = 0, cs = sc_diff_chunk_size (d);
  for (uint64_t c = 0; c < n; c++) {
    uint64_t off;
    check (sc_diff_slot_reserve (d, &off), "slot reserve");
    if (off + cs > slots_end)
      slots_end = off + cs;
    if (off != run_end) {
      punch_run (d);
      run_start = off;
    }
    run_end = off + cs;
    check (sc_diff_copy_record (d, chunk_at (c, n), off, sums, &seq),
           "copy record");
    if (c % 4096 == 4095)
      check (sc_diff_commit (d, seq), "commit");
  }
  if (seq)
    check (sc_diff_commit (d, seq), "commit");
  punch_run (d);
}

int
main (int argc, char **argv)
{
  if (argc < 6) {
    fprintf (stderr, "usage: copies-probe DIR COPIES ORIGIN-CHUNKS "
             "CHUNK-SIZE SNAPSHOTS [MARGIN]\n");
    return 2;
  }
  uint64_t n = strtoull (argv[2], NULL, 0);
  uint64_t origin_chunks = strtoull (argv[3], NULL, 0);
  uint32_t cs = strtoul (argv[4], NULL, 0);
  unsigned nsnaps = strtoul (argv[5], NULL, 0);
  long margin = argc > 6 ? strtol (argv[6], NULL, 0) : -1;
  if (n > origin_chunks || nsnaps < 1 || cs < 4096 || (cs & (cs - 1))) {
    fprintf (stderr, "copies-probe: bad arguments\n");
    return 2;
  }
  char origin[4096], diff[4096], err[1024], name[32];
  snprintf (origin, sizeof origin, "%s/origin", argv[1]);
  snprintf (diff, sizeof diff, "%s/diff", argv[1]);
  int fd = open (origin, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate (fd, (off_t) (origin_chunks * cs)) < 0) {
    perror (origin);
    return 1;
  }
  struct sc_origin_id id;
  sc_origin_identify (fd, origin, &id);
  close (fd);
  unlink (diff);
  double t0 = now ();
  sc_ckpt_limit_hook = no_checkpoint;
  struct sc_diff *d;
  if (sc_diff_open (diff, SC_DIFF_CREATE, &id, cs, &d, err, sizeof err) < 0) {
    fprintf (stderr, "copies-probe: %s\n", err);
    return 1;
  }
  for (unsigned i = 1; i <= nsnaps; i++) {
    snprintf (name, sizeof name, "s%u", i);
    check (sc_diff_snapshot_create (d, name, NULL, NULL), "snapshot create");
  }
  uint8_t *zeros = calloc (1, cs);
  uint32_t sums[SC_COPY_SUMS_MAX];
  if (!zeros)
    return 1;
  sc_diff_copy_sums (d, zeros, sums);
  record_copies (d, n, sums);

  if (margin >= 0) {
    unsigned pad = 0;
    for (;;) {
      uint64_t have = records (d), limit = checkpoint_limit (d);
      if (have + (uint64_t) margin >= limit)
        break;
      uint64_t gap = limit - margin - have;
      if (getenv ("COPIES_PROBE_DEBUG"))
        fprintf (stderr, "records %llu limit %llu\n",
                 (unsigned long long) have, (unsigned long long) limit);
      snprintf (name, sizeof name, "pad%u", ++pad);
      check (sc_diff_snapshot_create (d, name, NULL, NULL), "snapshot create");
      /* A round appends about 1% more records than the copies it
       * records (seen here; the create, the delete and what the
       * commits add): aim short, the next rounds close the gap. */
      uint64_t k = gap - gap / 8;
      if (gap > 64)
        record_copies (d, k < n ? k : n, sums);
      check (sc_diff_snapshot_delete (d, name), "snapshot delete");
    }
  }
  /* Cover the reserved slots, as their data writes would have. */
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  if (slots_end > st.file_bytes &&
      ftruncate (sc_diff_fd (d), (off_t) slots_end) < 0) {
    perror (diff);
    return 1;
  }
  sc_diff_stats (d, &st);
  printf ("copies %llu\n", (unsigned long long) st.copies);
  printf ("journal-records %llu\n", (unsigned long long) st.journal_records);
  printf ("checkpoint-limit %llu\n",
          (unsigned long long) checkpoint_limit (d));
  sc_ckpt_limit_hook = NULL;
  sc_diff_close (d);
  printf ("build-seconds %.1f\n", now () - t0);
  free (zeros);
  return 0;
}
