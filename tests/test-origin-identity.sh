#!/bin/bash
# Tests that a start on a disk that grew or shrank since its diff area was made, on another disk's diff area, or on a disk replaced at the same path, is refused with a message saying which and what to do, changes nothing, and that giving the disk back its size makes it start again: a file given back its size is found changed (its ctime moved), so its snapshots are kept only by origin-changed=accept, as the refusal says.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout nbdcopy

M=$((1024 * 1024))
W=$TMP/w
mkdir "$W"

# expect_refusal WHAT TEXT... -- PLUGIN-ARGS: nbdkit must refuse to start
# and say every TEXT (fixed strings), and the diff area must not change.
expect_refusal () {
    local what=$1 rc=0 before texts=() t
    shift
    while [ "$1" != -- ]; do texts+=("$1"); shift; done
    shift
    before=$(sha256sum "$W"/*.diff)
    timeout 30 nbdkit -U "$TMP/bad.sock" --run 'exit 0' \
        "$SHADOWCOPY_PLUGIN" "$@" > "$TMP/start.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] ||
        fail "$what: nbdkit exited with $rc: $(cat "$TMP/start.out")"
    for t in "${texts[@]}"; do
        grep -qF -- "$t" "$TMP/start.out" ||
            fail "$what: the refusal does not say '$t': $(cat "$TMP/start.out")"
    done
    grep -q "damaged or foreign" "$TMP/start.out" &&
        fail "$what: still called damaged or foreign: $(cat "$TMP/start.out")"
    [ "$before" = "$(sha256sum "$W"/*.diff)" ] ||
        fail "$what: the refused start changed a diff area"
    log "ok, $what: $(grep -m1 error "$TMP/start.out")"
}

make_disk "$W/a" 2M
make_disk "$W/b" 2M
make_disk "$W/c" 3M
start_server "$W/a" "$W/a.diff"
nbd_save live "$TMP/exp-s1"
sc_create s1
stop_server
start_server "$W/b" "$W/b.diff"
stop_server

# The same file, grown: the refusal says how to get the snapshots back,
# and that the resize moved the file's ctime.
truncate -s 3M "$W/a"
expect_refusal "grown disk" \
    "$W/a is 3.0 MiB (3145728 bytes) but the diff area was made for it at 2.0 MiB (2097152 bytes): the disk grew (or this is another disk's diff area)" \
    "give the disk back its size of 2097152 bytes (what was added is in no snapshot)" \
    "or point diff= at this disk's own diff area" \
    "Resizing a file changes its ctime, so the next start finds it changed and invalidates its snapshots, unless it is given origin-changed=accept: safe if nothing but the resize changed the file" \
    -- disk="$W/a" diff="$W/a.diff"
# Following that advice keeps s1, and it serves what it did.
truncate -s 2M "$W/a"
start_server "$W/a" "$W/a.diff" origin-changed=accept
[ "$(sc_field s1 state)" = valid ] ||
    fail "s1 after the size was given back, accepted: $(sc_field s1 state) $(sc_field s1 reason)"
[ "$(nbd_sha256 s1)" = "$(file_sha256 "$TMP/exp-s1")" ] ||
    fail "s1 after the size was given back, accepted: wrong content"
stop_server

# Shrunk: what was cut off is gone, so accept is safe only if it is
# written back as it was.
truncate -s 1M "$W/a"
expect_refusal "shrunk disk" \
    "$W/a is 1.0 MiB (1048576 bytes) but the diff area was made for it at 2.0 MiB (2097152 bytes): the disk shrank (or this is another disk's diff area)" \
    "give the disk back its size of 2097152 bytes, or point diff= at this disk's own diff area" \
    "Resizing a file changes its ctime, so the next start finds it changed and invalidates its snapshots, unless it is given origin-changed=accept: safe only if what was cut off is first written back as it was (the snapshots read it from the disk)" \
    -- disk="$W/a" diff="$W/a.diff"
# Its size given back, it starts; the truncates changed it, so its
# snapshot is no longer served.
truncate -s 2M "$W/a"
start_server "$W/a" "$W/a.diff"
[ "$(sc_field s1 reason)" = "origin changed while the server was stopped" ] ||
    fail "s1 after the size was given back: $(sc_field s1 state) $(sc_field s1 reason)"
stop_server

# Another disk's diff area, the same size and another size.
expect_refusal "another disk of the same size" \
    "this is another disk's diff area: it was made for $W/b, a file (device" \
    "but $W/a is a file (device" "(device/inode differ)" \
    "Point diff= at this disk's own diff area, or disk= at $W/b" \
    -- disk="$W/a" diff="$W/b.diff"
expect_refusal "another disk of another size" \
    "this is another disk's diff area: it was made for $W/a, a file" \
    "of 2.0 MiB (2097152 bytes), but $W/c is a file" \
    "of 3.0 MiB (3145728 bytes)" \
    -- disk="$W/c" diff="$W/a.diff"

# The disk replaced by a copy at the same path (a new inode).
cp "$W/a" "$W/a.new"
mv "$W/a.new" "$W/a"
expect_refusal "disk replaced at the same path" \
    "$W/a is not the disk the diff area was made for: the path is the same, but it was a file (device" \
    "(device/inode differ)" \
    "The disk was replaced" \
    -- disk="$W/a" diff="$W/a.diff"

# A block device given a file's diff area.
loop=$(losetup -f --show "$W/b" 2>/dev/null) || loop=
if [ -n "$loop" ]; then
    trap 'rc=$?; set +e; losetup -d "$loop"; (exit $rc); _cleanup' EXIT
    expect_refusal "a block device given a file's diff area" \
        "this is another disk's diff area: it was made for $W/b, a file (device" \
        "but $loop is a block device" \
        -- disk="$loop" diff="$W/b.diff"
else
    log "no loop device here: the block-device case is not tried"
fi
exit 0
