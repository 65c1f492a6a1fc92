#!/bin/bash
# Tests the offline CLI (--diff) list/info/delete on a stopped server's diff area, and that it refuses to touch a diff area a running server holds.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo timeout

M=$((1024 * 1024))
D=$TMP/diff
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$D"

# The default control socket: DIFF.sock, mode 0600.
[ "$CTL" = "$D.sock" ] && [ -S "$D.sock" ] || fail "no control socket at $D.sock"
[ "$(stat -c %a "$D.sock")" = 600 ] ||
    fail "control socket mode is $(stat -c %a "$D.sock"), expected 600"

sc_create s1; nbd_write_random live 0 $M
sc_create s2; nbd_write_random live $((2 * M)) $M
sc_create s3; nbd_write_random live $((M / 2)) $((3 * M))
sum_s1=$(nbd_sha256 s1)
sum_s3=$(nbd_sha256 s3)
sc list --json > "$TMP/online.json" || fail "list --json failed"
sc info --json > "$TMP/online-info.json" || fail "info --json failed"
stop_server

# Offline: list, list --json, info, info --json.
sc_off "$D" list > "$TMP/list.txt" || fail "offline list failed"
for s in s1 s2 s3; do
    grep -qw "$s" "$TMP/list.txt" || fail "offline list does not show $s: $(cat "$TMP/list.txt")"
done
sc_off "$D" list --json > "$TMP/offline.json" || fail "offline list --json failed"
same_snapshot_lists "$TMP/online.json" "$TMP/offline.json" \
    id name created epoch state used_bytes || fail "offline list --json is wrong"
sc_off "$D" info > "$TMP/info.txt" || fail "offline info failed"
[ -s "$TMP/info.txt" ] || fail "offline info printed nothing"
sc_off "$D" info --json > "$TMP/offline-info.json" || fail "offline info --json failed"
"$PYTHON" -c '
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("volume_size", "chunk_size", "snapshots", "diff_used_bytes"):
    if a.get(k) != b.get(k):
        sys.exit("info --json %s: online %r, offline %r" % (k, a.get(k), b.get(k)))
if b["volume_size"] != 16 << 20 or b["snapshots"] != 3:
    sys.exit("offline info: %r" % b)
' "$TMP/online-info.json" "$TMP/offline-info.json" || fail "offline info --json is wrong"

# Offline delete, and errors.
sc_off "$D" delete s2 || fail "offline delete s2 failed"
expect_cli_error "offline delete of a nonexistent snapshot" sc_off "$D" delete s2
[ "$(sc_off "$D" list --json | json '[s["name"] for s in d]' | tr '\n' ' ')" = "s1 s3 " ] ||
    fail "offline list after delete: $(sc_off "$D" list)"

# The deletion is seen by the server; the other snapshots are intact.  A
# stale control socket (left by a dead server) is replaced.
rm -f "$D.sock"
"$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$D.sock"
start_server "$TMP/disk" "$D"
sc list > /dev/null || fail "the CLI cannot talk to a server that replaced a stale socket"
[ "$(sc_names | tr '\n' ' ')" = "s1 s3 " ] || fail "after restart: $(sc_names | tr '\n' ' ')"
[ "$(nbd_sha256 s1)" = "$sum_s1" ] || fail "s1 changed after offline delete of s2"
[ "$(nbd_sha256 s3)" = "$sum_s3" ] || fail "s3 changed after offline delete of s2"
if nbdinfo "$(uri s2)" > /dev/null 2>&1; then
    fail "deleted snapshot s2 is still exported"
fi
# Writes after the offline delete still preserve s1 and s3.
nbd_write_random live 0 $((8 * M))
[ "$(nbd_sha256 s1)" = "$sum_s1" ] || fail "s1 changed by writes after offline delete"
[ "$(nbd_sha256 s3)" = "$sum_s3" ] || fail "s3 changed by writes after offline delete"

# Another volume cannot take over a control socket in use.
make_disk "$TMP/disk2" 16M
first_pid=$SERVER_PID
first_ctl=$CTL
NBD_SOCK=$TMP/nbd-other.sock
if try_start_server "$TMP/disk2" "$TMP/diff2" control="$D.sock" 2>/dev/null; then
    fail "a second volume started on the control socket of a running server"
