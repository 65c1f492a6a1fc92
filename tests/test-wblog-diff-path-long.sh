#!/bin/bash
# Review 28: a diff area whose absolute path is 512 bytes or longer is
# recorded in its write-back log as "" (writeback.c: "unknown or too
# long"), which judge_foreign takes for a diff area no longer there.  So
# a log made through such a diff area A is written through a new diff
# area C while A is still there, at the very path it was used at: no copy
# is made for A's snapshot s1, and A, stopped uncleanly after writing the
# disk, does not check the disk at its next start; s1 reads the write
# made after it.  (PATH_MAX is 4096: such a path is legal.)
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

D=$TMP
for i in 1 2 3; do
    D=$D/$(printf 'd%.0s' {1..200})$i
done
mkdir -p "$D" || hard_error "mkdir"
A=$D/A
[ "${#A}" -ge 512 ] || hard_error "the path is only ${#A} bytes"

wb_snapshot_then_killed "$A" "$OFF" 0xa5 control="$TMP/A.sock"

if try_start_server "$TMP/disk" "$TMP/C" chunk-size=64K write-back=on; then
    stop_server
    log "the start through C wrote A's log: $(grep -o 'write-back log.*' "$SERVER_LOG" | tail -1)"
fi

start_server "$TMP/disk" "$A" chunk-size=64K write-back=on \
    control="$TMP/A.sock"
expect_block live "$OFF" 0xa5 "the queued write is not on the disk"
expect_block s1 "$OFF" s1-at-off \
    "snapshot s1 of diff area A (a path of ${#A} bytes) is served with a write made after it"
stop_server
