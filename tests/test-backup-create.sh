#!/bin/bash
# Tests backup --create, the whole requester flow: a writer's results in the manifest, a checkpoint kept and no snapshot left; --auto incremental on it, full when it is gone (and saying so), deleting the checkpoint it went on from but not one made again under its name during the backup; --since with a gone BASE, a wrong base and another volume's PREV refused; a set of two volumes in one command; a failing volume of a set thaws and tells the writers, exits 1 and leaves no TARGET, checkpoint or snapshot.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires cmp

export SHADOWCOPY_STATE_DIR=$TMP/state
M=$((1024 * 1024))
make_disk "$TMP/a" 8M
make_disk "$TMP/b" 8M
# Volume B: a second nbdkit, started by hand (functions.sh tracks one).
NBD_B=$TMP/nbd-b.sock
CTL_B=$TMP/b.diff.sock
nbdkit -f -U "$NBD_B" "$SHADOWCOPY_PLUGIN" disk="$TMP/b" diff="$TMP/b.diff" \
    chunk-size=64K >> "$TMP/server-b.log" 2>&1 &
_SERVER_PIDS+=("$!")
start_server "$TMP/a" "$TMP/a.diff" chunk-size=64K
for ((i = 0; i < 100; i++)); do [ -S "$CTL_B" ] && [ -S "$NBD_B" ] && break; sleep 0.1; done
[ -S "$CTL_B" ] || fail "second server did not start: $(cat "$TMP/server-b.log")"
D=$TMP/backups
mkdir "$D"

# A writer that logs each phase with SHADOWCOPY_BACKUP_RESULT.
cat > "$TMP/w" <<EOW
#!/bin/sh
echo "\$1 \${SHADOWCOPY_BACKUP_RESULT:-none} \$SHADOWCOPY_SNAPSHOT" >> "$TMP/w.log"
echo "w did \$1"
EOW
chmod +x "$TMP/w"
wlog () { cut -d' ' -f1-2 "$TMP/w.log" | tr '\n' ' '; }

sc_b () { "$SHADOWCOPY_CLI" -c "$CTL_B" "$@"; }
bcreate () { sc backup --create --writer "$TMP/w" --nbd-socket "$NBD_SOCK" "$@"; }
mfield () { json "d[\"$2\"]" < "$1.manifest.json"; }
# types LISTER: "NAME:TYPE ..." of every snapshot and checkpoint.
types () { "$@" list --json | json '" ".join(s["name"] + ":" + s["type"] for s in d)'; }

# ---- one volume, with a writer -----------------------------------------
bcreate --to "$D/a1" --json > "$TMP/a1.json" 2> "$TMP/a1.err" ||
    fail "backup --create failed: $(cat "$TMP/a1.err")"
cmp "$TMP/a" "$D/a1" || fail "a1 differs from its snapshot (the volume, unchanged since)"
name1=$(json 'd["snapshot"]' < "$TMP/a1.json")
case $name1 in backup-*) ;; *) fail "default name: $name1" ;; esac
[ "$(json 'd["volumes"][0]["type"]' < "$TMP/a1.json")" = full ] || fail "a1: $(cat "$TMP/a1.json")"
[ "$(mfield "$D/a1" snapshot-name)" = "$name1" ] || fail "a1 manifest snapshot-name"
# The writer's results, phase by phase, up to the snapshot.
[ "$(json '" ".join(w["name"] for w in d["writers"])' < "$D/a1.manifest.json")" = "$TMP/w" ] ||
    fail "manifest writers: $(cat "$D/a1.manifest.json")"
[ "$(json '" ".join(p["phase"] + "=" + p["result"] for p in d["writers"][0]["phases"])' < "$D/a1.manifest.json")" = \
  "identify=ok prepare=ok freeze=ok thaw=ok post-snapshot=ok" ] ||
    fail "manifest writer phases: $(cat "$D/a1.manifest.json")"
[ "$(json 'd["writers"][0]["phases"][2]["output"]' < "$D/a1.manifest.json")" = "w did freeze" ] ||
    fail "manifest writer output: $(cat "$D/a1.manifest.json")"
# backup-complete came after, told of success.
[ "$(wlog)" = "identify none prepare none freeze none thaw none post-snapshot none backup-complete success " ] ||
    fail "writer phases: $(wlog)"
