#!/bin/bash
# Tests that a write acknowledged from the write-back queue survives an
# open that is killed while it writes the log's queued writes to the
# disk (review 24).  A server is killed with a write queued in its log.
# The next start finds the log, but the disk (an NBD export) is slow to
# take writes: the start hangs in the replay and is killed (as an
# administrator, a service manager's stop timeout or the OOM killer
# does; any crash there is the same).  That open had already stored its stamp
# of the disk in the diff area, later than the log was made, and neither
# finished the log nor dated it again.  The start after that, the disk
# fast again, took the log for one that no session had found and
# dropped the acknowledged write.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires nbdsh

FAULTS=$TMP/faults
OFF=$((65536 + 4096))
truncate -s 4M "$TMP/img"
nbdkit_remote r file "$TMP/img"
U=$(remote_uri r)

export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
start_server "$U" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5

# The disk's writes now take a minute: the start is killed in its replay.
stop_remote r
nbdkit_remote r --filter=delay file "$TMP/img" wdelay=60
if SERVER_START_TIMEOUT=5 try_start_server "$U" "$TMP/diff" chunk-size=64K \
        write-back=on; then
    fail "the start got ready although the disk's writes take a minute"
fi
grep_all 'are written to the disk' "$SERVER_LOG" ||
    fail "the killed start did not reach the log's replay"

stop_remote r
nbdkit_remote r file "$TMP/img"
start_server "$U" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\xa5' * 4096:
    sys.exit('reads %r...' % got[:4])
" || soft_fail "a write acknowledged before the SIGKILL was dropped after a start that was killed while writing the log's queued writes"
stop_server
