#!/bin/bash
# The qemu-ga writer against a real qemu-ga: ext4 on the live export (nbdfuse + loop) is the "guest" filesystem, and qemu-ga runs in a private mount namespace whose root is a tmpfs holding only it, /proc, /sys and that filesystem (tests/qga-jail.sh), so it can never freeze this machine's own filesystems.  Under a write load, `shadowcopy create --writer qemu-ga:SOCKET:/mnt/live` (the freeze-list form), then, once guest-get-fsinfo shows the test mount is all qemu-ga sees, `qemu-ga:SOCKET` (freeze everything): a write started while frozen blocks until thaw, the snapshot mounted passes fsck, holds what was written before the freeze and not what was blocked, and the freeze-to-thaw time is reported.  Needs root, /dev/fuse, loop devices and qemu-ga (Debian package qemu-guest-agent; else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires qemu-ga unshare pivot_root ldd nbdfuse losetup mkfs.ext4 e2fsck mount umount fusermount3 blkid timeout setsid
[ "$(id -u)" -eq 0 ] || skip "needs root (mount namespaces, losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
MNT=$TMP/live
SNAP=$TMP/snap
QGA=$TMP/qga                    # a tmpfs: qemu-ga's socket and log
SOCK=$QGA/qga.sock
mkdir -p "$MNT" "$SNAP" "$QGA" "$TMP/jail"
LOOP=
FUSE_PID=
APP_PID=
JAIL_PID=
qga_cleanup () {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null
    # Whatever happened, nothing stays frozen.
    mountpoint -q "$MNT" && fsfreeze -u "$MNT" 2>/dev/null
    [ -n "$JAIL_PID" ] && kill "$JAIL_PID" 2>/dev/null && wait "$JAIL_PID" 2>/dev/null
    mountpoint -q "$QGA" && umount "$QGA"
    mountpoint -q "$SNAP" && "$SHADOWCOPY_CLI" umount "$SNAP"
    live_ext4_umount
}
trap 'rc=$?; set +e; qga_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 256M "$TMP/disk"
start_server "$TMP/disk" "$TMP/diff"
live_ext4_mount "$MNT"
echo "written before the freeze" > "$MNT/before"
sync -f "$MNT"

# qemu-ga in its jail.
mount -t tmpfs -o mode=700 qga "$QGA"
unshare -m --propagation private "$(dirname "$0")/qga-jail.sh" "$TMP/jail" "$MNT" "$QGA" \
    > "$TMP/jail.out" 2>&1 &
JAIL_PID=$!
for ((i = 0; i < 100; i++)); do [ -S "$SOCK" ] || [ -e "$QGA/jail.err" ] && break; sleep 0.1; done
[ -e "$QGA/jail.err" ] && fail "qemu-ga not started: $(cat "$QGA/jail.err")"
[ -S "$SOCK" ] || fail "qemu-ga did not start: $(cat "$TMP/jail.out" "$QGA/qga.log")"

# What qemu-ga sees: guest-get-fsinfo.
fsinfo () {
    "$PYTHON" - "$SOCK" <<'EOP'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
def call(c):
    s.sendall(json.dumps(c).encode() + b"\n")
    d = b""
    while not d.endswith(b"\n"):
        d += s.recv(65536)
    return json.loads(d)
assert call({"execute": "guest-sync", "arguments": {"id": 7}})["return"] == 7
print(" ".join(sorted(fs["mountpoint"] for fs in call({"execute": "guest-get-fsinfo"})["return"])))
EOP
}
seen=$(fsinfo) || fail "guest-get-fsinfo failed"
log "qemu-ga sees: $seen"

# The load: file N written, fsynced, renamed; N then appended to done.log.
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

# A writer run after qemu-ga's freeze: it starts a write (in its own
# session, so it outlives the phase) and says whether it was done 1 s
# later; frozen, it must not be.
cat > "$TMP/probe" <<EOW
#!/bin/sh
[ "\$1" = freeze ] || exit 0
rm -f "$TMP/probe.done"
setsid sh -c 'echo blocked > "$MNT/during-\$SHADOWCOPY_SNAPSHOT" && touch "$TMP/probe.done"' \
    < /dev/null > /dev/null 2>&1 &
