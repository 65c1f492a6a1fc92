#!/bin/bash
# The postgresql writer against a real PostgreSQL: a cluster on ext4 on the live export (nbdfuse + loop) under a write load of committed inserts; `shadowcopy create --writer postgresql:CONNINFO` runs CHECKPOINT in the prepare phase, before any writer freezes (the cluster counts one more requested checkpoint) and reports it with its duration; the snapshot, cloned and mounted read-write, is opened by a second postmaster: it recovers, and every row committed before the snapshot is there.  A wrong connection string: a clear error quoting psql, the creation aborted.  The CHECKPOINT's duration and the freeze-to-thaw time under load are reported.  Needs root, /dev/fuse, loop devices and PostgreSQL (Debian package postgresql; else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires psql nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid runuser
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount, runuser)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f >/dev/null 2>&1 || skip "no free loop device"
id postgres >/dev/null 2>&1 || skip "no postgres user (Debian package postgresql)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] && [ -x "$pgbin/pg_ctl" ] && [ -x "$pgbin/initdb" ] ||
    skip "no PostgreSQL server binaries (Debian package postgresql)"
pg () { runuser -u postgres -- "$@"; }

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
chmod 755 "$TMP"
MNT=$TMP/live
RESTORE=$TMP/restore
RUN=$TMP/pgrun
mkdir -p "$MNT" "$RESTORE" "$RUN"
chown postgres "$RUN"
port=$((20000 + RANDOM % 20000))
port2=$((port + 1))
LOOP=
FUSE_PID=
APP_PID=
pg_cleanup () {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    [ -f "$RESTORE/pg/data/postmaster.pid" ] &&
        pg "$pgbin/pg_ctl" -D "$RESTORE/pg/data" -m immediate -w stop >/dev/null 2>&1
    [ -f "$MNT/pg/data/postmaster.pid" ] &&
        pg "$pgbin/pg_ctl" -D "$MNT/pg/data" -m immediate -w stop >/dev/null 2>&1
    mountpoint -q "$RESTORE" && "$SHADOWCOPY_CLI" umount "$RESTORE"
    live_ext4_umount
}
trap 'rc=$?; set +e; pg_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 256M "$TMP/disk"
start_server "$TMP/disk" "$TMP/diff"
live_ext4_mount "$MNT"
mkdir -p "$MNT/pg"
chown postgres "$MNT/pg"
pg "$pgbin/initdb" -A trust -U postgres --no-sync -D "$MNT/pg/data" \
    >"$TMP/initdb.log" 2>&1 || fail "initdb failed: $(tail -n 5 "$TMP/initdb.log")"
sync -f "$MNT"
pg "$pgbin/pg_ctl" -D "$MNT/pg/data" -l "$RUN/pg-live.log" -w \
    -o "-p $port -k $RUN -c listen_addresses=''" start >/dev/null ||
    fail "postgres did not start: $(tail -n 5 "$RUN/pg-live.log")"
psql_on () {            # PORT SQL
    psql -X -q -t -A -h "$RUN" -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$2"
}
psql_on "$port" "create table t (id int primary key, v text)" >/dev/null
CONNINFO="host=$RUN port=$port user=postgres dbname=postgres"

: >"$TMP/done.log"
(
    n=0
    while [ ! -e "$TMP/stop" ]; do
        n=$((n + 1))
        psql_on "$port" "insert into t values ($n, repeat('x', 2000))" >/dev/null || exit 1
        echo "$n" >>"$TMP/done.log"
    done
) 2>"$TMP/app.log" &
APP_PID=$!
for ((i = 0; i < 200; i++)); do
    [ "$(wc -l <"$TMP/done.log")" -ge 30 ] && break
    sleep 0.1
done
[ "$(wc -l <"$TMP/done.log")" -ge 30 ] || fail "the load does not commit: $(cat "$TMP/app.log")"

# 1. A wrong connection string: psql's error, the creation aborted.
rc=0
sc create --writer "postgresql:host=$RUN port=$port2 user=postgres" bad > /dev/null 2> "$TMP/bad.err" || rc=$?
[ "$rc" -ne 0 ] || fail "create with a wrong connection string succeeded"
grep -q "writer postgresql:host=$RUN port=$port2 user=postgres: prepare: failed: CHECKPOINT failed: psql: error: .*$port2" "$TMP/bad.err" ||
    fail "not the expected error: $(cat "$TMP/bad.err")"
[ -z "$(sc_names)" ] || fail "a snapshot was kept: $(sc_names)"
log "bad: $(cat "$TMP/bad.err")"

# 2. The snapshot, under the load.
req0=$(psql_on "$port" "select checkpoints_req from pg_stat_bgwriter")
before=$(wc -l <"$TMP/done.log")
SHADOWCOPY_REPORT_FREEZE=1 sc create --writer "postgresql:$CONNINFO" db-snap > /dev/null 2> "$TMP/create.err" ||
    fail "create failed: $(cat "$TMP/create.err")"
log "$(tr '\n' ' ' < "$TMP/create.err")"
ms=$(sed -n "s/^shadowcopy: writer postgresql:.*: prepare: CHECKPOINT done in \([0-9]*\) ms$/\1/p" "$TMP/create.err")
[ -n "$ms" ] || fail "no CHECKPOINT report: $(cat "$TMP/create.err")"
req1=$(psql_on "$port" "select checkpoints_req from pg_stat_bgwriter")
[ "$req1" -gt "$req0" ] || fail "no CHECKPOINT was requested ($req0, then $req1)"
frozen=$(sed -n 's/^shadowcopy: freeze to thaw: \([0-9]*\) ms$/\1/p' "$TMP/create.err")
log "under load: CHECKPOINT $ms ms; freeze to thaw (postgresql): ${frozen:-?} ms"
sleep 0.5
touch "$TMP/stop"
wait "$APP_PID" || fail "the load failed: $(cat "$TMP/app.log")"
APP_PID=
after=$(wc -l <"$TMP/done.log")

# 3. The snapshot opened by PostgreSQL.
sc clone db-snap db-restore >/dev/null || fail "clone failed"
"$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" db-restore "$RESTORE" \
    >/dev/null || fail "mount of the clone failed"
rm -f "$RESTORE/pg/data/postmaster.pid"
pg "$pgbin/pg_ctl" -D "$RESTORE/pg/data" -l "$RUN/pg-restore.log" -w \
    -o "-p $port2 -k $RUN -c listen_addresses=''" start >/dev/null ||
    fail "postgres did not start on the copy: $(tail -n 8 "$RUN/pg-restore.log")"
got=$(psql_on "$port2" "select count(*) from t where id <= $before")
[ "$got" = "$before" ] || fail "the copy has $got of the $before rows committed before the snapshot"
total=$(psql_on "$port2" "select count(*) from t")
[ "$total" -le "$after" ] || fail "the copy has $total rows, more than the $after committed"
log "the copy recovered with $total rows, all $before committed before the snapshot among them: $(grep -E 'redo (starts|done)' "$RUN/pg-restore.log" | tr '\n' ' ')"
pg "$pgbin/pg_ctl" -D "$RESTORE/pg/data" -w stop >/dev/null || fail "stopping the copy failed"
"$SHADOWCOPY_CLI" umount "$RESTORE" || fail "umount of the clone failed"
