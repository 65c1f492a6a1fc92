/* Unit tests: opening and closing a diff area (cow/diffarea.c): the round
 * trip of what one session records (snapshots, copies, counters), after
 * close and reopen, read-write and read-only; default names; chunk sizes;
 * the lock. */
#include <config.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/diffarea.h"
#include "cow/io.h"
#include "tests/unit-helpers.h"

TestSuite (diffarea, .init = uh_setup, .fini = uh_teardown);

/* ---- a picture of a diff area, to compare two sessions -------------- */

struct picture {
  struct sc_diff_stats st;
  struct sc_snapshot_info *snaps;
  size_t nsnaps;
  /* per snapshot, per chunk: where it resolves and the slot offset */
  enum sc_where *where;
  uint64_t *off;
  uint64_t nchunks;
};

static void
take_picture (struct sc_diff *d, struct picture *p)
{
  memset (p, 0, sizeof *p);
  sc_diff_stats (d, &p->st);
  cr_assert_eq (sc_diff_snapshot_list (d, &p->snaps, &p->nsnaps), 0);
  p->nchunks = (p->st.volume_size + p->st.chunk_size - 1) / p->st.chunk_size;
  p->where = calloc (p->nsnaps * p->nchunks + 1, sizeof *p->where);
  p->off = calloc (p->nsnaps * p->nchunks + 1, sizeof *p->off);
  for (size_t s = 0; s < p->nsnaps; s++)
    for (uint64_t c = 0; c < p->nchunks; c++) {
      uint64_t off = UINT64_MAX;
      enum sc_where w = sc_diff_resolve (d, p->snaps[s].epoch, c, &off);
      p->where[s * p->nchunks + c] = w;
      p->off[s * p->nchunks + c] = w == SC_WHERE_DIFF ? off : 0;
    }
}

static void
free_picture (struct picture *p)
{
  free (p->snaps);
  free (p->where);
  free (p->off);
}

/* The state a diff area must keep across sessions.  The journal's own
 * layout (journal_slots, journal_records, free_slots, file_bytes) is
 * rewritten by the checkpoint of every read-write open, so it is not
 * compared. */
static void
assert_same_picture (const struct picture *a, const struct picture *b,
                     const char *what)
{
  cr_assert_eq (a->st.volume_size, b->st.volume_size, "%s: volume_size", what);
  cr_assert_eq (a->st.chunk_size, b->st.chunk_size, "%s: chunk_size", what);
  cr_assert_eq (a->st.snapshots, b->st.snapshots, "%s: snapshots", what);
  cr_assert_eq (a->st.copies, b->st.copies, "%s: copies", what);
  cr_assert_eq (a->st.data_slots, b->st.data_slots, "%s: data_slots", what);
  cr_assert_eq (a->st.epoch, b->st.epoch, "%s: epoch", what);
  cr_assert_arr_eq (a->st.uuid, b->st.uuid, 16, "%s: uuid", what);
  cr_assert_eq (a->st.origin.size, b->st.origin.size, "%s", what);
  cr_assert_eq (a->st.origin.dev, b->st.origin.dev, "%s", what);
  cr_assert_eq (a->st.origin.ino, b->st.origin.ino, "%s", what);
  cr_assert_eq (a->st.origin.type, b->st.origin.type, "%s", what);
  cr_assert_str_eq (a->st.origin.path, b->st.origin.path, "%s", what);

  cr_assert_eq (a->nsnaps, b->nsnaps, "%s: number of snapshots", what);
  for (size_t i = 0; i < a->nsnaps; i++) {
    const struct sc_snapshot_info *x = &a->snaps[i], *y = &b->snaps[i];
    cr_assert_eq (x->id, y->id, "%s: snapshot %zu id", what, i);
    cr_assert_str_eq (x->name, y->name, "%s: snapshot %zu name", what, i);
    cr_assert_eq (x->epoch, y->epoch, "%s: %s epoch", what, x->name);
    cr_assert_eq (x->ctime_ns, y->ctime_ns, "%s: %s ctime", what, x->name);
    cr_assert_eq (x->volume_size, y->volume_size, "%s: %s size", what,
                  x->name);
    cr_assert_eq (x->invalid_reason, y->invalid_reason, "%s: %s validity",
                  what, x->name);
    cr_assert_eq (x->invalid_errno, y->invalid_errno, "%s: %s errno", what,
                  x->name);
    cr_assert_eq (x->invalid_chunk, y->invalid_chunk, "%s: %s chunk", what,
                  x->name);
    cr_assert_eq (x->used_bytes, y->used_bytes, "%s: %s used_bytes", what,
                  x->name);
  }
  for (size_t s = 0; s < a->nsnaps; s++)
    for (uint64_t c = 0; c < a->nchunks; c++) {
      size_t k = s * a->nchunks + c;
      cr_assert_eq (a->where[k], b->where[k], "%s: %s chunk %lu resolves "
                    "elsewhere", what, a->snaps[s].name, (unsigned long) c);
      cr_assert_eq (a->off[k], b->off[k], "%s: %s chunk %lu slot", what,
                    a->snaps[s].name, (unsigned long) c);
    }
}

