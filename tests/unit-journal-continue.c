/* Unit tests: a journal continued in place (no room for a checkpoint at
 * open) after a power cut that left copies the replay dropped.
 *
 * After a power cut, the copies at the journal's end that no commit
 * marker vouches for are judged by their data: one whose data never
 * reached its slot is dropped, its chunk read from the origin again and
 * its slot given back.  When the open cannot write a checkpoint (the diff
 * area's filesystem is full), it appends to the old journal instead, and
 * the commit markers it writes from then on vouch for every record
 * before them, the dropped copy's too.  The next open must still not
 * apply that copy: its chunk may have been copied again in the same
 * epoch, its slot may hold another copy by then, and either would make
 * the diff area unreadable or a snapshot read another chunk's data. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/boot-id.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/salvage.h"
#include "tests/unit-helpers.h"

#define CS 4096u

static int boots;

/* Every open is in a boot of its own: the previous stop was a power
 * cut, so a copy's missing data means its write was cut short. */
static int
next_boot (uint8_t id[16])
{
  memset (id, 0, 16);
  id[0] = 0xb0;
  id[1] = (uint8_t) ++boots;
  return 0;
}

static int full_fd = -1;

/* The diff area's filesystem is full: no whole new slot for a
 * checkpoint's journal. */
static int
no_space_for_slots (const struct sc_io_req *req)
{
  if (req->op == SC_IO_FALLOCATE && req->fd == full_fd &&
      req->len == CS && req->off % CS == 0)
    return -ENOSPC;
  return 0;
}

static void
setup (void)
{
  uh_setup ();
  sc_boot_id_hook = next_boot;
}

static void
teardown (void)
{
  sc_io_fault_hook = NULL;
  sc_boot_id_hook = NULL;
  uh_teardown ();
}

TestSuite (journal_continue, .init = setup, .fini = teardown);

/* The next fd number the open will get (nothing else opens files
 * meanwhile): the hook needs it before the open does I/O. */
static void
fill_disk_at_open (const char *path)
{
  int probe = open (path, O_RDONLY);
  cr_assert_geq (probe, 0);
  close (probe);
  full_fd = probe;
  sc_io_fault_hook = no_space_for_slots;
}

/* What a slot holds after a power cut: pattern `tag`, or (tag 0) the
 * zeros of a write that never reached it. */
struct slot_after { uint64_t off, tag; };

/* A power cut now, while the last commit's fdatasync ran: its records
 * reached the disk, but of the slots listed only those with a tag hold
 * their data (and a slot a rewrite replaces was not freed yet: it is
 * listed with its old tag).  The area is closed. */
static void
power_cut (struct uh_area *a, const struct slot_after *slots, size_t n)
{
  size_t len;
  uint8_t *img = uh_read_file (a->diff_path, &len);
  uh_area_close (a);
  for (size_t i = 0; i < n; i++)
    if (slots[i].tag)
      uh_pattern (img + slots[i].off, CS, slots[i].tag, 0);
    else
      memset (img + slots[i].off, 0, CS);
  uh_write_file (a->diff_path, img, len);
  free (img);
}

/* Snapshot "s" (after an auto-release snapshot "t" if `release`) with
 * chunk 0 copied (tag 10, vouched for by the next commit) and chunk 1
 * copied (tag 11) in a group of its own, the last: no marker vouches for
 * it.  Then a power cut in which chunk 1's data never reached its slot.
 * Chunk 1's slot. */
static uint64_t
lose_last_copy (struct uh_area *a, bool release)
{
  uh_area_create (a, 64 * CS, CS, 3);
  struct sc_snapshot_opts ar = { .auto_release = true };
  if (release)
    cr_assert_eq (sc_diff_snapshot_create (a->d, "t", &ar, NULL), 0);
  uh_snap (a->d, "s");
  uh_copy_chunk (a->d, 0, 10);
  uint64_t slot1 = uh_copy_chunk (a->d, 1, 11);
  power_cut (a, &(struct slot_after) { slot1, 0 }, 1);
  return slot1;
}

/* lose_last_copy; then the open finds no room for a checkpoint and
 * continues the journal.  *slot1 gets chunk 1's old slot. */
