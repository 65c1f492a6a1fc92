/* libFuzzer harness: the diff-area loader (superblock, journal replay,
 * copy index, slot allocator) as the offline CLI runs it.
 *
 * Input: one mode byte, then the bytes of a diff-area file.
 *   bit 0 clear  reseal first (see diffarea-image.h): superblock and
 *                journal-record CRCs are recomputed, so mutations reach
 *                the replay logic instead of dying at a checksum;
 *   bit 1 set    while resealing, also renumber the records;
 *   bit 3 set    while resealing, also recompute the data CRC of each
 *                copy record from its data slot;
 *   bit 2 set    after a successful read-only open, also check that a
 *                read-write open (which writes a checkpoint) and a
 *                read-only reopen of its result see the same snapshots
 *                and copies;
 *   bit 4 set    also salvage it (shadowcopy salvage): nothing to do
 *                when the open accepts it; when the open refuses it, a
 *                salvage that succeeds leaves a diff area that opens,
 *                with the snapshots it marked invalid, and that needs
 *                no second salvage.
 * The other bits are ignored.
 *
 * The image is written to a file in a per-process directory (in /dev/shm
 * when it can, or $FUZZ_TMPDIR) and opened with sc_diff_open(SC_DIFF_RDONLY
 * | SC_DIFF_NOWAIT, origin NULL), which only reads.  An accepted diff area
 * is then queried the way `shadowcopy list/info` and the read path do, and
 * checked with sc_diff_check_with (`shadowcopy check --data`) where the
 * tree has it.
 *
 * Besides the sanitizers, the harness aborts when the library breaks a
 * promise of its headers: an error without a message, a listed snapshot
 * that cannot be found by its name, a copy outside the file, a checkpoint
 * that changes what the diff area holds, or an offline check that
 * disagrees with the open.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/diffarea.h"
#include "tests/fuzz/diffarea-image.h"

/* The offline check (shadowcopy check) loads diff areas too; fuzz it
 * alongside the open where this tree has it. */
#if __has_include("cow/check.h")
# include "cow/check.h"
# define HAVE_CHECK 1
#endif
#if __has_include("cow/salvage.h")
# include "cow/salvage.h"
# define HAVE_SALVAGE 1
#endif

#define MODE_RAW       0x1
#define MODE_RENUMBER  0x2
#define MODE_ROUNDTRIP 0x4
#define MODE_DATA_CRC  0x8
#define MODE_SALVAGE   0x10

/* Chunks whose resolution is compared per snapshot (bounds the cost when
 * a mutated superblock claims a huge origin). */
#define RESOLVE_CHUNKS 64

static char tmpdir[256];
static char area_path[300];
static bool verbose;            /* FUZZ_VERBOSE=1: say what each open did */

static void
remove_tmpdir (void)
{
  unlink (area_path);
  rmdir (tmpdir);
}

static void
die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "fuzz-diffarea: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  remove_tmpdir ();             /* libFuzzer keeps the input itself */
  abort ();
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* Plain pread/pwrite: deterministic, and nothing the kernel writes
   * behind the sanitizers' back. */
  setenv ("SHADOWCOPY_NO_URING", "1", 0);
  verbose = getenv ("FUZZ_VERBOSE") && strcmp (getenv ("FUZZ_VERBOSE"), "0");
  const char *base = getenv ("FUZZ_TMPDIR");
  if (!base)
    base = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf (tmpdir, sizeof tmpdir, "%s/shadowcopy-fuzz-XXXXXX", base);
  if (!mkdtemp (tmpdir))
    die ("mkdtemp %s: %m", tmpdir);
  snprintf (area_path, sizeof area_path, "%s/diffarea", tmpdir);
  atexit (remove_tmpdir);
  return 0;
}

static void
write_image (const uint8_t *img, size_t len)
{
  int fd = open (area_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1)
    die ("%s: %m", area_path);
  for (size_t done = 0; done < len;) {
    ssize_t n = write (fd, img + done, len - done);
    if (n <= 0)
      die ("writing %s: %m", area_path);
    done += (size_t) n;
  }
  close (fd);
}

/* What a diff area holds, as its users see it. */
struct view {
  struct sc_diff_stats st;
  struct sc_snapshot_info *snaps;
  size_t nsnaps;
  /* For each snapshot, where each of its first RESOLVE_CHUNKS chunks is. */
  enum sc_where *where;
  uint64_t *offset;
  size_t nchunks;
  /* CRC32C-like fingerprint of every diff between valid points (and each
   * against the live volume), -errno folded in for refused ones. */
  uint64_t diffs;
};

