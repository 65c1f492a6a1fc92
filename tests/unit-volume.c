/* Unit tests: the engine's volume on temporary files: live I/O with
 * copy-on-write, snapshot reads, partial and large requests, zero and
 * trim, a randomized model, failed copies, racing reads, and the
 * pread/pwrite fallback. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

static void
volume_teardown (void)
{
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (volume, .init = uh_setup, .fini = volume_teardown);

/* ---- fixture ---------------------------------------------------------- */

struct vol {
  char *origin, *diff;
  struct sc_volume *v;
  uint64_t size;
  uint32_t cs;
};

static void
vol_open (struct vol *t)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff, .chunk_size = t->cs,
  };
  char err[512] = "";
  int r = sc_volume_open (&cfg, &t->v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %d %s", r, err);
  cr_assert_eq (sc_volume_size (t->v), t->size);
  cr_assert_eq (sc_volume_chunk_size (t->v), t->cs);
}

/* An origin of `size` bytes of pattern `seed` (0: sparse zeros). */
static void
vol_create (struct vol *t, uint64_t size, uint32_t cs, uint64_t seed)
{
  t->origin = uh_path ("origin");
  t->diff = uh_path ("diff");
  t->size = size;
  t->cs = cs;
  uh_make_file (t->origin, size, seed);
  vol_open (t);
}

static void
vol_close (struct vol *t)
{
  sc_volume_close (t->v);
  t->v = NULL;
}

static void
vol_reopen (struct vol *t)
{
  vol_close (t);
  vol_open (t);
}

static void
vol_free (struct vol *t)
{
  if (t->v)
    vol_close (t);
  free (t->origin);
  free (t->diff);
}

static uint8_t *
xmalloc (size_t n)
{
  uint8_t *p = malloc (n ? n : 1);
  cr_assert_not_null (p);
  return p;
}

static void
live_write (struct vol *t, const void *buf, uint64_t count, uint64_t off)
{
  int r = sc_volume_write (t->v, buf, (uint32_t) count, off, 0);
  cr_assert_eq (r, 0, "write of %lu at %lu: %d", (unsigned long) count,
                (unsigned long) off, r);
}

static struct sc_snapshot_info
snap (struct vol *t, const char *name)
{
  struct sc_snapshot_info s;
  int r = sc_volume_snapshot_create (t->v, name, NULL, &s);
  cr_assert_eq (r, 0, "snapshot %s: %d", name ? name : "(default)", r);
  return s;
}

/* Compare `got` and `want`, reporting the first differing offset. */
static void
assert_same_bytes (const uint8_t *got, const uint8_t *want, uint64_t len,
                   uint64_t base, const char *what)
{
  if (memcmp (got, want, len) == 0)
    return;
  uint64_t i = 0;
  while (got[i] == want[i])
    i++;
  cr_assert_fail ("%s: first difference at byte %lu: %#x, want %#x", what,
                  (unsigned long) (base + i), got[i], want[i]);
}

/* Read [off, off + len) of the live volume (id 0) or a snapshot in pieces
 * of varying size, and compare with `image` (the whole volume). */
static void
assert_image (struct vol *t, uint64_t id, const uint8_t *image, uint64_t off,
              uint64_t len, uint64_t *rng, const char *what)
{
  uint8_t *buf = xmalloc (len);
  uint64_t done = 0;
  while (done < len) {
    uint64_t n = len - done;
    if (rng) {
      uint64_t piece = 1 + uh_rand_below (rng, 5 * t->cs);
      if (piece < n)
        n = piece;
    }
    int r = id ? sc_volume_snapshot_read (t->v, id, buf + done, (uint32_t) n,
                                          off + done)
               : sc_volume_read (t->v, buf + done, (uint32_t) n, off + done);
    cr_assert_eq (r, 0, "%s: read of %lu at %lu: %d", what,
                  (unsigned long) n, (unsigned long) (off + done), r);
    done += n;
  }
  assert_same_bytes (buf, image + off, len, off, what);
  free (buf);
}

static uint8_t *
origin_image (struct vol *t, uint64_t seed)
{
  uint8_t *img = xmalloc (t->size);
  if (seed)
    uh_pattern (img, t->size, seed, 0);
  else
    memset (img, 0, t->size);
  return img;
}

/* ---- live I/O --------------------------------------------------------- */

Test (volume, live_write_read_round_trip)
{
  struct vol t;
  vol_create (&t, 1 << 20, 4096, 3);
  uint8_t *img = origin_image (&t, 3);
  assert_image (&t, 0, img, 0, t.size, NULL, "fresh volume");
  uint64_t spots[][2] = { { 0, 4096 }, { 5000, 100 }, { 8191, 2 },
                          { 65536 - 10, 20000 }, { (1 << 20) - 7, 7 } };
  for (size_t i = 0; i < 5; i++) {
    uh_pattern (img + spots[i][0], spots[i][1], 100 + i, 0);
    live_write (&t, img + spots[i][0], spots[i][1], spots[i][0]);
  }
  assert_image (&t, 0, img, 0, t.size, NULL, "live after writes");
  /* The origin file holds exactly the live volume. */
  size_t n;
  uint8_t *file = uh_read_file (t.origin, &n);
  cr_assert_eq (n, t.size);
  assert_same_bytes (file, img, t.size, 0, "origin file");
  cr_assert_eq (sc_volume_flush (t.v), 0);
  free (file);
  free (img);
  vol_free (&t);
}

Test (volume, requests_past_the_end_are_einval)
{
  struct vol t;
  vol_create (&t, 1 << 20, 4096, 3);
  uint8_t buf[4096] = { 0 };
  cr_assert_eq (sc_volume_read (t.v, buf, 1, 1 << 20), -EINVAL);
  cr_assert_eq (sc_volume_read (t.v, buf, 4096, (1 << 20) - 4095), -EINVAL);
  cr_assert_eq (sc_volume_write (t.v, buf, 2, (1 << 20) - 1, 0), -EINVAL);
  cr_assert_eq (sc_volume_zero (t.v, 4096, UINT64_MAX - 100, 0), -EINVAL);
  cr_assert_eq (sc_volume_trim (t.v, 4096, 1 << 20, 0), -EINVAL);
  struct sc_snapshot_info s = snap (&t, "s");
  cr_assert_eq (sc_volume_snapshot_read (t.v, s.id, buf, 2, (1 << 20) - 1),
                -EINVAL);
  cr_assert_eq (sc_volume_read (t.v, buf, 0, 1 << 20), 0, "empty at end");
  cr_assert_eq (sc_volume_write (t.v, buf, 0, 1 << 20, 0), 0);
  vol_free (&t);
}

