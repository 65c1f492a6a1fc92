#!/bin/bash
# Tests crash safety with a real server: nbdkit is SIGKILLed at random moments under concurrent writers and snapshot creates/deletes; after each restart every valid snapshot equals its model and flushed live writes are there (kill9.py).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED (set SEED=$SEED to repeat the same choices; thread timing varies)"
# Cycles per group; two groups (chunk sizes 4K and 64K), 24 cycles in all.
CYCLES=${KILL9_CYCLES:-12}
[ "$CYCLES" -ge 1 ] || hard_error "KILL9_CYCLES=$CYCLES"

log "(bash reports each nbdkit this test SIGKILLs as 'Killed': expected)"
STATS=()
T0=$(date +%s)

# kill9_group LABEL CHUNK SEED: a diff area of chunk size CHUNK, CYCLES
# cycles of workload + SIGKILL + restart + verification.
kill9_group () {
    local label=$1 chunk=$2 seed=$3 dir=$TMP/$1 c rc pid
    mkdir -p "$dir/state"
    log "---- $label: 16 MiB disk, chunk-size=$chunk, $CYCLES cycles, seed $seed"
    make_disk "$dir/disk" 16M
    start_server "$dir/disk" "$dir/diff" "chunk-size=$chunk"
    local py=("$PYTHON" "$tests_srcdir/kill9.py" --sock "$NBD_SOCK" --ctl "$CTL"
              --cli "$SHADOWCOPY_CLI" --state "$dir/state"
              --stats "$dir/stats.json")
    local first=--init
    for ((c = 1; c <= CYCLES; c++)); do
        pid=$SERVER_PID
        "${py[@]}" --seed $((seed * 1000 + c)) --cycle "$c" --pid "$pid" $first ||
            fail "$label: cycle $c failed (SEED=$SEED)"
        first=
        rc=0; wait "$pid" || rc=$?
        _forget_pid "$pid"
        SERVER_PID=
        echo "==== $(date +%T.%N) nbdkit $pid exited with status $rc (cycle $c)" \
            >> "$SERVER_LOG"
        [ "$rc" -eq 137 ] ||
            fail "$label: cycle $c: nbdkit ended with status $rc, not by the SIGKILL (SEED=$SEED)"
        if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
            fail "$label: cycle $c: sanitizer report in the server log"
        fi
        # Recovery: the server must start on the files as the kill left them.
        try_start_server "$dir/disk" "$dir/diff" "chunk-size=$chunk" ||
            fail "$label: cycle $c: nbdkit did not start after the SIGKILL (recovery failed, SEED=$SEED)"
    done
    # Verify the last kill, then again after a clean stop and restart.
    "${py[@]}" --seed $((seed * 1000)) --cycle $((CYCLES + 1)) --no-run ||
        fail "$label: check after the last SIGKILL failed (SEED=$SEED)"
    restart_server
    "${py[@]}" --seed $((seed * 1000)) --cycle $((CYCLES + 2)) --no-run ||
        fail "$label: check after a clean restart failed (SEED=$SEED)"
    stop_server
    STATS+=("$dir/stats.json")
}

kill9_group chunk4k 4K "$SEED"
kill9_group chunk64k 64K $((SEED + 1))

"$PYTHON" - "$SEED" $(( $(date +%s) - T0 )) $((2 * CYCLES)) "${STATS[@]}" <<'EOF'
import json, sys
seed, secs, want, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
t = {}
for f in files:
    for k, v in json.load(open(f)).items():
        t[k] = t.get(k, 0) + v
print("kill9: %d cycles, %d snapshots verified, %d live blocks verified "
      "(seed %s, %s s; %d writes, %d flushes, %d FUA, %d zeroes; %d creates, "
      "%d deletes returned; killed during %d creates, %d deletes; %d in doubt "
      "found after restart, %d of them invalid)"
      % (t["cycles"], t["snapshots_verified"], t["live_blocks_verified"], seed,
         secs, t["writes"], t["flushes"], t["fua"], t["zeroes"], t["creates"],
         t["deletes"], t["creates_in_doubt"], t["deletes_in_doubt"],
         t["in_doubt_found"], t["in_doubt_invalid"]))
if t["cycles"] < want or t["snapshots_verified"] == 0 or t["live_blocks_verified"] == 0 \
   or t["writes"] < 100:
    sys.exit("FAIL: kill9: too little happened to test anything")
EOF
exit 0
