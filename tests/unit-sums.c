/* Unit tests: the checksum store (cow/sums.c): set, clear, lookups and
 * the slot-order walk against a plain reference under random operations,
 * through growth and shrinking; its memory follows the entries it holds,
 * not the highest slot, also in a diff area whose old copies were freed
 * and after a restart. */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea-internal.h"
#include "cow/sums.h"
#include "tests/unit-helpers.h"

TestSuite (sums, .init = uh_setup, .fini = uh_teardown);

/* ---- the reference: one record per candidate slot ---------------------- */

/* Candidate slots: 0 .. LOW - 1 (dense: full and partial pages), and
 * HIGH more in three bands above 2^32, 7 apart (sparse pages, far from
 * the others). */
#define LOW 30000u
#define HIGH 2000u
#define NCAND (LOW + HIGH)

static uint64_t
cand_slot (uint32_t i)
{
  if (i < LOW)
    return i;
  uint64_t k = i - LOW;
  return k * 7 + ((1 + k % 3) << 32);   /* 7 * HIGH < LOW */
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
 * the byte count stays within what sums.h promises. */
static void
assert_same (const struct sc_sums *s, const struct ref *ref)
{
  uint64_t *want = malloc (NCAND * sizeof *want);
  cr_assert_not_null (want);
  size_t n = 0;
  for (uint32_t i = 0; i < NCAND; i++) {
    struct sc_sums_entry e;
    bool got = sc_sums_get (s, cand_slot (i), &e);
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
    slot = sc_sums_next (s, slot);
    cr_assert_eq (slot, want[k], "walk: %lu, expected %lu",
                  (unsigned long) slot, (unsigned long) want[k]);
    slot++;
  }
  cr_assert_eq (sc_sums_next (s, slot), UINT64_MAX);
  free (want);

  size_t entry = s->stride * sizeof (uint32_t);
  if (n == 0)
    cr_assert_eq (sc_sums_bytes (s), 0, "an empty store keeps %zu bytes",
                  sc_sums_bytes (s));
  else
    cr_assert_leq (sc_sums_bytes (s), 1024 + entry + n * (2 * entry + 96),
                   "%zu bytes for %zu entries of %zu", sc_sums_bytes (s), n,
                   entry);
}

static void
model_run (uint32_t chunk_size, uint64_t seed)
{
  struct sc_sums s;
  sc_sums_init (&s, chunk_size);
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
                         .chunk = uh_rand (&rng) >> 4,
                         .epoch = (uint32_t) uh_rand_below (&rng, 1000) + 1 };
        for (uint32_t k = 0; k < SC_SUMS_MAX; k++)
          r.sums[k] = r.whole && k ? 0 : (uint32_t) uh_rand (&rng);
        cr_assert_eq (sc_sums_reserve (&s, slot), 0);
        sc_sums_set (&s, slot, r.chunk, r.epoch, r.sums, r.whole);
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
        uint64_t chunk = right ? ref[i].chunk : uh_rand (&rng) >> 4;
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
  cr_assert_eq (sc_sums_bytes (&s), 0);
  sc_sums_free (&s);
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
 * page by page over short gaps, through the table over long ones. */
Test (sums, the_walk_finds_the_next_copy_across_any_gap)
{
  uint32_t sums[SC_SUMS_MAX] = { 0 };
  for (uint64_t gap = 1; gap < 12; gap++)
    for (uint64_t extra = 0; extra < 3; extra++) {
      struct sc_sums s;
      sc_sums_init (&s, 4096);
      /* Copies in pages 0 .. extra, then one `gap` pages further. */
      uint64_t far = (extra + gap) * 64 + 5;
      for (uint64_t slot = 0; slot <= extra * 64; slot += 64) {
        cr_assert_eq (sc_sums_reserve (&s, slot), 0);
        sc_sums_set (&s, slot, 1, 1, sums, false);
      }
      cr_assert_eq (sc_sums_reserve (&s, far), 0);
      sc_sums_set (&s, far, 1, 1, sums, false);
      for (uint64_t from = extra * 64 + 1; from <= far; from++)
        cr_assert_eq (sc_sums_next (&s, from), far, "gap %lu, extra %lu, "
                      "from %lu", (unsigned long) gap, (unsigned long) extra,
                      (unsigned long) from);
      cr_assert_eq (sc_sums_next (&s, far + 1), UINT64_MAX);
      cr_assert_eq (sc_sums_next (&s, UINT64_MAX - 1), UINT64_MAX);
      sc_sums_free (&s);
    }
}

/* ---- memory ------------------------------------------------------------- */

Test (sums, memory_follows_the_entries_not_the_highest_slot)
{
  struct sc_sums s;
  sc_sums_init (&s, 64 * 1024);
  uint32_t sums[SC_SUMS_MAX] = { 1, 2, 3 };
  const uint64_t n = 100000;
  for (uint64_t slot = 3; slot < 3 + n; slot++) {
    cr_assert_eq (sc_sums_reserve (&s, slot), 0);
    sc_sums_set (&s, slot, slot * 2, 7, sums, false);
  }
  size_t full = sc_sums_bytes (&s), entry = s.stride * sizeof (uint32_t);
  cr_assert_eq (entry, 76);
  cr_assert_geq (full, n * entry);
  cr_assert_leq (full, 4096 + n * (entry + 2), "%zu bytes for %lu entries",
                 full, (unsigned long) n);

  /* Every copy but the highest goes. */
  for (uint64_t slot = 3; slot < 2 + n; slot++)
    sc_sums_clear (&s, slot, slot * 2, 7);
  cr_assert_eq (s.count, 1);
  cr_assert_leq (sc_sums_bytes (&s), 1024,
                 "one entry left keeps %zu bytes", sc_sums_bytes (&s));
  cr_assert_eq (sc_sums_next (&s, 0), 2 + n);
  cr_assert_eq (sc_sums_next (&s, 3 + n), UINT64_MAX);

  /* A copy far above costs no more than one near. */
  cr_assert_eq (sc_sums_reserve (&s, 1ull << 40), 0);
  sc_sums_set (&s, 1ull << 40, 5, 8, sums, false);
  cr_assert_leq (sc_sums_bytes (&s), 1024 + entry);
  cr_assert_eq (sc_sums_next (&s, 3 + n), 1ull << 40);
  sc_sums_clear (&s, 1ull << 40, 5, 8);
  sc_sums_clear (&s, 2 + n, (2 + n) * 2, 7);
  cr_assert_eq (sc_sums_bytes (&s), 0);
  sc_sums_free (&s);
}

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
  cr_assert_geq (sums_bytes (d), NCOPIES * 16 * 4);   /* the sums alone */
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
