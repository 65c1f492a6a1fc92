/* Unit tests: the bounded page cache under the copy map and the sums
 * (eviction writes back, holes read as zeroes, pinned pages stay, the
 * budget holds, errors are sticky, ENOSPC is the writer's alone). */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

Test (pagecache, enospc_fails_the_writer_only_and_the_cache_goes_on)
{
  int f;
  struct sc_pc *pc = new_cache (SC_PC_MIN_PAGES, &f);
  stamp (pc, f, 0);
  fail_op = SC_IO_FALLOCATE;
  fail_errno = ENOSPC;
  sc_io_fault_hook = fault;
  void *p;
  cr_assert_eq (sc_pc_get (pc, f, 7, true, &p), -ENOSPC);
  /* A page already backed needs no new space. */
  cr_assert_eq (sc_pc_get (pc, f, 0, true, &p), 0);
  sc_pc_put (pc, f, 0);
  sc_io_fault_hook = NULL;
  cr_assert_eq (sc_pc_error (pc), 0);
  stamp (pc, f, 7);
  check (pc, f, 7);
  check (pc, f, 0);
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

static long
rss_kib (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets (line, sizeof line, f))
    if (sscanf (line, "VmRSS: %ld", &v) == 1)
      break;
  if (f)
    fclose (f);
  return v;
}

/* The pages held cost their own size, not twice it (4 KiB pages each
 * allocated 4 KiB-aligned on their own waste about a page apiece). */
Test (pagecache, the_memory_held_is_the_budget_not_twice_it)
{
  const uint64_t pages = 8192;  /* 32 MiB */
  long before = rss_kib ();
  int f;
  struct sc_pc *pc = new_cache (pages, &f);
  for (uint64_t pg = 0; pg < 2 * pages; pg++)
    stamp (pc, f, pg);
  long grown = rss_kib () - before;
  long budget = (long) (pages * SC_PC_PAGE / 1024);
  /* The frame table and the hash table take about 3% more. */
  cr_assert_leq (grown, budget + budget / 8, "RSS grew by %ld KiB for a "
                 "budget of %ld KiB", grown, budget);
  cr_assert_geq (grown, budget / 2);
  sc_pc_free (pc);
}
