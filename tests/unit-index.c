/* Unit tests: the copy index (chunk -> copies by epoch, a B+tree in a
 * scratch file behind a page cache): add/last/after semantics, ordering,
 * growth through many splits, removal through sc_index_filter, passes in
 * slices, and errors of the scratch file.  The cache is the smallest
 * (16 pages) unless a test says otherwise, so pages are evicted and read
 * back all the time. */
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

static int
ix_open_budget (struct sc_index *ix, uint64_t budget)
{
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (budget, &pc), 0);
  int fd = sc_pc_scratch_file (getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
  cr_assert_geq (fd, 0, "scratch file: %s", strerror (-fd));
  return sc_index_init (ix, pc, fd);
}

static int
ix_open (struct sc_index *ix)
{
  return ix_open_budget (ix, 0);
}

static void
ix_close (struct sc_index *ix)
{
  struct sc_pc *pc = ix->pc;
  sc_index_free (ix);
  sc_pc_free (pc);
}

static void
add (struct sc_index *ix, uint64_t chunk, uint32_t epoch, uint64_t slot)
{
  struct sc_copy c = { .slot = slot, .epoch = epoch };
  int r = sc_index_add (ix, chunk, c);
  cr_assert_eq (r, 0, "adding chunk %lu epoch %u: %d", (unsigned long) chunk,
                epoch, r);
}

/* The epoch of the copy a snapshot of `epoch` sees, 0 for the origin. */
static uint32_t
after (struct sc_index *ix, uint64_t chunk, uint32_t epoch)
{
  struct sc_copy c;
  return sc_index_after (ix, chunk, epoch, &c) ? c.epoch : 0;
}

static bool
found (struct sc_index *ix, uint64_t chunk)
{
  struct sc_copy c;
  return sc_index_last (ix, chunk, &c);
}

Test (index, empty_index_has_no_copies)
{
  struct sc_index ix;
  struct sc_copy c;
  cr_assert_eq (ix_open (&ix), 0);
  cr_assert (!sc_index_last (&ix, 0, &c));
  cr_assert (!sc_index_after (&ix, 0, 0, &c));
  cr_assert (!sc_index_last (&ix, 12345, &c));
  cr_assert_eq (ix.chunks, 0);
  cr_assert_eq (ix.copies, 0);
  ix_close (&ix);
}

Test (index, last_is_the_newest_copy)
{
  struct sc_index ix;
  struct sc_copy c;
  cr_assert_eq (ix_open (&ix), 0);
  add (&ix, 7, 3, 100);
  cr_assert (sc_index_last (&ix, 7, &c));
  cr_assert_eq (c.epoch, 3);
  cr_assert_eq (c.slot, 100);
  add (&ix, 7, 5, 101);
  add (&ix, 7, 9, 102);
  cr_assert (sc_index_last (&ix, 7, &c));
  cr_assert_eq (c.epoch, 9);
  cr_assert_eq (c.slot, 102);
  cr_assert (!sc_index_last (&ix, 8, &c), "another chunk has no copy");
  ix_close (&ix);
}

Test (index, after_returns_the_oldest_copy_newer_than_the_epoch)
{
  struct sc_index ix;
  struct sc_copy c;
  cr_assert_eq (ix_open (&ix), 0);
  add (&ix, 7, 3, 100);
  add (&ix, 7, 5, 101);
  add (&ix, 7, 9, 102);
  /* epoch -> copy seen (0: the origin) */
  static const uint32_t want[][2] = {
    { 0, 3 }, { 1, 3 }, { 2, 3 }, { 3, 5 }, { 4, 5 }, { 5, 9 }, { 8, 9 },
    { 9, 0 }, { 10, 0 }, { UINT32_MAX, 0 },
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_assert_eq (after (&ix, 7, want[i][0]), want[i][1], "epoch %u",
                  want[i][0]);
  cr_assert (sc_index_after (&ix, 7, 4, &c));
  cr_assert_eq (c.slot, 101);
  cr_assert (!sc_index_after (&ix, 6, 0, &c));
  ix_close (&ix);
}

Test (index, same_epoch_twice_is_eexist)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  add (&ix, 1, 4, 10);
  cr_assert_eq (sc_index_add (&ix, 1, (struct sc_copy) { 11, 4, 0 }), -EEXIST);
  add (&ix, 1, 6, 12);
  add (&ix, 1, 8, 13);
  cr_assert_eq (sc_index_add (&ix, 1, (struct sc_copy) { 14, 6, 0 }), -EEXIST);
  cr_assert_eq (sc_index_add (&ix, 1, (struct sc_copy) { 14, 4, 0 }), -EEXIST);
  cr_assert_eq (sc_index_add (&ix, 1, (struct sc_copy) { 14, 8, 0 }), -EEXIST);
  cr_assert_eq (ix.copies, 3, "refused adds change nothing");
  cr_assert_eq (ix.chunks, 1);
  struct sc_copy c;
  cr_assert (sc_index_after (&ix, 1, 5, &c));
  cr_assert_eq (c.slot, 12);
  ix_close (&ix);
}

