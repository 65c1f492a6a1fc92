/* shadowcopy: an origin that is a regular file or a block device (see
 * origin.h).
 *
 * Notes on the design
 *
 * Data goes through cow/io.h, like the diff area's, so the volume can put
 * origin reads into the same io_uring batches as diff-area writes (the
 * descriptor is exported by file_fd for that).
 *
 * The allocation map comes from lseek(SEEK_DATA/SEEK_HOLE).  lseek moves
 * the descriptor's file position, which nothing here uses (all transfers
 * are positioned), so concurrent callers do not disturb each other; but
 * it takes the file's position lock and the inode's lock, which the
 * writes contend for: a file with every block allocated when opened, and
 * no zero or trim since, is not asked (a copy-on-write's hole test).  A
 * block device has no holes to report: it is all data.
 *
 * The origin is locked (flock, exclusive) for as long as it is open: a
 * second server on the same disk would overwrite chunks the first one's
 * snapshots still need, without copying them.  flock is advisory, so it
 * keeps out other shadowcopy servers, not every writer.  A block device
 * is also opened O_EXCL, which holds whatever node of the device a second
 * server opens.  (A loop device and its backing file are two origins to
 * the kernel: nothing here can tell they hold the same data.)
 *
 * The stamp (sc_origin_stamp, for the watch of volume-watch.c) of a file
 * is its size and times, fsynced first so that they are the ones a power
 * cut would leave; of a block device, the write and discard
 * counters the kernel keeps since boot in /sys/dev/block/MAJ:MIN/stat
 * (a partition's own) if its disk's I/O accounting is on (queue/iostats:
 * off, they never move), with the boot id and the disk's sequence number
 * (new each time the kernel makes the device, or attaches a loop
 * device), which say what they count from.
 *
 * Zeroing prefers fallocate (zero range, or punching a hole when the
 * request allows deallocation) and falls back to writing zeros where the
 * file system or device cannot; trimming is only ever a punched hole.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/io.h"
#include "engine/origin-impl.h"

struct file_origin {
  struct sc_origin o;           /* first: what the volume holds */
  int fd;
  bool is_file;                 /* a regular file (holes), not a device */
  /* No hole when it was opened (every block allocated) and none made
   * since (zero, trim): the copy-on-write's hole test needs no lseek
   * (atomic; a hole missed only costs a read of zeros). */
  bool dense;
};

static inline struct file_origin *
file_of (const struct sc_origin *o)
{
  return (struct file_origin *) o;
}

static void
file_close (struct sc_origin *o)
{
  close (file_of (o)->fd);
  free (file_of (o));
}

static int
file_fd (const struct sc_origin *o)
{
  return file_of (o)->fd;
}

static int
file_pread (struct sc_origin *o, void *buf, uint64_t len, uint64_t off)
{
  return sc_io_pread (file_of (o)->fd, buf, len, off);
}

static int
file_pwrite (struct sc_origin *o, const void *buf, uint64_t len,
             uint64_t off, unsigned flags)
{
  return sc_io_pwrite (file_of (o)->fd, buf, len, off, flags & SC_FUA);
}

static int
file_flush (struct sc_origin *o)
{
  return sc_io_fdatasync (file_of (o)->fd);
}

/* What fallocate says when the file system or device cannot do it. */
static inline bool
unsupported (int r)
{
  return r == -EOPNOTSUPP || r == -EINVAL || r == -ENODEV;
}

static int
write_zeros (int fd, uint64_t len, uint64_t off)
{
  static const uint8_t zeros[65536];

  while (len) {
    uint64_t n = len < sizeof zeros ? len : sizeof zeros;
    int r = sc_io_pwrite (fd, zeros, n, off, false);
    if (r < 0)
      return r;
    len -= n;
    off += n;
  }
  return 0;
}

static void
not_dense (struct sc_origin *o)
{
  __atomic_store_n (&file_of (o)->dense, false, __ATOMIC_RELAXED);
}

static int
file_zero (struct sc_origin *o, uint64_t len, uint64_t off, unsigned flags)
{
  int fd = file_of (o)->fd;
  not_dense (o);
  int modes[2] = { FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };
  int r = -EOPNOTSUPP;

  if (flags & SC_MAY_TRIM) {
    modes[0] = modes[1];
    modes[1] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  }
  for (int i = 0; i < 2 && unsupported (r); i++)
    r = sc_io_fallocate (fd, modes[i], off, len);
  if (unsupported (r))
    r = write_zeros (fd, len, off);
  if (r == 0 && (flags & SC_FUA))
    r = sc_io_fdatasync (fd);
  return r;
}