Test (volume, snapshot_read_returns_old_data_after_overwrite)
{
  struct vol t;
  vol_create (&t, 1 << 20, 65536, 4);
  uint8_t *old = origin_image (&t, 4);
  uint8_t *live = origin_image (&t, 4);
  struct sc_snapshot_info s = snap (&t, "before");
  uh_pattern (live + 100000, 300000, 44, 0);
  live_write (&t, live + 100000, 300000, 100000);
  assert_image (&t, s.id, old, 0, t.size, NULL, "snapshot");
  assert_image (&t, 0, live, 0, t.size, NULL, "live");
  /* A second overwrite in the same epoch changes nothing for it. */
  uint64_t copies = uh_stats (sc_volume_diff (t.v)).copies;
  uh_pattern (live + 100000, 300000, 45, 0);
  live_write (&t, live + 100000, 300000, 100000);
  cr_assert_eq (uh_stats (sc_volume_diff (t.v)).copies, copies,
                "a rewrite in the same epoch copies nothing");
  assert_image (&t, s.id, old, 0, t.size, NULL, "snapshot after rewrite");
  assert_image (&t, 0, live, 0, t.size, NULL, "live after rewrite");
  free (old);
  free (live);
  vol_free (&t);
}

Test (volume, snapshot_of_a_snapshot_sees_intermediate_data)
{
  struct vol t;
  vol_create (&t, 256 * 1024, 4096, 4);
  uint8_t *v0 = origin_image (&t, 4);
  struct sc_snapshot_info s0 = snap (&t, "s0");
  uint8_t *v1 = xmalloc (t.size);
  memcpy (v1, v0, t.size);
  uh_pattern (v1 + 5000, 20000, 1, 0);
  live_write (&t, v1 + 5000, 20000, 5000);
  struct sc_snapshot_info s1 = snap (&t, "s1");
  uint8_t *v2 = xmalloc (t.size);
  memcpy (v2, v1, t.size);
  uh_pattern (v2, 30000, 2, 0);
  live_write (&t, v2, 30000, 0);
  assert_image (&t, s0.id, v0, 0, t.size, NULL, "s0");
  assert_image (&t, s1.id, v1, 0, t.size, NULL, "s1");
  assert_image (&t, 0, v2, 0, t.size, NULL, "live");
  free (v0);
  free (v1);
  free (v2);
  vol_free (&t);
}

Test (volume, unaligned_writes_spanning_chunk_boundaries)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 5);
  uint8_t *old = origin_image (&t, 5);
  uint8_t *live = origin_image (&t, 5);
  struct sc_snapshot_info s = snap (&t, "s");
  uint64_t w[][2] = {
    { 4095, 2 },                /* one byte each side of a boundary */
    { 3 * 4096 + 100, 2 * 4096 + 50 },  /* partial, whole, partial */
    { 10 * 4096 + 1, 4094 },    /* inside one chunk, neither edge */
    { 20 * 4096 - 1, 1 },       /* the last byte of a chunk */
    { 30 * 4096, 1 },           /* the first byte of a chunk */
    { 40 * 4096 + 7, 5 * 4096 },
  };
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
    uh_pattern (live + w[i][0], w[i][1], 50 + i, 0);
    live_write (&t, live + w[i][0], w[i][1], w[i][0]);
  }
  uint64_t rng = 1;
  assert_image (&t, s.id, old, 0, t.size, &rng, "snapshot");
  assert_image (&t, 0, live, 0, t.size, &rng, "live");
  /* Unaligned snapshot reads across the touched boundaries. */
  assert_image (&t, s.id, old, 4090, 20, NULL, "snapshot around 4096");
  assert_image (&t, s.id, old, 3 * 4096 + 99, 2 * 4096 + 52, NULL,
                "snapshot around chunks 3-5");
  free (old);
  free (live);
  vol_free (&t);
}

Test (volume, write_covering_only_the_last_partial_chunk)
{
  struct vol t;
  uint64_t size = 10 * 65536 + 1000;
  vol_create (&t, size, 65536, 6);
  uint8_t *old = origin_image (&t, 6);
  uint8_t *live = origin_image (&t, 6);
  struct sc_snapshot_info s = snap (&t, "s");

  uh_pattern (live + 10 * 65536, 1000, 60, 0);
  live_write (&t, live + 10 * 65536, 1000, 10 * 65536);
  assert_image (&t, s.id, old, 10 * 65536, 1000, NULL, "snapshot tail");
  assert_image (&t, 0, live, 10 * 65536, 1000, NULL, "live tail");
  /* And the last few bytes alone, in a new epoch. */
  struct sc_snapshot_info s2 = snap (&t, "s2");
  uint8_t *mid = xmalloc (size);
  memcpy (mid, live, size);
  uh_pattern (live + size - 10, 10, 61, 0);
  live_write (&t, live + size - 10, 10, size - 10);
  assert_image (&t, s.id, old, 0, size, NULL, "snapshot");
  assert_image (&t, s2.id, mid, 0, size, NULL, "second snapshot");
  assert_image (&t, 0, live, 0, size, NULL, "live");
  vol_reopen (&t);
  assert_image (&t, s.id, old, 0, size, NULL, "snapshot after reopen");
  assert_image (&t, s2.id, mid, 0, size, NULL, "second after reopen");
  cr_assert_eq (uh_file_size (t.origin), size, "the origin never grows");
  free (old);
  free (mid);
  free (live);
  vol_free (&t);
}

Test (volume, write_of_64_mib)
{
  struct vol t;
  uint64_t size = 72ull << 20;
  uint32_t len = 64u << 20;
  uint64_t off = 12345;
  vol_create (&t, size, 65536, 7);
  uint8_t *old = origin_image (&t, 7);
  uint8_t *live = origin_image (&t, 7);
  struct sc_snapshot_info s = snap (&t, "s");
  uh_pattern (live + off, len, 70, 0);
  live_write (&t, live + off, len, off);
  /* Whole-request reads of 64 MiB, live and snapshot. */
  assert_image (&t, 0, live, off, len, NULL, "live");
  assert_image (&t, s.id, old, off, len, NULL, "snapshot");
  assert_image (&t, s.id, old, 0, off, NULL, "snapshot head");
  assert_image (&t, s.id, old, off + len, size - off - len, NULL,
                "snapshot tail");
  struct sc_diff_stats st = uh_stats (sc_volume_diff (t.v));
  uint64_t touched = (off + len - 1) / 65536 - off / 65536 + 1;
  cr_assert_eq (st.copies, touched, "one copy per touched chunk");
  cr_assert_eq (st.data_slots, touched);
  free (old);
  free (live);
  vol_free (&t);
}

/* ---- zero, trim, holes ------------------------------------------------ */

