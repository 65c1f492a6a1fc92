#!/bin/bash
# Tests `shadowcopy revert` with a real nbdkit: the live export reads as the target at once and at the end, while later snapshots, the checkpoint and the saved state keep their content; writes during the background copy land on the target's content (a model); reverting to the saved state gives back the pre-revert disk; bad inputs and a second revert are refused, as is a snapshot while one runs; a live connection refuses it and --force revokes it; kill -9 at random points of a slow revert, 10 cycles, the live export equal to the target after each restart and at the end; revert --rate changes a running revert's rate, durably (it survives a kill -9).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy timeout

K=1024
M=$((1024 * K))
D=$TMP/diff

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create A
nbd_save A "$TMP/A.img"
nbd_write_random live 0 $((2 * M))
sc_create B
nbd_save B "$TMP/B.img"
sc checkpoint K > /dev/null || fail "checkpoint K"
nbd_write_random live $((4 * M)) $M
nbd_zero live $((6 * M)) $((512 * K))
nbd_save live "$TMP/pre.img"

# Bad inputs: nothing changes.
expect_cli_error "unknown snapshot" sc revert nope
expect_cli_error "invalid name" sc revert .bad
expect_cli_error "a checkpoint" sc revert K
expect_cli_error "saved name taken" sc revert A --save-current B
nbd_save live "$TMP/now.img"
cmp_files "$TMP/pre.img" "$TMP/now.img" "live after refused reverts"

# The dry run says what it would write.
out=$(sc revert A --dry-run) || fail "dry run: $out"
printf '%s\n' "$out" | grep_all "bytes to write: $((3 * M + M / 2))" ||
    fail "dry run: $out"

# Start slowly: the live export is A at once.
sc revert A --save-current saved --rate 1M > /dev/null || fail "revert A"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/A.img" "$TMP/now.img" "live right after the revert"
expect_cli_error "a second revert" sc revert B
expect_cli_error "create during a revert" sc create C
sc revert --status | grep_all "revert: running" || fail "status: $(sc revert --status)"

# info and the JSON status show it: target, saved, bytes, rate, ETA.
out=$(sc info) || fail "info: $out"
for l in "revert: running" "target: A" "saved current state: saved" \
         "rate: $M bytes/s"; do
    printf '%s\n' "$out" | grep_all -x "$l" || fail "info lacks '$l': $out"
done
printf '%s\n' "$out" | grep_all "^bytes done: [0-9]* of $((3 * M + M / 2))$" ||
    fail "info bytes: $out"
printf '%s\n' "$out" | grep_all "^eta: [0-9]* s$" || fail "info eta: $out"
out=$(sc info --json) || fail "info --json: $out"
[ "$(printf '%s' "$out" | json '[d["revert"][k] for k in ("state", "target", "saved", "bytes_todo", "rate")]' | tr '\n' ' ')" = \
  "running A saved $((3 * M + M / 2)) $M " ] || fail "info --json: $out"
out=$(sc revert --status --json) || fail "revert --status --json: $out"
[ "$(printf '%s' "$out" | json 'd["bytes_done"] <= d["bytes_todo"] and d["eta_s"] >= 0 and d["target_valid"]')" = true ] ||
    fail "revert --status --json: $out"

# Writes during the background copy, against a model.
cp "$TMP/A.img" "$TMP/model.img"
head -c $((100 * K)) /dev/urandom > "$TMP/w1"
nbd_pwrite_file live $((4 * M + 3000)) "$TMP/w1"
dd if="$TMP/w1" of="$TMP/model.img" bs=1 seek=$((4 * M + 3000)) conv=notrunc status=none
nbd_zero live $((1 * M + 4096)) 8192
dd if=/dev/zero of="$TMP/model.img" bs=1 seek=$((1 * M + 4096)) count=8192 conv=notrunc status=none
nbd_save live "$TMP/now.img"
cmp_files "$TMP/model.img" "$TMP/now.img" "live with writes during the copy"

