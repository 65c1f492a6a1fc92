/* Unit tests of snapshot sets and auto-release in the diff area. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (sets, .init = uh_setup, .fini = uh_teardown);

static const uint8_t set_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                   13, 14, 15, 16 };

static struct sc_snapshot_info
snap_opts (struct sc_diff *d, const char *name, const uint8_t *set,
           bool auto_release)
{
  struct sc_snapshot_opts o = { .set_id = set, .auto_release = auto_release };
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_create (d, name, &o, &s), 0);
  return s;
}

Test (sets, set_id_survives_replay_and_checkpoint)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 7);
  snap_opts (a.d, "one", set_a, false);
  uh_snap (a.d, "plain");
  for (int pass = 0; pass < 2; pass++) {
    /* pass 0: crash (journal replay); pass 1: clean close (checkpoint) */
    if (pass == 0) {
      uh_sb_mark_unclean (a.diff_path);
      uh_area_reopen (&a, 0);
    }
    else
      uh_area_reopen (&a, 0);
    struct sc_snapshot_info s = uh_find (a.d, "one");
    cr_assert (s.in_set);
    cr_assert_eq (memcmp (s.set_id, set_a, 16), 0);
    cr_assert (!s.auto_release);
    cr_assert (!uh_find (a.d, "plain").in_set);
  }
  uh_area_free (&a);
}

Test (sets, auto_release_is_gone_after_reopen_with_its_copies)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 7);
  uh_snap (a.d, "keep");
  uh_copy_chunk (a.d, 3, 98);   /* what "keep" needs */
  struct sc_snapshot_info ar = snap_opts (a.d, "ar", NULL, true);
  cr_assert (ar.auto_release);
  uh_copy_chunk (a.d, 3, 99);   /* a copy only "ar" needs */
  cr_assert_eq (uh_find (a.d, "ar").auto_release, true);
  cr_assert_eq (uh_stats (a.d).data_slots, 2);

  /* Read-only opens do not list it either. */
  uh_area_close (&a);
  uh_area_open (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_diff_snapshot_find (a.d, "ar", &s), -ENOENT);
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_snapshot_find (a.d, "ar", &s), -ENOENT);
  cr_assert_eq (uh_stats (a.d).data_slots, 1, "the copy of ar was kept");
  uh_find (a.d, "keep");
  /* and for good: another reopen does not bring it back */
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_snapshot_find (a.d, "ar", &s), -ENOENT);
  uh_area_free (&a);
}

Test (sets, unknown_snapshot_flags_are_corruption)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 7);
  uh_area_close (&a);
  struct uh_journal_end je;
  uh_journal_end (a.diff_path, &je);
  uint8_t buf[SC_REC_MAX] = { 0 };
  struct sc_rec_snap_create *r = (void *) buf;
  r->h.type = SC_REC_SNAP_CREATE;
  r->id = 1000;
  r->epoch = 1000;
  r->flags = 0x4;                /* 0x1, 0x2 are known */
  r->name_len = 1;
  r->name[0] = 'x';
  size_t len = sc_rec_padded (sizeof *r + 1);
  uh_sb_mark_unclean (a.diff_path);
  uh_journal_append (a.diff_path, r, len);
  struct sc_diff *d;
  char err[512];
  /* The bad record is the journal's last: replay treats a bad record at
   * the tail as torn unless a commit marker vouches for it, so either
   * the open refuses or the record is simply not there. */
  int e = sc_diff_open (a.diff_path, 0, &a.id, 0, &d, err, sizeof err);
  if (e == 0) {
    struct sc_snapshot_info s;
    cr_assert_eq (sc_diff_snapshot_find (d, "x", &s), -ENOENT);
    sc_diff_close (d);
  }
  uh_area_free (&a);
}
