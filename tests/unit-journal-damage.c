/* Journal damage is never taken for a torn tail (docs/design.md,
 * "Journal" and "Salvage").
 *
 * A session through the real engine (sc_volume, 4K chunks) leaves a
 * journal of many slots: one write copies 256 chunks in one group commit
 * that spans three slots (into slots of an earlier journal, after an
 * unclean stop), then snapshots and small writes.  Its diff area
 * is saved before the close, as a kill -9 leaves it.  Then:
 *
 *   - a flipped byte in any of the last three records of each journal
 *     slot, or of the journal, is refused by the open, naming the record
 *     and the salvage command, never replayed as a shorter journal
 *     (but a commit marker damaged in its CRC or durable_seq holds no
 *     state: it is gone past, and every snapshot stays valid and exact;
 *     a NEXT record flipped into a marker's header is still damage);
 *   - every crash state of the recorded session (tests/crash-record.h:
 *     lost, torn and reordered writes after the last fdatasync) opens:
 *     a real tear is never taken for damage; nor in a group commit that
 *     spans two slot switches (several writers' batches), which writes
 *     into a slot taken, and zeroed, in the same group;
 *   - salvage keeps exactly what it can prove: after a damaged record in
 *     the middle, a damaged NEXT record, or a damaged end of the journal,
 *     the snapshots listed when the record was written are marked invalid
 *     and the later ones read exactly their images.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/alloc.h"
#include "cow/check.h"
#include "cow/diffarea.h"
#include "cow/format.h"
#include "cow/journal.h"
#include "cow/salvage.h"
#include "engine/volume.h"
#include "tests/crash-record.h"
#include "tests/unit-helpers.h"

#define CS 4096u
#define SIZE (1u << 20)
#define NSNAPS 3

static void
teardown (void)
{
  cr_record_stop ();
  uh_teardown ();
}

TestSuite (journal_damage, .init = uh_setup, .fini = teardown);

/* ---- the session --------------------------------------------------------- */

struct session {
  char *origin, *diff, *killed;   /* killed: the diff area at the kill */
  uint8_t *image[NSNAPS];         /* each snapshot's content */
  uint64_t id[NSNAPS];
  uint8_t *live;
  struct cr_log log;              /* with `record`: the whole session */
  struct cr_image init[CR_NFILES];
};

static struct sc_volume *
vol_open (const struct session *s)
{
  struct sc_volume_config cfg = {
    .origin_path = s->origin, .diff_path = s->diff, .chunk_size = CS,
  };
  struct sc_volume *v = NULL;
  char err[512] = "";
  int r = sc_volume_open (&cfg, &v, err, sizeof err);
  cr_assert_eq (r, 0, "sc_volume_open: %s", err);
  return v;
}

static void
vol_write (struct session *s, struct sc_volume *v, uint64_t off,
           uint32_t len, uint64_t tag)
{
  uint8_t *buf = calloc (1, len);
  cr_assert_not_null (buf);
  if (tag)                      /* 0: zeros */
    uh_pattern (buf, len, tag, off);
  cr_assert_eq (sc_volume_write (v, buf, len, off, 0), 0);
  memcpy (s->live + off, buf, len);
  free (buf);
}

static void
vol_snapshot (struct session *s, struct sc_volume *v, int i)
{
  char name[8];
  snprintf (name, sizeof name, "s%d", i + 1);
  struct sc_snapshot_info info;
  cr_assert_eq (sc_volume_snapshot_create (v, name, NULL, &info), 0);
  s->id[i] = info.id;
  s->image[i] = malloc (SIZE);
  memcpy (s->image[i], s->live, SIZE);
}

/* The session: a first part, an unclean stop, then (recorded with
 * `record`, for crash states) the open (a checkpoint, which frees the
 * first journal's slots: the new journal takes them again, stale records
 * and all, so their zeroing must be durable before records go in), and
 * the rest. */
