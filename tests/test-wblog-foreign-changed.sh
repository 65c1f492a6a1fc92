#!/bin/bash
# Review 28: a foreign log is now judged before the origin check's
# verdict.  A start through a new diff area B is refused while the log's
# diff area A is there; that failed open stamped the disk in B (after the
# kill, so after every queued write).  A is then deleted, and the disk is
# written while no server runs.  B's next start finds the disk changed
# since its stamp, taken after the log was made, yet writes the log's
# older queued write over the newer data: B has no session id (its only
# open failed), so judge_foreign writes a log of a diff area no longer
# there without asking whether the disk changed.  ("What it cannot tell"
# in design.md covers a change after a kill only where no stamp taken
# after the kill can tell; here one can.)
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

wb_snapshot_then_killed "$TMP/A" "$OFF" 0xa5

try_start_server "$TMP/disk" "$TMP/B" chunk-size=64K write-back=on &&
    fail "the start through B wrote A's log while A is there"
[ -e "$WBLOG" ] || fail "the refused start did not keep the log"
[ -e "$TMP/B" ] || hard_error "B was not made by the refused start"

# A is given up, and the disk is written while no server runs.
rm -f "$TMP/A" "$TMP/A.sock"
sleep 0.05
printf '\x5a%.0s' $(seq 4096) |
    dd of="$TMP/disk" bs=4096 seek=$((OFF / 4096)) conv=notrunc status=none ||
    hard_error "dd"

if try_start_server "$TMP/disk" "$TMP/B" chunk-size=64K write-back=on; then
    grep 'write-back log\|changed' "$SERVER_LOG" | tail -3 >&2
    nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer data written while no server ran' % got[:4])
" || fail "the log's older write was written over a change B's stamp found after the log"
    stop_server
else
    log "B's start was refused (acceptable: nothing written over the change)"
fi