# A checkpoint of the same name and UUID, and no snapshot.
[ "$(types sc)" = "$name1:checkpoint" ] || fail "after backup --create: $(types sc)"
[ "$(sc_field "$name1" uuid)" = "$(mfield "$D/a1" snapshot-uuid)" ] ||
    fail "the checkpoint is not the manifest's snapshot"
sc verify "$D/a1" > /dev/null || fail "verify of a --create backup (with writers) failed"

# ---- --auto: incremental on the newest backup beside TARGET -----------
nbd_write_random live $((3 * M + 777)) 100000
nbd_zero live $((6 * M)) $((128 * 1024))
rm -f "$TMP/w.log"
bcreate --auto --to "$D/a2" --json > "$TMP/a2.json" 2> "$TMP/a2.err" ||
    fail "backup --create --auto failed: $(cat "$TMP/a2.err")"
grep -q "incremental backup on $D/a1 .*since checkpoint $name1" "$TMP/a2.err" ||
    fail "--auto did not say why: $(cat "$TMP/a2.err")"
[ "$(json 'd["volumes"][0]["type"]' < "$TMP/a2.json")" = incremental ] || fail "a2: $(cat "$TMP/a2.json")"
cmp "$TMP/a" "$D/a2" || fail "incremental a2 differs from its snapshot"
[ "$(mfield "$D/a2" base-uuid)" = "$(mfield "$D/a1" snapshot-uuid)" ] || fail "a2 base-uuid"
name2=$(json 'd["snapshot"]' < "$TMP/a2.json")
# The new checkpoint replaces the one it went on from.
[ "$(types sc)" = "$name2:checkpoint" ] || fail "after --auto: $(types sc)"

# ---- --auto with the base gone: a full backup, and it says so ---------
sc delete "$name2" > /dev/null
nbd_write_random live $((1 * M)) 5000
bcreate --auto --to "$D/a3" --json > "$TMP/a3.json" 2> "$TMP/a3.err" ||
    fail "--auto without a base failed: $(cat "$TMP/a3.err")"
grep -q "full backup: .*$D/a2.* cannot be the base of an incremental: its snapshot $name2 .*is no longer" "$TMP/a3.err" ||
    fail "--auto fallback not said: $(cat "$TMP/a3.err")"
[ "$(json 'd["volumes"][0]["type"]' < "$TMP/a3.json")" = full ] || fail "a3: $(cat "$TMP/a3.json")"
cmp "$TMP/a" "$D/a3" || fail "a3 differs from its snapshot"
name3=$(json 'd["snapshot"]' < "$TMP/a3.json")