static void
run_session (struct session *s, bool record)
{
  memset (s, 0, sizeof *s);
  s->origin = uh_path ("origin");
  s->diff = uh_path ("diff");
  s->killed = uh_path ("killed");
  uh_make_file (s->origin, SIZE, 11);
  s->live = malloc (SIZE);
  uh_pattern (s->live, SIZE, 11, 0);

  struct sc_volume *v = vol_open (s);
  vol_snapshot (s, v, 0);
  vol_write (s, v, 0, SIZE, 21);          /* 256 copies: one group */
  vol_write (s, v, 0, SIZE, 0);           /* zeros: no copies (made) */
  cr_assert_eq (sc_volume_close (v), 0);
  uh_sb_mark_unclean (s->diff);
  if (record) {
    for (int f = 0; f < CR_NFILES; f++) {
      cr_image_alloc (&s->init[f], 0);
      cr_image_load (&s->init[f], f == CR_ORIGIN ? s->origin : s->diff);
    }
    cr_log_init (&s->log, s->origin, s->diff);
    cr_record_start (&s->log);
  }
  v = vol_open (s);
  vol_snapshot (s, v, 1);
  vol_write (s, v, 0, SIZE, 22);          /* 256 zero copies (no data
                                             slot): three journal slots */
  for (uint64_t i = 0; i < 48; i++)       /* small groups */
    vol_write (s, v, i * 5 * CS + 100, 3000, 30 + i);
  vol_snapshot (s, v, 2);
  for (uint64_t i = 0; i < 24; i++)
    vol_write (s, v, i * 7 * CS, CS, 90 + i);
  /* What a kill -9 leaves: every write made, in the page cache. */
  size_t len;
  uint8_t *bytes = uh_read_file (s->diff, &len);
  uh_write_file (s->killed, bytes, len);
  free (bytes);
  cr_assert_eq (sc_volume_close (v), 0);
  if (record)
    cr_record_stop ();
}

static void
free_session (struct session *s)
{
  for (int i = 0; i < NSNAPS; i++)
    free (s->image[i]);
  free (s->live);
  free (s->origin);
  free (s->diff);
  free (s->killed);
  if (s->log.ops)
    cr_log_free (&s->log);
  for (int f = 0; f < CR_NFILES; f++)
    if (s->init[f].buf)
      cr_image_free (&s->init[f]);
}

/* ---- the journal, record by record ---------------------------------------- */

struct rec { uint64_t seq, off; uint16_t type, len; uint32_t slot_index; };

/* The records of the journal of the diff area in `bytes`, following
 * lengths and NEXT records from the superblock (no CRC check: for a diff
 * area not yet damaged). */
static size_t
journal_records (const uint8_t *bytes, size_t size, struct rec **out)
{
  struct sc_sb_disk sb[2];
  memcpy (&sb[0], bytes, sizeof sb[0]);
  memcpy (&sb[1], bytes + SC_SB_SIZE, sizeof sb[1]);
  const struct sc_sb_disk *cur = sb[1].generation > sb[0].generation
                                 ? &sb[1] : &sb[0];
  struct rec *v = NULL;
  size_t n = 0;
  uint64_t slot = cur->journal_head, seq = cur->journal_seq;
  for (uint32_t si = 0; si < 100000; si++) {
    uint64_t next = 0;
    for (uint32_t pos = 0; pos + 16 <= CS; ) {
      uint64_t off = slot * CS + pos;
      if (off + 16 > size)
        break;
      struct sc_rec_hdr h;
      memcpy (&h, bytes + off, sizeof h);
      if (h.seq != seq || h.len < 16 || h.len % 8 || pos + h.len > CS)
        break;
      v = realloc (v, (n + 1) * sizeof *v);
      v[n++] = (struct rec) { .seq = seq, .off = off, .type = h.type,
                              .len = h.len, .slot_index = si };
      seq++;
      if (h.type == SC_REC_NEXT) {
        memcpy (&next, bytes + off + 16, sizeof next);
        break;
      }
      pos += h.len;
    }
    if (!next)
      break;
    slot = next;
  }
  *out = v;
  return n;
}

