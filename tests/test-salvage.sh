#!/bin/bash
# Tests `shadowcopy salvage` with a real server: after a kill -9 a byte of a journal record at the end of a slot is flipped; the server refuses the diff area naming the record and the salvage command, check exits 1, salvage refuses while the diff area is locked, then keeps what it can prove intact: snapshots listed when the record was written are invalid with the salvage reason (exports refused), later ones serve their exact image, the live volume and the disk are untouched.  Then, after a clean stop, a flipped CRC byte in the journal's last record (a commit marker) is gone past (the server starts, check warns, every snapshot serves), and a flipped type byte there is salvaged like any damage.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires cmp flock timeout

K=4096
M=$((1024 * 1024))
D=$TMP/diff
REASON="journal damaged: salvage could not prove this snapshot intact"

# run_cli ARGS...: the CLI with a time limit; sets RC, output in
# $TMP/out and $TMP/err.
run_cli () {
    RC=0
    timeout 120 "$SHADOWCOPY_CLI" "$@" > "$TMP/out" 2> "$TMP/err" || RC=$?
    [ "$RC" -lt 124 ] || fail "shadowcopy $*: died or hung (status $RC): $(cat "$TMP/err")"
}

# flip OFFSET: one byte of the diff area, inverted.
flip () {
    "$PYTHON" -c '
import sys
f = open(sys.argv[1], "r+b"); at = int(sys.argv[2])
f.seek(at); b = f.read(1)[0]; f.seek(at); f.write(bytes([b ^ 0xff]))
' "$D" "$1"
}

# expect_refused SEQ: the server does not start, naming record SEQ and
# the salvage command; check exits 1.
expect_refused () {
    if try_start_server "$TMP/disk" "$D" 2> "$TMP/start.err"; then
        fail "the server started on a diff area whose record $1 is damaged"
    fi
    grep -q "journal record $1 " "$SERVER_LOG" ||
        fail "the refusal does not name record $1: $(tail -3 "$SERVER_LOG")"
    grep -q "shadowcopy salvage $D" "$SERVER_LOG" ||
        fail "the refusal does not say to salvage: $(tail -3 "$SERVER_LOG")"
    run_cli check "$D"
    [ "$RC" -eq 1 ] || fail "check exited $RC on a damaged journal: $(cat "$TMP/out" "$TMP/err")"
    grep -q "^problem: .*journal record $1 " "$TMP/out" ||
        fail "check does not name record $1: $(cat "$TMP/out")"
    log "ok, refused, check exits 1: $(grep -m1 '^problem: ' "$TMP/out" | cut -c1-160)"
}

# salvage_and_verify SEQ INVALID...: salvage (record SEQ lost), start the
# server, and check every snapshot: those named invalid are listed invalid
# with the salvage reason and their exports refused; every other one in
# NAMES is valid and serves its image; the live volume is intact.
salvage_and_verify () {
    local seq=$1 n st
    shift
    local invalid=" $* "
    local disk_sum
    disk_sum=$(file_sha256 "$TMP/disk")
    run_cli salvage "$D"
    [ "$RC" -eq 0 ] || fail "salvage exited $RC: $(cat "$TMP/out" "$TMP/err")"
    grep -Eq "^  records? $seq[ ,-]" "$TMP/out" ||
        fail "salvage does not report record $seq lost: $(cat "$TMP/out")"
    for n in "${NAMES[@]}"; do
        if [[ $invalid == *" $n "* ]]; then
            grep -q "^  $n (id .*): marked invalid: $REASON" "$TMP/out" ||
                fail "salvage does not say it marked $n invalid: $(cat "$TMP/out")"
        else
            grep -q "^  $n (id .*): kept" "$TMP/out" ||
                fail "salvage does not say it kept $n: $(cat "$TMP/out")"
        fi
    done
    [ "$(file_sha256 "$TMP/disk")" = "$disk_sum" ] || fail "salvage changed the disk"
    log "ok, salvage: $(grep -E '^(journal records lost|kept):' "$TMP/out" | tr '\n' ' ')"

    start_server "$TMP/disk" "$D"
    local out
    out=$(sc list --json) || fail "list failed"
    for n in "${NAMES[@]}"; do
        st=$(printf '%s\n' "$out" |
             json "[s[\"state\"] for s in d if s[\"name\"] == \"$n\"]")
        if [[ $invalid == *" $n "* ]]; then
            [ "$st" = invalid ] || fail "$n is '$st' after salvage, expected invalid"
            [ "$(sc_field "$n" reason)" = "$REASON" ] ||
                fail "$n: reason '$(sc_field "$n" reason)'"
            if nbdcopy "$(uri "$n")" - > /dev/null 2>&1; then
                fail "the export of $n, invalid after salvage, was served"
            fi
        else
            [ "$st" = valid ] || fail "$n is '$st' after salvage, expected valid"
            nbd_save "$n" "$TMP/got.img"
            cmp_files "$TMP/$n.img" "$TMP/got.img" "snapshot $n after salvage"
        fi
    done
    st=$(printf '%s\n' "$out" | json '[s["state"] for s in d if s["name"] == "s0"]')
    [ "$st" != valid ] || fail "the deleted snapshot s0 came back, valid"
    nbd_save live "$TMP/got.img"
    cmp_files "$TMP/live.img" "$TMP/got.img" "the live volume after salvage"
    log "ok, after salvage: invalid:$invalid; the others serve their images"
}

