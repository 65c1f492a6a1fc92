#!/bin/bash
# Tests the plugin's tls-for= with nbdkit --tls=on (plaintext clients let
# in by nbdkit): by default (write) the live volume and writable clones
# are neither listed nor opened in plaintext, while snapshots are read
# in plaintext, read-only (no trim even with discard-snapshots=on) and
# TLS clients see and write everything; tls-for=all refuses every export
# to plaintext; tls-for=none refuses none; tls-for=write or all without
# --tls, or a bad value, stop the server at start with a clear error.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdinfo nbdcopy psktool

make_disk "$TMP/disk" 8M
make_psk "$TMP/keys.psk" alice
cp "$TMP/disk" "$TMP/s1.expected"

tls_uri () { echo "nbds://alice@127.0.0.1:$PORT/$1?tls-psk-file=$TMP/keys.psk"; }
plain_uri () { echo "nbd://127.0.0.1:$PORT/$1"; }
# exports URI: the export names listed, sorted, on one line.
exports () {
    nbdinfo --list --json "$1" | json 'sorted(e["export-name"] for e in d["exports"])' |
        tr '\n' ' '
}

# ---- default: tls-for=write ----------------------------------------
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" \
    -- discard-snapshots=on
sc_create s1
sc clone s1 c1 > /dev/null || fail "clone s1 c1 failed"

[ "$(exports "$(plain_uri "")")" = "s1 " ] ||
    fail "plaintext list: expected only s1, got: $(exports "$(plain_uri "")")"
[ "$(exports "$(tls_uri "")")" = "c1 live s1 " ] ||
    fail "TLS list: expected c1 live s1, got: $(exports "$(tls_uri "")")"
log "ok, plaintext lists only the snapshot"

# "" is the default export, which nbdkit names "live" before opening it.
for e in live "" c1; do
    n=$(wc -l < "$SERVER_LOG")
    nbdinfo "$(plain_uri "$e")" > /dev/null 2>&1 &&
        fail "plaintext client opened writable export '$e' under tls-for=write"
    tail -n +"$((n + 1))" "$SERVER_LOG" |
        grep_all "export '${e:-live}' refused: it is writable .*tls-for=write" ||
        fail "no clear refusal of '$e' in the server log"
done
log "ok, live, the default export and the clone refused in plaintext"

nbdcopy "$(plain_uri s1)" "$TMP/s1.plain" || fail "plaintext read of s1 failed"
cmp_files "$TMP/s1.expected" "$TMP/s1.plain" "s1 read in plaintext"
[ "$(uri_py "$(plain_uri s1)" 'print(h.is_read_only(), h.can_trim())')" = "True False" ] ||
    fail "s1 in plaintext must be read-only without trim"
[ "$(uri_py "$(tls_uri s1)" 'print(h.can_trim())')" = "True" ] ||
    fail "s1 over TLS should take trims (discard-snapshots=on)"
uri_py "$(tls_uri live)" 'h.pwrite(b"x" * 4096, 0); h.flush()' ||
    fail "write to live over TLS failed"
uri_py "$(tls_uri c1)" 'h.pwrite(b"y" * 4096, 0); h.flush()' ||
    fail "write to clone c1 over TLS failed"
log "ok, snapshot readable in plaintext (read-only), live and clone writable over TLS"
stop_server

# ---- tls-for=all ---------------------------------------------------
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" \
    -- tls-for=all
nbdinfo "$(plain_uri s1)" > /dev/null 2>&1 &&
    fail "plaintext client opened s1 under tls-for=all"
grep -q "export 's1' refused: tls-for=all" "$SERVER_LOG" ||
    fail "no clear refusal of s1 under tls-for=all"
# Nothing learnt of the snapshots: a missing one is refused the same way.
nbdinfo "$(plain_uri nosuch)" > /dev/null 2>&1 &&
    fail "plaintext client opened a missing snapshot?"
grep -q "export 'nosuch' refused: tls-for=all" "$SERVER_LOG" ||
    fail "tls-for=all: a missing export was not refused for want of TLS"
[ -z "$(exports "$(plain_uri "")" 2>/dev/null)" ] ||
    fail "tls-for=all: plaintext list is not empty"
nbdcopy "$(tls_uri s1)" "$TMP/s1.tls" || fail "TLS read of s1 under tls-for=all failed"
cmp_files "$TMP/s1.expected" "$TMP/s1.tls" "s1 over TLS (tls-for=all)"
log "ok, tls-for=all"
stop_server

# ---- tls-for=none --------------------------------------------------
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" \
    -- tls-for=none
uri_py "$(plain_uri live)" 'h.pwrite(b"z" * 4096, 0); h.flush()' ||
    fail "tls-for=none: plaintext write to live failed"
log "ok, tls-for=none"
stop_server

