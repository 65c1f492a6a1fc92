/* Unit tests: the checksum store (cow/sums.c), on disk behind a bounded
 * page cache: set, clear, lookups and the slot-order walk against a plain
 * reference under random operations, with a cache far smaller than the
 * store; entries survive eviction; a hole reads as absent; a failed cache
 * or a wrong page turns into errors, never into wrong sums; a full file
 * system fails the reservation alone; in a diff area, a read whose sums
 * cannot be had fails with EIO without damaging anything, and the walk of
 * the scrub sees every copy. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"
#include "cow/pagecache.h"
#include "cow/sums.h"
#include "tests/unit-helpers.h"

TestSuite (sums, .init = uh_setup, .fini = uh_teardown);

/* A store in a cache of `pages` pages of its own. */
static struct sc_pc *
store_new (struct sc_sums *s, uint32_t chunk_size, uint64_t pages)
{
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (pages * SC_PC_PAGE, &pc), 0);
  int fd = sc_pc_scratch_file (uh_dir);
  cr_assert_geq (fd, 0, "sc_pc_scratch_file: %d", fd);
  cr_assert_eq (sc_sums_init (s, chunk_size, pc, fd), 0);
  return pc;
}

static void
store_free (struct sc_sums *s, struct sc_pc *pc)
{
  sc_sums_free (s);
  sc_pc_free (pc);
}

static void
put (struct sc_sums *s, uint64_t slot, uint64_t chunk, uint32_t epoch,
     const uint32_t *sums, bool whole)
{
  cr_assert_eq (sc_sums_reserve (s, slot), 0);
  cr_assert_eq (sc_sums_set (s, slot, chunk, epoch, sums, whole), 0);
}

/* The sums a test gives slot `slot` of chunk `chunk`. */
static void
fake_sums (uint64_t slot, uint64_t chunk, uint32_t *out)
{
  for (uint32_t k = 0; k < SC_SUMS_MAX; k++)
    out[k] = (uint32_t) (slot * 2654435761u + chunk * 40503u + k);
}

/* ---- the reference: one record per candidate slot ---------------------- */

/* Candidate slots: 0 .. LOW - 1 (dense: full and partial pages), and
 * HIGH more in three bands far above them, 7 apart (sparse pages, far
 * from the others). */
#define LOW 30000u
#define HIGH 2000u
#define NCAND (LOW + HIGH)

static uint64_t
cand_slot (uint32_t i)
{
  if (i < LOW)
    return i;
  uint64_t k = i - LOW;
  return k * 7 + (1 + k % 3) * 4000000u;   /* 7 * HIGH < LOW */
}

struct ref {
  bool used;
  bool whole;
  uint64_t chunk;
  uint32_t epoch;
  uint32_t sums[SC_SUMS_MAX];
};

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* Every lookup, and the walk in slot order, agree with the reference;
 * the store's own RAM is its bitmap: a bit per page up to the highest
 * one used (rounded up to a power of two). */
static void
assert_same (struct sc_sums *s, const struct ref *ref)
{
  uint64_t *want = malloc (NCAND * sizeof *want);
  cr_assert_not_null (want);
  size_t n = 0;
  for (uint32_t i = 0; i < NCAND; i++) {
    struct sc_sums_entry e;
    int got = sc_sums_get (s, cand_slot (i), &e);
    cr_assert_eq (got, ref[i].used, "slot %lu: found %d, expected %d",
                  (unsigned long) cand_slot (i), got, ref[i].used);
    if (!got)
      continue;
    want[n++] = cand_slot (i);
    cr_assert_eq (e.chunk, ref[i].chunk);
    cr_assert_eq (e.epoch, ref[i].epoch);
    cr_assert_eq (e.whole, ref[i].whole);
    cr_assert_arr_eq (e.sums, ref[i].sums,
                      (e.whole ? 1 : s->nsums) * sizeof e.sums[0]);
  }
  cr_assert_eq (s->count, n);
  qsort (want, n, sizeof *want, cmp_u64);
  uint64_t slot = 0;
  for (size_t k = 0; k < n; k++) {
    cr_assert_eq (sc_sums_next (s, slot, &slot), 1);
    cr_assert_eq (slot, want[k], "walk: %lu, expected %lu",
                  (unsigned long) slot, (unsigned long) want[k]);
    slot++;
  }
  cr_assert_eq (sc_sums_next (s, slot, &slot), 0);
  free (want);

  uint64_t pages = cand_slot (NCAND - 1) / s->per_page + 1;
  cr_assert_leq (sc_sums_bytes (s), 2 * (pages / 64 + 1) * 8 + 128,
                 "%zu bytes for %lu pages", sc_sums_bytes (s),
                 (unsigned long) pages);
  cr_assert_eq (sc_sums_error (s), 0);
}

