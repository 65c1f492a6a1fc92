/* Helpers shared by the Criterion unit tests: a temporary directory per
 * test, deterministic origin files, whole-file reads, byte surgery on
 * diff areas, a small diff-area fixture and a volume fixture.
 *
 * Criterion forks one child per test and runs them in parallel, so every
 * test works in its own directory made by uh_setup() (a suite .init) and
 * removed by uh_teardown() (a suite .fini, which also runs after a failed
 * assertion). */
#ifndef SHADOWCOPY_TESTS_UNIT_HELPERS_H
#define SHADOWCOPY_TESTS_UNIT_HELPERS_H

#include <stdbool.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cow/diffarea.h"
#include "cow/format.h"

struct sc_index;
struct sc_volume;

/* ---- the test's directory ------------------------------------------ */

/* The directory of the running test (made by uh_setup). */
extern char *uh_dir;

void uh_setup (void);
void uh_teardown (void);

/* uh_dir + "/" + name, in a malloc'd string. */
char *uh_path (const char *name);

/* ---- deterministic data --------------------------------------------- */

/* splitmix64: a small, seedable generator for reproducible tests. */
uint64_t uh_rand (uint64_t *state);
/* Uniform in [0, n); n > 0. */
uint64_t uh_rand_below (uint64_t *state, uint64_t n);

/* The pattern byte at absolute offset `off` of a stream seeded by `seed`:
 * any range can be regenerated without keeping the whole stream. */
uint8_t uh_pattern_byte (uint64_t seed, uint64_t off);
void uh_pattern (void *buf, size_t len, uint64_t seed, uint64_t off);
/* Fill `len` bytes (a multiple of 8) with chunk << 32 | seq: which write
 * of which chunk a block holds. */
void uh_stamp (uint64_t *buf, size_t len, uint64_t chunk, uint64_t seq);

/* ---- files ---------------------------------------------------------- */

/* A file of `size` bytes of uh_pattern(seed) (seed != 0), or a sparse
 * all-zero file (seed == 0). */
void uh_make_file (const char *path, uint64_t size, uint64_t seed);
/* A file of `size` zero bytes actually written (not sparse). */
void uh_make_zero_file (const char *path, uint64_t size);

uint64_t uh_file_size (const char *path);
/* The whole file, malloc'd; *len gets its size. */
uint8_t *uh_read_file (const char *path, size_t *len);
void uh_write_file (const char *path, const void *buf, size_t len);
void uh_pread (const char *path, void *buf, size_t len, uint64_t off);
void uh_pwrite (const char *path, const void *buf, size_t len, uint64_t off);
void uh_flip_byte (const char *path, uint64_t off);
void uh_truncate (const char *path, uint64_t size);

/* ---- superblocks and journal records -------------------------------- */

/* CRC of a 4096-byte superblock image (crc field taken as zero), and
 * store it in the image. */
uint32_t uh_sb_crc (const void *block);
void uh_sb_fix_crc (void *block);

/* Read superblock copy `copy` (0: A at offset 0, 1: B at 4096). */
void uh_sb_read (const char *path, int copy, struct sc_sb_disk *sb);
/* Write copy `copy` from *sb, recomputing its CRC. */
void uh_sb_write (const char *path, int copy, const struct sc_sb_disk *sb);
/* Which copy is current (the valid one with the highest generation). */
int uh_sb_newest (const char *path, struct sc_sb_disk *sb);

/* Where the journal of the current superblock ends: the slot being
 * appended to, the offset in the file just past its last valid record,
 * and the sequence number the next record must carry.  Walks NEXT
 * records like replay does. */
struct uh_journal_end {
  uint64_t slot;
  uint64_t off;
  uint64_t next_seq;
  uint32_t seed;
  uint32_t chunk_size;
  uint64_t head_slot;
  uint64_t records;
};
void uh_journal_end (const char *path, struct uh_journal_end *je);

/* Seal a record as the journal does: len, seq, then the CRC over bytes
 * [4, len) seeded with `seed`. */
void uh_rec_seal (void *rec, size_t len, uint64_t seq, uint32_t seed);

/* Append a sealed record at the journal's end (in place, as if the
 * engine had written it). */
