#!/bin/bash
# Tests shadowcopy backup --format qcow2 through the CLI, a real nbdkit with the plugin and QEMU's tools: a full backup equal to its snapshot with its holes unallocated; a chain of 5 qcow2 overlays with random writes, trims and zeroes between them, each equal to its snapshot, holding clusters only in the ranges diff reported, zeros masking the backing file; a qcow2 overlay on a raw PREV (and on one whose manifest has 4 KiB or 4 MiB blocks, checked whole); a raw incremental on a qcow2 PREV; file names with a ':' (a time of day), as PREV and TARGET, absolute and relative, in both formats; a chain moved to another directory; bad input (an existing TARGET, an unwritable directory, a PREV that is not what its manifest says, a chain with a missing link, a volume that is not a whole number of 512-byte sectors) refused in one line, with no TARGET left and PREV untouched.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy qemu-img qemu-nbd qemu-io

K=1024
M=$((1024 * K))
CS=$((64 * K))                  # the chunk size, and qcow2's cluster size
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
B=$TMP/backups
mkdir "$B"

# An immutable directory (the unwritable one, for root) must be made
# mutable again before the temporary directory can be removed.
IMMUTABLE=
_qcow2_cleanup () {
    local rc=$?
    trap - ERR
    set +e
    [ -z "$IMMUTABLE" ] || chattr -i "$IMMUTABLE" 2>/dev/null
    (exit "$rc")
    _cleanup
}
trap _qcow2_cleanup EXIT

backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }
mfield () { json "d[\"$2\"]" < "$1.manifest.json"; }
qinfo () { qemu-img info --output=json -f qcow2 "$1" | json "d.get(\"$2\")"; }
# equal_to IMAGE FORMAT SNAPSHOT WHAT: the image reads as the snapshot's export.
equal_to () {
    local out
    out=$(qemu-img compare -f "$2" -F raw "$1" "$(uri "$3")" 2>&1) ||
        fail "$4: differs from snapshot $3: $out"
}
# check_clean IMAGE WHAT: qemu-img check finds nothing.
check_clean () {
    local out
    out=$(qemu-img check -f qcow2 "$1" 2>&1) || fail "$2: qemu-img check: $out"
}
# no_files PATH WHAT: neither PATH nor PATH.partial nor its manifest.
no_files () {
    [ ! -e "$1" ] && [ ! -e "$1.partial" ] && [ ! -e "$1.manifest.json" ] ||
        fail "$2 left files: $(ls -d "$1"* 2>&1)"
}
# one_line_naming OUT FILE WHAT: a one-line error that names FILE.
one_line_naming () {
    [ "$(printf '%s\n' "$1" | wc -l)" = 1 ] || fail "$3: more than one line: $1"
    printf '%s\n' "$1" | grep_all -F "$2" || fail "$3: the error does not name $2: $1"
    log "ok, $3: $1"
}

# The disk is random: 8 MiB of zeros in the middle, some data in them.
nbd_zero live $((4 * M)) $((8 * M))
nbd_write_random live $((9 * M + 100)) 5000

# ---- full -----------------------------------------------------------------
sc_create s0
backup s0 --to "$B/full.qcow2" --format qcow2 --json > "$TMP/full.json" ||
    fail "full qcow2 backup failed"
[ ! -e "$B/full.qcow2.partial" ] || fail "full.qcow2.partial left behind"
[ "$(qinfo "$B/full.qcow2" format)" = qcow2 ] || fail "the full backup is not a qcow2 image"
[ -z "$(qinfo "$B/full.qcow2" backing-filename)" ] || fail "a full backup has a backing file"
[ "$(json 'd["format"]' < "$TMP/full.json")" = qcow2 ] || fail "--json: $(cat "$TMP/full.json")"
[ "$(mfield "$B/full.qcow2" format)" = qcow2 ] || fail "manifest format"
equal_to "$B/full.qcow2" qcow2 s0 "the full backup"
check_clean "$B/full.qcow2" "the full backup"
# Holes stay holes: nothing allocated from 4 MiB to 9 MiB (zeros), and no
# more than the 8 MiB of data plus the chunk written at 9 MiB.
qemu-img map --output=json -f qcow2 "$B/full.qcow2" > "$TMP/full.map"
"$PYTHON" - "$TMP/full.map" $((4 * M)) $((9 * M)) $((8 * M + CS)) <<'EOF' ||
import json, sys
m = json.load(open(sys.argv[1]))
lo, hi, most = (int(x) for x in sys.argv[2:])
data = [e for e in m if e["data"]]
for e in data:
    if e["start"] < hi and e["start"] + e["length"] > lo:
        sys.exit("data allocated in the zero range: %s" % e)
