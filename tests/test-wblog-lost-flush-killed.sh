#!/bin/bash
# Tests that a flush that takes a lost write's error leaves it in the
# write-back log until it has returned (review 31).  It used to clear the
# log's word as it took the error, before sc_diff_sync and before nbdkit
# sent its reply: a kill in that window lost the error, the client's
# flush got no reply (the connection dropped), and a reconnecting client
# (qemu's reconnect-delay, any retry) that sent its flush again to the
# restarted server got success although an acknowledged write was gone.
#
# The window is held open with "fdatasync stall": a FUA write on another
# connection copies a chunk in its own request and stalls in its commit;
# the flush's sc_diff_sync waits behind it, after take_error.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
make_disk "$TMP/disk" 4M
OFF=$((5 * 65536))
failures () { grep -c "failed after its acknowledgement" "$SERVER_LOG" || :; }
word () { od -An -tx8 -j1016 -N8 "$(wblog_file)" | tr -d ' '; }

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
echo "write EROFS" > "$FAULTS"
nbd_py live "h.pwrite(b'\x77' * 4096, $OFF)" || fail "the queued write"
for _ in $(seq 100); do [ "$(failures)" -gt 0 ] && break; sleep 0.1; done
[ "$(failures)" -gt 0 ] || fail "the queued write did not fail"
rm -f "$FAULTS"
kill9_server
[ "$(word)" != 0000000000000000 ] || fail "the log does not hold the error"

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
[ "$(word)" != 0000000000000000 ] || fail "the new log does not hold it"
sc_create s2
echo "fdatasync stall" > "$FAULTS"
# A: a FUA write, copied in its own request, stalls in its commit.
timeout 120 "$NBDSH" -u "$(uri live)" -c "
import nbd
h.pwrite(b'\x55' * 4096, 9 * 65536, nbd.CMD_FLAG_FUA)" \
    > "$TMP/a.out" 2>&1 &
A=$!
sleep 2
# B: the client's flush; it must fail with the lost write's error.
timeout 120 "$NBDSH" -u "$(uri live)" -c "h.flush()" > "$TMP/b.out" 2>&1 &
B=$!
reports () { grep -c "flush: reports the failure" "$SERVER_LOG" || :; }
for _ in $(seq 100); do [ "$(reports)" -gt 0 ] && break; sleep 0.1; done
[ "$(reports)" -gt 0 ] || fail "(the flush did not take the error)"
sleep 1
kill -0 "$B" 2>/dev/null || fail "(the flush replied: $(cat "$TMP/b.out"))"
[ "$(word)" != 0000000000000000 ] ||
    fail "the log's word is cleared before the flush that took it replied"
log "the flush took the error and has not replied yet: kill -9"
kill9_server
rm -f "$FAULTS"
wait "$A" || :
wait "$B" && fail "(the flush succeeded before the kill)"
log "flush B got: $(tail -n 1 "$TMP/b.out")"

# The client reconnects and sends its flush again.
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
import nbd
if h.pread(4096, $OFF) == b'\x77' * 4096:
    sys.exit('(the write is on the disk after all)')
try:
    h.flush()
except nbd.Error:
    sys.exit(0)
sys.exit('LOST ERROR: the flush resent after the kill succeeded, the '
         'acknowledged write of 0x77 at $OFF is not on the disk, and no '
         'flush ever replied with an error')
" || fail "a kill after the clearing, before the flush's reply, lost the error"
stop_server
