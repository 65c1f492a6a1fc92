/* Crash-state tests: workloads through the real engine are recorded at
 * the I/O layer (tests/crash-record.h), then the disk images of many
 * crash points are rebuilt from the record (durable part, plus lost, torn
 * and reordered pending writes) and recovered with sc_volume_open.  After
 * recovery:
 *   - recovery wrote nothing to the origin;
 *   - every snapshot reported valid equals its model image; a snapshot
 *     whose creation had returned exists (valid, or invalid with a
 *     reason) unless its deletion had begun; one whose creation had not
 *     begun, or whose deletion had returned, does not;
 *   - the live volume holds every write acknowledged before the last
 *     completed flush began, or a later write to the same bytes;
 *   - in durability=volatile, every snapshot is invalid with
 *     SC_INVALID_VOLATILE, unless the diff area was left cleanly closed.
 *
 * Crash states (see crash-record.h): for crash point k, each file holds
 * what was durable then (written and completed before a completed
 * fdatasync was issued), plus a choice of the later writes and
 * fallocates: none, all, an in-order prefix (the last maybe torn), a
 * random subset (some torn, in any order), or those that overwrite in
 * place without growing the file.  Every crash point of every workload is
 * checked, each with one variant drawn from its own seeded generator;
 * the few points around a checkpoint's superblock switch with every
 * variant and three more random ones.  The test prints the number of
 * crash states checked, per workload and in total.
 *
 * Workloads.  Most run one thread: writes, zeroes, trims, snapshot
 * creates and deletes, flushes and clean restarts in a seeded random mix.
 * Those with `writers` run that many threads writing (and now and then
 * zeroing, trimming, flushing) at once through sc_volume_write, so that
 * copy-on-write commits are shared by group commit, while the main thread
 * creates and deletes snapshots and flushes.  Those with `ckpt_extra`
 * lower the journal length that triggers a checkpoint while serving
 * (sc_ckpt_limit_hook), so that checkpoints run during the record and
 * crash points fall before, inside (new journal partly written,
 * superblock not switched) and after them; the test prints how many.
 * The revert workload (safe_4k_chunks_revert) has a model of its own:
 * see "the revert workload" below.
 *
 * The model with several writers.  Every event gets a tick of a model
 * clock and every record the tag of the operation its thread was doing.
 * Overlapping writes reach the origin one after the other (the volume
 * locks their chunks), in the order of their first change of the origin
 * in the record, so the live volume after a set of writes is the
 * recording's start with them applied in that order.  A snapshot's image
 * has the writes that reached the origin before its hold (the creation is
 * made of sc_volume_hold and sc_volume_hold_commit, and the record's
 * length is noted once writes are held; the test checks that no write
 * straddles it); a flush's image has the writes that had returned before
 * it began; any write that had begun before the crash may show over it.
 * With one thread these images equal those the model keeps as it goes,
 * which the test checks too.
 *
 * The model is deliberately generous where the engine promises nothing:
 * FUA writes count as ordinary writes, any live write that had begun
 * before the crash may show, and a snapshot whose creation or deletion
 * was under way may be there or not (if there and valid, it must be
 * right).  With durability=safe and no I/O errors, no snapshot may be
 * invalid.
 *
 * Environment: SEED=n picks another seed (decimal or 0x...; the default
 * is fixed); CRASH_POINTS=n checks n points per workload, evenly sampled,
 * instead of all; CRASH_ONLY=k checks crash point k alone, with the same
 * state as in a full run of the same record; CRASH_SAVE=dir keeps the
 * images of failed crash points there.  A run's record is not the same
 * twice (writer threads interleave as they may, and the flushes before a
 * snapshot's hold repeat while they are slow), so the record and model of
 * a workload with a failure are saved (in CRASH_SAVE, else TMPDIR, else
 * /tmp), and CRASH_REPLAY=dir checks the saved record again instead of
 * running the workload: the failure report prints the command.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "cow/diffarea.h"
#include "cow/boot-id.h"
#include "cow/format.h"
#include "cow/io.h"
#include "engine/volume.h"
#include "tests/crash-record.h"
#include "tests/unit-helpers.h"

#define DEFAULT_SEED 0x5eed2024u
#define NEVER SIZE_MAX
#define MAX_FAILURES 8          /* reported in full per workload */

/* Every open here comes after a simulated power cut (or a restart the
 * workload makes): a boot of its own, so replay judges torn writes as a
 * power cut leaves them (cow/boot-id.h), not as a process crash would. */
static int
new_boot_each_time (uint8_t id[16])
{
  static uint64_t boots;
  uint64_t n = __atomic_add_fetch (&boots, 1, __ATOMIC_RELAXED);
  memcpy (id, &n, sizeof n);
  id[15] = 0xb0;
  return 0;
}

static void
crash_setup (void)
{
  uh_setup ();
  sc_boot_id_hook = new_boot_each_time;
}

static void
crash_teardown (void)
{
  cr_record_stop ();
  sc_ckpt_limit_hook = NULL;
  sc_ckpt_slice = 512;
  sc_ckpt_strict = false;
  sc_boot_id_hook = NULL;
  uh_teardown ();
}

TestSuite (crash, .init = crash_setup, .fini = crash_teardown);

/* ---- configuration ------------------------------------------------------ */

struct wl_cfg {
  const char *name;
  uint64_t size;                /* origin bytes */
  uint64_t sparse_from;         /* origin is a hole from here on */
  uint32_t chunk;
  bool volatile_mode;
  bool unclean_start;           /* the recorded session opens after a crash */
  unsigned steps;               /* operations of the recorded session (per
                                   writer thread with writers > 1) */
  unsigned points;              /* crash states to check (0: every one) */
  unsigned writers;             /* > 1: threads writing at once, while
                                   the main one creates, deletes, flushes */
  uint64_t ckpt_extra;          /* > 0: checkpoint once the journal holds
                                   this many records more than a
                                   checkpoint would write (test hook) */
  bool tracking;                /* changed-block tracking: some creates
                                   are checkpoints, some snapshots are
                                   kept as checkpoints */
  bool bg_ckpt;                 /* the volume's thread runs the checkpoints
                                   commits find due (sc_volume_start_retry) */
  bool write_back;              /* write-back=on: writes acknowledged
                                   before their copies are durable */
};

static uint64_t
env_u64 (const char *name, uint64_t dflt)
{
  const char *e = getenv (name);
  if (!e || !*e)
    return dflt;
  return strtoull (e, NULL, 0);
}

static uint64_t
base_seed (void)
{
  return env_u64 ("SEED", DEFAULT_SEED);
}

/* ---- the model ---------------------------------------------------------- */

struct msnap {
  char name[32];
  uint64_t id;
  uint8_t *image;               /* the live volume when it was created */
  bool setup;                   /* created before recording began */
  size_t c_start, c_end;        /* records before / after the create */
  size_t hold;                  /* records when writes were held: its
                                   image has the live changes that reached
                                   the origin before */
  uint64_t chold;               /* the model clock then */
  size_t d_start, d_end;        /* the same for its delete (NEVER) */
  bool d_setup;                 /* deleted before recording began */
  bool ckpt;                    /* created as a checkpoint */
  size_t k_start, k_end;        /* its keep-checkpoint (NEVER) */
  bool k_setup;                 /* kept as one before recording began */
};

/* A live write, zero or trim. */
struct mop {
  size_t start, end;            /* records before it began / after */
  uint64_t cstart, cend;        /* the model clock then */
  uint32_t tag;                 /* the tag of its records */
  bool recorded;                /* in the recorded session */
  size_t key;                   /* its first change of the origin in the
                                   record: overlapping changes reached the
                                   origin in this order */
  uint64_t off, len;
  uint8_t *data;                /* NULL: zeros */
};

/* A completed flush: what the live volume must hold from then on (every
 * live op that had returned before it began, by the model clock). */
struct mflush {
  size_t end;                   /* records when it returned */
  uint64_t cstart;              /* the model clock when it began */
  uint8_t *image;
};

/* An operation of the workload, for failure reports. */
struct mevent {
  char what[96];
  size_t start, end;            /* records before / after it */
  uint32_t tag;
};

struct wl {
  const struct wl_cfg *cfg;
  uint64_t seed, rng;
  char *origin, *diff;
  struct sc_volume *v;
  uint64_t size;
  uint32_t cs;
  uint8_t *live;
  uint8_t *live0;               /* the live volume when recording began */
  bool recording;
  bool trims;                   /* punching a hole reads back zeros */
  bool threads;                 /* cfg->writers > 1 */
  atomic_uint_fast64_t data_tag;
  atomic_uint_fast64_t clock;   /* orders the model's events */
  atomic_uint_fast32_t next_tag;
  atomic_int running;           /* writer threads still going */
  pthread_mutex_t mlock;        /* the arrays below, the counters */
  unsigned names;

  struct msnap *snaps;
  size_t nsnaps;
  struct mop *ops;
  size_t nops;
  struct mflush *flushes;
  size_t nflushes;
  struct mevent *events;
  size_t nevents;

  struct cr_log log;
  struct cr_image init[CR_NFILES];

  /* Counters for the summary. */
  size_t n_queued;              /* writes the write-back queue completed */
  unsigned n_writes, n_zeroes, n_trims, n_creates, n_deletes, n_flushes,
           n_restarts;
};

/* A writer thread's generator (NULL in the main thread). */
static __thread uint64_t *thread_rng;

/* Errors in a writer thread cannot go through cr_assert. */
static void
ensure (bool ok, const char *fmt, ...) __attribute__((format (printf, 2, 3)));

static void
ensure (bool ok, const char *fmt, ...)
{
  if (ok)
    return;
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (thread_rng) {
    fprintf (stderr, "crash: in a writer thread: %s\n", msg);
    abort ();
  }
  cr_assert (false, "%s", msg);
}

static uint64_t
tick (struct wl *w)
{
  return atomic_fetch_add (&w->clock, 1);
}

/* Tag the records of the operation the calling thread starts. */
static uint32_t
begin_op (struct wl *w)
{
  uint32_t tag = (uint32_t) atomic_fetch_add (&w->next_tag, 1) + 1;
  cr_set_tag (tag);
  return tag;
}

static void
count (struct wl *w, unsigned *n)
{
  pthread_mutex_lock (&w->mlock);
  (*n)++;
  pthread_mutex_unlock (&w->mlock);
}

static void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  cr_assert_not_null (p);
  return p;
}

static uint8_t *
xdup (const void *p, size_t n)
{
  uint8_t *q = xrealloc (NULL, n);
  memcpy (q, p, n);
  return q;
}

static size_t
now (struct wl *w)
{
  return w->recording ? cr_record_count () : 0;
}

static uint64_t
rnd (struct wl *w, uint64_t n)
{
  return uh_rand_below (thread_rng ? thread_rng : &w->rng, n);
}

static void
add_event (struct wl *w, size_t start, uint32_t tag, const char *fmt, ...)
  __attribute__((format (printf, 4, 5)));

static void
add_event (struct wl *w, size_t start, uint32_t tag, const char *fmt, ...)
{
  cr_set_tag (0);
  if (!w->recording)
    return;
  size_t end = now (w);
  pthread_mutex_lock (&w->mlock);
  w->events = xrealloc (w->events, (w->nevents + 1) * sizeof *w->events);
  struct mevent *e = &w->events[w->nevents++];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (e->what, sizeof e->what, fmt, ap);
  va_end (ap);
  e->start = start;
  e->end = end;
  e->tag = tag;
  pthread_mutex_unlock (&w->mlock);
}

static void
vol_open (struct wl *w)
{
  size_t start = now (w);
  struct sc_volume_config cfg = {
    .origin_path = w->origin, .diff_path = w->diff, .chunk_size = w->cs,
    .volatile_durability = w->recording && w->cfg->volatile_mode,
    .origin_changed_accept = true,      /* see check_point */
    .write_back = w->recording && w->cfg->write_back,
  };
  char err[512] = "";
  uint32_t tag = begin_op (w);
  int r = sc_volume_open (&cfg, &w->v, err, sizeof err);
  cr_assert_eq (r, 0, "%s: sc_volume_open: %d %s", w->cfg->name, r, err);
  if (w->recording && w->cfg->bg_ckpt)
    cr_assert_eq (sc_volume_start_retry (w->v), 0);
  add_event (w, start, tag, "open");
}

/* A flush that began at model clock `cstart` has returned.  With writer
 * threads its image is made once the record is complete (finish_model). */
static void
add_flush (struct wl *w, uint64_t cstart)
{
  size_t end = now (w);
  pthread_mutex_lock (&w->mlock);
  w->flushes = xrealloc (w->flushes, (w->nflushes + 1) * sizeof *w->flushes);
  w->flushes[w->nflushes++] = (struct mflush) {
    .end = end, .cstart = cstart,
    .image = w->threads ? NULL : xdup (w->live, w->size),
  };
  pthread_mutex_unlock (&w->mlock);
}

static void
add_op (struct wl *w, size_t start, uint64_t cstart, uint32_t tag,
        uint64_t off, uint64_t len, const uint8_t *data)
{
  size_t end = now (w);
  pthread_mutex_lock (&w->mlock);
  w->ops = xrealloc (w->ops, (w->nops + 1) * sizeof *w->ops);
  w->ops[w->nops++] = (struct mop) {
    .start = start, .end = end, .cstart = cstart, .cend = tick (w),
    .tag = tag, .recorded = w->recording, .key = CR_NEVER, .off = off,
    .len = len, .data = data ? xdup (data, len) : NULL,
  };
  if (!w->threads) {
    if (data)
      memcpy (w->live + off, data, len);
    else
      memset (w->live + off, 0, len);
  }
  pthread_mutex_unlock (&w->mlock);
}

