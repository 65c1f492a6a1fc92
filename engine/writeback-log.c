/* shadowcopy: the write-back log: queued writes that survive a kill of
 * the server.
 *
 * Notes on the design
 *
 * A write acknowledged from the write-back queue (writeback.c) is, until
 * its data reaches the origin, only in the queue.  Were the queue in the
 * server's memory, a kill -9 would lose it, where the nbdkit file
 * plugin's unflushed writes live on in the page cache.  So the queue
 * keeps its data in a shared mapping of a file in a tmpfs (a directory of
 * the user's own in /dev/shm, or $SHADOWCOPY_WBLOG_DIR): a queued write
 * is in the file once it is
 * copied in, and what the process stored there outlives the process, not
 * the machine.  As with the file plugin, a write is durable once a flush
 * returns (a flush drains the queue onto the origin and syncs that); a
 * power cut or a reboot loses an unflushed one, which NBD allows.
 *
 * Why a tmpfs, not a file beside the diff area: a log on a disk is
 * written back by the kernel now and then, so the disk may hold an older
 * image of it, in which a slot long applied and freed still looks queued.
 * Whatever made the page cache drop the newer one (a reboot, a power cut,
 * a filesystem shut down after an I/O error, a disk detached and
 * attached again) would then have a replay put old data over newer,
 * flushed writes.  A tmpfs has no other image: its file is exactly what
 * the process stored, in program order, or gone.  (A log of another boot
 * is still dropped, for a directory given that is not a tmpfs.)  The
 * file is 4 MiB, reserved when it is made.
 *
 * The log belongs to the disk (the origin), not to the diff area: its
 * writes are the disk's, so it is found by the disk's identity (for a
 * file its device, inode and birth time; for a block device its device
 * number and disk sequence number; for an NBD export its URI as given),
 * however the diff area is reached, and a diff area made again for the
 * same disk still gets them.
 *
 * A log that an open did not find (another log directory or user, a
 * directory it did not trust, another spelling of a URI) must not be
 * written by a later one: that session wrote the disk since.  So the
 * header holds the id of the session that made it, which that session
 * recorded in the diff area's superblock first (cow/session.c), with the
 * diff area's UUID, and a log is written only if its id is the last
 * session's: every session that may write the origin records a new one
 * once it has judged the log it found.  A log made through another diff
 * area of the disk (or before this one was made again) holds that one's
 * UUID and path, and is written only if this one was made again at that
 * path and no session has used it yet; otherwise the open fails and
 * keeps it, for that diff area, whose snapshots need the copies the
 * writes make (judge_foreign).  A log of version 1 (no id) is written
 * only if no session recorded an id since.
 *
 * A queued write can also fail after its acknowledgement (its copy is
 * refused, the origin write fails): its data is lost, and the next flush
 * must say so (writeback.c), as a kernel reports a write-back error to
 * the next fsync.  Until a flush has, and has returned, the log holds
 * the error (the word at 1016), so that a server killed first, or
 * stopped before any flush, leaves it to the next server of the disk,
 * whose first flush reports it.  That log is kept, its slots freed (its
 * writes were written or dropped by that open), until the next server's
 * own log replaces it (one rename), or, when that server has no log of
 * its own, until one of its flushes has reported the error.  The error
 * goes to the next flush whatever becomes of the log's queued writes, as
 * a kernel's to whoever calls fsync next.
 *
 * Layout (host byte order: the file is read in the boot that wrote it):
 *   0      the header (struct wbl_header), with its CRC32C
 *   1016   a lost write's error: 0, or "LOST" (high 32 bits) and the
 *          errno (an 8-byte store, outside the header's CRC)
 *   1024   64 slot headers (struct wbl_slot): seq (0: free), offset,
 *          count, the data's CRC32C, the slot header's CRC32C
 *   4096   64 data slots of 64 KiB, one queued write each
 *
 * A slot is published by storing its seq last, after its data and its
 * other fields (a release store: a kill finds either 0 or all of them),
 * once the write holds its chunk range; it is freed (seq 0) when its
 * data is on the origin, before the range is released, so a later write
 * of the same bytes never reaches the origin while the slot still says
 * queued.  Queued writes never overlap (their ranges are exclusive).
 *
 * At open, before the server writes the origin, sc_vol_wb_recover writes
 * the queued writes of a log of this boot and disk through the normal
 * write path (copy-on-write first) in seq order, frees each once
 * written, flushes the origin and deletes the log.  A write that fails
 * stays queued while the others go on; the open then fails and keeps the
 * log, for the next open to try again.  If the open found that the disk
 * changed while no server ran (the origin's stamp, origin-stamp.c), the
 * queued writes are older than that change and are dropped, not written
 * over it.  A queued slot that does not check out (a CRC, a range past
 * the volume's end) cannot come from a kill; the open fails and keeps
 * the file for its owner to judge.  A new log is made by writing it
 * whole under a temporary name and renaming it, so a kill never leaves a
 * half-made one.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/crc32c.h"
#include "cow/uuid.h"
#include "engine/volume-impl.h"
#include "engine/writeback-log.h"

#define WBL_MAGIC "SCWBLOG1"
#define WBL_VERSION 2                   /* 1: made_ns where session is */
#define WBL_LOST_AT 1016u
#define WBL_LOST_TAG 0x4c4f5354u        /* "LOST" */
#define WBL_SLOTS_AT 1024u