# ---- refusals: nothing kept, nothing left -----------------------------
before=$(types sc)
rm -f "$TMP/w.log"
rc=0; out=$(bcreate --to "$D/x" --since gone --base "$D/a3" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "since gone: .*BASE no longer exists" ||
    fail "--since a gone BASE: exit $rc: $out"
[ ! -e "$D/x" ] && [ ! -e "$D/x.partial" ] || fail "a gone BASE left a TARGET"
[ "$(types sc)" = "$before" ] || fail "a gone BASE left $(types sc), not $before"
grep -q "^backup-complete failure" "$TMP/w.log" || fail "writer not told of the failure: $(wlog)"

rc=0; out=$(bcreate --to "$D/x" --since "$name3" --base "$D/a1" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "chain would be wrong" ||
    fail "a wrong base: exit $rc: $out"
[ ! -e "$D/x" ] && [ "$(types sc)" = "$before" ] || fail "a wrong base left something: $(types sc)"

# ---- volume B; a PREV of another volume --------------------------------
"$SHADOWCOPY_CLI" -c "$CTL_B" backup --create --no-writers --auto --nbd-socket "$NBD_B" \
    --to "$D/b1" > /dev/null 2> "$TMP/b1.err" || fail "backup --create of volume B failed"
grep -q "full backup: no earlier backup of this volume ($(mfield "$D/b1" volume-uuid)) in $D" "$TMP/b1.err" ||
    fail "--auto with no earlier backup: $(cat "$TMP/b1.err")"
cmp "$TMP/b" "$D/b1" || fail "b1 differs from its snapshot"
rc=0; out=$(bcreate --auto --base "$D/b1" --to "$D/x" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "is a backup of volume $(mfield "$D/b1" volume-uuid), not of this volume" ||
    fail "--auto --base of another volume: exit $rc: $out"
rc=0; out=$(bcreate --since "$name3" --base "$D/b1" --to "$D/x" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "is a backup of volume" ||
    fail "--since with PREV of another volume: exit $rc: $out"
[ ! -e "$D/x" ] && [ "$(types sc)" = "$before" ] || fail "another volume's PREV left something"
# --auto beside backups of both volumes takes only its own.
nbd_write_random live $((5 * M)) 3000
bcreate --auto --to "$D/a4" 2> "$TMP/a4.err" > /dev/null || fail "a4: $(cat "$TMP/a4.err")"
grep -q "incremental backup on $D/a3 " "$TMP/a4.err" || fail "a4 went on: $(cat "$TMP/a4.err")"
cmp "$TMP/a" "$D/a4" || fail "a4 differs"

# ---- a set of two volumes ------------------------------------------------
nbd_write_random live $((2 * M)) 70000
nbd_py live 'h.pwrite(os.urandom(70000), 4 * 1048576)' > /dev/null  # on A again
NBDSH_B () { "$NBDSH" -u "nbd+unix:///live?socket=$NBD_B" -c "$1"; }
NBDSH_B 'h.pwrite(os.urandom(50000), 1048576)'
rm -f "$TMP/w.log"
"$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" backup --create --writer "$TMP/w" --auto \
    --to "$D/sa" --to "$D/sb" --nbd-socket "$NBD_SOCK" --nbd-socket "$NBD_B" --json \
    > "$TMP/set.json" 2> "$TMP/set.err" || fail "set backup failed: $(cat "$TMP/set.err")"
cmp "$TMP/a" "$D/sa" || fail "sa differs from volume A's snapshot"
cmp "$TMP/b" "$D/sb" || fail "sb differs from volume B's snapshot"
grep -q "$CTL: incremental backup on $D/a4" "$TMP/set.err" &&
    grep -q "$CTL_B: incremental backup on $D/b1" "$TMP/set.err" ||
    fail "set --auto, per volume: $(cat "$TMP/set.err")"
json 'd["set"]' < "$TMP/set.json" | grep_all '^[0-9a-f-]\{36\}$' || fail "no set id: $(cat "$TMP/set.json")"
nset=$(json 'd["snapshot"]' < "$TMP/set.json")
[ "$(types sc)" = "$nset:checkpoint" ] && [ "$(types sc_b)" = "$nset:checkpoint" ] ||
    fail "set: checkpoints: $(types sc) / $(types sc_b)"
[ "$(grep -c . "$TMP/w.log")" = 6 ] && grep -q "^backup-complete success $nset" "$TMP/w.log" ||
    fail "set writer: $(cat "$TMP/w.log")"

# ---- a set whose first volume fails -------------------------------------
echo old > "$D/fa"
rm -f "$TMP/w.log"
rc=0; "$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" backup --create --writer "$TMP/w" --auto \
    --to "$D/fa" --to "$D/fb" --nbd-socket "$NBD_SOCK" --nbd-socket "$NBD_B" \
    > "$TMP/fail.out" 2> "$TMP/fail.err" || rc=$?
[ "$rc" = 1 ] && grep -q "already exists" "$TMP/fail.err" ||
    fail "a set with an existing TARGET: exit $rc: $(cat "$TMP/fail.err")"
[ ! -s "$TMP/fail.out" ] || fail "a failed backup printed: $(cat "$TMP/fail.out")"
[ "$(cat "$D/fa")" = old ] || fail "the existing TARGET was changed"
[ ! -e "$D/fb" ] && [ ! -e "$D/fb.manifest.json" ] || fail "the second volume got a TARGET"
[ "$(wlog)" = "identify none prepare none freeze none thaw none post-snapshot none backup-complete failure " ] ||
    fail "writer after a failed set: $(wlog)"
[ "$(types sc)" = "$nset:checkpoint" ] && [ "$(types sc_b)" = "$nset:checkpoint" ] ||
    fail "a failed set left: $(types sc) / $(types sc_b)"

# The second volume fails: the first keeps its whole backup and checkpoint.
echo old > "$D/gb"
rc=0; "$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" backup --create --no-writers --auto --name g \
    --to "$D/ga" --to "$D/gb" --nbd-socket "$NBD_SOCK" --nbd-socket "$NBD_B" \
    > /dev/null 2> "$TMP/g.err" || rc=$?
[ "$rc" = 1 ] || fail "second volume failing: exit $rc: $(cat "$TMP/g.err")"
cmp "$TMP/a" "$D/ga" || fail "ga differs"
[ "$(types sc)" = "g:checkpoint" ] && [ "$(types sc_b)" = "$nset:checkpoint" ] ||
    fail "second volume failing left: $(types sc) / $(types sc_b)"

# ---- usage ---------------------------------------------------------------
# Without --nbd-socket each server is asked (test-service.sh); the counts
# are still checked first.
rc=0; "$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" backup --create --to "$D/y" \
    > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "two volumes, one TARGET, no --nbd-socket: exit $rc"
rc=0; "$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" backup --create --to "$D/y" \
    --nbd-socket "$NBD_SOCK" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "two volumes, one TARGET: exit $rc"
rc=0; sc backup --create --run true --to "$D/y" --nbd-socket "$NBD_SOCK" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--create --run: exit $rc"
rc=0; "$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" list > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "list with two -c: exit $rc"
[ ! -e "$D/y" ] || fail "a usage error made a TARGET"
# Repeated global -c: a set for create too (it used to keep the last one).
"$SHADOWCOPY_CLI" -c "$CTL" -c "$CTL_B" create --no-writers gset > /dev/null ||
    fail "create with two global -c failed"
[ "$(types sc)" = "g:checkpoint gset:snapshot" ] && [ "$(types sc_b)" = "$nset:checkpoint gset:snapshot" ] ||
    fail "create with two global -c: $(types sc) / $(types sc_b)"

# ---- the checkpoints outlive a server killed -9 --------------------------
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :; _forget_pid "$SERVER_PID"
start_server "$TMP/a" "$TMP/a.diff" chunk-size=64K
[ "$(types sc)" = "g:checkpoint gset:snapshot" ] || fail "after kill -9 and restart: $(types sc)"
# backup SNAPSHOT --auto goes on from it too.
sc backup gset --auto --to "$D/h" --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/h.err" ||
    fail "backup SNAPSHOT --auto failed: $(cat "$TMP/h.err")"
grep -q "incremental backup on $D/ga .*since checkpoint g " "$TMP/h.err" || fail "h: $(cat "$TMP/h.err")"
cmp "$TMP/a" "$D/h" || fail "h differs from gset"

# ---- --auto deletes only the checkpoint it went on from ----------------
# Made again under its name during the backup (here by a writer's
# backup-complete, which comes just before), the new one is kept.
sc delete gset > /dev/null
rm "$D/h" "$D/h.manifest.json"          # of gset: ga, of g, is the newest
cat > "$TMP/w2" <<EOW
#!/bin/sh
[ "\$1" = backup-complete ] || exit 0
"$SHADOWCOPY_CLI" -c "$CTL" delete g > /dev/null &&
    "$SHADOWCOPY_CLI" -c "$CTL" checkpoint g > /dev/null
EOW
chmod +x "$TMP/w2"
nbd_write_random live $((6 * M)) 5000
sc backup --create --writer "$TMP/w2" --auto --name k --to "$D/k" \
    --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/k.err" ||
    fail "--auto with its base made again: $(cat "$TMP/k.err")"
grep -q "incremental backup on $D/ga .*since checkpoint g " "$TMP/k.err" || fail "k: $(cat "$TMP/k.err")"
[ "$(types sc)" = "k:checkpoint g:checkpoint" ] ||
    fail "--auto deleted a checkpoint made again under its base's name: $(types sc)"
[ "$(sc_field g uuid)" != "$(mfield "$D/ga" snapshot-uuid)" ] || fail "g was not made again"
grep -q "checkpoint g (UUID $(mfield "$D/ga" snapshot-uuid)), which k replaces, was deleted and made again" "$TMP/k.err" ||
    fail "k did not say that g was made again: $(cat "$TMP/k.err")"
cmp "$TMP/a" "$D/k" || fail "k differs"

# ---- the manifest's writers, parsed strictly ----------------------------
cp --sparse=always "$D/a1" "$D/w1"
"$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
del d["writers"][0]["phases"][0]["result"]
json.dump(d, open(sys.argv[2], "w"))' "$D/a1.manifest.json" "$D/w1.manifest.json"
rc=0; out=$(sc verify "$D/w1" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep_all "writers: phase 1: no result" ||
    fail "a writer phase without result: exit $rc: $out"

stop_server
exit 0
