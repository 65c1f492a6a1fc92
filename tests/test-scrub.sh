#!/bin/bash
# Tests `shadowcopy scrub` with a real nbdkit: a byte flipped in a copied slot while the server was stopped is found by a scrub that runs while the live volume and a snapshot are served; --status shows progress; a second scrub while one runs is refused; --rate bounds it (progress, not timing); the damaged snapshot is listed with the reason and its copy freed; a server stops cleanly in the middle of a scrub; check --data finds a flip offline (exit 1) and passes a clean area (exit 0).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy timeout

K=1024
M=$((1024 * K))
CS=$((64 * K))
D=$TMP/diff

# scrub_field KEY: a field of `scrub --status --json`.
scrub_field () {
    local out
    out=$(sc scrub --status --json) || fail "scrub --status --json failed"
    printf '%s\n' "$out" | json "d[\"$1\"]" || fail "no $1 in: $out"
}

# wait_scrub_done: until the scrub is no longer running (60 s at most).
wait_scrub_done () {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(scrub_field state)" = running ] || return 0
        sleep 0.1
    done
    fail "the scrub did not finish: $(sc scrub --status)"
}

# flip_copy_of IMAGE CHUNK: flip a byte in the diff-area slot that holds
# the copy of CHUNK (found by its content, which IMAGE holds).
flip_copy_of () {
    "$PYTHON" - "$1" "$D" $(($2 * CS)) $CS <<'PY'
import sys
img, diff, off, cs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = open(img, "rb").read()[off:off + cs]
f = open(diff, "r+b")
at = f.read().find(want)
assert at >= 0 and at % cs == 0, "copy not found in a slot"
f.seek(at + cs - 5); b = f.read(1)
f.seek(at + cs - 5); f.write(bytes([b[0] ^ 1]))
PY
}

# check_data: `shadowcopy check --data` on the stopped diff area; sets RC.
check_data () {
    RC=0
    timeout 60 "$SHADOWCOPY_CLI" check --data "$D" > "$TMP/out" 2> "$TMP/err" || RC=$?
}

make_disk "$TMP/disk" 16M
cp "$TMP/disk" "$TMP/s1.img"
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create s1
nbd_write_random live 0 $((4 * M))      # 64 copies for s1
sc_create s2
nbd_save s2 "$TMP/s2.img"
nbd_write_random live $((8 * M)) $M     # 16 copies for s2
stop_server

# Offline, a clean area passes check --data.
check_data
[ "$RC" -eq 0 ] || fail "check --data of a clean area exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -q '^copies verified: 80 ([0-9]* bytes), 0 damaged' "$TMP/out" ||
    fail "check --data summary: $(cat "$TMP/out")"

# The copy of chunk 40 is s1's alone.
flip_copy_of "$TMP/s1.img" 40

# Without --data the flip is not looked for; with it, it is found.
RC=0; "$SHADOWCOPY_CLI" check "$D" > "$TMP/out" 2>&1 || RC=$?
[ "$RC" -eq 0 ] || fail "check without --data exited $RC: $(cat "$TMP/out")"
grep -q '^copies verified: not checked' "$TMP/out" || fail "check says: $(cat "$TMP/out")"
check_data
[ "$RC" -eq 1 ] || fail "check --data of a flipped copy exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -Eq '^problem: the copy of chunk 40 in data slot [0-9]+ .*failed its checksum.*s1' "$TMP/out" ||
    fail "check --data does not name chunk, slot and snapshot: $(cat "$TMP/out")"
grep -q '^copies verified: 80 .* 1 damaged' "$TMP/out" || fail "check --data: $(cat "$TMP/out")"
log "ok: check --data: $(grep '^problem:' "$TMP/out")"

start_server "$TMP/disk" "$D" chunk-size=64K
[ "$(scrub_field state)" = never ] || fail "a scrub before any was asked"
[ "$(sc_field s1 state)" = valid ] || fail "s1 not valid before the scrub"

# 80 copies of 64K at 1M/s: about five seconds, so it is still running
# when asked again at once.
sc scrub --rate 1M > "$TMP/out" || fail "scrub failed: $(cat "$TMP/out")"
grep -q '^scrub: running' "$TMP/out" || fail "scrub says: $(cat "$TMP/out")"
RC=0; sc scrub > "$TMP/out" 2> "$TMP/err" || RC=$?
[ "$RC" -eq 1 ] && grep -q 'already running' "$TMP/err" ||
    fail "a second scrub: exit $RC: $(cat "$TMP/out" "$TMP/err")"
[ "$(scrub_field rate)" = $M ] || fail "the rate is not the one asked for"
checked=$(scrub_field bytes_checked)
total=$(scrub_field bytes_total)
[ "$total" = $((80 * CS)) ] || fail "bytes total $total, want $((80 * CS))"
[ "$checked" -lt "$total" ] || fail "the scrub at 1M/s is done at once ($checked of $total): the rate is not kept"

# Live I/O and snapshot reads go on meanwhile.
nbd_write_random live $((12 * M)) $M
cmp_files "$TMP/s2.img" <(nbdcopy "$(uri s2)" -) "s2 during the scrub"
wait_scrub_done
sc scrub --status > "$TMP/out"
log "scrub status: $(tr '\n' ';' < "$TMP/out")"
[ "$(scrub_field state)" = finished ] || fail "state: $(cat "$TMP/out")"
[ "$(scrub_field damaged)" = 1 ] || fail "damaged: $(cat "$TMP/out")"
[ "$(scrub_field freed)" = 1 ] || fail "the damaged copy was not freed: $(cat "$TMP/out")"
[ "$(scrub_field copies_checked)" -ge 80 ] || fail "not every copy checked: $(cat "$TMP/out")"
grep -q '^started: 20' "$TMP/out" && grep -q '^finished: 20' "$TMP/out" ||
    fail "no start or end time: $(cat "$TMP/out")"
[ "$(sc_field s1 state)" = invalid ] || fail "s1 not marked"
case "$(sc_field s1 reason)" in *damaged*) ;; *) fail "s1's reason: $(sc_field s1 reason)" ;; esac
[ "$(sc_field s2 state)" = valid ] || fail "s2 marked too"
stats=$(sc stats --json)
[ "$(printf '%s\n' "$stats" | json 'd["damaged_freed"]')" = 1 ] ||
    fail "stats: $stats"

# A scrub at 1K/s takes minutes: the server stops cleanly in its middle.
sc scrub --rate 1K > /dev/null || fail "scrub --rate 1K failed"
sleep 0.3
[ "$(scrub_field state)" = running ] || fail "the slow scrub is not running"
stop_server

# Its mark is durable, and check --data finds nothing any more: the
# damaged copy was freed.
check_data
[ "$RC" -eq 0 ] || fail "check --data after the scrub exited $RC: $(cat "$TMP/out")"
start_server "$TMP/disk" "$D" chunk-size=64K
[ "$(sc_field s1 state)" = invalid ] || fail "s1 valid again after a restart"
stop_server
