#!/bin/bash
# Tests that when the diff area runs out of space the live writes still succeed, the affected snapshots are listed invalid with a reason and their exports are refused.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo mount umount

M=$((1024 * 1024))
mkdir "$TMP/small"
mount -t tmpfs -o size=2M,mode=0700 tmpfs "$TMP/small" 2>/dev/null ||
    skip "cannot mount a tmpfs (not permitted here)"
_MOUNTS+=("$TMP/small")
D=$TMP/small/diff

make_disk "$TMP/disk" 32M
start_server "$TMP/disk" "$D"
nbd_write_random live 0 $M
nbd_save live "$TMP/exp-old"
sc_create victim-old
nbd_write_random live $((M / 2)) $M
nbd_save live "$TMP/exp-new"
sc_create victim-new
[ "$(nbd_sha256 victim-new)" = "$(file_sha256 "$TMP/exp-new")" ] ||
    fail "victim-new is wrong before the diff area fills"

# Overwrite the whole disk: the copies need far more than 2 MiB.  Every
# live write must succeed and read back.
head -c $((32 * M)) /dev/urandom > "$TMP/new"
# A client connected to victim-new all along must get errors once it is
# invalid, never wrong data.
nbd_py live '
import nbd
v = nbd.NBD(); v.set_export_name("victim-new"); v.connect_unix(os.environ["E_S"])
want = open(os.environ["E_X"], "rb").read()
data = open(os.environ["E_F"], "rb").read()
for off in range(0, len(data), 1 << 20):
    try:
        h.pwrite(data[off:off + (1 << 20)], off)
    except Exception as e:
        sys.exit("live write at %d failed while the diff area is full: %s" % (off, e))
h.flush()
refused = 0
for off in range(0, len(want), 1 << 20):
    try:
        got = v.pread(1 << 20, off)
    except nbd.Error:
        refused += 1
        continue
    if got != want[off:off + (1 << 20)]:
        sys.exit("victim-new, read on a connection opened before it became "
                 "invalid, returned wrong data at %d" % off)
print("reads of victim-new on an open connection: %d of %d refused"
      % (refused, len(want) >> 20))
if refused == 0:
    sys.exit("victim-new still served every read on an open connection")
' E_F="$TMP/new" E_X="$TMP/exp-new" E_S="$NBD_SOCK" ||
    fail "live writes or victim-new reads went wrong when the diff area ran out of space"
[ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/new")" ] ||
    fail "live export does not read back what was written"
log "diff area: $(df -h "$TMP/small" | tail -1)"
server_alive "after the diff area filled"

# check_invalid NAME WHEN: listed invalid with a reason, export refused.
check_invalid () {
    local state reason
    state=$(sc_field "$1" state)
    reason=$(sc_field "$1" reason)
    [ "$state" = invalid ] || fail "$2: snapshot $1 is '$state', expected invalid"
    [ -n "$reason" ] && [ "$reason" != None ] || fail "$2: invalid snapshot $1 has no reason"
    log "$2: $1 is invalid: $reason"
    if nbdinfo "$(uri "$1")" > /dev/null 2>&1; then
        fail "$2: the export of invalid snapshot $1 was opened"
    fi
    if nbd_py "$1" 'h.pread(4096, 0)' > /dev/null 2>&1; then
        fail "$2: invalid snapshot $1 could be read"
    fi
}
# check_old WHEN: victim-old needed copies too, but freeing the copies of
# the invalid victim-new may have made room for them: it is either invalid
# or right.
check_old () {
    if [ "$(sc_field victim-old state)" = valid ]; then
        [ "$(nbd_sha256 victim-old)" = "$(file_sha256 "$TMP/exp-old")" ] ||
            fail "$1: victim-old is listed valid but its content is wrong"
        log "$1: victim-old is still valid, and right"
    else
        check_invalid victim-old "$1"
    fi
}
check_invalid victim-new "after ENOSPC"
check_old "after ENOSPC"
sc list > "$TMP/list.txt" || fail "list failed"
grep victim-new "$TMP/list.txt" | grep_all -i invalid ||
    fail "the text list does not show victim-new invalid: $(cat "$TMP/list.txt")"

# The server restarts with the diff area still full (the live volume must
# stay available), and an invalid snapshot is never served again.
stop_server
if ! try_start_server "$TMP/disk" "$D"; then
    soft_fail "nbdkit cannot start again while the diff area's file system is" \
        "full: the live volume is unavailable after the diff area filled up" \
        "($(grep -m1 error: <(tail -n 3 "$SERVER_LOG")))"
    # Can the offline CLI at least drop a snapshot to make room?
    rc=0
    sc_off "$D" delete victim-new > /dev/null 2> "$TMP/err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        soft_fail "the offline delete of an invalid snapshot fails too (exit" \
            "$rc: $(cat "$TMP/err")): with a full diff area there is no way" \
            "back short of freeing space on its file system"
    fi
    # Go on with the rest: give the diff area room if needed.
    if ! try_start_server "$TMP/disk" "$D"; then
        mount -o remount,size=8M "$TMP/small" || fail "cannot grow the tmpfs"
        start_server "$TMP/disk" "$D"
    fi
fi
names=$(sc_names)
if grep -qx victim-new <<< "$names"; then
    check_invalid victim-new "after restart"
fi
if grep -qx victim-old <<< "$names"; then
    check_old "after restart"
fi
[ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/new")" ] || fail "live content lost across restart"

# Deleting the invalid snapshots frees the diff area for new ones.
sc delete --all || fail "delete --all of invalid snapshots failed"
nbd_save live "$TMP/exp-fresh"
sc_create fresh
nbd_write_random live $((3 * M)) 65536
[ "$(sc_field fresh state)" = valid ] || fail "snapshot fresh is not valid"
[ "$(nbd_sha256 fresh)" = "$(file_sha256 "$TMP/exp-fresh")" ] ||
    fail "snapshot fresh is wrong after the diff area recovered"
stop_server
exit 0
