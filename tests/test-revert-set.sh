#!/bin/bash
# Tests `shadowcopy revert --set ID` on two volumes (two servers, one snapshot set): a volume that refuses (a live connection on it) leaves the other's revert recorded but paused, and the error names the failed volume and each one's state; running the same command again picks the recorded one up; afterwards both live exports equal their set member, and the saved states (one name on both) equal the pre-revert disks.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy timeout

export SHADOWCOPY_STATE_DIR=$TMP/state
M=$((1024 * 1024))
make_disk "$TMP/a" 8M
make_disk "$TMP/b" 8M
# Volume B: a second nbdkit, started by hand (functions.sh tracks one).
NBD_B=$TMP/nbd-b.sock
nbdkit -f -U "$NBD_B" "$SHADOWCOPY_PLUGIN" disk="$TMP/b" diff="$TMP/b.diff" \
    chunk-size=64K >> "$TMP/server-b.log" 2>&1 &
_SERVER_PIDS+=("$!")
start_server "$TMP/a" "$TMP/a.diff" chunk-size=64K
CTL_B=$TMP/b.diff.sock
for ((i = 0; i < 100; i++)); do [ -S "$CTL_B" ] && [ -S "$NBD_B" ] && break; sleep 0.1; done
[ -S "$CTL_B" ] || fail "second server did not start: $(cat "$TMP/server-b.log")"
uri_b () { echo "nbd+unix:///${1}?socket=${NBD_B}"; }
save_b () { nbdcopy "$(uri_b "$1")" - > "$2" || fail "nbdcopy of b:$1"; }
write_b () {
    head -c "$3" /dev/urandom > "$TMP/wb"
    "$NBDSH" -u "$(uri_b "$1")" -c "h.pwrite(open('$TMP/wb','rb').read(), $2)" ||
        fail "write to b:$1"
}

nbd_write_random live 0 $M
write_b live $((2 * M)) $M
out=$("$SHADOWCOPY_CLI" create -c "$CTL" -c "$CTL_B" --no-writers S1) ||
    fail "set creation: $out"
id=$(printf '%s\n' "$out" | sed -n 's/^set //p')
[ -n "$id" ] || fail "create printed no set id: $out"
nbd_save S1 "$TMP/a-S1.img"
save_b S1 "$TMP/b-S1.img"
nbd_write_random live $((3 * M)) $((2 * M))
write_b live 0 $((3 * M))
nbd_save live "$TMP/a-pre.img"
save_b live "$TMP/b-pre.img"

# Bad input: an unknown set, a set id that is no UUID: nothing changes.
expect_cli_error "unknown set" "$SHADOWCOPY_CLI" revert --set \
    11111111-2222-3333-4444-555555555555 -c "$CTL" -c "$CTL_B"
expect_cli_error "not a uuid" "$SHADOWCOPY_CLI" revert --set nope -c "$CTL"
[ "$(sc revert --status --json | json 'd["state"]')" = none ] ||
    fail "a refused revert --set left a revert on a"

# B refuses (a live connection): A stays recorded, paused; the error says so.
rm -f "$TMP/stop"
"$NBDSH" -u "$(uri_b live)" -c "
import os, time
open('$TMP/held', 'w').close()
while not os.path.exists('$TMP/stop'): time.sleep(0.05)" &
holder=$!
for ((i = 0; i < 100; i++)); do [ -e "$TMP/held" ] && break; sleep 0.1; done
rc=0
"$SHADOWCOPY_CLI" revert --set "$id" -c "$CTL" -c "$CTL_B" --rate 4M \
    --save-current before > "$TMP/set.out" 2> "$TMP/set.err" || rc=$?
[ "$rc" -eq 1 ] || fail "revert --set with b in use: exit $rc: $(cat "$TMP/set.err")"
[ ! -s "$TMP/set.out" ] || fail "revert --set printed on failure: $(cat "$TMP/set.out")"
grep -q "recording the revert failed on $CTL_B: volume in use: 1 live connection" "$TMP/set.err" ||
    fail "the error does not name b: $(cat "$TMP/set.err")"
grep -q "^  $CTL: revert recorded, paused.*; to S1; current state saved as before$" "$TMP/set.err" ||
    fail "the error does not say a's state: $(cat "$TMP/set.err")"
grep -q "^  $CTL_B: failed$" "$TMP/set.err" || fail "b's state: $(cat "$TMP/set.err")"
grep -q "run the same revert --set again" "$TMP/set.err" ||
    fail "the error does not say what to do: $(cat "$TMP/set.err")"
log "refused on b: $(head -1 "$TMP/set.err")"
[ "$(sc revert --status --json | json '[d["state"], d["target"], d["bytes_done"]]' | tr '\n' ' ')" = "paused S1 0 " ] ||
    fail "a is not paused at 0: $(sc revert --status --json)"
[ "$("$SHADOWCOPY_CLI" -c "$CTL_B" revert --status --json | json 'd["state"]')" = none ] ||
    fail "b has a revert"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/a-S1.img" "$TMP/now.img" "a's live while paused"
touch "$TMP/stop"
wait "$holder"

# Again: a is picked up, b recorded, both started.
out=$(timeout 120 "$SHADOWCOPY_CLI" revert --set "$id" -c "$CTL" -c "$CTL_B" \
      --rate 4M --save-current before --wait) || fail "revert --set again: $out"
printf '%s\n' "$out" | grep_all -x "$CTL: reverting to S1; current state saved as before" ||
    fail "revert --set printed: $out"
printf '%s\n' "$out" | grep_all -x "$CTL_B: reverting to S1; current state saved as before" ||
    fail "revert --set printed: $out"
for c in "$CTL" "$CTL_B"; do
    [ "$("$SHADOWCOPY_CLI" -c "$c" revert --status --json | json 'd["state"]')" = none ] ||
        fail "$c: the revert has not ended"
done
nbd_save live "$TMP/now.img"
cmp_files "$TMP/a-S1.img" "$TMP/now.img" "a's live after revert --set"
save_b live "$TMP/now.img"
cmp_files "$TMP/b-S1.img" "$TMP/now.img" "b's live after revert --set"
nbd_save before "$TMP/now.img"
cmp_files "$TMP/a-pre.img" "$TMP/now.img" "a's saved state"
save_b before "$TMP/now.img"
cmp_files "$TMP/b-pre.img" "$TMP/now.img" "b's saved state"
log "both volumes equal their set member"
