/* Unit tests: the budget of a diff area's page cache (sc_diff_open_cache,
 * the plugin's index-cache=): one below the minimum or above the maximum
 * is refused with -EINVAL and a message, creating nothing; the budget
 * taken shows in sc_diff_stats, with the cache's figures. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/io.h"
#include "tests/unit-helpers.h"

TestSuite (diff_cache, .init = uh_setup, .fini = uh_teardown);

/* An origin of 4 MiB and its identity, for creating diff areas. */
static void
make_origin (const char *origin, struct sc_origin_id *id)
{
  uh_make_file (origin, 4 << 20, 1);
  int fd = open (origin, O_RDONLY);
  cr_assert_geq (fd, 0);
  cr_assert_eq (sc_origin_identify (fd, origin, id), 0);
  close (fd);
}

Test (diff_cache, a_budget_out_of_range_is_refused_with_a_message)
{
  uint64_t bad[] = { 1, 4096, SC_DIFF_CACHE_MIN / 2, SC_DIFF_CACHE_MIN - 1,
                     SC_DIFF_CACHE_MAX + 1, UINT64_MAX };
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  struct sc_origin_id id;
  make_origin (origin, &id);
  cr_assert_eq (SC_DIFF_CACHE_MIN, 65536);
  cr_assert_eq (SC_DIFF_CACHE_DEFAULT, 224u << 20);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct sc_diff *d = NULL;
    char err[512] = "";
    int r = sc_diff_open_cache (diff, SC_DIFF_CREATE, &id, 4096, bad[i], &d,
                                err, sizeof err);
    cr_assert_eq (r, -EINVAL, "budget %" PRIu64 ": %d", bad[i], r);
    cr_assert_null (d);
    cr_assert (strstr (err, "cache") && strstr (err, "65536"),
               "budget %" PRIu64 ": the message says what and the "
               "minimum: %s", bad[i], err);
    cr_assert_eq (access (diff, F_OK), -1, "budget %" PRIu64 " left a file",
                  bad[i]);
  }
  free (origin);
  free (diff);
}

/* Open with `budget`, make a few copies, and check the stats. */
static void
check_budget (uint64_t budget, uint64_t want_bytes)
{
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  struct sc_origin_id id;
  struct sc_diff *d = NULL;
  struct sc_snapshot_info info;
  struct sc_diff_stats st;
  char err[512] = "";
  make_origin (origin, &id);
  cr_assert_eq (sc_diff_open_cache (diff, SC_DIFF_CREATE, &id, 4096, budget,
                                    &d, err, sizeof err), 0, "%s", err);
  cr_assert_eq (sc_diff_snapshot_create (d, "s1", NULL, &info), 0);
  for (uint64_t c = 0; c < 64; c++)
    uh_copy_chunk (d, c, c + 1);
  sc_diff_stats (d, &st);
  cr_assert_eq (st.cache_budget, want_bytes, "budget %" PRIu64 ": %" PRIu64,
                budget, st.cache_budget);
  cr_assert_eq (st.cache.max_pages, want_bytes / 4096);
  cr_assert_leq (st.cache.pages, st.cache.max_pages);
  cr_assert_gt (st.cache.hits + st.cache.misses, 0,
                "the copies' checksums went through the cache");
  cr_assert_eq (sc_diff_close (d), 0);
  /* Not stored: a plain open takes the default again. */
  cr_assert_eq (sc_diff_open (diff, 0, &id, 0, &d, err, sizeof err), 0,
                "%s", err);
  sc_diff_stats (d, &st);
  cr_assert_eq (st.cache_budget, SC_DIFF_CACHE_DEFAULT);
  cr_assert_eq (st.copies, 64);
  cr_assert_eq (sc_diff_close (d), 0);
  unlink (diff);
  free (origin);
  free (diff);
}

Test (diff_cache, the_minimum_shows_in_the_stats)
{
  check_budget (SC_DIFF_CACHE_MIN, 65536);
}

Test (diff_cache, zero_is_the_default)
{
  check_budget (0, SC_DIFF_CACHE_DEFAULT);
}

Test (diff_cache, a_budget_is_rounded_down_to_whole_pages)
{
  check_budget (100 * 1024, 25 * 4096);
}

/* The fault tests' diff area: over an origin of 2 * n chunks, with the
 * smallest cache (16 pages, so the copy map's pages are read back) and
 * a snapshot s1 taken before any copy. */
struct small_area {
  char *origin, *diff;
  struct sc_origin_id id;
  struct sc_diff *d;
  struct sc_snapshot_info info;
};

