/* shadowcopy: the NBD origin's connections: connecting with retries and
 * a back-off, and checking that a remote that answers again is still the
 * disk of the open (its sampled blocks).  See origin-nbd.c's notes. */
#include <config.h>

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include "cow/crc32c.h"
#include "cow/format.h"
#include "cow/io.h"
#include "engine/origin-nbd-impl.h"

/* One attempt: a connected handle, or NULL with the reason in `why`. */
static struct nbd_handle *
connect_once (const char *uri, uint64_t deadline, char *why, size_t len)
{
  struct nbd_handle *h = nbd_create ();
  if (!h) {
    snprintf (why, len, "%s", nbd_get_error ());
    return NULL;
  }
  if (nbd_set_uri_allow_local_file (h, true) == -1 ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_aio_connect_uri (h, uri) == -1)
    goto fail;
  while (nbd_aio_is_connecting (h)) {
    uint64_t now = sc_mono_ns ();
    if (now >= deadline) {
      snprintf (why, len, "connecting timed out");
      nbd_close (h);
      return NULL;
    }
    unsigned dir = nbd_aio_get_direction (h);
    struct pollfd p = {
      .fd = nbd_aio_get_fd (h),
      .events = (short) ((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                         (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)),
    };
    uint64_t left = (deadline - now) / 1000000u + 1;
    int n = poll (&p, 1, left > 1000 ? 1000 : (int) left);
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
      nbd_aio_notify_read (h);
    else if (n > 0 && (p.revents & POLLOUT))
      nbd_aio_notify_write (h);
  }
  if (nbd_aio_is_ready (h))
    return h;
 fail:
  snprintf (why, len, "%s", nbd_get_error () ? nbd_get_error ()
                                             : "connection closed");
  nbd_close (h);
  return NULL;
}

/* Attempts for retry_ms with a back-off. */
struct nbd_handle *
nbdo_connect_retry (struct nbd_origin *no, char *why, size_t len)
{
  uint64_t end = ms_from_now (no->opts.retry_ms);
  uint64_t delay = BACKOFF_FIRST_MS;
  uint32_t per = no->opts.io_timeout_ms ? no->opts.io_timeout_ms : 30000;
  for (;;) {
    uint64_t until = ms_from_now (per);
    struct nbd_handle *h = connect_once (no->uri, until, why, len);
    if (h)
      return h;
    uint64_t now = sc_mono_ns ();
    if (now >= end)
      return NULL;
    uint64_t wait = (end - now) / 1000000u;     /* a last try at the end */
    if (wait > delay)
      wait = delay;
    struct timespec ts = { (time_t) (wait / 1000),
                           (long) (wait % 1000) * 1000000 };
    nanosleep (&ts, NULL);
    delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
  }
}

/* Read the sampled blocks on `h` (a handle no request uses yet) into
 * crc[]: 0, or -1 with the reason in nbd_get_error. */
int
nbdo_read_samples (struct nbd_origin *no, struct nbd_handle *h, uint32_t *crc)
{
  uint8_t buf[SC_STAMP_SAMPLE_SIZE];
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++) {
    if (nbd_pread (h, buf, no->sample_len[i], no->sample_off[i], 0) == -1)
      return -1;
    crc[i] = crc32c (0, buf, no->sample_len[i]);
  }
  return 0;
}

/* A new connection: is the remote still the disk of the open?  The
 * sampled blocks no modification of ours touched must read as they did
 * then.  0 if so, -1 if not, -2 if they cannot be read; the reason in
 * `why`. */
int
nbdo_same_disk (struct nbd_origin *no, struct nbd_handle *h, char *why,
           size_t len)
{
  uint32_t crc[SC_STAMP_SAMPLES];
  if (!no->have_samples) {
    if (sc_debug)
      sc_debug ("NBD origin %s: origin-check=off: the remote is not "
                "checked to be the same disk", no->uri);
    return 0;
  }
  if (nbdo_read_samples (no, h, crc) < 0) {
    snprintf (why, len, "reading its sampled blocks: %s", nbd_get_error ());
    return -2;
  }
  /* Read after the blocks: a modification that could have reached them
   * was marked before it was sent. */
  uint32_t touched = __atomic_load_n (&no->touched, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES; i++)
    if (!(touched & (1u << i)) && crc[i] != no->sample_crc[i]) {
      snprintf (why, len, "the block at %" PRIu64 " differs from what it "
                "held at the start", no->sample_off[i]);
      return -1;
    }
  return 0;
}

const char *
nbdo_lost_capability (struct nbd_origin *no, struct nbd_handle *h)
{
  if (no->nconn > 1 && nbd_can_multi_conn (h) != 1)
    return "multi-conn";
  if (no->can_flush && nbd_can_flush (h) != 1)
    return "flush";
  if (no->can_fua && nbd_can_fua (h) != 1)
    return "FUA";
  return NULL;
}
