/* Unit tests of lib/guardian.c: the generic guardian that holds an
 * in-box writer's freeze (a real forked guardian, with operations that
 * log to a file, since the guardian keeps no descriptor of ours), and a
 * program run to a deadline. */
#include <config.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/guardian.h"

static char logpath[64];

static void
setup (void)
{
  snprintf (logpath, sizeof logpath, "/tmp/unit-guardian.%d", (int) getpid ());
  unlink (logpath);
}

static void
teardown (void)
{
  unlink (logpath);
}

static void
note (const char *what)
{
  FILE *f = fopen (logpath, "a");
  if (f) {
    fprintf (f, "%s\n", what);
    fclose (f);
  }
}

static char *
logged (void)
{
  static char buf[256];
  FILE *f = fopen (logpath, "r");
  size_t n = f ? fread (buf, 1, sizeof buf - 1, f) : 0;

  if (f)
    fclose (f);
  buf[n] = '\0';
  return buf;
}

static int
freeze_ok (void *arg, uint64_t deadline, char *why, size_t len)
{
  (void) arg;
  (void) deadline;
  note ("freeze");
  snprintf (why, len, "all frozen");
  return 0;
}

static int
freeze_fails (void *arg, uint64_t deadline, char *why, size_t len)
{
  (void) arg;
  (void) deadline;
  note ("freeze");
  snprintf (why, len, "the agent said no");
  return -EIO;
}

static int
thaw_ok (void *arg, uint64_t deadline, char *why, size_t len)
{
  (void) arg;
  (void) deadline;
  note ("thaw");
  snprintf (why, len, "all thawed");
  return 0;
}

static int
thaw_fails (void *arg, uint64_t deadline, char *why, size_t len)
{
  (void) arg;
  (void) deadline;
  note ("thaw");
  snprintf (why, len, "cannot thaw");
  return -EPERM;
}

/* Sleep `ms` milliseconds of the monotonic clock, whatever wakes usleep
 * early (a signal): the frozen times asserted below count on it. */
static void
sleep_ms (unsigned ms)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (long) (ms % 1000) * 1000000;
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000;
  }
  while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
    ;
}

TestSuite (guardian, .init = setup, .fini = teardown);

Test (guardian, freeze_hold_thaw)
{
  struct sc_guardian g = SC_GUARDIAN_INIT;
  struct sc_guardian_ops ops = { freeze_ok, thaw_ok, NULL };
  char why[SC_GUARDIAN_WHY_MAX + 64];
  uint64_t ns;

  cr_assert_eq (sc_guardian_start (&g, &ops, 5000, 60000, why, sizeof why), 0);
  cr_assert (strncmp (why, "froze in ", 9) == 0 && strstr (why, ": all frozen"),
             "%s", why);
  cr_assert_str_eq (logged (), "freeze\n");
  sleep_ms (200);
  cr_assert_str_eq (logged (), "freeze\n", "thawed before it was told");
  cr_assert_eq (sc_guardian_stop (&g, 5000, &ns, why, sizeof why), 0);
  cr_assert_str_eq (logged (), "freeze\nthaw\n");
  cr_assert (ns >= 200000000u && ns < 5000000000u, "frozen_ns %lu",
             (unsigned long) ns);
  cr_assert (strncmp (why, "frozen for ", 11) == 0 &&
             strstr (why, " ms: all thawed"), "%s", why);
  cr_assert_eq (g.pid, 0);
  /* A second stop: nothing held, nothing to do. */
  cr_assert_eq (sc_guardian_stop (&g, 5000, &ns, why, sizeof why), 0);
  cr_assert_eq (ns, 0);
}

Test (guardian, failed_freeze_is_thawed)
{
  struct sc_guardian g = SC_GUARDIAN_INIT;
  struct sc_guardian_ops ops = { freeze_fails, thaw_ok, NULL };
  char why[SC_GUARDIAN_WHY_MAX + 64];

  cr_assert_eq (sc_guardian_start (&g, &ops, 5000, 60000, why, sizeof why),
                -EIO);
  cr_assert_str_eq (why, "the agent said no");
  cr_assert_str_eq (logged (), "freeze\nthaw\n");
  cr_assert_eq (g.pid, 0);
}

