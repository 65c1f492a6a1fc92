/* Unit tests: the allocation map of a snapshot (engine/volume-extents.c):
 * zero copies, data copies and the origin's own holes, merged extents,
 * the bound on one call and the client's loop over it, req_one, deleted
 * and invalid snapshots, and maps racing writes that punch the origin. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/format.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

static void
teardown (void)
{
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (snapshot_extents, .init = uh_setup, .fini = teardown);

#define HZ (SC_EXTENT_HOLE | SC_EXTENT_ZERO)

/* ---- fixture ---------------------------------------------------------- */

/* A sparse origin of `size` bytes with pattern data at each of the `n`
 * ranges {off, len} of `data`, and a volume on it. */
static void
vol_create (struct uh_vol *t, uint64_t size, uint32_t cs,
            const uint64_t (*data)[2], size_t n)
{
  uh_vol_init (t, size, cs, 0, 0);
  for (size_t i = 0; i < n; i++) {
    uint8_t *at = t->live + data[i][0];
    uh_pattern (at, data[i][1], 7, data[i][0]);
    uh_pwrite (t->origin, at, data[i][1], data[i][0]);
  }
  uh_vol_open (t);
}

static void
live_write (struct uh_vol *t, uint64_t off, uint64_t len)
{
  uint8_t *buf = malloc (len);
  cr_assert_not_null (buf);
  uh_pattern (buf, len, 99, off);
  int r = sc_volume_write (t->v, buf, (uint32_t) len, off, 0);
  cr_assert_eq (r, 0, "write of %lu at %lu: %d", (unsigned long) len,
                (unsigned long) off, r);
  free (buf);
}

/* The extents one call reported. */
#define MAX_EXT 4096
struct map {
  size_t n;
  uint64_t off[MAX_EXT], len[MAX_EXT];
  unsigned type[MAX_EXT];
};

static int
collect (void *opaque, uint64_t off, uint64_t len, unsigned type)
{
  struct map *m = opaque;
  cr_assert_lt (m->n, MAX_EXT);
  m->off[m->n] = off;
  m->len[m->n] = len;
  m->type[m->n] = type;
  m->n++;
  return 0;
}

/* One call; asserts the answer starts at `off`, is contiguous, has no
 * two adjacent extents of one type and no empty one, and stays inside
 * the request.  Returns where it ends. */
static uint64_t
map_once (struct uh_vol *t, uint64_t id, uint64_t off, uint64_t count,
          bool one, struct map *m)
{
  m->n = 0;
  int r = sc_volume_snapshot_extents (t->v, id, (uint32_t) count, off, one,
                                      collect, m);
  cr_assert_eq (r, 0, "extents of %lu at %lu: %d", (unsigned long) count,
                (unsigned long) off, r);
  cr_assert_gt (m->n, 0, "no extent reported");
  uint64_t at = off;
  for (size_t i = 0; i < m->n; i++) {
    cr_assert_eq (m->off[i], at, "extent %zu starts at %lu, want %lu", i,
                  (unsigned long) m->off[i], (unsigned long) at);
    cr_assert_gt (m->len[i], 0);
    if (i)
      cr_assert_neq (m->type[i], m->type[i - 1], "extents %zu and %zu of "
                     "one type were not merged", i - 1, i);
    at += m->len[i];
  }
  cr_assert_leq (at, off + count);
  return at;
}

/* The type of every 4K block of the snapshot, by asking as a client does:
 * again from where each answer ended. */
static unsigned *
block_types (struct uh_vol *t, uint64_t id, size_t *calls)
{
  unsigned *types = calloc (t->size / 4096, sizeof *types);
  struct map *m = malloc (sizeof *m);
  cr_assert (types && m);
  uint64_t off = 0;
  *calls = 0;
  while (off < t->size) {
    uint64_t end = map_once (t, id, off, t->size - off, false, m);
    for (size_t i = 0; i < m->n; i++) {
      cr_assert_eq (m->off[i] % 4096, 0);
      cr_assert_eq (m->len[i] % 4096, 0);
      for (uint64_t b = m->off[i]; b < m->off[i] + m->len[i]; b += 4096)
        types[b / 4096] = m->type[i];
    }
    off = end;
    (*calls)++;
  }
  free (m);
  return types;
}

