/* shadowcopy: the origin's stamp: is the origin as the server left it?
 *
 * Notes on the design
 *
 * A snapshot's unchanged chunks are read from the origin, so a write to
 * the origin that did not come through shadowcopy (the server stopped,
 * an administrator loop-mounts the disk image) silently changes every
 * snapshot.  The superblock keeps a stamp of the origin, what the engine
 * can learn of its content cheaply (struct sc_origin_stamp): a file's
 * size, mtime and ctime, a block device's write counters and the boot
 * they count from, and the CRC32C of a few sampled blocks.
 *
 * The stamp is only worth comparing if it describes the origin as the
 * server left it, so its state says which it is (cow/format.h):
 * UNWRITTEN, taken at open or at a clean stop with no write of the
 * server since; WRITTEN, the server wrote (or was about to write) the
 * origin after it was taken, which the engine records durably before
 * its first write of a session.  After an unclean stop with writes the
 * origin cannot be checked: its times and counters moved with the
 * server's own writes, and invalidating then would turn every kill -9
 * into lost snapshots.  docs/design.md lists what is caught.
 *
 * A server's clean stop also sets the flag CLEAN_STOP on the stamp it
 * leaves (the offline CLI carries it as it is).  With WRITTEN, it says
 * that the stop was clean but its stamp could not be taken; with
 * UNWRITTEN, that the server did not write the origin behind the stamp.
 * Without it, an UNWRITTEN stamp may still hide the server's own writes:
 * if the store of WRITTEN failed, and so did the one recording the diff
 * area's failure, the server wrote the origin without copying.  So
 * origin-changed=accept keeps snapshots only after a clean stop.
 *
 * The stamp is the engine's: cow/ never opens the origin.  An offline
 * open (the CLI) leaves the stamp as it found it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cow/diffarea-internal.h"
#include "cow/io.h"

/* splitmix64: fixed pseudo-random sample positions. */
static uint64_t
mix (uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void
sc_origin_stamp_sample (uint64_t size, uint32_t i, uint64_t *off,
                        uint32_t *len)
{
  uint64_t blocks = (size + SC_STAMP_SAMPLE_SIZE - 1) / SC_STAMP_SAMPLE_SIZE;
  uint64_t b = i == 0 ? 0 : i == 1 ? blocks - 1 : mix (i) % blocks;
  *off = b * SC_STAMP_SAMPLE_SIZE;
  uint64_t left = size - *off;
  *len = left < SC_STAMP_SAMPLE_SIZE ? (uint32_t) left : SC_STAMP_SAMPLE_SIZE;
}

static void
stamp_put (struct sc_sb_disk *sb, const struct sc_origin_stamp *st)
{
  sb->stamp_state = st ? SC_STAMP_UNWRITTEN : SC_STAMP_NONE;
  sb->stamp_flags = st ? st->flags & (SC_STAMP_F_TIMES |
                                      SC_STAMP_F_COUNTERS) : 0;
  sb->stamp_time_ns = st ? diff_now_ns () : 0;
  sb->stamp_size = st ? st->size : 0;
  sb->stamp_mtime_ns = st ? st->mtime_ns : 0;
  sb->stamp_ctime_ns = st ? st->ctime_ns : 0;
  memset (sb->stamp_boot_id, 0, sizeof sb->stamp_boot_id);
  if (st)
    memcpy (sb->stamp_boot_id, st->boot_id, sizeof sb->stamp_boot_id);
  sb->stamp_write_ios = st ? st->write_ios : 0;
  sb->stamp_write_sectors = st ? st->write_sectors : 0;
  sb->stamp_discard_ios = st ? st->discard_ios : 0;
  sb->stamp_discard_sectors = st ? st->discard_sectors : 0;
  sb->stamp_diskseq = st ? st->diskseq : 0;
  sb->stamp_nsamples = st && st->nsamples <= SC_STAMP_SAMPLES
                       ? st->nsamples : 0;
  memset (sb->stamp_sample_crc, 0, sizeof sb->stamp_sample_crc);
  for (uint32_t i = 0; i < sb->stamp_nsamples; i++)
    sb->stamp_sample_crc[i] = st->sample_crc[i];
}

/* "2024-05-01 10:00:00.123456789 UTC" */
static const char *
when (uint64_t ns, char *buf, size_t len)
{
  time_t s = (time_t) (ns / 1000000000u);
  struct tm tm;
  char day[32];
  if (!gmtime_r (&s, &tm) ||
      strftime (day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    snprintf (buf, len, "%" PRIu64 " ns", ns);
  else
    snprintf (buf, len, "%s.%09u UTC", day, (unsigned) (ns % 1000000000u));
  return buf;
}

/* Append "; "-separated parts to a message. */
struct msg { char *buf; size_t len, used; };
static void __attribute__((format (printf, 2, 3)))
msg_add (struct msg *m, const char *fmt, ...)
{
  if (m->used + 3 >= m->len)
    return;
  if (m->used)
    m->used += (size_t) snprintf (m->buf + m->used, m->len - m->used, "; ");
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (m->buf + m->used, m->len - m->used, fmt, ap);
  va_end (ap);
  if (n > 0)
    m->used += (size_t) n < m->len - m->used ? (size_t) n
                                             : m->len - m->used - 1;
}

/* Can a block device's counters in `now` be compared with the recorded
 * ones?  Only if both have them, and they count in the same boot and the
 * same incarnation of the device (its disk sequence number).  A device
 * removed and made again under the same MAJ:MIN restarts them at 0, and
 * a kernel without diskseq does not say so: counters that went
 * backwards were not moved by writes, and are not compared either. */
static bool
counters_comparable (const struct sc_sb_disk *sb,
                     const struct sc_origin_stamp *now)
{
  return (sb->stamp_flags & now->flags & SC_STAMP_F_COUNTERS) &&
         memcmp (sb->stamp_boot_id, now->boot_id, 16) == 0 &&
         sb->stamp_diskseq == now->diskseq &&
         now->write_ios >= sb->stamp_write_ios &&
         now->write_sectors >= sb->stamp_write_sectors &&
         now->discard_ios >= sb->stamp_discard_ios &&
         now->discard_sectors >= sb->stamp_discard_sectors;
}

/* Does `now` differ from the recorded stamp?  Says how in m.  *counted:
 * the write counters could be compared (counters_comparable). */
static bool
stamp_differs (const struct sc_sb_disk *sb, const struct sc_origin_stamp *now,
               struct msg *m, bool *counted)
{
  char a[64], b[64];
  *counted = false;
  if (sb->stamp_size != now->size)
    msg_add (m, "its size changed from %" PRIu64 " to %" PRIu64 " bytes",
             sb->stamp_size, now->size);
  /* A block device's counters may be missing on one side (the kernel did
   * not offer them): then, as after a reboot, only the samples count. */
  if ((sb->stamp_flags & SC_STAMP_F_TIMES) != (now->flags & SC_STAMP_F_TIMES))
    msg_add (m, "it is not the same kind of disk (file or block device)");
  if (sb->stamp_flags & now->flags & SC_STAMP_F_TIMES) {
    if (sb->stamp_mtime_ns != now->mtime_ns)
      msg_add (m, "its mtime changed from %s to %s",
               when (sb->stamp_mtime_ns, a, sizeof a),
               when (now->mtime_ns, b, sizeof b));
    if (sb->stamp_ctime_ns != now->ctime_ns)
      msg_add (m, "its ctime (changed by any write) changed from %s to %s",
               when (sb->stamp_ctime_ns, a, sizeof a),
               when (now->ctime_ns, b, sizeof b));
  }
  if (counters_comparable (sb, now)) {
    /* Sectors, not I/Os: a flush (the server's own, at open) may count
     * as a write of no sector. */
    *counted = true;
    if (sb->stamp_write_sectors != now->write_sectors)
      msg_add (m, "the block device's write counters moved from %" PRIu64
               " writes (%" PRIu64 " sectors) to %" PRIu64 " writes (%"
               PRIu64 " sectors)", sb->stamp_write_ios,
               sb->stamp_write_sectors, now->write_ios, now->write_sectors);
    if (sb->stamp_discard_sectors != now->discard_sectors)
      msg_add (m, "the block device's discard counters moved from %" PRIu64
               " discards (%" PRIu64 " sectors) to %" PRIu64 " discards (%"
               PRIu64 " sectors)", sb->stamp_discard_ios,
               sb->stamp_discard_sectors, now->discard_ios,
               now->discard_sectors);
  }
  if (sb->stamp_nsamples != now->nsamples)
    msg_add (m, "%" PRIu32 " blocks were sampled at the stop, %" PRIu32
             " now", sb->stamp_nsamples, now->nsamples);
  else {
    uint32_t bad = 0, first = 0;
    for (uint32_t i = 0; i < now->nsamples; i++)
      if (sb->stamp_sample_crc[i] != now->sample_crc[i] && bad++ == 0)
        first = i;
    if (bad) {
      uint64_t off;
      uint32_t len;
      sc_origin_stamp_sample (now->size, first, &off, &len);
      msg_add (m, "%" PRIu32 " of %" PRIu32 " sampled blocks differ (the "
               "first at byte %" PRIu64 ")", bad, now->nsamples, off);
    }
  }
  return m->used > 0;
}

/* Every listed valid snapshot becomes invalid, durably.  Returns how
 * many, or a negative errno (the diff area fails). */
static int
invalidate_all (struct sc_diff *d)
{
  struct txn t;
  uint8_t rec[SC_REC_MAX];
  int r = 0, n = 0;
  txn_begin (d, &t);
  for (size_t i = 0; r == 0 && i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    if (s->deleted || s->info.invalid_reason != SC_VALID)
      continue;
    struct sc_snapshot_info info = s->info;
    info.invalid_reason = SC_INVALID_ORIGIN_CHANGED;
    info.invalid_errno = 0;
    info.invalid_chunk = 0;
    r = txn_append (d, &t, rec, rec_invalid (rec, &info));
  }
  if (r < 0)
    return r;
  for (size_t i = 0; i < d->nsnaps; i++) {
    struct snap *s = d->snaps[i];
    if (s->deleted || s->info.invalid_reason != SC_VALID)
      continue;
    snap_set_invalid (d, s, SC_INVALID_ORIGIN_CHANGED, 0, 0);
    d->invalidations++;
    n++;
    diff_say ("snapshot %s (id %" PRIu64 ") is now invalid: %s",
              s->info.name, s->info.id,
              sc_invalid_reason_text (SC_INVALID_ORIGIN_CHANGED));
  }
  if (n && (r = txn_commit (d, &t)) < 0)
    return r;
  return n;
}

/* The disk changed while no server ran: the change is known from now on
 * only through the stamp it replaces, so sb, to be stored with that
 * stamp, gets a new session id too.  The writes of a log left before
 * the change are then dropped by every later open, not only by this one
 * (cow/session.c), should this one stop before it has dealt with the
 * log (review 34). */
static int
change_session (struct sc_diff *d, struct sc_sb_disk *sb)
{
  uint64_t id;
  int r = diff_session_new_id (d, &id);
  if (r < 0)
    return r;
  sb->session_id = id;
  sb->wblog_session = 0;        /* (that log's writes are not to come) */
  return 0;
}

/* Why the disk (named `path`) cannot be checked this time: its stamp is
 * NONE or WRITTEN. */
static void
say_unchecked (struct sc_diff *d, const char *path)
{
  if (d->sb.stamp_state == SC_STAMP_NONE)
    diff_say ("%s: the diff area holds no record of the disk as the "
              "server left it (made by an older shadowcopy, or the record "
              "could not be taken): changes made while the server was "
              "stopped cannot be checked this time", path);
  else if (d->sb.stamp_flags & SC_STAMP_F_CLEAN_STOP)
    diff_say ("%s: the disk's state was not recorded at the last stop, "
              "after the server had written it (that server ran with "
              "origin-check=off, or the disk's flush or a read of it "
              "failed at its stop): a change made to it while the server "
              "was stopped is not checked this time", path);
  else
    diff_say ("%s: the server stopped uncleanly after writing the disk: "
              "a change made to it while the server was stopped cannot be "
              "told from the server's own writes, so it is not checked "
              "this time", path);
}

int
sc_diff_origin_check (struct sc_diff *d, const struct sc_origin_stamp *now,
                      const char *why, unsigned flags)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (d->rdonly || !d->have_journal)
    return -EROFS;
  size_t valid = 0;
  for (size_t i = 0; i < d->nsnaps; i++)
    valid += !d->snaps[i]->deleted &&
             d->snaps[i]->info.invalid_reason == SC_VALID;
  const char *path = d->sb.origin_path;
  char nbd_name[300];
  if (d->sb.origin_type == SC_ORIGIN_NBD) {
    snprintf (nbd_name, sizeof nbd_name, "the NBD export \"%.256s\"",
              d->sb.origin_path);
    path = nbd_name;
  }
  char what[1024] = "";
  struct msg m = { what, sizeof what, 0 };
  bool changed = false, counted = false;
  int n = 0;

  switch (d->sb.stamp_state) {
  case SC_STAMP_NONE:
  case SC_STAMP_WRITTEN:
    if (valid)
      say_unchecked (d, path);
    break;
  default:
    if (!now)
      msg_add (&m, "its state could not be read (%s)", why ? why : "?");
    changed = !now || stamp_differs (&d->sb, now, &m, &counted);
    if (!changed && valid && d->sb.origin_type == SC_ORIGIN_NBD)
      diff_say ("%s: an NBD export offers no write counters or times: only "
                "%" PRIu32 " sampled blocks were compared, and they match; "
                "a change elsewhere would be missed (keep other writers off "
                "the export)", path, now->nsamples);
    else if (!changed && valid && !(now->flags & SC_STAMP_F_TIMES) &&
             !counted)
      diff_say ("%s: the block device's write counters are not comparable "
                "(the machine rebooted or the device was made again since "
                "the server stopped, its I/O accounting is off, or the "
                "kernel does not offer them): only %" PRIu32 " sampled "
                "blocks were compared, and they match; a change elsewhere "
                "would be missed", path, now->nsamples);
    break;
  }
  d->origin_found_changed = changed;
  d->origin_found_ns = d->sb.stamp_state == SC_STAMP_NONE
                       ? 0 : d->sb.stamp_time_ns;
  if (changed && !valid) {
    if (sc_debug)
      sc_debug ("%s: the disk changed while the server was stopped (%s); "
                "no snapshot is valid", path, what);
  }
  else if (changed && (flags & SC_ORIGIN_ACCEPT) &&
           !(d->sb.stamp_flags & SC_STAMP_F_CLEAN_STOP)) {
    /* The state WRITTEN is stored before the server's first write; if
     * that store and the one recording the diff area's failure both
     * failed, the server wrote the origin without copying, and the disk
     * still says UNWRITTEN.  Only a clean stop rules that out. */
    char since[64];
    diff_say ("%s: the disk changed while the server was stopped (since "
              "%s): %s.  The last server did not stop cleanly, so this may "
              "be its own writes, made when the diff area could not record "
              "them: origin-changed=accept keeps snapshots only after a "
              "clean stop, and every snapshot is now invalid", path,
              when (d->sb.stamp_time_ns, since, sizeof since), what);
    n = invalidate_all (d);
    if (n < 0)
      return n;
  }
  else if (changed && (flags & SC_ORIGIN_ACCEPT)) {
    char since[64];
    diff_say ("%s: DANGER: the disk changed while the server was stopped "
              "(since %s): %s.  origin-changed=accept keeps its %zu valid "
              "snapshot(s) valid: they may serve data written behind "
              "shadowcopy's back", path,
              when (d->sb.stamp_time_ns, since, sizeof since), what, valid);
  }
  else if (changed) {
    char since[64];
    diff_say ("%s: the disk changed while the server was stopped (since "
              "%s): %s.  Every snapshot is now invalid, as it might be "
              "wrong (origin-changed=accept would keep them, at the risk of "
              "serving data written behind shadowcopy's back)", path,
              when (d->sb.stamp_time_ns, since, sizeof since), what);
    n = invalidate_all (d);
    if (n < 0)
      return n;
  }

  struct sc_sb_disk sb = d->sb;
  stamp_put (&sb, now);
  int r = changed ? change_session (d, &sb) : 0;
  if (r == 0)
    r = diff_sb_store (d, &sb);
  if (r < 0)
    return r;
  d->sb = sb;
  d->origin_checked = true;
  return n;
}

int
sc_diff_origin_writing (struct sc_diff *d)
{
  LOCKED (d);
  if (d->rdonly || d->sb.stamp_state != SC_STAMP_UNWRITTEN)
    return 0;
  diff_wait_ckpt (d);           /* a failed store fails the diff area */
  if (d->sb.stamp_state != SC_STAMP_UNWRITTEN)
    return 0;
  d->sb.stamp_state = SC_STAMP_WRITTEN;
  struct sc_sb_disk sb = d->sb;
  int r = diff_sb_store (d, &sb);
  if (r == 0)
    d->sb = sb;
  else
    diff_fail (d, r);
  return r;
}

int
sc_diff_origin_changed (struct sc_diff *d, const char *why)
{
  LOCKED (d);
  diff_wait_ckpt (d);
  if (d->rdonly)
    return 0;
  diff_say ("the disk changed under the server (%s): every snapshot is "
            "now invalid", why);
  int n = invalidate_all (d);
  if (n < 0)
    diff_fail (d, n);
  return n;
}

void
sc_diff_origin_stamp_at_close (struct sc_diff *d,
                               const struct sc_origin_stamp *now)
{
  LOCKED (d);
  d->close_stamp = *now;
  d->have_close_stamp = true;
  /* The server wrote the origin, and its counters did not move since the
   * stamp at open (its I/O accounting is off, or its kernel does not
   * count these writes): an outside write would not move them either,
   * so they are recorded as not comparable, and only the samples count
   * at the next start. */
  struct sc_origin_stamp *st = &d->close_stamp;
  if (d->sb.stamp_state == SC_STAMP_WRITTEN &&
      counters_comparable (&d->sb, st) &&
      st->write_sectors == d->sb.stamp_write_sectors &&
      st->discard_sectors == d->sb.stamp_discard_sectors) {
    if (sc_debug)
      sc_debug ("%s: the block device's write counters did not move while "
                "the server wrote it: they are not recorded, and the next "
                "start compares only the sampled blocks",
                d->sb.origin_path);
    st->flags &= ~SC_STAMP_F_COUNTERS;
    memset (st->boot_id, 0, sizeof st->boot_id);
    st->write_ios = st->write_sectors = 0;
    st->discard_ios = st->discard_sectors = 0;
    st->diskseq = 0;
  }
}

void
diff_stamp_close (struct sc_diff *d)
{
  if (d->have_close_stamp)
    stamp_put (&d->sb, &d->close_stamp);
  /* A server's clean stop (the offline CLI carries the flag as it is). */
  if ((d->have_close_stamp || d->origin_checked) &&
      d->sb.stamp_state != SC_STAMP_NONE)
    d->sb.stamp_flags |= SC_STAMP_F_CLEAN_STOP;
}

bool
sc_diff_origin_found_changed (struct sc_diff *d)
{
  LOCKED (d);
  return d->origin_found_changed;
}

uint64_t
sc_diff_origin_stamped_ns (struct sc_diff *d)
{
  LOCKED (d);
  /* Without a check (origin-check=off) the stamp stays the last check's,
   * or the last clean stop's. */
  return d->origin_checked ? d->origin_found_ns
         : d->sb.stamp_state == SC_STAMP_NONE ? 0 : d->sb.stamp_time_ns;
}