Test (guardian, window_ends_first)
{
  struct sc_guardian g = SC_GUARDIAN_INIT;
  struct sc_guardian_ops ops = { freeze_ok, thaw_ok, NULL };
  char why[SC_GUARDIAN_WHY_MAX + 64];
  uint64_t ns;

  cr_assert_eq (sc_guardian_start (&g, &ops, 5000, 100, why, sizeof why), 0);
  sleep_ms (400);
  /* Thawed by itself at the window's end, before it was told. */
  cr_assert_str_eq (logged (), "freeze\nthaw\n");
  cr_assert_eq (sc_guardian_stop (&g, 5000, &ns, why, sizeof why), -ETIMEDOUT);
  cr_assert (strstr (why, "the freeze window ended before thaw"), "%s", why);
  /* The window is timed from before the freeze call, the frozen time
   * from its return: the freeze's own time (slow under the sanitizers)
   * comes off the 100 ms. */
  cr_assert (ns >= 50000000u && ns < 400000000u, "frozen_ns %lu",
             (unsigned long) ns);
}

Test (guardian, closed_pipe_thaws)
{
  struct sc_guardian g = SC_GUARDIAN_INIT;
  struct sc_guardian_ops ops = { freeze_ok, thaw_ok, NULL };
  char why[SC_GUARDIAN_WHY_MAX + 64];

  /* As when the requester dies: its end of the command pipe closes. */
  cr_assert_eq (sc_guardian_start (&g, &ops, 5000, 60000, why, sizeof why), 0);
  sc_guardian_close (&g);
  for (int i = 0; i < 100 && strcmp (logged (), "freeze\nthaw\n"); i++)
    usleep (20000);
  cr_assert_str_eq (logged (), "freeze\nthaw\n");
}

Test (guardian, thaw_error)
{
  struct sc_guardian g = SC_GUARDIAN_INIT;
  struct sc_guardian_ops ops = { freeze_ok, thaw_fails, NULL };
  char why[SC_GUARDIAN_WHY_MAX + 64];
  uint64_t ns;

  cr_assert_eq (sc_guardian_start (&g, &ops, 5000, 60000, why, sizeof why), 0);
  cr_assert_eq (sc_guardian_stop (&g, 5000, &ns, why, sizeof why), -EPERM);
  cr_assert_str_eq (why, "cannot thaw");
}

Test (guardian, run)
{
  char out[64];
  int st;
  char *ok[] = { "sh", "-c", "echo one; echo two >&2", NULL };
  char *bad[] = { "sh", "-c", "echo failed; exit 3", NULL };
  char *slow[] = { "sh", "-c", "echo started; exec sleep 10", NULL };
  char *none[] = { "no-such-program-here", NULL };

  cr_assert_eq (sc_guardian_run (ok, sc_guardian_now_ms () + 5000, &st, out,
                                 sizeof out), 0);
  cr_assert_str_eq (out, "one two");
  cr_assert_eq (sc_guardian_run (bad, sc_guardian_now_ms () + 5000, &st, out,
                                 sizeof out), -ECHILD);
  cr_assert_str_eq (out, "failed");
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 3);
  uint64_t t0 = sc_guardian_now_ms ();
  cr_assert_eq (sc_guardian_run (slow, t0 + 200, &st, out, sizeof out),
                -ETIMEDOUT);
  cr_assert (sc_guardian_now_ms () - t0 < 3000);
  cr_assert_str_eq (out, "started");
  cr_assert_eq (sc_guardian_run (none, sc_guardian_now_ms () + 5000, &st, out,
                                 sizeof out), -ENOENT);
  cr_assert (strstr (out, "no-such-program-here"), "%s", out);
}