static void
zero_or_trim_copies_first (bool trim, unsigned flags)
{
  struct vol t;
  vol_create (&t, 32 * 4096, 4096, 8);
  uint8_t *old = origin_image (&t, 8);
  uint8_t *live = origin_image (&t, 8);
  struct sc_snapshot_info s = snap (&t, "s");
  uint64_t off = 3 * 4096 + 10, len = 6 * 4096;
  int r = trim ? sc_volume_trim (t.v, (uint32_t) len, off, flags)
               : sc_volume_zero (t.v, (uint32_t) len, off, flags);
  cr_assert_eq (r, 0, "%s: %d", trim ? "trim" : "zero", r);
  assert_image (&t, s.id, old, 0, t.size, NULL, "snapshot");
  if (!trim || uh_punch_reads_zeros ()) {
    memset (live + off, 0, len);
    assert_image (&t, 0, live, 0, t.size, NULL, "live");
  }
  cr_assert_gt (uh_stats (sc_volume_diff (t.v)).data_slots, 0,
                "the old data was copied");
  vol_reopen (&t);
  assert_image (&t, s.id, old, 0, t.size, NULL, "snapshot after reopen");
  free (old);
  free (live);
  vol_free (&t);
}

Test (volume, zero_copies_first)
{
  zero_or_trim_copies_first (false, 0);
}

Test (volume, zero_with_may_trim_copies_first)
{
  zero_or_trim_copies_first (false, SC_MAY_TRIM | SC_FUA);
}

Test (volume, trim_copies_first)
{
  zero_or_trim_copies_first (true, 0);
}

Test (volume, first_write_to_a_hole_takes_no_slot)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 0);    /* sparse: all holes */
  uint8_t *zero = origin_image (&t, 0);
  struct sc_snapshot_info s = snap (&t, "s");
  uint8_t buf[3 * 4096];
  uh_pattern (buf, sizeof buf, 9, 0);
  live_write (&t, buf, sizeof buf, 4096 + 5);
  struct sc_diff_stats st = uh_stats (sc_volume_diff (t.v));
  cr_assert_eq (st.copies, 4, "chunks 1-4 copied");
  cr_assert_eq (st.data_slots, 0, "as zero copies");
  assert_image (&t, s.id, zero, 0, t.size, NULL, "snapshot");
  free (zero);
  vol_free (&t);
}

Test (volume, first_write_to_written_zeros_takes_no_slot)
{
  struct vol t;
  t.origin = uh_path ("origin");
  t.diff = uh_path ("diff");
  t.size = 16 * 4096;
  t.cs = 4096;
  uh_make_zero_file (t.origin, t.size);  /* allocated zeros */
  vol_open (&t);
  struct sc_snapshot_info s = snap (&t, "s");
  uint8_t buf[4096];
  uh_pattern (buf, sizeof buf, 9, 0);
  live_write (&t, buf, sizeof buf, 2 * 4096);
  struct sc_diff_stats st = uh_stats (sc_volume_diff (t.v));
  cr_assert_eq (st.copies, 1);
  cr_assert_eq (st.data_slots, 0);
  uint8_t *zero = origin_image (&t, 0);
  assert_image (&t, s.id, zero, 0, t.size, NULL, "snapshot");
  free (zero);
  vol_free (&t);
}

/* ---- copy once through the engine ------------------------------------ */

Test (volume, one_copy_for_64_snapshots)
{
  struct vol t;
  char name[16];
  vol_create (&t, 64 * 4096, 4096, 10);
  uint8_t *old = origin_image (&t, 10);
  uint64_t ids[64];
  for (int i = 0; i < 64; i++) {
    snprintf (name, sizeof name, "s%d", i);
    ids[i] = snap (&t, name).id;
  }
  uint8_t buf[4096];
  uh_pattern (buf, sizeof buf, 11, 0);
  live_write (&t, buf, sizeof buf, 7 * 4096);
  live_write (&t, buf, 100, 7 * 4096 + 1000);
  struct sc_diff_stats st = uh_stats (sc_volume_diff (t.v));
  cr_assert_eq (st.copies, 1, "64 snapshots, one write: %lu copies",
                (unsigned long) st.copies);
  cr_assert_eq (st.data_slots, 1);
  for (int i = 0; i < 64; i++)
    assert_image (&t, ids[i], old, 7 * 4096, 4096, NULL, "snapshot");
  free (old);
  vol_free (&t);
}

Test (volume, deleted_snapshot_reads_enoent)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 10);
  struct sc_snapshot_info s = snap (&t, "gone");
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "gone"), 0);
  uint8_t buf[16];
  cr_assert_eq (sc_volume_snapshot_read (t.v, s.id, buf, 16, 0), -ENOENT);
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "gone"), -ENOENT);
  cr_assert_eq (sc_volume_snapshot_create (t.v, "live", NULL, NULL), -EINVAL);
  vol_free (&t);
}

Test (volume, hold_stats_count_creations)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 10);
  for (int i = 0; i < 5; i++)
    snap (&t, NULL);
  struct sc_hold_stats hs;
  sc_volume_hold_stats (t.v, &hs);
  cr_assert_eq (hs.count, 5);
  cr_assert_leq (hs.p50_ns, hs.p99_ns);
  cr_assert_leq (hs.p99_ns, hs.max_ns);
  cr_assert_gt (hs.max_ns, 0);
  vol_free (&t);
}

Test (volume, one_creation_at_a_time)
{
  struct vol t;
  vol_create (&t, 1 << 20, 4096, 5);
  struct sc_volume *v = t.v;
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_hold (v), -EINVAL, "hold outside a creation");
  cr_assert_eq (sc_volume_create_begin (v), 0);
  cr_assert (sc_volume_create_busy (v));
  cr_assert_eq (sc_volume_create_begin (v), -EBUSY);
  cr_assert_eq (sc_volume_snapshot_create (v, "other", NULL, &s), -EBUSY);
  cr_assert_eq (sc_volume_hold_commit (v, "early", NULL, &s), -EINVAL,
                "commit without a hold");
  cr_assert_eq (sc_volume_hold (v), 0);
  cr_assert_eq (sc_volume_hold (v), -EINVAL, "hold twice");
  cr_assert_eq (sc_volume_hold_commit (v, "held", NULL, &s), 0);
  struct sc_hold_stats before, after;
  sc_volume_hold_stats (v, &before);
  cr_assert_gt (sc_volume_release (v), 0);
  sc_volume_hold_stats (v, &after);
  cr_assert_eq (after.count, before.count + 1);
  cr_assert_eq (sc_volume_release (v), 0, "release without a hold");
  sc_volume_create_end (v);
  cr_assert (!sc_volume_create_busy (v));
  cr_assert_eq (sc_volume_snapshot_create (v, "after", NULL, &s), 0);
  vol_free (&t);
}

/* The old data and the record that maps it reach the diff area, and are
 * synced, before the origin is overwritten (invariant 1).  Observed
 * through the fault hook, which here fails nothing. */
struct io_log {
  enum sc_io_op op;
  int fd;
  uint64_t off, len;
};
static struct io_log io_log[256];
static int io_nlog;

static int
log_io (const struct sc_io_req *req)
{
  int i = __atomic_fetch_add (&io_nlog, 1, __ATOMIC_SEQ_CST);
  if (i < 256)
    io_log[i] = (struct io_log) { req->op, req->fd, req->off, req->len };
  return 0;
}

