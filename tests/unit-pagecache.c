/* Unit tests: the bounded page cache under the copy map and the sums
 * (eviction writes back, holes read as zeroes, pinned pages stay, the
 * budget holds, errors are sticky, ENOSPC is the writer's alone). */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdio.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "cow/pagecache.h"

static struct sc_pc *
new_cache (uint64_t pages, int *file)
{
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (pages * SC_PC_PAGE, &pc), 0);
  const char *dir = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
  int fd = sc_pc_scratch_file (dir);
  cr_assert_geq (fd, 0, "sc_pc_scratch_file: %d", fd);
  *file = sc_pc_add_file (pc, fd);
  cr_assert_eq (*file, 0);
  return pc;
}

static void
stamp (struct sc_pc *pc, int file, uint64_t page)
{
  void *p;
  cr_assert_eq (sc_pc_get (pc, file, page, true, &p), 0);
  uint64_t v = page * 7 + 1;
  for (size_t i = 0; i < SC_PC_PAGE / 8; i++)
    memcpy ((char *) p + i * 8, &v, 8);
  sc_pc_put (pc, file, page);
}

static void
check (struct sc_pc *pc, int file, uint64_t page)
{
  void *p;
  cr_assert_eq (sc_pc_get (pc, file, page, false, &p), 0);
  uint64_t v, want = page * 7 + 1;
  for (size_t i = 0; i < SC_PC_PAGE / 8; i++) {
    memcpy (&v, (char *) p + i * 8, 8);
    cr_assert_eq (v, want, "page %lu word %zu", (unsigned long) page, i);
  }
  sc_pc_put (pc, file, page);
}

Test (pagecache, many_more_pages_than_the_budget_survive_eviction)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  for (uint64_t pg = 0; pg < 1000; pg++)
    stamp (pc, f, pg * 3);
  for (uint64_t pg = 0; pg < 1000; pg++)
    check (pc, f, pg * 3);
  struct sc_pc_stats st;
  sc_pc_stats (pc, &st);
  cr_assert_leq (st.pages, SC_PC_MIN_PAGES);
  cr_assert_geq (st.writebacks, 1000 - SC_PC_MIN_PAGES);
  cr_assert_geq (st.misses, 1000);
  sc_pc_free (pc);
}

Test (pagecache, a_page_never_written_reads_as_zeroes)
{
  int f;
  struct sc_pc *pc = new_cache (64, &f);
  stamp (pc, f, 10);
  void *p;
  cr_assert_eq (sc_pc_get (pc, f, 5, false, &p), 0);
  for (size_t i = 0; i < SC_PC_PAGE; i++)
    cr_assert_eq (((unsigned char *) p)[i], 0);
  sc_pc_put (pc, f, 5);
  sc_pc_free (pc);
}

Test (pagecache, pinned_pages_are_never_evicted)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  void *pinned;
  cr_assert_eq (sc_pc_get (pc, f, 1, true, &pinned), 0);
  memset (pinned, 0xab, SC_PC_PAGE);
  for (uint64_t pg = 100; pg < 400; pg++)
    stamp (pc, f, pg);
  /* Still the same memory, still holding what was written. */
  cr_assert_eq (((unsigned char *) pinned)[SC_PC_PAGE - 1], 0xab);
  void *again;
  cr_assert_eq (sc_pc_get (pc, f, 1, false, &again), 0);
  cr_assert_eq (again, pinned);
  sc_pc_put (pc, f, 1);
  sc_pc_put (pc, f, 1);
  sc_pc_free (pc);
}

Test (pagecache, every_page_pinned_is_ebusy_not_an_overrun)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  void *p;
  for (uint64_t pg = 0; pg < SC_PC_MIN_PAGES; pg++)
    cr_assert_eq (sc_pc_get (pc, f, pg, false, &p), 0);
  cr_assert_eq (sc_pc_get (pc, f, 999, false, &p), -EBUSY);
  sc_pc_put (pc, f, 3);
  cr_assert_eq (sc_pc_get (pc, f, 999, false, &p), 0);
  cr_assert_eq (sc_pc_error (pc), 0);
  sc_pc_free (pc);
}

static int fail_op = -1, fail_errno;

static int
fault (const struct sc_io_req *req)
{
  return (int) req->op == fail_op ? -fail_errno : 0;
}

/* A full filesystem fails nothing: a page that finds no disk space is
 * written all the same and kept in memory until it gets its space; then
 * it is written back and evicted like any other. */
