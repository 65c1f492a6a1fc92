/* Unit tests: changed-block tracking (cow/changes.c) and checkpoints
 * (cow/marks.c): the changes reported between two points are exactly the
 * chunks written between them, whatever snapshots and checkpoints come
 * and go, across reopens; checkpoints keep no data; UUIDs. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/boot-id.h"
#include "cow/diffarea.h"
#include "tests/unit-helpers.h"

TestSuite (changes, .init = uh_setup, .fini = uh_teardown);

#define CS 4096u

/* A write of `chunk` as the engine does it: the copy a snapshot needs
 * (holding the old content's tag), then the marks, then (not modelled)
 * the origin write. */
static void
write_chunk (struct sc_diff *d, uint64_t chunk, uint64_t old_tag)
{
  if (sc_diff_needs_copy (d, chunk))
    uh_copy_chunk (d, chunk, old_tag);
  uint64_t seq = 0;
  cr_assert_eq (sc_diff_mark_changes (d, chunk, chunk, &seq), 0);
  if (seq)
    cr_assert_eq (sc_diff_commit (d, seq), 0);
}

static struct sc_snapshot_info
make (struct sc_diff *d, const char *name, bool ckpt)
{
  struct sc_snapshot_opts o = { .checkpoint = ckpt };
  struct sc_snapshot_info s;
  int r = sc_diff_snapshot_create (d, name, &o, &s);
  cr_assert_eq (r, 0, "creating %s: %d", name, r);
  return s;
}

/* The changed chunks from `from` to `to`, as a 0/1 array of n chunks,
 * read in pages of `page` runs. */
static int
changed (struct sc_diff *d, uint64_t from, uint64_t to, uint64_t n,
         size_t page, uint8_t *out)
{
  memset (out, 0, n);
  struct sc_chunk_range *runs = calloc (page, sizeof *runs);
  cr_assert_not_null (runs);
  uint64_t start = 0, prev_end = 0;
  for (int pages = 0; start < n; pages++) {
    size_t k;
    uint64_t next;
    int r = sc_diff_changes (d, from, to, start, runs, page, &k, &next);
    if (r < 0) {
      free (runs);
      return r;
    }
    cr_assert_gt (next, start, "the page moves on");
    for (size_t i = 0; i < k; i++) {
      cr_assert_geq (runs[i].first, start);
      cr_assert_gt (runs[i].count, 0);
      cr_assert_leq (runs[i].first + runs[i].count, n);
      cr_assert (i == 0 || runs[i].first > prev_end,
                 "runs sorted, apart within a page");
      cr_assert_leq (runs[i].first + runs[i].count, next);
      prev_end = runs[i].first + runs[i].count;
      for (uint64_t c = runs[i].first; c < prev_end; c++)
        out[c] = 1;
    }
    start = next;
    cr_assert_lt (pages, 1000000);
  }
  free (runs);
  return 0;
}

Test (changes, errors)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  struct sc_snapshot_info s1 = make (a.d, "s1", false);
  struct sc_snapshot_info s2 = make (a.d, "s2", false);
  struct sc_chunk_range r[4];
  size_t n;
  uint64_t next;
  cr_assert_eq (sc_diff_changes (a.d, s2.id, s1.id, 0, r, 4, &n, &next),
                -EINVAL, "FROM newer than TO");
  cr_assert_eq (sc_diff_changes (a.d, 999, SC_DIFF_LIVE, 0, r, 4, &n,
                                 &next), -ENOENT);
  cr_assert_eq (sc_diff_changes (a.d, s1.id, 999, 0, r, 4, &n, &next),
                -ENOENT);
  cr_assert_eq (sc_diff_changes (a.d, s1.id, s1.id, 0, r, 4, &n, &next), 0);
  cr_assert_eq (n, 0, "a point against itself: nothing changed");
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "nope"), -ENOENT);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s1"), 0);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s1"), -EINVAL,
                "already a checkpoint");
  /* A copy that fails costs a snapshot its data, a checkpoint nothing:
   * the mark that follows records the change. */
  cr_assert_eq (sc_diff_invalidate_chunk (a.d, 0, SC_INVALID_COPY_READ, EIO),
                0);
  uint64_t seq;
  cr_assert_eq (sc_diff_mark_changes (a.d, 0, 0, &seq), 0);
  cr_assert_eq (sc_diff_commit (a.d, seq), 0);
  cr_assert_eq (uh_find (a.d, "s1").invalid_reason, SC_VALID);
  cr_assert_eq (uh_find (a.d, "s2").invalid_reason, SC_INVALID_COPY_READ);
  cr_assert_eq (sc_diff_changes (a.d, s1.id, SC_DIFF_LIVE, 0, r, 4, &n,
                                 &next), 0);
  cr_assert (n == 1 && r[0].first == 0 && r[0].count == 1);
  cr_assert_eq (sc_diff_changes (a.d, s1.id, s2.id, 0, r, 4, &n, &next),
                -EIO, "to an invalid snapshot");
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s2"), -ESTALE,
                "an invalid snapshot has nothing to keep");
  /* A failed diff area (its superblock says so): nothing is trusted. */
  uh_area_close (&a);
  struct sc_sb_disk sb;
  int cur = uh_sb_newest (a.diff_path, &sb);
  sb.flags |= SC_SB_FAILED;
  sb.flags &= ~SC_SB_CLEAN;
  uh_sb_write (a.diff_path, cur, &sb);
  uh_area_open (&a, 0);
  cr_assert_eq (sc_diff_changes (a.d, s1.id, SC_DIFF_LIVE, 0, r, 4, &n,
                                 &next), -EIO, "an invalid checkpoint");
  uh_area_free (&a);
}