/* A random range: chunk aligned, sector aligned or anywhere; now and
 * then several chunks long. */
static void
pick_range (struct wl *w, uint64_t *off, uint64_t *len)
{
  uint64_t cs = w->cs, o, l;
  switch (rnd (w, 4)) {
  case 0:                       /* whole chunks */
    o = rnd (w, w->size / cs) * cs;
    l = (1 + rnd (w, 3)) * cs;
    break;
  case 1:                       /* sectors */
    o = rnd (w, w->size / 512) * 512;
    l = (1 + rnd (w, 2 * cs / 512)) * 512;
    break;
  case 2:                       /* anywhere, small */
    o = rnd (w, w->size);
    l = 1 + rnd (w, 3000);
    break;
  default:                      /* anywhere, several chunks */
    o = rnd (w, w->size);
    l = 1 + rnd (w, 5 * cs);
    break;
  }
  if (o >= w->size)
    o = w->size - 1;
  if (l > w->size - o)
    l = w->size - o;
  *off = o;
  *len = l;
}

static void
wl_write (struct wl *w)
{
  uint64_t off, len;
  pick_range (w, &off, &len);
  uint8_t *buf = xrealloc (NULL, len);
  uint64_t data = atomic_fetch_add (&w->data_tag, 1) + 1;
  if (rnd (w, 20) == 0)
    memset (buf, 0, len);       /* zeros written as data */
  else
    uh_pattern (buf, len, w->seed * 7919 + data, off);
  unsigned flags = rnd (w, 10) == 0 ? SC_FUA : 0;
  size_t start = now (w);
  uint64_t cstart = tick (w);
  uint32_t tag = begin_op (w);
  int r = sc_volume_write (w->v, buf, (uint32_t) len, off, flags);
  cr_set_tag (0);
  ensure (r == 0, "write of %" PRIu64 " at %" PRIu64 ": %d", len, off, r);
  add_op (w, start, cstart, tag, off, len, buf);
  add_event (w, start, tag, "write%s of %" PRIu64 " bytes at %" PRIu64,
             flags ? " (FUA)" : "", len, off);
  free (buf);
  count (w, &w->n_writes);
}

static void
wl_zero (struct wl *w, bool trim)
{
  uint64_t off, len;
  pick_range (w, &off, &len);
  unsigned flags = (rnd (w, 2) ? SC_MAY_TRIM : 0) |
                   (rnd (w, 10) == 0 ? SC_FUA : 0);
  size_t start = now (w);
  uint64_t cstart = tick (w);
  uint32_t tag = begin_op (w);
  int r = trim ? sc_volume_trim (w->v, (uint32_t) len, off, flags)
               : sc_volume_zero (w->v, (uint32_t) len, off, flags);
  cr_set_tag (0);
  ensure (r == 0, "%s of %" PRIu64 " at %" PRIu64 ": %d",
          trim ? "trim" : "zero", len, off, r);
  add_op (w, start, cstart, tag, off, len, NULL);
  add_event (w, start, tag, "%s of %" PRIu64 " bytes at %" PRIu64,
             trim ? "trim" : "zero", len, off);
  count (w, trim ? &w->n_trims : &w->n_zeroes);
}

static size_t
live_snaps (struct wl *w)
{
  size_t n = 0;
  for (size_t i = 0; i < w->nsnaps; i++)
    n += w->snaps[i].d_start == NEVER;
  return n;
}

static void
wl_create (struct wl *w)
{
  char name[32];
  /* Now and then reuse the name of a deleted snapshot. */
  name[0] = '\0';
  if (rnd (w, 3) == 0)
    for (size_t i = 0; i < w->nsnaps; i++) {
      const struct msnap *s = &w->snaps[i];
      bool taken = false;
      for (size_t j = 0; j < w->nsnaps; j++)
        taken |= w->snaps[j].d_start == NEVER &&
                 strcmp (w->snaps[j].name, s->name) == 0;
      if (!taken) {
        snprintf (name, sizeof name, "%s", s->name);
        break;
      }
    }
  if (!name[0])
    snprintf (name, sizeof name, "s%u", ++w->names);

  struct msnap s = { .setup = !w->recording, .d_start = NEVER,
                     .d_end = NEVER, .k_start = NEVER, .k_end = NEVER };
  snprintf (s.name, sizeof s.name, "%s", name);
  s.ckpt = w->cfg->tracking && rnd (w, 3) == 0;
  struct sc_snapshot_opts opts = { .checkpoint = s.ckpt };
  struct sc_snapshot_info info;
  s.c_start = now (w);
  uint32_t tag = begin_op (w);
  int r;
  if (w->threads) {
    /* The steps of sc_volume_snapshot_create, to see when the writes in
     * flight have drained: the image is made from the record later. */
    r = sc_volume_create_begin (w->v);
    cr_assert_eq (r, 0, "sc_volume_create_begin: %d", r);
    r = sc_volume_hold (w->v);
    cr_assert_eq (r, 0, "sc_volume_hold: %d", r);
    s.hold = now (w);
    s.chold = tick (w);
    /* Both orders a server uses: CREATE (and COMMIT release=1) record
     * under the hold, release the writes, then make the record durable,
     * so writes may run before it is; a plain COMMIT makes it durable
     * under the hold. */
    uint64_t held_ns = 0;
    if (rnd (w, 2) == 0)
      r = sc_volume_hold_commit_release (w->v, name, &opts, &info, &held_ns);
    else
      r = sc_volume_hold_commit (w->v, name, &opts, &info);
    s.c_end = now (w);
    if (!held_ns)
      sc_volume_release (w->v);
    sc_volume_create_end (w->v);
  }
  else {
    s.image = xdup (w->live, w->size);
    s.hold = s.c_start;
    s.chold = tick (w);
    r = sc_volume_snapshot_create (w->v, name, &opts, &info);
    s.c_end = now (w);
  }
  cr_assert_eq (r, 0, "creating snapshot %s: %d", name, r);
  s.id = info.id;
  add_event (w, s.c_start, tag, "create of %s %s (id %" PRIu64 ")",
             s.ckpt ? "checkpoint" : "snapshot", name, s.id);
  w->snaps = xrealloc (w->snaps, (w->nsnaps + 1) * sizeof *w->snaps);
  w->snaps[w->nsnaps++] = s;
  w->n_creates++;
}

static void
wl_delete (struct wl *w)
{
  size_t n = live_snaps (w);
  if (n == 0)
    return;
  size_t pick = (size_t) rnd (w, n);
  for (size_t i = 0; i < w->nsnaps; i++) {
    struct msnap *s = &w->snaps[i];
    if (s->d_start != NEVER || pick--)
      continue;
    s->d_start = now (w);
    s->d_setup = !w->recording;
    uint32_t tag = begin_op (w);
    int r = sc_volume_snapshot_delete (w->v, s->name);
    s->d_end = now (w);
    cr_assert_eq (r, 0, "deleting snapshot %s: %d", s->name, r);
    add_event (w, s->d_start, tag, "delete of snapshot %s (id %" PRIu64 ")",
               s->name, s->id);
    count (w, &w->n_deletes);
    return;
  }
}

/* delete --keep-checkpoint of a live snapshot. */
static void
wl_keep (struct wl *w)
{
  size_t n = 0;
  for (size_t i = 0; i < w->nsnaps; i++)
    n += w->snaps[i].d_start == NEVER && !w->snaps[i].ckpt &&
         w->snaps[i].k_start == NEVER;
  if (n == 0)
    return;
  size_t pick = (size_t) rnd (w, n);
  for (size_t i = 0; i < w->nsnaps; i++) {
    struct msnap *s = &w->snaps[i];
    if (s->d_start != NEVER || s->ckpt || s->k_start != NEVER || pick--)
      continue;
    s->k_start = now (w);
    s->k_setup = !w->recording;
    uint32_t tag = begin_op (w);
    int r = sc_diff_snapshot_keep_checkpoint (sc_volume_diff (w->v),
                                              s->name);
    s->k_end = now (w);
    cr_assert_eq (r, 0, "keeping snapshot %s as a checkpoint: %d", s->name,
                  r);
    add_event (w, s->k_start, tag, "keep of snapshot %s (id %" PRIu64 ") "
               "as a checkpoint", s->name, s->id);
    return;
  }
}

static void
wl_flush (struct wl *w)
{
  size_t start = now (w);
  uint64_t cstart = tick (w);
  uint32_t tag = begin_op (w);
  int r = sc_volume_flush (w->v);
  cr_set_tag (0);
  ensure (r == 0, "flush: %d", r);
  add_event (w, start, tag, "flush");
  add_flush (w, cstart);
  count (w, &w->n_flushes);
}

/* A clean stop and start: the close flushes the origin too. */
static void
wl_restart (struct wl *w)
{
  size_t start = now (w);
  uint64_t cstart = tick (w);
  uint32_t tag = begin_op (w);
  sc_volume_close (w->v);
  w->v = NULL;
  add_event (w, start, tag, "close (restart)");
  add_flush (w, cstart);
  vol_open (w);
  w->n_restarts++;
}

static void
wl_step (struct wl *w)
{
  uint64_t r = rnd (w, 100);
  if (r < 38)
    wl_write (w);
  else if (r < 46)
    wl_zero (w, false);
  else if (r < 51 && w->trims)
    wl_zero (w, true);
  else if (r < 63) {
    if (live_snaps (w) < 6)
      wl_create (w);
    else
      wl_delete (w);
  }
  else if (r < 71) {
    if (w->cfg->tracking && rnd (w, 2))
      wl_keep (w);
    else
      wl_delete (w);
  }
  else if (r < 86)
    wl_flush (w);
  else if (r < 88)
    wl_restart (w);
  else
    wl_write (w);
}

/* ---- several writers at once ------------------------------------------- */

struct writer {
  struct wl *w;
  uint64_t rng;
  unsigned steps;
};

/* A writer thread: writes mostly, some zeroes and trims, a few flushes;
 * its copies are committed in the group commits of whichever writer leads
 * them. */
static void *
writer_main (void *opaque)
{
  struct writer *wr = opaque;
  struct wl *w = wr->w;
  thread_rng = &wr->rng;
  for (unsigned i = 0; i < wr->steps; i++) {
    uint64_t r = rnd (w, 100);
    if (r < 72)
      wl_write (w);
    else if (r < 80)
      wl_zero (w, false);
    else if (r < 85 && w->trims)
      wl_zero (w, true);
    else if (r < 93)
      wl_flush (w);
    else
      wl_write (w);
  }
  thread_rng = NULL;
  atomic_fetch_sub (&w->running, 1);
  return NULL;
}

/* cfg->writers threads run cfg->steps operations each, while this one
 * creates and deletes snapshots and flushes, until they are done. */
static void
run_writers (struct wl *w)
{
  unsigned n = w->cfg->writers;
  pthread_t tid[16];
  struct writer wr[16];
  cr_assert_leq (n, 16);
  atomic_store (&w->running, (int) n);
  for (unsigned i = 0; i < n; i++) {
    wr[i] = (struct writer) { .w = w, .steps = w->cfg->steps,
                              .rng = w->seed ^ (0x3779b97f4a7c15ull * (i + 1)) };
    cr_assert_eq (pthread_create (&tid[i], NULL, writer_main, &wr[i]), 0);
  }
  while (atomic_load (&w->running) > 0) {
    usleep ((useconds_t) (300 + rnd (w, 2500)));
    uint64_t r = rnd (w, 100);
    if (r < 40) {
      if (live_snaps (w) < 6)
        wl_create (w);
      else
        wl_delete (w);
    }
    else if (r < 60) {
      if (w->cfg->tracking && rnd (w, 2))
        wl_keep (w);
      else
        wl_delete (w);
    }
    else if (r < 80)
      wl_flush (w);
  }
  for (unsigned i = 0; i < n; i++)
    pthread_join (tid[i], NULL);
}

/* ---- the model's images, from the record ---------------------------------
 *
 * Writes that overlap reach the origin one after the other (the volume
 * locks their chunks), in the order of their first change of the origin
 * in the record (mop.key).  The live volume after a set of ops is then
 * live0 with them applied in that order: a snapshot's image has the ops
 * whose key is below its hold (creation drains the writes in flight and
 * holds new ones, so no op is on both sides), a flush's the ops that had
 * returned when it began. */

static const struct wl *sort_w;

static int
by_key (const void *a, const void *b)
{
  size_t ka = sort_w->ops[*(const size_t *) a].key;
  size_t kb = sort_w->ops[*(const size_t *) b].key;
  return ka < kb ? -1 : ka > kb;
}

static int
by_start (const void *a, const void *b)
{
  const struct mop *x = a, *y = b;
  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  return x->cstart < y->cstart ? -1 : x->cstart > y->cstart;
}

static void
apply_op (uint8_t *img, const struct mop *o)
{
  if (o->data)
    memcpy (img + o->off, o->data, o->len);
  else
    memset (img + o->off, 0, o->len);
}

