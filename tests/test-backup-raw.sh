#!/bin/bash
# Tests shadowcopy backup to raw targets and verify through the CLI and a real nbdkit: a full backup, then a chain of incrementals with random writes, trims and zeroes between them, each equal to its snapshot export and writing what diff reported; chain refusal; verify naming a flipped byte's range; a PREV whose manifest has 4 KiB or 4 MiB blocks checked whole; a manifest (and TARGET) put in place by another process during the backup neither replaced nor removed; bad input leaving no TARGET and PREV untouched.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp

K=1024
M=$((1024 * K))
CS=$((64 * K))
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
B=$TMP/backups
mkdir "$B"

backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }
mfield () { json "d[\"$2\"]" < "$1.manifest.json"; }

# The disk is random: 8 MiB of zeros in the middle, some data in them.
nbd_zero live $((4 * M)) $((8 * M))
nbd_write_random live $((9 * M + 100)) 5000

# ---- full -----------------------------------------------------------------
sc_create s0
backup s0 --to "$B/full" --json > "$TMP/full.json" || fail "full backup failed"
nbd_save s0 "$TMP/s0.img"
cmp "$TMP/s0.img" "$B/full" || fail "full backup differs from its snapshot"
[ ! -e "$B/full.partial" ] || fail "full.partial left behind"
[ "$(json 'd["type"]' < "$TMP/full.json")" = full ] || fail "--json: $(cat "$TMP/full.json")"
# Zeros stay holes: 8 MiB of the 16 MiB volume are not allocated.
alloc=$(( $(stat -c %b "$B/full") * 512 ))
[ "$alloc" -lt $((10 * M)) ] || fail "full backup is not sparse: $alloc bytes allocated"
[ "$(mfield "$B/full" snapshot-uuid)" = "$(sc_field s0 uuid)" ] ||
    fail "manifest snapshot-uuid is not s0's"
[ "$(mfield "$B/full" format)" = raw ] || fail "manifest format"
[ "$(mfield "$B/full" volume-size)" = $((16 * M)) ] || fail "manifest volume-size"
sc verify "$B/full" > /dev/null || fail "verify of a fresh full backup failed"

# ---- a chain of incrementals ------------------------------------------------
prev=$B/full base=s0
for i in 1 2 3 4; do
    nbd_write_random live $(( (RANDOM % 15) * M + RANDOM )) $(( RANDOM + 1 ))
    nbd_write_random live $(( (RANDOM % 15) * M )) $(( 3 * CS ))
    nbd_zero live $(( (i * 3 % 16) * M )) $((2 * CS))
    nbd_trim live $(( ((i * 5 + 1) % 16) * M )) $CS
    sc_create "s$i"
    want=$(sc diff "$base" "s$i" --json | json 'd["total-bytes"]')
    sha_prev=$(sha256sum < "$prev")
    backup "s$i" --to "$B/inc$i" --since "$base" --base "$prev" --json \
        > "$TMP/inc$i.json" || fail "incremental $i failed"
    [ "$(sha256sum < "$prev")" = "$sha_prev" ] || fail "incremental $i changed PREV"
    nbd_save "s$i" "$TMP/s$i.img"
    cmp "$TMP/s$i.img" "$B/inc$i" || fail "incremental $i differs from its snapshot"
    got=$(json 'd["bytes-written"] + d["bytes-zeroed"]' < "$TMP/inc$i.json")
    [ "$got" = "$want" ] || fail "incremental $i wrote $got bytes; diff reported $want"
    [ "$(mfield "$B/inc$i" base-uuid)" = "$(mfield "$prev" snapshot-uuid)" ] ||
        fail "inc$i: base-uuid is not PREV's snapshot"
    sc verify "$B/inc$i" > /dev/null || fail "verify inc$i failed"
    # The base is kept as a checkpoint: the chain goes on from it.
    sc delete --keep-checkpoint "$base" > /dev/null
    prev=$B/inc$i base=s$i
done

