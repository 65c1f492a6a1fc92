/* Unit tests: crash safety and robustness of the diff-area space code:
 * policy drops are durable before any of their space is reused, a read in
 * flight does not make delete-oldest drop more than it must, and replay
 * refuses space records (drops, limits) that make no sense. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "tests/unit-helpers.h"

TestSuite (space_safety, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

static size_t
nsnaps (struct sc_diff *d)
{
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  free (v);
  return n;
}

/* ---- a drop is durable before its space is given back ---------------- */

static struct sc_diff *g_d;
static uint64_t g_pinned_id;
static bool g_pinned, g_armed;
static int g_in_window, g_punch_in_window, g_puts_in_window;

/* At the fdatasync that makes the SNAP_DROP record durable, the last
 * reader of the dropped snapshot finishes (the diff lock is free while a
 * commit syncs).  Nothing of it may be punched before that sync. */
static int
put_in_drop_window (const struct sc_io_req *q)
{
  if (!g_armed)
    return 0;
  if (q->op == SC_IO_FALLOCATE && (q->flags & FALLOC_FL_PUNCH_HOLE) &&
      g_in_window)
    g_punch_in_window++;
  if (q->op == SC_IO_FDATASYNC && g_pinned) {
    struct sc_diff_stats st;
    sc_diff_stats (g_d, &st);
    if (st.dropped > 0) {
      g_in_window = 1;
      g_pinned = false;
      sc_diff_snapshot_put (g_d, g_pinned_id);
      g_puts_in_window++;
      g_in_window = 0;
    }
  }
  return 0;
}

Test (space_safety, a_put_does_not_free_a_drop_that_is_not_durable)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 5);
  g_d = a.d;
  sc_diff_set_policy (a.d, SC_ON_FULL_DELETE_OLDEST, 0);
  cr_assert_eq (sc_diff_set_max (a.d, 24 * CS, 0, NULL), 0);
  struct sc_snapshot_info sa = uh_snap (a.d, "a");
  for (uint64_t c = 0; c < 4; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, 100 + c), 0);
  uh_snap (a.d, "b");
  cr_assert_eq (sc_diff_snapshot_get (a.d, sa.id, NULL), 0);
  g_pinned_id = sa.id;
  g_pinned = true;
  sc_io_fault_hook = put_in_drop_window;
  g_armed = true;
  int r = 0;
  uint64_t c;
  for (c = 4; c < 64 && g_pinned && r == 0; c++)
    r = uh_copy_reserved (a.d, c, 200 + c);
  g_armed = false;
  sc_io_fault_hook = NULL;
  cr_assert_eq (r, 0);
  cr_assert_eq (g_puts_in_window, 1, "the drop did not happen while pinned");
  cr_assert_eq (g_punch_in_window, 0, "%d slots of the dropped snapshot "
                "were punched before its SNAP_DROP record was durable",
                g_punch_in_window);
  /* Once durable, the drop did free a's copies. */
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.dropped, 1);
  cr_assert_eq (nsnaps (a.d), 1);
  cr_assert_eq (uh_find (a.d, "b").invalid_reason, SC_VALID);
  cr_assert_eq (sc_diff_snapshot_check (a.d, sa.id), -ENOENT);
  /* b's copies are intact, after a reopen as well. */
  uh_area_reopen (&a, 0);
  struct sc_snapshot_info b = uh_find (a.d, "b");
  for (uint64_t k = 4; k < c; k++) {
    uint64_t off;
    cr_assert_eq (sc_diff_resolve (a.d, b.epoch, k, &off), SC_WHERE_DIFF);
    uh_assert_slot_data (a.d, off, 200 + k);
  }
  uh_area_free (&a);
}

/* ---- one reader of the oldest snapshot does not drop them all --------- */

struct writer {
  struct sc_diff *d;
  uint64_t c;
  int r;
  bool done;
};

static void *
write_until_a_drop (void *opaque)
{
  struct writer *w = opaque;
  struct sc_diff_stats st;
  sc_diff_stats (w->d, &st);
  while (st.dropped == 0 && w->c < 64 && w->r >= 0) {
    w->r = uh_copy_reserved (w->d, w->c, 300 + w->c);
    w->c++;
    sc_diff_stats (w->d, &st);
  }
  __atomic_store_n (&w->done, true, __ATOMIC_RELEASE);
  return NULL;
}