static struct sc_diff *
small_area_open (struct small_area *a, uint64_t n)
{
  char err[512] = "";
  a->origin = uh_path ("origin");
  a->diff = uh_path ("diff");
  a->d = NULL;
  uh_make_file (a->origin, n * 4096 * 2, 1);
  int fd = open (a->origin, O_RDONLY);
  cr_assert_geq (fd, 0);
  cr_assert_eq (sc_origin_identify (fd, a->origin, &a->id), 0);
  close (fd);
  cr_assert_eq (sc_diff_open_cache (a->diff, SC_DIFF_CREATE, &a->id, 4096,
                                    SC_DIFF_CACHE_MIN, &a->d, err,
                                    sizeof err), 0, "%s", err);
  cr_assert_eq (sc_diff_snapshot_create (a->d, "s1", NULL, &a->info), 0);
  return a->d;
}

static void
small_area_free (struct small_area *a)
{
  free (a->origin);
  free (a->diff);
}

/* Zero copies of chunks 0..n-1: no checksums, so only the map's pages
 * are read. */
static void
zero_copies (struct sc_diff *d, uint64_t n)
{
  for (uint64_t c = 0; c < n; c++) {
    uint64_t seq;
    cr_assert_eq (sc_diff_copy_record (d, c, SC_COPY_ZERO, NULL, &seq), 0);
    cr_assert_eq (sc_diff_commit (d, seq), 0);
  }
}

/* The copy map's pages fail (reads of the scratch files fail with EIO,
 * those of the diff area go on): a snapshot read whose lookup failed
 * gets "no data" (EIO to the reader), never the origin; the diff area
 * fails (its snapshots invalid, the live volume goes on copying
 * nothing); the failure is recorded, so a reopen lists the snapshot
 * invalid. */
static int keep_fd = -1;

static int
fail_scratch_reads (const struct sc_io_req *req)
{
  return req->op == SC_IO_READ && req->fd != keep_fd ? -EIO : 0;
}

Test (diff_cache, a_failed_copy_map_fails_the_diff_area_never_serving_the_origin)
{
  enum { N = 8192 };            /* 49 leaves and 40 pages of sums: > 16 */
  struct small_area a;
  struct sc_diff *d = small_area_open (&a, N);
  struct sc_snapshot_info info = a.info;
  char err[512] = "";
  for (uint64_t c = 0; c < N; c++)
    uh_copy_chunk (d, c, c + 1);

  keep_fd = sc_diff_fd (d);
  sc_io_fault_hook = fail_scratch_reads;
  uint64_t none = 0, off;
  for (uint64_t c = 0; c < N; c++) {
    enum sc_where w = sc_diff_resolve (d, info.epoch, c, &off);
    cr_assert_neq (w, SC_WHERE_ORIGIN, "chunk %" PRIu64 ": the origin "
                   "served for a copied chunk", c);
    none += w == SC_WHERE_NONE;
  }
  sc_io_fault_hook = NULL;
  cr_assert_gt (none, 0, "a cache of 16 pages reads pages back");

  struct sc_diff_health h;
  sc_diff_health (d, &h);
  cr_assert (h.failed, "the diff area failed");
  cr_assert_eq (h.err, EIO);
  cr_assert (strstr (h.what, "copy map"), "%s", h.what);
  cr_assert (!sc_diff_needs_copy (d, N + 5), "the live volume goes on");
  (void) sc_diff_close (d);

  cr_assert_eq (sc_diff_open (a.diff, 0, &a.id, 0, &d, err, sizeof err), 0,
                "%s", err);
  cr_assert_eq (sc_diff_snapshot_lookup (d, "s1", &info), 0);
  cr_assert_neq (info.invalid_reason, SC_VALID, "s1 stays invalid");
  cr_assert_eq (sc_diff_close (d), 0);
  small_area_free (&a);
}

/* (review) The copy map's pages fail during the journal checkpoint an
 * open writes (offline: before the journal is in force, so map_failed
 * fails nothing): copymap_visit's error is not looked at (checkpoint.c
 * ckpt_copies), so the checkpoint is written with the copies visited so
 * far (none here), the superblock switches to it, and the old journal's
 * slots are freed.  The next open lists s1 valid with no copies: its
 * reads get the origin's data where it must read zeroes. */
static bool scratch_reads_fail;

static uint64_t
ckpt_now_and_arm (uint64_t live)
{
  (void) live;
  scratch_reads_fail = true;    /* from the open's checkpoint on */
  return 0;                     /* the journal is "too long": checkpoint */
}

static int
fail_unnamed_reads (const struct sc_io_req *req)
{
  struct stat st;
  if (!scratch_reads_fail || req->op != SC_IO_READ ||
      fstat (req->fd, &st) == -1 || st.st_nlink != 0)
    return 0;
  return -EIO;                  /* a scratch file (unnamed) */
}

/* Reads of the scratch files fail from now on (on) or no more (off). */
static void
unnamed_reads_fail (bool on)
{
  if (on) {
    scratch_reads_fail = true;
    sc_io_fault_hook = fail_unnamed_reads;
  } else {
    sc_io_fault_hook = NULL;
    scratch_reads_fail = false;
  }
}

