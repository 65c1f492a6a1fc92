/* Unit tests: verified reads of copied data (cow/copydata.c, cow/sums.c,
 * cow/damage.c).  Copies carry a checksum per block in COPY_SUMS records
 * that replay and checkpoints keep; a version-1 diff area (COPY records
 * with one CRC per chunk) is still read, verified whole; a mismatch fails
 * the read with EIO and marks the snapshots that need the copy damaged,
 * durably, and counted; a damaged copy kept for reads in flight is freed
 * when the last of them ends; a 4K read of a 64K chunk reads 4K; the
 * whole-copy verification of the scrub frees a damaged copy nobody valid
 * needs. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/journal.h"
#include "tests/unit-helpers.h"

TestSuite (verify, .init = uh_setup, .fini = uh_teardown);

#define CS (64u * 1024u)
#define NCHUNKS 16u

/* ---- helpers ------------------------------------------------------------ */

/* Records of each type in the current journal of the closed area. */
struct types { uint64_t n[16]; };

static int
count_type (void *opaque, const struct sc_rec_hdr *h, uint64_t durable,
            char *err, size_t errlen)
{
  struct types *t = opaque;
  if (h->type < 16)
    t->n[h->type]++;
  return 0;
}

static struct types
journal_types (const char *path)
{
  struct sc_sb_disk sb;
  struct types t = { { 0 } };
  uh_sb_newest (path, &sb);
  int fd = open (path, O_RDONLY);
  cr_assert_geq (fd, 0);
  uint64_t *chain = NULL, records = 0, end_seq = 0;
  uint64_t durable = sb.flags & SC_SB_CLEAN ? sb.clean_seq - 1 : 0;
  unsigned flags = sb.flags & SC_SB_CLEAN ? SC_JOURNAL_CLEAN : 0;
  size_t nchain = 0;
  uint32_t end_pos = 0;
  char err[512];
  int r = sc_journal_replay (fd, 1u << sb.chunk_shift,
                             sc_journal_seed (sb.uuid, sb.journal_nonce),
                             sb.journal_head, sb.journal_seq, UINT64_MAX >> 21,
                             flags, count_type, NULL, &t, &chain, &nchain,
                             &end_pos, &records, &end_seq, &durable, NULL,
                             err, sizeof err);
  cr_assert_eq (r, 0, "replaying the journal: %s", err);
  free (chain);
  close (fd);
  return t;
}

/* Read `len` bytes at `at` of the copy that snapshot `name` sees of
 * `chunk`; returns the read's result, data in buf. */
static int
read_copy (struct sc_diff *d, const char *name, uint64_t chunk, uint32_t at,
           uint32_t len, void *buf)
{
  struct sc_snapshot_info s = uh_find (d, name);
  uint64_t off;
  cr_assert_eq (sc_diff_snapshot_get (d, s.id, NULL), 0);
  cr_assert_eq (sc_diff_resolve (d, s.epoch, chunk, &off), SC_WHERE_DIFF);
  struct sc_copy_io io = { .offset = off, .buf = buf, .at = at, .len = len };
  int r = sc_diff_copy_read (d, &io, 1);
  cr_assert_eq (r, io.result);
  sc_diff_snapshot_put (d, s.id);
  return r;
}

/* The read returns what copy `tag` holds at [at, at + len). */
static void
assert_reads (struct sc_diff *d, const char *name, uint64_t chunk,
              uint64_t tag, uint32_t at, uint32_t len)
{
  uint8_t *got = malloc (len), *want = malloc (CS);
  cr_assert (got && want);
  int r = read_copy (d, name, chunk, at, len, got);
  cr_assert_eq (r, 0, "read of %s chunk %lu [%u, +%u): %s", name,
                (unsigned long) chunk, at, len, strerror (-r));
  uh_pattern (want, CS, tag, 0);
  cr_assert_arr_eq (got, want + at, len, "wrong data at %u+%u", at, len);
  free (got);
  free (want);
}

static void
flip (const char *path, uint64_t off)
{
  uh_flip_byte (path, off);
}

