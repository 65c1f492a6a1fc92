#!/bin/bash
# Tests that a second server on the same origin (with another diff area) is refused with a message naming the first, creates nothing, and leaves the first serving; once the first stops, the disk is free again.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

make_disk "$TMP/disk" 4M
start_server "$TMP/disk" "$TMP/diff"
sc_create s1
sum=$(nbd_sha256 s1)
first=$SERVER_PID

rc=0
# Run in the foreground: a refused server exits at once; one that starts
# serves until the timeout ends it (exit 124).
timeout 10 nbdkit -f -U "$TMP/other.sock" "$SHADOWCOPY_PLUGIN" \
    disk="$TMP/disk" diff="$TMP/other.diff" > "$TMP/other.log" 2>&1 || rc=$?
log "second server: exit $rc: $(cat "$TMP/other.log")"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
    fail "a second server on the same disk started (exit $rc)"
grep -q "in use by another shadowcopy server (pid $first: " "$TMP/other.log" ||
    fail "the refusal does not name the first server: $(cat "$TMP/other.log")"
grep -q "diff=$TMP/diff" "$TMP/other.log" ||
    fail "the refusal does not name the first server's diff area"
[ ! -e "$TMP/other.diff" ] || fail "the refused server created its diff area"
kill -0 "$first" 2>/dev/null || fail "the first server died"
nbd_write_random live 0 65536
[ "$(nbd_sha256 s1)" = "$sum" ] || fail "the first server's snapshot changed"

stop_server
start_server "$TMP/disk" "$TMP/other.diff"
stop_server
log "ok, one server per disk"
