/* Unit tests: an online journal checkpoint streams the state without
 * holding writers: reads and rewrites go on while it runs, a change of
 * the state waits for its end, the journal it writes replays to the same
 * state, and a crash in the middle of it leaves the old journal whole.
 *
 * The checkpoint is forced with sc_ckpt_limit_hook and held in the middle
 * of its stream with sc_ckpt_stream_hook (called each time it has dropped
 * the diff area's lock); sc_ckpt_strict makes a change of the state while
 * it runs (a path that does not wait) abort the test. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define NCHUNKS 1024u
#define SIZE ((uint64_t) NCHUNKS * CS)

static void
setup (void)
{
  uh_ckpt_setup (16);         /* many slices */
}

TestSuite (ckpt_online, .init = setup, .fini = uh_ckpt_teardown,
           .timeout = 120);

/* The state a journal replays to, in words we can compare: every
 * snapshot's identity, and where each chunk of each snapshot is read. */
struct state {
  struct sc_snapshot_info *snaps;
  size_t n;
  enum sc_where *where;         /* n * NCHUNKS */
  uint64_t *off;
};

static void
state_get (struct uh_vol *t, struct state *s)
{
  struct sc_diff *d = sc_volume_diff (t->v);
  cr_assert_eq (sc_diff_snapshot_list (d, &s->snaps, &s->n), 0);
  s->where = calloc (s->n * NCHUNKS + 1, sizeof *s->where);
  s->off = calloc (s->n * NCHUNKS + 1, sizeof *s->off);
  cr_assert (s->where && s->off);
  for (size_t i = 0; i < s->n; i++)
    for (uint64_t c = 0; c < NCHUNKS; c++)
      s->where[i * NCHUNKS + c] =
        sc_diff_resolve (d, s->snaps[i].epoch, c, &s->off[i * NCHUNKS + c]);
}

/* (skip, skip2: chunks whose copy one of them has and the other not) */
static void
state_same (const struct state *a, const struct state *b, uint64_t skip,
            uint64_t skip2)
{
  cr_assert_eq (a->n, b->n, "%zu snapshots, then %zu", a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    cr_assert_eq (a->snaps[i].id, b->snaps[i].id);
    cr_assert_eq (a->snaps[i].epoch, b->snaps[i].epoch);
    cr_assert_str_eq (a->snaps[i].name, b->snaps[i].name);
    cr_assert_eq (a->snaps[i].invalid_reason, b->snaps[i].invalid_reason);
    for (uint64_t c = 0; c < NCHUNKS; c++) {
      size_t k = i * NCHUNKS + c;
      if (c == skip || c == skip2)
        continue;
      cr_assert_eq (a->where[k], b->where[k], "snapshot %s chunk %lu",
                    a->snaps[i].name, (unsigned long) c);
      if (a->where[k] == SC_WHERE_DIFF)
        cr_assert_eq (a->off[k], b->off[k], "snapshot %s chunk %lu",
                      a->snaps[i].name, (unsigned long) c);
    }
  }
}

static void
state_free (struct state *s)
{
  free (s->snaps);
  free (s->where);
  free (s->off);
}

/* ---- holding a checkpoint in the middle of its stream ------------------ */

static bool armed, in_ckpt, release, crash_in_ckpt;
static int stream_calls;

static uint64_t
limit_when_armed (uint64_t live)
{
  (void) live;
  return __atomic_load_n (&armed, __ATOMIC_SEQ_CST) ? 0 : UINT64_MAX;
}

/* At the third drop of the lock (copies streamed, tail not all written):
 * say so, and stay there until released (or crash there). */
static void
hold_stream (struct sc_diff *d)
{
  (void) d;
  if (++stream_calls != 3)
    return;
  __atomic_store_n (&armed, false, __ATOMIC_SEQ_CST);  /* one checkpoint */
  if (crash_in_ckpt)
    _exit (0);                  /* the process dies mid-checkpoint */
  __atomic_store_n (&in_ckpt, true, __ATOMIC_SEQ_CST);
  (void) uh_wait_flag (&release, 20000);
}

static void *
delete_job (void *opaque)
{
  struct uh_vol_job *j = opaque;
  j->r = sc_volume_snapshot_delete (j->t->v, "tmp");
  __atomic_store_n (&j->done, true, __ATOMIC_SEQ_CST);
  return NULL;
}