void uh_journal_append (const char *path, void *rec, size_t len);
/* Clear the newest superblock's CLEAN flag: the last session crashed. */
void uh_sb_mark_unclean (const char *path);
/* Append commit markers (vouching for nothing new) until the journal
 * ends `before` bytes short of a 512-byte sector boundary (`before` a
 * multiple of 8 below 512), so that the next record straddles it. */
void uh_journal_pad_to_sector (const char *path, unsigned before);

/* ---- a diff area on a temporary origin ------------------------------ */

struct uh_area {
  char *origin_path;
  char *diff_path;
  int origin_fd;
  uint64_t origin_size;
  uint32_t chunk_size;
  uint64_t seed;                /* origin content: uh_pattern(seed) */
  struct sc_origin_id id;
  struct sc_diff *d;
};

/* Make an origin of `size` bytes of pattern `seed` and create its diff
 * area with `chunk_size` (open read-write). */
void uh_area_create (struct uh_area *a, uint64_t size, uint32_t chunk_size,
                     uint64_t seed);
/* Close the diff area (asserting success). */
void uh_area_close (struct uh_area *a);
/* Open it again with `flags` (SC_DIFF_RDONLY or 0) and the origin. */
void uh_area_open (struct uh_area *a, unsigned flags);
void uh_area_reopen (struct uh_area *a, unsigned flags);
void uh_area_free (struct uh_area *a);

/* A copy of `chunk` as the engine makes one: reserve a slot, write
 * `chunk_size` bytes of uh_pattern(tag) there, record it and commit.
 * Returns the slot's offset. */
uint64_t uh_copy_chunk (struct sc_diff *d, uint64_t chunk, uint64_t tag);
/* The same, not committed: the record's seq; *offp gets the offset. */
uint64_t uh_copy_chunk_record (struct sc_diff *d, uint64_t chunk,
                               uint64_t tag, uint64_t *offp);
/* Record an all-zero copy of `chunk` (no slot) and commit. */
void uh_copy_zero (struct sc_diff *d, uint64_t chunk);

/* A copy through the policy-aware reservation (sc_diff_copy_reserve):
 * 0 copied, 1 not needed, or a negative errno.  No assertions, so that
 * threads other than the test's may call it. */
int uh_copy_reserved (struct sc_diff *d, uint64_t chunk, uint64_t tag);

/* Does punching a hole read back as zeros on the test directory's file
 * system?  (It does on ext4, xfs, btrfs and tmpfs; trim is advisory
 * elsewhere.) */
bool uh_punch_reads_zeros (void);

/* Assert that the data at `offset` in the diff area is uh_pattern(tag). */
void uh_assert_slot_data (struct sc_diff *d, uint64_t offset, uint64_t tag);

/* Create a snapshot named `name` (NULL: default) and return its info. */
struct sc_snapshot_info uh_snap (struct sc_diff *d, const char *name);
/* Look one up by name (asserting it exists). */
struct sc_snapshot_info uh_find (struct sc_diff *d, const char *name);

/* Where snapshot `name` finds `chunk`; *off (if not NULL) gets the slot's
 * offset when the data is in the diff area (UINT64_MAX otherwise). */
enum sc_where uh_resolve (struct sc_diff *d, const char *name,
                          uint64_t chunk, uint64_t *off);
/* Snapshot `name` reads `chunk` from a copy of pattern `tag`, or from
 * the origin. */
void uh_assert_sees_copy (struct sc_diff *d, const char *name,
                          uint64_t chunk, uint64_t tag);
void uh_assert_sees_origin (struct sc_diff *d, const char *name,
                            uint64_t chunk);

struct sc_diff_stats uh_stats (struct sc_diff *d);

/* ---- writable clones at the diff-area level ------------------------- */

/* Clone `name` of snapshot `base`. */
struct sc_snapshot_info uh_clone (struct sc_diff *d, const char *base,
                                  const char *name);
/* Write pattern `tag` as chunk `chunk` of clone `id` to a new slot, and
 * map it: the record's seq, not committed; *offp (if not NULL) gets the
 * slot's offset. */
uint64_t uh_clone_write (struct sc_diff *d, uint64_t id, uint64_t chunk,
                         uint64_t tag, uint64_t *offp);
/* Chunk `chunk` of clone `id` is its own, and a verified read of it
 * gives pattern `tag`. */
void uh_assert_clone_chunk (struct sc_diff *d, uint64_t id, uint64_t chunk,
                            uint64_t tag);

