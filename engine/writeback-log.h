/* shadowcopy: the write-back log: the write-back queue's data in a file,
 * so that writes acknowledged from the queue survive a kill of the server
 * (see writeback-log.c). */
#ifndef SHADOWCOPY_ENGINE_WRITEBACK_LOG_H
#define SHADOWCOPY_ENGINE_WRITEBACK_LOG_H

#include <stddef.h>
#include <stdint.h>

#define SC_WB_LOG_SLOTS 64              /* = SC_WB_MAX_ITEMS */
#define SC_WB_LOG_SLOT_SIZE (64u << 10) /* = SC_WB_MAX_WRITE */
#define SC_WB_LOG_KEY 32                /* the disk's identity */
#define SC_WB_LOG_DATA 4096u            /* the first slot's data */
#define SC_WB_LOG_PATH 512              /* room for the diff area's path */
#define SC_WB_LOG_SIZE \
  (SC_WB_LOG_DATA + (uint64_t) SC_WB_LOG_SLOTS * SC_WB_LOG_SLOT_SIZE)

/* A queued write the log holds. */
struct sc_wb_log_entry {
  uint64_t seq;
  uint64_t offset;
  uint32_t count;
  uint32_t slot;
  const uint8_t *data;                  /* in the scanned image */
};

/* Whose a log is: the session of the diff area that made it
 * (cow/session.c). */
struct sc_wb_log_owner {
  uint64_t session;                     /* 0: none (a log of version 1) */
  uint8_t diff_uuid[16];                /* the diff area it was made
                                           through */
  char diff_path[SC_WB_LOG_PATH];       /* and its absolute path, to
                                           show ("" if unknown; a long
                                           one cut, ending in "...") */
  uint64_t diff_path_hash;              /* FNV-1a of the whole path (0:
                                           unknown) */
  uint64_t v1_made_ns;                  /* version 1: when it was made */
};

/* Set owner's path fields from the diff area's absolute path (NULL:
 * unknown). */
void sc_wb_log_owner_path (struct sc_wb_log_owner *owner, const char *path);

/* What sc_wb_log_scan found. */
enum sc_wb_log_state {
  SC_WB_LOG_EMPTY,                      /* nothing queued */
  SC_WB_LOG_QUEUED,                     /* writes to replay, in entries */
  SC_WB_LOG_OTHER_BOOT,                 /* written before a reboot or a
                                           power cut: not to be trusted */
  SC_WB_LOG_OTHER_DISK,                 /* another disk's */
};

/* Read a log's image of `len` bytes (any bytes: a file's content).  For
 * a log of this boot (`boot`) and disk (`key`), fill entries (room
 * for SC_WB_LOG_SLOTS) with its queued writes in seq order, each within
 * a volume of `vol_size` bytes, *owner with the session that made it
 * (zeros in a log of version 1), and *lost with the error of a queued
 * write that failed after its acknowledgement and that no flush has
 * reported yet (a positive errno; 0: none; EIO if the log says so in a
 * way it cannot read).
 * Returns the state (entries counted in *n, also for the two OTHER
 * states; *lost is 0 in those), or -EINVAL with a message in err if a
 * queued write does not check out. */
int sc_wb_log_scan (const uint8_t *img, size_t len,
                    const uint8_t key[SC_WB_LOG_KEY],
                    const uint8_t boot[16], uint64_t vol_size,
                    struct sc_wb_log_entry *entries, size_t *n,
                    struct sc_wb_log_owner *owner, int *lost, char *err,
                    size_t errlen);

struct sc_wb_log;

/* Make a new, empty log at `path` (replacing any, in one rename) for
 * the disk `key` in this boot and the diff area's session `owner`, mapped
 * for the queue, that says a write was lost with the error `lost` (a
 * positive errno; 0: none, as sc_wb_log_note_lost): 0 or a negative
 * errno, with a message in err. */
int sc_wb_log_create (const char *path, const uint8_t key[SC_WB_LOG_KEY],
                      const struct sc_wb_log_owner *owner, int lost,
                      struct sc_wb_log **out, char *err, size_t errlen);
/* The data of slot i (SC_WB_LOG_SLOT_SIZE bytes), where a write is copied
 * before it is published. */
uint8_t *sc_wb_log_data (struct sc_wb_log *log, unsigned i);
/* Slot i holds a queued write from now on (its data already in place);
 * `crc` is the CRC32C of its `count` bytes. */
void sc_wb_log_publish (struct sc_wb_log *log, unsigned i, uint64_t seq,
                        uint64_t offset, uint32_t count, uint32_t crc);
/* Slot i's write is on the origin: free it. */
void sc_wb_log_retire (struct sc_wb_log *log, unsigned i);
/* A queued write failed after its acknowledgement, with `lost` (a
 * positive errno), and no flush has reported it yet; 0: every such
 * failure is reported.  The next server of the disk finds it if this one
 * is killed first, and reports it at its first flush. */
void sc_wb_log_note_lost (struct sc_wb_log *log, int lost);
/* Unmap the log; with `remove`, delete its file (every write retired). */
void sc_wb_log_close (struct sc_wb_log *log, int remove);

#endif