Test (changes, uuids)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  struct sc_snapshot_info s1 = make (a.d, "s1", false);
  struct sc_snapshot_info c1 = make (a.d, "c1", true);
  static const uint8_t zero[16];
  cr_assert (memcmp (s1.uuid, zero, 16) != 0);
  cr_assert (memcmp (s1.uuid, c1.uuid, 16) != 0);
  cr_assert_eq (s1.uuid[6] >> 4, 4, "a version-4 UUID");
  cr_assert (c1.checkpoint && !s1.checkpoint);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s1"), 0);
  struct sc_snapshot_info s1b = make (a.d, "s1", false);
  cr_assert (memcmp (s1.uuid, s1b.uuid, 16) != 0, "a reused name gets a new "
             "UUID");
  uh_area_reopen (&a, 0);
  struct sc_snapshot_info x = uh_find (a.d, "s1");
  cr_assert (memcmp (x.uuid, s1b.uuid, 16) == 0, "kept across a reopen");
  x = uh_find (a.d, "c1");
  cr_assert (memcmp (x.uuid, c1.uuid, 16) == 0);
  cr_assert (x.checkpoint);
  uh_area_free (&a);
}

/* A checkpoint keeps no data: a write after it leaves a mark, no slot;
 * keep-checkpoint frees what only its snapshot needed. */
Test (changes, checkpoints_keep_no_data)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  make (a.d, "c", true);
  for (uint64_t c = 0; c < 32; c++)
    write_chunk (a.d, c, 100 + c);
  struct sc_diff_stats st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, 0, "no data for a checkpoint");
  cr_assert_eq (st.copies, 32, "one mark per changed chunk");
  cr_assert_eq (st.checkpoints, 1);
  struct sc_snapshot_info c = uh_find (a.d, "c");
  cr_assert_eq (c.used_bytes, 0);
  cr_assert_eq (c.meta_bytes, 32 * 48, "48 bytes of journal a mark");

  make (a.d, "s", false);
  for (uint64_t k = 16; k < 48; k++)
    write_chunk (a.d, k, 200 + k);
  st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, 32, "the snapshot's copies");
  uint64_t used = st.used_bytes;
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s"), 0);
  st = uh_stats (a.d);
  cr_assert_eq (st.data_slots, 0, "its data is gone");
  cr_assert_lt (st.used_bytes, used);
  cr_assert_eq (st.checkpoints, 2);
  struct sc_snapshot_info s = uh_find (a.d, "s");
  cr_assert (s.checkpoint);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), -ENOENT,
                "a checkpoint is never read");
  uint8_t ch[64];
  cr_assert_eq (changed (a.d, s.id, SC_DIFF_LIVE, 64, 8, ch), 0);
  for (uint64_t k = 0; k < 64; k++)
    cr_assert_eq (ch[k], k >= 16 && k < 48, "chunk %lu", (unsigned long) k);
  cr_assert_eq (changed (a.d, c.id, s.id, 64, 8, ch), 0);
  for (uint64_t k = 0; k < 64; k++)
    cr_assert_eq (ch[k], k < 32, "chunk %lu", (unsigned long) k);
  uh_area_free (&a);
}

