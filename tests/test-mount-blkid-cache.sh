#!/bin/bash
# Tests that shadowcopy mount takes the filesystem type from the device, not from blkid's cache: with a cache (BLKID_FILE) that says every loop device holds XFS, as it does for a loop device that another mount had a moment before, an ext4 snapshot is mounted as ext4; and an export with no filesystem is refused with a clear error, no layer left behind.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid findmnt
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
mkdir -p "$TMP/mnt"
trap 'rc=$?; set +e; mount_state_cleanup; (exit $rc); _cleanup' EXIT

# A stale cache, probed just now: every loop device "holds XFS".  blkid
# trusts an entry younger than 2 s without reading the device; it is
# rewritten before each mount.
export BLKID_FILE=$TMP/blkid.tab
stale_cache () {
    local d now
    now=$(date +%s.%6N)
    : > "$BLKID_FILE"
    for d in /dev/loop[0-9]*; do
        echo "<device TIME=\"$now\" TYPE=\"xfs\">$d</device>" >> "$BLKID_FILE"
    done
}
mnt () { "$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" "$1" "$TMP/mnt"; }
leaks () { losetup -a | grep -c "$TMP" || :; }

truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F "$TMP/disk" || fail "mkfs.ext4 failed"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s1 > /dev/null || fail "create failed"
stale_cache
mnt s1 > /dev/null 2> "$TMP/mount.err" ||
    fail "mount of an ext4 snapshot with a stale blkid cache failed: $(cat "$TMP/mount.err")"
[ "$(findmnt -n -o FSTYPE "$TMP/mnt")" = ext4 ] ||
    fail "mounted as $(findmnt -n -o FSTYPE "$TMP/mnt"), not ext4"
[ -d "$TMP/mnt/lost+found" ] || fail "the snapshot is not mounted"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
server_alive
stop_server

# No filesystem at all: refused, saying so, nothing left.
rm -f "$TMP/disk" "$TMP/diff"
truncate -s 32M "$TMP/disk"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s2 > /dev/null || fail "create failed"
mnt s2 > /dev/null 2> "$TMP/mount.err" && fail "an export with no filesystem got mounted"
grep -q "finds no filesystem type" "$TMP/mount.err" ||
    fail "no clear error for an export with no filesystem: $(cat "$TMP/mount.err")"
mountpoint -q "$TMP/mnt" && fail "mounted"
[ "$(leaks)" -eq 0 ] || fail "loop devices left: $(losetup -a | grep "$TMP")"
[ -z "$(ls "$SHADOWCOPY_STATE_DIR/mounts" 2>/dev/null)" ] ||
    fail "mount state left: $(ls "$SHADOWCOPY_STATE_DIR/mounts"; cat "$TMP/mount.err")"
server_alive
stop_server
