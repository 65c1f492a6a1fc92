/* Start-up time with a large journal (issue 4's bound: at most 1 s with
 * one million records).  Formats a diff area for a sparse origin of N 4K
 * chunks, records N data copies under one snapshot (volatile session, so
 * the set-up is quick; the slots are reserved but not written), then
 * times: a read-only open (replay alone), a read-write open after an
 * unclean stop (replay + checkpoint), and a read-write open after a clean
 * close (replay, journal continued in place).
 *
 *   bench/startup-probe.sh BUILDDIR [N]     (N defaults to 1000000) */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cow/crc32c.h"
#include "cow/diffarea.h"

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static struct sc_diff *
open_or_die (const char *path, unsigned flags, const struct sc_origin_id *id)
{
  char err[1024];
  struct sc_diff *d;
  if (sc_diff_open (path, flags, id, 4096, &d, err, sizeof err) < 0) {
    fprintf (stderr, "startup-probe: %s\n", err);
    exit (1);
  }
  return d;
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: startup-probe DIR [N]\n");
    return 2;
  }
  uint64_t n = argc > 2 ? strtoull (argv[2], NULL, 0) : 1000000;
  char origin[4096], diff[4096];
  snprintf (origin, sizeof origin, "%s/origin", argv[1]);
  snprintf (diff, sizeof diff, "%s/diff", argv[1]);
  int fd = open (origin, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate (fd, (off_t) (n * 4096)) < 0) {
    perror (origin);
    return 1;
  }
  struct sc_origin_id id;
  sc_origin_identify (fd, origin, &id);
  unlink (diff);
  sc_diff_close (open_or_die (diff, SC_DIFF_CREATE, &id));

  /* The session that writes the records, then dies without closing. */
  pid_t pid = fork ();
  if (pid == 0) {
    struct sc_diff *d = open_or_die (diff, 0, &id);
    if (sc_diff_snapshot_create (d, "probe", NULL, NULL) < 0)
      _exit (1);
    /* The slots are never written: they read as zeros. */
    static const uint8_t zeros[4096];
    uint32_t sums[SC_COPY_SUMS_MAX];
    sc_diff_copy_sums (d, zeros, sums);
    uint64_t seq = 0;
    for (uint64_t c = 0; c < n; c++) {
      uint64_t off;
      if (sc_diff_slot_reserve (d, &off) < 0 ||
          sc_diff_copy_record (d, c, off, sums, &seq) < 0)
        _exit (1);
      if (c % 4096 == 4095)
        sc_diff_commit (d, seq);
    }
    sc_diff_commit (d, seq);
    /* Cover the reserved slots, as their data writes would have. */
    uint64_t end;
    if (sc_diff_slot_reserve (d, &end) < 0 ||
        ftruncate (sc_diff_fd (d), (off_t) end) < 0 ||
        fdatasync (sc_diff_fd (d)) < 0)
      _exit (1);
    _exit (0);                  /* an unclean stop */
  }
  int status;
  waitpid (pid, &status, 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    fprintf (stderr, "startup-probe: writing the records failed\n");
    return 1;
  }

  struct sc_diff_stats st;
  double t = now ();
  struct sc_diff *d = open_or_die (diff, SC_DIFF_RDONLY, &id);
  double ro = now () - t;
  sc_diff_stats (d, &st);
  sc_diff_close (d);
  t = now ();
  d = open_or_die (diff, 0, &id);
  double unclean = now () - t;
  sc_diff_close (d);
  t = now ();
  d = open_or_die (diff, 0, &id);
  double clean = now () - t;
  sc_diff_close (d);

  printf ("journal records %llu, copies %llu\n",
          (unsigned long long) st.journal_records,
          (unsigned long long) st.copies);
  printf ("read-only open (replay):              %.3f s\n", ro);
  printf ("read-write open after an unclean stop: %.3f s\n", unclean);
  printf ("read-write open after a clean close:   %.3f s\n", clean);
  return 0;
}
