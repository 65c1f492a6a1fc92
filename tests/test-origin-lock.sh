#!/bin/bash
# Tests that a second server on the same origin (with another diff area) is refused with a message naming the first, creates nothing, and leaves the first serving; once the first stops, the disk is free again; and, where loop devices exist, that a block-device origin is held whatever device node the second server opens.
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

# nbdkit in the background (no -f) took the lock before forking: the
# refusal still names the server that runs, not its exited parent.
nbdkit -U "$TMP/bg.sock" -P "$TMP/bg.pid" "$SHADOWCOPY_PLUGIN" \
    disk="$TMP/disk" diff="$TMP/bg.diff" || fail "nbdkit in the background"
# The background server writes its pidfile once it runs, after nbdkit
# (its parent) returned: wait for it.
for _ in $(seq 100); do [ -s "$TMP/bg.pid" ] && break; sleep 0.1; done
bgpid=$(cat "$TMP/bg.pid") || fail "no pidfile from the background server"
_SERVER_PIDS+=("$bgpid")
rc=0
timeout 10 nbdkit -f -U "$TMP/other.sock" "$SHADOWCOPY_PLUGIN" \
    disk="$TMP/disk" diff="$TMP/other2.diff" > "$TMP/other.log" 2>&1 || rc=$?
log "second server beside a background one: exit $rc: $(cat "$TMP/other.log")"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "a second server started (exit $rc)"
grep -q "(pid $bgpid: nbdkit " "$TMP/other.log" ||
    fail "the refusal does not name the background server (pid $bgpid)"
kill "$bgpid"
for _ in $(seq 100); do kill -0 "$bgpid" 2>/dev/null || break; sleep 0.1; done

# A block device: the second server opens another node of the same device.
loop=$(losetup -f --show "$TMP/disk" 2>/dev/null) || loop=
if [ -n "$loop" ]; then
    trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && stop_server
          losetup -d "$loop"; (exit $rc); _cleanup' EXIT
    mknod "$TMP/alias" b $((0x$(stat -c %t "$loop"))) $((0x$(stat -c %T "$loop"))) ||
        fail "mknod of $loop's device number"
    start_server "$loop" "$TMP/blk.diff"
    for node in "$loop" "$TMP/alias"; do
        rc=0
        timeout 10 nbdkit -f -U "$TMP/other.sock" "$SHADOWCOPY_PLUGIN" \
            disk="$node" diff="$TMP/other-blk.diff" > "$TMP/other.log" 2>&1 || rc=$?
        log "second server on $node: exit $rc: $(cat "$TMP/other.log")"
        [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
            fail "a second server on $node (the same device) started (exit $rc)"
        grep -q "in use" "$TMP/other.log" || fail "no clear refusal on $node"
    done
    stop_server
else
    log "no loop device here: the block-device case is not tried"
fi
log "ok, one server per disk"
