#!/bin/bash
# End to end: ext4 on the live export (nbdfuse + loop), an application writing numbered files, `shadowcopy create --writer fsfreeze:MNT`, then `shadowcopy mount` of the snapshot: fsck -n is clean, it holds exactly the files completed before the freeze, and the live filesystem kept working throughout.  Needs root, /dev/fuse and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 e2fsck mount umount fusermount3 blkid timeout
[ "$(id -u)" -eq 0 ] || skip "needs root (fsfreeze, losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1       # the nbdfuse path even where /dev/nbd* exists
MNT=$TMP/live
SNAP=$TMP/snap
mkdir -p "$MNT" "$SNAP"
LOOP=
FUSE_PID=
APP_PID=
e2e_cleanup () {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null
    mountpoint -q "$SNAP" && "$SHADOWCOPY_CLI" umount "$SNAP"
    live_ext4_umount
}
trap 'rc=$?; set +e; e2e_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 256M "$TMP/disk"
start_server "$TMP/disk" "$TMP/diff"

# 1. The live export through nbdfuse and a loop device; ext4 on it.
live_ext4_mount "$MNT"

# 2. The application: file N is written (N repeated 4096 times), fsynced,
# then renamed to its final name; only then is N appended to done.log
# (outside the filesystem).  A file is complete once its number is there.
cat > "$TMP/app.py" <<'EOP'
import os, sys
mnt, done = sys.argv[1], open(sys.argv[2], "a")
n = 0
while not os.path.exists(sys.argv[3]):
    n += 1
    tmp = os.path.join(mnt, ".tmp")
    with open(tmp, "wb") as f:
        f.write(("%d\n" % n).encode() * 4096)
        f.flush(); os.fsync(f.fileno())
    os.rename(tmp, os.path.join(mnt, "f%06d" % n))
    done.write("%d\n" % n); done.flush()
EOP
"$PYTHON" "$TMP/app.py" "$MNT" "$TMP/done.log" "$TMP/stop" 2> "$TMP/app.log" &
APP_PID=$!
for ((i = 0; i < 100; i++)); do [ "$(wc -l < "$TMP/done.log" 2>/dev/null || echo 0)" -ge 20 ] && break; sleep 0.1; done
[ "$(wc -l < "$TMP/done.log")" -ge 20 ] || fail "the application does not write: $(cat "$TMP/app.log")"

# 3. The snapshot.  A marker writer before fsfreeze records how many files
# were complete when the freeze began, and again at thaw (run before
# fsfreeze thaws, so the filesystem is still frozen then).
cat > "$TMP/marker" <<EOW
#!/bin/sh
case "\$1" in
freeze|thaw) echo "\$1 \$(wc -l < "$TMP/done.log")" >> "$TMP/marker.log" ;;
esac
EOW
chmod +x "$TMP/marker"
SHADOWCOPY_REPORT_FREEZE=1 sc create --writer "$TMP/marker" --writer "fsfreeze:$MNT" snap1 \
    > "$TMP/create.out" 2> "$TMP/create.err" ||
    fail "create with fsfreeze failed: $(cat "$TMP/create.err")"
cat "$TMP/create.err" >&2
before=$(awk '$1 == "freeze" { print $2 }' "$TMP/marker.log")
after=$(awk '$1 == "thaw" { print $2 }' "$TMP/marker.log")
[ -n "$before" ] && [ -n "$after" ] || fail "marker writer log: $(cat "$TMP/marker.log")"

# The live filesystem keeps working: more files get completed.
n0=$(wc -l < "$TMP/done.log")
for ((i = 0; i < 100; i++)); do [ "$(wc -l < "$TMP/done.log")" -ge $((n0 + 20)) ] && break; sleep 0.1; done
[ "$(wc -l < "$TMP/done.log")" -ge $((n0 + 20)) ] || fail "the live filesystem stopped working after the snapshot"

# 4. Mount the snapshot read-only: fsck -n clean, exactly files 1..K with
# before <= K <= after, each complete.
dev=$("$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" snap1 "$SNAP") ||
    fail "shadowcopy mount failed"
findmnt -n -o OPTIONS "$SNAP" | grep_all -w ro || fail "the snapshot is not mounted read-only"
e2fsck -fn "$dev" > "$TMP/fsck.log" 2>&1 || fail "fsck -n of the snapshot is not clean: $(cat "$TMP/fsck.log")"
"$PYTHON" - "$SNAP" "$before" "$after" <<'EOP' || fail "the snapshot's files are wrong"
import os, sys
d, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sorted(x for x in os.listdir(d) if x.startswith("f"))
k = len(names)
if names != ["f%06d" % i for i in range(1, k + 1)]:
    sys.exit("files are not 1..%d: %s" % (k, names[:5] + ["..."] + names[-5:]))
if not lo <= k <= hi:
    sys.exit("the snapshot has %d files; %d were complete at freeze, %d at thaw" % (k, lo, hi))
for i in range(1, k + 1):
    if open(os.path.join(d, "f%06d" % i), "rb").read() != ("%d\n" % i).encode() * 4096:
        sys.exit("file %d is incomplete or wrong" % i)
print("snapshot holds files 1..%d (complete at freeze: %d, at thaw: %d)" % (k, lo, hi))
EOP
touch "$SNAP/x" 2>/dev/null && fail "the snapshot mount is writable"
"$SHADOWCOPY_CLI" umount "$SNAP" || fail "shadowcopy umount failed"
mountpoint -q "$SNAP" && fail "umount left the snapshot mounted"
[ -z "$(ls "$SHADOWCOPY_STATE_DIR/mounts")" ] || fail "umount left state: $(ls "$SHADOWCOPY_STATE_DIR/mounts")"
losetup -a | grep_all "$SHADOWCOPY_STATE_DIR" && fail "umount left a loop device: $(losetup -a)"

# The application never failed, and the live filesystem is clean.
touch "$TMP/stop"; wait "$APP_PID" || fail "the application failed: $(cat "$TMP/app.log")"
APP_PID=
umount "$MNT"
e2fsck -fn "$LOOP" > "$TMP/fsck-live.log" 2>&1 || fail "fsck of the live filesystem: $(cat "$TMP/fsck-live.log")"
sc info | grep "write holds" >&2 || :
log "$(grep 'freeze to thaw' "$TMP/create.err")"
