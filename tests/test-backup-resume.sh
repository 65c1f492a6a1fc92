#!/bin/bash
# Tests backup --resume through the CLI and a real nbdkit (slowed down by the delay filter so that every interruption lands in the copy): a kill -9 of the CLI then --resume, full, incremental and qcow2 (also after SIGTERM; qemu-img check clean), ends with the snapshot's image, verify clean, less read the second time and the manifest counting both runs; SIGTERM keeps the work; a kill -9 of the server gives a clear error and no TARGET, and --resume then completes; a snapshot deleted and made again is started over, a deleted one fails clearly; without --resume a stale TARGET.partial is started over; --connections.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp

M=$((1024 * 1024))
SIZE=$((128 * M))
make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"

# 62 ms per read of 1 MiB, one at a time: 16 MiB/s, so the copy of
# 128 MiB takes 8 s and its first checkpoint (every 5 s) comes in it.
# One thread per connection (-t 1): nbdkit 1.32 can abort (assertion
# `sock >= 0' in raw_send_socket) when a client dies while several of
# its requests sleep in the delay filter.
slow_server () {
    [ -z "$SERVER_PID" ] || stop_server
    NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
        "$TMP/diff" rdelay=62ms
}
fast_server () {
    [ -z "$SERVER_PID" ] || stop_server
    start_server "$TMP/disk" "$TMP/diff"
}
backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

declare -A PIDS
# bg_backup KEY ARGS...: a backup in the background; out and err in
# $TMP/KEY.out and $TMP/KEY.err.
bg_backup () {
    local key=$1
    shift
    "$SHADOWCOPY_CLI" -c "$CTL" backup --nbd-socket "$NBD_SOCK" "$@" \
        > "$TMP/$key.out" 2> "$TMP/$key.err" &
    PIDS[$key]=$!
}
# wait_state KEY TARGET: until the backup KEY wrote TARGET.resume (its
# first checkpoint), while it still runs.
wait_state () {
    local i
    for ((i = 0; i < 300; i++)); do
        [ -e "$2.resume" ] && break
        kill -0 "${PIDS[$1]}" 2>/dev/null ||
            fail "backup $1 ended before its first checkpoint: $(cat "$TMP/$1.err")"
        sleep 0.1
    done
    [ -e "$2.resume" ] || fail "backup $1: no $2.resume after 30 s"
    kill -0 "${PIDS[$1]}" 2>/dev/null || fail "backup $1 ended: $(cat "$TMP/$1.err")"
}
kill9 () {
    kill -KILL "${PIDS[$1]}"
    wait "${PIDS[$1]}" 2>/dev/null || :
}
# interrupted TARGET: TARGET.partial and its state are there, no TARGET.
interrupted () {
    [ -f "$1.partial" ] && [ -f "$1.resume" ] ||
        fail "$1: the interrupted backup did not keep .partial and .resume"
    [ ! -e "$1" ] && [ ! -e "$1.manifest.json" ] ||
        fail "$1: an interrupted backup left a TARGET"
}
# resumed JSON TARGET SNAPSHOT: the resumed backup is the snapshot, and
# read less than the volume in this run.
resumed () {
    local j=$1 t=$2 s=$3
    [ "$(json 'd["resumed"]' < "$j")" = true ] || fail "$t: not resumed: $(cat "$j")"
    local from now
    from=$(json 'd["resumed-from"]' < "$j")
    now=$(json 'd["this-run"]["bytes-read"]' < "$j")
    [ "$from" -gt 0 ] && [ "$now" -lt "$SIZE" ] ||
        fail "$t: resumed from $from, read $now bytes again of $SIZE"
    nbd_save "$s" "$TMP/$s.img"
    cmp "$TMP/$s.img" "$t" || fail "$t: the resumed backup differs from $s"
    sc verify "$t" > /dev/null || fail "$t: verify of the resumed backup failed"
    [ ! -e "$t.partial" ] && [ ! -e "$t.resume" ] ||
        fail "$t: .partial or .resume left after the backup"
    log "ok, $t resumed from byte $from, $now bytes read again"
}

# ---- a full backup killed, then resumed --------------------------------
slow_server
sc_create s1
bg_backup full s1 --to "$B/full"
wait_state full "$B/full"
kill9 full
interrupted "$B/full"

fast_server
backup s1 --to "$B/full" --resume --json --progress=3 3> "$TMP/progress" \
    > "$TMP/full.json" || fail "backup --resume of the full backup failed"
resumed "$TMP/full.json" "$B/full" s1
# The manifest counts both runs: all of the (random) volume was read.
[ "$(json 'd["bytes-read"]' < "$B/full.manifest.json")" = "$SIZE" ] ||
    fail "full: the manifest does not count the first run: $(json 'd["bytes-read"]' < "$B/full.manifest.json")"