total = sum(e["length"] for e in data)
if total > most:
    sys.exit("%d bytes allocated, more than %d" % (total, most))
EOF
    fail "holes of the full backup are not holes"

# ---- a chain of 5 qcow2 incrementals -----------------------------------------
sha_full=$(sha256sum < "$B/full.qcow2")
zoff=(0 1 2 3 13 14)             # MiB: data the previous backup holds
prev=$B/full.qcow2 base=s0
for i in 1 2 3 4 5; do
    nbd_write_random live $(( (RANDOM % 15) * M + RANDOM )) $(( RANDOM + 1 ))
    nbd_write_random live $(( (RANDOM % 15) * M )) $(( 3 * CS ))
    z=$(( zoff[i] * M ))
    nbd_zero live "$z" $((2 * CS))
    nbd_trim live $(( ((i * 5 + 1) % 16) * M )) $CS
    sc_create "s$i"
    sc diff "$base" "s$i" --json > "$TMP/diff$i.json"
    want=$(json 'd["total-bytes"]' < "$TMP/diff$i.json")
    sha_prev=$(sha256sum < "$prev")
    backup "s$i" --to "$B/inc$i.qcow2" --format qcow2 --since "$base" \
        --base "$prev" --json > "$TMP/inc$i.json" || fail "incremental $i failed"
    [ "$(sha256sum < "$prev")" = "$sha_prev" ] || fail "incremental $i changed PREV"
    [ ! -e "$B/inc$i.qcow2.partial" ] || fail "inc$i.qcow2.partial left behind"
    equal_to "$B/inc$i.qcow2" qcow2 "s$i" "incremental $i"
    check_clean "$B/inc$i.qcow2" "incremental $i"
    # PREV in the same directory: named by its file name, as ./NAME.
    [ "$(qinfo "$B/inc$i.qcow2" backing-filename)" = "./$(basename "$prev")" ] ||
        fail "inc$i: backing file $(qinfo "$B/inc$i.qcow2" backing-filename)"
    [ "$(qinfo "$B/inc$i.qcow2" backing-filename-format)" = qcow2 ] ||
        fail "inc$i: backing format"
    got=$(json 'd["bytes-written"] + d["bytes-zeroed"]' < "$TMP/inc$i.json")
    [ "$got" = "$want" ] || fail "incremental $i wrote $got bytes; diff reported $want"
    # The overlay's own clusters (depth 0) lie in the ranges diff
    # reported (chunk-aligned, and the chunk is a cluster), and the
    # zeroed range is one of them, as zero clusters.
    qemu-img map --output=json -f qcow2 "$B/inc$i.qcow2" > "$TMP/inc$i.map"
    "$PYTHON" - "$TMP/inc$i.map" "$TMP/diff$i.json" "$z" $((2 * CS)) <<'EOF' ||
import json, sys
m = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
z, zlen = int(sys.argv[3]), int(sys.argv[4])
changed = [(e["offset"], e["offset"] + e["length"]) for e in d["extents"]]
own = [e for e in m if e["depth"] == 0 and (e["data"] or e["zero"])]
for e in own:
    s, t = e["start"], e["start"] + e["length"]
    # an extent of the map may span touching ranges of the diff
    pos = s
    for a, b in changed:
        if a <= pos < b:
            pos = min(b, t)
    if pos < t:
        sys.exit("the overlay holds [%d, %d) outside the changed ranges %s"
                 % (pos, t, changed))
