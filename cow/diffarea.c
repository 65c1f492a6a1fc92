/* shadowcopy: the diff area: open, close and statistics.
 *
 * Notes on the design
 *
 * A diff area is one file: two superblock copies, the metadata journal
 * and the copied chunks, in chunk-sized slots.  All state lives in memory
 * and is rebuilt at open by replaying the journal (replay.c); the journal
 * is the only truth on disk.  Opening is four steps, each its own
 * function below: check the arguments, open and lock the file, load the
 * superblock and replay (or format a new file), and start the journal
 * (continue it after a clean close, or write a checkpoint).  The other
 * concepts each have a file of their own: see diffarea-internal.h.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/diffarea-internal.h"
#include "cow/io.h"
#include "cow/pagecache.h"
#include "cow/uuid.h"

int
sc_origin_identify (int fd, const char *path, struct sc_origin_id *id)
{
  struct stat st;
  memset (id, 0, sizeof *id);
  if (fstat (fd, &st) == -1)
    return -errno;
  if (S_ISREG (st.st_mode)) {
    id->type = SC_ORIGIN_FILE;
    id->size = st.st_size;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
  }
  else if (S_ISBLK (st.st_mode)) {
    id->type = SC_ORIGIN_BLOCK;
    if (ioctl (fd, BLKGETSIZE64, &id->size) == -1)
      return -errno;
    id->dev = st.st_rdev;
  }
  else
    return -EINVAL;
  snprintf (id->path, sizeof id->path, "%s", path);
  return 0;
}

uint64_t
diff_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- open --------------------------------------------------------------- */

static int
format (struct sc_diff *d, const struct sc_origin_id *origin,
        uint32_t chunk_size)
{
  memset (&d->sb, 0, sizeof d->sb);
  if (sc_uuid_random (d->sb.uuid) < 0)
    return -EIO;
  d->sb.chunk_shift = (uint32_t) __builtin_ctz (chunk_size);
  d->sb.origin_size = origin->size;
  d->sb.origin_dev = origin->dev;
  d->sb.origin_ino = origin->ino;
  d->sb.origin_type = origin->type;
  d->sb.format_time_ns = diff_now_ns ();
  snprintf (d->sb.origin_path, sizeof d->sb.origin_path, "%s", origin->path);
  d->epoch = 1;
  d->next_id = 1;
  return 0;
}

/* "1.0 GiB (1073741824 bytes)" */
static const char *
human_size (uint64_t n, char *buf, size_t len)
{
  static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                      "EiB" };
  double x = (double) n;
  int u = -1;
  while (x >= 1024 && u < 5) {
    x /= 1024;
    u++;
  }
  if (u < 0)
    snprintf (buf, len, "%" PRIu64 " bytes", n);
  else
    snprintf (buf, len, "%.1f %s (%" PRIu64 " bytes)", x, unit[u], n);
  return buf;
}

/* "file (device 0x803, inode 12)", "block device 7:0", "the NBD export" */
static const char *
origin_desc (uint32_t type, uint64_t dev, uint64_t ino, char *buf,
             size_t len)
{
  if (type == SC_ORIGIN_BLOCK)
    snprintf (buf, len, "block device %u:%u", major (dev), minor (dev));
  else if (type == SC_ORIGIN_NBD)
    snprintf (buf, len, "the NBD export");
  else
    snprintf (buf, len, "file (device %#" PRIx64 ", inode %" PRIu64 ")",
              dev, ino);
  return buf;
}

/* Is the origin the one the diff area `path` was made for?  If not, say
 * what differs (its size, or which disk it is) and what to do. */
