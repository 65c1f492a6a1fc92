/* Crash-state test harness: the I/O record and crash images (see
 * crash-record.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "tests/crash-record.h"
#include "tests/unit-helpers.h"

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cr_log *rec_log;
static uint64_t rec_gen;        /* bumped by each cr_record_start */

/* Per thread: its tag, and the operations it issued in the sc_io_run
 * under way (their completion is noted when the batch is done). */
static __thread uint32_t thread_tag;
static __thread uint64_t inflight_gen;
static __thread size_t *inflight;
static __thread size_t ninflight, inflight_cap;

void
cr_set_tag (uint32_t tag)
{
  thread_tag = tag;
}

void
cr_log_init (struct cr_log *log, const char *origin, const char *diff)
{
  memset (log, 0, sizeof *log);
  const char *paths[CR_NFILES] = { origin, diff };
  for (int f = 0; f < CR_NFILES; f++) {
    struct stat st;
    cr_assert_eq (stat (paths[f], &st), 0, "%s: %s", paths[f],
                  strerror (errno));
    log->dev[f] = st.st_dev;
    log->ino[f] = st.st_ino;
  }
}

void
cr_log_free (struct cr_log *log)
{
  for (size_t i = 0; i < log->n; i++)
    free (log->ops[i].data);
  free (log->ops);
  memset (log, 0, sizeof *log);
}

static void
push (struct cr_log *log, const struct cr_op *op)
{
  if (log->n == log->cap) {
    size_t cap = log->cap ? log->cap * 2 : 1024;
    struct cr_op *n = realloc (log->ops, cap * sizeof *n);
    if (!n)
      abort ();
    log->ops = n;
    log->cap = cap;
  }
  log->ops[log->n++] = *op;
}

/* The thread's buffer is freed when it ends. */
static pthread_key_t inflight_key;
static pthread_once_t inflight_once = PTHREAD_ONCE_INIT;

static void
inflight_free (void *p)
{
  (void) p;
  free (inflight);
  inflight = NULL;
  ninflight = inflight_cap = 0;
}

static void
inflight_key_make (void)
{
  pthread_key_create (&inflight_key, inflight_free);
}

/* sc_io_fault_hook: sees every request before it runs; never fails one. */
static int
record_hook (const struct sc_io_req *req)
{
  if (req->op == SC_IO_READ)
    return 0;
  struct stat st;
  int file = -1;
  bool stat_ok = fstat (req->fd, &st) == 0;
  if (stat_ok)
    for (int f = 0; f < CR_NFILES; f++)
      if (rec_log && (uint64_t) st.st_dev == rec_log->dev[f] &&
          (uint64_t) st.st_ino == rec_log->ino[f])
        file = f;
  /* An unlinked scratch file (the pages of the copy map and the sums,
   * cow/pagecache.h) is gone after any crash: nothing to record, and not
   * a foreign write either. */
  if (file < 0 && stat_ok && st.st_nlink == 0)
    return 0;

  pthread_mutex_lock (&rec_lock);
  struct cr_log *log = rec_log;
  if (!log)
    goto out;
  if (file < 0) {
    log->foreign++;
    goto out;
  }
  if (log->guard) {
    if (file == CR_ORIGIN && req->op != SC_IO_FDATASYNC)
      log->origin_changes++;
    goto out;
  }
  struct cr_op op = { .file = (uint8_t) file, .off = req->off,
                      .len = req->len, .tag = thread_tag,
                      .done = CR_NEVER };
  switch (req->op) {
  case SC_IO_READ:
    goto out;
  case SC_IO_WRITE:
    op.kind = CR_WRITE;
    op.dsync = req->flags != 0;
    op.data = malloc (req->len ? req->len : 1);
    if (!op.data)
      abort ();
    memcpy (op.data, req->buf, req->len);
    break;
  case SC_IO_FDATASYNC:
    op.kind = CR_SYNC;
    op.off = op.len = 0;
    break;
  case SC_IO_FALLOCATE:
    if (req->flags & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
      op.kind = CR_ZERO;
      op.keep_size = req->flags & FALLOC_FL_KEEP_SIZE;
    }
    else if (req->flags == 0)
      op.kind = CR_EXTEND;
    else if (req->flags == FALLOC_FL_KEEP_SIZE)
      goto out;                 /* preallocation: no visible change */
    else
      abort ();                 /* a mode this harness does not model */
    break;
  }
  if (inflight_gen != rec_gen) {
    inflight_gen = rec_gen;
    ninflight = 0;
  }
  if (ninflight == inflight_cap) {
    inflight_cap = inflight_cap ? 2 * inflight_cap : 64;
    inflight = realloc (inflight, inflight_cap * sizeof *inflight);
    if (!inflight)
      abort ();
    pthread_setspecific (inflight_key, inflight);
  }
  inflight[ninflight++] = log->n;
  push (log, &op);
 out:
  pthread_mutex_unlock (&rec_lock);
  return 0;
}

