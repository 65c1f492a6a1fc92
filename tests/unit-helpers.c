/* Helpers shared by the Criterion unit tests (see unit-helpers.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <time.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/crc32c.h"
#include "cow/io.h"
#include "cow/index.h"
#include "cow/journal.h"
#include "cow/pagecache.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

char *uh_dir;

/* ---- the test's directory ------------------------------------------ */

void
uh_setup (void)
{
  char tmpl[] = "/tmp/shadowcopy-unit-XXXXXX";
  cr_assert_not_null (mkdtemp (tmpl), "mkdtemp: %s", strerror (errno));
  uh_dir = strdup (tmpl);
  cr_assert_not_null (uh_dir);
}

static int
rm_one (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void) st; (void) type; (void) ftw;
  remove (path);
  return 0;
}

void
uh_teardown (void)
{
  if (!uh_dir)
    return;
  nftw (uh_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free (uh_dir);
  uh_dir = NULL;
}

char *
uh_path (const char *name)
{
  char *p;
  cr_assert_neq (asprintf (&p, "%s/%s", uh_dir, name), -1);
  return p;
}

/* ---- deterministic data --------------------------------------------- */

uint64_t
uh_rand (uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t
uh_rand_below (uint64_t *state, uint64_t n)
{
  return uh_rand (state) % n;
}

static uint64_t
pattern_word (uint64_t seed, uint64_t word)
{
  uint64_t s = seed * 0x2545f4914f6cdd1dull ^ word;
  return uh_rand (&s);
}

uint8_t
uh_pattern_byte (uint64_t seed, uint64_t off)
{
  return (uint8_t) (pattern_word (seed, off / 8) >> (off % 8 * 8));
}

void
uh_stamp (uint64_t *buf, size_t len, uint64_t chunk, uint64_t seq)
{
  for (size_t i = 0; i < len / 8; i++)
    buf[i] = chunk << 32 | seq;
}

void
uh_pattern (void *buf, size_t len, uint64_t seed, uint64_t off)
{
  uint8_t *p = buf;
  size_t i = 0;
  while (i < len && (off + i) % 8)
    p[i] = uh_pattern_byte (seed, off + i), i++;
  for (; i + 8 <= len; i += 8) {
    uint64_t w = pattern_word (seed, (off + i) / 8);
    memcpy (p + i, &w, 8);      /* little-endian: byte k is bits 8k.. */
  }
  for (; i < len; i++)
    p[i] = uh_pattern_byte (seed, off + i);
}

/* ---- files ---------------------------------------------------------- */

void
uh_make_file (const char *path, uint64_t size, uint64_t seed)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  if (seed) {
    size_t blk = 1 << 20;
    uint8_t *buf = malloc (blk);
    cr_assert_not_null (buf);
    for (uint64_t off = 0; off < size; off += blk) {
      size_t n = size - off < blk ? size - off : blk;
      uh_pattern (buf, n, seed, off);
      cr_assert_eq (pwrite (fd, buf, n, off), (ssize_t) n);
    }
    free (buf);
  }
  cr_assert_eq (ftruncate (fd, size), 0);
  cr_assert_eq (close (fd), 0);
}

void
uh_make_zero_file (const char *path, uint64_t size)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  size_t blk = 1 << 20;
  uint8_t *buf = calloc (1, blk);
  cr_assert_not_null (buf);
  for (uint64_t off = 0; off < size; off += blk) {
    size_t n = size - off < blk ? size - off : blk;
    cr_assert_eq (pwrite (fd, buf, n, off), (ssize_t) n);
  }
  free (buf);
  cr_assert_eq (close (fd), 0);
}

uint64_t
uh_file_size (const char *path)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0, "%s: %s", path, strerror (errno));
  return st.st_size;
}

uint8_t *
uh_read_file (const char *path, size_t *len)
{
  size_t n = uh_file_size (path);
  uint8_t *buf = malloc (n + 1);
  cr_assert_not_null (buf);
  uh_pread (path, buf, n, 0);
  *len = n;
  return buf;
}

void
uh_write_file (const char *path, const void *buf, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (write (fd, buf, len), (ssize_t) len);
  cr_assert_eq (close (fd), 0);
}

