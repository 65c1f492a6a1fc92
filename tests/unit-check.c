/* Unit tests: the offline check (cow/check.c).  A clean diff area checks
 * clean with the right figures; each kind of damage is reported with where
 * it is; a torn tail is a warning; what cannot be checked is an error; and
 * the check never changes a byte of the file. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/check.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/journal.h"
#include "tests/unit-helpers.h"

TestSuite (check, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u
#define NCHUNKS 64u

/* As in unit-corrupt.c (closed):
 *   snapshot "one" (epoch 1), then chunk 0 copied (tag 10);
 *   snapshot "two" (epoch 2), then chunk 1 copied (tag 11) and chunk 2
 *   recorded as zero.  The live epoch is 3. */
static void
make_area (struct uh_area *a)
{
  uh_area_create (a, NCHUNKS * CS, CS, 5);
  uh_snap (a->d, "one");
  uh_copy_chunk (a->d, 0, 10);
  uh_snap (a->d, "two");
  uh_copy_chunk (a->d, 1, 11);
  uh_copy_zero (a->d, 2);
  uh_area_close (a);
}

/* Check `path`, asserting the check could be done and wrote nothing. */
static void
run_check (const char *path, struct sc_check_report *rep)
{
  size_t n0, n1;
  uint8_t *before = uh_read_file (path, &n0);
  char err[1024] = "";
  int r = sc_diff_check (path, rep, err, sizeof err);
  cr_assert_eq (r, 0, "sc_diff_check: %d %s", r, err);
  uint8_t *after = uh_read_file (path, &n1);
  cr_assert_eq (n1, n0, "the check changed the file size");
  cr_assert_arr_eq (after, before, n0, "the check wrote to the file");
  free (before);
  free (after);
}

/* The first finding's text, for messages. */
static const char *
first_what (const struct sc_check_report *rep)
{
  return rep->nfindings ? rep->findings[0].what : "";
}

/* The one finding of `severity` whose text contains `word`. */
static const struct sc_check_finding *
find (const struct sc_check_report *rep, enum sc_check_severity severity,
      const char *word)
{
  for (size_t i = 0; i < rep->nfindings; i++)
    if (rep->findings[i].severity == severity &&
        strstr (rep->findings[i].what, word))
      return &rep->findings[i];
  for (size_t i = 0; i < rep->nfindings; i++)
    cr_log_error ("finding %zu: %s", i, rep->findings[i].what);
  cr_assert_fail ("no %s finding mentions \"%s\"",
                  severity == SC_CHECK_DAMAGE ? "damage" : "warning", word);
  return NULL;
}

/* The report's figures agree with what a read-only open says. */
static void
assert_figures (struct uh_area *a, const struct sc_check_report *rep)
{
  cr_assert (rep->loaded);
  uh_area_open (a, SC_DIFF_RDONLY);
  struct sc_diff_stats st = uh_stats (a->d);
  struct sc_snapshot_info *s;
  size_t n, valid = 0;
  cr_assert_eq (sc_diff_snapshot_list (a->d, &s, &n), 0);
  for (size_t i = 0; i < n; i++)
    valid += s[i].invalid_reason == SC_VALID;
  free (s);
  uh_area_close (a);
  cr_assert_eq (rep->chunk_size, st.chunk_size);
  cr_assert_eq (rep->volume_size, st.volume_size);
  cr_assert_eq (rep->epoch, st.epoch);
  cr_assert_eq (rep->snapshots, n);
  cr_assert_eq (rep->snapshots_valid, valid);
  cr_assert_eq (rep->snapshots_invalid, n - valid);
  cr_assert_eq (rep->copies, st.copies);
  cr_assert_eq (rep->data_slots, st.data_slots);
  cr_assert_eq (rep->zero_copies, st.copies - st.data_slots);
  cr_assert_eq (rep->journal_records, st.journal_records);
  cr_assert_eq (rep->journal_slots, st.journal_slots);
  cr_assert_eq (rep->used_bytes, st.used_bytes);
  cr_assert_eq (rep->free_slots, st.free_slots);
  cr_assert_eq (rep->free_bytes, st.free_slots * st.chunk_size);
  cr_assert_eq (rep->file_bytes, uh_file_size (a->diff_path));
  /* Every data slot of a kept copy was found and read back. */
  cr_assert_eq (rep->data_slots_read, st.data_slots,
                "read %lu data slots of %lu",
                (unsigned long) rep->data_slots_read,
                (unsigned long) st.data_slots);
}

