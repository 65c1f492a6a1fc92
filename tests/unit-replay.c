/* Unit tests: replay (cow/replay.c, cow/superblock.c): damaged or foreign
 * diff areas are refused at open with a clear message, and the refused
 * open leaves the file as it was; damage
 * the format is designed to survive (one torn superblock, a torn journal
 * tail) is survived. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/journal.h"
#include "tests/unit-helpers.h"

TestSuite (replay, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u
#define NCHUNKS 64u

/* The diff area every test damages (closed):
 *   snapshot "one" (id 1, epoch 1), then chunk 0 copied (tag 10);
 *   snapshot "two" (id 2, epoch 2), then chunk 1 copied (tag 11) and
 *   chunk 2 recorded as zero.  The live epoch is 3. */
static void
make_area (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 5);
  struct sc_snapshot_info one = uh_snap (a->d, "one");
  cr_assert_eq (one.id, 1);
  cr_assert_eq (one.epoch, 1);
  uh_copy_chunk (a->d, 0, 10);
  uh_snap (a->d, "two");
  uh_copy_chunk (a->d, 1, 11);
  uh_copy_zero (a->d, 2);
  uh_area_close (a);
}

/* The area opens and holds what make_area put there. */
static void
assert_intact (struct uh_area *a, unsigned flags)
{
  uh_area_open (a, flags);
  struct sc_diff_stats st = uh_stats (a->d);
  cr_assert_eq (st.snapshots, 2);
  cr_assert_eq (st.copies, 3);
  cr_assert_eq (st.epoch, 3);
  struct sc_snapshot_info one = uh_find (a->d, "one");
  struct sc_snapshot_info two = uh_find (a->d, "two");
  cr_assert_eq (one.invalid_reason, SC_VALID);
  cr_assert_eq (two.invalid_reason, SC_VALID);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a->d, one.epoch, 0, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a->d, off, 10);
  cr_assert_eq (sc_diff_resolve (a->d, two.epoch, 1, &off), SC_WHERE_DIFF);
  uh_assert_slot_data (a->d, off, 11);
  cr_assert_eq (sc_diff_resolve (a->d, two.epoch, 2, &off), SC_WHERE_ZERO);
  cr_assert_eq (sc_diff_resolve (a->d, two.epoch, 0, &off), SC_WHERE_ORIGIN);
  uh_area_close (a);
}

/* Opening `path` read-write and read-only fails with -want (any negative
 * errno if want is 0), with a message naming the path and containing
 * `word`, and neither open changes a byte of the file. */
static void
assert_refused_with (const char *path, const struct sc_origin_id *origin,
                     int want, const char *word)
{
  size_t n0;
  uint8_t *before = uh_read_file (path, &n0);
  for (int ro = 0; ro < 2; ro++) {
    struct sc_diff *d = NULL;
    char err[1024] = "";
    int r = sc_diff_open (path, ro ? SC_DIFF_RDONLY : 0, origin, 0, &d, err,
                          sizeof err);
    const char *how = ro ? "read-only" : "read-write";
    if (r == 0)
      sc_diff_close (d);
    cr_assert_lt (r, 0, "%s open of a damaged diff area succeeded", how);
    if (want)
      cr_assert_eq (r, -want, "%s open: %d (%s), want %d", how, r, err,
                    -want);
    cr_assert_null (d);
    cr_assert_str_not_empty (err, "%s open: no message", how);
    cr_assert (strstr (err, path) != NULL, "%s: message does not name the "
               "file: %s", how, err);
    cr_assert (strcasestr (err, word) != NULL, "%s: message does not say "
               "\"%s\": %s", how, word, err);
    size_t n1;
    uint8_t *after = uh_read_file (path, &n1);
    cr_assert_eq (n1, n0, "%s: a refused open changed the file size", how);
    cr_assert_arr_eq (after, before, n0, "%s: a refused open wrote to the "
                      "file", how);
    free (after);
  }
  free (before);
}

static void
assert_refused (struct uh_area *a, int want, const char *word)
{
  assert_refused_with (a->diff_path, &a->id, want, word);
  /* Offline tools open without the origin: refused the same way. */
  assert_refused_with (a->diff_path, NULL, want, word);
}

/* Edit both superblock copies (or one) through `edit`, keeping valid
 * CRCs. */
