/* shadowcopy: the session id: which server session last opened the diff
 * area to write the origin.
 *
 * Notes on the design
 *
 * A server killed with writes in its write-back log (engine/
 * writeback-log.c) leaves them for the next open to write to the disk.
 * That is right only if no session wrote the disk in between: a session
 * that did not find the log (another log directory or user, another
 * spelling of an NBD URI, a directory it did not trust) wrote newer data,
 * which the log's older writes must not overwrite.  Dates cannot tell:
 * a session may take no stamp of the origin, and a wall clock may be set
 * back.  So each session that may write the origin records a new random
 * id in the superblock, durably, before its first write, and its log
 * holds the same id (the log is made just before the record, empty: a
 * kill in between loses nothing, and the record says whether the
 * session keeps one).  A later open writes a
 * log's queued writes only if the log's id is the superblock's: the log
 * of the last session.
 *
 * The id is the diff area's, the log the disk's: a log made through
 * another diff area of the disk (or before this one was made again)
 * holds that diff area's UUID and path, and this one's id says nothing
 * of it.  It is written only if this diff area was made again at that
 * path and no session has used it yet; otherwise it is kept for the diff
 * area it was made through, whose snapshots need the copies the writes
 * make (docs/design.md lists the blind spots).
 *
 * An open that finds the disk changed while no server ran records a new
 * id with the disk's new stamp (origin-stamp.c): the stamp no longer
 * shows the change, so the id must, should the open stop before it has
 * dropped the log's writes (review 34).
 *
 * The id is recorded after the open has judged the previous session's
 * log: an open that fails meanwhile (a queued write refused, a damaged
 * log kept) leaves the old id, and the next open tries the same log
 * again.  An open that replays the log writes the origin under the old
 * id, as the killed session would have, and a kill during its replay
 * leaves the log and the id as they were.
 *
 * The superblock also says whether the last session kept a log
 * (wblog_session, cleared at its clean stop): after a kill, the log's
 * writes are in neither the diff area nor the origin, so an offline
 * question about the live volume (a diff to it) cannot be answered until
 * a server has written them.
 *
 * 0 is no id: a diff area made by this open, or last opened by a
 * shadowcopy that did not record one.  What ran before then is not
 * known, and a log found is written (docs/design.md, "The write-back
 * log", lists the blind spot this leaves).
 */
#include <config.h>

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "cow/diffarea-internal.h"

uint64_t
sc_diff_session_id (struct sc_diff *d, uint8_t uuid[16])
{
  LOCKED (d);
  if (uuid)
    memcpy (uuid, d->sb.uuid, 16);
  return d->sb.session_id;
}

bool
sc_diff_wblog_pending (struct sc_diff *d)
{
  LOCKED (d);
  return d->sb.wblog_session != 0;
}

void
sc_diff_wblog_closed (struct sc_diff *d)
{
  LOCKED (d);
  d->sb.wblog_session = 0;
}

int
diff_session_new_id (struct sc_diff *d, uint64_t *id)
{
  *id = 0;
  if (d->rdonly)
    return -EROFS;
  uint64_t next;
  do
    if (getrandom (&next, sizeof next, 0) != sizeof next)
      return errno ? -errno : -EIO;
  while (next == 0 || next == d->sb.session_id);
  *id = next;
  return 0;
}

int
sc_diff_next_session (struct sc_diff *d, uint64_t *id)
{
  LOCKED (d);
  return diff_session_new_id (d, id);
}

int
sc_diff_record_session (struct sc_diff *d, uint64_t id, bool logged)
{
  LOCKED (d);
  if (d->rdonly)
    return -EROFS;
  diff_wait_ckpt (d);
  struct sc_sb_disk sb = d->sb;
  sb.session_id = id;
  sb.wblog_session = logged ? id : 0;
  /* A failed store fails the open, not the diff area: nothing but the
   * replay of the log it found (which it deleted) has been written since
   * the open's checks, and the superblock on disk holds the old id or the
   * new one (a torn copy loses to the other). */
  int r = diff_sb_store (d, &sb);
  if (r < 0)
    return r;
  d->sb = sb;
  return 0;
}