/* live0 with the recorded ops of `order` (n, by key) that `pick` takes. */
static uint8_t *
image_of (const struct wl *w, const size_t *order, size_t n,
          bool (*pick) (const struct mop *, uint64_t), uint64_t arg)
{
  uint8_t *img = xdup (w->live0, w->size);
  for (size_t i = 0; i < n; i++)
    if (pick (&w->ops[order[i]], arg))
      apply_op (img, &w->ops[order[i]]);
  return img;
}

static bool
before_hold (const struct mop *o, uint64_t hold)
{
  return o->key < hold;
}

static bool
returned_before (const struct mop *o, uint64_t cstart)
{
  return o->cend < cstart;
}

static bool
all_ops (const struct mop *o, uint64_t unused)
{
  (void) o;
  (void) unused;
  return true;
}

/* Or compare with what the single-threaded model kept as it went. */
static void
set_image (const struct wl *w, uint8_t **slot, uint8_t *img, const char *what)
{
  if (*slot) {
    cr_assert (memcmp (*slot, img, w->size) == 0, "%s: the model's %s "
               "differs when made from the record", w->cfg->name, what);
    free (img);
  }
  else
    *slot = img;
}

/* The write-back queue's thread writes a queued write's data to the
 * origin in one request, untagged: the op it belongs to is the first
 * (by start) not yet seen on the origin with the same range and data.
 * Queued writes of one range reach the origin one after the other (each
 * keeps its range until then). */
static void
key_queued_writes (struct wl *w, size_t *first, size_t ntags)
{
  for (size_t i = 0; i < w->log.n; i++) {
    const struct cr_op *op = &w->log.ops[i];
    if (op->file != CR_ORIGIN || op->kind != CR_WRITE || op->tag)
      continue;
    struct mop *best = NULL;
    for (size_t j = 0; j < w->nops; j++) {
      struct mop *o = &w->ops[j];
      if (o->recorded && o->data && o->tag < ntags &&
          first[o->tag] == CR_NEVER && o->off == op->off &&
          o->len == op->len && memcmp (o->data, op->data, op->len) == 0 &&
          (!best || o->start < best->start))
        best = o;
    }
    cr_assert (best, "%s: record %zu, an untagged write of the origin "
               "[%" PRIu64 ", +%" PRIu64 "), is no queued write's",
               w->cfg->name, i, op->off, op->len);
    first[best->tag] = i;
    w->n_queued++;
  }
  cr_assert_gt (w->n_queued, 0, "%s: no write went through the write-back "
                "queue", w->cfg->name);
}

/* Once every op has returned: keys from the record, then the images. */
static void
finish_model (struct wl *w)
{
  size_t ntags = (size_t) atomic_load (&w->next_tag) + 1;
  size_t *first = xrealloc (NULL, ntags * sizeof *first);
  for (size_t t = 0; t < ntags; t++)
    first[t] = CR_NEVER;
  for (size_t i = 0; i < w->log.n; i++) {
    const struct cr_op *op = &w->log.ops[i];
    if (op->file == CR_ORIGIN && (op->kind == CR_WRITE ||
                                  op->kind == CR_ZERO) &&
        op->tag && op->tag < ntags && first[op->tag] == CR_NEVER)
      first[op->tag] = i;
  }
  if (w->cfg->write_back)
    key_queued_writes (w, first, ntags);
  size_t *order = xrealloc (NULL, (w->nops + 1) * sizeof *order), n = 0;
  for (size_t i = 0; i < w->nops; i++) {
    struct mop *o = &w->ops[i];
    if (!o->recorded)
      continue;
    o->key = first[o->tag];
    /* A queued write may still be in the queue when the record ends:
     * acknowledged, never flushed, on the origin in no crash state. */
    if (o->key == CR_NEVER && w->cfg->write_back && o->data)
      o->key = w->log.n;
    cr_assert_neq (o->key, CR_NEVER, "%s: live op (tag %u, %s of %" PRIu64
                   " bytes at %" PRIu64 ") never changed the origin",
                   w->cfg->name, o->tag, o->data ? "write" : "zero", o->len,
                   o->off);
    order[n++] = i;
  }
  free (first);
  sort_w = w;
  qsort (order, n, sizeof *order, by_key);

  char what[64];
  for (size_t i = 0; i < w->nsnaps; i++) {
    struct msnap *m = &w->snaps[i];
    if (m->setup)
      continue;
    /* The hold drained the writes: none straddles it. */
    for (size_t j = 0; j < n; j++) {
      const struct mop *o = &w->ops[order[j]];
      cr_assert (o->key < m->hold ? o->cstart < m->chold
                                  : o->cend > m->chold,
                 "%s: live op (tag %u, records %zu-%zu, first change of the "
                 "origin %zu) straddles the hold of snapshot %s (record "
                 "%zu)", w->cfg->name, o->tag, o->start, o->end, o->key,
                 m->name, m->hold);
    }
    snprintf (what, sizeof what, "image of snapshot %s", m->name);
    set_image (w, &m->image, image_of (w, order, n, before_hold, m->hold),
               what);
  }
  for (size_t i = 0; i < w->nflushes; i++) {
    snprintf (what, sizeof what, "image of flush %zu", i);
    set_image (w, &w->flushes[i].image, image_of (w, order, n,
               returned_before, w->flushes[i].cstart), what);
  }
  uint8_t *live = image_of (w, order, n, all_ops, 0);
  cr_assert (memcmp (live, w->live, w->size) == 0 || w->threads,
             "%s: the model's live volume differs when made from the record",
             w->cfg->name);
  free (w->live);
  w->live = live;
  free (order);
  /* check_live walks the ops by start. */
  qsort (w->ops, w->nops, sizeof *w->ops, by_start);
  w->threads = false;           /* from here on, the model keeps up */
}

/* ---- reading back ------------------------------------------------------- */

/* Compare snapshot `id` (0: the live volume) with `want`; on a
 * difference write where into msg and return false. */
static bool
same_image (struct sc_volume *v, uint64_t id, const uint8_t *want,
            uint64_t size, uint32_t cs, uint8_t *buf, char *msg,
            size_t msglen)
{
  const uint64_t piece = 1 << 20;
  for (uint64_t off = 0; off < size; off += piece) {
    uint64_t n = size - off < piece ? size - off : piece;
    int r = id ? sc_volume_snapshot_read (v, id, buf, (uint32_t) n, off)
               : sc_volume_read (v, buf, (uint32_t) n, off);
    if (r < 0) {
      snprintf (msg, msglen, "read of %" PRIu64 " bytes at %" PRIu64
                " failed: %s", n, off, strerror (-r));
      return false;
    }
    if (memcmp (buf, want + off, n) == 0)
      continue;
    uint64_t i = 0;
    while (buf[i] == want[off + i])
      i++;
    uint64_t bad = 0;
    for (uint64_t j = i; j < n; j++)
      bad += buf[j] != want[off + j];
    snprintf (msg, msglen, "first difference at byte %" PRIu64 " (chunk %"
              PRIu64 "): %#x, want %#x; %" PRIu64 " bytes differ in this "
              "MiB", off + i, (off + i) / cs, buf[i], want[off + i], bad);
    return false;
  }
  return true;
}

/* The engine agrees with the model before any crash is simulated. */
static void
verify_model (struct wl *w)
{
  uint8_t *buf = xrealloc (NULL, 1 << 20);
  char msg[256];
  cr_assert (same_image (w->v, 0, w->live, w->size, w->cs, buf, msg,
                         sizeof msg), "%s: live volume: %s", w->cfg->name,
             msg);
  for (size_t i = 0; i < w->nsnaps; i++) {
    const struct msnap *s = &w->snaps[i];
    if (s->d_start != NEVER || s->ckpt || s->k_start != NEVER)
      continue;
    cr_assert (same_image (w->v, s->id, s->image, w->size, w->cs, buf, msg,
                           sizeof msg), "%s: snapshot %s: %s", w->cfg->name,
               s->name, msg);
  }
  free (buf);
}

/* ---- the workload -------------------------------------------------------- */

/* The checkpoint threshold of workloads with ckpt_extra (the test hook). */
static uint64_t ckpt_extra;

static uint64_t
ckpt_limit (uint64_t live)
{
  return live + ckpt_extra;
}

static uint64_t
name_hash (const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t) *s) * 1099511628211ull;
  return h;
}

static void
run_workload (struct wl *w, const struct wl_cfg *cfg)
{
  memset (w, 0, sizeof *w);
  w->cfg = cfg;
  w->seed = base_seed () ^ name_hash (cfg->name);
  w->rng = w->seed;
  w->size = cfg->size;
  w->cs = cfg->chunk;
  w->origin = uh_path ("origin");
  w->diff = uh_path ("diff");
  w->trims = uh_punch_reads_zeros ();
  pthread_mutex_init (&w->mlock, NULL);
  if (cfg->ckpt_extra) {
    ckpt_extra = cfg->ckpt_extra;
    sc_ckpt_limit_hook = ckpt_limit;
    sc_ckpt_slice = 3;          /* streamed in many slices */
    sc_ckpt_strict = true;      /* a change that does not wait aborts */
  }

  /* The origin: a pattern, then (maybe) a hole. */
  uint64_t data_end = cfg->sparse_from ? cfg->sparse_from : cfg->size;
  uh_make_file (w->origin, data_end, w->seed);
  uh_truncate (w->origin, cfg->size);
  w->live = xrealloc (NULL, w->size);
  uh_pattern (w->live, data_end, w->seed, 0);
  memset (w->live + data_end, 0, w->size - data_end);

  /* Setup, not recorded: a first session that leaves snapshots. */
  vol_open (w);
  for (int i = 0; i < 6; i++)
    wl_write (w);
  wl_create (w);
  for (int i = 0; i < 6; i++)
    wl_write (w);
  wl_create (w);
  wl_write (w);
  wl_create (w);
  wl_delete (w);
  for (int i = 0; i < 4; i++)
    wl_write (w);
  verify_model (w);
  sc_volume_close (w->v);
  w->v = NULL;
  if (cfg->unclean_start)
    uh_sb_mark_unclean (w->diff);
  add_flush (w, tick (w));      /* everything so far is on disk */
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&w->init[f], 0);
    cr_image_load (&w->init[f], f == CR_ORIGIN ? w->origin : w->diff);
  }

  /* The recorded session. */
  cr_log_init (&w->log, w->origin, w->diff);
  w->recording = true;
  w->live0 = xdup (w->live, w->size);
  w->threads = cfg->writers > 1;
  cr_record_start (&w->log);
  vol_open (w);
  if (w->threads)
    run_writers (w);
  else
    for (unsigned i = 0; i < cfg->steps; i++)
      wl_step (w);
  /* End with a pending tail: writes after the last flush. */
  wl_write (w);
  wl_write (w);
  finish_model (w);
  verify_model (w);
  size_t start = now (w);
  uint64_t cstart = tick (w);
  uint32_t tag = begin_op (w);
  sc_volume_close (w->v);
  w->v = NULL;
  add_event (w, start, tag, "final close");
  add_flush (w, cstart);
  cr_record_stop ();
  w->recording = false;
  cr_assert_eq (w->log.foreign, 0, "%zu requests went to other files",
                w->log.foreign);
  for (size_t i = 0; i < w->log.n; i++)
    cr_assert_neq (w->log.ops[i].done, CR_NEVER, "%s: operation %zu never "
                   "completed", cfg->name, i);
  char overlap[256];
  cr_assert (cr_check_overlaps (&w->log, overlap, sizeof overlap), "%s: %s",
             cfg->name, overlap);

  /* The record is complete: replayed whole on the initial images, it
   * gives the files as they are now. */
  for (int f = 0; f < CR_NFILES; f++) {
    struct cr_image img, now_img;
    cr_image_alloc (&img, cr_max_end (&w->log, f, w->init[f].size));
    cr_image_copy (&img, &w->init[f]);
    for (size_t i = 0; i < w->log.n; i++)
      if (w->log.ops[i].file == f)
        cr_apply (&img, &w->log.ops[i], w->log.ops[i].len);
    cr_image_alloc (&now_img, 0);
    cr_image_load (&now_img, f == CR_ORIGIN ? w->origin : w->diff);
    cr_assert_eq (img.size, now_img.size, "%s: replayed %s has %" PRIu64
                  " bytes, the file %" PRIu64, cfg->name,
                  f == CR_ORIGIN ? "origin" : "diff area", img.size,
                  now_img.size);
    cr_assert (memcmp (img.buf, now_img.buf, img.size) == 0,
               "%s: the record does not replay to the %s", cfg->name,
               f == CR_ORIGIN ? "origin" : "diff area");
    cr_image_free (&img);
    cr_image_free (&now_img);
  }
}

static void
free_workload (struct wl *w)
{
  for (size_t i = 0; i < w->nsnaps; i++)
    free (w->snaps[i].image);
  for (size_t i = 0; i < w->nops; i++)
    free (w->ops[i].data);
  for (size_t i = 0; i < w->nflushes; i++)
    free (w->flushes[i].image);
  free (w->snaps);
  free (w->ops);
  free (w->flushes);
  free (w->events);
  free (w->live);
  free (w->live0);
  pthread_mutex_destroy (&w->mlock);
  for (int f = 0; f < CR_NFILES; f++)
    cr_image_free (&w->init[f]);
  cr_log_free (&w->log);
  free (w->origin);
  free (w->diff);
}