struct wbl_header {
  char magic[8];
  uint32_t version;
  uint32_t nslots;
  uint32_t slot_size;
  uint32_t reserved;
  uint8_t key[SC_WB_LOG_KEY];           /* the disk's identity */
  uint8_t boot[16];                     /* the boot that wrote it */
  uint64_t session;                     /* the diff area's session id */
  uint8_t diff_uuid[16];                /* and its UUID (version 1: its
                                           CRC, of the 80 bytes before) */
  char diff_path[SC_WB_LOG_PATH];       /* and its path, NUL-terminated */
  uint64_t diff_path_hash;              /* and its hash (whole) */
  uint32_t crc;                         /* of the bytes before it */
};

struct wbl_slot {
  uint64_t seq;                         /* 0: free */
  uint64_t offset;
  uint32_t count;
  uint32_t data_crc;
  uint32_t crc;                         /* of the 24 bytes before it */
  uint32_t reserved;
};

_Static_assert (sizeof (struct wbl_slot) == 32, "slot header size");
_Static_assert (WBL_SLOTS_AT + SC_WB_LOG_SLOTS * sizeof (struct wbl_slot)
                <= SC_WB_LOG_DATA, "slot headers fit the first page");
_Static_assert (sizeof (struct wbl_header) <= WBL_LOST_AT &&
                WBL_LOST_AT % 8 == 0 && WBL_LOST_AT + 8 == WBL_SLOTS_AT,
                "header size");

struct sc_wb_log {
  uint8_t *map;                         /* SC_WB_LOG_SIZE bytes */
  struct wbl_slot *slots;
  char *path;
};

static uint64_t fnv64 (const void *p, size_t len);

void
sc_wb_log_owner_path (struct sc_wb_log_owner *owner, const char *path)
{
  size_t len = path ? strlen (path) : 0, room = sizeof owner->diff_path;
  memset (owner->diff_path, 0, room);
  owner->diff_path_hash = len ? fnv64 (path, len) : 0;
  if (len < room)
    memcpy (owner->diff_path, path ? path : "", len);
  else
    snprintf (owner->diff_path, room, "%.*s...", (int) room - 4, path);
}

static uint32_t
slot_crc (const struct wbl_slot *s)
{
  return crc32c (0, s, offsetof (struct wbl_slot, crc));
}

static uint32_t
header_crc (const struct wbl_header *h)
{
  return crc32c (0, h, offsetof (struct wbl_header, crc));
}

/* Does the header check out (either version)? */
static bool
header_checks (const struct wbl_header *h)
{
  uint32_t v1_crc;
  memcpy (&v1_crc, h->diff_uuid, sizeof v1_crc);
  return memcmp (h->magic, WBL_MAGIC, sizeof h->magic) == 0 &&
    (h->version == WBL_VERSION ? h->crc == header_crc (h)
     : h->version == 1 &&
       v1_crc == crc32c (0, h, offsetof (struct wbl_header, diff_uuid))) &&
    h->nslots == SC_WB_LOG_SLOTS && h->slot_size == SC_WB_LOG_SLOT_SIZE;
}

