/* Unit tests: the journal checkpoint a commit finds due is written in
 * the background when a runner is registered on the diff area
 * (sc_diff_set_ckpt_runner; the engine's volume thread is one), inline
 * when none is, and inline anyway once the journal has grown to twice
 * its limit.  An acknowledged write's copy is durable in the journal
 * whether or not the checkpoint has run.
 *
 * The limit is forced low with sc_ckpt_limit_hook; whether a checkpoint
 * ran is read from the newest superblock on disk (a checkpoint gives the
 * journal a new nonce). */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define NCHUNKS 256u
#define SIZE ((uint64_t) NCHUNKS * CS)
#define NO_RETRY 600000u        /* ms: no retry check in these tests */

static void
setup (void)
{
  uh_ckpt_setup (4);          /* several slices */
}

TestSuite (ckpt_background, .init = setup, .fini = uh_ckpt_teardown,
           .timeout = 120);

/* A runner that only counts its wakes: the test runs it by hand. */
static int wakes;

static void
count_wake (void *arg)
{
  (void) arg;
  __atomic_add_fetch (&wakes, 1, __ATOMIC_SEQ_CST);
}

static uint64_t
nonce (const char *diff)
{
  struct sc_sb_disk sb;
  cr_assert_geq (uh_sb_newest (diff, &sb), 0);
  return sb.journal_nonce;
}

/* A diff area with snapshot "a", some copies for it, and the limit set
 * just past the journal's length. */
static void
area_armed (struct uh_area *a)
{
  uh_area_create (a, SIZE, CS, 7);
  uh_snap (a->d, "a");
  for (uint64_t c = 0; c < 8; c++)
    uh_copy_chunk (a->d, c, 100 + c);
  uh_ckpt_limit_arm (uh_stats (a->d).journal_records);
}

Test (ckpt_background, a_runner_writes_it_not_the_commit)
{
  struct uh_area a;
  area_armed (&a);
  sc_diff_set_ckpt_runner (a.d, count_wake, NULL);
  uint64_t before = nonce (a.diff_path);
  uh_copy_chunk (a.d, 20, 120);         /* past the limit */
  cr_assert_eq (nonce (a.diff_path), before,
                "the commit wrote the checkpoint itself");
  cr_assert (sc_diff_ckpt_due (a.d));
  cr_assert_eq (wakes, 1, "the runner was woken %d times", wakes);
  uh_copy_chunk (a.d, 21, 121);         /* due already: no second wake */
  cr_assert_eq (wakes, 1);
  cr_assert_eq (nonce (a.diff_path), before);

  cr_assert_eq (sc_diff_ckpt_run (a.d), 1, "the runner wrote none");
  cr_assert_neq (nonce (a.diff_path), before);
  cr_assert (!sc_diff_ckpt_due (a.d));
  cr_assert_eq (sc_diff_ckpt_run (a.d), 0, "nothing due any more");
  /* The state came through the new journal. */
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  sc_ckpt_limit_hook = NULL;
  uh_area_reopen (&a, 0);
  for (uint64_t c = 0; c < 8; c++)
    uh_assert_sees_copy (a.d, "a", c, 100 + c);
  uh_assert_sees_copy (a.d, "a", 20, 120);
  uh_assert_sees_copy (a.d, "a", 21, 121);
  uh_area_free (&a);
}

Test (ckpt_background, without_a_runner_the_commit_writes_it)
{
  struct uh_area a;
  area_armed (&a);
  uint64_t before = nonce (a.diff_path);
  uh_copy_chunk (a.d, 20, 120);
  cr_assert_neq (nonce (a.diff_path), before, "no checkpoint was written");
  cr_assert (!sc_diff_ckpt_due (a.d));
  /* A runner registered, then gone: inline again. */
  sc_diff_set_ckpt_runner (a.d, count_wake, NULL);
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  uh_ckpt_limit_arm (uh_stats (a.d).journal_records);
  before = nonce (a.diff_path);
  uh_copy_chunk (a.d, 21, 121);
  cr_assert_neq (nonce (a.diff_path), before, "no checkpoint was written");
  cr_assert_eq (wakes, 0);
  uh_area_free (&a);
}