/* A copy recorded while its snapshot was being kept as a checkpoint:
 * after the keep, garbage collection makes it a mark and frees its slot
 * (punched), while its record is durable but no commit marker vouches
 * for it yet.  A crash then: replay must not drop it for its data (gone
 * on purpose), or the chunk's change is lost to the checkpoint.  Found by
 * the crash harness (tracking-concurrent-64k). */
static int boot_n;
static int
next_boot (uint8_t id[16])
{
  memset (id, 0, 16);
  id[0] = (uint8_t) ++boot_n;
  return 0;
}

static void
kept_while_copying (bool new_boot)
{
  struct uh_area a;
  sc_boot_id_hook = new_boot ? next_boot : NULL;
  uh_area_create (&a, 16 * CS, CS, 3);
  struct sc_snapshot_info s = make (a.d, "s", false);
  /* The copy of chunk 5, recorded, its commit still to come. */
  uint64_t off, seq;
  uint8_t *buf = malloc (CS);
  uint32_t sums[SC_COPY_SUMS_MAX];
  cr_assert_not_null (buf);
  cr_assert_eq (sc_diff_slot_reserve (a.d, &off), 0);
  uh_pattern (buf, CS, 77, 0);
  cr_assert_eq (pwrite (sc_diff_fd (a.d), buf, CS, off), (ssize_t) CS);
  sc_diff_copy_sums (a.d, buf, sums);
  cr_assert_eq (sc_diff_copy_record (a.d, 5, off, sums, &seq), 0);
  /* The keep commits it with its own record, then frees its data. */
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s"), 0);
  cr_assert_eq (uh_stats (a.d).data_slots, 0);
  /* (the origin's chunk 5 is written now) A crash: the file as it is. */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  uh_area_open (&a, 0);
  struct sc_chunk_range r[4];
  size_t n;
  uint64_t next;
  cr_assert_eq (sc_diff_changes (a.d, s.id, SC_DIFF_LIVE, 0, r, 4, &n,
                                 &next), 0);
  cr_assert (n == 1 && r[0].first == 5 && r[0].count == 1,
             "the change of chunk 5 survives (%zu runs)", n);
  cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_VALID);
  free (buf);
  uh_area_free (&a);
  sc_boot_id_hook = NULL;
}

Test (changes, kept_while_copying_then_a_power_cut)
{
  kept_while_copying (true);
}

Test (changes, kept_while_copying_then_kill_9)
{
  kept_while_copying (false);
}

/* A keep whose commit waited behind another commit's (it was not the
 * leader), when that commit then writes a journal checkpoint: the
 * checkpoint takes the old journal's tail as covered, the keep's record
 * with it, so it must carry the keep (the state it writes comes from
 * memory, where the snapshot is not a checkpoint yet).  Otherwise the
 * keep returns 0, frees the snapshot's data, and a crash brings the
 * snapshot back, valid, over zeroed slots.  Found by the crash harness
 * (tracking-concurrent-64k, SEED=2). */
static bool keep_ckpt_armed;

/* One checkpoint: due at the first look once armed. */
static uint64_t
keep_ckpt_limit (uint64_t live)
{
  (void) live;
  return __atomic_exchange_n (&keep_ckpt_armed, false, __ATOMIC_SEQ_CST)
         ? 0 : UINT64_MAX;
}

struct keep_job { struct sc_diff *d; int r; };

static void *
keep_copy_job (void *opaque)
{
  struct keep_job *j = opaque;
  j->r = uh_copy_reserved (j->d, 20, 500);      /* commits, leads */
  return NULL;
}

static void *
keep_job (void *opaque)
{
  struct keep_job *j = opaque;
  j->r = sc_diff_snapshot_keep_checkpoint (j->d, "s");
  return NULL;
}

