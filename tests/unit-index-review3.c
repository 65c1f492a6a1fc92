/* Unit tests (review of leaves leaving the B+tree, and pages reused): a
 * model test against a plain reference with heavy removal (whole regions
 * emptied, filled again, emptied again, with passes in slices between),
 * chunks spread sparsely over 2^40, a chunk of thousands of epochs, the
 * smallest cache; after each phase the tree's pages are walked and
 * checked: separators, the leaf chain both ways, no freed page in the
 * tree. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/index.h"
#include "cow/pagecache.h"
#include "tests/unit-helpers.h"

TestSuite (index_review3, .timeout = 900);

/* The page layout of cow/index.c, to walk the tree from outside. */
struct t_node { uint16_t magic, level, n, unused; uint32_t next, prev; };
struct t_leaf { uint64_t chunk, slot; uint32_t epoch, crc; };
struct t_inner { uint64_t chunk; uint32_t epoch, child; };

/* ---- the reference: nch chunks (index k, real chunk key(k)) x nep ---- */

static uint32_t nch, nep;
static uint64_t spread;         /* chunk k is k * spread + k % 7 */
static uint64_t *rslot;         /* 0: none, else slot + 1 */
static uint32_t *rncopies;
static uint64_t rcopies, rchunks;

static uint64_t
key (uint32_t k)
{
  return spread > 1 ? k * spread + k % 7 : k;
}

static uint32_t
unkey (uint64_t c)
{
  return (uint32_t) (c / spread);
}

static uint64_t *
at (uint32_t k, uint32_t e)
{
  return &rslot[(uint64_t) k * nep + e];
}

static void
ref_init (uint32_t chunks, uint32_t epochs, uint64_t sp)
{
  nch = chunks;
  nep = epochs;
  spread = sp;
  free (rslot);
  free (rncopies);
  rslot = calloc ((uint64_t) nch * nep, sizeof *rslot);
  rncopies = calloc (nch, sizeof *rncopies);
  cr_assert (rslot && rncopies);
  rcopies = rchunks = 0;
}

static void
add (struct sc_index *ix, uint32_t k, uint32_t e)
{
  uint64_t slot = (uint64_t) k * 100003 + e;
  int r = sc_index_add (ix, key (k), (struct sc_copy) { slot, e, e ^ k });
  cr_assert_eq (r, *at (k, e) ? -EEXIST : 0, "add %u/%u: %d", k, e, r);
  if (r == 0) {
    *at (k, e) = slot + 1;
    rcopies++;
    if (rncopies[k]++ == 0)
      rchunks++;
  }
}

static void
ref_remove (uint32_t k, uint32_t e)
{
  *at (k, e) = 0;
  rcopies--;
  if (--rncopies[k] == 0)
    rchunks--;
}

static void
rm (struct sc_index *ix, uint32_t k, uint32_t e)
{
  int r = sc_index_remove (ix, key (k), e);
  cr_assert_eq (r, *at (k, e) ? 1 : 0, "remove %u/%u: %d (error %d)", k, e,
                r, sc_index_error (ix));
  if (r == 1)
    ref_remove (k, e);
}

static uint32_t
ref_pick (uint32_t k, uint32_t from, uint32_t to, bool newest)
{
  if (to >= nep)
    to = nep - 1;
  uint32_t got = 0;
  for (uint32_t e = from; e <= to; e++)
    if (*at (k, e)) {
      got = e;
      if (!newest)
        break;
    }
  return got;
}

