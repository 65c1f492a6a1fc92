/* The creation hold's unit tests' volume and hooks (unit-hold-vol.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "tests/unit-helpers.h"
#include "tests/unit-hold-vol.h"

int slow_fd = -1;        /* the diff area's, while delayed */
int fail_fd = -1;        /* the diff area's, while failing */

/* A diff area whose writes and syncs are slow (or fail): the journal's
 * commit is the only diff-area I/O of a creation. */
int
diff_io_hook (const struct sc_io_req *req)
{
  int fd = __atomic_load_n (&slow_fd, __ATOMIC_ACQUIRE);
  if (fd >= 0 && req->fd == fd &&
      (req->op == SC_IO_WRITE || req->op == SC_IO_FDATASYNC)) {
    struct timespec ts = { 0, DELAY_NS };
    nanosleep (&ts, NULL);
  }
  fd = __atomic_load_n (&fail_fd, __ATOMIC_ACQUIRE);
  if (fd >= 0 && req->fd == fd &&
      (req->op == SC_IO_WRITE || req->op == SC_IO_FDATASYNC))
    return -EIO;
  return 0;
}

void
hold_teardown (void)
{
  uh_syncs_go ();
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

void
vol_open (struct vol *t)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff, .chunk_size = CS,
  };
  char err[512] = "";
  int r = sc_volume_open (&cfg, &t->v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %d %s", r, err);
}

void
vol_create (struct vol *t)
{
  t->origin = uh_path ("origin");
  t->diff = uh_path ("diff");
  uh_make_file (t->origin, SIZE, 21);
  vol_open (t);
}

void
vol_free (struct vol *t)
{
  sc_io_fault_hook = NULL;
  slow_fd = fail_fd = -1;
  if (t->v)
    sc_volume_close (t->v);
  free (t->origin);
  free (t->diff);
}

void
assert_durable (struct vol *t, const char *name)
{
  sc_io_fault_hook = NULL;
  slow_fd = -1;
  sc_volume_close (t->v);
  vol_open (t);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_lookup (t->v, name, &s), 0,
                "snapshot %s is not on disk", name);
}

void *
write_thread (void *p)
{
  struct write_arg *a = p;
  uint8_t buf[CS];
  memset (buf, a->byte, sizeof buf);
  a->r = sc_volume_write (a->t->v, buf, CS, a->off, 0);
  return NULL;
}

void
assert_chunk (struct vol *t, const char *snap, uint64_t off,
              const uint8_t *want)
{
  uint8_t got[CS];
  if (snap) {
    struct sc_snapshot_info s;
    cr_assert_eq (sc_volume_snapshot_lookup (t->v, snap, &s), 0);
    cr_assert_eq (sc_volume_snapshot_read (t->v, s.id, got, CS, off), 0);
  }
  else
    cr_assert_eq (sc_volume_read (t->v, got, CS, off), 0);
  cr_assert_arr_eq (got, want, CS, "%s at %" PRIu64 ": wrong data",
                    snap ? snap : "the live volume", off);
}
