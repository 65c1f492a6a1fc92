#!/bin/bash
# Tests that no NBD client can kill the server with the FAST_ZERO flag: the live export advertises fast zero and refuses it with ENOTSUP (a client then zeroes the slow way), and a client that sends the flag where it was not advertised (libnbd's strict mode off) gets an error while the server keeps serving.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

make_disk "$TMP/disk" 4M
start_server "$TMP/disk" "$TMP/diff"
nbd_write_random live 0 65536
sum=$(nbd_sha256 live)

out=$(nbd_py live '
print("can_fast_zero=%d" % h.can_fast_zero())
h.set_strict_mode(0)            # send the flag whatever was advertised
try:
    h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)
    print("fast zero: done")
except nbd.Error as e:
    print("fast zero: errno=%s" % e.errnum)
') || fail "nbdsh on the live export failed: $out"
log "live export: $(echo $out)"
kill -0 "$SERVER_PID" 2>/dev/null || fail "FAST_ZERO on the live export killed the server"
case "$out" in *can_fast_zero=1*) ;; *) fail "live export: no fast zero advertised: $out" ;; esac
case "$out" in *"errno=95"*) ;; *) fail "live export: FAST_ZERO not refused with ENOTSUP: $out" ;; esac
[ "$(nbd_sha256 live)" = "$sum" ] || fail "a refused fast zero changed the live disk"

# A snapshot export advertises neither zero nor fast zero; a client that
# sends the flag anyway gets an error, not a dead server.
sc_create s1
out=$(nbd_py s1 '
h.set_strict_mode(0)
for flags in (nbd.CMD_FLAG_FAST_ZERO, 0):
    try:
        h.zero(65536, 0, flags)
        print("zero %d: done" % flags)
    except nbd.Error as e:
        print("zero %d: errno=%s" % (flags, e.errnum))
') || fail "nbdsh on the snapshot export failed: $out"
log "snapshot export, strict mode off: $(echo $out)"
case "$out" in *done*) fail "a zero on a snapshot export succeeded: $out" ;; esac
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
[ "$(nbd_sha256 s1)" = "$sum" ] || fail "the snapshot changed"

# The live export still zeroes the ordinary way.
nbd_zero live 0 65536
[ "$(nbd_sha256 live)" != "$sum" ] || fail "a plain zero changed nothing"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
log "ok, FAST_ZERO is refused, never fatal"