static void
check_chunk (struct sc_index *ix, uint32_t k, uint64_t *rng, unsigned probes)
{
  struct sc_copy c;
  uint32_t want = ref_pick (k, 0, UINT32_MAX, true);
  int r = sc_index_last (ix, key (k), &c);
  cr_assert_eq (r, want != 0, "last %u: %d (error %d)", k, r,
                sc_index_error (ix));
  if (r)
    cr_assert_eq (c.epoch, want, "last %u: %u want %u", k, c.epoch, want);
  for (unsigned i = 0; i < probes; i++) {
    uint32_t e = (uint32_t) (uh_rand (rng) % nep);
    want = ref_pick (k, e + 1, UINT32_MAX, false);
    r = sc_index_after (ix, key (k), e, &c);
    cr_assert_eq (r, want != 0, "after %u/%u: %d", k, e, r);
    if (r) {
      cr_assert_eq (c.epoch, want, "after %u/%u: %u want %u", k, e, c.epoch,
                    want);
      cr_assert_eq (c.slot + 1, *at (k, want));
    }
    want = e ? ref_pick (k, 0, e - 1, true) : 0;
    r = sc_index_before (ix, key (k), e, &c);
    cr_assert_eq (r, want != 0, "before %u/%u: %d", k, e, r);
    if (r)
      cr_assert_eq (c.epoch, want, "before %u/%u: %u want %u", k, e,
                    c.epoch, want);
    r = sc_index_find (ix, key (k), e, &c);
    cr_assert_eq (r, *at (k, e) != 0, "find %u/%u: %d", k, e, r);
  }
  /* between chunks: nothing */
  if (spread > 1) {
    r = sc_index_last (ix, key (k) + 1 + k % 5, &c);
    cr_assert_eq (r, 0, "last of a chunk never copied (after %u): %d", k, r);
  }
}

/* ---- the tree, walked ------------------------------------------------ */

struct walk {
  struct sc_index *ix;
  uint8_t *seen;                /* pages met in the tree */
  uint32_t *leaves;             /* in order */
  size_t nleaves;
  uint64_t copies;
  bool have_last;
  uint64_t last_chunk;
  uint32_t last_epoch;
};

static int
kcmp (uint64_t ca, uint32_t ea, uint64_t cb, uint32_t eb)
{
  if (ca != cb)
    return ca < cb ? -1 : 1;
  return ea < eb ? -1 : ea > eb;
}

/* Subtree of `page` at `level`: every key in [lo, hi) (has_lo/has_hi). */
static void
walk_node (struct walk *w, uint32_t page, unsigned level, bool has_lo,
           uint64_t lc, uint32_t le, bool has_hi, uint64_t hc, uint32_t he)
{
  struct sc_index *ix = w->ix;
  cr_assert (page >= 1 && page <= ix->pages, "page %u out of 1..%u", page,
             ix->pages);
  cr_assert_eq (w->seen[page], 0, "page %u twice in the tree", page);
  w->seen[page] = 1;
  void *p;
  cr_assert_eq (sc_pc_get (ix->pc, ix->file, page, false, &p), 0);
  struct t_node nd = *(struct t_node *) p;
  cr_assert_eq (nd.level, level, "page %u level %u want %u", page, nd.level,
                level);
  if (level == 0) {
    struct t_leaf *e = (struct t_leaf *) ((struct t_node *) p + 1);
    w->leaves[w->nleaves++] = page;
    for (unsigned i = 0; i < nd.n; i++) {
      if (has_lo)
        cr_assert_geq (kcmp (e[i].chunk, e[i].epoch, lc, le), 0,
                       "leaf %u key below its separator", page);
      if (has_hi)
        cr_assert_lt (kcmp (e[i].chunk, e[i].epoch, hc, he), 0,
                      "leaf %u key at or past the next separator", page);
      if (w->have_last)
        cr_assert_gt (kcmp (e[i].chunk, e[i].epoch, w->last_chunk,
                            w->last_epoch), 0, "keys in order");
      w->have_last = true;
      w->last_chunk = e[i].chunk;
      w->last_epoch = e[i].epoch;
      w->copies++;
    }
    sc_pc_put (ix->pc, ix->file, page);
    return;
  }
  cr_assert_gt (nd.n, 0, "inner page %u empty", page);
  struct t_inner *src = (struct t_inner *) ((struct t_node *) p + 1);
  struct t_inner *e = malloc (nd.n * sizeof *e);
  memcpy (e, src, nd.n * sizeof *e);
  sc_pc_put (ix->pc, ix->file, page);   /* pins stay few */
  for (unsigned i = 0; i < nd.n; i++) {
    bool clo = i ? true : has_lo;
    uint64_t c1 = i ? e[i].chunk : lc;
    uint32_t e1 = i ? e[i].epoch : le;
    if (i && has_lo)
      cr_assert_geq (kcmp (e[i].chunk, e[i].epoch, lc, le), 0);
    if (i && i + 1 < nd.n)   /* (key 0 is never compared) */
      cr_assert_lt (kcmp (e[i].chunk, e[i].epoch, e[i + 1].chunk,
                          e[i + 1].epoch), 0, "separators in order: page "
                    "%u %u", page, i);
    bool chi = i + 1 < nd.n ? true : has_hi;
    uint64_t c2 = i + 1 < nd.n ? e[i + 1].chunk : hc;
    uint32_t e2 = i + 1 < nd.n ? e[i + 1].epoch : he;
    walk_node (w, e[i].child, level - 1, clo, c1, e1, chi, c2, e2);
  }
  free (e);
}

