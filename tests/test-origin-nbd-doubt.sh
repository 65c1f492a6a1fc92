#!/bin/bash
# Tests that an origin on an NBD server fails closed when the remote is in
# doubt: NBD has no fencing, so a connection lost (or dropped by
# io-timeout) with a write in flight, or with acknowledged writes no
# flush covered yet, leaves the remote's content unknown (it may have
# lost them, or apply them later).  Every later request then fails with
# EIO (a flush too, so no snapshot is taken on it), and a modification is
# never sent again on a new connection.  A remote that comes back after
# an idle loss is checked against the sampled blocks read at the start:
# another content fails every request too, with a clear log line.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires timeout

M=$((1024 * 1024))
SIZE=$((8 * M))
W=$TMP/w
mkdir "$W"

# kill_remote NAME: the remote crashes (SIGKILL).
kill_remote () {
    local pid=${REMOTE_PIDS[$1]}
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    unset "REMOTE_PIDS[$1]"
}

# A remote whose writes are slow while $SLOW exists: the disk behind it
# applies a write late, after the client gave up on it.
cat > "$W/remote.sh" <<'EOS'
#!/bin/bash
case "$1" in
  thread_model) echo parallel ;;
  get_size) stat -c %s "$DISK" ;;
  can_write|can_flush|can_multi_conn) exit 0 ;;
  pread) dd if="$DISK" skip="$4" count="$3" iflag=skip_bytes,count_bytes status=none ;;
  pwrite)
    t=$(mktemp); cat > "$t"
    if [ -e "$SLOW" ]; then sleep 4; fi
    dd if="$t" of="$DISK" seek="$4" oflag=seek_bytes conv=notrunc status=none
    rm -f "$t" ;;
  flush) sync "$DISK" ;;
  *) exit 2 ;;
esac
EOS
chmod +x "$W/remote.sh"
export DISK=$W/slowdisk SLOW=$TMP/slow

# ---- acknowledged, not flushed, then the remote crashes ------------------
# A write-back cache on the remote loses the write at the crash: the
# client's flush must not say it is durable.
head -c "$SIZE" /dev/urandom > "$W/disk"
nbdkit_remote wb --filter=cache file "$W/disk" cache=writeback
start_server "$(remote_uri wb)" "$W/wb.diff" chunk-size=64K retry=10 io-timeout=5
nbd_py live 'h.pwrite(b"A" * 65536, 0); h.flush()'
sc_create s1
nbd_py live 'h.pwrite(b"B" * 65536, 1024 * 1024)'
kill_remote wb
nbdkit_remote wb --filter=cache file "$W/disk" cache=writeback
expect_eio live "a flush after the remote lost an acknowledged write" 'h.flush()'
expect_eio live "a read after that" 'h.pread(4096, 0)'
grep -q "the connection was lost with 1 acknowledged writes not yet flushed: the remote may have lost them or may still apply them later; every request now fails with EIO; check the remote, then restart the server" \
    "$SERVER_LOG" || fail "the doubt is not logged"
stop_server
stop_remote wb

# ---- a write io-timeout gave up on, applied late -------------------------
head -c "$SIZE" /dev/zero | tr '\0' o > "$DISK"
nbdkit_remote slow sh "$W/remote.sh"
start_server "$(remote_uri slow)" "$W/slow.diff" chunk-size=64K retry=10 \
    io-timeout=1 origin-check=off
touch "$SLOW"
expect_eio live "a write the remote does not answer in time" \
    'h.pwrite(b"A" * 65536, 0)'
rm "$SLOW"
grep -q "the connection was lost with a write in flight" "$SERVER_LOG" ||
    fail "the write in flight is not logged"
expect_eio live "a later write (it could be overtaken by the first)" \
    'h.pwrite(b"B" * 65536, 0)'
rc=0
sc create s2 > "$TMP/create.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a snapshot was taken of a remote in doubt"
log "ok, no snapshot of a remote in doubt: $(cat "$TMP/create.out")"
stop_server
stop_remote slow

