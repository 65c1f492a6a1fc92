/* shadowcopy: the on-disk format of the diff area (versions 1 to 6).
 *
 * docs/design.md describes it in prose; this header is its definition.
 * Every integer is little-endian.  Every metadata structure carries a
 * CRC32C.  Nothing here knows about threads or I/O.
 *
 * The file is an array of chunk-sized slots.  Bytes [0, 8192) hold two
 * superblock copies (A at 0, B at 4096); the first usable slot is the first
 * one past them.  Every other slot is free, a journal slot or a data slot.
 *
 *   slot offset = slot number * chunk_size
 *
 * The journal is a chain of journal slots, starting at the superblock's
 * journal_head.  Records are appended back to back inside a slot; a NEXT
 * record, always the last in its slot, names the following slot.  Replay
 * stops at the first record that fails its checks: wrong CRC (the CRC is
 * seeded with the volume UUID and the journal nonce, so records of an older
 * journal in a reused slot never pass), wrong sequence number, bad length;
 * that is the end of the journal only where it can be a torn write (a
 * 512-byte sector of it reads as zeros), otherwise it is damage
 * (docs/design.md, "Damage is not a torn tail").
 */
#ifndef SHADOWCOPY_COW_FORMAT_H
#define SHADOWCOPY_COW_FORMAT_H

#include <assert.h>
#include <stdint.h>

/* The structures below are written as they are in memory. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the diff-area format is little-endian; add byte swapping first"
#endif

#define SC_SB_MAGIC        "SHCOPYSB"
/* Version 2 added COPY_SUMS records; version 3 checkpoints (the
 * CHECKPOINT flag, KEEP_CHECKPOINT records, data-less MARK copies) and
 * snapshot UUIDs (SNAP_UUID records).  A read-write open writes the
 * current version into the superblock before it writes any record, so a
 * binary that knows an older one refuses the area by its version instead
 * of tripping on an unknown record; versions 1 and 2 are still read.
 * Version 4 added writable clones (the CLONE flag, CLONE_BASE and
 * CLONE_DATA records) and reverts; version 5 the ORIGIN_UNFLUSHED flag;
 * version 6 VOID records. */
#define SC_FORMAT_VERSION  6
#define SC_FORMAT_VERSION_MIN 1
#define SC_SB_SIZE         4096
#define SC_SB_COPIES       2
#define SC_SB_AREA         (SC_SB_SIZE * SC_SB_COPIES)

/* Superblock flags. */
#define SC_SB_CLEAN        0x1  /* closed cleanly (set on close) */
#define SC_SB_FAILED       0x2  /* a metadata write failed: trust no
                                   snapshot until the next checkpoint */
#define SC_SB_VOLATILE     0x4  /* the session (if unclean) did not sync
                                   copies: its snapshots are not trusted */
#define SC_SB_FLAGS_KNOWN  (SC_SB_CLEAN | SC_SB_FAILED | SC_SB_VOLATILE)

/* What the origin's stamp in the superblock says. */
#define SC_STAMP_NONE      0    /* no stamp: nothing can be checked */
#define SC_STAMP_UNWRITTEN 1    /* the origin as the server left it: taken
                                   at open or at a clean stop, with no
                                   write of the server since */
#define SC_STAMP_WRITTEN   2    /* the server may have written the origin
                                   since: only a clean stop renews it */
#define SC_STAMP_F_TIMES    0x1 /* size, mtime and ctime are set (a file) */
#define SC_STAMP_F_COUNTERS 0x2 /* boot id and write counters are set (a
                                   block device) */
#define SC_STAMP_F_CLEAN_STOP 0x4 /* a server's clean stop left this
                                   state: UNWRITTEN, its stamp (taken then,
                                   or at its open with no write since);
                                   WRITTEN, none could be taken after its
                                   writes.  Without it, the last server did
                                   not stop cleanly (or the diff area
                                   failed) */
#define SC_STAMP_F_KNOWN    (SC_STAMP_F_TIMES | SC_STAMP_F_COUNTERS | \
                             SC_STAMP_F_CLEAN_STOP)
#define SC_STAMP_SAMPLES    32  /* sampled blocks of the origin */
#define SC_STAMP_SAMPLE_SIZE 4096