struct visit_log {
  uint64_t chunk;
  uint32_t prev[64], epoch[64];
  size_t n;
};

static bool
log_chunk (void *opaque, uint64_t chunk, uint32_t prev,
           const struct sc_copy *c)
{
  struct visit_log *l = opaque;
  if (chunk == l->chunk && l->n < 64) {
    l->prev[l->n] = prev;
    l->epoch[l->n] = c->epoch;
    l->n++;
  }
  return true;
}

Test (index, out_of_order_adds_stay_sorted)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  uint32_t order[] = { 9, 3, 5, 1, 7, 11, 2 };
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    add (&ix, 42, order[i], 1000 + order[i]);
  struct sc_copy c;
  cr_assert (sc_index_last (&ix, 42, &c));
  cr_assert_eq (c.epoch, 11);
  for (uint32_t e = 0; e < 12; e++) {
    uint32_t want = 0;
    for (uint32_t k = e + 1; k <= 11 && !want; k++)
      for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (order[i] == k)
          want = k;
    cr_assert_eq (after (&ix, 42, e), want, "epoch %u", e);
  }
  struct visit_log l = { .chunk = 42 };
  cr_assert_eq (sc_index_filter (&ix, log_chunk, &l), 0);
  uint32_t sorted[] = { 1, 2, 3, 5, 7, 9, 11 };
  cr_assert_eq (l.n, 7);
  for (size_t i = 0; i < 7; i++) {
    cr_assert_eq (l.epoch[i], sorted[i], "visit %zu", i);
    cr_assert_eq (l.prev[i], i ? sorted[i - 1] : 0,
                  "prev_epoch of visit %zu", i);
  }
  ix_close (&ix);
}

Test (index, copies_count_follows_adds)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  for (uint64_t ch = 0; ch < 50; ch++)
    for (uint32_t e = 1; e <= ch % 5 + 1; e++)
      add (&ix, ch, e, ch * 10 + e);
  uint64_t want = 0;
  for (uint64_t ch = 0; ch < 50; ch++)
    want += ch % 5 + 1;
  cr_assert_eq (ix.chunks, 50);
  cr_assert_eq (ix.copies, want);
  ix_close (&ix);
}

Test (index, grows_to_100k_chunks_and_finds_every_one)
{
  enum { N = 100000 };
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  /* Sequential chunks and scattered large ones; every tenth has 3 copies. */
#define CHUNK_OF(i) ((i) % 2 ? (i) : ((i) << 24) + (1ull << 50) + 17)
  for (uint64_t i = 0; i < N; i++) {
    uint64_t ch = CHUNK_OF (i);
    add (&ix, ch, 2, i + 3);
    if (i % 10 == 0) {
      add (&ix, ch, 5, i + 3 + N);
      add (&ix, ch, 4, i + 3 + 2 * N);
    }
  }
  cr_assert_eq (ix.chunks, N);
  cr_assert_eq (ix.copies, N + 2 * (N / 10));
  for (uint64_t i = 0; i < N; i++) {
    uint64_t ch = CHUNK_OF (i);
    struct sc_copy c;
    cr_assert (sc_index_after (&ix, ch, 1, &c), "chunk %lu lost",
               (unsigned long) ch);
    cr_assert_eq (c.slot, i + 3);
    cr_assert (sc_index_last (&ix, ch, &c));
    cr_assert_eq (c.epoch, i % 10 == 0 ? 5 : 2);
    if (i % 10 == 0) {
      cr_assert (sc_index_after (&ix, ch, 2, &c));
      cr_assert_eq (c.slot, i + 3 + 2 * N);
    }
  }
  /* Chunks never added are not found. */
  for (uint64_t i = 0; i < 1000; i++)
    cr_assert (!found (&ix, (i << 24) + (1ull << 50) + 18));
  ix_close (&ix);
}