/* Bytes read from the diff-area file (fd) while counting. */
static int counted_fd = -1;
static uint64_t counted_bytes, counted_reqs;

static int
count_reads (const struct sc_io_req *req)
{
  if (req->op == SC_IO_READ && req->fd == counted_fd) {
    counted_bytes += req->len;
    counted_reqs++;
  }
  return 0;
}

static void
count_start (struct sc_diff *d)
{
  counted_fd = sc_diff_fd (d);
  counted_bytes = counted_reqs = 0;
  sc_io_fault_hook = count_reads;
}

static void
count_stop (void)
{
  sc_io_fault_hook = NULL;
}

/* ---- records, replay, checkpoints ---------------------------------------- */

Test (verify, copies_are_recorded_with_block_sums_and_read_back_verified)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 1);
  uh_snap (a.d, "s");
  uh_copy_chunk (a.d, 3, 7);
  assert_reads (a.d, "s", 3, 7, 4096, 4096);
  uh_area_close (&a);

  struct types t = journal_types (a.diff_path);
  cr_assert_eq (t.n[SC_REC_COPY_SUMS], 1, "COPY_SUMS records: %lu",
                (unsigned long) t.n[SC_REC_COPY_SUMS]);
  cr_assert_eq (t.n[SC_REC_COPY], 0);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.version, SC_FORMAT_VERSION, "superblock version %u", sb.version);

  /* Replayed read-only and read-write, the sums are still there. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  assert_reads (a.d, "s", 3, 7, 0, CS);
  uh_area_reopen (&a, 0);
  assert_reads (a.d, "s", 3, 7, 60 * 1024, 4096);
  uh_area_free (&a);
}

Test (verify, a_checkpoint_keeps_the_block_sums)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 2);
  uh_snap (a.d, "s");
  uint64_t off = uh_copy_chunk (a.d, 5, 9);
  uh_copy_zero (a.d, 6);
  uh_area_close (&a);
  uh_sb_mark_unclean (a.diff_path);     /* the next open checkpoints */
  uh_area_open (&a, 0);
  uh_area_close (&a);
  struct types t = journal_types (a.diff_path);
  cr_assert_eq (t.n[SC_REC_COPY_SUMS], 1);
  cr_assert_eq (t.n[SC_REC_COPY], 1, "the zero copy stays a COPY record");

  /* The sums that came through the checkpoint still catch a flip. */
  flip (a.diff_path, off + 3 * 4096 + 1);
  uh_area_open (&a, 0);
  assert_reads (a.d, "s", 5, 9, 0, 3 * 4096);
  uint8_t buf[4096];
  cr_assert_eq (read_copy (a.d, "s", 5, 3 * 4096, 4096, buf), -EIO);
  uh_area_free (&a);
}

/* A diff area as version 1 wrote it: a COPY record with the CRC of the
 * whole chunk, and version 1 in both superblocks. */
static uint64_t
make_version_1_area (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 3);
  uh_snap (a->d, "old");
  uh_area_close (a);
  uint64_t slot = (uh_file_size (a->diff_path) + CS - 1) / CS;
  uint8_t *data = malloc (CS);
  cr_assert_not_null (data);
  uh_pattern (data, CS, 21, 0);
  uh_pwrite (a->diff_path, data, CS, slot * CS);
  struct sc_rec_copy rec = { .h.type = SC_REC_COPY, .h.len = sizeof rec,
                             .chunk = 4, .epoch = 2, .slot = slot,
                             .data_crc = crc32c (0, data, CS) };
  free (data);
  uh_journal_append (a->diff_path, &rec, sizeof rec);
  for (int copy = 0; copy < SC_SB_COPIES; copy++) {
    struct sc_sb_disk sb;
    uh_sb_read (a->diff_path, copy, &sb);
    sb.version = 1;
    uh_sb_write (a->diff_path, copy, &sb);
  }
  return slot * CS;
}