static void
model_run (uint32_t chunk_size, uint64_t seed)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, chunk_size, SC_PC_MIN_PAGES);
  struct ref *ref = calloc (NCAND, sizeof *ref);
  cr_assert_not_null (ref);
  uint64_t rng = seed;
  size_t used = 0, peak = 0;
  /* The used candidates, to pick clears among them. */
  uint32_t *list = malloc (NCAND * sizeof *list);
  uint32_t *where = malloc (NCAND * sizeof *where);
  cr_assert (list && where);

  /* Phases: fill to 20,000 entries, empty nearly all, fill again, empty
   * completely; the mix of sets and clears follows the phase. */
  static const struct { unsigned set_pct; size_t until; bool up; } phase[] = {
    { 80, 20000, true }, { 30, 50, false }, { 70, 12000, true },
    { 20, 0, false },
  };
  for (size_t p = 0; p < sizeof phase / sizeof phase[0]; p++) {
    unsigned steps = 0;
    while (phase[p].up ? used < phase[p].until : used > phase[p].until) {
      uint32_t i = (uint32_t) uh_rand_below (&rng, NCAND);
      unsigned op = (unsigned) uh_rand_below (&rng, 100);
      if (op >= phase[p].set_pct && used && uh_rand_below (&rng, 4))
        i = list[uh_rand_below (&rng, used)];
      uint64_t slot = cand_slot (i);
      if (op < phase[p].set_pct) {
        struct ref r = { .used = true,
                         .whole = uh_rand_below (&rng, 8) == 0,
                         .chunk = uh_rand (&rng) >> 12,
                         .epoch = (uint32_t) uh_rand_below (&rng, 1000) + 1 };
        for (uint32_t k = 0; k < SC_SUMS_MAX; k++)
          r.sums[k] = r.whole && k ? 0 : (uint32_t) uh_rand (&rng);
        put (&s, slot, r.chunk, r.epoch, r.sums, r.whole);
        if (!ref[i].used) {
          where[i] = (uint32_t) used;
          list[used++] = i;
        }
        ref[i] = r;
      }
      else {
        /* Mostly the copy the slot holds; else another one (another
         * chunk, or the same chunk of another epoch), which must leave
         * the slot alone. */
        bool right = ref[i].used && uh_rand_below (&rng, 5) != 0;
        uint64_t chunk = right ? ref[i].chunk : uh_rand (&rng) >> 12;
        uint32_t epoch = right ? ref[i].epoch : ref[i].epoch + 1;
        if (ref[i].used && uh_rand_below (&rng, 2))
          chunk = ref[i].chunk;
        sc_sums_clear (&s, slot, chunk, epoch);
        if (right) {
          ref[i].used = false;
          list[where[i]] = list[--used];
          where[list[where[i]]] = where[i];
        }
      }
      struct sc_sums_entry e;
      uint32_t probe = (uint32_t) uh_rand_below (&rng, NCAND);
      cr_assert_eq (sc_sums_get (&s, cand_slot (probe), &e), ref[probe].used);
      if (used > peak)
        peak = used;
      if (++steps % 4096 == 0)
        assert_same (&s, ref);
    }
    assert_same (&s, ref);
  }
  cr_assert_geq (peak, 20000);
  cr_assert_eq (s.count, 0);
  uint64_t none;
  cr_assert_eq (sc_sums_next (&s, 0, &none), 0);
  struct sc_pc_stats st;
  sc_pc_stats (pc, &st);
  cr_assert_leq (st.pages, SC_PC_MIN_PAGES);
  cr_assert_gt (st.writebacks, 0, "the store never left the cache");
  store_free (&s, pc);
  free (ref);
  free (list);
  free (where);
}