/* ---- checking crash states ----------------------------------------------- */

struct checker {
  struct wl *w;
  struct cr_builder b;
  struct cr_image img[CR_NFILES];
  struct cr_image shadow[CR_NFILES];   /* what the files hold now */
  uint64_t rng;
  uint8_t *buf;
  const struct mop **cand;      /* check_live's */
  uint8_t *ok;

  size_t points, distinct, failures, per_variant[CR_V_COUNT];
  size_t torn, pending_applied, images_compared, invalid_seen;
  size_t clean_opens, refused;
  size_t checkpoints_seen, diffs_checked;
};

/* Make the file at `path` hold `img`, writing only the 4K pages that
 * differ from what it holds (`shadow`), which keeps the inode (the diff
 * area records the origin's). */
static void
materialize (const char *path, const struct cr_image *img,
             struct cr_image *shadow)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  for (uint64_t off = 0; off < img->size; off += 4096) {
    uint64_t n = img->size - off < 4096 ? img->size - off : 4096;
    if (off + n <= shadow->size &&
        memcmp (img->buf + off, shadow->buf + off, n) == 0)
      continue;
    cr_assert_eq (pwrite (fd, img->buf + off, n, off), (ssize_t) n);
  }
  if (img->size != shadow->size)
    cr_assert_eq (ftruncate (fd, img->size), 0);
  close (fd);
  cr_image_copy (shadow, img);
}

/* The newest valid superblock of a diff-area image, as sc_sb_load picks
 * it; false if there is none. */
static bool
image_sb (const struct cr_image *img, struct sc_sb_disk *out)
{
  bool found = false;
  for (int c = 0; c < SC_SB_COPIES; c++) {
    if (img->size < (uint64_t) (c + 1) * SC_SB_SIZE)
      break;
    const uint8_t *block = img->buf + c * SC_SB_SIZE;
    struct sc_sb_disk sb;
    memcpy (&sb, block, sizeof sb);
    if (memcmp (sb.magic, SC_SB_MAGIC, 8) != 0 || sb.crc != uh_sb_crc (block))
      continue;
    if (!found || sb.generation > out->generation)
      *out = sb;
    found = true;
  }
  return found;
}

static const struct msnap *
model_by_id (const struct wl *w, uint64_t id)
{
  for (size_t i = 0; i < w->nsnaps; i++)
    if (w->snaps[i].id == id)
      return &w->snaps[i];
  return NULL;
}

#define FAIL(...) do { snprintf (msg, msglen, __VA_ARGS__); return false; } \
                  while (0)

/* Changed-block tracking after recovery: every chunk that the diff of
 * `from` to `to` (SC_DIFF_LIVE: the live volume) does not report is
 * the same in their images `a` and `b` (for the live volume, the origin
 * as recovered: a crash may only make a diff larger, never miss a
 * change).  Read in small pages, so paging is exercised too. */
static bool
unchanged_same (struct checker *ck, const struct sc_snapshot_info *f,
                const struct sc_snapshot_info *t, const uint8_t *a,
                const uint8_t *b, char *msg, size_t msglen)
{
  struct wl *w = ck->w;
  uint64_t nchunks = (w->size + w->cs - 1) / w->cs;
  uint8_t *changed = xrealloc (NULL, nchunks);
  memset (changed, 0, nchunks);
  struct sc_chunk_range runs[7];
  uint64_t start = 0;
  while (start < nchunks) {
    size_t n;
    uint64_t next;
    int r = sc_diff_changes (sc_volume_diff (w->v), f->id,
                             t ? t->id : SC_DIFF_LIVE, start, runs, 7, &n,
                             &next);
    if (r < 0 || next <= start) {
      free (changed);
      FAIL ("diff %s to %s: %s", f->name, t ? t->name : "live",
            r < 0 ? strerror (-r) : "no progress");
    }
    for (size_t i = 0; i < n; i++)
      memset (changed + runs[i].first, 1, runs[i].count);
    start = next;
  }
  ck->diffs_checked++;
  for (uint64_t c = 0; c < nchunks; c++) {
    uint64_t off = c * w->cs;
    uint64_t len = w->size - off < w->cs ? w->size - off : w->cs;
    if (changed[c] || memcmp (a + off, b + off, len) == 0)
      continue;
    free (changed);
    FAIL ("diff %s (id %" PRIu64 ") to %s reports chunk %" PRIu64 " "
          "unchanged, but it differs", f->name, f->id,
          t ? t->name : "the live volume", c);
  }
  free (changed);
  return true;
}

/* Every valid snapshot and checkpoint against the live volume and each
 * later one. */
static bool
check_tracking (struct checker *ck, const struct sc_snapshot_info *infos,
                size_t n, char *msg, size_t msglen)
{
  struct wl *w = ck->w;
  for (size_t i = 0; i < n; i++) {
    if (infos[i].invalid_reason != SC_VALID)
      continue;
    const uint8_t *a = model_by_id (w, infos[i].id)->image;
    if (!unchanged_same (ck, &infos[i], NULL, a, ck->img[CR_ORIGIN].buf,
                         msg, msglen))
      return false;
    for (size_t j = i + 1; j < n; j++)
      if (infos[j].invalid_reason == SC_VALID &&
          !unchanged_same (ck, &infos[i], &infos[j], a,
                           model_by_id (w, infos[j].id)->image, msg,
                           msglen))
        return false;
  }
  return true;
}

/* What must be listed at crash point k: every snapshot created, and its
 * deletion not begun. */
static bool
none_missing (struct wl *w, const struct sc_snapshot_info *infos, size_t n,
              size_t k, char *msg, size_t msglen)
{
  for (size_t i = 0; i < w->nsnaps; i++) {
    const struct msnap *m = &w->snaps[i];
    bool created = m->setup || m->c_end <= k;
    bool delete_begun = m->d_setup || m->d_start < k;
    if (!created || delete_begun)
      continue;
    bool listed = false;
    for (size_t j = 0; j < n; j++)
      listed |= infos[j].id == m->id;
    if (!listed) {
      snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ") is missing, but "
                "its creation had returned (records %zu-%zu%s)", m->name,
                m->id, m->c_start, m->c_end,
                m->setup ? ", before recording" : "");
      return false;
    }
  }
  return true;
}

/* The snapshots after recovery at crash point k. */
static bool
check_snapshots (struct checker *ck, size_t k, bool volatile_unclean,
                 char *msg, size_t msglen)
{
  struct wl *w = ck->w;
  struct sc_snapshot_info *infos;
  size_t n;
  int r = sc_diff_snapshot_list (sc_volume_diff (w->v), &infos, &n);
  if (r < 0)
    FAIL ("listing snapshots: %s", strerror (-r));
  bool ok = true;
  char why[256];
  for (size_t i = 0; i < n && ok; i++) {
    const struct sc_snapshot_info *s = &infos[i];
    const struct msnap *m = model_by_id (w, s->id);
    if (!m) {
      snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ") is listed but "
                "was never created", s->name, s->id);
      ok = false;
    }
    else if (strcmp (m->name, s->name) != 0) {
      snprintf (msg, msglen, "snapshot id %" PRIu64 " is named %s, want %s",
                s->id, s->name, m->name);
      ok = false;
    }
    else if (!m->setup && m->c_start >= k) {
      snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ") exists, but its "
                "creation began only at record %zu", s->name, s->id,
                m->c_start);
      ok = false;
    }
    else if (volatile_unclean) {
      if (s->invalid_reason != SC_INVALID_VOLATILE) {
        snprintf (msg, msglen, "durability=volatile, unclean stop: snapshot "
                  "%s (id %" PRIu64 ") has invalid_reason %u, want %u "
                  "(SC_INVALID_VOLATILE)", s->name, s->id,
                  s->invalid_reason, SC_INVALID_VOLATILE);
        ok = false;
      }
    }
    else if (m->d_end <= k) {
      snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ") is back, but its "
                "deletion had returned at record %zu", s->name, s->id,
                m->d_end);
      ok = false;
    }
    else if (s->checkpoint && !m->ckpt &&
             (m->k_start == NEVER || (!m->k_setup && m->k_start >= k))) {
      snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ") is a checkpoint, "
                "but it was never kept as one by record %zu", s->name,
                s->id, k);
      ok = false;
    }
    else if (!s->checkpoint && (m->ckpt || m->k_setup || m->k_end <= k)) {
      snprintf (msg, msglen, "%s %s (id %" PRIu64 ") is a snapshot, but it "
                "%s", m->ckpt ? "checkpoint" : "snapshot", s->name, s->id,
                m->ckpt ? "was created as a checkpoint"
                        : "was kept as a checkpoint");
      ok = false;
    }
    if (!ok)
      break;

    if (s->checkpoint) {
      /* Never read; what it keeps is checked by check_tracking. */
      ck->checkpoints_seen++;
      r = sc_volume_snapshot_read (w->v, s->id, ck->buf, 4096, 0);
      if (r >= 0) {
        snprintf (msg, msglen, "checkpoint %s was read", s->name);
        ok = false;
      }
      if (s->invalid_reason != SC_VALID)
        ck->invalid_seen++;
    }
    else if (s->invalid_reason == SC_VALID) {
      if (s->volume_size != w->size) {
        snprintf (msg, msglen, "snapshot %s: volume_size %" PRIu64 ", want %"
                  PRIu64, s->name, s->volume_size, w->size);
        ok = false;
        break;
      }
      ck->images_compared++;
      if (!same_image (w->v, s->id, m->image, w->size, w->cs, ck->buf, why,
                       sizeof why)) {
        snprintf (msg, msglen, "snapshot %s (id %" PRIu64 ", created at "
                  "records %zu-%zu%s) is reported valid but differs from "
                  "its model image: %s", s->name, s->id, m->c_start,
                  m->c_end, m->setup ? ", before recording" : "", why);
        ok = false;
      }
    }
    else {
      ck->invalid_seen++;
      /* Never served. */
      r = sc_volume_snapshot_read (w->v, s->id, ck->buf, 4096, 0);
      if (r != -EIO) {
        snprintf (msg, msglen, "snapshot %s is invalid (reason %u), but a "
                  "read of it returned %d, not -EIO", s->name,
                  s->invalid_reason, r);
        ok = false;
      }
    }
  }

  if (ok && !volatile_unclean)
    ok = none_missing (w, infos, n, k, msg, msglen);
  if (ok && !volatile_unclean)
    ok = check_tracking (ck, infos, n, msg, msglen);
  free (infos);
  return ok;
}

/* The live volume at crash point k, on the image (recovery never changes
 * it, which check_point verifies). */
static bool
check_live (struct checker *ck, size_t k, char *msg, size_t msglen)
{
  struct wl *w = ck->w;
  const struct cr_image *img = &ck->img[CR_ORIGIN];
  if (img->size != w->size)
    FAIL ("the origin image has %" PRIu64 " bytes, want %" PRIu64,
          img->size, w->size);
  const struct mflush *fl = &w->flushes[0];
  for (size_t i = 0; i < w->nflushes; i++)
    if (w->flushes[i].end <= k && w->flushes[i].cstart > fl->cstart)
      fl = &w->flushes[i];
  const uint8_t *base = fl->image;
  /* The ops that may show over it: not in it, and begun by k. */
  size_t nc = 0;
  for (size_t j = 0; j < w->nops && w->ops[j].start < k; j++)
    if (w->ops[j].cend >= fl->cstart && w->ops[j].key < k)
      ck->cand[nc++] = &w->ops[j];
  /* ok[b]: byte b is explained, by the flushed image or by an op. */
  uint8_t *ok = ck->ok;
  bool all = true;
  for (uint64_t off = 0; off < w->size; off += 4096) {
    uint64_t n = w->size - off < 4096 ? w->size - off : 4096;
    if (memcmp (img->buf + off, base + off, n) == 0) {
      memset (ok + off, 1, n);
      continue;
    }
    all = false;
    for (uint64_t b = off; b < off + n; b++)
      ok[b] = img->buf[b] == base[b];
  }
  if (all)
    return true;
  for (size_t j = 0; j < nc; j++) {
    const struct mop *o = ck->cand[j];
    for (uint64_t b = o->off; b < o->off + o->len; b++)
      ok[b] |= (o->data ? o->data[b - o->off] : 0) == img->buf[b];
  }
  for (uint64_t b = 0; b < w->size; b++) {
    if (!ok[b])
        FAIL ("live byte %" PRIu64 " (chunk %" PRIu64 ") is %#x: the "
              "content flushed by record %zu is %#x, and no later write "
              "put %#x there", b, b / w->cs, img->buf[b], fl->end, base[b],
              img->buf[b]);
  }
  return true;
}

/* What the workload was doing at crash point k. */
static void
describe_point (const struct wl *w, size_t k, char *out, size_t len)
{
  snprintf (out, len, "between operations");
  size_t used = 0;
  for (size_t i = 0; i < w->nevents && used + 1 < len; i++)
    if (w->events[i].start < k && k <= w->events[i].end)
      used += (size_t) snprintf (out + used, len - used, "%s %s (records "
                                 "%zu-%zu)", used ? ", and" : "during",
                                 w->events[i].what, w->events[i].start,
                                 w->events[i].end);
  if (used)
    return;
  for (size_t i = w->nevents; i-- > 0;)
    if (w->events[i].end <= k) {
      snprintf (out, len, "after %s (records %zu-%zu)", w->events[i].what,
                w->events[i].start, w->events[i].end);
      return;
    }
}