/* ---- clean ---- */

Test (check, clean_area_is_clean_with_its_figures)
{
  struct uh_area a;
  make_area (&a);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0, "%s", first_what (&rep));
  cr_assert_eq (rep.warnings, 0);
  cr_assert_eq (rep.nfindings, 0);
  assert_figures (&a, &rep);
  cr_assert_eq (rep.snapshots, 2);
  cr_assert_eq (rep.snapshots_valid, 2);
  cr_assert_eq (rep.copies, 3);
  cr_assert_eq (rep.zero_copies, 1);
  cr_assert_eq (rep.data_slots, 2);
  cr_assert_eq (rep.data_slots_read, 2);
  cr_assert (rep.sb_flags & SC_SB_CLEAN);
  cr_assert (rep.sb[0].valid && rep.sb[1].valid);
  uint64_t ga = rep.sb[0].generation, gb = rep.sb[1].generation;
  cr_assert (ga == gb + 1 || gb == ga + 1, "generations %lu and %lu",
             (unsigned long) ga, (unsigned long) gb);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  cr_assert_eq (rep.journal_head_offset, je.head_slot * CS);
  cr_assert_eq (rep.journal_end_offset, je.off);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, a_file_size_that_is_not_a_multiple_of_the_chunk_size_is_fine)
{
  struct uh_area a;
  make_area (&a);
  uh_truncate (a.diff_path, uh_file_size (a.diff_path) + 100);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  cr_assert_eq (rep.warnings, 0);
  assert_figures (&a, &rep);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, invalid_snapshots_and_a_failed_session_are_not_damage)
{
  struct uh_area a;
  make_area (&a);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 5, SC_INVALID_COPY_READ, EIO),
                0);
  uh_area_close (&a);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  cr_assert_eq (rep.snapshots_invalid, 2);
  assert_figures (&a, &rep);
  sc_check_report_free (&rep);

  /* A superblock saying the last session's metadata write failed. */
  struct sc_sb_disk sb;
  int copy = uh_sb_newest (a.diff_path, &sb);
  sb.flags = (sb.flags | SC_SB_FAILED) & ~SC_SB_CLEAN;
  uh_sb_write (a.diff_path, copy, &sb);
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  cr_assert (rep.sb_flags & SC_SB_FAILED);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* Copies made over many epochs, snapshots deleted and invalidated: the
 * check finds exactly the data slots the allocator holds for kept
 * copies, and reads each. */
