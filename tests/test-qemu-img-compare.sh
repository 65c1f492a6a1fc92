#!/bin/bash
# Tests with qemu-img compare that a snapshot export is identical to a raw copy saved at snapshot time, and the live export differs after further writes.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires qemu-img nbdcopy

M=$((1024 * 1024))
make_disk "$TMP/disk" 32M
start_server "$TMP/disk" "$TMP/diff"

nbd_write_random live $((3 * M + 17)) $M
nbd_zero live $((9 * M)) $M
nbd_save live "$TMP/saved.raw"          # the disk at snapshot time
sc_create snap
nbd_save snap "$TMP/snap-early.raw"

# compare EXPECTED_STATUS A B: qemu-img compare exits 0 when identical,
# 1 when different, 2 on error.
compare () {
    local want=$1 rc=0
    qemu-img compare -f raw -F raw "$2" "$3" > "$TMP/cmp.out" 2>&1 || rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "qemu-img compare $2 $3: exit $rc, expected $want: $(cat "$TMP/cmp.out")"
    fi
    log "qemu-img compare $(basename "$2") $3: $(head -1 "$TMP/cmp.out")"
}

# Right after the snapshot, all three agree.
compare 0 "$TMP/saved.raw" "$(uri snap)"
compare 0 "$TMP/saved.raw" "$(uri live)"

# Write more; the lowest changed offset is 3 MiB + 17 (every byte of that
# write is inverted, so it surely differs).
nbd_write_random live $((7 * M + 5)) 4096
nbd_py live '
off = int(os.environ["E_O"])
h.pwrite(bytes(b ^ 0xff for b in h.pread(1000, off)), off)' E_O=$((3 * M + 17))
nbd_write_random live $((30 * M)) $((2 * M))
nbd_trim live $((20 * M)) $M
nbd_zero live $((9 * M)) 8192

compare 0 "$TMP/saved.raw" "$(uri snap)"
compare 1 "$TMP/saved.raw" "$(uri live)"
# (qemu-img reports the 512-byte sector holding the first difference.)
grep -Eq "Content mismatch at offset ($((3 * M + 17))|$((3 * M)))!" "$TMP/cmp.out" ||
    fail "qemu-img compare of live against the saved copy: expected the" \
        "first mismatch at $((3 * M + 17)), got: $(cat "$TMP/cmp.out")"
compare 1 "$(uri snap)" "$(uri live)"
cmp_files "$TMP/saved.raw" "$TMP/snap-early.raw" "snapshot read right after create"
stop_server
exit 0