Test (changes, a_keep_covered_by_a_journal_checkpoint_stays_kept)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  make (a.d, "s", false);
  for (uint64_t c = 0; c < 10; c++)
    write_chunk (a.d, c, 100 + c);
  struct sc_sb_disk before, after;
  uh_sb_newest (a.diff_path, &before);

  /* A copy's commit leads, held in its fdatasync (the lock dropped). */
  uh_syncs_stop (sc_diff_fd (a.d));
  struct keep_job copy = { .d = a.d }, keep = { .d = a.d };
  pthread_t th_copy, th_keep;
  pthread_create (&th_copy, NULL, keep_copy_job, &copy);
  cr_assert (uh_syncs_wait_stopped (), "the copy's commit did not sync");
  /* The keep appends its record and waits for that commit: seen once
   * the record is in the journal (appended and waited under the lock). */
  uint64_t records = uh_stats (a.d).journal_records;
  pthread_create (&th_keep, NULL, keep_job, &keep);
  for (int i = 0; i < 20000 && uh_stats (a.d).journal_records == records; i++)
    usleep (1000);
  cr_assert_eq (uh_stats (a.d).journal_records, records + 1,
                "the keep did not append its record");
  /* The copy's commit ends, then writes a checkpoint (no runner). */
  __atomic_store_n (&keep_ckpt_armed, true, __ATOMIC_SEQ_CST);
  sc_ckpt_limit_hook = keep_ckpt_limit;
  uh_syncs_go ();
  pthread_join (th_copy, NULL);
  pthread_join (th_keep, NULL);
  cr_assert_eq (copy.r, 0);
  cr_assert_eq (keep.r, 0);
  cr_assert (uh_find (a.d, "s").checkpoint);
  uh_sb_newest (a.diff_path, &after);
  cr_assert_neq (before.journal_nonce, after.journal_nonce,
                 "no journal checkpoint was written");

  /* A crash now: the file as it is.  The keep returned, so it holds. */
  size_t len;
  uint8_t *img = uh_read_file (a.diff_path, &len);
  uh_area_close (&a);
  uh_write_file (a.diff_path, img, len);
  free (img);
  sc_ckpt_limit_hook = NULL;
  uh_area_open (&a, 0);
  struct sc_snapshot_info s = uh_find (a.d, "s");
  cr_assert (s.checkpoint, "the keep was lost: s is a snapshot again, "
             "and its data was freed");
  cr_assert_eq (s.invalid_reason, SC_VALID);
  uint8_t ch[64];
  cr_assert_eq (changed (a.d, s.id, SC_DIFF_LIVE, 64, 8, ch), 0);
  for (uint64_t k = 0; k < 64; k++)
    cr_assert_eq (ch[k], k < 10 || k == 20, "chunk %lu", (unsigned long) k);
  uh_area_free (&a);
}

/* Pages of one diff read while the volume changes: a diff to the live
 * volume sees a write made between its pages; a diff between two
 * snapshots does not change with later writes, but does with a discard
 * of one of them. */
Test (changes, pages_follow_changes_between_them)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  struct sc_snapshot_info f = make (a.d, "f", false);
  for (uint64_t c = 0; c < 20; c += 2)
    write_chunk (a.d, c, 10 + c);
  struct sc_snapshot_info t = make (a.d, "t", false);
  struct sc_chunk_range r[3];
  size_t n;
  uint64_t next;
  cr_assert_eq (sc_diff_changes (a.d, f.id, SC_DIFF_LIVE, 0, r, 3, &n,
                                 &next), 0);
  cr_assert (n == 3 && r[2].first == 4 && next == 6);
  write_chunk (a.d, 7, 70);
  cr_assert_eq (sc_diff_changes (a.d, f.id, SC_DIFF_LIVE, next, r, 3, &n,
                                 &next), 0);
  cr_assert (n >= 1 && r[0].first == 6 && r[0].count == 3,
             "the write of chunk 7 between pages is seen (%lu+%lu)",
             (unsigned long) r[0].first, (unsigned long) r[0].count);

  cr_assert_eq (sc_diff_changes (a.d, f.id, t.id, 0, r, 3, &n, &next), 0);
  cr_assert (n == 3 && next == 6);
  write_chunk (a.d, 9, 90);                   /* after t: not in f..t */
  cr_assert_eq (sc_diff_snapshot_discard (a.d, t.id, 11, 11), 0);
  cr_assert_eq (sc_diff_changes (a.d, f.id, t.id, next, r, 3, &n, &next),
                0);
  cr_assert (n == 3 && r[0].first == 6 && r[0].count == 1 &&
             r[1].first == 8 && r[1].count == 1 && r[2].first == 10 &&
             r[2].count == 3, "the discard of chunk 11 between pages is "
             "seen, the later write of chunk 9 is not");
  uh_area_free (&a);
}