/* Is record i among the last three of its slot or of the journal? */
static bool
at_an_end (const struct rec *r, size_t n, size_t i)
{
  if (i + 3 >= n)
    return true;
  return r[i + 3].slot_index != r[i].slot_index;
}

/* Open read-only: 0, or the error with its message in err. */
static int
try_open (const char *path, char *err, size_t errlen)
{
  struct sc_diff *d = NULL;
  int r = sc_diff_open (path, SC_DIFF_RDONLY, NULL, 0, &d, err, errlen);
  if (r == 0)
    sc_diff_close (d);
  return r;
}

/* ---- flips ----------------------------------------------------------------- */

Test (journal_damage, a_flip_at_the_end_of_a_slot_or_of_the_journal_is_refused)
{
  struct session s;
  run_session (&s, false);
  size_t size;
  uint8_t *killed = uh_read_file (s.killed, &size);
  struct rec *r;
  size_t n = journal_records (killed, size, &r);
  cr_assert_gt (n, 400, "a journal of %zu records", n);
  cr_assert_gt (r[n - 1].slot_index, 3, "a journal of %u slots",
                r[n - 1].slot_index + 1);
  char *path = uh_path ("flipped");
  unsigned tried = 0;
  for (size_t i = 0; i < n; i++) {
    if (!at_an_end (r, n, i))
      continue;
    /* A header byte (the CRC), a length byte, and the last byte. */
    uint64_t where[3] = { r[i].off + 1, r[i].off + 6, r[i].off + r[i].len - 1 };
    for (int w = 0; w < 3; w++) {
      killed[where[w]] ^= 0x5a;
      uh_write_file (path, killed, size);
      killed[where[w]] ^= 0x5a;
      char err[1024] = "";
      int e = try_open (path, err, sizeof err);
      if (r[i].type == SC_REC_COMMIT && w != 1) {
        /* A marker's CRC or durable_seq: no state lost, it opens (the
         * tests below check the snapshots). */
        cr_assert_eq (e, 0, "damaged commit marker %" PRIu64 " at byte %"
                      PRIu64 " refused: %s", r[i].seq, where[w], err);
        tried++;
        continue;
      }
      char want[64];
      snprintf (want, sizeof want, "journal record %" PRIu64 " ", r[i].seq);
      cr_assert_eq (e, -EINVAL, "record %" PRIu64 " (type %u, offset %"
                    PRIu64 ") damaged at byte %" PRIu64 ": the open "
                    "returned %d (%s)", r[i].seq, r[i].type, r[i].off,
                    where[w], e, err);
      cr_assert (strstr (err, want), "the refusal does not name record %"
                 PRIu64 ": %s", r[i].seq, err);
      cr_assert (strstr (err, "shadowcopy salvage"), "%s", err);
      tried++;
    }
  }
  cr_assert_gt (tried, 30);
  free (path);
  free (r);
  free (killed);
  free_session (&s);
}

/* ---- crash states: tears are still tears -------------------------------- */

static void
materialize (const char *path, const struct cr_image *img)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (pwrite (fd, img->buf, img->size, 0), (ssize_t) img->size);
  close (fd);
}

