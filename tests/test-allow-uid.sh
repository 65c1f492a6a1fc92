#!/bin/bash
# Tests the plugin's allow-uid=: a Unix-socket client whose uid is not
# listed is refused (nobody, by setpriv), with a log line naming its uid;
# a listed uid is let in; a TCP client is not affected; bad values stop
# the server at start with a clear error.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdinfo setpriv
[ "$(id -u)" -eq 0 ] || skip "needs root to run a client as another uid"
NOBODY=65534

make_disk "$TMP/disk" 4M
# nobody must reach the socket: through $TMP, and write to the socket.
chmod 0711 "$TMP"
as_nobody () {
    setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"
}

start_server "$TMP/disk" "$TMP/diff" allow-uid=0
chmod 0777 "$NBD_SOCK"
sc_create s1
nbdinfo "$(uri s1)" > /dev/null || fail "root refused with allow-uid=0"
n=$(wc -l < "$SERVER_LOG")
as_nobody nbdinfo "$(uri s1)" > "$TMP/nobody.out" 2>&1 &&
    fail "uid $NOBODY let in with allow-uid=0"
as_nobody nbdinfo --list "$(uri "")" >> "$TMP/nobody.out" 2>&1 &&
    fail "uid $NOBODY listed the exports with allow-uid=0"
tail -n +"$((n + 1))" "$SERVER_LOG" |
    grep_all "connection refused: a client of uid $NOBODY on the Unix socket, and allow-uid=0" ||
    fail "no clear refusal of uid $NOBODY in the server log"
log "ok, uid $NOBODY refused: $(head -n 1 "$TMP/nobody.out")"
stop_server

start_server "$TMP/disk" "$TMP/diff" allow-uid=0,$NOBODY
chmod 0777 "$NBD_SOCK"
as_nobody nbdinfo "$(uri s1)" > /dev/null ||
    fail "uid $NOBODY refused with allow-uid=0,$NOBODY"
log "ok, uid $NOBODY let in when listed"
stop_server

# TCP: no uid to trust; allow-uid does not apply.
start_tcp_server "$TMP/disk" "$TMP/diff" -- allow-uid=12345
nbdinfo "nbd://127.0.0.1:$PORT/s1" > /dev/null ||
    fail "a TCP client refused by allow-uid"
log "ok, TCP clients not affected"
stop_server

for v in abc 1,,2 -1 4294967295 1,x ""; do
    if try_start_server "$TMP/disk" "$TMP/diff" "allow-uid=$v" 2>/dev/null; then
        fail "allow-uid=$v: the server started"
    fi
    tail -n 3 "$SERVER_LOG" | grep_all "allow-uid=$v: must be numeric uids" ||
        fail "allow-uid=$v: no clear error"
done
log "ok, bad allow-uid refused at start"
