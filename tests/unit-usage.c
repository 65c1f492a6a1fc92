/* Unit tests: per-snapshot usage (cow/usage.c) and sliced garbage
 * collection (cow/gc.c).  The usage counters against a recount from the
 * copy map, and the used and meta bytes of every snapshot against the
 * full scan that computed them before the counters (re-derived here),
 * on random histories of copies, marks, deletes, checkpoints, demotions
 * and reopens; deletes in slices while writes run; a pass's
 * completeness; and a write short of space while frees are pending. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea-internal.h"
#include "cow/format.h"
#include "tests/unit-helpers.h"

TestSuite (usage, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

/* ---- the oracles -------------------------------------------------------- */

/* The classes recounted from the map. */
struct recount {
  struct usage_class v[4096];
  size_t n;
};

static bool
recount_visit (void *opaque, uint64_t chunk, uint32_t prev,
               const struct sc_copy *c)
{
  struct recount *rc = opaque;
  (void) chunk;
  if (c->slot == SC_SLOT_ZERO)
    return true;
  size_t i = 0;
  while (i < rc->n && !(rc->v[i].from == prev && rc->v[i].to == c->epoch - 1))
    i++;
  if (i == rc->n) {
    cr_assert_lt (rc->n, 4096);
    rc->v[rc->n++] = (struct usage_class) { .from = prev,
                                            .to = c->epoch - 1 };
  }
  if (c->slot == SC_SLOT_MARK)
    rc->v[i].marks++;
  else
    rc->v[i].data++;
  return true;
}

/* The counters are exactly the recount (no class empty, none missing). */
static void
assert_counters (struct sc_diff *d, const char *when)
{
  static struct recount rc;
  pthread_mutex_lock (&d->lock);
  rc.n = 0;
  cr_assert_eq (copymap_visit (d, recount_visit, &rc), 0);
  const struct sc_usage *u = &d->usage;
  cr_assert (!u->stale, "%s: counters stale", when);
  cr_assert_eq (u->n, rc.n, "%s: %zu classes, the map has %zu", when, u->n,
                rc.n);
  for (size_t i = 0; i < rc.n; i++) {
    size_t k = 0;
    while (k < u->n && !(u->v[k].from == rc.v[i].from &&
                         u->v[k].to == rc.v[i].to))
      k++;
    cr_assert_lt (k, u->n, "%s: class [%u, %u] missing", when, rc.v[i].from,
                  rc.v[i].to);
    cr_assert_eq (u->v[k].data, rc.v[i].data, "%s: class [%u, %u] data %lu, "
                  "map %lu", when, rc.v[i].from, rc.v[i].to,
                  (unsigned long) u->v[k].data,
                  (unsigned long) rc.v[i].data);
    cr_assert_eq (u->v[k].marks, rc.v[i].marks, "%s: class [%u, %u] marks",
                  when, rc.v[i].from, rc.v[i].to);
  }
  for (size_t k = 1; k < u->n; k++) {
    uint64_t was = (uint64_t) u->v[k - 1].from << 32 | u->v[k - 1].to;
    uint64_t is = (uint64_t) u->v[k].from << 32 | u->v[k].to;
    cr_assert_lt (was, is, "%s: classes sorted", when);
  }
  pthread_mutex_unlock (&d->lock);
}

/* The answer before the counters: one pass over every copy. */
struct scan {
  struct sc_diff *d;
  uint64_t *bytes, *cbytes;
};

static size_t
only_one (const uint32_t *a, size_t n, uint32_t from, uint32_t to)
{
  size_t hits = 0, at = n;
  for (size_t i = 0; i < n; i++)
    if (a[i] >= from && a[i] <= to) {
      hits++;
      at = i;
    }
  return hits == 1 ? at : n;
}

static bool
scan_visit (void *opaque, uint64_t chunk, uint32_t prev,
            const struct sc_copy *c)
{
  struct scan *s = opaque;
  struct sc_diff *d = s->d;
  (void) chunk;
  uint32_t from = prev, to = c->epoch - 1;
  if (c->slot == SC_SLOT_MARK) {
    size_t i = only_one (d->cvalid, d->ncvalid, from, to);
    bool snap = false;
    for (size_t k = 0; k < d->nvalid; k++)
      snap |= d->valid[k] >= from && d->valid[k] <= to;
    if (i < d->ncvalid && !snap)
      s->cbytes[i] += sizeof (struct sc_rec_copy);
  }
  else if (c->slot != SC_SLOT_ZERO) {
    size_t i = only_one (d->valid, d->nvalid, from, to);
    if (i < d->nvalid)
      s->bytes[i] += d->chunk_size;
  }
  return true;
}

static void
assert_used (struct sc_diff *d, const char *when)
{
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  pthread_mutex_lock (&d->lock);
  uint64_t *b = calloc (d->nvalid + d->ncvalid + 1, sizeof *b);
  cr_assert_not_null (b);
  struct scan s = { d, b, b + d->nvalid };
  cr_assert_eq (copymap_visit (d, scan_visit, &s), 0);
  for (size_t i = 0; i < n; i++) {
    uint64_t want = 0, cwant = 0;
    if (v[i].invalid_reason == SC_VALID) {
      for (size_t k = 0; k < d->nvalid && !v[i].checkpoint; k++)
        if (d->valid[k] == v[i].epoch)
          want = s.bytes[k];
      for (size_t k = 0; k < d->ncvalid && v[i].checkpoint; k++)
        if (d->cvalid[k] == v[i].epoch)
          cwant = s.cbytes[k];
    }
    cr_assert_eq (v[i].used_bytes, want, "%s: %s used %lu, the scan says "
                  "%lu", when, v[i].name, (unsigned long) v[i].used_bytes,
                  (unsigned long) want);
    cr_assert_eq (v[i].meta_bytes, cwant, "%s: %s meta %lu, the scan says "
                  "%lu", when, v[i].name, (unsigned long) v[i].meta_bytes,
                  (unsigned long) cwant);
  }
  pthread_mutex_unlock (&d->lock);
  free (b);
  free (v);
}

