#!/bin/bash
# Tests the write-back queue with a real server: a first write after a snapshot is acknowledged while its copy cannot be written, reads see it, a flush and a snapshot creation wait for it, the queue is bounded; a write acknowledged from the queue survives a SIGKILL before its copy is durable (the write-back log) while the snapshot keeps the old data (invariant 1), a log of another boot is dropped, a damaged one stops the open and is kept.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

# The diff area's data writes stall while this file says so
# (cow/fault-file.c): a queued write's copy is then held in flight.
FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
K=65536
make_disk "$TMP/disk" 16M
cp "$TMP/disk" "$TMP/old"
export OLD=$TMP/old

# py EXPORT CODE: nbdsh with a deadline, so that a wait that never ends
# fails the test instead of hanging it.
py () {
    timeout 60 "$NBDSH" -u "$(uri "$1")" -c "import os, sys, time
FAULTS = os.environ['FAULTS']
def wait_done(cookie, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        h.poll(10)
        if h.aio_command_completed(cookie):
            return True
    return False
$2"
}
export FAULTS

# kill9_restart: SIGKILL the server, start it again on the same files.
kill9_restart () {
    local args=("${SERVER_ARGS[@]}")
    kill9_server
    start_server "${args[0]#disk=}" "${args[1]#diff=}" "${args[@]:2}"
}

# queued_then_killed OFFSET BYTE: a 4 KiB write of BYTE at OFFSET (the
# first of its chunk since the snapshot) acknowledged from the queue
# while its copy's record cannot be written, read back; then SIGKILL.
queued_then_killed () {
    echo "journal-write stall" > "$FAULTS"
    py live "
data = bytes([$2]) * 4096
t = time.monotonic()
h.pwrite(data, $1)
if time.monotonic() - t > 5:
    sys.exit('the write waited for its copy: not acknowledged from the queue')
if h.pread(4096, $1) != data:
    sys.exit('a read does not see the queued write')
old = open(os.environ['OLD'], 'rb').read()
chunk = $1 // 65536 * 65536
if h.pread(65536, chunk)[:$1 - chunk] != old[chunk:$1]:
    sys.exit('the rest of the chunk does not read as the origin')
" || fail "queued write at $1"
    kill9_server
    rm -f "$FAULTS"
}

# expect_bytes EXPORT OFFSET BYTE|old WHAT: 4 KiB at OFFSET read as BYTE
# repeated, or as the original disk.
expect_bytes () {
    nbd_py "$1" "
want = open('$OLD', 'rb').read()[$2:$2 + 4096] if '$3' == 'old' else bytes([$3]) * 4096
if h.pread(4096, $2) != want:
    sys.exit('$4: 4 KiB at $2 of $1 do not read as $3')" || fail "$4"
}

# crc32c DATA (python): the CRC the write-back log uses.
CRC32C='
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xffffffff
'

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1

# 1. A write acknowledged from the queue survives a SIGKILL of the server
#    before its copy is durable (the journal write of the commit stalls),
#    as an unflushed write to the file plugin survives in the page cache:
#    its data is in the write-back log (a shared mapping of a file in a
#    tmpfs, here in $SHADOWCOPY_WBLOG_DIR),
#    and the next open writes it, with its copy first, even with
#    write-back now off.  The snapshot keeps the old data (invariant 1).
queued_then_killed $((65536 + 4096)) 0xa5
WBLOG=$(wblog_file)
[ -s "$WBLOG" ] || fail "no write-back log after a SIGKILL"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=off
grep -q "$WBLOG: 1 writes acknowledged before the server stopped" \
    "$SERVER_LOG" || fail "the open does not say it writes the log's write"
[ ! -e "$WBLOG" ] || fail "the log is kept after it was written"
expect_bytes live $((65536 + 4096)) 0xa5 \
    "the queued write acknowledged before a SIGKILL"
expect_bytes live 65536 old "the rest of the chunk of the queued write"
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after a SIGKILL with a queued write"
stop_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on

# 1b. After a reboot (the log names another boot) the log's pages on disk
#     may be stale: it is dropped, as a power cut drops a disk's unflushed
#     cache.  The boot id (bytes 56 to 71 of the header) is changed in
#     place, with the header's CRC (616 to 619).
queued_then_killed $((6 * 65536)) 0x61
python3 -c "$CRC32C"'
import struct, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    h = bytearray(f.read(620))
    h[56:72] = bytes(16)
    h[56] = 1
    h[616:620] = struct.pack("<I", crc32c(bytes(h[:616])))
    f.seek(0)
    f.write(h)
' "$WBLOG" || fail "editing the log's boot id"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
grep -q "written before the machine restarted: its 1 unflushed writes are dropped" \
    "$SERVER_LOG" || fail "the open does not say it drops a log of another boot"
expect_bytes live $((6 * 65536)) old "a write in a log of another boot"
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after a log of another boot"

# 1c. A flipped byte in a queued write's data: the open fails, names the
#     log and keeps it; moved away, the volume opens without the write.
queued_then_killed $((7 * 65536)) 0x71
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 + 100)           # slot 0, the only one used
    b = f.read(1)
    f.seek(4096 + 100)
    f.write(bytes([b[0] ^ 0x10]))
