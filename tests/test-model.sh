#!/bin/bash
# Tests random live writes/trims/zeroes interleaved with >= 20 snapshot creates and deletes against a Python model, before and after restarts (chunk sizes 4K, default and 1M, 40 live snapshots, 64 MiB requests).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
log "SEED=$SEED (set SEED=$SEED to repeat this run)"

run_model () {
    local label=$1 size=$2 chunk_arg=$3 chunk=$4 seed=$5 rounds=${6:-40} more=${7:-}
    local dir=$TMP/$label
    mkdir -p "$dir"
    log "---- $label: disk $size bytes, ${chunk_arg:-default chunk size}, seed $seed"
    make_disk "$dir/disk" "$size"
    # shellcheck disable=SC2086
    start_server "$dir/disk" "$dir/diff" $chunk_arg
    local model=("$PYTHON" "$tests_srcdir/model.py" --sock "$NBD_SOCK"
                 --ctl "$CTL" --cli "$SHADOWCOPY_CLI" --state "$dir/model"
                 --chunk "$chunk")
    # shellcheck disable=SC2086
    "${model[@]}" --seed "$seed" --rounds "$rounds" $more ||
        fail "$label: model run failed (SEED=$SEED)"
    restart_server
    # Check again, then go on writing and snapshotting after the restart.
    # shellcheck disable=SC2086
    "${model[@]}" --seed $((seed + 1)) --rounds 6 --load $more ||
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
# Requests of nbdkit's maximum size (64 MiB), unaligned, with snapshots.
run_big () {
    local dir=$TMP/big
    mkdir -p "$dir"
    log "---- big: 64 MiB requests on a 72 MiB disk"
    make_disk "$dir/disk" 72M
    start_server "$dir/disk" "$dir/diff"
    nbd_py live '
import nbd, subprocess
M = 1 << 20
cli = [os.environ["E_CLI"], "-c", os.environ["E_CTL"]]
def snap(name):
    subprocess.run(cli + ["create", name], check=True, stdout=subprocess.DEVNULL)
    s = nbd.NBD(); s.set_export_name(name); s.connect_unix(os.environ["E_S"])
    return s
def read_all(x):
    return x.pread(36 * M, 0) + x.pread(36 * M, 36 * M)
def check(what, want, got):
    if want != got:
        i = next(i for i in range(len(want)) if want[i] != got[i])
        sys.exit("%s: first mismatch at offset %d" % (what, i))
model = bytearray(read_all(h))
s1 = snap("big1"); m1 = bytes(model)
data = os.urandom(64 * M)
h.pwrite(data, 4097)                       # one 64 MiB request, unaligned
model[4097:4097 + 64 * M] = data
check("live after a 64 MiB write", model, read_all(h))
check("big1 after a 64 MiB write", m1, read_all(s1))
s2 = snap("big2"); m2 = bytes(model)
h.zero(64 * M, 8 * M - 7)                  # one 64 MiB zero, unaligned
model[8 * M - 7:72 * M - 7] = bytes(64 * M)
check("live after a 64 MiB zero", model, read_all(h))
check("big2 after a 64 MiB zero", m2, read_all(s2))
check("big1 after a 64 MiB zero", m1, read_all(s1))
s3 = snap("big3"); m3 = bytes(model)
h.pwrite(os.urandom(64 * M), 3 * M + 5, nbd.CMD_FLAG_FUA)
check("big3 after a 64 MiB FUA write", m3, read_all(s3))
check("big2 after a 64 MiB FUA write", m2, read_all(s2))
check("big1 after a 64 MiB FUA write", m1, read_all(s1))
' E_CLI="$SHADOWCOPY_CLI" E_CTL="$CTL" E_S="$NBD_SOCK" ||
        fail "big: 64 MiB requests"
    stop_server
    rm -rf "$dir"
}
run_big

# The largest chunk size, with a partial last chunk too.
run_model chunk1m $((8 * 1024 * 1024 + 4608)) chunk-size=1M $((1024 * 1024)) $((SEED + 200))
# Many snapshots alive at once (up to 40, so many epochs per chunk).
run_model many $((4 * 1024 * 1024)) chunk-size=4K 4096 $((SEED + 300)) 50 \
    "--max-alive 40 --delete-prob 0.1 --no-delete-all"
exit 0