# expected_invalid SEQ: the snapshots listed when record SEQ was written
# (created before it, not deleted before it), from the journal map.
expected_invalid () {
    "$PYTHON" - "$TMP/map" "$1" <<'EOF'
import sys
names = ["s0", "s1", "s2", "s3"]
seq = int(sys.argv[2])
listed, created = [], 0
for line in open(sys.argv[1]):
    s, t = [int(x) for x in line.split()[:2]]
    if s >= seq:
        break
    if t == 2:
        listed.append(names[created]); created += 1
    elif t == 3:
        listed.remove("s0")
print(" ".join(listed))
EOF
}

# ---- a diff area with copies in many slots, then kill -9 ---------------

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=4K
sc_create s0
nbd_write_random live 0 $M
sc_create s1
nbd_write_random live $((M / 2)) $((2 * M))
sc delete s0 > /dev/null || fail "delete s0"
sc_create s2
nbd_write_random live $((2 * M)) $M
sc_create s3
for ((i = 0; i < 20; i++)); do
    nbd_write_random live $(( (3 * M) + i * 3 * K )) $((2 * K))
done
NAMES=(s1 s2 s3)
for n in "${NAMES[@]}" live; do
    nbd_save "$n" "$TMP/$n.img"
done
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=

# ---- 1. the record before the NEXT of a slot in the middle ------------

"$PYTHON" "$tests_srcdir/journal-map.py" "$D" > "$TMP/map" ||
    fail "journal-map.py failed"
# The last record before the sixth NEXT record (type 6).
read -r SEQ TYPE OFF LEN _ < <(awk '$2 == 6 { if (++n == 6) { print prev; exit } } { prev = $0 }' "$TMP/map")
[ -n "$SEQ" ] || fail "the journal has fewer than 6 slots: $(wc -l < "$TMP/map") records"
INVALID=$(expected_invalid "$SEQ")
log "damaging record $SEQ (type $TYPE, offset $OFF), the last of its slot; listed then: $INVALID"
flip $((OFF + LEN - 4))
expect_refused "$SEQ"

# Salvage refuses while something holds the diff area (as a server does).
exec 9< "$D"
flock -x 9 || fail "flock"
run_cli salvage "$D"
exec 9<&-
[ "$RC" -eq 2 ] || fail "salvage of a locked diff area exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -q "in use" "$TMP/err" || fail "salvage of a locked diff area: $(cat "$TMP/err")"
log "ok, salvage refused while locked: $(cat "$TMP/err")"

salvage_and_verify "$SEQ" $INVALID
[ -n "$INVALID" ] && [ "$(echo $INVALID | wc -w)" -lt 3 ] ||
    fail "the case should keep some snapshots and lose others ($INVALID)"

# ---- 2. after a clean stop, the journal's last record -----------------

stop_server
"$PYTHON" "$tests_srcdir/journal-map.py" "$D" > "$TMP/map" ||
    fail "journal-map.py failed"
read -r SEQ TYPE OFF LEN _ < <(tail -1 "$TMP/map")
[ "$TYPE" = 7 ] || fail "the journal's last record is type $TYPE, not COMMIT"
# Every snapshot still valid was listed when it was written.
KEPT=()
for n in "${NAMES[@]}"; do
    [[ " $INVALID " == *" $n "* ]] || KEPT+=("$n")
done
NAMES=("${KEPT[@]}")
# A flipped byte in that commit marker's CRC: a damaged marker holds no
# state; the server starts, check warns (exit 0), every snapshot serves.
log "damaging the CRC of commit marker $SEQ (offset $OFF), the journal's last, after a clean stop"
flip $((OFF + 2))
run_cli check "$D"
[ "$RC" -eq 0 ] || fail "check exited $RC on a damaged marker: $(cat "$TMP/out" "$TMP/err")"
grep -q "^warning: journal record $SEQ .*damaged commit marker" "$TMP/out" ||
    fail "check does not warn of the damaged marker: $(cat "$TMP/out")"
start_server "$TMP/disk" "$D"
grep -q "journal record $SEQ .*damaged commit marker" "$SERVER_LOG" ||
    fail "the open does not note the damaged marker: $(tail -3 "$SERVER_LOG")"
for n in "${NAMES[@]}"; do
    [ "$(sc_field "$n" state)" = valid ] || fail "$n is not valid after a damaged marker"
    nbd_save "$n" "$TMP/got.img"
    cmp_files "$TMP/$n.img" "$TMP/got.img" "snapshot $n after a damaged marker"
