#!/bin/bash
# Run qemu-ga where it sees no filesystem of this machine (driven by test-writer-qemu-ga.sh): in a private mount namespace, a tmpfs root holding only qemu-ga and its libraries, /proc, /sys, a /dev with null, the test mount on /mnt/live and a tmpfs for its socket on /qga.  Before qemu-ga starts, every mount of a block device it could see must be the test mount; else it is not started.
#
# Usage (as root): unshare -m --propagation private qga-jail.sh ROOT TEST_MOUNT SOCKDIR
# ROOT: an empty directory; SOCKDIR: a tmpfs mounted by the caller (its
# socket is SOCKDIR/qga.sock, qemu-ga's log SOCKDIR/qga.log, and
# SOCKDIR/jail.err says why it did not start).
set -eu
root=$1 live=$2 sockdir=$3
qga=$(command -v qemu-ga)
err () { echo "$*" > "$sockdir/jail.err"; exit 1; }

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
# a device number of major 0 is no block device (tmpfs, proc, sysfs);
# qemu-ga freezes the others.
n=0
while read -r _ _ dev _ mp _; do
    [ "${dev%%:*}" = 0 ] && continue
    [ "$mp" = /mnt/live ] || err "a block-device mount other than the test mount is visible: $dev on $mp"
    n=$((n + 1))
done < /proc/self/mountinfo
[ "$n" = 1 ] || err "the test mount is not visible"
exec /usr/sbin/qemu-ga -m unix-listen -p /qga/qga.sock -t /run -f /run/qga.pid \
    -l /qga/qga.log
