/* shadowcopy: the offline check of a diff area (see check.h).
 *
 * Notes on the design
 *
 * The check never writes: the file is opened O_RDONLY, locked shared (so
 * no server can start on it meanwhile, and a running one is reported),
 * and loaded with a read-only sc_diff_open, whose replay is the judge of
 * the journal.  What that open accepts silently is then looked at here,
 * on the raw file:
 *
 * - Both superblock copies, with sc_sb_check.  The open needs one valid
 *   copy; the check wants both.
 * - The journal is replayed once more (sc_journal_replay, with a callback
 *   that only collects the copy records), to learn where it ends and
 *   which chunks have copies.  The rest of the last journal slot must be
 *   zeros: slots are zeroed when taken (one stray byte is a warning).
 * - The data slots of the kept copies are read back.  They are found with
 *   the same resolution snapshot reads use (sc_diff_resolve), for every
 *   valid snapshot and every chunk with a copy record; per chunk the walk
 *   jumps from one recorded copy epoch to the next, so it costs about one
 *   lookup per copy record, however many snapshots there are.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/array.h"
#include "cow/check.h"
#include "cow/diffarea.h"
#include "cow/io.h"
#include "cow/journal.h"
#include "cow/superblock.h"

/* Data slots are read in batches of at most this many, and this much. */
#define READ_BATCH 16
#define READ_BATCH_BYTES (4u << 20)

static void __attribute__((format (printf, 4, 5)))
finding (struct sc_check_report *rep, enum sc_check_severity severity,
         uint64_t offset, const char *fmt, ...)
{
  if (severity == SC_CHECK_DAMAGE)
    rep->damage++;
  else
    rep->warnings++;
  if (rep->nfindings >= SC_CHECK_FINDINGS_MAX)
    return;
  if (!rep->findings) {
    rep->findings = calloc (SC_CHECK_FINDINGS_MAX, sizeof *rep->findings);
    if (!rep->findings)
      return;                   /* counted, not described */
  }
  struct sc_check_finding *f = &rep->findings[rep->nfindings++];
  f->severity = severity;
  f->offset = offset;
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (f->what, sizeof f->what, fmt, ap);
  va_end (ap);
}

void
sc_check_report_free (struct sc_check_report *rep)
{
  free (rep->findings);
  rep->findings = NULL;
  rep->nfindings = 0;
}

/* ---- superblocks ---------------------------------------------------- */

static void
check_superblocks (int fd, struct sc_check_report *rep)
{
  uint8_t blocks[SC_SB_COPIES][SC_SB_SIZE];
  int r = sc_io_pread (fd, blocks, sizeof blocks, 0);
  if (r < 0) {
    for (int i = 0; i < SC_SB_COPIES; i++)
      snprintf (rep->sb[i].why, sizeof rep->sb[i].why, "cannot be read");
    finding (rep, SC_CHECK_DAMAGE, 0, "reading the superblocks at offsets "
             "0-%d: %s", SC_SB_AREA - 1, strerror (-r));
    return;
  }

  int res[SC_SB_COPIES];
  for (int i = 0; i < SC_SB_COPIES; i++) {
    const char *why = NULL;
    struct sc_check_sb *s = &rep->sb[i];
    res[i] = sc_sb_check (blocks[i], &why);
    if (res[i] == 0) {
      s->valid = true;
      s->generation = ((const struct sc_sb_disk *) blocks[i])->generation;
    }
    else if (rep->file_bytes <= (uint64_t) i * SC_SB_SIZE)
      snprintf (s->why, sizeof s->why, "missing (the file ends before it)");
    else if (sc_io_all_zero (blocks[i], SC_SB_SIZE))
      snprintf (s->why, sizeof s->why, "missing (all zeros)");
    else
      snprintf (s->why, sizeof s->why, "%s", why);
  }

  /* Both damaged, a newer format, copies that disagree: the open refuses
   * those with a message of its own.  One damaged copy next to a valid
   * one is what it lets pass. */
  if (res[0] == -EPROTONOSUPPORT || res[1] == -EPROTONOSUPPORT ||
      (res[0] == 0) == (res[1] == 0))
    return;
  int bad = res[0] == 0 ? 1 : 0;
  finding (rep, SC_CHECK_DAMAGE, (uint64_t) bad * SC_SB_SIZE,
           "superblock copy %c at offset %d is damaged: %s; copy %c is "
           "valid, so the diff area still loads, but without a second "
           "copy (the next read-write open rewrites copy %c)",
           "AB"[bad], bad * SC_SB_SIZE, rep->sb[bad].why, "AB"[1 - bad],
           "AB"[bad]);
}

