#!/bin/bash
# The mysql writer against a real MariaDB: a server (mariadb-install-db + mariadbd on a private socket) with its datadir on ext4 on the live export (nbdfuse + loop), under a write load of committed inserts.  `shadowcopy create --writer mysql:DEFAULTS-FILE`: while the set is held, another session's insert blocks (FLUSH TABLES WITH READ LOCK held by the guardian's session); after thaw it goes through.  The snapshot, cloned and mounted read-write, is opened by a second mariadbd: it recovers, CHECK TABLE is clean, every row committed before the freeze is there and the blocked insert is not.  A user without the RELOAD privilege: a clear error, the creation aborted.  The CLI killed (kill -9) while the lock is held: the lock goes with the session.  The freeze-to-thaw time under load is reported.  Needs root, /dev/fuse, loop devices and MariaDB (Debian package mariadb-server; else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires mariadbd mariadb-install-db mysql nbdfuse losetup mkfs.ext4 mount umount mountpoint fusermount3 blkid timeout
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
export SHADOWCOPY_MOUNT_FUSE=1
MNT=$TMP/live
RESTORE=$TMP/restore
mkdir -p "$MNT" "$RESTORE"
LOOP=
FUSE_PID=
APP_PID=
DB_PID=
DB2_PID=
my_cleanup () {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    [ -n "$DB2_PID" ] && kill -9 "$DB2_PID" 2>/dev/null && wait "$DB2_PID" 2>/dev/null
    [ -n "$DB_PID" ] && kill -9 "$DB_PID" 2>/dev/null && wait "$DB_PID" 2>/dev/null
    mountpoint -q "$RESTORE" && "$SHADOWCOPY_CLI" umount "$RESTORE"
    live_ext4_umount
}
trap 'rc=$?; set +e; my_cleanup; (exit $rc); _cleanup' EXIT

truncate -s 512M "$TMP/disk"
start_server "$TMP/disk" "$TMP/diff"
live_ext4_mount "$MNT"

# db_start DATADIR SOCKET LOG: a mariadbd of its own; its pid in DB_STARTED.
db_start () {
    mariadbd --no-defaults --user=root --datadir="$1" --socket="$2" --skip-networking \
        --pid-file="$1/mariadbd.pid" --log-error="$3" --innodb-buffer-pool-size=32M \
        --innodb-log-file-size=16M > /dev/null 2>&1 &
    DB_STARTED=$!
    for ((i = 0; i < 300; i++)); do
        mysql --no-defaults -S "$2" -u root -e "select 1" > /dev/null 2>&1 && return 0
        kill -0 "$DB_STARTED" 2>/dev/null || break
        sleep 0.1
    done
    fail "mariadbd did not start: $(tail -n 8 "$3")"
}
mariadb-install-db --no-defaults --user=root --datadir="$MNT/db" --skip-test-db \
    --auth-root-authentication-method=socket > "$TMP/install.log" 2>&1 ||
    fail "mariadb-install-db failed: $(tail -n 5 "$TMP/install.log")"
db_start "$MNT/db" "$TMP/db.sock" "$TMP/db.err"
DB_PID=$DB_STARTED
q () { mysql --no-defaults -S "$TMP/db.sock" -u root -N -B -e "$1" app; }
mysql --no-defaults -S "$TMP/db.sock" -u root -e "create database app" ||
    fail "create database failed"
q "create table t (id int primary key, v text) engine=InnoDB" || fail "create table failed"
q "create user weak@localhost identified by 'weakpw'; grant select, insert on app.* to weak@localhost" ||
    fail "create user failed"

printf '[client]\nsocket=%s\nuser=root\n' "$TMP/db.sock" > "$TMP/my.cnf"
printf '[client]\nsocket=%s\nuser=weak\npassword=weakpw\n' "$TMP/db.sock" > "$TMP/weak.cnf"

# The load: row N inserted (autocommit; innodb_flush_log_at_trx_commit=1,
# the default), then N appended to done.log.
: > "$TMP/done.log"
(
    n=0
    while [ ! -e "$TMP/stop" ]; do
        n=$((n + 1))
        q "insert into t values ($n, repeat('x', 2000))" || exit 1
        echo "$n" >> "$TMP/done.log"
    done
) 2> "$TMP/app.log" &
APP_PID=$!
for ((i = 0; i < 200; i++)); do [ "$(wc -l < "$TMP/done.log")" -ge 30 ] && break; sleep 0.1; done
[ "$(wc -l < "$TMP/done.log")" -ge 30 ] || fail "the load does not commit: $(cat "$TMP/app.log")"

# 1. A user without RELOAD: the lock is refused, the creation aborted.
rc=0
sc create --writer "mysql:$TMP/weak.cnf" refused > /dev/null 2> "$TMP/refused.err" || rc=$?
[ "$rc" -ne 0 ] || fail "create with a refused lock succeeded"
grep -q "writer mysql:$TMP/weak.cnf: freeze: failed: FLUSH TABLES WITH READ LOCK: .*RELOAD" "$TMP/refused.err" ||
    fail "not the expected error: $(cat "$TMP/refused.err")"
[ -z "$(sc_names)" ] || fail "a snapshot was kept: $(sc_names)"
log "refused: $(cat "$TMP/refused.err")"

