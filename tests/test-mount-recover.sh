#!/bin/bash
# End to end, auto-recovery: a filesystem (ext4, then XFS) on the live export (nbdfuse + loop) with an application completing fsynced files, a crash-consistent snapshot (no writer: the filesystem is not frozen, its journal holds the last transactions), then `shadowcopy mount --recover`: mounted read-only without noload/norecovery, every file completed before the snapshot is there and whole, fsck is clean, the snapshot itself is unchanged, and umount deletes the temporary clone; and `create --auto-recover`: the clone NAME.recovered kept, its journal replayed, holds every file completed before the snapshot.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 e2fsck mount umount fusermount3 blkid findmnt
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1       # the nbdfuse path even where /dev/nbd* exists
MNT=$TMP/live
SNAP=$TMP/snap
FUSE=$TMP/fuse
mkdir -p "$MNT" "$SNAP" "$FUSE"
LOOP=
FUSE_PID=
APP_PID=
# Mounted, even when its server is gone (mountpoint(1) stats the
# directory: EIO or ENOTCONN then, and the mount would be left behind).
mounted () { grep -q " $1 " /proc/mounts; }
mr_cleanup () {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    APP_PID=
    mounted "$SNAP" && { umount "$SNAP" || umount -l "$SNAP"; }
    [ -d "$SHADOWCOPY_STATE_DIR/mounts" ] && "$SHADOWCOPY_CLI" umount "$SNAP" 2>/dev/null
    mounted "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    LOOP=
    mounted "$FUSE" && { fusermount3 -u "$FUSE" || umount -l "$FUSE"; }
    if [ -n "$FUSE_PID" ]; then
        # nbdfuse whose server died may not exit on its own.
        for ((i = 0; i < 50; i++)); do kill -0 "$FUSE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$FUSE_PID" 2>/dev/null
        wait "$FUSE_PID" 2>/dev/null
    fi
    FUSE_PID=
    return 0
}
trap 'rc=$?; set +e; mr_cleanup; (exit $rc); _cleanup' EXIT

# The application: file N is written (N repeated 4096 times), fsynced,
# renamed to its final name and the directory fsynced; only then is N
# appended to done.log (outside the filesystem).  A file whose number is
# in done.log before the snapshot is durable in it.
cat > "$TMP/app.py" <<'EOP'
import os, sys
mnt, done = sys.argv[1], open(sys.argv[2], "a")
n = 0
dfd = os.open(mnt, os.O_RDONLY)
while not os.path.exists(sys.argv[3]):
    n += 1
    tmp = os.path.join(mnt, ".tmp")
    with open(tmp, "wb") as f:
        f.write(("%d\n" % n).encode() * 4096)
        f.flush(); os.fsync(f.fileno())
    os.rename(tmp, os.path.join(mnt, "f%06d" % n))
    os.fsync(dfd)
    done.write("%d\n" % n); done.flush()
EOP

# check.py DIR LO HI: DIR holds files 1..K, each whole, LO <= K <= HI + 1
# (file HI + 1 may have been renamed in before its number was logged).
cat > "$TMP/check.py" <<'EOP'
import os, sys
d, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sorted(x for x in os.listdir(d) if x.startswith("f"))
k = len(names)
if names != ["f%06d" % i for i in range(1, k + 1)]:
    sys.exit("files are not 1..%d: %s" % (k, names[:5] + ["..."] + names[-5:]))
if not lo <= k <= hi + 1:
    sys.exit("%d files; %d were durable before the snapshot, %d after it" % (k, lo, hi))
for i in range(1, k + 1):
    if open(os.path.join(d, "f%06d" % i), "rb").read() != ("%d\n" % i).encode() * 4096:
        sys.exit("file %d is incomplete or wrong" % i)
print("recovered: files 1..%d (durable before the snapshot: %d, after: %d)" % (k, lo, hi))
EOP