/* ---- random histories -------------------------------------------------- */

#define NCHUNKS 48

/* A live write of chunk c as the engine makes it: its copy if a
 * snapshot needs one (zero now and then), and its mark if a checkpoint
 * needs one. */
static void
live_write (struct sc_diff *d, uint64_t c, uint64_t tag, bool zero)
{
  if (sc_diff_needs_copy (d, c)) {
    if (zero)
      uh_copy_zero (d, c);
    else
      uh_copy_chunk (d, c, tag);
  }
  uint64_t seq = 0;
  cr_assert_eq (sc_diff_mark_changes (d, c, c, &seq), 0);
  if (seq)
    cr_assert_eq (sc_diff_commit (d, seq), 0);
}

/* A random listed snapshot or checkpoint's name; false if none. */
static bool
pick (struct sc_diff *d, uint64_t *rng, char *name, bool snapshots_only)
{
  struct sc_snapshot_info *v;
  size_t n, k = 0;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (!v[i].clone && (!snapshots_only || !v[i].checkpoint))
      v[k++] = v[i];
  if (k)
    snprintf (name, SC_NAME_MAX + 1, "%s",
              v[uh_rand_below (rng, k)].name);
  free (v);
  return k > 0;
}

static void
random_history (uint64_t seed, int steps)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, seed);
  uint64_t rng = seed;
  char name[SC_NAME_MAX + 1], when[96];
  int made = 0;
  for (int step = 0; step < steps; step++) {
    uint64_t op = uh_rand_below (&rng, 100);
    snprintf (when, sizeof when, "seed %lu step %d op %lu",
              (unsigned long) seed, step, (unsigned long) op);
    if (op < 10) {
      struct sc_snapshot_opts o = { .checkpoint = op < 4,
                                    .delete_oldest = true };
      snprintf (name, sizeof name, "s%d", made++);
      cr_assert_eq (sc_diff_snapshot_create (a.d, name, &o, NULL), 0, "%s",
                    when);
    }
    else if (op < 16) {
      if (pick (a.d, &rng, name, false))
        cr_assert_eq (sc_diff_snapshot_delete (a.d, name), 0, "%s", when);
    }
    else if (op < 19) {
      if (pick (a.d, &rng, name, true))
        cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, name), 0, "%s",
                      when);
    }
    else if (op < 20)
      uh_area_reopen (&a, 0);   /* replay counts them again */
    else
      live_write (a.d, uh_rand_below (&rng, NCHUNKS), 1000 + (uint64_t) step,
                  op < 26);
    assert_counters (a.d, when);
    assert_used (a.d, when);
  }
  uh_area_free (&a);
}

Test (usage, used_bytes_equal_the_full_scan_on_random_histories_1)
{
  random_history (1, 600);
}

Test (usage, used_bytes_equal_the_full_scan_on_random_histories_2)
{
  random_history (2, 600);
}

Test (usage, used_bytes_equal_the_full_scan_on_random_histories_3)
{
  random_history (3, 600);
}

/* Copies added out of epoch order (as replay may meet them) and removed
 * from the middle: each changes the range of the chunk's next copy. */
Test (usage, adds_and_removes_in_the_middle_move_the_next_copy)
{
  struct uh_area a;
  uh_area_create (&a, 8 * CS, CS, 5);
  struct sc_diff *d = a.d;
  uint64_t rng = 99;
  bool has[8][40] = { { false } };
  for (int step = 0; step < 4000; step++) {
    uint64_t c = uh_rand_below (&rng, 8);
    uint32_t e = 1 + (uint32_t) uh_rand_below (&rng, 39);
    pthread_mutex_lock (&d->lock);
    if (!has[c][e]) {
      uint64_t k = uh_rand_below (&rng, 3);
      struct sc_copy cp = { .slot = k == 0 ? SC_SLOT_ZERO : k == 1
                            ? SC_SLOT_MARK : 1000 + c * 40 + e, .epoch = e };
      cr_assert_eq (copymap_add (d, c, cp), 0);
      has[c][e] = true;
    }
    else {
      struct sc_copy cp;
      cr_assert (copymap_find (d, c, e, &cp));
      if (sc_copy_has_slot (&cp) && uh_rand_below (&rng, 3) == 0)
        copymap_demote (d, c, copymap_prev_epoch (d, c, e), &cp, false);
      else {
        copymap_remove (d, c, e);
        has[c][e] = false;
      }
    }
    pthread_mutex_unlock (&d->lock);
    if (step % 50 == 0)
      assert_counters (d, "direct");
  }
  assert_counters (d, "direct, end");
  /* Remove everything: no class is left. */
  pthread_mutex_lock (&d->lock);
  for (uint64_t c = 0; c < 8; c++)
    for (uint32_t e = 1; e < 40; e++)
      if (has[c][e])
        copymap_remove (d, c, e);
  cr_assert_eq (d->usage.n, 0, "%zu classes left", d->usage.n);
  pthread_mutex_unlock (&d->lock);
  uh_area_free (&a);
}