struct sc_sb_disk {
  char     magic[8];            /* SC_SB_MAGIC */
  uint32_t version;             /* SC_FORMAT_VERSION */
  uint32_t crc;                 /* CRC32C of the 4096 bytes, this field 0 */
  uint64_t generation;          /* the valid copy with the highest wins */
  uint8_t  uuid[16];            /* volume identity, random at format */
  uint32_t chunk_shift;         /* log2 chunk size, 12..20 */
  uint32_t flags;               /* SC_SB_* */
  uint64_t origin_size;
  uint64_t origin_dev;
  uint64_t origin_ino;
  uint32_t origin_type;         /* SC_ORIGIN_FILE / SC_ORIGIN_BLOCK /
                                   SC_ORIGIN_NBD (3) */
  uint32_t reserved0;
  uint64_t journal_head;        /* slot number of the first journal slot */
  uint64_t journal_seq;         /* sequence number of its first record */
  uint64_t journal_nonce;       /* seeds every record CRC of this journal */
  uint64_t format_time_ns;
  char     origin_path[256];    /* informational */
  uint64_t clean_seq;           /* with CLEAN: the journal's next seq at
                                   close; replay must end exactly there */
  /* The origin's stamp: what identified its content when the server last
   * left it (cow/origin-stamp.c; docs/design.md, "The origin is
   * watched").  All zero (SC_STAMP_NONE) in diff areas of older
   * versions. */
  uint32_t stamp_state;         /* SC_STAMP_* */
  uint32_t stamp_flags;         /* SC_STAMP_F_* */
  uint64_t stamp_time_ns;       /* when it was taken (wall clock) */
  uint64_t stamp_size;          /* the origin's size then */
  uint64_t stamp_mtime_ns;      /* a file's mtime and ctime */
  uint64_t stamp_ctime_ns;
  uint8_t  stamp_boot_id[16];   /* a block device: the boot its counters */
  uint64_t stamp_write_ios;     /* (/sys/dev/block/MAJ:MIN/stat) count */
  uint64_t stamp_write_sectors; /* from */
  uint64_t stamp_discard_ios;
  uint64_t stamp_discard_sectors;
  uint32_t stamp_nsamples;      /* 0..SC_STAMP_SAMPLES */
  uint32_t stamp_sample_crc[SC_STAMP_SAMPLES]; /* CRC32C of sampled blocks */
  uint64_t stamp_diskseq;       /* a block device: its disk's sequence
                                   number (/sys/block/X/diskseq, new each
                                   time the kernel makes the device); 0
                                   if the kernel does not say */
  uint8_t  session_boot_id[16]; /* the boot the last read-write session ran
                                   in (zeros: unknown) */
  uint64_t session_id;          /* random, new at each server session's
                                   open before it may write the origin
                                   (cow/session.c); a write-back log holds
                                   its session's, and only the last
                                   session's log is written at open.  0:
                                   none recorded (made by this open, or
                                   by an older shadowcopy) */
  uint64_t wblog_session;       /* the id of the session whose write-back
                                   log may hold writes not yet in the diff
                                   area or on the origin: set with its id
                                   when it makes one, cleared at its clean
                                   stop (0: none) */
} __attribute__((packed));
static_assert (sizeof (struct sc_sb_disk) <= SC_SB_SIZE, "superblock size");

/* Journal records.  Lengths are multiples of 8. */
#define SC_REC_ALIGN 8
struct sc_rec_hdr {
  uint32_t crc;                 /* CRC32C of bytes [4, len), seeded */
  uint16_t type;
  uint16_t len;                 /* whole record, header included */
  uint64_t seq;                 /* +1 per record, never reused */
} __attribute__((packed));
static_assert (sizeof (struct sc_rec_hdr) == 16, "record header size");

enum sc_rec_type {
  SC_REC_STATE = 1,             /* epoch and id counters (checkpoints) */
  SC_REC_SNAP_CREATE = 2,
  SC_REC_SNAP_DELETE = 3,
  SC_REC_SNAP_INVALID = 4,
  SC_REC_COPY = 5,
  SC_REC_NEXT = 6,
  SC_REC_COMMIT = 7,            /* group-commit marker */
  SC_REC_SNAP_SET = 8,          /* the snapshot set a snapshot belongs to */
  SC_REC_SNAP_DROP = 9,         /* a snapshot deleted by a policy */
  SC_REC_LIMIT = 10,            /* the diff area's size limit */
  SC_REC_DISCARD = 11,          /* a snapshot no longer needs chunks */
  SC_REC_COPY_SUMS = 12,        /* a copy with one checksum per block */
  SC_REC_SLOT_START = 13,       /* reserved, never written */
  SC_REC_SNAP_UUID = 14,        /* a snapshot's or checkpoint's UUID */
  SC_REC_KEEP_CHECKPOINT = 15,  /* a snapshot's data let go, kept as a
                                   checkpoint */
  SC_REC_CLONE_BASE = 16,       /* a writable clone's base snapshot */
  SC_REC_CLONE_DATA = 17,       /* a chunk of a writable clone */
  SC_REC_REVERT = 18,           /* a revert of the live volume started */
  SC_REC_REVERT_DONE = 19,      /* chunks of the origin hold its target */
  SC_REC_REVERT_END = 20,       /* the revert finished or was ended */
  SC_REC_REVERT_RATE = 21,      /* the running revert's rate changed */
  SC_REC_VOID = 22,             /* a dropped unsure copy or clone write */
};