/* Every diff of valid points, read in small pages: the runs must be
 * sorted, apart, inside the volume and inside the page; their sum goes
 * into the fingerprint, so that the views of two opens can be compared. */
static uint64_t
diff_fingerprint (struct sc_diff *d, const struct sc_snapshot_info *snaps,
                  size_t n, uint64_t nchunks)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i; j <= n; j++) {
      uint64_t to = j == n ? SC_DIFF_LIVE : snaps[j].id;
      uint64_t start = 0;
      for (unsigned pages = 0; start < nchunks; pages++) {
        struct sc_chunk_range r[3];
        size_t k;
        uint64_t next;
        int e = sc_diff_changes (d, snaps[i].id, to, start, r, 3, &k, &next);
        if (e < 0) {
          if (e != -EIO || (snaps[i].invalid_reason == SC_VALID &&
                            (j == n || snaps[j].invalid_reason == SC_VALID)))
            die ("diff %s: %s", snaps[i].name, strerror (-e));
          h = (h ^ (uint64_t) -e) * 1099511628211ull;
          break;
        }
        if (next <= start || next > nchunks || pages > nchunks)
          die ("diff %s: page from %" PRIu64 " goes on at %" PRIu64,
               snaps[i].name, start, next);
        for (size_t m = 0; m < k; m++) {
          if (r[m].first < start || r[m].count == 0 ||
              r[m].first + r[m].count > next ||
              (m && r[m].first <= r[m - 1].first + r[m - 1].count))
            die ("diff %s: bad run %" PRIu64 "+%" PRIu64, snaps[i].name,
                 r[m].first, r[m].count);
          h = (h ^ r[m].first) * 1099511628211ull;
          h = (h ^ r[m].count) * 1099511628211ull;
        }
        start = next;
      }
    }
  return h;
}

static void
view_free (struct view *v)
{
  free (v->snaps);
  free (v->where);
  free (v->offset);
  memset (v, 0, sizeof *v);
}

/* Writable clones (format 4) are listed with the snapshots but have their
 * base's epoch: each is checked here (found by name, its base listed and
 * a snapshot, its own chunks inside the file), then left out of the
 * snapshot checks.  Returns how many entries are left. */
static size_t
check_clones (struct sc_diff *d, struct sc_snapshot_info *s, size_t n,
              uint64_t nchunks, uint64_t file_slots, uint32_t cs)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!s[i].clone) {
      s[k++] = s[i];
      continue;
    }
    struct sc_snapshot_info found, got;
    bool based = false;
    for (size_t j = 0; j < n; j++)
      based |= !s[j].clone && !s[j].checkpoint && s[j].id == s[i].base_id &&
               strcmp (s[j].name, s[i].base_name) == 0;
    if (!based)
      die ("clone %s: its base %s is not a listed snapshot", s[i].name,
           s[i].base_name);
    if (sc_diff_snapshot_find (d, s[i].name, &found) < 0 ||
        found.id != s[i].id || !found.clone)
      die ("listed clone %s not found by name", s[i].name);
    int r = sc_diff_clone_get (d, s[i].id, &got);
    if (r == -EIO && s[i].invalid_reason != SC_VALID)
      continue;
    if (r < 0)
      die ("sc_diff_clone_get %s: %s", s[i].name, strerror (-r));
    for (uint64_t c = 0; c < nchunks; c++) {
      uint64_t off = 0;
      if (sc_diff_clone_resolve (d, s[i].id, c, &off) == SC_WHERE_DIFF &&
          (off % cs || off < SC_SB_AREA || off / cs >= file_slots))
        die ("clone %s chunk %" PRIu64 " resolves to offset %" PRIu64
             " outside the slots of the file", s[i].name, c, off);
    }
    sc_diff_clone_put (d, s[i].id);
  }
  return k;
}

/* Query an open diff area every way the read-only users do, checking the
 * answers against each other. */