static const char *
op_text (const struct cr_op *op, char *buf, size_t len)
{
  static const char *kinds[] = { "write", "zero", "extend", "fdatasync" };
  snprintf (buf, len, "%s of the %s", kinds[op->kind],
            op->file == CR_ORIGIN ? "origin" : "diff area");
  if (op->kind != CR_SYNC) {
    size_t l = strlen (buf);
    snprintf (buf + l, len - l, " [%" PRIu64 ", +%" PRIu64 ")", op->off,
              op->len);
  }
  return buf;
}

static const char *
save_dir (void);

static const struct mevent *
event_of (const struct wl *w, uint32_t tag);

static void
save_images (const struct checker *ck, size_t k)
{
  const char *dir = getenv ("CRASH_SAVE");
  if (!dir || !*dir)
    return;
  for (int f = 0; f < CR_NFILES; f++) {
    char path[4096];
    snprintf (path, sizeof path, "%s/%s-k%zu-%s", dir, ck->w->cfg->name, k,
              f == CR_ORIGIN ? "origin" : "diff");
    uh_write_file (path, ck->img[f].buf, ck->img[f].size);
  }
}

/* The harness's rewrite of the origin file (below) is the only change
 * made to it after the crash, and origin-changed=accept takes a change
 * only after a clean stop: mark the stamps of the diff-area image as
 * left by one (tests/unit-origin-stamp.c tests the refusal). */
static void
stamp_as_clean_stop (struct cr_image *img)
{
  for (int c = 0; c < SC_SB_COPIES; c++) {
    if (img->size < (uint64_t) (c + 1) * SC_SB_SIZE)
      break;
    uint8_t *block = img->buf + c * SC_SB_SIZE;
    struct sc_sb_disk sb;
    memcpy (&sb, block, sizeof sb);
    if (memcmp (sb.magic, SC_SB_MAGIC, 8) != 0 ||
        sb.crc != uh_sb_crc (block) || sb.stamp_state != SC_STAMP_UNWRITTEN)
      continue;
    sb.stamp_flags |= SC_STAMP_F_CLEAN_STOP;
    memcpy (block, &sb, sizeof sb);
    uh_sb_fix_crc (block);
  }
}

static void
check_point (struct checker *ck, size_t k, enum cr_variant var)
{
  struct wl *w = ck->w;
  struct cr_state_info info;
  cr_build (&ck->b, k, var, &ck->rng, ck->img, &info);
  ck->points++;
  ck->per_variant[var]++;
  for (int f = 0; f < CR_NFILES; f++) {
    ck->torn += info.torn[f];
    ck->pending_applied += info.applied[f];
  }
  stamp_as_clean_stop (&ck->img[CR_DIFF]);
  materialize (w->origin, &ck->img[CR_ORIGIN], &ck->shadow[CR_ORIGIN]);
  materialize (w->diff, &ck->img[CR_DIFF], &ck->shadow[CR_DIFF]);

  struct sc_sb_disk sb;
  bool have_sb = image_sb (&ck->img[CR_DIFF], &sb);
  bool clean = have_sb && (sb.flags & SC_SB_CLEAN);
  bool volatile_unclean = w->cfg->volatile_mode && have_sb && !clean &&
                          (sb.flags & SC_SB_VOLATILE);
  ck->clean_opens += clean;

  char msg[1024] = "", msg2[512] = "";
  bool ok = true;
  cr_guard_start (&w->log);
  /* Writing the crash image into the origin file moves its ctime, which
   * the origin watch rightly takes for a change made behind the engine's
   * back: accept it (tests/unit-origin-stamp.c and
   * tests/test-origin-watch.sh test the watch itself). */
  struct sc_volume_config cfg = {
    .origin_path = w->origin, .diff_path = w->diff, .chunk_size = w->cs,
    .volatile_durability = w->cfg->volatile_mode,
    .origin_changed_accept = true,
  };
  char err[512] = "";
  int r = sc_volume_open (&cfg, &w->v, err, sizeof err);
  if (r < 0) {
    ck->refused++;
    snprintf (msg, sizeof msg, "recovery refused the diff area (%s): %s",
              strerror (-r), err);
    ok = false;
  }
  else {
    ok = check_snapshots (ck, k, volatile_unclean, msg, sizeof msg);
    sc_volume_close (w->v);
    w->v = NULL;
  }
  size_t changes = cr_guard_stop ();

  /* Recovery never writes to the origin. */
  cr_image_load (&ck->shadow[CR_ORIGIN], w->origin);
  const struct cr_image *o = &ck->img[CR_ORIGIN], *s = &ck->shadow[CR_ORIGIN];
  if (changes || o->size != s->size || memcmp (o->buf, s->buf, o->size)) {
    size_t l = strlen (msg);
    snprintf (msg + l, sizeof msg - l, "%srecovery changed the origin (%zu "
              "writes or fallocates)", ok ? "" : "; ", changes);
    ok = false;
  }
  cr_image_load (&ck->shadow[CR_DIFF], w->diff);

  if (!check_live (ck, k, msg2, sizeof msg2)) {
    size_t l = strlen (msg);
    snprintf (msg + l, sizeof msg - l, "%s%s", ok ? "" : "; ", msg2);
    ok = false;
  }
  if (ok)
    return;

  if (ck->failures++ < MAX_FAILURES) {
    char where[640], last[128] = "none";
    describe_point (w, k, where, sizeof where);
    if (k > 0)
      op_text (&w->log.ops[k - 1], last, sizeof last);
    fprintf (stderr, "crash: FAIL %s seed %#" PRIx64 " crash point %zu of "
             "%zu, variant %s, %s; last record: %s; superblock %s%s; "
             "origin %zu durable + %zu pending (%zu applied, %zu torn), "
             "diff area %zu durable + %zu pending (%zu applied, %zu torn): "
             "%s (again: CRASH_REPLAY=%s CRASH_ONLY=%zu)\n",
             w->cfg->name, base_seed (), k, w->log.n, cr_variant_name (var),
             where, last, !have_sb ? "none valid" : clean ? "CLEAN" : "unclean",
             have_sb && (sb.flags & SC_SB_VOLATILE) ? " VOLATILE" : "",
             info.durable_ops[0], info.pending[0], info.applied[0],
             info.torn[0], info.durable_ops[1], info.pending[1],
             info.applied[1], info.torn[1], msg, save_dir (), k);
    /* The records since the earlier of the two last syncs. */
    size_t from = ck->b.last_sync[0] < ck->b.last_sync[1]
                  ? ck->b.last_sync[0] : ck->b.last_sync[1];
    if (from > 0)
      from--;
    if (k - from > 24)
      from = k - 24;
    for (size_t i = from; i < k; i++) {
      char t[128], by[128] = "";
      const struct mevent *e = event_of (w, w->log.ops[i].tag);
      if (e)
        snprintf (by, sizeof by, " (by the %s)", e->what);
      fprintf (stderr, "crash:   record %zu%s: %s: %s\n", i, by,
               op_text (&w->log.ops[i], t, sizeof t),
               ck->b.fate[i] == 'D' ? "durable" : ck->b.fate[i] == 'a'
               ? "applied" : ck->b.fate[i] == 't' ? "torn" : ck->b.fate[i]
               == 's' ? "completed" : ck->b.fate[i] == 'i' ? "in flight"
               : "lost");
    }
    save_images (ck, k);
  }
}

static void
summary_add (size_t points);

/* ---- what the record holds: checkpoints, concurrency -------------------- */

/* A journal switch: a superblock write with a new nonce at record `sw`;
 * the new journal's first slot was first touched at record `begin`. */
struct ckpt_span {
  size_t begin, sw, sync;       /* sync: the fdatasync after sw */
  bool serving;                 /* not inside an open */
};

static const struct mevent *
event_of (const struct wl *w, uint32_t tag)
{
  for (size_t i = 0; i < w->nevents; i++)
    if (w->events[i].tag == tag)
      return &w->events[i];
  return NULL;
}

static size_t
find_checkpoints (const struct wl *w, struct ckpt_span **out)
{
  struct sc_sb_disk sb;
  uint64_t nonce = image_sb (&w->init[CR_DIFF], &sb) ? sb.journal_nonce : 0;
  size_t n = 0, last_sb = 0;
  struct ckpt_span *v = NULL;
  for (size_t i = 0; i < w->log.n; i++) {
    const struct cr_op *op = &w->log.ops[i];
    if (op->file != CR_DIFF || op->kind != CR_WRITE ||
        op->off >= SC_SB_AREA || op->len != SC_SB_SIZE)
      continue;
    memcpy (&sb, op->data, sizeof sb);
    if (sb.journal_nonce != nonce) {
      nonce = sb.journal_nonce;
      uint64_t lo = sb.journal_head * w->cs, hi = lo + w->cs;
      size_t begin = i;
      for (size_t j = last_sb; j < i; j++) {
        const struct cr_op *o = &w->log.ops[j];
        if (o->file == CR_DIFF && o->kind != CR_SYNC && o->off < hi &&
            o->off + o->len > lo) {
          begin = j;
          break;
        }
      }
      size_t synced = i + 1;
      while (synced < w->log.n && !(w->log.ops[synced].kind == CR_SYNC &&
                                    w->log.ops[synced].file == CR_DIFF))
        synced++;
      const struct mevent *e = event_of (w, op->tag);
      v = xrealloc (v, (n + 1) * sizeof *v);
      v[n++] = (struct ckpt_span) {
        .begin = begin, .sw = i, .sync = synced,
        .serving = e && strcmp (e->what, "open") != 0,
      };
    }
    last_sb = i;
  }
  *out = v;
  return n;
}

/* Diff-area fdatasyncs issued while two or more live ops had written
 * copies and not yet changed the origin: all of them were waiting for a
 * group commit, which this one is or precedes. */
static size_t
shared_commits (const struct wl *w)
{
  size_t ntags = (size_t) atomic_load (&w->next_tag) + 1, n = 0;
  size_t *first = xrealloc (NULL, ntags * sizeof *first);
  for (size_t t = 0; t < ntags; t++)
    first[t] = CR_NEVER;
  for (size_t i = 0; i < w->log.n; i++) {
    const struct cr_op *op = &w->log.ops[i];
    if (op->file == CR_DIFF && op->kind == CR_WRITE && op->tag < ntags &&
        first[op->tag] == CR_NEVER)
      first[op->tag] = i;
  }
  for (size_t i = 0; i < w->log.n; i++) {
    const struct cr_op *op = &w->log.ops[i];
    if (op->file != CR_DIFF || op->kind != CR_SYNC)
      continue;
    unsigned waiting = 0;
    for (size_t j = 0; j < w->nops && waiting < 2; j++) {
      const struct mop *o = &w->ops[j];
      waiting += o->recorded && first[o->tag] < i && o->key > i;
    }
    n += waiting >= 2;
  }
  free (first);
  return n;
}

/* Live ops in flight at crash point k. */
static unsigned
in_flight (const struct wl *w, size_t k)
{
  unsigned n = 0;
  for (size_t j = 0; j < w->nops && w->ops[j].start < k; j++)
    n += w->ops[j].recorded && k < w->ops[j].end;
  return n;
}

struct verdict {
  size_t points, failures, invalid;
};

/* The line a workload's run prints: what was recorded, what was checked. */
static void
say_run (const struct wl *w, const struct checker *ck, size_t n, double secs)
{
  size_t syncs = 0, writes = 0, fallocs = 0;
  for (size_t i = 0; i < n; i++) {
    syncs += w->log.ops[i].kind == CR_SYNC;
    writes += w->log.ops[i].kind == CR_WRITE;
    fallocs += w->log.ops[i].kind == CR_ZERO ||
               w->log.ops[i].kind == CR_EXTEND;
  }
  printf ("crash: %s (chunk %u, %" PRIu64 " bytes, %s%s): %zu records "
          "(%zu writes, %zu fallocates, %zu fdatasyncs) from %u writes, %u "
          "zeroes, %u trims, %u creates, %u deletes, %u flushes, %u "
          "restarts; %zu crash states checked at %zu crash points (none %zu, all %zu, prefix "
          "%zu, random %zu, in-place %zu; %zu pending ops applied, %zu "
          "torn), %zu "
          "snapshot images compared, %zu invalid snapshots seen, %zu clean "
          "opens, %zu refused; %zu failures; %.1f s; seed %#" PRIx64 "\n",
          w->cfg->name, w->cs, w->size,
          w->cfg->volatile_mode ? "volatile" : "safe",
          w->cfg->unclean_start ? ", after an unclean stop" : "", n, writes,
          fallocs, syncs, w->n_writes, w->n_zeroes, w->n_trims, w->n_creates,
          w->n_deletes, w->n_flushes, w->n_restarts, ck->points, ck->distinct,
          ck->per_variant[CR_V_NONE], ck->per_variant[CR_V_ALL],
          ck->per_variant[CR_V_PREFIX], ck->per_variant[CR_V_RANDOM],
          ck->per_variant[CR_V_INPLACE], ck->pending_applied, ck->torn, ck->images_compared, ck->invalid_seen,
          ck->clean_opens, ck->refused, ck->failures, secs, base_seed ());
}

