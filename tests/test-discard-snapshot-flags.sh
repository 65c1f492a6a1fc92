#!/bin/bash
# Tests what a snapshot export advertises with discard-snapshots=on (it must be writable for NBD trim, but advertises no FUA and no fast zero) and that writes and zeroes on it still fail with EPERM and change nothing, while trims work; without the option the export is read-only.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

make_disk "$TMP/disk" 4M

flags () {
    nbd_py "$1" 'print(" ".join("%s=%d" % (n, getattr(h, n)()) for n in
        ("is_read_only", "can_trim", "can_fua", "can_fast_zero")))'
}

start_server "$TMP/disk" "$TMP/diff" discard-snapshots=on
sc_create s1
nbd_save s1 "$TMP/exp-s1"
f=$(flags s1) || fail "cannot open the snapshot export"
log "snapshot export with discard-snapshots=on: $f"
case "$f" in
    *can_trim=1*) ;; *) fail "no trim advertised with discard-snapshots=on: $f" ;;
esac
case "$f" in
    *can_fua=1*) fail "a snapshot export advertises FUA: $f" ;;
esac
case "$f" in
    *can_fast_zero=1*) fail "a snapshot export advertises fast zero: $f" ;;
esac
for op in 'h.pwrite(b"x" * 4096, 0)' 'h.zero(65536, 0)' \
          'h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)'; do
    out=$(nbd_py s1 "
try:
    $op
    print('ok')
except nbd.Error as e:
    import errno
    v = e.errno
    print('errno', v if isinstance(v, str) else errno.errorcode.get(v, v))" 2>&1) || fail "nbdsh failed on '$op': $out"
    case "$out" in
        "errno EPERM") ;;
        "errno ENOTSUP"|"errno EOPNOTSUPP"|"errno EINVAL")  # EINVAL: libnbd, not advertised
            case "$op" in *FAST_ZERO*) ;; *) fail "'$op' on a snapshot: $out" ;; esac ;;
        *) fail "'$op' on a snapshot export did not fail with EPERM: $out" ;;
    esac
done
[ "$(nbd_sha256 s1)" = "$(file_sha256 "$TMP/exp-s1")" ] ||
    fail "a refused write or zero changed the snapshot"
nbd_trim s1 0 65536
stop_server

start_server "$TMP/disk" "$TMP/diff"
f=$(flags s1) || fail "cannot open the snapshot export"
log "snapshot export without discard-snapshots: $f"
case "$f" in
    *is_read_only=1*) ;; *) fail "a snapshot export is not read-only: $f" ;;
esac
stop_server
log "ok"
