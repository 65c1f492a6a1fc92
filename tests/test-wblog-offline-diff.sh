#!/bin/bash
# Tests that the offline CLI, between a kill -9 of a write-back server
# and its restart, does not report as unchanged a range a write
# acknowledged from the write-back queue changed (review 29).
#
# A server with snapshot s1 is killed with a first write after s1 queued:
# its data is only in the write-back log, and no copy (the copy map is
# what changed-block tracking reads) was made.  `shadowcopy --diff DIFF
# diff s1` (offline: no server runs) reported no change at all, though
# the live volume the client was acknowledged differs from s1 there, and
# the next start writes the log's data there.  With write-back off the
# same write is reported (its copy is made before it is acknowledged);
# a server's own diff to live drains the queue for this very reason
# (sc_volume_changes).  Invariant 10: a range reported unchanged is
# identical in both points in time.  The offline diff to the live volume
# must count the write or refuse, saying why; after the restart the
# server's diff counts it.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5

# The answer must count the write, or be a refusal that says why.
if out=$(sc_off "$TMP/diff" diff s1 --json 2>&1); then
    echo "offline diff s1 (live) after the kill: $out"
    total=$(echo "$out" | json 'd["total-bytes"]')
    [ "$total" -gt 0 ] ||
        fail "the offline diff s1 -> live reports nothing changed, though a write acknowledged at $OFF changed the live volume (it is in the write-back log)"
else
    echo "offline diff s1 (live) after the kill, refused: $out"
    grep -q "write-back log" <<<"$out" ||
        fail "the offline diff's refusal does not say why: $out"
fi
# A diff between two snapshots is still answered offline.
sc_off "$TMP/diff" diff s1 s1 --json >/dev/null ||
    fail "an offline diff between snapshots after the kill"

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
total=$(sc diff s1 --json | json 'd["total-bytes"]')
echo "the server's diff s1 (live) after the restart: $total bytes"
[ "$total" -gt 0 ] || fail "the server's diff s1 after the replay"
stop_server