Test (volume, old_data_and_its_record_are_durable_before_the_overwrite)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 12);
  snap (&t, "s");
  int dfd = sc_diff_fd (sc_volume_diff (t.v));
  uint8_t buf[4096];
  uh_pattern (buf, sizeof buf, 13, 0);
  io_nlog = 0;
  sc_io_fault_hook = log_io;
  live_write (&t, buf, sizeof buf, 5 * 4096);
  sc_io_fault_hook = NULL;
  cr_assert_lt (io_nlog, 256);
  int data = -1, journal = -1, sync = -1, origin = -1;
  for (int i = 0; i < io_nlog; i++) {
    struct io_log *l = &io_log[i];
    if (l->op == SC_IO_WRITE && l->fd == dfd && l->len == 4096 &&
        l->off >= SC_SB_AREA && data < 0)
      data = i;
    else if (l->op == SC_IO_WRITE && l->fd == dfd && journal < 0)
      journal = i;
    else if (l->op == SC_IO_FDATASYNC && l->fd == dfd && journal >= 0 &&
             data >= 0 && sync < 0)
      sync = i;
    else if (l->op == SC_IO_WRITE && l->fd != dfd && l->off == 5 * 4096)
      origin = i;
  }
  cr_assert_geq (data, 0, "no data copy written");
  cr_assert_geq (journal, 0, "no journal record written");
  cr_assert_geq (origin, 0, "no origin write");
  cr_assert_geq (sync, 0, "the diff area was not synced after the copy");
  cr_assert_lt (data, origin, "origin overwritten before the copy");
  cr_assert_lt (journal, origin, "origin overwritten before the record");
  cr_assert_lt (sync, origin, "origin overwritten before the sync");
  vol_free (&t);
}

/* ---- the randomized model -------------------------------------------- */

struct model_snap {
  char name[16];
  uint64_t id;
  uint8_t *image;
};

struct model {
  struct vol t;
  uint8_t *live;
  struct model_snap snaps[64];
  int nsnaps;
  int created;
  uint64_t rng;
  bool trim_zeros;
  unsigned ops[8];
};

static void
model_verify (struct model *m, const char *when)
{
  char what[96];
  for (int i = 0; i < m->nsnaps; i++) {
    snprintf (what, sizeof what, "%s: snapshot %s", when, m->snaps[i].name);
    assert_image (&m->t, m->snaps[i].id, m->snaps[i].image, 0, m->t.size,
                  &m->rng, what);
  }
  snprintf (what, sizeof what, "%s: live", when);
  assert_image (&m->t, 0, m->live, 0, m->t.size, &m->rng, what);

  /* The listing agrees with the model. */
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (sc_volume_diff (m->t.v), &v, &n), 0);
  cr_assert_eq (n, (size_t) m->nsnaps, "%s: %zu snapshots listed, model has "
                "%d", when, n, m->nsnaps);
  for (size_t i = 0; i < n; i++) {
    cr_assert_str_eq (v[i].name, m->snaps[i].name, "%s", when);
    cr_assert_eq (v[i].invalid_reason, SC_VALID, "%s: %s", when, v[i].name);
  }
  free (v);
}

/* A random range: aligned whole chunks half of the time, else any bytes;
 * sometimes long. */
static void
random_range (struct model *m, uint64_t *off, uint64_t *len)
{
  uint64_t size = m->t.size, cs = m->t.cs;
  uint64_t nchunks = (size + cs - 1) / cs;
  if (uh_rand_below (&m->rng, 2)) {
    uint64_t c = uh_rand_below (&m->rng, nchunks);
    uint64_t k = 1 + uh_rand_below (&m->rng, 4);
    *off = c * cs;
    *len = k * cs;
  }
  else {
    *off = uh_rand_below (&m->rng, size);
    *len = 1 + uh_rand_below (&m->rng, uh_rand_below (&m->rng, 8) ? 3 * cs
                                                                  : 20 * cs);
  }
  if (*off + *len > size)
    *len = size - *off;
}

static void
model_step (struct model *m, bool allow_create)
{
  uint64_t p = uh_rand_below (&m->rng, 100);
  uint64_t off, len;
  char name[16];

  if (p < 12) {
    if (!allow_create || m->nsnaps == 64)
      return;
    snprintf (name, sizeof name, "m%d", m->created++);
    struct sc_snapshot_info s = snap (&m->t, name);
    struct model_snap *ms = &m->snaps[m->nsnaps++];
    snprintf (ms->name, sizeof ms->name, "%s", name);
    ms->id = s.id;
    ms->image = xmalloc (m->t.size);
    memcpy (ms->image, m->live, m->t.size);
    m->ops[0]++;
  }
  else if (p < 17) {
    if (m->nsnaps == 0)
      return;
    int k = (int) uh_rand_below (&m->rng, m->nsnaps);
    cr_assert_eq (sc_volume_snapshot_delete (m->t.v, m->snaps[k].name), 0);
    uint8_t buf[16];
    cr_assert_eq (sc_volume_snapshot_read (m->t.v, m->snaps[k].id, buf, 16, 0),
                  -ENOENT);
    free (m->snaps[k].image);
    memmove (&m->snaps[k], &m->snaps[k + 1],
             (m->nsnaps - k - 1) * sizeof m->snaps[0]);
    m->nsnaps--;
    m->ops[1]++;
  }
  else if (p < 70) {
    random_range (m, &off, &len);
    uh_pattern (m->live + off, len, uh_rand (&m->rng), 0);
    int r = sc_volume_write (m->t.v, m->live + off, (uint32_t) len, off,
                             uh_rand_below (&m->rng, 4) ? 0 : SC_FUA);
    cr_assert_eq (r, 0, "write %lu at %lu: %d", (unsigned long) len,
                  (unsigned long) off, r);
    m->ops[2]++;
  }
  else if (p < 80) {
    random_range (m, &off, &len);
    unsigned flags = uh_rand_below (&m->rng, 2) ? SC_MAY_TRIM : 0;
    int r = sc_volume_zero (m->t.v, (uint32_t) len, off, flags);
    cr_assert_eq (r, 0, "zero %lu at %lu: %d", (unsigned long) len,
                  (unsigned long) off, r);
    memset (m->live + off, 0, len);
    m->ops[3]++;
  }
  else if (p < 90) {
    random_range (m, &off, &len);
    int r = sc_volume_trim (m->t.v, (uint32_t) len, off, 0);
    cr_assert_eq (r, 0, "trim %lu at %lu: %d", (unsigned long) len,
                  (unsigned long) off, r);
    if (m->trim_zeros)
      memset (m->live + off, 0, len);
    else                        /* unspecified: take what is there */
      cr_assert_eq (sc_volume_read (m->t.v, m->live + off, (uint32_t) len,
                                    off), 0);
    m->ops[4]++;
  }
  else if (m->nsnaps > 0) {
    /* Spot-check one snapshot between changes. */
    int k = (int) uh_rand_below (&m->rng, m->nsnaps);
    random_range (m, &off, &len);
    assert_image (&m->t, m->snaps[k].id, m->snaps[k].image, off, len, NULL,
                  "spot check");
    m->ops[5]++;
  }
}