/* A session with some of everything: named and default-named snapshots,
 * data copies and zero copies across several epochs, the partial last
 * chunk, a deletion that frees a copy, and an invalid snapshot.  Each data
 * copy holds uh_pattern(tag) for its own tag.
 *
 *   snapshot  epoch  then copied (in the next epoch)
 *   first       1    0 (1000), 1 (1001), 2 (zero)
 *   (default)   2    0 (2000), last chunk (2001)
 *   third       3    3 (3000), 1 (3001)
 *   doomed      4    4 (4000), 5 (4002), 3 (4001: only doomed needs it)
 *   broken      5    invalidated for chunk 5
 *   last        6    6 (6000)
 * and then doomed is deleted. */
static void
populate (struct uh_area *a)
{
  struct sc_diff *d = a->d;
  uint64_t nchunks = (a->origin_size + a->chunk_size - 1) / a->chunk_size;
  cr_assert_geq (nchunks, 9);

  uh_snap (d, "first");
  uh_copy_chunk (d, 0, 1000);
  uh_copy_chunk (d, 1, 1001);
  uh_copy_zero (d, 2);
  uh_snap (d, NULL);
  uh_copy_chunk (d, 0, 2000);
  uh_copy_chunk (d, nchunks - 1, 2001);
  uh_snap (d, "third:with+odd.chars-");
  uh_copy_chunk (d, 3, 3000);
  uh_copy_chunk (d, 1, 3001);
  uh_snap (d, "doomed");
  uh_copy_chunk (d, 4, 4000);
  uh_copy_chunk (d, 5, 4002);
  uh_copy_chunk (d, 3, 4001);
  uh_snap (d, "broken");
  cr_assert_eq (sc_diff_invalidate_chunk (d, 5, SC_INVALID_COPY_WRITE, EIO),
                0);
  uh_snap (d, "last");
  uh_copy_chunk (d, 6, 6000);
  uint64_t data_before = uh_stats (d).data_slots;
  cr_assert_eq (sc_diff_snapshot_delete (d, "doomed"), 0);
  cr_assert_eq (uh_stats (d).data_slots, data_before - 1,
                "deleting doomed frees the copy only it needed");
  struct sc_snapshot_info b = uh_find (d, "broken");
  cr_assert_eq (b.invalid_reason, SC_INVALID_COPY_WRITE);
  cr_assert_eq (uh_find (d, "last").invalid_reason, SC_VALID);
  cr_assert_eq (uh_find (d, "first").invalid_reason, SC_VALID);
}

/* Every data copy still holds what was written to one. */
static void
assert_slot_contents (struct sc_diff *d, const struct picture *p)
{
  static const uint64_t tags[] = { 1000, 1001, 2000, 2001, 3000, 3001,
                                   4000, 4002, 6000 };
  uint32_t cs = p->st.chunk_size;
  uint8_t *buf = malloc (cs), *want = malloc (cs);
  for (size_t k = 0; k < p->nsnaps * p->nchunks; k++) {
    if (p->where[k] != SC_WHERE_DIFF)
      continue;
    cr_assert_eq (pread (sc_diff_fd (d), buf, cs, p->off[k]), (ssize_t) cs);
    bool ok = false;
    for (size_t t = 0; t < sizeof tags / sizeof tags[0] && !ok; t++) {
      uh_pattern (want, cs, tags[t], 0);
      ok = memcmp (buf, want, cs) == 0;
    }
    cr_assert (ok, "slot at offset %lu holds unknown data",
               (unsigned long) p->off[k]);
  }
  free (buf);
  free (want);
}

/* The expected resolution of the populated area, by the model of
 * diffarea.h: a snapshot of epoch e sees the oldest copy made in an epoch
 * after e, or the origin. */
