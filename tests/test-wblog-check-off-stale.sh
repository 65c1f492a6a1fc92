#!/bin/bash
# Tests that a write-back log left by a killed server is not written over
# newer data after a session that did not find it ran with
# origin-check=off (review 24).  A server is killed with a write queued in
# its log; the next server looks in another log directory and runs with
# origin-check=off, so it takes no stamp of the origin: it writes the same
# bytes, flushes and stops cleanly.  The server after it, in the first
# directory, found the old log as fresh as before (its date was compared
# with the last stamp, which that session did not renew) and wrote the
# old write over the newer one.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5

OTHER=$TMP/other-wblog
mkdir -m 700 "$OTHER" || hard_error "mkdir $OTHER"
SHADOWCOPY_WBLOG_DIR=$OTHER start_server "$TMP/disk" "$TMP/diff" \
    chunk-size=64K write-back=on origin-check=off
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()" || fail "the newer write"
stop_server

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer flushed write' % got[:4])
" || fail "an old log was replayed over newer data after a session with origin-check=off that did not find it"
nbd_py s1 "
got = h.pread(4096, $OFF)
if got == b'\x5a' * 4096 or got == b'\xa5' * 4096:
    sys.exit('s1 reads a write made after it')
" || fail "s1 after the sessions"
stop_server