Test (check, data_slots_of_kept_copies_are_all_found)
{
  for (uint64_t seed = 1; seed <= 12; seed++) {
    struct uh_area a;
    uint64_t rnd = seed;
    uh_area_create (&a, NCHUNKS * CS, CS, seed);
    char name[32];
    unsigned made = 0;
    for (unsigned step = 0; step < 60; step++) {
      uint64_t op = uh_rand_below (&rnd, 10);
      if (op < 2 || made == 0) {
        snprintf (name, sizeof name, "s%u", made++);
        uh_snap (a.d, name);
      }
      else if (op == 2) {
        snprintf (name, sizeof name, "s%u",
                  (unsigned) uh_rand_below (&rnd, made));
        int r = sc_diff_snapshot_delete (a.d, name);
        cr_assert (r == 0 || r == -ENOENT);
      }
      else if (op == 3)
        sc_diff_invalidate_chunk (a.d, uh_rand_below (&rnd, NCHUNKS),
                                  SC_INVALID_COPY_WRITE, EIO);
      else {
        uint64_t chunk = uh_rand_below (&rnd, NCHUNKS);
        if (!sc_diff_needs_copy (a.d, chunk))
          continue;
        if (op == 4)
          uh_copy_zero (a.d, chunk);
        else
          uh_copy_chunk (a.d, chunk, 100 + step);
      }
    }
    uh_area_close (&a);
    struct sc_check_report rep;
    run_check (a.diff_path, &rep);
    cr_assert_eq (rep.damage, 0, "seed %lu: %s", (unsigned long) seed,
                  first_what (&rep));
    cr_assert_eq (rep.warnings, 0);
    assert_figures (&a, &rep);
    sc_check_report_free (&rep);
    uh_area_free (&a);
    uh_teardown ();
    uh_setup ();
  }
}

/* ---- superblocks ---- */

static void
one_superblock_damaged (bool newest, bool zero)
{
  struct uh_area a;
  make_area (&a);
  struct sc_sb_disk sb;
  int bad = uh_sb_newest (a.diff_path, &sb);
  if (!newest)
    bad = 1 - bad;
  if (zero) {
    uint8_t block[SC_SB_SIZE] = { 0 };
    uh_pwrite (a.diff_path, block, SC_SB_SIZE, (uint64_t) bad * SC_SB_SIZE);
  }
  else
    uh_flip_byte (a.diff_path, (uint64_t) bad * SC_SB_SIZE + 2000);

  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert (rep.loaded, "the other copy still loads");
  cr_assert_eq (rep.damage, 1);
  cr_assert_eq (rep.warnings, 0);
  char where[64];
  snprintf (where, sizeof where, "superblock copy %c at offset %d",
            "AB"[bad], bad * SC_SB_SIZE);
  const struct sc_check_finding *f = find (&rep, SC_CHECK_DAMAGE, where);
  cr_assert_eq (f->offset, (uint64_t) bad * SC_SB_SIZE);
  cr_assert (strstr (f->what, zero ? "all zeros" : "checksum"), "%s",
             f->what);
  cr_assert (!rep.sb[bad].valid);
  cr_assert (rep.sb[1 - bad].valid);
  cr_assert_eq (rep.snapshots, 2);
  cr_assert_eq (rep.data_slots_read, 2);
  sc_check_report_free (&rep);

  /* A read-write open rewrites it: clean again. */
  uh_area_open (&a, 0);
  uh_area_close (&a);
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, damaged_older_superblock_copy)
{
  one_superblock_damaged (false, false);
}

Test (check, damaged_newest_superblock_copy)
{
  one_superblock_damaged (true, false);
}

Test (check, zeroed_superblock_copy)
{
  one_superblock_damaged (false, true);
}

Test (check, both_superblocks_damaged)
{
  struct uh_area a;
  make_area (&a);
  uh_flip_byte (a.diff_path, 100);
  uh_flip_byte (a.diff_path, SC_SB_SIZE + 100);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert (!rep.loaded);
  cr_assert_eq (rep.damage, 1);
  const struct sc_check_finding *f =
    find (&rep, SC_CHECK_DAMAGE, "both superblocks are damaged");
  cr_assert (strstr (f->what, "offset 4096"), "%s", f->what);
  cr_assert (strstr (f->what, a.diff_path) == NULL,
             "the path is left out of the finding: %s", f->what);
  cr_assert (!rep.sb[0].valid && !rep.sb[1].valid);
  cr_assert_str_eq (rep.sb[0].why, "checksum mismatch");
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, newer_format_cannot_be_checked)
{
  struct uh_area a;
  make_area (&a);
  for (int c = 0; c < 2; c++) {
    struct sc_sb_disk sb;
    uh_sb_read (a.diff_path, c, &sb);
    sb.version = SC_FORMAT_VERSION + 1;
    uh_sb_write (a.diff_path, c, &sb);
  }
  struct sc_check_report rep;
  char err[1024] = "";
  cr_assert_eq (sc_diff_check (a.diff_path, &rep, err, sizeof err),
                -EPROTONOSUPPORT);
  cr_assert (strstr (err, "newer"), "%s", err);
  cr_assert_null (rep.findings);
  uh_area_free (&a);
}

