/* Unit tests (review of the B+tree copy index): a randomized model test
 * against a plain reference, with many chunks, chunks with hundreds of
 * copies (several leaves each), the smallest cache (16 pages), and
 * interleaved add / remove / set_slot / lookups / passes in slices with
 * the map changing between slices; then the shape of the tree under
 * write orders a disk sees. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/index.h"
#include "cow/pagecache.h"
#include "tests/unit-helpers.h"

TestSuite (index_review, .timeout = 600);

/* ---- the reference ------------------------------------------------- */

#define NCH 700                 /* chunks */
#define NEP 1400                /* epochs 1..NEP-1 */

struct ref {
  uint64_t slot[NCH][NEP];      /* 0: no copy; else slot + 1 */
  uint32_t crc[NCH][NEP];
  uint64_t copies, chunks;
  uint32_t ncopies[NCH];
};

static struct ref R;

static bool
ref_has (uint64_t k, uint32_t e)
{
  return R.slot[k][e] != 0;
}

static void
ref_add (uint64_t k, uint32_t e, uint64_t slot, uint32_t crc)
{
  R.slot[k][e] = slot + 1;
  R.crc[k][e] = crc;
  R.copies++;
  if (R.ncopies[k]++ == 0)
    R.chunks++;
}

static void
ref_remove (uint64_t k, uint32_t e)
{
  R.slot[k][e] = 0;
  R.copies--;
  if (--R.ncopies[k] == 0)
    R.chunks--;
}

/* The oldest copy in [from, to], or with newest the newest: its epoch or
 * 0. */
static uint32_t
ref_pick (uint64_t k, uint32_t from, uint32_t to, bool newest)
{
  if (to >= NEP)
    to = NEP - 1;
  uint32_t got = 0;
  for (uint32_t e = from; e <= to; e++)
    if (ref_has (k, e)) {
      got = e;
      if (!newest)
        break;
    }
  return got;
}

static void
check_copy (uint64_t k, const struct sc_copy *c)
{
  cr_assert_eq (c->slot + 1, R.slot[k][c->epoch], "chunk %lu epoch %u slot",
                (unsigned long) k, c->epoch);
  cr_assert_eq (c->crc, R.crc[k][c->epoch]);
}

/* Every query about chunk k at epoch e against the reference. */
static void
check_at (struct sc_index *ix, uint64_t k, uint32_t e)
{
  struct sc_copy c;
  uint32_t want = ref_pick (k, e + 1, UINT32_MAX, false);
  int r = sc_index_after (ix, k, e, &c);
  cr_assert_eq (r, want != 0, "after chunk %lu epoch %u: %d, want %u",
                (unsigned long) k, e, r, want);
  if (r) {
    cr_assert_eq (c.epoch, want, "after chunk %lu epoch %u: %u want %u",
                  (unsigned long) k, e, c.epoch, want);
    check_copy (k, &c);
  }
  want = e ? ref_pick (k, 0, e - 1, true) : 0;
  r = sc_index_before (ix, k, e, &c);
  cr_assert_eq (r, want != 0, "before chunk %lu epoch %u: %d, want %u",
                (unsigned long) k, e, r, want);
  if (r)
    cr_assert_eq (c.epoch, want);
  if (e < NEP) {
    r = sc_index_find (ix, k, e, &c);
    cr_assert_eq (r, ref_has (k, e), "find chunk %lu epoch %u",
                  (unsigned long) k, e);
    if (r)
      check_copy (k, &c);
  }
}

static void
check_chunk (struct sc_index *ix, uint64_t k)
{
  struct sc_copy c;
  uint32_t last = ref_pick (k, 0, UINT32_MAX, true);
  int r = sc_index_last (ix, k, &c);
  cr_assert_eq (r, last != 0, "last of chunk %lu: %d", (unsigned long) k, r);
  if (r)
    cr_assert_eq (c.epoch, last, "last of chunk %lu: %u want %u",
                  (unsigned long) k, c.epoch, last);
}

static void
check_counters (struct sc_index *ix)
{
  cr_assert_eq (sc_index_error (ix), 0);
  cr_assert_eq (ix->copies, R.copies, "copies %lu, want %lu",
                (unsigned long) ix->copies, (unsigned long) R.copies);
  cr_assert_eq (ix->chunks, R.chunks, "chunks %lu, want %lu",
                (unsigned long) ix->chunks, (unsigned long) R.chunks);
}