Test (journal_damage, every_crash_state_opens)
{
  struct session s;
  run_session (&s, true);
  cr_assert_eq (s.log.foreign, 0);
  struct cr_builder b;
  cr_builder_init (&b, &s.log, s.init);
  struct cr_image out[CR_NFILES];
  for (int f = 0; f < CR_NFILES; f++)
    cr_image_alloc (&out[f], cr_max_end (&s.log, f, s.init[f].size));
  uint64_t rng = 0x7ea5;
  char *path = uh_path ("state");
  size_t states = 0;
  for (size_t k = 0; k <= s.log.n; k++) {
    for (int rep = 0; rep < 3; rep++) {
      enum cr_variant var = rep == 0 ? CR_V_PREFIX : CR_V_RANDOM;
      struct cr_state_info info;
      cr_build (&b, k, var, &rng, out, &info);
      materialize (path, &out[CR_DIFF]);
      char err[1024] = "";
      int e = try_open (path, err, sizeof err);
      cr_assert_eq (e, 0, "crash point %zu (%s): a legitimate crash state "
                    "was refused: %s", k, cr_variant_name (var), err);
      states++;
    }
  }
  cr_log_info ("journal-damage: %zu crash states of %zu operations opened",
               states, s.log.n);
  free (path);
  for (int f = 0; f < CR_NFILES; f++)
    cr_image_free (&out[f]);
  cr_builder_free (&b);
  free_session (&s);
}

/* A group commit of 500 records (two slot switches at 4K) on a file whose
 * slots hold stale bytes, as a reused slot does: the zeroing of the slot
 * taken inside the group must reach the disk before the group's records
 * do, or a crash can leave stale bytes where a tear leaves zeros. */
static int
apply_any (void *opaque, const struct sc_rec_hdr *rec, uint64_t durable,
           char *err, size_t errlen)
{
  return 0;
}

Test (journal_damage, a_group_over_two_slot_switches_leaves_only_tears)
{
  const uint32_t seed = 0x5eed;
  char *origin = uh_path ("origin"), *path = uh_path ("journal");
  char *state = uh_path ("state");
  uh_make_file (origin, CS, 1);
  uh_make_file (path, 64 * CS, 2);      /* stale bytes everywhere */
  int fd = open (path, O_RDWR | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  struct sc_alloc alloc;
  sc_alloc_init (&alloc, 2);
  struct sc_journal j;
  cr_assert_eq (sc_journal_start (&j, fd, CS, seed, &alloc, 1), 0);
  struct sc_rec_state st = { .h.type = SC_REC_STATE, .epoch = 1 };
  uint64_t seq;
  cr_assert_eq (sc_journal_append (&j, &st, sizeof st, &seq), 0);
  pthread_mutex_lock (&lock);
  cr_assert_eq (sc_journal_sync (&j, seq, &lock), 0);

  struct cr_log log;
  struct cr_image init[CR_NFILES];
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_alloc (&init[f], 0);
    cr_image_load (&init[f], f == CR_ORIGIN ? origin : path);
  }
  cr_log_init (&log, origin, path);
  cr_record_start (&log);
  for (int i = 0; i < 500; i++) {
    struct sc_rec_snap_delete del = { .h.type = SC_REC_SNAP_DELETE,
                                      .id = (uint64_t) i + 1 };
    cr_assert_eq (sc_journal_append (&j, &del, sizeof del, &seq), 0);
  }
  cr_assert_eq (sc_journal_sync (&j, seq, &lock), 0);
  pthread_mutex_unlock (&lock);
  cr_record_stop ();
  uint64_t head, head_seq;
  sc_journal_head (&j, &head, &head_seq);
  cr_assert_geq (sc_journal_slots (&j), 4, "the group did not span two "
                 "slot switches");

  struct cr_builder b;
  cr_builder_init (&b, &log, init);
  struct cr_image out[CR_NFILES];
  for (int f = 0; f < CR_NFILES; f++)
    cr_image_alloc (&out[f], cr_max_end (&log, f, init[f].size));
  uint64_t rng = 0xfeed;
  for (size_t k = 0; k <= log.n; k++)
    for (int rep = 0; rep < 40; rep++) {
      struct cr_state_info info;
      cr_build (&b, k, rep ? CR_V_RANDOM : CR_V_PREFIX, &rng, out, &info);
      materialize (state, &out[CR_DIFF]);
      int sfd = open (state, O_RDONLY | O_CLOEXEC);
      uint64_t *chain = NULL, records, end_seq, durable = 0;
      size_t nchain;
      uint32_t end_pos;
      char err[512] = "";
      int r = sc_journal_replay (sfd, CS, seed, head, head_seq,
                                 out[CR_DIFF].size / CS, 0, apply_any, NULL,
                                 NULL, &chain, &nchain, &end_pos, &records,
                                 &end_seq, &durable, NULL, err, sizeof err);
      close (sfd);
      cr_assert_eq (r, 0, "crash point %zu of %zu: a torn group commit was "
                    "taken for damage: %s", k, log.n, err);
      cr_assert_geq (end_seq, 3);
      free (chain);
    }
  for (int f = 0; f < CR_NFILES; f++) {
    cr_image_free (&out[f]);
    cr_image_free (&init[f]);
  }
  cr_builder_free (&b);
  cr_log_free (&log);
  sc_journal_free (&j);
  sc_alloc_free_all (&alloc);
  close (fd);
  free (origin);
  free (path);
  free (state);
}