/* ---- removal -------------------------------------------------------- */

/* A keep-function over a small set of chunks: counts every visit of every
 * copy, and removes the copies whose (chunk, epoch) the test chose. */
struct chooser {
  const uint64_t *chunks;
  size_t n;
  unsigned *visits;             /* per chunk */
  bool (*drop) (uint64_t chunk, uint32_t epoch);
};

static size_t
chunk_pos (const struct chooser *ch, uint64_t chunk)
{
  for (size_t i = 0; i < ch->n; i++)
    if (ch->chunks[i] == chunk)
      return i;
  cr_assert_fail ("visited chunk %lu that was never added",
                  (unsigned long) chunk);
  return 0;
}

static bool
choose (void *opaque, uint64_t chunk, uint32_t prev, const struct sc_copy *c)
{
  struct chooser *ch = opaque;
  ch->visits[chunk_pos (ch, chunk)]++;
  return !ch->drop (chunk, c->epoch);
}

static bool
drop_odd_chunks (uint64_t chunk, uint32_t epoch)
{
  return chunk % 2;
}

Test (index, filter_removes_whole_chunks_and_keeps_the_rest_findable)
{
  enum { N = 5000 };
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  uint64_t *chunks = malloc (N * sizeof *chunks);
  unsigned *visits = calloc (N, sizeof *visits);
  for (uint64_t i = 0; i < N; i++) {
    chunks[i] = i * 3;          /* odd and even */
    add (&ix, chunks[i], 1, i + 2);
  }
  struct chooser ch = { chunks, N, visits, drop_odd_chunks };
  cr_assert_eq (sc_index_filter (&ix, choose, &ch), 0);
  for (uint64_t i = 0; i < N; i++) {
    cr_assert_eq (visits[i], 1, "chunk %lu visited %u times",
                  (unsigned long) chunks[i], visits[i]);
    cr_assert_eq (found (&ix, chunks[i]), chunks[i] % 2 == 0,
                  "chunk %lu", (unsigned long) chunks[i]);
  }
  cr_assert_eq (ix.chunks, N / 2);
  cr_assert_eq (ix.copies, N / 2);
  free (chunks);
  free (visits);
  ix_close (&ix);
}

static bool
drop_epoch_2 (uint64_t chunk, uint32_t epoch)
{
  return epoch == 2;
}

Test (index, filter_removes_single_copies_and_reports_prev_epochs)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  add (&ix, 5, 1, 10);
  add (&ix, 5, 2, 11);
  add (&ix, 5, 3, 12);
  add (&ix, 6, 2, 13);
  uint64_t chunks[] = { 5, 6 };
  unsigned visits[2] = { 0 };
  struct chooser ch = { chunks, 2, visits, drop_epoch_2 };
  cr_assert_eq (sc_index_filter (&ix, choose, &ch), 0);
  cr_assert_eq (visits[0], 3);
  cr_assert_eq (visits[1], 1);
  cr_assert (!found (&ix, 6), "its only copy was removed");
  cr_assert_eq (ix.chunks, 1);
  cr_assert_eq (ix.copies, 2);
  cr_assert_eq (after (&ix, 5, 0), 1);
  cr_assert_eq (after (&ix, 5, 1), 3, "the copy of epoch 2 is gone");
  cr_assert_eq (after (&ix, 5, 2), 3);
  /* prev_epoch now reflects the copies as they are. */
  struct visit_log l = { .chunk = 5 };
  sc_index_filter (&ix, log_chunk, &l);
  cr_assert_eq (l.n, 2);
  cr_assert_eq (l.prev[1], 1);
  /* The survivors can grow again. */
  add (&ix, 5, 2, 14);
  cr_assert_eq (after (&ix, 5, 1), 2);
  ix_close (&ix);
}

/* Black box: random subsets removed by a pass; every copy is visited
 * exactly once and every survivor is still found. */
struct counted {
  uint64_t *keys;               /* sorted */
  unsigned *visits;
  size_t n;
  uint64_t rng;
  bool *dropped;
};

