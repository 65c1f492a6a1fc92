#!/bin/bash
# Tests that a revert whose target was invalidated while it ran (the diff area failed under a live write), ended by the next open, lets a later revert start and the server restart after it (the first revert's end is recorded in the continued journal).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

# The server fails diff-area I/O as this file says (cow/fault-file.c).
FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
M=$((1024 * 1024))

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
sc_create A
nbd_write_random live 0 $((4 * M))

# Slow: after its first batch the revert waits.
sc revert A --save-current saved1 --rate 1 > /dev/null || fail "revert A"
sc revert --status | grep_all "revert: running" || fail "status: $(sc revert --status)"

# A live write that copies for A fails its journal write: A is invalid.
echo "journal-write EIO once" > "$FAULTS"
nbd_write_random live $((6 * M)) 65536
[ ! -e "$FAULTS" ] || fail "the journal write fault never fired"
[ "$(sc_field A state)" = invalid ] || fail "A is still valid"
# The diff area recovers (a fresh journal, the revert in it), refusing
# the create itself: the revert still runs.
sc create X > /dev/null 2>&1 || :
sc info | grep_all "diff area: FAILED" && fail "the diff area did not recover: $(sc info)"

# The restart ends the revert (its target is invalid).
restart_server
sc revert --status | grep_all "revert: none" || fail "not ended at open: $(sc revert --status)"

# Another revert, then a restart: the journal still replays.
sc_create B
nbd_write_random live 0 $((4 * M))
sc revert B --save-current saved2 --rate 1 > /dev/null || fail "revert B"
restart_server
sc revert --status | grep_all "revert: running" || fail "revert B: $(sc revert --status)"
sc revert --status | grep_all "B" || fail "revert B: $(sc revert --status)"