/* ---- a pass in slices ---------------------------------------------- */

struct pass {
  struct sc_index *ix;
  uint64_t rng;
  unsigned visits[NCH][NEP];    /* this pass */
  bool touched[NCH][NEP];       /* changed by churn during the pass */
  bool start[NCH][NEP];         /* present when the pass began */
  bool have;
  uint64_t chunk;               /* being visited */
  uint32_t last;                /* its last copy visited */
  uint32_t drop[NEP];           /* its copies turned down */
  size_t ndrop;
  unsigned drop_pct;
};

static void
pass_flush (struct pass *p)
{
  for (size_t i = 0; i < p->ndrop; i++)
    ref_remove (p->chunk, p->drop[i]);
  p->ndrop = 0;
}

static bool
pass_keep (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct pass *p = opaque;
  cr_assert_lt (chunk, NCH);
  cr_assert (c->epoch > 0 && c->epoch < NEP);
  if (!p->have || chunk != p->chunk) {
    if (p->have) {
      cr_assert_gt (chunk, p->chunk, "chunks in order");
      /* the previous chunk's visit is over: its drops are done */
      pass_flush (p);
    }
    p->have = true;
    p->chunk = chunk;
    p->last = 0;
    /* The first copy visited is the chunk's oldest. */
    cr_assert_eq (c->epoch, ref_pick (chunk, 0, UINT32_MAX, false),
                  "chunk %lu: first visited %u", (unsigned long) chunk,
                  c->epoch);
  }
  else
    /* The next copy of the chunk, none skipped. */
    cr_assert_eq (c->epoch, ref_pick (chunk, p->last + 1, UINT32_MAX, false),
                  "chunk %lu: after %u visited %u", (unsigned long) chunk,
                  p->last, c->epoch);
  cr_assert_eq (prev, p->last, "chunk %lu epoch %u: prev %u, want %u",
                (unsigned long) chunk, c->epoch, prev, p->last);
  check_copy (chunk, c);
  p->visits[chunk][c->epoch]++;
  cr_assert_eq (p->visits[chunk][c->epoch], 1, "chunk %lu epoch %u visited "
                "twice", (unsigned long) chunk, c->epoch);
  p->last = c->epoch;
  uint64_t x = uh_rand (&p->rng);
  if (x % 100 < p->drop_pct) {
    p->drop[p->ndrop++] = c->epoch;
    return false;
  }
  if (x % 100 < p->drop_pct + 10) {
    /* keep may change the slot of a copy of the chunk it visits */
    uint64_t slot = x >> 20;
    uint32_t crc = (uint32_t) (x >> 7);
    cr_assert_eq (sc_index_set_slot (p->ix, chunk, c->epoch, slot, crc), 1);
    R.slot[chunk][c->epoch] = slot + 1;
    R.crc[chunk][c->epoch] = crc;
  }
  return true;
}

/* ---- the operations ------------------------------------------------ */

/* Chunks are hot (many epochs) or cold (a few). */
static uint64_t
pick_chunk (uint64_t *rng)
{
  uint64_t x = uh_rand (rng);
  if (x % 4 == 0)
    return (x >> 8) % 24 * 29;  /* 24 hot chunks, spread out */
  return (x >> 8) % NCH;
}

static void
op_add (struct sc_index *ix, uint64_t k, uint32_t e, uint64_t *rng)
{
  uint64_t slot = uh_rand (rng) >> 16;
  uint32_t crc = (uint32_t) uh_rand (rng);
  struct sc_copy c = { .slot = slot, .epoch = e, .crc = crc };
  int r = sc_index_add (ix, k, c);
  cr_assert_eq (r, ref_has (k, e) ? -EEXIST : 0, "add chunk %lu epoch %u: %d",
                (unsigned long) k, e, r);
  if (r == 0)
    ref_add (k, e, slot, crc);
}