Test (sums, random_sets_and_clears_match_a_reference_64k)
{
  model_run (64 * 1024, 11);
}

Test (sums, random_sets_and_clears_match_a_reference_4k)
{
  model_run (4096, 12);
}

Test (sums, random_sets_and_clears_match_a_reference_1m)
{
  model_run (1024 * 1024, 13);
}

/* Whatever lies between two copies, the walk goes from one to the next:
 * within a page, to the next page, over runs of empty pages (short and
 * longer than a bitmap word). */
Test (sums, the_walk_finds_the_next_copy_across_any_gap)
{
  uint32_t sums[SC_SUMS_MAX] = { 0 };
  for (uint64_t gap = 0; gap < 140; gap += gap < 4 ? 1 : 17)
    for (uint64_t extra = 0; extra < 3; extra++) {
      struct sc_sums s;
      struct sc_pc *pc = store_new (&s, 4096, SC_PC_MIN_PAGES);
      uint64_t pp = s.per_page;
      /* Copies in pages 0 .. extra, then one `gap` pages further. */
      uint64_t far = (extra + gap) * pp + 5;
      for (uint64_t slot = 0; slot <= extra * pp; slot += pp)
        put (&s, slot, 1, 1, sums, false);
      put (&s, far, 1, 1, sums, false);
      uint64_t next;
      for (uint64_t from = extra * pp + 1; from <= far; from++) {
        cr_assert_eq (sc_sums_next (&s, from, &next), 1);
        cr_assert_eq (next, far, "gap %lu, extra %lu, from %lu",
                      (unsigned long) gap, (unsigned long) extra,
                      (unsigned long) from);
      }
      cr_assert_eq (sc_sums_next (&s, far + 1, &next), 0);
      cr_assert_eq (sc_sums_next (&s, UINT64_MAX - 1, &next), 0);
      store_free (&s, pc);
    }
}

/* ---- on disk, behind the cache ----------------------------------------- */

/* 100,000 copies through a cache of 16 pages (about 2,000 pages of
 * entries at 64K chunks): every entry comes back from the file, clears
 * and reuses land, and the walk sees them all in order. */
