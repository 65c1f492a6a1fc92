#!/bin/bash
# Tests shadowcopy mount through the kernel's NBD client: with /dev/nbd*
# (after modprobe nbd) and nbd-client installed, a snapshot is attached
# with nbd-client (-unix, -N, -readonly), mounted read-only, reads the
# files as they were when it was taken (the live volume has changed
# since), the device is read-only, and umount disconnects it; a writable
# clone is attached read-write and takes a file.  Needs root, the nbd
# module and nbd-client (else skips with 77).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires mkfs.ext4 mount umount mountpoint debugfs
[ "$(id -u)" -eq 0 ] || skip "needs root (nbd-client, mount)"
command -v nbd-client >/dev/null 2>&1 ||
    [ -x /usr/sbin/nbd-client ] || [ -x /sbin/nbd-client ] ||
    skip "nbd-client is not installed (Debian package nbd-client)"
[ -e /dev/nbd0 ] || modprobe nbd >/dev/null 2>&1 || true
for ((i = 0; i < 20; i++)); do [ -e /dev/nbd0 ] && break; sleep 0.1; done
[ -b /dev/nbd0 ] || skip "no /dev/nbd0 (the kernel's nbd module cannot be loaded here)"

export SHADOWCOPY_STATE_DIR=$TMP/state
dev=
unset SHADOWCOPY_MOUNT_FUSE
mkdir -p "$TMP/mnt" "$TMP/files"
nc_cleanup () {
    # What mount recorded (the mount, the nbd device), top down.
    "$SHADOWCOPY_CLI" umount "$TMP/mnt" >/dev/null 2>&1
    mountpoint -q "$TMP/mnt" && umount "$TMP/mnt"
    [ -n "${dev:-}" ] && [ -e "/sys/block/${dev#/dev/}/pid" ] &&
        nbd-client -d "$dev"
    return 0
}
trap 'rc=$?; set +e; nc_cleanup; (exit $rc); _cleanup' EXIT

# An ext4 filesystem with a file, made without mounting anything.
head -c 200000 /dev/urandom >"$TMP/files/old"
truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F -d "$TMP/files" "$TMP/disk" || fail "mkfs.ext4 -d failed"
start_server "$TMP/disk" "$TMP/diff"
sc create --no-writers s >/dev/null || fail "create failed"
# The live volume changes: the snapshot must not.
nbd_write_random live 0 $((4 * 1024 * 1024))

dev=$("$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" s "$TMP/mnt") ||
    fail "mount through nbd-client failed"
case $dev in /dev/nbd[0-9]*) ;; *) fail "mount used $dev, not a /dev/nbd device" ;; esac
grep " $TMP/mnt " /proc/mounts | grep_all " ro," ||
    fail "the snapshot is not mounted read-only: $(grep " $TMP/mnt " /proc/mounts)"
[ "$(cat "/sys/block/${dev#/dev/}/ro")" = 1 ] ||
    fail "$dev is not read-only (nbd-client -readonly)"
cmp -s "$TMP/files/old" "$TMP/mnt/old" || fail "the snapshot's file differs"
[ -e "/sys/block/${dev#/dev/}/pid" ] || fail "$dev is not connected"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
mountpoint -q "$TMP/mnt" && fail "still mounted after umount"
[ -e "/sys/block/${dev#/dev/}/pid" ] && fail "$dev still connected after umount"

# A writable clone: attached without -readonly, mounted read-write.
sc clone s c >/dev/null || fail "clone failed"
dev=$("$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" c "$TMP/mnt") ||
    fail "mount of the clone through nbd-client failed"
[ "$(cat "/sys/block/${dev#/dev/}/ro")" = 0 ] || fail "the clone's $dev is read-only"
head -c 100000 /dev/urandom >"$TMP/new"
cp "$TMP/new" "$TMP/mnt/new" && sync -f "$TMP/mnt/new" || fail "writing to the clone failed"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount of the clone failed"
nbd_save c "$TMP/c.img"
debugfs -R "stat /new" "$TMP/c.img" 2>/dev/null | grep_all "Size: 100000" ||
    fail "the clone has no /new"
server_alive
stop_server
log "a snapshot and a clone mounted through nbd-client"
