/* Unit tests (review of the parking write gate): what a hold may do while
 * a live write is parked for its copies' group commit, still holding its
 * chunk range.
 *
 * A write that parks keeps its chunk range and waits at the gate while a
 * hold has it sealed.  Whatever the hold's owner does meanwhile must not
 * wait for that range, directly or through someone who does: otherwise
 * the hold's owner never gets to release it, and the hold, which must be
 * bounded (its deadline enforced by the control connection's thread),
 * holds every write forever. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "engine/control.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096
#define SIZE (64 * CS)

static void
park_teardown (void)
{
  uh_syncs_go ();
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (park, .init = uh_setup, .fini = park_teardown);

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* A volume of SIZE with the snapshot "base" and its clone "cl" (*cl). */
static struct sc_volume *
park_open (struct sc_snapshot_info *cl)
{
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, SIZE, 21);
  struct sc_volume_config cfg = {
    .origin_path = origin, .diff_path = diff, .chunk_size = CS,
  };
  struct sc_volume *v;
  char err[512] = "";
  cr_assert_eq (sc_volume_open (&cfg, &v, err, sizeof err), 0, "%s", err);
  free (origin);
  free (diff);
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_create (v, "base", NULL, &s), 0);
  cr_assert_eq (sc_volume_clone_create (v, "base", "cl", cl, err,
                                        sizeof err), 0, "%s", err);
  return v;
}

/* ---- threads --------------------------------------------------------- */

struct io_arg {
  struct sc_volume *v;
  uint64_t id;                  /* clone, for clone_read */
  uint64_t off;
  int r;
  bool done;
};

static void *
write_thread (void *p)
{
  struct io_arg *a = p;
  uint8_t buf[CS];
  memset (buf, 0xcd, sizeof buf);
  a->r = sc_volume_write (a->v, buf, CS, a->off, 0);
  __atomic_store_n (&a->done, true, __ATOMIC_RELEASE);
  return NULL;
}

static void *
clone_read_thread (void *p)
{
  struct io_arg *a = p;
  uint8_t buf[CS];
  a->r = sc_volume_clone_read (a->v, a->id, buf, CS, a->off);
  __atomic_store_n (&a->done, true, __ATOMIC_RELEASE);
  return NULL;
}

struct serve_arg {
  struct sc_volume *v;
  int fd;
};

static void *
serve_thread (void *p)
{
  struct serve_arg *a = p;
  sc_control_serve (a->v, a->fd, 0);
  return NULL;
}

/* Read one reply (data lines, then OK or ERR) from `fd`, waiting at most
 * `ms` in all: true once the OK or ERR line came, its first word in
 * `last`. */
static bool
read_reply (int fd, long ms, char *last, size_t lastlen)
{
  char line[1024];
  size_t n = 0;
  struct timespec t0;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    long spent = (now.tv_sec - t0.tv_sec) * 1000 +
                 (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (spent >= ms)
      return false;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    if (poll (&pfd, 1, (int) (ms - spent)) <= 0)
      continue;
    char c;
    if (read (fd, &c, 1) != 1)
      return false;
    if (c != '\n') {
      if (n < sizeof line - 1)
        line[n++] = c;
      continue;
    }
    line[n] = '\0';
    n = 0;
    if (strncmp (line, "OK", 2) == 0 || strncmp (line, "ERR", 3) == 0) {
      size_t k = strnlen (line, lastlen - 1);
      memcpy (last, line, k);
      last[k] = '\0';
      return true;
    }
  }
}

static void
send_line (int fd, const char *s)
{
  size_t len = strlen (s);
  cr_assert_eq (write (fd, s, len), (ssize_t) len);
}

/* ---- the hold's owner deletes a clone while a write is parked ------- */

/* A clone read of a chunk the clone never wrote reads its base's view:
 * it pins the clone (sc_diff_clone_get) and then takes the live chunk
 * range, where it waits for the parked write.  The parked write waits
 * for the seal to end.  The control connection that holds the writes
 * deletes the clone: clone_delete waits for the clone's users, i.e. for
 * that read.  Nobody can move: the connection's thread never comes back
 * to its loop, so neither RELEASE nor the hold's deadline is ever seen,
 * and every live write of the volume is held for good.  With the rwlock
 * the hold drained the write first, and the read and the delete went
 * through. */
