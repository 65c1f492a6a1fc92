/* Unit tests: writable clones in the diff area (cow/clone.c,
 * cow/clone-journal.c): create, replay and checkpoint round trips, the
 * redirect of a rewritten chunk and when its old slot is freed, the
 * unsure tail after a power cut and after a process crash, ENOSPC at the
 * limit, and the deletes. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/boot-id.h"
#include "cow/check.h"
#include "cow/salvage.h"
#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (clone, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

/* The state every round trip checks: clone c of s with chunk 3 = tag 40,
 * chunk 4 zero, the rest the base's view. */
static void
assert_state (struct sc_diff *d)
{
  struct sc_snapshot_info c = uh_find (d, "c");
  cr_assert (c.clone);
  cr_assert_str_eq (c.base_name, "s");
  cr_assert_eq (c.base_id, uh_find (d, "s").id);
  cr_assert_eq (c.invalid_reason, SC_VALID);
  cr_assert_eq (c.used_bytes, CS, "deleting it frees its one slot");
  uh_assert_clone_chunk (d, c.id, 3, 40);
  uint64_t off;
  cr_assert_eq (sc_diff_clone_resolve (d, c.id, 4, &off), SC_WHERE_ZERO);
  cr_assert_eq (sc_diff_clone_resolve (d, c.id, 5, &off), SC_WHERE_ORIGIN);
  cr_assert_eq (uh_stats (d).data_slots, 2, "the copy and the clone's");
  uh_assert_sees_copy (d, "s", 2, 20);
}

static void
make_state (struct uh_area *a, struct sc_snapshot_info *c)
{
  uh_area_create (a, 16 * CS, CS, 3);
  uh_snap (a->d, "s");
  uh_copy_chunk (a->d, 2, 20);
  *c = uh_clone (a->d, "s", "c");
  uh_clone_write (a->d, c->id, 3, 40, NULL);
  uint64_t seq;
  cr_assert_eq (sc_diff_clone_map (a->d, c->id, 4, SC_COPY_ZERO, NULL, &seq),
                0);
  cr_assert_eq (sc_diff_commit (a->d, seq), 0);
}

Test (clone, checkpoint_round_trip)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  assert_state (a.d);
  uh_area_close (&a);           /* a checkpoint: every clone rewritten */
  uh_area_open (&a, 0);
  assert_state (a.d);
  uh_area_close (&a);
  uh_area_open (&a, SC_DIFF_RDONLY);
  assert_state (a.d);
  uh_area_free (&a);
}

/* A crash: the journal's records replayed as they are. */
Test (clone, replay_round_trip)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  uh_area_open (&a, 0);
  assert_state (a.d);
  uh_area_free (&a);
}

Test (clone, rewrite_redirects_and_frees_after_commit)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  uint64_t before;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 3, &before),
                SC_WHERE_DIFF);
  uint64_t off;
  uint64_t seq = uh_clone_write (a.d, c.id, 3, 41, &off);
  cr_assert_neq (off, before, "a rewrite goes to a new slot");
  cr_assert_eq (uh_stats (a.d).data_slots, 3,
                "the old slot is kept until the record is durable");
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 2, "then freed");
  uh_assert_clone_chunk (a.d, c.id, 3, 41);
  /* A whole-chunk trim: ZERO, and the slot freed. */
  cr_assert_eq (sc_diff_clone_map (a.d, c.id, 3, SC_COPY_ZERO, NULL, &seq),
                0);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 1);
  uh_area_free (&a);
}

/* The clone's slot is the only one with sums: its page is the only
 * page, and the rewrite's clear of the old slot emptied it (and with it
 * the room reserved for the new slot) before the new entry went in.  The
 * server aborted (mkfs.xfs on a clone, then a 512-byte rewrite). */
Test (clone, rewrite_of_the_only_slot_with_sums)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  uint64_t seq = uh_clone_write (a.d, c.id, 1, 50, NULL);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  seq = uh_clone_write (a.d, c.id, 1, 51, NULL);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  uh_assert_clone_chunk (a.d, c.id, 1, 51);
  cr_assert_eq (uh_stats (a.d).data_slots, 1, "the old slot freed");
  /* The same two records replayed after a crash. */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  uh_area_open (&a, 0);
  uh_assert_clone_chunk (a.d, c.id, 1, 51);
  seq = uh_clone_write (a.d, c.id, 1, 52, NULL);   /* and once more */
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  uh_assert_clone_chunk (a.d, c.id, 1, 52);
  uh_area_free (&a);
}