void
uh_pread (const char *path, void *buf, size_t len, uint64_t off)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread (fd, (char *) buf + done, len - done, off + done);
    cr_assert_geq (n, 0, "%s: %s", path, strerror (errno));
    if (n == 0) {
      memset ((char *) buf + done, 0, len - done);
      break;
    }
    done += n;
  }
  close (fd);
}

void
uh_pwrite (const char *path, const void *buf, size_t len, uint64_t off)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (pwrite (fd, buf, len, off), (ssize_t) len);
  cr_assert_eq (close (fd), 0);
}

void
uh_flip_byte (const char *path, uint64_t off)
{
  uint8_t b;
  uh_pread (path, &b, 1, off);
  b ^= 0xff;
  uh_pwrite (path, &b, 1, off);
}

void
uh_truncate (const char *path, uint64_t size)
{
  cr_assert_eq (truncate (path, size), 0, "%s: %s", path, strerror (errno));
}

/* ---- superblocks and journal records -------------------------------- */

uint32_t
uh_sb_crc (const void *block)
{
  uint8_t copy[SC_SB_SIZE];
  memcpy (copy, block, SC_SB_SIZE);
  memset (copy + offsetof (struct sc_sb_disk, crc), 0, sizeof (uint32_t));
  return crc32c (0, copy, SC_SB_SIZE);
}

void
uh_sb_fix_crc (void *block)
{
  uint32_t crc = uh_sb_crc (block);
  memcpy ((uint8_t *) block + offsetof (struct sc_sb_disk, crc), &crc,
          sizeof crc);
}

void
uh_sb_read (const char *path, int copy, struct sc_sb_disk *sb)
{
  uh_pread (path, sb, sizeof *sb, (uint64_t) copy * SC_SB_SIZE);
}

void
uh_sb_write (const char *path, int copy, const struct sc_sb_disk *sb)
{
  uint8_t block[SC_SB_SIZE];
  /* Keep whatever lies past the structure in the block. */
  uh_pread (path, block, SC_SB_SIZE, (uint64_t) copy * SC_SB_SIZE);
  memcpy (block, sb, sizeof *sb);
  uh_sb_fix_crc (block);
  uh_pwrite (path, block, SC_SB_SIZE, (uint64_t) copy * SC_SB_SIZE);
}

static bool
sb_valid (const uint8_t *block)
{
  const struct sc_sb_disk *sb = (const void *) block;
  return memcmp (sb->magic, SC_SB_MAGIC, 8) == 0 &&
         sb->crc == uh_sb_crc (block);
}

int
uh_sb_newest (const char *path, struct sc_sb_disk *out)
{
  uint8_t blocks[2][SC_SB_SIZE];
  uh_pread (path, blocks, sizeof blocks, 0);
  int best = -1;
  for (int i = 0; i < 2; i++)
    if (sb_valid (blocks[i]) &&
        (best < 0 || ((struct sc_sb_disk *) blocks[i])->generation >
                     ((struct sc_sb_disk *) blocks[best])->generation))
      best = i;
  cr_assert_geq (best, 0, "%s: no valid superblock", path);
  memcpy (out, blocks[best], sizeof *out);
  return best;
}

void
uh_journal_end (const char *path, struct uh_journal_end *je)
{
  struct sc_sb_disk sb;
  uh_sb_newest (path, &sb);
  memset (je, 0, sizeof *je);
  je->chunk_size = 1u << sb.chunk_shift;
  je->seed = sc_journal_seed (sb.uuid, sb.journal_nonce);
  je->head_slot = sb.journal_head;

  uint8_t *buf = malloc (je->chunk_size);
  cr_assert_not_null (buf);
  uint64_t slot = sb.journal_head, seq = sb.journal_seq;
  for (unsigned hops = 0;; hops++) {
    cr_assert_lt (hops, 100000, "journal chain does not end");
    uh_pread (path, buf, je->chunk_size, slot * je->chunk_size);
    uint32_t pos = 0;
    uint64_t next = 0;
    for (;;) {
      struct sc_rec_hdr h;
      if (pos + sizeof h > je->chunk_size)
        break;
      memcpy (&h, buf + pos, sizeof h);
      if (h.seq != seq || h.len < sizeof h || h.len % SC_REC_ALIGN ||
          h.len > je->chunk_size - pos ||
          h.crc != crc32c (je->seed, buf + pos + 4, h.len - 4))
        break;
      if (h.type == SC_REC_NEXT)
        memcpy (&next, buf + pos + sizeof h, sizeof next);
      pos += h.len;
      seq++;
      je->records++;
      if (next)
        break;
    }
    if (!next) {
      je->slot = slot;
      je->off = slot * je->chunk_size + pos;
      je->next_seq = seq;
      break;
    }
    slot = next;
  }
  free (buf);
}