struct sc_rec_state {
  struct sc_rec_hdr h;
  uint32_t epoch;               /* current epoch of the live volume */
  uint32_t reserved;
  uint64_t next_snapshot_id;
} __attribute__((packed));

struct sc_rec_snap_create {
  struct sc_rec_hdr h;
  uint64_t id;
  uint32_t epoch;
  uint32_t flags;               /* SC_SNAP_F_*; unknown bits: corrupt */
  uint64_t ctime_ns;
  uint64_t volume_size;
  uint16_t name_len;            /* 1..SC_NAME_MAX */
  char     name[];              /* not NUL-terminated; padded to 8 */
} __attribute__((packed));

/* The snapshot lives only as long as the control session that created
 * it: a diff area opened after that session (a restart, or offline)
 * deletes it. */
#define SC_SNAP_F_AUTO_RELEASE 0x1
/* A checkpoint (version 3): it keeps no data; the copy map keeps a
 * data-less MARK for each chunk first written after it, so that what
 * changed since can be told (cow/changes.c). */
#define SC_SNAP_F_CHECKPOINT   0x2
/* A writable clone (version 4): its epoch is its base's, which it does
 * not advance; it is no epoch of the copy map.  Its SNAP_UUID and
 * CLONE_BASE records follow its SNAP_CREATE in the same commit. */
#define SC_SNAP_F_CLONE        0x4
/* Invalid from its creation (version 5): the origin's flush failed when
 * the snapshot was taken (SC_INVALID_ORIGIN_FLUSH).  Set in the record
 * itself before it is written (the journal's leads are held until that
 * flush is done), so that it reaches the disk invalid or not at all. */
#define SC_SNAP_F_ORIGIN_UNFLUSHED 0x8
#define SC_SNAP_F_KNOWN        (SC_SNAP_F_AUTO_RELEASE | SC_SNAP_F_CHECKPOINT \
                                | SC_SNAP_F_CLONE | SC_SNAP_F_ORIGIN_UNFLUSHED)

/* Written right after the SNAP_CREATE record of every snapshot and
 * checkpoint (version 3; before its SNAP_SET): its UUID, random at
 * creation.  A snapshot without one (made by an older version) has a
 * UUID derived from the volume's and its id (cow/snapshot-table.c). */
struct sc_rec_snap_uuid {
  struct sc_rec_hdr h;
  uint64_t id;
  uint8_t  uuid[16];
} __attribute__((packed));

/* `delete --keep-checkpoint`: snapshot `id` becomes a checkpoint; the
 * copies only it needed are let go (a data copy that a checkpoint still
 * needs becomes a MARK).  A kept auto-release snapshot is auto-release
 * no more, and a kept member of a snapshot set leaves the set: the
 * checkpoint outlives its session and its set. */
struct sc_rec_keep_checkpoint {
  struct sc_rec_hdr h;
  uint64_t id;
} __attribute__((packed));

/* Written right after the SNAP_CREATE record of a snapshot that belongs
 * to a snapshot set (and in the same commit); names that snapshot. */
struct sc_rec_snap_set {
  struct sc_rec_hdr h;
  uint64_t id;
  uint8_t  set_id[16];          /* the set's UUID */
} __attribute__((packed));

struct sc_rec_snap_delete {
  struct sc_rec_hdr h;
  uint64_t id;
} __attribute__((packed));

struct sc_rec_snap_invalid {
  struct sc_rec_hdr h;
  uint64_t id;
  uint32_t reason;              /* enum sc_invalid_reason */
  int32_t  err;                 /* errno */
  uint64_t chunk;
} __attribute__((packed));