static void
assert_populated_resolution (struct sc_diff *d, uint64_t nchunks)
{
  const uint64_t LAST = nchunks - 1;
  struct {
    const char *snap;           /* NULL: the default-named one */
    uint64_t chunk;
    enum sc_where where;
    uint64_t tag;
  } want[] = {
    { "first", 0, SC_WHERE_DIFF, 1000 },
    { "first", 1, SC_WHERE_DIFF, 1001 },
    { "first", 2, SC_WHERE_ZERO, 0 },
    { "first", 3, SC_WHERE_DIFF, 3000 },
    { "first", 4, SC_WHERE_DIFF, 4000 },
    { "first", 5, SC_WHERE_DIFF, 4002 },
    { "first", 6, SC_WHERE_DIFF, 6000 },
    { "first", 7, SC_WHERE_ORIGIN, 0 },
    { "first", LAST, SC_WHERE_DIFF, 2001 },
    { NULL, 0, SC_WHERE_DIFF, 2000 },
    { NULL, 1, SC_WHERE_DIFF, 3001 },
    { NULL, 2, SC_WHERE_ORIGIN, 0 },
    { NULL, 3, SC_WHERE_DIFF, 3000 },
    { NULL, LAST, SC_WHERE_DIFF, 2001 },
    { "third:with+odd.chars-", 0, SC_WHERE_ORIGIN, 0 },
    { "third:with+odd.chars-", 1, SC_WHERE_DIFF, 3001 },
    { "third:with+odd.chars-", 2, SC_WHERE_ORIGIN, 0 },
    { "third:with+odd.chars-", 3, SC_WHERE_DIFF, 3000 },
    { "third:with+odd.chars-", 4, SC_WHERE_DIFF, 4000 },
    { "third:with+odd.chars-", 6, SC_WHERE_DIFF, 6000 },
    { "third:with+odd.chars-", LAST, SC_WHERE_ORIGIN, 0 },
    { "last", 0, SC_WHERE_ORIGIN, 0 },
    { "last", 3, SC_WHERE_ORIGIN, 0 },
    { "last", 6, SC_WHERE_DIFF, 6000 },
  };
  uint32_t first_epoch = uh_find (d, "first").epoch;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    uint32_t epoch = want[i].snap ? uh_find (d, want[i].snap).epoch
                                  : first_epoch + 1;
    const char *name = want[i].snap ? want[i].snap : "(default)";
    uint64_t off = 0;
    enum sc_where w = sc_diff_resolve (d, epoch, want[i].chunk, &off);
    cr_assert_eq (w, want[i].where, "%s chunk %lu: where %d, want %d",
                  name, (unsigned long) want[i].chunk, w, want[i].where);
    if (w == SC_WHERE_DIFF)
      uh_assert_slot_data (d, off, want[i].tag);
  }
}

static void
round_trip (uint32_t chunk_size, uint64_t origin_size)
{
  struct uh_area a;
  uh_area_create (&a, origin_size, chunk_size, 77);
  populate (&a);
  uint64_t nchunks = (origin_size + chunk_size - 1) / chunk_size;
  assert_populated_resolution (a.d, nchunks);

  struct picture before, after;
  take_picture (a.d, &before);
  cr_assert_eq (before.nsnaps, 5);
  cr_assert_eq (before.st.chunk_size, chunk_size);
  cr_assert_eq (before.st.volume_size, origin_size);
  assert_slot_contents (a.d, &before);

  uh_area_reopen (&a, 0);
  take_picture (a.d, &after);
  assert_same_picture (&before, &after, "read-write reopen");
  assert_populated_resolution (a.d, nchunks);
  free_picture (&after);

  uh_area_reopen (&a, SC_DIFF_RDONLY);
  take_picture (a.d, &after);
  assert_same_picture (&before, &after, "read-only reopen");
  assert_populated_resolution (a.d, nchunks);
  free_picture (&after);

  /* A second read-write session (a second checkpoint) changes nothing. */
  uh_area_reopen (&a, 0);
  uh_area_reopen (&a, 0);
  take_picture (a.d, &after);
  assert_same_picture (&before, &after, "second read-write reopen");
  free_picture (&after);

  free_picture (&before);
  uh_area_free (&a);
}

Test (diffarea, round_trip_with_4k_chunks)
{
  round_trip (4096, 64 * 4096 + 1000);
}

Test (diffarea, round_trip_with_64k_chunks)
{
  round_trip (65536, 16 * 65536 + 12345);
}

Test (diffarea, round_trip_with_1m_chunks)
{
  round_trip (1 << 20, 8 * (1 << 20) + 4096);
}