/* ---- the journal ------------------------------------------------------ */

struct copy_rec { uint64_t chunk; uint32_t epoch; };

struct collect {
  struct copy_rec *v;
  size_t n, cap;
};

static int
collect_copy (void *opaque, const struct sc_rec_hdr *h, uint64_t durable,
              char *err, size_t errlen)
{
  struct collect *c = opaque;
  if (h->type != SC_REC_COPY && h->type != SC_REC_COPY_SUMS)
    return 0;
  /* Both kinds of copy record start with the chunk and the epoch. */
  const struct sc_rec_copy_sums *r = (const void *) h;
  static_assert (offsetof (struct sc_rec_copy, chunk)
                 == offsetof (struct sc_rec_copy_sums, chunk) &&
                 offsetof (struct sc_rec_copy, epoch)
                 == offsetof (struct sc_rec_copy_sums, epoch),
                 "copy records agree on chunk and epoch");
  struct copy_rec *v = sc_array_room (c->v, &c->cap, c->n, sizeof *v, 1024);
  if (!v) {
    snprintf (err, errlen, "out of memory");
    return -ENOMEM;
  }
  c->v = v;
  c->v[c->n++] = (struct copy_rec) { .chunk = r->chunk, .epoch = r->epoch };
  return 0;
}

/* The rest of the journal's last slot, after its last valid record. */
static void
check_tail (int fd, const struct sc_sb_disk *sb, uint32_t cs,
            uint64_t slot, uint32_t end_pos, uint64_t end_seq,
            struct sc_check_report *rep)
{
  if (end_pos >= cs)
    return;
  uint64_t start = slot * cs + end_pos;
  size_t len = cs - end_pos;
  uint8_t *buf = malloc (len);
  if (!buf) {
    finding (rep, SC_CHECK_WARNING, start, "out of memory: the end of the "
             "journal at offset %" PRIu64 " was not checked", start);
    return;
  }
  int r = sc_io_pread (fd, buf, len, start);
  if (r < 0) {
    finding (rep, SC_CHECK_DAMAGE, start, "journal slot %" PRIu64
             ": the bytes after the journal's end (offsets %" PRIu64 "-%"
             PRIu64 ") cannot be read: %s", slot, start, start + len - 1,
             strerror (-r));
    free (buf);
    return;
  }
  size_t first = len, last = 0, nonzero = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i]) {
      if (first == len)
        first = i;
      last = i;
      nonzero++;
    }
  free (buf);
  if (first == len)
    return;

  /* One byte is no record (none has fewer than three non-zero bytes),
   * and replay does not read it (docs/design.md, "Damage is not a torn
   * tail"): a stray byte, not damage, even after a clean close. */
  if (nonzero == 1)
    finding (rep, SC_CHECK_WARNING, start + first, "journal slot %" PRIu64
             ": one stray non-zero byte at offset %" PRIu64 " after the "
             "end of the journal (offset %" PRIu64 ", before record %"
             PRIu64 "); no record is that short, so it is harmless", slot,
             start + first, start, end_seq);
  else if (sb->flags & SC_SB_CLEAN)
    finding (rep, SC_CHECK_DAMAGE, start + first, "journal slot %" PRIu64
             ": non-zero bytes at offsets %" PRIu64 "-%" PRIu64 " after "
             "the end of the journal (offset %" PRIu64 "), which was "
             "closed cleanly at record %" PRIu64 ": nothing may follow it",
             slot, start + first, start + last, start, end_seq);
  else
    finding (rep, SC_CHECK_WARNING, start + first, "torn journal tail in "
             "slot %" PRIu64 ": non-zero bytes at offsets %" PRIu64 "-%"
             PRIu64 " after the last valid record (the journal ends at "
             "offset %" PRIu64 ", before record %" PRIu64 "); left by an "
             "unclean stop, the next start drops it", slot, start + first,
             start + last, start, end_seq);
}

/* ---- data slots ------------------------------------------------------- */

struct slot_ref { uint64_t off; uint64_t chunk; };