/* ---- salvage ----------------------------------------------------------------- */

/* Salvage `path` (the killed session's diff area, damaged), then open
 * the volume on it: every snapshot created after record `seq` reads its
 * image; those created before are invalid (salvaged); *kept counts the
 * valid ones. */
static void
salvage_and_check (struct session *s, const char *path, uint64_t seq,
                   uint64_t lost_last, unsigned *kept)
{
  struct sc_salvage_report rep;
  char err[1024] = "";
  cr_assert_eq (sc_diff_salvage (path, &rep, err, sizeof err), 0, "%s", err);
  cr_assert (rep.needed);
  cr_assert_geq (rep.nlosses, 1);
  cr_assert_eq (rep.losses[0].first_seq, seq);
  cr_assert_eq (rep.losses[0].last_seq, lost_last, "lost %" PRIu64 "-%"
                PRIu64 ", want to %" PRIu64, rep.losses[0].first_seq,
                rep.losses[0].last_seq, lost_last);

  /* Run the volume on the salvaged diff area. */
  size_t len;
  uint8_t *bytes = uh_read_file (path, &len);
  uh_write_file (s->diff, bytes, len);
  free (bytes);
  struct sc_volume *v = vol_open (s);
  uint8_t *buf = malloc (SIZE);
  *kept = 0;
  for (int i = 0; i < NSNAPS; i++) {
    struct sc_snapshot_info info;
    char name[8];
    snprintf (name, sizeof name, "s%d", i + 1);
    int e = sc_volume_snapshot_lookup (v, name, &info);
    cr_assert_eq (e, 0, "%s is gone after salvage", name);
    bool marked = false;
    for (size_t k = 0; k < rep.nmarked; k++)
      marked |= rep.marked[k] == info.id;
    if (info.invalid_reason != SC_VALID) {
      cr_assert_eq (info.invalid_reason, SC_INVALID_SALVAGED);
      cr_assert (marked);
      cr_assert_eq (sc_volume_snapshot_read (v, info.id, buf, CS, 0), -EIO);
      continue;
    }
    cr_assert (!marked);
    cr_assert_eq (sc_volume_snapshot_read (v, info.id, buf, SIZE, 0), 0);
    cr_assert (memcmp (buf, s->image[i], SIZE) == 0, "snapshot %s, kept "
               "by salvage, does not read its image", name);
    (*kept)++;
  }
  cr_assert_eq (sc_volume_read (v, buf, SIZE, 0), 0);
  cr_assert (memcmp (buf, s->live, SIZE) == 0, "the live volume changed");
  free (buf);
  cr_assert_eq (sc_volume_close (v), 0);
  sc_salvage_report_free (&rep);
}

/* The snapshots created (SNAP_CREATE records) before record `seq`. */
static unsigned
created_before (const struct rec *r, size_t n, uint64_t seq)
{
  unsigned c = 0;
  for (size_t i = 0; i < n && r[i].seq < seq; i++)
    c += r[i].type == SC_REC_SNAP_CREATE;
  return c;
}

