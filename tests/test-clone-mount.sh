#!/bin/bash
# Tests shadowcopy mount of a writable clone: it is mounted read-write (nbdfuse and a loop device), a file written there is read back after umount and a new mount, fsck finds the clone's filesystem clean, and the snapshot and the live volume do not see the file.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 fsck.ext4 debugfs mount umount mountpoint fusermount3 blkid nbdcopy
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
mkdir -p "$TMP/mnt"
trap 'rc=$?; set +e; mount_state_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F "$TMP/disk" || fail "mkfs.ext4 failed"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s > /dev/null || fail "create failed"
sc clone s c > /dev/null || fail "clone failed"
s_sum=$(nbd_sha256 s)
mnt () { "$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" c "$TMP/mnt"; }

mnt > /dev/null || fail "mount of the clone failed"
grep " $TMP/mnt " /proc/mounts | grep_all " rw," || fail "the clone is not mounted read-write: $(grep " $TMP/mnt " /proc/mounts)"
head -c 300000 /dev/urandom > "$TMP/file"
cp "$TMP/file" "$TMP/mnt/file" || fail "writing a file to the clone failed"
sync -f "$TMP/mnt/file"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
mnt > /dev/null || fail "mount again failed"
cmp -s "$TMP/file" "$TMP/mnt/file" || fail "the file did not come back"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"

# The clone's filesystem is clean; the snapshot and live never saw it.
nbd_save c "$TMP/c.img"
fsck.ext4 -fn "$TMP/c.img" > "$TMP/fsck.log" 2>&1 || fail "fsck of the clone: $(cat "$TMP/fsck.log")"
debugfs -R "stat /file" "$TMP/c.img" 2>/dev/null | grep_all "Size: 300000" ||
    fail "the clone's image has no /file"
[ "$(nbd_sha256 s)" = "$s_sum" ] || fail "the snapshot changed"
cmp -s "$TMP/disk" <(nbdcopy "$(uri live)" -) || fail "live is not the origin"
debugfs -R "stat /file" "$TMP/disk" 2>/dev/null | grep_all "Size: 300000" &&
    fail "the origin has the clone's file"
server_alive
stop_server

# Without -c, the export says what it is: with discard-snapshots=on a
# plain snapshot takes writes (trims), yet it is mounted read-only; the
# clone, described as one, read-write.
start_server "$TMP/disk" "$TMP/diff" discard-snapshots=on
nc_mnt () { "$SHADOWCOPY_CLI" mount --nbd-socket "$NBD_SOCK" "$1" "$TMP/mnt"; }
nc_mnt s > /dev/null || fail "mount of the snapshot without -c failed: $(grep "on s:" "$SERVER_LOG" | head -2)"
grep " $TMP/mnt " /proc/mounts | grep_all " ro," || fail "the snapshot is not mounted read-only: $(grep " $TMP/mnt " /proc/mounts)"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
grep -q "on s: Operation not permitted" "$SERVER_LOG" && fail "writes were sent to the snapshot"
nc_mnt c > /dev/null || fail "mount of the clone without -c failed"
grep " $TMP/mnt " /proc/mounts | grep_all " rw," || fail "the clone is not mounted read-write without -c: $(grep " $TMP/mnt " /proc/mounts)"
cmp -s "$TMP/file" "$TMP/mnt/file" || fail "the clone's file is not there"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
[ "$(nbd_sha256 s)" = "$s_sum" ] || fail "the snapshot changed"
server_alive
stop_server
