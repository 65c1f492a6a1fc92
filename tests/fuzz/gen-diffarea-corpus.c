/* Seed corpus for fuzz-diffarea: real diff areas made by the library.
 *
 * Usage: gen-diffarea-corpus OUTDIR
 *
 * Each scenario formats a diff area for a 64 KiB origin with 4 KiB chunks
 * through the cow/ API, drives it as the engine would (snapshots, data and
 * zero copies, deletions, invalidations, reopenings, reverts), and saves the file
 * as OUTDIR/NAME, prefixed with the fuzzer's mode byte (see
 * fuzz-diffarea.c).  Copies hold a 16-byte tag and zeros: the loader never
 * reads data slots, and small, regular seeds mutate better.
 *
 * run.sh runs this at every fuzzing run, so the seeds always match the
 * current format; `run.sh --regen-corpus` stores them in
 * tests/fuzz/corpus-diffarea/.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/boot-id.h"
#include "cow/diffarea.h"
#include "cow/io.h"
#include "tests/fuzz/diffarea-image.h"

#define ORIGIN_SIZE (64u * 1024u)
#define CHUNK_SIZE  4096u
#define NCHUNKS     (ORIGIN_SIZE / CHUNK_SIZE)
#define SEED_MAX    (100u * 1024u)

/* Mode bytes (fuzz-diffarea.c). */
#define MODE_RESEAL    0x0
#define MODE_RAW       0x1
#define MODE_ROUNDTRIP 0x4
#define MODE_DATA_CRC  0x8
#define MODE_SALVAGE   0x10

static const char *outdir;
static char workdir[256];
static char origin_path[300], area_path[300];
static struct sc_origin_id origin;

static void
die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "gen-diffarea-corpus: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  exit (1);
}

static void
check (int r, const char *what)
{
  if (r < 0)
    die ("%s: %s", what, strerror (-r));
}

static struct sc_diff *
area_create (void)
{
  char err[512];
  struct sc_diff *d;
  unlink (area_path);
  check (sc_diff_open (area_path, SC_DIFF_CREATE | SC_DIFF_NOWAIT, &origin,
                       CHUNK_SIZE, &d, err, sizeof err), err);
  return d;
}

static struct sc_diff *
area_open (void)
{
  char err[512];
  struct sc_diff *d;
  check (sc_diff_open (area_path, SC_DIFF_NOWAIT, &origin, 0, &d, err,
                       sizeof err), err);
  return d;
}

static struct sc_diff *
area_reopen (struct sc_diff *d)
{
  check (sc_diff_close (d), "sc_diff_close");
  return area_open ();
}

static struct sc_snapshot_info
checkpoint (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_opts o = { .checkpoint = true };
  struct sc_snapshot_info s;
  check (sc_diff_snapshot_create (d, name, &o, &s), name);
  return s;
}

/* The write path's marks for checkpoints (after any copy). */
static void
mark (struct sc_diff *d, uint64_t first, uint64_t last)
{
  uint64_t seq = 0;
  check (sc_diff_mark_changes (d, first, last, &seq), "mark changes");
  if (seq)
    check (sc_diff_commit (d, seq), "sc_diff_commit");
}

static struct sc_snapshot_info
snap (struct sc_diff *d, const char *name)
{
  struct sc_snapshot_info s;
  check (sc_diff_snapshot_create (d, name, NULL, &s), name ? name : "(default)");
  return s;
}

/* What the engine does before a live write to `chunk`: copy it if a
 * snapshot needs it, to a slot (data) or as a zero copy. */
static uint64_t
copy_uncommitted (struct sc_diff *d, uint64_t chunk, int zero)
{
  uint64_t seq, off = SC_COPY_ZERO;
  uint32_t sums[SC_COPY_SUMS_MAX];
  if (!sc_diff_needs_copy (d, chunk))
    return 0;
  if (!zero) {
    uint8_t buf[CHUNK_SIZE] = { 0 };
    check (sc_diff_slot_reserve (d, &off), "sc_diff_slot_reserve");
    snprintf ((char *) buf, 16, "chunk %" PRIu64, chunk);
    if (pwrite (sc_diff_fd (d), buf, sizeof buf, (off_t) off) != sizeof buf)
      die ("pwrite: %m");
    sc_diff_copy_sums (d, buf, sums);
  }
  check (sc_diff_copy_record (d, chunk, off, zero ? NULL : sums, &seq),
         "sc_diff_copy_record");
  return seq;
}

