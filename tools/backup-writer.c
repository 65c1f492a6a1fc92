/* shadowcopy: a backup's writes to its target on a thread of their own
 * (backup-writer.h).
 *
 * A queue of nbufs items, in order: each a write (its data in the item's
 * buffer) or a zero.  The engine's thread fills the item at the tail
 * (waiting while the queue is full); the writer takes the one at the head,
 * calls the inner sink without the lock, and frees it.  `busy` counts
 * the items handed over and not yet done, so flush waits for it to be 0.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/backup-writer.h"

struct item {
  char *buf;                    /* bufsize bytes */
  uint64_t off, len;
  bool zero;
};

struct sc_backup_writer {
  struct sc_backup_sink inner;
  size_t bufsize;
  struct item *q;
  unsigned cap, head, busy;     /* items head .. head+busy-1 (mod cap) */
  bool stopping;
  int error;                    /* the first error, a negative errno */
  uint64_t error_off;
  bool error_zero;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t work, room;
};

static void *
writer_thread (void *opaque)
{
  struct sc_backup_writer *w = opaque;

  pthread_mutex_lock (&w->lock);
  for (;;) {
    while (w->busy == 0 && !w->stopping)
      pthread_cond_wait (&w->work, &w->lock);
    if (w->busy == 0)
      break;
    struct item *it = &w->q[w->head];
    int r = 0;
    if (w->error == 0) {
      pthread_mutex_unlock (&w->lock);
      r = it->zero ? w->inner.zero (w->inner.opaque, it->off, it->len)
        : w->inner.write (w->inner.opaque, it->buf, (size_t) it->len,
                          it->off);
      pthread_mutex_lock (&w->lock);
    }
    if (r < 0 && w->error == 0) {
      w->error = r;
      w->error_off = it->off;
      w->error_zero = it->zero;
    }
    w->head = (w->head + 1) % w->cap;
    w->busy--;
    pthread_cond_broadcast (&w->room);
  }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

/* Wait for an item free at the tail (or, with all, for the queue to be
 * empty); the lock held.  The target's error, if there was one. */
static int
wait_room (struct sc_backup_writer *w, bool all)
{
  while (w->error == 0 && (all ? w->busy > 0 : w->busy == w->cap))
    pthread_cond_wait (&w->room, &w->lock);
  return w->error;
}

static int
hand_over (struct sc_backup_writer *w, const void *buf, uint64_t len,
           uint64_t off)
{
  int r;

  pthread_mutex_lock (&w->lock);
  if (buf && len > w->bufsize) {
    /* Too big for a buffer: written here, once the writer is idle. */
    r = wait_room (w, true);
    pthread_mutex_unlock (&w->lock);
    return r < 0 ? r : w->inner.write (w->inner.opaque, buf, (size_t) len,
                                       off);
  }
  if ((r = wait_room (w, false)) == 0) {
    struct item *it = &w->q[(w->head + w->busy) % w->cap];
    it->off = off;
    it->len = len;
    it->zero = !buf;
    if (buf)
      memcpy (it->buf, buf, (size_t) len);
    w->busy++;
    pthread_cond_signal (&w->work);
  }
  pthread_mutex_unlock (&w->lock);
  return r;
}

static int
writer_write (void *opaque, const void *buf, size_t len, uint64_t off)
{
  return hand_over (opaque, buf, len, off);
}

static int
writer_zero (void *opaque, uint64_t off, uint64_t len)
{
  return hand_over (opaque, NULL, len, off);
}

int
sc_backup_writer_start (const struct sc_backup_sink *inner, unsigned nbufs,
                        size_t bufsize, struct sc_backup_writer **out)
{
  struct sc_backup_writer *w = calloc (1, sizeof *w);
  int r;

  if (!w || nbufs == 0)
    goto nomem;
  w->inner = *inner;
  w->bufsize = bufsize;
  w->cap = nbufs;
  if (!(w->q = calloc (nbufs, sizeof *w->q)))
    goto nomem;
  for (unsigned i = 0; i < nbufs; i++)
    if (!(w->q[i].buf = malloc (bufsize)))
      goto nomem;
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->work, NULL);
  pthread_cond_init (&w->room, NULL);
  if ((r = pthread_create (&w->thread, NULL, writer_thread, w)) != 0) {
    pthread_mutex_destroy (&w->lock);
    pthread_cond_destroy (&w->work);
    pthread_cond_destroy (&w->room);
    for (unsigned i = 0; i < w->cap; i++)
      free (w->q[i].buf);
    free (w->q);
    free (w);
    return -r;
  }
  *out = w;
  return 0;

nomem:
  for (unsigned i = 0; w && w->q && i < w->cap; i++)
    free (w->q[i].buf);
  if (w)
    free (w->q);
  free (w);
  return -ENOMEM;
}

void
sc_backup_writer_sink (struct sc_backup_writer *w, struct sc_backup_sink *s)
{
  *s = (struct sc_backup_sink) { .opaque = w, .write = writer_write,
                                 .zero = writer_zero,
                                 .name = w->inner.name };
}

int
sc_backup_writer_flush (struct sc_backup_writer *w, char *err,
                        size_t errlen)
{
  pthread_mutex_lock (&w->lock);
  int r = wait_room (w, true);
  uint64_t off = w->error_off;
  bool zero = w->error_zero;
  pthread_mutex_unlock (&w->lock);
  if (r < 0)
    snprintf (err, errlen, "cannot %s %s at %" PRIu64 ": %s",
              zero ? "zero" : "write", w->inner.name, off, strerror (-r));
  return r;
}

int
sc_backup_writer_stop (struct sc_backup_writer *w, char *err, size_t errlen)
{
  if (!w)
    return 0;
  pthread_mutex_lock (&w->lock);
  w->stopping = true;
  pthread_cond_signal (&w->work);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL);
  int r = sc_backup_writer_flush (w, err, errlen);
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->work);
  pthread_cond_destroy (&w->room);
  for (unsigned i = 0; i < w->cap; i++)
    free (w->q[i].buf);
  free (w->q);
  free (w);
  return r;
}
