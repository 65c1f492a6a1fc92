#!/bin/bash
# Tests that a kill -9 of `shadowcopy backup` (and of `verify --against`) with reads in flight on nbdkit's default thread count leaves the server up (nbdkit 1.32.5 aborted on `sock >= 0' in raw_send_socket): the live export and the snapshot still served, `backup --resume` right after the kill not refused and equal to the snapshot; each connection's guardian holds only its socket and its control end, and is gone after a clean run at once and after a kill within its bounded drain.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo cmp pgrep

make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"
# Marks this test's processes: a guardian is found by its environment
# even after its CLI is gone (other tests may run at the same time).
export SC_GUARD_TEST=$TMP
NAME=sc-nbd-guard               # SC_NBD_GUARD_NAME
DRAIN=60                        # SC_NBD_GUARD_DRAIN_SECONDS

# 1 s per read of 1 MiB, 16 in flight per connection (nbdkit's default
# thread count, no -t 1): 16 MiB/s, so a kill lands with 16 reads
# sleeping in the filter, and the first checkpoint (5 s) comes before
# the end (8 s).
slow_server () {
    [ -z "$SERVER_PID" ] || stop_server
    NBDKIT_EXTRA_ARGS=--filter=delay start_server "$TMP/disk" "$TMP/diff" \
        rdelay=1
}

