/* Unit tests: the slot allocator of the diff area (lowest-first, reuse
 * before growth, replay marks). */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>

#include <criterion/criterion.h>

#include "cow/alloc.h"

static uint64_t
get (struct sc_alloc *a)
{
  uint64_t s = UINT64_MAX;
  int r = sc_alloc_get (a, &s);
  cr_assert_eq (r, 0, "sc_alloc_get: %d", r);
  cr_assert (sc_alloc_is_used (a, s));
  return s;
}

Test (alloc, allocates_lowest_first_from_the_first_usable_slot)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 2);
  for (uint64_t want = 2; want < 200; want++)
    cr_assert_eq (get (&a), want);
  cr_assert_eq (a.used, 198);
  cr_assert (!sc_alloc_is_used (&a, 0));
  cr_assert (!sc_alloc_is_used (&a, 1));
  cr_assert (!sc_alloc_is_used (&a, 200));
  sc_alloc_free_all (&a);
}

Test (alloc, freed_slots_are_reused_before_the_end_grows)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 1);
  for (int i = 0; i < 10; i++)
    get (&a);                   /* slots 1..10 */
  sc_alloc_put (&a, 7);
  sc_alloc_put (&a, 3);
  sc_alloc_put (&a, 9);
  cr_assert (!sc_alloc_is_used (&a, 3));
  cr_assert_eq (a.used, 7);
  cr_assert_eq (get (&a), 3);
  cr_assert_eq (get (&a), 7);
  cr_assert_eq (get (&a), 9);
  cr_assert_eq (get (&a), 11, "grows only when nothing below is free");
  sc_alloc_free_all (&a);
}

Test (alloc, a_slot_freed_below_the_last_allocation_comes_back_first)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 1);
  for (int i = 0; i < 100; i++)
    get (&a);                   /* slots 1..100 */
  sc_alloc_put (&a, 90);
  cr_assert_eq (get (&a), 90);
  sc_alloc_put (&a, 5);
  sc_alloc_put (&a, 64);        /* a word boundary */
  sc_alloc_put (&a, 63);
  cr_assert_eq (get (&a), 5);
  cr_assert_eq (get (&a), 63);
  cr_assert_eq (get (&a), 64);
  cr_assert_eq (get (&a), 101);
  sc_alloc_free_all (&a);
}

Test (alloc, mark_claims_a_slot_and_refuses_it_twice)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 2);
  cr_assert_eq (sc_alloc_mark (&a, 10), 0);
  cr_assert (sc_alloc_is_used (&a, 10));
  cr_assert_eq (sc_alloc_mark (&a, 10), -EEXIST);
  cr_assert_eq (sc_alloc_mark (&a, 100000), 0, "far past the bitmap");
  cr_assert_eq (sc_alloc_mark (&a, 100000), -EEXIST);
  cr_assert_eq (a.used, 2);
  sc_alloc_free_all (&a);
}

Test (alloc, mark_below_the_first_slot_is_einval)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 2);
  cr_assert_eq (sc_alloc_mark (&a, 0), -EINVAL);
  cr_assert_eq (sc_alloc_mark (&a, 1), -EINVAL);
  cr_assert_eq (sc_alloc_mark (&a, 2), 0);
  cr_assert_eq (a.used, 1);
  sc_alloc_free_all (&a);
}

Test (alloc, after_marks_the_holes_below_are_filled_first)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 2);
  cr_assert_eq (sc_alloc_mark (&a, 5), 0);
  cr_assert_eq (sc_alloc_mark (&a, 3), 0);
  cr_assert_eq (sc_alloc_mark (&a, 200), 0);
  uint64_t want[] = { 2, 4 };
  for (size_t i = 0; i < 2; i++)
    cr_assert_eq (get (&a), want[i]);
  for (uint64_t s = 6; s < 200; s++)
    cr_assert_eq (get (&a), s);
  cr_assert_eq (get (&a), 201);
  sc_alloc_free_all (&a);
}

Test (alloc, many_slots)
{
  enum { N = 200000 };
  struct sc_alloc a;
  sc_alloc_init (&a, 1);
  for (uint64_t s = 1; s <= N; s++)
    cr_assert_eq (get (&a), s);
  for (uint64_t s = 1; s <= N; s += 3)
    sc_alloc_put (&a, s);
  cr_assert_eq (a.used, N - (N + 2) / 3);
  for (uint64_t s = 1; s <= N; s += 3)
    cr_assert_eq (get (&a), s);
  cr_assert_eq (a.used, N);
  cr_assert_eq (get (&a), N + 1);
  for (uint64_t s = 1; s <= N + 1; s++)
    cr_assert (sc_alloc_is_used (&a, s), "slot %lu", (unsigned long) s);
  sc_alloc_free_all (&a);
}

Test (alloc, freeing_a_free_slot_aborts, .signal = SIGABRT)
{
  struct sc_alloc a;
  sc_alloc_init (&a, 1);
  get (&a);
  get (&a);
  sc_alloc_put (&a, 2);
  sc_alloc_put (&a, 2);
}

Test (alloc, alloc_trim_end_finds_the_last_used_slot)
{
  struct sc_alloc al;
  sc_alloc_init (&al, 1);
  uint64_t s;
  for (int i = 0; i < 200; i++)
    cr_assert_eq (sc_alloc_get (&al, &s), 0);
  cr_assert_eq (al.end, 201);
  for (uint64_t i = 70; i <= 200; i++)
    sc_alloc_put (&al, i);
  cr_assert_eq (sc_alloc_trim_end (&al), 70);
  cr_assert_eq (sc_alloc_get (&al, &s), 0);
  cr_assert_eq (s, 70);
  for (uint64_t i = 1; i <= 70; i++)
    sc_alloc_put (&al, i);
  cr_assert_eq (sc_alloc_trim_end (&al), 1);
  sc_alloc_free_all (&al);
}
