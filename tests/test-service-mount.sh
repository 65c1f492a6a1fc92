#!/bin/bash
# Tests that shadowcopy mount needs no --nbd-socket: it asks the server (INFO's listen line) where it serves NBD, mounts the snapshot, and umount cleans up.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 debugfs
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
unset SHADOWCOPY_NBD_SOCKET
mkdir -p "$TMP/mnt"
trap 'rc=$?; set +e; mount_state_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F "$TMP/disk" || fail "mkfs.ext4 failed"
echo "before the snapshot" > "$TMP/hello"
debugfs -w -R "write $TMP/hello hello" "$TMP/disk" > /dev/null 2>&1 ||
    fail "debugfs write failed"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s1 > /dev/null || fail "create failed"

"$SHADOWCOPY_CLI" -c "$CTL" mount s1 "$TMP/mnt" > "$TMP/mount.out" 2>&1 ||
    fail "mount without --nbd-socket: $(cat "$TMP/mount.out")"
[ "$(cat "$TMP/mnt/hello")" = "before the snapshot" ] ||
    fail "the mounted snapshot does not hold hello"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
! mountpoint -q "$TMP/mnt" || fail "still mounted"

# No control socket and no --nbd-socket: a usage error, nothing mounted.
rc=0; "$SHADOWCOPY_CLI" mount s1 "$TMP/mnt" 2> "$TMP/err" || rc=$?
[ "$rc" -eq 2 ] || fail "mount with neither: exit $rc ($(cat "$TMP/err"))"
grep -q "or its control socket with -c" "$TMP/err" ||
    fail "mount with neither: $(cat "$TMP/err")"
