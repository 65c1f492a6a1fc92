#!/bin/bash
# Tests that the write-back log of a block device is not written to
# another disk that later has the same device number (review 22).  A
# write is queued and acknowledged on a loop device over disk A, the
# server is killed; the loop device is detached and attached again to
# disk B (as losetup -f, an NBD client reconnecting, or a USB disk
# replugged as another sdX do with device numbers); a server is started
# on it with B's own, new diff area.  B must read as it was: the queued
# write is A's.  (The log's key for a block device is its device number
# alone, so the open wrote A's queued write onto B.)
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
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && stop_server
      losetup -d "$loop" 2>/dev/null; (exit $rc); _cleanup' EXIT

start_server "$loop" "$TMP/a.diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5

# The same device number, another disk.
losetup -d "$loop" || fail "losetup -d $loop"
losetup "$loop" "$TMP/b" || fail "losetup $loop $TMP/b"

start_server "$loop" "$TMP/b.diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != open('$TMP/b-before', 'rb').read():
    sys.exit('disk B reads %r... at $OFF, not what it held' % got[:4])
" || fail "disk A's queued write was written onto disk B (another disk with the same device number)"
stop_server
