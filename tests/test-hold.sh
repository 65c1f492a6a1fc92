#!/bin/bash
# Tests the server-enforced write hold: a stuck or killed requester cannot hold writes past the deadline and leaves no snapshot; a second creation is refused as busy (or waits with --wait).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

CTLPY="$PYTHON $tests_srcdir/ctl.py"
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s).
wait_for () {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "timed out waiting for '$2' in $1: $(cat "$1" 2>/dev/null)"
}

# 1. A stuck client: HOLD (1 s) and COMMIT, then nothing.  A live write
# issued during the hold completes once the server releases by itself,
# and the snapshot committed under the expired hold is gone.
$CTLPY "$CTL" "HOLD timeout=1000" "COMMIT stuck" block > "$TMP/stuck.out" 2>&1 &
stuck=$!
wait_for "$TMP/stuck.out" "^COMMIT stuck -> .*OK"
timeout 20 "$NBDSH" -u "$(uri live)" -c 'h.pwrite(b"x" * 4096, 0)' ||
    fail "a live write did not complete after the hold deadline"
[ -z "$(sc_names)" ] || fail "snapshot of an expired hold remains: $(sc_names)"
kill "$stuck"; wait "$stuck" 2>/dev/null || :

# The client learns about it at its next request.
$CTLPY "$CTL" "HOLD timeout=200" "COMMIT late" "sleep 0.6" "RELEASE" > "$TMP/late.out"
grep -q "^RELEASE -> ERR ETIMEDOUT .*snapshot late was deleted" "$TMP/late.out" ||
    fail "RELEASE after the deadline: $(cat "$TMP/late.out")"

# 2. A killed client (kill -9) during a 30 s hold: writes resume at once
# (the connection closed), and its snapshot is aborted.
$CTLPY "$CTL" "HOLD timeout=30000" "COMMIT killed" block > "$TMP/killed.out" 2>&1 &
killed=$!
wait_for "$TMP/killed.out" "^COMMIT killed -> .*OK"
kill -KILL "$killed"; wait "$killed" 2>/dev/null || :
timeout 10 "$NBDSH" -u "$(uri live)" -c 'h.pwrite(b"y" * 4096, 0)' ||
    fail "writes were still held after the holding client was killed"
[ -z "$(sc_names)" ] || fail "snapshot of a killed client remains: $(sc_names)"

# 3. Busy: while one creation holds the volume, another is refused with a
# clear message, CREATE on the socket too; with --wait it goes through
# once the first is over.
$CTLPY "$CTL" "HOLD timeout=3000" "COMMIT first" "sleep 2" "RELEASE" > "$TMP/first.out" 2>&1 &
first=$!
wait_for "$TMP/first.out" "^COMMIT first -> .*OK"
out=$(sc create --no-writers second 2>&1) && fail "create during another creation succeeded: $out"
echo "$out" | grep_all "busy: another snapshot creation is in progress" ||
    fail "busy create: unexpected message: $out"
$CTLPY "$CTL" "CREATE third" | grep_all "ERR EBUSY" || fail "CREATE was not refused as busy"
sc create --no-writers --wait fourth > "$TMP/fourth.out" ||
    fail "create --wait failed"
wait "$first"
grep -q "^RELEASE -> .*OK" "$TMP/first.out" || fail "first creation: $(cat "$TMP/first.out")"
[ "$(sc_names | tr '\n' ' ')" = "first fourth " ] ||
    fail "after busy creations: snapshots are $(sc_names | tr '\n' ' ')"

# 4. HOLD limits and order are checked.
$CTLPY "$CTL" "HOLD timeout=60001" "COMMIT x" "RELEASE" > "$TMP/bad.out"
grep -q "^HOLD timeout=60001 -> ERR EINVAL" "$TMP/bad.out" || fail "hold over 60 s accepted"
grep -q "^COMMIT x -> ERR EINVAL" "$TMP/bad.out" || fail "COMMIT without a hold accepted"
grep -q "^RELEASE -> ERR EINVAL" "$TMP/bad.out" || fail "RELEASE without a creation accepted"

# 5. COMMIT release=1 commits and releases in one request: the creation
#    is over (a RELEASE after it has nothing to release), the snapshot is
#    kept, and live writes flow again.
$CTLPY "$CTL" "HOLD timeout=5000" "COMMIT onetrip release=1" "RELEASE" \
    "COMMIT bad release=2" > "$TMP/onetrip.out"
grep -q "^COMMIT onetrip release=1 -> \* snapshot.*name=onetrip.* | \* released.*name=onetrip.* | OK" \
    "$TMP/onetrip.out" || fail "COMMIT release=1: $(cat "$TMP/onetrip.out")"
grep -q "^RELEASE -> ERR EINVAL" "$TMP/onetrip.out" ||
    fail "RELEASE after COMMIT release=1 accepted"
grep -q "^COMMIT bad release=2 -> ERR EINVAL" "$TMP/onetrip.out" ||
    fail "release=2 accepted"
sc_names | grep_all -x onetrip || fail "snapshot onetrip not kept"
timeout 10 "$NBDSH" -u "$(uri live)" -c 'h.pwrite(b"x" * 512, 0)' ||
    fail "a live write after COMMIT release=1 did not complete"

server_alive
stop_server