static void
cut_and_open_full (struct uh_area *a, uint64_t *slot1)
{
  *slot1 = lose_last_copy (a, false);
  fill_disk_at_open (a->diff_path);
  uh_area_open (a, 0);
  cr_assert_eq (sc_diff_fd (a->d), full_fd, "the hook watched another fd");
  struct sc_snapshot_info s = uh_find (a->d, "s");
  cr_assert_eq (s.invalid_reason, SC_VALID);
  uh_assert_sees_copy (a->d, "s", 0, 10);
  uh_assert_sees_origin (a->d, "s", 1);
}

/* The next open, read-only and read-write: "s" is valid and reads
 * chunk 1 from where `where` says, with tag `tag` if from the diff
 * area. */
static void
reopen_and_check (struct uh_area *a, enum sc_where where, uint64_t tag)
{
  sc_io_fault_hook = NULL;
  for (int k = 0; k < 2; k++) {
    char err[1024] = "";
    int r = sc_diff_open (a->diff_path, k ? 0 : SC_DIFF_RDONLY, &a->id, 0,
                          &a->d, err, sizeof err);
    cr_assert_eq (r, 0, "open %s after the continued journal: %s",
                  k ? "read-write" : "read-only", err);
    cr_assert_eq (uh_find (a->d, "s").invalid_reason, SC_VALID);
    uh_assert_sees_copy (a->d, "s", 0, 10);
    if (where == SC_WHERE_DIFF)
      uh_assert_sees_copy (a->d, "s", 1, tag);
    else
      uh_assert_sees_origin (a->d, "s", 1);
    uh_area_close (a);
  }
}

Test (journal_continue, dropped_copy_then_its_chunk_copied_again)
{
  struct uh_area a;
  uint64_t slot1;
  cut_and_open_full (&a, &slot1);
  /* The origin still holds chunk 1's old data: the next write copies it
   * again, in the same epoch. */
  uh_copy_chunk (a.d, 1, 12);
  uh_assert_sees_copy (a.d, "s", 1, 12);
  uh_area_close (&a);
  reopen_and_check (&a, SC_WHERE_DIFF, 12);
  uh_area_free (&a);
}

