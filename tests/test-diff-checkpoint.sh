#!/bin/bash
# Tests checkpoints through the CLI and a real nbdkit: checkpoint NAME and delete --keep-checkpoint, list (type, UUID, metadata bytes), diff from a checkpoint, never exported nor mounted, max-checkpoints=, offline, and bad input.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdinfo

K=1024
CS=$((64 * K))
D=$TMP/diff
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=64K max-checkpoints=3

sc_create probe
out=$(sc delete --keep-checkpoint probe 2>&1) ||
    fail "delete --keep-checkpoint probe failed: $out"
[ "$out" = probe ] || fail "delete --keep-checkpoint printed '$out'"

write () { nbd_write_random live "$1" "$2"; }

# diff_extents FROM [TO]: the extents of diff --json, "OFF+LEN" each.
diff_extents () {
    sc diff "$@" --json | json '["%d+%d" % (e["offset"], e["length"]) for e in d["extents"]]' |
        tr '\n' ' '
}

# ---- checkpoint NAME ----------------------------------------------------

[ "$(sc checkpoint c1)" = c1 ] || fail "checkpoint c1 did not print its name"
[ "$(sc_field c1 type)" = checkpoint ] || fail "c1 is listed as $(sc_field c1 type)"
[ "$(sc_field probe type)" = checkpoint ] || fail "probe is listed as $(sc_field probe type)"
sc list --json | "$PYTHON" -c '
import json, re, sys
l = json.load(sys.stdin)
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
for s in l:
    assert uuid.match(s["uuid"]) and s["uuid"] != "00000000-0000-0000-0000-000000000000", s
    assert s["type"] in ("snapshot", "checkpoint"), s
    assert ("meta-bytes" in s) == (s["type"] == "checkpoint"), s
assert len(set(s["uuid"] for s in l)) == len(l), l
' || fail "list --json: bad type, uuid or meta-bytes: $(sc list --json)"
sc list | grep_all -E '^ *[0-9]+ +c1 +checkpoint ' || fail "list table: $(sc list)"
[ "$(sc_info checkpoints)" = 2 ] || fail "info: checkpoints=$(sc_info checkpoints)"

# Changes after it, exactly, from the checkpoint.
write $((3 * CS + 10)) 100
write $((6 * CS)) $((2 * CS))
[ "$(diff_extents c1)" = "$((3 * CS))+$CS $((6 * CS))+$((2 * CS)) " ] ||
    fail "diff c1: $(diff_extents c1)"
[ "$(sc diff c1 --json | json 'd["from"]["type"]')" = checkpoint ] ||
    fail "diff c1 --json: from type is not checkpoint"

# Never exported, never mounted.
nbdinfo --list --json "$(uri "")" > "$TMP/exports.json" || fail "nbdinfo --list failed"
"$PYTHON" -c '
import json, sys
names = [e["export-name"] for e in json.load(open(sys.argv[1]))["exports"]]
assert "c1" not in names and "probe" not in names, names
' "$TMP/exports.json" || fail "a checkpoint is listed as an export: $(cat "$TMP/exports.json")"
if nbdinfo "$(uri c1)" > "$TMP/nbdinfo.out" 2>&1; then
    fail "checkpoint c1 was exported"
fi
grep -q "c1 is a checkpoint: it keeps no data; export a snapshot" "$SERVER_LOG" ||
    fail "the server did not say why c1 cannot be exported"
mkdir "$TMP/mnt"
rc=0; out=$(sc mount --nbd-socket "$NBD_SOCK" c1 "$TMP/mnt" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "mount of checkpoint c1 exited $rc: $out"
case $out in *"c1 is a checkpoint: it keeps no data; mount a snapshot"*) ;;
    *) fail "mount of checkpoint c1 said: $out" ;; esac

# ---- delete --keep-checkpoint -------------------------------------------