static void
edit_sb (const char *path, int copy, void (*edit) (struct sc_sb_disk *))
{
  for (int c = 0; c < 2; c++) {
    if (copy >= 0 && c != copy)
      continue;
    struct sc_sb_disk sb;
    uh_sb_read (path, c, &sb);
    edit (&sb);
    uh_sb_write (path, c, &sb);
  }
}

/* ---- the control cases: the fixture is sound ------------------------ */

Test (replay, undamaged_area_opens)
{
  struct uh_area a;
  make_area (&a);
  assert_intact (&a, 0);
  assert_intact (&a, SC_DIFF_RDONLY);
  uh_area_free (&a);
}

Test (replay, superblock_crc_is_crc32c_of_the_block_with_crc_zeroed)
{
  struct uh_area a;
  make_area (&a);
  for (int c = 0; c < 2; c++) {
    uint8_t block[SC_SB_SIZE];
    uh_pread (a.diff_path, block, SC_SB_SIZE, (uint64_t) c * SC_SB_SIZE);
    struct sc_sb_disk *sb = (void *) block;
    cr_assert_eq (memcmp (sb->magic, SC_SB_MAGIC, 8), 0);
    cr_assert_eq (sb->version, SC_FORMAT_VERSION);
    cr_assert_eq (sb->crc, uh_sb_crc (block), "copy %c", "AB"[c]);
    cr_assert_eq (sb->chunk_shift, 12);
    cr_assert_eq (sb->origin_size, NCHUNKS * CS);
  }
  uh_area_free (&a);
}

/* ---- superblocks ------------------------------------------------------ */

Test (replay, both_superblock_magics_damaged)
{
  struct uh_area a;
  make_area (&a);
  uh_flip_byte (a.diff_path, 0);
  uh_flip_byte (a.diff_path, SC_SB_SIZE + 3);
  assert_refused (&a, EINVAL, "magic");
  uh_area_free (&a);
}

Test (replay, both_superblock_checksums_bad)
{
  struct uh_area a;
  make_area (&a);
  uh_flip_byte (a.diff_path, offsetof (struct sc_sb_disk, generation));
  uh_flip_byte (a.diff_path, SC_SB_SIZE + SC_SB_SIZE - 1);  /* padding */
  assert_refused (&a, EINVAL, "checksum");
  uh_area_free (&a);
}

Test (replay, damaged_newest_superblock_falls_back_to_the_other)
{
  struct uh_area a;
  make_area (&a);
  struct sc_sb_disk sb;
  int newest = uh_sb_newest (a.diff_path, &sb);
  uh_flip_byte (a.diff_path, (uint64_t) newest * SC_SB_SIZE + 100);
  assert_intact (&a, SC_DIFF_RDONLY);
  assert_intact (&a, 0);
  /* A read-write session rewrote both copies: both are valid again. */
  for (int c = 0; c < 2; c++) {
    uint8_t block[SC_SB_SIZE];
    uh_pread (a.diff_path, block, SC_SB_SIZE, (uint64_t) c * SC_SB_SIZE);
    cr_assert_eq (((struct sc_sb_disk *) block)->crc, uh_sb_crc (block),
                  "copy %c still damaged", "AB"[c]);
  }
  uh_area_free (&a);
}

Test (replay, damaged_older_superblock_is_ignored)
{
  struct uh_area a;
  make_area (&a);
  struct sc_sb_disk sb;
  int newest = uh_sb_newest (a.diff_path, &sb);
  uh_flip_byte (a.diff_path, (uint64_t) (1 - newest) * SC_SB_SIZE);
  assert_intact (&a, SC_DIFF_RDONLY);
  assert_intact (&a, 0);
  uh_area_free (&a);
}

Test (replay, superblock_a_zeroed_opens_from_b)
{
  struct uh_area a;
  make_area (&a);
  uint8_t zero[SC_SB_SIZE] = { 0 };
  uh_pwrite (a.diff_path, zero, SC_SB_SIZE, 0);
  assert_intact (&a, 0);
  uh_area_free (&a);
}

Test (replay, superblock_b_zeroed_opens_from_a)
{
  struct uh_area a;
  make_area (&a);
  uint8_t zero[SC_SB_SIZE] = { 0 };
  uh_pwrite (a.diff_path, zero, SC_SB_SIZE, SC_SB_SIZE);
  assert_intact (&a, 0);
  uh_area_free (&a);
}

