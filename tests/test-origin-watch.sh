#!/bin/bash
# Tests that a change of the origin file made while the server was stopped (4 bytes written, a touch, another image copied over it) invalidates every snapshot with its reason, durably, and their exports are refused; that origin-changed=accept keeps them valid and says so; and that clean restarts and kill -9 restarts with no outside change keep snapshots valid and right.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo

M=$((1024 * 1024))
REASON="origin changed while the server was stopped"
DISK=$TMP/disk
DIFF=$TMP/diff

# kill9_server: SIGKILL the current server and reap it.
kill9_server () {
    local pid=$SERVER_PID
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    SERVER_PID=
    echo "==== $(date +%T.%N) nbdkit $pid SIGKILLed" >> "$SERVER_LOG"
}

# fresh: a new disk and diff area; snapshot s1 of the disk (saved in
# $TMP/exp-s1), then live writes over it; the server keeps running.
fresh () {
    [ -z "$SERVER_PID" ] || stop_server
    rm -f "$DIFF"
    make_disk "$DISK" 8M
    start_server "$DISK" "$DIFF" chunk-size=64K "$@"
    nbd_write_random live 0 $M
    nbd_save live "$TMP/exp-s1"
    sc_create s1
    nbd_write_random live $((M / 2)) $M
    nbd_write_random live $((6 * M)) 4096
}

# check_valid NAME WHEN: listed valid and serving its saved image.
check_valid () {
    [ "$(sc_field "$1" state)" = valid ] ||
        fail "$2: snapshot $1 is $(sc_field "$1" state): $(sc_field "$1" reason)"
    [ "$(nbd_sha256 "$1")" = "$(file_sha256 "$TMP/exp-$1")" ] ||
        fail "$2: snapshot $1 does not serve its content"
}

# check_invalid NAME WHEN: listed invalid because the origin changed,
# its export refused, and the reason durable (listed offline too).
check_invalid () {
    local state reason
    state=$(sc_field "$1" state)
    reason=$(sc_field "$1" reason)
    [ "$state" = invalid ] || fail "$2: snapshot $1 is '$state', expected invalid"
    [ "$reason" = "$REASON" ] || fail "$2: snapshot $1's reason is '$reason'"
    if nbdinfo "$(uri "$1")" > /dev/null 2>&1; then
        fail "$2: the export of invalid snapshot $1 was opened"
    fi
    if nbd_py "$1" 'h.pread(4096, 0)' > /dev/null 2>&1; then
        fail "$2: invalid snapshot $1 could be read"
    fi
    nbdinfo --list "$(uri "")" | grep_all "export=\"$1\"" &&
        fail "$2: invalid snapshot $1 is listed as an export"
    sc list | grep -F "$1" | grep_all -F "invalid: $REASON" ||
        fail "$2: 'shadowcopy list' does not show the reason: $(sc list)"
    log "ok, $2: $1 is invalid: $reason"
}

# last_start_log: what the last start of the server logged.
last_start_log () {
    awk '/^==== .* nbdkit -f /{buf=""} {buf = buf $0 "\n"} END {printf "%s", buf}' \
        "$SERVER_LOG"
}

# ---- no outside change: snapshots stay valid ----------------------------

fresh
check_valid s1 "before any restart"
restart_server
check_valid s1 "after a clean restart"
last_start_log | grep_all -i "changed" && fail "a clean restart logged a change: $(last_start_log)"

# kill -9 after live writes: the server's own writes are no outside change.
nbd_write_random live $((3 * M)) $M
kill9_server
start_server "$DISK" "$DIFF" chunk-size=64K
check_valid s1 "after kill -9 following live writes"
nbd_write_random live $((2 * M)) 100

# kill -9 with no write since the start; then a clean restart.
restart_server
kill9_server
start_server "$DISK" "$DIFF" chunk-size=64K
check_valid s1 "after kill -9 of a server that had not written"
restart_server
check_valid s1 "after kill -9 and a clean restart"