static int boot_n;
static int
next_boot (uint8_t id[16])
{
  memset (id, 0, 16);
  id[0] = (uint8_t) ++boot_n;
  return 0;
}

/* A rewrite of chunk 3 whose record is on disk but not vouched for, and
 * whose data never reached the slot. */
static void
unsure_tail (bool new_boot)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  sc_boot_id_hook = new_boot ? next_boot : NULL;
  make_state (&a, &c);
  uint64_t off, before;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 3, &before),
                SC_WHERE_DIFF);
  uint64_t seq = uh_clone_write (a.d, c.id, 3, 41, &off);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);  /* its own group */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  /* The fdatasync did not complete: the record reached the disk, the
   * data did not, and the old slot was not freed yet. */
  memset (img + off, 0, CS);
  uh_pattern (img + before, CS, 40, 0);
  uh_write_file (a.diff_path, img, len);
  free (img);
  uh_area_open (&a, 0);
  struct sc_snapshot_info now = uh_find (a.d, "c");
  if (new_boot) {
    cr_assert_eq (now.invalid_reason, SC_VALID);
    uh_assert_clone_chunk (a.d, c.id, 3, 40);      /* the previous mapping */
  }
  else
    cr_assert_eq (now.invalid_reason, SC_INVALID_DAMAGED,
                  "in the same boot it is damage");
  uh_area_close (&a);
  uh_area_open (&a, 0);         /* and it stays so */
  cr_assert_eq (uh_find (a.d, "c").invalid_reason,
                new_boot ? SC_VALID : SC_INVALID_DAMAGED);
  uh_area_free (&a);
  sc_boot_id_hook = NULL;
}

Test (clone, unsure_tail_after_a_power_cut_keeps_the_previous_mapping)
{
  unsure_tail (true);
}

Test (clone, unsure_tail_in_the_same_boot_is_damage)
{
  unsure_tail (false);
}

Test (clone, enospc_at_the_limit)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  cr_assert_eq (sc_diff_set_max (a.d, 24 * CS, 0, NULL), 0);
  int r = 0;
  uint64_t k, off;
  for (k = 0; k < 64 && r == 0; k++) {
    r = sc_diff_clone_slot_reserve (a.d, c.id, &off);
    if (r == 0) {
      uint8_t buf[CS];
      uint32_t sums[SC_COPY_SUMS_MAX];
      uint64_t seq;
      uh_pattern (buf, CS, k, 0);
      cr_assert_eq (pwrite (sc_diff_fd (a.d), buf, CS, off), (ssize_t) CS);
      sc_diff_copy_sums (a.d, buf, sums);
      cr_assert_eq (sc_diff_clone_map (a.d, c.id, k, off, sums, &seq), 0);
    }
  }
  cr_assert_eq (r, -ENOSPC, "a clone write at the limit fails");
  cr_assert (k > 4 && k < 24);
  cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_VALID,
                "no policy dropped or invalidated the base");
  /* A trimmed chunk's slot comes back (the reservation commits the
   * record that let it go), and a write fits again. */
  uint64_t seq;
  cr_assert_eq (sc_diff_clone_map (a.d, c.id, 0, SC_COPY_ZERO, NULL, &seq),
                0);
  cr_assert_gt (uh_clone_write (a.d, c.id, 1, 99, NULL), 0);
  uh_area_free (&a);
}

Test (clone, delete_base_refused_then_with_clones)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  uh_clone (a.d, "s", "c2");
  char names[256];
  cr_assert_eq (sc_diff_clone_names (a.d, uh_find (a.d, "s").id, names,
                                     sizeof names), 2);
  cr_assert_str_eq (names, "c, c2");
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s"), -EBUSY);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s"), -EBUSY);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "c"), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 1, "the clone's slot freed");
  cr_assert_eq (sc_diff_snapshot_delete_with_clones (a.d, "s"), 0);
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (a.d, &v, &n), 0);
  cr_assert_eq (n, 0);
  free (v);
  uh_area_close (&a);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_snapshot_list (a.d, &v, &n), 0);
  cr_assert_eq (n, 0, "the deletes are durable");
  free (v);
  uh_area_free (&a);
}