fi
SERVER_PID=$first_pid
CTL=$first_ctl
NBD_SOCK=$TMP/nbd.sock
server_alive "after another volume tried its control socket"
[ -S "$D.sock" ] || fail "the control socket in use was removed by the refused server"
[ "$(sc_names | tr '\n' ' ')" = "s1 s3 " ] ||
    fail "the control socket no longer reaches the first server"
stop_server

# A server with its control socket elsewhere holds the diff area: the
# offline CLI must refuse to delete, and a second server must not start.
mkdir "$TMP/ctl"
start_server "$TMP/disk" "$D" control="$TMP/ctl/control.sock"
[ "$CTL" = "$TMP/ctl/control.sock" ] || fail "control= not honoured"
[ ! -S "$D.sock" ] || fail "control= given, but a socket was created at $D.sock too"
sc_create s4
live_sum=$(nbd_sha256 live)
rc=0
timeout 10 "$SHADOWCOPY_CLI" --diff "$D" delete s1 > "$TMP/out" 2> "$TMP/err" || rc=$?
[ "$rc" -ne 124 ] || fail "offline delete while a server runs hung (flock wait?)"
[ "$rc" -ne 0 ] || fail "offline delete of s1 succeeded while a server holds the diff area"
[ "$(wc -l < "$TMP/err")" -eq 1 ] ||
    fail "offline delete while locked: expected one line on stderr, got: $(cat "$TMP/err")"
log "ok, offline delete while the server runs: $(cat "$TMP/err")"
rc=0
timeout 10 "$SHADOWCOPY_CLI" --diff "$D" delete --all > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
    fail "offline delete --all while a server runs: exit $rc"
rc=0
timeout 10 "$SHADOWCOPY_CLI" --diff "$D" list > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 124 ] || fail "offline list while a server runs hung"
[ "$(sc_names | tr '\n' ' ')" = "s1 s3 s4 " ] ||
    fail "snapshots after refused offline deletes: $(sc_names | tr '\n' ' ')"
[ "$(nbd_sha256 s1)" = "$sum_s1" ] || fail "s1 changed after the refused offline delete"
nbd_write_random live $((4 * M)) $M
[ "$(nbd_sha256 s1)" = "$sum_s1" ] || fail "s1 changed by writes after the refused offline delete"
[ "$(nbd_sha256 s4)" = "$live_sum" ] || fail "s4 wrong after the refused offline delete"

# A second server on the same diff area is refused; the first goes on.
first_pid=$SERVER_PID
first_sock=$NBD_SOCK
first_args=("${SERVER_ARGS[@]}")
NBD_SOCK=$TMP/nbd2.sock
loglines=$(wc -l < "$SERVER_LOG")
if try_start_server "$TMP/disk" "$D" control="$TMP/ctl/second.sock" 2>/dev/null; then
    fail "a second server started on a diff area already in use"
fi
tail -n +$((loglines + 1)) "$SERVER_LOG" |
    grep_all -Ei 'lock|in use|busy|already|resource temporarily' ||
    fail "the second server's error does not say the diff area is in use:
$(tail -n +$((loglines + 1)) "$SERVER_LOG")"
log "ok, second server refused: $(tail -n +$((loglines + 1)) "$SERVER_LOG" | grep -m1 -i error)"
SERVER_PID=$first_pid
NBD_SOCK=$first_sock
SERVER_ARGS=("${first_args[@]}")
CTL=$TMP/ctl/control.sock
server_alive "after a second server was refused"
[ -S "$CTL" ] || fail "the refused second server removed the first one's control socket"
[ "$(sc_names | tr '\n' ' ')" = "s1 s3 s4 " ] || fail "snapshots changed"
[ "$(nbd_sha256 s1)" = "$sum_s1" ] || fail "s1 changed"
stop_server

# Once the server is gone, the offline delete works.
sc_off "$D" delete s1 || fail "offline delete s1 after the server stopped failed"
sc_off "$D" delete --all || fail "offline delete --all failed"
[ -z "$(sc_off "$D" list --json | json '[s["name"] for s in d]')" ] ||
    fail "snapshots left after offline delete --all"
start_server "$TMP/disk" "$D"
[ -z "$(sc_names)" ] || fail "server lists snapshots after offline delete --all: $(sc_names)"
stop_server
exit 0