# ---- chain safety -------------------------------------------------------
sc_create s5
sha_full=$(sha256sum < "$B/full")
rc=0; out=$(backup s5 --to "$B/wrong" --since s3 --base "$B/full" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a wrong base: exit $rc: $out"
echo "$out" | grep_all "$(mfield "$B/full" snapshot-uuid)" ||
    fail "refusal does not say what PREV was made from: $out"
echo "$out" | grep_all "$(sc_field s3 uuid)" || fail "refusal does not say BASE's UUID: $out"
[ ! -e "$B/wrong" ] && [ ! -e "$B/wrong.partial" ] && [ ! -e "$B/wrong.manifest.json" ] ||
    fail "a refused backup left files"
[ "$(sha256sum < "$B/full")" = "$sha_full" ] || fail "a refused backup changed PREV"

rc=0; out=$(backup s5 --to "$B/gone" --since nosuch --base "$B/inc4" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "nosuch" || fail "a missing BASE: exit $rc: $out"
[ ! -e "$B/gone" ] || fail "a missing BASE left a TARGET"

# ---- damage in PREV is not taken in ----------------------------------------
# A byte of PREV that the manifest does not know, in a 1 MiB block that an
# incremental writes another chunk of: the incremental would sum the whole
# block anew.  It refuses instead, and leaves no TARGET.
cp --sparse=always "$B/inc4" "$B/rot"
cp "$B/inc4.manifest.json" "$B/rot.manifest.json"
off=$((2 * M + 500000))
printf '\x5a\x5a\x5a' | dd of="$B/rot" bs=1 seek=$off conv=notrunc status=none
nbd_write_random live $((2 * M)) 4096
sc_create s6
rc=0; out=$(backup s6 --to "$B/rot-inc" --since s4 --base "$B/rot" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "PREV is damaged: bytes $((2 * M))-$((3 * M - 1))" ||
    fail "damage in PREV taken in: exit $rc: $out"
[ ! -e "$B/rot-inc" ] && [ ! -e "$B/rot-inc.manifest.json" ] ||
    fail "a refused incremental left a TARGET"

# ---- a PREV whose manifest has blocks of another size ---------------------
# A valid manifest may have blocks of 4 KiB to 1 GiB; backup writes 1 MiB.
# Such a PREV lends no CRC to the incremental, which sums all its blocks
# anew: every block of PREV is checked first, at PREV's block size, so
# damage far from what the incremental writes is refused too.
for bs in 4096 $((4 * M)); do
    p=$B/rb$bs
    cp --sparse=always "$B/inc4" "$p"
    cp "$B/inc4.manifest.json" "$p.manifest.json"
    "$PYTHON" "$tests_srcdir/manifest-reblock.py" "$p" "$bs"
    [ "$(mfield "$p" block-size)" = "$bs" ] || fail "reblock to $bs"
    sc verify "$p" > /dev/null || fail "verify of a PREV in $bs-byte blocks failed"
    backup s6 --to "$p-inc" --since s4 --base "$p" > /dev/null ||
        fail "an incremental on a PREV in $bs-byte blocks failed"
    nbd_save s6 "$TMP/s6.img"
    cmp "$TMP/s6.img" "$p-inc" || fail "incremental on $bs-byte PREV differs from s6"
    sc verify "$p-inc" > /dev/null || fail "verify of the incremental on $bs-byte PREV"
    off=$((13 * M + 777))
    printf '\x5a\x5a\x5a' | dd of="$p" bs=1 seek=$off conv=notrunc status=none
    cmp -s "$p" "$B/inc4" && hard_error "the damage did not change $p"
    start=$((off / bs * bs))
    rc=0; out=$(backup s6 --to "$p-bad" --since s4 --base "$p" 2>&1) || rc=$?
    [ "$rc" = 1 ] && echo "$out" | grep_all "PREV is damaged: bytes $start-$((start + bs - 1))" ||
        fail "damage in a $bs-byte block of PREV that the incremental does not write taken in: exit $rc: $out"
    [ ! -e "$p-bad" ] && [ ! -e "$p-bad.manifest.json" ] && [ ! -e "$p-bad.partial" ] ||
        fail "a refused incremental on a $bs-byte PREV left files"
done

# ---- one backup at a time to a TARGET; leftovers of a killed one ----------
flock -o "$B/busy.partial" sleep 30 &
lockpid=$!
for _ in $(seq 50); do [ -e "$B/busy.partial" ] && break; sleep 0.1; done
sleep 0.3
rc=0; out=$(backup s6 --to "$B/busy" 2>&1) || rc=$?
kill "$lockpid" 2>/dev/null || :; wait "$lockpid" 2>/dev/null || :
[ "$rc" = 1 ] && echo "$out" | grep_all "another backup to this TARGET is running" ||
    fail "a second backup to one TARGET: exit $rc: $out"
[ ! -e "$B/busy" ] || fail "the refused backup made TARGET"
# A manifest and a partial left by a backup killed between its renames.
echo '{}' > "$B/busy.manifest.json"
backup s6 --to "$B/busy" > /dev/null || fail "a backup over a stale manifest failed"
sc verify "$B/busy" > /dev/null || fail "verify after a stale manifest failed"

# ---- a backup never replaces or removes a manifest it did not write -------
# Another process puts TARGET's manifest (and TARGET) in place during the
# backup.  strace holds one rename of the backup for 1.5 s, so that this
# lands before the manifest's rename (1), or between it and TARGET's (2).
# wait_file FILE PID: until FILE exists, while PID runs.
wait_file () {
    local i
    for ((i = 0; i < 200; i++)); do
        [ -e "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || fail "the backup ended before $1 appeared"
        sleep 0.05
    done
    fail "no $1 after 10 s"
}
# slow_rename N ARGS...: a backup whose N-th renameat2 waits 1.5 s.
slow_rename () {
    local n=$1
    shift
    strace -f -o /dev/null -e trace=renameat2 \
        -e inject=renameat2:delay_enter=1500000:when="$n" \
        "$SHADOWCOPY_CLI" -c "$CTL" backup --nbd-socket "$NBD_SOCK" "$@"
}
if strace -f -o /dev/null true 2> /dev/null; then
    slow_rename 1 s6 --to "$B/m1" > /dev/null 2> "$TMP/m1.err" &
    pid=$!
    wait_file "$B/m1.manifest.json.partial" "$pid"
    echo '{"theirs": 1}' > "$B/m1.manifest.json"
    rc=0; wait "$pid" || rc=$?
    [ "$rc" = 1 ] && grep -q "cannot write manifest .*m1.manifest.json: File exists" "$TMP/m1.err" ||
        fail "a manifest put in place during the backup: exit $rc: $(cat "$TMP/m1.err")"
    [ "$(cat "$B/m1.manifest.json")" = '{"theirs": 1}' ] ||
        fail "the backup replaced or removed a manifest it did not write"
    [ ! -e "$B/m1" ] || fail "a backup whose manifest could not be written made TARGET"

    slow_rename 2 s6 --to "$B/m2" > /dev/null 2> "$TMP/m2.err" &
    pid=$!
    wait_file "$B/m2.manifest.json" "$pid"
    echo theirs > "$TMP/m2.theirs"
    echo '{"theirs": 2}' > "$TMP/m2.theirs.json"
    mv -f "$TMP/m2.theirs.json" "$B/m2.manifest.json"
    mv "$TMP/m2.theirs" "$B/m2"
    rc=0; wait "$pid" || rc=$?
    [ "$rc" = 1 ] && grep -q "cannot rename .*m2.partial to .*m2: File exists" "$TMP/m2.err" ||
        fail "a TARGET put in place during the backup: exit $rc: $(cat "$TMP/m2.err")"
    [ "$(cat "$B/m2")" = theirs ] || fail "the backup replaced a TARGET it did not write"
    [ "$(cat "$B/m2.manifest.json" 2>&1)" = '{"theirs": 2}' ] ||
        fail "the backup removed a manifest it did not write (put over its own before TARGET's rename)"
    rm "$B/m1.manifest.json" "$B/m2" "$B/m2.manifest.json"
else
    log "strace cannot trace here: a manifest put in place during a backup is not tested"
fi

# ---- verify ---------------------------------------------------------------
cp --sparse=always "$B/inc4" "$B/flip"
cp "$B/inc4.manifest.json" "$B/flip.manifest.json"
off=$((5 * M + 12345))
printf '\x5a' | dd of="$B/flip" bs=1 seek=$off conv=notrunc status=none
if cmp -s "$B/flip" "$B/inc4"; then
    printf '\xa5' | dd of="$B/flip" bs=1 seek=$off conv=notrunc status=none
fi
rc=0; out=$(sc verify "$B/flip" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "verify of a flipped byte: exit $rc: $out"
echo "$out" | grep_all "bytes $((5 * M))-$((6 * M - 1))" ||
    fail "verify does not name the damaged range: $out"
rc=0; "$SHADOWCOPY_CLI" verify > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "verify without TARGET: exit $rc"

# ---- bad input ------------------------------------------------------------
mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
if [ "$(id -u)" != 0 ]; then
    rc=0; out=$(backup s5 --to "$TMP/ro/x" 2>&1) || rc=$?
    [ "$rc" = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] ||
        fail "an unwritable target dir: exit $rc: $out"
    [ ! -e "$TMP/ro/x" ] || fail "unwritable dir: TARGET created"
fi
rc=0; out=$(backup nosuch --to "$B/x" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all nosuch || fail "a missing snapshot: exit $rc: $out"
[ ! -e "$B/x" ] && [ ! -e "$B/x.partial" ] || fail "a missing snapshot left files"

cp "$B/inc4.manifest.json" "$TMP/saved.json"
sha_inc4=$(sha256sum < "$B/inc4")
head -c 100 "$TMP/saved.json" > "$B/inc4.manifest.json"
rc=0; out=$(backup s5 --to "$B/y" --since s4 --base "$B/inc4" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "damaged" || fail "a damaged manifest: exit $rc: $out"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "a damaged manifest: more than one line: $out"
[ ! -e "$B/y" ] && [ ! -e "$B/y.partial" ] || fail "a damaged manifest left files"
[ "$(sha256sum < "$B/inc4")" = "$sha_inc4" ] || fail "a damaged manifest: PREV changed"
rc=0; out=$(sc verify "$B/inc4" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "verify with a damaged manifest: exit $rc: $out"
cp "$TMP/saved.json" "$B/inc4.manifest.json"

rc=0; out=$(backup s5 --to "$B/full" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "already exists" || fail "an existing TARGET: exit $rc: $out"
[ "$(sha256sum < "$B/full")" = "$sha_full" ] || fail "an existing TARGET was changed"
rc=0; backup s5 --to "$B/z" --since s4 > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--since without --base: exit $rc"

# --progress=FD: N/100 lines ending at 100/100.
backup s5 --to "$B/inc5" --since s4 --base "$B/inc4" --progress=3 3> "$TMP/progress" > /dev/null ||
    fail "incremental with --progress=3 failed"
[ "$(tail -n 1 "$TMP/progress")" = 100/100 ] || fail "progress: $(cat "$TMP/progress")"
grep -qvE '^[0-9]+/100$' "$TMP/progress" && fail "progress lines: $(cat "$TMP/progress")"

stop_server
exit 0