static void set_newer_version (struct sc_sb_disk *sb)
{
  sb->version = SC_FORMAT_VERSION + 1;
}

Test (replay, newer_format_version_is_eprotonosupport)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, set_newer_version);
  assert_refused (&a, EPROTONOSUPPORT, "version");
  uh_area_free (&a);
}

/* A newer shadowcopy wrote the current superblock: the other, older copy
 * describes a journal that newer version may since have reused, so
 * falling back to it would be a guess. */
Test (replay, newer_format_in_the_newest_superblock_is_not_bypassed)
{
  struct uh_area a;
  make_area (&a);
  struct sc_sb_disk sb;
  int newest = uh_sb_newest (a.diff_path, &sb);
  edit_sb (a.diff_path, newest, set_newer_version);
  assert_refused (&a, EPROTONOSUPPORT, "version");
  uh_area_free (&a);
}

static void set_version_0 (struct sc_sb_disk *sb) { sb->version = 0; }

Test (replay, unknown_older_format_version_is_refused)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, set_version_0);
  assert_refused (&a, EINVAL, "version");
  uh_area_free (&a);
}

static void shift_11 (struct sc_sb_disk *sb) { sb->chunk_shift = 11; }
static void shift_21 (struct sc_sb_disk *sb) { sb->chunk_shift = 21; }
static void shift_huge (struct sc_sb_disk *sb) { sb->chunk_shift = 64; }

Test (replay, chunk_shift_below_range_with_valid_crc)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, shift_11);
  assert_refused (&a, EINVAL, "chunk size");
  uh_area_free (&a);
}

Test (replay, chunk_shift_above_range_with_valid_crc)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, shift_21);
  assert_refused (&a, EINVAL, "chunk size");
  edit_sb (a.diff_path, -1, shift_huge);
  assert_refused (&a, EINVAL, "chunk size");
  uh_area_free (&a);
}

static void head_0 (struct sc_sb_disk *sb) { sb->journal_head = 0; }
static void head_1 (struct sc_sb_disk *sb) { sb->journal_head = 1; }
static void head_far (struct sc_sb_disk *sb) { sb->journal_head = 1 << 20; }
static void head_max (struct sc_sb_disk *sb)
{
  sb->journal_head = UINT64_MAX;
}

Test (replay, journal_head_inside_the_superblocks)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, head_0);
  assert_refused (&a, EINVAL, "journal head");
  edit_sb (a.diff_path, -1, head_1);
  assert_refused (&a, EINVAL, "journal head");
  uh_area_free (&a);
}

Test (replay, journal_head_beyond_the_file)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, head_far);
  assert_refused (&a, 0, "journal");
  edit_sb (a.diff_path, -1, head_max);
  assert_refused (&a, 0, "journal");
  uh_area_free (&a);
}

Test (replay, journal_head_at_a_data_slot)
{
  struct uh_area a;
  make_area (&a);
  /* Point the journal at the copy of chunk 0: data, not records. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, 1, 0, &off), SC_WHERE_DIFF);
  uh_area_close (&a);
  for (int c = 0; c < 2; c++) {
    struct sc_sb_disk sb;
    uh_sb_read (a.diff_path, c, &sb);
    sb.journal_head = off / CS;
    uh_sb_write (a.diff_path, c, &sb);
  }
  assert_refused (&a, EINVAL, "journal");
  uh_area_free (&a);
}

static void flags_unknown (struct sc_sb_disk *sb) { sb->flags |= 0x100; }

Test (replay, unknown_superblock_flags)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, flags_unknown);
  assert_refused (&a, EINVAL, "flags");
  uh_area_free (&a);
}

static void origin_type_4 (struct sc_sb_disk *sb) { sb->origin_type = 4; }

Test (replay, unknown_origin_type)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, origin_type_4);
  assert_refused (&a, EINVAL, "origin type");
  uh_area_free (&a);
}

static void other_uuid (struct sc_sb_disk *sb) { sb->uuid[7] ^= 1; }

Test (replay, superblock_copies_of_different_volumes)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, 0, other_uuid);
  assert_refused (&a, EINVAL, "disagree");
  uh_area_free (&a);
}

Test (replay, superblock_copies_with_the_same_generation)
{
  struct uh_area a;
  make_area (&a);
  struct sc_sb_disk sa, sb;
  uh_sb_read (a.diff_path, 0, &sa);
  uh_sb_read (a.diff_path, 1, &sb);
  sb.generation = sa.generation;
  uh_sb_write (a.diff_path, 1, &sb);
  assert_refused (&a, EINVAL, "disagree");
  uh_area_free (&a);
}

static void
mark_failed (struct sc_sb_disk *sb)
{
  sb->flags |= SC_SB_FAILED;
}

Test (replay, superblock_marked_failed_opens_with_every_snapshot_invalid)
{
  struct uh_area a;
  make_area (&a);
  edit_sb (a.diff_path, -1, mark_failed);
  for (int ro = 1; ro >= 0; ro--) {
    uh_area_open (&a, ro ? SC_DIFF_RDONLY : 0);
    struct sc_snapshot_info one = uh_find (a.d, "one");
    struct sc_snapshot_info two = uh_find (a.d, "two");
    cr_assert_eq (one.invalid_reason, SC_INVALID_METADATA);
    cr_assert_eq (two.invalid_reason, SC_INVALID_METADATA);
    cr_assert_eq (sc_diff_snapshot_get (a.d, one.id, NULL), -EIO);
    uh_area_close (&a);
  }
  /* The read-write session recorded it: still invalid, flag or not. */
  uh_area_open (&a, 0);
  cr_assert_eq (uh_find (a.d, "one").invalid_reason, SC_INVALID_METADATA);
  uh_area_free (&a);
}

