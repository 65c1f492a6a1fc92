#!/bin/bash
# Tests an origin on an NBD server that fails, is slow or goes away, with
# nbdkit's error and delay filters in front of it: a failed remote write
# or read reaches the client as an error; a failed read of old data during
# copy-on-write invalidates the snapshots that needed it (never served
# wrong); a snapshot read whose origin part fails is an error; a request
# the remote does not answer within io-timeout fails with EIO in time, and
# the next one goes through a new connection; a remote restarted under a
# running server is reconnected, one that comes back with another size
# fails every request with a clear log line; an unreachable remote at
# start fails clearly after retry=; and snapshots stay exact under remote
# latency with concurrent writers.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires nbdcopy timeout

M=$((1024 * 1024))
SIZE=$((8 * M))
W=$TMP/w
mkdir "$W"

# ---- errors: the error filter, switched on by files ------------------
head -c "$SIZE" /dev/urandom > "$W/disk"
cp "$W/disk" "$MODEL"
nbdkit_remote err --filter=error file "$W/disk" error=EIO \
    error-pread-rate=100% error-pread-file="$TMP/pread-fails" \
    error-pwrite-rate=100% error-pwrite-file="$TMP/pwrite-fails"
start_server "$(remote_uri err)" "$W/err.diff" chunk-size=64K
both_write 0 $M
sc_create s1
cp "$MODEL" "$TMP/exp-s1"

# A remote write error is the client's error (the write's, or with the
# write queued, the next flush's); the copy made for s1 first keeps s1
# exact.
touch "$TMP/pwrite-fails"
expect_eio live "a failed remote write" 'h.pwrite(b"w" * 65536, 2 * 1024 * 1024); h.flush()'
rm "$TMP/pwrite-fails"
[ "$(sc_field s1 state)" = valid ] || fail "s1 invalid after a failed remote write"
check_export s1 "$TMP/exp-s1" "s1 after a failed remote write"
# What the failed write left on the remote is unknown: read it back.
nbd_save live "$MODEL"

# A remote read error: a live read fails, a read of s1 where it shares the
# origin fails (never wrong data), and a write whose old data cannot be
# read invalidates s1 and goes ahead.
touch "$TMP/pread-fails"
expect_eio live "a failed remote read" 'h.pread(4096, 0)'
expect_eio s1 "a snapshot read of the failing remote" 'h.pread(65536, 5 * 1024 * 1024)'
nbd_py live 'h.pwrite(b"n" * 65536, 6 * 1024 * 1024); h.flush()' ||
    fail "the live write failed with its copy-on-write read"
rm "$TMP/pread-fails"
[ "$(sc_field s1 state)" = invalid ] ||
    fail "s1 is $(sc_field s1 state) after its old data could not be read"
case "$(sc_field s1 reason)" in "copy-on-write read of the origin failed"*) ;; *)
    fail "s1's reason: $(sc_field s1 reason)" ;; esac
if nbd_py s1 'h.pread(4096, 0)' > /dev/null 2>&1; then
    fail "s1 was served after its old data could not be read"
fi
dd if=<(head -c 65536 /dev/zero | tr '\0' n) of="$MODEL" bs=64K \
    seek=$((6 * M)) oflag=seek_bytes conv=notrunc status=none
check_export live "$MODEL" "live after the remote errors"
log "ok, a failed copy-on-write read invalidated s1 ($(sc_field s1 reason))"
stop_server

# ---- the remote restarted under a running server --------------------
start_server "$(remote_uri err)" "$W/err.diff" chunk-size=64K retry=10
sc_create s2
cp "$MODEL" "$TMP/exp-s2"
stop_remote err
nbdkit_remote err file "$W/disk"
both_write $((3 * M)) $M
check_export s2 "$TMP/exp-s2" "s2 after the remote restarted"
check_export live "$MODEL" "live after the remote restarted"
grep -q "connected again" "$SERVER_LOG" || fail "no reconnection logged"
log "ok, a remote restarted under the server is reconnected"

# Back with another size: every request fails, with a clear log line.
# (Flushed first: a loss with unflushed writes fails closed by itself.)
nbd_py live 'h.flush()' || fail "a flush after the reconnection"
stop_remote err
truncate -s $((SIZE + M)) "$W/disk"
nbdkit_remote err file "$W/disk"
expect_eio live "a remote back with another size" 'h.pread(4096, 0)'
truncate -s "$SIZE" "$W/disk"
expect_eio live "still, once it is back at its size" 'h.pread(4096, 0)'
grep -q "is now $((SIZE + M)) bytes, not $SIZE: it is not the disk the snapshots belong to" \
    "$SERVER_LOG" || fail "the size change is not logged"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || :
_forget_pid "$SERVER_PID"
SERVER_PID=
stop_remote err

# ---- a remote that does not answer: io-timeout ------------------------
nbdkit_remote slow --filter=delay memory "$SIZE" delay-read=60
start_server "$(remote_uri slow)" "$W/slow.diff" io-timeout=2 \
    origin-check=off retry=5
# (flushed: a connection dropped with an unflushed write fails the origin
# closed, tests/test-origin-nbd-doubt.sh; a read alone is retried)
nbd_py live 'h.pwrite(b"a" * 65536, 0); h.flush()' || fail "a write to the slow remote"
t0=$(date +%s)
expect_eio live "a read the remote does not answer" 'h.pread(4096, 0)'
t=$(( $(date +%s) - t0 ))
[ "$t" -le 10 ] || fail "the unanswered read took $t s with io-timeout=2"
grep -q "a request was not answered within 2000 ms" "$SERVER_LOG" ||
    fail "the timeout is not logged"
nbd_py live 'h.pwrite(b"b" * 65536, 65536); h.flush()' ||
    fail "a write after the timeout (a new connection) failed"
grep -q "connected again" "$SERVER_LOG" || fail "no new connection after the timeout"
log "ok, an unanswered read failed after ${t} s and the next write went through"
t0=$(date +%s)
stop_server
log "stopped in $(( $(date +%s) - t0 )) s"
stop_remote slow

# ---- waiting costs no CPU ------------------------------------------------
# Four reads on one connection to a remote that answers after 2 s: one
# request polls the socket, the others sleep (they spun on a condition
# variable whose deadlines were on the wrong clock, once).
nbdkit_remote lag --filter=delay memory "$SIZE" delay-read=2
start_server "$(remote_uri lag)" "$W/lag.diff" origin-check=off \
    origin-connections=1