Test (journal_continue, dropped_copy_slot_taken_by_another_chunk)
{
  struct uh_area a;
  uint64_t slot1;
  cut_and_open_full (&a, &slot1);
  /* Copies of other chunks until one takes the freed slot. */
  uint64_t chunk = 2;
  while (uh_copy_chunk (a.d, chunk, 20 + chunk) != slot1) {
    chunk++;
    cr_assert_lt (chunk, 60, "the dropped copy's slot was never reused");
  }
  uh_area_close (&a);
  reopen_and_check (&a, SC_WHERE_ORIGIN, 0);
  /* ... and that chunk reads its own copy. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  uh_assert_sees_copy (a.d, "s", chunk, 20 + chunk);
  uh_area_free (&a);
}

Test (journal_continue, dropped_copy_left_alone_stays_dropped)
{
  struct uh_area a;
  uint64_t slot1;
  cut_and_open_full (&a, &slot1);
  uh_area_close (&a);
  reopen_and_check (&a, SC_WHERE_ORIGIN, 0);
  uh_area_free (&a);
}

/* ---- a writable clone's writes ------------------------------------------ */

/* Chunk 3 holds tag 40, chunk 4 reads zeros, chunk 5 its base's. */
static void
assert_clone_before (struct sc_diff *d, uint64_t id, const char *stage)
{
  uint64_t off;
  cr_assert_eq (uh_find (d, "c").invalid_reason, SC_VALID, "%s", stage);
  uh_assert_clone_chunk (d, id, 3, 40);
  cr_assert_eq (sc_diff_clone_resolve (d, id, 4, &off), SC_WHERE_ZERO,
                "%s", stage);
  cr_assert_eq (sc_diff_clone_resolve (d, id, 5, &off), SC_WHERE_ORIGIN,
                "%s", stage);
}

/* Clone c of s: chunk 3 written (tag 40) and chunk 4 zeroed, vouched
 * for; then, in the last group, writes of chunks 3, 4 and 5 whose data a
 * power cut kept from their slots.  The open finds no room for a
 * checkpoint, drops the three, and continues the journal; more writes
 * take the freed slots.  The next opens see the clone as before the
 * three, and the later writes. */
Test (journal_continue, dropped_clone_writes)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  uint64_t off[3], seq;
  seq = uh_clone_write (a.d, c.id, 3, 40, &off[0]);
  cr_assert_eq (sc_diff_clone_map (a.d, c.id, 4, SC_COPY_ZERO, NULL, &seq),
                0);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  uint64_t before;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 3, &before),
                SC_WHERE_DIFF);
  for (int i = 0; i < 3; i++)
    seq = uh_clone_write (a.d, c.id, 3 + i, 41 + i, &off[i]);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);  /* the last group */
  power_cut (&a, (struct slot_after[]) { { off[0], 0 }, { off[1], 0 },
                                         { off[2], 0 }, { before, 40 } }, 4);

  fill_disk_at_open (a.diff_path);
  uh_area_open (&a, 0);
  assert_clone_before (a.d, c.id, "the open that drops them");
  /* Later writes, until each freed slot is taken again. */
  int reused = 0;
  uint64_t chunk;
  for (chunk = 6; reused < 3; chunk++) {
    cr_assert_lt (chunk, 60, "the dropped writes' slots were not reused");
    uint64_t o;
    cr_assert_eq (sc_diff_commit (a.d, uh_clone_write (a.d, c.id, chunk,
                                                    chunk, &o)), 0);
    reused += o == off[0] || o == off[1] || o == off[2];
  }
  uh_area_close (&a);
  sc_io_fault_hook = NULL;
  for (int k = 0; k < 2; k++) {
    char err[1024] = "";
    int r = sc_diff_open (a.diff_path, k ? 0 : SC_DIFF_RDONLY, &a.id, 0,
                          &a.d, err, sizeof err);
    cr_assert_eq (r, 0, "open after the continued journal: %s", err);
    assert_clone_before (a.d, c.id, k ? "the read-write open after"
                                      : "the read-only open after");
    for (uint64_t k2 = 6; k2 < chunk; k2++)
      uh_assert_clone_chunk (a.d, c.id, k2, k2);
    uh_area_close (&a);
  }
  uh_area_free (&a);
}

/* ---- VOID records that make no sense ------------------------------------ */

/* Snapshot "s" with chunk 0 copied, closed, then one VOID record
 * appended as a crashed session would have left it: the open refuses
 * the diff area with `want` in its message, or with want NULL accepts
 * it. */
static void
void_record (struct sc_rec_void r, bool bad_slot, const char *want)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  struct sc_snapshot_info s = uh_snap (a.d, "s");
  uint64_t off = uh_copy_chunk (a.d, 0, 10);
  uh_area_close (&a);
  r.h.type = SC_REC_VOID;
  r.epoch = r.epoch ? r.epoch : s.epoch + 1;   /* the copy's epoch */
  r.slot = off / CS + bad_slot;
  uh_sb_mark_unclean (a.diff_path);
  uh_journal_append (a.diff_path, &r, sizeof r);
  char err[1024] = "";
  for (int k = 0; k < 2; k++) {
    int rc = sc_diff_open (a.diff_path, k ? 0 : SC_DIFF_RDONLY, &a.id, 0,
                           &a.d, err, sizeof err);
    if (!want) {
      cr_assert_eq (rc, 0, "%s", err);
      uh_assert_sees_origin (a.d, "s", 0);
      uh_area_close (&a);
      continue;
    }
    cr_assert_eq (rc, -EINVAL, "open: %d (%s)", rc, err);
    cr_assert (strstr (err, want), "\"%s\" not in: %s", want, err);
  }
  uh_area_free (&a);
}

Test (journal_continue, void_of_a_copy_in_force)
{
  void_record ((struct sc_rec_void) { .seq = 1 }, false, NULL);
}

Test (journal_continue, void_of_a_copy_in_another_slot)
{
  void_record ((struct sc_rec_void) { .seq = 1 }, true,
               "voids a copy of chunk 0");
}

