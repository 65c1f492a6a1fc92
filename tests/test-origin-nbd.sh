#!/bin/bash
# Tests an origin on an NBD server (disk=NBD-URI) with three real remotes:
# nbdkit memory, and qemu-storage-daemon serving a raw file and a qcow2
# file over Unix sockets.  On each: the live volume reads as a model of
# it and its snapshots as their saved images, byte for byte, through
# writes (unaligned, concurrent), zeroes and overwrites; a restart with
# the same remote keeps them; another export (another name, or another
# size) is refused with a message naming both; the remote written behind
# shadowcopy's back while it was stopped invalidates every snapshot at the
# next start, unless origin-check=off, which logs DANGER.  And the server
# in nbdkit's background mode (it forks after opening the origin) serves
# through the connection made before the fork.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires nbdcopy qemu-storage-daemon qemu-img

M=$((1024 * 1024))
SIZE=$((8 * M))
REASON="origin changed while the server was stopped"
W=$TMP/w
mkdir "$W"

check_valid () {
    [ "$(sc_field "$1" state)" = valid ] ||
        fail "$2: snapshot $1 is $(sc_field "$1" state): $(sc_field "$1" reason)"
    check_export "$1" "$TMP/exp-$1" "$2: snapshot $1"
}

check_invalid () {
    [ "$(sc_field "$1" state)" = invalid ] ||
        fail "$2: snapshot $1 is $(sc_field "$1" state), expected invalid"
    [ "$(sc_field "$1" reason)" = "$REASON" ] ||
        fail "$2: snapshot $1's reason is '$(sc_field "$1" reason)'"
    if nbd_py "$1" 'h.pread(4096, 0)' > /dev/null 2>&1; then
        fail "$2: invalid snapshot $1 could be read"
    fi
}

# behind_back URI: write the remote directly (its first block: sampled).
behind_back () {
    "$NBDSH" -u "$1" -c 'h.pwrite(os.urandom(4096), 0); h.flush()' ||
        fail "writing the remote directly"
}

# scenario KIND URI OTHER-URI OTHER-TEXT: the whole story on one remote
# whose export at URI holds $MODEL; OTHER-URI is another export, and the
# refusal must say OTHER-TEXT.
scenario () {
    local kind=$1 u=$2 other=$3 other_text=$4 diff=$W/$1.diff pids=() p
    log "---- $kind"
    start_server "$u" "$diff" chunk-size=64K io-timeout=20
    [ "$(nbd_size live)" = "$SIZE" ] || fail "$kind: live size $(nbd_size live)"
    check_export live "$MODEL" "$kind: live at start"

    both_write 0 $M
    both_write $((3 * M + 100)) $((200 * 1024 + 7))
    sc_create s1
    cp "$MODEL" "$TMP/exp-s1"
    both_write $((M / 2)) $M
    both_zero $((2 * M)) $((256 * 1024))
    both_write $((SIZE - 4096)) 4096
    # Concurrent writes to distinct chunks, through one connection each.
    for p in 4 5 6; do
        head -c $((512 * 1024)) /dev/urandom > "$TMP/par$p"
        nbd_pwrite_file live $((p * M + 4096)) "$TMP/par$p" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "$kind: a concurrent write failed"; done
    for p in 4 5 6; do
        dd if="$TMP/par$p" of="$MODEL" bs=64K seek=$((p * M + 4096)) \
            conv=notrunc oflag=seek_bytes status=none
    done
    sc_create s2
    cp "$MODEL" "$TMP/exp-s2"
    both_write 0 "$SIZE"
    check_export live "$MODEL" "$kind: live after overwriting"
    check_valid s1 "$kind: after overwriting"
    check_valid s2 "$kind: after overwriting"
    # The remote holds the live content: read it directly.
    nbdcopy "$u" - > "$TMP/direct" || fail "$kind: reading the remote directly"
    cmp_files "$MODEL" "$TMP/direct" "$kind: the remote itself"

    restart_server
    check_valid s1 "$kind: after a restart"
    check_valid s2 "$kind: after a restart"
    check_export live "$MODEL" "$kind: live after a restart"
    stop_server

    # Another export: refused, naming both, nothing written.
    local before rc=0
    before=$(sha256sum < "$diff")
    try_start_server "$other" "$diff" 2> "$TMP/refusal" || rc=$?
    [ "$rc" -ne 0 ] || fail "$kind: started on another export ($other)"
    grep -qF "$other_text" "$SERVER_LOG" ||
        fail "$kind: the refusal does not say '$other_text': $(tail -3 "$SERVER_LOG")"
    [ "$before" = "$(sha256sum < "$diff")" ] ||
        fail "$kind: the refused start changed the diff area"
    log "ok, $kind: $(grep -F "$other_text" "$SERVER_LOG" | tail -1)"

    # Written behind shadowcopy's back while it was stopped: every
    # snapshot is invalid at the next start.
    behind_back "$u"
    nbdcopy "$u" - > "$MODEL"
    start_server "$u" "$diff" chunk-size=64K
    check_invalid s1 "$kind: remote written while stopped"
    check_invalid s2 "$kind: remote written while stopped"
    check_export live "$MODEL" "$kind: live after the outside write"

    # origin-check=off: not checked, and the log says DANGER.
    sc_create s3
    cp "$MODEL" "$TMP/exp-s3"
    stop_server
    behind_back "$u"
    nbdcopy "$u" - > "$MODEL"
    start_server "$u" "$diff" origin-check=off
    grep -q "DANGER: origin-check=off" "$SERVER_LOG" ||
        fail "$kind: origin-check=off does not log DANGER"
    [ "$(sc_field s3 state)" = valid ] ||
        fail "$kind: origin-check=off still invalidated s3"
    stop_server
    rm -f "$diff"
}

