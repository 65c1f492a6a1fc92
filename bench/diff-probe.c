/* Changed-block tracking at scale (issue 12's costs): the time of a full
 * paged diff with a million changed chunks, and what a checkpoint's
 * data-less marks cost in the journal and in memory.
 *
 * Two diff areas for one sparse origin of N * STRIDE 4K chunks, each
 * written by a volatile session (nothing synced but at the end, so the
 * set-up is quick) that closes cleanly:
 *
 *   DIR/diff       snapshot "a", then N copies (every STRIDE-th chunk;
 *                  slots reserved, never written: they read as zeros),
 *                  then snapshot "b".  Diffs a -> b and a -> live.
 *   DIR/diff-ckpt  checkpoint "c", then N data-less marks on the same
 *                  chunks, through sc_diff_mark_changes as the write path
 *                  records them.  Diff c -> live.
 *   DIR/diff-empty checkpoint "c" and nothing else: the baseline of the
 *                  mark costs (and of the server's memory, bench/diff-probe.sh).
 *
 * A diff is timed as the DIFF verb runs it: sc_diff_changes in pages of
 * at most 65536 runs, from chunk 0 until the end, runs that touch across
 * pages merged as the client does; the median of REPEAT.  The mark costs:
 * the diff area's used bytes before and after the marks (after the
 * journal checkpoint a clean reopen writes, and as appended before it),
 * the process's resident memory per mark (the writing session, and a
 * fresh read-only open of each diff area), and the checkpoint's metadata
 * bytes as `list` reports them.  The files stay in DIR for the CLI's
 * timings (bench/diff-probe.sh).
 *
 *   diff-probe DIR [N [STRIDE [REPEAT [PAGE]]]]   (1000000, 2, 5, 65536)
 *
 * (A PAGE other than 65536 shows how the time follows the number of
 * pages: the DIFF verb's pages are 65536 runs at most.) */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cow/diffarea.h"

#define PAGE_VERB 65536         /* the DIFF verb's page (SC_CTL_DIFF_MAX) */
#define PAGE_MAX (1u << 24)
#define MAX_REPEAT 99

/* The arguments. */
static uint64_t nchanged = 1000000, stride = 2;
static int repeat = 5;
static size_t page = PAGE_VERB;

static double
clock_s (clockid_t clock)
{
  struct timespec t;
  clock_gettime (clock, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double now (void) { return clock_s (CLOCK_MONOTONIC); }
/* This thread's CPU time: what other people's load on a shared machine
 * disturbs much less than the wall clock. */
static double cpu_now (void) { return clock_s (CLOCK_THREAD_CPUTIME_ID); }

/* VmRSS or VmHWM of this process, in KiB. */
static long
vm_kib (const char *key)
{
  char line[256];
  long v = -1;
  size_t k = strlen (key);
  FILE *f = fopen ("/proc/self/status", "r");
  if (!f)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, key, k) == 0 && line[k] == ':') {
      v = strtol (line + k + 1, NULL, 10);
      break;
    }
  fclose (f);
  return v;
}

static void
die (const char *what, int r)
{
  fprintf (stderr, "diff-probe: %s: %s\n", what, strerror (r < 0 ? -r : r));
  exit (1);
}

static struct sc_diff *
open_or_die (const char *path, unsigned flags, const struct sc_origin_id *id)
{
  char err[1024];
  struct sc_diff *d;
  if (sc_diff_open (path, flags, id, 4096, &d, err, sizeof err) < 0) {
    fprintf (stderr, "diff-probe: %s\n", err);
    exit (1);
  }
  return d;
}

static uint64_t
used_bytes (struct sc_diff *d)
{
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  return st.used_bytes;
}

static struct sc_snapshot_info
find (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info info;
  int r = sc_diff_snapshot_find (d, name, &info);
  if (r < 0)
    die (name, r);
  return info;
}

