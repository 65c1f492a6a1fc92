# tests/nbd-remote.sh: NBD servers that tests/test-origin-nbd*.sh use as
# the origin (disk=NBD-URI), and a model of the live disk.  Sourced after
# tests/functions.sh, whose cleanup stops every server started here.

# start_remote NAME COMMAND...: run COMMAND (an NBD server listening on
# $TMP/NAME.sock) in the background, logging to $TMP/NAME.log; waits for
# the socket.  REMOTE_PID is its pid.
declare -A REMOTE_PIDS=()
start_remote () {
    local name=$1 i
    shift
    rm -f "$TMP/$name.sock"
    echo "==== $(date +%T.%N) $*" >> "$TMP/$name.log"
    "$@" >> "$TMP/$name.log" 2>&1 &
    REMOTE_PIDS[$name]=$!
    _SERVER_PIDS+=("$!")
    for ((i = 0; i < 100; i++)); do
        [ -S "$TMP/$name.sock" ] && return 0
        kill -0 "${REMOTE_PIDS[$name]}" 2>/dev/null ||
            fail "the remote server $name exited at start: $(tail -5 "$TMP/$name.log")"
        sleep 0.1
    done
    fail "the remote server $name did not listen within 10 s"
}

# stop_remote NAME
stop_remote () {
    local pid=${REMOTE_PIDS[$1]} i
    kill -TERM "$pid" 2>/dev/null || :
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || :
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    unset "REMOTE_PIDS[$1]"
}

# remote_uri NAME [EXPORT]: the URI of an export of the remote NAME.
remote_uri () { echo "nbd+unix:///${2:-}?socket=$TMP/$1.sock"; }

# nbdkit_remote NAME ARGS...: nbdkit (foreground) as the remote NAME.
nbdkit_remote () {
    local name=$1
    shift
    start_remote "$name" nbdkit -f -U "$TMP/$name.sock" "$@"
}

# qsd_remote NAME FILE FORMAT EXPORT [FILE2 FORMAT2 EXPORT2]:
# qemu-storage-daemon serving FILE (raw or qcow2) as EXPORT, writable,
# on $TMP/NAME.sock; and FILE2 as EXPORT2 if given.
qsd_remote () {
    local name=$1 args=() n=0
    shift
    while [ $# -ge 3 ]; do
        args+=(--blockdev "driver=file,filename=$1,node-name=file$n"
               --blockdev "driver=$2,file=file$n,node-name=fmt$n"
               --export "type=nbd,id=exp$n,node-name=fmt$n,name=$3,writable=on")
        shift 3
        n=$((n + 1))
    done
    start_remote "$name" qemu-storage-daemon \
        --nbd-server "addr.type=unix,addr.path=$TMP/$name.sock" "${args[@]}"
}

# The model: $MODEL holds what the live volume must read.
MODEL=$TMP/model

# both_write OFFSET COUNT: random bytes to the live volume and the model.
both_write () {
    head -c "$2" /dev/urandom > "$TMP/.chunk"
    nbd_pwrite_file live "$1" "$TMP/.chunk"
    dd if="$TMP/.chunk" of="$MODEL" bs=64K seek="$1" conv=notrunc \
        status=none oflag=seek_bytes iflag=fullblock
}

# both_zero OFFSET COUNT
both_zero () {
    nbd_zero live "$1" "$2"
    head -c "$2" /dev/zero | dd of="$MODEL" seek="$1" conv=notrunc \
        status=none oflag=seek_bytes bs=64K iflag=fullblock
}

# check_export EXPORT FILE WHAT: the export reads as FILE, byte for byte.
check_export () {
    nbd_save "$1" "$TMP/.read"
    cmp_files "$2" "$TMP/.read" "$3"
}

# expect_eio EXPORT WHAT CODE: the nbdsh CODE on EXPORT must fail with EIO.
expect_eio () {
    local out rc=0
    out=$(timeout 60 "$NBDSH" -u "$(uri "$1")" -c "$3" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$2: not an error (status $rc)"
    printf '%s\n' "$out" | grep_all "Input/output error" ||
        fail "$2: not EIO: $out"
    log "ok, $2: EIO"
}