/* A snapshot kept as a checkpoint while a read of it is in flight: its
 * data comes back when the read ends, so a writer short of space waits
 * for it rather than drop an older snapshot (as after a delete). */
static struct sc_diff *reading_d;
static uint64_t reading_id;

static void *
end_read_later (void *arg)
{
  (void) arg;
  usleep (300 * 1000);
  sc_diff_snapshot_put (reading_d, reading_id);
  return NULL;
}

Test (changes, keep_with_a_read_in_flight_drops_nothing_for_space)
{
  struct uh_area a;
  uh_area_create (&a, 64 * CS, CS, 3);
  sc_diff_set_policy (a.d, SC_ON_FULL_DELETE_OLDEST, 16);
  make (a.d, "old", false);
  for (uint64_t c = 0; c < 8; c++)
    write_chunk (a.d, c, 100 + c);
  struct sc_snapshot_info s = make (a.d, "s", false);
  for (uint64_t c = 0; c < 8; c++)
    write_chunk (a.d, c, 200 + c);
  uint64_t dropped;
  cr_assert_eq (sc_diff_set_max (a.d, uh_stats (a.d).used_bytes, SC_MAX_LAZY,
                                 &dropped), 0);
  cr_assert_eq (sc_diff_snapshot_get (a.d, s.id, NULL), 0);
  reading_d = a.d;
  reading_id = s.id;
  pthread_t t;
  cr_assert_eq (pthread_create (&t, NULL, end_read_later, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "s"), 0);
  cr_assert_eq (uh_copy_reserved (a.d, 20, 300), 0, "the copy for old");
  pthread_join (t, NULL);
  cr_assert_eq (uh_stats (a.d).dropped, 0, "nothing dropped");
  cr_assert_eq (uh_find (a.d, "old").invalid_reason, SC_VALID);
  uh_area_free (&a);
}

/* Damaged copied data costs the snapshots that need it, not the
 * checkpoints: the copy becomes their mark. */
Test (changes, damage_spares_checkpoints)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  struct sc_snapshot_info c = make (a.d, "c", true);
  make (a.d, "s", false);
  uint64_t off = uh_copy_chunk (a.d, 5, 55);
  uint64_t seq;
  cr_assert_eq (sc_diff_mark_changes (a.d, 5, 5, &seq), 0);
  uint8_t junk = 0xa5;
  cr_assert_eq (pwrite (sc_diff_fd (a.d), &junk, 1, off + 100), 1);
  uint8_t *buf = malloc (CS);
  struct sc_copy_verify v;
  cr_assert_eq (sc_diff_verify_next (a.d, 0, buf, &v), 1);
  free (buf);
  cr_assert (v.damaged);
  cr_assert_str_eq (v.needed_by, "s");
  cr_assert_eq (uh_find (a.d, "s").invalid_reason, SC_INVALID_DAMAGED);
  cr_assert_eq (uh_find (a.d, "c").invalid_reason, SC_VALID);
  struct sc_chunk_range r[2];
  size_t n;
  uint64_t next;
  cr_assert_eq (sc_diff_changes (a.d, c.id, SC_DIFF_LIVE, 0, r, 2, &n,
                                 &next), 0);
  cr_assert (n == 1 && r[0].first == 5 && r[0].count == 1);
  cr_assert_eq (uh_stats (a.d).data_slots, 0, "the copy is a mark now");
  uh_area_free (&a);
}

/* resize --max --force with only checkpoints left: the journal is
 * rewritten before a checkpoint is dropped, and that may be enough. */
Test (changes, shrink_compacts_before_dropping_checkpoints)
{
  struct uh_area a;
  uh_area_create (&a, 1024 * CS, CS, 3);
  make (a.d, "s", false);
  for (uint64_t c = 0; c < 1024; c++)
    write_chunk (a.d, c, c + 1);
  cr_assert_eq (sc_diff_snapshot_delete (a.d, "s"), 0);
  make (a.d, "c1", true);
  make (a.d, "c2", true);
  write_chunk (a.d, 5, 7);
  uint64_t dropped = 0;
  cr_assert_eq (sc_diff_set_max (a.d, 24 * CS, SC_MAX_FORCE, &dropped), 0);
  cr_assert_eq (dropped, 0, "a rewrite of the journal was enough");
  cr_assert_eq (uh_stats (a.d).checkpoints, 2);
  cr_assert_leq (uh_stats (a.d).used_bytes, 24 * CS);
  uh_area_free (&a);
}