static void
copy (struct sc_diff *d, uint64_t chunk, int zero)
{
  uint64_t seq = copy_uncommitted (d, chunk, zero);
  if (seq)
    check (sc_diff_commit (d, seq), "sc_diff_commit");
}

/* Save the diff area as it is on disk now, with a mode byte in front. */
static void
save_bytes (const char *name, unsigned mode, const uint8_t *img, size_t len)
{
  char path[512];
  if (len + 1 > SEED_MAX)
    die ("%s: %zu bytes, more than the %u a seed may have", name, len + 1,
         SEED_MAX);
  snprintf (path, sizeof path, "%s/%s", outdir, name);
  FILE *f = fopen (path, "wb");
  if (!f || fputc ((int) mode, f) == EOF || fwrite (img, 1, len, f) != len ||
      fclose (f) != 0)
    die ("%s: %m", path);
}

static uint8_t *
read_area (size_t *len)
{
  int fd = open (area_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd == -1 || fstat (fd, &st) == -1)
    die ("%s: %m", area_path);
  uint8_t *img = calloc (1, (size_t) st.st_size + 1);
  if (!img || pread (fd, img, (size_t) st.st_size, 0) != st.st_size)
    die ("reading %s: %m", area_path);
  close (fd);
  *len = (size_t) st.st_size;
  return img;
}

static void
save (const char *name, unsigned mode)
{
  size_t len;
  uint8_t *img = read_area (&len);
  save_bytes (name, mode, img, len);
  free (img);
}

/* ---- scenarios -------------------------------------------------------- */

static void
fresh (void)
{
  struct sc_diff *d = area_create ();
  check (sc_diff_close (d), "close");
  save ("fresh", MODE_ROUNDTRIP);
}

static void
snapshots_and_copies (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "monday");
  copy (d, 0, 0);
  copy (d, 5, 0);
  copy (d, 6, 1);
  snap (d, NULL);
  copy (d, 0, 0);
  copy (d, 15, 1);
  snap (d, "2026-11-24T19:00:51.123Z");
  copy (d, 5, 0);
  /* The bytes right now are what a crash (or kill -9) would leave. */
  save ("crashed", MODE_ROUNDTRIP | MODE_DATA_CRC);
  save ("crashed-salvage", MODE_RAW | MODE_SALVAGE);
  check (sc_diff_close (d), "close");
  save ("closed", MODE_ROUNDTRIP);
  save ("closed-raw", MODE_RAW);
  d = area_reopen (area_open ());
  check (sc_diff_close (d), "close");
  save ("reopened", MODE_ROUNDTRIP);
}

static void
deletions (void)
{
  struct sc_diff *d = area_create ();
  const char *names[] = { "a", "b.1", "c_2", "d:3" };
  for (int i = 0; i < 4; i++) {
    snap (d, names[i]);
    for (uint64_t c = (uint64_t) i; c < NCHUNKS; c += 4)
      copy (d, c, c % 3 == 0);
  }
  check (sc_diff_snapshot_delete (d, "b.1"), "delete b.1");
  check (sc_diff_snapshot_delete (d, "a"), "delete a");
  snap (d, "e+4");
  copy (d, 1, 0);               /* reuses a slot freed above */
  copy (d, 2, 0);
  save ("deleted-crashed", MODE_RESEAL | MODE_DATA_CRC);
  check (sc_diff_snapshot_delete (d, "d:3"), "delete d:3");
  check (sc_diff_close (d), "close");
  save ("deleted", MODE_ROUNDTRIP);
  d = area_open ();
  check (sc_diff_snapshot_delete (d, "c_2"), "delete c_2");
  check (sc_diff_snapshot_delete (d, "e+4"), "delete e+4");
  check (sc_diff_close (d), "close");
  save ("all-deleted", MODE_ROUNDTRIP);
}

/* Changed-block tracking: checkpoints with marks, a snapshot kept as a
 * checkpoint (copies demoted to marks), UUIDs. */
