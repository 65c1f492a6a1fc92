#!/bin/bash
# Tests `shadowcopy mount --nbd-uri` against a server on TCP with nbdkit
# --tls=on and a PSK (tls-for=write, the default): a snapshot mounted
# over nbds:// shows its files, and also over plaintext nbd:// (snapshots
# may be read in plaintext); a writable clone is mounted read-write over
# nbds://, and refused over nbd:// with nothing left behind.  Needs root,
# /dev/fuse, loop devices and nbdfuse (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid psktool
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
mkdir -p "$TMP/mnt" "$TMP/content"
trap 'rc=$?; set +e; mount_state_cleanup; (exit $rc); _cleanup' EXIT

head -c 200000 /dev/urandom > "$TMP/content/file"
truncate -s 32M "$TMP/disk"
mkfs.ext4 -q -F -d "$TMP/content" "$TMP/disk" || fail "mkfs.ext4 failed"
make_psk "$TMP/keys.psk" alice
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" --
sc create --no-writers s > /dev/null || fail "create failed"
sc clone s c > /dev/null || fail "clone failed"
tls="nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$TMP/keys.psk"
plain="nbd://127.0.0.1:$PORT"

for u in "$tls" "$plain"; do
    sc mount --nbd-uri "$u" s "$TMP/mnt" > /dev/null ||
        fail "mount s --nbd-uri $u failed"
    grep " $TMP/mnt " /proc/mounts | grep_all " ro," ||
        fail "s is not mounted read-only"
    cmp "$TMP/content/file" "$TMP/mnt/file" || fail "s's file differs ($u)"
    "$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount failed"
done
log "ok, the snapshot mounted over nbds and over nbd"

sc mount --nbd-uri "$tls" c "$TMP/mnt" > /dev/null ||
    fail "mount of the clone over nbds failed"
grep " $TMP/mnt " /proc/mounts | grep_all " rw," ||
    fail "the clone is not mounted read-write"
echo hello > "$TMP/mnt/new"
"$SHADOWCOPY_CLI" umount "$TMP/mnt" || fail "umount of the clone failed"
log "ok, the clone mounted read-write over nbds"

expect_cli_error "the clone over plaintext" sc mount --nbd-uri "$plain" c "$TMP/mnt"
mountpoint -q "$TMP/mnt" && fail "the clone got mounted over plaintext"
[ -z "$(ls -A "$TMP/state/mounts" 2>/dev/null)" ] ||
    fail "a refused mount left state: $(ls -A "$TMP/state/mounts")"
[ -z "$(losetup -a | grep "$TMP")" ] || fail "a refused mount left a loop device"
stop_server