Test (sums, entries_survive_eviction_with_a_tiny_cache)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  cr_assert_eq (s.stride * sizeof (uint32_t), 80);
  cr_assert_eq (s.per_page, 51);
  const uint64_t n = 100000;
  uint32_t sums[SC_SUMS_MAX];
  for (uint64_t slot = 0; slot < n; slot++) {
    fake_sums (slot, slot * 3, sums);
    put (&s, slot, slot * 3, 7, sums, false);
  }
  cr_assert_eq (s.count, n);
  struct sc_sums_entry e;
  for (uint64_t slot = 0; slot < n; slot++) {
    fake_sums (slot, slot * 3, sums);
    cr_assert_eq (sc_sums_get (&s, slot, &e), 1);
    cr_assert_eq (e.chunk, slot * 3);
    cr_assert_eq (e.epoch, 7);
    cr_assert_not (e.whole);
    cr_assert_arr_eq (e.sums, sums, sizeof sums, "slot %lu",
                      (unsigned long) slot);
  }
  /* Clear every third, then give every sixth to another copy. */
  for (uint64_t slot = 0; slot < n; slot += 3)
    sc_sums_clear (&s, slot, slot * 3, 7);
  cr_assert_eq (s.count, n - (n + 2) / 3);
  for (uint64_t slot = 0; slot < n; slot += 6) {
    fake_sums (slot, slot + 1, sums);
    put (&s, slot, slot + 1, 9, sums, false);
  }
  uint64_t slot = 0, seen = 0;
  int r;
  while ((r = sc_sums_next (&s, slot, &slot)) == 1) {
    bool reused = slot % 6 == 0;
    cr_assert (slot % 3 != 0 || reused, "slot %lu was cleared",
               (unsigned long) slot);
    uint64_t chunk = reused ? slot + 1 : slot * 3;
    fake_sums (slot, chunk, sums);
    cr_assert_eq (sc_sums_get (&s, slot, &e), 1);
    cr_assert_eq (e.chunk, chunk);
    cr_assert_eq (e.epoch, reused ? 9 : 7);
    cr_assert_arr_eq (e.sums, sums, sizeof sums);
    seen++;
    slot++;
  }
  cr_assert_eq (r, 0);
  cr_assert_eq (seen, s.count);
  cr_assert_eq (seen, n - (n + 2) / 3 + (n + 5) / 6);

  struct sc_pc_stats st;
  sc_pc_stats (pc, &st);
  cr_assert_leq (st.pages, SC_PC_MIN_PAGES);
  cr_assert_geq (st.writebacks, n / s.per_page - SC_PC_MIN_PAGES);
  cr_assert_leq (sc_sums_bytes (&s), 512, "%zu bytes of bitmap",
                 sc_sums_bytes (&s));
  store_free (&s, pc);
}

Test (sums, a_slot_cleared_is_absent_and_can_be_reused)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 4096, SC_PC_MIN_PAGES);
  uint32_t a[SC_SUMS_MAX] = { 0xaaaa }, b[SC_SUMS_MAX] = { 0xbbbb };
  struct sc_sums_entry e;
  put (&s, 10, 100, 1, a, false);
  /* Another copy's clear leaves it alone. */
  sc_sums_clear (&s, 10, 100, 2);
  sc_sums_clear (&s, 10, 101, 1);
  cr_assert_eq (sc_sums_get (&s, 10, &e), 1);
  sc_sums_clear (&s, 10, 100, 1);
  cr_assert_eq (sc_sums_get (&s, 10, &e), 0);
  cr_assert_eq (s.count, 0);
  uint64_t next;
  cr_assert_eq (sc_sums_next (&s, 0, &next), 0);
  put (&s, 10, 200, 3, b, true);
  cr_assert_eq (sc_sums_get (&s, 10, &e), 1);
  cr_assert_eq (e.chunk, 200);
  cr_assert_eq (e.epoch, 3);
  cr_assert (e.whole);
  cr_assert_eq (e.sums[0], 0xbbbb);
  cr_assert_eq (s.count, 1);
  /* A set over a present entry replaces it, counted once. */
  put (&s, 10, 300, 4, a, false);
  cr_assert_eq (s.count, 1);
  cr_assert_eq (sc_sums_get (&s, 10, &e), 1);
  cr_assert_eq (e.chunk, 300);
  cr_assert_not (e.whole);
  store_free (&s, pc);
}

Test (sums, a_hole_reads_as_absent)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  uint32_t sums[SC_SUMS_MAX] = { 1 };
  struct sc_sums_entry e;
  /* Nothing at all; then a page with one entry, pages never written
   * below it, and a slot reserved but never set. */
  cr_assert_eq (sc_sums_get (&s, 0, &e), 0);
  put (&s, 5 * s.per_page + 7, 1, 1, sums, false);
  cr_assert_eq (sc_sums_reserve (&s, 2 * s.per_page), 0);
  for (uint64_t slot = 0; slot < 7 * s.per_page; slot++)
    cr_assert_eq (sc_sums_get (&s, slot, &e), slot == 5 * s.per_page + 7,
                  "slot %lu", (unsigned long) slot);
  cr_assert_eq (sc_sums_get (&s, UINT64_MAX, &e), 0);
  /* Read from the file, not the cache: the same. */
  for (uint64_t slot = 100 * s.per_page; slot < 200 * s.per_page;
       slot += s.per_page)
    put (&s, slot, 2, 2, sums, false);
  for (uint64_t slot = 0; slot < 7 * s.per_page; slot++)
    cr_assert_eq (sc_sums_get (&s, slot, &e), slot == 5 * s.per_page + 7);
  cr_assert_eq (sc_sums_error (&s), 0);
  store_free (&s, pc);
}