static void
view_take (struct sc_diff *d, struct view *v)
{
  memset (v, 0, sizeof *v);
  sc_diff_stats (d, &v->st);
  uint32_t cs = sc_diff_chunk_size (d);
  if (cs < SC_CHUNK_SIZE_MIN || cs > SC_CHUNK_SIZE_MAX || (cs & (cs - 1)))
    die ("chunk size %" PRIu32 " out of range", cs);
  if (v->st.chunk_size != cs)
    die ("stats chunk size %" PRIu32 " != %" PRIu32, v->st.chunk_size, cs);

  int r = sc_diff_snapshot_list (d, &v->snaps, &v->nsnaps);
  if (r < 0)
    die ("sc_diff_snapshot_list: %s", strerror (-r));
  if (v->nsnaps != v->st.snapshots)
    die ("list has %zu snapshots, stats %" PRIu64, v->nsnaps,
         v->st.snapshots);

  uint64_t total_chunks = v->st.volume_size / cs +
                          (v->st.volume_size % cs != 0);
  v->nchunks = total_chunks < RESOLVE_CHUNKS ? total_chunks : RESOLVE_CHUNKS;
  v->nsnaps = check_clones (d, v->snaps, v->nsnaps, v->nchunks,
                            v->st.file_bytes / cs +
                            (v->st.file_bytes % cs != 0), cs);
  size_t cells = v->nsnaps * v->nchunks;
  v->where = calloc (cells + 1, sizeof *v->where);
  v->offset = calloc (cells + 1, sizeof *v->offset);
  if (!v->where || !v->offset)
    die ("out of memory");

  uint64_t file_slots = v->st.file_bytes / cs + (v->st.file_bytes % cs != 0);
  for (size_t i = 0; i < v->nsnaps; i++) {
    const struct sc_snapshot_info *s = &v->snaps[i];
    struct sc_snapshot_info found;
    if (!sc_snapshot_name_valid (s->name))
      die ("listed snapshot %" PRIu64 " has an invalid name", s->id);
    if (i > 0 && (s->id <= v->snaps[i - 1].id ||
                  s->epoch <= v->snaps[i - 1].epoch))
      die ("snapshots not in id and epoch order at %zu", i);
    r = sc_diff_snapshot_find (d, s->name, &found);
    if (r < 0 || found.id != s->id)
      die ("listed snapshot %s not found by name", s->name);

    struct sc_snapshot_info got;
    r = sc_diff_snapshot_get (d, s->id, &got);
    if (s->checkpoint) {
      if (r != -ENOENT)
        die ("checkpoint %s pinned for reading: %d", s->name, r);
      continue;
    }
    if (r == -EIO) {
      if (s->invalid_reason == SC_VALID)
        die ("valid snapshot %s refused with EIO", s->name);
      (void) sc_invalid_reason_text (s->invalid_reason);
      continue;
    }
    if (r < 0)
      die ("sc_diff_snapshot_get %s: %s", s->name, strerror (-r));
    for (size_t c = 0; c < v->nchunks; c++) {
      uint64_t off = 0;
      enum sc_where w = sc_diff_resolve (d, s->epoch, c, &off);
      if (w == SC_WHERE_DIFF &&
          (off % cs || off < SC_SB_AREA || off / cs >= file_slots))
        die ("snapshot %s chunk %zu resolves to offset %" PRIu64
             " outside the slots of the file (%" PRIu64 " bytes)",
             s->name, c, off, v->st.file_bytes);
      v->where[i * v->nchunks + c] = w;
      v->offset[i * v->nchunks + c] = w == SC_WHERE_DIFF ? off : 0;
    }
    sc_diff_snapshot_put (d, s->id);
  }
  for (uint64_t c = 0; c < v->nchunks; c++)
    (void) sc_diff_needs_copy (d, c);
  v->diffs = diff_fingerprint (d, v->snaps, v->nsnaps, total_chunks);
}

/* `damage`: the read-write open found damaged copies (at the end of the
 * journal after a crash in this boot) and marked their snapshots, as the
 * read-only open did in memory; but only it could free them, and the
 * next open drops every copy only invalid snapshots needed.  So copy
 * counts and the used bytes of invalid snapshots may differ; nothing
 * about the valid snapshots may. */
static bool
info_equal (const struct sc_snapshot_info *a, const struct sc_snapshot_info *b,
            bool damage)
{
  return a->id == b->id && a->epoch == b->epoch &&
         strcmp (a->name, b->name) == 0 && a->ctime_ns == b->ctime_ns &&
         a->volume_size == b->volume_size &&
         a->invalid_reason == b->invalid_reason &&
         a->invalid_errno == b->invalid_errno &&
         a->invalid_chunk == b->invalid_chunk &&
         a->checkpoint == b->checkpoint &&
         memcmp (a->uuid, b->uuid, sizeof a->uuid) == 0 &&
         (a->used_bytes == b->used_bytes ||
          (damage && a->invalid_reason != SC_VALID));
}

