/* Fuzzing helpers: a diff-area file held in memory as one byte image.
 *
 * Notes on the design
 *
 * Every metadata structure of the diff area carries a CRC32C, so a random
 * mutation of a real diff area almost always dies at the first checksum
 * and never reaches the replay logic.  The diff-area fuzzer therefore
 * "reseals" most inputs before handing them to sc_diff_open: it recomputes
 * the CRC of each superblock copy, then walks the journal of the copy the
 * loader will pick, as replay does (records back to back in a slot, a NEXT
 * record naming the following slot), and recomputes every record's CRC;
 * optionally it renumbers the records first, and recomputes the data CRC
 * that each copy record carries for its slot.  The seed-corpus generator
 * uses the same walk, without resealing, to find where a journal ends.
 *
 * The layout knowledge comes from cow/format.h and the CRC seed from
 * cow/journal.h, so a format change is picked up at the next build.
 * Everything here is static inline: each program includes what it uses.
 */
#ifndef SHADOWCOPY_TESTS_FUZZ_DIFFAREA_IMAGE_H
#define SHADOWCOPY_TESTS_FUZZ_DIFFAREA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cow/crc32c.h"
#include "cow/format.h"
#include "cow/journal.h"
#include "cow/superblock.h"

/* CRC of superblock copy `copy` as the loader computes it: over the whole
 * 4096-byte block with the crc field taken as zero. */
static inline uint32_t
fz_sb_crc (const uint8_t *block)
{
  uint8_t tmp[SC_SB_SIZE];
  memcpy (tmp, block, SC_SB_SIZE);
  memset (tmp + offsetof (struct sc_sb_disk, crc), 0, sizeof (uint32_t));
  return crc32c (0, tmp, SC_SB_SIZE);
}

/* Reseal superblock copy `copy` (0: A, 1: B) if it is wholly inside the
 * image and carries the magic (a zeroed copy stays "no superblock"). */
static inline void
fz_sb_reseal (uint8_t *img, size_t len, int copy)
{
  uint8_t *block = img + (size_t) copy * SC_SB_SIZE;
  if (len < (size_t) (copy + 1) * SC_SB_SIZE ||
      memcmp (block, SC_SB_MAGIC, 8) != 0)
    return;
  uint32_t crc = fz_sb_crc (block);
  memcpy (block + offsetof (struct sc_sb_disk, crc), &crc, sizeof crc);
}

/* The superblock copy the loader picks: the valid one with the highest
 * generation.  Returns its index (0 or 1) and fills *sb, or -1. */
static inline int
fz_sb_current (const uint8_t *img, size_t len, struct sc_sb_disk *sb)
{
  int best = -1;
  uint64_t best_gen = 0;
  for (int i = 0; i < SC_SB_COPIES; i++) {
    const uint8_t *block = img + (size_t) i * SC_SB_SIZE;
    const char *why;
    struct sc_sb_disk c;
    if (len < (size_t) (i + 1) * SC_SB_SIZE || sc_sb_check (block, &why) < 0)
      continue;
    memcpy (&c, block, sizeof c);
    if (best < 0 || c.generation > best_gen) {
      best = i;
      best_gen = c.generation;
      *sb = c;
    }
  }
  return best;
}

/* How fz_journal_walk treats the records it finds. */
#define FZ_WALK_VERIFY   0x1    /* stop where replay stops (CRC, seq) */
#define FZ_WALK_RESEAL   0x2    /* recompute each record's CRC */
#define FZ_WALK_RENUMBER 0x4    /* with RESEAL: rewrite seq to follow on */
#define FZ_WALK_DATA_CRC 0x8    /* with RESEAL: recompute the data CRC of
                                   each copy record from its slot */

struct fz_journal_end {
  uint64_t off;                 /* file offset just past the last record */
  uint64_t next_seq;            /* seq the next record would carry */
  uint64_t records;             /* records walked, NEXT included */
  uint64_t slots;               /* journal slots visited */
};

