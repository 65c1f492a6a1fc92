#!/bin/bash
# Review 28: a write-back log made through diff area A is written through
# a new diff area C once A has been renamed (A is still there, at another
# path), so the queued write makes no copy for A's snapshot s1; A, stopped
# uncleanly after writing the disk, does not check the disk at its next
# start, and s1 then reads the write made after it.
#
# The same happens when A's filesystem is not mounted at the moment
# (ENOENT at its path), or when its path was longer than 511 bytes (the
# log records ""): judge_foreign takes "not at the recorded path" for
# "no longer there".
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh

export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

start_server "$TMP/disk" "$TMP/A" chunk-size=64K write-back=on
nbd_py live "
h.pwrite(b'\x11' * 4096, 5 * 65536)
h.flush()" || fail "the first write"    # A's stamp: written
sc_create s1
dd if="$TMP/disk" of="$TMP/s1-at-off" bs=4096 skip=$((OFF / 4096)) count=1 \
    status=none || hard_error "dd"
wb_queued_then_killed "$OFF" 0xa5
WBLOG=$(wblog_file)

# A is renamed (or its directory moved, or its filesystem not mounted
# right now): it is still the disk's diff area, with its snapshot s1.
mkdir "$TMP/moved" || hard_error "mkdir"
mv "$TMP/A" "$TMP/moved/A" || hard_error "mv"

if try_start_server "$TMP/disk" "$TMP/C" chunk-size=64K write-back=on; then
    stop_server
    log "the start through C wrote A's log: $(grep -o 'write-back log.*' "$SERVER_LOG" | tail -1)"
fi

start_server "$TMP/disk" "$TMP/moved/A" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\xa5' * 4096:
    sys.exit('reads %r..., not the acknowledged write' % got[:4])
" || fail "the queued write is not on the disk"
sc list >&2 || :
nbd_py s1 "
want = open(os.environ['E_F'], 'rb').read()
got = h.pread(4096, $OFF)
if got != want:
    sys.exit('s1 reads %r..., not the data it was taken of' % got[:4])
" E_F="$TMP/s1-at-off" ||
    fail "snapshot s1 of the moved diff area A is served with a write made after it"
stop_server
