/* Unit tests: the on-full policies through the engine's volume: a write
 * refused under fail-writes stops copying at the first refusal, and a
 * snapshot read queued behind a write that drops its snapshot neither
 * deadlocks that write nor makes it drop more than one snapshot. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

static void
teardown (void)
{
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (space_volume, .init = uh_setup, .fini = teardown);

#define CS 4096u
#define NCHUNKS 256u
#define SEED 11

static struct sc_volume *
vol_open (enum sc_on_full on_full, uint64_t max_chunks)
{
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, NCHUNKS * CS, SEED);
  struct sc_volume_config cfg = {
    .origin_path = origin, .diff_path = diff, .chunk_size = CS,
    .diff_max_set = true, .diff_max = max_chunks * CS, .on_full = on_full,
  };
  char err[512] = "";
  struct sc_volume *v;
  int r = sc_volume_open (&cfg, &v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %d %s", r, err);
  free (origin);
  free (diff);
  return v;
}

static struct sc_snapshot_info
snap (struct sc_volume *v, const char *name)
{
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (v, name, NULL, &s), 0);
  return s;
}

static void
assert_origin_data (const uint8_t *got, uint64_t off, uint64_t len)
{
  uint8_t *want = malloc (len);
  cr_assert_not_null (want);
  uh_pattern (want, len, SEED, off);
  cr_assert (memcmp (got, want, len) == 0, "data at %lu is not the "
             "snapshot's", (unsigned long) off);
  free (want);
}

Test (space_volume, fail_writes_stops_copying_at_the_first_refusal)
{
  struct sc_volume *v = vol_open (SC_ON_FULL_FAIL_WRITES, 24);
  struct sc_snapshot_info s = snap (v, "a");
  size_t len = 128 * CS;
  uint8_t *buf = malloc (len);
  cr_assert_not_null (buf);
  memset (buf, 0xab, len);
  cr_assert_eq (sc_volume_write (v, buf, len, 0, 0), -ENOSPC);
  struct sc_diff_stats ds;
  sc_diff_stats (sc_volume_diff (v), &ds);
  struct sc_volume_stats vs;
  sc_volume_stats (v, &vs);
  cr_assert_eq (vs.writes_refused, 1);
  cr_assert_eq (ds.full_failures, 1, "one refused write counted %lu refused "
                "copies: the copy-on-write went on after the refusal",
                (unsigned long) ds.full_failures);
  cr_assert_lt (vs.chunks_copied, 24);
  /* Nothing changed: the origin and the snapshot still read the same. */
  cr_assert_eq (sc_volume_read (v, buf, len, 0), 0);
  assert_origin_data (buf, 0, len);
  cr_assert_eq (sc_volume_snapshot_read (v, s.id, buf, len, 0), 0);
  assert_origin_data (buf, 0, len);
  free (buf);
  sc_volume_close (v);
}

/* ---- a read queued behind the write that drops its snapshot ---------- */

static struct sc_volume *g_v;
static uint64_t g_snap_id, g_chunk;
static pthread_t g_writer, g_reader;
static bool g_spawn, g_spawned;
static int g_read_result;
static uint8_t g_read_buf[CS];

static void *
reader (void *opaque)
{
  (void) opaque;
  g_read_result = sc_volume_snapshot_read (g_v, g_snap_id, g_read_buf, CS,
                                           g_chunk * CS);
  return NULL;
}

/* When the writer reads the old content of its chunk (it holds the chunk's
 * range), a backup starts reading the oldest snapshot there: it queues
 * behind the writer. */
static int
spawn_reader (const struct sc_io_req *q)
{
  if (!g_spawn || g_spawned || q->op != SC_IO_READ ||
      !pthread_equal (pthread_self (), g_writer))
    return 0;
  g_spawned = true;
  cr_assert_eq (pthread_create (&g_reader, NULL, reader, NULL), 0);
  /* Let it reach the range lock (the test passes however long it takes;
   * without the fix it then fails or hangs). */
  struct timespec ts = { 0, 50 * 1000 * 1000 };
  nanosleep (&ts, NULL);
  return 0;
}

Test (space_volume, a_read_queued_behind_a_drop_neither_hangs_nor_cascades,
      .timeout = 60)
{
  struct sc_volume *v = vol_open (SC_ON_FULL_DELETE_OLDEST, 24);
  g_v = v;
  g_writer = pthread_self ();
  uint8_t buf[CS];
  memset (buf, 0xcd, sizeof buf);
  struct sc_snapshot_info s0 = snap (v, "s0");
  g_snap_id = s0.id;
  for (uint64_t c = 0; c < 4; c++)             /* copies only s0 needs */
    cr_assert_eq (sc_volume_write (v, buf, CS, c * CS, 0), 0);
  snap (v, "s1");
  snap (v, "s2");
  sc_io_fault_hook = spawn_reader;
  struct sc_volume_stats st;
  uint64_t c;
  for (c = 4; c < NCHUNKS; c++) {
    g_chunk = c;
    g_spawn = true;
    g_spawned = false;
    cr_assert_eq (sc_volume_write (v, buf, CS, c * CS, 0), 0);
    g_spawn = false;
    if (g_spawned) {
      pthread_join (g_reader, NULL);
      if (g_read_result == 0)
        assert_origin_data (g_read_buf, c * CS, CS);
      else
        cr_assert_eq (g_read_result, -ENOENT, "read of s0: %d",
                      g_read_result);
    }
    sc_volume_stats (v, &st);
    if (st.dropped)
      break;
  }
  sc_io_fault_hook = NULL;
  cr_assert_eq (st.dropped, 1, "a read of the dropped snapshot made the "
                "write drop %lu snapshots", (unsigned long) st.dropped);
  struct sc_snapshot_info *list;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (sc_volume_diff (v), &list, &n), 0);
  cr_assert_eq (n, 2);
  cr_assert_str_eq (list[0].name, "s1");
  free (list);
  sc_volume_close (v);
}