static void
check_tree (struct sc_index *ix)
{
  cr_assert_eq (sc_index_error (ix), 0);
  cr_assert_eq (ix->copies, rcopies, "copies %lu want %lu",
                (unsigned long) ix->copies, (unsigned long) rcopies);
  cr_assert_eq (ix->chunks, rchunks, "chunks %lu want %lu",
                (unsigned long) ix->chunks, (unsigned long) rchunks);
  struct walk w = { .ix = ix };
  w.seen = calloc ((size_t) ix->pages + 1, 1);
  w.leaves = calloc ((size_t) ix->pages + 1, sizeof *w.leaves);
  walk_node (&w, ix->root, ix->height, false, 0, 0, false, 0, 0);
  cr_assert_eq (w.copies, rcopies);
  for (size_t i = 0; i < ix->nfree; i++) {
    cr_assert_eq (w.seen[ix->free_pages[i]], 0, "freed page %u in the tree",
                  ix->free_pages[i]);
    w.seen[ix->free_pages[i]] = 2;
  }
  for (uint32_t pg = 1; pg <= ix->pages; pg++)
    cr_assert_neq (w.seen[pg], 0, "page %u neither in the tree nor free",
                   pg);
  /* The chain, both ways, is the leaves in order. */
  for (size_t i = 0; i < w.nleaves; i++) {
    void *p;
    cr_assert_eq (sc_pc_get (ix->pc, ix->file, w.leaves[i], false, &p), 0);
    struct t_node nd = *(struct t_node *) p;
    sc_pc_put (ix->pc, ix->file, w.leaves[i]);
    cr_assert_eq (nd.next, i + 1 < w.nleaves ? w.leaves[i + 1] : 0,
                  "leaf %u next %u", w.leaves[i], nd.next);
    cr_assert_eq (nd.prev, i ? w.leaves[i - 1] : 0, "leaf %u prev %u",
                  w.leaves[i], nd.prev);
    if (w.nleaves > 1)
      cr_assert_gt (nd.n, 0, "an empty leaf %u stayed", w.leaves[i]);
  }
  free (w.seen);
  free (w.leaves);
}

static void
check_all (struct sc_index *ix, uint64_t *rng, unsigned probes)
{
  check_tree (ix);
  for (uint32_t k = 0; k < nch; k++)
    check_chunk (ix, k, rng, probes);
}

/* ---- passes in slices ------------------------------------------------ */

struct pass {
  struct sc_index *ix;
  uint64_t rng;
  uint32_t lo, hi;              /* chunks dropped: [lo, hi) ... */
  unsigned pct;                 /* ... with this chance */
  bool have;
  uint32_t chunk, last;
  uint32_t *drop;
  size_t ndrop;
  uint8_t *visits;
  uint8_t *touched, *start;     /* (ahead: churn ahead of the cursor) */
  bool ahead;
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
  uint32_t k = unkey (chunk);
  cr_assert (k < nch && key (k) == chunk, "chunk %lu not a key",
             (unsigned long) chunk);
  if (!p->have || k != p->chunk) {
    if (p->have) {
      cr_assert_gt (k, p->chunk);
      pass_flush (p);
    }
    p->have = true;
    p->chunk = k;
    p->last = 0;
    if (!p->ahead)
      cr_assert_eq (c->epoch, ref_pick (k, 0, UINT32_MAX, false),
                    "chunk %u first visited %u", k, c->epoch);
  }
  else if (!p->ahead)
    cr_assert_eq (c->epoch, ref_pick (k, p->last + 1, UINT32_MAX, false),
                  "chunk %u after %u visited %u", k, p->last, c->epoch);
  else
    cr_assert_gt (c->epoch, p->last);
  cr_assert_eq (prev, p->last);
  cr_assert_eq (c->slot + 1, *at (k, c->epoch));
  cr_assert_eq (p->visits[(uint64_t) k * nep + c->epoch]++, 0,
                "visited twice");
  p->last = c->epoch;
  if (k >= p->lo && k < p->hi && uh_rand (&p->rng) % 100 < p->pct) {
    p->drop[p->ndrop++] = c->epoch;
    return false;
  }
  return true;
}

