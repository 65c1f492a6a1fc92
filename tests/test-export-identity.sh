#!/bin/bash
# Tests that backup, verify --against and mount read a snapshot only from
# the server of the volume the control socket names: two volumes both
# with a snapshot s1 of one size; backup -c A with B's server (--nbd-uri
# or --nbd-socket) is refused, naming both snapshots' UUIDs and the
# server, and writes nothing; so is verify --against and mount; an NBD
# server that is not shadowcopy (no uuid= in its export's description) is
# refused too; A's own server still works.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdinfo

make_disk "$TMP/diskA" 8M
make_disk "$TMP/diskB" 8M

# Server B, by hand, on a Unix socket (A is on TCP).
nbdkit -f -U "$TMP/b.nbd" "$SHADOWCOPY_PLUGIN" \
    disk="$TMP/diskB" diff="$TMP/diffB" > "$TMP/b.log" 2>&1 &
_SERVER_PIDS+=("$!")
b_uri="nbd+unix:///?socket=$TMP/b.nbd"
for _ in $(seq 100); do [ -S "$TMP/diffB.sock" ] && break; sleep 0.1; done
[ -S "$TMP/diffB.sock" ] || fail "server B did not start: $(cat "$TMP/b.log")"
"$SHADOWCOPY_CLI" -c "$TMP/diffB.sock" create s1 > /dev/null ||
    fail "create s1 on B failed"
uuid_b=$("$SHADOWCOPY_CLI" -c "$TMP/diffB.sock" list --json |
    json '[s["uuid"] for s in d if s["name"] == "s1"][0]')

# A non-shadowcopy NBD server of the same size.
PM=$(free_port)
nbdkit -f -p "$PM" -i 127.0.0.1 memory 8M > "$TMP/m.log" 2>&1 &
_SERVER_PIDS+=("$!")

start_tcp_server "$TMP/diskA" "$TMP/diffA" --
sc_create s1
uuid_a=$(sc list --json | json '[s["uuid"] for s in d if s["name"] == "s1"][0]')
[ -n "$uuid_a" ] && [ -n "$uuid_b" ] && [ "$uuid_a" != "$uuid_b" ] ||
    fail "snapshot UUIDs: A '$uuid_a', B '$uuid_b'"

# The description carries the UUID.
desc=$(nbdinfo --json "nbd://127.0.0.1:$PORT/s1" | json 'd["exports"][0]["description"]')
case $desc in *"uuid=$uuid_a"*) ;;
    *) fail "A's s1 description has no uuid=$uuid_a: $desc" ;; esac

# expect_wrong WHAT CMD...: CMD fails, saying both UUIDs.
expect_wrong () {
    local what=$1 rc=0
    shift
    "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: succeeded: $(cat "$TMP/out")"
    grep -q "$uuid_a" "$TMP/err" && grep -q "$uuid_b" "$TMP/err" ||
        fail "$what: the error does not name both UUIDs: $(cat "$TMP/err")"
    log "ok, $what: $(cat "$TMP/err")"
}

expect_wrong "backup -c A --nbd-uri B" \
    sc backup s1 --to "$TMP/a.img" --nbd-uri "$b_uri"
grep -qF "$b_uri" "$TMP/err" || fail "the error does not name the server"
[ ! -e "$TMP/a.img" ] && [ ! -e "$TMP/a.img.manifest" ] ||
    fail "a refused backup left an image or a manifest"
expect_wrong "backup -c A --nbd-socket B" \
    sc backup s1 --to "$TMP/a.img" --nbd-socket "$TMP/b.nbd"
[ ! -e "$TMP/a.img.manifest" ] || fail "a refused backup left a manifest"

rc=0; sc backup s1 --to "$TMP/m.img" --nbd-uri "nbd://127.0.0.1:$PM/" \
    > /dev/null 2> "$TMP/err" || rc=$?
[ "$rc" -ne 0 ] || fail "backup from a non-shadowcopy server succeeded"
grep -q "no uuid=" "$TMP/err" || fail "non-shadowcopy server: unclear: $(cat "$TMP/err")"
log "ok, a non-shadowcopy server refused: $(cat "$TMP/err")"

# A's own server: backup and verify work.
sc backup s1 --to "$TMP/a.img" --nbd-uri "nbd://127.0.0.1:$PORT/" > /dev/null ||
    fail "backup from A's own server failed"
cmp_files "$TMP/diskA" "$TMP/a.img" "the backup of A's s1"
sc verify "$TMP/a.img" --against s1 --nbd-uri "nbd://127.0.0.1:$PORT/" > /dev/null ||
    fail "verify --against A's own server failed"
expect_wrong "verify --against -c A --nbd-uri B" \
    sc verify "$TMP/a.img" --against s1 --nbd-uri "$b_uri"

mkdir "$TMP/mnt"
expect_wrong "mount -c A --nbd-socket B" \
    sc mount --nbd-socket "$TMP/b.nbd" s1 "$TMP/mnt"
expect_wrong "mount -c A --nbd-uri B" \
    sc mount --nbd-uri "$b_uri" s1 "$TMP/mnt"
mountpoint -q "$TMP/mnt" && fail "mount of B's export under A's name happened"
stop_server