static int
file_trim (struct sc_origin *o, uint64_t len, uint64_t off, unsigned flags)
{
  int fd = file_of (o)->fd;
  not_dense (o);
  int r = sc_io_fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                           off, len);

  if (unsupported (r))
    r = 0;                      /* trim is advisory */
  if (r == 0 && (flags & SC_FUA))
    r = sc_io_fdatasync (fd);
  return r;
}

static int
file_extents (struct sc_origin *o, uint64_t len, uint64_t off,
              sc_extent_cb cb, void *opaque)
{
  const struct file_origin *f = file_of (o);
  uint64_t end = off + len;
  int r;

  if (!f->is_file)
    return cb (opaque, off, len, 0);
  while (off < end) {
    off_t data = lseek (f->fd, (off_t) off, SEEK_DATA);
    if (data == -1 && errno != ENXIO)
      return cb (opaque, off, end - off, 0); /* unknown: data */
    uint64_t d = data == -1 ? end : (uint64_t) data;
    if (d > end)
      d = end;
    if (d > off) {
      if ((r = cb (opaque, off, d - off,
                   SC_EXTENT_HOLE | SC_EXTENT_ZERO)) != 0)
        return r;
      off = d;
      continue;
    }
    off_t hole = lseek (f->fd, (off_t) off, SEEK_HOLE);
    uint64_t h = hole == -1 ? end : (uint64_t) hole;
    if (h > end || h <= off)
      h = end;
    if ((r = cb (opaque, off, h - off, 0)) != 0)
      return r;
    off = h;
  }
  return 0;
}

/* One SEEK_DATA: is there no data from off to off + len? */
static bool
file_is_hole (struct sc_origin *o, uint64_t off, uint64_t len)
{
  const struct file_origin *f = file_of (o);

  if (!f->is_file || __atomic_load_n (&f->dense, __ATOMIC_RELAXED))
    return false;
  off_t data = lseek (f->fd, (off_t) off, SEEK_DATA);
  if (data == -1)
    return errno == ENXIO;      /* no data from here to the end */
  return (uint64_t) data >= off + len;
}

/* The first `n` numbers of a text file, or how many it held; -errno if
 * it cannot be read. */
static int
read_numbers (const char *path, uint64_t *v, int n)
{
  FILE *f = fopen (path, "re");
  if (!f)
    return -errno;
  int k = 0;
  while (k < n && fscanf (f, "%" SCNu64, &v[k]) == 1)
    k++;
  fclose (f);
  return k;
}

/* An attribute of the disk a block device is on, one number: the
 * device's own in /sys/dev/block/MAJ:MIN, or for a partition its whole
 * disk's (a partition has no diskseq or queue/ of its own).  -errno if
 * it cannot be read. */
static int
disk_attr (dev_t rdev, const char *name, uint64_t *v)
{
  char path[128];
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/partition",
            major (rdev), minor (rdev));
  bool part = access (path, F_OK) == 0;
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/%s%s", major (rdev),
            minor (rdev), part ? "../" : "", name);
  int n = read_numbers (path, v, 1);
  return n == 1 ? 0 : n < 0 ? n : -EINVAL;
}

uint64_t
sc_block_diskseq (dev_t rdev)
{
  uint64_t seq;
  return disk_attr (rdev, "diskseq", &seq) == 0 ? seq : 0;
}

/* A file: its size and times (a write changes mtime and ctime; ctime
 * cannot be set back).  A block device: its write and discard counters
 * (its own, for a partition) and the boot and diskseq they count from,
 * if its disk's I/O accounting is on; if not, or if the kernel does not
 * say, the samples alone identify it. */
