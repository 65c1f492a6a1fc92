#!/bin/bash
# Tests that journal damage after a kill -9 is never taken for a torn tail: one byte of the journal is flipped (at random offsets, and in the last records of journal slots and of the journal), and the restarted server must either refuse the diff area (and `shadowcopy check` exit 1) or serve every snapshot exactly as it was, never lose one or bring a deleted one back.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires cmp sha256sum

# FLIPS trials (the issue asked for 200; `make check` runs fewer); half of
# them land in the last three records of a journal slot or of the journal.
FLIPS=${FLIPS:-40}
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED FLIPS=$FLIPS"
RANDOM=$SEED

K=4096
M=$((1024 * 1024))
D=$TMP/diff

# ---- a diff area with copies in many journal slots, then kill -9 -------

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=4K
sc_create s0
nbd_write_random live 0 $M
sc_create s1
nbd_write_random live $((M / 2)) $((2 * M))     # 768 copies, 3 slots a group
sc delete s0 > /dev/null || fail "delete s0"
sc_create s2
nbd_write_random live $((2 * M)) $M
sc_create s3
for ((i = 0; i < 40; i++)); do                  # small groups
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
cp "$D" "$TMP/diff.orig"
cp "$TMP/disk" "$TMP/disk.orig"

"$PYTHON" "$tests_srcdir/journal-map.py" "$D" > "$TMP/map" ||
    fail "journal-map.py failed"
NREC=$(wc -l < "$TMP/map")
NEND=$(grep -c 'end$' "$TMP/map") || :
log "journal: $NREC records, $NEND of them at the end of a slot or of the journal"
[ "$NREC" -gt 300 ] && [ "$NEND" -gt 10 ] ||
    fail "the workload left too small a journal ($NREC records)"
mapfile -t ALL < "$TMP/map"
mapfile -t ENDS < <(grep 'end$' "$TMP/map")

# ---- the trials ----------------------------------------------------------

refused=0 identical=0 invalid=0 wrong=0
for ((t = 1; t <= FLIPS; t++)); do
    if ((t % 2)); then
        rec=${ALL[$((RANDOM % NREC))]}
    else
        rec=${ENDS[$((RANDOM % NEND))]}
    fi
    read -r seq type off len where <<< "$rec"
    at=$((off + (RANDOM % len)))
    mask=$((1 + RANDOM % 255))
    cp "$TMP/diff.orig" "$D"
    cp "$TMP/disk.orig" "$TMP/disk"
    "$PYTHON" -c '
import sys
f = open(sys.argv[1], "r+b"); at = int(sys.argv[2])
f.seek(at); b = f.read(1)[0]; f.seek(at); f.write(bytes([b ^ int(sys.argv[3])]))
' "$D" "$at" "$mask"
    what="trial $t: byte $at of record $seq (type $type, $where) ^ $mask"
    if ! try_start_server "$TMP/disk" "$D" chunk-size=4K 2> "$TMP/start.err"; then
        refused=$((refused + 1))
        rc=0; "$SHADOWCOPY_CLI" check "$D" > "$TMP/check.out" 2>&1 || rc=$?
        [ "$rc" -eq 1 ] ||
            soft_fail "$what: the server refused it, but check exited $rc: $(cat "$TMP/check.out")"
        continue
    fi
    out=$(sc list --json) || fail "$what: list failed"
    bad=0
    for n in "${NAMES[@]}"; do
        st=$(printf '%s\n' "$out" |
             json "[s[\"state\"] for s in d if s[\"name\"] == \"$n\"]")
        if [ -z "$st" ]; then
            soft_fail "$what: snapshot $n vanished"
            bad=1
        elif [ "$st" = valid ]; then
            nbd_save "$n" "$TMP/got.img"
            if ! cmp -s "$TMP/$n.img" "$TMP/got.img"; then
                soft_fail "$what: snapshot $n served wrong data ($(cmp "$TMP/$n.img" "$TMP/got.img" | head -1))"
                bad=1
            fi
        else
            invalid=$((invalid + 1))
        fi
    done
    st=$(printf '%s\n' "$out" | json '[s["state"] for s in d if s["name"] == "s0"]')
    if [ "$st" = valid ]; then
        soft_fail "$what: the deleted snapshot s0 came back, valid"
        bad=1
    fi
    nbd_save live "$TMP/got.img"
    cmp -s "$TMP/live.img" "$TMP/got.img" ||
        { soft_fail "$what: the live volume changed"; bad=1; }
    if [ "$bad" -eq 1 ]; then
        wrong=$((wrong + 1))
    else
        identical=$((identical + 1))
    fi
    stop_server
done

log "flips: $FLIPS; refused at start: $refused; started and served" \
    "identical: $identical ($invalid snapshot(s) listed invalid);" \
    "served wrong, lost or resurrected: $wrong"
[ "$wrong" -eq 0 ] || fail "$wrong trial(s) served wrong data (SEED=$SEED)"