void
uh_rec_seal (void *rec, size_t len, uint64_t seq, uint32_t seed)
{
  struct sc_rec_hdr *h = rec;
  h->len = (uint16_t) len;
  h->seq = seq;
  h->crc = crc32c (seed, (uint8_t *) rec + 4, len - 4);
}

void
uh_journal_append (const char *path, void *rec, size_t len)
{
  struct uh_journal_end je;
  uh_journal_end (path, &je);
  cr_assert_leq (je.off % je.chunk_size + len, je.chunk_size,
                 "no room for the record in the last journal slot");
  uh_rec_seal (rec, len, je.next_seq, je.seed);
  uh_pwrite (path, rec, len, je.off);

  /* As if the last session had written it before closing cleanly: a
   * clean close records where the journal ends. */
  struct sc_sb_disk sb;
  int copy = uh_sb_newest (path, &sb);
  if (sb.flags & SC_SB_CLEAN) {
    sb.clean_seq = je.next_seq + 1;
    uh_sb_write (path, copy, &sb);
  }
}

void
uh_journal_pad_to_sector (const char *path, unsigned before)
{
  for (;;) {
    struct uh_journal_end je;
    uh_journal_end (path, &je);
    if ((je.off + before) % 512 == 0)
      return;
    struct sc_rec_commit mark = { .h.type = SC_REC_COMMIT };
    uh_journal_append (path, &mark, sizeof mark);
  }
}

void
uh_sb_mark_unclean (const char *path)
{
  struct sc_sb_disk sb;
  int copy = uh_sb_newest (path, &sb);
  sb.flags &= ~SC_SB_CLEAN;
  uh_sb_write (path, copy, &sb);
}

/* ---- a diff area on a temporary origin ------------------------------ */

void
uh_area_create (struct uh_area *a, uint64_t size, uint32_t chunk_size,
                uint64_t seed)
{
  memset (a, 0, sizeof *a);
  a->origin_path = uh_path ("origin");
  a->diff_path = uh_path ("diff");
  a->origin_size = size;
  a->seed = seed;
  uh_make_file (a->origin_path, size, seed);
  a->origin_fd = open (a->origin_path, O_RDWR | O_CLOEXEC);
  cr_assert_geq (a->origin_fd, 0);
  cr_assert_eq (sc_origin_identify (a->origin_fd, a->origin_path, &a->id), 0);

  char err[512] = "";
  int r = sc_diff_open (a->diff_path, SC_DIFF_CREATE, &a->id, chunk_size,
                        &a->d, err, sizeof err);
  cr_assert_eq (r, 0, "creating %s: %d %s", a->diff_path, r, err);
  a->chunk_size = sc_diff_chunk_size (a->d);
  if (chunk_size)
    cr_assert_eq (a->chunk_size, chunk_size);
}

void
uh_area_close (struct uh_area *a)
{
  if (!a->d)
    return;
  int r = sc_diff_close (a->d);
  a->d = NULL;
  cr_assert_eq (r, 0, "sc_diff_close: %d", r);
}

void
uh_area_open (struct uh_area *a, unsigned flags)
{
  char err[512] = "";
  int r = sc_diff_open (a->diff_path, flags, &a->id, 0, &a->d, err,
                        sizeof err);
  cr_assert_eq (r, 0, "opening %s: %d %s", a->diff_path, r, err);
}

void
uh_area_reopen (struct uh_area *a, unsigned flags)
{
  uh_area_close (a);
  uh_area_open (a, flags);
}