Test (verify, a_version_1_area_is_read_verified_as_whole_chunks)
{
  struct uh_area a;
  uint64_t off = make_version_1_area (&a);

  /* Read-only: a 4K read reads the whole chunk to check its CRC. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  count_start (a.d);
  assert_reads (a.d, "old", 4, 21, 8192, 4096);
  count_stop ();
  cr_assert_eq (counted_bytes, CS, "read %lu bytes", (unsigned long) counted_bytes);
  assert_reads (a.d, "old", 4, 21, 0, CS);
  uh_area_close (&a);

  /* Read-write: the superblock becomes version 2, the copy keeps its
   * COPY record through a checkpoint and is still verified. */
  uh_sb_mark_unclean (a.diff_path);
  uh_area_open (&a, 0);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.version, SC_FORMAT_VERSION, "upgraded to the current version");
  assert_reads (a.d, "old", 4, 21, 100, 5000);
  uh_area_close (&a);
  struct types t = journal_types (a.diff_path);
  cr_assert_eq (t.n[SC_REC_COPY], 1);
  cr_assert_eq (t.n[SC_REC_COPY_SUMS], 0);

  flip (a.diff_path, off + CS - 1);
  uh_area_open (&a, 0);
  uint8_t buf[512];
  cr_assert_eq (read_copy (a.d, "old", 4, 0, sizeof buf, buf), -EIO);
  cr_assert_eq (uh_find (a.d, "old").invalid_reason, SC_INVALID_DAMAGED);
  uh_area_free (&a);
}

/* ---- damage ------------------------------------------------------------- */

Test (verify, a_mismatch_fails_the_read_and_damages_the_snapshots_durably)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 4);
  uh_snap (a.d, "a");                   /* epoch 1 */
  uint64_t off2 = uh_copy_chunk (a.d, 2, 12);   /* serves [0, 1]: a */
  uh_snap (a.d, "b");                   /* epoch 2 */
  uh_copy_chunk (a.d, 5, 15);           /* serves [0, 2]: a and b */
  uh_area_close (&a);
  flip (a.diff_path, off2 + 7 * 4096 + 99);

  uh_area_open (&a, 0);
  struct sc_diff_stats st0 = uh_stats (a.d);
  assert_reads (a.d, "a", 2, 12, 0, 7 * 4096);  /* blocks before it */
  uint8_t buf[8192];
  cr_assert_eq (read_copy (a.d, "a", 2, 6 * 4096, 8192, buf), -EIO);
  struct sc_snapshot_info ia = uh_find (a.d, "a");
  cr_assert_eq (ia.invalid_reason, SC_INVALID_DAMAGED);
  cr_assert_eq (ia.invalid_chunk, 2);
  cr_assert_eq (uh_find (a.d, "b").invalid_reason, SC_VALID);
  cr_assert_eq (sc_diff_snapshot_get (a.d, ia.id, NULL), -EIO,
                "a damaged snapshot is still served");
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.checksum_errors, 1);
  cr_assert_eq (st.damaged, 1);
  cr_assert_eq (st.invalid, 1);
  /* Nothing valid needs the copy any more; the read that found the
   * damage had its snapshot pinned, and its unpin freed the copy. */
  cr_assert_eq (st.damaged_freed, 1);
  cr_assert_eq (st.data_slots, st0.data_slots - 1);
  assert_reads (a.d, "b", 5, 15, 0, CS);
  uh_area_close (&a);

  /* Durable. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  cr_assert_eq (uh_stats (a.d).data_slots, st0.data_slots - 1);
  ia = uh_find (a.d, "a");
  cr_assert_eq (ia.invalid_reason, SC_INVALID_DAMAGED);
  cr_assert_eq (ia.invalid_chunk, 2);
  cr_assert_eq (uh_find (a.d, "b").invalid_reason, SC_VALID);
  uh_area_free (&a);
}

Test (verify, a_damaged_copy_is_freed_when_the_last_read_of_it_ends)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  struct sc_snapshot_info s = uh_snap (a.d, "a");
  uint64_t off = uh_copy_chunk (a.d, 3, 13);
  uh_copy_chunk (a.d, 4, 14);
  flip (a.diff_path, off + 100);
  struct sc_diff_stats st0 = uh_stats (a.d);

  /* Two reads of "a" in flight; the first finds the damage. */
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);
  uint8_t buf[4096];
  struct sc_copy_io io = { .offset = off, .buf = buf, .len = sizeof buf };
  cr_assert_eq (sc_diff_copy_read (a.d, &io, 1), -EIO);
  cr_assert_eq (uh_find (a.d, "a").invalid_reason, SC_INVALID_DAMAGED);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, st0.data_slots, "freed under a read");
  cr_assert_eq (st.damaged_freed, 0);

  /* The first read ends: the other still holds the copy. */
  sc_diff_snapshot_put (a.d, s.id);
  st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, st0.data_slots, "freed under a read");
  cr_assert_eq (st.damaged_freed, 0);

  /* The last one ends: the damaged copy goes (and only it: the other
   * copy of "a" waits for the next garbage collection, as any copy of an
   * invalid snapshot does). */
  sc_diff_snapshot_put (a.d, s.id);
  st = uh_stats (a.d);
  cr_assert_eq (st.damaged_freed, 1);
  cr_assert_eq (st.data_slots, st0.data_slots - 1);
  uh_area_close (&a);

  uh_area_open (&a, SC_DIFF_RDONLY);
  cr_assert_eq (uh_find (a.d, "a").invalid_reason, SC_INVALID_DAMAGED);
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  uh_area_free (&a);
}