Test (park, a_hold_owner_deleting_a_clone_is_not_stuck_behind_a_parked_write,
      .timeout = 60)
{
  struct sc_snapshot_info cl;
  struct sc_volume *v = park_open (&cl);

  /* A live write of chunk 5 copies for "base" and stops in its commit:
   * parked, with chunk 5 locked. */
  uh_syncs_stop (sc_diff_fd (sc_volume_diff (v)));
  struct io_arg w = { .v = v, .off = 5 * CS, .r = -1 };
  pthread_t wt, rt, st;
  cr_assert_eq (pthread_create (&wt, NULL, write_thread, &w), 0);
  cr_assert (uh_syncs_wait_stopped (), "the write never reached its commit");

  /* A read of the clone's chunk 5 pins the clone, then waits for the
   * live range. */
  struct io_arg rd = { .v = v, .id = cl.id, .off = 5 * CS, .r = -1 };
  cr_assert_eq (pthread_create (&rt, NULL, clone_read_thread, &rd), 0);
  sleep_ms (300);

  /* A control connection holds the writes (a 3 s hold) ... */
  int sv[2];
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct serve_arg sa = { v, sv[0] };
  cr_assert_eq (pthread_create (&st, NULL, serve_thread, &sa), 0);
  char last[256] = "";
  send_line (sv[1], "HOLD timeout=3000\n");
  bool held = read_reply (sv[1], 1500, last, sizeof last);
  uh_syncs_go ();              /* (the rwlock's hold waited for it) */
  if (!held)
    held = read_reply (sv[1], 10000, last, sizeof last);
  cr_assert (held, "no answer to HOLD");
  cr_assert_str_eq (last, "OK", "HOLD: %s", last);

  /* ... and deletes the clone under it. */
  send_line (sv[1], "DELETE cl\n");
  bool answered = read_reply (sv[1], 8000, last, sizeof last);
  cr_assert (answered, "DELETE under the hold never answered (8 s, past "
             "the hold's 3 s deadline): the clone's read waits for the "
             "parked write's range, the parked write for the seal, the "
             "hold's owner for the clone's read; the write (done=%d) and "
             "every later write are held for good",
             __atomic_load_n (&w.done, __ATOMIC_ACQUIRE));
  send_line (sv[1], "RELEASE\n");
  (void) read_reply (sv[1], 5000, last, sizeof last);
  close (sv[1]);
  pthread_join (st, NULL);
  close (sv[0]);
  pthread_join (wt, NULL);
  pthread_join (rt, NULL);
  cr_assert_eq (w.r, 0);
  sc_io_fault_hook = NULL;
  sc_volume_close (v);
}

/* ---- a clone's FUA write and a live write of the same chunk --------- */

static void *
clone_fua_write_thread (void *p)
{
  struct io_arg *a = p;
  uint8_t buf[CS];
  memset (buf, 0xab, sizeof buf);
  a->r = sc_volume_clone_write (a->v, a->id, buf, CS, a->off, SC_FUA);
  __atomic_store_n (&a->done, true, __ATOMIC_RELEASE);
  return NULL;
}

/* A clone's FUA write waits in its commit (an fdatasync of the diff
 * area).  A live write of the same chunk index copies for the base and
 * would park for its own commit; a hold then drains nothing that waits
 * for the disk (the point of parking).  If the clone's write holds the
 * live chunk range through its commit, the live write waits for that
 * range inside the gate, and the hold's drain waits for the clone's
 * fdatasync: the hold again lasts as long as the disk's slowest sync. */