static void
op_remove (struct sc_index *ix, uint64_t k, uint32_t e)
{
  int r = sc_index_remove (ix, k, e);
  cr_assert_eq (r, ref_has (k, e) ? 1 : 0, "remove chunk %lu epoch %u: %d",
                (unsigned long) k, e, r);
  if (r == 1)
    ref_remove (k, e);
}

/* One random change; `churn` marks what it touched in the pass. */
static void
op_random (struct sc_index *ix, uint64_t *rng, struct pass *p)
{
  uint64_t x = uh_rand (rng);
  uint64_t k = pick_chunk (rng);
  uint32_t e = 1 + (uint32_t) (uh_rand (rng) % (NEP - 1));
  unsigned what = x % 10;
  if (what < 5)
    op_add (ix, k, e, rng);
  else if (what < 8)
    op_remove (ix, k, e);
  else if (what < 9) {
    /* a run of chunks in order, one epoch: a sequential write */
    uint64_t first = (x >> 8) % NCH, n = 1 + (x >> 20) % 300;
    bool down = (x >> 40) & 1;
    for (uint64_t i = 0; i < n && first + i < NCH; i++) {
      uint64_t c = down ? first + n - 1 - i : first + i;
      if (c >= NCH)
        continue;
      op_add (ix, c, e, rng);
      if (p)
        p->touched[c][e] = true;
    }
    return;
  }
  else {
    uint64_t slot = x >> 24;
    int r = sc_index_set_slot (ix, k, e, slot, 7);
    cr_assert_eq (r, ref_has (k, e) ? 1 : 0);
    if (r == 1) {
      R.slot[k][e] = slot + 1;
      R.crc[k][e] = 7;
    }
  }
  if (p)
    p->touched[k][e] = true;
}

static void
check_all (struct sc_index *ix, uint64_t *rng, unsigned per_chunk)
{
  check_counters (ix);
  for (uint64_t k = 0; k < NCH; k++) {
    check_chunk (ix, k);
    for (unsigned i = 0; i < per_chunk; i++)
      check_at (ix, k, (uint32_t) (uh_rand (rng) % (NEP + 1)));
  }
}

static struct pass P;

static void
run_pass (struct sc_index *ix, uint64_t *rng, uint64_t budget,
          unsigned churn, unsigned drop_pct)
{
  memset (&P, 0, sizeof P);
  P.ix = ix;
  P.rng = uh_rand (rng);
  P.drop_pct = drop_pct;
  for (uint64_t k = 0; k < NCH; k++)
    for (uint32_t e = 0; e < NEP; e++)
      P.start[k][e] = ref_has (k, e);
  uint64_t cursor = 0;
  int r, slices = 0;
  do {
    r = sc_index_filter_slice (ix, &cursor, budget, pass_keep, &P);
    cr_assert_geq (r, 0, "slice: %d", r);
    pass_flush (&P);
    P.have = false;              /* the next slice starts at a new chunk */
    check_counters (ix);
    slices++;
    cr_assert_lt (slices, 10000000);
    for (unsigned i = 0; r == 0 && i < churn; i++)
      op_random (ix, rng, &P);
  } while (r == 0);
  cr_assert_eq (cursor, 0);
  for (uint64_t k = 0; k < NCH; k++)
    for (uint32_t e = 1; e < NEP; e++) {
      if (P.touched[k][e])
        continue;
      cr_assert_eq (P.visits[k][e], P.start[k][e] ? 1u : 0u,
                    "chunk %lu epoch %u present throughout: %u visits",
                    (unsigned long) k, e, P.visits[k][e]);
    }
}

Test (index_review, random_operations_and_sliced_passes_match_a_reference)
{
  static struct sc_index ix;
  uint64_t rng = 20261205;
  memset (&R, 0, sizeof R);
  uh_ix_open (&ix);
  for (int round = 0; round < 12; round++) {
    for (int i = 0; i < 40000; i++) {
      op_random (&ix, &rng, NULL);
      if (i % 4000 == 0)
        check_counters (&ix);
    }
    check_all (&ix, &rng, 6);
    uint64_t budgets[] = { 1, 7, 64, 500, UINT64_MAX };
    run_pass (&ix, &rng, budgets[round % 5], round % 3 == 0 ? 0 : 25,
              round % 4 == 3 ? 70 : 8);
    check_all (&ix, &rng, 6);
  }
  /* Empty it by a pass, then fill again: empty leaves take copies. */
  run_pass (&ix, &rng, 50, 0, 100);
  cr_assert_eq (R.copies, 0);
  check_all (&ix, &rng, 3);
  for (int i = 0; i < 60000; i++)
    op_random (&ix, &rng, NULL);
  check_all (&ix, &rng, 6);
  uh_ix_close (&ix);
}