# recover_case FSTYPE MKFS FSCK...: the whole scenario on one filesystem.
recover_case () {
    local fstype=$1 mkfs=$2 before after dev sha0 sha1 opts
    shift 2
    rm -f "$TMP/disk" "$TMP/diff" "$TMP/done.log" "$TMP/stop"
    truncate -s 512M "$TMP/disk"
    start_server "$TMP/disk" "$TMP/diff"

    nbdfuse -P "$TMP/fuse.pid" "$FUSE/disk" "$(uri live)" > "$TMP/nbdfuse.log" 2>&1 &
    FUSE_PID=$!
    rm -f "$TMP/fuse.pid"
    for ((i = 0; i < 100; i++)); do [ -s "$TMP/fuse.pid" ] && break; sleep 0.1; done
    [ -s "$TMP/fuse.pid" ] || fail "nbdfuse did not start: $(cat "$TMP/nbdfuse.log")"
    LOOP=$(losetup -f --show "$FUSE/disk") || fail "losetup of the live export failed"
    $mkfs "$LOOP" > "$TMP/mkfs.log" 2>&1 || fail "$mkfs failed: $(cat "$TMP/mkfs.log")"
    mount "$LOOP" "$MNT" || fail "mount of the live $fstype filesystem failed"

    "$PYTHON" "$TMP/app.py" "$MNT" "$TMP/done.log" "$TMP/stop" 2> "$TMP/app.log" &
    APP_PID=$!
    for ((i = 0; i < 200; i++)); do [ "$(wc -l 2>/dev/null < "$TMP/done.log" || echo 0)" -ge 30 ] && break; sleep 0.1; done
    [ "$(wc -l < "$TMP/done.log")" -ge 30 ] || fail "the application does not write: $(cat "$TMP/app.log")"

    # A crash-consistent snapshot: no writer, the application running.
    before=$(wc -l < "$TMP/done.log")
    sc create --no-writers snap1 > /dev/null || fail "create failed"
    after=$(wc -l < "$TMP/done.log")
    sha0=$(nbd_sha256 snap1)

    dev=$("$SHADOWCOPY_CLI" -c "$CTL" mount --recover --nbd-socket "$NBD_SOCK" snap1 "$SNAP") ||
        fail "$fstype: shadowcopy mount --recover failed"
    opts=$(findmnt -n -o OPTIONS "$SNAP")
    echo "$opts" | grep_all -w ro || fail "$fstype: not mounted read-only: $opts"
    echo "$opts" | grep_all -Ew 'noload|norecovery' && fail "$fstype: mounted with $opts"
    sc list | grep_all 'snap1\.recover-' || fail "$fstype: no recovery clone listed: $(sc list)"
    "$PYTHON" "$TMP/check.py" "$SNAP" "$before" "$after" || fail "$fstype: the recovered snapshot's files are wrong"
    touch "$SNAP/x" 2>/dev/null && fail "$fstype: the recovered mount is writable"

    # fsck of the recovered image: unmounted (plain umount), then every
    # layer below removed by shadowcopy umount, the clone last.
    umount "$SNAP" || fail "$fstype: plain umount failed"
    "$@" "$dev" > "$TMP/fsck.log" 2>&1 || fail "$fstype: fsck of the recovered image: $(cat "$TMP/fsck.log")"
    "$SHADOWCOPY_CLI" umount "$SNAP" || fail "$fstype: shadowcopy umount failed"
    sc list | grep_all 'recover-' && fail "$fstype: umount left the recovery clone: $(sc list)"
    losetup -a | grep_all "$SHADOWCOPY_STATE_DIR" && fail "$fstype: umount left a loop device: $(losetup -a)"
    sha1=$(nbd_sha256 snap1)
    [ "$sha0" = "$sha1" ] || fail "$fstype: the snapshot changed during the recovery"

    # create --auto-recover: NAME.recovered kept, its journal replayed.
    before=$(wc -l < "$TMP/done.log")
    sc create --no-writers --auto-recover --nbd-socket "$NBD_SOCK" snap2 > "$TMP/create2.out" 2> "$TMP/create2.err" ||
        fail "$fstype: create --auto-recover failed: $(cat "$TMP/create2.err")"
    after=$(wc -l < "$TMP/done.log")
    grep -qx 'recovered snap2.recovered' "$TMP/create2.out" ||
        fail "$fstype: create --auto-recover said: $(cat "$TMP/create2.out")"
    sc list | grep 'snap2\.recovered' | grep_all 'clone of snap2' ||
        fail "$fstype: no clone snap2.recovered of snap2: $(sc list)"
    "$SHADOWCOPY_CLI" -c "$CTL" mount -o ro --nbd-socket "$NBD_SOCK" snap2.recovered "$SNAP" > /dev/null ||
        fail "$fstype: mount of snap2.recovered failed"
    "$PYTHON" "$TMP/check.py" "$SNAP" "$before" "$after" || fail "$fstype: snap2.recovered's files are wrong"
    "$SHADOWCOPY_CLI" umount "$SNAP" || fail "$fstype: umount of snap2.recovered failed"

    touch "$TMP/stop"; wait "$APP_PID" || fail "the application failed: $(cat "$TMP/app.log")"
    APP_PID=
    umount "$MNT"
    losetup -d "$LOOP"; LOOP=
    fusermount3 -u "$FUSE"; wait "$FUSE_PID" 2>/dev/null; FUSE_PID=
    server_alive
    stop_server
    log "$fstype: recovered, $before files durable before the snapshot"
}

recover_case ext4 "mkfs.ext4 -q -F" e2fsck -fn
if command -v mkfs.xfs > /dev/null && command -v xfs_repair > /dev/null; then
    recover_case xfs "mkfs.xfs -q -f" xfs_repair -n
else
    log "no xfsprogs: XFS not tested"
fi
