#!/bin/bash
# Tests a kill -9 of the NBD server during a backup over four connections (multi-conn): the backup ends with one clear line and exit status 1 (no crash, whatever the reads in flight on the other connections), keeps TARGET.partial with its state, leaves no TARGET, and --resume then completes it.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp

make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"
# 250 ms per read, -t 1 (see test-backup-resume.sh): the kill comes
# after the first checkpoint, with reads in flight on every connection.
NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
    "$TMP/diff" rdelay=250ms
sc_create s1
"$SHADOWCOPY_CLI" -c "$CTL" backup s1 --to "$B/t" --connections 4 \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/t.err" &
pid=$!
for ((i = 0; i < 300; i++)); do
    [ -e "$B/t.resume" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the backup ended early: $(cat "$TMP/t.err")"
    sleep 0.1
done
[ -e "$B/t.resume" ] || fail "no state after 30 s"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=
rc=0; wait "$pid" || rc=$?
[ "$rc" = 1 ] || fail "the server killed: exit $rc: $(cat "$TMP/t.err")"
[ "$(wc -l < "$TMP/t.err")" = 1 ] &&
    grep -q "the NBD server closed the connection.*is kept: run the same command with --resume" "$TMP/t.err" ||
    fail "the server killed: $(cat "$TMP/t.err")"
[ -f "$B/t.partial" ] && [ -f "$B/t.resume" ] && [ ! -e "$B/t" ] ||
    fail "the server killed: files: $(ls "$B")"
log "ok, the server killed: $(cat "$TMP/t.err")"

start_server "$TMP/disk" "$TMP/diff"
sc backup s1 --to "$B/t" --connections 4 --nbd-socket "$NBD_SOCK" --resume \
    > /dev/null || fail "--resume failed"
nbd_save s1 "$TMP/s1.img"
cmp "$TMP/s1.img" "$B/t" || fail "the resumed backup differs from s1"
stop_server
exit 0
