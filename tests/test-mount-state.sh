#!/bin/bash
# Tests shadowcopy mount/umount bookkeeping: umount cleans up every layer after a plain umount DIR (and DIR can be mounted again), and a DIR whose path is longer than a file name works.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
long=$TMP/$(printf 'd%.0s' {1..200})/$(printf 'e%.0s' {1..200})
mkdir -p "$TMP/mnt" "$long"
ms_cleanup () {
    local d l
    for d in "$TMP/mnt" "$long"; do
        mountpoint -q "$d" && umount "$d"
    done
    for l in $(losetup -a | grep "$TMP" | cut -d: -f1); do losetup -d "$l"; done
    for d in "$TMP"/state/mounts/*.fuse; do
        [ -d "$d" ] && fusermount3 -u "$d" 2>/dev/null
    done
    return 0
}
trap 'rc=$?; set +e; ms_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F "$TMP/disk" || fail "mkfs.ext4 failed"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s1 > /dev/null || fail "create failed"
mnt () { "$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" s1 "$1"; }
leaks () { losetup -a | grep -c "$TMP" || :; }

# 1. A plain umount first: shadowcopy umount still removes the loop
# device and nbdfuse, and the DIR can be mounted again.
mnt "$TMP/mnt" > /dev/null || fail "mount failed"
umount "$TMP/mnt" || fail "plain umount failed"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "shadowcopy umount after a plain umount failed"
[ "$(leaks)" -eq 0 ] || fail "loop devices left: $(losetup -a | grep "$TMP")"
pgrep -f "nbdfuse.*$TMP" > /dev/null && fail "nbdfuse left running"
mnt "$TMP/mnt" > /dev/null || fail "mount again after cleanup failed"
[ -f "$TMP/mnt/lost+found/." ] || [ -d "$TMP/mnt/lost+found" ] || fail "the snapshot is not mounted"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
mountpoint -q "$TMP/mnt" && fail "still mounted"

# 2. A DIR path longer than NAME_MAX.
mnt "$long" > /dev/null || fail "mount on a long path failed"
mountpoint -q "$long" || fail "long path not mounted"
"$SHADOWCOPY_CLI" umount "$long" || fail "umount of a long path failed"
mountpoint -q "$long" && fail "long path still mounted"
[ "$(leaks)" -eq 0 ] || fail "loop devices left: $(losetup -a | grep "$TMP")"
server_alive
stop_server
