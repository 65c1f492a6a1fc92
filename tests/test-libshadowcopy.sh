#!/bin/bash
# Tests libshadowcopy as a vendor builds on it: installed (make install DESTDIR), a program compiled with the installed header and pkg-config file drives a real nbdkit with the plugin (list, create, find, checkpoint, clone, diff, info, stats, delete) and the diff area offline with no server; and servers that misbehave (another major protocol version, garbage, a reply cut short, no answer) get a clear error naming the socket, without a crash.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires pkg-config timeout
requires "${CC:-cc}" nm

# ---- install, and build the example against what was installed -------

DEST=$TMP/dest
(unset MAKEFLAGS MFLAGS MAKELEVEL
 make -s -C "$abs_top_builddir" install DESTDIR="$DEST") \
    > "$TMP/install.log" 2>&1 || fail "make install failed: $(tail -20 "$TMP/install.log")"
pc=$(find "$DEST" -name libshadowcopy.pc | head -1)
[ -n "$pc" ] || fail "make install did not install libshadowcopy.pc"
hdr=$(find "$DEST" -name shadowcopy.h -path '*include*' | head -1)
[ -n "$hdr" ] || fail "make install did not install shadowcopy.h"
so=$(find "$DEST" -name libshadowcopy.so.0 | head -1)
[ -n "$so" ] || fail "make install did not install libshadowcopy.so.0"
export PKG_CONFIG_LIBDIR=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$DEST
flags=$(pkg-config --cflags --libs libshadowcopy) ||
    fail "pkg-config does not know libshadowcopy"
log "pkg-config: $flags"
"${CC:-cc}" -Wall -Wextra -Werror -o "$TMP/example" \
    "$abs_top_srcdir/tests/lib/example.c" $flags ||
    fail "the example does not build with the installed header and .pc"
export LD_LIBRARY_PATH=$(dirname "$so")
ex () { timeout 120 "$TMP/example" "$@"; }

# Only shadowcopy_* is exported.
leaks=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^shadowcopy_/ {print $3}')
[ -z "$leaks" ] || fail "libshadowcopy exports more than shadowcopy_*: $leaks"

# ---- online, against a real server -----------------------------------

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
ex hello "$CTL" > "$TMP/hello.out" 2>&1 || fail "hello: $(cat "$TMP/hello.out")"
grep -q '^protocol=1\.1 version=.* offline=0$' "$TMP/hello.out" ||
    fail "HELLO's version is not 1.1: $(cat "$TMP/hello.out")"

sc_create base
nbd_write_random live 0 65536
ex online "$CTL" > "$TMP/online.out" 2> "$TMP/online.err" ||
    fail "online: $(cat "$TMP/online.out" "$TMP/online.err")"
log "$(cat "$TMP/online.out")"
expect () {
    grep -Eq -- "$1" "$TMP/$2.out" || fail "$2: no line /$1/ in: $(cat "$TMP/$2.out")"
}
expect '^list 1: base/snapshot$' online
expect '^created ex1 id=[0-9]+ type=snapshot uuid=36 valid=1$' online
expect '^again: .*ex1' online
expect '^found ex1 same-uuid=1$' online
expect '^find nosuch: no snapshot named nosuch$' online
expect '^checkpoint ck1 type=checkpoint$' online
expect '^clone excl type=clone base=ex1$' online
expect '^diff ex1 live: 0 extents, 0 bytes \(header 0\), from ex1/snapshot to live/live, chunk 65536$' online
expect '^diff ck1 live: 0 extents' online
expect '^info size=8388608 chunk=65536 snapshots=[0-9]+ checkpoints=1 listen=[01]$' online
expect '^stats chunks-copied seen=1$' online
expect '^list 4: base/snapshot ex1/snapshot ck1/checkpoint excl/clone$' online
expect '^deleted excl$' online
expect '^stale uuid: snapshot ex1 is not the one of UUID' online
expect '^deleted ex1$' online
expect '^list 2: base/snapshot ck1/checkpoint$' online
# What the library did is what the CLI sees.
sc list > "$TMP/cli-list.out" || fail "list after the example"
grep -q '^[0-9]* *ck1 *checkpoint' "$TMP/cli-list.out" ||
    fail "the CLI does not see the example's checkpoint: $(cat "$TMP/cli-list.out")"