static uint64_t
lost_word (int lost)
{
  return lost ? (uint64_t) WBL_LOST_TAG << 32 | (uint32_t) lost : 0;
}

/* ---- the parser ------------------------------------------------------- */

/* The lost write's error the image holds: 0, an errno, or EIO if the
 * word says something else (never pass over a failure). */
static int
lost_of (const uint8_t *img, size_t len)
{
  uint64_t w;
  if (len < WBL_LOST_AT + sizeof w)
    return 0;
  memcpy (&w, img + WBL_LOST_AT, sizeof w);
  uint32_t e = (uint32_t) w;
  if (w == 0)
    return 0;
  return w >> 32 == WBL_LOST_TAG && e > 0 && e < 4096 ? (int) e : EIO;
}

static int
by_seq (const void *a, const void *b)
{
  const struct sc_wb_log_entry *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The queued slots' entries, checked; -EINVAL if one does not check
 * out. */
static int
scan_slots (const uint8_t *img, size_t len, uint64_t vol_size,
            struct sc_wb_log_entry *entries, size_t *n, char *err,
            size_t errlen)
{
  *n = 0;
  if (len < SC_WB_LOG_DATA)
    return 0;                   /* no slot headers: nothing queued */
  for (uint32_t i = 0; i < SC_WB_LOG_SLOTS; i++) {
    struct wbl_slot s;
    memcpy (&s, img + WBL_SLOTS_AT + i * sizeof s, sizeof s);
    if (s.seq == 0)
      continue;
    uint64_t at = SC_WB_LOG_DATA + (uint64_t) i * SC_WB_LOG_SLOT_SIZE;
    const char *bad = NULL;
    if (s.crc != slot_crc (&s))
      bad = "its header's checksum does not match";
    else if (s.count == 0 || s.count > SC_WB_LOG_SLOT_SIZE)
      bad = "its length is not that of a queued write";
    else if (s.offset > vol_size || s.count > vol_size - s.offset)
      bad = "it ends past the end of the disk";
    else if (at + s.count > len)
      bad = "its data is past the end of the file";
    else if (s.data_crc != crc32c (0, img + at, s.count))
      bad = "its data's checksum does not match";
    for (size_t j = 0; !bad && j < *n; j++)
      if (entries[j].seq == s.seq)
        bad = "another slot has its sequence number";
    if (bad) {
      snprintf (err, errlen, "slot %" PRIu32 " (a write of %" PRIu32
                " bytes at %" PRIu64 ") is damaged: %s", i, s.count,
                s.offset, bad);
      return -EINVAL;
    }
    entries[(*n)++] = (struct sc_wb_log_entry) {
      .seq = s.seq, .offset = s.offset, .count = s.count, .slot = i,
      .data = img + at,
    };
  }
  qsort (entries, *n, sizeof *entries, by_seq);
  return 0;
}

int
sc_wb_log_scan (const uint8_t *img, size_t len,
                const uint8_t key[SC_WB_LOG_KEY],
                const uint8_t boot[16], uint64_t vol_size,
                struct sc_wb_log_entry *entries, size_t *n,
                struct sc_wb_log_owner *owner, int *lost, char *err,
                size_t errlen)
{
  struct wbl_header h;
  bool header_ok = len >= sizeof h;
  memset (owner, 0, sizeof *owner);
  *lost = 0;
  if (header_ok) {
    memcpy (&h, img, sizeof h);
    header_ok = header_checks (&h);
  }
  if (header_ok && memcmp (h.boot, boot, 16) != 0) {
    /* Its slots may be stale: count them, judge nothing. */
    *n = 0;
    for (uint32_t i = 0; len >= SC_WB_LOG_DATA && i < SC_WB_LOG_SLOTS; i++) {
      uint64_t seq;
      memcpy (&seq, img + WBL_SLOTS_AT + i * sizeof (struct wbl_slot),
              sizeof seq);
      *n += seq != 0;
    }
    return SC_WB_LOG_OTHER_BOOT;
  }
  int r = scan_slots (img, len, vol_size, entries, n, err, errlen);
  if (r < 0)
    return r;
  if (!header_ok) {
    if (*n == 0)
      return SC_WB_LOG_EMPTY;   /* nothing to lose, whatever it is */
    snprintf (err, errlen, "its header is damaged, and %zu slots say "
              "they hold queued writes", *n);
    return -EINVAL;
  }
  if (memcmp (h.key, key, SC_WB_LOG_KEY) != 0)
    return SC_WB_LOG_OTHER_DISK;
  if (h.version == 1)
    owner->v1_made_ns = h.session;      /* (made_ns was there) */
  else {
    *lost = lost_of (img, len);
    owner->session = h.session;
    memcpy (owner->diff_uuid, h.diff_uuid, sizeof owner->diff_uuid);
    memcpy (owner->diff_path, h.diff_path, sizeof owner->diff_path);
    owner->diff_path[sizeof owner->diff_path - 1] = '\0';
    owner->diff_path_hash = h.diff_path_hash;
  }
  return *n ? SC_WB_LOG_QUEUED : SC_WB_LOG_EMPTY;
}

/* ---- the live log ----------------------------------------------------- */

int
sc_wb_log_create (const char *path, const uint8_t key[SC_WB_LOG_KEY],
                  const struct sc_wb_log_owner *owner, int lost,
                  struct sc_wb_log **out, char *err, size_t errlen)
{
  struct sc_wb_log *log = calloc (1, sizeof *log);
  char *tmp = NULL;
  int fd = -1, r;

  *out = NULL;
  if (!log || !(log->path = strdup (path)) ||
      asprintf (&tmp, "%s.new", path) < 0) {
    tmp = NULL;
    r = -ENOMEM;
    snprintf (err, errlen, "%s: %s", path, strerror (ENOMEM));
    goto fail;
  }
  struct wbl_header h = { .magic = WBL_MAGIC, .version = WBL_VERSION,
                          .nslots = SC_WB_LOG_SLOTS,
                          .slot_size = SC_WB_LOG_SLOT_SIZE,
                          .session = owner->session };
  memcpy (h.key, key, SC_WB_LOG_KEY);
  memcpy (h.diff_uuid, owner->diff_uuid, sizeof h.diff_uuid);
  memcpy (h.diff_path, owner->diff_path, sizeof h.diff_path);
  h.diff_path_hash = owner->diff_path_hash;
  if ((r = sc_boot_id (h.boot)) < 0) {
    snprintf (err, errlen, "%s: this boot's id: %s", path, strerror (-r));
    goto fail;
  }
  h.crc = header_crc (&h);
  /* Its space reserved: a store into the mapping never meets ENOSPC
   * (SIGBUS). */
  (void) unlink (tmp);                  /* a half-made one, killed */
  fd = open (tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
             0600);
  uint64_t word = lost_word (lost);
  if (fd < 0 || (r = posix_fallocate (fd, 0, SC_WB_LOG_SIZE)) != 0 ||
      pwrite (fd, &h, sizeof h, 0) != (ssize_t) sizeof h ||
      pwrite (fd, &word, sizeof word, WBL_LOST_AT) != (ssize_t) sizeof word) {
    r = fd < 0 || r == 0 ? -errno : -r;
    snprintf (err, errlen, "%s: %s", tmp, strerror (-r));
    goto fail;
  }
  log->map = mmap (NULL, SC_WB_LOG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
  if (log->map == MAP_FAILED) {
    log->map = NULL;
    r = -errno;
    snprintf (err, errlen, "%s: mmap: %s", tmp, strerror (-r));
    goto fail;
  }
  if (rename (tmp, path) < 0) {
    r = -errno;
    snprintf (err, errlen, "renaming %s to %s: %s", tmp, path,
              strerror (-r));
    goto fail;
  }
  close (fd);
  free (tmp);
  log->slots = (struct wbl_slot *) (log->map + WBL_SLOTS_AT);
  *out = log;
  return 0;

 fail:
  if (fd >= 0) {
    close (fd);
    unlink (tmp);
  }
  free (tmp);
  if (log && log->map)
    munmap (log->map, SC_WB_LOG_SIZE);
  if (log)
    free (log->path);
  free (log);
  return r;
}

uint8_t *
sc_wb_log_data (struct sc_wb_log *log, unsigned i)
{
  return log->map + SC_WB_LOG_DATA + (size_t) i * SC_WB_LOG_SLOT_SIZE;
}

void
sc_wb_log_publish (struct sc_wb_log *log, unsigned i, uint64_t seq,
                   uint64_t offset, uint32_t count, uint32_t crc)
{
  struct wbl_slot s = { .seq = seq, .offset = offset, .count = count,
                        .data_crc = crc };
  s.crc = slot_crc (&s);
  struct wbl_slot *d = &log->slots[i];
  d->offset = s.offset;
  d->count = s.count;
  d->data_crc = s.data_crc;
  d->crc = s.crc;
  __atomic_store_n (&d->seq, seq, __ATOMIC_RELEASE);
}

void
sc_wb_log_note_lost (struct sc_wb_log *log, int lost)
{
  __atomic_store_n ((uint64_t *) (log->map + WBL_LOST_AT), lost_word (lost),
                    __ATOMIC_RELEASE);
}

void
sc_wb_log_retire (struct sc_wb_log *log, unsigned i)
{
  __atomic_store_n (&log->slots[i].seq, 0, __ATOMIC_RELEASE);
}

void
sc_wb_log_close (struct sc_wb_log *log, int remove)
{
  if (!log)
    return;
  munmap (log->map, SC_WB_LOG_SIZE);
  if (remove && unlink (log->path) < 0 && errno != ENOENT)
    sc_say ("write-back log %s: deleting it: %s", log->path,
            strerror (errno));
  free (log->path);
  free (log);
}

/* ---- recovery at open ------------------------------------------------- */

/* Write the queued writes in order, flush them, then free the slots of
 * those written.  One that fails stays queued and the others go on (they
 * never overlap); the first failure is returned, with a message in err.
 * A flush that fails frees nothing: the next open writes them again, the
 * same data at the same place. */
static int
replay (struct sc_volume *v, const char *path, struct wbl_slot *slots,
        const struct sc_wb_log_entry *e, size_t n, char *err, size_t errlen)
{
  bool done[SC_WB_LOG_SLOTS];
  int first = 0;
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    int r = sc_volume_write (v, e[i].data, e[i].count, e[i].offset, 0);
    done[i] = r == 0;
    if (r == 0)
      continue;
    sc_say ("write-back log %s: writing the queued write of %" PRIu32
            " bytes at %" PRIu64 " to the disk: %s", path, e[i].count,
            e[i].offset, strerror (-r));
    if (!failed++)
      first = r;
  }
  int r = sc_volume_flush (v);
  if (r == 0)
    for (size_t i = 0; i < n; i++)
      if (done[i])
        __atomic_store_n (&slots[e[i].slot].seq, 0, __ATOMIC_RELEASE);
  if (failed) {
    snprintf (err, errlen, "%s: %zu of its %zu queued writes could not be "
              "written to the disk (the first error: %s); the log keeps "
              "them and the next open tries again (move it away to open "
              "without them)", path, failed, n, strerror (-first));
    return first;
  }
  if (r < 0)
    snprintf (err, errlen, "%s: flushing the disk after writing the log's "
              "queued writes: %s (the log is kept: the next open writes "
              "them again; move it away to open without them)", path,
              strerror (-r));
  return r;
}

/* Map the file at `path` (*map NULL if it is empty): 0, 1 if there is
 * none, or a negative errno with a message in err. */
static int
map_log (const char *path, uint8_t **map, size_t *len, char *err,
         size_t errlen)
{
  *map = NULL;
  *len = 0;
  int fd = open (path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT)
    return 1;
  struct stat st;
  int r = 0;
  if (fd < 0 || fstat (fd, &st) < 0)
    r = -errno;
  else if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () ||
           (st.st_mode & 022))
    r = -EPERM;
  else if ((*len = (size_t) (st.st_size < (off_t) SC_WB_LOG_SIZE
                             ? st.st_size : (off_t) SC_WB_LOG_SIZE)) > 0 &&
           (*map = mmap (NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                         0)) == MAP_FAILED) {
    *map = NULL;
    r = -errno;
  }
  if (fd >= 0)
    close (fd);
  if (r < 0)
    snprintf (err, errlen, "the write-back log %s: %s", path,
              r == -EPERM ? "not a regular file of this user that no one "
              "else may write: it is not read (move it away)"
              : strerror (-r));
  return r;
}

