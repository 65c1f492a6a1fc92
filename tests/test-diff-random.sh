#!/bin/bash
# Tests that DIFF agrees with the data: random writes, zeroes and trims (also discards on snapshot exports), snapshots, checkpoints, deletes (some keeping a checkpoint), clean and kill -9 restarts (some with a write in flight) on a real server, every reported-unchanged range compared byte for byte and every changed byte found in a reported range (diff-random.py; chunk sizes 64K and 4K).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

# diff-random.py starts and kills its own nbdkit; each one's pid is
# appended to $TMP/*/nbdkit.pids.  Kill any left running, then clean up.
_diff_random_cleanup () {
    local f pid
    for f in "$TMP"/*/nbdkit.pids; do
        [ -f "$f" ] || continue
        while read -r pid; do
            if kill -0 "$pid" 2>/dev/null &&
               grep -q nbdkit "/proc/$pid/cmdline" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null
            fi
        done < "$f"
    done
}
trap 'rc=$?; _diff_random_cleanup; (exit $rc); _cleanup' EXIT

SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED (set SEED=$SEED to repeat the same steps; only the moment of a kill -9 with a write in flight varies)"
STEPS=${DIFF_RANDOM_STEPS:-300}

run () {
    local label=$1 chunk=$2 size=$3 seed=$4 steps=$5
    log "---- $label: chunk-size=$chunk, $size bytes, $steps steps, seed $seed"
    "$PYTHON" "$tests_srcdir/diff-random.py" --plugin "$SHADOWCOPY_PLUGIN" \
        --cli "$SHADOWCOPY_CLI" --dir "$TMP/$label" --seed "$seed" \
        --chunk "$chunk" --size "$size" --steps "$steps" --strict-restart ||
        fail "$label: DIFF disagrees with the data, or the test broke (SEED=$SEED)"
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' \
            "$TMP/$label/server.log"; then
        fail "$label: sanitizer report in the server log"
    fi
    rm -rf "${TMP:?}/$label/disk" "${TMP:?}/$label/diff"
}

# 8 MiB and a partial last chunk (the last extent is clipped to the size).
run chunk64k 65536 $((8 * 1024 * 1024 + 12800)) "$SEED" "$STEPS"
run chunk4k 4096 $((8 * 1024 * 1024 + 2560)) $((SEED + 1)) $((STEPS / 2))
exit 0