/* sc_io_done_hook: this thread's batch is done. */
static void
done_hook (const struct sc_io_req *reqs, size_t n)
{
  (void) reqs;
  (void) n;
  pthread_mutex_lock (&rec_lock);
  if (rec_log && !rec_log->guard && inflight_gen == rec_gen)
    for (size_t i = 0; i < ninflight; i++)
      rec_log->ops[inflight[i]].done = rec_log->n;
  ninflight = 0;
  pthread_mutex_unlock (&rec_lock);
}


void
cr_record_start (struct cr_log *log)
{
  pthread_once (&inflight_once, inflight_key_make);
  pthread_mutex_lock (&rec_lock);
  log->guard = false;
  rec_log = log;
  rec_gen++;
  pthread_mutex_unlock (&rec_lock);
  sc_io_done_hook = done_hook;
  sc_io_fault_hook = record_hook;
}

void
cr_record_stop (void)
{
  sc_io_fault_hook = NULL;
  sc_io_done_hook = NULL;
  pthread_mutex_lock (&rec_lock);
  rec_log = NULL;
  pthread_mutex_unlock (&rec_lock);
}

size_t
cr_record_count (void)
{
  pthread_mutex_lock (&rec_lock);
  size_t n = rec_log ? rec_log->n : 0;
  pthread_mutex_unlock (&rec_lock);
  return n;
}

void
cr_guard_start (struct cr_log *log)
{
  pthread_mutex_lock (&rec_lock);
  log->guard = true;
  log->origin_changes = 0;
  rec_log = log;
  pthread_mutex_unlock (&rec_lock);
  sc_io_fault_hook = record_hook;
}

size_t
cr_guard_stop (void)
{
  sc_io_fault_hook = NULL;
  pthread_mutex_lock (&rec_lock);
  size_t n = rec_log ? rec_log->origin_changes : 0;
  if (rec_log)
    rec_log->guard = false;
  rec_log = NULL;
  pthread_mutex_unlock (&rec_lock);
  return n;
}

/* ---- images ------------------------------------------------------------ */

void
cr_image_alloc (struct cr_image *img, uint64_t cap)
{
  img->buf = calloc (1, cap ? cap : 1);
  cr_assert_not_null (img->buf);
  img->size = 0;
  img->cap = cap;
}

void
cr_image_free (struct cr_image *img)
{
  free (img->buf);
  memset (img, 0, sizeof *img);
}

static void
reserve (struct cr_image *img, uint64_t cap)
{
  if (cap <= img->cap)
    return;
  uint8_t *n = realloc (img->buf, cap);
  cr_assert_not_null (n);
  img->buf = n;
  img->cap = cap;
}

void
cr_image_copy (struct cr_image *dst, const struct cr_image *src)
{
  reserve (dst, src->size);
  memcpy (dst->buf, src->buf, src->size);
  dst->size = src->size;
}

void
cr_image_load (struct cr_image *img, const char *path)
{
  uint64_t size = uh_file_size (path);
  reserve (img, size);
  uh_pread (path, img->buf, size, 0);
  img->size = size;
}

/* Grow to `end`, the new bytes zero. */
static void
grow (struct cr_image *img, uint64_t end)
{
  if (end <= img->size)
    return;
  reserve (img, end);
  memset (img->buf + img->size, 0, end - img->size);
  img->size = end;
}

void
cr_apply (struct cr_image *img, const struct cr_op *op, uint64_t cut)
{
  if (cut > op->len)
    cut = op->len;
  switch (op->kind) {
  case CR_WRITE:
    if (cut == 0)
      return;
    grow (img, op->off + cut);
    memcpy (img->buf + op->off, op->data, cut);
    return;
  case CR_ZERO: {
    uint64_t end = op->off + cut;
    if (!op->keep_size)
      grow (img, end);
    if (end > img->size)
      end = img->size;
    if (op->off < end)
      memset (img->buf + op->off, 0, end - op->off);
    return;
  }
  case CR_EXTEND:
    grow (img, op->off + op->len);
    return;
  case CR_SYNC:
    return;
  }
}