static struct verdict
run_checks (struct wl *w)
{
  struct checker ck = { .w = w };
  cr_builder_init (&ck.b, &w->log, w->init);
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&ck.img[f], cr_max_end (&w->log, f, w->init[f].size));
    cr_image_alloc (&ck.shadow[f], 0);
    cr_image_load (&ck.shadow[f], f == CR_ORIGIN ? w->origin : w->diff);
  }
  ck.buf = xrealloc (NULL, 1 << 20);
  ck.cand = xrealloc (NULL, (w->nops + 1) * sizeof *ck.cand);
  ck.ok = xrealloc (NULL, w->size);

  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  size_t n = w->log.n;
  size_t want = (size_t) env_u64 ("CRASH_POINTS", w->cfg->points);
  if (want == 0)
    want = n + 1;
  const char *only = getenv ("CRASH_ONLY");
  struct ckpt_span *cks;
  size_t ncks = find_checkpoints (w, &cks), ck_serving = 0;
  size_t in_ckpt = 0, in_switch = 0, after_ckpt = 0, concurrent = 0;
  unsigned max_flight = 0;
  for (size_t i = 0; i < ncks; i++)
    ck_serving += cks[i].serving;
  uint64_t sel = w->seed ^ 0x5e1ec7;
  size_t need = want < n + 1 ? want : n + 1;
  for (size_t k = 0; k <= n; k++) {
    /* Selection sampling: `need` of the n + 1 points, evenly likely. */
    bool pick = uh_rand_below (&sel, n + 1 - k) < need;
    if (pick)
      need--;
    if (only && *only ? k != strtoull (only, NULL, 0) : !pick)
      continue;
    /* Each point has its own generator, so CRASH_ONLY=k rebuilds the very
     * same crash state. */
    ck.rng = w->seed ^ 0xc4a5b00cull ^ (k * 0x9e3779b97f4a7c15ull);
    uint64_t v = uh_rand_below (&ck.rng, 100);
    enum cr_variant var = v < 12 ? CR_V_NONE : v < 34 ? CR_V_ALL
                          : v < 54 ? CR_V_PREFIX : v < 84 ? CR_V_RANDOM
                          : CR_V_INPLACE;
    /* Around a checkpoint's switch (its last writes, the superblock, the
     * fdatasyncs), a few crash points decide everything: check them with
     * every variant, and random ones more than once. */
    bool hot = false;
    for (size_t i = 0; i < ncks; i++) {
      in_ckpt += cks[i].serving && cks[i].begin < k && k <= cks[i].sw;
      in_switch += cks[i].serving && cks[i].sw < k && k <= cks[i].sync;
      hot |= cks[i].sw <= k + 2 && k <= cks[i].sync + 1;
    }
    ck.distinct++;
    unsigned reps = hot ? CR_V_COUNT + 3 : 1;
    for (unsigned r = 0; r < reps; r++)
      check_point (&ck, k, r == 0 ? var : r < CR_V_COUNT
                   ? (enum cr_variant) ((var + r) % CR_V_COUNT)
                   : CR_V_RANDOM);
    after_ckpt += ncks && ck_serving && k > cks[0].sync;
    unsigned fl = in_flight (w, k);
    concurrent += fl >= 2;
    if (fl > max_flight)
      max_flight = fl;
  }
  free (cks);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  double secs = (double) (t1.tv_sec - t0.tv_sec) +
                (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;

  say_run (w, &ck, n, secs);
  if (w->cfg->tracking)
    printf ("crash: %s: changed-block tracking: %zu checkpoints listed at "
            "the crash points, %zu diffs checked against the images\n",
            w->cfg->name, ck.checkpoints_seen, ck.diffs_checked);
  if (ck_serving)
    printf ("crash: %s: %zu checkpoints while serving (%zu at open); crash "
            "points: %zu with a new journal begun and the superblock not "
            "switched, %zu between the switch and its fdatasync (every "
            "variant near a switch), %zu after the first switch\n", w->cfg->name, ck_serving, ncks - ck_serving,
            in_ckpt, in_switch, after_ckpt);
  if (w->cfg->writers > 1)
    printf ("crash: %s: %u writer threads; %zu crash points with 2 or more "
            "live ops in flight (at most %u); %zu diff-area fdatasyncs with "
            "2 or more copying writes waiting on a group commit\n",
            w->cfg->name, w->cfg->writers, concurrent, max_flight,
            shared_commits (w));
  if (w->cfg->write_back)
    printf ("crash: %s: %zu writes completed by the write-back queue\n",
            w->cfg->name, w->n_queued);
  fflush (stdout);
  summary_add (ck.points);

  struct verdict v = { .points = ck.points, .failures = ck.failures,
                       .invalid = ck.invalid_seen };
  free (ck.buf);
  free (ck.cand);
  free (ck.ok);
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_free (&ck.img[f]);
    cr_image_free (&ck.shadow[f]);
  }
  cr_builder_free (&ck.b);
  return v;
}

/* ---- the total over all workloads ------------------------------------------
 *
 * Each test runs in its own process; they add their counts to a file named
 * after the runner, which prints the total when all are done. */

static void
summary_path (char *buf, size_t len, pid_t runner)
{
  snprintf (buf, len, "/tmp/shadowcopy-crash-summary-%ld", (long) runner);
}

static void
summary_add (size_t points)
{
  char path[128];
  summary_path (path, sizeof path, getppid ());
  FILE *fp = fopen (path, "a");
  if (fp) {
    fprintf (fp, "%zu\n", points);
    fclose (fp);
  }
}

ReportHook (PRE_ALL) (struct criterion_test_set *set)
{
  (void) set;
  char path[128];
  summary_path (path, sizeof path, getpid ());
  unlink (path);
}

ReportHook (POST_ALL) (struct criterion_global_stats *stats)
{
  (void) stats;
  char path[128];
  summary_path (path, sizeof path, getpid ());
  FILE *fp = fopen (path, "r");
  if (!fp)
    return;
  size_t total = 0, n, workloads = 0;
  while (fscanf (fp, "%zu", &n) == 1) {
    total += n;
    workloads++;
  }
  fclose (fp);
  unlink (path);
  printf ("crash: %zu crash states checked in total over %zu workloads "
          "(seed %#" PRIx64 ")\n", total, workloads, base_seed ());
  fflush (stdout);
}

/* ---- saving and replaying a record ---------------------------------------
 *
 * With writer threads (and, through timing, with one: the flushes before
 * a snapshot's hold repeat while they are slow) a run's record is not the
 * same twice, so a failing workload's record and model are saved, and
 * CRASH_REPLAY=dir checks the saved one instead of running the workload
 * again.  The format is this build's own (structs as they are in memory). */

static void
record_path (char *buf, size_t len, const char *dir, const char *name)
{
  snprintf (buf, len, "%s/shadowcopy-crash-%s.record", dir, name);
}

static const char *
save_dir (void)
{
  const char *dir = getenv ("CRASH_SAVE");
  if (!dir || !*dir)
    dir = getenv ("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

static void
put (FILE *fp, const void *p, size_t n)
{
  cr_assert_eq (fwrite (p, 1, n, fp), n, "writing the record: %s",
                strerror (errno));
}

static void
get (FILE *fp, void *p, size_t n)
{
  cr_assert_eq (fread (p, 1, n, fp), n, "the saved record is truncated");
}

static void *
get_new (FILE *fp, size_t n)
{
  void *p = xrealloc (NULL, n);
  get (fp, p, n);
  return p;
}

#define PUT(fp, x) put ((fp), &(x), sizeof (x))
#define GET(fp, x) get ((fp), &(x), sizeof (x))
#define RECORD_MAGIC 0x5c0c4a5e0002ull

static void
save_workload (const struct wl *w)
{
  char path[4096];
  record_path (path, sizeof path, save_dir (), w->cfg->name);
  FILE *fp = fopen (path, "w");
  if (!fp) {
    fprintf (stderr, "crash: %s: %s\n", path, strerror (errno));
    return;
  }
  uint64_t magic = RECORD_MAGIC;
  uint32_t next_tag = (uint32_t) atomic_load (&w->next_tag);
  PUT (fp, magic);
  PUT (fp, w->seed);
  PUT (fp, w->size);
  PUT (fp, w->cs);
  PUT (fp, next_tag);
  for (int f = 0; f < CR_NFILES; f++) {
    PUT (fp, w->init[f].size);
    put (fp, w->init[f].buf, w->init[f].size);
  }
  put (fp, w->live0, w->size);
  put (fp, w->live, w->size);
  PUT (fp, w->log.n);
  for (size_t i = 0; i < w->log.n; i++) {
    PUT (fp, w->log.ops[i]);
    if (w->log.ops[i].kind == CR_WRITE)
      put (fp, w->log.ops[i].data, w->log.ops[i].len);
  }
  PUT (fp, w->nops);
  for (size_t i = 0; i < w->nops; i++) {
    PUT (fp, w->ops[i]);
    if (w->ops[i].data)
      put (fp, w->ops[i].data, w->ops[i].len);
  }
  PUT (fp, w->nflushes);
  for (size_t i = 0; i < w->nflushes; i++) {
    PUT (fp, w->flushes[i]);
    put (fp, w->flushes[i].image, w->size);
  }
  PUT (fp, w->nsnaps);
  for (size_t i = 0; i < w->nsnaps; i++) {
    PUT (fp, w->snaps[i]);
    put (fp, w->snaps[i].image, w->size);
  }
  PUT (fp, w->nevents);
  put (fp, w->events, w->nevents * sizeof *w->events);
  unsigned counts[] = { w->n_writes, w->n_zeroes, w->n_trims, w->n_creates,
                        w->n_deletes, w->n_flushes, w->n_restarts };
  PUT (fp, counts);
  cr_assert_eq (fclose (fp), 0);
  fprintf (stderr, "crash: %s: the record of this run is saved in %s; "
           "CRASH_REPLAY=%s checks it again\n", w->cfg->name, path,
           save_dir ());
}

/* The superblock blocks of a replayed record name this run's origin
 * (recovery refuses a diff area made for another file). */
static void
repoint_sb (uint8_t *block, const struct stat *st)
{
  struct sc_sb_disk sb;
  memcpy (&sb, block, sizeof sb);
  if (memcmp (sb.magic, SC_SB_MAGIC, 8) != 0 || sb.crc != uh_sb_crc (block))
    return;
  sb.origin_dev = st->st_dev;
  sb.origin_ino = st->st_ino;
  memcpy (block, &sb, sizeof sb);
  uh_sb_fix_crc (block);
}

/* The saved record of this workload, if CRASH_REPLAY names a directory
 * that holds one. */
static bool
load_workload (struct wl *w, const struct wl_cfg *cfg)
{
  const char *dir = getenv ("CRASH_REPLAY");
  char path[4096];
  if (!dir || !*dir)
    return false;
  record_path (path, sizeof path, dir, cfg->name);
  FILE *fp = fopen (path, "r");
  if (!fp)
    return false;
  memset (w, 0, sizeof *w);
  w->cfg = cfg;
  w->origin = uh_path ("origin");
  w->diff = uh_path ("diff");
  w->trims = uh_punch_reads_zeros ();
  pthread_mutex_init (&w->mlock, NULL);
  if (cfg->ckpt_extra) {
    ckpt_extra = cfg->ckpt_extra;
    sc_ckpt_limit_hook = ckpt_limit;
    sc_ckpt_slice = 3;          /* streamed in many slices */
    sc_ckpt_strict = true;      /* a change that does not wait aborts */
  }
  uint64_t magic;
  uint32_t next_tag;
  GET (fp, magic);
  cr_assert_eq (magic, RECORD_MAGIC, "%s: not a record of this build", path);
  GET (fp, w->seed);
  GET (fp, w->size);
  GET (fp, w->cs);
  GET (fp, next_tag);
  atomic_store (&w->next_tag, next_tag);
  for (int f = 0; f < CR_NFILES; f++) {
    uint64_t size;
    GET (fp, size);
    cr_image_alloc (&w->init[f], size);
    get (fp, w->init[f].buf, size);
    w->init[f].size = size;
  }
  w->live0 = get_new (fp, w->size);
  w->live = get_new (fp, w->size);
  size_t n;
  GET (fp, n);
  w->log.ops = xrealloc (NULL, (n + 1) * sizeof *w->log.ops);
  w->log.n = w->log.cap = n;
  for (size_t i = 0; i < n; i++) {
    struct cr_op *op = &w->log.ops[i];
    GET (fp, *op);
    op->data = op->kind == CR_WRITE ? get_new (fp, op->len) : NULL;
  }
  GET (fp, w->nops);
  w->ops = xrealloc (NULL, (w->nops + 1) * sizeof *w->ops);
  for (size_t i = 0; i < w->nops; i++) {
    GET (fp, w->ops[i]);
    if (w->ops[i].data)
      w->ops[i].data = get_new (fp, w->ops[i].len);
  }
  GET (fp, w->nflushes);
  w->flushes = xrealloc (NULL, (w->nflushes + 1) * sizeof *w->flushes);
  for (size_t i = 0; i < w->nflushes; i++) {
    GET (fp, w->flushes[i]);
    w->flushes[i].image = get_new (fp, w->size);
  }
  GET (fp, w->nsnaps);
  w->snaps = xrealloc (NULL, (w->nsnaps + 1) * sizeof *w->snaps);
  for (size_t i = 0; i < w->nsnaps; i++) {
    GET (fp, w->snaps[i]);
    w->snaps[i].image = get_new (fp, w->size);
  }
  GET (fp, w->nevents);
  w->events = get_new (fp, (w->nevents + 1) * sizeof *w->events
                       - sizeof *w->events);
  unsigned counts[7];
  GET (fp, counts);
  w->n_writes = counts[0];
  w->n_zeroes = counts[1];
  w->n_trims = counts[2];
  w->n_creates = counts[3];
  w->n_deletes = counts[4];
  w->n_flushes = counts[5];
  w->n_restarts = counts[6];
  fclose (fp);

  /* The files, as recording began, made for this run's origin. */
  uh_write_file (w->origin, w->init[CR_ORIGIN].buf, w->init[CR_ORIGIN].size);
  struct stat st;
  cr_assert_eq (stat (w->origin, &st), 0);
  struct cr_image *d = &w->init[CR_DIFF];
  for (uint64_t off = 0; off + SC_SB_SIZE <= d->size && off < SC_SB_AREA;
       off += SC_SB_SIZE)
    repoint_sb (d->buf + off, &st);
  for (size_t i = 0; i < n; i++) {
    struct cr_op *op = &w->log.ops[i];
    if (op->file == CR_DIFF && op->kind == CR_WRITE &&
        op->off < SC_SB_AREA && op->len == SC_SB_SIZE)
      repoint_sb (op->data, &st);
  }
  uh_write_file (w->diff, d->buf, d->size);
  printf ("crash: %s: replaying the record saved in %s\n", cfg->name, path);
  return true;
}

/* ---- the workloads ------------------------------------------------------------ */

static void
crash_test (const struct wl_cfg *cfg)
{
  struct wl w;
  if (!load_workload (&w, cfg))
    run_workload (&w, cfg);
  struct verdict v = run_checks (&w);
  if (v.failures)
    save_workload (&w);
  free_workload (&w);
  cr_assert_eq (v.failures, 0, "%s: %zu of %zu crash points failed (seed %#"
                PRIx64 "; details above)", cfg->name, v.failures, v.points,
                base_seed ());
  if (!cfg->volatile_mode)
    cr_assert_eq (v.invalid, 0, "%s: durability=safe without I/O errors, "
                  "yet %zu snapshots were found invalid", cfg->name,
                  v.invalid);
}

/* Checkpoints while serving (the threshold lowered by the test hook), so
 * crash points fall before, inside and after them. */
Test (crash, safe_4k_chunks_online_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "ckpt-4k", .size = 1 << 20, .chunk = 4096,
    .steps = 200, .points = 0, .ckpt_extra = 24,
  };
  crash_test (&cfg);
}

Test (crash, volatile_64k_chunks_online_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "ckpt-volatile-64k", .size = 2 << 20, .chunk = 65536,
    .volatile_mode = true, .steps = 120, .points = 0, .ckpt_extra = 12,
  };
  crash_test (&cfg);
}