/* A pass that drops region [lo, hi) (pct %), in slices of `budget`, with
 * `churn` random changes between slices (in chunks outside the region
 * being visited, so what the pass must see is known). */
static struct pass P;

/* Churn ahead of the cursor: whole runs of chunks emptied or filled. */
static void
churn_ahead (struct sc_index *ix, uint64_t *rng, uint32_t next)
{
  if (next >= nch)
    return;
  uint32_t a = next + (uint32_t) (uh_rand (rng) % (nch - next));
  uint32_t b = a + 1 + (uint32_t) (uh_rand (rng) % 60);
  if (b > nch)
    b = nch;
  bool fill = uh_rand (rng) & 1;
  for (uint32_t k = a; k < b; k++)
    for (uint32_t e = 1; e < nep; e++) {
      if (fill ? (uh_rand (rng) % 16 != 0) : !*at (k, e))
        continue;
      P.touched[(uint64_t) k * nep + e] = 1;
      if (fill)
        add (ix, k, e);
      else
        rm (ix, k, e);
    }
}

static void
run_pass_x (struct sc_index *ix, uint64_t *rng, uint32_t lo, uint32_t hi,
            unsigned pct, uint64_t budget, unsigned churn, bool ahead)
{
  P = (struct pass) { .ix = ix, .rng = uh_rand (rng), .lo = lo, .hi = hi,
                      .pct = pct, .ahead = ahead };
  P.drop = calloc (nep, sizeof *P.drop);
  P.visits = calloc ((uint64_t) nch * nep, 1);
  P.touched = calloc ((uint64_t) nch * nep, 1);
  P.start = calloc ((uint64_t) nch * nep, 1);
  for (uint64_t i = 0; i < (uint64_t) nch * nep; i++)
    P.start[i] = rslot[i] != 0;
  uint64_t cursor = 0;
  int r;
  do {
    r = sc_index_filter_slice (ix, &cursor, budget, pass_keep, &P);
    cr_assert_geq (r, 0, "slice: %d", r);
    pass_flush (&P);
    P.have = false;
    cr_assert_eq (ix->copies, rcopies);
    cr_assert_eq (ix->chunks, rchunks);
    uint32_t next = r ? nch : unkey (cursor - 1) + 1;     /* not yet seen */
    if (ahead && r == 0 && churn)
      churn_ahead (ix, rng, next);
    for (unsigned i = 0; r == 0 && i < churn; i++) {
      /* changes only behind the cursor: a pass never sees them */
      if (next == 0)
        break;
      uint32_t k = (uint32_t) (uh_rand (rng) % next);
      uint32_t e = 1 + (uint32_t) (uh_rand (rng) % (nep - 1));
      if (uh_rand (rng) & 1)
        add (ix, k, e);
      else
        rm (ix, k, e);
    }
  } while (r == 0);
  for (uint64_t i = 0; i < (uint64_t) nch * nep; i++)
    if (!P.touched[i])
      cr_assert_eq (P.visits[i], P.start[i], "chunk %lu epoch %lu present "
                    "throughout: %u visits", (unsigned long) (i / nep),
                    (unsigned long) (i % nep), P.visits[i]);
  free (P.drop);
  free (P.visits);
  free (P.touched);
  free (P.start);
}

static void
run_pass (struct sc_index *ix, uint64_t *rng, uint32_t lo, uint32_t hi,
          unsigned pct, uint64_t budget, unsigned churn)
{
  run_pass_x (ix, rng, lo, hi, pct, budget, churn, false);
}

/* ---- the workloads ---------------------------------------------------- */

static void
fill_region (struct sc_index *ix, uint64_t *rng, uint32_t lo, uint32_t hi,
             unsigned per_chunk, bool down)
{
  for (uint32_t i = 0; i < hi - lo; i++) {
    uint32_t k = down ? hi - 1 - i : lo + i;
    for (unsigned j = 0; j < per_chunk; j++)
      add (ix, k, 1 + (uint32_t) (uh_rand (rng) % (nep - 1)));
  }
}

