#!/bin/bash
# Tests that a block device's write-back log is found by the next server
# of the same disk in the same boot whatever its I/O accounting is then
# (review 23).  The disk sequence number in the log's key comes from the
# origin's stamp, which has it only with queue/iostats 1 (and when the
# sampled blocks read): switch the accounting off between a kill and the
# next open and the key, so the log's name, changes.  The next server
# then did not replay the acknowledged write (lost), and the log stayed
# behind for a later server with the accounting on again to write it
# over newer, flushed data.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh losetup
[ "$(id -u)" -eq 0 ] || { log "needs root (loop devices)"; exit 77; }

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((65536 + 4096))
make_disk "$TMP/a" 4M

loop=$(losetup -f --show "$TMP/a") || { log "no loop device"; exit 77; }
IOSTATS=/sys/block/${loop#/dev/}/queue/iostats
[ -w "$IOSTATS" ] || { losetup -d "$loop"; log "no $IOSTATS"; exit 77; }
was=$(cat "$IOSTATS")
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && stop_server
      losetup -d "$loop" 2>/dev/null; echo "$was" > "$IOSTATS"
      (exit $rc); _cleanup' EXIT
echo 1 > "$IOSTATS" || fail "iostats on"

start_server "$loop" "$TMP/a.diff" chunk-size=64K write-back=on
sc_create s1
echo "journal-write stall" > "$FAULTS"
timeout 60 "$NBDSH" -u "$(uri live)" -c "
import sys, time
t = time.monotonic()
h.pwrite(b'\xa5' * 4096, $OFF)
if time.monotonic() - t > 5:
    sys.exit('not acknowledged from the queue')
" || fail "the queued write"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"; SERVER_PID=
rm -f "$FAULTS"
[ -s "$(wblog_file)" ] || fail "no write-back log after the SIGKILL"

# Same disk, same boot; only its I/O accounting is off now.
echo 0 > "$IOSTATS" || fail "iostats off"
start_server "$loop" "$TMP/a.diff" chunk-size=64K write-back=on
lost=
nbd_py live "
assert h.pread(4096, $OFF) == b'\xa5' * 4096
" || lost=1
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()" || fail "the newer write"
stop_server

echo 1 > "$IOSTATS" || fail "iostats on"
start_server "$loop" "$TMP/a.diff" chunk-size=64K write-back=on
stale=
nbd_py live "
assert h.pread(4096, $OFF) == b'\x5a' * 4096
" || stale=1
stop_server
[ -z "$lost" ] ||
    fail "the acknowledged queued write was not replayed (the log's key moved with queue/iostats)${stale:+; and a later open wrote it over a newer flushed write}"
[ -z "$stale" ] || fail "a later open wrote an old queued write over a newer flushed write"