Test (diffarea, default_chunk_size_is_recorded)
{
  struct uh_area a;
  uh_area_create (&a, 4 << 20, 0, 1);
  cr_assert_eq (a.chunk_size, SC_CHUNK_SIZE_DEFAULT);
  uh_area_reopen (&a, 0);
  cr_assert_eq (sc_diff_chunk_size (a.d), SC_CHUNK_SIZE_DEFAULT);
  uh_area_free (&a);
}

Test (diffarea, snapshot_fields_round_trip)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  /* CLOCK_REALTIME, as the diff area: time(2) is the kernel's coarse
   * clock, a tick behind it, so a snapshot made just after a second
   * began could be "after" time(NULL) + 1 read a moment later. */
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  uint64_t t0 = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
  struct sc_snapshot_info s1 = uh_snap (a.d, "alpha");
  struct sc_snapshot_info s2 = uh_snap (a.d, "beta");
  clock_gettime (CLOCK_REALTIME, &ts);
  uint64_t t1 = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;

  cr_assert_eq (s1.id + 1, s2.id, "ids count up");
  cr_assert_eq (s1.epoch + 1, s2.epoch, "each snapshot ends an epoch");
  cr_assert (s1.ctime_ns >= t0 && s1.ctime_ns <= t1, "ctime is now, in ns");
  cr_assert_leq (s1.ctime_ns, s2.ctime_ns);
  cr_assert_eq (s1.volume_size, 1 << 20);
  cr_assert_eq (s1.invalid_reason, SC_VALID);
  cr_assert_eq (uh_stats (a.d).epoch, s2.epoch + 1);

  uh_area_reopen (&a, SC_DIFF_RDONLY);
  struct sc_snapshot_info r1 = uh_find (a.d, "alpha");
  struct sc_snapshot_info r2 = uh_find (a.d, "beta");
  cr_assert_eq (r1.id, s1.id);
  cr_assert_eq (r1.epoch, s1.epoch);
  cr_assert_eq (r1.ctime_ns, s1.ctime_ns);
  cr_assert_eq (r2.id, s2.id);
  cr_assert_eq (r2.epoch, s2.epoch);
  cr_assert_eq (r2.ctime_ns, s2.ctime_ns);
  cr_assert_eq (uh_stats (a.d).epoch, s2.epoch + 1);
  uh_area_free (&a);
}

Test (diffarea, new_diff_area_is_empty)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.snapshots, 0);
  cr_assert_eq (st.copies, 0);
  cr_assert_eq (st.data_slots, 0);
  cr_assert_geq (st.journal_slots, 1);
  cr_assert_eq (st.volume_size, 1 << 20);
  cr_assert_eq (st.origin.size, a.id.size);
  cr_assert_eq (st.origin.ino, a.id.ino);
  cr_assert_eq (st.origin.dev, a.id.dev);
  cr_assert_eq (st.origin.type, SC_ORIGIN_FILE);
  static const uint8_t zero[16];
  cr_assert (memcmp (st.uuid, zero, 16) != 0, "a volume uuid is set");
  cr_assert_leq (st.used_bytes, st.file_bytes);
  uh_area_reopen (&a, 0);
  cr_assert_eq (uh_stats (a.d).snapshots, 0);
  uh_area_free (&a);
}

/* The format: a new diff area's journal starts at record 1 (sequence
 * number 0 is never written), in either superblock copy. */
Test (diffarea, new_journal_starts_at_record_1)
{
  struct uh_area a;
  struct sc_sb_disk sb;
  uh_area_create (&a, 1 << 20, 4096, 1);
  uh_area_close (&a);
  uh_sb_newest (a.diff_path, &sb);
  cr_assert_eq (sb.journal_seq, 1, "journal starts at record %lu",
                (unsigned long) sb.journal_seq);
  uh_area_open (&a, 0);
  uh_area_free (&a);
}

Test (diffarea, two_diff_areas_get_different_uuids)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  char *other = uh_path ("other-diff");
  struct sc_diff *d2;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (other, SC_DIFF_CREATE, &a.id, 4096, &d2, err,
                              sizeof err), 0, "%s", err);
  struct sc_diff_stats s1 = uh_stats (a.d), s2 = uh_stats (d2);
  cr_assert (memcmp (s1.uuid, s2.uuid, 16) != 0);
  cr_assert_eq (sc_diff_close (d2), 0);
  free (other);
  uh_area_free (&a);
}

/* ---- default names -------------------------------------------------- */