# Progress starts where the first run stopped.
from=$(json 'd["resumed-from"]' < "$TMP/full.json")
first=$(head -n 1 "$TMP/progress")
[ "${first%/100}" -ge $((from * 100 / SIZE)) ] ||
    fail "progress started at $first, resumed from byte $from"

# --resume to a TARGET in place: refused, in one line, nothing touched.
sha_full=$(sha256sum < "$B/full")
expect_cli_error "--resume to an existing TARGET" backup s1 --to "$B/full" --resume
echo "$CLI_ERR" | grep_all "already exists" || fail "--resume to an existing TARGET: $CLI_ERR"
[ "$(sha256sum < "$B/full")" = "$sha_full" ] || fail "--resume changed an existing TARGET"

# ---- an incremental killed, then resumed ----------------------------------
# 64 changed ranges of 1.5 MiB (not chunk-aligned) and 8 zeroed: about
# 100 MiB, more than 6 s of copy, the first checkpoint in it.
nbd_py live '
for i in range(64):
    h.pwrite(os.urandom(3 << 19), (i << 21) + (i * 4096) % (1 << 20))
for i in range(8):
    h.zero(1 << 16, ((i * 16 + 1) << 20) + (1 << 19) + (1 << 18))' ||
    fail "writing the changes of s2"
sc_create s2
want=$(sc diff s1 s2 --json | json 'd["total-bytes"]')
slow_server
bg_backup inc s2 --to "$B/inc" --since s1 --base "$B/full"
wait_state inc "$B/inc"
kill9 inc
interrupted "$B/inc"

# ---- more, interrupted in parallel on the slow server ----------------------
sc_create s3
sc_create s4
sc_create s5
bg_backup term s2 --to "$B/term"            # SIGTERM
bg_backup remade s3 --to "$B/remade"        # s3 made again
bg_backup gone s4 --to "$B/gone"            # s4 deleted
bg_backup stale s2 --to "$B/stale"          # then without --resume
bg_backup server s2 --to "$B/server"        # the server killed
bg_backup deleted s5 --to "$B/deleted"      # s5 deleted during the copy
bg_backup twice s2 --to "$B/twice"          # SIGTERM twice
for k in term remade gone stale server deleted twice; do wait_state "$k" "$B/$k"; done
# The first SIGTERM waits for the reads in flight (about 1 s here); a
# second one ends the command at once, by the signal.
kill -TERM "${PIDS[twice]}"
sleep 0.05
kill -TERM "${PIDS[twice]}"
rc=0; wait "${PIDS[twice]}" || rc=$?
[ "$rc" = 143 ] || fail "SIGTERM twice: exit $rc: $(cat "$TMP/twice.err")"
interrupted "$B/twice"
# A snapshot deleted during its backup: a clear error, nothing kept (the
# image would be of nothing that exists), and --resume says it is gone.
sc delete s5 > /dev/null
rc=0; wait "${PIDS[deleted]}" || rc=$?
[ "$rc" = 1 ] && [ "$(wc -l < "$TMP/deleted.err")" = 1 ] &&
    grep -q "snapshot s5 was deleted or made again during the backup" "$TMP/deleted.err" ||
    fail "s5 deleted during its backup: exit $rc: $(cat "$TMP/deleted.err")"
log "ok, deleted during the backup: $(cat "$TMP/deleted.err")"
[ ! -e "$B/deleted" ] && [ ! -e "$B/deleted.partial" ] && [ ! -e "$B/deleted.resume" ] ||
    fail "s5 deleted during its backup: files left"
expect_cli_error "--resume of a snapshot deleted during the backup" \
    backup s5 --to "$B/deleted" --resume
echo "$CLI_ERR" | grep_all "snapshot s5 does not exist (or no longer)" ||
    fail "--resume of s5: $CLI_ERR"
kill -TERM "${PIDS[term]}"
rc=0; wait "${PIDS[term]}" || rc=$?
[ "$rc" = 1 ] || fail "SIGTERM: exit $rc: $(cat "$TMP/term.err")"
grep -q "interrupted.*run the same command with --resume" "$TMP/term.err" ||
    fail "SIGTERM: $(cat "$TMP/term.err")"