cpu () { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
c0=$(cpu)
pids=()
for p in 0 1 2 3; do
    nbd_py live "h.pread(4096, $p * 65536)" > /dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a read of the slow remote failed"; done
used=$(( $(cpu) - c0 ))
[ "$used" -le 50 ] ||
    fail "the server used $used ticks of CPU while its requests waited ~2 s"
log "ok, 4 requests waiting 2 s on one connection cost $used ticks of CPU"
stop_server
stop_remote lag

# ---- an unreachable remote at start ---------------------------------
t0=$(date +%s)
rc=0
timeout 60 nbdkit -U "$TMP/none.sock" --run 'exit 0' "$SHADOWCOPY_PLUGIN" \
    "disk=$(remote_uri nobody)" "diff=$W/none.diff" retry=2 \
    > "$TMP/none.out" 2>&1 || rc=$?
t=$(( $(date +%s) - t0 ))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "start on an unreachable remote: status $rc"
grep -q "cannot connect to the NBD server (retried for 2 s; retry= sets how long)" \
    "$TMP/none.out" || fail "the failure does not say so: $(cat "$TMP/none.out")"
[ "$t" -ge 2 ] && [ "$t" -le 10 ] || fail "gave up after $t s with retry=2"
[ ! -e "$W/none.diff" ] || fail "a diff area was made for an unreachable remote"
log "ok, unreachable: $(cat "$TMP/none.out") (after $t s)"

# ---- latency: snapshots exact with concurrent writers -------------------
head -c "$SIZE" /dev/urandom > "$W/lat"
cp "$W/lat" "$MODEL"
nbdkit_remote lat --filter=delay file "$W/lat" delay-read=5ms delay-write=5ms
start_server "$(remote_uri lat)" "$W/lat.diff" chunk-size=64K
sc_create s1
cp "$MODEL" "$TMP/exp-s1"
pids=()
for p in 0 1 2 3 4 5 6 7; do
    head -c $((384 * 1024)) /dev/urandom > "$TMP/par$p"
    nbd_pwrite_file live $((p * M + p * 4096)) "$TMP/par$p" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent write failed"; done
for p in 0 1 2 3 4 5 6 7; do
    dd if="$TMP/par$p" of="$MODEL" bs=64K seek=$((p * M + p * 4096)) \
        conv=notrunc oflag=seek_bytes status=none
done
check_export s1 "$TMP/exp-s1" "s1 under latency"
check_export live "$MODEL" "live under latency"
stop_server
stop_remote lat

# ---- what the remote lacks, done otherwise; what it has, passed on -------
# A sparse remote with base:allocation: the live map shows its holes.
nbdkit_remote sparse memory "$SIZE"
start_server "$(remote_uri sparse)" "$W/sparse.diff" chunk-size=64K
nbd_py live 'h.pwrite(b"d" * 65536, 0)'
nbdinfo --map "$(uri live)" > "$TMP/map"
grep -q "hole,zero" "$TMP/map" || fail "the remote's holes are not in the map: $(cat "$TMP/map")"
stop_server
stop_remote sparse
# No FUA (the fua filter's default), no write-zeroes, no base:allocation:
# FUA writes, zeroes and trims still do what they say, and the map is all
# data.
head -c "$SIZE" /dev/urandom > "$MODEL"
nbdkit_remote plain --filter=fua --filter=nozero --filter=noextents \
    memory "$SIZE" zeromode=none
nbdcopy "$MODEL" "$(remote_uri plain)"
start_server "$(remote_uri plain)" "$W/plain.diff" chunk-size=64K
sc_create s1
cp "$MODEL" "$TMP/exp-s1"
nbd_py live 'h.pwrite(b"f" * 70000, 12345, nbd.CMD_FLAG_FUA)' ||
    fail "a FUA write to a remote without FUA"
dd if=<(head -c 70000 /dev/zero | tr '\0' f) of="$MODEL" bs=64K seek=12345 \
    oflag=seek_bytes conv=notrunc status=none
both_zero $((2 * M)) $((300 * 1024))
nbd_py live 'h.zero(65536, 4 * 1024 * 1024, nbd.CMD_FLAG_FUA)'
dd if=/dev/zero of="$MODEL" bs=64K seek=$((4 * M)) oflag=seek_bytes \
    count=1 conv=notrunc status=none
nbd_trim live $((5 * M)) 65536
check_export s1 "$TMP/exp-s1" "s1 on a remote without FUA, zero or extents"
nbd_save live "$TMP/live"
cmp -n $((5 * M)) "$MODEL" "$TMP/live" > /dev/null ||
    fail "live on a remote without FUA, zero or extents: $(cmp "$MODEL" "$TMP/live")"
nbdinfo --map "$(uri live)" > "$TMP/map"
[ "$(awk '{print $3}' "$TMP/map" | sort -u)" = 0 ] ||
    fail "a remote without base:allocation is not all data: $(cat "$TMP/map")"
stop_server
stop_remote plain
log "ok, a remote without FUA, write-zeroes or base:allocation"

# ---- bad values ------------------------------------------------------
for bad in retry=-1 retry=x io-timeout=1e9 origin-check=maybe \
           origin-connections=0 origin-connections=17; do
    rc=0
    nbdkit -U "$TMP/bad.sock" --run 'exit 0' "$SHADOWCOPY_PLUGIN" \
        "disk=$(remote_uri nobody)" "diff=$W/bad.diff" "$bad" \
        > "$TMP/bad.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "$bad was accepted"
    grep -qF "${bad%%=*}=${bad#*=}: must be" "$TMP/bad.out" ||
        fail "$bad: no clear error: $(cat "$TMP/bad.out")"
done
log "ok, bad values refused: $(cat "$TMP/bad.out")"

# ---- origin-check=off, then verify ----------------------------------------
# A session with origin-check=off that wrote the disk records nothing at
# its stop: the next checked start cannot compare, and says why without
# blaming a failed flush or read that did not happen.
nbdkit_remote off memory "$SIZE"
start_server "$(remote_uri off)" "$W/off.diff" chunk-size=64K
nbd_py live 'h.pwrite(b"o" * 65536, 0); h.flush()'
sc_create s1
stop_server
start_server "$(remote_uri off)" "$W/off.diff" chunk-size=64K origin-check=off
nbd_py live 'h.pwrite(b"x" * 65536, 0)'
stop_server
start_server "$(remote_uri off)" "$W/off.diff" chunk-size=64K
grep "was not recorded at the last stop" "$SERVER_LOG" | grep_all "that server ran with origin-check=off" ||
    fail "the start after origin-check=off does not say why it cannot compare: $(grep -E 'could not|not recorded' "$SERVER_LOG")"
stop_server
stop_remote off
log "ok, the start after an origin-check=off session says why it does not compare"
