#!/bin/bash
# Tests that the write-back log belongs to the disk (review 21): a write
# acknowledged from the queue is a write of the live disk, not of the
# diff area.  After a SIGKILL, the
# diff area is removed (to start afresh without its snapshots, as after a
# failed diff area) and the server started again on the same disk: a new
# diff area is made, and the log, found by the disk's identity, still
# gives it the acknowledged write (a log keyed by the diff area's UUID
# dropped it).  The write must be on the disk (or the open must refuse
# and keep the log).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((3 * 65536 + 8192))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xc3
WBLOG=$(wblog_file)
[ -s "$WBLOG" ] || fail "no write-back log after the SIGKILL"

# A fresh diff area for the same disk.
rm -f "$TMP/diff"
if ! try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on; then
    [ -e "$WBLOG" ] || fail "the open failed and the log is gone"
    log "the open refused and kept the log: fine"
    exit 0
fi
nbd_py live "
if h.pread(4096, $OFF) != b'\xc3' * 4096:
    sys.exit('lost')
" || fail "a write acknowledged before the SIGKILL is lost once the diff area is made again ($(grep -o 'belongs to another diff area[^:]*' "$SERVER_LOG" | head -1))"
stop_server
