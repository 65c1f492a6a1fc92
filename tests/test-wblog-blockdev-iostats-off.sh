#!/bin/bash
# Tests that the write-back log of a block device is not written to
# another disk that later has the same device number when the device's
# I/O accounting is off (queue/iostats 0: zram, or a disk tuned so).
# As test-wblog-blockdev-reused.sh, but the disk sequence number in the
# log's key is read through the origin's stamp, which reads it only with
# I/O accounting on: with it off the key is the device number alone
# again, and disk A's queued write was written onto disk B (review 23).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh losetup
[ "$(id -u)" -eq 0 ] || { log "needs root (loop devices)"; exit 77; }

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((65536 + 4096))
make_disk "$TMP/a" 4M
make_disk "$TMP/b" 4M
dd if="$TMP/b" of="$TMP/b-before" bs=4096 skip=$((OFF / 4096)) count=1 \
    status=none

loop=$(losetup -f --show "$TMP/a") || { log "no loop device"; exit 77; }
IOSTATS=/sys/block/${loop#/dev/}/queue/iostats
[ -w "$IOSTATS" ] || { losetup -d "$loop"; log "no $IOSTATS"; exit 77; }
was=$(cat "$IOSTATS")
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && stop_server
      losetup -d "$loop" 2>/dev/null; echo "$was" > "$IOSTATS"
      (exit $rc); _cleanup' EXIT
echo 0 > "$IOSTATS" || fail "iostats off"

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

# The same device number, another disk (a new disk sequence number).
losetup -d "$loop" || fail "losetup -d $loop"
losetup "$loop" "$TMP/b" || fail "losetup $loop $TMP/b"
echo 0 > "$IOSTATS" || fail "iostats off"

start_server "$loop" "$TMP/b.diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != open('$TMP/b-before', 'rb').read():
    sys.exit('disk B reads %r... at $OFF, not what it held' % got[:4])
" || fail "disk A's queued write was written onto disk B (I/O accounting off: the log's key has no disk sequence number)"
stop_server
