/* Unit tests: the backup's writer thread (tools/backup-writer.c): every
 * write and zero reaches the target's sink in order with the data as it
 * was when handed over; flush waits for all of it; the target's error
 * comes back from a later call and from flush, with its offset, and
 * nothing is written after it. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tools/backup-writer.h"

#define MAXOPS 4096

/* A target that records what it is asked, slowly. */
struct mock {
  struct { uint64_t off, len; bool zero; uint8_t first; } ops[MAXOPS];
  unsigned n;
  uint64_t fail_at;             /* an offset whose write fails (0: none) */
  unsigned delay_us;
};

static int
mock_write (void *opaque, const void *buf, size_t len, uint64_t off)
{
  struct mock *m = opaque;
  if (m->delay_us)
    usleep (m->delay_us);
  if (m->fail_at && off == m->fail_at)
    return -ENOSPC;
  cr_assert_lt (m->n, MAXOPS);
  for (size_t i = 0; i < len; i++)
    cr_assert_eq (((const uint8_t *) buf)[i], (uint8_t) (off + i),
                  "byte %zu of the write at %lu", i, (unsigned long) off);
  m->ops[m->n].off = off;
  m->ops[m->n].len = len;
  m->ops[m->n].zero = false;
  m->n++;
  return 0;
}

static int
mock_zero (void *opaque, uint64_t off, uint64_t len)
{
  struct mock *m = opaque;
  cr_assert_lt (m->n, MAXOPS);
  m->ops[m->n].off = off;
  m->ops[m->n].len = len;
  m->ops[m->n].zero = true;
  m->n++;
  return 0;
}

static struct sc_backup_sink
mock_sink (struct mock *m)
{
  return (struct sc_backup_sink) { .opaque = m, .write = mock_write,
                                   .zero = mock_zero, .name = "mock" };
}

static void
pattern (uint8_t *buf, size_t len, uint64_t off)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t) (off + i);
}

Test (backup_writer, everything_arrives_in_order_with_its_data)
{
  static struct mock m;
  struct sc_backup_sink inner = mock_sink (&m), s;
  struct sc_backup_writer *w;
  uint8_t buf[1000];
  char err[256];

  m.delay_us = 50;
  cr_assert_eq (sc_backup_writer_start (&inner, 3, sizeof buf, &w), 0);
  sc_backup_writer_sink (w, &s);
  cr_assert_str_eq (s.name, "mock");
  for (unsigned i = 0; i < 200; i++) {
    uint64_t off = (uint64_t) i * 1000;
    if (i % 7 == 3)
      cr_assert_eq (s.zero (s.opaque, off, 1000), 0);
    else {
      pattern (buf, sizeof buf, off);
      cr_assert_eq (s.write (s.opaque, buf, sizeof buf, off), 0);
      memset (buf, 0xee, sizeof buf);   /* the writer has its own copy */
    }
  }
  cr_assert_eq (sc_backup_writer_flush (w, err, sizeof err), 0);
  cr_assert_eq (m.n, 200);
  for (unsigned i = 0; i < 200; i++) {
    cr_assert_eq (m.ops[i].off, (uint64_t) i * 1000);
    cr_assert_eq (m.ops[i].len, 1000);
    cr_assert_eq (m.ops[i].zero, i % 7 == 3);
  }
  cr_assert_eq (sc_backup_writer_stop (w, err, sizeof err), 0);
}

Test (backup_writer, a_write_larger_than_a_buffer_comes_after_the_others)
{
  static struct mock m;
  struct sc_backup_sink inner = mock_sink (&m), s;
  struct sc_backup_writer *w;
  uint8_t buf[4096];
  char err[256];

  m.delay_us = 1000;
  cr_assert_eq (sc_backup_writer_start (&inner, 2, 1024, &w), 0);
  sc_backup_writer_sink (w, &s);
  pattern (buf, 1024, 0);
  cr_assert_eq (s.write (s.opaque, buf, 1024, 0), 0);
  pattern (buf, 4096, 1024);
  cr_assert_eq (s.write (s.opaque, buf, 4096, 1024), 0);
  cr_assert_eq (m.n, 2);        /* written before it returned */
  cr_assert_eq (m.ops[0].off, 0);
  cr_assert_eq (m.ops[1].off, 1024);
  cr_assert_eq (m.ops[1].len, 4096);
  cr_assert_eq (sc_backup_writer_stop (w, err, sizeof err), 0);
}

Test (backup_writer, an_error_is_reported_with_its_offset_and_stops_the_writes)
{
  static struct mock m;
  struct sc_backup_sink inner = mock_sink (&m), s;
  struct sc_backup_writer *w;
  uint8_t buf[100];
  char err[256];
  int r = 0;
  unsigned i;

  m.fail_at = 500;
  cr_assert_eq (sc_backup_writer_start (&inner, 2, sizeof buf, &w), 0);
  sc_backup_writer_sink (w, &s);
  for (i = 0; i < 100 && r == 0; i++) {
    pattern (buf, sizeof buf, i * 100);
    r = s.write (s.opaque, buf, sizeof buf, i * 100);
  }
  cr_assert_eq (r, -ENOSPC, "a later write says so (got %d)", r);
  cr_assert_eq (s.zero (s.opaque, 20000, 10), -ENOSPC);
  cr_assert_eq (sc_backup_writer_flush (w, err, sizeof err), -ENOSPC);
  cr_assert (strstr (err, "cannot write mock at 500: ") != NULL, "%s", err);
  cr_assert_eq (m.n, 5, "nothing after the error: %u writes", m.n);
  for (unsigned k = 0; k < m.n; k++)
    cr_assert_eq (m.ops[k].off, k * 100);
  err[0] = 0;
  cr_assert_eq (sc_backup_writer_stop (w, err, sizeof err), -ENOSPC);
  cr_assert (strstr (err, "at 500") != NULL, "%s", err);
}

Test (backup_writer, stop_writes_what_is_queued)
{
  static struct mock m;
  struct sc_backup_sink inner = mock_sink (&m), s;
  struct sc_backup_writer *w;
  uint8_t buf[64];
  char err[256];

  m.delay_us = 2000;
  cr_assert_eq (sc_backup_writer_start (&inner, 8, sizeof buf, &w), 0);
  sc_backup_writer_sink (w, &s);
  for (unsigned i = 0; i < 8; i++) {
    pattern (buf, sizeof buf, i * 64);
    cr_assert_eq (s.write (s.opaque, buf, sizeof buf, i * 64), 0);
  }
  cr_assert_eq (sc_backup_writer_stop (w, err, sizeof err), 0);
  cr_assert_eq (m.n, 8);
  cr_assert_eq (sc_backup_writer_stop (NULL, err, sizeof err), 0);
}