static void
model_test (uint64_t size, uint32_t cs, uint64_t seed)
{
  struct model *m = calloc (1, sizeof *m);
  cr_assert_not_null (m);
  m->rng = seed;
  m->trim_zeros = uh_punch_reads_zeros ();
  vol_create (&m->t, size, cs, seed);
  m->live = origin_image (&m->t, seed);

  /* 30 snapshot creations with deletions, writes, zeroes and trims in
   * between; full checks along the way. */
  int steps = 0;
  while (m->created < 30) {
    model_step (m, true);
    if (++steps % 40 == 0)
      model_verify (m, "phase 1");
  }
  for (int i = 0; i < 30; i++)
    model_step (m, false);
  model_verify (m, "after 30 snapshots");
  cr_assert_gt (m->nsnaps, 0);

  vol_reopen (&m->t);
  model_verify (m, "after reopen");

  /* The reopened volume keeps copying correctly. */
  int target = m->created + 8;
  while (m->created < target)
    model_step (m, true);
  for (int i = 0; i < 30; i++)
    model_step (m, false);
  model_verify (m, "phase 2");
  vol_reopen (&m->t);
  model_verify (m, "after second reopen");

  cr_log_info ("model: %u creates, %u deletes, %u writes, %u zeroes, "
               "%u trims, %u spot checks; %d snapshots at the end; "
               "io_uring %s", m->ops[0], m->ops[1], m->ops[2], m->ops[3],
               m->ops[4], m->ops[5], m->nsnaps,
               sc_io_uring_active () ? "on" : "off");
  cr_assert_gt (m->ops[1], 0, "the seed should exercise deletes");
  cr_assert_gt (m->ops[3] + m->ops[4], 0);

  for (int i = 0; i < m->nsnaps; i++)
    free (m->snaps[i].image);
  free (m->live);
  vol_free (&m->t);
  free (m);
}

Test (volume, model_with_4k_chunks)
{
  model_test (256 * 4096 + 3000, 4096, 20240601);
}

Test (volume, model_with_64k_chunks)
{
  model_test (40 * 65536 + 333, 65536, 777);
}

Test (volume, model_through_pread_pwrite_without_io_uring)
{
  /* Read once per process, before the first request: Criterion runs each
   * test in its own process. */
  cr_assert_eq (setenv ("SHADOWCOPY_NO_URING", "1", 1), 0);
  cr_assert (!sc_io_uring_active (), "io_uring still in use");
  model_test (256 * 4096 + 3000, 4096, 99);
  cr_assert (!sc_io_uring_active ());
}

/* ---- failed copies ---------------------------------------------------- */

/* Fail the copy-on-write writes of old data to the diff area, and only
 * those.  A data-slot write is exactly one chunk at a chunk-aligned offset
 * past the two superblocks.  Journal writes are the unwritten tail of
 * records (a few dozen bytes in these tests, never a whole aligned chunk);
 * superblock writes go to offsets 0 and 4096, which with 4K chunks would
 * otherwise look like a data slot. */
static int fault_fd = -1;
static uint32_t fault_cs;
static int fault_err;
static int fault_hits;
static bool fault_origin_reads;

static int
fail_copies (const struct sc_io_req *req)
{
  bool hit;
  if (fault_origin_reads)
    hit = req->op == SC_IO_READ && req->fd != fault_fd;
  else
    hit = req->op == SC_IO_WRITE && req->fd == fault_fd &&
          req->len == fault_cs && req->off % fault_cs == 0 &&
          req->off >= SC_SB_AREA;
  if (!hit)
    return 0;
  __atomic_fetch_add (&fault_hits, 1, __ATOMIC_SEQ_CST);
  return -fault_err;
}

static void
arm_faults (struct vol *t, int err, bool origin_reads)
{
  fault_fd = sc_diff_fd (sc_volume_diff (t->v));
  fault_cs = t->cs;
  fault_err = err;
  fault_hits = 0;
  fault_origin_reads = origin_reads;
  sc_io_fault_hook = fail_copies;
}

static void
failed_copy (int err, bool origin_reads, uint32_t want_reason)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 14);
  uint8_t *live = origin_image (&t, 14);
  uint8_t *first_image = origin_image (&t, 14);
  /* "older" already has its copy of chunk 9: it must stay valid. */
  struct sc_snapshot_info older = snap (&t, "older");
  uh_pattern (live + 9 * 4096, 4096, 15, 0);
  live_write (&t, live + 9 * 4096, 4096, 9 * 4096);
  uint8_t *second_image = xmalloc (t.size);
  memcpy (second_image, live, t.size);
  struct sc_snapshot_info s = snap (&t, "needs-it");
  uint64_t slots = uh_stats (sc_volume_diff (t.v)).data_slots;

  arm_faults (&t, err, origin_reads);
  uh_pattern (live + 9 * 4096 + 100, 50, 16, 0);
  int r = sc_volume_write (t.v, live + 9 * 4096 + 100, 50, 9 * 4096 + 100, 0);
  sc_io_fault_hook = NULL;
  cr_assert_eq (r, 0, "the live write must succeed: %d", r);
  cr_assert_eq (fault_hits, 1, "the hook failed %d requests, want the one "
                "copy", fault_hits);
  assert_image (&t, 0, live, 0, t.size, NULL, "live");

  struct sc_snapshot_info got = uh_find (sc_volume_diff (t.v), "needs-it");
  cr_assert_eq (got.invalid_reason, want_reason, "reason %u (%s), want %u",
                got.invalid_reason,
                sc_invalid_reason_text (got.invalid_reason), want_reason);
  cr_assert_eq (got.invalid_errno, err);
  cr_assert_eq (got.invalid_chunk, 9);
  uint8_t buf[4096];
  cr_assert_eq (sc_volume_snapshot_read (t.v, s.id, buf, 4096, 0), -EIO);
  cr_assert_eq (uh_stats (sc_volume_diff (t.v)).data_slots, slots,
                "the failed copy's slot was given back");
  /* The older snapshot did not need the copy: still valid and right. */
  cr_assert_eq (uh_find (sc_volume_diff (t.v), "older").invalid_reason,
                SC_VALID);
  assert_image (&t, older.id, first_image, 0, t.size, NULL, "older");

  /* Copies work again once the fault is gone, and the verdict is durable. */
  struct sc_snapshot_info s3 = snap (&t, "after");
  uint8_t *third_image = xmalloc (t.size);
  memcpy (third_image, live, t.size);
  uh_pattern (live, 3 * 4096, 17, 0);
  live_write (&t, live, 3 * 4096, 0);
  assert_image (&t, s3.id, third_image, 0, t.size, NULL, "after");
  vol_reopen (&t);
  got = uh_find (sc_volume_diff (t.v), "needs-it");
  cr_assert_eq (got.invalid_reason, want_reason, "after reopen");
  cr_assert_eq (sc_volume_snapshot_read (t.v, s.id, buf, 4096, 0), -EIO);
  assert_image (&t, older.id, first_image, 0, t.size, NULL, "older, reopened");
  assert_image (&t, s3.id, third_image, 0, t.size, NULL, "after, reopened");
  free (live);
  free (first_image);
  free (second_image);
  free (third_image);
  vol_free (&t);
}

