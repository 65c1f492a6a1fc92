#!/bin/bash
# Tests concurrent writers on several connections while snapshots are created and read: every snapshot is a point-in-time image and never changes afterwards.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED (set SEED=$SEED to repeat the writers' choices)"

run_concurrency () {
    local label=$1 seconds=$2 chunk_arg=$3 dir=$TMP/$1 name
    mkdir -p "$dir"
    log "---- $label: ${chunk_arg:-default chunk size}, $seconds s"
    make_disk "$dir/disk" 32M
    cp "$dir/disk" "$dir/initial"
    # shellcheck disable=SC2086
    start_server "$dir/disk" "$dir/diff" $chunk_arg
    "$PYTHON" "$tests_srcdir/concurrency.py" --sock "$NBD_SOCK" --ctl "$CTL" \
        --cli "$SHADOWCOPY_CLI" --initial "$dir/initial" --seed "$SEED" \
        --seconds "$seconds" --out "$dir/sums.json" ||
        fail "$label: concurrency check failed (SEED=$SEED)"
    server_alive "after the concurrent run"
    # The snapshots keep their content across a restart.
    restart_server
    "$PYTHON" -c '
import json, sys
for name, sha in json.load(open(sys.argv[1])).items():
    print(name, sha)' "$dir/sums.json" > "$dir/sums.txt"
    while read -r name sum; do
        [ "$(nbd_sha256 "$name")" = "$sum" ] ||
            fail "$label: export '$name' changed across a restart"
    done < "$dir/sums.txt"
    stop_server
    rm -rf "$dir"
}

run_concurrency default 12 ""
run_concurrency chunk4k 6 chunk-size=4K

# Many requesters at once: 16 creates with default names and 16 with
# given names, all at the same time, then as many deletes.  One creation
# runs at a time per volume (others are refused as busy): --wait queues
# them.
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"
pids=()
for i in $(seq 16); do
    sc create --wait > "$TMP/create-d$i" 2> "$TMP/create-d$i.err" & pids+=($!)
    sc create --wait "par$i" > "$TMP/create-n$i" 2> "$TMP/create-n$i.err" & pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] || fail "$bad of 32 concurrent creates failed: $(cat "$TMP"/create-*.err)"
[ "$(cat "$TMP"/create-d* "$TMP"/create-n* | grep -v '^$' | sort -u | wc -l)" -eq 32 ] ||
    fail "32 concurrent creates did not print 32 distinct names"
[ "$(sc_names | wc -l)" -eq 32 ] || fail "32 concurrent creates: list shows $(sc_names | wc -l)"
pids=()
for n in $(sc_names); do
    sc delete "$n" > /dev/null & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] || fail "$bad of 32 concurrent deletes failed"
[ -z "$(sc_names)" ] || fail "snapshots left after 32 concurrent deletes"
stop_server
exit 0
