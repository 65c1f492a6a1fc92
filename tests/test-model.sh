#!/bin/bash
# Tests random live writes/trims/zeroes interleaved with >= 20 snapshot creates and deletes against a Python model, before and after restarts (chunk-size=4K and the default).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED (set SEED=$SEED to repeat this run)"

run_model () {
    local label=$1 size=$2 chunk_arg=$3 chunk=$4 seed=$5
    local dir=$TMP/$label
    mkdir -p "$dir"
    log "---- $label: disk $size bytes, ${chunk_arg:-default chunk size}, seed $seed"
    make_disk "$dir/disk" "$size"
    # shellcheck disable=SC2086
    start_server "$dir/disk" "$dir/diff" $chunk_arg
    local model=("$PYTHON" "$tests_srcdir/model.py" --sock "$NBD_SOCK"
                 --ctl "$CTL" --cli "$SHADOWCOPY_CLI" --state "$dir/model"
                 --chunk "$chunk")
    "${model[@]}" --seed "$seed" --rounds 24 ||
        fail "$label: model run failed (SEED=$SEED)"
    restart_server
    # Check again, then go on writing and snapshotting after the restart.
    "${model[@]}" --seed $((seed + 1)) --rounds 6 --load ||
        fail "$label: model check or run after restart failed (SEED=$SEED)"
    restart_server
    "${model[@]}" --seed $((seed + 2)) --load --verify-only ||
        fail "$label: model check after second restart failed (SEED=$SEED)"
    stop_server
    # The live volume is the origin file.
    cmp_files "$dir/model/live.bin" "$dir/disk" "$label: origin file vs model"
    rm -rf "$dir"
}

run_model chunk4k $((16 * 1024 * 1024)) chunk-size=4K 4096 "$SEED"
# The default chunk size, and a disk that is not a whole number of chunks
# (but still of 512-byte sectors).
run_model default $((24 * 1024 * 1024 + 8704)) "" 65536 $((SEED + 100))
exit 0