static void
checkpoints (void)
{
  struct sc_diff *d = area_create ();
  checkpoint (d, "cp-monday");
  mark (d, 0, 3);
  snap (d, "tuesday");
  copy (d, 2, 0);
  copy (d, 9, 0);
  copy (d, 10, 1);
  mark (d, 2, 12);
  checkpoint (d, "cp-wednesday");
  copy (d, 9, 0);
  mark (d, 9, 9);
  mark (d, 13, 14);
  save ("tracking-crashed", MODE_ROUNDTRIP | MODE_DATA_CRC);
  check (sc_diff_snapshot_keep_checkpoint (d, "tuesday"), "keep");
  copy (d, 15, 0);
  mark (d, 15, 15);
  save ("tracking-kept-crashed", MODE_RESEAL);
  check (sc_diff_close (d), "close");
  save ("tracking", MODE_ROUNDTRIP);
  d = area_reopen (area_open ());
  check (sc_diff_close (d), "close");
  save ("tracking-checkpoint", MODE_ROUNDTRIP);
}

/* A write to a clone as the engine makes one: a new slot (data), or
 * ZERO. */
static uint64_t
clone_put_uncommitted (struct sc_diff *d, uint64_t id, uint64_t chunk,
                       int zero)
{
  uint64_t seq, off = SC_COPY_ZERO;
  uint32_t sums[SC_COPY_SUMS_MAX];
  if (!zero) {
    uint8_t buf[CHUNK_SIZE] = { 0 };
    check (sc_diff_clone_slot_reserve (d, id, &off), "clone slot");
    snprintf ((char *) buf, 16, "clone %" PRIu64, chunk);
    if (pwrite (sc_diff_fd (d), buf, sizeof buf, (off_t) off) != sizeof buf)
      die ("pwrite: %m");
    sc_diff_copy_sums (d, buf, sums);
  }
  check (sc_diff_clone_map (d, id, chunk, off, zero ? NULL : sums, &seq),
         "sc_diff_clone_map");
  return seq;
}

static void
clone_put (struct sc_diff *d, uint64_t id, uint64_t chunk, int zero)
{
  check (sc_diff_commit (d, clone_put_uncommitted (d, id, chunk, zero)),
         "sc_diff_commit");
}

/* Writable clones (format 4): CLONE_BASE and CLONE_DATA records, a
 * rewrite (the old slot freed), a ZERO, a deleted clone. */
static void
clones (void)
{
  struct sc_diff *d = area_create ();
  struct sc_snapshot_info c1, c2;
  char err[256];
  snap (d, "base");
  copy (d, 1, 0);
  check (sc_diff_clone_create (d, "base", "c1", &c1, err, sizeof err), err);
  check (sc_diff_clone_create (d, "base", "c2", &c2, err, sizeof err), err);
  clone_put (d, c1.id, 2, 0);
  clone_put (d, c1.id, 2, 0);
  clone_put (d, c1.id, 3, 1);
  clone_put (d, c2.id, 4, 0);
  snap (d, "later");
  copy (d, 4, 0);
  save ("clones-crashed", MODE_ROUNDTRIP | MODE_DATA_CRC);
  check (sc_diff_snapshot_delete (d, "c2"), "delete c2");
  check (sc_diff_close (d), "close");
  save ("clones", MODE_ROUNDTRIP);
  d = area_reopen (area_open ());
  check (sc_diff_close (d), "close");
  save ("clones-checkpoint", MODE_ROUNDTRIP | MODE_SALVAGE);
}

static void
invalidations (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "old");
  copy (d, 3, 0);
  snap (d, "new");
  check (sc_diff_invalidate_chunk (d, 3, SC_INVALID_DIFF_FULL, ENOSPC),
         "invalidate");
  copy (d, 4, 0);
  check (sc_diff_invalidate_chunk (d, 7, SC_INVALID_COPY_READ, EIO),
         "invalidate");
  snap (d, "after");
  copy (d, 7, 1);
  check (sc_diff_close (d), "close");
  save ("invalid", MODE_ROUNDTRIP);
  d = area_reopen (area_open ());
  check (sc_diff_close (d), "close");
  save ("invalid-checkpointed", MODE_RESEAL);
}

/* Many zero copies (no slots): journals and checkpoints that span several
 * journal slots, chained by NEXT records. */