void
uh_area_free (struct uh_area *a)
{
  uh_area_close (a);
  if (a->origin_fd > 0)
    close (a->origin_fd);
  free (a->origin_path);
  free (a->diff_path);
  memset (a, 0, sizeof *a);
}

uint64_t
uh_copy_chunk (struct sc_diff *d, uint64_t chunk, uint64_t tag)
{
  uint64_t off;
  cr_assert_eq (sc_diff_commit (d, uh_copy_chunk_record (d, chunk, tag,
                                                         &off)), 0);
  return off;
}

uint64_t
uh_copy_chunk_record (struct sc_diff *d, uint64_t chunk, uint64_t tag,
                      uint64_t *offp)
{
  uint32_t cs = sc_diff_chunk_size (d);
  uint64_t off, seq = 0;
  cr_assert_eq (sc_diff_slot_reserve (d, &off), 0);
  cr_assert_eq (off % cs, 0, "slot offset %lu not chunk aligned",
                (unsigned long) off);
  cr_assert_geq (off, SC_SB_AREA, "slot offset %lu inside the superblocks",
                 (unsigned long) off);
  uint8_t *buf = malloc (cs);
  cr_assert_not_null (buf);
  uh_pattern (buf, cs, tag, 0);
  cr_assert_eq (pwrite (sc_diff_fd (d), buf, cs, off), (ssize_t) cs);
  uint32_t sums[SC_COPY_SUMS_MAX];
  sc_diff_copy_sums (d, buf, sums);
  free (buf);
  cr_assert_eq (sc_diff_copy_record (d, chunk, off, sums, &seq), 0);
  *offp = off;
  return seq;
}

int
uh_copy_reserved (struct sc_diff *d, uint64_t chunk, uint64_t tag)
{
  uint32_t cs = sc_diff_chunk_size (d);
  uint64_t off, seq = 0;
  int r = sc_diff_copy_reserve (d, chunk, &off);
  if (r != 0)
    return r;
  uint8_t *buf = malloc (cs);
  if (!buf)
    return -ENOMEM;
  uh_pattern (buf, cs, tag, 0);
  r = pwrite (sc_diff_fd (d), buf, cs, off) == (ssize_t) cs ? 0 : -EIO;
  uint32_t sums[SC_COPY_SUMS_MAX];
  sc_diff_copy_sums (d, buf, sums);
  free (buf);
  if (r == 0)
    r = sc_diff_copy_record (d, chunk, off, sums, &seq);
  return r ? r : sc_diff_commit (d, seq);
}