/* ---- errors ------------------------------------------------------------ */

static int fail_op = -1, fail_errno;

static int
fault (const struct sc_io_req *req)
{
  return (int) req->op == fail_op ? -fail_errno : 0;
}

/* Fill `n` slots (more pages than the cache holds). */
static void
fill (struct sc_sums *s, uint64_t n)
{
  uint32_t sums[SC_SUMS_MAX];
  for (uint64_t slot = 0; slot < n; slot++) {
    fake_sums (slot, slot, sums);
    put (s, slot, slot, 1, sums, false);
  }
}

/* Once the cache fails, the store answers nothing: no entry, no "none",
 * no end of the walk, no set. */
static void
assert_failed (struct sc_sums *s, int err)
{
  struct sc_sums_entry e;
  uint32_t sums[SC_SUMS_MAX] = { 0 };
  uint64_t next;
  cr_assert_eq (sc_sums_error (s), err);
  cr_assert_eq (sc_sums_get (s, 0, &e), -err);          /* was present */
  cr_assert_eq (sc_sums_get (s, 1u << 30, &e), -err);   /* never was */
  cr_assert_eq (sc_sums_next (s, 0, &next), -err);
  cr_assert_eq (sc_sums_next (s, 1u << 30, &next), -err);
  cr_assert_eq (sc_sums_reserve (s, 3), -err);
  cr_assert_eq (sc_sums_set (s, 3, 3, 1, sums, false), -err);
  sc_sums_clear (s, 0, 0, 1);
  cr_assert_eq (sc_sums_error (s), err);
}

Test (sums, a_failed_read_of_the_cache_is_an_error_not_a_wrong_answer)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  fill (&s, 40 * s.per_page);
  fail_op = SC_IO_READ;
  fail_errno = EIO;
  sc_io_fault_hook = fault;
  struct sc_sums_entry e;
  /* Slot 0's page was evicted long ago: it must be read. */
  cr_assert_eq (sc_sums_get (&s, 0, &e), -EIO);
  sc_io_fault_hook = NULL;
  assert_failed (&s, EIO);
  store_free (&s, pc);
}

Test (sums, a_failed_write_back_fails_the_store)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  fill (&s, 40 * s.per_page);
  fail_op = SC_IO_WRITE;
  fail_errno = EIO;
  sc_io_fault_hook = fault;
  /* The walk loads old pages, evicting dirty ones. */
  uint64_t slot = 0;
  int r;
  while ((r = sc_sums_next (&s, slot, &slot)) == 1)
    slot++;
  sc_io_fault_hook = NULL;
  cr_assert_eq (r, -EIO, "the walk ended with %d", r);
  assert_failed (&s, EIO);
  store_free (&s, pc);
}

Test (sums, a_page_that_comes_back_wrong_is_an_error_not_a_wrong_sum)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  fill (&s, 3 * s.per_page);
  /* A sum of slot 2 (page 0) changes behind the store's back. */
  void *p;
  cr_assert_eq (sc_pc_get (pc, s.file, 0, true, &p), 0);
  ((uint8_t *) p)[2 * s.stride * 4 + 12 + 5] ^= 0x10;
  sc_pc_put (pc, s.file, 0);
  struct sc_sums_entry e;
  cr_assert_eq (sc_sums_get (&s, 1, &e), 1);    /* its neighbour is fine */
  cr_assert_eq (sc_sums_get (&s, 2, &e), -EIO);
  assert_failed (&s, EIO);
  store_free (&s, pc);
}

/* A full file system fails no reservation (a copy would fail with it,
 * and a snapshot with the copy, although the diff area had room): the
 * page waits in memory for its space (cow/pagecache.h). */