/* The `n` queued writes of the log at `path` are dropped, for `why`:
 * SC_WB_LOG_EMPTY. */
static int
dropped (const char *path, size_t n, const char *why)
{
  sc_say ("write-back log %s: its %zu queued writes are dropped, not "
          "written over newer data: %s", path, n, why);
  return SC_WB_LOG_EMPTY;
}

#define CHANGED "the disk changed while the server was stopped, after them"

/* A log made through another diff area (owner's), with `n` queued
 * writes, found through the diff area at `here` (its absolute path, or
 * NULL) whose last session is `last`: SC_WB_LOG_QUEUED, write them;
 * SC_WB_LOG_EMPTY, drop them (said why); or -EUCLEAN with a message in
 * err (the open fails and keeps the log).
 *
 * Written through this diff area, the writes would make no copy for the
 * other one's snapshots, and that one, stopped uncleanly after writing
 * the disk, does not check the disk at its next start: its snapshots
 * would serve them.  So they are written only where that one cannot be
 * (this diff area was made again at its very path), before any session
 * of this one, and not over a change of the disk found since. */
static int
judge_foreign (struct sc_volume *v, const char *path, size_t n,
               const struct sc_wb_log_owner *owner, const char *here,
               uint64_t last, char *err, size_t errlen)
{
  char u[SC_UUID_TEXT_LEN];
  sc_uuid_format (owner->diff_uuid, u);
  bool replaced = here && owner->diff_path_hash &&
                  owner->diff_path_hash == fnv64 (here, strlen (here));
  if (!replaced) {
    snprintf (err, errlen, "the write-back log %s holds %zu writes "
              "acknowledged before a server of this disk stopped "
              "uncleanly, made through another diff area, %s (UUID %s): "
              "written through this one, they would make no copy for that "
              "one's snapshots; the log is kept: start the server once "
              "with that diff area (wherever it is now) to write them, or, "
              "if it is gone for good, move the log away to drop them",
              path, n, owner->diff_path[0] ? owner->diff_path
              : "its path unknown", u);
    return -EUCLEAN;
  }
  if (sc_diff_origin_found_changed (v->diff))
    /* (Before `last`: the store of the change recorded an id.) */
    return dropped (path, n, CHANGED);
  if (last != 0) {
    /* Made again and used since: before the log or after it? */
    snprintf (err, errlen, "the write-back log %s holds %zu writes "
              "acknowledged before a server of this disk stopped "
              "uncleanly, made through another diff area, %s (UUID %s), "
              "which this one replaced; this one has been used since it "
              "was made, so it cannot tell whether the disk was written "
              "after them; the log is kept: move it away to drop them",
              path, n, owner->diff_path, u);
    return -EUCLEAN;
  }
  return SC_WB_LOG_QUEUED;
}

