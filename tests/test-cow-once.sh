#!/bin/bash
# Tests that with many snapshots a chunk is copied once per epoch, rewrites and zero/hole chunks copy no data, and deleting snapshots frees space that later copies reuse.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

M=$((1024 * 1024))
make_disk "$TMP/disk" 32M
# [16M, 18M) is a hole, [20M, 21M) is allocated but all zeros.
fallocate --punch-hole -o $((16 * M)) -l $((2 * M)) "$TMP/disk" 2>/dev/null ||
    dd if=/dev/zero of="$TMP/disk" bs=1M seek=16 count=2 conv=notrunc status=none
dd if=/dev/zero of="$TMP/disk" bs=1M seek=20 count=1 conv=notrunc status=none
cp "$TMP/disk" "$TMP/original"

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
C=$(sc_info chunk_size)
log "chunk size $C"
[ "$C" -eq 65536 ] || fail "chunk-size=64K gave chunk size $C"
used () { sc_info diff_used_bytes; }

# write_chunks FIRST COUNT: write random data to COUNT whole chunks from
# chunk FIRST, one request per chunk, then flush (the write-back queue
# may copy after the acknowledgement; a flush waits for it).
write_chunks () {
    nbd_py live '
first, n, c = int(os.environ["E_F"]), int(os.environ["E_N"]), int(os.environ["E_C"])
for i in range(first, first + n):
    h.pwrite(os.urandom(c), i * c)
h.flush()' E_F="$1" E_N="$2" E_C="$C" ||
        fail "writing chunks $1..+$2 failed"
}

# Ten snapshots, each of a different epoch.
for i in 0 1 2 3 4 5 6 7 8 9; do
    [ "$i" -eq 9 ] && nbd_save live "$TMP/exp-s9"
    sc_create "s$i"
    [ "$i" -lt 9 ] && write_chunks $((100 + i)) 1
done
[ "$(sc_info snapshots)" -eq 10 ] || fail "info does not count 10 snapshots"

# One chunk: at most one chunk of data, plus metadata (at most one new
# journal slot), and at least the chunk itself.
u0=$(used)
c0=$(sc_info copies)
write_chunks 10 1
u1=$(used)
c1=$(sc_info copies)
[ $((c1 - c0)) -eq 1 ] ||
    fail "a first write to one chunk with 10 snapshots made $((c1 - c0)) copies, expected 1"
log "first write to one chunk with 10 snapshots: diff area used +$((u1 - u0))"
[ $((u1 - u0)) -ge "$C" ] ||
    fail "a first write with 10 snapshots used only $((u1 - u0)) bytes (< one chunk)"
[ $((u1 - u0)) -le $((2 * C)) ] ||
    fail "a first write with 10 snapshots used $((u1 - u0)) bytes: more than one copy"

# Rewriting it, wholly or partly, copies nothing.
write_chunks 10 1
nbd_write_random live $((10 * C + 100)) 1000
nbd_zero live $((10 * C)) 4096
u2=$(used)
[ $((u2 - u1)) -lt "$C" ] || fail "rewriting a copied chunk used $((u2 - u1)) bytes"
[ "$(sc_info copies)" -eq "$c1" ] || fail "rewriting a copied chunk made new copies"

# Twenty more chunks: twenty copies.
write_chunks 20 20
u3=$(used)
[ $(($(sc_info copies) - c1)) -eq 20 ] ||
    fail "20 first chunk writes made $(($(sc_info copies) - c1)) copies, expected 20"
log "20 first writes: diff area used +$((u3 - u2))"
[ $((u3 - u2)) -ge $((20 * C)) ] && [ $((u3 - u2)) -le $((21 * C)) ] ||
    fail "20 first chunk writes with 10 snapshots used $((u3 - u2)) bytes, expected 20 chunks ($((20 * C))) plus metadata"

# Chunks that are zero in the origin (a hole, or written zeros) are not
# copied, whether overwritten with data or with zeroes.
hole=$((16 * M / C)) zeros=$((20 * M / C))
write_chunks "$hole" 8
u4=$(used)
log "8 first writes over a hole: diff area used +$((u4 - u3))"
[ $((u4 - u3)) -le "$C" ] || fail "writing 8 hole chunks used $((u4 - u3)) bytes: data was copied"
write_chunks "$zeros" 8
u5=$(used)
log "8 first writes over zeroed chunks: diff area used +$((u5 - u4))"
[ $((u5 - u4)) -le "$C" ] || fail "writing 8 all-zero chunks used $((u5 - u4)) bytes: data was copied"
nbd_zero live $(((hole + 8) * C)) $((8 * C))
u6=$(used)
[ $((u6 - u5)) -le "$C" ] || fail "zeroing 8 hole chunks used $((u6 - u5)) bytes: data was copied"

# All the snapshots still read right (zeros where the origin was zero).
[ "$(nbd_sha256 s0)" = "$(file_sha256 "$TMP/original")" ] || fail "s0 is wrong"
[ "$(nbd_sha256 s9)" = "$(file_sha256 "$TMP/exp-s9")" ] || fail "s9 is wrong"
nbd_pread_file s5 $((hole * C)) $((8 * C)) "$TMP/hole"
cmp -s "$TMP/hole" <(head -c $((8 * C)) /dev/zero) || fail "s5 does not read zeros in the hole"

# Deleting every snapshot frees the copies.
f0=$(sc_info diff_file_bytes)
u7=$(used)
sc delete --all || fail "delete --all failed"
[ "$(sc_info snapshots)" -eq 0 ] || fail "snapshots left after delete --all"
u8=$(used)
log "delete --all: used $u7 -> $u8, file $f0 bytes"
[ $((u7 - u8)) -ge $((29 * C)) ] ||
    fail "delete --all freed only $((u7 - u8)) bytes of at least 30 copied chunks"

# New copies reuse the freed space: the file does not grow.
nbd_save live "$TMP/exp-n1"
sc_create n1
write_chunks 200 12
u9=$(used)
f1=$(sc_info diff_file_bytes)
log "12 new copies: used $u8 -> $u9, file $f0 -> $f1 bytes"
[ $((u9 - u8)) -ge $((12 * C)) ] || fail "12 new copies used only $((u9 - u8)) bytes"
[ "$f1" -le "$f0" ] || fail "the diff-area file grew from $f0 to $f1 bytes instead of reusing freed space"
[ "$(nbd_sha256 n1)" = "$(file_sha256 "$TMP/exp-n1")" ] || fail "n1 is wrong"
stop_server
exit 0