Test (journal_continue, void_of_a_copy_in_another_epoch)
{
  void_record ((struct sc_rec_void) { .seq = 1, .epoch = 7 }, false,
               "that is not there");
}

Test (journal_continue, void_of_a_later_record)
{
  void_record ((struct sc_rec_void) { .seq = 1u << 30 }, false,
               "bad void record");
}

Test (journal_continue, void_with_unknown_flags)
{
  void_record ((struct sc_rec_void) { .seq = 1, .flags = 0x4 }, false,
               "bad void record");
}

Test (journal_continue, void_of_a_write_of_no_clone)
{
  void_record ((struct sc_rec_void) { .seq = 1, .flags = SC_VOID_F_CLONE,
                                      .id = 99 }, false,
               "of clone id 99");
}

/* ---- review 18: a power cut during the open's write of the undo ------ */

/* The first records of a journal continued from `from` (its end before
 * the open, in the image after it): each record's end. */
static size_t
record_ends (const uint8_t *img, uint64_t from, size_t *ends, size_t max)
{
  size_t n = 0;
  uint64_t at = from;
  while (n < max) {
    struct sc_rec_hdr h;
    memcpy (&h, img + at, sizeof h);
    if (h.type == 0 || h.type == SC_REC_COMMIT)
      break;
    at += h.len;
    ends[n++] = at - from;
  }
  return n;
}

/* The open's undo write, captured: the diff area before the open (img0)
 * and after it (img1), and where each record of the continued journal
 * ends. */
struct undo_write {
  uint8_t *img0, *img1;
  size_t len0, len1;
  uint64_t from;                /* the journal's end before the open */
  size_t ends[16], n;
};

/* Before the read-write open on a full filesystem. */
static void
undo_begin (struct uh_area *a, struct undo_write *u)
{
  struct uh_journal_end je;
  uh_journal_end (a->diff_path, &je);
  u->from = je.off;
  u->img0 = uh_read_file (a->diff_path, &u->len0);
  fill_disk_at_open (a->diff_path);
}

/* After it, once closed: the records it wrote, `want` of them. */
static void
undo_end (struct uh_area *a, struct undo_write *u, size_t want)
{
  sc_io_fault_hook = NULL;
  u->img1 = uh_read_file (a->diff_path, &u->len1);
  u->n = record_ends (u->img1, u->from, u->ends, 16);
  cr_assert_eq (u->n, want, "one record a chunk: %zu, not %zu", u->n, want);
}

/* The diff area as a power cut during that write may leave it: the
 * first `cut` records written. */
static void
undo_torn (struct uh_area *a, const struct undo_write *u, size_t cut)
{
  uint8_t *t = malloc (u->len0);
  cr_assert_not_null (t);
  memcpy (t, u->img0, u->len0);
  if (cut)
    memcpy (t + u->from, u->img1 + u->from, u->ends[cut - 1]);
  uh_write_file (a->diff_path, t, u->len0);
  free (t);
}

static void
undo_free (struct undo_write *u)
{
  free (u->img0);
  free (u->img1);
}

/* Snapshot s with chunk 0 copied (tag 10) and clone c of s with chunk 3
 * written (tag 40), vouched for; then, in the last group, a copy of
 * chunk 1 (tag 11), two rewrites of chunk 3 of the clone (tags 41, 42)
 * and a first write of its chunk 5 (tag 50), whose data a power cut kept
 * from their slots.  The open finds no room for a checkpoint, drops the
 * four, and continues the journal with one record a copy or clone chunk
 * (chunk 1's copy voided; chunk 3 back on tag 40's slot; chunk 5 back to
 * its base).  A second power cut keeps any prefix of
 * that write (review 18 found that a VOID record and the CLONE_DATA
 * record after it, two records for one chunk, lost tag 40 when torn
 * apart).  Whatever the prefix, the next open sees tag 40 in chunk 3 of
 * the clone and its base in chunk 5, and s reads chunk 0's copy and
 * chunk 1 from the origin. */