# The offline CLI carries the stamp forward: a delete offline between
# two clean runs is no change of the origin.
sc_create s2
nbd_write_random live $((4 * M)) 4096
stop_server
sc_off "$DIFF" delete s2 || fail "offline delete"
start_server "$DISK" "$DIFF" chunk-size=64K
check_valid s1 "after an offline delete"

# ---- 4 bytes written into the stopped server's origin -------------------

stop_server
sleep 0.05       # past the file system's timestamp granularity
printf 'abcd' | dd of="$DISK" bs=1 seek=$((5 * M + 77)) conv=notrunc status=none
start_server "$DISK" "$DIFF" chunk-size=64K
check_invalid s1 "4 bytes written while stopped"
last_start_log | grep_all "mtime changed from .* to " ||
    fail "the log does not say what changed: $(last_start_log)"
server_alive "after the invalidation"
# Durable: still invalid after a restart, and offline.
restart_server
check_invalid s1 "4 bytes written, after another restart"
stop_server
sc_off "$DIFF" list | grep s1 | grep_all -F "invalid: $REASON" ||
    fail "offline list does not show s1 invalid: $(sc_off "$DIFF" list)"
start_server "$DISK" "$DIFF" chunk-size=64K
# New snapshots are watched the same way and the live disk works on.
nbd_save live "$TMP/exp-s3"
sc_create s3
nbd_write_random live 0 $M
check_valid s3 "a snapshot made after the invalidation"

# ---- touch only: the content may not have changed, we cannot tell ------

stop_server
sleep 0.05
touch "$DISK"
start_server "$DISK" "$DIFF" chunk-size=64K
check_invalid s3 "touch while stopped"

# ---- another image copied over it, same inode ---------------------------

fresh
stop_server
ino=$(stat -c %i "$DISK")
make_disk "$TMP/other" 8M
sleep 0.05
cp "$TMP/other" "$DISK"
[ "$(stat -c %i "$DISK")" = "$ino" ] || hard_error "cp changed the inode"
start_server "$DISK" "$DIFF" chunk-size=64K
check_invalid s1 "another image copied over the origin"
last_start_log | grep_all "sampled blocks differ" ||
    fail "the log does not say the content differs: $(last_start_log)"

# ---- origin-changed=accept: kept valid, and said loudly ------------------

fresh
stop_server
sleep 0.05
printf 'WXYZ' | dd of="$DISK" bs=1 seek=$((7 * M + 5)) conv=notrunc status=none
# s1 reads that unchanged chunk from the origin: it now shows the bytes.
printf 'WXYZ' | dd of="$TMP/exp-s1" bs=1 seek=$((7 * M + 5)) conv=notrunc status=none
start_server "$DISK" "$DIFF" chunk-size=64K origin-changed=accept
check_valid s1 "origin-changed=accept"
last_start_log | grep_all "DANGER: the disk changed while the server was stopped" ||
    fail "origin-changed=accept did not log the change loudly: $(last_start_log)"
# The change was accepted once: the next start without the key is clean.
restart_server
stop_server
start_server "$DISK" "$DIFF" chunk-size=64K
check_valid s1 "after accepting, a restart without origin-changed=accept"
stop_server

# A bad value is refused.
rc=0
nbdkit -U "$TMP/bad.sock" --run 'exit 0' "$SHADOWCOPY_PLUGIN" disk="$DISK" \
    diff="$DIFF" origin-changed=maybe > "$TMP/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "origin-changed=maybe: must be invalidate or accept" "$TMP/bad.out" ||
    fail "origin-changed=maybe was not refused clearly: $(cat "$TMP/bad.out")"

# ---- kill -9 of a server that had not written, then an outside write ----

fresh
restart_server
kill9_server
sleep 0.05
printf 'abcd' | dd of="$DISK" bs=1 seek=$((2 * M)) conv=notrunc status=none
start_server "$DISK" "$DIFF" chunk-size=64K
check_invalid s1 "outside write after a kill -9 of a server that had not written"
stop_server
exit 0