Test (diff_cache, a_copy_map_failing_in_the_open_checkpoint_loses_no_copy)
{
  enum { N = 8192 };            /* 49 leaves: > 16 pages of cache */
  struct small_area a;
  struct sc_diff *d = small_area_open (&a, N);
  struct sc_snapshot_info info;
  char err[512] = "";
  zero_copies (d, N);
  cr_assert_eq (sc_diff_close (d), 0);

  sc_ckpt_limit_hook = ckpt_now_and_arm;
  sc_io_fault_hook = fail_unnamed_reads;
  int r = sc_diff_open_cache (a.diff, 0, &a.id, 0, SC_DIFF_CACHE_MIN, &d,
                              err, sizeof err);
  sc_io_fault_hook = NULL;
  sc_ckpt_limit_hook = NULL;
  cr_assert (scratch_reads_fail, "the open wrote a checkpoint");
  if (r == 0)
    (void) sc_diff_close (d);

  cr_assert_eq (sc_diff_open (a.diff, 0, &a.id, 0, &d, err, sizeof err), 0,
                "%s", err);
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  cr_assert_eq (sc_diff_snapshot_lookup (d, "s1", &info), 0);
  if (info.invalid_reason == SC_VALID) {
    uint64_t off, origin_served = 0;
    for (uint64_t c = 0; c < N; c++)
      origin_served += sc_diff_resolve (d, info.epoch, c, &off)
                       == SC_WHERE_ORIGIN;
    cr_assert_eq (origin_served, 0, "s1 is valid with %" PRIu64 " copies "
                  "of %u: %" PRIu64 " copied chunks read from the origin "
                  "(the first open %s)", st.copies, (unsigned) N,
                  origin_served, r == 0 ? "succeeded" : "failed");
  }
  cr_assert_eq (sc_diff_close (d), 0);
  small_area_free (&a);
}

/* (review) The copy map's pages fail while the changed chunks of a
 * snapshot are computed (sc_diff_changes: one copymap_visit whose error
 * changes.c does not look at): the caller, an incremental backup, must
 * get an error, never a short list ("nothing changed") it would trust. */
Test (diff_cache, a_copy_map_failing_under_a_diff_never_gives_a_short_list)
{
  enum { N = 8192 };
  struct small_area a;
  struct sc_diff *d = small_area_open (&a, N);
  zero_copies (d, N);
  struct sc_chunk_range runs[16];
  size_t n = 0;
  uint64_t next = 0;
  cr_assert_eq (sc_diff_changes (d, a.info.id, SC_DIFF_LIVE, 0, runs, 16, &n,
                                 &next), 0);
  cr_assert_eq (n, 1, "chunks 0..N-1 changed: one run");

  unnamed_reads_fail (true);
  n = 0;
  int r = sc_diff_changes (d, a.info.id, SC_DIFF_LIVE, 0, runs, 16, &n, &next);
  unnamed_reads_fail (false);
  uint64_t listed = 0;
  for (size_t i = 0; r == 0 && i < n; i++)
    listed += runs[i].count;
  cr_assert (r < 0 || listed == N, "sc_diff_changes returned %d with %"
             PRIu64 " changed chunks of %u listed", r, listed, (unsigned) N);
  (void) sc_diff_close (d);
  small_area_free (&a);
}

/* (review) A revert to s1 runs; the copy map's pages fail.  Every chunk
 * the revert has not written back must stay pending (a live read then
 * goes to the target, which is invalid now: EIO, "never guess"); a
 * pending list that comes back empty makes the live volume read the
 * origin, which holds what the revert undid (revert.c todo() takes the
 * failed lookup for "no copy"). */
Test (diff_cache, a_copy_map_failing_under_a_revert_leaves_its_chunks_pending)
{
  enum { N = 8192 };
  struct small_area a;
  struct sc_diff *d = small_area_open (&a, N);
  zero_copies (d, N);
  cr_assert_eq (sc_diff_revert_start (d, "s1", NULL, 0, NULL), 0);
  static uint64_t out[N];
  uint64_t next;
  cr_assert_eq (sc_diff_revert_pending (d, 0, N - 1, out, N, &next), N);

  unnamed_reads_fail (true);
  size_t n = 0;
  for (uint64_t c = 0; c < N; c = next)
    n += sc_diff_revert_pending (d, c, N - 1, out + n, N - n, &next);
  unnamed_reads_fail (false);
  cr_assert (sc_diff_revert_active (d), "the revert still runs");
  cr_assert_eq (n, N, "%zu of %u chunks not written back are pending: "
                "the live volume reads the others from the origin", n,
                (unsigned) N);
  (void) sc_diff_close (d);
  small_area_free (&a);
}