Test (sums, a_full_file_system_fails_no_reservation)
{
  struct sc_sums s;
  struct sc_pc *pc = store_new (&s, 64 * 1024, SC_PC_MIN_PAGES);
  fill (&s, 10);
  fail_op = SC_IO_FALLOCATE;
  fail_errno = ENOSPC;
  sc_io_fault_hook = fault;
  cr_assert_eq (sc_sums_reserve (&s, 10 * s.per_page), 0);
  cr_assert_eq (sc_sums_reserve (&s, 11), 0);     /* its page has room */
  cr_assert_eq (sc_sums_error (&s), 0);
  uint32_t sums[SC_SUMS_MAX] = { 4 };
  cr_assert_eq (sc_sums_set (&s, 11, 11, 1, sums, false), 0);
  put (&s, 10 * s.per_page, 5, 1, sums, false);
  sc_io_fault_hook = NULL;
  struct sc_sums_entry e;
  cr_assert_eq (sc_sums_get (&s, 10 * s.per_page, &e), 1);
  cr_assert_eq (s.count, 12);
  store_free (&s, pc);
}

/* ---- in a diff area ---------------------------------------------------- */

/* The reproducer of the review: many copies of an old snapshot, one of a
 * newer one in a slot above them, the old snapshot deleted.  The store
 * keeps one entry's worth, live and after a restart (whose replay sees
 * every copy before the old ones are dropped). */
#define CS (64u * 1024u)
#define NCOPIES 2000u

static size_t
sums_bytes (struct sc_diff *d)
{
  return sc_sums_bytes (&d->sums);
}

/* Snapshot `name` reads `want` (a chunk) for `chunk`, verified. */
static void
assert_reads_chunk (struct sc_diff *d, const char *name, uint64_t chunk,
                    const uint8_t *want)
{
  struct sc_snapshot_info s = uh_find (d, name);
  uint64_t off;
  uint8_t *got = malloc (CS);
  cr_assert_not_null (got);
  cr_assert_eq (sc_diff_snapshot_get (d, s.id, NULL), 0);
  cr_assert_eq (sc_diff_resolve (d, s.epoch, chunk, &off), SC_WHERE_DIFF);
  struct sc_copy_io io = { .offset = off, .buf = got, .len = CS };
  cr_assert_eq (sc_diff_copy_read (d, &io, 1), 0);
  sc_diff_snapshot_put (d, s.id);
  cr_assert_arr_eq (got, want, CS);
  free (got);
}

Test (sums, a_diff_area_keeps_sums_for_its_kept_copies_only)
{
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  int fd = open (origin, O_RDWR | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (ftruncate (fd, (off_t) (NCOPIES + 16) * CS), 0);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (fd, origin, &id), 0);
  struct sc_diff *d;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, &id, CS, &d, err,
                              sizeof err), 0, "%s", err);

  uint8_t *chunk = calloc (1, CS);
  cr_assert_not_null (chunk);
  chunk[0] = 1;                 /* a data copy is never all zeros */
  uint32_t sums[SC_COPY_SUMS_MAX];
  sc_diff_copy_sums (d, chunk, sums);
  uint64_t seq = 0, off = 0;
  uh_snap (d, "s1");
  for (uint64_t c = 0; c < NCOPIES; c++) {
    cr_assert_eq (sc_diff_slot_reserve (d, &off), 0);
    cr_assert_eq (sc_diff_copy_record (d, c, off, sums, &seq), 0);
  }
  cr_assert_eq (sc_diff_commit (d, seq), 0);
  cr_assert_eq (d->sums.count, NCOPIES);
  uh_snap (d, "s2");
  cr_assert_eq (sc_diff_slot_reserve (d, &off), 0);
  cr_assert_eq (pwrite (sc_diff_fd (d), chunk, CS, (off_t) off),
                (ssize_t) CS);
  cr_assert_eq (sc_diff_copy_record (d, 0, off, sums, &seq), 0);
  cr_assert_eq (sc_diff_commit (d, seq), 0);
  cr_assert_geq (off / CS, NCOPIES);

  cr_assert_eq (sc_diff_snapshot_delete (d, "s1"), 0);
  cr_assert_eq (uh_stats (d).data_slots, 1);
  size_t small = 1024;
  cr_assert_leq (sums_bytes (d), small, "live: %zu bytes for one copy",
                 sums_bytes (d));
  cr_assert_eq (sc_diff_close (d), 0);

  /* Read-only, the whole journal is replayed (no checkpoint is written);
   * read-write, the open's checkpoint is replayed the next time. */
  static const unsigned flags[] = { SC_DIFF_RDONLY, 0, SC_DIFF_RDONLY };
  for (size_t i = 0; i < 3; i++) {
    cr_assert_eq (sc_diff_open (diff, flags[i], &id, CS, &d, err,
                                sizeof err), 0, "%s", err);
    cr_assert_eq (uh_stats (d).data_slots, 1);
    cr_assert_leq (sums_bytes (d), small, "open %zu: %zu bytes for one copy",
                   i, sums_bytes (d));
    assert_reads_chunk (d, "s2", 0, chunk);
    cr_assert_eq (sc_diff_close (d), 0);
  }
  free (chunk);
  close (fd);
  free (origin);
  free (diff);
}

