#!/bin/bash
# Tests shadowcopy restore: a full backup and the top of a chain (raw, and qcow2 made with qemu-img from the raw backups; a qcow2 chain copied elsewhere, the originals kept) written to a new file (sparse), to an existing file holding junk (larger than the volume: the rest kept) and to an NBD URI (nbdkit memory, and the shadowcopy server's own live export, its snapshots unchanged), each equal to its snapshot; a DEST smaller than the volume refused naming both sizes; a damaged backup stopping the restore with exit 1, the range named and DEST said to be partly written; a DEST that is the backup itself, any file of its chain (a raw incremental's PREV too), or a loop device or a partition of one over a file of its chain refused; TARGETs named -x, nbd:x (raw) and -q (qcow2), relative; --progress=FD and --json.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp qemu-img qemu-nbd qemu-io

K=1024
M=$((1024 * K))
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
B=$TMP/backups
mkdir "$B"

backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }
restore () { "$SHADOWCOPY_CLI" restore "$@"; }

# restore_fails WHAT PATTERN ARGS...: restore exits 1 with one line on
# stderr matching PATTERN (grep -E).
restore_fails () {
    local what=$1 pat=$2 rc=0 out
    shift 2
    out=$(restore "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 1 ] || fail "$what: exit $rc: $out"
    [ "$(echo "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
    echo "$out" | grep_all -E -- "$pat" || fail "$what: '$pat' not in: $out"
    log "ok, $what: $out"
}

edit_manifest () {
    "$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))' "$1" "$2" "$3"
}

# A volume with 6 MiB of zeros in it; a full backup and two incrementals.
nbd_zero live $((8 * M)) $((6 * M))
nbd_write_random live $((10 * M + 5)) 3000
sc_create s0
backup s0 --to "$B/full" > /dev/null
nbd_write_random live $((2 * M + 4096)) 300000
nbd_zero live $((4 * M)) $((1 * M))
sc_create s1
backup s1 --to "$B/inc1" --since s0 --base "$B/full" > /dev/null
nbd_write_random live $((13 * M)) 100000
nbd_trim live $((6 * M)) $((64 * K))
sc_create s2
backup s2 --to "$B/inc2" --since s1 --base "$B/inc1" > /dev/null
nbd_save s0 "$TMP/s0.img"
nbd_save s2 "$TMP/s2.img"
# The live volume moves on: a restore is of the snapshot, not of live.
nbd_write_random live 0 $((1 * M))

# ---- to a new file ------------------------------------------------------------
out=$(restore "$B/full" --to "$TMP/r-full") || fail "restore of a full backup failed"
cmp "$TMP/s0.img" "$TMP/r-full" || fail "the restored full backup differs from s0"
alloc=$(( $(stat -c %b "$TMP/r-full") * 512 ))
[ "$alloc" -lt $((12 * M)) ] || fail "a new DEST is not sparse: $alloc bytes allocated"
[ "$(stat -c %a "$TMP/r-full")" = 600 ] || fail "a new DEST is not mode 0600"
restore "$B/inc2" --to "$TMP/r-inc2" --json > "$TMP/r.json" || fail "restore of an incremental failed"
cmp "$TMP/s2.img" "$TMP/r-inc2" || fail "the restored incremental differs from s2"
[ "$(json 'd["snapshot"]' < "$TMP/r.json")" = s2 ] &&
    [ "$(json 'd["dest-kind"]' < "$TMP/r.json")" = "new file" ] &&
    [ "$(json 'd["volume-size"]' < "$TMP/r.json")" = $((16 * M)) ] ||
    fail "--json: $(cat "$TMP/r.json")"

# ---- qcow2: the same chain converted, overlays on their PREV ------------------
Q=$TMP/q
mkdir "$Q"
( cd "$Q" &&
  qemu-img convert -q -f raw -O qcow2 "$B/full" full &&
  qemu-img convert -q -f raw -O qcow2 -B full -F qcow2 "$B/inc1" inc1 &&
  qemu-img convert -q -f raw -O qcow2 -B inc1 -F qcow2 "$B/inc2" inc2 ) ||
    fail "qemu-img convert"
edit_manifest "$B/full.manifest.json" "$Q/full.manifest.json" "d['format'] = 'qcow2'"
edit_manifest "$B/inc1.manifest.json" "$Q/inc1.manifest.json" \
    "d['format'] = 'qcow2'; d['prev-manifest'] = '$Q/full.manifest.json'"
edit_manifest "$B/inc2.manifest.json" "$Q/inc2.manifest.json" \
    "d['format'] = 'qcow2'; d['prev-manifest'] = '$Q/inc1.manifest.json'"
restore "$Q/inc2" --to "$TMP/r-q2" --json > "$TMP/r.json" || fail "restore of a qcow2 chain failed"
cmp "$TMP/s2.img" "$TMP/r-q2" || fail "the restored qcow2 chain differs from s2"
qemu-img compare -q -f qcow2 -F raw "$Q/inc2" "$TMP/r-q2" || fail "qemu-img compare of the qcow2 chain"
[ "$(json 'd["links-read"]' < "$TMP/r.json")" = 3 ] || fail "a qcow2 restore read $(json 'd["links-read"]' < "$TMP/r.json") links"
# A qcow2 chain copied elsewhere, the originals kept: the copy is read
# (QEMU reads the copy's backing files, and the manifests agree).
cp -a "$Q" "$TMP/qcopy"
restore "$TMP/qcopy/inc2" --to "$TMP/r-qcopy" --json > "$TMP/r.json" ||
    fail "restore of a copied qcow2 chain, the originals kept, failed"
cmp "$TMP/s2.img" "$TMP/r-qcopy" || fail "the copied qcow2 chain restored differs from s2"
[ "$(json 'd["chain"][2]["image"]' < "$TMP/r.json")" = "$TMP/qcopy/full" ] &&
    [ "$(json 'd["chain"][2]["found"]' < "$TMP/r.json")" = beside ] ||
    fail "--json of a copied chain: $(cat "$TMP/r.json")"
rm -rf "$TMP/qcopy" "$TMP/r-qcopy"
# A raw incremental reads no other link: restored with its chain gone.
mv "$B/full.manifest.json" "$TMP/full.manifest.json"
restore "$B/inc2" --to "$TMP/r-alone" > /dev/null || fail "a raw incremental needed its PREV"
cmp "$TMP/s2.img" "$TMP/r-alone" || fail "the raw incremental restored alone differs"
mv "$TMP/full.manifest.json" "$B/full.manifest.json"
# A qcow2 one needs its chain, and says which link is missing.
mv "$Q/full.manifest.json" "$TMP/qfull.manifest.json"
restore_fails "a qcow2 chain with a link missing" "link 3 .*is missing: no manifest at $Q/full.manifest.json" \
    "$Q/inc2" --to "$TMP/r-never"
[ ! -e "$TMP/r-never" ] || fail "a refused restore created DEST"
mv "$TMP/qfull.manifest.json" "$Q/full.manifest.json"

# ---- to an existing file holding junk, larger than the volume ------------------
head -c $((17 * M)) /dev/urandom > "$TMP/junk"
tail -c $((1 * M)) "$TMP/junk" > "$TMP/junk.tail"
out=$(restore "$B/inc2" --to "$TMP/junk") || fail "restore over junk failed"
cmp -n $((16 * M)) "$TMP/s2.img" "$TMP/junk" || fail "the restore over junk differs from s2"
cmp "$TMP/junk.tail" <(tail -c $((1 * M)) "$TMP/junk") || fail "the bytes past the volume were changed"
echo "$out" | grep_all "larger than the volume: the $((1 * M)) bytes past it were left as they were" ||
    fail "a larger DEST is not said: $out"
head -c $((16 * M)) /dev/urandom > "$TMP/junk2"
restore "$Q/inc2" --to "$TMP/junk2" > /dev/null || fail "qcow2 restore over junk failed"
cmp "$TMP/s2.img" "$TMP/junk2" || fail "the qcow2 restore over junk differs from s2"

# To a block device holding junk (a loop device, where we may).
LOOP=
trap '_rc=$?; [ -z "$LOOP" ] || losetup -d "$LOOP"; (exit $_rc); _cleanup' EXIT
head -c $((16 * M)) /dev/urandom > "$TMP/junk3"
if [ "$(id -u)" = 0 ] && LOOP=$(losetup -f --show "$TMP/junk3" 2>/dev/null); then
    restore "$Q/inc2" --to "$LOOP" --json > "$TMP/r.json" || fail "restore to a block device failed"
    [ "$(json 'd["dest-kind"]' < "$TMP/r.json")" = "block device" ] || fail "--json: $(cat "$TMP/r.json")"
    cmp "$TMP/s2.img" "$LOOP" || fail "the restore to a block device differs from s2"
    losetup -d "$LOOP"; LOOP=
else
    log "no loop device: a restore to a block device not tested"
fi

# A DEST that writes onto a file of the chain through a block device: a
# loop device over a link, and a partition of such a loop device.
if [ "$(id -u)" = 0 ] && LOOP=$(losetup -f --show "$Q/full" 2>/dev/null); then
    sha=$(sha256sum < "$Q/full")
    restore_fails "a loop device over a link of a qcow2 chain" \
        "--to $LOOP would write over $Q/full, a file of the backup itself, through a block device stacked on it" \
        "$Q/inc2" --to "$LOOP"
    losetup -d "$LOOP"; LOOP=
    [ "$(sha256sum < "$Q/full")" = "$sha" ] || fail "a refused restore changed the chain"
    LOOP=$(losetup -f --show "$B/full")
    restore_fails "a loop device over the full backup below a raw incremental" \
        "--to $LOOP would write over $B/full, a file of the backup's chain" "$B/inc2" --to "$LOOP"
    losetup -d "$LOOP"; LOOP=
    # A copy of the chain whose full backup (not read by a raw
    # incremental's restore) holds a partition table.
    P=$TMP/parted
    mkdir "$P"
    cp "$B/full" "$B/full.manifest.json" "$B/inc1" "$B/inc1.manifest.json" \
        "$B/inc2" "$B/inc2.manifest.json" "$P/"
    "$PYTHON" -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.write(bytes(446) + struct.pack("<BBBBBBBBII", 0, 0, 0, 0, 0x83, 0, 0, 0, 2048, 4096)
            + bytes(48) + b"\x55\xaa")' "$P/full"
    LOOP=$(losetup -f --show -P "$P/full")
    partx -a "$LOOP" > /dev/null 2>&1 || true
    for _ in $(seq 50); do [ -b "${LOOP}p1" ] && break; sleep 0.1; done
    if [ -b "${LOOP}p1" ]; then
        restore_fails "a partition of a loop device over a link" \
            "--to ${LOOP}p1 would write over $P/full, a file of the backup's chain" "$P/inc2" --to "${LOOP}p1"
    else
        log "no partitions on loop devices: a partition as DEST not tested"
    fi
    losetup -d "$LOOP"; LOOP=
    rm -rf "$P"
else
    log "no loop device: a DEST over a link of the chain not tested"
fi

# ---- to an NBD URI ------------------------------------------------------------
MEM=$TMP/mem.sock
nbdkit -f -U "$MEM" memory 16M >> "$TMP/memory.log" 2>&1 &
_SERVER_PIDS+=("$!")
for _ in $(seq 100); do [ -S "$MEM" ] && break; sleep 0.1; done
# Junk first, so that zeros must be written.
nbdcopy -- "$TMP/junk2" "nbd+unix:///?socket=$MEM"
restore "$B/inc2" --to "nbd+unix:///?socket=$MEM" --json > "$TMP/r.json" ||
    fail "restore to an NBD URI failed"
[ "$(json 'd["dest-kind"]' < "$TMP/r.json")" = "NBD export" ] || fail "--json: $(cat "$TMP/r.json")"
nbdcopy "nbd+unix:///?socket=$MEM" - > "$TMP/r-nbd"
cmp "$TMP/s2.img" "$TMP/r-nbd" || fail "the restore to an NBD URI differs from s2"
restore "$Q/full" --to "nbd+unix:///?socket=$MEM" > /dev/null || fail "qcow2 restore to an NBD URI failed"
nbdcopy "nbd+unix:///?socket=$MEM" - > "$TMP/r-nbd"
cmp "$TMP/s0.img" "$TMP/r-nbd" || fail "the qcow2 restore to an NBD URI differs from s0"

# Onto the live export of the shadowcopy server itself: live becomes s0,
# and the snapshot s2 keeps what the restore overwrote.
restore "$B/full" --to "$(uri live)" > /dev/null || fail "restore to the live export failed"
[ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/s0.img")" ] || fail "live is not s0 after the restore"
[ "$(nbd_sha256 s2)" = "$(file_sha256 "$TMP/s2.img")" ] || fail "s2 changed under the restore"

# ---- a DEST too small ------------------------------------------------------------
truncate -s $((8 * M)) "$TMP/small"
restore_fails "a small file" "$TMP/small is $((8 * M)) bytes, smaller than the volume \($((16 * M)) bytes\)" \
    "$B/inc2" --to "$TMP/small"
[ "$(stat -c %s "$TMP/small")" = $((8 * M)) ] && [ "$(stat -c %b "$TMP/small")" = 0 ] ||
    fail "a small DEST was written"
SMALL=$TMP/small.sock
nbdkit -f -U "$SMALL" memory 1M >> "$TMP/memory.log" 2>&1 &
_SERVER_PIDS+=("$!")
for _ in $(seq 100); do [ -S "$SMALL" ] && break; sleep 0.1; done
restore_fails "a small NBD export" "is $((1 * M)) bytes, smaller than the volume \($((16 * M)) bytes\)" \
    "$B/inc2" --to "nbd+unix:///?socket=$SMALL"

# ---- a damaged backup ------------------------------------------------------------
cp --sparse=always "$B/inc2" "$B/bad"
cp "$B/inc2.manifest.json" "$B/bad.manifest.json"
printf '\x5a\x5a' | dd of="$B/bad" bs=1 seek=$((5 * M + 100)) conv=notrunc status=none
restore_fails "a damaged raw backup" \
    "$B/bad is damaged: bytes $((5 * M))-$((6 * M - 1)) .*; $TMP/r-bad is partly written: only its bytes 0-$((5 * M - 1)) are restored" \
    "$B/bad" --to "$TMP/r-bad"
cmp -n $((5 * M)) "$TMP/s2.img" "$TMP/r-bad" || fail "the blocks before the damage are not restored"
cmp -i $((5 * M)) "$TMP/r-bad" /dev/zero -n $((11 * M)) > /dev/null 2>&1 ||
    fail "bytes of the damaged block or after it were written"
cp "$Q/inc2" "$TMP/qinc2.saved"
qcow2_flip "$Q/inc2" $((13 * M + 3))
restore_fails "a damaged qcow2 backup" "$Q/inc2 is damaged: bytes $((13 * M))-$((14 * M - 1))" \
    "$Q/inc2" --to "$TMP/r-qbad"
cp "$TMP/qinc2.saved" "$Q/inc2"

# ---- bad input ---------------------------------------------------------------------
sha=$(sha256sum < "$B/inc2")
restore_fails "DEST is TARGET" "is $B/inc2, a file of the backup itself" "$B/inc2" --to "$B/inc2"
restore_fails "DEST is a link of the chain" "is $Q/full, a file of the backup itself" "$Q/inc2" --to "$Q/full"
# A raw incremental reads no other link, but its PREV and every link
# below are its chain's: refused too.
restore_fails "DEST is a raw incremental's PREV" "is $B/inc1, a file of the backup's chain" "$B/inc2" --to "$B/inc1"
restore_fails "DEST is the full backup below a raw incremental" "is $B/full, a file of the backup's chain" "$B/inc2" --to "$B/full"
restore_fails "DEST is a manifest below a raw incremental" "is $B/full.manifest.json, a file of the backup's chain" \
    "$B/inc2" --to "$B/full.manifest.json"
[ "$(sha256sum < "$B/inc2")" = "$sha" ] || fail "a refused restore changed TARGET"
restore_fails "no backup" "cannot open manifest $TMP/nosuch.manifest.json" "$TMP/nosuch" --to "$TMP/r-x"
restore_fails "a directory" "cannot open $TMP: Is a directory" "$B/inc2" --to "$TMP"
rc=0; restore "$B/inc2" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "restore without --to: exit $rc"
rc=0; restore --to "$TMP/x" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "restore without TARGET: exit $rc"
rc=0; restore "$B/inc2" --to "$TMP/x" --progress=x > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--progress=x: exit $rc"

# ---- TARGET names that qemu-nbd must not read as more than a file name ----------
# Relative names starting with '-' (an option) or with a ':' (a protocol).
cp "$B/inc2" "$B/-x"; cp "$B/inc2.manifest.json" "$B/-x.manifest.json"
cp "$B/inc2" "$B/nbd:x"; cp "$B/inc2.manifest.json" "$B/nbd:x.manifest.json"
cp "$Q/inc2" "$Q/-q"; cp "$Q/inc2.manifest.json" "$Q/-q.manifest.json"
( cd "$B" && "$SHADOWCOPY_CLI" restore --to "$TMP/r-dash" -- -x > /dev/null ) ||
    fail "restore of a TARGET named -x failed"
cmp "$TMP/s2.img" "$TMP/r-dash" || fail "the restore of -x differs from s2"
( cd "$B" && "$SHADOWCOPY_CLI" restore nbd:x --to "$TMP/r-colon" > /dev/null ) ||
    fail "restore of a TARGET named nbd:x failed"
cmp "$TMP/s2.img" "$TMP/r-colon" || fail "the restore of nbd:x differs from s2"
( cd "$Q" && "$SHADOWCOPY_CLI" restore --to "$TMP/r-qdash" -- -q > /dev/null ) ||
    fail "restore of a qcow2 TARGET named -q failed"
cmp "$TMP/s2.img" "$TMP/r-qdash" || fail "the restore of -q differs from s2"
rm -f "$B/-x" "$B/-x.manifest.json" "$B/nbd:x" "$B/nbd:x.manifest.json" \
    "$Q/-q" "$Q/-q.manifest.json" "$TMP/r-dash" "$TMP/r-colon" "$TMP/r-qdash"

# ---- --progress=FD ---------------------------------------------------------------
restore "$B/inc2" --to "$TMP/r-progress" --progress=3 3> "$TMP/progress" > /dev/null ||
    fail "restore --progress=3 failed"
[ "$(tail -n 1 "$TMP/progress")" = 100/100 ] || fail "progress: $(cat "$TMP/progress")"
grep -qvE '^[0-9]+/100$' "$TMP/progress" && fail "progress lines: $(cat "$TMP/progress")"
[ "$(wc -l < "$TMP/progress")" -gt 2 ] || fail "progress: too few lines: $(cat "$TMP/progress")"

stop_server
exit 0