static int
cmp_copy_rec (const void *a, const void *b)
{
  const struct copy_rec *x = a, *y = b;
  if (x->chunk != y->chunk)
    return x->chunk < y->chunk ? -1 : 1;
  return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static int
cmp_slot_ref (const void *a, const void *b)
{
  const struct slot_ref *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

static int
cmp_u32 (const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
  return x < y ? -1 : x > y;
}

/* First index of a[0..n) with a[i] >= e (or > e with `after`). */
static size_t
bound (const uint32_t *a, size_t n, uint32_t e, bool after)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < e || (after && a[mid] == e))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The data slots of the copies the valid snapshots (epochs `valid`,
 * ascending) read, given every copy record of the journal. */
static int
find_data_slots (struct sc_diff *d, struct copy_rec *recs, size_t nrecs,
                 const uint32_t *valid, size_t nvalid,
                 struct slot_ref **out, size_t *nout)
{
  struct slot_ref *v = NULL;
  size_t n = 0, cap = 0;
  uint32_t *epochs = malloc ((nrecs ? nrecs : 1) * sizeof *epochs);
  if (!epochs)
    return -ENOMEM;
  if (nrecs)
    qsort (recs, nrecs, sizeof *recs, cmp_copy_rec);
  for (size_t g = 0; g < nrecs;) {
    uint64_t chunk = recs[g].chunk;
    size_t m = 0;
    for (; g < nrecs && recs[g].chunk == chunk; g++)
      epochs[m++] = recs[g].epoch;
    /* Snapshots with epochs between two recorded copy epochs all read
     * the same copy (the oldest kept one after them). */
    size_t i = 0;
    while (i < nvalid) {
      uint64_t off;
      enum sc_where w = sc_diff_resolve (d, valid[i], chunk, &off);
      if (w == SC_WHERE_ORIGIN)
        break;
      if (w == SC_WHERE_DIFF) {
        if (n == cap) {
          size_t c = cap ? cap * 2 : 256;
          struct slot_ref *nv = realloc (v, c * sizeof *nv);
          if (!nv) {
            free (v);
            free (epochs);
            return -ENOMEM;
          }
          v = nv;
          cap = c;
        }
        v[n++] = (struct slot_ref) { .off = off, .chunk = chunk };
      }
      size_t k = bound (epochs, m, valid[i], true);
      if (k == m)
        break;
      i = bound (valid, nvalid, epochs[k], false);
    }
  }
  free (epochs);
  if (n)
    qsort (v, n, sizeof *v, cmp_slot_ref);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || v[u - 1].off != v[i].off)
      v[u++] = v[i];
  *out = v;
  *nout = u;
  return 0;
}

/* Read slots s[0..n) back: the copies' (clone NULL) or clone's. */
static int
read_data_slots (int fd, uint32_t cs, const struct slot_ref *s, size_t n,
                 const char *clone, struct sc_check_report *rep)
{
  size_t per = READ_BATCH_BYTES / cs;
  if (per > READ_BATCH)
    per = READ_BATCH;
  if (per == 0)
    per = 1;
  uint8_t *buf = malloc (per * cs);
  if (!buf)
    return -ENOMEM;
  struct sc_io_req reqs[READ_BATCH];
  for (size_t i = 0; i < n;) {
    size_t k = n - i < per ? n - i : per;
    for (size_t j = 0; j < k; j++)
      reqs[j] = (struct sc_io_req) {
        .op = SC_IO_READ, .fd = fd, .buf = buf + j * cs, .len = cs,
        .off = s[i + j].off,
      };
    (void) sc_io_run (reqs, k);   /* each request has its own result */
    for (size_t j = 0; j < k; j++, i++) {
      if (reqs[j].result == 0)
        rep->data_slots_read++;
      else
        finding (rep, SC_CHECK_DAMAGE, s[i].off, "data slot %" PRIu64
                 " at offset %" PRIu64 " (%s chunk %" PRIu64 "%s%s) cannot "
                 "be read: %s", s[i].off / cs, s[i].off,
                 clone ? "" : "a copy of", s[i].chunk,
                 clone ? " of clone " : "", clone ? clone : "",
                 strerror (-reqs[j].result));
    }
  }
  free (buf);
  return 0;
}