Test (clone, bad_input_changes_nothing)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  struct sc_snapshot_opts ck = { .checkpoint = true };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "k", &ck, NULL), 0);
  char err[256];
  struct sc_snapshot_info out;
  struct { const char *base, *name; int want; } cases[] = {
    { "s", "live", -EINVAL }, { "s", "c", -EEXIST }, { "s", "s", -EEXIST },
    { "k", "x", -EINVAL }, { "c", "x", -EINVAL }, { "nope", "x", -ENOENT },
    { "s", ".x", -EINVAL },
  };
  uint64_t records = uh_stats (a.d).journal_records;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = '\0';
    cr_assert_eq (sc_diff_clone_create (a.d, cases[i].base, cases[i].name,
                                        &out, err, sizeof err),
                  cases[i].want, "%s of %s", cases[i].name, cases[i].base);
    cr_assert_neq (err[0], '\0', "a message");
  }
  cr_assert_eq (uh_stats (a.d).journal_records, records, "nothing written");
  /* A snapshot cannot take a clone's name either. */
  cr_assert_eq (sc_diff_snapshot_create (a.d, "c", NULL, NULL), -EEXIST);
  uh_area_free (&a);
}

/* A clone's own data is verified on every read (invariant 9): a flipped
 * byte fails the read with EIO and damages the clone, durably. */
Test (clone, damaged_slot_fails_the_read_and_damages_the_clone)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  uint64_t off;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 3, &off), SC_WHERE_DIFF);
  uint8_t b;
  cr_assert_eq (pread (sc_diff_fd (a.d), &b, 1, off + 100), 1);
  b ^= 0x40;
  cr_assert_eq (pwrite (sc_diff_fd (a.d), &b, 1, off + 100), 1);
  uint8_t buf[CS];
  struct sc_copy_io io = { .offset = off, .buf = buf, .at = 0, .len = CS };
  cr_assert_eq (sc_diff_copy_read (a.d, &io, 1), -EIO);
  cr_assert_eq (uh_find (a.d, "c").invalid_reason, SC_INVALID_DAMAGED);
  cr_assert_eq (sc_diff_clone_get (a.d, c.id, NULL), -EIO,
                "a damaged clone is not served");
  cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_VALID,
                "its base is not touched");
  uh_area_close (&a);
  uh_area_open (&a, 0);
  cr_assert_eq (uh_find (a.d, "c").invalid_reason, SC_INVALID_DAMAGED);
  uh_area_free (&a);
}

/* on-full=delete-oldest makes room by dropping the oldest snapshot that
 * has no clones: the base stays. */
Test (clone, a_policy_never_drops_a_base)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  cr_assert_eq (sc_diff_set_max (a.d, 32 * CS, 0, NULL), 0);
  const char *names[] = { "a", "b", "c" };
  for (int s = 0; s < 3; s++) {
    uh_snap (a.d, names[s]);
    for (uint64_t k = 0; k < 6; k++)
      cr_assert_eq (uh_copy_reserved (a.d, s * 6 + k, s * 100 + k), 0);
  }
  uh_clone (a.d, "a", "ca");
  /* b and c go for room; then only the base is left, and the copy it
   * needs does not fit: the live write is refused, never a silent drop
   * (or an invalidation) of the base. */
  int r = 0;
  for (uint64_t k = 18; k < 40 && r >= 0 && r != SC_COPY_REFUSED; k++)
    r = uh_copy_reserved (a.d, k, 300 + k);
  cr_assert_eq (r, SC_COPY_REFUSED, "r %d", r);
  cr_assert_eq (uh_stats (a.d).dropped, 2);
  cr_assert_eq (uh_find (a.d, "a").invalid_reason, SC_VALID,
                "the base of a clone was kept");
  cr_assert_eq (uh_find (a.d, "ca").invalid_reason, SC_VALID);
  struct sc_snapshot_info gone;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "b", &gone), -ENOENT,
                "the next oldest went instead");
  cr_assert_eq (sc_diff_snapshot_find (a.d, "c", &gone), -ENOENT);
  uh_area_free (&a);
}

/* shadowcopy check accepts a diff area with clones, and check --data
 * verifies their slots too. */
