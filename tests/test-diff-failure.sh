#!/bin/bash
# Tests that one failed journal write of the diff area leaves the live export working (flush, writes, reads), invalidates every snapshot with its reason, makes create fail with an actionable message while the disk fails, and that create recovers the diff area once the disk is back, consistently across a restart.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

# The server fails diff-area I/O as this file says (cow/fault-file.c).
FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
M=$((1024 * 1024))

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"
nbd_write_random live 0 $M
sc_create a
nbd_write_random live $M $M
sc_create b

# One journal write fails, under a live write that copies (and the flush
# after it: with write-back the copy may still be queued when the write
# returns).
echo "journal-write EIO once" > "$FAULTS"
nbd_write_random live 0 65536
nbd_py live 'h.flush()' || fail "flush after the write whose journal write failed"
[ ! -e "$FAULTS" ] || fail "the journal write fault never fired"
grep -q "diff area failed: EIO" "$SERVER_LOG" ||
    fail "the server did not log the failure"

# The live export goes on: flush, write, read back.
nbd_save live "$TMP/before"
nbd_py live '
h.flush()
data = os.urandom(3 << 20)
h.pwrite(data, 1 << 20)
h.flush()
h.zero(65536, 6 << 20)
h.flush()
got = h.pread(3 << 20, 1 << 20)
if got != data:
    sys.exit("the live export does not read back what was written")
' || fail "the live export failed (flush, write or read) after the diff area failed"
nbd_save live "$TMP/live"
cmp -s -n $M "$TMP/live" "$TMP/before" ||
    fail "the first MiB of the live export changed"

for s in a b; do
    [ "$(sc_field $s state)" = invalid ] || fail "snapshot $s is still valid"
    reason=$(sc_field $s reason)
    case "$reason" in
        *metadata*"Input/output error"*) log "snapshot $s: $reason" ;;
        *) fail "snapshot $s has reason '$reason'" ;;
    esac
done
out=$(sc info --json)
state=$(printf '%s\n' "$out" | json 'd["diff_area"]["state"]')
[ "$state" = failed ] || fail "info says the diff area is '$state': $out"
printf '%s\n' "$out" | json 'd["diff_area"]["failed_write"]' | grep_all "writing the journal at slot" ||
    fail "info does not say which write failed: $out"
[ "$(printf '%s\n' "$out" | json 'd["diff_area"]["errno"]')" = EIO ] ||
    fail "info does not give the errno: $out"
sc info | grep_all "diff area: FAILED since" || fail "info (text) does not show the failure"
[ "$(sc stats --json | json 'd["diff_failed"]')" = 1 ] || fail "stats does not show the failure"

# While the disk still fails, create says why and what to do.
echo "journal-write EIO" > "$FAULTS"
expect_cli_error "create while the diff area's disk fails" sc create c
for want in "cannot create snapshot c" "EIO" "writing the journal" "dmesg" \
    "invalidated" "retries at the next create"; do
    case "$CLI_ERR" in
        *"$want"*) ;;
        *) fail "the create error does not say '$want': $CLI_ERR" ;;
    esac
done
expect_cli_error "delete while the diff area's disk fails" sc delete a
case "$CLI_ERR" in
    *"writing the journal"*) ;;
    *) fail "the delete error does not say which write failed: $CLI_ERR" ;;
esac
nbd_py live 'h.flush()' || fail "a live flush failed while the diff area's disk fails"

# The disk is back: the next create recovers.
rm -f "$FAULTS"
nbd_save live "$TMP/exp-c"
sc_create c
grep -q "diff area recovered" "$SERVER_LOG" || fail "no recovery in the log"
[ "$(sc info --json | json 'd["diff_area"]["state"]')" = ok ] ||
    fail "the diff area is not healthy after the create"
[ "$(sc_field a state)" = invalid ] || fail "a became valid again"
[ "$(sc_field b state)" = invalid ] || fail "b became valid again"
nbd_write_random live 0 $((2 * M))
nbd_zero live $((4 * M)) $M
[ "$(nbd_sha256 c)" = "$(file_sha256 "$TMP/exp-c")" ] ||
    fail "snapshot c does not serve its image"
nbd_save live "$TMP/live"

# A restart: the same state.
restart_server
[ "$(sc_field a state)" = invalid ] || fail "a is valid after a restart"
[ "$(sc_field b state)" = invalid ] || fail "b is valid after a restart"
[ "$(sc_field c state)" = valid ] || fail "c is not valid after a restart"
[ "$(nbd_sha256 c)" = "$(file_sha256 "$TMP/exp-c")" ] ||
    fail "snapshot c is wrong after a restart"
[ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/live")" ] ||
    fail "the live export is wrong after a restart"
sc delete a b > /dev/null || fail "deleting the invalid snapshots failed"
stop_server
exit 0