Test (volume, diff_area_full_invalidates_the_snapshot_and_the_write_succeeds)
{
  failed_copy (ENOSPC, false, SC_INVALID_DIFF_FULL);
}

Test (volume, copy_write_error_invalidates_the_snapshot_and_the_write_succeeds)
{
  failed_copy (EIO, false, SC_INVALID_COPY_WRITE);
}

Test (volume, origin_read_error_invalidates_the_snapshot_and_the_write_succeeds)
{
  failed_copy (EIO, true, SC_INVALID_COPY_READ);
}

/* A metadata (journal) write that fails: nothing more can be recorded, so
 * every snapshot becomes invalid, durably (the superblock says so), and
 * the live write still goes ahead.  Journal writes are the writes to the
 * diff area past the superblocks that are not whole aligned chunks (see
 * fail_copies for why data-slot writes are exactly those). */
static int
fail_journal_writes (const struct sc_io_req *req)
{
  if (req->op == SC_IO_WRITE && req->fd == fault_fd &&
      req->off >= SC_SB_AREA &&
      !(req->len == fault_cs && req->off % fault_cs == 0)) {
    __atomic_fetch_add (&fault_hits, 1, __ATOMIC_SEQ_CST);
    return -EIO;
  }
  return 0;
}

Test (volume, journal_write_failure_invalidates_every_snapshot)
{
  struct vol t;
  vol_create (&t, 64 * 4096, 4096, 18);
  uint8_t *live = origin_image (&t, 18);
  snap (&t, "a");
  snap (&t, "b");
  arm_faults (&t, EIO, false);
  sc_io_fault_hook = fail_journal_writes;
  uh_pattern (live + 4096, 4096, 19, 0);
  int r = sc_volume_write (t.v, live + 4096, 4096, 4096, 0);
  cr_assert_eq (r, 0, "the live write must succeed: %d", r);
  cr_assert_gt (fault_hits, 0, "no journal write was failed");
  struct sc_diff *d = sc_volume_diff (t.v);
  cr_assert_eq (uh_find (d, "a").invalid_reason, SC_INVALID_METADATA);
  cr_assert_eq (uh_find (d, "b").invalid_reason, SC_INVALID_METADATA);
  cr_assert_lt (sc_volume_snapshot_create (t.v, "c", NULL, NULL), 0,
                "no snapshot can be recorded any more");
  uh_pattern (live + 8192, 4096, 20, 0);
  cr_assert_eq (sc_volume_write (t.v, live + 8192, 4096, 8192, 0), 0);
  sc_io_fault_hook = NULL;
  assert_image (&t, 0, live, 0, t.size, NULL, "live");

  vol_reopen (&t);
  d = sc_volume_diff (t.v);
  cr_assert_eq (uh_find (d, "a").invalid_reason, SC_INVALID_METADATA,
                "still invalid after a restart");
  cr_assert_eq (uh_find (d, "b").invalid_reason, SC_INVALID_METADATA);
  uint8_t buf[16];
  cr_assert_eq (sc_volume_snapshot_read (t.v, uh_find (d, "a").id, buf, 16,
                                         0), -EIO);
  /* A fresh snapshot works again. */
  struct sc_snapshot_info c = snap (&t, "c");
  uint8_t *img = xmalloc (t.size);
  memcpy (img, live, t.size);
  uh_pattern (live, 8192, 21, 0);
  live_write (&t, live, 8192, 0);
  assert_image (&t, c.id, img, 0, t.size, NULL, "new snapshot");
  assert_image (&t, 0, live, 0, t.size, NULL, "live after reopen");
  free (img);
  free (live);
  vol_free (&t);
}

/* ---- opening ---------------------------------------------------------- */

Test (volume, diff_area_cannot_be_the_disk_itself)
{
  char *origin = uh_path ("disk");
  uh_make_file (origin, 1 << 20, 1);
  size_t n0;
  uint8_t *before = uh_read_file (origin, &n0);
  struct sc_volume_config cfg = { .origin_path = origin, .diff_path = origin };
  struct sc_volume *v = NULL;
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &v, err, sizeof err), -EINVAL);
  cr_assert_str_not_empty (err);
  size_t n1;
  uint8_t *after = uh_read_file (origin, &n1);
  cr_assert_eq (n0, n1);
  cr_assert_arr_eq (before, after, n0, "the disk was written");
  free (before);
  free (after);
  free (origin);
}

Test (volume, disk_smaller_than_one_chunk_is_refused)
{
  struct vol t = { 0 };
  t.origin = uh_path ("origin");
  t.diff = uh_path ("diff");
  uh_make_file (t.origin, 4096, 1);
  struct sc_volume_config cfg = {
    .origin_path = t.origin, .diff_path = t.diff, .chunk_size = 65536,
  };
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &t.v, err, sizeof err), -EINVAL);
  cr_assert (strstr (err, "smaller than one chunk") != NULL, "%s", err);
  cr_assert_eq (access (t.diff, F_OK), -1, "a diff area was left behind");
  vol_free (&t);
}

Test (volume, missing_disk_is_enoent)
{
  char *origin = uh_path ("no-disk"), *diff = uh_path ("diff");
  struct sc_volume_config cfg = { .origin_path = origin, .diff_path = diff };
  struct sc_volume *v = NULL;
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &v, err, sizeof err), -ENOENT);
  cr_assert (strstr (err, origin) != NULL, "%s", err);
  cr_assert_eq (access (diff, F_OK), -1);
  free (origin);
  free (diff);
}

Test (volume, reopening_with_another_chunk_size_fails)
{
  struct vol t;
  vol_create (&t, 1 << 20, 4096, 1);
  vol_close (&t);
  t.cs = 65536;
  struct sc_volume_config cfg = {
    .origin_path = t.origin, .diff_path = t.diff, .chunk_size = t.cs,
  };
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &t.v, err, sizeof err), -EINVAL);
  cr_assert (strstr (err, "chunk size") != NULL, "%s", err);
  t.cs = 4096;
  vol_open (&t);
  vol_free (&t);
}