static void
long_journal (void)
{
  struct sc_diff *d = area_create ();
  char name[32];
  for (int i = 0; i < 14; i++) {
    snprintf (name, sizeof name, "hourly-%02d", i);
    snap (d, name);
    for (uint64_t c = 0; c < NCHUNKS; c++)
      copy (d, c, !(i == 3 && c == 9));
  }
  save ("multislot-crashed", MODE_RESEAL);
  save ("multislot-crashed-salvage", MODE_RAW | MODE_SALVAGE);
  check (sc_diff_close (d), "close");
  save ("multislot", MODE_ROUNDTRIP);
  d = area_reopen (area_open ());
  check (sc_diff_close (d), "close");
  save ("multislot-checkpoint", MODE_ROUNDTRIP);
}

static void
names (void)
{
  struct sc_diff *d = area_create ();
  char longest[SC_NAME_MAX + 1];
  memset (longest, 'n', SC_NAME_MAX);
  longest[SC_NAME_MAX] = '\0';
  snap (d, longest);
  snap (d, "ABCXYZabcxyz0189._:+-");
  snap (d, "x");
  snap (d, NULL);
  snap (d, NULL);               /* same millisecond: gets a +2 suffix */
  copy (d, 8, 0);
  check (sc_diff_close (d), "close");
  save ("names", MODE_ROUNDTRIP);
}

/* A journal write fails: the superblock is marked FAILED and the
 * snapshots are trusted no more. */
static int
fail_journal_writes (const struct sc_io_req *req)
{
  return req->op == SC_IO_WRITE && req->off >= SC_SB_AREA ? -EIO : 0;
}

static void
failed (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "doomed");
  copy (d, 2, 0);
  uint64_t seq;
  check (sc_diff_copy_record (d, 10, SC_COPY_ZERO, NULL, &seq), "copy record");
  sc_io_fault_hook = fail_journal_writes;
  if (sc_diff_commit (d, seq) == 0)
    die ("the failing commit succeeded");
  (void) sc_diff_close (d);
  sc_io_fault_hook = NULL;
  save ("failed", MODE_ROUNDTRIP);
}

/* A snapshot whose origin flush failed at its creation (format version
 * 5): its record carries ORIGIN_UNFLUSHED, with a copy made for it
 * while the flush ran. */
static void
unflushed (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "flushed");
  copy (d, 1, 0);
  struct sc_snapshot_info s;
  uint64_t seq;
  check (sc_diff_snapshot_record_held (d, "unflushed", NULL, &s, &seq),
         "record held");
  /* Copies made for it by writes after the release: their commits
   * wait for the held leads. */
  (void) copy_uncommitted (d, 1, 1);
  (void) copy_uncommitted (d, 3, 0);
  sc_diff_snapshot_settle (d, s.id, -EIO);
  check (sc_diff_commit (d, seq), "commit of the unflushed record");
  save ("unflushed-crashed", MODE_ROUNDTRIP);
  check (sc_diff_close (d), "close");
  save ("unflushed-closed", MODE_ROUNDTRIP);
}

static int full_fd = -1;

/* The diff area's filesystem is full: no whole slot for a checkpoint. */
static int
no_space_for_slots (const struct sc_io_req *req)
{
  return req->op == SC_IO_FALLOCATE && req->fd == full_fd &&
         req->len == CHUNK_SIZE && req->off % CHUNK_SIZE == 0 ? -ENOSPC : 0;
}

static int
another_boot (uint8_t id[16])
{
  memset (id, 0xb5, 16);
  return 0;
}

/* A journal continued in place with VOID records (format version 6):
 * the last group's data (a copy, a clone's rewrite and a clone's first
 * write of a chunk) was lost to a power cut, and the open after it found
 * no room for a checkpoint, dropped the three and undid their records
 * (a VOID for the copy, the rewritten chunk's old mapping, a VOID for
 * the clone's new chunk); the copied chunk is then copied again. */