static void
fill_five (struct uh_area *a, struct sc_snapshot_info *s, uint64_t *c)
{
  uh_area_create (a, 64 * CS, CS, 5);
  sc_diff_set_policy (a->d, SC_ON_FULL_DELETE_OLDEST, 0);
  cr_assert_eq (sc_diff_set_max (a->d, 24 * CS, 0, NULL), 0);
  s[0] = uh_snap (a->d, "s0");
  *c = 0;
  for (int k = 1; k <= 4; k++) {
    for (int i = 0; i < 3; i++, (*c)++)
      cr_assert_eq (uh_copy_reserved (a->d, *c, 100 + *c), 0);
    char n[8];
    snprintf (n, sizeof n, "s%d", k);
    s[k] = uh_snap (a->d, n);
  }
}

Test (space_safety, delete_oldest_drops_one_without_readers)
{
  struct uh_area a;
  struct sc_snapshot_info s[5];
  struct writer w = { 0 };
  fill_five (&a, s, &w.c);
  w.d = a.d;
  write_until_a_drop (&w);
  cr_assert_geq (w.r, 0);
  cr_assert_eq (uh_stats (a.d).dropped, 1);
  cr_assert_eq (nsnaps (a.d), 4);
  uh_area_free (&a);
}

/* The reader of s0 holds its pin until the writer has dropped s0 (as a
 * backup streaming the oldest snapshot does); the writer then waits for
 * that read instead of dropping s1, s2, ... */
Test (space_safety, a_reader_of_the_dropped_oldest_does_not_cascade)
{
  struct uh_area a;
  struct sc_snapshot_info s[5];
  struct writer w = { 0 };
  fill_five (&a, s, &w.c);
  w.d = a.d;
  cr_assert_eq (sc_diff_snapshot_get (a.d, s[0].id, NULL), 0);
  pthread_t t;
  cr_assert_eq (pthread_create (&t, NULL, write_until_a_drop, &w), 0);
  /* The pin is held until the writer has dropped s0 and waits for this
   * read (or, wrongly, has finished without waiting). */
  while (uh_stats (a.d).space_waits == 0 &&
         !__atomic_load_n (&w.done, __ATOMIC_ACQUIRE))
    sched_yield ();
  cr_assert_eq (uh_stats (a.d).dropped, 1);
  sc_diff_snapshot_put (a.d, s[0].id);    /* the read in flight ends */
  pthread_join (t, NULL);
  cr_assert_geq (w.r, 0);
  cr_assert_eq (uh_stats (a.d).dropped, 1, "a pinned reader of the oldest "
                "snapshot made delete-oldest drop %lu snapshots",
                (unsigned long) uh_stats (a.d).dropped);
  cr_assert_eq (nsnaps (a.d), 4);
  cr_assert_eq (sc_diff_snapshot_check (a.d, s[0].id), -ENOENT);
  for (int k = 1; k <= 4; k++)
    cr_assert_eq (sc_diff_snapshot_check (a.d, s[k].id), 0);
  cr_assert_leq (uh_stats (a.d).used_bytes, 24 * CS);
  uh_area_free (&a);
}

/* ---- replay validates drop and limit records -------------------------- */

static int
open_with_drop (uint64_t total, const char *name, size_t name_len,
                uint64_t drops_before, char *err, size_t errlen)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 5);
  sc_diff_set_policy (a.d, SC_ON_FULL_DELETE_OLDEST, 1);
  for (uint64_t i = 0; i <= drops_before; i++) {
    char n[16];
    snprintf (n, sizeof n, "d%lu", (unsigned long) i);
    struct sc_snapshot_opts o = { .delete_oldest = true };
    cr_assert_eq (sc_diff_snapshot_create (a.d, n, &o, NULL), 0);
  }
  cr_assert_eq (uh_stats (a.d).dropped, drops_before);
  uh_area_close (&a);
  uint8_t buf[SC_REC_MAX] = { 0 };
  struct sc_rec_snap_drop *r = (void *) buf;
  r->h.type = SC_REC_SNAP_DROP;
  r->id = 77;
  r->ctime_ns = 1;
  r->drop_ns = 2;
  r->total = total;
  r->reason = SC_DROPPED_DIFF_FULL;
  r->name_len = (uint16_t) name_len;
  memcpy (r->name, name, name_len);
  uh_journal_append (a.diff_path, r, sc_rec_padded (sizeof *r + name_len));
  uh_sb_mark_unclean (a.diff_path);     /* forces a checkpoint at open */
  int e = sc_diff_open (a.diff_path, 0, &a.id, 0, &a.d, err, errlen);
  if (e != 0)
    a.d = NULL;
  uh_area_close (&a);
  unlink (a.origin_path);       /* the next call makes them again */
  unlink (a.diff_path);
  uh_area_free (&a);
  return e;
}