# ---- refused at start ----------------------------------------------
for v in write all; do
    if try_start_server "$TMP/disk" "$TMP/diff" tls-for=$v 2>/dev/null; then
        fail "tls-for=$v without --tls: the server started"
    fi
    tail -n 5 "$SERVER_LOG" | grep_all "tls-for=$v, but nbdkit serves no TLS" ||
        fail "tls-for=$v without --tls: no clear error"
done
if try_start_server "$TMP/disk" "$TMP/diff" tls-for=some 2>/dev/null; then
    fail "tls-for=some: the server started"
fi
tail -n 5 "$SERVER_LOG" | grep_all "tls-for=some: must be write, all or none" ||
    fail "tls-for=some: no clear error"
# Without --tls, the default refuses nothing.
start_server "$TMP/disk" "$TMP/diff"
nbd_write_random live 0 4096
stop_server
log "ok, bad tls-for refused at start"

# ---- nbdkit's every spelling of --tls ------------------------------
# nbdkit reads --tls as require/required/force or a boolean (1, true, t,
# yes, y, on; 0, false, f, no, n, off; any case): each "on" spelling must
# keep the default tls-for=write, so a plaintext client never writes live.
for v in t Y True 1 yes ON; do
    rm -f "$TMP/diff"*
    start_tcp_server "$TMP/disk" "$TMP/diff" --tls=$v --tls-psk="$TMP/keys.psk" --
    if uri_py "$(plain_uri live)" 'h.pwrite(b"P" * 512, 0); h.flush()' 2>/dev/null; then
        fail "--tls=$v: a plaintext client wrote the live volume"
    fi
    uri_py "$(tls_uri live)" 'h.pwrite(b"T" * 512, 0); h.flush()' ||
        fail "--tls=$v: a TLS client could not write the live volume"
    stop_server
done
for v in f N 0 off; do
    rm -f "$TMP/diff"*
    start_tcp_server "$TMP/disk" "$TMP/diff" --tls=$v --
    uri_py "$(plain_uri live)" 'h.pwrite(b"O" * 512, 0); h.flush()' ||
        fail "--tls=$v (off): a plaintext client could not write the live volume"
    stop_server
done
log "ok, every spelling nbdkit takes for --tls read as nbdkit reads it"

# ---- nbdkit -r: no connection can write ----------------------------
# tls-for=write guards writes: with nbdkit -r the live volume and the
# clones are read-only for every client, so plaintext may list and read
# them (and still not write).
rm -f "$TMP/diff"*
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" --
sc_create s1
sc clone s1 c1 > /dev/null || fail "clone s1 c1 failed"
stop_server
cp "$TMP/disk" "$TMP/live.expected"
start_tcp_server "$TMP/disk" "$TMP/diff" -r --tls=on --tls-psk="$TMP/keys.psk" --
[ "$(exports "$(plain_uri "")")" = "c1 live s1 " ] ||
    fail "nbdkit -r: plaintext list: expected c1 live s1, got: $(exports "$(plain_uri "")")"
nbdcopy "$(plain_uri live)" "$TMP/live.plain" ||
    fail "nbdkit -r: plaintext read of live refused: $(grep refused "$SERVER_LOG" | tail -1)"
cmp_files "$TMP/live.expected" "$TMP/live.plain" "live read in plaintext under nbdkit -r"
[ "$(uri_py "$(plain_uri c1)" 'print(h.is_read_only())')" = "True" ] ||
    fail "nbdkit -r: clone c1 not opened read-only in plaintext"
if uri_py "$(plain_uri live)" 'h.pwrite(b"R" * 512, 0); h.flush()' 2>/dev/null; then
    fail "nbdkit -r: a plaintext client wrote the live volume"
fi
cmp_files "$TMP/live.expected" "$TMP/disk" "the origin after nbdkit -r"
stop_server
log "ok, nbdkit -r: live and clones listed and read in plaintext, never written"

# ---- --tls=on without keys on the command line ---------------------
# nbdkit then looks in its default certificate directory, and if it
# finds none disables TLS with a warning; the plugin cannot tell, so it
# warns at start that tls-for=write would then refuse every client.
rm -f "$TMP/diff"*
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --
grep -q "shadowcopy: warning: --tls=on without --tls-certificates or --tls-psk" "$SERVER_LOG" ||
    fail "--tls=on without keys: no warning from the plugin: $(grep -i tls "$SERVER_LOG" | tail -5)"
stop_server
n=$(wc -l < "$SERVER_LOG")
start_tcp_server "$TMP/disk" "$TMP/diff" --tls=on --tls-psk="$TMP/keys.psk" --
stop_server
tail -n +"$((n + 1))" "$SERVER_LOG" | grep_all "shadowcopy: warning: --tls=on without" &&
    fail "--tls=on with --tls-psk: the plugin warned of missing keys"
log "ok, --tls=on without keys: the plugin's warning"