/* Snapshots a and b, copies for both (some chunks twice). */
static void
history (struct uh_vol *t, uint8_t *img_a, uint8_t *img_b)
{
  memcpy (img_a, t->live, SIZE);
  uh_vol_snap (t, "a");
  for (uint64_t c = 0; c < 600; c++)
    cr_assert_eq (uh_vol_write (t, c, 100 + c), 0);
  memcpy (img_b, t->live, SIZE);
  uh_vol_snap (t, "b");
  for (uint64_t c = 0; c < 300; c += 3)
    cr_assert_eq (uh_vol_write (t, c, 2000 + c), 0);
  uh_vol_snap (t, "tmp");
}

Test (ckpt_online, reads_and_rewrites_go_on_while_changes_wait)
{
  struct uh_vol t;
  uint8_t *img_a = malloc (SIZE), *img_b = malloc (SIZE);
  cr_assert (img_a && img_b);
  uh_vol_create (&t, SIZE, CS, 7, 0);
  struct sc_snapshot_info a = uh_vol_snap (&t, "base");
  (void) a;
  history (&t, img_a, img_b);
  struct sc_snapshot_info sa, sb;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &sa), 0);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "b", &sb), 0);
  /* Chunk 5 is copied in tmp's epoch, then a rewrite needs no copy. */
  cr_assert_eq (uh_vol_write (&t, 5, 3000), 0);
  struct sc_sb_disk before;
  sc_volume_flush (t.v);
  uh_sb_newest (t.diff, &before);

  sc_ckpt_stream_hook = hold_stream;
  sc_ckpt_limit_hook = limit_when_armed;
  __atomic_store_n (&armed, true, __ATOMIC_SEQ_CST);
  /* A first write: its commit starts the checkpoint, in its thread. */
  struct uh_vol_job first = { .t = &t, .chunk = 700, .tag = 3001 };
  pthread_t th_first;
  pthread_create (&th_first, NULL, uh_vol_write_job, &first);
  cr_assert (uh_wait_flag (&in_ckpt, 20000), "no checkpoint started");

  /* While it streams: a rewrite (no copy) completes, reads are served. */
  struct uh_vol_job re = { .t = &t, .chunk = 5, .tag = 3002 };
  pthread_t th_re;
  pthread_create (&th_re, NULL, uh_vol_write_job, &re);
  bool rewrote = uh_wait_flag (&re.done, 5000);
  /* A first write and a delete must wait for the checkpoint's end. */
  struct uh_vol_job second = { .t = &t, .chunk = 800, .tag = 3003 };
  struct uh_vol_job del = { .t = &t };
  pthread_t th_second, th_del;
  pthread_create (&th_second, NULL, uh_vol_write_job, &second);
  pthread_create (&th_del, NULL, delete_job, &del);
  usleep (300 * 1000);
  bool second_waited = !__atomic_load_n (&second.done, __ATOMIC_SEQ_CST);
  bool del_waited = !__atomic_load_n (&del.done, __ATOMIC_SEQ_CST);
  bool still_in = stream_calls == 3;
  if (rewrote) {
    uh_vol_assert_reads (&t, sa.id, img_a, "snapshot a during the checkpoint");
    uh_vol_assert_reads (&t, sb.id, img_b, "snapshot b during the checkpoint");
  }
  __atomic_store_n (&release, true, __ATOMIC_SEQ_CST);
  pthread_join (th_first, NULL);
  pthread_join (th_re, NULL);
  pthread_join (th_second, NULL);
  pthread_join (th_del, NULL);
  cr_assert (rewrote, "a rewrite did not complete while the checkpoint "
             "streamed");
  cr_assert (still_in);
  cr_assert (second_waited, "a first write went on during the checkpoint");
  cr_assert (del_waited, "a delete went on during the checkpoint");
  cr_assert_eq (first.r, 0);
  cr_assert_eq (re.r, 0);
  cr_assert_eq (second.r, 0);
  cr_assert_eq (del.r, 0);
  sc_ckpt_stream_hook = NULL;

  /* The checkpoint switched the journal. */
  struct sc_sb_disk after;
  sc_volume_flush (t.v);
  uh_sb_newest (t.diff, &after);
  cr_assert_neq (before.journal_nonce, after.journal_nonce,
                 "no checkpoint was written");
  uh_vol_assert_reads (&t, 0, t.live, "live after");
  uh_vol_assert_reads (&t, sa.id, img_a, "snapshot a after");
  uh_vol_assert_reads (&t, sb.id, img_b, "snapshot b after");

  /* The journal it wrote (and what followed) replays to the same state. */
  struct state s1, s2;
  state_get (&t, &s1);
  uh_vol_close (&t);
  uh_vol_open (&t);
  state_get (&t, &s2);
  state_same (&s1, &s2, UINT64_MAX, UINT64_MAX);
  uh_vol_assert_reads (&t, 0, t.live, "live after reopen");
  uh_vol_assert_reads (&t, sa.id, img_a, "snapshot a after reopen");
  uh_vol_assert_reads (&t, sb.id, img_b, "snapshot b after reopen");
  state_free (&s1);
  state_free (&s2);
  uh_vol_free (&t);
  free (img_a);
  free (img_b);
}