/* ---- the tree's shape ---------------------------------------------- */

/* A disk written downwards (a backwards copy, a log that grows down)
 * after its two ends were copied: each copy goes at the end of one full
 * leaf, whose end split then leaves it full and puts the copy alone in a
 * leaf of its own.  Pages should stay near copies / 170 * 2 (half-full
 * leaves at worst), not one per copy. */
Test (index_review, copies_made_downwards_in_a_gap_fill_their_leaves)
{
  enum { LOW = 170, N = 170 * 200 };
  static struct sc_index ix;
  uint64_t rng = 1;
  memset (&R, 0, sizeof R);
  uh_ix_open (&ix);
  for (uint64_t k = 0; k < LOW; k++)
    cr_assert_eq (sc_index_add (&ix, k, (struct sc_copy) { k + 10, 1, 0 }), 0);
  cr_assert_eq (sc_index_add (&ix, 1000000, (struct sc_copy) { 5, 1, 0 }), 0);
  for (uint64_t k = LOW + N; k > LOW; k--)
    cr_assert_eq (sc_index_add (&ix, k - 1, (struct sc_copy) { k, 1, 0 }),
                  0);
  (void) rng;
  uint64_t copies = LOW + 1 + N;
  cr_assert_leq (ix.pages, copies / 170 * 2 + 10, "%u pages (4 KiB each) "
                 "for %lu copies of 24 bytes", ix.pages,
                 (unsigned long) copies);
  uh_ix_close (&ix);
}

/* A hot chunk (a filesystem's journal or superblock) is copied in every
 * epoch, and garbage collection drops its old copies as snapshots are
 * deleted: its old leaves stay, empty (their key ranges are of past
 * epochs, so no later copy ever fills them), and every lookup of the
 * chunk descends again through each of them.  A lookup should cost a
 * few descents, not one per 170 copies the chunk ever had. */
static uint64_t
gets (struct sc_index *ix)
{
  struct sc_pc_stats st;
  sc_pc_stats (ix->pc, &st);
  return st.hits + st.misses;
}

Test (index_review, a_lookup_of_a_hot_chunk_stays_cheap_after_gc)
{
  enum { E = 170 * 300, KEEP = 400 };  /* 400 snapshots kept */
  static struct sc_index ix;
  uh_ix_open (&ix);
  for (uint32_t e = 1; e <= E; e++) {
    cr_assert_eq (sc_index_add (&ix, 5, (struct sc_copy) { e + 10, e, 0 }),
                  0);
    if (e > KEEP)               /* gc keeps the newest KEEP */
      cr_assert_eq (sc_index_remove (&ix, 5, e - KEEP), 1);
  }
  cr_assert_eq (sc_index_add (&ix, 4, (struct sc_copy) { 1, 1, 0 }), 0);
  cr_assert_eq (sc_index_add (&ix, 6, (struct sc_copy) { 2, 1, 0 }), 0);
  cr_assert_eq (ix.copies, KEEP + 2);
  struct sc_copy c;
  uint64_t g0 = gets (&ix);
  cr_assert_eq (sc_index_last (&ix, 5, &c), 1);
  cr_assert_eq (c.epoch, E);
  uint64_t g_last = gets (&ix) - g0;
  g0 = gets (&ix);
  cr_assert_eq (sc_index_after (&ix, 5, 0, &c), 1);
  cr_assert_eq (c.epoch, E - KEEP + 1);
  uint64_t g_after = gets (&ix) - g0;
  cr_assert_leq (g_last + g_after, 16 * (ix.height + 1), "pages got for "
                 "one sc_index_last: %lu, one sc_index_after: %lu (height "
                 "%u, %u pages)", (unsigned long) g_last,
                 (unsigned long) g_after, ix.height, ix.pages);
  uh_ix_close (&ix);
}