held = sum(e["length"] for e in own)
if held == 0:
    sys.exit("the overlay holds nothing")
if not any(e["zero"] and not e["data"] and e["start"] <= z
           and z + zlen <= e["start"] + e["length"] for e in own):
    sys.exit("the zeroed range [%d, %d) is not zero clusters of the overlay: %s"
             % (z, z + zlen, [e for e in m if e["start"] < z + zlen
                              and e["start"] + e["length"] > z]))
EOF
        fail "incremental $i holds clusters diff did not report"
    # ... and reads as zeros through the overlay, masking PREV's data.
    out=$(qemu-io -r -f qcow2 -c "read -P 0 $z $((2 * CS))" "$B/inc$i.qcow2" 2>&1)
    [ "$out" != "${out#read $((2 * CS))/$((2 * CS)) bytes}" ] ||
        fail "inc$i: the range zeroed at $z does not read as zeros: $out"
    out=$(qemu-io -r -f qcow2 -c "read -P 0 $z $((2 * CS))" "$prev" 2>&1) || :
    echo "$out" | grep_all "Pattern verification failed" ||
        fail "inc$i: PREV did not have data at $z (the test is wrong): $out"
    [ "$(mfield "$B/inc$i.qcow2" base-uuid)" = "$(mfield "$prev" snapshot-uuid)" ] ||
        fail "inc$i: base-uuid is not PREV's snapshot"
    [ "$i" = 5 ] || sc delete --keep-checkpoint "$base" > /dev/null
    prev=$B/inc$i.qcow2 base=s$i
done
[ "$(sha256sum < "$B/full.qcow2")" = "$sha_full" ] || fail "the chain changed the full backup"
qemu-img info --backing-chain --output=json -f qcow2 "$B/inc5.qcow2" > "$TMP/chain.json"
[ "$(json '" ".join(x["filename"].split("/")[-1] for x in d)' < "$TMP/chain.json")" = \
  "inc5.qcow2 inc4.qcow2 inc3.qcow2 inc2.qcow2 inc1.qcow2 full.qcow2" ] ||
    fail "qemu-img info --backing-chain: $(qemu-img info --backing-chain "$B/inc5.qcow2")"

# ---- a qcow2 overlay on a raw PREV ------------------------------------------
backup s5 --to "$B/raw5" > /dev/null || fail "a raw full backup of s5 failed"
sha_raw5=$(sha256sum < "$B/raw5")
nbd_write_random live $((7 * M)) $((2 * CS))
nbd_zero live $((15 * M)) $CS
sc_create s6
want=$(sc diff s5 s6 --json | json 'd["total-bytes"]')
backup s6 --to "$B/on-raw.qcow2" --format qcow2 --since s5 --base "$B/raw5" --json \
    > "$TMP/on-raw.json" || fail "a qcow2 incremental on a raw PREV failed"
[ "$(sha256sum < "$B/raw5")" = "$sha_raw5" ] || fail "the raw PREV changed"
equal_to "$B/on-raw.qcow2" qcow2 s6 "the qcow2 incremental on a raw PREV"
check_clean "$B/on-raw.qcow2" "the qcow2 incremental on a raw PREV"
[ "$(qinfo "$B/on-raw.qcow2" backing-filename)" = ./raw5 ] &&
[ "$(qinfo "$B/on-raw.qcow2" backing-filename-format)" = raw ] ||
    fail "on-raw: backing $(qemu-img info "$B/on-raw.qcow2")"
got=$(json 'd["bytes-written"] + d["bytes-zeroed"]' < "$TMP/on-raw.json")
[ "$got" = "$want" ] || fail "on-raw wrote $got bytes; diff reported $want"