Test (volume, second_volume_on_the_same_diff_area_is_refused)
{
  struct vol t;
  vol_create (&t, 1 << 20, 4096, 1);
  struct sc_volume_config cfg = { .origin_path = t.origin,
                                  .diff_path = t.diff };
  struct sc_volume *v2 = NULL;
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &v2, err, sizeof err), -EWOULDBLOCK);
  cr_assert (strstr (err, "in use") != NULL, "%s", err);
  vol_free (&t);
}

/* ---- racing reads ----------------------------------------------------- */

/* Writers rewrite a hot region while readers read snapshots of it.  The
 * base snapshot's content is known (the origin pattern); snapshots taken
 * under the load must read the same twice in a row.  To make a lost race
 * likely rather than lucky, the fault hook delays every origin read of a
 * reader thread: the window between resolving a chunk to the origin and
 * reading it is then long enough for a writer that is not kept out to
 * copy the chunk and overwrite it. */
#define RACE_SIZE (4u << 20)
#define RACE_HOT (1u << 20)
#define RACE_CS 4096u

struct race {
  struct vol t;
  int diff_fd;
  uint64_t base_id;
  uint64_t seed;
  uint64_t current;             /* newest snapshot taken under load, or 0 */
  int stop;
  int writes, reads, slow_reads;
  int bad;
  char why[256];
};

static __thread bool race_reader_thread;
static struct race *race_now;

static int
race_slow_reads (const struct sc_io_req *req)
{
  if (race_reader_thread && req->op == SC_IO_READ &&
      req->fd != race_now->diff_fd) {
    __atomic_fetch_add (&race_now->slow_reads, 1, __ATOMIC_SEQ_CST);
    usleep (3000);
  }
  return 0;
}