/* What the open does with the `n` queued writes of a log of this boot
 * and disk made by `owner`: SC_WB_LOG_QUEUED, write them;
 * SC_WB_LOG_EMPTY, drop them (said why); or -EUCLEAN with a message in
 * err: the open fails and keeps the log. */
static int
judge (struct sc_volume *v, const char *path, size_t n,
       const struct sc_wb_log_owner *owner, const char *here, char *err,
       size_t errlen)
{
  uint8_t uuid[16];
  uint64_t last = sc_diff_session_id (v->diff, uuid);
  if (owner->session && memcmp (owner->diff_uuid, uuid, 16) != 0)
    return judge_foreign (v, path, n, owner, here, last, err, errlen);
  /* This diff area's log, or one of version 1 (no id). */
  uint64_t stamped = sc_diff_origin_stamped_ns (v->diff);
  if (sc_diff_origin_found_changed (v->diff))
    return dropped (path, n, CHANGED);
  if (owner->session == 0 && last == 0 && stamped &&
      owner->v1_made_ns <= stamped)
    /* Version 1, and no session recorded an id since: judged as version
     * 1 did, by its date against the last stamp. */
    return dropped (path, n, "it is older than the last session of the "
                    "diff area, which did not find it");
  if (last == 0 || owner->session == last)
    return SC_WB_LOG_QUEUED;    /* the last session's, or none since */
  return dropped (path, n, "a later session of the diff area did not find "
                  "the log and may have written the disk since, or found "
                  "it changed");
}

