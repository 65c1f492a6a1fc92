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

/* ---- sliced garbage collection ----------------------------------------- */

#define GC_CHUNKS 1500

static unsigned between_calls;
static unsigned between_sleep_us;

static void
count_between (struct sc_diff *d)
{
  (void) d;
  between_calls++;
  if (between_sleep_us)
    usleep (between_sleep_us);
}

struct keep_check { struct sc_diff *d; struct keepers k; uint64_t bad; };

static bool
needed_visit (void *opaque, uint64_t chunk, uint32_t prev,
              const struct sc_copy *c)
{
  struct keep_check *kc = opaque;
  struct keepers m = { .epochs = kc->k.marks, .n = kc->k.nmarks };
  if (!copymap_needed (kc->d, &kc->k, prev, c->epoch - 1, chunk) &&
      !copymap_needed (kc->d, &m, prev, c->epoch - 1, chunk))
    kc->bad++;
  return true;
}

/* Every copy left is needed by a kept snapshot or checkpoint. */
static void
assert_no_garbage (struct sc_diff *d)
{
  pthread_mutex_lock (&d->lock);
  struct keep_check kc = { .d = d };
  cr_assert_eq (keepers_get (d, &kc.k), 0);
  cr_assert_eq (copymap_visit (d, needed_visit, &kc), 0);
  keepers_free (&kc.k);
  cr_assert (!gc_pending (d), "no pass pending after the delete");
  pthread_mutex_unlock (&d->lock);
  cr_assert_eq (kc.bad, 0, "%lu copies nobody needs are left",
                (unsigned long) kc.bad);
}

/* A delete frees in many slices, leaves no copy that nobody needs, and
 * its slots are reused by the next copies. */
Test (usage, delete_frees_in_slices_completely_and_slots_are_reused)
{
  struct uh_area a;
  uh_area_create (&a, GC_CHUNKS * CS, CS, 7);
  uh_snap (a.d, "s1");
  uint64_t high = 0;
  for (uint64_t c = 0; c < GC_CHUNKS; c++) {
    uint64_t off = uh_copy_chunk (a.d, c, 100 + c);
    high = off > high ? off : high;
  }
  uh_snap (a.d, "s2");
  for (uint64_t c = 0; c < GC_CHUNKS; c += 3)
    uh_copy_chunk (a.d, c, 5000 + c);
  uint64_t slots_before = uh_stats (a.d).data_slots;
  a.d->gc_slice = 64;
  a.d->gc_between = count_between;
  between_calls = 0;
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  cr_assert_gt (between_calls, 15, "%u slices", between_calls);
  assert_counters (a.d, "after the delete");
  assert_used (a.d, "after the delete");
  assert_no_garbage (a.d);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.copies, (GC_CHUNKS + 2) / 3, "only s2's copies stay");
  cr_assert_eq (st.data_slots, slots_before - GC_CHUNKS);
  for (uint64_t c = 0; c < GC_CHUNKS; c++)
    if (c % 3 == 0)
      uh_assert_sees_copy (a.d, "s2", c, 5000 + c);
    else
      uh_assert_sees_origin (a.d, "s2", c);
  /* The freed slots are taken again, lowest first: nothing grows. */
  for (uint64_t c = 1; c < GC_CHUNKS; c += 3) {
    uint64_t off = uh_copy_chunk (a.d, c, 7000 + c);
    cr_assert_leq (off, high, "slot at %lu past the old end %lu",
                   (unsigned long) off, (unsigned long) high);
  }
  for (uint64_t c = 1; c < GC_CHUNKS; c += 3)
    uh_assert_sees_copy (a.d, "s2", c, 7000 + c);
  /* A restart finds the same. */
  uh_area_reopen (&a, 0);
  assert_counters (a.d, "after a reopen");
  assert_no_garbage (a.d);
  uh_area_free (&a);
}

/* delete --all's batch (gc_hold): one pass for every delete. */
Test (usage, held_deletes_share_one_pass)
{
  struct uh_area a;
  uh_area_create (&a, 300 * CS, CS, 8);
  char name[16];
  for (int s = 0; s < 6; s++) {
    snprintf (name, sizeof name, "s%d", s);
    uh_snap (a.d, name);
    for (uint64_t c = 0; c < 300; c++)
      uh_copy_chunk (a.d, c, (uint64_t) s * 1000 + c);
  }
  a.d->gc_slice = 64;
  a.d->gc_between = count_between;
  between_calls = 0;
  pthread_mutex_lock (&a.d->lock);
  gc_hold (a.d);
  pthread_mutex_unlock (&a.d->lock);
  for (int s = 0; s < 6; s++) {
    snprintf (name, sizeof name, "s%d", s);
    cr_assert_eq (sc_diff_snapshot_delete (a.d, name), 0);
  }
  cr_assert_eq (between_calls, 0, "no pass while held");
  uint64_t passes = a.d->gc_passes;
  pthread_mutex_lock (&a.d->lock);
  cr_assert (gc_pending (a.d));
  cr_assert_eq (gc_release (a.d), 0);
  pthread_mutex_unlock (&a.d->lock);
  cr_assert_eq (a.d->gc_passes, passes + 1, "one pass for six deletes");
  cr_assert_geq (between_calls, 6 * 300 / 64, "%u slices", between_calls);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.copies, 0);
  cr_assert_eq (st.data_slots, 0);
  assert_no_garbage (a.d);
  uh_area_free (&a);
}

