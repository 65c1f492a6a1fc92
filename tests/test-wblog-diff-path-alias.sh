#!/bin/bash
# Tests that the write-back log is found by the disk, however the diff
# area is reached (review 21).  The same diff area reached by two paths
# (a symlink here; a bind mount or a hard link alike):
#   1. served as a/diff, a write acknowledged from the queue, SIGKILL;
#   2. served as b/diff: the acknowledged write must be on the disk; a
#      newer write of the same bytes, flushed, clean stop;
#   3. served as a/diff again (same boot): nothing may write the old
#      queued write over the newer, flushed data.
# (A log beside the diff area, DIFF.wblog, failed both 2 and 3.)
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((2 * 65536 + 4096))
make_disk "$TMP/disk" 4M
mkdir "$TMP/a" "$TMP/b"
ln -s "$TMP/b/diff" "$TMP/a/diff"

# The diff area, made as b/diff.
start_server "$TMP/disk" "$TMP/b/diff" chunk-size=64K write-back=on
sc_create s1
stop_server

# 1.
start_server "$TMP/disk" "$TMP/a/diff" chunk-size=64K write-back=on
wb_queued_then_killed "$OFF" 0xa5

# 2.
start_server "$TMP/disk" "$TMP/b/diff" chunk-size=64K write-back=on
nbd_py live "
if h.pread(4096, $OFF) != b'\xa5' * 4096:
    sys.exit(1)
" || soft_fail "the write acknowledged before the SIGKILL is not on the disk when the diff area is opened by another path"
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()
" || fail "the newer write"
stop_server

# 3.
start_server "$TMP/disk" "$TMP/a/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r...' % got[:4])
" || fail "an old queued write was written over a newer, flushed write ($(grep -o '[0-9]* writes acknowledged before the server stopped uncleanly are written' "$SERVER_LOG" | tail -1))"
stop_server
