#!/bin/bash
# Tests that a write-back log made through one diff area of a disk is
# not written through another while the first is still there, and that
# the refusal names the first by its path (review 27).
#
# A server on diff area A, which has written the disk, takes snapshot s1
# and is killed with a first write after s1 queued: its copy for s1 was
# never made.  A start through a new diff area C (never used) wrote the
# log through C, where no snapshot needs a copy; A, stopped uncleanly
# after writing the disk, does not check the disk at its next start, so
# s1 stayed valid and read the write made after it.  A start through B,
# used before, was refused naming A only by a UUID no command shows.
# Both must be refused, keeping the log and naming A's file; A's start
# then writes the queued write, copying first, and s1 reads its data.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/B" chunk-size=64K write-back=on
stop_server                             # B has been used
wb_snapshot_then_killed "$TMP/A" "$OFF" 0xa5
A=$(realpath "$TMP/A")

for other in C B; do
    try_start_server "$TMP/disk" "$TMP/$other" chunk-size=64K write-back=on &&
        fail "the start through $other wrote A's log"
    grep -qF "made through another diff area, $A (UUID" "$SERVER_LOG" ||
        fail "the refusal through $other does not name A's file: $(grep -o 'write-back log.*' "$SERVER_LOG" | tail -1)"
    [ -e "$WBLOG" ] || fail "the start through $other did not keep the log"
done

start_server "$TMP/disk" "$TMP/A" chunk-size=64K write-back=on
grep -q "1 writes acknowledged before the server stopped uncleanly are written" \
    "$SERVER_LOG" || fail "A's start did not write the log"
expect_block live "$OFF" 0xa5 "the queued write through A"
expect_block s1 "$OFF" s1-at-off "snapshot s1 after the queued write"
stop_server

start_server "$TMP/disk" "$TMP/B" chunk-size=64K write-back=on
stop_server