# A write after base: the diff from base names that chunk.
sc diff base --json > "$TMP/cli-diff.json" || fail "diff base"
stop_server

# ---- offline, on the diff area with no server ------------------------

ex offline "$TMP/diff" > "$TMP/offline.out" 2> "$TMP/offline.err" ||
    fail "offline: $(cat "$TMP/offline.out" "$TMP/offline.err")"
expect '^offline=1 protocol=1\.1$' offline
expect '^list 2: base/snapshot ck1/checkpoint$' offline
expect '^info size=8388608 snapshots=' offline
expect '^diff base live: 1 extents, 65536 bytes \(header 65536\), from base/snapshot to live/live' offline
expect '^stats offline: stats needs a running server' offline
expect '^deleted offcl$' offline
# The offline diff is the online one.
"$PYTHON" - "$TMP/cli-diff.json" <<'PY' || fail "online diff differs from offline"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["total-bytes"] == 65536 and d["extent-count"] == 1, d
PY

# ---- servers that misbehave ------------------------------------------

# bad MODE REGEX: the example, told to talk to a fake server in MODE,
# fails within its time with a message matching REGEX and naming the
# socket, and nothing crashes.
FAKE_PIDS=()
fake () {
    local mode=$1 sock=$TMP/fake-$1.sock i
    "$PYTHON" "$abs_top_srcdir/tests/lib/fake-server.py" "$mode" "$sock" &
    FAKE_PIDS+=($!)
    for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || fail "fake server $mode did not start"
}
_fake_cleanup () {
    local rc=$? p
    for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    (exit "$rc"); _cleanup
}
trap _fake_cleanup EXIT
bad () {
    local mode=$1 re=$2 sock=$TMP/fake-$1.sock rc=0
    ex hello "$sock" > "$TMP/bad-$mode.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "$mode: exit status $rc, expected 1: $(cat "$TMP/bad-$mode.out")"
    grep -Eq -- "$re" "$TMP/bad-$mode.out" ||
        fail "$mode: no /$re/ in: $(cat "$TMP/bad-$mode.out")"
    grep -Fq -- "$sock" "$TMP/bad-$mode.out" ||
        fail "$mode: the error does not name the socket: $(cat "$TMP/bad-$mode.out")"
    ! grep -Eq 'AddressSanitizer|runtime error:' "$TMP/bad-$mode.out" ||
        fail "$mode: sanitizer report: $(cat "$TMP/bad-$mode.out")"
    log "ok, $mode: $(grep example: "$TMP/bad-$mode.out")"
}
for m in silent major2 nominor garbage close errempty; do fake $m; done
# The silent one takes the library's reply timeout (60 s): in the
# background while the others run.
( bad silent 'did not answer within 60 s' ) & silent_pid=$!
bad major2 'the server speaks control protocol 2, libshadowcopy speaks 1 \(upgrade'
bad garbage 'bad reply from the server'
bad close 'bad reply from the server: input ends in the middle of a line'
# An ERR that names no known error and says nothing (the reply fuzzer
# found it left the message empty).
bad errempty 'the server refused LIST \(Input/output error\) without saying why'
# An older server (no protocol-minor) is minor 0; unknown keys and line
# kinds are ignored.
ex hello "$TMP/fake-nominor.sock" > "$TMP/nominor.out" 2>&1 ||
    fail "a server without protocol-minor is refused: $(cat "$TMP/nominor.out")"
expect '^protocol=1\.0 version=0\.0\.1 offline=0$' nominor
expect '^list 1: s1/snapshot$' nominor
# The CLI says the same as the library.
rc=0; "$SHADOWCOPY_CLI" -c "$TMP/fake-major2.sock" list > "$TMP/cli-major2.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "^shadowcopy: $TMP/fake-major2.sock: the server speaks control protocol 2" "$TMP/cli-major2.out" ||
    fail "CLI against a protocol-2 server: status $rc: $(cat "$TMP/cli-major2.out")"
wait "$silent_pid" || fail "silent server: see above"
log "ok"