done
stop_server
log "ok, a damaged marker opens; check warns"
# The server may have left the journal as it was: then undo the damage.
"$PYTHON" "$tests_srcdir/journal-map.py" "$D" > "$TMP/map" ||
    fail "journal-map.py failed"
read -r SEQ2 TYPE OFF2 LEN _ < <(tail -1 "$TMP/map")
[ "$SEQ2.$OFF2" != "$SEQ.$OFF" ] || flip $((OFF + 2))
SEQ=$SEQ2 OFF=$OFF2
[ "$TYPE" = 7 ] || fail "the journal's last record is type $TYPE, not COMMIT"
# Its type byte instead: no longer a marker's header, so damage.
log "damaging record $SEQ (type $TYPE, offset $OFF), the journal's last, after a clean stop"
flip $((OFF + 4))
expect_refused "$SEQ"
salvage_and_verify "$SEQ" "${NAMES[@]}"
stop_server
run_cli salvage "$D"
[ "$RC" -eq 0 ] && grep -q "^nothing to salvage" "$TMP/out" ||
    fail "a second salvage: $RC: $(cat "$TMP/out" "$TMP/err")"
log "ok, a second salvage: $(tail -1 "$TMP/out")"

# ---- 3. a lost SNAP_DELETE, then a snapshot of the same name ----------
# 'daily' is deleted (the record is damaged), 'other' is created, then a
# new 'daily': its create proves the old one was deleted, so the old one
# goes and the new one is applied; 'other' and the new 'daily' are kept.
# Then a lost SNAP_CREATE followed by data copies (COPY_SUMS records) of
# the epoch it began: the copies are applied, not lost.

CS=65536
# flip_type TYPE [NTH]: flip byte 20 (the payload) of the NTH record of TYPE;
# sets SEQ.
flip_type () {
    local line
    "$PYTHON" "$tests_srcdir/journal-map.py" "$D" > "$TMP/map" ||
        fail "journal-map.py failed"
    line=$(awk -v t="$1" -v n="${2:-1}" '$2 == t { if (++k == n) { print; exit } }' "$TMP/map")
    [ -n "$line" ] || fail "no record of type $1"
    read -r SEQ _ OFF _ _ <<< "$line"
    flip $((OFF + 20))
}
rm -f "$D"
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create daily
nbd_write_random live $((10 * CS)) $CS
sc delete daily > /dev/null || fail "delete daily"
sc_create other
nbd_write_random live $((12 * CS)) $CS
sc_create daily
nbd_write_random live $((20 * CS)) $CS
nbd_write_random live $((12 * CS)) $CS
for n in other daily live; do
    nbd_save "$n" "$TMP/$n.img"
done
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=
flip_type 3                     # the SNAP_DELETE
expect_refused "$SEQ"
run_cli salvage "$D"
[ "$RC" -eq 0 ] || fail "salvage exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -q "^journal records lost: 1 place$" "$TMP/out" ||
    fail "salvage lost more than the damaged record: $(cat "$TMP/out")"
grep -q "^snapshots deleted by lost records .*: 1$" "$TMP/out" ||
    fail "salvage does not report the old daily deleted: $(cat "$TMP/out")"
log "ok, salvage: $(grep -E '^(journal records lost|snapshots deleted|kept):' "$TMP/out" | tr '\n' ' ')"
start_server "$TMP/disk" "$D" chunk-size=64K
[ "$(sc list --json | json 'len(d)')" = 2 ] ||
    fail "after salvage: $(sc list --json)"
for n in other daily live; do
    [ $n = live ] || [ "$(sc_field "$n" state)" = valid ] ||
        fail "$n is $(sc_field "$n" state) after salvage"
    nbd_save "$n" "$TMP/got.img"
    cmp_files "$TMP/$n.img" "$TMP/got.img" "$n after salvage"
done
log "ok, the old daily is gone; other and the new daily serve their images"
stop_server

rm -f "$D"
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create a
nbd_write_random live $((10 * CS)) $CS
sc_create b
nbd_write_random live $((12 * CS)) $((2 * CS))  # data copies of b's epoch
sc_create c
nbd_write_random live $((20 * CS)) $CS
for n in c live; do
    nbd_save "$n" "$TMP/$n.img"
done
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=
flip_type 2 2                   # b's SNAP_CREATE
expect_refused "$SEQ"
run_cli salvage "$D"
[ "$RC" -eq 0 ] || fail "salvage exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -q "^journal records lost: 1 place$" "$TMP/out" ||
    fail "salvage lost the copies after a lost create: $(cat "$TMP/out")"
start_server "$TMP/disk" "$D" chunk-size=64K
[ "$(sc_field c state)" = valid ] || fail "c is $(sc_field c state)"
for n in c live; do
    nbd_save "$n" "$TMP/got.img"
    cmp_files "$TMP/$n.img" "$TMP/got.img" "$n after salvage"
done
log "ok, copies after a lost create are kept; c serves its image"
stop_server