sleep 1
if [ -e "$TMP/probe.done" ]; then echo not-blocked; else echo blocked; fi > "$TMP/probe.log"
EOW
chmod +x "$TMP/probe"

# snapshot NAME WRITER: the snapshot with WRITER then the probe; checked.
snapshot () {
    local name=$1 writer=$2 dev
    sc create --writer "$writer" --writer "$TMP/probe" "$name" > /dev/null 2> "$TMP/$name.err" ||
        fail "$name: create failed: $(cat "$TMP/$name.err")"
    [ "$(cat "$TMP/probe.log")" = blocked ] || fail "$name: a write was not blocked while frozen"
    for ((i = 0; i < 100; i++)); do [ -e "$TMP/probe.done" ] && break; sleep 0.1; done
    [ -e "$TMP/probe.done" ] || fail "$name: the blocked write did not finish after thaw"
    grep -q "^shadowcopy: writer $writer: freeze: froze in [0-9]* ms: 1 guest filesystem frozen$" "$TMP/$name.err" ||
        fail "$name: no freeze report: $(cat "$TMP/$name.err")"
    frozen=$(sed -n "s/^shadowcopy: writer .*: thaw: frozen for \([0-9]*\) ms: 1 guest filesystem thawed$/\1/p" "$TMP/$name.err")
    [ -n "$frozen" ] || fail "$name: no thaw report: $(cat "$TMP/$name.err")"
    log "$name: $(tr '\n' ' ' < "$TMP/$name.err")"
    log "$name: freeze to thaw under load (qemu-ga): $frozen ms"
    dev=$("$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" "$name" "$SNAP") ||
        fail "$name: shadowcopy mount failed"
    e2fsck -fn "$dev" > "$TMP/fsck.log" 2>&1 || fail "$name: fsck -n of the snapshot: $(cat "$TMP/fsck.log")"
    [ "$(cat "$SNAP/before")" = "written before the freeze" ] || fail "$name: the snapshot lost what was written before"
    [ -e "$SNAP/during-$name" ] && fail "$name: the snapshot holds the write made while frozen"
    "$PYTHON" - "$SNAP" <<'EOP' || fail "$name: the snapshot's files are wrong"
import os, sys
d = sys.argv[1]
names = sorted(x for x in os.listdir(d) if x.startswith("f"))
if names != ["f%06d" % i for i in range(1, len(names) + 1)]:
    sys.exit("files are not 1..%d" % len(names))
for i in range(1, len(names) + 1):
    if open(os.path.join(d, "f%06d" % i), "rb").read() != ("%d\n" % i).encode() * 4096:
        sys.exit("file %d is incomplete" % i)
EOP
    "$SHADOWCOPY_CLI" umount "$SNAP" || fail "$name: umount failed"
}

# 1. The freeze-list form: only the guest's /mnt/live.
snapshot listed "qemu-ga:$SOCK:/mnt/live"

# 2. Every filesystem of the guest, only when /mnt/live is all it sees.
if [ "$seen" = /mnt/live ]; then
    snapshot all "qemu-ga:$SOCK"
else
    log "qemu-ga sees more than the test mount ($seen): the full freeze is not tried"
    fail "the jail leaks mounts"
fi

# 3. The freeze-to-thaw time under the load, without the probe's second.
sc create --writer "qemu-ga:$SOCK:/mnt/live" timed > /dev/null 2> "$TMP/timed.err" ||
    fail "timed: create failed: $(cat "$TMP/timed.err")"
frozen=$(sed -n "s/^shadowcopy: writer .*: thaw: frozen for \([0-9]*\) ms: .*/\1/p" "$TMP/timed.err")
[ -n "$frozen" ] || fail "timed: no thaw report: $(cat "$TMP/timed.err")"
log "freeze to thaw under load (qemu-ga, no probe): $frozen ms"

touch "$TMP/stop"
wait "$APP_PID" || fail "the load failed: $(cat "$TMP/app.log")"
APP_PID=