/* An auto-release snapshot kept as a checkpoint (a backup's snapshot,
 * kept as the base of the next incremental) outlives its session: it
 * is not deleted at the next open. */
Test (changes, a_kept_auto_release_snapshot_stays)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  struct sc_snapshot_opts o = { .auto_release = true };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "backup", &o, NULL), 0);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "backup"), 0);
  cr_assert_not (uh_find (a.d, "backup").auto_release);
  uh_area_reopen (&a, 0);
  struct sc_snapshot_info x = uh_find (a.d, "backup");
  cr_assert (x.checkpoint && !x.auto_release);
  uh_area_free (&a);
}

/* A member of a snapshot set kept as a checkpoint leaves the set, so
 * that deleting the set's snapshots does not take it. */
Test (changes, a_kept_member_of_a_set_leaves_it)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  static const uint8_t set[16] = { 1, 2, 3 };
  struct sc_snapshot_opts o = { .set_id = set };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "m", &o, NULL), 0);
  cr_assert (uh_find (a.d, "m").in_set);
  cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, "m"), 0);
  cr_assert_not (uh_find (a.d, "m").in_set);
  uh_area_reopen (&a, 0);
  cr_assert_not (uh_find (a.d, "m").in_set, "after replay too");
  uh_area_reopen (&a, 0);
  cr_assert_not (uh_find (a.d, "m").in_set, "after a journal checkpoint");
  uh_area_free (&a);
}

Test (changes, max_checkpoints)
{
  struct uh_area a;
  uh_area_create (&a, 16 * CS, CS, 3);
  sc_diff_set_max_checkpoints (a.d, 2);
  make (a.d, "s", false);
  make (a.d, "c1", true);
  make (a.d, "c2", true);
  struct sc_snapshot_opts o = { .checkpoint = true };
  cr_assert_eq (sc_diff_snapshot_create (a.d, "c3", &o, NULL), -EMFILE);
  o.delete_oldest = true;
  cr_assert_eq (sc_diff_snapshot_create (a.d, "c3", &o, NULL), 0);
  struct sc_snapshot_info x;
  cr_assert_eq (sc_diff_snapshot_lookup (a.d, "c1", &x), -ENOENT,
                "the oldest checkpoint went");
  cr_assert_eq (sc_diff_snapshot_lookup (a.d, "s", &x), 0,
                "a snapshot is not dropped for a checkpoint");
  uh_area_free (&a);
}

/* ---- the model ---------------------------------------------------------- *
 *
 * Random writes, snapshots, checkpoints, deletes, keep-checkpoints and
 * reopens.  Each chunk's content is a version number; every point keeps
 * the versions it saw.  Checked after every step: for every pair of
 * valid points (and each against the live volume), the reported chunks
 * are exactly those written in between, and every snapshot still finds
 * each chunk where its version is (the origin, or a copy of it). */

#define MCHUNKS 48
#define MPOINTS 24

struct point {
  bool used;
  char name[16];
  uint64_t id;
  bool ckpt;
  uint64_t ver[MCHUNKS];        /* the content it saw */
};

struct model {
  uint64_t live[MCHUNKS];
  uint64_t next_ver;
  struct point p[MPOINTS];
};

static void
check_pair (struct sc_diff *d, const struct model *m, const struct point *f,
            const struct point *t, size_t page)
{
  uint8_t ch[MCHUNKS];
  int r = changed (d, f->id, t ? t->id : SC_DIFF_LIVE, MCHUNKS, page, ch);
  cr_assert_eq (r, 0, "diff %s %s: %d", f->name, t ? t->name : "live", r);
  for (uint64_t c = 0; c < MCHUNKS; c++) {
    /* Every write makes a new version: written in between is exactly
     * "the versions differ". */
    bool differs = (t ? t->ver[c] : m->live[c]) != f->ver[c];
    cr_assert_eq (ch[c], differs, "diff %s %s: chunk %lu %s", f->name,
                  t ? t->name : "live", (unsigned long) c,
                  differs ? "missed" : "reported, not written since");
  }
}