Test (verify, a_4k_aligned_read_of_a_64k_chunk_reads_only_4k)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 5);
  uh_snap (a.d, "s");
  uh_copy_chunk (a.d, 1, 31);
  count_start (a.d);
  assert_reads (a.d, "s", 1, 31, 8192, 4096);
  count_stop ();
  cr_assert_eq (counted_bytes, 4096, "read %lu bytes",
                (unsigned long) counted_bytes);

  /* Not block-aligned: only the covering blocks, through a bounce. */
  count_start (a.d);
  assert_reads (a.d, "s", 1, 31, 4096 + 100, 200);
  count_stop ();
  cr_assert_eq (counted_bytes, 4096);
  count_start (a.d);
  assert_reads (a.d, "s", 1, 31, 4000, 200);
  count_stop ();
  cr_assert_eq (counted_bytes, 8192);
  uh_area_free (&a);
}

Test (verify, adjacent_pieces_are_read_in_one_request_and_each_verified)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 6);
  uh_snap (a.d, "s");
  uint64_t o1 = uh_copy_chunk (a.d, 1, 41);
  uint64_t o2 = uh_copy_chunk (a.d, 2, 42);
  cr_assert_eq (o2, o1 + CS, "slots not adjacent");
  uint8_t *buf = malloc (2 * CS), *want = malloc (CS);
  struct sc_copy_io io[2] = {
    { .offset = o1, .buf = buf, .at = 0, .len = CS },
    { .offset = o2, .buf = buf + CS, .at = 0, .len = CS },
  };
  count_start (a.d);
  cr_assert_eq (sc_diff_copy_read (a.d, io, 2), 0);
  count_stop ();
  cr_assert_eq (counted_reqs, 1);
  uh_pattern (want, CS, 42, 0);
  cr_assert_arr_eq (buf + CS, want, CS);
  uh_area_close (&a);
  flip (a.diff_path, o2 + 5);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_copy_read (a.d, io, 2), -EIO);
  cr_assert_eq (io[0].result, 0);
  cr_assert_eq (io[1].result, -EIO);
  free (buf);
  free (want);
  uh_area_free (&a);
}

