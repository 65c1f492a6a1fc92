#!/bin/bash
# Tests that writer time limits hold: a writer that closes its output and hangs is killed at its limit (and the attempt fails), and the freeze window bounds all writers' freeze phases together, not each one.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"

# 1. A writer that closes its output in freeze, then hangs (the hang is
# a process of its own, to check the group is killed too).
cat > "$TMP/silent" <<EOW
#!/bin/sh
[ "\$1" = freeze ] || exit 0
exec >/dev/null 2>&1
sleep 20 &
echo \$! > "$TMP/silent.pid"
wait
EOW
chmod +x "$TMP/silent"
rc=0
out=$(timeout -k 5 15 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/silent" \
      --freeze-timeout 1 s1 2>&1) || rc=$?
[ $rc -ne 124 ] || fail "create with a silent hanging writer did not end"
[ $rc -ne 0 ] || fail "create with a silent hanging writer succeeded: $out"
echo "$out" | grep_all "writer $TMP/silent: freeze: timed out" ||
    fail "silent writer: message: $out"
[ -z "$(sc_names)" ] || fail "silent writer: a snapshot was kept: $(sc_names)"
pid=$(cat "$TMP/silent.pid")
for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { kill "$pid"; fail "the silent writer's child outlived its limit"; }

# 2. The freeze window is one for all writers: three writers that take
# 0.8 s each to freeze do not fit in a 1.5 s window.
cat > "$TMP/slow" <<'EOW'
#!/bin/sh
[ "$1" = freeze ] && sleep 0.8
exit 0
EOW
chmod +x "$TMP/slow"
out=$(timeout -k 5 30 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/slow" \
      --writer "$TMP/slow" --writer "$TMP/slow" --freeze-timeout 1.5 s2 2>&1) &&
    fail "three 0.8 s freezes fitted in a 1.5 s freeze window: $out"
echo "$out" | grep_all "freeze window of 1500 ms" || fail "window message: $out"
[ -z "$(sc_names)" ] || fail "window: a snapshot was kept: $(sc_names)"
# ... and they do in a 5 s one.
sc create --writer "$TMP/slow" --writer "$TMP/slow" --writer "$TMP/slow" \
   --freeze-timeout 5 s3 > /dev/null || fail "three 0.8 s freezes in a 5 s window failed"
[ "$(sc_names)" = s3 ] || fail "after s3: $(sc_names)"

# 3. Limits the server cannot honour are refused up front.
out=$(sc create --freeze-timeout 7200 s4 2>&1) && fail "--freeze-timeout 7200 accepted"
echo "$out" | grep_all "freeze-timeout is at most" || fail "--freeze-timeout 7200: $out"
server_alive
stop_server
