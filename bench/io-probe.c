/* io-probe: what one request costs through io_uring and as a plain
 * syscall, on a buffered file like the ones shadowcopy serves.
 *
 *   io-probe DIR [N]
 *
 * In a 64 MiB file in DIR (written first, so every page is cached), it
 * times N requests of each kind, one at a time as a single 4k random
 * write or read of the copy-on-write path would make them, and a batch
 * of 16 64K reads and one of 16 64K writes, as a 1 MiB write over 64K
 * chunks copies them.  Then what a group commit waits for (a 64K write
 * and an fdatasync, overwriting or appending) and what a copy's CRC32C
 * costs.  Each
 * case runs 5 times; the median of the per-request averages is printed.
 * bench/io-probe.sh builds and runs it; docs/performance.md explains
 * what the numbers decided.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_SIZE (64u << 20)
#define ROUNDS 5

static int fd;
static struct io_uring ring;
static uint8_t *buf;
static uint64_t rng = 88172645463325252ull;

static uint64_t
next_off (uint32_t align)
{
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng % (FILE_SIZE / align) * align;
}

static double
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
die (const char *what, int err)
{
  fprintf (stderr, "io-probe: %s: %s\n", what, strerror (err));
  exit (1);
}

static void
uring_one (int write, uint32_t len, uint64_t off, uint8_t *p)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&ring);
  if (write)
    io_uring_prep_write (sqe, fd, p, len, off);
  else
    io_uring_prep_read (sqe, fd, p, len, off);
  int r = io_uring_submit_and_wait (&ring, 1);
  if (r < 0)
    die ("io_uring_submit_and_wait", -r);
  struct io_uring_cqe *cqe;
  io_uring_peek_cqe (&ring, &cqe);
  if (cqe->res != (int) len)
    die ("io_uring request", cqe->res < 0 ? -cqe->res : EIO);
  io_uring_cqe_seen (&ring, cqe);
}

enum kind { SYS_WRITE, URING_WRITE, SYS_READ, URING_READ,
            SYS_BATCH, URING_BATCH, SYS_BREAD, URING_BREAD,
            SYNC_OVERWRITE, SYNC_APPEND, CRC, KINDS };
static const char *names[KINDS] = {
  "4k write, pwrite", "4k write, io_uring", "4k read, pread",
  "4k read, io_uring", "16 x 64K writes, pwrite", "16 x 64K writes, io_uring",
  "16 x 64K reads, pread", "16 x 64K reads, io_uring",
  "64K overwrite + fdatasync", "64K append + fdatasync", "CRC32C of 64K",
};

static int sync_fd;             /* SYNC_*: a second file */
static uint64_t append_off;

/* CRC32C (Castagnoli), SSE4.2, one stream: what cow/crc32c.c does. */
__attribute__ ((target ("sse4.2"))) static uint32_t
crc32c_64k (const uint8_t *p)
{
  uint64_t c = 0xffffffff;
  for (size_t i = 0; i < 65536; i += 8) {
    uint64_t w;
    memcpy (&w, p + i, 8);
    c = __builtin_ia32_crc32di (c, w);
  }
  return (uint32_t) c ^ 0xffffffff;
}
static volatile uint32_t crc_sink;

static void
run (enum kind k)
{
  switch (k) {
  case SYS_WRITE:
  case SYS_READ: {
    uint64_t off = next_off (4096);
    ssize_t n = k == SYS_WRITE ? pwrite (fd, buf, 4096, off)
                               : pread (fd, buf, 4096, off);
    if (n != 4096)
      die ("pread/pwrite", n < 0 ? errno : EIO);
    break;
  }
  case URING_WRITE:
  case URING_READ:
    uring_one (k == URING_WRITE, 4096, next_off (4096), buf);
    break;
  case SYS_BATCH:
  case SYS_BREAD:
    for (int i = 0; i < 16; i++)
      if ((k == SYS_BATCH
           ? pwrite (fd, buf + i * 65536, 65536, next_off (65536))
           : pread (fd, buf + i * 65536, 65536, next_off (65536))) != 65536)
        die ("pread/pwrite", errno);
    break;
  case URING_BATCH:
  case URING_BREAD: {
    for (int i = 0; i < 16; i++)
      if (k == URING_BATCH)
        io_uring_prep_write (io_uring_get_sqe (&ring), fd, buf + i * 65536,
                             65536, next_off (65536));
      else
        io_uring_prep_read (io_uring_get_sqe (&ring), fd, buf + i * 65536,
                            65536, next_off (65536));
    int r = io_uring_submit_and_wait (&ring, 16);
    if (r < 0)
      die ("io_uring_submit_and_wait", -r);
    struct io_uring_cqe *cqe;
    for (int i = 0; i < 16; i++) {
      io_uring_wait_cqe (&ring, &cqe);
      if (cqe->res != 65536)
        die ("io_uring batch", cqe->res < 0 ? -cqe->res : EIO);
      io_uring_cqe_seen (&ring, cqe);
    }
    break;
  }
  case SYNC_OVERWRITE:
  case SYNC_APPEND: {
    uint64_t off = k == SYNC_APPEND ? (append_off += 65536) - 65536
                                    : next_off (65536) % (16u << 20);
    if (pwrite (sync_fd, buf, 65536, off) != 65536 || fdatasync (sync_fd))
      die ("pwrite/fdatasync", errno);
    break;
  }
  case CRC:
    crc_sink = crc32c_64k (buf);
    break;
  case KINDS:
    break;
  }
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: io-probe DIR [N]\n");
    return 2;
  }
  long n = argc > 2 ? atol (argv[2]) : 20000;
  char path[4096];
  snprintf (path, sizeof path, "%s/io-probe.data", argv[1]);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    die (path, errno);
  unlink (path);
  if (posix_memalign ((void **) &buf, 4096, 16 * 65536))
    die ("posix_memalign", ENOMEM);
  memset (buf, 0xa5, 16 * 65536);
  for (uint64_t off = 0; off < FILE_SIZE; off += 16 * 65536)
    if (pwrite (fd, buf, 16 * 65536, off) != 16 * 65536)
      die ("prefill", errno);
  snprintf (path, sizeof path, "%s/io-probe.sync", argv[1]);
  sync_fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (sync_fd < 0)
    die (path, errno);
  unlink (path);
  for (uint64_t off = 0; off < (16u << 20); off += 16 * 65536)
    if (pwrite (sync_fd, buf, 16 * 65536, off) != 16 * 65536)
      die ("prefill", errno);
  if (fdatasync (sync_fd))
    die ("fdatasync", errno);
  append_off = 16u << 20;
  int r = io_uring_queue_init (64, &ring, 0);
  if (r < 0)
    die ("io_uring_queue_init", -r);

  printf ("%-28s %12s\n", "request", "us/request");
  for (int k = 0; k < KINDS; k++) {
    double avg[ROUNDS];
    long reps = k == SYNC_OVERWRITE || k == SYNC_APPEND ? n / 100
                : k >= SYS_BATCH ? n / 16 : n;
    for (int round = 0; round < ROUNDS; round++) {
      double t0 = now_us ();
      for (long i = 0; i < reps; i++)
        run (k);
      avg[round] = (now_us () - t0) / reps;
    }
    qsort (avg, ROUNDS, sizeof *avg, cmp_double);
    printf ("%-28s %12.2f\n", names[k], avg[ROUNDS / 2]);
  }
  io_uring_queue_exit (&ring);
  close (fd);
  free (buf);
  return 0;
}