static int
file_stamp (struct sc_origin *o, struct sc_origin_stamp *st)
{
  struct stat sb;
  if (fstat (file_of (o)->fd, &sb) == -1)
    return -errno;
  if (file_of (o)->is_file) {
    /* The times recorded must be the ones a power cut leaves: fdatasync
     * does not make them durable, fsync does. */
    if (fsync (file_of (o)->fd) == -1)
      return -errno;
    if (fstat (file_of (o)->fd, &sb) == -1)
      return -errno;
    st->flags = SC_STAMP_F_TIMES;
    st->size = (uint64_t) sb.st_size;
    st->mtime_ns = (uint64_t) sb.st_mtim.tv_sec * 1000000000u +
                   (uint64_t) sb.st_mtim.tv_nsec;
    st->ctime_ns = (uint64_t) sb.st_ctim.tv_sec * 1000000000u +
                   (uint64_t) sb.st_ctim.tv_nsec;
    return 0;
  }
  char path[64];
  uint64_t v[14] = { 0 };
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/stat",
            major (sb.st_rdev), minor (sb.st_rdev));
  int n = read_numbers (path, v, 14);
  /* With I/O accounting off (queue/iostats 0, or not said) the counters
   * never move, whatever is written: they would match anything. */
  uint64_t iostats = 0;
  if (disk_attr (sb.st_rdev, "queue/iostats", &iostats) < 0)
    iostats = 0;
  if (n >= 7 && iostats && sc_boot_id (st->boot_id) == 0) {
    st->flags = SC_STAMP_F_COUNTERS;
    st->write_ios = v[4];
    st->write_sectors = v[6];
    if (n >= 14) {
      st->discard_ios = v[11];
      st->discard_sectors = v[13];
    }
    if (disk_attr (sb.st_rdev, "diskseq", &st->diskseq) < 0)
      st->diskseq = 0;
  }
  return 0;
}

static const struct sc_origin_ops file_ops = {
  .close   = file_close,
  .pread   = file_pread,
  .pwrite  = file_pwrite,
  .flush   = file_flush,
  .zero    = file_zero,
  .trim    = file_trim,
  .extents = file_extents,
  .is_hole = file_is_hole,
  .fd      = file_fd,
  .stamp   = file_stamp,
};

/* The pid of the flock on "MAJ:MIN:INO" `want` in the lock table (lines
 * as in /proc/locks, or the "lock:" lines of /proc/PID/fdinfo/FD); 0 if
 * none.  Waiters ("->") are skipped. */
static long
flock_pid (FILE *f, const char *want)
{
  char line[256];
  while (fgets (line, sizeof line, f)) {
    char type[16], dev[64];
    long p;
    const char *l = strncmp (line, "lock:", 5) == 0 ? line + 5 : line;
    if (strstr (l, "->") == NULL &&
        sscanf (l, "%*s %15s %*s %*s %ld %63s", type, &p, dev) == 3 &&
        strcmp (type, "FLOCK") == 0 && strcmp (dev, want) == 0)
      return p;
  }
  return 0;
}

/* A process's command line, NULs as spaces; false if it is gone. */
static bool
cmdline (long pid, char *cmd, size_t len)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%ld/cmdline", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read (fd, cmd, len - 1);
  close (fd);
  for (ssize_t i = 0; i < n; i++)
    if (cmd[i] == '\0' || cmd[i] == '\n')
      cmd[i] = ' ';
  while (n > 0 && cmd[n - 1] == ' ')
    n--;
  cmd[n > 0 ? n : 0] = '\0';
  return n > 0;
}

/* The process that has a descriptor holding the flock `want` now.  A
 * server in nbdkit's background mode took its lock before forking, so the
 * lock table names its parent, which has exited: look through every
 * process's open files instead (only on this error path). */
static long
flock_owner_now (const char *want)
{
  DIR *proc = opendir ("/proc");
  struct dirent *p;
  long found = 0;
  while (!found && proc && (p = readdir (proc))) {
    char dir[300];
    if (p->d_name[0] < '1' || p->d_name[0] > '9')
      continue;
    snprintf (dir, sizeof dir, "/proc/%s/fdinfo", p->d_name);
    DIR *fds = opendir (dir);
    struct dirent *q;
    while (!found && fds && (q = readdir (fds))) {
      char path[600];
      snprintf (path, sizeof path, "%s/%s", dir, q->d_name);
      FILE *f = q->d_name[0] != '.' ? fopen (path, "re") : NULL;
      if (f && flock_pid (f, want))
        found = strtol (p->d_name, NULL, 10);
      if (f)
        fclose (f);
    }
    if (fds)
      closedir (fds);
  }
  if (proc)
    closedir (proc);
  return found;
}

