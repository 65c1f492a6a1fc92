#!/bin/bash
# bench/hold-load.sh: how long snapshot creation holds the live writes
# under a 4k random-write load (fio, nbd engine, queue depth 16), for the
# one-shot CREATE (`create --no-writers`) and for the stepwise protocol
# with a writer (`create --writer /bin/true`: BEGIN, HOLD, COMMIT, RELEASE).
# Prints the engine's hold statistics (INFO: hold-p50-ns, hold-p99-ns).
#
#   bench/hold-load.sh [BUILDDIR] [CREATES] [DISK_MB]
# Never asserted: a measurement, not a test.
set -eu
build=${1:-.}
n=${2:-200}
mb=${3:-512}
plugin=$build/.libs/nbdkit-shadowcopy-plugin.so
cli=$build/tools/shadowcopy
export PATH=/usr/bin:$PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hold-load.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$tmp"' EXIT

head -c $((mb << 20)) /dev/urandom > "$tmp/disk"
run () {
    local what=$1; shift
    rm -f "$tmp/diff" "$tmp/nbd.sock"
    nbdkit -f -U "$tmp/nbd.sock" "$plugin" disk="$tmp/disk" diff="$tmp/diff" \
        > "$tmp/server.log" 2>&1 &
    local srv=$!; pids+=("$srv")
    for ((i = 0; i < 100; i++)); do [ -S "$tmp/diff.sock" ] && break; sleep 0.1; done
    fio --ioengine=nbd --uri="nbd+unix:///?socket=$tmp/nbd.sock" --size=$((mb << 20)) \
        --name=load --rw=randwrite --bs=4k --iodepth=16 --norandommap \
        --randrepeat=0 --time_based --runtime=3600 > "$tmp/fio.log" 2>&1 &
    local fio=$!; pids+=("$fio")
    sleep 2
    for ((k = 0; k < n; k++)); do
        "$cli" -c "$tmp/diff.sock" create "$@" > /dev/null
        # keep the snapshot count bounded
        [ $k -lt 32 ] || "$cli" -c "$tmp/diff.sock" delete --oldest > /dev/null
    done
    kill -INT "$fio"; wait "$fio" || :
    "$cli" -c "$tmp/diff.sock" info --json | python3 -c '
import json, sys
h = json.load(sys.stdin)["holds"]
print("%-32s holds %d  p50 %.3f ms  p99 %.3f ms  max %.3f ms" % (sys.argv[1],
      h["count"], h["p50_ns"] / 1e6, h["p99_ns"] / 1e6, h["max_ns"] / 1e6))' "$what"
    grep -E "write: IOPS" "$tmp/fio.log" | sed 's/^ */    fio load: /'
    kill "$srv"; wait "$srv" || :
}
run "create --no-writers (CREATE)" --no-writers
run "create --writer /bin/true (HOLD)" --writer /bin/true