/* ---- the journal ---- */

Test (check, damaged_record_in_the_middle_of_the_journal)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  /* The second record (the first is a state record, 32 bytes). */
  uint64_t head = je.head_slot * CS;
  struct sc_rec_hdr h;
  uh_pread (a.diff_path, &h, sizeof h, head);
  uint64_t rec2 = head + h.len;
  cr_assert_lt (rec2, je.off);
  uh_flip_byte (a.diff_path, rec2 + 8);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert (!rep.loaded);
  cr_assert_eq (rep.damage, 1);
  /* Named exactly: "offset N is damaged" or "offset N)". */
  char where[64];
  snprintf (where, sizeof where, "offset %lu", (unsigned long) rec2);
  const char *p = strstr (find (&rep, SC_CHECK_DAMAGE, where)->what, where);
  p += strlen (where);
  cr_assert (*p == ' ' || *p == ')', "%s", rep.findings[0].what);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* 100 bytes after the journal's end, starting with a non-zero byte: at
 * the end itself, or (`torn`) from the next sector on, as a torn write
 * whose first sector did not reach the disk leaves them. */
static uint64_t
junk_after_the_end (struct uh_area *a, bool torn, uint64_t *end)
{
  struct uh_journal_end je;
  uh_journal_end (a->diff_path, &je);
  uint64_t at = torn ? (je.off / 512 + 1) * 512 : je.off;
  cr_assert_leq (at % CS + 100, CS);
  uint8_t junk[100];
  uh_pattern (junk, sizeof junk, 0x7ea5, 0);
  junk[0] |= 1;
  uh_pwrite (a->diff_path, junk, sizeof junk, at);
  *end = je.off;
  return at;
}

Test (check, torn_tail_after_an_unclean_stop_is_a_warning)
{
  struct uh_area a;
  make_area (&a);
  uint64_t end, at = junk_after_the_end (&a, true, &end);
  uh_sb_mark_unclean (a.diff_path);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0, "%s", first_what (&rep));
  cr_assert_eq (rep.warnings, 1);
  const struct sc_check_finding *f =
    find (&rep, SC_CHECK_WARNING, "torn journal tail");
  cr_assert_eq (f->offset, at);
  char where[64];
  snprintf (where, sizeof where, "offsets %lu-%lu", (unsigned long) at,
            (unsigned long) at + 99);
  cr_assert (strstr (f->what, where), "%s", f->what);
  cr_assert_eq (rep.journal_end_offset, end);
  assert_figures (&a, &rep);
  sc_check_report_free (&rep);

  /* Recovery (a read-write open) starts a fresh journal: clean. */
  uh_area_open (&a, 0);
  uh_area_close (&a);
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage + rep.warnings, 0, "after recovery: %s",
                first_what (&rep));
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* Non-zero bytes right where the journal ends cannot be a torn write
 * (that leaves zeros where it did not write): damage, and the open
 * refuses it. */
