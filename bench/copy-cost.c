/* copy-cost: what the copies of a first-write pass cost by themselves,
 * with nothing of shadowcopy around them.
 *
 *   copy-cost ORIGIN DIR [GROUP]
 *
 * For every 64K chunk of ORIGIN (a file, read once first so that it is
 * cached, as a server's origin is), in a random order: read it, check it
 * for zeros, compute a CRC32C of each 4K block, and write it to the next
 * slot of a new file in DIR; an fdatasync every GROUP copies (default 17,
 * the size of a write-back batch in a first-write pass; 0: one at the
 * end).  No journal record and no origin write: what the copies alone
 * cost, written to a growing file (the server's slots are fallocated).
 * It prints per copy the process's user and system CPU, the whole
 * machine's busy CPU (/proc/stat, so the kernel's own threads count) and
 * the wall clock.  bench/firstwrite-probe.sh runs it
 * beside a first-write pass; docs/performance.md says what it showed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536u
#define BLOCK 4096u

static void
die (const char *what, int err)
{
  fprintf (stderr, "copy-cost: %s: %s\n", what, strerror (err));
  exit (1);
}

/* CRC32C of one block, SSE4.2, one stream (the server's is faster: three
 * streams interleaved; this probe's point is the kernel's share). */
static uint32_t
crc_block (const uint8_t *p)
{
  uint64_t c = 0xffffffffu;
  for (size_t i = 0; i < BLOCK; i += 8) {
    uint64_t w;
    memcpy (&w, p + i, 8);
    c = __builtin_ia32_crc32di (c, w);
  }
  return (uint32_t) ~c;
}

static bool
all_zero (const uint8_t *p)
{
  for (size_t i = 0; i < CHUNK; i += 8) {
    uint64_t w;
    memcpy (&w, p + i, 8);
    if (w)
      return false;
  }
  return true;
}

/* Jiffies the machine spent busy since boot (all CPUs). */
static long long
machine_busy (void)
{
  long long v[8] = { 0 };
  FILE *f = fopen ("/proc/stat", "r");
  if (!f || fscanf (f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld",
                    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                    &v[7]) != 8)
    die ("/proc/stat", f ? EINVAL : errno);
  fclose (f);
  return v[0] + v[1] + v[2] + v[5] + v[6];   /* not idle, iowait, steal */
}

static double
tv_us (struct timeval a, struct timeval b)
{
  return (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_usec - a.tv_usec);
}

int
main (int argc, char **argv)
{
  if (argc < 3 || argc > 4) {
    fprintf (stderr, "usage: copy-cost ORIGIN DIR [GROUP]\n");
    return 2;
  }
  long group = argc == 4 ? strtol (argv[3], NULL, 10) : 17;
  int in = open (argv[1], O_RDONLY);
  struct stat st;
  if (in < 0 || fstat (in, &st) < 0)
    die (argv[1], errno);
  uint32_t n = (uint32_t) (st.st_size / CHUNK);
  char path[4096];
  snprintf (path, sizeof path, "%s/copy-cost.diff", argv[2]);
  int out = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  uint8_t *buf = aligned_alloc (4096, CHUNK);
  uint32_t *order = malloc ((size_t) n * sizeof *order);
  if (n == 0) {
    fprintf (stderr, "copy-cost: %s: smaller than 64K\n", argv[1]);
    return 1;
  }
  if (out < 0 || !buf || !order)
    die (path, out < 0 ? errno : ENOMEM);
  unlink (path);

  for (uint64_t off = 0; off + CHUNK <= (uint64_t) st.st_size; off += CHUNK)
    if (pread (in, buf, CHUNK, (off_t) off) != CHUNK)   /* cache it */
      die ("reading the origin", errno);
  uint64_t rng = 88172645463325252ull;
  for (uint32_t i = 0; i < n; i++)
    order[i] = i;
  for (uint32_t i = n - 1; i > 0; i--) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    uint32_t j = (uint32_t) (rng % (i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }

  volatile uint32_t sink = 0;
  struct rusage r0, r1;
  struct timespec t0, t1;
  long long b0 = machine_busy ();
  getrusage (RUSAGE_SELF, &r0);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  uint64_t slot = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (pread (in, buf, CHUNK, (off_t) order[i] * CHUNK) != CHUNK)
      die ("reading a chunk", errno);
    if (!all_zero (buf)) {
      for (size_t k = 0; k < CHUNK; k += BLOCK)
        sink += crc_block (buf + k);
      if (pwrite (out, buf, CHUNK, (off_t) (slot++ * CHUNK)) != CHUNK)
        die ("writing a copy", errno);
    }
    if (group > 0 && (i + 1) % group == 0 && fdatasync (out) < 0)
      die ("fdatasync", errno);
  }
  if (fdatasync (out) < 0)
    die ("fdatasync", errno);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  getrusage (RUSAGE_SELF, &r1);
  long long b1 = machine_busy ();

  double wall = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
  double jiffy_us = 1e6 / (double) sysconf (_SC_CLK_TCK);
  printf ("%u copies of 64K, fdatasync every %ld: per copy user %.1f us, "
          "system %.1f us, machine busy %.1f us, wall %.1f us "
          "(%.0f copies/s)\n", n, group,
          tv_us (r0.ru_utime, r1.ru_utime) / n,
          tv_us (r0.ru_stime, r1.ru_stime) / n,
          (double) (b1 - b0) * jiffy_us / n, wall / n, n / (wall / 1e6));
  free (order);
  free (buf);
  close (out);
  close (in);
  return 0;
}