# ---- a raw PREV whose manifest has blocks of another size ---------------------
# Its blocks are all checked through the overlay, at PREV's block size (a
# 4 MiB block read in pieces), damage far from what the backup writes too.
for bs in 4096 $((4 * M)); do
    p=$B/rb$bs
    cp --sparse=always "$B/raw5" "$p"
    cp "$B/raw5.manifest.json" "$p.manifest.json"
    "$PYTHON" "$tests_srcdir/manifest-reblock.py" "$p" "$bs"
    backup s6 --to "$p-inc.qcow2" --format qcow2 --since s5 --base "$p" > /dev/null ||
        fail "a qcow2 incremental on a PREV in $bs-byte blocks failed"
    equal_to "$p-inc.qcow2" qcow2 s6 "the qcow2 incremental on a PREV in $bs-byte blocks"
    sc verify "$p-inc.qcow2" > /dev/null || fail "verify of the qcow2 incremental on $bs-byte PREV"
    off=$((13 * M + 777))
    printf '\x5a\x5a\x5a' | dd of="$p" bs=1 seek=$off conv=notrunc status=none
    cmp -s "$p" "$B/raw5" && hard_error "the damage did not change $p"
    start=$((off / bs * bs))
    rc=0; out=$(backup s6 --to "$p-bad.qcow2" --format qcow2 --since s5 --base "$p" 2>&1) || rc=$?
    [ "$rc" = 1 ] && echo "$out" | grep_all "PREV is damaged: bytes $start-$((start + bs - 1))" ||
        fail "damage in a $bs-byte block of PREV that the incremental does not write taken in: exit $rc: $out"
    no_files "$p-bad.qcow2" "a damaged PREV in $bs-byte blocks"
    rm "$p" "$p.manifest.json" "$p-inc.qcow2" "$p-inc.qcow2.manifest.json"
done

# ---- PREV in another directory: named by its absolute path -------------------
mkdir "$TMP/elsewhere"
nbd_write_random live $((3 * M)) 4096
sc_create s7
backup s7 --to "$TMP/elsewhere/s7.qcow2" --format qcow2 --since s6 \
    --base "$B/on-raw.qcow2" > /dev/null || fail "an incremental into another directory failed"
[ "$(qinfo "$TMP/elsewhere/s7.qcow2" backing-filename)" = "$(realpath "$B/on-raw.qcow2")" ] ||
    fail "PREV elsewhere: backing $(qinfo "$TMP/elsewhere/s7.qcow2" backing-filename)"
equal_to "$TMP/elsewhere/s7.qcow2" qcow2 s7 "the incremental into another directory"

# ---- file names with a ':' (a time of day) -------------------------------------
# QEMU would take "vol-2024-01-01T00:00:00.qcow2" for protocol
# "vol-2024-01-01T00" and a file: the overlay names PREV as "./NAME", and
# relative paths go to qemu-img as "./PATH".
T1=vol-2024-01-01T00:00:00 T2=vol-2024-01-02T00:00:00
backup s5 --to "$B/$T1.qcow2" --format qcow2 > /dev/null || fail "a full qcow2 backup named $T1.qcow2 failed"
cp --sparse=always "$B/raw5" "$B/$T1.raw"
cp "$B/raw5.manifest.json" "$B/$T1.raw.manifest.json"
sc verify "$B/$T1.raw" > /dev/null || fail "the copy named $T1.raw does not verify"
for pf in qcow2 raw; do
    # a qcow2 incremental, PREV named by its absolute path, then relative
    backup s6 --to "$B/$T2-on-$pf.qcow2" --format qcow2 --since s5 \
        --base "$B/$T1.$pf" > /dev/null ||
        fail "a qcow2 incremental on a $pf PREV named $T1.$pf failed"
    [ "$(qinfo "$B/$T2-on-$pf.qcow2" backing-filename)" = "./$T1.$pf" ] ||
        fail "$T2-on-$pf.qcow2: backing file $(qinfo "$B/$T2-on-$pf.qcow2" backing-filename)"
    equal_to "$B/$T2-on-$pf.qcow2" qcow2 s6 "the qcow2 incremental on $T1.$pf"
    sc verify "$B/$T2-on-$pf.qcow2" > /dev/null || fail "verify of $T2-on-$pf.qcow2"
    (cd "$B" && backup s6 --to "$B/$T2-rel-$pf.qcow2" --format qcow2 --since s5 \
        --base "$T1.$pf" > /dev/null) ||
        fail "a qcow2 incremental on a $pf PREV given as $T1.$pf failed"
    equal_to "$B/$T2-rel-$pf.qcow2" qcow2 s6 "the qcow2 incremental on $T1.$pf (relative)"
    # a raw incremental, PREV and TARGET relative
    (cd "$B" && backup s6 --to "$T2-on-$pf.raw" --since s5 --base "$T1.$pf" > /dev/null) ||
        fail "a raw incremental on a $pf PREV given as $T1.$pf failed"
    equal_to "$B/$T2-on-$pf.raw" raw s6 "the raw incremental on $T1.$pf"
    sc verify "$B/$T2-on-$pf.raw" > /dev/null || fail "verify of $T2-on-$pf.raw"