/* ---- what the map says --------------------------------------------------- */

Test (snapshot_extents, copies_and_origin_holes_to_4k)
{
  const uint32_t cs = 65536;
  const uint64_t data[][2] = {
    { 0, 65536 },                   /* chunk 0: data */
    { 2 * 65536, 4096 },            /* chunk 2: 4K data, 4K hole, 4K data */
    { 2 * 65536 + 8192, 4096 },
    { 4 * 65536, 65536 },           /* chunk 4: data, overwritten below */
    { 6 * 65536 + 4096, 4096 },     /* chunk 6: some data, written below */
  };
  struct uh_vol t;
  vol_create (&t, 16 * cs, cs, data, 5);
  uint64_t id = uh_vol_snap (&t, "s").id;
  live_write (&t, 1 * cs + 100, 10);         /* a hole chunk: zero copy */
  live_write (&t, 4 * cs, 100);              /* data: a data copy */
  live_write (&t, 6 * cs + 32768, 4096);     /* part data: a data copy */
  cr_assert_eq (sc_volume_trim (t.v, 2 * cs, 8 * cs, 0), 0);  /* holes */

  struct map m;
  map_once (&t, id, 0, t.size, false, &m);
  const uint64_t want[][3] = {
    { 0, cs, 0 },
    { cs, cs, HZ },                          /* zero copy + nothing */
    { 2 * cs, 4096, 0 },
    { 2 * cs + 4096, 4096, HZ },
    { 2 * cs + 8192, 4096, 0 },
    { 2 * cs + 12288, 2 * cs - 12288, HZ },  /* origin holes, merged */
    { 4 * cs, cs, 0 },                       /* the data copy */
    { 5 * cs, cs, HZ },
    { 6 * cs, cs, 0 },                       /* a whole data copy */
    { 7 * cs, 9 * cs, HZ },                  /* origin holes, zero copies */
  };
  cr_assert_eq (m.n, 10, "%zu extents", m.n);
  for (size_t i = 0; i < 10; i++)
    cr_assert (m.off[i] == want[i][0] && m.len[i] == want[i][1] &&
               m.type[i] == want[i][2], "extent %zu: %lu+%lu type %u, want "
               "%lu+%lu type %lu", i, (unsigned long) m.off[i],
               (unsigned long) m.len[i], m.type[i],
               (unsigned long) want[i][0], (unsigned long) want[i][1],
               (unsigned long) want[i][2]);

  /* The live map is the origin's now: chunk 1 holds data. */
  m.n = 0;
  cr_assert_eq (sc_volume_extents (t.v, cs, cs, collect, &m), 0);
  cr_assert (m.n > 0 && m.type[0] == 0, "live chunk 1 is not data");
  uh_vol_free (&t);
}

Test (snapshot_extents, unaligned_requests_answer_from_their_offset)
{
  const uint64_t data[][2] = { { 8192, 4096 } };
  struct uh_vol t;
  vol_create (&t, 16 * 4096, 4096, data, 1);
  uint64_t id = uh_vol_snap (&t, "s").id;
  struct map m;
  uint64_t end = map_once (&t, id, 8192 + 100, 5000, false, &m);
  cr_assert_eq (end, 8192 + 100 + 5000);
  cr_assert_eq (m.n, 2);
  cr_assert (m.len[0] == 4096 - 100 && m.type[0] == 0);
  cr_assert (m.len[1] == 5000 - (4096 - 100) && m.type[1] == HZ);
  uh_vol_free (&t);
}

Test (snapshot_extents, one_reports_the_first_extent_only)
{
  const uint64_t data[][2] = { { 0, 3 * 4096 }, { 8 * 4096, 4096 } };
  struct uh_vol t;
  vol_create (&t, 16 * 4096, 4096, data, 2);
  uint64_t id = uh_vol_snap (&t, "s").id;
  live_write (&t, 4 * 4096, 4096);           /* zero copy of a hole */
  struct map m;
  map_once (&t, id, 4096, t.size - 4096, true, &m);
  cr_assert_eq (m.n, 1);
  cr_assert (m.off[0] == 4096 && m.len[0] == 2 * 4096 && m.type[0] == 0,
             "%lu+%lu type %u", (unsigned long) m.off[0],
             (unsigned long) m.len[0], m.type[0]);
  map_once (&t, id, 3 * 4096, t.size - 3 * 4096, true, &m);
  cr_assert (m.n == 1 && m.len[0] == 5 * 4096 && m.type[0] == HZ,
             "the hole before the data at 32K, zero copy included");
  uh_vol_free (&t);
}