[ "$(wc -l < "$TMP/term.err")" = 1 ] || fail "SIGTERM: more than one line: $(cat "$TMP/term.err")"
interrupted "$B/term"
for k in remade gone stale; do kill9 "$k"; interrupted "$B/$k"; done
kill -KILL "$SERVER_PID"
rc=0; wait "${PIDS[server]}" || rc=$?
wait "$SERVER_PID" 2>/dev/null || :
_forget_pid "$SERVER_PID"
SERVER_PID=
[ "$rc" = 1 ] || fail "server killed: exit $rc: $(cat "$TMP/server.err")"
[ "$(wc -l < "$TMP/server.err")" = 1 ] || fail "server killed: more than one line: $(cat "$TMP/server.err")"
grep -q "the NBD server closed the connection.*--resume" "$TMP/server.err" ||
    fail "server killed: $(cat "$TMP/server.err")"
log "ok, the server killed: $(cat "$TMP/server.err")"
[ ! -e "$B/server" ] && [ ! -e "$B/server.manifest.json" ] ||
    fail "the server killed: a TARGET was left"

fast_server
backup s2 --to "$B/inc" --since s1 --base "$B/full" --resume --json \
    > "$TMP/inc.json" || fail "backup --resume of the incremental failed"
resumed "$TMP/inc.json" "$B/inc" s2
[ "$(sha256sum < "$B/full")" = "$sha_full" ] || fail "the resumed incremental changed PREV"
got=$(json 'd["bytes-written"] + d["bytes-zeroed"]' < "$B/inc.manifest.json")
[ "$got" = "$want" ] || fail "incremental: the manifest counts $got bytes; diff reported $want"
now=$(json 'd["this-run"]["bytes-read"]' < "$TMP/inc.json")
[ "$now" -lt "$want" ] || fail "incremental: read $now bytes again of $want"

backup s2 --to "$B/term" --resume --json > "$TMP/term.json" ||
    fail "backup --resume after SIGTERM failed"
resumed "$TMP/term.json" "$B/term" s2
backup s2 --to "$B/server" --resume --json > "$TMP/server.json" ||
    fail "backup --resume after the server was killed failed"
resumed "$TMP/server.json" "$B/server" s2

# Without --resume, a stale TARGET.partial is started over.
backup s2 --to "$B/stale" --json > "$TMP/stale.json" 2> "$TMP/stale.err" ||
    fail "a backup over a stale partial failed: $(cat "$TMP/stale.err")"
[ "$(json 'd["resumed"]' < "$TMP/stale.json")" = false ] &&
    [ "$(json 'd["this-run"]["bytes-read"] == d["bytes-read"] > 100 * 2**20' < "$TMP/stale.json")" = true ] ||
    fail "without --resume: $(cat "$TMP/stale.json")"
cmp "$TMP/s2.img" "$B/stale" || fail "the backup over a stale partial differs from s2"

# s3 deleted and made again: another snapshot, so started over, saying why.
sc delete s3 > /dev/null
nbd_write_random live 0 $M
sc_create s3
backup s3 --to "$B/remade" --resume --json > "$TMP/remade.json" 2> "$TMP/remade.err" ||
    fail "--resume of a snapshot made again failed: $(cat "$TMP/remade.err")"
grep -q "cannot resume: .*s3 is another snapshot now.*starting over" "$TMP/remade.err" ||
    fail "--resume of a snapshot made again does not say why it starts over: $(cat "$TMP/remade.err")"
[ "$(json 'd["resumed"]' < "$TMP/remade.json")" = false ] ||
    fail "a snapshot made again was resumed"
nbd_save s3 "$TMP/s3.img"
cmp "$TMP/s3.img" "$B/remade" || fail "the backup of the new s3 differs from it"

# s4 deleted: --resume fails, saying so.
sc delete s4 > /dev/null
expect_cli_error "--resume of a deleted snapshot" backup s4 --to "$B/gone" --resume
echo "$CLI_ERR" | grep_all "snapshot s4 no longer exists.*cannot be resumed" ||
    fail "--resume of a deleted snapshot: $CLI_ERR"
[ ! -e "$B/gone" ] && [ ! -e "$B/gone.partial" ] && [ ! -e "$B/gone.resume" ] ||
    fail "--resume of a deleted snapshot left files"

# --resume with nothing to resume, or a damaged state: said, started over.
backup s2 --to "$B/none" --resume > /dev/null 2> "$TMP/none.err" ||
    fail "--resume with nothing to resume failed"
grep -q "cannot resume: there is no .*none.partial; starting over" "$TMP/none.err" ||
    fail "--resume with nothing to resume: $(cat "$TMP/none.err")"
truncate -s "$SIZE" "$B/bad.partial"
head -c 4408 /dev/urandom > "$B/bad.resume"
backup s2 --to "$B/bad" --resume > /dev/null 2> "$TMP/bad.err" ||
    fail "--resume with a damaged state failed"
grep -q "bad.resume is damaged.*starting over" "$TMP/bad.err" ||
    fail "--resume with a damaged state: $(cat "$TMP/bad.err")"
