#!/bin/bash
# Tests serving over TCP with nbdkit --tls=require and X.509
# certificates (a throwaway CA made with certtool): a client trusting the
# CA reads a snapshot with nbdinfo, nbdcopy and `shadowcopy backup
# --nbd-uri nbds://...?tls-certificates=DIR`; a client trusting another CA
# refuses the server; plaintext is refused; with --tls-verify-peer, a
# client without a certificate is refused.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdinfo nbdcopy certtool

make_disk "$TMP/disk" 8M
make_certs "$TMP/certs"
mkdir -p "$TMP/certs/nocert"
cp "$TMP/certs/client/ca-cert.pem" "$TMP/certs/nocert/"
cp "$TMP/disk" "$TMP/snap.expected"

start_tcp_server "$TMP/disk" "$TMP/diff" --tls=require \
    --tls-certificates="$TMP/certs/server" --tls-verify-peer --
sc_create snap
nbd_uri_w () {
    echo "nbds://127.0.0.1:$PORT/$1?tls-certificates=$TMP/certs/${2:-client}"
}
head -c 64K /dev/urandom > "$TMP/new"
nbdcopy "$TMP/new" "$(nbd_uri_w live)" ||
    fail "nbdcopy to live over nbds with certificates failed"

nbdinfo --list "$(nbd_uri_w "")" > "$TMP/list.out" ||
    fail "nbdinfo --list with the client certificates failed"
grep -q '^export="snap":' "$TMP/list.out" || fail "snap not listed"
nbdcopy "$(nbd_uri_w snap)" "$TMP/snap.copy" ||
    fail "nbdcopy of snap over nbds with certificates failed"
cmp_files "$TMP/snap.expected" "$TMP/snap.copy" "snap over nbds (X.509)"
log "ok, certificates accepted"

nbdinfo "$(nbd_uri_w snap other)" > "$TMP/other.out" 2>&1 &&
    fail "a client trusting another CA accepted the server"
log "ok, another CA: $(head -n 1 "$TMP/other.out")"
nbdinfo "$(nbd_uri_w snap nocert)" > "$TMP/nocert.out" 2>&1 &&
    fail "a client without a certificate was let in (--tls-verify-peer)"
log "ok, no client certificate: $(head -n 1 "$TMP/nocert.out")"
nbdinfo "nbd://127.0.0.1:$PORT/snap" > /dev/null 2>&1 &&
    fail "a plaintext client opened snap on a --tls=require server"

sc backup snap --to "$TMP/snap.img" \
    --nbd-uri "nbds://127.0.0.1:$PORT/?tls-certificates=$TMP/certs/client" ||
    fail "backup --nbd-uri with certificates failed"
cmp_files "$TMP/snap.expected" "$TMP/snap.img" "backup of snap (X.509)"
log "ok, backup over nbds with certificates"
stop_server