struct sc_rec_copy {
  struct sc_rec_hdr h;
  uint64_t chunk;
  uint32_t epoch;               /* the epoch whose first write copied it */
  uint32_t flags;               /* SC_COPY_F_ZERO */
  uint64_t slot;                /* data slot; 0 for zero copies */
  uint32_t data_crc;            /* CRC32C of the slot's chunk_size bytes */
  uint32_t reserved;            /* 0 */
} __attribute__((packed));
#define SC_COPY_F_ZERO 0x1
/* A data-less mark (version 3): chunk was first written in `epoch` after
 * a checkpoint that needs to know, and no snapshot needed its old data.
 * slot and data_crc are 0. */
#define SC_COPY_F_MARK 0x2

/* A data copy with one CRC32C per block of its slot (format version 2),
 * so that a read of part of a chunk is verified by reading just the
 * blocks it covers.  Blocks are sc_sums_block(chunk_size) bytes: at most
 * SC_SUMS_MAX per copy, one for a 4K chunk.  It replaces COPY for data
 * copies; zero copies are still COPY records with SC_COPY_F_ZERO. */
struct sc_rec_copy_sums {
  struct sc_rec_hdr h;
  uint64_t chunk;
  uint32_t epoch;               /* the epoch whose first write copied it */
  uint16_t nsums;               /* chunk_size / sc_sums_block(chunk_size) */
  uint16_t reserved;            /* 0 */
  uint64_t slot;                /* data slot */
  uint32_t sums[];              /* CRC32C of each block; padded to 8 */
} __attribute__((packed));
#define SC_SUMS_MAX 16
#define SC_SUMS_BLOCK_MIN 4096u

static inline uint32_t
sc_sums_block (uint32_t chunk_size)
{
  return chunk_size / SC_SUMS_MAX > SC_SUMS_BLOCK_MIN
         ? chunk_size / SC_SUMS_MAX : SC_SUMS_BLOCK_MIN;
}

struct sc_rec_next {
  struct sc_rec_hdr h;
  uint64_t slot;                /* the next journal slot */
} __attribute__((packed));

/* Written at the head of each group commit in durability=safe: every
 * record up to `durable_seq` had been made durable before this one was
 * written.  A damaged record that a later marker covers is corruption in
 * the middle of the journal, not a torn tail. */
struct sc_rec_commit {
  struct sc_rec_hdr h;
  uint64_t durable_seq;
} __attribute__((packed));

/* A snapshot deleted by a policy (diff area full, max-snapshots, a
 * shrink).  If the snapshot is still listed it goes, as with a
 * SNAP_DELETE; the record also stays in the drop history, which
 * checkpoints carry forward (then with ids no longer listed). */
struct sc_rec_snap_drop {
  struct sc_rec_hdr h;
  uint64_t id;
  uint64_t ctime_ns;            /* the snapshot's creation time */
  uint64_t drop_ns;             /* when it was dropped */
  uint64_t total;               /* drops so far, this one included */
  uint16_t reason;              /* enum sc_invalid_reason, 6..8 */
  uint16_t name_len;            /* 1..SC_NAME_MAX */
  char     name[];              /* not NUL-terminated; padded to 8 */
} __attribute__((packed));
static_assert ((sizeof (struct sc_rec_snap_drop) + 128 + SC_REC_ALIGN - 1)
               / SC_REC_ALIGN * SC_REC_ALIGN <= sizeof (struct sc_rec_snap_create) + 128 + SC_REC_ALIGN,
               "a drop record fits SC_REC_MAX");

/* The administrator's size limit of the whole diff-area file, in bytes
 * (0: unbounded).  The last one wins. */
struct sc_rec_limit {
  struct sc_rec_hdr h;
  uint64_t max_bytes;
  uint64_t reserved;            /* 0 */
} __attribute__((packed));

/* Snapshot `id` no longer needs chunks [first, first + count): it reads
 * them as zeros, and copies no other snapshot needs are dropped. */
struct sc_rec_discard {
  struct sc_rec_hdr h;
  uint64_t id;
  uint64_t first;
  uint64_t count;
} __attribute__((packed));

/* Right after a clone's SNAP_UUID (version 4): clone `id` starts as
 * snapshot `base_id` (a valid snapshot, never a checkpoint or a clone,
 * of the clone's epoch).  The base cannot be deleted while it has
 * clones. */
struct sc_rec_clone_base {
  struct sc_rec_hdr h;
  uint64_t id;
  uint64_t base_id;
} __attribute__((packed));

/* Chunk `chunk` of clone `id` is now in `slot` (its data with one CRC32C
 * per block, as COPY_SUMS), or with SC_CLONE_F_ZERO reads as zeros (slot
 * 0, no sums).  The last record of a chunk wins; the slot it replaces is
 * freed only once this record is durable, so a record replay drops (its
 * data not on disk after a power cut) leaves the previous mapping. */