uint64_t
cr_max_end (const struct cr_log *log, int file, uint64_t floor)
{
  uint64_t m = floor;
  for (size_t i = 0; i < log->n; i++) {
    const struct cr_op *op = &log->ops[i];
    if (op->file == file && op->kind != CR_SYNC &&
        !(op->kind == CR_ZERO && op->keep_size) && op->off + op->len > m)
      m = op->off + op->len;
  }
  return m;
}

/* ---- crash states -------------------------------------------------------- */

void
cr_builder_init (struct cr_builder *b, const struct cr_log *log,
                 const struct cr_image init[CR_NFILES])
{
  memset (b, 0, sizeof *b);
  b->log = log;
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&b->durable[f], cr_max_end (log, f, init[f].size));
    cr_image_copy (&b->durable[f], &init[f]);
  }
  b->scratch = malloc ((log->n + 1) * sizeof *b->scratch);
  b->syncs = malloc ((log->n + 1) * sizeof *b->syncs);
  b->is_durable = calloc (log->n + 1, sizeof *b->is_durable);
  b->fate = malloc (log->n + 1);
  cr_assert (b->scratch && b->syncs && b->is_durable && b->fate);
  memset (b->fate, 'D', log->n + 1);
  for (size_t i = 0; i < log->n; i++)
    if (log->ops[i].kind == CR_SYNC)
      b->syncs[b->nsyncs++] = i;
}

void
cr_builder_free (struct cr_builder *b)
{
  for (int f = 0; f < CR_NFILES; f++)
    cr_image_free (&b->durable[f]);
  free (b->scratch);
  free (b->syncs);
  free (b->is_durable);
  free (b->fate);
  memset (b, 0, sizeof *b);
}

static bool
changes (const struct cr_op *op)
{
  return op->kind == CR_WRITE || op->kind == CR_ZERO;
}

bool
cr_check_overlaps (const struct cr_log *log, char *msg, size_t len)
{
  for (size_t i = 0; i < log->n; i++) {
    const struct cr_op *a = &log->ops[i];
    if (!changes (a))
      continue;
    size_t end = a->done < log->n ? a->done : log->n;
    for (size_t j = i + 1; j < end; j++) {
      const struct cr_op *o = &log->ops[j];
      if (o->file != a->file || !changes (o) || o->off >= a->off + a->len ||
          a->off >= o->off + o->len)
        continue;
      snprintf (msg, len, "operations %zu (tag %u, [%" PRIu64 ", +%" PRIu64
                ")) and %zu (tag %u, [%" PRIu64 ", +%" PRIu64 ")) of the %s "
                "overlap and were in flight at once (%zu completed at %zu)",
                i, a->tag, a->off, a->len, j, o->tag, o->off, o->len,
                a->file == CR_ORIGIN ? "origin" : "diff area", i, a->done);
      return false;
    }
  }
  return true;
}

/* Where op can be torn: the number of sector boundaries strictly inside
 * its range, and the cut (bytes from off) at boundary i. */
static uint64_t
tear_points (const struct cr_op *op)
{
  if (op->kind != CR_WRITE && op->kind != CR_ZERO)
    return 0;
  if (op->len < 2)
    return 0;
  return (op->off + op->len - 1) / CR_SECTOR - op->off / CR_SECTOR;
}

static uint64_t
tear_cut (const struct cr_op *op, uint64_t i)
{
  uint64_t first = (op->off / CR_SECTOR + 1) * CR_SECTOR;
  return first + i * CR_SECTOR - op->off;
}

/* Apply op torn at a random sector boundary; false if it cannot tear. */
static bool
apply_torn (struct cr_builder *b, struct cr_image *img, size_t i,
            uint64_t *rng)
{
  const struct cr_op *op = &b->log->ops[i];
  uint64_t n = tear_points (op);
  if (n == 0)
    return false;
  cr_apply (img, op, tear_cut (op, uh_rand_below (rng, n)));
  b->fate[i] = 't';
  return true;
}

static void
apply_whole (struct cr_builder *b, struct cr_image *img, size_t i)
{
  cr_apply (img, &b->log->ops[i], b->log->ops[i].len);
  b->fate[i] = 'a';
}

void
cr_build (struct cr_builder *b, size_t k, enum cr_variant variant,
          uint64_t *rng, struct cr_image out[CR_NFILES],
          struct cr_state_info *info)
{
  const struct cr_log *log = b->log;
  cr_assert_geq (k, b->k, "crash points must not go backwards");
  cr_assert_leq (k, log->n);
  b->k = k;
  memset (info, 0, sizeof *info);

