/* Review reproducer for cow/replay-order.c: replay_order_flush runs before
 * every record that is not a copy, also when no copy was set aside yet,
 * and then hands qsort a null array (d->ordered is NULL until the first
 * copy).  glibc declares qsort's array nonnull, so that is undefined
 * behaviour, and the sanitizer build (configure --enable-sanitizers,
 * -fno-sanitize-recover=all, scripts/check.sh) stops every replay at the
 * journal's first record.  So that a plain build sees it too, this test
 * defines qsort (the engine is linked in statically, so its calls come
 * here), counts the calls that pass a null array and sorts with qsort_r. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

static unsigned null_arrays;

struct cmp_holder { int (*cmp) (const void *, const void *); };

static int
call_cmp (const void *a, const void *b, void *arg)
{
  const struct cmp_holder *h = arg;
  return h->cmp (a, b);
}

void
qsort (void *base, size_t n, size_t size,
       int (*cmp) (const void *, const void *))
{
  /* Read back through a volatile: the nonnull attribute of qsort's
   * declaration lets the compiler drop a plain test of base. */
  void *volatile seen = base;
  if (!seen)
    __atomic_add_fetch (&null_arrays, 1, __ATOMIC_RELAXED);
  struct cmp_holder h = { cmp };
  if (n)
    qsort_r (base, n, size, call_cmp, &h);
}

TestSuite (replay_order_review, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

Test (replay_order_review, replay_never_hands_qsort_a_null_array)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  uh_snap (a.d, "a");
  for (uint64_t c = 0; c < 8; c++)
    uh_copy_chunk (a.d, (c * 5) % 64, 100 + c);
  uh_snap (a.d, "b");
  uh_copy_chunk (a.d, 3, 200);
  uh_area_close (&a);
  unsigned before = null_arrays;
  uh_area_open (&a, SC_DIFF_RDONLY);
  unsigned after = null_arrays;
  uh_assert_sees_copy (a.d, "a", 5, 101);
  uh_area_free (&a);
  cr_assert_eq (after, before, "a replay passed qsort a null array %u "
                "time(s) (undefined behaviour: UBSan's nonnull-attribute "
                "check aborts the sanitizer build here)", after - before);
}