/* Who holds the flock of the file open on fd: "pid N: CMDLINE", or an
 * empty string if unknown. */
static void
lock_holder (int fd, char *buf, size_t len)
{
  struct stat st;
  char want[64], cmd[512];
  FILE *locks;
  long pid;

  buf[0] = '\0';
  if (fstat (fd, &st) == -1 || !(locks = fopen ("/proc/locks", "re")))
    return;
  snprintf (want, sizeof want, "%02x:%02x:%ju", major (st.st_dev),
            minor (st.st_dev), (uintmax_t) st.st_ino);
  pid = flock_pid (locks, want);
  fclose (locks);
  cmd[0] = '\0';
  if (pid && !cmdline (pid, cmd, sizeof cmd)) {
    long now = flock_owner_now (want);
    if (now) {
      pid = now;
      if (!cmdline (pid, cmd, sizeof cmd))
        cmd[0] = '\0';
    }
  }
  if (pid)
    snprintf (buf, len, "pid %ld%s%s", pid, cmd[0] ? ": " : "", cmd);
}

/* Lock the origin against a second server (see the notes at the top). */
static int
lock_origin (int fd, const char *path, char *err, size_t errlen)
{
  char holder[600];

  int r = sc_io_flock (fd, LOCK_EX);
  if (r == 0)
    return 0;
  if (r != -EWOULDBLOCK) {
    snprintf (err, errlen, "%s: flock: %s", path, strerror (-r));
    return r;
  }
  lock_holder (fd, holder, sizeof holder);
  snprintf (err, errlen, "%s: the disk is in use by another shadowcopy "
            "server (%s); two servers on one disk would overwrite what "
            "the other's snapshots need", path,
            holder[0] ? holder : "holder unknown");
  return r;
}

/* Open the origin read-write.  A block device is opened O_EXCL: the
 * kernel then lets one exclusive opener have the device whatever node it
 * is opened through (an flock only covers one node), and refuses a
 * device with a mounted filesystem. */
static int
open_origin (const char *path, char *err, size_t errlen)
{
  struct stat st;
  int flags = O_RDWR | O_CLOEXEC;
  if (stat (path, &st) == 0 && S_ISBLK (st.st_mode))
    flags |= O_EXCL;
  int fd = open (path, flags);
  if (fd >= 0)
    return fd;
  int r = -errno;
  if (r == -EBUSY && (flags & O_EXCL)) {
    char holder[600] = "";
    int probe = open (path, O_RDONLY | O_CLOEXEC);
    if (probe >= 0) {
      lock_holder (probe, holder, sizeof holder);
      close (probe);
    }
    snprintf (err, errlen, "%s: the device is in use: another shadowcopy "
              "server%s%s%s, a mounted filesystem or another program has it "
              "open exclusively", path, holder[0] ? " (" : "", holder,
              holder[0] ? ")" : "");
  }
  else
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
  return r;
}

int
sc_origin_open_file (const char *path, struct sc_origin **out,
                     char *err, size_t errlen)
{
  struct file_origin *f = calloc (1, sizeof *f);
  int r;

  if (!f) {
    snprintf (err, errlen, "%s: %s", path, strerror (ENOMEM));
    return -ENOMEM;
  }
  f->o.ops = &file_ops;
  f->fd = open_origin (path, err, errlen);
  if (f->fd < 0) {
    r = f->fd;
    free (f);
    return r;
  }
  /* cow/ defines what is recorded of a file or device (st_dev, st_ino,
   * size), so the identity is its sc_origin_identify's. */
  r = sc_origin_identify (f->fd, path, &f->o.id);
  if (r < 0) {
    snprintf (err, errlen, "%s: %s", path,
              r == -EINVAL ? "not a regular file or block device"
                           : strerror (-r));
    close (f->fd);
    free (f);
    return r;
  }
  r = lock_origin (f->fd, path, err, errlen);
  if (r < 0) {
    close (f->fd);
    free (f);
    return r;
  }
  f->is_file = f->o.id.type == SC_ORIGIN_FILE;
  struct stat st;
  f->dense = f->is_file && fstat (f->fd, &st) == 0 &&
             (uint64_t) st.st_blocks * 512 >= (uint64_t) st.st_size;
  *out = &f->o;
  return 0;
}
