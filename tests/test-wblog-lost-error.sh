#!/bin/bash
# Tests that a write acknowledged from the write-back queue and lost
# afterwards (its copy refused, so its data never reached the disk) is
# reported by a flush even if the server is killed, or stopped, before
# one: the next server's first flush fails with the error, once.
#
# Before, the error lived only in the server's memory: a kill -9 between
# the failure and the next flush lost it, and the client's flush to the
# restarted server succeeded although an acknowledged write was gone.
# Parts 3b and 5 are review 31's: a server with no log of its own lost
# the error at a clean stop, and a flush cleared it from the log before
# its reply went out.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
make_disk "$TMP/disk" 4M
OFF=$((5 * 65536))

# lost_write: with every write to the diff area refused (EROFS), a first
# write of 0x77 at OFF since s1 is acknowledged from the queue; its copy
# is then refused, so it must not reach the disk, and the server says so.
failures () { grep -c "failed after its acknowledgement" "$SERVER_LOG" || :; }
word () { od -An -tx8 -j1016 -N8 "$(wblog_file)" | tr -d ' '; }
lost_write () {
    echo "write EROFS" > "$FAULTS"
    local before
    before=$(failures)
    nbd_py live "h.pwrite(b'\x77' * 4096, $OFF)" ||
        fail "a write acknowledged from the queue"
    for _ in $(seq 100); do
        [ "$(failures)" -gt "$before" ] && break
        sleep 0.1
    done
    [ "$(failures)" -gt "$before" ] || fail "the queued write did not fail"
    rm -f "$FAULTS"
}

# first_flush_fails WHAT [no-s1]: the first flush fails with EIO (the
# error of the refused change), the next one succeeds; the live disk
# keeps its old data where the lost write was, and s1 reads its image
# (unless a clean stop could record it invalid: the copy was refused;
# or no-s1: the diff area was made again).
first_flush_fails () {
    flush_fails_once "$1"
    nbd_py live "
if h.pread(4096, $OFF) == b'\x77' * 4096:
    sys.exit('the lost write is on the disk')" || fail "$1"
    if [ "${2:-}" = no-s1 ] ||
        sc list | awk '$2 == "s1" { print $5 }' | grep_all "^invalid:"; then
        return
    fi
    nbd_save s1 "$TMP/s1-now"
    cmp_files "$TMP/s1" "$TMP/s1-now" "s1 $1"
}

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
nbd_save s1 "$TMP/s1"

# 1. Killed before any flush: the next server's first flush reports it.
lost_write
kill9_server
[ "$(word)" != 0000000000000000 ] || fail "the log does not hold the error"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
grep -q "a write acknowledged before the server stopped failed" \
    "$SERVER_LOG" || fail "the restarted server does not say a write was lost"
first_flush_fails "after a kill"

# 2. Killed again before that server's first flush: still reported.
lost_write
kill9_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
kill9_server                            # (its log holds the error)
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
first_flush_fails "after two kills"

# 3. Stopped cleanly before a flush, restarted with write-back off: the
#    old log keeps the error until a flush has reported it.
lost_write
stop_server
grep -q "no flush reported it" "$SERVER_LOG" ||
    fail "the clean stop does not say a failure was kept"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=off
first_flush_fails "after a clean stop, write-back off"
[ ! -e "$(echo "$SHADOWCOPY_WBLOG_DIR"/*.wblog)" ] ||
    fail "the log of an error reported is kept"

# 3b. Carried into a server with write-back off that stops cleanly with
#     no flush (a client that disconnects): the old log still keeps it.
stop_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s2
lost_write
kill9_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=off
nbd_py live "h.pread(4096, 0)" || fail "a read"
stop_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
first_flush_fails "after a clean stop of a server with write-back off"

# 4. Reported by a flush, and another flush begun after that one
#    returned (it clears the log's word): the next server has nothing to
#    report.  (Killed between the two, it reports the failure again:
#    part 5.)
lost_write
nbd_py live "
import nbd
try:
    h.flush()
    sys.exit('the flush after a lost write succeeded')
except nbd.Error:
    pass
h.flush()" || fail "the flushes after the lost write"
kill9_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "h.flush()" || fail "a failure already reported is reported again"

# 5. A flush that took the error keeps it in the log until it has
#    returned: killed before its reply, it left none, and a client that
#    sends its flush again to the next server must still be told.  The
#    window is held open with "fdatasync stall": a FUA write on another
#    connection copies in its own request and stalls in its commit; the
#    flush's own sync waits behind it, after it took the error.
lost_write
kill9_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s3
echo "fdatasync stall" > "$FAULTS"
timeout 120 "$NBDSH" -u "$(uri live)" -c "
import nbd
h.pwrite(b'\x55' * 4096, 9 * 65536, nbd.CMD_FLAG_FUA)" \
    > "$TMP/a.out" 2>&1 &
A=$!
sleep 2
timeout 120 "$NBDSH" -u "$(uri live)" -c "h.flush()" > "$TMP/b.out" 2>&1 &
B=$!
reports () { grep -c "flush: reports the failure" "$SERVER_LOG" || :; }
for _ in $(seq 100); do [ "$(reports)" -gt 0 ] && break; sleep 0.1; done
[ "$(reports)" -gt 0 ] || fail "(the flush did not take the error)"
sleep 1
kill -0 "$B" 2>/dev/null || fail "(the flush replied: $(cat "$TMP/b.out"))"
[ "$(word)" != 0000000000000000 ] ||
    fail "the log's word is cleared before the flush that took it replied"
kill9_server
rm -f "$FAULTS"
wait "$A" || :
wait "$B" && fail "(the flush succeeded before the kill)"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
first_flush_fails "sent again after a kill before the flush's reply"
stop_server

# 6. A log kept for its error alone must not keep the writes its open
#    dropped (review 33): a write of 0xa5 is queued and killed; a session
#    that does not find the log writes 0x5a there; a server with
#    write-back off drops the queued write, keeps the log for the error,
#    writes 0x33 and stops before any flush; then the diff area is made
#    again at its path, whose open judged the old log's writes anew.
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s4
lost_write
sc_create s5                            # (s4 is invalid: its copy failed)
OFF2=$((9 * 65536))
wb_queued_then_killed "$OFF2" 0xa5
[ "$(word)" != 0000000000000000 ] || fail "the log does not hold the error"
[ "$(od -An -v -w32 -tx8 -j1024 -N2048 "$(wblog_file)" |
     awk '$1 != "0000000000000000" { n++ } END { print n + 0 }')" -gt 0 ] ||
    fail "no write queued in the log"
D=$SHADOWCOPY_WBLOG_DIR
mkdir -m 700 "$TMP/otherdir" || hard_error "mkdir"
export SHADOWCOPY_WBLOG_DIR=$TMP/otherdir
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF2)
h.flush()" || fail "the write of a session that does not find the log"
stop_server
export SHADOWCOPY_WBLOG_DIR=$D
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=off
grep -q "dropped" "$SERVER_LOG" || fail "the open did not drop the write"
nbd_py live "h.pwrite(b'\x33' * 4096, $OFF2)" || fail "a write"
stop_server
rm -f "$TMP/diff"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
expect_block live "$OFF2" 0x33 \
    "the dropped queued write was written over the newer data"
first_flush_fails "after the diff area was made again" no-s1
stop_server