Test (clone, check_accepts_clones)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  uh_area_close (&a);
  struct sc_check_report rep;
  char err[512] = "";
  memset (&rep, 0, sizeof rep);
  cr_assert_eq (sc_diff_check_with (a.diff_path, SC_CHECK_DATA, &rep, err,
                                    sizeof err), 0, "%s", err);
  cr_assert (rep.loaded);
  cr_assert_eq (rep.damage, 0);
  cr_assert_eq (rep.snapshots, 1, "the snapshot; the clone apart");
  cr_assert_eq (rep.snapshots_valid, 1);
  cr_assert_eq (rep.clones, 1);
  cr_assert_eq (rep.clones_valid, 1);
  cr_assert_eq (rep.clones_invalid, 0);
  cr_assert_eq (rep.copies, 1);
  cr_assert_eq (rep.data_slots, 2, "the copy's and the clone's");
  cr_assert_eq (rep.clone_slots, 1);
  cr_assert_eq (rep.zero_copies, 0);
  cr_assert_eq (rep.data_slots_read, 2, "the clone's slot read back too");
  sc_check_report_free (&rep);
  /* A flipped byte in the clone's slot is found by check --data. */
  uh_area_open (&a, SC_DIFF_RDONLY);
  uint64_t off;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 3, &off), SC_WHERE_DIFF);
  uh_area_close (&a);
  uh_flip_byte (a.diff_path, off + 7);
  memset (&rep, 0, sizeof rep);
  (void) sc_diff_check_with (a.diff_path, SC_CHECK_DATA, &rep, err,
                             sizeof err);
  cr_assert_gt (rep.damage, 0, "the damaged clone slot is found");
  sc_check_report_free (&rep);
  uh_area_free (&a);
}

/* The offset in img of the CLONE_DATA record of (id, chunk). */
static size_t
find_clone_data (const uint8_t *img, size_t len, uint64_t id, uint64_t chunk)
{
  for (size_t o = 0; o + sizeof (struct sc_rec_clone_data) <= len; o += 8) {
    struct sc_rec_clone_data r;
    memcpy (&r, img + o, sizeof r);
    if (r.h.type == SC_REC_CLONE_DATA && r.id == id && r.chunk == chunk &&
        r.h.len >= sizeof r && r.h.len <= 256)
      return o;
  }
  cr_assert_fail ("no CLONE_DATA record of chunk %lu", (unsigned long) chunk);
  return 0;
}

/* A damaged CLONE_DATA record in the middle of the journal: the open
 * refuses it; salvage goes past it and marks the clone, listed at the
 * loss, invalid, like the snapshots; the result opens. */
Test (clone, salvage_marks_a_clone_listed_at_a_loss_invalid)
{
  struct uh_area a;
  struct sc_snapshot_info c;
  make_state (&a, &c);
  uh_snap (a.d, "t");           /* a later commit vouches for the record */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  size_t o = find_clone_data (img, len, c.id, 3);
  img[o + offsetof (struct sc_rec_clone_data, slot)] ^= 0x01;
  uh_write_file (a.diff_path, img, len);
  free (img);
  struct sc_diff *d = NULL;
  char err[1024] = "";
  cr_assert_lt (sc_diff_open (a.diff_path, 0, &a.id, 0, &d, err, sizeof err),
                0, "the damaged journal is refused");
  struct sc_salvage_report rep;
  cr_assert_eq (sc_diff_salvage (a.diff_path, &rep, err, sizeof err), 0,
                "%s", err);
  cr_assert (rep.needed);
  sc_salvage_report_free (&rep);
  uh_area_open (&a, 0);
  cr_assert_eq (uh_find (a.d, "c").invalid_reason, SC_INVALID_SALVAGED);
  cr_assert_eq (sc_diff_clone_get (a.d, c.id, NULL), -EIO);
  uh_area_free (&a);
}

/* The offset in img of the n-th (from 0) CLONE_DATA record of (id,
 * chunk). */
static size_t
find_clone_data_nth (const uint8_t *img, size_t len, uint64_t id,
                     uint64_t chunk, int n)
{
  for (size_t o = 0; o + sizeof (struct sc_rec_clone_data) <= len; o += 8) {
    struct sc_rec_clone_data r;
    memcpy (&r, img + o, sizeof r);
    if (r.h.type == SC_REC_CLONE_DATA && r.id == id && r.chunk == chunk &&
        r.h.len >= sizeof r && r.h.len <= 256 && n-- == 0)
      return o;
  }
  cr_assert_fail ("no CLONE_DATA record of chunk %lu", (unsigned long) chunk);
  return 0;
}

/* The lost record is a clone's rewrite: without it the clone's map falls
 * back to the slot the rewrite let go, which was freed and reused since.
 * Salvage used to find that slot "used twice" and refuse everything; the
 * distrusted clone is never served again, so its map goes. */