static size_t
counted_pos (const struct counted *c, uint64_t key)
{
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->keys[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  cr_assert (lo < c->n && c->keys[lo] == key, "visited unknown chunk %lu",
             (unsigned long) key);
  return lo;
}

static bool
random_keep (void *opaque, uint64_t chunk, uint32_t prev,
             const struct sc_copy *copy)
{
  struct counted *c = opaque;
  size_t i = counted_pos (c, chunk);
  c->visits[i]++;
  return !c->dropped[i];
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

Test (index, filter_visits_each_copy_once_under_random_removal)
{
  enum { N = 716 };             /* a few leaves */
  uint64_t rng = 12345;
  unsigned worst = 1;
  for (int round = 0; round < 200; round++) {
    struct counted c = { .n = N };
    c.keys = malloc (N * sizeof *c.keys);
    c.visits = calloc (N, sizeof *c.visits);
    c.dropped = calloc (N, sizeof *c.dropped);
    struct sc_index ix;
    cr_assert_eq (ix_open (&ix), 0);
    for (size_t i = 0; i < N;) {
      uint64_t s = rng += 0x9e3779b97f4a7c15ull;
      s = (s ^ (s >> 31)) * 0xd6e8feb86659fd93ull;
      uint64_t key = (s ^ (s >> 32)) % 10000000;
      if (found (&ix, key))
        continue;
      add (&ix, key, 1, 2 + i);
      c.keys[i++] = key;
    }
    qsort (c.keys, N, sizeof *c.keys, cmp_u64);
    size_t nd = 0;
    for (size_t i = 0; i < N; i++) {
      c.dropped[i] = (c.keys[i] * 2654435761u + round) % 3 == 0;
      nd += c.dropped[i];
    }
    cr_assert_eq (sc_index_filter (&ix, random_keep, &c), 0);
    for (size_t i = 0; i < N; i++) {
      if (c.visits[i] > worst)
        worst = c.visits[i];
      cr_assert_eq (found (&ix, c.keys[i]), !c.dropped[i],
                    "round %d: chunk %lu %s", round,
                    (unsigned long) c.keys[i],
                    c.dropped[i] ? "still found" : "lost");
    }
    cr_assert_eq (ix.chunks, N - nd);
    for (size_t i = 0; i < N; i++)
      cr_assert_eq (c.visits[i], 1, "round %d: chunk %lu visited %u times "
                    "(its one copy)", round, (unsigned long) c.keys[i],
                    c.visits[i]);
    ix_close (&ix);
    free (c.keys);
    free (c.visits);
    free (c.dropped);
  }
  cr_assert_eq (worst, 1);
}

Test (index, remove_takes_out_one_copy_and_keeps_the_rest_findable)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  for (uint64_t k = 0; k < 3000; k++)
    for (uint32_t e = 1; e <= (k % 3) + 1; e++)
      cr_assert_eq (sc_index_add (&ix, k, (struct sc_copy) { k + 100, e, e }), 0);
  uint64_t copies = ix.copies;
  /* Remove the first copy of every chunk: chunks with one copy vanish. */
  for (uint64_t k = 0; k < 3000; k++)
    cr_assert (sc_index_remove (&ix, k, 1));
  cr_assert (!sc_index_remove (&ix, 0, 1), "already gone");
  cr_assert_eq (ix.copies, copies - 3000);
  for (uint64_t k = 0; k < 3000; k++) {
    struct sc_copy c;
    cr_assert_eq (sc_index_find (&ix, k, 1, &c), false);
    for (uint32_t e = 2; e <= (k % 3) + 1; e++) {
      cr_assert (sc_index_find (&ix, k, e, &c), "chunk %lu epoch %u",
                 (unsigned long) k, e);
      cr_assert_eq (c.crc, e);
    }
    cr_assert_eq (sc_index_last (&ix, k, &c), k % 3 != 0);
  }
  ix_close (&ix);
}

Test (index, the_reserved_epoch_is_refused)
{
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  cr_assert_eq (sc_index_add (&ix, 1, (struct sc_copy) { 5, UINT32_MAX, 0 }),
                -EINVAL);
  add (&ix, 1, UINT32_MAX - 1, 5);
  cr_assert_eq (after (&ix, 1, 0), UINT32_MAX - 1);
  ix_close (&ix);
}

/* Random adds, removals and filters over a few chunks with many copies
 * each, against a plain array model: every slot, epoch and CRC survives
 * the moves between one inline copy and a heap array. */
#define MODEL_CHUNKS 64
#define MODEL_EPOCHS 40
struct model { bool has[MODEL_CHUNKS][MODEL_EPOCHS + 1]; uint64_t copies; };

static bool
drop_epoch_divisible_by_7 (void *opaque, uint64_t chunk, uint32_t prev,
                           const struct sc_copy *c)
{
  struct model *m = opaque;
  (void) prev;
  if (c->epoch % 7 != 0)
    return true;
  m->has[chunk][c->epoch] = false;
  m->copies--;
  return false;
}

Test (index, random_operations_match_a_model)
{
  struct sc_index ix;
  struct model m = { 0 };
  uint64_t rng = 12345;
  cr_assert_eq (ix_open (&ix), 0);
  for (int step = 0; step < 200000; step++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t chunk = (rng >> 33) % MODEL_CHUNKS;
    uint32_t epoch = 1 + (uint32_t) ((rng >> 45) % MODEL_EPOCHS);
    struct sc_copy c = { chunk * 1000 + epoch, epoch, (uint32_t) (chunk ^ epoch) };
    if ((rng >> 20) % 3 != 0) {
      int r = sc_index_add (&ix, chunk, c);
      cr_assert_eq (r, m.has[chunk][epoch] ? -EEXIST : 0);
      if (r == 0)
        m.copies++;
      m.has[chunk][epoch] = true;
    }
    else {
      cr_assert_eq (sc_index_remove (&ix, chunk, epoch), m.has[chunk][epoch]);
      if (m.has[chunk][epoch])
        m.copies--;
      m.has[chunk][epoch] = false;
    }
    if (step % 50000 == 49999)
      cr_assert_eq (sc_index_filter (&ix, drop_epoch_divisible_by_7, &m), 0);
    if (step % 1000 != 0)
      continue;
    cr_assert_eq (ix.copies, m.copies);
    for (uint64_t k = 0; k < MODEL_CHUNKS; k++) {
      uint32_t last = 0;
      for (uint32_t e = 1; e <= MODEL_EPOCHS; e++) {
        struct sc_copy got;
        bool there = sc_index_find (&ix, k, e, &got);
        cr_assert_eq (there, m.has[k][e], "chunk %lu epoch %u",
                      (unsigned long) k, e);
        if (there) {
          cr_assert_eq (got.slot, k * 1000 + e);
          cr_assert_eq (got.crc, (uint32_t) (k ^ e));
          last = e;
        }
        /* What a snapshot of epoch e - 1 sees: the first copy >= e. */
        uint32_t want = 0;
        for (uint32_t f = e; f <= MODEL_EPOCHS && !want; f++)
          if (m.has[k][f])
            want = f;
        cr_assert_eq (after (&ix, k, e - 1), want);
      }
      struct sc_copy l;
      cr_assert_eq (sc_index_last (&ix, k, &l), last != 0);
      if (last)
        cr_assert_eq (l.epoch, last);
    }
  }
  ix_close (&ix);
}

/* ---- sliced visits ----------------------------------------------------- */

/* Chunks numbered below SLICE_CHUNKS; one copy each (epoch 1) unless
 * noted.  seen[]: visits during the pass. */
#define SLICE_CHUNKS 20000
struct slice_log {
  uint32_t seen[SLICE_CHUNKS];
  bool there[SLICE_CHUNKS];     /* in the map now */
  bool drop_odd;                /* keep false for odd chunks */
};

static uint64_t
slice_rand (uint64_t *s, uint64_t n)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (*s >> 33) % n;
}