/* The log at `path` (mapped at map, `len` bytes) is kept, after its
 * open, for the error `lost` of a write it lost alone: the writes it
 * queued were written or dropped just now, and must not be judged again
 * by a later open, whose diff area may have moved on (review 33). */
static void
keep_for_lost (const char *path, uint8_t *map, size_t len, int lost)
{
  if (len >= SC_WB_LOG_DATA)
    for (uint32_t i = 0; i < SC_WB_LOG_SLOTS; i++)
      __atomic_store_n (&((struct wbl_slot *) (map + WBL_SLOTS_AT))[i].seq,
                        0, __ATOMIC_RELEASE);
  sc_say ("write-back log %s: a write acknowledged before the server "
          "stopped failed afterwards (%s), and no flush reported it: the "
          "next flush does", path, strerror (lost));
}

int
sc_vol_wb_recover (struct sc_volume *v, const char *path,
                   const uint8_t key[SC_WB_LOG_KEY], const char *here,
                   size_t *written, int *lost, char *err, size_t errlen)
{
  uint8_t *map;
  size_t len;
  *written = 0;
  *lost = 0;
  int r = map_log (path, &map, &len, err, errlen);
  if (r != 0)
    return r > 0 ? 0 : r;

  uint8_t boot[16];
  struct sc_wb_log_entry e[SC_WB_LOG_SLOTS];
  size_t n = 0;
  char why[256] = "";
  struct sc_wb_log_owner owner;
  if ((r = sc_boot_id (boot)) < 0) {
    /* Unknown, the log would look like another boot's and be dropped. */
    snprintf (err, errlen, "the write-back log %s: this boot's id: %s (the "
              "log is kept)", path, strerror (-r));
    if (map)
      munmap (map, len);
    return r;
  }
  int state = map ? sc_wb_log_scan (map, len, key, boot, v->size, e, &n,
                                    &owner, lost, why, sizeof why)
                  : SC_WB_LOG_EMPTY;
  /* A lost write's error is carried whatever becomes of the queued
   * writes: no flush has reported it, and none must pass over it. */
  if (state == SC_WB_LOG_QUEUED)
    state = judge (v, path, n, &owner, here, err, errlen);
  switch (state) {
  case SC_WB_LOG_QUEUED:
    sc_say ("write-back log %s: %zu writes acknowledged before the server "
            "stopped uncleanly are written to the disk", path, n);
    r = replay (v, path, (struct wbl_slot *) (map + WBL_SLOTS_AT), e, n,
                err, errlen);
    *written = r == 0 ? n : 0;
    break;
  case -EUCLEAN:
    r = state;
    break;
  case SC_WB_LOG_OTHER_BOOT:
    if (n)
      sc_say ("write-back log %s: written before the machine restarted: "
              "its %zu unflushed writes are dropped, as a disk drops its "
              "unflushed cache at a power cut", path, n);
    break;
  case SC_WB_LOG_OTHER_DISK:
    /* Two disks whose keys hash alike (64 bits): the other's, left be. */
    sc_say ("write-back log %s: it belongs to another disk; it is left "
            "alone", path);
    munmap (map, len);
    return 1;
  case SC_WB_LOG_EMPTY:
    break;
  default:
    r = state;
    snprintf (err, errlen, "the write-back log %s holds writes acknowledged "
              "before the server stopped uncleanly, but %s; it is kept: "
              "move it away to open the volume without them", path, why);
  }
  if (r != 0)
    *lost = 0;                          /* (kept in the log) */
  else if (*lost)
    keep_for_lost (path, map, len, *lost);
  if (map)
    munmap (map, len);
  if (r == 0 && !*lost && unlink (path) < 0 && errno != ENOENT) {
    r = -errno;
    snprintf (err, errlen, "the write-back log %s: deleting it: %s", path,
              strerror (-r));
  }
  return r;
}