Test (verify, whole_copy_verification_frees_a_damaged_copy_nobody_needs)
{
  struct uh_area a;
  uh_area_create (&a, NCHUNKS * CS, CS, 7);
  uh_snap (a.d, "a");
  uint64_t off = uh_copy_chunk (a.d, 3, 51);
  uh_copy_chunk (a.d, 4, 52);
  /* Every snapshot invalid for another reason; the copies stay until the
   * next garbage collection. */
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 9, SC_INVALID_COPY_READ, EIO),
                0);
  flip (a.diff_path, off + 12345);

  uint8_t *buf = malloc (CS);
  struct sc_copy_verify v;
  int found = 0, damaged = 0;
  for (uint64_t slot = 0;; slot = v.slot + 1) {
    int r = sc_diff_verify_next (a.d, slot, buf, &v);
    cr_assert_geq (r, 0);
    if (r == 0)
      break;
    found++;
    cr_assert_eq (v.bytes, CS);
    if (v.damaged) {
      damaged++;
      cr_assert_eq (v.chunk, 3);
      cr_assert_eq (v.slot * CS, off);
      cr_assert_eq (v.block, 12345 / 4096);
      cr_assert_str_empty (v.needed_by);
      cr_assert (v.freed);
    }
  }
  cr_assert_eq (found, 2);
  cr_assert_eq (damaged, 1);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.checksum_errors, 1);
  cr_assert_eq (st.damaged_freed, 1);
  cr_assert_eq (st.damaged, 0);
  free (buf);
  uh_area_free (&a);
}

/* ---- copies at the end of the journal after an unclean stop ------------- */

static uint8_t boot_now[16];

static int
fixed_boot (uint8_t id[16])
{
  memcpy (id, boot_now, 16);
  return 0;
}

/* The last copy made before an unclean stop is "unsure": its data might
 * not have reached the disk.  `same_boot`: the next open runs in the boot
 * the stop happened in (a kill -9), else after a reboot (a power cut). */
static void
unsure_copy_rotted (bool same_boot)
{
  struct uh_area a;
  memset (boot_now, 0, sizeof boot_now);
  boot_now[0] = 1;
  sc_boot_id_hook = fixed_boot;
  uh_area_create (&a, NCHUNKS * CS, CS, 4);
  uh_snap (a.d, "a");                           /* epoch 1 */
  uh_copy_chunk (a.d, 5, 15);
  uh_area_close (&a);
  uh_area_open (&a, 0);                         /* records this boot */
  uint64_t off2 = uh_copy_chunk (a.d, 2, 12);   /* the journal's last */
  uh_area_close (&a);
  uh_sb_mark_unclean (a.diff_path);             /* as a crash leaves it */
  flip (a.diff_path, off2 + 3 * 4096 + 17);     /* then rot */
  if (!same_boot)
    boot_now[0] = 2;

  uh_area_open (&a, 0);
  struct sc_snapshot_info ia = uh_find (a.d, "a");
  uint64_t off;
  if (same_boot) {
    /* Nothing can be torn by a process crash: this is damage.  The copy
     * is kept (the origin was overwritten after its commit) and "a" is
     * marked damaged at once, durably. */
    cr_assert_eq (ia.invalid_reason, SC_INVALID_DAMAGED,
                  "a rotted copy after a kill -9 was dropped, so the "
                  "snapshot would read the overwritten origin");
    cr_assert_eq (ia.invalid_chunk, 2);
    cr_assert_eq (uh_stats (a.d).checksum_errors, 1);
    uh_area_close (&a);
    uh_area_open (&a, SC_DIFF_RDONLY);
    cr_assert_eq (uh_find (a.d, "a").invalid_reason, SC_INVALID_DAMAGED);
  } else {
    /* After a power cut a write cut short looks the same: the copy is
     * dropped as a torn tail, and "a" reads the origin there. */
    cr_assert_eq (ia.invalid_reason, SC_VALID);
    cr_assert_eq (sc_diff_resolve (a.d, ia.epoch, 2, &off), SC_WHERE_ORIGIN);
    assert_reads (a.d, "a", 5, 15, 0, CS);
  }
  uh_area_free (&a);
  sc_boot_id_hook = NULL;
}

Test (verify, a_rotted_last_copy_after_a_crash_in_the_same_boot_is_damage)
{
  unsure_copy_rotted (true);
}

Test (verify, a_bad_last_copy_after_a_reboot_is_taken_for_a_torn_write)
{
  unsure_copy_rotted (false);
}