bool
uh_punch_reads_zeros (void)
{
  char *p = uh_path ("probe");
  uint8_t buf[8192];
  memset (buf, 0xa5, sizeof buf);
  uh_write_file (p, buf, sizeof buf);
  int fd = open (p, O_RDWR);
  bool ok = fd >= 0 && fallocate (fd, FALLOC_FL_PUNCH_HOLE |
                                  FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
  if (fd >= 0)
    close (fd);
  if (ok) {
    uh_pread (p, buf, 4096, 0);
    for (int i = 0; i < 4096; i++)
      ok &= buf[i] == 0;
  }
  unlink (p);
  free (p);
  return ok;
}

void
uh_copy_zero (struct sc_diff *d, uint64_t chunk)
{
  uint64_t seq = 0;
  cr_assert_eq (sc_diff_copy_record (d, chunk, SC_COPY_ZERO, NULL, &seq), 0);
  cr_assert_eq (sc_diff_commit (d, seq), 0);
}

void
uh_assert_slot_data (struct sc_diff *d, uint64_t offset, uint64_t tag)
{
  uint32_t cs = sc_diff_chunk_size (d);
  uint8_t *got = malloc (cs), *want = malloc (cs);
  cr_assert (got && want);
  cr_assert_eq (pread (sc_diff_fd (d), got, cs, offset), (ssize_t) cs);
  uh_pattern (want, cs, tag, 0);
  cr_assert_arr_eq (got, want, cs, "slot at offset %lu does not hold the "
                    "data of copy %lu", (unsigned long) offset,
                    (unsigned long) tag);
  free (got);
  free (want);
}

struct sc_snapshot_info
uh_snap (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info info;
  memset (&info, 0, sizeof info);
  int r = sc_diff_snapshot_create (d, name, NULL, &info);
  cr_assert_eq (r, 0, "creating snapshot %s: %d", name ? name : "(default)",
                r);
  return info;
}

struct sc_snapshot_info
uh_find (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info info;
  int r = sc_diff_snapshot_find (d, name, &info);
  cr_assert_eq (r, 0, "snapshot %s: %d", name, r);
  return info;
}

enum sc_where
uh_resolve (struct sc_diff *d, const char *name, uint64_t chunk,
            uint64_t *off)
{
  struct sc_snapshot_info s = uh_find (d, name);
  uint64_t o = UINT64_MAX;
  enum sc_where w = sc_diff_resolve (d, s.epoch, chunk, &o);
  if (off)
    *off = w == SC_WHERE_DIFF ? o : UINT64_MAX;
  return w;
}

void
uh_assert_sees_copy (struct sc_diff *d, const char *name, uint64_t chunk,
                     uint64_t tag)
{
  uint64_t off;
  cr_assert_eq (uh_resolve (d, name, chunk, &off), SC_WHERE_DIFF,
                "%s should find chunk %lu in the diff area", name,
                (unsigned long) chunk);
  uh_assert_slot_data (d, off, tag);
}

void
uh_assert_sees_origin (struct sc_diff *d, const char *name, uint64_t chunk)
{
  cr_assert_eq (uh_resolve (d, name, chunk, NULL), SC_WHERE_ORIGIN,
                "%s should read chunk %lu from the origin", name,
                (unsigned long) chunk);
}

struct sc_diff_stats
uh_stats (struct sc_diff *d)
{
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  return st;
}

/* ---- a volume on a temporary origin ---------------------------------- */

void
uh_vol_init (struct uh_vol *t, uint64_t size, uint32_t chunk_size,
             uint64_t seed, uint32_t retry_ms)
{
  memset (t, 0, sizeof *t);
  t->origin = uh_path ("origin");
  t->diff = uh_path ("diff");
  t->size = size;
  t->chunk_size = chunk_size;
  t->retry_ms = retry_ms;
  /* calloc: a large sparse origin costs no memory until written. */
  t->live = calloc (1, size);
  cr_assert_not_null (t->live);
  uh_make_file (t->origin, size, seed);
  if (seed)
    uh_pattern (t->live, size, seed, 0);
}

void
uh_vol_open (struct uh_vol *t)
{
  struct sc_volume_config cfg = {
    .origin_path = t->origin, .diff_path = t->diff,
    .chunk_size = t->chunk_size, .retry_ms = t->retry_ms,
  };
  char err[512] = "";
  int r = sc_volume_open (&cfg, &t->v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %d %s", r, err);
}

void
uh_vol_create (struct uh_vol *t, uint64_t size, uint32_t chunk_size,
               uint64_t seed, uint32_t retry_ms)
{
  uh_vol_init (t, size, chunk_size, seed, retry_ms);
  uh_vol_open (t);
}

int
uh_vol_write (struct uh_vol *t, uint64_t chunk, uint64_t tag)
{
  uint32_t cs = t->chunk_size;
  uh_pattern (t->live + chunk * cs, cs, tag, 0);
  return sc_volume_write (t->v, t->live + chunk * cs, cs, chunk * cs, 0);
}

void *
uh_vol_write_job (void *opaque)
{
  struct uh_vol_job *j = opaque;
  j->r = uh_vol_write (j->t, j->chunk, j->tag);
  __atomic_store_n (&j->done, true, __ATOMIC_SEQ_CST);
  return NULL;
}

struct sc_snapshot_info
uh_vol_snap (struct uh_vol *t, const char *name)
{
  struct sc_snapshot_info s;
  int r = sc_volume_snapshot_create (t->v, name, NULL, &s);
  cr_assert_eq (r, 0, "snapshot %s: %d", name, r);
  return s;
}

void
uh_vol_assert_reads (struct uh_vol *t, uint64_t id, const uint8_t *image,
                     const char *what)
{
  uint8_t *buf = malloc (t->size);
  cr_assert_not_null (buf);
  int r = id ? sc_volume_snapshot_read (t->v, id, buf, t->size, 0)
             : sc_volume_read (t->v, buf, t->size, 0);
  cr_assert_eq (r, 0, "%s: read failed: %d", what, r);
  size_t bad = 0;
  while (bad < t->size && buf[bad] == image[bad])
    bad++;
  cr_assert (bad == t->size, "%s: wrong content (chunk %zu)", what,
             bad / t->chunk_size);
  free (buf);
}

void
uh_vol_close (struct uh_vol *t)
{
  if (t->v)
    sc_volume_close (t->v);
  t->v = NULL;
}

void
uh_vol_free (struct uh_vol *t)
{
  uh_vol_close (t);
  free (t->origin);
  free (t->diff);
  free (t->live);
  memset (t, 0, sizeof *t);
}

/* ---- a copy index on a scratch file --------------------------------- */

void
uh_ix_open (struct sc_index *ix)
{
  struct sc_pc *pc;
  cr_assert_eq (sc_pc_new (0, &pc), 0);
  int fd = sc_pc_scratch_file (getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
  cr_assert_geq (fd, 0, "scratch file: %s", strerror (-fd));
  cr_assert_eq (sc_index_init (ix, pc, fd), 0);
}

void
uh_ix_close (struct sc_index *ix)
{
  struct sc_pc *pc = ix->pc;
  sc_index_free (ix);
  sc_pc_free (pc);
}

/* ---- checkpoint tests: a fixed journal limit, waiting on flags ------ */

void
uh_ckpt_setup (size_t slice)
{
  uh_setup ();
  sc_ckpt_strict = true;
  sc_ckpt_slice = slice;
}

void
uh_ckpt_teardown (void)
{
  sc_ckpt_limit_hook = NULL;
  sc_ckpt_stream_hook = NULL;
  sc_ckpt_strict = false;
  sc_ckpt_slice = 512;
  uh_teardown ();
}

/* Atomics: the hook runs in the checkpointing thread, the test arms and
 * disarms from its own (and a hook may disarm to allow one checkpoint). */
static uint64_t ckpt_limit;
static bool ckpt_armed;

uint64_t
uh_ckpt_fixed_limit (uint64_t live)
{
  (void) live;
  return __atomic_load_n (&ckpt_armed, __ATOMIC_SEQ_CST)
         ? __atomic_load_n (&ckpt_limit, __ATOMIC_SEQ_CST) : UINT64_MAX;
}

void
uh_ckpt_limit_arm (uint64_t records)
{
  __atomic_store_n (&ckpt_limit, records, __ATOMIC_SEQ_CST);
  __atomic_store_n (&ckpt_armed, true, __ATOMIC_SEQ_CST);
  sc_ckpt_limit_hook = uh_ckpt_fixed_limit;
}

void
uh_ckpt_limit_disarm (void)
{
  __atomic_store_n (&ckpt_armed, false, __ATOMIC_SEQ_CST);
}

uint64_t
uh_ckpt_limit (void)
{
  return __atomic_load_n (&ckpt_limit, __ATOMIC_SEQ_CST);
}

bool
uh_wait_flag (bool *flag, int ms)
{
  for (int i = 0; i < ms; i++) {
    if (__atomic_load_n (flag, __ATOMIC_SEQ_CST))
      return true;
    usleep (1000);
  }
  return __atomic_load_n (flag, __ATOMIC_SEQ_CST);
}

/* ---- fdatasyncs stopped on demand ------------------------------------ */

static pthread_mutex_t syncs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t syncs_cond = PTHREAD_COND_INITIALIZER;
static int syncs_fd = -1;
static bool syncs_stopped, syncs_go;

static int
syncs_hook (const struct sc_io_req *req)
{
  pthread_mutex_lock (&syncs_lock);
  if (req->fd == syncs_fd && req->op == SC_IO_FDATASYNC && !syncs_go) {
    syncs_stopped = true;
    pthread_cond_broadcast (&syncs_cond);
    while (!syncs_go)
      pthread_cond_wait (&syncs_cond, &syncs_lock);
  }
  pthread_mutex_unlock (&syncs_lock);
  return 0;
}

void
uh_syncs_stop (int fd)
{
  pthread_mutex_lock (&syncs_lock);
  syncs_stopped = syncs_go = false;
  syncs_fd = fd;
  pthread_mutex_unlock (&syncs_lock);
  sc_io_fault_hook = syncs_hook;
}

void
uh_syncs_go (void)
{
  pthread_mutex_lock (&syncs_lock);
  syncs_go = true;
  pthread_cond_broadcast (&syncs_cond);
  pthread_mutex_unlock (&syncs_lock);
}

/* Wait (ms at most) until *flag, set under syncs_lock. */
static bool
syncs_wait (bool *flag, long ms)
{
  struct timespec until;
  clock_gettime (CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock (&syncs_lock);
  int r = 0;
  while (!*flag && r == 0)
    r = pthread_cond_timedwait (&syncs_cond, &syncs_lock, &until);
  bool ok = *flag;
  pthread_mutex_unlock (&syncs_lock);
  return ok;
}

bool
uh_syncs_wait_stopped (void)
{
  return syncs_wait (&syncs_stopped, 10000);
}

static bool held_flag;

void *
uh_hold_thread (void *volume)
{
  struct sc_volume *v = volume;
  if (sc_volume_create_begin (v) == 0 && sc_volume_hold (v) == 0) {
    pthread_mutex_lock (&syncs_lock);
    held_flag = true;
    pthread_cond_broadcast (&syncs_cond);
    pthread_mutex_unlock (&syncs_lock);
    sc_volume_release (v);
  }
  sc_volume_create_end (v);
  return NULL;
}

void
uh_held_reset (void)
{
  pthread_mutex_lock (&syncs_lock);
  held_flag = false;
  pthread_mutex_unlock (&syncs_lock);
}

bool
uh_wait_held (long ms)
{
  return syncs_wait (&held_flag, ms);
}

/* ---- writable clones at the diff-area level ------------------------- */

struct sc_snapshot_info
uh_clone (struct sc_diff *d, const char *base, const char *name)
{
  struct sc_snapshot_info c;
  char err[256] = "";
  int r = sc_diff_clone_create (d, base, name, &c, err, sizeof err);
  cr_assert_eq (r, 0, "clone %s of %s: %s", name, base, err);
  cr_assert (c.clone);
  return c;
}

uint64_t
uh_clone_write (struct sc_diff *d, uint64_t id, uint64_t chunk, uint64_t tag,
                uint64_t *offp)
{
  uint32_t cs = sc_diff_chunk_size (d);
  uint64_t off, seq;
  uint8_t *buf = malloc (cs);
  uint32_t sums[SC_COPY_SUMS_MAX];
  cr_assert_not_null (buf);
  cr_assert_eq (sc_diff_clone_slot_reserve (d, id, &off), 0);
  uh_pattern (buf, cs, tag, 0);
  cr_assert_eq (pwrite (sc_diff_fd (d), buf, cs, off), (ssize_t) cs);
  sc_diff_copy_sums (d, buf, sums);
  free (buf);
  cr_assert_eq (sc_diff_clone_map (d, id, chunk, off, sums, &seq), 0);
  if (offp)
    *offp = off;
  return seq;
}

void
uh_assert_clone_chunk (struct sc_diff *d, uint64_t id, uint64_t chunk,
                       uint64_t tag)
{
  uint32_t cs = sc_diff_chunk_size (d);
  uint64_t off;
  cr_assert_eq (sc_diff_clone_resolve (d, id, chunk, &off), SC_WHERE_DIFF,
                "chunk %lu of the clone is its own", (unsigned long) chunk);
  uint8_t *buf = malloc (cs), *want = malloc (cs);
  cr_assert (buf && want);
  struct sc_copy_io io = { .offset = off, .buf = buf, .at = 0, .len = cs };
  cr_assert_eq (sc_diff_copy_read (d, &io, 1), 0,
                "a verified read of chunk %lu of the clone",
                (unsigned long) chunk);
  uh_pattern (want, cs, tag, 0);
  cr_assert (memcmp (buf, want, cs) == 0, "chunk %lu holds tag %lu",
             (unsigned long) chunk, (unsigned long) tag);
  free (buf);
  free (want);
}
