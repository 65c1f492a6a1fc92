#!/bin/bash
# The README's database restore, for real: a PostgreSQL cluster on ext4 on
# the live export (nbdfuse + loop), under a write load of committed
# inserts; a crash-consistent snapshot taken without writers; then, as the
# README says, a writable clone of it mounted read-write with shadowcopy
# mount (ext4 replays its journal), the stale postmaster.pid removed, and
# PostgreSQL started on the copy on another port and socket directory: it
# replays its WAL, and every row committed before the snapshot is there.
# Needs root, /dev/fuse, loop devices and PostgreSQL (Debian package
# postgresql; else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid runuser
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
export SHADOWCOPY_MOUNT_FUSE=1       # the nbdfuse path even where /dev/nbd* exists
chmod 755 "$TMP"                     # postgres walks into it
MNT=$TMP/live
RESTORE=$TMP/restore
RUN=$TMP/pgrun                       # the sockets of both clusters
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

# The live export through nbdfuse and a loop device; ext4 on it.
live_ext4_mount "$MNT"

# A cluster on it, and a table.
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

# The load: row N inserted and committed (synchronous_commit is on: the
# WAL is flushed down to the live export), and only then N appended to
# done.log (outside the filesystem).  A row is committed once it is there.
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
    [ "$(wc -l <"$TMP/done.log" 2>/dev/null || echo 0)" -ge 30 ] && break
    sleep 0.1
done
[ "$(wc -l <"$TMP/done.log")" -ge 30 ] || fail "the load does not commit: $(cat "$TMP/app.log")"

# A crash-consistent snapshot, without writers, under the load.
before=$(wc -l <"$TMP/done.log")
sc create --no-writers db-snap >/dev/null || fail "create failed"
sleep 0.5                               # the load goes on past it
touch "$TMP/stop"
wait "$APP_PID" || fail "the load failed: $(cat "$TMP/app.log")"
APP_PID=
after=$(wc -l <"$TMP/done.log")
log "$before rows committed before the snapshot, $after in all"

# The README's restore: a writable clone, mounted read-write.
sc clone db-snap db-restore >/dev/null || fail "clone failed"
"$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" db-restore "$RESTORE" \
    >/dev/null || fail "mount of the clone failed"
grep " $RESTORE " /proc/mounts | grep_all " rw," || fail "the clone is not mounted read-write"
[ -f "$RESTORE/pg/data/postmaster.pid" ] ||
    fail "no stale postmaster.pid on the copy (the snapshot was not of a running cluster?)"
# Without removing it, PostgreSQL may refuse the copy (the pid in it can
# be a live process: here the running cluster's own).
rm "$RESTORE/pg/data/postmaster.pid"
pg "$pgbin/pg_ctl" -D "$RESTORE/pg/data" -l "$RUN/pg-restore.log" -w \
    -o "-p $port2 -k $RUN -c listen_addresses=''" start >/dev/null ||
    fail "postgres did not start on the copy: $(tail -n 8 "$RUN/pg-restore.log")"
grep -q "database system was not properly shut down; automatic recovery in progress" \
    "$RUN/pg-restore.log" ||
    fail "PostgreSQL did no crash recovery on the copy: $(cat "$RUN/pg-restore.log")"

got=$(psql_on "$port2" "select count(*) from t where id <= $before")
[ "$got" = "$before" ] ||
    fail "the copy has $got of the $before rows committed before the snapshot"
total=$(psql_on "$port2" "select count(*) from t")
[ "$total" -le "$after" ] || fail "the copy has $total rows, more than the $after ever committed"
# The copy takes writes; the live cluster never sees them.
psql_on "$port2" "insert into t values (-1, 'restored')" >/dev/null ||
    fail "the restored cluster does not take writes"
[ "$(psql_on "$port" "select count(*) from t where id = -1")" = 0 ] ||
    fail "the live cluster sees the copy's row"
log "the copy recovered with $total rows, all $before committed before the snapshot among them"

pg "$pgbin/pg_ctl" -D "$RESTORE/pg/data" -w stop >/dev/null || fail "stopping the copy failed"
"$SHADOWCOPY_CLI" umount "$RESTORE" || fail "umount of the clone failed"
server_alive