/* The process dies in the middle of the stream: the old journal is in
 * force, whole, with every acknowledged write and snapshot. */
Test (ckpt_online, a_crash_mid_stream_leaves_the_old_journal)
{
  struct uh_vol t;
  uint8_t *img_a = malloc (SIZE), *img_b = malloc (SIZE);
  cr_assert (img_a && img_b);
  uh_vol_create (&t, SIZE, CS, 7, 0);
  history (&t, img_a, img_b);
  sc_volume_flush (t.v);
  struct state s1;
  state_get (&t, &s1);
  struct sc_sb_disk before;
  uh_sb_newest (t.diff, &before);
  uh_vol_close (&t);

  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {
    uh_vol_open (&t);
    sc_ckpt_stream_hook = hold_stream;
    sc_ckpt_limit_hook = limit_when_armed;
    crash_in_ckpt = true;
    /* An acknowledged write; then one whose commit starts the
     * checkpoint (it dies there, before its origin write). */
    if (uh_vol_write (&t, 3, 5000) != 0)
      _exit (2);
    __atomic_store_n (&armed, true, __ATOMIC_SEQ_CST);
    if (uh_vol_write (&t, 900, 5001) != 0)
      _exit (2);
    _exit (3);                  /* the checkpoint did not run */
  }
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0,
             "child: %d", WEXITSTATUS (status));
  /* Chunk 3's write was acknowledged; 900's never was (the checkpoint
   * ran in its commit, before its origin write): either content is
   * right for it. */
  uh_pattern (t.live + 3 * CS, CS, 5000, 0);
  uint8_t *c900 = malloc (CS);
  cr_assert_not_null (c900);
  uh_pread (t.origin, c900, CS, 900 * CS);
  uint8_t *want = malloc (CS);
  cr_assert_not_null (want);
  uh_pattern (want, CS, 5001, 0);
  if (memcmp (c900, want, CS) == 0)
    memcpy (t.live + 900 * CS, want, CS);
  free (c900);
  free (want);
  struct sc_sb_disk after;
  uh_sb_newest (t.diff, &after);
  cr_assert_eq (before.journal_nonce, after.journal_nonce,
                "the superblock switched to a checkpoint not finished");
  uh_vol_open (&t);
  struct state s2;
  state_get (&t, &s2);
  /* (3 and 900: copied by the acknowledged writes) */
  state_same (&s1, &s2, 3, 900);
  struct sc_snapshot_info sa, sb;
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "a", &sa), 0);
  cr_assert_eq (sc_volume_snapshot_lookup (t.v, "b", &sb), 0);
  uh_vol_assert_reads (&t, sa.id, img_a, "snapshot a after the crash");
  uh_vol_assert_reads (&t, sb.id, img_b, "snapshot b after the crash");
  uh_vol_assert_reads (&t, 0, t.live, "live after the crash");
  state_free (&s1);
  state_free (&s2);
  uh_vol_free (&t);
  free (img_a);
  free (img_b);
}

/* A clone's chunks are streamed in slices too: after the checkpoint and
 * a reopen, the clone reads what was written to it. */
