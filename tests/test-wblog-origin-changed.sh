#!/bin/bash
# Tests the write-back log against a disk changed while no server ran
# (review 21): a write queued and acknowledged, then a
# SIGKILL; while no server runs the disk is written behind shadowcopy's
# back (an administrator's dd, a restore).  The next open sees the change
# (the origin's stamp: it invalidates the snapshot) and must not then
# write the log's older queued write over the newer data: it either
# keeps the newer data or refuses to open.  (It once replayed the stale
# queued write over it.)  And so must every open after one that saw the
# change but failed before it had dealt with the log (review 34): that
# one stored the disk's new stamp, and the next one found the disk as
# stamped and the log's session still the last.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1

wb_queued_then_killed "$OFF" 0xa5

# Newer data, written while no server runs.
head -c 4096 /dev/zero | tr '\0' '\132' |
    dd of="$TMP/disk" bs=4096 seek=$((OFF / 4096)) conv=notrunc status=none
touch -d '+1 min' "$TMP/disk"   # (whatever the clock's granularity)

# An open that sees the change, then fails on the log (a mode it does
# not trust), which is then set right.
WBLOG=$(wblog_file)
chmod 0620 "$WBLOG"
! try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on ||
    fail "the open trusted a log others may write"
chmod 0600 "$WBLOG"

if ! try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on; then
    log "the open refused the log after the disk changed: fine"
    exit 0
fi
grep -q "changed while the server was stopped\|snapshot(s) invalidated\|disk changed" \
    "$SERVER_LOG" && log "the open saw that the disk changed"
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('the disk reads %r..., not the data written while no server ran' % got[:4])
" || fail "the open wrote the log's older queued write over data written after it (the disk changed while no server ran)"
stop_server
