#!/bin/bash
# Tests the write-back log of a disk that is an NBD export reached by two
# spellings of its URI (review 22): the same socket through another path
# (as nbd://HOST/x and nbd://HOST:10809/x, or a host name and its
# address, are the same export).  The diff area takes either (it
# compares the export's name).  A write is queued and acknowledged, the
# server is killed; the next start gives the other spelling.
# 1. An export is known by its URI as given (docs/design.md, "The
#    write-back log"): the start does not find the log, and the
#    acknowledged write is missing.  The test only logs it.
# 2. Newer data is written over it and the server stops cleanly; a start
#    with the first spelling must not write the old queued write over
#    the newer data (the log is older than that session's stamp).  (The
#    log left behind was once found then, and written.)
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/nbd-remote.sh"
requires nbdsh

FAULTS=$TMP/faults
OFF=$((65536 + 4096))
nbdkit_remote r memory 4M
U1=$(remote_uri r)
mkdir "$TMP/d"
U2="nbd+unix:///?socket=$TMP/d/../r.sock"

export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
start_server "$U1" "$TMP/diff" chunk-size=64K write-back=on
sc_create s1
wb_queued_then_killed "$OFF" 0xa5

# 1. The same export, another spelling.
start_server "$U2" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\xa5' * 4096:
    sys.exit('reads %r...' % got[:4])
" || log "as documented, a write acknowledged before the SIGKILL is not found when the export's URI is spelled another way"
# Newer data over it, flushed; a clean stop.
nbd_py live "
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()
" || fail "the newer write"
stop_server

# 2. The first spelling again.
start_server "$U1" "$TMP/diff" chunk-size=64K write-back=on
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('reads %r..., not the newer data' % got[:4])
" || soft_fail "a log left behind under the first spelling of the URI was written over newer data, after a clean stop"
stop_server