Test (check, junk_at_the_end_after_an_unclean_stop_is_damage)
{
  struct uh_area a;
  make_area (&a);
  uint64_t end;
  junk_after_the_end (&a, false, &end);
  uh_sb_mark_unclean (a.diff_path);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 1);
  cr_assert (!rep.loaded);
  const struct sc_check_finding *f =
    find (&rep, SC_CHECK_DAMAGE, "not a torn write");
  char where[64];
  snprintf (where, sizeof where, "offset %lu)", (unsigned long) end);
  cr_assert (strstr (f->what, where), "%s", f->what);
  cr_assert (strstr (f->what, "shadowcopy salvage"), "%s", f->what);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, damaged_last_record_after_an_unclean_stop_is_damage)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  uh_flip_byte (a.diff_path, je.off + 20);
  uh_sb_mark_unclean (a.diff_path);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 1);
  char what[64];
  snprintf (what, sizeof what, "journal record %lu (journal slot %lu",
            (unsigned long) je.next_seq, (unsigned long) je.slot);
  cr_assert (strstr (find (&rep, SC_CHECK_DAMAGE, "written whole")->what,
                     what), "%s", rep.findings[0].what);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, torn_record_after_an_unclean_stop_is_a_warning)
{
  struct uh_area a;
  make_area (&a);
  uh_journal_pad_to_sector (a.diff_path, 8);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  struct sc_rec_snap_delete r = { .h.type = SC_REC_SNAP_DELETE, .id = 1 };
  uh_journal_append (a.diff_path, &r, sizeof r);
  uint8_t zeros[16] = { 0 };    /* its second sector was not written */
  uh_pwrite (a.diff_path, zeros, sizeof zeros, je.off + 8);
  uh_sb_mark_unclean (a.diff_path);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  cr_assert_eq (rep.warnings, 1);
  cr_assert_eq (find (&rep, SC_CHECK_WARNING, "torn")->offset, je.off);
  cr_assert_eq (rep.snapshots, 2, "the torn deletion is not replayed");
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, bytes_after_a_cleanly_closed_journal_are_damage)
{
  struct uh_area a;
  make_area (&a);
  uint64_t end;
  junk_after_the_end (&a, false, &end);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert (rep.loaded);
  cr_assert_eq (rep.damage, 1);
  cr_assert_eq (rep.warnings, 0);
  const struct sc_check_finding *f =
    find (&rep, SC_CHECK_DAMAGE, "closed cleanly");
  cr_assert_eq (f->offset, end);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* One stray byte after the end is no record (none is that short), and
 * the open does not read it: a warning, after a clean close as after an
 * unclean stop, and the diff area opens. */
static void
one_stray_byte (bool clean)
{
  struct uh_area a;
  make_area (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uint8_t one = 0x10;
  uh_pwrite (a.diff_path, &one, 1, je.off + 40);
  if (!clean)
    uh_sb_mark_unclean (a.diff_path);
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  cr_assert (rep.loaded);
  cr_assert_eq (rep.damage, 0, "%s", first_what (&rep));
  cr_assert_eq (rep.warnings, 1);
  cr_assert_eq (find (&rep, SC_CHECK_WARNING, "stray")->offset, je.off + 40);
  sc_check_report_free (&rep);
  uh_area_open (&a, 0);
  uh_area_close (&a);
  uh_area_free (&a);
}

Test (check, one_stray_byte_after_a_clean_close_is_a_warning)
{
  one_stray_byte (true);
}

Test (check, one_stray_byte_after_an_unclean_stop_is_a_warning)
{
  one_stray_byte (false);
}

/* ---- data slots ---- */

static uint64_t *bad_offsets;
static size_t nbad;

static int
fail_data_reads (const struct sc_io_req *req)
{
  if (req->op != SC_IO_READ)
    return 0;
  for (size_t i = 0; i < nbad; i++)
    if (req->off == bad_offsets[i])
      return -EIO;
  return 0;
}

Test (check, unreadable_data_slot)
{
  struct uh_area a;
  make_area (&a);
  uh_area_open (&a, SC_DIFF_RDONLY);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, 2, 1, &off), SC_WHERE_DIFF);
  uh_area_close (&a);

  bad_offsets = &off;
  nbad = 1;
  sc_io_fault_hook = fail_data_reads;
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  sc_io_fault_hook = NULL;
  cr_assert (rep.loaded);
  cr_assert_eq (rep.damage, 1);
  cr_assert_eq (rep.data_slots, 2);
  cr_assert_eq (rep.data_slots_read, 1);
  const struct sc_check_finding *f =
    find (&rep, SC_CHECK_DAMAGE, "cannot be read");
  cr_assert_eq (f->offset, off);
  char where[96];
  snprintf (where, sizeof where, "data slot %lu at offset %lu (a copy of "
            "chunk 1)", (unsigned long) (off / CS), (unsigned long) off);
  cr_assert (strstr (f->what, where), "%s", f->what);
  cr_assert (strstr (f->what, strerror (EIO)), "%s", f->what);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

Test (check, findings_are_capped_and_all_counted)
{
  enum { N = SC_CHECK_FINDINGS_MAX + 20 };
  struct uh_area a;
  uh_area_create (&a, N * CS, CS, 3);
  uh_snap (a.d, "s");
  static uint64_t offs[N];
  for (unsigned c = 0; c < N; c++)
    offs[c] = uh_copy_chunk (a.d, c, c + 1);
  uh_area_close (&a);

  bad_offsets = offs;
  nbad = N;
  sc_io_fault_hook = fail_data_reads;
  struct sc_check_report rep;
  run_check (a.diff_path, &rep);
  sc_io_fault_hook = NULL;
  cr_assert_eq (rep.damage, N);
  cr_assert_eq (rep.nfindings, SC_CHECK_FINDINGS_MAX);
  cr_assert_eq (rep.data_slots, N);
  cr_assert_eq (rep.data_slots_read, 0);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* ---- not a diff area, or not checkable ---- */

Test (check, garbage_file_is_damage)
{
  char *path = uh_path ("garbage");
  uh_make_file (path, 1 << 20, 0xbadbad);
  struct sc_check_report rep;
  run_check (path, &rep);
  cr_assert (!rep.loaded);
  cr_assert_eq (rep.damage, 1);
  find (&rep, SC_CHECK_DAMAGE, "magic");
  cr_assert (strstr (rep.sb[0].why, "magic"), "%s", rep.sb[0].why);
  cr_assert_eq (rep.file_bytes, 1 << 20);
  sc_check_report_free (&rep);
  free (path);
}

Test (check, empty_file_is_damage)
{
  char *path = uh_path ("empty");
  uh_write_file (path, "", 0);
  struct sc_check_report rep;
  run_check (path, &rep);
  cr_assert (!rep.loaded);
  cr_assert_eq (rep.damage, 1);
  find (&rep, SC_CHECK_DAMAGE, "superblock");
  cr_assert (strstr (rep.sb[0].why, "file ends"), "%s", rep.sb[0].why);
  sc_check_report_free (&rep);
  free (path);
}

Test (check, missing_file_and_directory_cannot_be_checked)
{
  struct sc_check_report rep;
  char err[1024] = "";
  char *path = uh_path ("nonexistent");
  cr_assert_eq (sc_diff_check (path, &rep, err, sizeof err), -ENOENT);
  cr_assert (strstr (err, path), "%s", err);
  cr_assert_eq (sc_diff_check (uh_dir, &rep, err, sizeof err), -EINVAL);
  cr_assert (strstr (err, "directory"), "%s", err);
  free (path);
}

Test (check, area_in_use_cannot_be_checked)
{
  struct uh_area a;
  make_area (&a);
  struct sc_check_report rep;
  char err[1024] = "";
  uh_area_open (&a, 0);         /* as a server holds it: exclusive */
  cr_assert_eq (sc_diff_check (a.diff_path, &rep, err, sizeof err),
                -EWOULDBLOCK);
  cr_assert (strstr (err, "in use"), "%s", err);
  cr_assert (strstr (err, a.diff_path), "%s", err);
  uh_area_close (&a);

  /* Readers (an offline list) share the lock with the check. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  run_check (a.diff_path, &rep);
  cr_assert_eq (rep.damage, 0);
  sc_check_report_free (&rep);
  uh_area_free (&a);
}