sc_create s1
write 0 $((4 * CS))
uuid_s1=$(sc_field s1 uuid)
before=$(diff_extents s1)
used_with=$(sc_info diff_used_bytes)
[ "$(sc delete --keep-checkpoint s1)" = s1 ] || fail "delete --keep-checkpoint s1"
[ "$(sc_field s1 type)" = checkpoint ] || fail "s1 was not kept as a checkpoint"
[ "$(sc_field s1 uuid)" = "$uuid_s1" ] || fail "s1 changed its UUID"
[ "$(diff_extents s1)" = "$before" ] || fail "diff s1 changed: $before -> $(diff_extents s1)"
[ "$(sc_info diff_used_bytes)" -lt "$used_with" ] ||
    fail "keeping s1 as a checkpoint freed nothing ($used_with bytes used)"
if nbdinfo "$(uri s1)" > /dev/null 2>&1; then
    fail "s1 is still exported after delete --keep-checkpoint"
fi

# Bad input: a clear error, exit 1, nothing changed.
sc list --json > "$TMP/before.json"
expect_cli_error "keep a checkpoint again" sc delete --keep-checkpoint s1
case $CLI_ERR in *"is a checkpoint already"*) ;;
    *) soft_fail "keep-checkpoint of a checkpoint said: $CLI_ERR" ;; esac
expect_cli_error "keep an unknown name" sc delete --keep-checkpoint nosuch
expect_cli_error "diff from newer to older" sc diff s1 c1
[ "$(sc_info checkpoints)" = 3 ] || fail "info: checkpoints=$(sc_info checkpoints)"
expect_cli_error "a fourth checkpoint past max-checkpoints=3" sc checkpoint c4
case $CLI_ERR in *"max-checkpoints=3"*) ;;
    *) soft_fail "too many checkpoints said: $CLI_ERR" ;; esac
sc list --json > "$TMP/after.json"
cmp -s "$TMP/before.json" "$TMP/after.json" ||
    fail "bad input changed the list: $(diff "$TMP/before.json" "$TMP/after.json")"

# Names are reused, UUIDs never.
uuid_c1=$(sc_field c1 uuid)
sc delete c1 > /dev/null || fail "delete c1"
sc checkpoint c1 > /dev/null || fail "checkpoint c1 again"
[ "$(sc_field c1 uuid)" != "$uuid_c1" ] || fail "a new c1 got the old UUID"

# At max-checkpoints a snapshot cannot be kept as one either.
sc_create s-full
expect_cli_error "keep past max-checkpoints=3" sc delete --keep-checkpoint s-full
case $CLI_ERR in *"max-checkpoints"*) ;;
    *) soft_fail "keep past max-checkpoints said: $CLI_ERR" ;; esac
[ "$(sc_field s-full type)" = snapshot ] || fail "s-full changed type"
sc delete s-full > /dev/null || fail "delete s-full"

# A session's auto-release snapshot kept as a checkpoint outlives the
# session (the base of a backup's next incremental).  (probe makes room
# under max-checkpoints=3.)
sc delete probe > /dev/null || fail "delete probe"
"$PYTHON" "$tests_srcdir/ctl.py" "$CTL" "CREATE ar auto-release=1" \
    "DELETE ar keep-checkpoint=1" > "$TMP/ar.out" || fail "ctl.py: $(cat "$TMP/ar.out")"
grep -q -- "-> \* deleted.*checkpoint=1" "$TMP/ar.out" ||
    fail "keep of ar: $(cat "$TMP/ar.out")"
sleep 0.5
[ "$(sc_field ar type)" = checkpoint ] ||
    fail "the kept auto-release snapshot went with its session: $(sc list)"
sc delete ar > /dev/null || fail "delete ar"

# delete --oldest frees space: the oldest snapshot, never a checkpoint
# (c1 and s1 are older than s-new).
sc_create s-new
[ "$(sc delete --oldest)" = s-new ] || fail "delete --oldest took a checkpoint: $(sc list)"
[ "$(sc_field c1 type)" = checkpoint ] || fail "c1 went with delete --oldest"
expect_cli_error "delete --oldest with only checkpoints" sc delete --oldest

# ---- offline -----------------------------------------------------------

sc diff s1 --json > "$TMP/online.json"
stop_server
sc_off "$D" diff s1 --json > "$TMP/offline.json" || fail "offline diff s1"
cmp -s "$TMP/online.json" "$TMP/offline.json" || fail "offline diff of a checkpoint differs"
sc_off "$D" list | grep_all -E '^ *[0-9]+ +s1 +checkpoint ' || fail "offline list: $(sc_off "$D" list)"
