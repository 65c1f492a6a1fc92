#!/bin/bash
# Tests that a server whose write-back log could not be made (write-back
# off for the session) does not leave the diff area saying that a log
# may hold writes (review 30).
#
# sc_vol_wb_start recorded the session with wblog_session set as soon as
# it had a path for the log and write-back=on, before it tried to make
# the log.  If sc_wb_log_create then failed, the session ran with
# write-back off (no queue, no log), so sc_vol_wb_stop returned at once
# at the clean stop and never cleared wblog_session: the stored
# superblock said a log may hold writes that neither the diff area nor
# the disk show.  From then on an offline `diff` to the live volume is
# refused after every clean stop, saying the server "stopped uncleanly"
# - a wrong answer - and restarting the server does not clear it while
# the log still cannot be made.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

make_disk "$TMP/disk" 4M

# Where the disk's log is: a first session makes it, a clean stop
# deletes it.
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
WBLOG=$(wblog_file)
stop_server
[ ! -e "$WBLOG" ] || fail "the clean stop left the log"

# Its ".new" cannot be made (a directory there, as a stale leftover the
# engine cannot unlink): sc_wb_log_create fails, write-back is off.
mkdir "$WBLOG.new" || hard_error "mkdir"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
grep "write-back is off: its log" "$SERVER_LOG" >&2 ||
    hard_error "the log was made after all"
nbd_py live "
h.pwrite(b'\xa5' * 4096, 65536)
h.flush()" || fail "a write"
stop_server                             # clean
rmdir "$WBLOG.new"

# No log exists, the server stopped cleanly: the diff area is the whole
# story, and the offline diff must answer.
if ! out=$(sc_off "$TMP/diff" diff s1 --json 2>&1); then
    fail "after a clean stop of a server that kept no write-back log, the offline diff s1 (live) is refused: $out"
fi
total=$(echo "$out" | json 'd["total-bytes"]')
[ "$total" -gt 0 ] || fail "the offline diff s1 reports nothing changed"
