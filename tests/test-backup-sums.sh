#!/bin/bash
# Tests that the block CRCs a backup takes from its copy (tools/backup-sums.c) are exactly those of its image: a volume whose data, holes and zeros are not aligned to the manifest's 1 MiB blocks (block status splitting blocks, a short last block, data that reads as zeros), backed up full and incrementally (writes, zeros and trims across block boundaries) to raw and qcow2 targets, and a full and an incremental backup killed and resumed; `shadowcopy verify` re-reads every block of each and must find it clean, and each equals its snapshot.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo cmp qemu-img qemu-nbd python3

K=1024
M=$((1024 * K))
SIZE=$((24 * M + 192 * K))      # the last block is 192K
make_disk "$TMP/disk" $SIZE
# Holes in the origin, none of them on a block boundary.
for r in $((1 * M + 4 * K)):$((64 * K)) $((3 * M - 64 * K)):$((2 * M + 128 * K)) \
         $((9 * M + 512 * K)):$((1 * M)) $((24 * M + 64 * K)):$((64 * K)); do
    fallocate -p -o "${r%:*}" -l "${r#*:}" "$TMP/disk" || fail "fallocate -p $r"
done
# Data that reads as zeros: written zeros, not a hole.
dd if=/dev/zero of="$TMP/disk" bs=64K seek=$((12 * 16 + 3)) count=5 \
    conv=notrunc status=none
start_server "$TMP/disk" "$TMP/diff"
B=$TMP/backups
mkdir "$B"

backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

# split EXPORT: how many 1 MiB blocks block status cuts into data and zero
split () {
    nbdinfo --map --json "$(uri "$1")" | python3 -c '
import json, sys
bs, kinds = 1 << 20, {}
for e in json.load(sys.stdin):
    for b in range(e["offset"] // bs, (e["offset"] + e["length"] - 1) // bs + 1):
        kinds.setdefault(b, set()).add(e["type"] & 2)
print(sum(1 for k in kinds.values() if len(k) > 1))'
}

# good TARGET SNAPSHOT: TARGET is SNAPSHOT's content and verify finds
# every block's CRC right.
good () {
    local t=$1 s=$2 img=$TMP/$2.img
    [ -f "$img" ] || nbd_save "$s" "$img"
    if [ "$(qemu-img info --output=json "$t" | json 'd["format"]')" = qcow2 ]; then
        qemu-img compare -q "$img" "$t" || fail "$t differs from $s"
    else
        cmp "$img" "$t" || fail "$t differs from $s"
    fi
    sc verify "$t" > "$TMP/verify.out" 2>&1 ||
        fail "verify of $t: $(cat "$TMP/verify.out")"
    log "ok, $t is $s and verify finds it clean"
}

sc_create s0
n=$(split s0)
[ "$n" -ge 4 ] || fail "only $n blocks of s0 are split by block status"
log "s0: block status splits $n blocks"
backup s0 --to "$B/full" > /dev/null || fail "full raw backup failed"
good "$B/full" s0
backup s0 --to "$B/full.qcow2" --format qcow2 > /dev/null ||
    fail "full qcow2 backup failed"
good "$B/full.qcow2" s0

# Changes across block boundaries, inside blocks, and whole blocks.
nbd_write_random live $((6 * M - 100)) 5000
nbd_write_random live $((7 * M + 64 * K)) $((64 * K))
nbd_write_random live $((8 * M)) $((1 * M))
nbd_zero live $((10 * M + 4 * K)) $((1 * M + 8 * K))
nbd_zero live $((14 * M)) $((2 * M))
nbd_trim live $((17 * M - 64 * K)) $((128 * K))
nbd_write_random live $((24 * M + 128 * K)) $((64 * K))
sc_create s1
backup s1 --to "$B/inc" --since s0 --base "$B/full" > /dev/null ||
    fail "incremental raw backup failed"
good "$B/inc" s1
backup s1 --to "$B/inc.qcow2" --format qcow2 --since s0 \
    --base "$B/full.qcow2" > /dev/null || fail "incremental qcow2 backup failed"
good "$B/inc.qcow2" s1

# ---- resumed: killed after a checkpoint, then --resume ----------------------
# 500 ms per read of the snapshot, one at a time: over 5 s for the copy,
# so that its first checkpoint (every 5 s) comes in it.
slow () {
    stop_server
    NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
        "$TMP/diff" rdelay=500ms
}
fast () { stop_server; start_server "$TMP/disk" "$TMP/diff"; }
# killed TARGET ARGS...: a backup to TARGET killed (-9) after its first
# checkpoint.
killed () {
    local t=$1 i pid
    shift
    "$SHADOWCOPY_CLI" -c "$CTL" backup --nbd-socket "$NBD_SOCK" --to "$t" \
        --connections 1 "$@" > "$TMP/bg.out" 2> "$TMP/bg.err" &
    pid=$!
    for ((i = 0; i < 300; i++)); do
        [ ! -e "$t.resume" ] || break
        kill -0 $pid 2>/dev/null || fail "backup to $t ended early: $(cat "$TMP/bg.err")"
        sleep 0.1
    done
    [ -e "$t.resume" ] || fail "no $t.resume after 30 s"
    kill -KILL $pid
    wait $pid 2>/dev/null || :
    [ -f "$t.partial" ] && [ ! -e "$t" ] || fail "$t: not interrupted"
}
# resumed TARGET ARGS...: --resume of the backup killed above.
resumed () {
    local t=$1
    shift
    backup --to "$t" --connections 1 --resume --json "$@" > "$TMP/r.json" ||
        fail "--resume of $t failed"
    [ "$(json 'd["resumed"]' < "$TMP/r.json")" = true ] &&
        [ "$(json 'd["resumed-from"]' < "$TMP/r.json")" -gt 0 ] ||
        fail "$t: not resumed: $(cat "$TMP/r.json")"
}
slow
killed "$B/full-r" s0
fast
resumed "$B/full-r" s0
good "$B/full-r" s0

# 18 MiB changed, from an offset inside a block.
nbd_write_random live $((2 * M + 300 * K)) $((18 * M))
sc_create s2
slow
killed "$B/inc-r" s2 --since s1 --base "$B/inc"
fast
resumed "$B/inc-r" s2 --since s1 --base "$B/inc"
good "$B/inc-r" s2
