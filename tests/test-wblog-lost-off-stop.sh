#!/bin/bash
# Tests that a lost write's error carried into a server with write-back
# off survives a clean stop of that server before any flush (review 31).
# It was held in memory only and its log deleted at the open, so the
# next server's first flush succeeded although an acknowledged write
# never reached the disk.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
make_disk "$TMP/disk" 4M
OFF=$((5 * 65536))
failures () { grep -c "failed after its acknowledgement" "$SERVER_LOG" || :; }

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
echo "write EROFS" > "$FAULTS"
nbd_py live "h.pwrite(b'\x77' * 4096, $OFF)" || fail "the queued write"
for _ in $(seq 100); do [ "$(failures)" -gt 0 ] && break; sleep 0.1; done
[ "$(failures)" -gt 0 ] || fail "the queued write did not fail"
rm -f "$FAULTS"
kill9_server                                  # the log holds the error

# A server with write-back off: takes the error into memory, deletes the
# log; it is stopped cleanly with no flush (a client that disconnects).
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=off
grep -q "a write acknowledged before the server stopped failed" \
    "$SERVER_LOG" || fail "the error was not carried"
nbd_py live "h.pread(4096, 0)" || fail "a read"
stop_server

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
import nbd
if h.pread(4096, $OFF) == b'\x77' * 4096:
    sys.exit('(the write is on the disk after all)')
try:
    h.flush()
except nbd.Error:
    sys.exit(0)
sys.exit('LOST ERROR: the flush succeeded, the acknowledged write of 0x77 '
         'at $OFF is not on the disk, and no flush ever failed')
" || fail "the error was lost by a clean stop of a write-back=off server"
stop_server
