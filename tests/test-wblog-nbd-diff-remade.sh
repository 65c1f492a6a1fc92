#!/bin/bash
# Tests that the write-back log of an NBD export belongs to the disk, as
# test-wblog-diff-remade.sh does for a file (review 21): after a SIGKILL
# with a write acknowledged from the queue, the diff area is removed and
# the server started again on the same export, so a new diff area is
# made.  The write must be on the export, or the open must refuse and
# keep the log (review 23).  (An NBD export's key is the diff area's
# UUID with the export's name: the new diff area's key named another
# file, the old log was not looked at, and the open served the export
# without the acknowledged write.)
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires nbdsh

FAULTS=$TMP/faults
OFF=$((3 * 65536 + 8192))
nbdkit_remote r memory 4M
U=$(remote_uri r)

export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
start_server "$U" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
echo "journal-write stall" > "$FAULTS"
timeout 60 "$NBDSH" -u "$(uri live)" -c "
import sys, time
t = time.monotonic()
h.pwrite(b'\xc3' * 4096, $OFF)
if time.monotonic() - t > 5:
    sys.exit('not acknowledged from the queue')
" || fail "the queued write"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"; SERVER_PID=
rm -f "$FAULTS"
WBLOG=$(wblog_file)
[ -s "$WBLOG" ] || fail "no write-back log after the SIGKILL"

# A fresh diff area for the same export.
rm -f "$TMP/diff"
if ! try_start_server "$U" "$TMP/diff" chunk-size=64K write-back=on; then
    [ -e "$WBLOG" ] || fail "the open failed and the log is gone"
    log "the open refused and kept the log: fine"
    exit 0
fi
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\xc3' * 4096:
    sys.exit('reads %r...' % got[:4])
" || fail "a write acknowledged before the SIGKILL is lost once the NBD export's diff area is made again (the log, keyed by the old diff area's UUID, is not looked at)"
stop_server