# Unbounded now (revert --rate on the running revert), to the end.
sc revert --rate 0 | grep_all -x "rate: unbounded" || fail "revert --rate 0: $(sc revert --status)"
"$SHADOWCOPY_CLI" -c "$CTL" revert --rate 0 --force > /dev/null 2>&1 && fail "revert --rate with --force accepted"
timeout 120 "$SHADOWCOPY_CLI" -c "$CTL" revert --status --wait > /dev/null ||
    fail "revert --status --wait"
sc revert --status | grep_all "revert: none" || fail "not ended: $(sc revert --status)"
sc info --json | json '"revert" not in d' | grep_all -x true ||
    fail "info --json shows an ended revert: $(sc info --json)"
[ "$(sc revert --status --json | json 'd["state"]')" = none ] ||
    fail "revert --status --json after the end"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/model.img" "$TMP/now.img" "live at the end"
for s in A B saved; do
    nbd_save $s "$TMP/now.img"
    want=$TMP/$s.img
    [ $s = saved ] && want=$TMP/pre.img
    cmp_files "$want" "$TMP/now.img" "snapshot $s after the revert"
done
sc list | grep_all '^K\b\|K ' || fail "checkpoint K is gone: $(sc list)"

# Undo: revert to the saved state.
sc revert saved --no-save-current --rate 0 --wait > /dev/null || fail "revert saved"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/pre.img" "$TMP/now.img" "live after reverting to the saved state"

# A live connection refuses a revert; --force revokes it.
"$NBDSH" -u "$(uri live)" -c "
import time
h.pread(4096, 0)
open('$TMP/ready', 'w').close()
time.sleep(3)
try:
    h.pread(4096, 0)
    print('read ok')
except Exception as e:
    print('read failed')
" > "$TMP/conn.out" 2>&1 &
conn=$!
for ((i = 0; i < 100; i++)); do [ -e "$TMP/ready" ] && break; sleep 0.05; done
expect_cli_error "in use" sc revert B --no-save-current
printf '%s\n' "$CLI_ERR" | grep_all "volume in use: 1 live connection" ||
    fail "in use: $CLI_ERR"
sc revert B --no-save-current --force --rate 0 --wait > /dev/null || fail "revert --force"
wait $conn || :
grep -q "read failed" "$TMP/conn.out" || fail "revoked connection: $(cat "$TMP/conn.out")"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/B.img" "$TMP/now.img" "live after the forced revert"

# kill -9 at random points of a slow revert, 10 cycles.
sc revert A --no-save-current --rate 2M > /dev/null || fail "slow revert"
for ((cycle = 0; cycle < 10; cycle++)); do
    sleep 0.$((RANDOM % 5 + 1))
    args=("${SERVER_ARGS[@]}")
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || :
    _forget_pid "$SERVER_PID"
    SERVER_PID=
    start_server "${args[0]#disk=}" "${args[1]#diff=}" "${args[@]:2}"
    nbd_save live "$TMP/now.img"
    cmp_files "$TMP/A.img" "$TMP/now.img" "live after kill -9 cycle $cycle"
done
timeout 120 "$SHADOWCOPY_CLI" -c "$CTL" revert --status --wait > /dev/null ||
    fail "revert --wait after the kills"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/A.img" "$TMP/now.img" "live at the end of the killed revert"

# A new rate is durable: it survives a kill -9.
sc revert B --no-save-current --rate 64K > /dev/null || fail "slow revert to B"
sc revert --rate 3M > /dev/null || fail "revert --rate 3M"
args=("${SERVER_ARGS[@]}")
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=
start_server "${args[0]#disk=}" "${args[1]#diff=}" "${args[@]:2}"
sc revert --status | grep_all -x "rate: $((3 * M)) bytes/s" ||
    fail "the rate after kill -9: $(sc revert --status)"
sc revert --rate 0 > /dev/null || fail "revert --rate 0"
timeout 120 "$SHADOWCOPY_CLI" -c "$CTL" revert --status --wait > /dev/null ||
    fail "revert --wait after the new rate"
nbd_save live "$TMP/now.img"
cmp_files "$TMP/B.img" "$TMP/now.img" "live at the end of the revert to B"
stop_server