  /* The syncs that had completed by k: the last issued one of each file
   * makes durable what had completed before it was issued. */
  for (size_t j = 0; j < b->nsyncs && b->syncs[j] < k; j++) {
    size_t i = b->syncs[j];
    if (log->ops[i].done <= k) {
      b->fate[i] = 's';
      if (i + 1 > b->last_sync[log->ops[i].file])
        b->last_sync[log->ops[i].file] = i + 1;
    }
    else
      b->fate[i] = 'i';
  }

  for (int f = 0; f < CR_NFILES; f++) {
    /* The durable part, in the order of the record. */
    size_t s = b->last_sync[f];         /* the sync's index + 1 */
    bool gap = false;
    for (size_t i = b->low[f]; i + 1 < s; i++) {
      const struct cr_op *op = &log->ops[i];
      if (op->file == f && op->kind != CR_SYNC && !b->is_durable[i]) {
        if (op->done <= s - 1) {
          cr_apply (&b->durable[f], op, op->len);
          b->is_durable[i] = true;
          b->fate[i] = 'D';
        }
        else
          gap = true;
      }
      if (!gap)
        b->low[f] = i + 1;
    }
    for (size_t i = 0; i < k; i++)
      info->durable_ops[f] += log->ops[i].file == f && b->is_durable[i];

    /* The pending part: issued before k, not durable. */
    size_t np = 0;
    for (size_t i = b->low[f]; i < k; i++)
      if (log->ops[i].file == f && log->ops[i].kind != CR_SYNC &&
          !b->is_durable[i]) {
        b->scratch[np++] = i;
        b->fate[i] = '-';
      }
    info->pending[f] = np;

    cr_image_copy (&out[f], &b->durable[f]);
    switch (variant) {
    case CR_V_NONE:
    case CR_V_COUNT:
      break;
    case CR_V_ALL:
      for (size_t j = 0; j < np; j++)
        apply_whole (b, &out[f], b->scratch[j]);
      info->applied[f] = np;
      break;
    case CR_V_PREFIX: {
      size_t upto = (size_t) uh_rand_below (rng, np + 1);
      for (size_t j = 0; j < upto; j++)
        apply_whole (b, &out[f], b->scratch[j]);
      info->applied[f] = upto;
      if (upto < np && uh_rand_below (rng, 2) &&
          apply_torn (b, &out[f], b->scratch[upto], rng))
        info->torn[f]++;
      break;
    }
    case CR_V_INPLACE: {
      uint64_t size = b->durable[f].size;
      for (size_t j = 0; j < np; j++) {
        const struct cr_op *op = &log->ops[b->scratch[j]];
        if (op->kind != CR_EXTEND && op->off + op->len <= size) {
          apply_whole (b, &out[f], b->scratch[j]);
          info->applied[f]++;
        }
      }
      break;
    }
    case CR_V_RANDOM: {
      /* Choose: drop, whole or torn; then shuffle what is kept. */
      size_t nk = 0;
      for (size_t j = 0; j < np; j++) {
        uint64_t r = uh_rand_below (rng, 100);
        if (r < 35)
          continue;
        size_t torn = r >= 75 && tear_points (&log->ops[b->scratch[j]]);
        b->scratch[nk++] = b->scratch[j] | (torn ? (size_t) 1 << 62 : 0);
      }
      for (size_t j = nk; j > 1; j--) {
        size_t o = (size_t) uh_rand_below (rng, j);
        size_t t = b->scratch[j - 1];
        b->scratch[j - 1] = b->scratch[o];
        b->scratch[o] = t;
      }
      for (size_t j = 0; j < nk; j++) {
        size_t i = b->scratch[j] & (((size_t) 1 << 62) - 1);
        if (b->scratch[j] >> 62) {
          apply_torn (b, &out[f], i, rng);
          info->torn[f]++;
        }
        else {
          apply_whole (b, &out[f], i);
          info->applied[f]++;
        }
      }
      break;
    }
    }
  }
}

const char *
cr_variant_name (enum cr_variant v)
{
  switch (v) {
  case CR_V_NONE: return "none";
  case CR_V_ALL: return "all";
  case CR_V_PREFIX: return "prefix";
  case CR_V_RANDOM: return "random";
  case CR_V_INPLACE: return "in-place";
  case CR_V_COUNT: break;
  }
  return "?";
}