static void
empty_region (struct sc_index *ix, uint32_t lo, uint32_t hi, bool down)
{
  for (uint32_t i = 0; i < hi - lo; i++) {
    uint32_t k = down ? hi - 1 - i : lo + i;
    for (uint32_t e = 1; e < nep; e++)
      if (*at (k, e))
        rm (ix, k, e);
  }
}

static void
heavy_removal (uint32_t chunks, uint32_t epochs, uint64_t sp, uint64_t seed,
               int rounds)
{
  static struct sc_index ix;
  uint64_t rng = seed;
  ref_init (chunks, epochs, sp);
  uh_ix_open (&ix);
  fill_region (&ix, &rng, 0, nch, 12, false);
  check_all (&ix, &rng, 3);
  for (int round = 0; round < rounds; round++) {
    uint32_t a = (uint32_t) (uh_rand (&rng) % nch);
    uint32_t b = a + (uint32_t) (uh_rand (&rng) % (nch - a)) + 1;
    /* empty a region by hand, both directions */
    empty_region (&ix, a, b, round & 1);
    check_all (&ix, &rng, 2);
    /* and another by a pass in slices, with churn */
    uint32_t c = (uint32_t) (uh_rand (&rng) % nch);
    uint32_t d = c + (uint32_t) (uh_rand (&rng) % (nch - c)) + 1;
    uint64_t budgets[] = { 1, 9, 170, 1000 };
    run_pass (&ix, &rng, c, d, 100, budgets[round % 4], round % 3 * 20);
    check_all (&ix, &rng, 2);
    /* refill, in either order, some of it one copy per chunk */
    fill_region (&ix, &rng, a, b, 1 + round % 5, round & 2);
    fill_region (&ix, &rng, c, d, 3, !(round & 2));
    check_all (&ix, &rng, 2);
    /* remove most again by a pass, then the rest by hand */
    run_pass (&ix, &rng, 0, nch, 90, 50, 10);
    check_all (&ix, &rng, 2);
    /* a pass while whole runs ahead of it are emptied and filled */
    fill_region (&ix, &rng, 0, nch, 2, round & 1);
    run_pass_x (&ix, &rng, 0, nch, 30, budgets[(round + 1) % 4], 1, true);
    check_all (&ix, &rng, 2);
    if (round % 3 == 2) {
      empty_region (&ix, 0, nch, round & 1);
      check_all (&ix, &rng, 1);
      fill_region (&ix, &rng, 0, nch, 8, round & 1);
      check_all (&ix, &rng, 2);
    }
  }
  uh_ix_close (&ix);
}

Test (index_review3, heavy_removal_dense_keys)
{
  for (uint64_t seed = 1; seed <= 6; seed++)
    heavy_removal (2000, 200, 1, seed, 12);
  heavy_removal (9000, 60, 1, 7, 6);
}

Test (index_review3, heavy_removal_sparse_keys_over_2_40)
{
  for (uint64_t seed = 1; seed <= 6; seed++)
    heavy_removal (2000, 200, (1ull << 40) / 2000, 100 + seed, 12);
}

/* A hot chunk with thousands of epochs, its neighbours few, removed from
 * the front (gc), the middle and the back, with lookups across its many
 * leaves. */
Test (index_review3, a_chunk_of_thousands_of_epochs)
{
  static struct sc_index ix;
  uint64_t rng = 13;
  ref_init (40, 6000, (1ull << 40) / 40);
  uh_ix_open (&ix);
  for (uint32_t k = 0; k < nch; k++)
    if (k != 20)
      add (&ix, k, 1 + k);
  for (uint32_t e = 1; e < nep; e++) {
    add (&ix, 20, e);
    if (e > 700 && e % 3)
      rm (&ix, 20, e - 700);
    if (e % 997 == 0)
      check_all (&ix, &rng, 20);
  }
  check_all (&ix, &rng, 200);
  /* the middle by a pass */
  run_pass (&ix, &rng, 20, 21, 60, 7, 0);
  check_all (&ix, &rng, 200);
  /* the back, newest first */
  for (uint32_t e = nep - 1; e > 3000; e--)
    rm (&ix, 20, e);
  check_all (&ix, &rng, 200);
  /* fill again and take it all away */
  for (uint32_t e = nep - 1; e > 2; e -= 2)
    add (&ix, 20, e);
  check_all (&ix, &rng, 200);
  empty_region (&ix, 20, 21, false);
  check_all (&ix, &rng, 50);
  run_pass (&ix, &rng, 0, nch, 100, 3, 0);
  check_all (&ix, &rng, 10);
  cr_assert_eq (rcopies, 0);
  for (uint32_t e = 1; e < nep; e++)
    add (&ix, 20, e);
  check_all (&ix, &rng, 100);
  uh_ix_close (&ix);
}