done

# ---- the whole directory moved: the chain still opens ------------------------
mv "$B" "$TMP/moved"
equal_to "$TMP/moved/inc5.qcow2" qcow2 s5 "the moved chain"
equal_to "$TMP/moved/on-raw.qcow2" qcow2 s6 "the moved overlay on raw"
for pf in qcow2 raw; do
    equal_to "$TMP/moved/$T2-on-$pf.qcow2" qcow2 s6 "the moved overlay on $T1.$pf"
    sc verify "$TMP/moved/$T2-on-$pf.qcow2" > /dev/null ||
        fail "verify of the moved $T2-on-$pf.qcow2"
done
[ "$(qemu-img info --backing-chain --output=json -f qcow2 "$TMP/moved/inc5.qcow2" |
     json 'len(d)')" = 6 ] || fail "the moved chain is not 6 images long"
mv "$TMP/moved" "$B"

# ---- bad input ---------------------------------------------------------------
nbd_write_random live $((5 * M)) 4096
nbd_zero live $((13 * M)) $CS
sc_create s8

# ---- a raw incremental on a qcow2 PREV ----------------------------------------
# TARGET starts as PREV's content (its chain: s7.qcow2 on on-raw.qcow2 on
# raw5), converted by qemu-img.
want=$(sc diff s7 s8 --json | json 'd["total-bytes"]')
sha_s7=$(sha256sum < "$TMP/elsewhere/s7.qcow2")
backup s8 --to "$B/raw8" --since s7 --base "$TMP/elsewhere/s7.qcow2" --json \
    > "$TMP/raw8.json" || fail "a raw incremental on a qcow2 PREV failed"