static int
check_origin (const char *path, const struct sc_sb_disk *sb,
              const struct sc_origin_id *o, char *err, size_t errlen)
{
  char was[96], is[96], a[64], b[64];
  bool same = sb->origin_type == o->type && sb->origin_dev == o->dev &&
              sb->origin_ino == o->ino;
  /* An NBD export is known by its name and size (its server's address
   * may move). */
  if (sb->origin_type == SC_ORIGIN_NBD || o->type == SC_ORIGIN_NBD) {
    if (sb->origin_type == o->type && sb->origin_size == o->size &&
        strncmp (sb->origin_path, o->path, sizeof sb->origin_path) == 0)
      return 0;
    origin_desc (sb->origin_type, sb->origin_dev, sb->origin_ino, was,
                 sizeof was);
    origin_desc (o->type, o->dev, o->ino, is, sizeof is);
    return CORRUPT ("%s: this is another disk's diff area: it was made for "
                    "%s \"%s\" of %s, but the disk is %s \"%s\" of %s.  "
                    "Point diff= at this disk's own diff area, or disk= at "
                    "the export it was made for", path, was,
                    sb->origin_path, human_size (sb->origin_size, a, sizeof a),
                    is, o->path, human_size (o->size, b, sizeof b));
  }
  if (same && sb->origin_size != o->size && o->type == SC_ORIGIN_FILE) {
    /* Giving a file back its size moves its ctime too, so the origin
     * watch (origin-stamp.c) finds it changed at the next start. */
    bool grew = o->size > sb->origin_size;
    return CORRUPT ("%s: %s is %s but the diff area was made for it at %s: "
                    "the disk %s (or this is another disk's diff area).  A "
                    "diff area cannot follow a resize: give the disk back "
                    "its size of %" PRIu64 " bytes%s, or point diff= at "
                    "this disk's own diff area (a new file starts afresh).  "
                    "Resizing a file changes its ctime, so the next start "
                    "finds it changed and invalidates its snapshots, unless "
                    "it is given origin-changed=accept: %s", path, o->path,
                    human_size (o->size, a, sizeof a),
                    human_size (sb->origin_size, b, sizeof b),
                    grew ? "grew" : "shrank", sb->origin_size,
                    grew ? " (what was added is in no snapshot)" : "",
                    grew ? "safe if nothing but the resize changed the file"
                         : "safe only if what was cut off is first written "
                           "back as it was (the snapshots read it from the "
                           "disk)");
  }
  if (same && sb->origin_size != o->size) {
    bool grew = o->size > sb->origin_size;
    return CORRUPT ("%s: %s is %s but the diff area was made for it at %s: "
                    "the disk %s (or this is another disk's diff area).  A "
                    "diff area cannot follow a resize: give the disk back "
                    "its size of %" PRIu64 " bytes%s to use its snapshots, "
                    "or point diff= at this disk's own diff area (a new "
                    "file starts afresh)", path, o->path,
                    human_size (o->size, a, sizeof a),
                    human_size (sb->origin_size, b, sizeof b),
                    grew ? "grew" : "shrank", sb->origin_size,
                    grew ? " (what was added is in no snapshot)" : "");
  }
  if (same)
    return 0;
  origin_desc (sb->origin_type, sb->origin_dev, sb->origin_ino, was,
               sizeof was);
  origin_desc (o->type, o->dev, o->ino, is, sizeof is);
  if (sb->origin_type != o->type)
    return CORRUPT ("%s: this is another disk's diff area: it was made for "
                    "%s, a %s, but %s is a %s.  Point diff= at this disk's "
                    "own diff area, or disk= at the disk it was made for",
                    path, sb->origin_path, was, o->path, is);
  if (sb->origin_size != o->size)
    return CORRUPT ("%s: this is another disk's diff area: it was made for "
                    "%s, a %s of %s, but %s is a %s of %s.  Point diff= at "
                    "this disk's own diff area, or disk= at the disk it was "
                    "made for", path, sb->origin_path, was,
                    human_size (sb->origin_size, a, sizeof a), o->path, is,
                    human_size (o->size, b, sizeof b));
  if (strcmp (sb->origin_path, o->path) == 0)
    return CORRUPT ("%s: %s is not the disk the diff area was made for: the "
                    "path is the same, but it was a %s and is now a %s "
                    "(device/inode differ).  The disk was replaced (copied, "
                    "restored or moved onto this path, or given another "
                    "device number): its snapshots no longer apply to it.  "
                    "Start with the original disk, or point diff= at a new "
                    "diff area", path, o->path, was, is);
  return CORRUPT ("%s: this is another disk's diff area: it was made for "
                  "%s, a %s, but %s is a %s (device/inode differ).  Point "
                  "diff= at this disk's own diff area, or disk= at %s",
                  path, sb->origin_path, was, o->path, is, sb->origin_path);
}

