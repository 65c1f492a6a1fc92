#!/bin/bash
# Tests that a filesystem someone else froze (fsfreeze -f by an admin or another backup tool) stays frozen: create --writer fsfreeze:MNT fails (FIFREEZE: busy), and its rollback (abort) thaws nothing it did not freeze.  Needs root and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires losetup mkfs.ext4 mount umount mountpoint fsfreeze
[ "$(id -u)" -eq 0 ] || skip "needs root (fsfreeze, losetup, mount)"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
M=$TMP/m
mkdir -p "$M"
LOOP=
foreign_cleanup () {
    fsfreeze -u "$M" 2>/dev/null
    mountpoint -q "$M" && umount "$M"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    return 0
}
trap 'rc=$?; set +e; foreign_cleanup; (exit $rc); _cleanup' EXIT
truncate -s 32M "$TMP/fs.img"
mkfs.ext4 -q -F "$TMP/fs.img" || fail "mkfs.ext4 failed"
LOOP=$(losetup -f --show "$TMP/fs.img") || skip "losetup failed"
mount "$LOOP" "$M" || fail "mount $LOOP failed"
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"

# Probe without blocking: FIFREEZE on a frozen filesystem fails (EBUSY).
frozen () {
    if fsfreeze -f "$M" 2>/dev/null; then fsfreeze -u "$M"; return 1; fi
    return 0
}
fsfreeze -f "$M" || fail "fsfreeze -f failed"
frozen || fail "the probe does not see the freeze"
if "$SHADOWCOPY_CLI" -c "$CTL" create --writer "fsfreeze:$M" s1 2> "$TMP/err"; then
    fail "create succeeded on a filesystem someone else froze"
fi
cat "$TMP/err"
grep -q "FIFREEZE .*busy" "$TMP/err" || fail "no FIFREEZE busy error"
frozen || fail "shadowcopy's failed attempt thawed someone else's freeze"
fsfreeze -u "$M" || fail "the other party's thaw failed"
frozen && fail "still frozen after the other party's thaw"
echo ok