/* ---- a scratch file that fails half-way -------------------------------- */

/* The scratch file turns into one that reads zeroes and takes no write at
 * a random point of heavy removal: from the first call that fails, every
 * later call fails with the same error; before it, every answer is
 * right. */
static int sticky_err;

static bool
call_ok (int r, int ok_min)
{
  if (sticky_err) {
    cr_assert_eq (r, -sticky_err, "a call after the error returned %d, "
                  "want %d", r, -sticky_err);
    return false;
  }
  if (r < ok_min) {
    sticky_err = -r;
    cr_assert_eq (sc_index_error (P.ix), sticky_err);
    return false;
  }
  return true;
}

static void
fault_round (uint64_t seed)
{
  static struct sc_index ix;
  uint64_t rng = seed;
  ref_init (600, 120, seed & 1 ? (1ull << 40) / 600 : 1);
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (0, &pc), 0);
  int fd = sc_pc_scratch_file (getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
  cr_assert_geq (fd, 0);
  cr_assert_eq (sc_index_init (&ix, pc, fd), 0);
  P.ix = &ix;
  sticky_err = 0;
  fill_region (&ix, &rng, 0, nch, 20, false);
  check_tree (&ix);
  unsigned when = (unsigned) (uh_rand (&rng) % 20000);
  for (unsigned op = 0; op < 40000; op++) {
    if (op == when) {
      int bad = open ("/dev/full", O_RDONLY);
      cr_assert_geq (bad, 0);
      cr_assert_eq (dup2 (bad, fd), fd);
      close (bad);
    }
    uint32_t k = (uint32_t) (uh_rand (&rng) % nch);
    uint32_t e = 1 + (uint32_t) (uh_rand (&rng) % (nep - 1));
    uint64_t x = uh_rand (&rng) % 8;
    struct sc_copy c;
    int r;
    if (x < 4) {                /* removals dominate: leaves leave */
      r = sc_index_remove (&ix, key (k), e);
      if (call_ok (r, 0)) {
        cr_assert_eq (r, *at (k, e) != 0);
        if (r)
          ref_remove (k, e);
      }
    }
    else if (x < 5) {
      uint64_t slot = (uint64_t) k * 100003 + e;
      r = sc_index_add (&ix, key (k), (struct sc_copy) { slot, e, e ^ k });
      if (r == -EEXIST && !sticky_err) {
        cr_assert_neq (*at (k, e), 0);
        continue;
      }
      if (call_ok (r, 0)) {
        cr_assert_eq (*at (k, e), 0);
        *at (k, e) = slot + 1;
        rcopies++;
        if (rncopies[k]++ == 0)
          rchunks++;
      }
    }
    else if (x < 6) {
      r = sc_index_last (&ix, key (k), &c);
      if (call_ok (r, 0)) {
        uint32_t want = ref_pick (k, 0, UINT32_MAX, true);
        cr_assert_eq (r, want != 0, "last %u after op %u (fault at %u)", k,
                      op, when);
        if (r)
          cr_assert_eq (c.epoch, want);
      }
    }
    else {
      r = sc_index_after (&ix, key (k), e, &c);
      if (call_ok (r, 0)) {
        uint32_t want = ref_pick (k, e + 1, UINT32_MAX, false);
        cr_assert_eq (r, want != 0, "after %u/%u after op %u (fault at %u)",
                      k, e, op, when);
        if (r)
          cr_assert_eq (c.epoch, want);
      }
    }
    if (!sticky_err && op % 5000 == 4999 && op < when)
      check_tree (&ix);
  }
  cr_assert_neq (sticky_err, 0, "the fault was never seen");
  cr_assert_eq (sc_index_error (&ix), sticky_err);
  uh_ix_close (&ix);
}

Test (index_review3, a_scratch_file_failing_half_way_fails_every_later_call)
{
  for (uint64_t seed = 1; seed <= 40; seed++)
    fault_round (seed);
}