/* ---- a volume (engine/volume.h) on a temporary origin --------------- */

struct uh_vol {
  char *origin, *diff;
  struct sc_volume *v;
  /* What the live volume must read: the origin's content at first, then
   * kept by uh_vol_write (a test writing otherwise keeps it itself). */
  uint8_t *live;
  uint64_t size;
  uint32_t chunk_size;
  uint32_t retry_ms;            /* the volume config's (0: the default) */
};

/* Make an origin of `size` bytes of uh_pattern(seed) (seed != 0) or a
 * sparse all-zero one (seed == 0) and the live image to match, without
 * opening the volume: a test may shape the origin first. */
void uh_vol_init (struct uh_vol *t, uint64_t size, uint32_t chunk_size,
                  uint64_t seed, uint32_t retry_ms);
/* Open the volume (creating its diff area the first time). */
void uh_vol_open (struct uh_vol *t);
/* uh_vol_init then uh_vol_open. */
void uh_vol_create (struct uh_vol *t, uint64_t size, uint32_t chunk_size,
                    uint64_t seed, uint32_t retry_ms);
/* Close the volume (whatever sc_volume_close says) and forget it. */
void uh_vol_close (struct uh_vol *t);
void uh_vol_free (struct uh_vol *t);

/* Write chunk `chunk` of the live volume with uh_pattern(tag), in the
 * live image too: sc_volume_write's result. */
int uh_vol_write (struct uh_vol *t, uint64_t chunk, uint64_t tag);
/* A write run on a thread of its own (pthread_create's routine
 * uh_vol_write_job): r gets uh_vol_write's result, then done is set. */
struct uh_vol_job {
  struct uh_vol *t;
  uint64_t chunk, tag;
  int r;
  bool done;
};
void *uh_vol_write_job (void *opaque);
/* Create snapshot `name` (asserting success) and return its info. */
struct sc_snapshot_info uh_vol_snap (struct uh_vol *t, const char *name);
/* Assert that snapshot `id` (0: the live volume) reads `image` whole. */
void uh_vol_assert_reads (struct uh_vol *t, uint64_t id,
                          const uint8_t *image, const char *what);

/* ---- a copy index on a scratch file --------------------------------- */

/* An empty index on a new scratch file (in $TMPDIR, else /tmp), with a
 * page cache of the smallest budget; asserts success. */
void uh_ix_open (struct sc_index *ix);
/* Frees the index and its page cache. */
void uh_ix_close (struct sc_index *ix);

/* ---- checkpoint tests: a fixed journal limit, waiting on flags ------ */

/* A suite's .init and .fini for checkpoint tests: uh_setup, strict
 * checkpoints streamed in `slice`-copy slices; then the hooks and
 * settings back to their defaults, uh_teardown. */
void uh_ckpt_setup (size_t slice);
void uh_ckpt_teardown (void);

/* A sc_ckpt_limit_hook: the journal's limit is the records given to
 * uh_ckpt_limit_arm while armed, no limit (UINT64_MAX) while not. */
uint64_t uh_ckpt_fixed_limit (uint64_t live);
/* Sets the limit to `records`, arms it and installs uh_ckpt_fixed_limit. */
void uh_ckpt_limit_arm (uint64_t records);
/* Disarms the limit (the hook stays installed). */
void uh_ckpt_limit_disarm (void);
/* The limit last set. */
uint64_t uh_ckpt_limit (void);

/* Polls *flag (set by another thread) every millisecond for up to `ms`
 * milliseconds; its last value. */
bool uh_wait_flag (bool *flag, int ms);

/* The fdatasyncs of `fd` (a diff area's) stop until uh_syncs_go: a live
 * write that copied then waits in its commit, parked at the gate.
 * uh_syncs_wait_stopped waits (10 s at most) until one has stopped. */
void uh_syncs_stop (int fd);
void uh_syncs_go (void);
bool uh_syncs_wait_stopped (void);

/* A thread (its argument: a struct sc_volume *) that takes the creation
 * slot, holds the writes, says so, and releases them; uh_held_reset
 * before it starts, uh_wait_held waits (ms at most) until it held. */
void *uh_hold_thread (void *volume);
void uh_held_reset (void);
bool uh_wait_held (long ms);

#endif
