#!/bin/bash
# Tests that a write-back log is not written over newer data after the
# diff area was made again and a session of the NEW diff area, which did
# not find the log, wrote the disk (review 26).
#
# A server is killed with a write queued in its log (directory 1).  The
# diff area is deleted and made again by a server run under another log
# directory (another user, say): it does not find the log, writes the
# same bytes, flushes and stops cleanly; the new diff area records its
# session id.  The server after it, in directory 1, found the old log,
# whose diff-area UUID is the old diff area's, took it for a log made
# through another diff area and wrote it, putting the old write over the
# newer flushed one.  The new diff area has been used since it was made,
# so it cannot tell whether the log came before or after that use: the
# start must fail and keep the log; moved away, the newer data is served.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5
WBLOG=$(wblog_file)

# The diff area made again, by a server that looks in another directory.
rm -f "$TMP/diff"
OTHER=$TMP/other-wblog
mkdir -m 700 "$OTHER" || hard_error "mkdir $OTHER"
SHADOWCOPY_WBLOG_DIR=$OTHER start_server "$TMP/disk" "$TMP/diff" \
    chunk-size=64K write-back=on
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()" || fail "the newer write"
stop_server
[ -e "$WBLOG" ] || hard_error "the old log is gone before the last open"

if try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on; then
    nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer flushed write' % got[:4])
" || fail "an old log was replayed over newer data written through the diff area made again by a session that did not find it ($(grep -o 'write-back log [^:]*: [^(]*' "$SERVER_LOG" | tail -1))"
    stop_server
    exit 0
fi
grep -q "made through another diff area" "$SERVER_LOG" ||
    fail "the refused start does not say why"
[ -e "$WBLOG" ] || fail "the refused start did not keep the log"
rm -f "$WBLOG"                          # moved away: the writes dropped
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer flushed write' % got[:4])
" || fail "the newer write, once the log is moved away"
stop_server