[ "$(sha256sum < "$TMP/elsewhere/s7.qcow2")" = "$sha_s7" ] || fail "the qcow2 PREV changed"
nbd_save s8 "$TMP/s8.img"
cmp_files "$TMP/s8.img" "$B/raw8" "the raw incremental on a qcow2 PREV"
got=$(json 'd["bytes-written"] + d["bytes-zeroed"]' < "$TMP/raw8.json")
[ "$got" = "$want" ] || fail "raw8 wrote $got bytes; diff reported $want"
alloc=$(( $(stat -c %b "$B/raw8") * 512 ))
[ "$alloc" -lt $((10 * M)) ] || fail "the raw incremental on a qcow2 PREV is not sparse: $alloc bytes"
sha_inc5=$(sha256sum < "$B/inc5.qcow2")
rc=0; out=$(backup s8 --to "$B/inc5.qcow2" --format qcow2 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "already exists" || fail "an existing TARGET: exit $rc: $out"
[ "$(sha256sum < "$B/inc5.qcow2")" = "$sha_inc5" ] || fail "an existing TARGET was changed"

# One backup at a time to a TARGET.
flock -o "$B/busy.qcow2.partial" sleep 30 &
lockpid=$!
for _ in $(seq 50); do [ -e "$B/busy.qcow2.partial" ] && break; sleep 0.1; done
sleep 0.3
rc=0; out=$(backup s8 --to "$B/busy.qcow2" --format qcow2 2>&1) || rc=$?
kill "$lockpid" 2>/dev/null || :; wait "$lockpid" 2>/dev/null || :
[ "$rc" = 1 ] && echo "$out" | grep_all "another backup to this TARGET is running" ||
    fail "a second backup to one TARGET: exit $rc: $out"
[ ! -e "$B/busy.qcow2" ] || fail "the refused backup made TARGET"
# A TARGET.partial left by a killed backup is started over.
head -c 100000 /dev/urandom > "$B/busy.qcow2.partial"
backup s8 --to "$B/busy.qcow2" --format qcow2 > /dev/null ||
    fail "a backup over a stale TARGET.partial failed"
equal_to "$B/busy.qcow2" qcow2 s8 "the backup over a stale TARGET.partial"

# An unwritable directory: one line, no TARGET.
mkdir "$TMP/ro"
if [ "$(id -u)" = 0 ]; then
    chattr +i "$TMP/ro" 2>/dev/null && IMMUTABLE=$TMP/ro
else
    chmod 555 "$TMP/ro" && IMMUTABLE=none
fi
if [ -n "$IMMUTABLE" ]; then
    rc=0; out=$(backup s8 --to "$TMP/ro/x.qcow2" --format qcow2 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "an unwritable target directory: exit $rc: $out"
    one_line_naming "$out" "$TMP/ro/x.qcow2.partial" "an unwritable target directory"
    no_files "$TMP/ro/x.qcow2" "an unwritable target directory"
    rc=0; out=$(backup s8 --to "$TMP/ro/y.qcow2" --format qcow2 --since s7 \
        --base "$TMP/elsewhere/s7.qcow2" 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "an unwritable target directory (incremental): exit $rc: $out"
    one_line_naming "$out" "$TMP/ro/y.qcow2.partial" "an unwritable target directory (incremental)"
    no_files "$TMP/ro/y.qcow2" "an unwritable target directory (incremental)"
else
    log "cannot make an unwritable directory here: that case is not tested"
fi

# A PREV that its manifest calls a qcow2 image but is not: qemu-img's
# refusal, in one line naming it.
cp --sparse=always "$B/raw5" "$B/fake.qcow2"
sed 's/"format": *"raw"/"format": "qcow2"/' "$B/raw5.manifest.json" > "$B/fake.qcow2.manifest.json"
grep -q '"format": *"qcow2"' "$B/fake.qcow2.manifest.json" || fail "the test could not make a fake manifest"
rc=0; out=$(backup s6 --to "$B/on-fake.qcow2" --format qcow2 --since s5 \
    --base "$B/fake.qcow2" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a PREV that is not a qcow2 image: exit $rc: $out"
one_line_naming "$out" "$B/fake.qcow2" "a PREV that is not a qcow2 image"
echo "$out" | grep_all "not in qcow2 format" || fail "a PREV that is not qcow2: qemu-img's reason is missing: $out"
no_files "$B/on-fake.qcow2" "a PREV that is not a qcow2 image"

# A chain with a missing link: inc2 alone, without inc1 and the full.
mkdir "$TMP/lonely"
cp "$B/inc2.qcow2" "$B/inc2.qcow2.manifest.json" "$TMP/lonely/"
rc=0; out=$(backup s8 --to "$TMP/lonely/inc3.qcow2" --format qcow2 --since s2 \
    --base "$TMP/lonely/inc2.qcow2" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a chain with a missing link: exit $rc: $out"
one_line_naming "$out" "inc1.qcow2" "a chain with a missing link"
no_files "$TMP/lonely/inc3.qcow2" "a chain with a missing link"

# Damage in a raw PREV, found once TARGET.partial is open: the overlay
# is removed, and its qemu-nbd gone.
cp --sparse=always "$B/raw5" "$B/rot"
cp "$B/raw5.manifest.json" "$B/rot.manifest.json"
printf '\x5a\x5a\x5a' | dd of="$B/rot" bs=1 seek=$((7 * M + 1000)) conv=notrunc status=none
rc=0; out=$(backup s6 --to "$B/rot-inc.qcow2" --format qcow2 --since s5 --base "$B/rot" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "PREV is damaged: bytes $((7 * M))-$((8 * M - 1))" ||
    fail "damage in a raw PREV taken in: exit $rc: $out"
no_files "$B/rot-inc.qcow2" "a damaged PREV"

# A full filesystem: one line naming TARGET.partial, no TARGET left.  (The
# copy engine must wait for its reads in flight before it gives up: nbdkit
# 1.32 aborts when a client closes with replies still being sent.)  If a
# resume state was written before the space ran out, TARGET.partial is
# kept with it (for --resume) and the message says so; else nothing is.
mkdir "$TMP/small"
if mount -t tmpfs -o size=2M,mode=0700 tmpfs "$TMP/small" 2>/dev/null; then
    _MOUNTS+=("$TMP/small")
    rc=0; out=$(backup s8 --to "$TMP/small/full.qcow2" --format qcow2 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "a full filesystem: exit $rc: $out"
    one_line_naming "$out" "$TMP/small/full.qcow2.partial" "a full filesystem"
    echo "$out" | grep_all "No space left on device" || fail "a full filesystem: $out"
    if [ -e "$TMP/small/full.qcow2.resume" ]; then
        [ -e "$TMP/small/full.qcow2.partial" ] ||
            fail "a full filesystem: a resume state without its TARGET.partial"
        echo "$out" | grep_all -- "--resume" ||
            fail "a full filesystem kept TARGET.partial without saying --resume: $out"
        rm -f "$TMP/small/full.qcow2.partial" "$TMP/small/full.qcow2.resume"
    fi
    no_files "$TMP/small/full.qcow2" "a full filesystem"
else
    log "cannot mount a tmpfs here: a full filesystem is not tested"
fi

# Every qemu-nbd this test's backups started has exited.
! pgrep -f "qemu-nbd.*$TMP" > /dev/null || fail "qemu-nbd left running: $(pgrep -af "qemu-nbd.*$TMP")"
stop_server

# ---- a volume that is not a whole number of 512-byte sectors -----------------
# A qcow2 image is: refused at the start in one line, nothing made (a raw
# backup of it works).
ODD=$((5 * M + 100))
make_disk "$TMP/odd" "$ODD"
start_server "$TMP/odd" "$TMP/odd.diff" chunk-size=4K
sc_create o0
mkdir "$TMP/oddb"
rc=0; out=$(backup o0 --to "$TMP/oddb/full.qcow2" --format qcow2 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a qcow2 backup of a $ODD-byte volume: exit $rc: $out"
one_line_naming "$out" "$ODD bytes, not a whole number of 512-byte sectors" "a qcow2 backup of a $ODD-byte volume"
echo "$out" | grep_all -- "--format raw" || fail "the refusal does not say to use --format raw: $out"
[ -z "$(ls "$TMP/oddb")" ] || fail "a refused qcow2 backup left files: $(ls "$TMP/oddb")"
backup o0 --to "$TMP/oddb/full.raw" > /dev/null || fail "a raw backup of a $ODD-byte volume failed"
nbd_write_random live $((2 * M)) 4096
sc_create o1
rc=0; out=$(backup o1 --to "$TMP/oddb/inc.qcow2" --format qcow2 --since o0 \
    --base "$TMP/oddb/full.raw" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a qcow2 incremental of a $ODD-byte volume: exit $rc: $out"
one_line_naming "$out" "512-byte sectors" "a qcow2 incremental of a $ODD-byte volume"
[ "$(ls "$TMP/oddb")" = "$(printf 'full.raw\nfull.raw.manifest.json')" ] ||
    fail "a refused qcow2 incremental left files: $(ls "$TMP/oddb")"
before=$(sc_names)
rc=0; out=$(sc backup --create --to "$TMP/oddb/c.qcow2" --format qcow2 \
    --nbd-socket "$NBD_SOCK" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "512-byte sectors" ||
    fail "backup --create of a $ODD-byte volume in qcow2: exit $rc: $out"
[ ! -e "$TMP/oddb/c.qcow2.partial" ] && [ ! -e "$TMP/oddb/c.qcow2" ] ||
    fail "backup --create of a $ODD-byte volume in qcow2 left files"
[ "$(sc_names)" = "$before" ] || fail "backup --create left a snapshot: $(sc_names)"

stop_server
exit 0
