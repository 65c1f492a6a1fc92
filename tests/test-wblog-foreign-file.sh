#!/bin/bash
# Tests the write-back log's files against another local user (review
# 22).  Logs used to live in /dev/shm itself, which every user may write,
# at a name anyone can work out; a log another user planted there was
# written to the disk, and a temporary file another user made first
# became the live log.  Now:
# 1. a log directory others may write (as /dev/shm) is not used at all:
#    write-back is off and a log planted there is not read;
# 2. in the server's own directory, a file at the log's name that is
#    another user's is not read either: the open fails and keeps it;
# 3. a temporary file (ID.wblog.new) another user made is not reused:
#    the live log is the server's, mode 600.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdsh setpriv
[ "$(id -u)" -eq 0 ] || { log "needs root (to act as another user)"; exit 77; }
getent passwd nobody >/dev/null || { log "no user nobody"; exit 77; }

FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
OFF=$((65536 + 4096))
make_disk "$TMP/disk" 4M

# A real log of this disk, kept aside: a queued write of 0xa5.
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
sc_create s1
wb_queued_then_killed "$OFF" 0xa5
LOG=$(wblog_file)
mv "$LOG" "$TMP/old-image"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
nbd_py live "
assert h.pread(4096, $OFF) != b'\xa5' * 4096, 'the log was written'
h.pwrite(b'\x5a' * 4096, $OFF)
h.flush()" || fail "the newer write"
stop_server

# 1. The directory as /dev/shm is: anyone may make files there.
chmod 1777 "$SHADOWCOPY_WBLOG_DIR"
cp "$TMP/old-image" "$LOG"
chown nobody "$LOG"
chmod 666 "$LOG"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
grep -q "write-back is off, and no write-back log of a killed server is looked for: $SHADOWCOPY_WBLOG_DIR is not a directory of this user that no one else may write" \
    "$SERVER_LOG" || fail "no word that the log directory is not used"
nbd_py live "
got = h.pread(4096, $OFF)
if got != b'\x5a' * 4096:
    sys.exit('the disk reads %r..., not the newer data' % got[:4])
" || fail "a log planted in a directory anyone may write was written to the disk"
stop_server
chmod 700 "$SHADOWCOPY_WBLOG_DIR"

# 2. The same file in the server's own directory (owned by nobody).
if try_start_server "$TMP/disk" "$TMP/diff" chunk-size=64K; then
    fail "the open took a log owned by another user"
fi
grep -q "$LOG: not a regular file of this user that no one else may write: it is not read" \
    "$SERVER_LOG" || fail "unclear error for a log of another user"
[ -e "$LOG" ] || fail "the foreign log was removed"
rm -f "$LOG"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
nbd_py live "assert h.pread(4096, $OFF) == b'\x5a' * 4096" ||
    fail "the newer data"
stop_server

# 3. Another user's file at the name of the new log's temporary.
: > "$LOG.new"
chown nobody "$LOG.new"
chmod 666 "$LOG.new"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
[ -e "$LOG" ] || fail "no live log"
owner=$(stat -c %U "$LOG") mode=$(stat -c %a "$LOG")
[ "$owner" = "$(id -un)" ] && [ "$mode" = 600 ] ||
    fail "the live log is owned by $owner with mode $mode: another user's temporary file became the live log"
stop_server
exit 0