static void race_fail (struct race *rc, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
static void
race_fail (struct race *rc, const char *fmt, ...)
{
  if (__atomic_exchange_n (&rc->bad, 1, __ATOMIC_SEQ_CST))
    return;                     /* keep the first failure */
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (rc->why, sizeof rc->why, fmt, ap);
  va_end (ap);
}

static void *
race_writer (void *p)
{
  struct race *rc = p;
  uint64_t rng = (uint64_t) (uintptr_t) &rng;
  uint8_t *buf = malloc (4 * RACE_CS);
  while (!__atomic_load_n (&rc->stop, __ATOMIC_SEQ_CST)) {
    uint64_t off = uh_rand_below (&rng, RACE_HOT);
    uint64_t len = 1 + uh_rand_below (&rng, 3 * RACE_CS);
    if (off + len > RACE_HOT)
      len = RACE_HOT - off;
    uh_pattern (buf, len, uh_rand (&rng) | 1, off);
    int r = sc_volume_write (rc->t.v, buf, (uint32_t) len, off, 0);
    if (r != 0)
      race_fail (rc, "live write of %lu at %lu: %d", (unsigned long) len,
                   (unsigned long) off, r);
    __atomic_fetch_add (&rc->writes, 1, __ATOMIC_SEQ_CST);
  }
  free (buf);
  return NULL;
}

static void *
race_reader (void *p)
{
  struct race *rc = p;
  uint64_t rng = (uint64_t) (uintptr_t) &rng ^ 0x5555;
  size_t max = 16 * RACE_CS;
  uint8_t *buf = malloc (max), *again = malloc (max), *want = malloc (max);
  race_reader_thread = true;
  while (!__atomic_load_n (&rc->stop, __ATOMIC_SEQ_CST)) {
    uint64_t off = uh_rand_below (&rng, RACE_HOT);
    uint64_t len = 1 + uh_rand_below (&rng, max);
    if (off + len > RACE_HOT)
      len = RACE_HOT - off;
    uint64_t cur = __atomic_load_n (&rc->current, __ATOMIC_SEQ_CST);
    if (cur == 0 || uh_rand_below (&rng, 2)) {
      int r = sc_volume_snapshot_read (rc->t.v, rc->base_id, buf,
                                       (uint32_t) len, off);
      uh_pattern (want, len, rc->seed, off);
      if (r != 0 || memcmp (buf, want, len) != 0)
        race_fail (rc, "base snapshot read of %lu at %lu: %d (data written "
                   "after the snapshot?)", (unsigned long) len,
                   (unsigned long) off, r);
    }
    else {
      int r = sc_volume_snapshot_read (rc->t.v, cur, buf, (uint32_t) len,
                                       off);
      int r2 = sc_volume_snapshot_read (rc->t.v, cur, again, (uint32_t) len,
                                        off);
      /* -ENOENT: deleted in between, which is fine. */
      if (r == 0 && r2 == 0 && memcmp (buf, again, len) != 0)
        race_fail (rc, "a snapshot taken under load read differently twice "
                   "(%lu at %lu)", (unsigned long) len, (unsigned long) off);
      else if ((r && r != -ENOENT) || (r2 && r2 != -ENOENT))
        race_fail (rc, "snapshot read of %lu at %lu: %d", (unsigned long) len,
                   (unsigned long) off, r ? r : r2);
    }
    __atomic_fetch_add (&rc->reads, 1, __ATOMIC_SEQ_CST);
  }
  free (buf);
  free (again);
  free (want);
  return NULL;
}

Test (volume, snapshot_reads_racing_writes_never_see_new_data)
{
  struct race *rc = calloc (1, sizeof *rc);
  rc->seed = 21;
  vol_create (&rc->t, RACE_SIZE, RACE_CS, rc->seed);
  rc->diff_fd = sc_diff_fd (sc_volume_diff (rc->t.v));
  rc->base_id = snap (&rc->t, "base").id;
  race_now = rc;
  sc_io_fault_hook = race_slow_reads;

  pthread_t w[2], r[3];
  for (int i = 0; i < 3; i++)
    cr_assert_eq (pthread_create (&r[i], NULL, race_reader, rc), 0);
  for (int i = 0; i < 2; i++)
    cr_assert_eq (pthread_create (&w[i], NULL, race_writer, rc), 0);
  char name[16], prev[16] = "";
  for (int k = 0; k < 10 && !__atomic_load_n (&rc->bad, __ATOMIC_SEQ_CST);
       k++) {
    usleep (80 * 1000);
    snprintf (name, sizeof name, "busy%d", k);
    struct sc_snapshot_info s;
    int e = sc_volume_snapshot_create (rc->t.v, name, NULL, &s);
    if (e != 0) {
      race_fail (rc, "creating a snapshot under load: %d", e);
      break;
    }
    __atomic_store_n (&rc->current, s.id, __ATOMIC_SEQ_CST);
    if (prev[0])
      sc_volume_snapshot_delete (rc->t.v, prev);
    snprintf (prev, sizeof prev, "%s", name);
  }
  usleep (80 * 1000);
  __atomic_store_n (&rc->stop, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 2; i++)
    pthread_join (w[i], NULL);
  for (int i = 0; i < 3; i++)
    pthread_join (r[i], NULL);
  sc_io_fault_hook = NULL;
  cr_log_info ("race: %d writes, %d snapshot reads (%d delayed origin "
               "reads)", rc->writes, rc->reads, rc->slow_reads);
  cr_assert_eq (rc->bad, 0, "%s", rc->why);
  cr_assert_gt (rc->writes, 20);
  cr_assert_gt (rc->reads, 20);
  cr_assert_gt (rc->slow_reads, 0);
  vol_free (&rc->t);
  free (rc);
}

/* ---- revert --force and the live connections ------------------------ */

/* A write of a live connection that passed the plugin's ticket check
 * before `revert --force` revoked it enters the engine after the
 * revert: the engine checks the ticket again under the write gate, and
 * the write is refused instead of landing on the reverted volume. */
Test (volume, a_revoked_write_never_lands_after_the_revert)
{
  struct vol t;
  vol_create (&t, 16 * 4096, 4096, 7);
  snap (&t, "A");
  uint8_t *a = xmalloc (4096), *w = xmalloc (4096), *got = xmalloc (4096);
  cr_assert_eq (sc_volume_read (t.v, a, 4096, 2 * 4096), 0);
  memset (w, 'X', 4096);
  live_write (&t, w, 4096, 2 * 4096);
  uint64_t ticket = sc_volume_live_open (t.v), live = 0;
  cr_assert_eq (sc_volume_revert_start (t.v, "A", NULL, 0,
                                        SC_REVERT_FORCE | SC_REVERT_PAUSED,
                                        &live, NULL), 0);
  cr_assert_eq (live, 1);
  memset (w, 'Z', 4096);
  cr_assert_eq (sc_volume_live_write (t.v, ticket, w, 4096, 2 * 4096, 0),
                -ESHUTDOWN);
  cr_assert_eq (sc_volume_live_zero (t.v, ticket, 4096, 2 * 4096, 0),
                -ESHUTDOWN);
  cr_assert_eq (sc_volume_live_trim (t.v, ticket, 4096, 2 * 4096, 0),
                -ESHUTDOWN);
  cr_assert_eq (sc_volume_read (t.v, got, 4096, 2 * 4096), 0);
  assert_same_bytes (got, a, 4096, 2 * 4096, "live after the revert");
  uint64_t t2 = sc_volume_live_open (t.v);
  cr_assert_eq (sc_volume_live_write (t.v, t2, w, 4096, 2 * 4096, 0), 0,
                "a new connection writes");
  sc_volume_live_close (t.v, t2);
  sc_volume_live_close (t.v, ticket);
  free (a);
  free (w);
  free (got);
  vol_free (&t);
}

/* revert --force revokes the live connections only once the revert
 * starts: a refused one (the saved name is taken) leaves them working. */
Test (volume, a_refused_forced_revert_revokes_nothing)
{
  struct vol t;
  vol_create (&t, 16 * 4096, 4096, 7);
  snap (&t, "A");
  snap (&t, "B");
  uint64_t ticket = sc_volume_live_open (t.v), live = 0;
  cr_assert_eq (sc_volume_revert_start (t.v, "A", "B", 0, SC_REVERT_FORCE,
                                        &live, NULL), -EEXIST);
  cr_assert_eq (sc_volume_live_check (t.v, ticket), 0, "not revoked");
  cr_assert_eq (sc_volume_live_count (t.v), 1);
  uint8_t *w = xmalloc (4096);
  memset (w, 'X', 4096);
  cr_assert_eq (sc_volume_live_write (t.v, ticket, w, 4096, 0, 0), 0);
  /* Then a forced revert that starts revokes it, once. */
  cr_assert_eq (sc_volume_revert_start (t.v, "A", NULL, 0, SC_REVERT_FORCE |
                                        SC_REVERT_PAUSED, &live, NULL), 0);
  cr_assert_eq (sc_volume_live_check (t.v, ticket), -ESHUTDOWN);
  cr_assert_eq (sc_volume_live_count (t.v), 0);
  sc_volume_live_close (t.v, ticket);
  cr_assert_eq (sc_volume_live_count (t.v), 0);
  free (w);
  vol_free (&t);
}

/* A live connection that opens after revert's first count, before its
 * hold, is counted again under the hold: the revert without --force is
 * refused, not started under a connected client. */
static void
open_in_the_hold (struct sc_volume *v, int phase)
{
  if (phase == 0)
    sc_volume_live_open (v);
}

Test (volume, a_connection_opened_before_the_hold_refuses_the_revert)
{
  struct vol t;
  vol_create (&t, 16 * 4096, 4096, 7);
  snap (&t, "A");
  uint64_t live = 0;
  sc_vol_revert_start_hook = open_in_the_hold;
  int r = sc_volume_revert_start (t.v, "A", NULL, 0, SC_REVERT_PAUSED, &live,
                                  NULL);
  sc_vol_revert_start_hook = NULL;
  cr_assert_eq (r, -EBUSY, "the revert started under a live connection");
  cr_assert_eq (live, 1);
  struct sc_revert_status st;
  cr_assert_eq (sc_volume_revert_status (t.v, &st), -ENOENT, "nothing runs");
  vol_free (&t);
}

/* While a forced revert is being recorded, the connections it revokes
 * are not failed yet (it may still be refused), and a new connection
 * waits until the revert is recorded or refused. */
static uint64_t tentative_ticket;
static volatile bool opened;
static uint64_t opened_ticket;

static void *
open_thread (void *opaque)
{
  opened_ticket = sc_volume_live_open (opaque);
  opened = true;
  return NULL;
}

static pthread_t opener;

static void
check_tentative (struct sc_volume *v, int phase)
{
  if (phase != 1)
    return;
  cr_assert_eq (sc_volume_live_check (v, tentative_ticket), 0,
                "a request fails while the revert may still be refused");
  opened = false;
  cr_assert_eq (pthread_create (&opener, NULL, open_thread, v), 0);
  usleep (100000);
  cr_assert (!opened, "a connection opened while the revert is recorded");
}

Test (volume, a_forced_revert_being_recorded_fails_nothing_yet)
{
  struct vol t;
  vol_create (&t, 16 * 4096, 4096, 7);
  snap (&t, "A");
  snap (&t, "B");
  tentative_ticket = sc_volume_live_open (t.v);
  uint64_t live = 0;
  sc_vol_revert_start_hook = check_tentative;
  /* Refused once recorded: the saved name is taken. */
  int r = sc_volume_revert_start (t.v, "A", "B", 0, SC_REVERT_FORCE, &live,
                                  NULL);
  sc_vol_revert_start_hook = NULL;
  cr_assert_eq (r, -EEXIST);
  pthread_join (opener, NULL);
  cr_assert (opened);
  cr_assert_eq (sc_volume_live_check (t.v, tentative_ticket), 0);
  cr_assert_eq (sc_volume_live_check (t.v, opened_ticket), 0);
  cr_assert_eq (sc_volume_live_count (t.v), 2);
  sc_volume_live_close (t.v, opened_ticket);
  sc_volume_live_close (t.v, tentative_ticket);
  vol_free (&t);
}