Test (pagecache, enospc_keeps_the_page_in_memory_until_it_has_space)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  stamp (pc, f, 0);
  fail_op = SC_IO_FALLOCATE;
  fail_errno = ENOSPC;
  sc_io_fault_hook = fault;
  stamp (pc, f, 70);            /* a region with no space yet */
  stamp (pc, f, 70);            /* and written again while it waits */
  /* A page in a region that has its space needs no new space. */
  stamp (pc, f, 7);
  struct sc_pc_stats st;
  sc_pc_stats (pc, &st);
  cr_assert_eq (st.unbacked, 1);
  /* Churn: page 70 is never evicted (it could not be written back), the
   * others are, and every page still reads what was written. */
  for (uint64_t pg = 1000; pg < 1000 + 4 * SC_PC_MIN_PAGES; pg += 16)
    stamp (pc, f, pg);          /* each its own region: no space either */
  check (pc, f, 70);
  cr_assert_eq (sc_pc_error (pc), 0);
  /* Every frame waiting for space or pinned: EBUSY, not an overrun. */
  void *p;
  int r = 0;
  for (uint64_t pg = 5000; pg < 5000 + 64 * SC_PC_MIN_PAGES && r == 0;
       pg += 16) {
    r = sc_pc_get (pc, f, pg, true, &p);
    if (r == 0)
      sc_pc_put (pc, f, pg);
  }
  cr_assert_eq (r, -EBUSY);
  sc_pc_stats (pc, &st);
  cr_assert_leq (st.pages, SC_PC_MIN_PAGES);
  /* Space again: the waiting pages get it as the clock passes, and go. */
  sc_io_fault_hook = NULL;
  for (uint64_t pg = 9000; pg < 9000 + 4 * SC_PC_MIN_PAGES; pg++)
    stamp (pc, f, pg);
  sc_pc_stats (pc, &st);
  cr_assert_eq (st.unbacked, 0);
  check (pc, f, 70);
  check (pc, f, 7);
  check (pc, f, 0);
  cr_assert_eq (sc_pc_error (pc), 0);
  sc_pc_free (pc);
}

Test (pagecache, a_failed_write_back_is_sticky)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  for (uint64_t pg = 0; pg < SC_PC_MIN_PAGES; pg++)
    stamp (pc, f, pg);
  fail_op = SC_IO_WRITE;
  fail_errno = EIO;
  sc_io_fault_hook = fault;
  void *p;
  int r = 0;
  for (uint64_t pg = 100; pg < 100 + 2 * SC_PC_MIN_PAGES && r == 0; pg++) {
    r = sc_pc_get (pc, f, pg, false, &p);
    if (r == 0)
      sc_pc_put (pc, f, pg);
  }
  sc_io_fault_hook = NULL;
  cr_assert_eq (r, -EIO);
  cr_assert_eq (sc_pc_error (pc), EIO);
  /* Whatever is asked later, the cache no longer answers. */
  cr_assert_eq (sc_pc_get (pc, f, 0, false, &p), -EIO);
  sc_pc_free (pc);
}

Test (pagecache, a_failed_read_is_sticky)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  fail_op = SC_IO_READ;
  fail_errno = EIO;
  sc_io_fault_hook = fault;
  void *p;
  cr_assert_eq (sc_pc_get (pc, f, 3, false, &p), -EIO);
  sc_io_fault_hook = NULL;
  cr_assert_eq (sc_pc_get (pc, f, 4, false, &p), -EIO);
  sc_pc_free (pc);
}

Test (pagecache, the_budget_has_a_floor)
{
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (0, &pc), 0);
  struct sc_pc_stats st;
  sc_pc_stats (pc, &st);
  cr_assert_eq (st.max_pages, SC_PC_MIN_PAGES);
  sc_pc_free (pc);
}

/* Resident memory in KiB. */
static long
rss_kib (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets (line, sizeof line, f))
    sscanf (line, "VmRSS: %ld", &kib);
  if (f)
    fclose (f);
  return kib;
}

/* A full cache holds its budget of memory, not twice as much (4 KiB
 * blocks aligned to 4 KiB from the heap cost 8 KiB each), and an empty
 * one of a large budget next to nothing. */
Test (pagecache, the_memory_is_the_budget)
{
  int f;
  long before = rss_kib ();
  cr_assert_gt (before, 0);
  struct sc_pc *big = new_cache (65536, &f);    /* 256 MiB */
  long empty = rss_kib ();
  cr_assert_lt (empty - before, 4096, "an empty 256 MiB cache takes %ld KiB",
                empty - before);
  sc_pc_free (big);
  before = rss_kib ();
  struct sc_pc *pc = new_cache (4096, &f);      /* 16 MiB */
  for (uint64_t pg = 0; pg < 4096; pg++)
    stamp (pc, f, pg);
  long full = rss_kib ();
  cr_assert_lt (full - before, 16384 + 2048, "a full 16 MiB cache takes "
                "%ld KiB", full - before);
  for (uint64_t pg = 0; pg < 4096; pg++)
    check (pc, f, pg);
  sc_pc_free (pc);
}