' "$WBLOG" || fail "flipping a byte of the log"
if timeout 60 nbdkit -f -U "$TMP/fail.sock" "$SHADOWCOPY_PLUGIN" \
       disk="$TMP/disk" diff="$TMP/diff" chunk-size=64K write-back=on \
       > "$TMP/fail.out" 2>&1; then
    fail "the server started with a damaged write-back log"
fi
grep -q "$WBLOG holds writes acknowledged .* slot 0 .* data's checksum does not match; it is kept: move it away" \
    "$TMP/fail.out" || fail "unclear error for a damaged log: $(cat "$TMP/fail.out")"
[ -s "$WBLOG" ] || fail "the damaged log was not kept"
mv "$WBLOG" "$TMP/damaged.wblog"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
expect_bytes live $((7 * 65536)) old "a write of a log moved away"
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after a damaged log"

# 2. A flush waits until the queued write is on the origin; after it, a
#    SIGKILL keeps the write, and the snapshot is still the old image.
echo "data-write stall" > "$FAULTS"
py live '
h.pwrite(b"\x5a" * 4096, 2 * 65536)
c = h.aio_flush()
if wait_done(c, 1.0):
    sys.exit("the flush returned while the queued write could not be copied")
os.unlink(FAULTS)
if not wait_done(c, 30):
    sys.exit("the flush did not return once the copy could be written")
' || fail "flush of a queued write"
kill9_restart
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after a flushed queued write and SIGKILL"
nbd_py live '
if h.pread(4096, 2 * 65536) != b"\x5a" * 4096:
    sys.exit("the flushed write is lost after SIGKILL")' ||
    fail "a flushed queued write did not survive SIGKILL"

# 3. A snapshot created after a write was acknowledged holds it: the
#    creation's hold waits for the queue.
echo "data-write stall" > "$FAULTS"
py live 'h.pwrite(b"\x3c" * 4096, 3 * 65536)' || fail "write before create"
sc create s2 > "$TMP/create.out" 2>&1 &
cpid=$!
sleep 1
kill -0 "$cpid" 2>/dev/null ||
    fail "create returned while an acknowledged write was still queued"
rm -f "$FAULTS"
wait "$cpid" || fail "create failed: $(cat "$TMP/create.out")"
nbd_py s2 '
if h.pread(4096, 3 * 65536) != b"\x3c" * 4096:
    sys.exit("snapshot s2 misses a write acknowledged before it")' ||
    fail "snapshot after a queued write"
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after s2"

# 4. Bounded: with the copies stalled, at most SC_WB_MAX_ITEMS (64)
#    writes are acknowledged; the rest copy in their own requests, which
#    stall too, and complete once the copies can be written.
echo "data-write stall" > "$FAULTS"
py live '
cookies = [h.aio_pwrite(bytes([i]) * 4096, (16 + i) * 65536 + 8192)
           for i in range(100)]
end = time.monotonic() + 2
while time.monotonic() < end:
    h.poll(10)
# (a completed command is retired by the call that finds it completed)
left = [c for c in cookies if not h.aio_command_completed(c)]
done = len(cookies) - len(left)
if done > 64:
    sys.exit("%d writes acknowledged with their copies stalled: the queue is not bounded" % done)
if done == 0:
    sys.exit("no write acknowledged from the queue")
os.unlink(FAULTS)
end = time.monotonic() + 30
while left and time.monotonic() < end:
    h.poll(10)
    left = [c for c in left if not h.aio_command_completed(c)]
if left:
    sys.exit("%d writes never completed" % len(left))
for i in range(100):
    if h.pread(4096, (16 + i) * 65536 + 8192) != bytes([i]) * 4096:
        sys.exit("write %d lost" % i)
h.flush()
print("acknowledged with the copies stalled: %d of 100" % done)
' || fail "bounded queue"

stop_server
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_save s1 "$TMP/s1"
cmp_files "$TMP/old" "$TMP/s1" "snapshot s1 after a clean restart"