static void
voided (void)
{
  struct sc_diff *d = area_create ();
  struct sc_snapshot_info s = snap (d, "s");
  struct sc_snapshot_info c;
  char err[256];
  check (sc_diff_clone_create (d, "s", "c", &c, err, sizeof err), err);
  copy (d, 1, 0);
  clone_put (d, c.id, 4, 0);
  uint64_t old4;
  if (sc_diff_clone_resolve (d, c.id, 4, &old4) != SC_WHERE_DIFF)
    die ("voided: the clone's write made no slot");
  /* The last group: unsure. */
  (void) copy_uncommitted (d, 2, 0);
  (void) clone_put_uncommitted (d, c.id, 4, 0);
  check (sc_diff_commit (d, clone_put_uncommitted (d, c.id, 6, 0)),
         "sc_diff_commit");
  uint64_t off[3];
  if (sc_diff_resolve (d, s.epoch, 2, &off[0]) != SC_WHERE_DIFF ||
      sc_diff_clone_resolve (d, c.id, 4, &off[1]) != SC_WHERE_DIFF ||
      sc_diff_clone_resolve (d, c.id, 6, &off[2]) != SC_WHERE_DIFF)
    die ("voided: a write made no copy");
  size_t len;
  uint8_t *img = read_area (&len);
  check (sc_diff_close (d), "close");
  for (int i = 0; i < 3; i++)           /* their writes were lost */
    memset (img + off[i], 0xa5, CHUNK_SIZE);
  /* and the rewrite's old slot was not freed yet */
  memset (img + old4, 0, CHUNK_SIZE);
  snprintf ((char *) img + old4, 16, "clone 4");
  int fd = open (area_path, O_WRONLY | O_CLOEXEC);
  if (fd == -1 || pwrite (fd, img, len, 0) != (ssize_t) len)
    die ("%s: %m", area_path);
  free (img);
  full_fd = fd;                         /* the open gets this number */
  close (fd);
  sc_io_fault_hook = no_space_for_slots;
  sc_boot_id_hook = another_boot;
  d = area_open ();
  sc_io_fault_hook = NULL;
  sc_boot_id_hook = NULL;
  copy (d, 2, 0);
  save ("voided-crashed", MODE_ROUNDTRIP);
  check (sc_diff_close (d), "close");
  save ("voided-closed", MODE_ROUNDTRIP);
}

/* A torn tail: half a record past the last valid one, never acknowledged.
 * Raw, it is where replay stops; resealed, it becomes a whole record that
 * makes no sense (a copy of a chunk outside the origin). */
static void
torn_tail (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "before-crash");
  copy (d, 1, 0);
  copy (d, 2, 1);
  size_t len;
  uint8_t *img = read_area (&len);
  check (sc_diff_close (d), "close");

  struct sc_sb_disk sb;
  struct fz_journal_end end;
  if (fz_sb_current (img, len, &sb) < 0)
    die ("torn_tail: no valid superblock");
  fz_journal_walk (img, len, &sb, FZ_WALK_VERIFY, &end);
  struct sc_rec_copy rec = {
    .h = { .crc = 0x12345678, .type = SC_REC_COPY, .len = sizeof rec,
           .seq = end.next_seq },
    .chunk = NCHUNKS + 1, .epoch = 1, .slot = 0, .flags = SC_COPY_F_ZERO,
  };
  if (end.off + sizeof rec > len)
    die ("torn_tail: no room after the journal");
  memcpy (img + end.off, &rec, sizeof rec / 2);
  save_bytes ("torn-tail", MODE_RAW, img, len);
  memcpy (img + end.off, &rec, sizeof rec);
  save_bytes ("torn-tail-resealed", MODE_RESEAL, img, len);
  free (img);
}

/* Superblock copy B damaged: the loader falls back to copy A. */
static void
one_superblock (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "only-a");
  copy (d, 4, 0);
  check (sc_diff_close (d), "close");
  size_t len;
  uint8_t *img = read_area (&len);
  struct sc_sb_disk sb;
  int cur = fz_sb_current (img, len, &sb);
  if (cur < 0)
    die ("one_superblock: no valid superblock");
  memset (img + (size_t) (1 - cur) * SC_SB_SIZE, 0, SC_SB_SIZE);
  save_bytes ("one-superblock", MODE_ROUNDTRIP, img, len);
  free (img);
}

#ifdef SC_DIFF_VOLATILE
/* durability=volatile: after an unclean stop the snapshots are invalid. */
static void
volatile_session (void)
{
  char err[512];
  struct sc_diff *d = area_create ();
  snap (d, "kept");
  copy (d, 0, 0);
  check (sc_diff_close (d), "close");
  check (sc_diff_open (area_path, SC_DIFF_NOWAIT | SC_DIFF_VOLATILE, &origin,
                       0, &d, err, sizeof err), err);
  snap (d, "fast");
  copy (d, 1, 0);
  copy (d, 2, 1);
  check (sc_diff_sync (d), "sync");
  save ("volatile-crashed", MODE_ROUNDTRIP);
  check (sc_diff_close (d), "close");
  save ("volatile-closed", MODE_RESEAL);
}
#endif