/* A diff area with `n` data copies of s1 (chunk c holds byte c + 1 at
 * its start), made and committed. */
static struct sc_diff *
area_with_copies (const char *name, uint64_t n, struct sc_origin_id *id)
{
  char *origin = uh_path ("origin"), *diff = uh_path (name);
  int fd = open (origin, O_RDWR | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (ftruncate (fd, (off_t) (n + 16) * CS), 0);
  cr_assert_eq (sc_origin_identify (fd, origin, id), 0);
  close (fd);
  struct sc_diff *d;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, id, CS, &d, err,
                              sizeof err), 0, "%s", err);
  uint8_t *chunk = calloc (1, CS);
  cr_assert_not_null (chunk);
  uint32_t sums[SC_COPY_SUMS_MAX];
  uint64_t seq = 0, off;
  uh_snap (d, "s1");
  for (uint64_t c = 0; c < n; c++) {
    chunk[0] = (uint8_t) (c + 1);
    chunk[CS - 1] = (uint8_t) (c >> 8);
    sc_diff_copy_sums (d, chunk, sums);
    cr_assert_eq (sc_diff_slot_reserve (d, &off), 0);
    cr_assert_eq (pwrite (sc_diff_fd (d), chunk, CS, (off_t) off),
                  (ssize_t) CS);
    cr_assert_eq (sc_diff_copy_record (d, c, off, sums, &seq), 0);
  }
  cr_assert_eq (sc_diff_commit (d, seq), 0);
  free (chunk);
  free (origin);
  free (diff);
  return d;
}

/* The scrub's walk (sc_diff_verify_next, which check --data also uses)
 * visits every copy once, in slot order, across many pages of entries. */
Test (sums, the_scrub_walk_sees_every_copy_in_slot_order)
{
  struct sc_origin_id id;
  const uint64_t n = 300;       /* six pages of entries at 64K */
  struct sc_diff *d = area_with_copies ("diff", n, &id);
  uint8_t *buf = malloc (CS);
  bool *seen = calloc (n, sizeof *seen);
  cr_assert (buf && seen);
  struct sc_copy_verify v;
  uint64_t slot = 0, count = 0, last = 0;
  int r;
  while ((r = sc_diff_verify_next (d, slot, buf, &v)) == 1) {
    cr_assert (count == 0 || v.slot > last);
    cr_assert_lt (v.chunk, n);
    cr_assert_not (seen[v.chunk], "chunk %lu twice", (unsigned long) v.chunk);
    cr_assert_not (v.damaged);
    cr_assert_eq (buf[0], (uint8_t) (v.chunk + 1));
    seen[v.chunk] = true;
    last = v.slot;
    slot = v.slot + 1;
    count++;
  }
  cr_assert_eq (r, 0);
  cr_assert_eq (count, n);
  cr_assert_eq (uh_stats (d).data_slots, n);
  free (buf);
  free (seen);
  cr_assert_eq (sc_diff_close (d), 0);
}

