#!/bin/bash
# Tests libshadowcopy's snapshot sets (shadowcopy_set_*) through a requester compiled against <shadowcopy.h> alone (tests/lib/set-example.c), against two real servers: a set of two volumes with a writer that logs its phases, each phase's result and frozen_ns; a failing writer (no snapshot on either volume, every writer told abort and thaw); shadowcopy_set_delete; bad input named in the error.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

EX=$abs_top_builddir/tests/lib/set-example
[ -x "$EX" ] || fail "$EX is not built (make check builds it)"
export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/a" 4M
make_disk "$TMP/b" 4M
NBD_B=$TMP/nbd-b.sock
nbdkit -f -U "$NBD_B" "$SHADOWCOPY_PLUGIN" disk="$TMP/b" diff="$TMP/b.diff" \
    >> "$TMP/server-b.log" 2>&1 &
_SERVER_PIDS+=("$!")
start_server "$TMP/a" "$TMP/a.diff"
CTL_B=$TMP/b.diff.sock
for ((i = 0; i < 100; i++)); do [ -S "$CTL_B" ] && break; sleep 0.1; done
[ -S "$CTL_B" ] || fail "second server did not start: $(cat "$TMP/server-b.log")"
names_b () { "$SHADOWCOPY_CLI" -c "$CTL_B" list --json | json '" ".join(s["name"] for s in d)'; }
names_a () { sc list --json | json '" ".join(s["name"] for s in d)'; }

# A writer that logs each phase with the snapshot's name and holds the
# freeze 300 ms (so the freeze-to-thaw time has a floor); W_FAIL=PHASE
# makes it fail that phase.
cat > "$TMP/logw" <<'EOW'
#!/bin/sh
echo "$1 $SHADOWCOPY_SNAPSHOT $SHADOWCOPY_SET_ID" >> "${0}.log"
[ "$1" = thaw ] && sleep 0.3
[ "$1" = "${W_FAIL:-none}" ] && { echo "refusing $1"; exit 3; }
exit 0
EOW
chmod +x "$TMP/logw"
cp "$TMP/logw" "$TMP/badw"

# ---- a set of two volumes, with a writer ----
"$EX" --name s1 --writer "$TMP/logw" "$CTL" "$CTL_B" > "$TMP/s1.out" 2> "$TMP/s1.err" ||
    fail "set s1: $(cat "$TMP/s1.out" "$TMP/s1.err")"
grep -qx "name s1" "$TMP/s1.out" || fail "set s1: $(cat "$TMP/s1.out")"
id=$(awk '$1 == "set" { print $2 }' "$TMP/s1.out")
[[ $id =~ ^[0-9a-f-]{36}$ ]] || fail "no set id: $(cat "$TMP/s1.out")"
# Each volume's snapshot, named by its control socket.
grep -qx "volume $CTL s1 [0-9a-f-]\{36\} $id auto-release=0" "$TMP/s1.out" ||
    fail "volume a: $(cat "$TMP/s1.out")"
grep -qx "volume $CTL_B s1 [0-9a-f-]\{36\} $id auto-release=0" "$TMP/s1.out" ||
    fail "volume b: $(cat "$TMP/s1.out")"
[ "$(names_a)" = s1 ] && [ "$(names_b)" = s1 ] || fail "lists: a=$(names_a) b=$(names_b)"
[ "$(sc_field s1 set)" = "$id" ] || fail "volume a's s1 is not of set $id"
# The writer's phases, in VSS order, each with the set's id and (from
# prepare on) the name.
[ "$(awk '{ print $1 }' "$TMP/logw.log" | tr '\n' ' ')" = "identify prepare freeze thaw post-snapshot " ] ||
    fail "the writer's phases: $(cat "$TMP/logw.log")"
[ "$(awk -v id="$id" '$NF != id' "$TMP/logw.log")" = "" ] || fail "a phase without the set id: $(cat "$TMP/logw.log")"
grep -qx "freeze s1 $id" "$TMP/logw.log" || fail "freeze did not see the name: $(cat "$TMP/logw.log")"
# The results: every phase ok; frozen_ns only on thaw, at least the
# 300 ms the thaw took, and 0 elsewhere.
[ "$(grep -c "^result $TMP/logw [a-z-]* ok frozen_ns=" "$TMP/s1.out")" = 5 ] ||
    fail "results: $(cat "$TMP/s1.out")"
fz=$(sed -n "s|^result $TMP/logw thaw ok frozen_ns=||p" "$TMP/s1.out")
[ "$fz" -ge 300000000 ] && [ "$fz" -lt 30000000000 ] || fail "thaw's frozen_ns: $fz"
[ "$(grep "^result" "$TMP/s1.out" | grep -v " thaw " | grep -vc "frozen_ns=0$")" = 0 ] ||
    fail "frozen_ns outside thaw: $(cat "$TMP/s1.out")"
# The library printed nothing of its own: stderr holds only notices.
[ "$(grep -vc '^notice: ' "$TMP/s1.err")" = 0 ] || fail "the library printed: $(cat "$TMP/s1.err")"
log "a set of two volumes with a writer: phases in order, thaw frozen for $((fz / 1000000)) ms"

# ---- a failing writer: nothing on either volume, every writer thawed ----
rm -f "$TMP/logw.log" "$TMP/badw.log"
W_FAIL=freeze "$EX" --name s2 --writer "$TMP/logw" --writer "$TMP/badw" "$CTL" "$CTL_B" \
    > "$TMP/s2.out" 2> "$TMP/s2.err" && fail "a set with a failing writer was taken"