/* ---- not a diff area at all ------------------------------------------- */

Test (replay, all_zero_file)
{
  struct uh_area a;
  make_area (&a);
  uh_make_zero_file (a.diff_path, 1 << 20);
  assert_refused (&a, EINVAL, "superblock");
  uh_area_free (&a);
}

Test (replay, empty_file)
{
  struct uh_area a;
  make_area (&a);
  uh_truncate (a.diff_path, 0);
  assert_refused (&a, EINVAL, "superblock");
  uh_area_free (&a);
}

Test (replay, garbage_file)
{
  struct uh_area a;
  make_area (&a);
  uh_make_file (a.diff_path, 1 << 20, 0xbadbad);
  assert_refused (&a, EINVAL, "magic");
  uh_area_free (&a);
}

Test (replay, text_file)
{
  struct uh_area a;
  make_area (&a);
  const char *text = "#!/bin/sh\necho this is not a diff area\n";
  uh_write_file (a.diff_path, text, strlen (text));
  assert_refused (&a, EINVAL, "magic");
  uh_area_free (&a);
}

Test (replay, file_cut_inside_the_superblocks)
{
  struct uh_area a;
  make_area (&a);
  uh_truncate (a.diff_path, 100);
  assert_refused (&a, EINVAL, "superblock");
  uh_area_free (&a);
}

Test (replay, file_cut_after_the_superblocks)
{
  struct uh_area a;
  make_area (&a);
  uh_truncate (a.diff_path, SC_SB_AREA);
  assert_refused (&a, EINVAL, "journal");
  uh_area_free (&a);
}

Test (replay, file_cut_before_a_data_slot)
{
  struct uh_area a;
  make_area (&a);
  uh_area_open (&a, SC_DIFF_RDONLY);
  uint64_t off0, off1;
  cr_assert_eq (sc_diff_resolve (a.d, 1, 0, &off0), SC_WHERE_DIFF);
  cr_assert_eq (sc_diff_resolve (a.d, 2, 1, &off1), SC_WHERE_DIFF);
  uh_area_close (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uint64_t last = off0 > off1 ? off0 : off1;
  cr_assert_gt (last, je.slot * CS, "the test needs data after the journal");
  uh_truncate (a.diff_path, last);
  assert_refused (&a, EINVAL, "outside the file");
  uh_area_free (&a);
}

/* ---- another origin --------------------------------------------------- */

Test (replay, diff_area_of_a_disk_of_another_size)
{
  struct uh_area a;
  make_area (&a);
  char *other = uh_path ("other-origin");
  uh_make_file (other, NCHUNKS * CS * 2, 5);
  int fd = open (other, O_RDONLY);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (fd, other, &id), 0);
  assert_refused_with (a.diff_path, &id, EINVAL, "bytes");
  close (fd);
  free (other);
  uh_area_free (&a);
}