static bool
slice_visit (void *opaque, uint64_t chunk, uint32_t prev,
             const struct sc_copy *c)
{
  struct slice_log *l = opaque;
  (void) prev;
  (void) c;
  cr_assert_lt (chunk, SLICE_CHUNKS);
  l->seen[chunk]++;
  cr_assert (l->there[chunk], "chunk %lu is not in the map",
             (unsigned long) chunk);
  if (l->drop_odd && chunk % 2) {
    l->there[chunk] = false;
    return false;
  }
  return true;
}

/* Slices of a small budget, with the map changing between them (adds
 * that grow the table, removes that move entries back in their
 * clusters): every copy present throughout is visited, and a whole pass
 * ends. */
Test (index, slices_skip_no_copy_present_throughout)
{
  for (int round = 0; round < 12; round++) {
    struct sc_index ix;
    static struct slice_log l;
    static bool churned[SLICE_CHUNKS];
    bool *there = l.there;
    memset (&l, 0, sizeof l);
    memset (churned, 0, sizeof churned);
    uint64_t rng = 777 + (uint64_t) round;
    cr_assert_eq (ix_open (&ix), 0);
    /* 13000 chunks: a table of 16384 kept 79% full (long clusters, where
     * a removal moves entries), until the churn grows it. */
    for (uint64_t k = 0; k < 13000;) {
      uint64_t chunk = slice_rand (&rng, SLICE_CHUNKS);
      if (!there[chunk]) {
        add (&ix, chunk, 1, chunk + 10);
        there[chunk] = true;
        k++;
      }
    }
    l.drop_odd = round % 2;
    uint64_t cursor = 0;
    int r, slices = 0;
    do {
      r = sc_index_filter_slice (&ix, &cursor, 64, slice_visit, &l);
      cr_assert_geq (r, 0);
      slices++;
      cr_assert_lt (slices, 100000, "the pass ends");
      /* Churn: remove some, add some (rounds 2 and 3 of every 4: enough
       * to grow the table). */
      for (int i = 0; i < (round % 4 >= 2 ? 40 : 8); i++) {
        uint64_t chunk = slice_rand (&rng, SLICE_CHUNKS);
        if (there[chunk]) {
          cr_assert (sc_index_remove (&ix, chunk, 1));
          there[chunk] = false;
          churned[chunk] = true;
        }
        else if (!there[chunk] && !l.seen[chunk]) {
          add (&ix, chunk, 1, chunk + 10);
          there[chunk] = true;
          churned[chunk] = true;
        }
      }
    } while (r == 0);
    cr_assert_gt (slices, 10, "a small budget makes many slices");
    uint64_t copies = 0;
    for (uint64_t k = 0; k < SLICE_CHUNKS; k++) {
      if (there[k] && !churned[k])
        cr_assert_geq (l.seen[k], 1, "round %d: chunk %lu present "
                       "throughout was skipped", round, (unsigned long) k);
      if (l.drop_odd && k % 2 && !churned[k])
        cr_assert (!there[k], "round %d: odd chunk %lu stayed", round,
                   (unsigned long) k);
      cr_assert_eq (found (&ix, k), there[k], "round %d chunk %lu", round,
                    (unsigned long) k);
      copies += there[k];
    }
    cr_assert_eq (ix.copies, copies);
    ix_close (&ix);
  }
}