Test (journal_continue, torn_undo_write_keeps_every_chunk)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  uint64_t before, off[4], seq = 0;
  uh_copy_chunk (a.d, 0, 10);
  cr_assert_eq (sc_diff_commit (a.d, uh_clone_write (a.d, c.id, 3, 40,
                                                     &before)), 0);
  uh_copy_chunk_record (a.d, 1, 11, &off[3]);
  const uint64_t chunks[3] = { 3, 3, 5 }, tags[3] = { 41, 42, 50 };
  for (int i = 0; i < 3; i++)
    seq = uh_clone_write (a.d, c.id, chunks[i], tags[i], &off[i]);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  power_cut (&a, (struct slot_after[]) { { off[0], 0 }, { off[1], 0 },
                                         { off[2], 0 }, { off[3], 0 },
                                         { before, 40 } }, 5);
  struct undo_write u;
  undo_begin (&a, &u);
  uh_area_open (&a, 0);
  uh_area_close (&a);
  undo_end (&a, &u, 3);

  for (size_t cut = 0; cut <= u.n; cut++) {
    undo_torn (&a, &u, cut);
    for (int k = 0; k < 2; k++) {
      uh_area_open (&a, k ? 0 : SC_DIFF_RDONLY);
      uint64_t where;
      cr_assert_eq (uh_find (a.d, "c").invalid_reason, SC_VALID,
                    "%zu records kept", cut);
      uh_assert_clone_chunk (a.d, c.id, 3, 40);
      cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 5, &where),
                    SC_WHERE_ORIGIN, "%zu records kept: chunk 5", cut);
      cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_VALID,
                    "%zu records kept", cut);
      uh_assert_sees_copy (a.d, "s", 0, 10);
      uh_assert_sees_origin (a.d, "s", 1);
      uh_area_close (&a);
    }
  }
  undo_free (&u);
  uh_area_free (&a);
}

/* ---- no room for the undo (reviews 18 to 20) --------------------------- */

/* lose_last_copy, then commit markers appended until the journal's last
 * slot has room for `fits` more bytes (and a NEXT record) but not for
 * `need`.  The open, on a full filesystem, fails with ENOSPC.  If
 * `unchanged` (the undo write found no room), it wrote nothing and says
 * so; else its message does not say that nothing was changed.  Then,
 * with space, two opens in a row drop the copy again. */
static void
no_room (bool release, size_t fits, size_t need, bool unchanged)
{
  struct uh_area a;
  lose_last_copy (&a, release);
  struct uh_journal_end je0, je1;
  for (;;) {
    uh_journal_end (a.diff_path, &je0);
    if (je0.off % CS + need + SC_REC_NEXT_SIZE > CS)
      break;
    struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT };
    uh_journal_append (a.diff_path, &mark, sizeof mark);
  }
  cr_assert_leq (je0.off % CS + fits + SC_REC_NEXT_SIZE, CS,
                 "no room for the %zu bytes that should fit", fits);
  struct sc_sb_disk sb0, sb1;
  uh_sb_newest (a.diff_path, &sb0);

  fill_disk_at_open (a.diff_path);
  char err[1024] = "";
  int r = sc_diff_open (a.diff_path, 0, &a.id, 0, &a.d, err, sizeof err);
  cr_assert_eq (r, -ENOSPC, "the open on a full filesystem: %d %s", r, err);
  uh_sb_newest (a.diff_path, &sb1);
  uh_journal_end (a.diff_path, &je1);
  bool changed = sb1.generation != sb0.generation ||
                 je1.next_seq != je0.next_seq;
  if (unchanged) {
    cr_assert_not (changed, "records %lu -> %lu, superblock generation "
                   "%lu -> %lu", (unsigned long) je0.next_seq,
                   (unsigned long) je1.next_seq,
                   (unsigned long) sb0.generation,
                   (unsigned long) sb1.generation);
    cr_assert (strstr (err, "no space on its filesystem") &&
               strstr (err, "(1 copies or clone writes)") &&
               strstr (err, "nothing was changed"), "%s", err);
  }
  else
    cr_assert_not (strstr (err, "nothing was changed"), "%s", err);

  sc_io_fault_hook = NULL;      /* space again */
  for (int k = 0; k < 2; k++) {
    uh_area_open (&a, 0);
    cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_VALID);
    uh_assert_sees_copy (a.d, "s", 0, 10);
    uh_assert_sees_origin (a.d, "s", 1);
    uh_area_close (&a);
  }
  uh_area_free (&a);
}

