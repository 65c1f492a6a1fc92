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
 * id in the superblock, durably, before its first write (and before it
 * makes its log), and its log holds the same id.  A later open writes a
 * log's queued writes only if the log's id is the superblock's: the log
 * of the last session.
 *
 * The id is recorded after the open has judged the previous session's
 * log: an open that fails meanwhile (a queued write refused, a damaged
 * log kept) leaves the old id, and the next open tries the same log
 * again.  An open that replays the log writes the origin under the old
 * id, as the killed session would have, and a kill during its replay
 * leaves the log and the id as they were.
 *
 * 0 is no id: a diff area made by this open, or last opened by a
 * shadowcopy that did not record one.  What ran before then is not
 * known, and a log found is written (docs/design.md, "The write-back
 * log", lists the blind spot this leaves).
 */
#include <config.h>

#include <errno.h>
#include <sys/random.h>

#include "cow/diffarea-internal.h"

uint64_t
sc_diff_session_id (struct sc_diff *d)
{
  LOCKED (d);
  return d->sb.session_id;
}

int
sc_diff_new_session (struct sc_diff *d, uint64_t *id)
{
  LOCKED (d);
  *id = 0;
  if (d->rdonly)
    return -EROFS;
  uint64_t next;
  do
    if (getrandom (&next, sizeof next, 0) != sizeof next)
      return -EIO;
  while (next == 0 || next == d->sb.session_id);
  diff_wait_ckpt (d);           /* a failed store fails the diff area */
  struct sc_sb_disk sb = d->sb;
  sb.session_id = next;
  int r = diff_sb_store (d, &sb);
  if (r < 0) {
    diff_fail (d, r);
    return r;
  }
  d->sb = sb;
  *id = next;
  return 0;
}