static void
view_compare (const struct view *a, const struct view *b, const char *what,
              bool damage)
{
  if (a->st.epoch != b->st.epoch ||
      (!damage && (a->st.copies != b->st.copies ||
                    a->st.data_slots != b->st.data_slots)) ||
      a->st.volume_size != b->st.volume_size ||
      a->st.chunk_size != b->st.chunk_size ||
      memcmp (a->st.uuid, b->st.uuid, 16) != 0)
    die ("%s: stats differ (epoch %" PRIu32 "/%" PRIu32 ", copies %" PRIu64
         "/%" PRIu64 ", data slots %" PRIu64 "/%" PRIu64 ")", what,
         a->st.epoch, b->st.epoch, a->st.copies, b->st.copies,
         a->st.data_slots, b->st.data_slots);
  if (a->nsnaps != b->nsnaps)
    die ("%s: %zu snapshots before, %zu after", what, a->nsnaps, b->nsnaps);
  for (size_t i = 0; i < a->nsnaps; i++)
    if (!info_equal (&a->snaps[i], &b->snaps[i], damage))
      die ("%s: snapshot %zu (%s) differs", what, i, a->snaps[i].name);
  size_t cells = a->nsnaps * a->nchunks;
  if (a->nchunks != b->nchunks ||
      memcmp (a->where, b->where, cells * sizeof *a->where) != 0 ||
      memcmp (a->offset, b->offset, cells * sizeof *a->offset) != 0)
    die ("%s: a snapshot resolves a chunk differently", what);
  if (!damage && a->diffs != b->diffs)
    die ("%s: the changes between snapshots differ", what);
}

static int
open_area (unsigned flags, struct sc_diff **d)
{
  char err[1024] = "";
  int r = sc_diff_open (area_path, flags | SC_DIFF_NOWAIT, NULL, 0, d, err,
                        sizeof err);
  if (r > 0)
    die ("sc_diff_open returned %d", r);
  if (r < 0 && err[0] == '\0')
    die ("sc_diff_open failed (%s) without a message", strerror (-r));
  if (r < 0 && memchr (err, '\n', strlen (err)))
    die ("sc_diff_open message spans lines: %s", err);
  if (verbose)
    fprintf (stderr, "fuzz-diffarea: %s open: %s\n",
             flags & SC_DIFF_RDONLY ? "read-only" : "read-write",
             r < 0 ? err : "accepted");
  return r;
}

/* The checkpoint a read-write open writes must hold exactly what the
 * journal it replaced held. */
static void
roundtrip (const struct view *before)
{
  struct sc_diff *d;
  struct view rw, after;
  int r = open_area (0, &d);
  if (r < 0)
    die ("read-only open succeeded, read-write open failed: %s",
         strerror (-r));
  view_take (d, &rw);
  r = sc_diff_close (d);
  if (r < 0)
    die ("sc_diff_close after the checkpoint: %s", strerror (-r));
  bool damage = rw.st.checksum_errors > 0;
  view_compare (before, &rw, "read-write open", damage);
  view_free (&rw);

  r = open_area (SC_DIFF_RDONLY, &d);
  if (r < 0)
    die ("reopening after the checkpoint failed: %s", strerror (-r));
  view_take (d, &after);
  sc_diff_close (d);
  view_compare (before, &after, "reopen after checkpoint", damage);
  view_free (&after);
}

#ifdef HAVE_CHECK
/* The offline check must agree with the open: it loads what the open
 * loads (with the same counts), and reports what the open refuses as
 * damage.  `opened` is the read-only open's result, `v` its view. */
static void
check_offline (int opened, const struct view *v)
{
  struct sc_check_report rep;
  char err[1024] = "";
  memset (&rep, 0, sizeof rep);
  /* With the data: every copy is read back and verified (check --data). */
  int r = sc_diff_check_with (area_path, SC_CHECK_DATA, &rep, err,
                              sizeof err);
  if (r < 0) {
    if (err[0] == '\0')
      die ("sc_diff_check failed (%s) without a message", strerror (-r));
    if (opened == 0 || r != opened)
      die ("sc_diff_check failed (%s: %s), the open said %s", strerror (-r),
           err, opened == 0 ? "accepted" : strerror (-opened));
    return;
  }
  if (rep.loaded != (opened == 0))
    die ("sc_diff_check %s the diff area, the open %s it",
         rep.loaded ? "loaded" : "did not load",
         opened == 0 ? "accepted" : "refused");
  if (!rep.loaded && rep.damage == 0)
    die ("the open refuses the diff area, the check finds no damage");
  if (rep.loaded &&
      (rep.snapshots + rep.clones != v->st.snapshots ||
       rep.clones != v->st.clones || rep.copies != v->st.copies ||
       rep.epoch != v->st.epoch || rep.data_slots != v->st.data_slots ||
       rep.snapshots_valid + rep.snapshots_invalid != rep.snapshots ||
       rep.clones_valid + rep.clones_invalid != rep.clones))
    die ("sc_diff_check counts differ from the open's");
  if (rep.nfindings > SC_CHECK_FINDINGS_MAX ||
      rep.nfindings > rep.damage + rep.warnings ||
      (rep.nfindings < SC_CHECK_FINDINGS_MAX &&
       rep.nfindings != rep.damage + rep.warnings))
    die ("sc_diff_check keeps %zu findings of %zu", rep.nfindings,
         rep.damage + rep.warnings);
  for (size_t i = 0; i < rep.nfindings; i++) {
    const struct sc_check_finding *f = &rep.findings[i];
    size_t len = strnlen (f->what, sizeof f->what);
    if (len == 0 || len == sizeof f->what || memchr (f->what, '\n', len))
      die ("finding %zu is not one line", i);
    if (f->severity != SC_CHECK_WARNING && f->severity != SC_CHECK_DAMAGE)
      die ("finding %zu has severity %d", i, (int) f->severity);
  }
  sc_check_report_free (&rep);
}
#endif