#define VOID_REC sizeof (struct sc_rec_void)
#define COMMIT_REC sizeof (struct sc_rec_commit)

/* No room for the VOID record: the open needs a new journal slot, on a
 * full filesystem.  Serving on without it would leave the dropped copy
 * for later commit markers to vouch for; so the open fails, says why,
 * and changes nothing (review 18). */
Test (journal_continue, dropped_copy_with_no_room_for_its_void_record)
{
  no_room (false, 0, VOID_REC, true);
}

/* Room for the VOID record, not for the commit marker that makes it
 * durable: the undo write itself finds no room (review 20). */
Test (journal_continue, no_room_for_the_void_records_commit_marker)
{
  no_room (false, VOID_REC, VOID_REC + COMMIT_REC, true);
}

/* Room for the undo write, not for the delete of the auto-release
 * snapshot "t" the open appends after it has stored the superblock: the
 * message must not say that nothing was changed (review 19). */
Test (journal_continue, no_room_for_a_release_after_the_void_record)
{
  no_room (true, VOID_REC + COMMIT_REC,
           VOID_REC + COMMIT_REC + sizeof (struct sc_rec_snap_delete),
           false);
}

/* ---- review 19: chains of dropped writes, many chunks, two clones ------ */

/* What clones c1 and c2 read after the drops (and the later writes of
 * chunks 10 .. upto-1 of c1, tag = chunk). */
static void
assert_chains_undone (struct sc_diff *d, uint64_t c1, uint64_t c2,
                      uint64_t upto, const char *stage)
{
  uint64_t off;
  cr_assert_eq (uh_find (d, "c1").invalid_reason, SC_VALID, "%s", stage);
  cr_assert_eq (uh_find (d, "c2").invalid_reason, SC_VALID, "%s", stage);
  uh_assert_clone_chunk (d, c1, 3, 41);
  cr_assert_eq (sc_diff_clone_resolve (d, c1, 4, &off), SC_WHERE_ZERO,
                "%s: c1 chunk 4", stage);
  cr_assert_eq (sc_diff_clone_resolve (d, c1, 5, &off), SC_WHERE_ORIGIN,
                "%s: c1 chunk 5", stage);
  uh_assert_clone_chunk (d, c1, 7, 70);
  uh_assert_clone_chunk (d, c2, 3, 60);
  cr_assert_eq (sc_diff_clone_resolve (d, c2, 5, &off), SC_WHERE_ORIGIN,
                "%s: c2 chunk 5", stage);
  for (uint64_t k = 10; k < upto; k++)
    uh_assert_clone_chunk (d, c1, k, k);
}

/* Clones c1 and c2 of s.  Vouched for: c1 chunk 3 (tag 40), c1 chunk 4
 * zeroed, c2 chunk 3 (tag 60).  Then, in the last group, interleaved:
 * c1 chunk 3 rewritten three times (41 kept, 42 and 43 dropped), c2
 * chunk 3 (61, dropped), c1 chunk 5 twice over its base (50, 51, both
 * dropped), c1 chunk 4 over its zeros (45, dropped), c1 chunk 7 twice
 * over its base (70 kept, 71 dropped).  The open finds no room for a
 * checkpoint.  Every prefix of its undo write, then the whole one and
 * later writes over the freed slots, then a checkpoint: the clones read
 * as after the drops. */