Test (diffarea, default_names_are_iso8601_utc_and_unique_in_a_burst)
{
  enum { N = 40 };
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  regex_t re;
  cr_assert_eq (regcomp (&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                         "[0-9]{2}(\\.[0-9]+)?Z(\\+[0-9]+)?$",
                         REG_EXTENDED | REG_NOSUB), 0);
  struct sc_snapshot_info s[N];
  for (int i = 0; i < N; i++)
    s[i] = uh_snap (a.d, NULL);
  for (int i = 0; i < N; i++) {
    cr_assert_eq (regexec (&re, s[i].name, 0, NULL, 0), 0,
                  "default name \"%s\" is not ISO 8601 UTC", s[i].name);
    cr_assert (sc_snapshot_name_valid (s[i].name), "%s", s[i].name);
    /* The name is the creation time, to the second at least. */
    time_t t = (time_t) (s[i].ctime_ns / 1000000000u);
    struct tm tm;
    char want[32];
    gmtime_r (&t, &tm);
    strftime (want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert (strncmp (s[i].name, want, strlen (want)) == 0,
               "name %s, created at %s", s[i].name, want);
    for (int j = 0; j < i; j++)
      cr_assert_str_neq (s[i].name, s[j].name, "two snapshots named %s",
                         s[i].name);
  }
  regfree (&re);

  /* Default names come back from disk as they were. */
  uh_area_reopen (&a, 0);
  for (int i = 0; i < N; i++)
    cr_assert_eq (uh_find (a.d, s[i].name).id, s[i].id);
  /* And a new one is still unique after a reopen. */
  struct sc_snapshot_info more = uh_snap (a.d, NULL);
  for (int i = 0; i < N; i++)
    cr_assert_str_neq (more.name, s[i].name);
  uh_area_free (&a);
}

/* ---- chunk sizes ---------------------------------------------------- */

Test (diffarea, reopening_with_another_chunk_size_fails)
{
  struct uh_area a;
  uh_area_create (&a, 4 << 20, 65536, 1);
  uh_snap (a.d, "keep");
  uh_area_close (&a);
  size_t n0;
  uint8_t *before = uh_read_file (a.diff_path, &n0);

  struct sc_diff *d = NULL;
  char err[512] = "";
  int r = sc_diff_open (a.diff_path, 0, &a.id, 4096, &d, err, sizeof err);
  cr_assert_eq (r, -EINVAL, "reopening 64K chunks as 4K: %d", r);
  cr_assert_null (d);
  cr_assert (strstr (err, "chunk size") != NULL, "message: %s", err);
  err[0] = '\0';
  r = sc_diff_open (a.diff_path, SC_DIFF_RDONLY, &a.id, 1 << 20, &d, err,
                    sizeof err);
  cr_assert_eq (r, -EINVAL, "reopening 64K chunks as 1M: %d", r);
  cr_assert_neq (err[0], '\0');

  size_t n1;
  uint8_t *after = uh_read_file (a.diff_path, &n1);
  cr_assert_eq (n0, n1);
  cr_assert_arr_eq (before, after, n0, "a refused open changed the file");
  free (before);
  free (after);

  /* The same size, given explicitly, or none at all, is fine. */
  r = sc_diff_open (a.diff_path, 0, &a.id, 65536, &d, err, sizeof err);
  cr_assert_eq (r, 0, "%s", err);
  cr_assert_eq (sc_diff_close (d), 0);
  uh_area_open (&a, 0);
  cr_assert_eq (uh_find (a.d, "keep").epoch, 1);
  uh_area_free (&a);
}

Test (diffarea, invalid_chunk_sizes_are_refused)
{
  uint32_t bad[] = { 1, 512, 2048, 4095, 4097, 65535, 3 * 4096,
                     2u << 20, 1u << 31 };
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, 4 << 20, 1);
  struct uh_area a = { 0 };
  int fd = open (origin, O_RDONLY);
  cr_assert_eq (sc_origin_identify (fd, origin, &a.id), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct sc_diff *d = NULL;
    char err[512] = "";
    int r = sc_diff_open (diff, SC_DIFF_CREATE, &a.id, bad[i], &d, err,
                          sizeof err);
    cr_assert_eq (r, -EINVAL, "chunk size %u: %d", bad[i], r);
    cr_assert_neq (err[0], '\0');
    cr_assert_eq (access (diff, F_OK), -1, "chunk size %u left a file",
                  bad[i]);
  }
  close (fd);
  free (origin);
  free (diff);
}