/* Live writes while a delete frees in slices: the surviving snapshot
 * reads exactly what it should, also from slots freed and taken again
 * meanwhile (a slot is punched before it can be taken). */
struct writer {
  struct sc_diff *d;
  volatile bool stop;
  int err;
  uint64_t done;
};

static void *
write_odd_chunks (void *opaque)
{
  struct writer *w = opaque;
  for (uint64_t c = 1; c < GC_CHUNKS && !w->stop; c += 2) {
    int r = uh_copy_reserved (w->d, c, 9000 + c);
    if (r < 0 && !w->err)
      w->err = r;
    w->done++;
  }
  return NULL;
}

Test (usage, delete_while_writes_run_serves_the_survivor_right)
{
  if (!uh_punch_reads_zeros ())
    cr_skip_test ("punched holes do not read as zeros here");
  struct uh_area a;
  uh_area_create (&a, GC_CHUNKS * CS, CS, 9);
  uh_snap (a.d, "s1");
  for (uint64_t c = 0; c < GC_CHUNKS; c++)
    uh_copy_chunk (a.d, c, 100 + c);
  uh_snap (a.d, "s2");
  for (uint64_t c = 0; c < GC_CHUNKS; c += 2)
    uh_copy_chunk (a.d, c, 5000 + c);
  a.d->gc_slice = 32;
  a.d->gc_between = count_between;
  between_calls = 0;
  between_sleep_us = 300;
  struct writer w = { .d = a.d };
  pthread_t t;
  cr_assert_eq (pthread_create (&t, NULL, write_odd_chunks, &w), 0);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  pthread_join (t, NULL);
  between_sleep_us = 0;
  cr_assert_eq (w.err, 0, "a live write failed: %d", w.err);
  cr_assert_gt (between_calls, 20);
  for (uint64_t c = 0; c < GC_CHUNKS; c++)
    uh_assert_sees_copy (a.d, "s2", c, c % 2 ? 9000 + c : 5000 + c);
  assert_counters (a.d, "after the delete");
  assert_used (a.d, "after the delete");
  assert_no_garbage (a.d);
  uh_area_reopen (&a, 0);
  for (uint64_t c = 0; c < GC_CHUNKS; c++)
    uh_assert_sees_copy (a.d, "s2", c, c % 2 ? 9000 + c : 5000 + c);
  uh_area_free (&a);
}

/* A write that finds the diff area full while a delete's frees are still
 * pending waits for them: it neither fails (on-full=fail-writes) nor
 * drops another snapshot (delete-oldest). */
static struct {
  struct sc_diff *d;
  pthread_t t;
  bool started;
  int result;
  uint64_t waits0;
} late;

static void *
late_write (void *opaque)
{
  (void) opaque;
  late.result = uh_copy_reserved (late.d, GC_CHUNKS - 1, 4242);
  return NULL;
}

static void
start_late_writer (struct sc_diff *d)
{
  if (late.started)
    return;
  late.started = true;
  cr_assert_eq (pthread_create (&late.t, NULL, late_write, NULL), 0);
  /* Until it waits for space (or, without the wait, has failed). */
  for (int i = 0; i < 2000 && __atomic_load_n (&d->space_waits,
                                               __ATOMIC_RELAXED) ==
                              late.waits0 && late.result == 1; i++)
    usleep (1000);
}

static void
full_write_waits (enum sc_on_full policy)
{
  struct uh_area a;
  uh_area_create (&a, GC_CHUNKS * CS, CS, 10);
  uh_snap (a.d, "s1");
  for (uint64_t c = 0; c < 400; c++)
    uh_copy_chunk (a.d, c, 100 + c);
  uh_snap (a.d, "s2");
  /* The limit: what is used now, so no further copy fits. */
  pthread_mutex_lock (&a.d->lock);
  uint64_t max = CS;
  while (!space_fits (a.d, max, 0))
    max += CS;
  pthread_mutex_unlock (&a.d->lock);
  cr_assert_eq (sc_diff_set_max (a.d, max, 0, NULL), 0);
  sc_diff_set_policy (a.d, policy, 0);
  memset (&late, 0, sizeof late);
  late.d = a.d;
  late.result = 1;
  late.waits0 = a.d->space_waits;
  a.d->gc_slice = 16;
  a.d->gc_between = start_late_writer;
  uint64_t drops0 = a.d->drops_total;
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  cr_assert (late.started);
  pthread_join (late.t, NULL);
  cr_assert_gt (a.d->space_waits, late.waits0, "the write waited");
  cr_assert_eq (late.result, 0, "the write got %d", late.result);
  cr_assert_eq (a.d->drops_total, drops0, "no snapshot dropped");
  uh_find (a.d, "s2");
  uh_assert_sees_copy (a.d, "s2", GC_CHUNKS - 1, 4242);
  uh_area_free (&a);
}

Test (usage, full_write_waits_for_pending_frees_fail_writes)
{
  full_write_waits (SC_ON_FULL_FAIL_WRITES);
}

Test (usage, full_write_waits_for_pending_frees_delete_oldest)
{
  full_write_waits (SC_ON_FULL_DELETE_OLDEST);
}