Test (replay, diff_area_of_another_disk_of_the_same_size)
{
  struct uh_area a;
  make_area (&a);
  char *other = uh_path ("other-origin");
  uh_make_file (other, NCHUNKS * CS, 5);     /* same size, same content */
  int fd = open (other, O_RDONLY);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (fd, other, &id), 0);
  cr_assert_neq (id.ino, a.id.ino);
  assert_refused_with (a.diff_path, &id, EINVAL, "another disk");
  close (fd);
  free (other);
  uh_area_free (&a);
}

Test (replay, diff_area_of_a_disk_that_changed_size)
{
  struct uh_area a;
  make_area (&a);
  uh_truncate (a.origin_path, NCHUNKS * CS + 4096);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (a.origin_fd, a.origin_path, &id), 0);
  assert_refused_with (a.diff_path, &id, EINVAL, "bytes");
  uh_area_free (&a);
}

/* ---- journal records -------------------------------------------------- */

static void
append_copy (struct uh_area *a, uint64_t chunk, uint32_t epoch,
             uint32_t flags, uint64_t slot)
{
  struct sc_rec_copy r = {
    .h.type = SC_REC_COPY, .chunk = chunk, .epoch = epoch, .flags = flags,
    .slot = slot,
  };
  uh_journal_append (a->diff_path, &r, sizeof r);
}

static void
append_delete (struct uh_area *a, uint64_t id)
{
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = id };
  uh_journal_append (a->diff_path, &r, sizeof r);
}

static uint64_t
copy_slot_of_chunk_1 (struct uh_area *a)
{
  uh_area_open (a, SC_DIFF_RDONLY);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a->d, 2, 1, &off), SC_WHERE_DIFF);
  uh_area_close (a);
  return off / CS;
}

/* The crafting itself is right: a well-formed record appended at the end
 * is replayed. */
Test (replay, a_crafted_record_at_the_tail_is_replayed)
{
  struct uh_area a;
  make_area (&a);
  append_delete (&a, 1);
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "one", &s), -ENOENT);
  cr_assert_eq (uh_stats (a.d).snapshots, 1);
  uh_area_free (&a);
}

Test (replay, record_of_unknown_type_with_valid_crc)
{
  struct uh_area a;
  make_area (&a);
  uint8_t rec[24] = { 0 };
  struct sc_rec_hdr *h = (void *) rec;
  h->type = 99;
  uh_journal_append (a.diff_path, rec, sizeof rec);
  assert_refused (&a, EINVAL, "unknown type");
  uh_area_free (&a);
}

Test (replay, record_with_the_wrong_length_for_its_type)
{
  struct uh_area a;
  make_area (&a);
  uint8_t rec[56] = { 0 };
  struct sc_rec_copy *c = (void *) rec;
  c->h.type = SC_REC_COPY;      /* a copy record is 48 bytes, not 56 */
  c->chunk = 3;
  c->epoch = 3;
  c->slot = 40;
  uh_journal_append (a.diff_path, rec, sizeof rec);
  assert_refused (&a, EINVAL, "length");
  uh_area_free (&a);
}

Test (replay, copy_record_pointing_outside_the_file)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, 3, 3, 0, 1000000);
  assert_refused (&a, EINVAL, "outside the file");
  uh_area_free (&a);
}

Test (replay, copy_record_pointing_into_the_superblocks)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, 3, 3, 0, 1);
  assert_refused (&a, EINVAL, "copy record");
  uh_area_free (&a);
}

Test (replay, copy_record_for_a_chunk_beyond_the_origin)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, NCHUNKS, 3, SC_COPY_F_ZERO, 0);
  assert_refused (&a, EINVAL, "copy record");
  uh_area_free (&a);
}

Test (replay, copy_record_from_a_future_epoch)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, 3, 4, SC_COPY_F_ZERO, 0);
  assert_refused (&a, EINVAL, "copy record");
  uh_area_free (&a);
}

Test (replay, copy_record_with_unknown_flags)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, 3, 3, 0x10 | SC_COPY_F_ZERO, 0);
  assert_refused (&a, EINVAL, "copy record");
  uh_area_free (&a);
}

Test (replay, zero_copy_record_with_a_slot)
{
  struct uh_area a;
  make_area (&a);
  append_copy (&a, 3, 3, SC_COPY_F_ZERO, 40);
  assert_refused (&a, EINVAL, "copy record");
  uh_area_free (&a);
}