struct sc_rec_clone_data {
  struct sc_rec_hdr h;
  uint64_t id;
  uint64_t chunk;
  uint32_t flags;               /* SC_CLONE_F_* */
  uint16_t nsums;               /* as COPY_SUMS; 0 with ZERO */
  uint16_t reserved;            /* 0 */
  uint64_t slot;
  uint32_t sums[];              /* padded to 8 */
} __attribute__((packed));
#define SC_CLONE_F_ZERO 0x1

/* Record `seq` did not take effect (version 6).  It is a copy (COPY or
 * COPY_SUMS) or a clone's write (CLONE_DATA) that no commit marker
 * vouched for, and the open after a power cut found its data missing from
 * `slot` and dropped it.  When that open could not write a checkpoint and
 * continued the journal in place, the commit markers it writes from then
 * on vouch for every earlier record, that one too; this record, written
 * first, undoes it.  A copy: the copy of `chunk` made in `epoch` is
 * removed (its chunk is read from the origin again).  A clone's write
 * (SC_VOID_F_CLONE; `id` is the clone's, epoch 0; `slot` its newest
 * dropped write's) to a chunk that had no mapping before: the chunk goes
 * back to its base.  (Dropped writes over a mapping are undone by one
 * CLONE_DATA record of that mapping instead: one record a chunk, which a
 * torn write leaves whole or absent.) */
struct sc_rec_void {
  struct sc_rec_hdr h;
  uint64_t seq;
  uint64_t id;                  /* the clone (SC_VOID_F_CLONE), else 0 */
  uint64_t chunk;
  uint64_t slot;
  uint32_t epoch;
  uint32_t flags;               /* SC_VOID_F_*; unknown bits: corrupt */
} __attribute__((packed));
#define SC_VOID_F_CLONE 0x1
/* A revert of the live volume to snapshot `target_id` (version 4):
 * from this record on the live volume reads as that snapshot.  Chunk c
 * is to do when it has a copy or mark of an epoch W with target epoch <
 * W < start_epoch (it changed after the target and before the revert),
 * or the target's reader discarded it; it is done once a REVERT_DONE
 * covers it.  Every write after the record has an epoch >= start_epoch:
 * the record follows the SNAP_CREATE of `saved_id` (the pre-revert
 * state, start_epoch its epoch + 1) in the same commit, or the live
 * epoch moves to start_epoch with it.  One revert at a time. */
struct sc_rec_revert {
  struct sc_rec_hdr h;
  uint64_t target_id;
  uint64_t saved_id;            /* 0: none (or deleted since) */
  uint32_t start_epoch;
  uint32_t flags;               /* 0; unknown bits: corrupt */
  uint64_t rate;                /* background bytes/s, 0 unbounded */
} __attribute__((packed));

/* Chunks [first, first + count) of the origin hold the revert's target
 * content, durably (the origin was synced before this record). */
struct sc_rec_revert_done {
  struct sc_rec_hdr h;
  uint64_t first;
  uint64_t count;
} __attribute__((packed));

/* The revert to `target_id` finished (nothing is pending) or was ended. */
struct sc_rec_revert_end {
  struct sc_rec_hdr h;
  uint64_t target_id;
} __attribute__((packed));

/* The running revert to `target_id` copies back at `rate` bytes/s (0:
 * unbounded) from now on (`revert --rate`). */
struct sc_rec_revert_rate {
  struct sc_rec_hdr h;
  uint64_t target_id;
  uint64_t rate;
} __attribute__((packed));

/* Room a journal slot always keeps for its NEXT record. */
#define SC_REC_NEXT_SIZE ((uint16_t) sizeof (struct sc_rec_next))

static inline uint16_t
sc_rec_padded (size_t len)
{
  return (uint16_t) ((len + SC_REC_ALIGN - 1) & ~(size_t) (SC_REC_ALIGN - 1));
}

/* The largest record: a snapshot with a 128-byte name. */
#define SC_REC_MAX (sizeof (struct sc_rec_snap_create) + 128 + SC_REC_ALIGN)
static_assert (sizeof (struct sc_rec_copy_sums) + 4 * SC_SUMS_MAX
               <= SC_REC_MAX, "a COPY_SUMS record fits SC_REC_MAX");
static_assert (sizeof (struct sc_rec_clone_data) + 4 * SC_SUMS_MAX
               <= SC_REC_MAX, "a CLONE_DATA record fits SC_REC_MAX");

#endif