# Both writers fail freeze under W_FAIL=freeze: the first stops the
# phase, so badw never freezes.
grep -q "^error: shadowcopy_set_create: -10: writer $TMP/logw: freeze: exit status 3: refusing freeze$" "$TMP/s2.out" ||
    fail "the error: $(cat "$TMP/s2.out")"
grep -qx "notice: writer $TMP/logw: freeze: exit status 3: refusing freeze" "$TMP/s2.err" ||
    fail "the failure was not a notice as it happened: $(cat "$TMP/s2.err")"
[ "$(names_a)" = s1 ] && [ "$(names_b)" = s1 ] || fail "a failed set left a snapshot: a=$(names_a) b=$(names_b)"
[ "$(awk '{ print $1 }' "$TMP/logw.log" | tr '\n' ' ')" = "identify prepare freeze abort thaw " ] ||
    fail "logw's phases: $(cat "$TMP/logw.log")"
[ "$(awk '{ print $1 }' "$TMP/badw.log" | tr '\n' ' ')" = "identify prepare abort thaw " ] ||
    fail "badw's phases: $(cat "$TMP/badw.log")"
# A freeze that failed starts no freeze-to-thaw time.
grep -q "^result $TMP/logw thaw ok frozen_ns=0$" "$TMP/s2.out" || fail "results: $(cat "$TMP/s2.out")"
log "a failing writer: no snapshot on either volume, abort and thaw to both writers"

# A writer failing its thaw after the volumes committed: the snapshots
# are deleted again on both.
rm -f "$TMP/logw.log"
W_FAIL=thaw "$EX" --name s3 --writer "$TMP/logw" "$CTL" "$CTL_B" > "$TMP/s3.out" 2> "$TMP/s3.err" &&
    fail "a set whose writer failed thaw was taken"
[ "$(names_a)" = s1 ] && [ "$(names_b)" = s1 ] || fail "a thaw failure left a snapshot: a=$(names_a) b=$(names_b)"
grep -q "writer $TMP/logw: thaw: exit status 3" "$TMP/s3.out" || fail "s3: $(cat "$TMP/s3.out")"

# ---- shadowcopy_set_delete; backup-complete ----
rm -f "$TMP/logw.log"
"$EX" --prefix api- --writer "$TMP/logw" --complete --delete "$CTL" "$CTL_B" > "$TMP/s4.out" 2> "$TMP/s4.err" ||
    fail "set s4: $(cat "$TMP/s4.out" "$TMP/s4.err")"
n4=$(awk '$1 == "name" { print $2 }' "$TMP/s4.out")
[[ $n4 == api-20* ]] || fail "the prefixed default name: $n4"
grep -qx "complete 0" "$TMP/s4.out" && grep -qx deleted "$TMP/s4.out" || fail "s4: $(cat "$TMP/s4.out")"
grep -q "^backup-complete $n4 " "$TMP/logw.log" || fail "no backup-complete: $(cat "$TMP/logw.log")"
[ "$(names_a)" = s1 ] && [ "$(names_b)" = s1 ] || fail "shadowcopy_set_delete left: a=$(names_a) b=$(names_b)"
log "shadowcopy_set_delete removed $n4 from both volumes"

# An auto-release set goes with the set's connections.
"$EX" --name ar --auto-release "$CTL" "$CTL_B" > "$TMP/ar.out" 2>&1 || fail "ar: $(cat "$TMP/ar.out")"
grep -q "^volume $CTL ar .* auto-release=1$" "$TMP/ar.out" || fail "ar: $(cat "$TMP/ar.out")"
[ "$(names_a)" = s1 ] && [ "$(names_b)" = s1 ] || fail "auto-release set outlived its set: a=$(names_a) b=$(names_b)"

# ---- bad input ----
"$EX" --name s5 "$CTL" "$TMP/nowhere.sock" > "$TMP/bad.out" 2>&1 && fail "a set with a missing volume was taken"
grep -q "^error: shadowcopy_set_create: -[0-9]*: .*$TMP/nowhere.sock" "$TMP/bad.out" || fail "missing volume: $(cat "$TMP/bad.out")"
[ "$(names_a)" = s1 ] || fail "a set with a missing volume left: $(names_a)"
"$EX" --name s5 "$CTL" "$TMP/b.diff" > "$TMP/bad.out" 2>&1 && fail "a diff area given for a socket was taken"
grep -q "^error: shadowcopy_set_create: -[0-9]*: .*$TMP/b.diff is not a socket" "$TMP/bad.out" ||
    fail "a diff area for a socket: $(cat "$TMP/bad.out")"
"$EX" --name 'bad/name' "$CTL" > "$TMP/bad.out" 2>&1 && fail "a bad name was taken"
grep -q "^error: an option: -22: invalid snapshot name 'bad/name'" "$TMP/bad.out" || fail "bad name: $(cat "$TMP/bad.out")"
"$EX" --writer fsfreeze:relative "$CTL" > "$TMP/bad.out" 2>&1 && fail "a relative fsfreeze writer was taken"
grep -q "^error: an option: -22: writer fsfreeze:relative: the mount point must be an absolute path" "$TMP/bad.out" ||
    fail "fsfreeze: $(cat "$TMP/bad.out")"
"$EX" > "$TMP/bad.out" 2>&1 && fail "a set without volumes was taken"
grep -q "^error: shadowcopy_set_create: -22: snapshot set: no volume" "$TMP/bad.out" || fail "no volume: $(cat "$TMP/bad.out")"
"$EX" --writers-dir "$TMP/no-such-dir" "$CTL" > "$TMP/bad.out" 2>&1 && fail "a missing writers dir was accepted"
grep -q "^error: an option: -2: writers directory $TMP/no-such-dir: " "$TMP/bad.out" || fail "writers dir: $(cat "$TMP/bad.out")"
log "bad input: each error names what is wrong"