Test (space_safety, replay_refuses_a_drop_total_of_uint64_max, .timeout = 30)
{
  char err[512] = "";
  int e = open_with_drop (UINT64_MAX, "x", 1, 0, err, sizeof err);
  cr_assert_eq (e, -EINVAL, "open returned %d", e);
  cr_assert (strstr (err, "drop"), "%s", err);
}

Test (space_safety, replay_checks_drop_totals_and_names)
{
  char err[512] = "";
  /* Two drops recorded (totals 1, 2): the next must be 3. */
  cr_assert_eq (open_with_drop (3, "x", 1, 2, err, sizeof err), 0, "%s", err);
  cr_assert_eq (open_with_drop (2, "x", 1, 2, err, sizeof err), -EINVAL);
  cr_assert_eq (open_with_drop (1, "x", 1, 2, err, sizeof err), -EINVAL);
  cr_assert_eq (open_with_drop (9, "x", 1, 2, err, sizeof err), -EINVAL);
  /* Names as snapshot names are: no quotes, no NUL inside. */
  cr_assert_eq (open_with_drop (1, "a\"b", 3, 0, err, sizeof err), -EINVAL);
  cr_assert_eq (open_with_drop (1, "a\0b", 3, 0, err, sizeof err), -EINVAL);
  cr_assert_eq (open_with_drop (1, "ok", 2, 0, err, sizeof err), 0, "%s",
                err);
}

Test (space_safety, replay_refuses_a_limit_below_the_minimum)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 5);
  uh_snap (a.d, "a");
  uh_snap (a.d, "b");
  uh_area_close (&a);
  struct sc_rec_limit r = { .h.type = SC_REC_LIMIT, .max_bytes = 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  char err[512] = "";
  struct sc_diff *d = NULL;
  int e = sc_diff_open (a.diff_path, 0, &a.id, 0, &d, err, sizeof err);
  if (e == 0)
    sc_diff_close (d);
  cr_assert_eq (e, -EINVAL, "a LIMIT record of 1 byte was accepted");
  unlink (a.origin_path);
  unlink (a.diff_path);
  uh_area_free (&a);
  cr_assert (strstr (err, "limit"), "%s", err);
  /* The smallest limit sc_diff_set_max allows is fine, as is unbounded. */
  uint64_t ok[] = { SC_DIFF_MAX_MIN_CHUNKS * CS, 0 };
  for (size_t i = 0; i < 2; i++) {
    uh_area_create (&a, 64 * CS, CS, 5);
    uh_area_close (&a);
    r.max_bytes = ok[i];
    uh_journal_append (a.diff_path, &r, sizeof r);
    uh_area_open (&a, 0);
    cr_assert_eq (sc_diff_get_max (a.d, NULL), ok[i]);
    uh_area_close (&a);
    unlink (a.origin_path);
    unlink (a.diff_path);
    uh_area_free (&a);
  }
}

/* ---- a failed preallocation punches nothing --------------------------- */

static int g_punches, g_prealloc_failed;

static int
prealloc_fails (const struct sc_io_req *q)
{
  if (q->op != SC_IO_FALLOCATE)
    return 0;
  if (q->flags & FALLOC_FL_PUNCH_HOLE) {
    g_punches += q->len > CS;     /* a journal slot taken is one chunk */
    return 0;
  }
  if (q->flags == FALLOC_FL_KEEP_SIZE && q->len > CS) {
    g_prealloc_failed++;          /* a growth step; the filesystem is full */
    return -ENOSPC;
  }
  return 0;
}

Test (space_safety, a_failed_preallocation_punches_nothing)
{
  struct uh_area a;
  uh_area_create (&a, 256 * CS, CS, 5);
  cr_assert_eq (sc_diff_set_max (a.d, 256 * CS, 0, NULL), 0);
  struct sc_snapshot_info s = uh_snap (a.d, "a");
  g_punches = g_prealloc_failed = 0;
  sc_io_fault_hook = prealloc_fails;
  for (uint64_t c = 0; c < 64; c++)
    cr_assert_eq (uh_copy_reserved (a.d, c, 500 + c), 0);
  sc_io_fault_hook = NULL;
  cr_assert_gt (g_prealloc_failed, 0, "no growth step was attempted");
  /* Nothing was freed, so nothing but journal slots being zeroed may be
   * punched: punching the step back could hit the journal's slots. */
  cr_assert_eq (g_punches, 0, "%d punches after failed preallocations",
                g_punches);
  uh_area_reopen (&a, 0);
  for (uint64_t c = 0; c < 64; c++) {
    uint64_t off;
    cr_assert_eq (sc_diff_resolve (a.d, s.epoch, c, &off), SC_WHERE_DIFF);
    uh_assert_slot_data (a.d, off, 500 + c);
  }
  uh_area_free (&a);
}