Test (replay, duplicate_copy_record)
{
  struct uh_area a;
  make_area (&a);
  uint64_t slot = copy_slot_of_chunk_1 (&a);
  append_copy (&a, 1, 3, 0, slot);     /* the very same record again */
  assert_refused (&a, EINVAL, "twice");
  uh_area_free (&a);
}

Test (replay, two_copy_records_sharing_a_slot)
{
  struct uh_area a;
  make_area (&a);
  uint64_t slot = copy_slot_of_chunk_1 (&a);
  append_copy (&a, 3, 3, 0, slot);
  assert_refused (&a, EINVAL, "used twice");
  uh_area_free (&a);
}

Test (replay, copy_record_pointing_at_a_journal_slot)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  append_copy (&a, 3, 3, 0, je.head_slot);
  assert_refused (&a, EINVAL, "used twice");
  uh_area_free (&a);
}

Test (replay, snapshot_delete_of_an_unknown_id)
{
  struct uh_area a;
  make_area (&a);
  append_delete (&a, 42);
  assert_refused (&a, EINVAL, "unknown snapshot");
  uh_area_free (&a);
}

Test (replay, snapshot_deleted_twice)
{
  struct uh_area a;
  make_area (&a);
  append_delete (&a, 2);
  append_delete (&a, 2);
  assert_refused (&a, EINVAL, "unknown snapshot");
  uh_area_free (&a);
}

Test (replay, invalidation_of_an_unknown_snapshot)
{
  struct uh_area a;
  make_area (&a);
  struct sc_rec_snap_invalid r = {
    .h.type = SC_REC_SNAP_INVALID, .id = 42,
    .reason = SC_INVALID_COPY_WRITE, .err = EIO, .chunk = 1,
  };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_refused (&a, EINVAL, "unknown snapshot");
  uh_area_free (&a);
}

/* A SNAP_CREATE record of `flags` and the name's first n bytes. */
static void
append_create_with (struct uh_area *a, uint64_t id, uint32_t epoch,
                    uint32_t flags, const char *name, size_t n)
{
  uint8_t buf[SC_REC_MAX] = { 0 };
  struct sc_rec_snap_create *r = (void *) buf;
  r->h.type = SC_REC_SNAP_CREATE;
  r->id = id;
  r->epoch = epoch;
  r->flags = flags;
  r->ctime_ns = 1;
  r->volume_size = NCHUNKS * CS;
  r->name_len = (uint16_t) n;
  memcpy (r->name, name, n);
  uh_journal_append (a->diff_path, buf, sc_rec_padded (sizeof *r + n));
}

static void
append_create (struct uh_area *a, uint64_t id, uint32_t epoch,
               const char *name)
{
  append_create_with (a, id, epoch, 0, name, strlen (name));
}