# 2. The snapshot.  A probe writer after mysql: it records how many rows
# were committed, then tries an insert of row -1 from another session
# (it must block: the lock is held), and says whether it was done 1 s later.
cat > "$TMP/probe" <<EOW
#!/bin/sh
[ "\$1" = freeze ] || exit 0
wc -l < "$TMP/done.log" > "$TMP/probe.count"
rm -f "$TMP/probe.done"
setsid sh -c 'mysql --no-defaults -S "$TMP/db.sock" -u root -e "insert into app.t values (-1, \"blocked\")" && touch "$TMP/probe.done"' \
    < /dev/null > /dev/null 2>&1 &
sleep 1
if [ -e "$TMP/probe.done" ]; then echo not-blocked; else echo blocked; fi > "$TMP/probe.log"
EOW
chmod +x "$TMP/probe"
sc create --writer "mysql:$TMP/my.cnf" --writer "$TMP/probe" dbsnap > /dev/null 2> "$TMP/create.err" ||
    fail "create failed: $(cat "$TMP/create.err")"
log "$(tr '\n' ' ' < "$TMP/create.err")"
[ "$(cat "$TMP/probe.log")" = blocked ] || fail "an insert was not blocked while the lock was held"
for ((i = 0; i < 100; i++)); do [ -e "$TMP/probe.done" ] && break; sleep 0.1; done
[ -e "$TMP/probe.done" ] || fail "the blocked insert did not go through after thaw"
grep -q "^shadowcopy: writer mysql:$TMP/my.cnf: freeze: froze in [0-9]* ms: tables locked$" "$TMP/create.err" &&
    grep -q "^shadowcopy: writer mysql:$TMP/my.cnf: thaw: frozen for [0-9]* ms: tables unlocked$" "$TMP/create.err" ||
    fail "no freeze/thaw report: $(cat "$TMP/create.err")"
before=$(cat "$TMP/probe.count")

# 3. The freeze-to-thaw time under load, without the probe.
sc create --writer "mysql:$TMP/my.cnf" timed > /dev/null 2> "$TMP/timed.err" ||
    fail "timed: create failed: $(cat "$TMP/timed.err")"
frozen=$(sed -n "s/^shadowcopy: writer .*: thaw: frozen for \([0-9]*\) ms: .*/\1/p" "$TMP/timed.err")
took=$(sed -n "s/^shadowcopy: writer .*: freeze: froze in \([0-9]*\) ms: .*/\1/p" "$TMP/timed.err")
[ -n "$frozen" ] || fail "timed: no thaw report: $(cat "$TMP/timed.err")"
log "freeze to thaw under load (mysql): $frozen ms (the lock took $took ms)"

# 4. The CLI killed while the lock is held: the session, and the lock, go.
cat > "$TMP/slow" <<EOW
#!/bin/sh
[ "\$1" = freeze ] && { echo \$\$ > "$TMP/slow.pid"; touch "$TMP/slow.frozen"; exec sleep 30; }
exit 0
EOW
chmod +x "$TMP/slow"
"$SHADOWCOPY_CLI" -c "$CTL" create --writer "mysql:$TMP/my.cnf" --writer "$TMP/slow" killed \
    > /dev/null 2>&1 &
cli=$!
for ((i = 0; i < 100; i++)); do [ -e "$TMP/slow.frozen" ] && break; sleep 0.1; done
[ -e "$TMP/slow.frozen" ] || fail "killed: the freeze did not happen"
timeout 1 mysql --no-defaults -S "$TMP/db.sock" -u root -e "insert into app.t values (-2, 'x')" 2>/dev/null &&
    fail "killed: the lock was not held"
kill -9 "$cli"
wait "$cli" 2>/dev/null || :
timeout 10 mysql --no-defaults -S "$TMP/db.sock" -u root -e "insert into app.t values (-3, 'x')" ||
    fail "killed: the lock outlived the CLI"
kill -9 "$(cat "$TMP/slow.pid")" 2>/dev/null || :

touch "$TMP/stop"
wait "$APP_PID" || fail "the load failed: $(cat "$TMP/app.log")"
APP_PID=
after=$(wc -l < "$TMP/done.log")

# 5. The snapshot opened by MariaDB: a writable clone, mounted, started.
sc clone dbsnap dbcopy > /dev/null || fail "clone failed"
"$SHADOWCOPY_CLI" -c "$CTL" mount --nbd-socket "$NBD_SOCK" dbcopy "$RESTORE" > /dev/null ||
    fail "mount of the clone failed"
db_start "$RESTORE/db" "$TMP/db2.sock" "$TMP/db2.err"
DB2_PID=$DB_STARTED
q2 () { mysql --no-defaults -S "$TMP/db2.sock" -u root -N -B -e "$1" app; }
check=$(q2 "check table t" | awk '{ print $NF }')
[ "$check" = OK ] || fail "CHECK TABLE on the copy: $(q2 "check table t")"
got=$(q2 "select count(*) from t where id between 1 and $before")
[ "$got" = "$before" ] || fail "the copy has $got of the $before rows committed before the freeze"
total=$(q2 "select count(*) from t where id > 0")
[ "$total" -le "$after" ] || fail "the copy has $total rows, more than the $after committed"
[ "$(q2 "select count(*) from t where id = -1")" = 0 ] || fail "the copy holds the insert blocked while frozen"
log "the copy opened with $total rows, all $before committed before the freeze among them"
kill "$DB2_PID"; wait "$DB2_PID" 2>/dev/null || :
DB2_PID=
"$SHADOWCOPY_CLI" umount "$RESTORE" || fail "umount of the clone failed"