static void
salvage_case (uint16_t type, bool last)
{
  struct session s;
  run_session (&s, false);
  size_t size;
  uint8_t *killed = uh_read_file (s.killed, &size);
  struct rec *r;
  size_t n = journal_records (killed, size, &r);
  /* The record: the journal's last, or the first of `type` after the
   * second snapshot's creation. */
  size_t i = n - 1;
  if (!last) {
    size_t creates = 0;
    for (i = 0; i < n; i++) {
      creates += r[i].type == SC_REC_SNAP_CREATE;
      if (creates >= 2 && r[i].type == type)
        break;
    }
    cr_assert_lt (i, n, "no record of type %u", type);
  }
  /* The journal's last record is a commit marker: damage its type, or
   * it would be a damaged marker, gone past (see below). */
  killed[last ? r[i].off + 4 : r[i].off + r[i].len - 2] ^= 0xff;
  char *path = uh_path ("salvaged");
  uh_write_file (path, killed, size);
  char err[1024] = "";
  cr_assert_eq (try_open (path, err, sizeof err), -EINVAL, "%s", err);
  unsigned kept;
  salvage_and_check (&s, path, r[i].seq,
                     last ? SC_SALVAGE_TO_END : r[i].seq, &kept);
  cr_assert_eq (kept, NSNAPS - created_before (r, n, r[i].seq),
                "kept %u snapshots", kept);
  free (path);
  free (r);
  free (killed);
  free_session (&s);
}

Test (journal_damage, salvage_past_a_damaged_copy_record)
{
  salvage_case (SC_REC_COPY, false);
}

Test (journal_damage, salvage_past_a_damaged_next_record)
{
  salvage_case (SC_REC_NEXT, false);
}

Test (journal_damage, salvage_of_a_damaged_end_of_the_journal)
{
  salvage_case (SC_REC_COPY, true);
}

Test (journal_damage, salvage_leaves_a_sound_diff_area_alone)
{
  struct session s;
  run_session (&s, false);
  size_t n0;
  uint8_t *before = uh_read_file (s.killed, &n0);
  struct sc_salvage_report rep;
  char err[1024] = "";
  cr_assert_eq (sc_diff_salvage (s.killed, &rep, err, sizeof err), 0);
  cr_assert (!rep.needed);
  size_t n1;
  uint8_t *after = uh_read_file (s.killed, &n1);
  cr_assert_eq (n0, n1);
  cr_assert (memcmp (before, after, n0) == 0, "salvage wrote to it");
  free (before);
  free (after);
  free_session (&s);
}

/* ---- damaged commit markers ------------------------------------------------ */

/* Open the volume on the diff area in `bytes`: every snapshot is valid
 * and reads its image, and the live volume is unchanged. */
static void
all_snapshots_exact (struct session *s, const uint8_t *bytes, size_t len)
{
  uh_write_file (s->diff, bytes, len);
  struct sc_volume *v = vol_open (s);
  uint8_t *buf = malloc (SIZE);
  for (int i = 0; i < NSNAPS; i++) {
    struct sc_snapshot_info info;
    char name[8];
    snprintf (name, sizeof name, "s%d", i + 1);
    cr_assert_eq (sc_volume_snapshot_lookup (v, name, &info), 0);
    cr_assert_eq (info.invalid_reason, SC_VALID, "%s is invalid (%u)",
                  name, info.invalid_reason);
    cr_assert_eq (sc_volume_snapshot_read (v, info.id, buf, SIZE, 0), 0);
    cr_assert (memcmp (buf, s->image[i], SIZE) == 0, "%s is wrong", name);
  }
  cr_assert_eq (sc_volume_read (v, buf, SIZE, 0), 0);
  cr_assert (memcmp (buf, s->live, SIZE) == 0, "the live volume changed");
  free (buf);
  cr_assert_eq (sc_volume_close (v), 0);
}

/* Flip a byte of the durable_seq (or the CRC) of commit marker `which`
 * (counted from the end, 0: the last) in the diff area `file`: it opens,
 * every snapshot valid and exact; salvage finds nothing lost. */
