#!/bin/bash
# Tests that the write-back log survives the diff area's filesystem
# losing its unwritten pages without a reboot (an I/O error shuts it
# down, the disk is detached and attached again), review 21.  A log on
# that filesystem, never synced but written back by the kernel now and
# then, could hold on disk a "queued" slot for a write long since on the
# origin; the log is in a tmpfs (here $SHADOWCOPY_WBLOG_DIR) for that
# reason.  Here: a write W is queued and the log's pages are synced while
# it is; W completes; a newer write N of the same bytes is flushed; the
# diff area's filesystem is shut down (XFS, dirty pages dropped), the
# server killed, the filesystem mounted again, same boot.  The next open
# must keep N (or refuse).
# Needs root, loop devices and XFS (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh losetup mkfs.xfs xfs_io mount umount sync
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

M=$TMP/m
LOOP=
storage_cleanup () {
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        _forget_pid "$SERVER_PID"
    fi
    mountpoint -q "$M" && umount "$M"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    return 0
}
trap 'rc=$?; set +e; storage_cleanup; (exit $rc); _cleanup' EXIT

mkdir "$M"
truncate -s 320M "$TMP/fs.img"
mkfs.xfs -q "$TMP/fs.img" 2>/dev/null || skip "mkfs.xfs failed"
LOOP=$(losetup -f --show "$TMP/fs.img") || skip "losetup failed"
mount "$LOOP" "$M" || skip "mount failed"

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((4 * 65536 + 4096))
D=$M/diff
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$D" chunk-size=64K write-back=on
sc_create s1

# W queued (its copy's record stalls), and the log's pages written back
# meanwhile, as the kernel does every few seconds.
echo "journal-write stall" > "$FAULTS"
timeout 60 "$NBDSH" -u "$(uri live)" -c "
import sys, time
t = time.monotonic()
h.pwrite(b'\xa5' * 4096, $OFF)
if time.monotonic() - t > 5:
    sys.exit('not acknowledged from the queue')
" || fail "the queued write"
sync "$(wblog_file)" || fail "sync of the log"
rm -f "$FAULTS"

# W reaches the origin; N, newer, is flushed.
nbd_py live "
h.flush()
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()
" || fail "the newer write"
python3 -c "
import sys
with open('$TMP/disk', 'rb') as f:
    f.seek($OFF)
    sys.exit(f.read(4096) != b'\x5a' * 4096)" || fail "N is not on the disk"

# The diff area's filesystem goes down without writing its dirty pages.
xfs_io -x -c shutdown "$M" || skip "xfs_io shutdown failed"
kill9_server
umount "$M" || fail "umount after the shutdown"
mount "$LOOP" "$M" || fail "mount after the shutdown"

if ! try_start_server "$TMP/disk" "$D" chunk-size=64K write-back=on; then
    log "the open refused: fine"
    exit 0
fi
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r...' % got[:4])
" || fail "a flushed write was overwritten by an older queued write the log's stale copy on disk still lists ($(grep -o '[0-9]* writes acknowledged before the server stopped uncleanly are written' "$SERVER_LOG" | tail -1))"
stop_server