Test (diffarea, origin_smaller_than_one_chunk_is_refused)
{
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, 65535, 1);
  int fd = open (origin, O_RDONLY);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (fd, origin, &id), 0);
  struct sc_diff *d = NULL;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, &id, 65536, &d, err,
                              sizeof err), -EINVAL);
  cr_assert (strstr (err, "smaller than one chunk") != NULL, "%s", err);
  cr_assert_eq (access (diff, F_OK), -1, "no diff area is left behind");
  /* The default chunk size too. */
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, &id, 0, &d, err,
                              sizeof err), -EINVAL);
  cr_assert_eq (access (diff, F_OK), -1);
  close (fd);
  free (origin);
  free (diff);
}

Test (diffarea, missing_file_without_create_is_enoent)
{
  char *diff = uh_path ("nothing-here");
  struct sc_diff *d = NULL;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, 0, NULL, 0, &d, err, sizeof err),
                -ENOENT);
  cr_assert (strstr (err, diff) != NULL, "the message names the path: %s",
             err);
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_RDONLY | SC_DIFF_CREATE, NULL, 0,
                              &d, err, sizeof err), -ENOENT,
                "a read-only open never creates");
  cr_assert_eq (access (diff, F_OK), -1);
  free (diff);
}

/* ---- read-only opens ------------------------------------------------- */

Test (diffarea, read_only_open_changes_nothing_and_refuses_writes)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  uh_snap (a.d, "s");
  uh_copy_chunk (a.d, 3, 5);
  uh_area_close (&a);
  size_t n0, n1;
  uint8_t *before = uh_read_file (a.diff_path, &n0);

  uh_area_open (&a, SC_DIFF_RDONLY);
  uint64_t off;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "t", NULL, NULL), -EROFS);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s"), -EROFS);
  cr_assert_eq (sc_diff_slot_reserve (a.d, &off), -EROFS);
  cr_assert_eq (sc_diff_copy_record (a.d, 4, SC_COPY_ZERO, NULL, &off), -EROFS);
  cr_assert_eq (uh_stats (a.d).snapshots, 1);
  uh_area_close (&a);

  uint8_t *after = uh_read_file (a.diff_path, &n1);
  cr_assert_eq (n0, n1);
  cr_assert_arr_eq (before, after, n0, "a read-only session wrote");
  free (before);
  free (after);
  uh_area_free (&a);
}

/* ---- the lock -------------------------------------------------------- */

static int
try_open (const char *path, unsigned flags, struct sc_diff **d, char *err,
          size_t errlen)
{
  *d = NULL;
  err[0] = '\0';
  return sc_diff_open (path, flags | SC_DIFF_NOWAIT, NULL, 0, d, err, errlen);
}

Test (diffarea, second_read_write_open_is_ewouldblock)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  struct sc_diff *d;
  char err[512];
  int r = try_open (a.diff_path, 0, &d, err, sizeof err);
  cr_assert_eq (r, -EWOULDBLOCK, "second read-write open: %d", r);
  cr_assert_null (d);
  cr_assert (strstr (err, "in use") != NULL, "message: %s", err);
  uh_area_close (&a);
  r = try_open (a.diff_path, 0, &d, err, sizeof err);
  cr_assert_eq (r, 0, "free again after close: %s", err);
  cr_assert_eq (sc_diff_close (d), 0);
  uh_area_free (&a);
}

/* A server killed a moment ago may hold its lock a little longer (its
 * io_uring instances are torn down after it is reaped): an open waits
 * for up to SC_IO_FLOCK_GRACE_MS before it says the area is in use. */
Test (diffarea, an_open_waits_briefly_for_a_lock_being_released)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  uh_area_close (&a);
  int fd = open (a.diff_path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  cr_assert_eq (flock (fd, LOCK_EX), 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0) {               /* the holder lets go after 300 ms */
    usleep (300 * 1000);
    _exit (0);
  }
  close (fd);                   /* the child's copy holds the lock now */
  struct sc_diff *d;
  char err[512];
  int r = try_open (a.diff_path, 0, &d, err, sizeof err);
  cr_assert_eq (r, 0, "opened once the lock was let go: %s", err);
  cr_assert_eq (sc_diff_close (d), 0);
  waitpid (pid, NULL, 0);
  uh_area_free (&a);
}

Test (diffarea, read_only_open_while_read_write_is_open_fails)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  struct sc_diff *d;
  char err[512];
  int r = try_open (a.diff_path, SC_DIFF_RDONLY, &d, err, sizeof err);
  cr_assert_eq (r, -EWOULDBLOCK, "read-only open beside a writer: %d", r);
  cr_assert_neq (err[0], '\0');
  uh_area_free (&a);
}