/* ---- where a disk's log is -------------------------------------------- */

/* FNV-1a, 64 bits: an NBD export's name in the disk's key, and the
 * key in the log's name. */
static uint64_t
fnv64 (const void *p, size_t len)
{
  const uint8_t *s = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

/* The directory of the logs: $SHADOWCOPY_WBLOG_DIR, or this user's own
 * in /dev/shm.  Not /dev/shm itself: anyone may make a file there, and a
 * log another user made, or could still open, would be written to the
 * disk.  So the directory must be this user's, and no one else may write
 * it.  0, or a negative errno with a message in why. */
static int
log_dir (char *dir, size_t len, char *why, size_t whylen)
{
  const char *env = getenv ("SHADOWCOPY_WBLOG_DIR");
  if (env && *env)
    snprintf (dir, len, "%s", env);
  else {
    snprintf (dir, len, "/dev/shm/shadowcopy-%u", (unsigned) geteuid ());
    if (mkdir (dir, 0700) < 0 && errno != EEXIST) {
      int r = -errno;
      snprintf (why, whylen, "making %s: %s", dir, strerror (-r));
      return r;
    }
  }
  struct stat st;
  if (lstat (dir, &st) < 0) {
    int r = -errno;
    snprintf (why, whylen, "%s: %s", dir, strerror (-r));
    return r;
  }
  if (!S_ISDIR (st.st_mode) || st.st_uid != geteuid () ||
      (st.st_mode & 022)) {
    snprintf (why, whylen, "%s is not a directory of this user that no one "
              "else may write", dir);
    return -EPERM;
  }
  struct statfs fs;
  if (statfs (dir, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
    sc_say ("write-back log: %s is not a tmpfs: should its filesystem lose "
            "its unwritten pages with the machine still up, an old image "
            "of a log could be written to the disk", dir);
  return 0;
}

int
sc_vol_wb_log_where (struct sc_volume *v, const char *origin_path,
                     uint8_t key[SC_WB_LOG_KEY], char **path, char *why,
                     size_t whylen)
{
  struct sc_origin_id id;
  struct {
    uint32_t type, btime_nsec;
    uint64_t dev, ino, more;
  } k = { 0 };
  _Static_assert (sizeof k == SC_WB_LOG_KEY, "the key's size");
  sc_origin_identity (v->origin, &id);
  k.type = id.type;
  k.dev = id.dev;
  k.ino = id.ino;
  struct statx stx;
  if (id.type == SC_ORIGIN_NBD)
    /* An export is known by its URI as given: another spelling of it
     * (a host's other name, a port or not) does not find the log; a log
     * left so is not written later over newer data (cow/session.c). */
    k.more = fnv64 (origin_path, strlen (origin_path));
  else if (id.type == SC_ORIGIN_BLOCK)
    /* A device number is used again by the next loop device, disk or
     * logical volume; its disk sequence number is not (0: unknown). */
    k.more = sc_block_diskseq ((dev_t) id.dev);
  else if (id.type == SC_ORIGIN_FILE &&
           statx (AT_FDCWD, origin_path, 0, STATX_BTIME, &stx) == 0 &&
           (stx.stx_mask & STATX_BTIME)) {
    k.more = (uint64_t) stx.stx_btime.tv_sec;
    k.btime_nsec = stx.stx_btime.tv_nsec;
  }
  memcpy (key, &k, SC_WB_LOG_KEY);
  char dir[4096];
  int r = log_dir (dir, sizeof dir, why, whylen);
  if (r < 0)
    return r;
  uint64_t name = fnv64 (key, SC_WB_LOG_KEY);
  if (asprintf (path, "%s/%016" PRIx64 ".wblog", dir, name) < 0) {
    snprintf (why, whylen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  return 0;
}