/* ---- bounded work ------------------------------------------------------ */

Test (snapshot_extents, a_large_request_is_answered_in_part)
{
  /* 64 MiB of 4K chunks, all holes: far more chunks than one call
   * resolves; every call still answers for at least one byte. */
  struct uh_vol t;
  vol_create (&t, 64 << 20, 4096, NULL, 0);
  uint64_t id = uh_vol_snap (&t, "s").id;
  struct map m;
  uint64_t end = map_once (&t, id, 0, t.size, false, &m);
  cr_assert_lt (end, t.size, "one call resolved all 16384 chunks");
  cr_assert (m.n == 1 && m.type[0] == HZ);
  size_t calls;
  unsigned *types = block_types (&t, id, &calls);
  for (uint64_t b = 0; b < t.size / 4096; b++)
    cr_assert_eq (types[b], HZ, "block %lu", (unsigned long) b);
  cr_assert_gt (calls, 1);
  free (types);
  uh_vol_free (&t);
}

Test (snapshot_extents, many_extents_are_answered_in_part_and_add_up)
{
  /* Every other 4K block is data: more extents than one call reports. */
  const uint64_t n = 8192;
  uint64_t (*data)[2] = calloc (n / 2, sizeof *data);
  cr_assert_not_null (data);
  for (uint64_t i = 0; i < n / 2; i++) {
    data[i][0] = 2 * i * 4096;
    data[i][1] = 4096;
  }
  struct uh_vol t;
  vol_create (&t, n * 4096, 65536, (const uint64_t (*)[2]) data, n / 2);
  free (data);
  uint64_t id = uh_vol_snap (&t, "s").id;
  live_write (&t, 3 * 65536, 100);           /* one data copy */
  struct map m;
  uint64_t end = map_once (&t, id, 0, t.size, false, &m);
  cr_assert_lt (end, t.size, "%zu extents in one call", m.n);
  size_t calls;
  unsigned *types = block_types (&t, id, &calls);
  for (uint64_t b = 0; b < n; b++) {
    unsigned want = b / 16 == 3 || b % 2 == 0 ? 0 : HZ;
    cr_assert_eq (types[b], want, "block %lu: %u, want %u",
                  (unsigned long) b, types[b], want);
  }
  free (types);
  uh_vol_free (&t);
}

/* ---- gone or invalid --------------------------------------------------- */

Test (snapshot_extents, deleted_snapshot_is_enoent)
{
  struct uh_vol t;
  vol_create (&t, 16 * 4096, 4096, NULL, 0);
  uint64_t id = uh_vol_snap (&t, "gone").id;
  cr_assert_eq (sc_volume_snapshot_delete (t.v, "gone"), 0);
  struct map m = { 0 };
  cr_assert_eq (sc_volume_snapshot_extents (t.v, id, 4096, 0, false,
                                            collect, &m), -ENOENT);
  cr_assert_eq (sc_volume_snapshot_extents (t.v, id, 0, 0, false, collect,
                                            &m), -ENOENT);
  cr_assert_eq (m.n, 0);
  cr_assert_eq (sc_volume_snapshot_extents (t.v, id + 1, 4096, t.size,
                                            false, collect, &m), -EINVAL,
                "past the end");
  uh_vol_free (&t);
}

static int diff_fd = -1;

/* Fail every write of a whole data slot to the diff area. */
static int
fail_copy_writes (const struct sc_io_req *req)
{
  return req->op == SC_IO_WRITE && req->fd == diff_fd &&
         req->len == 4096 && req->off >= SC_SB_AREA ? -EIO : 0;
}