Test (diffarea, read_only_opens_share_but_exclude_a_writer)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  uh_area_close (&a);
  struct sc_diff *r1, *r2, *w;
  char err[512];
  cr_assert_eq (try_open (a.diff_path, SC_DIFF_RDONLY, &r1, err, sizeof err),
                0, "%s", err);
  cr_assert_eq (try_open (a.diff_path, SC_DIFF_RDONLY, &r2, err, sizeof err),
                0, "two readers: %s", err);
  cr_assert_eq (try_open (a.diff_path, 0, &w, err, sizeof err),
                -EWOULDBLOCK, "a writer beside readers");
  cr_assert_eq (sc_diff_close (r1), 0);
  cr_assert_eq (try_open (a.diff_path, 0, &w, err, sizeof err),
                -EWOULDBLOCK, "a writer beside one reader");
  cr_assert_eq (sc_diff_close (r2), 0);
  cr_assert_eq (try_open (a.diff_path, 0, &w, err, sizeof err), 0, "%s",
                err);
  cr_assert_eq (sc_diff_close (w), 0);
  uh_area_free (&a);
}

/* ---- large journals --------------------------------------------------- */

/* Enough copies that the journal spans hundreds of slots and the
 * checkpoint writes its tail in pieces (it flushes every 1 MiB). */
Test (diffarea, journal_of_many_slots_round_trips)
{
  enum { N = 40000 };
  char *origin = uh_path ("origin"), *diff = uh_path ("diff");
  uh_make_file (origin, (uint64_t) N * 4096, 0);      /* sparse */
  int fd = open (origin, O_RDONLY);
  struct sc_origin_id id;
  cr_assert_eq (sc_origin_identify (fd, origin, &id), 0);
  struct sc_diff *d;
  char err[512] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, &id, 4096, &d, err,
                              sizeof err), 0, "%s", err);
  uh_snap (d, "a");
  uint64_t seq = 0;
  for (uint64_t c = 0; c < N; c++)
    cr_assert_eq (sc_diff_copy_record (d, c, SC_COPY_ZERO, NULL, &seq), 0);
  cr_assert_eq (sc_diff_commit (d, seq), 0);
  uh_snap (d, "b");
  uint64_t off7 = uh_copy_chunk (d, 7, 77);
  struct sc_diff_stats st = uh_stats (d);
  cr_assert_gt (st.journal_slots, 300, "journal slots: %lu",
                (unsigned long) st.journal_slots);

  for (int k = 0; k < 3; k++) {
    cr_assert_eq (sc_diff_close (d), 0);
    cr_assert_eq (sc_diff_open (diff, k == 1 ? SC_DIFF_RDONLY : 0, &id, 0,
                                &d, err, sizeof err), 0, "%s", err);
    struct sc_diff_stats st2 = uh_stats (d);
    cr_assert_eq (st2.copies, N + 1, "reopen %d", k);
    cr_assert_eq (st2.data_slots, 1);
    cr_assert_eq (st2.snapshots, 2);
    struct sc_snapshot_info a = uh_find (d, "a"), b = uh_find (d, "b");
    uint64_t off;
    for (uint64_t c = 0; c < N; c += 97)
      cr_assert_eq (sc_diff_resolve (d, a.epoch, c, &off), SC_WHERE_ZERO,
                    "reopen %d chunk %lu", k, (unsigned long) c);
    cr_assert_eq (sc_diff_resolve (d, a.epoch, N - 1, &off), SC_WHERE_ZERO);
    cr_assert_eq (sc_diff_resolve (d, b.epoch, 7, &off), SC_WHERE_DIFF);
    cr_assert_eq (off, off7);
    uh_assert_slot_data (d, off, 77);
    cr_assert_eq (sc_diff_resolve (d, b.epoch, 8, &off), SC_WHERE_ORIGIN);
  }
  cr_assert_eq (sc_diff_close (d), 0);
  close (fd);
  free (origin);
  free (diff);
}

/* ---- no space for a checkpoint ---------------------------------------- */

/* Fail the reservation of whole new journal slots with ENOSPC, as a full
 * filesystem would. */
static int no_space_fd = -1;
static uint32_t no_space_cs;
static int no_space_hits;

static int
no_space_for_slots (const struct sc_io_req *req)
{
  if (req->op == SC_IO_FALLOCATE && req->fd == no_space_fd &&
      req->len == no_space_cs && req->off % no_space_cs == 0) {
    no_space_hits++;
    return -ENOSPC;
  }
  return 0;
}

