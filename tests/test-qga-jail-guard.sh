#!/bin/bash
# Tests tests/qga-jail.sh's guard, with qemu-ga replaced by a print (a copy of the script whose last command prints "GUARD PASSED" and the jail's mounts): a TEST_MOUNT that is a plain directory, a bind mount of a directory, or a bind mount of this machine's root filesystem (a device another mount uses) is refused before anything is built, as is a socket directory that is no tmpfs; a filesystem of its own (a tmpfs; ext4 on a loop device when there is one) passes, and the jail then holds nothing but it, proc, sysfs and tmpfs.  No qemu-ga runs.  Needs root and unshare (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires unshare mount umount readlink ldd
[ "$(id -u)" -eq 0 ] || skip "needs root (unshare -m, mount)"

# The guard under test, qemu-ga replaced: everything up to its exec.
JAIL=$TMP/jail-noqga.sh
sed -e '/^exec \/usr\/sbin\/qemu-ga/,$d' \
    -e 's|^qga=$(command -v qemu-ga)$|qga=$(type -P true)|' \
    "$(dirname "$0")/qga-jail.sh" > "$JAIL"
grep -q '^qga=$(type -P true)$' "$JAIL" && ! grep -q 'qemu-ga -m' "$JAIL" ||
    fail "qga-jail.sh no longer has the lines this test replaces"
cat >> "$JAIL" <<'EOJ'
echo "GUARD PASSED"
while read -r _ _ dev _ mp rest; do echo "MOUNT $dev $mp ${rest#* - }"; done < /proc/self/mountinfo
exit 0
EOJ
chmod +x "$JAIL"

# jail SETUP: in a private mount namespace (its mounts vanish with it),
# run SETUP (a shell snippet that may mount on $D/live and $D/sock),
# then the guard on $D/live and $D/sock; prints its output and jail.err.
jail () {
    local d
    d=$(mktemp -d "$TMP/case.XXXXXX")
    mkdir -p "$d/root" "$d/live" "$d/sock"
    D=$d unshare -m --propagation private bash -c "
        set -e; $1
        set +e; \"$JAIL\" \"\$D/root\" \"\$D/live\" \"\$D/sock\"; rc=\$?
        cat \"\$D/sock/jail.err\" 2>/dev/null; exit \$rc" > "$TMP/out" 2>&1
}
refused () {                    # CASE SETUP EXPECTED-ERROR
    if jail "$2"; then
        fail "$1: the guard let it pass: $(cat "$TMP/out")"
    fi
    grep -q -- "$3" "$TMP/out" || fail "$1: not the expected refusal: $(cat "$TMP/out")"
    grep -q "GUARD PASSED" "$TMP/out" && fail "$1: passed the guard"
    log "$1: $(tail -n 1 "$TMP/out")"
}

refused directory 'mount -t tmpfs s "$D/sock"' "the test mount .*/live is not a mount point"
refused bind-dir 'mkdir -p "$D/x"; mount --bind "$D/x" "$D/live"; mount -t tmpfs s "$D/sock"' \
    "the test mount .*/live is a bind mount of "
read -r rootdev < <(while read -r _ _ dev _ mp _; do [ "$mp" = / ] && echo "$dev"; done < /proc/self/mountinfo)
if [ "${rootdev%%:*}" != 7 ] && [ "${rootdev%%:*}" != 0 ]; then
    refused bind-root 'mount --bind / "$D/live"; mount -t tmpfs s "$D/sock"' \
        "is no loop device and is also mounted on /"
fi
refused sock-not-tmpfs 'mount -t tmpfs live "$D/live"' "the socket directory .*/sock is not a tmpfs"

# A filesystem of its own passes; the jail holds only it and kinds
# qemu-ga does not freeze.
passes () {                     # CASE SETUP
    jail "$2" || fail "$1: refused: $(cat "$TMP/out")"
    grep -q "GUARD PASSED" "$TMP/out" || fail "$1: no pass: $(cat "$TMP/out")"
    grep -q "^MOUNT [0-9:]* /mnt/live " "$TMP/out" || fail "$1: no test mount: $(cat "$TMP/out")"
    grep "^MOUNT" "$TMP/out" | grep -v " /mnt/live " | grep -Ev "^MOUNT 0:[0-9]+ [^ ]+ (proc|sysfs|tmpfs) " &&
        fail "$1: the jail holds more: $(cat "$TMP/out")"
    log "$1: $(grep ' /mnt/live ' "$TMP/out")"
}
passes tmpfs 'mount -t tmpfs live "$D/live"; mount -t tmpfs s "$D/sock"'
if command -v losetup > /dev/null && command -v mkfs.ext4 > /dev/null &&
   [ -e /dev/loop-control ] && losetup -f > /dev/null 2>&1; then
    truncate -s 16M "$TMP/fs.img"
    mkfs.ext4 -q -F "$TMP/fs.img"
    LOOP=$(losetup -f --show "$TMP/fs.img")
    trap 'rc=$?; set +e; losetup -d "$LOOP"; (exit $rc); _cleanup' EXIT
    passes ext4-loop "mount $LOOP \"\$D/live\"; mount -t tmpfs s \"\$D/sock\""
    grep -q "^MOUNT 7:[0-9]* /mnt/live " "$TMP/out" || fail "ext4-loop: not the loop device: $(cat "$TMP/out")"
fi
echo ok