/* Read clone `id`'s slots back, in file order. */
static int
read_clone_slots (int fd, uint32_t cs, struct sc_diff *d,
                  const struct sc_snapshot_info *c,
                  struct sc_check_report *rep)
{
  struct sc_clone_slot *v;
  size_t n;
  int r = sc_diff_clone_slots (d, c->id, &v, &n);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return r;
  struct slot_ref *s = malloc ((n ? n : 1) * sizeof *s);
  if (!s) {
    free (v);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    s[i] = (struct slot_ref) { v[i].offset, v[i].chunk };
  free (v);
  qsort (s, n, sizeof *s, cmp_slot_ref);
  r = read_data_slots (fd, cs, s, n, c->name, rep);
  free (s);
  return r;
}

/* Every data copy against its checksums, through the verified read of
 * cow/ (sc_diff_verify_next); the open is read-only, so damage is only
 * reported. */
static int
verify_data (struct sc_diff *d, uint32_t cs, struct sc_check_report *rep)
{
  uint8_t *buf = malloc (cs);
  if (!buf)
    return -ENOMEM;
  rep->data_checked = true;
  struct sc_copy_verify v;
  for (uint64_t slot = 0;; slot = v.slot + 1) {
    int r = sc_diff_verify_next (d, slot, buf, &v);
    if (r == 0)
      break;
    if (v.walk_failed) {        /* not damage: the check cannot go on */
      free (buf);
      return r;
    }
    uint64_t off = v.slot * cs;
    if (r < 0) {
      finding (rep, SC_CHECK_DAMAGE, off, "data slot %" PRIu64 " at offset %"
               PRIu64 " (the copy of chunk %" PRIu64 ") cannot be read: %s",
               v.slot, off, v.chunk, strerror (-r));
      continue;
    }
    rep->copies_verified++;
    rep->bytes_verified += v.bytes;
    if (!v.damaged)
      continue;
    rep->copies_damaged++;
    finding (rep, SC_CHECK_DAMAGE, off, "the copy of chunk %" PRIu64 " in "
             "data slot %" PRIu64 " at offset %" PRIu64 " failed its "
             "checksum (block %u, offset %" PRIu64 "): %s%s", v.chunk,
             v.slot, off, v.block,
             off + (uint64_t) v.block * sc_sums_block (cs),
             v.needed_by[0] ? "needed by snapshot(s) " : "no valid snapshot "
             "needs it", v.needed_by);
  }
  free (buf);
  return 0;
}

/* ---- the check -------------------------------------------------------- */

/* What an open of a damaged diff area says, without the path it starts
 * with (the report is about that file anyway). */
static const char *
strip_path (const char *msg, const char *path)
{
  size_t n = strlen (path);
  if (strncmp (msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
    return msg + n + 2;
  return msg;
}

/* Everything after a successful open. */
/* The listed snapshots, checkpoints and clones counted into rep; the
 * epochs of the valid snapshots into valid[] (sorted; their count is
 * returned), the clones' places in snaps into clone_at[].  Checkpoints
 * read no data: only snapshots' slots are looked at.  A clone has its
 * base's epoch and slots of its own (replay checked their records, check
 * --data their sums): counted apart, no epoch of its own; its slots are
 * read back by id. */
static size_t
count_listed (const struct sc_snapshot_info *snaps, size_t nsnaps,
              uint32_t *valid, size_t *clone_at,
              struct sc_check_report *rep)
{
  size_t nvalid = 0, nvalid_ckpts = 0;
  for (size_t i = 0; i < nsnaps; i++)
    if (snaps[i].clone) {
      clone_at[rep->clones++] = i;
      rep->clones_valid += snaps[i].invalid_reason == SC_VALID;
    }
    else if (snaps[i].invalid_reason == SC_VALID && snaps[i].checkpoint)
      nvalid_ckpts++;
    else if (snaps[i].invalid_reason == SC_VALID)
      valid[nvalid++] = snaps[i].epoch;
  rep->snapshots = nsnaps - rep->clones;
  rep->snapshots_valid = nvalid + nvalid_ckpts;
  rep->snapshots_invalid = rep->snapshots - rep->snapshots_valid;
  rep->clones_invalid = rep->clones - rep->clones_valid;
  qsort (valid, nvalid, sizeof *valid, cmp_u32);
  return nvalid;
}

static int
check_loaded (int fd, struct sc_diff *d, unsigned flags,
              struct sc_check_report *rep, char *err, size_t errlen)
{
  struct sc_diff_stats st;
  sc_diff_stats (d, &st);
  uint32_t cs = st.chunk_size;
  rep->loaded = true;
  rep->chunk_size = cs;
  rep->volume_size = st.volume_size;
  rep->epoch = st.epoch;
  rep->copies = st.copies;
  rep->data_slots = st.data_slots;
  rep->clone_slots = st.clone_slots;
  uint64_t copy_slots = st.data_slots - st.clone_slots;
  rep->zero_copies = st.copies >= copy_slots ? st.copies - copy_slots : 0;
  rep->journal_records = st.journal_records;
  rep->journal_slots = st.journal_slots;
  rep->used_bytes = st.used_bytes;
  rep->free_slots = st.free_slots;
  rep->free_bytes = st.free_slots * cs;

  struct sc_snapshot_info *snaps = NULL;
  size_t nsnaps = 0;
  int r = sc_diff_snapshot_list (d, &snaps, &nsnaps);
  if (r < 0) {
    snprintf (err, errlen, "listing the snapshots: %s", strerror (-r));
    return r;
  }
  uint32_t *valid = malloc ((nsnaps ? nsnaps : 1) * sizeof *valid);
  if (!valid) {
    free (snaps);
    snprintf (err, errlen, "out of memory");
    return -ENOMEM;
  }
  size_t *clone_at = malloc ((nsnaps ? nsnaps : 1) * sizeof *clone_at);
  if (!clone_at) {
    free (valid);
    free (snaps);
    snprintf (err, errlen, "out of memory");
    return -ENOMEM;
  }
  size_t nvalid = count_listed (snaps, nsnaps, valid, clone_at, rep);

  /* The same superblock the open chose: the file is locked and read
   * only, nothing has changed since. */
  struct sc_sb_disk sb;
  char msg[1024] = "";
  struct collect col = { .v = NULL };
  uint64_t *chain = NULL;
  size_t nchain = 0;
  struct slot_ref *slots = NULL;
  size_t nslots = 0;
  r = sc_sb_load (fd, &sb, msg, sizeof msg);
  if (r < 0) {
    finding (rep, SC_CHECK_DAMAGE, SC_CHECK_NOWHERE, "%s", msg);
    r = 0;
    goto out;
  }
  rep->sb_flags = sb.flags;
  rep->journal_head_offset = sb.journal_head * cs;

  uint64_t max_slot = (rep->file_bytes + cs - 1) / cs;
  uint32_t end_pos = 0;
  uint64_t records = 0, end_seq = 0;
  struct sc_journal_marks marks;
  uint64_t durable = sb.flags & SC_SB_CLEAN ? sb.clean_seq - 1 : 0;
  unsigned jflags = sb.flags & SC_SB_CLEAN ? SC_JOURNAL_CLEAN
                    : sb.flags & SC_SB_VOLATILE ? SC_JOURNAL_TORN_ANY : 0;
  r = sc_journal_replay (fd, cs, sc_journal_seed (sb.uuid, sb.journal_nonce),
                         sb.journal_head, sb.journal_seq, max_slot, jflags,
                         collect_copy, NULL, &col, &chain, &nchain, &end_pos,
                         &records, &end_seq, &durable, &marks, msg,
                         sizeof msg);
  if (r == -ENOMEM) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  if (r < 0 || nchain == 0) {
    finding (rep, SC_CHECK_DAMAGE, SC_CHECK_NOWHERE, "replaying the "
             "journal again: %s", r < 0 ? msg : "no journal slot");
    r = 0;
    goto out;
  }
  if (marks.count)
    finding (rep, SC_CHECK_WARNING, marks.first_offset, "journal record %"
             PRIu64 " at offset %" PRIu64 " is a damaged commit marker%s: "
             "it holds no state, so replay goes past it, trusting "
             "nothing it said", marks.first_seq,
             marks.first_offset, marks.count > 1 ? " (and others)" : "");
  uint64_t last = chain[nchain - 1];
  rep->journal_end_offset = last * cs + end_pos;
  check_tail (fd, &sb, cs, last, end_pos, end_seq, rep);

  r = find_data_slots (d, col.v, col.n, valid, nvalid, &slots, &nslots);
  if (r == 0)
    r = read_data_slots (fd, cs, slots, nslots, NULL, rep);
  for (size_t i = 0; r == 0 && i < rep->clones; i++)
    r = read_clone_slots (fd, cs, d, &snaps[clone_at[i]], rep);
  if (r == 0 && (flags & SC_CHECK_DATA) && (r = verify_data (d, cs, rep)) < 0
      && r != -ENOMEM)
    snprintf (err, errlen, "the checksums of the copies cannot be read: %s",
              strerror (-r));
  else if (r < 0)
    snprintf (err, errlen, "out of memory");

 out:
  free (slots);
  free (chain);
  free (col.v);
  free (valid);
  free (clone_at);
  free (snaps);
  return r;
}

int
sc_diff_check (const char *path, struct sc_check_report *rep, char *err,
               size_t errlen)
{
  return sc_diff_check_with (path, 0, rep, err, errlen);
}

int
sc_diff_check_with (const char *path, unsigned flags,
                    struct sc_check_report *rep, char *err, size_t errlen)
{
  memset (rep, 0, sizeof *rep);

  /* Our own descriptor, locked shared for the whole check: a server that
   * starts meanwhile is refused, one that runs is reported. */
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    int e = errno;
    snprintf (err, errlen, "%s: %s", path, strerror (e));
    return -e;
  }
  struct stat st;
  if (fstat (fd, &st) == -1) {
    int e = errno;
    snprintf (err, errlen, "%s: %s", path, strerror (e));
    close (fd);
    return -e;
  }
  if (!S_ISREG (st.st_mode)) {
    snprintf (err, errlen, "%s: not a diff area: %s", path,
              S_ISDIR (st.st_mode) ? "it is a directory"
                                   : "not a regular file");
    close (fd);
    return -EINVAL;
  }
  if (flock (fd, LOCK_SH | LOCK_NB) == -1) {
    int e = errno;
    if (e == EWOULDBLOCK)
      snprintf (err, errlen, "%s: the diff area is in use by another "
                "process (a running server?): check it when it is stopped",
                path);
    else
      snprintf (err, errlen, "%s: flock: %s", path, strerror (e));
    close (fd);
    return -e;
  }
  rep->file_bytes = st.st_size;

  check_superblocks (fd, rep);

  struct sc_diff *d = NULL;
  char msg[1024] = "";
  int r = sc_diff_open (path, SC_DIFF_RDONLY | SC_DIFF_NOWAIT, NULL, 0, &d,
                        msg, sizeof msg);
  if (r == -EPROTONOSUPPORT) {
    /* Not damaged, as far as we can tell: too new to judge. */
    const char *why = strip_path (msg, path);
    const char *prefix = "damaged or foreign diff area: ";
    if (strncmp (why, prefix, strlen (prefix)) == 0)
      why += strlen (prefix);
    snprintf (err, errlen, "%s: cannot check it: %s", path, why);
    sc_check_report_free (rep);
    close (fd);
    return r;
  }
  if (r < 0) {
    switch (r) {
    case -ENOMEM:
    case -EWOULDBLOCK:
    case -ENOENT:
    case -EACCES:
    case -EPERM:
    /* No room or no place for the scratch file of the checksums (in the
     * diff area's directory, $TMPDIR or /tmp): not the diff area's
     * fault. */
    case -EROFS:
    case -ENOSPC:
    case -EDQUOT:
    case -EMFILE:
    case -ENFILE:
      snprintf (err, errlen, "%s", msg);
      sc_check_report_free (rep);
      close (fd);
      return r;
    }
    /* A scratch file that failed (or a cache full of pages waiting for
     * space on its file system) is not the diff area's fault either. */
    if (r == -EBUSY || strstr (msg, SC_DIFF_SCRATCH_FAILED)) {
      snprintf (err, errlen, "%s", msg);
      sc_check_report_free (rep);
      close (fd);
      return r;
    }
    /* Everything else the open refuses is damage, and its message says
     * what and where. */
    finding (rep, SC_CHECK_DAMAGE, SC_CHECK_NOWHERE, "%s",
             strip_path (msg, path));
    close (fd);
    return 0;
  }

  r = check_loaded (fd, d, flags, rep, msg, sizeof msg);
  sc_diff_close (d);            /* read-only: writes nothing */
  close (fd);
  if (r < 0) {
    snprintf (err, errlen, "%s: %s", path, msg);
    sc_check_report_free (rep);
  }
  return r;
}