#ifdef HAVE_SALVAGE
/* Salvage the image; `opened` is the read-only open's result. */
static void
salvage (int opened)
{
  struct sc_salvage_report rep;
  char err[1024] = "";
  int r = sc_diff_salvage (area_path, &rep, err, sizeof err);
  if (r < 0) {
    if (err[0] == '\0')
      die ("sc_diff_salvage failed (%s) without a message", strerror (-r));
    if (opened == 0)
      die ("sc_diff_salvage of a diff area that opens failed: %s", err);
    return;
  }
  if (rep.needed != (opened != 0))
    die ("salvage was %sneeded, but the open %s the diff area",
         rep.needed ? "" : "not ", opened ? "refused" : "accepted");
  if (rep.nlosses > rep.nlosses_total || rep.nlosses > SC_SALVAGE_LOSSES_MAX)
    die ("salvage keeps %zu losses of %" PRIu64, rep.nlosses,
         rep.nlosses_total);
  for (size_t i = 0; i < rep.nsnaps; i++)
    if (rep.snaps[i].marked && rep.snaps[i].reason != SC_INVALID_SALVAGED)
      die ("salvage marked snapshot %s, which is %s", rep.snaps[i].name,
           sc_invalid_reason_text (rep.snaps[i].reason));
  bool needed = rep.needed;
  sc_salvage_report_free (&rep);
  if (!needed)
    return;
  struct sc_diff *d;
  r = open_area (SC_DIFF_RDONLY, &d);
  if (r < 0)
    die ("the salvaged diff area is refused: %s", strerror (-r));
  struct view v;
  view_take (d, &v);
  sc_diff_close (d);
  view_free (&v);
  r = sc_diff_salvage (area_path, &rep, err, sizeof err);
  if (r < 0 || rep.needed)
    die ("a second salvage %s", r < 0 ? err : "found more to do");
  sc_salvage_report_free (&rep);
}
#endif

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return -1;
  unsigned mode = data[0];
  size_t len = size - 1;
  uint8_t *img = malloc (len + 1);
  if (!img)
    die ("out of memory");
  memcpy (img, data + 1, len);
  if (!(mode & MODE_RAW))
    fz_image_reseal (img, len,
                     (mode & MODE_RENUMBER ? FZ_WALK_RENUMBER : 0) |
                     (mode & MODE_DATA_CRC ? FZ_WALK_DATA_CRC : 0));
  write_image (img, len);
  free (img);

  struct sc_diff *d;
  int opened = open_area (SC_DIFF_RDONLY, &d);
  if (opened < 0) {
#ifdef HAVE_CHECK
    check_offline (opened, NULL);
#endif
#ifdef HAVE_SALVAGE
    if (mode & MODE_SALVAGE)
      salvage (opened);
#endif
    return 0;
  }
  struct view before;
  view_take (d, &before);
  for (size_t i = 0; verbose && i < before.nsnaps; i++)
    fprintf (stderr, "fuzz-diffarea:   snapshot id %" PRIu64 " epoch %" PRIu32
             " %s (%s)\n", before.snaps[i].id, before.snaps[i].epoch,
             before.snaps[i].name,
             sc_invalid_reason_text (before.snaps[i].invalid_reason));
  int r = sc_diff_close (d);
  if (r < 0)
    die ("sc_diff_close of a read-only open: %s", strerror (-r));
#ifdef HAVE_CHECK
  check_offline (0, &before);
#endif
  if (mode & MODE_ROUNDTRIP)
    roundtrip (&before);
#ifdef HAVE_SALVAGE
  if (mode & MODE_SALVAGE)
    salvage (0);
#endif
  view_free (&before);
  return 0;
}