/* A revert (format version 4): REVERT with the saved snapshot in the
 * same commit, REVERT_DONE for some chunks, carried by a checkpoint at
 * close, then the rest done and REVERT_END; and one without a saved
 * snapshot (the epoch bump).  The origin is not written: the loader only
 * reads the records. */
static void
revert_active (struct sc_diff *d, const char *what)
{
  struct sc_revert_info ri;
  if (sc_diff_revert_info (d, &ri) < 0 || !ri.active)
    die ("%s: no revert running", what);
}

static void
reverts (void)
{
  struct sc_diff *d = area_create ();
  snap (d, "target");
  copy (d, 1, 0);
  copy (d, 2, 0);
  copy (d, 3, 1);
  snap (d, "later");
  copy (d, 2, 0);
  copy (d, 7, 0);
  copy (d, 8, 1);
  struct sc_revert_info ri;
  check (sc_diff_revert_start (d, "target", "saved", 1u << 20, &ri),
         "revert start");
  if (ri.todo_chunks < 5)
    die ("revert: %" PRIu64 " chunks to do, want 5", ri.todo_chunks);
  save ("revert-started-crashed", MODE_ROUNDTRIP | MODE_DATA_CRC);
  check (sc_diff_revert_done (d, 1, 2), "revert done 1-2");
  check (sc_diff_revert_done (d, 8, 1), "revert done 8");
  save ("revert-crashed", MODE_ROUNDTRIP | MODE_DATA_CRC);
  save ("revert-crashed-salvage", MODE_RAW | MODE_SALVAGE);
  check (sc_diff_close (d), "close");
  save ("revert-closed", MODE_ROUNDTRIP);
  d = area_reopen (area_open ());
  revert_active (d, "revert after a checkpoint");
  check (sc_diff_revert_done (d, 0, NCHUNKS), "revert done all");
  if (sc_diff_revert_finish (d) != 1)
    die ("revert: not finished with every chunk done");
  save ("revert-ended-crashed", MODE_ROUNDTRIP);
  check (sc_diff_close (d), "close");
  save ("revert-ended", MODE_ROUNDTRIP);

  d = area_create ();
  snap (d, "back-here");
  copy (d, 4, 0);
  copy (d, 5, 1);
  check (sc_diff_revert_start (d, "back-here", NULL, 0, &ri),
         "revert start (no saved snapshot)");
  check (sc_diff_revert_done (d, 5, 1), "revert done 5");
  save ("revert-nosave-crashed", MODE_ROUNDTRIP);
  check (sc_diff_close (d), "close");
  d = area_reopen (area_open ());
  revert_active (d, "revert (no saved snapshot) after a reopen");
  check (sc_diff_close (d), "close");
  save ("revert-nosave-reopened", MODE_ROUNDTRIP);
}

static void
cleanup (void)
{
  unlink (area_path);
  unlink (origin_path);
  rmdir (workdir);
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  setenv ("SHADOWCOPY_NO_URING", "1", 0);
  const char *base = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
  snprintf (workdir, sizeof workdir, "%s/shadowcopy-gen-XXXXXX", base);
  if (!mkdtemp (workdir))
    die ("mkdtemp: %m");
  atexit (cleanup);
  snprintf (origin_path, sizeof origin_path, "%s/origin", workdir);
  snprintf (area_path, sizeof area_path, "%s/diffarea", workdir);

  int fd = open (origin_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 || ftruncate (fd, ORIGIN_SIZE) == -1)
    die ("%s: %m", origin_path);
  check (sc_origin_identify (fd, origin_path, &origin), origin_path);
  close (fd);
  /* The seeds should not depend on where they were made. */
  snprintf (origin.path, sizeof origin.path, "/var/lib/shadowcopy/disk.img");

  fresh ();
  snapshots_and_copies ();
  deletions ();
  checkpoints ();
  invalidations ();
  clones ();
  long_journal ();
  names ();
  failed ();
  unflushed ();
  voided ();
  torn_tail ();
  one_superblock ();
  reverts ();
#ifdef SC_DIFF_VOLATILE
  volatile_session ();
#endif
  return 0;
}
