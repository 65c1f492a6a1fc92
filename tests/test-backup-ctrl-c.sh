#!/bin/bash
# Tests a Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a qcow2 backup: it reaches the CLI only, not the qemu-nbd it runs for the image, so the backup stops as on SIGTERM ("interrupted", the reads in flight written and a last state), keeps TARGET.partial, and --resume completes it, equal to the snapshot, qemu-img check clean, no qemu-nbd left.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy qemu-img qemu-nbd setsid pgrep

make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"
# 16 MiB/s, -t 1 (see test-backup-resume.sh).
NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
    "$TMP/diff" rdelay=62ms
sc_create s1
# In a process group of its own, as a command run from a shell's
# terminal is; its pid is the group's id.
setsid "$SHADOWCOPY_CLI" -c "$CTL" backup s1 --to "$B/t.qcow2" --format qcow2 \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/t.err" &
pid=$!
for ((i = 0; i < 300; i++)); do
    [ -e "$B/t.qcow2.resume" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the backup ended early: $(cat "$TMP/t.err")"
    sleep 0.1
done
[ -e "$B/t.qcow2.resume" ] || fail "no state after 30 s"
sleep 0.5
kill -INT -- "-$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 1 ] && [ "$(wc -l < "$TMP/t.err")" = 1 ] &&
    grep -q "interrupted; .*t.qcow2.partial is kept: run the same command with --resume" "$TMP/t.err" ||
    fail "Ctrl-C: exit $rc: $(cat "$TMP/t.err")"
[ -f "$B/t.qcow2.partial" ] && [ -f "$B/t.qcow2.resume" ] && [ ! -e "$B/t.qcow2" ] ||
    fail "Ctrl-C: files: $(ls "$B")"
log "ok, Ctrl-C: $(cat "$TMP/t.err")"

stop_server
start_server "$TMP/disk" "$TMP/diff"
sc backup s1 --to "$B/t.qcow2" --format qcow2 --nbd-socket "$NBD_SOCK" \
    --resume --json > "$TMP/t.json" || fail "--resume after Ctrl-C failed"
[ "$(json 'd["resumed"]' < "$TMP/t.json")" = true ] || fail "not resumed: $(cat "$TMP/t.json")"
nbd_save s1 "$TMP/s1.img"
out=$(qemu-img compare -f qcow2 -F raw "$B/t.qcow2" "$TMP/s1.img" 2>&1) ||
    fail "the resumed backup differs from s1: $out"
out=$(qemu-img check -f qcow2 "$B/t.qcow2" 2>&1) || fail "qemu-img check: $out"
! pgrep -f "qemu-nbd.*$TMP" > /dev/null || fail "qemu-nbd left running: $(pgrep -af "qemu-nbd.*$TMP")"
stop_server
exit 0