# 5. A queued write that fails after its acknowledgement fails the next
#    flush (once): the diff area takes no write at all, so the failure
#    cannot be recorded and the write must not overwrite what the
#    snapshots on disk still need (sc_diff_change_check); the origin
#    keeps its data.
nbd_save live "$TMP/before"
echo "write EROFS" > "$FAULTS"
py live 'h.pwrite(b"\x77" * 4096, 200 * 65536)' ||
    fail "a queued write that fails"
flush_fails_once "the flush after a queued write that failed"
nbd_save live "$TMP/after"
cmp_files "$TMP/before" "$TMP/after" "the live disk after a refused queued write"
rm -f "$FAULTS"

# 5b. A failure is reported by the flush that covers the failed write,
#     not by one issued before it: W is acknowledged after F1 was sent,
#     then its copy fails (with the others of its batch); F1 may fail for
#     the earlier writes, but F2, sent after W's acknowledgement, must
#     fail too, or W's loss is never reported (review of the queue).
#     A new diff area: the one above failed.
stop_server
rm -f "$TMP/diff"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create e1
echo "write stall" > "$FAULTS"
py live '
import nbd
def wait(c, s):
    end = time.monotonic() + s
    while time.monotonic() < end:
        h.poll(10)
        if h.aio_command_completed(c): return True
    return False
b0 = h.aio_pwrite(b"\x01" * 4096, 230 * 65536)   # batch 1: stalls
time.sleep(0.5)
w0 = h.aio_pwrite(b"\x02" * 4096, 231 * 65536)
assert wait(w0, 5)
f1 = h.aio_flush()                                # covers b0 and w0
time.sleep(0.2)
w = h.aio_pwrite(b"\x03" * 4096, 232 * 65536)
assert wait(w, 5)
open(FAULTS, "w").write("write EROFS\n")          # the copies now fail
try:
    wait(f1, 30)
except nbd.Error:
    pass
os.unlink(FAULTS)
lost = h.pread(4096, 232 * 65536) != b"\x03" * 4096
try:
    h.flush()
    if lost:
        sys.exit("W was lost and the flush sent after its acknowledgement succeeded")
except nbd.Error as e:
    if not lost:
        sys.exit("the flush after W failed although W is there: %s" % e)
' || fail "the flush that covers a failed queued write"
rm -f "$FAULTS"
stop_server
rm -f "$TMP/diff"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create d1

# 5c. A diff to the live volume waits for queued writes: a write is
#     acknowledged (and read back) before its copy or mark exists, and
#     `diff d1 live` must still list its chunk.
echo "data-write stall" > "$FAULTS"
py live '
c = h.aio_pwrite(b"\xee" * 4096, 5 * 65536)
if not wait_done(c, 10):
    sys.exit("the write was not acknowledged from the queue")
' || fail "a queued write for the diff"
( sleep 2; rm -f "$FAULTS" ) &
lifter=$!
sc diff d1 live > "$TMP/diff-live.out" || fail "diff d1 live"
wait "$lifter"
grep -q "^327680 " "$TMP/diff-live.out" ||
    fail "diff d1 live leaves out the chunk of an acknowledged queued write: $(cat "$TMP/diff-live.out")"

# 6. nbdkit in the background (it forks after the volume is open): the
#    queue's thread must run in the child, or a queued write never
#    completes and the flush hangs.
make_disk "$TMP/disk2" 4M
bsock=$TMP/bg.sock
nbdkit -U "$bsock" --pidfile "$TMP/bg.pid" "$SHADOWCOPY_PLUGIN" \
    disk="$TMP/disk2" diff="$TMP/diff2" chunk-size=64K write-back=on >> "$SERVER_LOG" 2>&1 ||
    fail "nbdkit did not start in the background"
for ((i = 0; i < 100; i++)); do
    [ -s "$TMP/bg.pid" ] && [ -S "$TMP/diff2.sock" ] && break
    sleep 0.1
done
bgpid=$(cat "$TMP/bg.pid")
_SERVER_PIDS+=("$bgpid")
"$SHADOWCOPY_CLI" -c "$TMP/diff2.sock" create b1 > /dev/null ||
    fail "create on the background server"
timeout 30 "$NBDSH" -u "nbd+unix:///live?socket=$bsock" -c '
h.pwrite(b"\x11" * 4096, 65536)
h.flush()
assert h.pread(4096, 65536) == b"\x11" * 4096
' || fail "a queued write on a server in the background did not complete"
kill "$bgpid"
exit 0