static struct sc_snapshot_info
create (struct sc_diff *d, const char *name, bool checkpoint)
{
  struct sc_snapshot_opts opts = { .checkpoint = checkpoint };
  struct sc_snapshot_info info;
  int r = sc_diff_snapshot_create (d, name, &opts, &info);
  if (r < 0)
    die (name, r);
  return info;
}

static int
dbl_cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (const double *v, int n)
{
  double sorted[MAX_REPEAT];
  memcpy (sorted, v, n * sizeof *sorted);
  qsort (sorted, n, sizeof *sorted, dbl_cmp);
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

struct diff_result {
  double ms[MAX_REPEAT], median_ms;
  double cpu_ms[MAX_REPEAT], median_cpu_ms;
  uint64_t extents, chunks, pages;
};

/* The whole diff of from -> to, paged as the DIFF verb pages it, REPEAT
 * times. */
static void
time_diff (struct sc_diff *d, uint64_t from, uint64_t to,
           struct diff_result *res)
{
  struct sc_chunk_range *out = malloc (page * sizeof *out);
  if (!out)
    die ("malloc", ENOMEM);
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  uint64_t nchunks = (st.volume_size + st.chunk_size - 1) / st.chunk_size;
  memset (res, 0, sizeof *res);
  for (int i = 0; i < repeat; i++) {
    uint64_t start = 0, next, extents = 0, chunks = 0, pages = 0;
    uint64_t last_end = UINT64_MAX;
    double t = now (), c = cpu_now ();
    for (;;) {
      size_t n;
      int r = sc_diff_changes (d, from, to, start, out, page, &n, &next);
      if (r < 0)
        die ("sc_diff_changes", r);
      pages++;
      for (size_t k = 0; k < n; k++) {
        if (out[k].first != last_end)   /* runs that touch: one extent */
          extents++;
        last_end = out[k].first + out[k].count;
        chunks += out[k].count;
      }
      if (next <= start || next >= nchunks)
        break;
      start = next;
    }
    res->ms[i] = (now () - t) * 1e3;
    res->cpu_ms[i] = (cpu_now () - c) * 1e3;
    res->extents = extents;
    res->chunks = chunks;
    res->pages = pages;
  }
  free (out);
  res->median_ms = median (res->ms, repeat);
  res->median_cpu_ms = median (res->cpu_ms, repeat);
}

static void
print_diff (const char *label, const struct diff_result *r)
{
  printf ("diff %-22s %8.1f ms median, CPU %.1f ms (%llu extents, %llu "
          "chunks, %llu pages; runs:", label, r->median_ms, r->median_cpu_ms,
          (unsigned long long) r->extents, (unsigned long long) r->chunks,
          (unsigned long long) r->pages);
  for (int i = 0; i < repeat; i++)
    printf (" %.1f", r->ms[i]);
  printf (")\n");
}

static struct sc_origin_id id;

/* Format `path` and open it for a volatile session. */
static struct sc_diff *
session (const char *path)
{
  unlink (path);
  sc_diff_close (open_or_die (path, SC_DIFF_CREATE, &id));
  return open_or_die (path, SC_DIFF_VOLATILE, &id);
}

/* End a volatile session cleanly, everything synced. */
static void
end_session (struct sc_diff *d)
{
  int r = sc_diff_sync (d);
  if (r < 0)
    die ("sc_diff_sync", r);
  if ((r = sc_diff_close (d)) < 0)
    die ("sc_diff_close", r);
}

/* DIR/diff: a, N copies, b; the diffs a -> b and a -> live. */
static void
snapshots (const char *path)
{
  struct sc_diff *d = session (path);
  create (d, "a", false);
  uint32_t sums[SC_COPY_SUMS_MAX];
  static const uint8_t zeros[4096];
  sc_diff_copy_sums (d, zeros, sums);
  uint64_t seq = 0, off;
  int r;
  for (uint64_t i = 0; i < nchanged; i++) {
    if ((r = sc_diff_slot_reserve (d, &off)) < 0 ||
        (r = sc_diff_copy_record (d, i * stride, off, sums, &seq)) < 0)
      die ("recording a copy", r);
    if (i % 4096 == 4095 && (r = sc_diff_commit (d, seq)) < 0)
      die ("sc_diff_commit", r);
  }
  /* Cover the reserved slots, as their data writes would have. */
  if ((r = sc_diff_slot_reserve (d, &off)) < 0)
    die ("sc_diff_slot_reserve", r);
  if (ftruncate (sc_diff_fd (d), (off_t) off) < 0)
    die ("ftruncate", errno);
  create (d, "b", false);
  end_session (d);

  /* As a server finds it: a read-write open (replay and checkpoint). */
  d = open_or_die (path, 0, &id);
  struct sc_snapshot_info a = find (d, "a"), b = find (d, "b");
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  printf ("diff area with snapshots: %llu copies, used %llu bytes; "
          "a holds %llu bytes\n", (unsigned long long) st.copies,
          (unsigned long long) st.used_bytes,
          (unsigned long long) a.used_bytes);
  struct diff_result res;
  time_diff (d, a.id, b.id, &res);
  print_diff ("a -> b (snapshots)", &res);
  time_diff (d, a.id, SC_DIFF_LIVE, &res);
  print_diff ("a -> live", &res);
  sc_diff_close (d);
}

/* A diff area holding checkpoint c and, with `marks`, N marks after it:
 * their journal and memory costs and the diff c -> live. */
static void
checkpoint (const char *path, bool marks)
{
  struct sc_diff *d = session (path);
  create (d, "c", true);
  end_session (d);
  /* Compact (the open writes a checkpoint of the journal). */
  d = open_or_die (path, SC_DIFF_VOLATILE, &id);
  uint64_t used0 = used_bytes (d);
  long rss0 = vm_kib ("VmRSS");
  if (!marks) {
    printf ("diff area with checkpoint c and no marks: used %llu bytes\n",
            (unsigned long long) used0);
    end_session (d);
    return;
  }
  uint64_t seq = 0;
  double t = now ();
  for (uint64_t i = 0; i < nchanged; i++) {
    uint64_t s;
    int r = sc_diff_mark_changes (d, i * stride, i * stride, &s);
    if (r < 0)
      die ("sc_diff_mark_changes", r);
    if (s == 0) {
      fprintf (stderr, "diff-probe: chunk %llu: no mark recorded\n",
               (unsigned long long) (i * stride));
      exit (1);
    }
    seq = s;
    if (i % 4096 == 4095 && (r = sc_diff_commit (d, seq)) < 0)
      die ("sc_diff_commit", r);
  }
  double mark_s = now () - t;
  uint64_t used_appended = used_bytes (d);
  long rss1 = vm_kib ("VmRSS");
  end_session (d);

  d = open_or_die (path, 0, &id);
  uint64_t used1 = used_bytes (d);
  struct sc_snapshot_info *list;
  size_t nl;
  int r = sc_diff_snapshot_list (d, &list, &nl);
  if (r < 0 || nl != 1 || !list[0].checkpoint)
    die ("sc_diff_snapshot_list", r < 0 ? r : -EPROTO);
  uint64_t meta = list[0].meta_bytes, cid = list[0].id;
  free (list);
  printf ("marks: %llu recorded in %.2f s (volatile session)\n",
          (unsigned long long) nchanged, mark_s);
  printf ("used bytes: %llu before, %llu after the marks as appended, "
          "%llu after a journal checkpoint\n", (unsigned long long) used0,
          (unsigned long long) used_appended, (unsigned long long) used1);
  printf ("journal bytes per mark: %.1f (after a checkpoint), %.1f (as "
          "appended)\n", (double) (used1 - used0) / nchanged,
          (double) (used_appended - used0) / nchanged);
  printf ("list: checkpoint c meta %llu bytes (%.1f per mark)\n",
          (unsigned long long) meta, (double) meta / nchanged);
  printf ("session RSS: %ld KiB before, %ld KiB after the marks: %.1f B "
          "per mark\n", rss0, rss1, (rss1 - rss0) * 1024.0 / nchanged);
  struct diff_result res;
  time_diff (d, cid, SC_DIFF_LIVE, &res);
  print_diff ("c -> live (checkpoint)", &res);
  sc_diff_close (d);
}

/* What a child tells its parent (a shared mapping). */
static long *shared;

/* The resident memory of a fresh read-only open of `path`, in KiB, into
 * *shared. */
static void
open_rss (const char *path)
{
  long before = vm_kib ("VmRSS");
  struct sc_diff *d = open_or_die (path, SC_DIFF_RDONLY, &id);
  *shared = vm_kib ("VmRSS") - before;
  sc_diff_close (d);
}

/* Each phase in a child of its own, so that its memory figures start
 * from a small process. */
static void
in_child (void (*fn) (const char *, bool), const char *path, bool arg)
{
  fflush (stdout);
  pid_t pid = fork ();
  if (pid < 0)
    die ("fork", errno);
  if (pid == 0) {
    fn (path, arg);
    fflush (stdout);
    _exit (0);
  }
  int status;
  if (waitpid (pid, &status, 0) < 0 || !WIFEXITED (status) ||
      WEXITSTATUS (status) != 0) {
    fprintf (stderr, "diff-probe: the phase on %s failed\n", path);
    exit (1);
  }
}

static void
snapshots_phase (const char *path, bool unused)
{
  (void) unused;
  snapshots (path);
}

static void
rss_phase (const char *path, bool unused)
{
  (void) unused;
  open_rss (path);
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: diff-probe DIR [N [STRIDE [REPEAT [PAGE]]]]\n");
    return 2;
  }
  if (argc > 2)
    nchanged = strtoull (argv[2], NULL, 0);
  if (argc > 3)
    stride = strtoull (argv[3], NULL, 0);
  if (argc > 4)
    repeat = atoi (argv[4]);
  if (argc > 5)
    page = strtoull (argv[5], NULL, 0);
  if (nchanged == 0 || stride == 0 || repeat < 1 || repeat > MAX_REPEAT ||
      page == 0 || page > PAGE_MAX) {
    fprintf (stderr, "diff-probe: N and STRIDE must be > 0, REPEAT in "
             "1..%d, PAGE in 1..%d\n", MAX_REPEAT, PAGE_MAX);
    return 2;
  }
  char origin[4096], diff[4096], ckpt[4096], empty[4096];
  snprintf (origin, sizeof origin, "%s/origin", argv[1]);
  snprintf (diff, sizeof diff, "%s/diff", argv[1]);
  snprintf (ckpt, sizeof ckpt, "%s/diff-ckpt", argv[1]);
  snprintf (empty, sizeof empty, "%s/diff-empty", argv[1]);
  int fd = open (origin, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate (fd, (off_t) (nchanged * stride * 4096)) < 0) {
    perror (origin);
    return 1;
  }
  sc_origin_identify (fd, origin, &id);
  close (fd);
  printf ("origin: %llu 4K chunks (%llu bytes, sparse); %llu changed "
          "chunks, one every %llu; pages of %zu runs; median of %d\n",
          (unsigned long long) (nchanged * stride),
          (unsigned long long) (nchanged * stride * 4096),
          (unsigned long long) nchanged, (unsigned long long) stride, page,
          repeat);

  in_child (snapshots_phase, diff, false);
  in_child (checkpoint, empty, false);
  in_child (checkpoint, ckpt, true);
  shared = mmap (NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED)
    die ("mmap", errno);
  in_child (rss_phase, empty, false);
  long rss_empty = *shared;
  in_child (rss_phase, ckpt, false);
  long rss_ckpt = *shared;
  printf ("read-only open RSS: %ld KiB with no marks, %ld KiB with the "
          "marks: %.1f B per mark\n", rss_empty, rss_ckpt,
          (rss_ckpt - rss_empty) * 1024.0 / nchanged);
  return 0;
}