/* ---- the tree ------------------------------------------------------- */

Test (index, a_chunk_with_many_copies_spans_leaves)
{
  enum { E = 1000 };
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  /* Epochs 1..E of chunk 5 in a scrambled order, between neighbours. */
  for (uint32_t i = 0; i < E; i++) {
    uint32_t e = 1 + (i * 389u) % E;
    add (&ix, 5, e, 5000 + e);
    if (i % 3 == 0) {
      add (&ix, 4, i + 1, 4000 + i);
      add (&ix, 6, i + 1, 6000 + i);
    }
  }
  cr_assert_gt (ix.height, 0, "more than one leaf");
  struct sc_copy c;
  cr_assert_eq (sc_index_last (&ix, 5, &c), 1);
  cr_assert_eq (c.epoch, E);
  for (uint32_t e = 0; e <= E; e++) {
    cr_assert_eq (after (&ix, 5, e), e < E ? e + 1 : 0, "after %u", e);
    int r = sc_index_before (&ix, 5, e, &c);
    cr_assert_eq (r, e > 1, "before %u", e);
    if (r)
      cr_assert_eq (c.epoch, e - 1);
    if (e) {
      cr_assert_eq (sc_index_find (&ix, 5, e, &c), 1);
      cr_assert_eq (c.slot, 5000 + e);
    }
  }
  cr_assert_eq (ix.chunks, 3);
  /* Take out every second copy of chunk 5: the rest still answer. */
  for (uint32_t e = 2; e <= E; e += 2)
    cr_assert_eq (sc_index_remove (&ix, 5, e), 1);
  for (uint32_t e = 0; e < E; e++)
    cr_assert_eq (after (&ix, 5, e), e % 2 ? e + 2 <= E ? e + 2 : 0 : e + 1,
                  "after %u", e);
  cr_assert_eq (ix.chunks, 3);
  ix_close (&ix);
}

