#!/bin/bash
# Tests writers: phases in VSS order with their environment; a writer that times out or fails aborts the creation (abort, then thaw, to every writer; no snapshot; message names the writer and its output); identify failures are left out; --retry; `shadowcopy writers`.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"

# A fake writer that logs each phase, and misbehaves in the phase named
# by $TMP/NAME.hang (sleeps) or $TMP/NAME.fail (says why and exits 3).
mkwriter () {
    cat > "$TMP/$1" <<EOW
#!/bin/sh
echo "\$1 \$SHADOWCOPY_PHASE \$SHADOWCOPY_SNAPSHOT \$SHADOWCOPY_SET_ID \$SHADOWCOPY_VOLUMES" >> "$TMP/$1.log"
if [ -f "$TMP/$1.hang" ] && [ "\$1" = "\$(cat "$TMP/$1.hang")" ]; then sleep 30; fi
if [ -f "$TMP/$1.fail" ] && [ "\$1" = "\$(cat "$TMP/$1.fail")" ]; then
    echo "$1 cannot \$1: database locked"; exit 3
fi
echo "$1 did \$1"
EOW
    chmod +x "$TMP/$1"
}
phases () { cut -d' ' -f1 "$TMP/$1.log" | tr '\n' ' '; }
mkwriter wa; mkwriter wb

# 1. Success: every phase in VSS order, with the environment.
out=$(sc create --writer "$TMP/wa" --writer "$TMP/wb" s1) || fail "create with writers failed"
[ "$out" = s1 ] || fail "create printed '$out'"
for w in wa wb; do
    [ "$(phases $w)" = "identify prepare freeze thaw post-snapshot " ] ||
        fail "$w phases: $(phases $w)"
done
set_id=$(sc_field s1 set)
[ -n "$set_id" ] || fail "s1 has no set id"
grep -q "^freeze freeze s1 $set_id $CTL\$" "$TMP/wa.log" ||
    fail "writer environment: $(cat "$TMP/wa.log")"

# 2. A writer that hangs in freeze: killed at the freeze timeout, every
# writer gets abort then thaw, no snapshot, non-zero exit, and the
# message names the writer.
rm -f "$TMP"/w?.log
echo freeze > "$TMP/wb.hang"
out=$(sc create --writer "$TMP/wa" --writer "$TMP/wb" --freeze-timeout 1 s2 2>&1) &&
    fail "create with a hanging writer succeeded"
echo "$out" | grep_all "writer $TMP/wb: freeze: timed out" ||
    fail "timeout message: $out"
[ "$(phases wa)" = "identify prepare freeze abort thaw " ] || fail "wa phases after a timeout: $(phases wa)"
[ "$(phases wb)" = "identify prepare freeze abort thaw " ] || fail "wb phases after a timeout: $(phases wb)"
[ "$(sc_names | tr '\n' ' ')" = "s1 " ] || fail "a snapshot was kept: $(sc_names)"
rm -f "$TMP/wb.hang"

# 3. A writer that fails in prepare: its words are in the message.
rm -f "$TMP"/w?.log
echo prepare > "$TMP/wa.fail"
out=$(sc create --writer "$TMP/wa" --writer "$TMP/wb" s3 2>&1) && fail "create with a failing writer succeeded"
echo "$out" | grep_all "writer $TMP/wa: prepare: exit status 3: wa cannot prepare: database locked" ||
    fail "failure message: $out"
[ "$(phases wb)" = "identify abort thaw " ] || fail "wb phases after wa failed: $(phases wb)"
[ "$(sc_names | tr '\n' ' ')" = "s1 " ] || fail "a snapshot was kept: $(sc_names)"

# 4. --retry: the failure goes away between attempts.
rm -f "$TMP"/w?.log
echo freeze > "$TMP/wa.fail"
( sleep 1; rm -f "$TMP/wa.fail" ) &
sc create --writer "$TMP/wa" --retry 3 --retry-delay 2 s4 > /dev/null 2>"$TMP/retry.err" ||
    fail "create --retry failed: $(cat "$TMP/retry.err")"
grep -q "retrying" "$TMP/retry.err" || fail "no retry was made: $(cat "$TMP/retry.err")"
[ "$(sc_names | tr '\n' ' ')" = "s1 s4 " ] || fail "after --retry: $(sc_names)"

# 5. A writer failing identify is left out, with a warning.
rm -f "$TMP"/w?.log
echo identify > "$TMP/wb.fail"
sc create --writer "$TMP/wa" --writer "$TMP/wb" s5 > /dev/null 2>"$TMP/ident.err" ||
    fail "create with a writer failing identify failed"
grep -q "left out: writer $TMP/wb: identify" "$TMP/ident.err" || fail "no warning: $(cat "$TMP/ident.err")"
[ "$(phases wb)" = "identify " ] || fail "a left-out writer was called: $(phases wb)"

# 6. A writers directory runs in name order; `writers` shows last results.
mkdir "$TMP/wd"; cp "$TMP/wb" "$TMP/wd/20-b"; cp "$TMP/wa" "$TMP/wd/10-a"
rm -f "$TMP/wb.fail"
sc create --writers-dir "$TMP/wd" s6 > /dev/null || fail "create --writers-dir failed"
"$SHADOWCOPY_CLI" writers --writers-dir "$TMP/wd" --json > "$TMP/w.json"
printf '%s\n' "$(cat "$TMP/w.json")" | json '[(w["writer"].split("/")[-1], w["phase"], w["result"]) for w in d if "in_box" not in w]' > "$TMP/w.txt"
cat > "$TMP/w.exp" <<EOX
('10-a', 'post-snapshot', 'ok')
('20-b', 'post-snapshot', 'ok')
EOX
cmp_files "$TMP/w.exp" "$TMP/w.txt" "writers --json"

# 7. Interrupted (SIGINT) during the freeze: the writer is killed, every
# writer still gets abort and thaw, and no snapshot is kept.
rm -f "$TMP"/w?.log
echo freeze > "$TMP/wb.hang"
"$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/wa" --writer "$TMP/wb" --freeze-timeout 30 s8 \
    > /dev/null 2> "$TMP/int.err" &
cli=$!
for ((i = 0; i < 100; i++)); do grep -q "^freeze" "$TMP/wb.log" 2>/dev/null && break; sleep 0.1; done
kill -INT "$cli"
rc=0; timeout 20 tail --pid="$cli" -f /dev/null || fail "create did not stop after SIGINT"
wait "$cli" || rc=$?
[ "$rc" -ne 0 ] || fail "an interrupted create exited 0"
grep -q "writer $TMP/wb: freeze: interrupted" "$TMP/int.err" || fail "SIGINT message: $(cat "$TMP/int.err")"
[ "$(phases wa)" = "identify prepare freeze abort thaw " ] || fail "wa phases after SIGINT: $(phases wa)"
[ "$(phases wb)" = "identify prepare freeze abort thaw " ] || fail "wb phases after SIGINT: $(phases wb)"
has=$(sc_names); printf '%s\n' "$has" | grep_all -x s8 && fail "an interrupted create kept its snapshot"
rm -f "$TMP/wb.hang"

# 8. --no-writers skips them.
rm -f "$TMP"/w?.log
sc create --no-writers s7 > /dev/null || fail "create --no-writers failed"
stop_server
