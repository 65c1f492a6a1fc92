#!/bin/bash
# Tests snapshot sets across two volumes and auto-release: sequence-numbered writes alternating between the volumes never show a later write on one without every earlier one on the other; delete --set; auto-release snapshots vanish when the CLI is killed -9 and after a server restart.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/a" 8M
make_disk "$TMP/b" 8M
# Volume B: a second nbdkit, started by hand (functions.sh tracks one).
NBD_B=$TMP/nbd-b.sock
nbdkit -f -U "$NBD_B" "$SHADOWCOPY_PLUGIN" disk="$TMP/b" diff="$TMP/b.diff" \
    >> "$TMP/server-b.log" 2>&1 &
_SERVER_PIDS+=("$!")
start_server "$TMP/a" "$TMP/a.diff"
CTL_B=$TMP/b.diff.sock
# has_snapshot NAME: the current server lists NAME (no early-closing pipe
# into the JSON reader).
has_snapshot () { local l; l=$(sc_names); printf '%s\n' "$l" | grep_all -x "$1"; }
for ((i = 0; i < 100; i++)); do [ -S "$CTL_B" ] && [ -S "$NBD_B" ] && break; sleep 0.1; done
[ -S "$CTL_B" ] || fail "second server did not start: $(cat "$TMP/server-b.log")"

# A writer process: write i (as 8 bytes) to block 0 of volume i % 2, one
# write after another (each acknowledged before the next), until told to
# stop.  The set's point in time falls between two writes k and k+1, so
# one volume must show k and the other k-1.
cat > "$TMP/seq.py" <<'EOP'
import nbd, os, struct, sys
a = nbd.NBD(); a.connect_uri(sys.argv[1])
b = nbd.NBD(); b.connect_uri(sys.argv[2])
i = 1
while not os.path.exists(sys.argv[3]):
    (a if i % 2 else b).pwrite(struct.pack("<Q", i) * 512, 0)
    i += 1
print(i - 1)
EOP
"$PYTHON" "$TMP/seq.py" "$(uri live)" "nbd+unix:///live?socket=$NBD_B" "$TMP/stop" > "$TMP/seq.out" &
seq_pid=$!
sleep 0.5
n=12
for ((k = 1; k <= n; k++)); do
    out=$("$SHADOWCOPY_CLI" create -c "$CTL" -c "$CTL_B" --writer /bin/true "set$k") ||
        fail "set creation $k failed"
    [ "$(echo "$out" | head -1)" = "set$k" ] || fail "create printed: $out"
    echo "$out" | grep_all "^set [0-9a-f-]\{36\}$" || fail "create did not print the set id: $out"
done
touch "$TMP/stop"; wait "$seq_pid"
[ "$(cat "$TMP/seq.out")" -gt $((2 * n)) ] || fail "the writer made too few writes: $(cat "$TMP/seq.out")"
for ((k = 1; k <= n; k++)); do
    va=$("$NBDSH" -u "$(uri "set$k")" -c 'import struct; print(struct.unpack("<Q", h.pread(8, 0))[0])')
    vb=$("$NBDSH" -u "nbd+unix:///set$k?socket=$NBD_B" -c 'import struct; print(struct.unpack("<Q", h.pread(8, 0))[0])')
    # Before the first write both blocks are random data: only count
    # snapshots taken once the writer runs (both values small).
    [ "$va" -lt 100000000 ] && [ "$vb" -lt 100000000 ] ||
        fail "set$k: no sequence number on one volume (a=$va b=$vb)"
    d=$((va > vb ? va - vb : vb - va))
    [ "$d" -eq 1 ] || fail "set$k is not one point in time: volume a has write $va, volume b has write $vb"
done
log "$n sets across two volumes were each one point in time"

# Both members share the set id; delete --set removes them on both.
id=$(sc_field set1 set)
[ -n "$id" ] || fail "set1 has no set id"
idb=$("$SHADOWCOPY_CLI" -c "$CTL_B" list --json | json '[s["set"] for s in d if s["name"] == "set1"][0]')
[ "$id" = "$idb" ] || fail "set ids differ: $id / $idb"
"$SHADOWCOPY_CLI" -c "$CTL" delete --set "$id" -c "$CTL_B" > "$TMP/del.out" || fail "delete --set failed"
[ "$(cat "$TMP/del.out" | tr '\n' ' ')" = "set1 set1 " ] || fail "delete --set printed $(cat "$TMP/del.out")"
has_snapshot set1 && fail "set1 still on volume a"
grep -qw set1 <<< "$("$SHADOWCOPY_CLI" -c "$CTL_B" list)" && fail "set1 still on volume b"
"$SHADOWCOPY_CLI" -c "$CTL" delete --set "$id" 2>/dev/null && fail "delete --set of a gone set succeeded"

# A commit that fails on one volume leaves no snapshot on the other.
"$SHADOWCOPY_CLI" create -c "$CTL" -c "$CTL_B" --no-writers set2 2>"$TMP/dup.err" &&
    fail "a set whose name exists on one volume was created"
grep -q "snapshot already exists: set2" "$TMP/dup.err" || fail "duplicate: $(cat "$TMP/dup.err")"

# Auto-release: the snapshots live while the CLI runs, on both volumes,
# and go when it is killed -9.
"$SHADOWCOPY_CLI" create -c "$CTL" -c "$CTL_B" --no-writers --auto-release ar > "$TMP/ar.out" 2>&1 &
ar=$!
for ((i = 0; i < 100; i++)); do grep -q "kept until" "$TMP/ar.out" && break; sleep 0.1; done
[ "$(sc_field ar auto_release)" = true ] || fail "ar is not listed as auto-release: $(cat "$TMP/ar.out")"
grep -qw ar <<< "$("$SHADOWCOPY_CLI" -c "$CTL_B" list)" || fail "ar missing on volume b"
kill -KILL "$ar"; wait "$ar" 2>/dev/null || :
for ((i = 0; i < 50; i++)); do has_snapshot ar || break; sleep 0.1; done
has_snapshot ar && fail "auto-release snapshot survived kill -9 of its CLI (volume a)"
grep -qw ar <<< "$("$SHADOWCOPY_CLI" -c "$CTL_B" list)" && fail "auto-release snapshot survived kill -9 (volume b)"

# --run: the command sees the snapshot; it goes when the command exits.
"$SHADOWCOPY_CLI" -c "$CTL" create --no-writers --auto-release \
    --run 'nbdinfo --size "nbd+unix:///$SHADOWCOPY_SNAPSHOT?socket='"$NBD_SOCK"'" > '"$TMP/run.out" run1 > /dev/null ||
    fail "create --run failed"
[ "$(cat "$TMP/run.out")" = $((8 * 1024 * 1024)) ] || fail "--run command saw: $(cat "$TMP/run.out")"
has_snapshot run1 && fail "run1 survived its --run command"

# A server that dies while an auto-release snapshot exists deletes it on
# the next start (its session is gone).
"$SHADOWCOPY_CLI" -c "$CTL" create --no-writers --auto-release ar2 > "$TMP/ar2.out" 2>&1 &
ar2=$!
for ((i = 0; i < 100; i++)); do grep -q "kept until" "$TMP/ar2.out" && break; sleep 0.1; done
has_snapshot ar2 || fail "ar2 was not created"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || :; _forget_pid "$SERVER_PID"
wait "$ar2" 2>/dev/null || :
start_server "$TMP/a" "$TMP/a.diff"
has_snapshot ar2 && fail "auto-release snapshot survived a server restart"
has_snapshot set3 || fail "persistent snapshots were lost at restart: $(sc_names)"
stop_server
