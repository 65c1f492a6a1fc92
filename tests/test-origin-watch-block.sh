#!/bin/bash
# Tests the origin watch on a block device (a loop device): a write or a discard to the device while the server is stopped invalidates every snapshot with its reason, and clean and kill -9 restarts with no outside change keep them valid and right.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy losetup

M=$((1024 * 1024))
REASON="origin changed while the server was stopped"
make_disk "$TMP/backing" 8M
LOOP=$(losetup -f --show "$TMP/backing" 2>/dev/null) ||
    skip "no loop device can be set up here"
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" &&
      wait "$SERVER_PID"; losetup -d "$LOOP"; (exit $rc); _cleanup' EXIT
DEV=/sys/dev/block/$((0x$(stat -c %t "$LOOP"))):$((0x$(stat -c %T "$LOOP")))/stat
[ -r "$DEV" ] || log "no $DEV: only the sampled blocks identify the device"
DIFF=$TMP/diff

kill9_server () {
    local pid=$SERVER_PID
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    SERVER_PID=
}
check_valid () {
    [ "$(sc_field "$1" state)" = valid ] ||
        fail "$2: snapshot $1 is $(sc_field "$1" state): $(sc_field "$1" reason)"
    [ "$(nbd_sha256 "$1")" = "$(file_sha256 "$TMP/exp-$1")" ] ||
        fail "$2: snapshot $1 does not serve its content"
}
check_invalid () {
    [ "$(sc_field "$1" state)" = invalid ] && [ "$(sc_field "$1" reason)" = "$REASON" ] ||
        fail "$2: snapshot $1 is $(sc_field "$1" state): $(sc_field "$1" reason)"
    nbdinfo "$(uri "$1")" > /dev/null 2>&1 &&
        fail "$2: the export of invalid snapshot $1 was opened"
    log "ok, $2: $1 is invalid"
}
# fresh: a new diff area on the device, snapshot s1, live writes.
fresh () {
    rm -f "$DIFF"
    start_server "$LOOP" "$DIFF"
    nbd_write_random live 0 $M
    nbd_save live "$TMP/exp-s1"
    sc_create s1
    nbd_write_random live $((M / 2)) $M
}

fresh
restart_server
check_valid s1 "after a clean restart"
nbd_write_random live $((3 * M)) 65536
kill9_server
start_server "$LOOP" "$DIFF"
check_valid s1 "after kill -9 following live writes"
restart_server
check_valid s1 "after a clean restart following the kill -9"

# A 4K write to the device, in a chunk s1 reads from the device itself.
stop_server
dd if=/dev/urandom of="$LOOP" bs=4096 seek=$((5 * M / 4096)) count=1 \
    oflag=direct status=none
start_server "$LOOP" "$DIFF"
check_invalid s1 "a write to the stopped server's block device"
if [ -r "$DEV" ]; then
    grep -q "the block device's write counters moved from" "$SERVER_LOG" ||
        fail "the log does not name the write counters: $(tail -5 "$SERVER_LOG")"
fi
stop_server

# A discard.
if command -v blkdiscard > /dev/null && [ -r "$DEV" ]; then
    fresh
    stop_server
    if blkdiscard -o $((6 * M)) -l 65536 "$LOOP" 2>/dev/null; then
        start_server "$LOOP" "$DIFF"
        check_invalid s1 "a discard of the stopped server's block device"
        stop_server
    else
        log "blkdiscard of $LOOP failed: the discard case is not tried"
    fi
fi
exit 0