/* When the store cannot give a slot's sums, the read fails with EIO, and
 * nothing is taken for damage: the snapshot stays valid, copies are still
 * recorded, and after a restart (the store made anew from the journal)
 * it reads fine, the later copy too. */
Test (sums, a_failed_store_fails_reads_and_damages_nothing)
{
  struct sc_origin_id id;
  struct sc_diff *d = area_with_copies ("diff", 100, &id);
  uint8_t *want = calloc (1, CS);
  cr_assert_not_null (want);
  want[0] = 6;                  /* chunk 5 */
  assert_reads_chunk (d, "s1", 5, want);

  /* The entry of chunk 5's slot goes wrong in the cache. */
  struct sc_snapshot_info s = uh_find (d, "s1");
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (d, s.epoch, 5, &off), SC_WHERE_DIFF);
  uint64_t slot = off / CS;
  void *p;
  cr_assert_eq (sc_pc_get (d->pc, d->sums.file, slot / d->sums.per_page,
                           true, &p), 0);
  ((uint8_t *) p)[(slot % d->sums.per_page) * d->sums.stride * 4 + 20] ^= 1;
  sc_pc_put (d->pc, d->sums.file, slot / d->sums.per_page);

  uint8_t *got = malloc (CS);
  cr_assert_not_null (got);
  cr_assert_eq (sc_diff_snapshot_get (d, s.id, NULL), 0);
  struct sc_copy_io io = { .offset = off, .buf = got, .len = CS };
  cr_assert_eq (sc_diff_copy_read (d, &io, 1), -EIO);
  /* Every other slot too: the store has failed. */
  cr_assert_eq (sc_diff_resolve (d, s.epoch, 7, &off), SC_WHERE_DIFF);
  io = (struct sc_copy_io) { .offset = off, .buf = got, .len = 4096 };
  cr_assert_eq (sc_diff_copy_read (d, &io, 1), -EIO);
  sc_diff_snapshot_put (d, s.id);
  struct sc_copy_verify v;
  cr_assert_eq (sc_diff_verify_next (d, 0, got, &v), -EIO);
  cr_assert (v.walk_failed, "the scrub and check would carry on forever");

  cr_assert_eq (uh_find (d, "s1").invalid_reason, SC_VALID);
  cr_assert_eq (uh_stats (d).checksum_errors, 0);
  cr_assert_eq (uh_stats (d).invalidations, 0);

  /* Copies go on being made (the record carries the sums). */
  uint8_t *later = calloc (1, CS);
  cr_assert_not_null (later);
  later[0] = 0xee;
  uint32_t sums[SC_COPY_SUMS_MAX];
  sc_diff_copy_sums (d, later, sums);
  uint64_t seq = 0;
  cr_assert_eq (sc_diff_slot_reserve (d, &off), 0);
  cr_assert_eq (pwrite (sc_diff_fd (d), later, CS, (off_t) off), (ssize_t) CS);
  cr_assert_eq (sc_diff_copy_record (d, 110, off, sums, &seq), 0);
  cr_assert_eq (sc_diff_commit (d, seq), 0);
  cr_assert_eq (uh_find (d, "s1").invalid_reason, SC_VALID);
  cr_assert_eq (sc_diff_close (d), 0);

  char *diff = uh_path ("diff");
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_RDONLY, &id, CS, &d, err,
                              sizeof err), 0, "%s", err);
  cr_assert_eq (uh_find (d, "s1").invalid_reason, SC_VALID);
  assert_reads_chunk (d, "s1", 5, want);
  assert_reads_chunk (d, "s1", 110, later);
  cr_assert_eq (sc_diff_close (d), 0);
  free (later);
  free (diff);
  free (got);
  free (want);
}
