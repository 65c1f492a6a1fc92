#!/bin/bash
# Tests that a write-back log left by a killed server is not written to
# the disk over newer data after a spell in which its directory could
# not be trusted (review 23).  A server is killed with a write queued in
# its log; the log directory is then group-writable, so the next server
# turns write-back off and does not look for the log, yet opens and
# serves: a newer write of the same bytes is made and flushed, the
# server stops cleanly.  Once the directory is fixed, the next open
# found the old log (same boot, same disk, the disk's state as the last
# server left it) and wrote the old write over the newer one.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
echo "journal-write stall" > "$FAULTS"
timeout 60 "$NBDSH" -u "$(uri live)" -c "
import sys, time
t = time.monotonic()
h.pwrite(b'\xa5' * 4096, $OFF)
if time.monotonic() - t > 5:
    sys.exit('not acknowledged from the queue')
" || fail "the queued write"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"; SERVER_PID=
rm -f "$FAULTS"
[ -s "$(wblog_file)" ] || fail "no write-back log after the SIGKILL"

chmod 770 "$SHADOWCOPY_WBLOG_DIR"
served=
if try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on; then
    served=1
    nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()" || fail "the newer write"
    stop_server
fi
chmod 700 "$SHADOWCOPY_WBLOG_DIR"

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
[ -n "$served" ] || { stop_server; exit 0; }   # (refusing the open is safe)
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer flushed write' % got[:4])
" || fail "an old log was replayed over newer data after the log directory was untrusted for an open that served"
stop_server
