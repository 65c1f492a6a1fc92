/* shadowcopy: superblock load and store. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cow/crc32c.h"
#include "cow/io.h"
#include "cow/superblock.h"

static uint32_t
sb_crc (const void *block)
{
  uint8_t copy[SC_SB_SIZE];
  memcpy (copy, block, SC_SB_SIZE);
  memset (copy + offsetof (struct sc_sb_disk, crc), 0, sizeof (uint32_t));
  return crc32c (0, copy, SC_SB_SIZE);
}

int
sc_sb_check (const void *block, const char **why)
{
  struct sc_sb_disk sb;
  memcpy (&sb, block, sizeof sb);
  if (memcmp (sb.magic, SC_SB_MAGIC, 8) != 0) {
    *why = "bad magic (not a shadowcopy diff area)";
    return -EINVAL;
  }
  if (sb.crc != sb_crc (block)) {
    *why = "checksum mismatch";
    return -EINVAL;
  }
  if (sb.version > SC_FORMAT_VERSION) {
    *why = "format version is newer than this shadowcopy supports";
    return -EPROTONOSUPPORT;
  }
  if (sb.version < SC_FORMAT_VERSION_MIN) {
    *why = "unknown format version";
    return -EINVAL;
  }
  if (sb.chunk_shift < 12 || sb.chunk_shift > 20) {
    *why = "chunk size out of range";
    return -EINVAL;
  }
  if ((sb.flags & ~SC_SB_FLAGS_KNOWN) != 0) {
    *why = "unknown flags";
    return -EINVAL;
  }
  if (sb.origin_type < 1 || sb.origin_type > 3) {
    *why = "unknown origin type";
    return -EINVAL;
  }
  if (sb.stamp_state > SC_STAMP_WRITTEN ||
      (sb.stamp_flags & ~SC_STAMP_F_KNOWN) != 0 ||
      sb.stamp_nsamples > SC_STAMP_SAMPLES) {
    *why = "unknown origin stamp";
    return -EINVAL;
  }
  uint64_t first_slot = (SC_SB_AREA + (1ull << sb.chunk_shift) - 1)
                        >> sb.chunk_shift;
  if (sb.journal_head < first_slot || sb.journal_head > (UINT64_MAX >> 21)) {
    *why = "journal head outside the slot area";
    return -EINVAL;
  }
  return 0;
}

int
sc_sb_load (int fd, struct sc_sb_disk *out, char *err, size_t errlen)
{
  static uint8_t zero[SC_SB_SIZE];
  uint8_t blocks[SC_SB_COPIES][SC_SB_SIZE];
  int r = sc_io_pread (fd, blocks, sizeof blocks, 0);
  if (r < 0) {
    snprintf (err, errlen, "reading the superblock: %s", strerror (-r));
    return r;
  }

  const char *why[SC_SB_COPIES] = { NULL, NULL };
  int res[SC_SB_COPIES];
  int best = -1;
  for (int i = 0; i < SC_SB_COPIES; i++) {
    res[i] = sc_sb_check (blocks[i], &why[i]);
    if (res[i] == 0) {
      const struct sc_sb_disk *sb = (const void *) blocks[i];
      if (best < 0 ||
          sb->generation > ((const struct sc_sb_disk *) blocks[best])->generation)
        best = i;
    }
  }
  /* A copy with a good checksum written by a newer shadowcopy: that
   * version has moved the diff area on.  Falling back to the other, older
   * copy would replay a journal it may since have reused, and our next
   * superblock update would overwrite its copy: refuse instead. */
  for (int i = 0; i < SC_SB_COPIES; i++)
    if (res[i] == -EPROTONOSUPPORT) {
      snprintf (err, errlen, "superblock copy %c at offset %d: %s",
                "AB"[i], i * SC_SB_SIZE, why[i]);
      return -EPROTONOSUPPORT;
    }
  if (best < 0) {
    if (memcmp (blocks[0], zero, SC_SB_SIZE) == 0 &&
        memcmp (blocks[1], zero, SC_SB_SIZE) == 0) {
      snprintf (err, errlen, "no superblock (the file is all zeros at "
                "offsets 0-8191)");
      return -EINVAL;
    }
    snprintf (err, errlen, "both superblocks are damaged: "
              "copy A at offset 0: %s; copy B at offset 4096: %s",
              why[0], why[1]);
    return res[0] == -EPROTONOSUPPORT || res[1] == -EPROTONOSUPPORT
           ? -EPROTONOSUPPORT : -EINVAL;
  }
  memcpy (out, blocks[best], sizeof *out);

  /* Both valid: they must describe the same volume. */
  int other = 1 - best;
  if (res[other] == 0) {
    const struct sc_sb_disk *o = (const void *) blocks[other];
    if (memcmp (o->uuid, out->uuid, 16) != 0 ||
        o->chunk_shift != out->chunk_shift ||
        o->generation == out->generation) {
      snprintf (err, errlen, "superblock copies A and B disagree "
                "(volume identity, chunk size or generation)");
      return -EINVAL;
    }
  }
  return 0;
}

int
sc_sb_store (int fd, struct sc_sb_disk *sb)
{
  uint8_t block[SC_SB_SIZE] = { 0 };
  struct sc_sb_disk next = *sb;
  next.generation++;
  memcpy (next.magic, SC_SB_MAGIC, 8);
  next.version = SC_FORMAT_VERSION;
  next.crc = 0;
  memcpy (block, &next, sizeof next);
  uint32_t crc = sb_crc (block);
  memcpy (block + offsetof (struct sc_sb_disk, crc), &crc, sizeof crc);

  int r = sc_io_pwrite (fd, block, SC_SB_SIZE,
                        (next.generation % SC_SB_COPIES) * SC_SB_SIZE, false);
  if (r == 0)
    r = sc_io_fdatasync (fd);
  if (r == 0) {
    next.crc = crc;
    *sb = next;
  }
  return r;
}
