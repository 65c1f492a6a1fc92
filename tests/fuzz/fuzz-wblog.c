/* libFuzzer harness: the write-back log's parser (engine/writeback-log.c)
 * as the open of a volume meets a disk's log after a kill of the server.
 *
 * Input: the bytes of a log (a short one: the data slots of a real log
 * start at 4 KiB and are 64 KiB apart, so an input reaches the first
 * slots' data only).  Each is scanned twice: as a log of another boot and
 * disk (fixed ids), and as one of this boot and disk (the ids its own
 * header names), so that the checks of the slots are reached
 * whatever the ids.  A scan must return a state, or -EINVAL with a
 * message; the queued writes it hands back must be in seq order, each in
 * its own slot, within the volume and the input.  Nothing may crash or
 * read past the input.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/writeback-log.h"

/* run.sh builds engine/control-protocol.c reading through the control
 * harness's fake read(2); here it is the real one. */
ssize_t fuzz_ctl_read (int fd, void *buf, size_t n);
ssize_t
fuzz_ctl_read (int fd, void *buf, size_t n)
{
  return read (fd, buf, n);
}

#define VOL_SIZE (1ull << 30)

static void
check (const uint8_t *img, size_t len, const uint8_t key[SC_WB_LOG_KEY],
       const uint8_t boot[16])
{
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n = 0;
  char err[512] = "";
  struct sc_wb_log_owner owner;
  int lost = -1;
  int r = sc_wb_log_scan (img, len, key, boot, VOL_SIZE, e, &n, &owner,
                          &lost, err, sizeof err);
  /* A lost write's error is an errno, and only a log of this boot and
   * disk has one. */
  if (lost < 0 || lost >= 4096 ||
      (lost && r != SC_WB_LOG_QUEUED && r != SC_WB_LOG_EMPTY))
    abort ();
  if (r < 0) {
    if (r != -EINVAL || err[0] == '\0')
      abort ();
    return;
  }
  if (r > SC_WB_LOG_OTHER_DISK || n > SC_WB_LOG_SLOTS)
    abort ();
  if (r != SC_WB_LOG_QUEUED)
    return;
  /* A log of version 1 names no session: it must not be taken for one
   * (its made_ns is where a session id is now). */
  uint32_t version;
  memcpy (&version, img + 8, sizeof version);
  if (version == 1 && owner.session != 0)
    abort ();
  uint64_t used = 0;
  for (size_t i = 0; i < n; i++) {
    if (e[i].slot >= SC_WB_LOG_SLOTS || (used >> e[i].slot & 1) ||
        (i && e[i].seq <= e[i - 1].seq) || e[i].seq == 0 ||
        e[i].count == 0 || e[i].count > SC_WB_LOG_SLOT_SIZE ||
        e[i].offset + e[i].count > VOL_SIZE ||
        e[i].data < img || e[i].data + e[i].count > img + len)
      abort ();
    used |= UINT64_C (1) << e[i].slot;
    volatile uint8_t sum = 0;           /* every byte is readable */
    for (uint32_t j = 0; j < e[i].count; j++)
      sum ^= e[i].data[j];
    (void) sum;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const uint8_t other[SC_WB_LOG_KEY] = { 0xee, 0xee };
  /* A copy of exactly its size: reads past it are caught. */
  uint8_t *img = malloc (size ? size : 1);
  if (!img)
    return 0;
  memcpy (img, data, size);
  check (img, size, other, other);
  if (size >= 72)
    check (img, size, img + 24, img + 56);
  free (img);
  return 0;
}