/* Changed-block tracking: checkpoints created and kept among snapshots;
 * at every crash point every diff is checked against the images. */
Test (crash, safe_4k_chunks_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "tracking-4k", .size = 1 << 20, .chunk = 4096,
    .steps = 160, .points = 0, .tracking = true, .ckpt_extra = 40,
  };
  crash_test (&cfg);
}

Test (crash, safe_64k_chunks_concurrent_writers_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "tracking-concurrent-64k", .size = (2 << 20) + 4096,
    .chunk = 65536, .writers = 3, .steps = 40, .points = 0,
    .tracking = true, .ckpt_extra = 16,
  };
  crash_test (&cfg);
}

/* Several writers at once: their copies share group commits, snapshots
 * are created (draining them) and deleted, flushes run among them. */
Test (crash, safe_4k_chunks_concurrent_writers)
{
  static const struct wl_cfg cfg = {
    .name = "concurrent-4k", .size = 1 << 20, .chunk = 4096,
    .writers = 3, .steps = 60, .points = 0,
  };
  crash_test (&cfg);
}

Test (crash, safe_64k_chunks_concurrent_writers_online_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "concurrent-ckpt-64k", .size = (2 << 20) + 8704,
    .chunk = 65536, .writers = 4, .steps = 40, .points = 0,
    .ckpt_extra = 16,
  };
  crash_test (&cfg);
}

/* Write-back: writes acknowledged once queued, copied, committed and
 * written to the origin by the queue's thread; flushes and holds drain
 * the queue.  A crash may lose a queued write (acknowledged, not flushed)
 * but never one a completed flush covers, and every snapshot stays
 * right. */
Test (crash, safe_64k_chunks_concurrent_writers_write_back)
{
  static const struct wl_cfg cfg = {
    .name = "write-back-64k", .size = (2 << 20) + 4096,
    .chunk = 65536, .writers = 3, .steps = 60, .points = 0,
    .write_back = true,
  };
  crash_test (&cfg);
}

/* The same, with the volume's thread as the checkpoint runner. */
Test (crash, safe_4k_chunks_background_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "bg-ckpt-4k", .size = 1 << 20, .chunk = 4096,
    .steps = 200, .points = 0, .ckpt_extra = 24, .bg_ckpt = true,
  };
  crash_test (&cfg);
}

Test (crash, safe_64k_chunks_concurrent_writers_background_checkpoints)
{
  static const struct wl_cfg cfg = {
    .name = "bg-concurrent-ckpt-64k", .size = (2 << 20) + 8704,
    .chunk = 65536, .writers = 4, .steps = 40, .points = 0,
    .ckpt_extra = 16, .bg_ckpt = true,
  };
  crash_test (&cfg);
}

Test (crash, safe_4k_chunks)
{
  static const struct wl_cfg cfg = {
    .name = "safe-4k", .size = 1 << 20, .chunk = 4096,
    .steps = 200, .points = 0,
  };
  crash_test (&cfg);
}

Test (crash, safe_64k_chunks_odd_size_sparse_origin)
{
  static const struct wl_cfg cfg = {
    .name = "safe-64k", .size = (3 << 20) + 20992, .sparse_from = 2 << 20,
    .chunk = 65536, .steps = 160, .points = 0,
  };
  crash_test (&cfg);
}

Test (crash, safe_4k_chunks_after_an_unclean_stop)
{
  static const struct wl_cfg cfg = {
    .name = "safe-4k-unclean", .size = 3 << 19, .chunk = 4096,
    .unclean_start = true, .steps = 160, .points = 0,
  };
  crash_test (&cfg);
}

Test (crash, volatile_4k_chunks)
{
  static const struct wl_cfg cfg = {
    .name = "volatile-4k", .size = 1 << 20, .chunk = 4096,
    .volatile_mode = true, .steps = 160, .points = 0,
  };
  crash_test (&cfg);
}

Test (crash, volatile_64k_chunks)
{
  static const struct wl_cfg cfg = {
    .name = "volatile-64k", .size = 2 << 20, .chunk = 65536,
    .volatile_mode = true, .steps = 100, .points = 0,
  };
  crash_test (&cfg);
}

/* ---- the revert workload --------------------------------------------------
 *
 * A snapshot T, a later snapshot M, writes after each (not recorded); then,
 * recorded: a revert to T that saves the current state as S, recorded
 * paused; live writes (each flushed) that complete the pending chunks they
 * touch; the background copy started, with live writes while it runs; its
 * end (REVERT_END); a last write.  The live writes are disjoint, so each
 * byte has one candidate.  At every crash point, recovered with the revert
 * left paused (the background copy would write the origin):
 *   - before the REVERT record is durable (S absent), the live volume is
 *     the pre-revert disk, and the revert's start had not returned;
 *   - after, every chunk the revert still has pending reads exactly as T
 *     (a live write completes a chunk durably before touching it); every
 *     other chunk of the origin, as the crash left it, holds T's content
 *     or a live write begun before the crash, and each live write whose
 *     flush had returned is there; the live volume reads the same;
 *   - T, M and S are valid and equal their images (S: the pre-revert
 *     disk); recovery wrote nothing to the origin. */

#define RV_SIZE (1u << 20)
#define RV_CS 4096u

struct rv_write {
  uint64_t off, len;
  uint8_t *data;
  size_t start, acked;          /* records before it / after its flush */
};

struct rv_wl {
  char *origin, *diff;
  uint64_t seed, rng;
  uint8_t *t_img, *m_img, *pre;
  struct rv_write w[16];
  size_t nw;
  bool recording;
  size_t rv_start, rv_end;      /* records around the revert's start */
  size_t end_start, end_end;    /* around the wait for its end */
  struct cr_log log;
  struct cr_image init[CR_NFILES];
};

static void
rv_write (struct rv_wl *r, struct sc_volume *v, uint8_t *live,
          uint64_t off, uint64_t len, bool zero)
{
  uint8_t *data = xrealloc (NULL, len);
  for (uint64_t i = 0; i < len; i++)
    data[i] = zero ? 0 : (uint8_t) uh_rand_below (&r->rng, 256);
  size_t start = cr_record_count ();
  int e = zero ? sc_volume_zero (v, (uint32_t) len, off, 0)
               : sc_volume_write (v, data, (uint32_t) len, off, 0);
  cr_assert_eq (e, 0, "revert workload: write at %" PRIu64 ": %d", off, e);
  cr_assert_eq (sc_volume_flush (v), 0);
  if (live)
    memcpy (live + off, data, len);
  if (r->recording) {
    cr_assert_lt (r->nw, sizeof r->w / sizeof r->w[0]);
    r->w[r->nw++] = (struct rv_write) { off, len, data, start,
                                        cr_record_count () };
    return;
  }
  free (data);
}

static struct sc_volume *
rv_open (struct rv_wl *r, bool no_resume)
{
  struct sc_volume_config cfg = {
    .origin_path = r->origin, .diff_path = r->diff, .chunk_size = RV_CS,
    .origin_changed_accept = true, .revert_no_resume = no_resume,
  };
  char err[512] = "";
  struct sc_volume *v;
  int e = sc_volume_open (&cfg, &v, err, sizeof err);
  cr_assert_eq (e, 0, "revert workload: open: %d %s", e, err);
  return v;
}

static void
rv_run (struct rv_wl *r)
{
  memset (r, 0, sizeof *r);
  r->seed = base_seed () ^ name_hash ("revert");
  r->rng = r->seed;
  r->origin = uh_path ("origin");
  r->diff = uh_path ("diff");
  uh_make_file (r->origin, RV_SIZE, r->seed);
  uint8_t *live = xrealloc (NULL, RV_SIZE);
  uh_pattern (live, RV_SIZE, r->seed, 0);

  /* Setup: T, changes, M, more changes; the pre-revert disk. */
  struct sc_volume *v = rv_open (r, false);
  struct sc_snapshot_info info;
  rv_write (r, v, live, 3 * RV_CS, 2 * RV_CS, false);
  cr_assert_eq (sc_volume_snapshot_create (v, "T", NULL, &info), 0);
  r->t_img = xdup (live, RV_SIZE);
  rv_write (r, v, live, 10 * RV_CS, 51 * RV_CS, false);
  rv_write (r, v, live, 100 * RV_CS, 11 * RV_CS, true);
  cr_assert_eq (sc_volume_snapshot_create (v, "M", NULL, &info), 0);
  r->m_img = xdup (live, RV_SIZE);
  rv_write (r, v, live, 150 * RV_CS + 700, 60 * RV_CS, false);
  rv_write (r, v, live, 220 * RV_CS, 10 * RV_CS, false);
  r->pre = xdup (live, RV_SIZE);
  sc_volume_close (v);
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&r->init[f], 0);
    cr_image_load (&r->init[f], f == CR_ORIGIN ? r->origin : r->diff);
  }

  /* Recorded. */
  cr_log_init (&r->log, r->origin, r->diff);
  cr_record_start (&r->log);
  r->recording = true;
  v = rv_open (r, false);
  memcpy (live, r->t_img, RV_SIZE);
  r->rv_start = cr_record_count ();
  uint64_t nlive = 0;
  struct sc_revert_status st;
  int e = sc_volume_revert_start (v, "T", "S", 256 * 1024, SC_REVERT_PAUSED,
                                  &nlive, &st);
  cr_assert_eq (e, 0, "revert start: %d", e);
  r->rv_end = cr_record_count ();
  cr_assert (st.info.todo_chunks > 100, "only %" PRIu64 " chunks to do",
             st.info.todo_chunks);
  /* Paused: live writes complete what they touch. */
  rv_write (r, v, live, 20 * RV_CS + 100, 6000, false);       /* pending */
  rv_write (r, v, live, 105 * RV_CS, RV_CS, false);           /* pending */
  rv_write (r, v, live, 240 * RV_CS, 3000, false);            /* not todo */
  rv_write (r, v, live, 40 * RV_CS, 2 * RV_CS, true);         /* pending */
  rv_write (r, v, live, 190 * RV_CS + 512, 1024, false);      /* pending */
  /* The background copy, with live writes meanwhile. */
  cr_assert_eq (sc_volume_revert_resume (v), 0);
  static const uint64_t during[] = { 30, 160, 215, 250, 55, 201 };
  for (size_t i = 0; i < sizeof during / sizeof during[0]; i++) {
    usleep (120 * 1000);
    rv_write (r, v, live, during[i] * RV_CS + 64, RV_CS, false);
  }
  r->end_start = cr_record_count ();
  for (int i = 0; i < 3000 && sc_diff_revert_active (sc_volume_diff (v)); i++)
    usleep (10 * 1000);
  cr_assert (!sc_diff_revert_active (sc_volume_diff (v)),
             "the revert did not end");
  /* Seen ended, its REVERT_END may still be on its way to the disk (the
   * flag goes down before the commit): a flush makes it durable. */
  cr_assert_eq (sc_volume_flush (v), 0);
  r->end_end = cr_record_count ();
  rv_write (r, v, live, 12 * RV_CS, 100, false);
  uint8_t *buf = xrealloc (NULL, RV_SIZE);
  char msg[256];
  cr_assert (same_image (v, 0, live, RV_SIZE, RV_CS, buf, msg, sizeof msg),
             "revert workload: live at the end: %s", msg);
  free (buf);
  sc_volume_close (v);
  cr_record_stop ();
  free (live);
  cr_assert_eq (r->log.foreign, 0);
  char overlap[256];
  cr_assert (cr_check_overlaps (&r->log, overlap, sizeof overlap), "revert: "
             "%s", overlap);
}