# ---- a write whose connection is lost is not sent again ------------------
head -c "$SIZE" /dev/zero | tr '\0' o > "$DISK"
nbdkit_remote slow sh "$W/remote.sh"
start_server "$(remote_uri slow)" "$W/slow2.diff" chunk-size=64K retry=10 \
    origin-check=off
touch "$SLOW"
timeout 60 "$NBDSH" -u "$(uri live)" -c 'h.pwrite(b"A" * 65536, 0)' \
    > "$TMP/a.out" 2>&1 & pa=$!
sleep 1
kill_remote slow                # the sh child may still apply A later
rm "$SLOW"
nbdkit_remote slow sh "$W/remote.sh"
rc=0; wait "$pa" || rc=$?
[ "$rc" -ne 0 ] || fail "a write whose connection was lost succeeded (sent again)"
grep -q "Input/output error" "$TMP/a.out" || fail "not EIO: $(cat "$TMP/a.out")"
expect_eio live "a write after a lost one" 'h.pwrite(b"D" * 65536, 0)'
stop_server
stop_remote slow

# ---- the remote comes back with another content ---------------------------
head -c "$SIZE" /dev/urandom > "$W/disk"
head -c "$SIZE" /dev/urandom > "$W/other"
nbdkit_remote mem file "$W/disk"
start_server "$(remote_uri mem)" "$W/mem.diff" chunk-size=64K retry=10 \
    io-timeout=5
nbd_py live 'h.pwrite(os.urandom(65536), 1024 * 1024); h.flush()'
sc_create s1
stop_remote mem
nbdkit_remote mem file "$W/other"       # another disk, same name and size
expect_eio s1 "a snapshot read of a remote with another content" \
    'h.pread(65536, 3 * 1024 * 1024)'
expect_eio live "a live read of it" 'h.pread(4096, 0)'
grep -q "the remote's content changed under us (the block at [0-9]* differs from what it held at the start): another disk, or a remote restarted without its cache; every request now fails with EIO" \
    "$SERVER_LOG" || fail "the content change is not logged"
stop_server
start_server "$(remote_uri mem)" "$W/mem.diff" chunk-size=64K
[ "$(sc_field s1 state)" = invalid ] ||
    fail "s1 is $(sc_field s1 state) at the next start on another disk"
log "ok, s1 at the next start: $(sc_field s1 reason)"
stop_server
stop_remote mem

# ---- an idle loss is reconnected (the same disk) --------------------------
head -c "$SIZE" /dev/urandom > "$W/disk"
nbdkit_remote same file "$W/disk"
start_server "$(remote_uri same)" "$W/same.diff" chunk-size=64K retry=10
nbd_py live 'h.pwrite(b"x" * 65536, 0); h.flush()'
stop_remote same
nbdkit_remote same file "$W/disk"
nbd_py live 'assert h.pread(65536, 0) == b"x" * 65536; h.pwrite(b"y" * 4096, 4 * 1024 * 1024); h.flush()' ||
    fail "no transparent reconnect after an idle loss"
grep -q "connected again" "$SERVER_LOG" || fail "no reconnection logged"
stop_server
stop_remote same

# ---- a remote back without multi-conn -------------------------------------
# The flushes went to one connection of several, covering the writes of
# them all: a server that no longer promises that cannot be trusted with
# the next flush.
head -c "$SIZE" /dev/urandom > "$W/disk"
nbdkit_remote mc file "$W/disk"
start_server "$(remote_uri mc)" "$W/mc.diff" chunk-size=64K retry=10
nbd_py live 'h.pwrite(b"x" * 65536, 0); h.flush()'
stop_remote mc
nbdkit_remote mc --filter=multi-conn file "$W/disk" multi-conn-mode=disable
expect_eio live "a write to a remote back without multi-conn" \
    'h.pwrite(b"y" * 4096, 4 * 1024 * 1024); h.flush()'
grep -q "the server answers again without multi-conn, which the writes acknowledged so far relied on" \
    "$SERVER_LOG" || fail "the lost multi-conn is not logged"
stop_server
stop_remote mc
