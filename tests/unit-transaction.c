/* Unit tests: a metadata change either happens whole (journal and memory
 * in step) or not at all, even when an allocation fails half-way. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/fault.h"
#include "tests/unit-helpers.h"

static const char *failing_site;

static int
fail_at_site (const char *site)
{
  return failing_site && strcmp (site, failing_site) == 0 ? -ENOMEM : 0;
}

static void
setup (void)
{
  uh_setup ();
  sc_fault_hook = fail_at_site;
}

static void
teardown (void)
{
  sc_fault_hook = NULL;
  failing_site = NULL;
  uh_teardown ();
}

TestSuite (transaction, .init = setup, .fini = teardown);

#define CS 4096u

static size_t
listed (struct sc_diff *d)
{
  struct sc_snapshot_info *v;
  size_t n;
  cr_assert_eq (sc_diff_snapshot_list (d, &v, &n), 0);
  free (v);
  return n;
}

/* The snapshot table is full (16 entries, its first size) and cannot
 * grow: the create fails, nothing of it reaches the journal, the next
 * create takes the next id, and the diff area opens again. */
Test (transaction, create_that_cannot_grow_the_table_leaves_no_record)
{
  struct uh_area a;
  char name[32];
  uh_area_create (&a, 64 * CS, CS, 3);
  uint64_t last_id = 0;
  for (int i = 0; i < 16; i++) {
    snprintf (name, sizeof name, "s%d", i);
    last_id = uh_snap (a.d, name).id;
  }
  failing_site = "snapshot-table";
  struct sc_snapshot_info info;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "failed", NULL, &info),
                -ENOMEM);
  failing_site = NULL;
  cr_assert_eq (listed (a.d), 16);

  struct sc_snapshot_info next = uh_snap (a.d, "next");
  cr_assert_eq (next.id, last_id + 1, "the failed create used up an id");

  uh_area_reopen (&a, 0);
  cr_assert_eq (listed (a.d), 17);
  cr_assert_eq (sc_diff_snapshot_lookup (a.d, "failed", &info), -ENOENT);
  cr_assert_eq (uh_find (a.d, "next").id, next.id);
  uh_area_free (&a);
}

/* A discard whose extent list cannot grow fails and is not recorded:
 * after a restart the chunk still reads from the origin. */
Test (transaction, discard_that_cannot_grow_its_extents_leaves_no_record)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 4);
  struct sc_snapshot_info s = uh_snap (a.d, "s");
  failing_site = "discard-extent";
  cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, 0, 0), -ENOMEM);
  failing_site = NULL;
  cr_assert_eq (sc_diff_snapshot_discard (a.d, s.id, 5, 5), 0);

  uh_area_reopen (&a, 0);
  uint64_t off;
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 0, &off), SC_WHERE_ORIGIN,
                "a failed discard took effect after a restart");
  cr_assert_eq (sc_diff_resolve (a.d, s.epoch, 5, &off), SC_WHERE_ZERO);
  cr_assert_eq (uh_find (a.d, "s").discarded_bytes, CS);
  uh_area_free (&a);
}

/* Running out of memory while replaying is said as such: not as a
 * damaged diff area, and nothing of the file changes. */
Test (transaction, replay_out_of_memory_is_not_called_damage)
{
  struct uh_area a;
  char name[32], err[512] = "";
  uh_area_create (&a, 64 * CS, CS, 5);
  for (int i = 0; i < 17; i++) {
    snprintf (name, sizeof name, "s%d", i);
    uh_snap (a.d, name);
  }
  uh_area_close (&a);
  failing_site = "snapshot-table";
  struct sc_diff *d;
  int r = sc_diff_open (a.diff_path, 0, &a.id, 0, &d, err, sizeof err);
  failing_site = NULL;
  cr_assert_eq (r, -ENOMEM, "open: %d %s", r, err);
  cr_assert (strstr (err, "damaged") == NULL, "%s", err);
  cr_assert (strstr (err, a.diff_path) != NULL, "%s", err);
  uh_area_open (&a, 0);
  cr_assert_eq (listed (a.d), 17);
  uh_area_free (&a);
}