/* Walk the journal of *sb through the image.  The walk stops at the first
 * record whose header does not fit (length not a multiple of 8, shorter
 * than a header, past the slot or the image), at a NEXT record pointing
 * outside the image or back into the chain, and with FZ_WALK_VERIFY also
 * where replay stops (wrong seq or CRC).  Bytes past the image read as
 * zeros to the loader, which ends the journal there too. */
static inline void
fz_journal_walk (uint8_t *img, size_t len, const struct sc_sb_disk *sb,
                 unsigned how, struct fz_journal_end *end)
{
  const uint64_t cs = (uint64_t) 1 << sb->chunk_shift;
  const uint32_t seed = sc_journal_seed (sb->uuid, sb->journal_nonce);
  const uint64_t nslots = (len + cs - 1) / cs;
  uint64_t visited[256];
  size_t nvisited = 0;
  uint64_t slot = sb->journal_head, seq = sb->journal_seq;

  memset (end, 0, sizeof *end);
  end->off = slot * cs;
  end->next_seq = seq;
  while (slot != 0 && slot < nslots && nvisited < 256) {
    for (size_t i = 0; i < nvisited; i++)
      if (visited[i] == slot)
        return;
    visited[nvisited++] = slot;
    end->slots++;

    uint64_t base = slot * cs, next = 0;
    for (uint64_t pos = 0; next == 0;) {
      struct sc_rec_hdr h;
      if (pos + sizeof h > cs || base + pos + sizeof h > len)
        return;
      uint8_t *rec = img + base + pos;
      memcpy (&h, rec, sizeof h);
      if (h.len < sizeof h || h.len % SC_REC_ALIGN || h.len > cs - pos ||
          base + pos + h.len > len)
        return;
      if (how & FZ_WALK_VERIFY) {
        uint32_t crc = crc32c (seed, rec + 4, h.len - 4u);
        if (h.seq != seq || h.crc != crc)
          return;
      }
      if (how & FZ_WALK_RESEAL) {
        if ((how & FZ_WALK_DATA_CRC) && h.type == SC_REC_COPY &&
            h.len == sizeof (struct sc_rec_copy)) {
          struct sc_rec_copy c;
          memcpy (&c, rec, sizeof c);
          if (!(c.flags & SC_COPY_F_ZERO) && c.slot < nslots &&
              (c.slot + 1) * cs <= len) {
            c.data_crc = crc32c (0, img + c.slot * cs, cs);
            memcpy (rec + offsetof (struct sc_rec_copy, data_crc),
                    &c.data_crc, sizeof c.data_crc);
          }
        }
        if (how & FZ_WALK_RENUMBER) {
          h.seq = seq;
          memcpy (rec + offsetof (struct sc_rec_hdr, seq), &h.seq,
                  sizeof h.seq);
        }
        uint32_t crc = crc32c (seed, rec + 4, h.len - 4u);
        memcpy (rec + offsetof (struct sc_rec_hdr, crc), &crc, sizeof crc);
      }
      if (h.type == SC_REC_NEXT && h.len == sizeof (struct sc_rec_next)) {
        struct sc_rec_next n;
        memcpy (&n, rec, sizeof n);
        next = n.slot;
        if (next == 0)          /* replay refuses it: nothing to follow */
          next = UINT64_MAX;
      }
      pos += h.len;
      seq = (how & FZ_WALK_RENUMBER) ? seq + 1 : h.seq + 1;
      end->off = base + pos;
      end->next_seq = seq;
      end->records++;
    }
    slot = next;
  }
}

/* Reseal a whole image: both superblock copies, then the journal of the
 * copy the loader will pick (FZ_WALK_RENUMBER and FZ_WALK_DATA_CRC may be
 * given in `how`). */
static inline void
fz_image_reseal (uint8_t *img, size_t len, unsigned how)
{
  struct sc_sb_disk sb;
  struct fz_journal_end end;
  fz_sb_reseal (img, len, 0);
  fz_sb_reseal (img, len, 1);
  if (fz_sb_current (img, len, &sb) < 0)
    return;
  fz_journal_walk (img, len, &sb, FZ_WALK_RESEAL | how, &end);
}

#endif