Test (park, a_hold_does_not_wait_for_a_clone_writes_commit, .timeout = 60)
{
  struct sc_snapshot_info cl;
  struct sc_volume *v = park_open (&cl);

  uh_held_reset ();
  uh_syncs_stop (sc_diff_fd (sc_volume_diff (v)));
  struct io_arg cw = { .v = v, .id = cl.id, .off = 5 * CS, .r = -1 };
  struct io_arg w = { .v = v, .off = 5 * CS, .r = -1 };
  pthread_t cwt, wt, ht;
  cr_assert_eq (pthread_create (&cwt, NULL, clone_fua_write_thread, &cw), 0);
  bool stopped = uh_syncs_wait_stopped ();
  cr_assert_eq (pthread_create (&wt, NULL, write_thread, &w), 0);
  sleep_ms (300);               /* the live write parks (or waits) */
  cr_assert_eq (pthread_create (&ht, NULL, uh_hold_thread, v), 0);
  bool held = stopped && uh_wait_held (5000);
  uh_syncs_go ();
  pthread_join (ht, NULL);
  pthread_join (wt, NULL);
  pthread_join (cwt, NULL);
  cr_assert (stopped, "the clone's write never reached its commit");
  cr_assert (held, "the hold waited 5 s for a clone write's fdatasync: "
             "the live write of its chunk waited inside the gate for the "
             "live range the clone's write held through its commit");
  cr_assert_eq (cw.r, 0);
  cr_assert_eq (w.r, 0);

  uint8_t got[CS], want[CS];
  memset (want, 0xab, sizeof want);
  cr_assert_eq (sc_volume_clone_read (v, cl.id, got, CS, 5 * CS), 0);
  cr_assert_arr_eq (got, want, CS, "the clone's chunk 5");
  uh_pattern (want, sizeof want, 21, 5 * CS);
  cr_assert_eq (sc_volume_snapshot_read (v, cl.base_id, got, CS, 5 * CS), 0);
  cr_assert_arr_eq (got, want, CS, "the base's chunk 5");
  sc_io_fault_hook = NULL;
  sc_volume_close (v);
}

/* ---- a clone's own chunks during a hold ------------------------------ */

static void *
clone_write_thread (void *p)
{
  struct io_arg *a = p;
  uint8_t buf[CS];
  memset (buf, 0xab, sizeof buf);
  a->r = sc_volume_clone_write (a->v, a->id, buf, CS, a->off, 0);
  __atomic_store_n (&a->done, true, __ATOMIC_RELEASE);
  return NULL;
}

static bool
wait_done (struct io_arg *a, long ms)
{
  for (long i = 0; i < ms / 10; i++) {
    if (__atomic_load_n (&a->done, __ATOMIC_ACQUIRE))
      return true;
    sleep_ms (10);
  }
  return __atomic_load_n (&a->done, __ATOMIC_ACQUIRE);
}

/* A whole-chunk write of a clone reads nothing of its base: it needs no
 * live chunk range.  While a hold has the gate sealed, a live write of
 * the same chunk index parked for its commit keeps that range until the
 * hold ends; the clone's write must not wait for the hold (a clone is a
 * volume of its own, which a snapshot of the live one does not freeze),
 * nor may the clone's reads of its own chunks. */
Test (park, a_clone_write_of_a_whole_chunk_does_not_wait_for_a_hold,
      .timeout = 60)
{
  struct sc_snapshot_info cl;
  struct sc_volume *v = park_open (&cl);

  uh_syncs_stop (sc_diff_fd (sc_volume_diff (v)));
  struct io_arg w = { .v = v, .off = 5 * CS, .r = -1 };
  pthread_t wt, ct;
  cr_assert_eq (pthread_create (&wt, NULL, write_thread, &w), 0);
  cr_assert (uh_syncs_wait_stopped (), "the write never reached its commit");
  cr_assert_eq (sc_volume_create_begin (v), 0);
  cr_assert_eq (sc_volume_hold (v), 0);
  uh_syncs_go ();              /* the write's commit ends; it waits */
  sleep_ms (200);

  struct io_arg cw = { .v = v, .id = cl.id, .off = 5 * CS, .r = -1 };
  cr_assert_eq (pthread_create (&ct, NULL, clone_write_thread, &cw), 0);
  bool done = wait_done (&cw, 3000);
  sc_volume_release (v);
  sc_volume_create_end (v);
  pthread_join (ct, NULL);
  pthread_join (wt, NULL);
  cr_assert (done, "a clone's whole-chunk write waited 3 s for the live "
             "volume's hold (a parked live write held chunk 5's range)");
  cr_assert_eq (cw.r, 0);
  cr_assert_eq (w.r, 0);
  sc_io_fault_hook = NULL;
  sc_volume_close (v);
}