static void
diff_free (struct sc_diff *d)
{
  if (d->have_journal)
    sc_journal_free (&d->journal);
  sc_index_free (&d->index);
  sc_recent_free (&d->recent);
  usage_free (&d->usage);
  sc_sums_free (&d->sums);
  sc_pc_free (d->pc);           /* after the index and the sums */
  free (d->damaged_kept);
  sc_alloc_free_all (&d->alloc);
  for (size_t i = 0; i < d->nsnaps; i++)
    snap_free (d, d->snaps[i]);
  free (d->snaps);
  revert_free (d);
  free (d->valid);
  free (d->cvalid);
  free (d->changes.runs);
  free (d->unsure);
  free (d->unsure_bad);
  void_free (d);
  free (d->prefail);
  free (d->fresh);
  free (d->quarantine);
  clone_free_all (d);
  if (d->fd >= 0)
    close (d->fd);
  pthread_mutex_destroy (&d->lock);
  pthread_cond_destroy (&d->readers_done);
  pthread_cond_destroy (&d->ckpt_done);
  free (d);
}

static int
fsync_parent (const char *path)
{
  char *dir = strdup (path);
  if (!dir)
    return -ENOMEM;
  char *slash = strrchr (dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    strcpy (dir, ".");
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (dir);
  if (fd == -1)
    return -errno;
  int r = fsync (fd) == -1 ? -errno : 0;
  close (fd);
  return r;
}

static int
check_args (const struct sc_origin_id *origin, uint32_t chunk_size,
            char *err, size_t errlen)
{
  if (chunk_size && (chunk_size < SC_CHUNK_SIZE_MIN ||
                     chunk_size > SC_CHUNK_SIZE_MAX ||
                     (chunk_size & (chunk_size - 1)))) {
    snprintf (err, errlen, "chunk size %" PRIu32 " is not a power of two "
              "from 4K to 1M", chunk_size);
    return -EINVAL;
  }
  if (origin && origin->size < (chunk_size ? chunk_size
                                           : SC_CHUNK_SIZE_MIN)) {
    snprintf (err, errlen, "%s: the disk (%" PRIu64 " bytes) is smaller "
              "than one chunk", origin->path, origin->size);
    return -EINVAL;
  }
  return 0;
}

/* Open (or with SC_DIFF_CREATE create) the file and lock it; *created
 * says whether it is new. */
static int
open_file (struct sc_diff *d, const char *path, unsigned flags,
           const struct sc_origin_id *origin, bool *created,
           char *err, size_t errlen)
{
  bool rdonly = flags & SC_DIFF_RDONLY;
  d->fd = open (path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (d->fd == -1 && errno == ENOENT && (flags & SC_DIFF_CREATE) && !rdonly) {
    if (!origin) {
      snprintf (err, errlen, "%s: cannot format a diff area without its "
                "disk", path);
      return -EINVAL;
    }
    d->fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    *created = d->fd >= 0;
  }
  if (d->fd == -1) {
    int r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    return r;
  }
  int op = rdonly ? LOCK_SH : LOCK_EX;
  int r = flags & SC_DIFF_NOWAIT ? sc_io_flock (d->fd, op)
                                 : flock (d->fd, op) == -1 ? -errno : 0;
  if (r < 0) {
    errno = -r;
    if (errno == EWOULDBLOCK)
      snprintf (err, errlen, "%s: the diff area is in use by another "
                "process (a running server?)", path);
    else
      snprintf (err, errlen, "%s: flock: %s", path, strerror (errno));
    return r;
  }
  return 0;
}

/* Format a new file, or load the superblock of an existing one and check
 * it against the origin and the chunk size asked for. */
static int
load_or_format (struct sc_diff *d, const char *path, bool created,
                const struct sc_origin_id *origin, uint32_t chunk_size,
                char *err, size_t errlen)
{
  int r;
  if (created) {
    uint32_t cs = chunk_size ? chunk_size : SC_CHUNK_SIZE_DEFAULT;
    if (origin->size < cs) {
      snprintf (err, errlen, "%s: the disk (%" PRIu64 " bytes) is smaller "
                "than one chunk (%" PRIu32 ")", origin->path, origin->size,
                cs);
      return -EINVAL;
    }
    if ((r = format (d, origin, cs)) < 0)
      snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if ((r = sc_sb_load (d->fd, &d->sb, err, errlen)) < 0) {
    char tmp[512];
    snprintf (tmp, sizeof tmp, "%s", err);
    snprintf (err, errlen, "%s: damaged or foreign diff area: %s", path,
              tmp);
    return r;
  }
  if (origin && (r = check_origin (path, &d->sb, origin, err, errlen)) < 0)
    return r;
  if (chunk_size && chunk_size != 1u << d->sb.chunk_shift) {
    snprintf (err, errlen, "%s: the diff area has chunk size %u; "
              "chunk-size=%" PRIu32 " was given", path,
              1u << d->sb.chunk_shift, chunk_size);
    return -EINVAL;
  }
  return 0;
}

/* Continue the replayed journal in place: after a clean close, or when
 * there is no room for a checkpoint.  The auto-release snapshots this
 * open deleted get their delete records then. */
static int
continue_journal (struct sc_diff *d, struct replay_out *o,
                  bool record_invalid)
{
  int r = ckpt_resume (d, o->chain, o->nchain, o->end_pos, o->end_seq,
                       record_invalid);
  if (d->have_journal)
    o->chain = NULL;            /* now the journal's */
  /* The replay may have ended a revert (its target invalid): a
   * checkpoint leaves it out, a continued journal needs its end. */
  int ended = r == 0 && d->have_journal
              ? revert_end_replayed (d, &d->journal) : 0;
  if (ended < 0)
    r = ended;
  uint8_t rec[SC_REC_MAX];
  for (size_t i = 0; r == 0 && i < o->nreleased; i++)
    r = sc_journal_append (&d->journal, rec, rec_delete (rec, o->released[i]),
                           NULL);
  if (r == 0 && (o->nreleased || ended > 0))
    r = sc_journal_sync (&d->journal, sc_journal_next_seq (&d->journal) - 1,
                         &d->lock);
  return r;
}

/* A read-write open's journal.  After a clean close the journal ends
 * cleanly, so it is continued as it is unless it has grown long;
 * otherwise (a torn tail may be there) a checkpoint starts a fresh one.
 * With no room for a checkpoint (the diff area's filesystem is full) the
 * journal carries on as it is, so the volume can still be served and
 * snapshots deleted. */
static int
start_journal (struct sc_diff *d, const char *path, bool created,
               struct replay_out *o)
{
  LOCKED (d);
  bool clean = !created && (d->sb.flags & SC_SB_CLEAN) && !o->invalidated &&
               o->nreleased == 0 && !d->salv;
  int r;
  if (clean && !ckpt_journal_too_long (d, d->replayed_records))
    r = continue_journal (d, o, false);
  else
    r = ckpt_write (d, o->end_seq, o->chain, o->nchain);
  /* (A salvaged journal is never continued: it is damaged.) */
  if ((r == -ENOSPC || r == -EDQUOT) && !created && !d->have_journal &&
      !d->salv) {
    if (sc_debug)
      sc_debug ("%s: no space for a checkpoint, continuing the journal "
                "in place", path);
    r = continue_journal (d, o, o->invalidated);
  }
  return r;
}

/* A new file is made durable whole: both superblock copies written (so a
 * later update never needs new space), and its directory entry synced. */
static int
finish_format (struct sc_diff *d, const char *path)
{
  int r = sc_sb_store (d->fd, &d->sb);
  if (r == 0)
    r = fsync_parent (path);
  return r;
}

static struct sc_diff *
diff_new (unsigned flags)
{
  struct sc_diff *d = calloc (1, sizeof *d);
  if (!d)
    return NULL;
  d->fd = -1;
  d->rdonly = flags & SC_DIFF_RDONLY;
  d->volatile_mode = flags & SC_DIFF_VOLATILE;
  d->max_snaps = SC_MAX_SNAPSHOTS_DEFAULT;
  d->max_ckpts = SC_MAX_CHECKPOINTS_DEFAULT;
  pthread_mutex_init (&d->lock, NULL);
  pthread_cond_init (&d->readers_done, NULL);
  pthread_cond_init (&d->ckpt_done, NULL);
  return d;
}

/* ---- the page cache of the copy map and the sums ------------------------ */

/* An unnamed scratch file for the map or the sums (cow/pagecache.h), in
 * the directory of the diff area at `path`, or in $TMPDIR (else /tmp)
 * where that directory takes no new file (a read-only file system,
 * another user's directory for a read-only open, a file system with no
 * inode or block left).  The fd, or -errno. */
static int
map_scratch_file (const char *path)
{
  char dir[PATH_MAX];
  const char *slash = strrchr (path, '/');
  if (!slash)
    strcpy (dir, ".");
  else if ((size_t) (slash - path) >= sizeof dir)
    return -ENAMETOOLONG;
  else {
    memcpy (dir, path, (size_t) (slash - path));
    dir[slash == path ? 1 : slash - path] = '\0';
  }
  int fd = sc_pc_scratch_file (dir);
  if (fd == -EROFS || fd == -EACCES || fd == -EPERM || fd == -ENOSPC ||
      fd == -EDQUOT) {
    const char *tmp = getenv ("TMPDIR");
    fd = sc_pc_scratch_file (tmp && *tmp ? tmp : "/tmp");
  }
  return fd;
}

/* The diff area's page cache, one per open, shared by the copy map and
 * the sums, each in a scratch file of its own. */
static int
map_cache_open (struct sc_diff *d, const char *path, uint64_t cache_bytes,
                char *err, size_t errlen)
{
  int r = sc_pc_new (cache_bytes ? cache_bytes : SC_DIFF_CACHE_DEFAULT,
                     &d->pc);
  if (r < 0) {
    snprintf (err, errlen, "%s: the copy map's cache: %s", path,
              strerror (-r));
    return r;
  }
  /* Without memory for it, every query asks the map: no error. */
  (void) sc_recent_init (&d->recent, SC_DIFF_RECENT_ORDER);
  int fd = map_scratch_file (path);
  r = fd < 0 ? fd : sc_index_init (&d->index, d->pc, fd);
  if (r < 0) {
    snprintf (err, errlen, "%s: a scratch file for the copy map (in its "
              "directory, or $TMPDIR or /tmp): %s", path, strerror (-r));
    return r;
  }
  fd = map_scratch_file (path);
  r = fd < 0 ? fd : sc_sums_init (&d->sums, d->chunk_size, d->pc, fd);
  if (r < 0)
    snprintf (err, errlen, "%s: a scratch file for the checksums (in its "
              "directory, or $TMPDIR or /tmp): %s", path, strerror (-r));
  return r;
}

/* Replay, or set up the empty state of a new file; then, read-write,
 * start the journal. */
static int
build_state (struct sc_diff *d, const char *path, bool created,
             struct replay_out *o, char *err, size_t errlen)
{
  struct stat st;
  if (fstat (d->fd, &st) == -1) {
    int r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  uint64_t max_slot = ((uint64_t) st.st_size + d->chunk_size - 1)
                      / d->chunk_size;
  d->prealloc_end = (uint64_t) st.st_size;
  int r = 0;
  if (created)
    sc_alloc_init (&d->alloc, d->first_slot);
  else if ((r = replay_run (d, max_slot, o, err, errlen)) < 0) {
    char tmp[768];
    snprintf (tmp, sizeof tmp, "%s", err);
    if (d->journal_damaged && !d->salv)
      snprintf (err, errlen, "%s: %s; to keep what can be proven intact "
                "(snapshots that may be wrong are marked invalid), stop "
                "everything using it and run: shadowcopy salvage %s",
                path, tmp, path);
    else
      snprintf (err, errlen, "%s: %s", path, tmp);
    return r;
  }
  if (d->rdonly) {
    diff_mark_unsure_damage (d);        /* in memory only */
    return 0;
  }
  /* This session's boot, stored with the superblock the journal's start
   * writes, tells the next open whether a crash could have torn writes
   * (replay.c). */
  (void) sc_boot_id (d->sb.session_boot_id);
  r = start_journal (d, path, created, o);
  if (r == 0 && created)
    r = finish_format (d, path);
  if (r == 0)
    diff_mark_unsure_damage (d);
  /* (A salvage never continues the journal: its records are not
   * written, and a read-only open refuses the damaged diff area.) */
  if ((r == -ENOSPC || r == -EDQUOT) && d->ndropped && !d->salv)
    snprintf (err, errlen, "%s: no space on its filesystem for a journal "
              "checkpoint, nor for the records that drop what a power cut "
              "kept from the disk (%zu copies or clone writes); nothing "
              "was changed: free some space and open it again (a "
              "read-only open works meanwhile)", path,
              d->ndropped);
  else if (r < 0)
    snprintf (err, errlen, "%s: writing the journal checkpoint: %s", path,
              strerror (-r));
  void_free (d);
  return r;
}

int
sc_diff_open (const char *path, unsigned flags,
              const struct sc_origin_id *origin, uint32_t chunk_size,
              struct sc_diff **out, char *err, size_t errlen)
{
  return diff_open (path, flags, origin, chunk_size, 0, NULL, out, err,
                    errlen);
}

int
sc_diff_open_cache (const char *path, unsigned flags,
                    const struct sc_origin_id *origin, uint32_t chunk_size,
                    uint64_t cache_bytes, struct sc_diff **out, char *err,
                    size_t errlen)
{
  return diff_open (path, flags, origin, chunk_size, cache_bytes, NULL, out,
                    err, errlen);
}

/* The cache's budget: 0 (the default), or from SC_DIFF_CACHE_MIN (what
 * the cache takes whatever it is given: a smaller one would not be the
 * budget asked for) to SC_DIFF_CACHE_MAX. */
static int
check_cache (const char *path, uint64_t cache_bytes, char *err,
             size_t errlen)
{
  if (cache_bytes == 0 || (cache_bytes >= SC_DIFF_CACHE_MIN &&
                           cache_bytes <= SC_DIFF_CACHE_MAX))
    return 0;
  snprintf (err, errlen, "%s: a cache of %" PRIu64 " bytes for the copy map "
            "and checksums: it must be from %" PRIu64 " bytes (%u pages of "
            "%u) to %" PRIu64 " bytes", path, cache_bytes,
            SC_DIFF_CACHE_MIN, SC_PC_MIN_PAGES, SC_PC_PAGE,
            SC_DIFF_CACHE_MAX);
  return -EINVAL;
}

int
diff_open (const char *path, unsigned flags,
           const struct sc_origin_id *origin, uint32_t chunk_size,
           uint64_t cache_bytes, struct sc_salvage_report *salv,
           struct sc_diff **out, char *err, size_t errlen)
{
  int r = check_args (origin, chunk_size, err, errlen);
  if (r == 0)
    r = check_cache (path, cache_bytes, err, errlen);
  if (r < 0)
    return r;
  struct sc_diff *d = diff_new (flags);
  if (!d) {
    snprintf (err, errlen, "%s: %s", path, strerror (ENOMEM));
    return -ENOMEM;
  }
  d->salv = salv;
  bool created = false;
  struct replay_out o = { .end_seq = 1 };       /* a new journal's first */
  r = open_file (d, path, flags, origin, &created, err, errlen);
  if (r == 0)
    r = load_or_format (d, path, created, origin, chunk_size, err, errlen);
  if (r == 0) {
    d->chunk_size = 1u << d->sb.chunk_shift;
    d->nchunks = (d->sb.origin_size + d->chunk_size - 1) / d->chunk_size;
    d->first_slot = (SC_SB_AREA + d->chunk_size - 1) / d->chunk_size;
    r = map_cache_open (d, path, cache_bytes, err, errlen);
  }
  if (r == 0) {
    r = build_state (d, path, created, &o, err, errlen);
  }
  free (o.chain);
  free (o.released);
  if (r < 0) {
    if (created)
      unlink (path);
    diff_free (d);
    return r;
  }
  *out = d;
  return 0;
}

/* ---- close and statistics ----------------------------------------------- */

int
sc_diff_close (struct sc_diff *d)
{
  int r = 0;
  if (d->have_journal) {
    pthread_mutex_lock (&d->lock);
    /* A failed diff area gets a last try, so that it can close clean. */
    (void) diff_recover (d);
    r = sc_journal_sync (&d->journal, sc_journal_next_seq (&d->journal) - 1,
                         &d->lock);
    if (r == 0)
      r = sc_io_fdatasync (d->fd);      /* copies, in volatile mode */
    if (r == 0 && !d->failed) {
      diff_stamp_close (d);
      d->sb.flags |= SC_SB_CLEAN;
      d->sb.clean_seq = sc_journal_next_seq (&d->journal);
      r = diff_sb_store (d, &d->sb);
    }
    pthread_mutex_unlock (&d->lock);
  }
  diff_free (d);
  return r;
}

int
sc_diff_fd (const struct sc_diff *d)
{
  return d->fd;
}

uint32_t
sc_diff_chunk_size (const struct sc_diff *d)
{
  return d->chunk_size;
}

/* Slots: superblocks, then journal and data slots from first_slot on.
 * The journal's spare slot is reserved but not yet part of the chain on
 * disk: it is left out, so online and offline figures agree. */
static void
stats_space (struct sc_diff *d, struct sc_diff_stats *st)
{
  uint64_t used = sc_alloc_used (&d->alloc);
  uint64_t spare = d->have_journal ? sc_journal_spare_slots (&d->journal)
                                   : 0;
  st->journal_slots = d->have_journal ? sc_journal_slots (&d->journal) - spare
                                      : d->replayed_slots;
  st->data_slots = used - spare - st->journal_slots;
  st->used_bytes = (d->first_slot + used - spare) * (uint64_t) d->chunk_size;
  struct stat sb;
  if (fstat (d->fd, &sb) == 0)
    st->file_bytes = sb.st_size;
  st->free_slots = sc_alloc_end (&d->alloc) - d->first_slot - used + spare;
  st->journal_records = d->have_journal ? sc_journal_records (&d->journal)
                                        : d->replayed_records;
  st->max_bytes = d->max_bytes;
}

void
sc_diff_stats (struct sc_diff *d, struct sc_diff_stats *st)
{
  LOCKED (d);
  memset (st, 0, sizeof *st);
  st->volume_size = d->sb.origin_size;
  st->chunk_size = d->chunk_size;
  st->copies = copymap_count (d);
  stats_space (d, st);
  st->epoch = d->epoch;
  st->dropped = d->drops_total;
  st->full_failures = d->full_failures;
  st->space_waits = d->space_waits;
  st->invalidations = d->invalidations;
  st->checksum_errors = d->checksum_errors;
  st->damaged_freed = d->damaged_freed;
  for (size_t i = 0; i < d->nsnaps; i++) {
    const struct snap *s = d->snaps[i];
    if (s->deleted)
      continue;
    st->snapshots++;
    st->invalid += s->info.invalid_reason != SC_VALID;
    st->damaged += s->info.invalid_reason == SC_INVALID_DAMAGED;
    st->checkpoints += s->info.checkpoint;
    for (size_t k = 0; k < s->ndisc; k++)
      st->discarded_bytes += s->disc[k].count * d->chunk_size;
  }
  for (size_t i = 0; i < d->nclones; i++) {
    struct sc_snapshot_info ci;
    if (d->clones[i]->deleted)
      continue;
    clone_info (d, d->clones[i], &ci);
    st->clones++;
    st->snapshots++;            /* listed like one */
    st->invalid += ci.invalid_reason != SC_VALID;
    st->damaged += ci.invalid_reason == SC_INVALID_DAMAGED;
  }
  st->clone_slots = clone_slots (d);
  memcpy (st->uuid, d->sb.uuid, 16);
  st->origin.size = d->sb.origin_size;
  st->origin.dev = d->sb.origin_dev;
  st->origin.ino = d->sb.origin_ino;
  st->origin.type = d->sb.origin_type;
  snprintf (st->origin.path, sizeof st->origin.path, "%s", d->sb.origin_path);
  if (d->pc) {
    sc_pc_stats (d->pc, &st->cache);
    st->cache_budget = st->cache.max_pages * SC_PC_PAGE;
  }
}