Test (clone, salvage_of_a_lost_rewrite_whose_old_slot_was_reused)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  uh_snap (a.d, "s");
  uh_copy_chunk (a.d, 5, 20);
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  uint64_t first, off;
  uint64_t seq = uh_clone_write (a.d, c.id, 0, 50, &first);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  seq = uh_clone_write (a.d, c.id, 0, 51, NULL);   /* first let go */
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  uh_snap (a.d, "t");           /* a later commit vouches for the record */
  seq = uh_clone_write (a.d, c.id, 2, 52, &off);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  cr_assert_eq (off, first, "the slot let go is reused");
  uh_copy_chunk (a.d, 6, 60);
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  size_t o = find_clone_data_nth (img, len, c.id, 0, 1);
  img[o + offsetof (struct sc_rec_clone_data, slot)] ^= 0x01;
  uh_write_file (a.diff_path, img, len);
  free (img);
  struct sc_salvage_report rep;
  char err[1024] = "";
  cr_assert_eq (sc_diff_salvage (a.diff_path, &rep, err, sizeof err), 0,
                "%s", err);
  cr_assert (rep.needed);
  bool marked = false;
  for (size_t i = 0; i < rep.nsnaps; i++)
    if (rep.snaps[i].id == c.id)
      marked = rep.snaps[i].marked;
  cr_assert (marked, "the report says this salvage marked the clone");
  sc_salvage_report_free (&rep);
  uh_area_open (&a, 0);
  struct sc_snapshot_info now = uh_find (a.d, "c");
  cr_assert_eq (now.invalid_reason, SC_INVALID_SALVAGED);
  cr_assert_eq (now.used_bytes, 0, "its map is gone");
  cr_assert_eq (sc_diff_clone_get (a.d, c.id, NULL), -EIO);
  cr_assert_eq (uh_find (a.d, "t").invalid_reason, SC_VALID);
  uh_assert_sees_copy (a.d, "t", 6, 60);
  uh_area_close (&a);
  memset (&rep, 0, sizeof rep);
  struct sc_check_report ck;
  memset (&ck, 0, sizeof ck);
  cr_assert_eq (sc_diff_check_with (a.diff_path, SC_CHECK_DATA, &ck, err,
                                    sizeof err), 0, "%s", err);
  cr_assert_eq (ck.damage, 0);
  sc_check_report_free (&ck);
  uh_area_free (&a);
}

/* A base with clones is protected: its reader's discard would change
 * what the clone reads: refused, until the clone is gone. */
Test (clone, a_discard_of_a_base_is_refused)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uint64_t id = uh_snap (a.d, "s").id;
  uh_copy_chunk (a.d, 1, 11);
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  cr_assert_eq (sc_diff_snapshot_protected (a.d, id), SC_PROTECTED_CLONES);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, id, 0, 3), -EBUSY);
  uint64_t off;
  cr_assert_eq (sc_diff_clone_resolve (a.d, c.id, 1, &off), SC_WHERE_ORIGIN,
                "the clone reads its base's view");
  uh_assert_sees_copy (a.d, "s", 1, 11);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "c"), 0);
  cr_assert_eq (sc_diff_snapshot_protected (a.d, id), 0);
  cr_assert_eq (sc_diff_snapshot_discard (a.d, id, 0, 3), 0);
  uh_area_free (&a);
}

/* Slots a clone is about to free (its rewrite or trim not durable yet)
 * are space coming back: a live copy at the limit commits to get them
 * rather than drop a snapshot. */
Test (clone, a_copy_at_the_limit_takes_the_slots_a_clone_frees)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "s");
  struct sc_snapshot_info c = uh_clone (a.d, "s", "c");
  uh_snap (a.d, "t");
  cr_assert_eq (sc_diff_set_max (a.d, 24 * CS, 0, NULL), 0);
  uint64_t k, off;
  for (k = 0; k < 64; k++) {
    if (sc_diff_clone_slot_reserve (a.d, c.id, &off) < 0)
      break;
    sc_diff_slot_cancel (a.d, off);
    uh_clone_write (a.d, c.id, k, k, NULL);
  }
  cr_assert (k > 4 && k < 24);
  /* Trim 4 clone chunks: their slots wait for the records' commit. */
  uint64_t seq;
  for (uint64_t i = 0; i < 4; i++)
    cr_assert_eq (sc_diff_clone_map (a.d, c.id, i, SC_COPY_ZERO, NULL, &seq),
                  0);
  cr_assert_eq (uh_copy_reserved (a.d, 40, 400), 0);
  cr_assert_eq (uh_stats (a.d).dropped, 0, "no snapshot was dropped");
  cr_assert_eq (uh_find (a.d, "t").invalid_reason, SC_VALID);
  uh_area_free (&a);
}