Test (ckpt_online, clones_streamed_in_slices_replay_whole)
{
  struct uh_vol t;
  uint8_t *img_a = malloc (SIZE), *img_b = malloc (SIZE);
  uint8_t *img_c = malloc (SIZE), *buf = malloc (SIZE);
  cr_assert (img_a && img_b && img_c && buf);
  uh_vol_create (&t, SIZE, CS, 7, 0);
  history (&t, img_a, img_b);
  struct sc_snapshot_info c;
  char err[256];
  cr_assert_eq (sc_volume_clone_create (t.v, "a", "c", &c, err, sizeof err),
                0, "%s", err);
  memcpy (img_c, img_a, SIZE);
  for (uint64_t k = 0; k < 200; k++) {
    uint64_t chunk = (k * 7) % NCHUNKS;
    uh_pattern (img_c + chunk * CS, CS, 7000 + k, 0);
    cr_assert_eq (sc_volume_clone_write (t.v, c.id, img_c + chunk * CS, CS,
                                         chunk * CS, 0), 0);
  }
  cr_assert_eq (sc_volume_clone_flush (t.v, c.id), 0);
  struct sc_sb_disk before, after;
  uh_sb_newest (t.diff, &before);
  sc_ckpt_limit_hook = limit_when_armed;
  __atomic_store_n (&armed, true, __ATOMIC_SEQ_CST);
  cr_assert_eq (uh_vol_write (&t, 1000, 7500), 0);      /* its commit */
  __atomic_store_n (&armed, false, __ATOMIC_SEQ_CST);
  sc_volume_flush (t.v);
  uh_sb_newest (t.diff, &after);
  cr_assert_neq (before.journal_nonce, after.journal_nonce,
                 "no checkpoint was written");
  uh_vol_close (&t);
  uh_vol_open (&t);
  cr_assert_eq (sc_volume_clone_read (t.v, c.id, buf, SIZE, 0), 0);
  cr_assert (memcmp (buf, img_c, SIZE) == 0, "the clone reads wrong");
  uh_vol_assert_reads (&t, 0, t.live, "live after reopen");
  uh_vol_free (&t);
  free (img_a);
  free (img_b);
  free (img_c);
  free (buf);
}

/* Changed-block tracking: while a checkpoint streams, a write of a chunk
 * already marked in this epoch goes on; one that needs a mark waits. */
Test (ckpt_online, marked_rewrites_go_on_new_marks_wait)
{
  struct uh_vol t;
  uh_vol_create (&t, SIZE, CS, 7, 0);
  struct sc_snapshot_opts ck = { .checkpoint = true };
  struct sc_snapshot_info cbt;
  cr_assert_eq (sc_volume_snapshot_create (t.v, "cbt", &ck, &cbt), 0);
  for (uint64_t c = 0; c < 300; c++)
    cr_assert_eq (uh_vol_write (&t, c, 8000 + c), 0);    /* marked */

  sc_ckpt_stream_hook = hold_stream;
  sc_ckpt_limit_hook = limit_when_armed;
  __atomic_store_n (&armed, true, __ATOMIC_SEQ_CST);
  struct uh_vol_job first = { .t = &t, .chunk = 400, .tag = 8400 };
  pthread_t th_first;
  pthread_create (&th_first, NULL, uh_vol_write_job, &first);
  cr_assert (uh_wait_flag (&in_ckpt, 20000), "no checkpoint started");
  struct uh_vol_job re = { .t = &t, .chunk = 10, .tag = 8500 };
  struct uh_vol_job fresh = { .t = &t, .chunk = 500, .tag = 8501 };
  pthread_t th_re, th_fresh;
  pthread_create (&th_re, NULL, uh_vol_write_job, &re);
  bool rewrote = uh_wait_flag (&re.done, 5000);
  pthread_create (&th_fresh, NULL, uh_vol_write_job, &fresh);
  usleep (300 * 1000);
  bool fresh_waited = !__atomic_load_n (&fresh.done, __ATOMIC_SEQ_CST);
  __atomic_store_n (&release, true, __ATOMIC_SEQ_CST);
  pthread_join (th_first, NULL);
  pthread_join (th_re, NULL);
  pthread_join (th_fresh, NULL);
  cr_assert (rewrote, "a write of a marked chunk waited for the checkpoint");
  cr_assert (fresh_waited, "a new mark was made during the checkpoint");
  cr_assert_eq (first.r, 0);
  cr_assert_eq (re.r, 0);
  cr_assert_eq (fresh.r, 0);
  sc_ckpt_stream_hook = NULL;

  /* The marks replay: the changes since the checkpoint name them. */
  uh_vol_close (&t);
  uh_vol_open (&t);
  static struct sc_chunk_range runs[NCHUNKS];
  size_t n = 0;
  uint64_t next = 0;
  int r = sc_volume_changes (t.v, cbt.id, SC_DIFF_LIVE, 0, runs, NCHUNKS,
                             &n, &next);
  cr_assert_eq (r, 0, "changes: %d", r);
  uint64_t chunks = 0;
  bool has400 = false, has500 = false;
  for (size_t i = 0; i < n; i++) {
    chunks += runs[i].count;
    has400 |= runs[i].first <= 400 && 400 < runs[i].first + runs[i].count;
    has500 |= runs[i].first <= 500 && 500 < runs[i].first + runs[i].count;
  }
  cr_assert_eq (chunks, 302, "%lu changed chunks", (unsigned long) chunks);
  cr_assert (has400 && has500);
  uh_vol_assert_reads (&t, 0, t.live, "live after reopen");
  uh_vol_free (&t);
}