cmp "$TMP/s2.img" "$B/bad" || fail "the backup over a damaged state differs from s2"

# ---- a qcow2 backup killed or stopped, then resumed ----------------------------
# The killed CLI's qemu-nbd sees its client gone, flushes and closes the
# image: TARGET.partial is a whole qcow2 image, kept (qcow2_keep) and
# continued.  qemu-img check must find it clean: with qemu-nbd closing
# the image itself, not even leaked clusters are expected (those would
# come only from a crash of qemu-nbd or the machine, and be harmless).
# SIGTERM instead: the CLI stops qemu-nbd itself and keeps the image.
if command -v qemu-img > /dev/null && command -v qemu-nbd > /dev/null; then
    slow_server
    bg_backup q s2 --to "$B/q.qcow2" --format qcow2
    bg_backup qt s2 --to "$B/qt.qcow2" --format qcow2
    wait_state q "$B/q.qcow2"
    wait_state qt "$B/qt.qcow2"
    kill9 q
    kill -TERM "${PIDS[qt]}"
    rc=0; wait "${PIDS[qt]}" || rc=$?
    [ "$rc" = 1 ] && grep -q "interrupted.*qt.qcow2.partial is kept: run the same command with --resume" "$TMP/qt.err" ||
        fail "qcow2, SIGTERM: exit $rc: $(cat "$TMP/qt.err")"
    interrupted "$B/q.qcow2"
    interrupted "$B/qt.qcow2"
    fast_server
    for k in q qt; do
        t=$B/$k.qcow2
        backup s2 --to "$t" --format qcow2 --resume --json > "$TMP/$k.json" ||
            fail "backup --resume of qcow2 backup $k failed"
        [ "$(json 'd["resumed"]' < "$TMP/$k.json")" = true ] || fail "$t: not resumed: $(cat "$TMP/$k.json")"
        from=$(json 'd["resumed-from"]' < "$TMP/$k.json")
        now=$(json 'd["this-run"]["bytes-read"]' < "$TMP/$k.json")
        [ "$from" -gt 0 ] && [ "$now" -lt "$SIZE" ] ||
            fail "$t: resumed from $from, read $now bytes again of $SIZE"
        out=$(qemu-img compare -f qcow2 -F raw "$t" "$TMP/s2.img" 2>&1) ||
            fail "$t: the resumed backup differs from s2: $out"
        out=$(qemu-img check -f qcow2 "$t" 2>&1) ||
            fail "$t: qemu-img check of the resumed backup: $out"
        sc verify "$t" > /dev/null || fail "$t: verify of the resumed backup failed"
        # stale is a full backup of s2 in one run.
        [ "$(json 'd["bytes-read"]' < "$t.manifest.json")" = \
          "$(json 'd["bytes-read"]' < "$B/stale.manifest.json")" ] ||
            fail "$t: the manifest does not count the first run"
        [ ! -e "$t.partial" ] && [ ! -e "$t.resume" ] ||
            fail "$t: .partial or .resume left after the backup"
        log "ok, $t resumed from byte $from, $now bytes read again"
    done
    ! pgrep -f "qemu-nbd.*$TMP" > /dev/null || fail "qemu-nbd left running: $(pgrep -af "qemu-nbd.*$TMP")"
else
    log "no qemu-img or qemu-nbd: the resume of a qcow2 backup is not tested"
fi

# ---- connections ---------------------------------------------------------
backup s2 --to "$B/conn4" --connections 4 --json > "$TMP/conn4.json" ||
    fail "--connections 4 failed"
[ "$(json 'd["connections"]' < "$TMP/conn4.json")" = 4 ] ||
    fail "--connections 4: $(cat "$TMP/conn4.json")"
cmp "$TMP/s2.img" "$B/conn4" || fail "--connections 4: differs from s2"
rc=0; backup s2 --to "$B/c0" --connections 0 > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--connections 0: exit $rc"
rc=0; backup s2 --to "$B/c0" --connections 17 > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--connections 17: exit $rc"
# An export that does not offer multi-conn gets one connection.
stop_server
NBDKIT_EXTRA_ARGS=--filter=multi-conn start_server "$TMP/disk" "$TMP/diff" \
    multi-conn-mode=disable
backup s2 --to "$B/conn1" --connections 4 --json > "$TMP/conn1.json" ||
    fail "--connections 4 without multi-conn failed"
[ "$(json 'd["connections"]' < "$TMP/conn1.json")" = 1 ] ||
    fail "--connections 4 without multi-conn: $(cat "$TMP/conn1.json")"
cmp "$TMP/s2.img" "$B/conn1" || fail "one connection: differs from s2"

stop_server
exit 0