Test (replay, snapshot_record_with_an_invalid_name)
{
  struct uh_area a;
  make_area (&a);
  append_create (&a, 3, 3, "a/b");
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

Test (replay, snapshot_record_with_a_duplicate_name)
{
  struct uh_area a;
  make_area (&a);
  append_create (&a, 3, 3, "one");
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

Test (replay, snapshot_record_going_back_in_time)
{
  struct uh_area a;
  make_area (&a);
  append_create (&a, 3, 1, "three");   /* epoch 1 is gone */
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

Test (replay, snapshot_record_reusing_an_id)
{
  struct uh_area a;
  make_area (&a);
  append_create (&a, 2, 3, "three");
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

Test (replay, state_record_going_backwards)
{
  struct uh_area a;
  make_area (&a);
  struct sc_rec_state r = {
    .h.type = SC_REC_STATE, .epoch = 2, .next_snapshot_id = 3,
  };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_refused (&a, EINVAL, "backwards");
  uh_area_free (&a);
}

Test (replay, journal_next_pointer_looping_back)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_rec_next r = { .h.type = SC_REC_NEXT, .slot = je.head_slot };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_refused (&a, EINVAL, "loops");
  uh_area_free (&a);
}

Test (replay, journal_next_pointer_to_itself_after_a_hop)
{
  struct uh_area a;
  make_area (&a);
  /* head -> (fresh slot past the data) -> head */
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uint64_t fresh = uh_file_size (a.diff_path) / CS + 1;
  uh_truncate (a.diff_path, (fresh + 1) * CS);
  struct sc_rec_next r = { .h.type = SC_REC_NEXT, .slot = fresh };
  uh_journal_append (a.diff_path, &r, sizeof r);
  struct uh_journal_end je2;
  uh_journal_end (a.diff_path, &je2);
  cr_assert_eq (je2.slot, fresh, "the chain now continues in the new slot");
  struct sc_rec_next back = { .h.type = SC_REC_NEXT, .slot = je.head_slot };
  uh_journal_append (a.diff_path, &back, sizeof back);
  assert_refused (&a, EINVAL, "loops");
  uh_area_free (&a);
}

Test (replay, journal_next_pointer_outside_the_file)
{
  struct uh_area a;
  make_area (&a);
  struct sc_rec_next r = { .h.type = SC_REC_NEXT, .slot = 1 << 30 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_refused (&a, EINVAL, "outside");
  uh_area_free (&a);
}

Test (replay, journal_next_pointer_to_slot_zero)
{
  struct uh_area a;
  make_area (&a);
  struct sc_rec_next r = { .h.type = SC_REC_NEXT, .slot = 0 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  assert_refused (&a, EINVAL, "outside");
  uh_area_free (&a);
}

Test (replay, journal_damaged_at_its_first_record)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uh_flip_byte (a.diff_path, je.head_slot * CS + 20);
  assert_refused (&a, EINVAL, "journal");
  uh_area_free (&a);
}

/* ---- torn tails are not errors ---------------------------------------- */

/* After a clean close the journal ends where the superblock says: what
 * follows is not read. */
Test (replay, garbage_after_a_cleanly_closed_journal_is_not_read)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  size_t room = CS - je.off % CS;
  uint8_t *junk = malloc (room);
  uh_pattern (junk, room, 0x7ea5, 0);
  uh_pwrite (a.diff_path, junk, room, je.off);
  free (junk);
  assert_intact (&a, SC_DIFF_RDONLY);
  assert_intact (&a, 0);
  uh_area_free (&a);
}

/* A torn write leaves whole sectors unwritten (zeros: slots are zeroed
 * when taken); a record that is all there but fails its CRC was damaged
 * after it was written, maybe after it was acknowledged.  (More cases in
 * unit-journal-damage.c.) */
Test (replay, last_record_with_a_bad_crc_is_refused_after_an_unclean_stop)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  append_delete (&a, 1);        /* well-formed ... */
  uh_flip_byte (a.diff_path, je.off + 20);      /* ... then damaged */
  uh_sb_mark_unclean (a.diff_path);             /* and a crash */
  assert_refused (&a, EINVAL, "not a torn write");
  uh_area_free (&a);
}

Test (replay, last_record_with_an_unwritten_sector_is_a_torn_tail)
{
  struct uh_area a;
  make_area (&a);
  uh_journal_pad_to_sector (a.diff_path, 8);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  append_delete (&a, 1);        /* 8 bytes in one sector, 16 in the next */
  uint8_t zeros[16] = { 0 };
  uh_pwrite (a.diff_path, zeros, sizeof zeros, je.off + 8);
  uh_sb_mark_unclean (a.diff_path);
  assert_intact (&a, SC_DIFF_RDONLY);
  assert_intact (&a, 0);
  uh_area_free (&a);
}

Test (replay, record_with_the_wrong_sequence_number_ends_replay)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_rec_seal (&r, sizeof r, je.next_seq + 1, je.seed);
  uh_pwrite (a.diff_path, &r, sizeof r, je.off);
  assert_intact (&a, SC_DIFF_RDONLY);
  uh_area_free (&a);
}

Test (replay, record_of_an_older_journal_is_ignored)
{
  struct uh_area a;
  make_area (&a);
  /* A record sealed with another journal's nonce (stale data in a reused
   * slot) never passes, even with the right sequence number. */
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_sb_disk sb;
  uh_sb_newest (a.diff_path, &sb);
  uint32_t old_seed = sc_journal_seed (sb.uuid, sb.journal_nonce ^ 1);
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_rec_seal (&r, sizeof r, je.next_seq, old_seed);
  uh_pwrite (a.diff_path, &r, sizeof r, je.off);
  assert_intact (&a, SC_DIFF_RDONLY);
  uh_area_free (&a);
}

Test (replay, records_before_a_torn_tail_are_kept)
{
  struct uh_area a;
  make_area (&a);
  append_delete (&a, 2);        /* replayed */
  uh_journal_pad_to_sector (a.diff_path, 8);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  append_delete (&a, 1);        /* torn by a crash: its second sector */
  uint8_t zeros[16] = { 0 };
  uh_pwrite (a.diff_path, zeros, sizeof zeros, je.off + 8);
  uh_sb_mark_unclean (a.diff_path);
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "two", &s), -ENOENT);
  cr_assert_eq (uh_find (a.d, "one").id, 1);
  uh_area_close (&a);
  /* A read-write open compacts it: the next open sees the same. */
  uh_area_open (&a, 0);
  cr_assert_eq (uh_stats (a.d).snapshots, 1);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_stats (a.d).snapshots, 1);
  cr_assert_eq (uh_find (a.d, "one").id, 1);
  uh_area_free (&a);
}

