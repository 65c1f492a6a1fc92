#!/bin/bash
# Review 28: a write-back log made through diff area A is written through
# a new diff area C once A has been renamed (A is still there, at another
# path), so the queued write makes no copy for A's snapshot s1; A, stopped
# uncleanly after writing the disk, does not check the disk at its next
# start, and s1 then reads the write made after it.
#
# The same happens when A's filesystem is not mounted at the moment
# (ENOENT at its path), or when its path was longer than 511 bytes (the
# log records ""): judge_foreign takes "not at the recorded path" for
# "no longer there".
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

wb_snapshot_then_killed "$TMP/A" "$OFF" 0xa5

# A is renamed (or its directory moved, or its filesystem not mounted
# right now): it is still the disk's diff area, with its snapshot s1.
mkdir "$TMP/moved" || hard_error "mkdir"
mv "$TMP/A" "$TMP/moved/A" || hard_error "mv"

if try_start_server "$TMP/disk" "$TMP/C" chunk-size=64K write-back=on; then
    stop_server
    log "the start through C wrote A's log: $(grep -o 'write-back log.*' "$SERVER_LOG" | tail -1)"
fi

start_server "$TMP/disk" "$TMP/moved/A" chunk-size=64K write-back=on
expect_block live "$OFF" 0xa5 "the queued write is not on the disk"
expect_block s1 "$OFF" s1-at-off \
    "snapshot s1 of the moved diff area A is served with a write made after it"
stop_server
