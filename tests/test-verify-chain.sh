#!/bin/bash
# Tests shadowcopy verify over whole chains, raw and qcow2 (qcow2 links made with qemu-img from raw backups): a clean chain of 3; a flipped byte found and its range named, in a raw image and in the middle link of a chain (raw and qcow2); a missing link, a link that is not its child's base, a damaged manifest, a qcow2 backing file that is not the manifests' PREV, each one clear message and exit 1; a chain moved elsewhere found beside; a chain copied elsewhere (raw and qcow2), the originals kept, checked as the copy; a qcow2 overlay naming its backing file by absolute path, a copy beside passed over; --against a snapshot, clean, with a difference, and refusing another snapshot, and of TARGETs named -x, nbd:x (raw) and -q (qcow2); --json.
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
verify () { "$SHADOWCOPY_CLI" verify "$@"; }

# verify_fails WHAT PATTERN ARGS...: verify exits 1 with one line on
# stderr matching PATTERN (grep -E).
verify_fails () {
    local what=$1 pat=$2 rc=0 out
    shift 2
    out=$(verify "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 1 ] || fail "$what: exit $rc: $out"
    [ "$(echo "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
    echo "$out" | grep_all -E -- "$pat" || fail "$what: '$pat' not in: $out"
    log "ok, $what: $out"
}

# edit_manifest IN OUT PYTHON: OUT is IN's manifest with d changed by
# PYTHON.
edit_manifest () {
    "$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))' "$1" "$2" "$3"
}

# flip FILE OFFSET: change one byte of a raw file.
flip () {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\x$(printf %02x $(( (b + 1) % 256 )))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# A chain of 3 raw backups: full (s0), inc1 (s1), inc2 (s2).
nbd_write_random live $((3 * M)) $((2 * M))
sc_create s0
backup s0 --to "$B/full" > /dev/null
nbd_write_random live $((5 * M + 4096)) 70000
nbd_zero live $((9 * M)) $((1 * M))
sc_create s1
backup s1 --to "$B/inc1" --since s0 --base "$B/full" > /dev/null
nbd_write_random live $((12 * M)) 100000
sc_create s2
backup s2 --to "$B/inc2" --since s1 --base "$B/inc1" > /dev/null
nbd_save s2 "$TMP/s2.img"

# ---- a clean chain ----------------------------------------------------------
out=$(verify "$B/inc2") || fail "verify of a clean chain failed: $out"
echo "$out" | grep_all "a chain of 3 backups" || fail "verify does not say the chain: $out"
verify --json "$B/inc2" > "$TMP/v.json" || fail "verify --json failed"
[ "$(json 'd["status"]' < "$TMP/v.json")" = clean ] || fail "--json: $(cat "$TMP/v.json")"
[ "$(json 'len(d["chain"])' < "$TMP/v.json")" = 3 ] || fail "--json chain: $(cat "$TMP/v.json")"
[ "$(json 'd["chain"][2]["type"]' < "$TMP/v.json")" = full ] || fail "--json: the lowest link is not the full backup"

# ---- a flipped byte in the middle link (raw) ----------------------------------
cp "$B/inc1" "$TMP/inc1.saved"
flip "$B/inc1" $((5 * M + 5000))
verify_fails "a flipped byte in the middle raw link" \
    "bytes $((5 * M))-$((6 * M - 1)) of $B/inc1 \(block 5 of 1048576 bytes; link 2 of 3, the backup of snapshot s1\)" "$B/inc2"
rc=0; verify --json "$B/inc2" > "$TMP/v.json" 2>/dev/null || rc=$?
[ "$rc" = 1 ] && [ "$(json 'd["status"]' < "$TMP/v.json")" = damaged ] &&
    [ "$(json 'd["damaged"]["offset"]' < "$TMP/v.json")" = $((5 * M)) ] ||
    fail "--json of a damaged chain: $(cat "$TMP/v.json")"
cp "$TMP/inc1.saved" "$B/inc1"
verify "$B/inc2" > /dev/null || fail "the chain is not clean again"

# ---- chain links: missing, foreign, damaged ---------------------------------
mv "$B/full.manifest.json" "$TMP/full.manifest.json"
verify_fails "a missing link" "link 3 .*is missing: no manifest at $B/full.manifest.json" "$B/inc2"
mv "$TMP/full.manifest.json" "$B/full.manifest.json"

mv "$B/inc1" "$TMP/inc1.moved"
verify_fails "a link whose image is missing" "link 2, the image $B/inc1, is missing" "$B/inc2"
mv "$TMP/inc1.moved" "$B/inc1"

# inc2's manifest made to name full as its PREV: full is s0, inc2's base s1.
cp "$B/inc2" "$B/wrongbase"
edit_manifest "$B/inc2.manifest.json" "$B/wrongbase.manifest.json" \
    "d['prev-manifest'] = '$B/full.manifest.json'"
verify_fails "a link that is not its child's base" \
    "link 2, $B/full, is a backup of snapshot s0 \(UUID $(sc_field s0 uuid)\), but $B/wrongbase was made on base UUID $(sc_field s1 uuid)" \
    "$B/wrongbase"

cp "$B/inc1.manifest.json" "$TMP/inc1.manifest.saved"
head -c 200 "$TMP/inc1.manifest.saved" > "$B/inc1.manifest.json"
verify_fails "a damaged manifest in the chain" "link 2 .*manifest $B/inc1.manifest.json is damaged" "$B/inc2"
cp "$TMP/inc1.manifest.saved" "$B/inc1.manifest.json"

cp "$B/inc2.manifest.json" "$TMP/inc2.manifest.saved"
echo '{"format-version": 1}' > "$B/inc2.manifest.json"
verify_fails "a damaged manifest of TARGET" "manifest $B/inc2.manifest.json is damaged" "$B/inc2"
cp "$TMP/inc2.manifest.saved" "$B/inc2.manifest.json"

# ---- a chain moved elsewhere: its links are found beside ---------------------
mv "$B" "$TMP/elsewhere"
out=$(verify --json "$TMP/elsewhere/inc2") || fail "verify of a moved chain failed: $out"
[ "$(echo "$out" | json 'd["chain"][1]["moved"]')" = true ] || fail "a moved link is not said: $out"
mv "$TMP/elsewhere/full.manifest.json" "$TMP/full.manifest.json"
verify_fails "a moved chain with a link missing" \
    "no manifest at $B/full.manifest.json, nor beside $TMP/elsewhere/inc1 at $TMP/elsewhere/full.manifest.json" \
    "$TMP/elsewhere/inc2"
mv "$TMP/full.manifest.json" "$TMP/elsewhere/full.manifest.json"
mv "$TMP/elsewhere" "$B"

# ---- a chain copied elsewhere, the originals kept: the copy is checked -------
# A link beside its child that is its base wins over the recorded path:
# damage in the copy is found although the original is intact.
C=$TMP/copy
cp -a "$B" "$C"
flip "$C/full" $((3 * M + 10))
verify "$B/inc2" > /dev/null || fail "the original chain is not clean"
verify_fails "a copied chain with its full backup damaged, the originals kept" \
    "bytes $((3 * M))-$((4 * M - 1)) of $C/full \(block 3 of 1048576 bytes; link 3 of 3" "$C/inc2"
rc=0; verify --json "$C/inc2" > "$TMP/v.json" 2>/dev/null || rc=$?
[ "$rc" = 1 ] && [ "$(json 'd["status"]' < "$TMP/v.json")" = damaged ] &&
    [ "$(json 'd["chain"][1]["found"]' < "$TMP/v.json")" = beside ] &&
    [ "$(json 'd["chain"][2]["image"]' < "$TMP/v.json")" = "$C/full" ] &&
    [ "$(json 'd["chain"][2]["recorded-manifest"]' < "$TMP/v.json")" = "$B/full.manifest.json" ] ||
    fail "--json of a damaged copied chain: $(cat "$TMP/v.json")"
cp "$B/full" "$C/full"
out=$(verify "$C/inc2") || fail "the copied chain is not clean again: $out"
echo "$out" | grep_all "down to the full backup $C/full," &&
    echo "$out" | grep_all "^link 3, $C/full: read beside $C/inc1; the manifest of $C/inc1 names $B/full.manifest.json, another copy" ||
    fail "verify does not say which link was read: $out"
# A file beside of another snapshot is not the link: the recorded one is
# read, and that is said; a damaged manifest beside is a damaged link.
D=$TMP/other
mkdir "$D"
cp "$B/inc2" "$B/inc2.manifest.json" "$D/"
cp "$B/full" "$D/inc1"
cp "$B/full.manifest.json" "$D/inc1.manifest.json"
out=$(verify --json "$D/inc2") || fail "a foreign file beside was not passed over: $out"
[ "$(echo "$out" | json 'd["chain"][1]["image"]')" = "$B/inc1" ] &&
    [ "$(echo "$out" | json 'd["chain"][1]["found"]')" = recorded ] &&
    echo "$out" | json 'd["chain"][1]["note"]' | grep_all "^$D/inc1.manifest.json beside $D/inc2 is a backup of snapshot s0" ||
    fail "a foreign file beside: $out"
head -c 100 "$B/inc1.manifest.json" > "$D/inc1.manifest.json"
verify_fails "a damaged manifest beside" \
    "link 2 \(the PREV of $D/inc2\), beside it: manifest $D/inc1.manifest.json is damaged" "$D/inc2"
rm -rf "$C" "$D"

# ---- qcow2 -----------------------------------------------------------------
# The same chain as qcow2: a converted full, and overlays holding what
# differs from their backing file (qemu-img convert -B).
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
qemu-img info --backing-chain "$Q/inc2" | grep_all "backing file: inc1" ||
    fail "the qcow2 overlay has no backing file"
out=$(verify "$Q/inc2") || fail "verify of a qcow2 chain failed: $out"
verify "$Q/full" > /dev/null || fail "verify of a qcow2 full backup failed"

# A flipped byte in a qcow2 full backup, written by QEMU.
cp "$Q/full" "$Q/fflip"
cp "$Q/full.manifest.json" "$Q/fflip.manifest.json"
qcow2_flip "$Q/fflip" $((3 * M + 777))
verify_fails "a flipped byte in a qcow2 image" "bytes $((3 * M))-$((4 * M - 1)) of $Q/fflip" "$Q/fflip"

# A flipped byte in the middle qcow2 link: it shows through inc2 too, and
# the lowest damaged link is named.
cp "$Q/inc1" "$TMP/qinc1.saved"
qcow2_flip "$Q/inc1" $((7 * M + 3))
verify_fails "a flipped byte in the middle qcow2 link" \
    "bytes $((7 * M))-$((8 * M - 1)) of $Q/inc1 \(block 7 of 1048576 bytes; link 2 of 3" "$Q/inc2"
cp "$TMP/qinc1.saved" "$Q/inc1"

# QEMU's chain must be the manifests': inc2 rebased (unsafely) onto full.
cp "$Q/inc2" "$TMP/qinc2.saved"
qemu-img rebase -u -f qcow2 -b full -F qcow2 "$Q/inc2"
verify_fails "a qcow2 backing file that is not the manifests' PREV" \
    "QEMU reads .*full below $Q/inc2, but its manifest's PREV is $Q/inc1" "$Q/inc2"
cp "$TMP/qinc2.saved" "$Q/inc2"
# And a qcow2 overlay whose backing file is gone: qemu-img's own words.
mv "$Q/inc1" "$TMP/qinc1.moved"
verify_fails "a qcow2 link missing" "link 2, the image $Q/inc1, is missing" "$Q/inc2"
mv "$TMP/qinc1.moved" "$Q/inc1"
verify "$Q/inc2" > /dev/null || fail "the qcow2 chain is not clean again"

# A qcow2 chain copied elsewhere, the originals kept: QEMU reads the
# copy's backing files (named by file name), and so does verify.
QC=$TMP/qcopy
cp -a "$Q" "$QC"
out=$(verify "$QC/inc2") || fail "verify of a copied qcow2 chain, the originals kept: $out"
echo "$out" | grep_all "down to the full backup $QC/full," || fail "the copied qcow2 chain: $out"
qcow2_flip "$QC/full" $((3 * M + 777))
verify_fails "a copied qcow2 chain with its full backup damaged, the originals kept" \
    "bytes $((3 * M))-$((4 * M - 1)) of $QC/full \(block 3 of 1048576 bytes; link 3 of 3" "$QC/inc2"
rm -rf "$QC"
# An overlay whose backing file is named by absolute path reads that one:
# a copy of its PREV beside it is another copy, not the link.
QA=$TMP/qabs
mkdir "$QA"
cp "$Q/inc2" "$Q/inc2.manifest.json" "$Q/inc1" "$Q/inc1.manifest.json" "$QA/"
qemu-img rebase -u -f qcow2 -b "$Q/inc1" -F qcow2 "$QA/inc2"
out=$(verify --json "$QA/inc2") || fail "an overlay with an absolute backing file and a copy beside: $out"
[ "$(echo "$out" | json 'd["chain"][1]["image"]')" = "$Q/inc1" ] &&
    [ "$(echo "$out" | json 'd["chain"][1]["found"]')" = recorded ] &&
    echo "$out" | json 'd["chain"][1]["note"]' | grep_all "^QEMU reads it below $QA/inc2; $QA/inc1.manifest.json beside it is another copy" ||
    fail "an overlay with an absolute backing file: $out"
rm -rf "$QA"

# ---- --against ---------------------------------------------------------------
out=$(sc verify "$B/inc2" --against s2 --nbd-socket "$NBD_SOCK") ||
    fail "verify --against its own snapshot failed: $out"
echo "$out" | grep_all "the same as snapshot s2, byte for byte" || fail "--against: $out"
sc verify "$Q/inc2" --against s2 --nbd-socket "$NBD_SOCK" > /dev/null ||
    fail "verify --against of a qcow2 chain failed"
rc=0; out=$(sc verify "$B/inc2" --against s1 --nbd-socket "$NBD_SOCK" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "snapshot s1 has UUID $(sc_field s1 uuid)" &&
    echo "$out" | grep_all "not the same snapshot" ||
    fail "--against another snapshot: exit $rc: $out"

# TARGET names qemu-nbd must not take for an option or a protocol.
cp "$B/inc2" "$B/-x"; cp "$B/inc2.manifest.json" "$B/-x.manifest.json"
cp "$B/inc2" "$B/nbd:x"; cp "$B/inc2.manifest.json" "$B/nbd:x.manifest.json"
cp "$Q/inc2" "$Q/-q"; cp "$Q/inc2.manifest.json" "$Q/-q.manifest.json"
( cd "$B" && sc verify --against s2 --nbd-socket "$NBD_SOCK" -- -x > /dev/null ) ||
    fail "verify --against of a TARGET named -x failed"
( cd "$B" && sc verify nbd:x --against s2 --nbd-socket "$NBD_SOCK" > /dev/null ) ||
    fail "verify --against of a TARGET named nbd:x failed"
( cd "$Q" && sc verify --against s2 --nbd-socket "$NBD_SOCK" -- -q > /dev/null ) ||
    fail "verify --against of a qcow2 TARGET named -q failed"
rm -f "$B/-x" "$B/-x.manifest.json" "$B/nbd:x" "$B/nbd:x.manifest.json" \
    "$Q/-q" "$Q/-q.manifest.json"

# A backup whose content differs from its snapshot with CRCs that match
# (a manifest rewritten to the changed content): only --against sees it.
cp "$B/inc2" "$B/other"
flip "$B/other" $((12 * M + 1000))
"$PYTHON" - "$B/inc2.manifest.json" "$B/other.manifest.json" "$B/other" <<'EOF'
import json, sys
def crc32c(data, crc=0):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
d = json.load(open(sys.argv[1]))
bs = d["block-size"]
with open(sys.argv[3], "rb") as f:
    f.seek(12 * bs)
    d["block-crc32c"][12] = crc32c(f.read(bs))
json.dump(d, open(sys.argv[2], "w"))
EOF
verify "$B/other" > /dev/null || fail "the rewritten manifest does not match"
rc=0; out=$(sc verify "$B/other" --against s2 --nbd-socket "$NBD_SOCK" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "differs from snapshot s2: bytes $((12 * M))-$((13 * M - 1)) .*first at byte $((12 * M + 1000))" ||
    fail "--against with a difference: exit $rc: $out"
rc=0; sc verify "$B/other" --against s2 --nbd-socket "$NBD_SOCK" --json > "$TMP/v.json" 2>/dev/null || rc=$?
[ "$rc" = 1 ] && [ "$(json 'd["status"]' < "$TMP/v.json")" = different ] &&
    [ "$(json 'd["against"]["first-byte"]' < "$TMP/v.json")" = $((12 * M + 1000)) ] ||
    fail "--against --json with a difference: $(cat "$TMP/v.json")"

# ---- a raw backup on a block device (a loop device, where we may) ------------
LOOP=
trap '_rc=$?; [ -z "$LOOP" ] || losetup -d "$LOOP"; (exit $_rc); _cleanup' EXIT
cp "$B/full" "$TMP/full.dev"
if [ "$(id -u)" = 0 ] && LOOP=$(losetup -f --show "$TMP/full.dev" 2>/dev/null); then
    ln -s "$LOOP" "$B/dev"
    cp "$B/full.manifest.json" "$B/dev.manifest.json"
    verify "$B/dev" > /dev/null || fail "verify of a raw backup on a block device failed"
    losetup -d "$LOOP"; LOOP=
else
    log "no loop device: a backup on a block device not tested"
fi

# ---- usage -------------------------------------------------------------------
rc=0; verify "$B/inc2" --against s2 --nbd-socket "$NBD_SOCK" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--against without -c: exit $rc"
# Without --nbd-socket the server is asked where it listens (INFO).
sc verify "$B/inc2" --against s2 > /dev/null 2>&1 ||
    fail "--against without --nbd-socket (asked of the server) failed"
# --against: not a valid name is usage (2); a valid name of no snapshot
# is an error (1).
rc=0; out=$(sc verify "$B/inc2" --against 'bad/name' --nbd-socket "$NBD_SOCK" 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep_all "invalid snapshot name: bad/name" ||
    fail "--against an invalid name: exit $rc: $out"
rc=0; sc verify "$B/inc2" --against live --nbd-socket "$NBD_SOCK" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--against live: exit $rc"
rc=0; out=$(sc verify "$B/inc2" --against nosuch --nbd-socket "$NBD_SOCK" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all -- "--against nosuch" ||
    fail "--against a snapshot that does not exist: exit $rc: $out"
rc=0; verify "$B/inc2" --bogus > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown option: exit $rc"
rc=0; verify > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "verify without TARGET: exit $rc"

stop_server
exit 0
