#!/bin/bash
# Tests serving over TCP with nbdkit --tls=require and a pre-shared key:
# a plaintext client is refused, the right key accepted, a wrong key or
# an unknown user refused; a snapshot read over nbds:// by nbdinfo and
# nbdcopy is the snapshot; `shadowcopy backup --nbd-uri nbds://...` and
# `verify --against --nbd-uri` work; a bad --nbd-uri is a usage error.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdinfo nbdcopy psktool

make_disk "$TMP/disk" 16M
make_psk "$TMP/keys.psk" alice
make_psk "$TMP/wrong.psk" alice         # alice, another key
make_psk "$TMP/bob.psk" bob             # a user the server does not know
cp "$TMP/disk" "$TMP/s1.expected"

start_tcp_server "$TMP/disk" "$TMP/diff" --tls=require \
    --tls-psk="$TMP/keys.psk" --
sc_create s1

# nbds URI of EXPORT with PSK file F (default the right one).
psk_uri () {
    echo "nbds://alice@127.0.0.1:$PORT/$1?tls-psk-file=${2:-$TMP/keys.psk}"
}

# The live volume changes after the snapshot, over TLS.
head -c 1M /dev/urandom > "$TMP/new"
nbdcopy "$TMP/new" "$(psk_uri live)" ||
    fail "nbdcopy to the live volume over nbds failed"
[ "$(nbdcopy "$(psk_uri live)" - | head -c 1M | sha256sum)" = \
  "$(sha256sum < "$TMP/new")" ] || fail "the live volume was not written over nbds"

# Plaintext is refused: --tls=require.
if nbdinfo --list "nbd://127.0.0.1:$PORT" > "$TMP/plain.out" 2>&1; then
    fail "a plaintext client listed the exports of a --tls=require server"
fi
if nbdinfo "nbd://127.0.0.1:$PORT/s1" >> "$TMP/plain.out" 2>&1; then
    fail "a plaintext client opened s1 on a --tls=require server"
fi
log "ok, plaintext refused: $(head -n 1 "$TMP/plain.out")"

# The right key: the list, and s1's content.
nbdinfo --list "$(psk_uri "")" > "$TMP/list.out" ||
    fail "nbdinfo --list with the right PSK failed"
grep -q '^export="s1":' "$TMP/list.out" || fail "s1 not listed over TLS"
grep -q '^export="live":' "$TMP/list.out" || fail "live not listed over TLS"
nbdcopy "$(psk_uri s1)" "$TMP/s1.copy" || fail "nbdcopy of s1 over nbds failed"
cmp_files "$TMP/s1.expected" "$TMP/s1.copy" "s1 over nbds"
log "ok, s1 copied over nbds with the PSK"

# A wrong key, an unknown user: refused.
nbdinfo "$(psk_uri s1 "$TMP/wrong.psk")" > /dev/null 2>&1 &&
    fail "a client with a wrong key opened s1"
nbdinfo "nbds://bob@127.0.0.1:$PORT/s1?tls-psk-file=$TMP/bob.psk" \
    > /dev/null 2>&1 && fail "a client with an unknown PSK user opened s1"
log "ok, a wrong key and an unknown user refused"

# backup over nbds, and verify --against over nbds.
server_uri="nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$TMP/keys.psk"
sc backup s1 --to "$TMP/s1.img" --nbd-uri "$server_uri" ||
    fail "backup s1 --nbd-uri $server_uri failed"
cmp_files "$TMP/s1.expected" "$TMP/s1.img" "backup of s1 over nbds"
out=$(sc verify "$TMP/s1.img" --against s1 --nbd-uri "$server_uri") ||
    fail "verify --against s1 --nbd-uri failed: $out"
log "ok, backup and verify over nbds: $out"
# The URI without its "/": the same server.
sc backup s1 --to "$TMP/s1b.img" --nbd-uri \
    "nbds://alice@127.0.0.1:$PORT?tls-psk-file=$TMP/keys.psk" ||
    fail "backup --nbd-uri without a path failed"
cmp_files "$TMP/s1.expected" "$TMP/s1b.img" "backup of s1 (URI without /)"

# backup --create over nbds: the snapshot made, backed up, released.
sc backup --create --no-writers --name n1 --to "$TMP/n1.img" \
    --nbd-uri "$server_uri" > /dev/null ||
    fail "backup --create --nbd-uri failed"
nbdcopy "$(psk_uri live)" "$TMP/live.now" || fail "nbdcopy of live failed"
cmp_files "$TMP/live.now" "$TMP/n1.img" "backup --create over nbds"

# The backup's connection refused with a wrong key: an error naming it.
expect_cli_error "backup with a wrong key" sc backup s1 --to "$TMP/bad.img" \
    --nbd-uri "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$TMP/wrong.psk"
case $CLI_ERR in
    *"cannot open the export of s1 on nbds://"*) ;;
    *) soft_fail "backup with a wrong key: unexpected message: $CLI_ERR" ;;
esac
[ ! -e "$TMP/bad.img" ] || soft_fail "a failed backup left $TMP/bad.img"

# Usage: a URI that names an export, a URI that is not NBD.
expect_cli_error "--nbd-uri with an export" sc backup s1 --to "$TMP/x.img" \
    --nbd-uri "$(psk_uri s1)"
case $CLI_ERR in *"names the export 's1'"*) ;;
    *) soft_fail "--nbd-uri with an export: unexpected message: $CLI_ERR" ;;
esac
expect_cli_error "--nbd-uri not NBD" sc backup s1 --to "$TMP/x.img" \
    --nbd-uri "http://127.0.0.1:$PORT/"
case $CLI_ERR in *"not an NBD URI"*) ;;
    *) soft_fail "--nbd-uri not NBD: unexpected message: $CLI_ERR" ;;
esac
# verify takes one server, as mount does: both ways to name it refused.
for order in "--nbd-socket $TMP/nbd.sock --nbd-uri $(psk_uri "")" \
             "--nbd-uri $(psk_uri "") --nbd-socket $TMP/nbd.sock"; do
    # shellcheck disable=SC2086
    expect_cli_error "verify with both --nbd-socket and --nbd-uri" \
        sc verify "$TMP/s1.img" --against s1 $order
    case $CLI_ERR in *"--nbd-socket or --nbd-uri, not both"*) ;;
        *) soft_fail "verify with both: unexpected message: $CLI_ERR" ;;
    esac
done
expect_cli_error "verify with --nbd-uri twice" sc verify "$TMP/s1.img" \
    --against s1 --nbd-uri "$(psk_uri "")" --nbd-uri "$(psk_uri "")"
case $CLI_ERR in *"given twice"*) ;;
    *) soft_fail "verify with --nbd-uri twice: unexpected message: $CLI_ERR" ;;
esac

stop_server