/* Byte b of `got` is explained: T's, or a live write begun before k;
 * and it is the write's when that write's flush had returned by k. */
static bool
rv_byte_ok (const struct rv_wl *r, size_t k, uint64_t b, uint8_t got)
{
  for (size_t i = 0; i < r->nw; i++) {
    const struct rv_write *w = &r->w[i];
    if (b < w->off || b >= w->off + w->len)
      continue;
    if (w->acked <= k)
      return got == w->data[b - w->off];
    if (w->start < k && got == w->data[b - w->off])
      return true;
  }
  return got == r->t_img[b];
}

static bool
rv_check_point (struct rv_wl *r, struct cr_builder *b, struct cr_image *img,
                struct cr_image *shadow, size_t k, enum cr_variant var,
                uint64_t *rng, uint8_t *buf, char *msg, size_t len,
                size_t *pending_seen, size_t *active_seen)
{
  struct cr_state_info si;
  cr_build (b, k, var, rng, img, &si);
  stamp_as_clean_stop (&img[CR_DIFF]);
  materialize (r->origin, &img[CR_ORIGIN], &shadow[CR_ORIGIN]);
  materialize (r->diff, &img[CR_DIFF], &shadow[CR_DIFF]);
  bool ok = true;
  cr_guard_start (&r->log);
  struct sc_volume_config cfg = {
    .origin_path = r->origin, .diff_path = r->diff, .chunk_size = RV_CS,
    .origin_changed_accept = true, .revert_no_resume = true,
  };
  char err[512] = "";
  struct sc_volume *v;
  int e = sc_volume_open (&cfg, &v, err, sizeof err);
  if (e < 0) {
    snprintf (msg, len, "recovery refused the diff area (%s): %s",
              strerror (-e), err);
    cr_guard_stop ();
    return false;
  }
  struct sc_snapshot_info si_s;
  bool started = sc_volume_snapshot_lookup (v, "S", &si_s) == 0;
  const uint8_t *o = img[CR_ORIGIN].buf;
  if (!started) {
    if (k >= r->rv_end) {
      snprintf (msg, len, "the revert's start had returned, and the saved "
                "state S is gone");
      ok = false;
    }
    else if (!same_image (v, 0, r->pre, RV_SIZE, RV_CS, buf, msg, len)) {
      ok = false;
    }
  }
  else {
    struct sc_diff *d = sc_volume_diff (v);
    bool active = sc_diff_revert_active (d);
    *active_seen += active;
    if (!active && k < r->end_start) {
      snprintf (msg, len, "the revert ended before its copy began");
      ok = false;
    }
    if (active && k >= r->end_end) {
      snprintf (msg, len, "the revert's end had been waited for, and the "
                "revert runs");
      ok = false;
    }
    e = sc_volume_read (v, buf, RV_SIZE, 0);
    if (e < 0) {
      snprintf (msg, len, "live read: %s", strerror (-e));
      ok = false;
    }
    for (uint64_t c = 0; ok && c < RV_SIZE / RV_CS; c++) {
      uint64_t pend = 0, next;
      bool pending = active &&
                     sc_diff_revert_pending (d, c, c, &pend, 1, &next) == 1;
      *pending_seen += pending;
      for (uint64_t x = c * RV_CS; ok && x < (c + 1) * RV_CS; x++) {
        if (pending && buf[x] != r->t_img[x]) {
          snprintf (msg, len, "pending chunk %" PRIu64 " reads %#x at byte "
                    "%" PRIu64 ", the target has %#x", c, buf[x], x,
                    r->t_img[x]);
          ok = false;
        }
        else if (!pending && !rv_byte_ok (r, k, x, o[x])) {
          snprintf (msg, len, "chunk %" PRIu64 " (not pending) of the "
                    "origin has %#x at byte %" PRIu64 ": neither the "
                    "target's %#x nor a live write begun by then, or an "
                    "acknowledged write was lost", c, o[x], x, r->t_img[x]);
          ok = false;
        }
        else if (!pending && buf[x] != o[x]) {
          snprintf (msg, len, "live byte %" PRIu64 " reads %#x, the origin "
                    "has %#x", x, buf[x], o[x]);
          ok = false;
        }
      }
    }
    if (ok && (si_s.invalid_reason != SC_VALID ||
               !same_image (v, si_s.id, r->pre, RV_SIZE, RV_CS, buf, msg,
                            len))) {
      if (si_s.invalid_reason != SC_VALID)
        snprintf (msg, len, "the saved state S is invalid");
      ok = false;
    }
  }
  static const char *names[] = { "T", "M" };
  const uint8_t *imgs[] = { r->t_img, r->m_img };
  for (int i = 0; ok && i < 2; i++) {
    struct sc_snapshot_info si_t;
    if (sc_volume_snapshot_lookup (v, names[i], &si_t) < 0 ||
        si_t.invalid_reason != SC_VALID) {
      snprintf (msg, len, "snapshot %s is gone or invalid", names[i]);
      ok = false;
    }
    else if (!same_image (v, si_t.id, imgs[i], RV_SIZE, RV_CS, buf, msg,
                          len)) {
      ok = false;
    }
  }
  sc_volume_close (v);
  size_t changes = cr_guard_stop ();
  cr_image_load (&shadow[CR_ORIGIN], r->origin);
  if (changes || memcmp (shadow[CR_ORIGIN].buf, img[CR_ORIGIN].buf,
                         img[CR_ORIGIN].size) != 0) {
    snprintf (msg, len, "recovery changed the origin");
    ok = false;
  }
  cr_image_load (&shadow[CR_DIFF], r->diff);
  return ok;
}

Test (crash, safe_4k_chunks_revert)
{
  struct rv_wl r;
  rv_run (&r);
  struct cr_builder b;
  struct cr_image img[CR_NFILES], shadow[CR_NFILES];
  cr_builder_init (&b, &r.log, r.init);
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&img[f], cr_max_end (&r.log, f, r.init[f].size));
    cr_image_alloc (&shadow[f], 0);
    cr_image_load (&shadow[f], f == CR_ORIGIN ? r.origin : r.diff);
  }
  uint8_t *buf = xrealloc (NULL, RV_SIZE);
  size_t n = r.log.n, want = (size_t) env_u64 ("CRASH_POINTS", 0);
  size_t need = want && want < n + 1 ? want : n + 1;
  const char *only = getenv ("CRASH_ONLY");
  uint64_t sel = r.seed ^ 0x5e1ec7;
  size_t points = 0, failures = 0, pending_seen = 0, active_seen = 0;
  for (size_t k = 0; k <= n; k++) {
    bool pick = uh_rand_below (&sel, n + 1 - k) < need;
    if (pick)
      need--;
    if (only && *only ? k != strtoull (only, NULL, 0) : !pick)
      continue;
    uint64_t rng = r.seed ^ 0xc4a5b00cull ^ (k * 0x9e3779b97f4a7c15ull);
    enum cr_variant var = (enum cr_variant) uh_rand_below (&rng, CR_V_COUNT);
    char msg[512] = "";
    points++;
    if (!rv_check_point (&r, &b, img, shadow, k, var, &rng, buf, msg,
                         sizeof msg, &pending_seen, &active_seen) &&
        failures++ < MAX_FAILURES)
      fprintf (stderr, "crash: FAIL revert seed %#" PRIx64 " crash point "
               "%zu of %zu, variant %s (revert start: records %zu-%zu, "
               "its end awaited: %zu-%zu): %s (again: CRASH_ONLY=%zu)\n",
               base_seed (), k, n, cr_variant_name (var), r.rv_start,
               r.rv_end, r.end_start, r.end_end, msg, k);
  }
  printf ("crash: revert (chunk %u, %u bytes, safe): %zu records, %zu live "
          "writes; %zu crash states checked, %zu with the revert running "
          "after recovery (%zu pending chunks read as the target); %zu "
          "failures; seed %#" PRIx64 "\n", RV_CS, RV_SIZE, n, r.nw, points,
          active_seen, pending_seen, failures, base_seed ());
  fflush (stdout);
  summary_add (points);
  cr_assert (active_seen > 0 && pending_seen > 0, "no crash point had a "
             "revert running with pending chunks");
  cr_assert_eq (failures, 0, "revert: %zu of %zu crash points failed (seed "
                "%#" PRIx64 "; details above)", failures, points,
                base_seed ());
  free (buf);
  cr_builder_free (&b);
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_free (&img[f]);
    cr_image_free (&shadow[f]);
    cr_image_free (&r.init[f]);
  }
  for (size_t i = 0; i < r.nw; i++)
    free (r.w[i].data);
  free (r.t_img);
  free (r.m_img);
  free (r.pre);
  cr_log_free (&r.log);
  free (r.origin);
  free (r.diff);
}

/* The crash states themselves, on a made-up record of two threads: what
 * is durable follows completion, not the order of issue. */
Test (crash, durable_part_follows_completion)
{
  static uint8_t a[512], b[512], c[512];
  memset (a, 0xaa, sizeof a);
  memset (b, 0xbb, sizeof b);
  memset (c, 0xcc, sizeof c);
  /* 0: thread 1 writes A (done when 5 had been issued); 1: thread 2
   * writes B (done at 2); 2: thread 2 syncs (done at 3), which covers B
   * only; 3: thread 2 writes C (done at 4); 4: thread 2 syncs, issued at
   * 4 and done only at 6, covering B and C but not A. */
  struct cr_op ops[] = {
    { .kind = CR_WRITE, .file = CR_DIFF, .off = 0, .len = 512, .data = a,
      .done = 5 },
    { .kind = CR_WRITE, .file = CR_DIFF, .off = 512, .len = 512, .data = b,
      .done = 2 },
    { .kind = CR_SYNC, .file = CR_DIFF, .done = 3 },
    { .kind = CR_WRITE, .file = CR_DIFF, .off = 1024, .len = 512,
      .data = c, .done = 4 },
    { .kind = CR_SYNC, .file = CR_DIFF, .done = 6 },
    { .kind = CR_SYNC, .file = CR_ORIGIN, .done = 6 },
  };
  struct cr_log log = { .ops = ops, .n = 6, .cap = 6 };
  struct cr_image init[CR_NFILES], out[CR_NFILES];
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&init[f], 0);
    cr_image_alloc (&out[f], 2048);
  }
  struct cr_builder bld;
  cr_builder_init (&bld, &log, init);
  struct cr_state_info info;
  uint64_t rng = 1;
  char msg[256];
  cr_assert (cr_check_overlaps (&log, msg, sizeof msg), "%s", msg);

  /* k = 3: the first sync is done; B durable, A pending. */
  cr_build (&bld, 3, CR_V_NONE, &rng, out, &info);
  cr_assert_eq (info.durable_ops[CR_DIFF], 1);
  cr_assert_eq (info.pending[CR_DIFF], 1);
  cr_assert_eq (out[CR_DIFF].size, 1024);
  cr_assert_eq (out[CR_DIFF].buf[0], 0);
  cr_assert_eq (out[CR_DIFF].buf[512], 0xbb);
  /* k = 5: the second sync is issued, not done: C pending too. */
  cr_build (&bld, 5, CR_V_NONE, &rng, out, &info);
  cr_assert_eq (info.durable_ops[CR_DIFF], 1);
  cr_assert_eq (info.pending[CR_DIFF], 2);
  cr_assert_eq (out[CR_DIFF].size, 1024);
  /* k = 6: it is done: C durable; A completed after it was issued, so it
   * is still pending. */
  cr_build (&bld, 6, CR_V_NONE, &rng, out, &info);
  cr_assert_eq (info.durable_ops[CR_DIFF], 2);
  cr_assert_eq (info.pending[CR_DIFF], 1);
  cr_assert_eq (out[CR_DIFF].size, 1536);
  cr_assert_eq (out[CR_DIFF].buf[0], 0);
  cr_assert_eq (out[CR_DIFF].buf[1024], 0xcc);
  cr_build (&bld, 6, CR_V_ALL, &rng, out, &info);
  cr_assert_eq (out[CR_DIFF].buf[0], 0xaa);
  cr_builder_free (&bld);

  /* A write issued while an overlapping one is in flight is reported. */
  ops[3].off = 256;
  cr_assert_not (cr_check_overlaps (&log, msg, sizeof msg));
  ops[3].off = 1024;
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_free (&init[f]);
    cr_image_free (&out[f]);
  }
}