static void
check_all (struct sc_diff *d, const struct model *m, uint64_t *rng)
{
  for (int i = 0; i < MPOINTS; i++) {
    const struct point *f = &m->p[i];
    if (!f->used)
      continue;
    size_t page = 1 + uh_rand_below (rng, 6);
    check_pair (d, m, f, NULL, page);
    for (int j = 0; j < MPOINTS; j++)
      if (m->p[j].used && m->p[j].id > f->id)
        check_pair (d, m, f, &m->p[j], page);
    if (f->ckpt)
      continue;
    for (uint64_t c = 0; c < MCHUNKS; c++) {
      uint64_t off;
      enum sc_where w = uh_resolve (d, f->name, c, &off);
      if (f->ver[c] == m->live[c])
        cr_assert_eq (w, SC_WHERE_ORIGIN, "%s chunk %lu", f->name,
                      (unsigned long) c);
      else {
        cr_assert_eq (w, SC_WHERE_DIFF, "%s chunk %lu: %d", f->name,
                      (unsigned long) c, w);
        uh_assert_slot_data (d, off, f->ver[c]);
      }
    }
  }
}

static void
model_run (uint64_t seed, int steps)
{
  struct uh_area a;
  uh_area_create (&a, MCHUNKS * CS, CS, 3);
  struct model *m = calloc (1, sizeof *m);
  cr_assert_not_null (m);
  uint64_t rng = seed;
  for (uint64_t c = 0; c < MCHUNKS; c++)
    m->live[c] = ++m->next_ver;
  int named = 0;
  for (int step = 0; step < steps; step++) {
    uint64_t op = uh_rand_below (&rng, 100);
    if (op < 60) {                      /* a write of a few chunks */
      uint64_t c0 = uh_rand_below (&rng, MCHUNKS);
      uint64_t n = 1 + uh_rand_below (&rng, 4);
      for (uint64_t c = c0; c < c0 + n && c < MCHUNKS; c++) {
        write_chunk (a.d, c, m->live[c]);
        m->live[c] = ++m->next_ver;
      }
    }
    else if (op < 78) {                 /* a snapshot or a checkpoint */
      int i = (int) uh_rand_below (&rng, MPOINTS);
      if (m->p[i].used)
        continue;
      struct point *p = &m->p[i];
      p->used = true;
      p->ckpt = uh_rand_below (&rng, 2);
      snprintf (p->name, sizeof p->name, "p%d", named++);
      p->id = make (a.d, p->name, p->ckpt).id;
      memcpy (p->ver, m->live, sizeof p->ver);
    }
    else if (op < 86) {                 /* delete */
      int i = (int) uh_rand_below (&rng, MPOINTS);
      if (!m->p[i].used)
        continue;
      cr_assert_eq (sc_diff_snapshot_delete (a.d, m->p[i].name), 0);
      m->p[i].used = false;
    }
    else if (op < 94) {                 /* keep as a checkpoint */
      int i = (int) uh_rand_below (&rng, MPOINTS);
      if (!m->p[i].used || m->p[i].ckpt)
        continue;
      cr_assert_eq (sc_diff_snapshot_keep_checkpoint (a.d, m->p[i].name), 0);
      m->p[i].ckpt = true;
    }
    else                                /* reopen (replay) */
      uh_area_reopen (&a, 0);
    check_all (a.d, m, &rng);
  }
  uh_area_reopen (&a, SC_DIFF_RDONLY);
  check_all (a.d, m, &rng);
  free (m);
  uh_area_free (&a);
}

Test (changes, model_seed_1) { model_run (1, 400); }
Test (changes, model_seed_2) { model_run (2, 400); }
Test (changes, model_seed_3) { model_run (3, 400); }
Test (changes, model_seed_4) { model_run (4, 400); }

/* The same, each page computed by itself (as past 8M changed chunks),
 * or whole diffs only while they are small (both paths in one run). */
Test (changes, model_pages_alone_seed_5)
{
  sc_changes_whole_max = 0;
  model_run (5, 400);
}

Test (changes, model_pages_mixed_seed_6)
{
  sc_changes_whole_max = 7;
  model_run (6, 400);
}