Test (snapshot_extents, invalid_snapshot_is_eio)
{
  const uint64_t data[][2] = { { 0, 16 * 4096 } };
  struct uh_vol t;
  vol_create (&t, 16 * 4096, 4096, data, 1);
  uint64_t id = uh_vol_snap (&t, "bad").id;
  diff_fd = sc_diff_fd (sc_volume_diff (t.v));
  sc_io_fault_hook = fail_copy_writes;
  live_write (&t, 0, 4096);                  /* its copy fails */
  sc_io_fault_hook = NULL;
  struct map m = { 0 };
  cr_assert_eq (sc_volume_snapshot_extents (t.v, id, 4096, 8192, false,
                                            collect, &m), -EIO);
  cr_assert_eq (m.n, 0);
  uh_vol_free (&t);
}

/* ---- racing writes ----------------------------------------------------- */

/* The snapshot is all data; a writer trims the live volume chunk by chunk
 * (each trim copies the chunk, then punches the origin).  A map that asked
 * the origin about a chunk after its copy would see the punched hole: the
 * range lock must keep the trim out until the map has its answer. */
struct race {
  struct uh_vol t;
  uint64_t id;
  int stop, bad, maps, trims;
  char why[256];
};

static void *
race_trimmer (void *p)
{
  struct race *rc = p;
  uint32_t cs = rc->t.chunk_size;
  for (uint64_t c = 0; c < rc->t.size / cs &&
       !__atomic_load_n (&rc->stop, __ATOMIC_SEQ_CST); c++) {
    int r = sc_volume_trim (rc->t.v, cs, c * cs, 0);
    if (r != 0 && !__atomic_exchange_n (&rc->bad, 1, __ATOMIC_SEQ_CST))
      snprintf (rc->why, sizeof rc->why, "trim of chunk %lu: %d",
                (unsigned long) c, r);
    __atomic_fetch_add (&rc->trims, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

static int
race_check (void *opaque, uint64_t off, uint64_t len, unsigned type)
{
  struct race *rc = opaque;
  if (type != 0 && !__atomic_exchange_n (&rc->bad, 1, __ATOMIC_SEQ_CST))
    snprintf (rc->why, sizeof rc->why, "the snapshot's map says %lu+%lu is "
              "a hole: the live trim was seen", (unsigned long) off,
              (unsigned long) len);
  return 0;
}

static void *
race_mapper (void *p)
{
  struct race *rc = p;
  while (!__atomic_load_n (&rc->stop, __ATOMIC_SEQ_CST)) {
    int r = sc_volume_snapshot_extents (rc->t.v, rc->id,
                                        (uint32_t) rc->t.size, 0, false,
                                        race_check, rc);
    if (r != 0 && !__atomic_exchange_n (&rc->bad, 1, __ATOMIC_SEQ_CST))
      snprintf (rc->why, sizeof rc->why, "extents: %d", r);
    __atomic_fetch_add (&rc->maps, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

Test (snapshot_extents, maps_racing_trims_never_see_the_holes)
{
  if (!uh_punch_reads_zeros ())
    cr_skip_test ("punching holes does not work here");
  struct race *rc = calloc (1, sizeof *rc);
  cr_assert_not_null (rc);
  const uint64_t data[][2] = { { 0, 1024 * 4096 } };
  vol_create (&rc->t, 1024 * 4096, 4096, data, 1);
  rc->id = uh_vol_snap (&rc->t, "s").id;
  pthread_t w, r[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq (pthread_create (&r[i], NULL, race_mapper, rc), 0);
  cr_assert_eq (pthread_create (&w, NULL, race_trimmer, rc), 0);
  pthread_join (w, NULL);
  __atomic_store_n (&rc->stop, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 2; i++)
    pthread_join (r[i], NULL);
  cr_log_info ("race: %d trims, %d maps", rc->trims, rc->maps);
  cr_assert_eq (rc->bad, 0, "%s", rc->why);
  cr_assert_gt (rc->maps, 2);
  /* And afterwards, every chunk is a data copy. */
  size_t calls;
  unsigned *types = block_types (&rc->t, rc->id, &calls);
  for (uint64_t b = 0; b < 1024; b++)
    cr_assert_eq (types[b], 0, "block %lu", (unsigned long) b);
  free (types);
  uh_vol_free (&rc->t);
  free (rc);
}