# 1. nbdkit memory (multi-conn: several connections).
head -c "$SIZE" /dev/urandom > "$MODEL"
nbdkit_remote mem memory "$SIZE"
nbdcopy "$MODEL" "$(remote_uri mem)" || fail "filling the nbdkit memory disk"
scenario nbdkit-memory "$(remote_uri mem)" "$(remote_uri mem other)" \
    'made for the NBD export "" of 8.0 MiB (8388608 bytes), but the disk is the NBD export "other" of 8.0 MiB'

# Background mode: nbdkit forks after the origin's connection is made.
rm -f "$W/bg.diff"
nbdkit -U "$TMP/bg.sock" --pidfile "$TMP/bg.pid" "$SHADOWCOPY_PLUGIN" \
    "disk=$(remote_uri mem)" "diff=$W/bg.diff" >> "$SERVER_LOG" 2>&1 ||
    fail "nbdkit in the background did not start"
# The child writes the pidfile after the parent returned: wait for it.
for ((i = 0; i < 100; i++)); do
    [ -s "$TMP/bg.pid" ] && [ -S "$TMP/bg.sock" ] && break
    sleep 0.1
done
[ -s "$TMP/bg.pid" ] || fail "the background server wrote no pidfile"
BG=$(cat "$TMP/bg.pid")
_SERVER_PIDS+=("$BG")          # the cleanup stops it if the test fails
"$NBDSH" -u "nbd+unix:///live?socket=$TMP/bg.sock" -c '
h.pwrite(b"x" * 65536, 65536)
assert h.pread(65536, 65536) == b"x" * 65536' ||
    { kill "$BG"; fail "the background server does not serve its origin"; }
kill -TERM "$BG"
for ((i = 0; i < 50; i++)); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
kill -0 "$BG" 2>/dev/null && fail "the background server did not stop"
_forget_pid "$BG"
log "ok, background mode serves through the connection made before the fork"
stop_remote mem

# 2. qemu-storage-daemon, raw file; the other export is 4 MiB.
head -c "$SIZE" /dev/urandom > "$MODEL"
cp "$MODEL" "$W/disk.raw"
truncate -s 4M "$W/other.raw"
qsd_remote qsd "$W/disk.raw" raw disk "$W/other.raw" raw small
scenario qsd-raw "$(remote_uri qsd disk)" "$(remote_uri qsd small)" \
    'made for the NBD export "disk" of 8.0 MiB (8388608 bytes), but the disk is the NBD export "small" of 4.0 MiB'
stop_remote qsd

# 3. qemu-storage-daemon, qcow2.
head -c "$SIZE" /dev/urandom > "$MODEL"
qemu-img convert -f raw -O qcow2 "$MODEL" "$W/disk.qcow2"
qemu-img create -q -f qcow2 "$W/other.qcow2" 8M
qsd_remote qsd "$W/disk.qcow2" qcow2 disk "$W/other.qcow2" qcow2 copy
scenario qsd-qcow2 "$(remote_uri qsd disk)" "$(remote_uri qsd copy)" \
    'the disk is the NBD export "copy" of 8.0 MiB'
stop_remote qsd
qemu-img check -q "$W/disk.qcow2" || fail "the qcow2 image is damaged"