Test (replay, snapshot_record_with_a_nul_in_its_name)
{
  struct uh_area a;
  make_area (&a);
  append_create_with (&a, 3, 3, 0, "x\0y", 3);
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

/* A snapshot whose origin flush failed at its creation has that in its
 * own record: it replays invalid, with the reason. */
Test (replay, snapshot_record_origin_unflushed_replays_invalid)
{
  struct uh_area a;
  make_area (&a);
  append_create_with (&a, 3, 3, SC_SNAP_F_ORIGIN_UNFLUSHED, "three", 5);
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info three = uh_find (a.d, "three");
  cr_assert_eq (three.id, 3);
  cr_assert_eq (three.invalid_reason, SC_INVALID_ORIGIN_FLUSH,
                "reason %u", three.invalid_reason);
  cr_assert_eq (uh_find (a.d, "two").invalid_reason, SC_VALID);
  uh_area_free (&a);
}

Test (replay, snapshot_record_with_unknown_flags)
{
  struct uh_area a;
  make_area (&a);
  /* 0x1 AUTO_RELEASE, 0x2 CHECKPOINT, 0x4 CLONE, 0x8 ORIGIN_UNFLUSHED */
  append_create_with (&a, 3, 3, 0x10, "three", 5);
  assert_refused (&a, EINVAL, "snapshot record");
  uh_area_free (&a);
}

Test (replay, journal_shorter_than_at_its_clean_close)
{
  struct uh_area a;
  make_area (&a);
  /* Damage the last record written before the clean close: the torn-tail
   * rule would drop it, but a clean close recorded where the journal
   * ended, so this is damage. */
  append_delete (&a, 1);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uh_flip_byte (a.diff_path, je.off - 8);
  assert_refused_with (a.diff_path, &a.id, EINVAL, "closed cleanly");
  uh_area_free (&a);
}

Test (replay, damaged_record_covered_by_a_later_commit_marker)
{
  struct uh_area a;
  make_area (&a);
  uh_sb_mark_unclean (a.diff_path);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  /* A record, then a commit marker saying it had been durable: damage
   * to the record is corruption, not a torn tail. */
  struct sc_rec_snap_delete del = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_rec_seal (&del, sizeof del, je.next_seq, je.seed);
  uh_pwrite (a.diff_path, &del, sizeof del, je.off);
  struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                .durable_seq = je.next_seq };
  uh_rec_seal (&mark, sizeof mark, je.next_seq + 1, je.seed);
  uh_pwrite (a.diff_path, &mark, sizeof mark, je.off + sizeof del);
  uh_flip_byte (a.diff_path, je.off + 20);
  assert_refused_with (a.diff_path, &a.id, EINVAL, "had been durable");
  uh_area_free (&a);
}

/* No marker covers it, but it was written whole: damage, not a tear. */
Test (replay, damaged_record_after_the_last_commit_marker_is_refused)
{
  struct uh_area a;
  make_area (&a);
  uh_sb_mark_unclean (a.diff_path);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  /* The marker only covers records before this one. */
  struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT,
                                .durable_seq = je.next_seq - 1 };
  struct sc_rec_snap_delete del = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_rec_seal (&del, sizeof del, je.next_seq, je.seed);
  uh_pwrite (a.diff_path, &del, sizeof del, je.off);
  uh_rec_seal (&mark, sizeof mark, je.next_seq + 1, je.seed);
  uh_pwrite (a.diff_path, &mark, sizeof mark, je.off + sizeof del);
  uh_flip_byte (a.diff_path, je.off + 20);
  assert_refused_with (a.diff_path, &a.id, EINVAL, "written whole");
  uh_area_free (&a);
}
