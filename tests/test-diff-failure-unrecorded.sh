#!/bin/bash
# Tests that when the diff area takes no write at all (its superblock included, so the failure cannot be recorded), a live write that would overwrite data a snapshot needs fails with EIO before the origin changes, while writes that need no copy, reads and flushes go on; that after a kill -9 or a SIGTERM the snapshot, which the old journal still lists as valid, serves its exact image; and that once the superblock takes the FAILED flag again, writes go through and the snapshot stays invalid across a restart.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

# The server fails diff-area I/O as this file says (cow/fault-file.c).
FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
K=65536
M=$((1024 * 1024))

# The refusal is that of a write that copies in its own request
# (write-back=off); a queued write's is the next flush's
# (test-writeback.sh).

# try_write OFFSET LEN: write random data to the live export; prints ok,
# EIO or the error.
try_write () {
    nbd_py live '
import nbd
try:
    h.pwrite(os.urandom(int(os.environ["E_N"])), int(os.environ["E_O"]))
    print("ok")
except nbd.Error as e:
    print("EIO" if "(EIO)" in str(e) else "error %s" % e)
' E_O="$1" E_N="$2" | tail -1
}

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff" write-back=off
sc_create a
nbd_save a "$TMP/image-a"
want=$(file_sha256 "$TMP/image-a")
# An ordinary write, copied and committed: chunk 64 needs no copy any
# more in this epoch.
nbd_write_random live $((4 * M)) $K
nbd_py live 'h.flush()' || fail "flush failed"

# check_stop STOP CHUNK: with every write to the diff area failing, a
# write of CHUNK (which a needs) is refused and the origin keeps it; the
# server is stopped with STOP while the disk still fails; after a
# restart, a serves its image.
check_stop () {
    local stop=$1 off=$(($2 * K))
    echo "write EROFS" > "$FAULTS"
    nbd_save live "$TMP/before"
    got=$(try_write $off $K)
    [ "$got" = EIO ] ||
        fail "a write over data snapshot a needs, with the failure unrecorded: $got"
    grep -q "a live write was refused (EIO)" "$SERVER_LOG" ||
        fail "the server did not log the refusal"
    grep -q "1 snapshot invalidated (\"diff-area metadata write failed\", 1 of them by the failed copy just before)" "$SERVER_LOG" ||
        fail "the failure does not count the snapshot the failed copy invalidated"
    nbd_save live "$TMP/after"
    cmp -s "$TMP/before" "$TMP/after" ||
        fail "the refused write changed the live disk"
    [ "$(sc_field a state)" = invalid ] || fail "a is still valid in memory"
    # What needs no copy goes on: a chunk copied before the failure,
    # reads, flushes.
    got=$(try_write $((4 * M)) $K)
    [ "$got" = ok ] || fail "a write that needs no copy failed: $got"
    nbd_py live 'h.pread(1 << 20, 0); h.flush()' ||
        fail "a read or flush failed while the failure is unrecorded"

    if [ "$stop" = term ]; then
        kill -TERM "$SERVER_PID"
    else
        kill -KILL "$SERVER_PID"
    fi
    wait "$SERVER_PID" 2>/dev/null || :
    _forget_pid "$SERVER_PID"; SERVER_PID=
    rm -f "$FAULTS"
    start_server "$TMP/disk" "$TMP/diff" write-back=off
    state=$(sc_field a state)
    log "after $stop and a restart: a is $state"
    if [ "$state" = valid ]; then
        [ "$(nbd_sha256 a)" = "$want" ] ||
            fail "WRONG DATA after $stop: snapshot a is listed valid and serves a live write"
    fi
}

check_stop kill 0
# (Here the session had not written the origin before the failure: the
# superblock could not take its "written" stamp, so the restart may find
# the disk changed and invalidate a: safe too.)
check_stop term 2

# The disk comes back while serving: the next write that needs it
# stores FAILED first, then goes through; c stays invalid for good.
sc_create c
echo "write EROFS" > "$FAULTS"
got=$(try_write $((5 * K)) $K)
[ "$got" = EIO ] || fail "a write over data snapshot c needs: $got"
rm -f "$FAULTS"
got=$(try_write $((5 * K)) $K)
[ "$got" = ok ] || fail "a write once the superblock takes writes again: $got"
grep -q "its failure is now recorded in the superblock" "$SERVER_LOG" ||
    fail "the server did not say the failure is recorded"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"; SERVER_PID=
start_server "$TMP/disk" "$TMP/diff" write-back=off
[ "$(sc_field c state)" = invalid ] ||
    fail "c is valid after the failure was recorded and the server killed"
case "$(sc_field c reason)" in
    *metadata*) ;;
    *) fail "c is invalid for another reason: $(sc_field c reason)" ;;
esac
stop_server
exit 0
