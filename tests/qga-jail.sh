#!/bin/bash
# Run qemu-ga where it sees no filesystem of this machine (driven by test-writer-qemu-ga.sh): in a private mount namespace, a tmpfs root holding only qemu-ga and its libraries, /proc, /sys, a /dev with null, the test mount on /mnt/live and a tmpfs for its socket on /qga.  Before anything is built, TEST_MOUNT must be a filesystem of its own (a mount point whose root is the filesystem's), on a loop device or on a device no other mount uses, and SOCKDIR a tmpfs; before qemu-ga starts, every mount it could see must be the test mount or a proc, sysfs, tmpfs, devtmpfs, devpts, mqueue or cgroup one (no block device); else it is not started.
#
# Usage (as root): unshare -m --propagation private qga-jail.sh ROOT TEST_MOUNT SOCKDIR
# ROOT: an empty directory; SOCKDIR: a tmpfs mounted by the caller (its
# socket is SOCKDIR/qga.sock, qemu-ga's log SOCKDIR/qga.log, and
# SOCKDIR/jail.err says why it did not start).
set -eu
root=$1 live=$2 sockdir=$3
qga=$(command -v qemu-ga)
err () { echo "$*" > "$sockdir/jail.err"; exit 1; }

# The guard, before anything is built: qemu-ga freezes what it sees, so
# what it will see must be the test filesystem and nothing of this
# machine's.  (A TEST_MOUNT that is a plain directory would bind this
# machine's root filesystem into the jail.)
# mount_at PATH: "MAJ:MIN ROOT FSTYPE" of the topmost mount on PATH.
mount_at () {
    local id par dev mroot mp rest fs found=
    while read -r id par dev mroot mp rest; do
        [ "$mp" = "$1" ] || continue
        fs=${rest#* - }
        found="$dev $mroot ${fs%% *}"
    done < /proc/self/mountinfo
    echo "$found"
}
live=$(readlink -f "$live")
sock=$(readlink -f "$sockdir")
read -r livedev liveroot _ <<< "$(mount_at "$live")"
[ -n "$livedev" ] || err "the test mount $live is not a mount point"
[ "$liveroot" = / ] ||
    err "the test mount $live is a bind mount of $liveroot, not a filesystem of its own"
if [ "${livedev%%:*}" != 7 ]; then
    while read -r _ _ dev _ mp _; do
        [ "$dev" = "$livedev" ] && [ "$mp" != "$live" ] &&
            err "the test mount $live ($livedev) is no loop device and is also mounted on $mp"
    done < /proc/self/mountinfo
fi
read -r _ _ sockfs <<< "$(mount_at "$sock")"
[ "$sockfs" = tmpfs ] || err "the socket directory $sock is not a tmpfs"

mount -t tmpfs -o mode=755 jail "$root"
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/mnt/live" \
    "$root/qga" "$root/old" "$root/usr/sbin"
cp "$qga" "$root/usr/sbin/qemu-ga"
for lib in $(ldd "$qga" | grep -o '/[^ ]*'); do
    cp --parents -L "$lib" "$root"
done
mknod -m 666 "$root/dev/null" c 1 3
mount --bind "$live" "$root/mnt/live"
mount --bind "$sockdir" "$root/qga"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
umount=$(readlink -f "$(command -v umount)")
ld=$(readlink -f "$(ldd "$umount" | grep -o "/[^ ]*ld-linux[^ ]*" | head -n 1)")
libdir=$(dirname "$(readlink -f "$(ldd "$umount" | grep -o "/[^ ]*libc\\.so[^ ]*" | head -n 1)")")
cd "$root"
pivot_root . old
# umount of the old root, its loader and libraries from there too.
"/old$ld" --library-path "/old$libdir" "/old$umount" -l /old
cd /

# The check, with bash's builtins only (nothing of the old root is left):
# the test mount (the device checked above) and, besides it, only
# filesystems qemu-ga does not freeze: no block device (major 0), and of
# a kind that has no freeze (a btrfs has major 0 and is frozen).
n=0
while read -r _ _ dev _ mp rest; do
    fs=${rest#* - }
    fs=${fs%% *}
    if [ "$mp" = /mnt/live ]; then
        [ "$dev" = "$livedev" ] || err "the test mount changed: $dev, not $livedev"
        n=$((n + 1))
        continue
    fi
    [ "${dev%%:*}" = 0 ] ||
        err "a block-device mount other than the test mount is visible: $dev on $mp"
    case $fs in
        proc | sysfs | tmpfs | devtmpfs | devpts | mqueue | cgroup | cgroup2) ;;
        *) err "a $fs mount other than the test mount is visible: $dev on $mp" ;;
    esac
done < /proc/self/mountinfo
[ "$n" = 1 ] || err "the test mount is not visible"
exec /usr/sbin/qemu-ga -m unix-listen -p /qga/qga.sock -t /run -f /run/qga.pid \
    -l /qga/qga.log