/* The runner never runs: the journal grows to twice its limit, and the
 * commit that finds it there writes the checkpoint. */
Test (ckpt_background, past_twice_the_limit_the_commit_writes_it)
{
  struct uh_area a;
  area_armed (&a);
  sc_diff_set_ckpt_runner (a.d, count_wake, NULL);
  uint64_t before = nonce (a.diff_path);
  uint64_t records = uh_stats (a.d).journal_records, last = records;
  uint64_t c = 20;
  for (; c < NCHUNKS && nonce (a.diff_path) == before; c++) {
    last = records;
    uh_copy_chunk (a.d, c, 100 + c);
    records = uh_stats (a.d).journal_records;
    if (nonce (a.diff_path) == before)
      cr_assert_leq (records, 2 * uh_ckpt_limit (),
                     "%lu records, none checkpointed",
                     (unsigned long) records);
  }
  cr_assert_neq (nonce (a.diff_path), before, "no checkpoint at all");
  cr_assert_gt (last, uh_ckpt_limit (),
                "the first commit past the limit wrote it");
  cr_assert_eq (wakes, 1);
  /* The runner, late, finds nothing left to do (as a real limit, the
   * fixed one stands above the journal the checkpoint left). */
  uh_ckpt_limit_arm (uh_stats (a.d).journal_records);
  cr_assert (sc_diff_ckpt_due (a.d));
  cr_assert_eq (sc_diff_ckpt_run (a.d), 0);
  sc_diff_set_ckpt_runner (a.d, NULL, NULL);
  sc_ckpt_limit_hook = NULL;
  uh_area_reopen (&a, 0);
  for (uint64_t k = 20; k < c; k++)
    uh_assert_sees_copy (a.d, "a", k, 100 + k);
  uh_area_free (&a);
}

/* ---- the volume's thread is the runner ------------------------------ */

static bool in_ckpt, release, crash_in_ckpt, acked;
static pthread_t ckpt_thread;

/* At the first drop of the lock of the checkpoint: say so and stay
 * there until released (or, once the write is acknowledged, die). */
static void
hold_stream (struct sc_diff *d)
{
  (void) d;
  if (__atomic_load_n (&in_ckpt, __ATOMIC_SEQ_CST))
    return;
  uh_ckpt_limit_disarm ();     /* one checkpoint */
  __atomic_store_n (&ckpt_thread, pthread_self (), __ATOMIC_SEQ_CST);
  __atomic_store_n (&in_ckpt, true, __ATOMIC_SEQ_CST);
  if (crash_in_ckpt) {
    (void) uh_wait_flag (&acked, 20000);
    _exit (0);                  /* the process dies mid-checkpoint */
  }
  (void) uh_wait_flag (&release, 20000);
}

/* Snapshot "a" with some copies; the limit armed just past the journal. */
static struct sc_snapshot_info
vol_history (struct uh_vol *t, uint8_t *img_a)
{
  memcpy (img_a, t->live, SIZE);
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_create (t->v, "a", NULL, &a), 0);
  for (uint64_t c = 0; c < 64; c++)
    cr_assert_eq (uh_vol_write (t, c, 200 + c), 0);
  struct sc_diff_stats st;
  sc_diff_stats (sc_volume_diff (t->v), &st);
  sc_ckpt_stream_hook = hold_stream;
  uh_ckpt_limit_arm (st.journal_records);
  return a;
}

/* The write whose commit finds the journal long returns while the
 * volume's thread streams the checkpoint. */