Test (index, leaves_emptied_by_removals_leave_and_their_pages_serve_again)
{
  enum { N = 60000 };
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  for (uint64_t k = 0; k < N; k++)
    add (&ix, k, 3, k + 10);
  for (uint64_t k = 0; k < N; k++)
    if (k % 10000 != 7)
      cr_assert_eq (sc_index_remove (&ix, k, 3), 1);
  cr_assert_eq (ix.copies, N / 10000);
  cr_assert_eq (ix.chunks, N / 10000);
  for (uint64_t k = 0; k < N; k += 37)
    cr_assert_eq (found (&ix, k), k % 10000 == 7, "chunk %lu",
                  (unsigned long) k);
  unsigned visits[N / 10000] = { 0 };
  uint64_t chunks[N / 10000];
  for (size_t i = 0; i < N / 10000; i++)
    chunks[i] = i * 10000 + 7;
  struct chooser ch = { chunks, N / 10000, visits, drop_epoch_2 };
  cr_assert_eq (sc_index_filter (&ix, choose, &ch), 0);
  for (size_t i = 0; i < N / 10000; i++)
    cr_assert_eq (visits[i], 1);
  uint32_t pages = ix.pages;
  for (uint64_t k = 0; k < N; k++)
    if (k % 10000 != 7)
      add (&ix, k, 4, k + 20);
  cr_assert_leq (ix.pages, pages + pages / 8, "the pages of the emptied "
                 "leaves serve again (%u pages before, %u after)", pages,
                 ix.pages);
  for (uint64_t k = 0; k < N; k += 37)
    cr_assert_eq (after (&ix, k, 0), k % 10000 == 7 ? 3 : 4);
  ix_close (&ix);
}

Test (index, copies_in_chunk_order_fill_their_leaves)
{
  enum { N = 170 * 600 };
  struct sc_index ix;
  cr_assert_eq (ix_open (&ix), 0);
  for (uint64_t k = 0; k < N; k++)
    add (&ix, k * 2, 1, k + 10);
  cr_assert_leq (ix.pages, N / 170 + 6, "%u pages for %u copies",
                 ix.pages, (unsigned) N);
  ix_close (&ix);
}

/* A scratch file that fails: its fd is made /dev/full (writes fail with
 * ENOSPC, reads see zeros, not nodes).  A lookup then fails, never
 * answers "no copy" for a chunk that has one, and the error sticks. */
Test (index, a_failed_scratch_file_fails_every_later_call)
{
  enum { N = 20000 };
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (0, &pc), 0);
  int fd = sc_pc_scratch_file ("/tmp");
  cr_assert_geq (fd, 0);
  struct sc_index ix;
  cr_assert_eq (sc_index_init (&ix, pc, fd), 0);
  for (uint64_t k = 0; k < N; k++)
    add (&ix, k * 7919 % N, 1, k + 10);
  int full = open ("/dev/full", O_RDWR);
  cr_assert_geq (full, 0);
  cr_assert_geq (dup2 (full, fd), 0);
  close (full);
  int err = 0;
  for (uint64_t k = 0; k < N && !err; k++) {
    struct sc_copy c;
    int r = sc_index_after (&ix, (k * 104729) % N, 0, &c);
    cr_assert_neq (r, 0, "chunk %lu: no copy, although it has one",
                   (unsigned long) k);
    if (r < 0)
      err = r;
  }
  cr_assert_lt (err, 0, "with a cache of 16 pages, a lookup reads a page");
  cr_assert_eq (sc_index_error (&ix), -err);
  struct sc_copy c;
  cr_assert_eq (sc_index_last (&ix, 1, &c), err);
  cr_assert_eq (sc_index_add (&ix, N + 1, (struct sc_copy) { 5, 1, 0 }), err);
  cr_assert_eq (sc_index_remove (&ix, 1, 1), err);
  cr_assert_eq (sc_index_set_slot (&ix, 1, 1, 9, 0), err);
  uint64_t chunks[1];
  unsigned visits[1];
  struct chooser ch = { chunks, 0, visits, drop_epoch_2 };
  cr_assert_eq (sc_index_filter (&ix, choose, &ch), err);
  ix_close (&ix);
}