Test (journal_continue, dropped_chains_of_many_chunks)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  uint64_t c1 = uh_clone (a.d, "s", "c1").id;
  uint64_t c2 = uh_clone (a.d, "s", "c2").id;
  uint64_t seq, o;
  uint64_t off40, off60;
  uh_clone_write (a.d, c1, 3, 40, &off40);
  uh_clone_write (a.d, c2, 3, 60, &off60);
  cr_assert_eq (sc_diff_clone_map (a.d, c1, 4, SC_COPY_ZERO, NULL, &seq), 0);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  const struct { uint64_t id, chunk, tag; bool drop; } w[] = {
    { c1, 3, 41, false }, { c2, 3, 61, true }, { c1, 5, 50, true },
    { c1, 3, 42, true }, { c1, 4, 45, true }, { c1, 5, 51, true },
    { c1, 7, 70, false }, { c1, 3, 43, true }, { c1, 7, 71, true },
  };
  const size_t nw = sizeof w / sizeof w[0];
  uint64_t off[16];
  for (size_t i = 0; i < nw; i++)
    seq = uh_clone_write (a.d, w[i].id, w[i].chunk, w[i].tag, &off[i]);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);  /* the last group */
  struct slot_after after[16 + 2];
  for (size_t i = 0; i < nw; i++)
    after[i] = (struct slot_after) { off[i], w[i].drop ? 0 : w[i].tag };
  after[nw] = (struct slot_after) { off40, 40 };
  after[nw + 1] = (struct slot_after) { off60, 60 };
  power_cut (&a, after, nw + 2);
  struct undo_write u;
  undo_begin (&a, &u);
  uh_area_open (&a, 0);
  assert_chains_undone (a.d, c1, c2, 10, "the open that drops them");
  uh_area_close (&a);
  undo_end (&a, &u, 5);
  for (size_t cut = 0; cut <= u.n; cut++) {
    undo_torn (&a, &u, cut);
    /* Read-only; read-write on a full filesystem again (it continues
     * the journal once more); then read-only after that. */
    for (int k = 0; k < 3; k++) {
      char stage[64];
      snprintf (stage, sizeof stage, "%zu records kept, %s", cut,
                k == 1 ? "read-write" : k ? "read-only after" : "read-only");
      fill_disk_at_open (a.diff_path);  /* continued in place again */
      uh_area_open (&a, k == 1 ? 0 : SC_DIFF_RDONLY);
      sc_io_fault_hook = NULL;
      assert_chains_undone (a.d, c1, c2, 10, stage);
      uh_area_close (&a);
    }
  }
  /* The whole undo write; later writes take the freed slots. */
  uh_write_file (a.diff_path, u.img1, u.len1);
  fill_disk_at_open (a.diff_path);
  uh_area_open (&a, 0);
  sc_io_fault_hook = NULL;
  uint64_t chunk = 10;
  for (int reused = 0; reused < 6; chunk++) {
    cr_assert_lt (chunk, 60, "the dropped writes' slots were not reused");
    cr_assert_eq (sc_diff_commit (a.d, uh_clone_write (a.d, c1, chunk,
                                                        chunk, &o)), 0);
    for (size_t i = 0; i < nw; i++)
      reused += w[i].drop && o == off[i];
  }
  uh_area_close (&a);
  for (int k = 0; k < 3; k++) {
    if (k == 2)
      uh_sb_mark_unclean (a.diff_path);         /* a checkpoint at open */
    uh_area_open (&a, k == 0 ? SC_DIFF_RDONLY : 0);
    assert_chains_undone (a.d, c1, c2, chunk, "after");
    uh_area_close (&a);
  }
  uh_area_open (&a, 0);
  assert_chains_undone (a.d, c1, c2, chunk, "after the checkpoint");
  undo_free (&u);
  uh_area_free (&a);
}

/* ---- review 19: a process crash right after the continued open -------- */

static int this_boot;

static int
fixed_boot (uint8_t id[16])
{
  memset (id, 0, 16);
  id[0] = 0xb1;
  id[1] = (uint8_t) this_boot;
  return 0;
}

/* As dropped_chains_of_many_chunks (fewer chunks): the open in boot 2
 * continues the journal with its undo records and stores the superblock
 * (boot 2); the server is then killed before any later commit (its
 * undo records are durable, no marker vouches for them yet).  The next
 * open, in the same boot, judges unsure records as damage: the clones
 * must still read as after the drops, valid. */