static void
damaged_marker_case (bool clean, size_t which, bool crc)
{
  struct session s;
  run_session (&s, false);
  size_t size;
  uint8_t *bytes = uh_read_file (clean ? s.diff : s.killed, &size);
  struct rec *r;
  size_t n = journal_records (bytes, size, &r);
  size_t i = n;
  for (size_t k = 0; i > 0; ) {
    i--;
    if (r[i].type == SC_REC_COMMIT && k++ == which)
      break;
  }
  cr_assert_eq (r[i].type, SC_REC_COMMIT);
  if (which == 0)
    cr_assert_eq (i, n - 1, "the journal does not end in a commit marker");
  bytes[r[i].off + (crc ? 1 : 16)] ^= 0x10;
  char *path = uh_path ("marker");
  uh_write_file (path, bytes, size);
  char err[1024] = "";
  cr_assert_eq (try_open (path, err, sizeof err), 0, "damaged marker %"
                PRIu64 " refused: %s", r[i].seq, err);
  struct sc_check_report rep;
  memset (&rep, 0, sizeof rep);
  cr_assert_eq (sc_diff_check (path, &rep, err, sizeof err), 0, "%s", err);
  cr_assert_eq (rep.damage, 0, "check calls a damaged marker damage");
  cr_assert_geq (rep.warnings, 1, "check does not name the marker");
  bool named = false;
  char want[64];
  snprintf (want, sizeof want, "journal record %" PRIu64 " ", r[i].seq);
  for (size_t f = 0; f < rep.nfindings; f++)
    named |= strstr (rep.findings[f].what, want) &&
             strstr (rep.findings[f].what, "commit marker");
  cr_assert (named, "no warning names record %" PRIu64, r[i].seq);
  sc_check_report_free (&rep);
  struct sc_salvage_report sv;
  cr_assert_eq (sc_diff_salvage (path, &sv, err, sizeof err), 0, "%s", err);
  cr_assert (!sv.needed, "salvage counts a damaged marker as a loss");
  sc_salvage_report_free (&sv);
  all_snapshots_exact (&s, bytes, size);
  free (path);
  free (r);
  free (bytes);
  free_session (&s);
}

Test (journal_damage, a_damaged_last_marker_after_a_kill_opens)
{
  damaged_marker_case (false, 0, false);
}

Test (journal_damage, a_damaged_last_marker_crc_after_a_kill_opens)
{
  damaged_marker_case (false, 0, true);
}

Test (journal_damage, a_damaged_last_marker_after_a_clean_close_opens)
{
  damaged_marker_case (true, 0, false);
}

Test (journal_damage, a_damaged_middle_marker_opens)
{
  damaged_marker_case (false, 2, false);
}

/* A NEXT record has a marker's length, and its type differs from a
 * marker's in one bit: one flipped bit makes it read as a marker, but it
 * is not one, and is refused as damage, never gone past. */
Test (journal_damage, a_next_record_flipped_into_a_marker_is_damage)
{
  struct session s;
  run_session (&s, false);
  size_t size;
  uint8_t *bytes = uh_read_file (s.killed, &size);
  struct rec *r;
  size_t n = journal_records (bytes, size, &r);
  size_t i = 0;
  while (i < n && r[i].type != SC_REC_NEXT)
    i++;
  cr_assert_lt (i, n);
  cr_assert_eq (SC_REC_NEXT ^ 1, SC_REC_COMMIT);
  bytes[r[i].off + 4] ^= 1;
  char *path = uh_path ("next");
  uh_write_file (path, bytes, size);
  char err[1024] = "";
  cr_assert_eq (try_open (path, err, sizeof err), -EINVAL, "%s", err);
  char want[64];
  snprintf (want, sizeof want, "journal record %" PRIu64 " ", r[i].seq);
  cr_assert (strstr (err, want), "%s", err);
  free (path);
  free (r);
  free (bytes);
  free_session (&s);
}