Test (diffarea, open_without_space_for_a_checkpoint_continues_the_journal)
{
  struct uh_area a;
  uh_area_create (&a, 64 * 4096, 4096, 3);
  uh_snap (a.d, "one");
  uh_copy_chunk (a.d, 0, 10);
  uh_area_close (&a);

  /* The hook needs the fd before the open does I/O: take the next fd
   * number the open will get (nothing else opens files meanwhile). */
  int probe = open (a.diff_path, O_RDONLY);
  cr_assert_geq (probe, 0);
  close (probe);
  no_space_fd = probe;
  no_space_cs = 4096;
  sc_io_fault_hook = no_space_for_slots;
  char err[512] = "";
  int r = sc_diff_open (a.diff_path, 0, &a.id, 0, &a.d, err, sizeof err);
  cr_assert_eq (r, 0, "open with a full filesystem: %d %s", r, err);
  cr_assert_eq (sc_diff_fd (a.d), probe, "the hook watched another fd");
  cr_assert_gt (no_space_hits, 0, "the checkpoint never asked for space");
  /* Still serving: the old state is there, and new records go on. */
  cr_assert_eq (uh_find (a.d, "one").invalid_reason, SC_VALID);
  uh_snap (a.d, "two");
  uh_copy_chunk (a.d, 1, 11);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "one"), 0);
  uh_area_close (&a);
  sc_io_fault_hook = NULL;

  for (int k = 0; k < 2; k++) {
    uh_area_open (&a, k ? 0 : SC_DIFF_RDONLY);
    struct sc_snapshot_info s;
    cr_assert_eq (sc_diff_snapshot_find (a.d, "one", &s), -ENOENT);
    struct sc_snapshot_info two = uh_find (a.d, "two");
    uint64_t off;
    cr_assert_eq (sc_diff_resolve (a.d, two.epoch, 1, &off), SC_WHERE_DIFF);
    uh_assert_slot_data (a.d, off, 11);
    cr_assert_eq (sc_diff_resolve (a.d, two.epoch, 0, &off),
                  SC_WHERE_ORIGIN);
    cr_assert_eq (uh_stats (a.d).data_slots, 1, "one's copy was freed");
    uh_area_close (&a);
  }
  uh_area_free (&a);
}

/* ---- an NBD export's identity: its name and size ------------------------ */

Test (diffarea, nbd_origin_is_known_by_export_name_and_size)
{
  struct uh_area a;
  uh_area_create (&a, 1 << 20, 4096, 1);
  uh_area_close (&a);
  char *diff = uh_path ("nbd-diff");
  struct sc_origin_id nbd = { .type = SC_ORIGIN_NBD, .size = 1 << 20 };
  snprintf (nbd.path, sizeof nbd.path, "vm1");
  struct sc_diff *d;
  char err[1024] = "";
  cr_assert_eq (sc_diff_open (diff, SC_DIFF_CREATE, &nbd, 4096, &d, err,
                              sizeof err), 0, "%s", err);
  cr_assert_eq (sc_diff_close (d), 0);
  /* The same export again: accepted. */
  cr_assert_eq (sc_diff_open (diff, 0, &nbd, 4096, &d, err, sizeof err), 0,
                "%s", err);
  cr_assert_eq (sc_diff_close (d), 0);
  /* Another name, another size, a file: refused, naming both. */
  struct sc_origin_id other = nbd;
  snprintf (other.path, sizeof other.path, "vm2");
  cr_assert_lt (sc_diff_open (diff, 0, &other, 4096, &d, err, sizeof err), 0);
  cr_assert (strstr (err, "made for the NBD export \"vm1\"") &&
             strstr (err, "the disk is the NBD export \"vm2\""), "%s", err);
  other = nbd;
  other.size = 2 << 20;
  cr_assert_lt (sc_diff_open (diff, 0, &other, 4096, &d, err, sizeof err), 0);
  cr_assert (strstr (err, "\"vm1\" of 1.0 MiB") &&
             strstr (err, "\"vm1\" of 2.0 MiB"), "%s", err);
  cr_assert_lt (sc_diff_open (diff, 0, &a.id, 4096, &d, err, sizeof err), 0);
  cr_assert (strstr (err, "made for the NBD export \"vm1\""), "%s", err);
  /* And the file's diff area refuses the export. */
  cr_assert_lt (sc_diff_open (a.diff_path, 0, &nbd, 4096, &d, err,
                              sizeof err), 0);
  cr_assert (strstr (err, "the disk is the NBD export \"vm1\""), "%s", err);
  free (diff);
  uh_area_free (&a);
}