Test (journal_continue, process_crash_after_the_undo_write)
{
  sc_boot_id_hook = fixed_boot;
  this_boot = 1;
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  uint64_t c1 = uh_clone (a.d, "s", "c1").id;
  uint64_t seq, off40, off[4];
  uh_clone_write (a.d, c1, 3, 40, &off40);
  cr_assert_eq (sc_diff_clone_map (a.d, c1, 4, SC_COPY_ZERO, NULL, &seq), 0);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  uh_clone_write (a.d, c1, 3, 41, &off[0]);        /* kept */
  uh_clone_write (a.d, c1, 3, 42, &off[1]);        /* dropped */
  uh_clone_write (a.d, c1, 5, 50, &off[2]);        /* dropped */
  seq = uh_clone_write (a.d, c1, 4, 45, &off[3]);  /* dropped */
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  power_cut (&a, (struct slot_after[]) { { off40, 40 }, { off[0], 41 },
                                         { off[1], 0 }, { off[2], 0 },
                                         { off[3], 0 } }, 5);

  this_boot = 2;                /* a power cut */
  fill_disk_at_open (a.diff_path);
  uh_area_open (&a, 0);
  sc_io_fault_hook = NULL;
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);  /* killed: no close */
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  for (int k = 0; k < 3; k++) {
    if (k == 2)
      this_boot = 3;
    uh_area_open (&a, k == 1 ? 0 : SC_DIFF_RDONLY);
    uint64_t where;
    cr_assert_eq (uh_find (a.d, "c1").invalid_reason, SC_VALID, "open %d",
                  k);
    uh_assert_clone_chunk (a.d, c1, 3, 41);
    cr_assert_eq (sc_diff_clone_resolve (a.d, c1, 4, &where), SC_WHERE_ZERO);
    cr_assert_eq (sc_diff_clone_resolve (a.d, c1, 5, &where),
                  SC_WHERE_ORIGIN);
    struct sc_diff_stats st = uh_stats (a.d);
    cr_assert_eq (st.damaged, 0, "open %d: damage", k);
    uh_area_close (&a);
  }
  uh_area_free (&a);
}

/* ---- review 20: the no-room message of a salvage ------------------------ */

/* A damaged journal (a copy record flipped, later records committed)
 * that also ends in an unsure copy whose data never reached its slot:
 * salvage drops the copy, then finds no room for its checkpoint (a
 * salvage never continues the journal).  Its message must not send the
 * user to a read-only open: that open is what salvage tried first, and
 * it is refused (the journal is damaged). */
Test (journal_continue, salvage_with_no_room_does_not_promise_a_read_only_open)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uh_copy_chunk (a.d, 2, 12);                   /* its record: at je.off */
  uh_copy_chunk (a.d, 0, 10);
  uint64_t slot1 = uh_copy_chunk (a.d, 1, 11);  /* unsure */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  memset (img + slot1, 0, CS);
  img[je.off + sizeof (struct sc_rec_hdr)] ^= 0xff;
  uh_write_file (a.diff_path, img, len);
  free (img);
  char err[1024] = "";
  int r = sc_diff_open (a.diff_path, SC_DIFF_RDONLY, &a.id, 0, &a.d, err,
                        sizeof err);
  cr_assert_eq (r, -EINVAL, "a read-only open of the damaged journal: %d "
                "%s", r, err);

  fill_disk_at_open (a.diff_path);
  struct sc_salvage_report rep;
  r = sc_diff_salvage (a.diff_path, &rep, err, sizeof err);
  sc_io_fault_hook = NULL;
  cr_assert_eq (r, -ENOSPC, "salvage on a full filesystem: %d %s", r, err);
  /* A salvage never continues the journal: no undo records were tried,
   * and a read-only open still refuses the damaged journal. */
  cr_assert (strstr (err, "No space left on device") &&
             !strstr (err, "copies or clone writes") &&
             !strstr (err, "read-only open works"), "%s", err);
  char err2[1024] = "";
  r = sc_diff_open (a.diff_path, SC_DIFF_RDONLY, &a.id, 0, &a.d, err2,
                    sizeof err2);
  cr_assert_eq (r, -EINVAL, "still damaged: %d %s", r, err2);
  uh_area_free (&a);
}
