/* libFuzzer harness: a backup's resume state (tools/backup-resume.c) as
 * backup --resume reads TARGET.resume.
 *
 * Input: the bytes of a TARGET.resume.  Each is decoded as it is, and
 * again with its CRC made right (so that the checks of the fields behind
 * the CRC are reached).  An accepted record must encode back to the same
 * bytes (one encoding per state), and is compared with a fixed state.
 * Nothing may crash, leak or read past the input.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cow/crc32c.h"
#include "tools/backup-resume.h"

/* run.sh builds engine/control-protocol.c (for sc_uuid_parse) reading
 * through the control harness's fake read(2); here it is the real one. */
ssize_t fuzz_ctl_read (int fd, void *buf, size_t n);
ssize_t
fuzz_ctl_read (int fd, void *buf, size_t n)
{
  return read (fd, buf, n);
}

static void
one (const unsigned char *data, size_t size)
{
  static const struct sc_resume_state fixed = {
    .volume_uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    .snapshot_name = "nightly-3",
    .snapshot_uuid = "11111111-2222-3333-4444-555555555555",
    .format = "raw", .volume_size = 1ull << 30,
  };
  struct sc_resume_state s;
  unsigned char again[SC_RESUME_BYTES];
  char err[512], why[8192];

  if (sc_resume_decode (data, size, &s, err, sizeof err) < 0)
    return;
  if (sc_resume_encode (&s, again) < 0 || size != sizeof again
      || memcmp (again, data, size) != 0) {
    fprintf (stderr, "an accepted resume state does not encode back\n");
    abort ();
  }
  sc_resume_mismatch (&s, &fixed, why, sizeof why);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  one (data, size);
  if (size == SC_RESUME_BYTES) {
    unsigned char *copy = malloc (size);
    if (!copy)
      return 0;
    memcpy (copy, data, size);
    memset (copy + 12, 0, 4);
    uint32_t crc = crc32c (0, copy, size);
    for (int i = 0; i < 4; i++)
      copy[12 + i] = (unsigned char) (crc >> (8 * i));
    one (copy, size);
    free (copy);
  }
  return 0;
}