# guards_of PID: the guardians the CLI PID started (its children).
guards_of () { pgrep -P "$1" -x "$NAME" | sort -n | tr '\n' ' ' || :; }
# test_guards: every guardian of this test still running.
test_guards () {
    local p
    for p in $(pgrep -x "$NAME" || :); do
        running "$p" || continue
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null |
            grep_all -xF "SC_GUARD_TEST=$TMP" && echo -n "$p "
    done
    :
}
# wait_guards PID N: until the CLI PID runs N guardians, while it runs;
# prints them.
wait_guards () {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(guards_of "$1" | wc -w)" -ge "$2" ] && break
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    guards_of "$1"
}
# check_fds PID...: each guardian holds exactly two descriptors, both
# sockets (the NBD connection, its control end): no TARGET.partial, no
# stdout, no other guardian's control end.  Prints what is wrong.
check_fds () {
    local g fds
    for g; do
        fds=$(for f in /proc/"$g"/fd/*; do readlink "$f"; done | tr '\n' ' ')
        [[ "$fds" =~ ^socket:\[[0-9]+\]\ socket:\[[0-9]+\]\ $ ]] ||
            echo "guardian $g holds: $fds"
    done
}
# running PID: the process runs (a zombie whose parent died waits for
# init to reap it, but it has ended).
running () {
    local st
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$st" != Z ]
}
# wait_gone LIMIT PID...: the guardians end within LIMIT seconds.
wait_gone () {
    local limit=$1 g i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        for g; do
            if running "$g"; then sleep 0.1; continue 2; fi
        done
        log "guardian(s) $* gone after $((i / 10)).$((i % 10)) s"
        return 0
    done
    fail "guardian(s) still running after $limit s: $(test_guards)"
}
# serving: the server is up and serves the live volume and snapshot s0.
serving () {
    server_alive "$1"
    nbdinfo --size "$(uri "")" > /dev/null || fail "$1: live export not served"
    nbdinfo --size "$(uri s0)" > /dev/null || fail "$1: snapshot s0 not served"
    nbd_py s0 'assert len(h.pread(4096, 0)) == 4096' ||
        fail "$1: snapshot s0 cannot be read"
}
backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

start_server "$TMP/disk" "$TMP/diff"
sc_create s0
nbd_save s0 "$TMP/s0.img"
slow_server

# ---- kill -9 of backup, one connection, 16 reads in flight ----------
"$SHADOWCOPY_CLI" -c "$CTL" backup s0 --to "$B/a.raw" \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/a.err" &
pid=$!
for ((i = 0; i < 300; i++)); do
    [ -e "$B/a.raw.resume" ] && break
    sleep 0.1
done
[ -e "$B/a.raw.resume" ] || fail "no checkpoint after 30 s: $(cat "$TMP/a.err")"
kill -0 "$pid" || fail "the backup ended before the kill: $(cat "$TMP/a.err")"
G=$(guards_of "$pid")
FDS=$(check_fds $G)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || :
# At once, while the old connection drains: the killed backup's lock on
# TARGET.partial went with it (its guardian holds none).
"$SHADOWCOPY_CLI" -c "$CTL" backup s0 --to "$B/a.raw" --resume --json \
    --nbd-socket "$NBD_SOCK" > "$TMP/r.json" 2> "$TMP/r.err" &
rpid=$!
wait_gone $((DRAIN + 5)) $G
sleep 2                         # every read the server held has ended
serving "after a kill -9 of backup with 16 reads in flight"
# (soft: without guardians, the next kills may abort the server too)
[ "$(echo $G | wc -w)" = 1 ] || soft_fail "one connection, guardians: '$G'"
[ -z "$FDS" ] || soft_fail "$FDS"
RG=$(wait_guards "$rpid" 1)
[ "$(echo $RG | wc -w)" = 1 ] || soft_fail "--resume, guardians: '$RG'"
rc=0; wait "$rpid" || rc=$?
[ "$rc" = 0 ] || fail "--resume right after the kill: exit $rc: $(cat "$TMP/r.err")"
[ -z "$(test_guards)" ] || fail "guardians left after --resume: $(test_guards) (its own: $RG)"
[ "$(json 'd["resumed"]' < "$TMP/r.json")" = true ] || fail "not resumed: $(cat "$TMP/r.json")"
cmp "$TMP/s0.img" "$B/a.raw" || fail "the resumed backup differs from s0"
sc verify "$B/a.raw" > /dev/null || fail "verify of the resumed backup failed"
log "ok: backup killed with reads in flight, server up, resumed"

# ---- kill -9 of backup, two connections (two guardians) -------------
# (32 MiB/s: the copy takes 4 s)
"$SHADOWCOPY_CLI" -c "$CTL" backup s0 --to "$B/m.raw" --connections 2 \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/m.err" &
pid=$!
sleep 1.5                       # every connection has its reads in flight
kill -0 "$pid" || fail "the backup ended before the kill: $(cat "$TMP/m.err")"
G=$(guards_of "$pid")
FDS=$(check_fds $G)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || :
wait_gone $((DRAIN + 5)) $G
sleep 2
serving "after a kill -9 of backup on two connections"
[ "$(echo $G | wc -w)" = 2 ] || soft_fail "two connections, guardians: '$G'"
[ -z "$FDS" ] || soft_fail "$FDS"
log "ok: two connections killed, server up"

# ---- kill -9 of verify --against --------------------------------------
"$SHADOWCOPY_CLI" -c "$CTL" verify "$B/a.raw" --against s0 \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/v.err" &
pid=$!
sleep 3                         # a read of the snapshot is in flight
kill -0 "$pid" || fail "verify ended before the kill: $(cat "$TMP/v.err")"
G=$(guards_of "$pid")
FDS=$(check_fds $G)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || :
wait_gone $((DRAIN + 5)) $G
sleep 2
serving "after a kill -9 of verify --against"
[ "$(echo $G | wc -w)" = 1 ] || soft_fail "verify --against, guardians: '$G'"
[ -z "$FDS" ] || soft_fail "$FDS"
log "ok: verify --against killed, server up"

# ---- clean runs leave no guardian -----------------------------------
stop_server
start_server "$TMP/disk" "$TMP/diff"
backup s0 --to "$B/c.raw" --connections 4 > /dev/null ||
    fail "backup --connections 4 failed"
[ -z "$(test_guards)" ] || fail "guardians left after a backup: $(test_guards)"
cmp "$TMP/s0.img" "$B/c.raw" || fail "the backup differs from s0"
sc verify "$B/c.raw" --against s0 --nbd-socket "$NBD_SOCK" > /dev/null ||
    fail "verify --against failed"
[ -z "$(test_guards)" ] || fail "guardians left after verify --against: $(test_guards)"

stop_server
exit 0