Test (ckpt_background, the_write_returns_while_the_volume_thread_writes_it)
{
  struct uh_vol t;
  uint8_t *img_a = malloc (SIZE);
  cr_assert_not_null (img_a);
  uh_vol_create (&t, SIZE, CS, 7, NO_RETRY);
  cr_assert_eq (sc_volume_start_retry (t.v), 0);
  struct sc_snapshot_info a = vol_history (&t, img_a);
  uint64_t before = nonce (t.diff);
  struct uh_vol_job w = { .t = &t, .chunk = 100, .tag = 300 };
  pthread_t th;
  pthread_create (&th, NULL, uh_vol_write_job, &w);
  bool returned = uh_wait_flag (&w.done, 5000);
  bool started = uh_wait_flag (&in_ckpt, 5000);
  pthread_t by = __atomic_load_n (&ckpt_thread, __ATOMIC_SEQ_CST);
  bool other = started && !pthread_equal (by, th);
  __atomic_store_n (&release, true, __ATOMIC_SEQ_CST);
  pthread_join (th, NULL);
  cr_assert (started, "no checkpoint started");
  cr_assert (returned, "the write waited for the checkpoint");
  cr_assert (other, "the checkpoint ran in the writer's thread");
  cr_assert_eq (w.r, 0);
  for (int i = 0; i < 10000 && nonce (t.diff) == before; i++)
    usleep (1000);
  cr_assert_neq (nonce (t.diff), before, "the checkpoint never finished");
  uh_vol_assert_reads (&t, a.id, img_a, "snapshot a after the checkpoint");
  uh_vol_assert_reads (&t, 0, t.live, "live after the checkpoint");
  sc_ckpt_stream_hook = NULL;
  uh_vol_close (&t);
  uh_vol_open (&t);
  uh_vol_assert_reads (&t, a.id, img_a, "snapshot a after reopen");
  uh_vol_assert_reads (&t, 0, t.live, "live after reopen");
  uh_vol_free (&t);
  free (img_a);
}

/* The process dies while the background checkpoint streams, after the
 * write that found it due was acknowledged: that write's copy is in the
 * old journal, which is still in force. */
Test (ckpt_background, an_acknowledged_write_survives_a_crash_mid_checkpoint)
{
  struct uh_vol t;
  uint8_t *img_a = malloc (SIZE);
  cr_assert_not_null (img_a);
  uh_vol_create (&t, SIZE, CS, 7, NO_RETRY);
  uh_vol_close (&t);
  int fds[2];
  cr_assert_eq (pipe (fds), 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    uh_vol_open (&t);
    if (sc_volume_start_retry (t.v) != 0)
      _exit (2);
    (void) vol_history (&t, img_a);
    uint64_t n = nonce (t.diff);        /* the journal in force */
    if (write (fds[1], &n, sizeof n) != sizeof n)
      _exit (2);
    crash_in_ckpt = true;
    if (uh_vol_write (&t, 100, 300) != 0)
      _exit (2);
    __atomic_store_n (&acked, true, __ATOMIC_SEQ_CST);
    sleep (20);
    _exit (3);                  /* the checkpoint never started */
  }
  close (fds[1]);
  uint64_t before = 0;
  cr_assert_eq (read (fds[0], &before, sizeof before), sizeof before);
  close (fds[0]);
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0,
             "child: %d", WEXITSTATUS (status));
  cr_assert_eq (nonce (t.diff), before,
                "the superblock switched to a checkpoint not finished");
  /* The child's history, here. */
  memcpy (img_a, t.live, SIZE);
  for (uint64_t c = 0; c < 64; c++)
    uh_pattern (t.live + c * CS, CS, 200 + c, 0);
  uh_pattern (t.live + 100 * CS, CS, 300, 0);
  uh_vol_open (&t);
  struct sc_snapshot_info a;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &a), 0);
  cr_assert_eq (a.invalid_reason, SC_VALID);
  uh_vol_assert_reads (&t, a.id, img_a, "snapshot a after the crash");
  uh_vol_assert_reads (&t, 0, t.live, "live after the crash");
  uh_vol_free (&t);
  free (img_a);
}
