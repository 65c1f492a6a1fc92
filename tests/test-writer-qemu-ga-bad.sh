#!/bin/bash
# The qemu-ga writer against bad agents (tests/qga-fake.py): a wrong socket, an agent that never answers, one that answers garbage, one that refuses the freeze (no thaw sent: it froze nothing), a guest already frozen by someone else (refused after guest-fsfreeze-status, no freeze, no thaw), one that never answers the freeze (thawed; the error names the call), one whose status is not "frozen" after the freeze.  Each: a clear error naming the writer and the socket, the creation aborted (no snapshot), every writer told abort and thaw.  Then a well-behaved fake: the snapshot is taken, thaw says "frozen for N ms".
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"

cat > "$TMP/marker" <<EOW
#!/bin/sh
echo "\$1" >> "$TMP/marker.log"
EOW
chmod +x "$TMP/marker"

FAKE_PID=
fake () {                       # MODE
    rm -f "$TMP/agent.log"
    "$PYTHON" "$(dirname "$0")/qga-fake.py" "$TMP/qga.sock" "$TMP/agent.log" "$1" &
    FAKE_PID=$!
    for ((i = 0; i < 100; i++)); do [ -S "$TMP/qga.sock" ] && break; sleep 0.05; done
    [ -S "$TMP/qga.sock" ] || fail "the fake agent did not start"
}
unfake () { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null || :; FAKE_PID=; rm -f "$TMP/qga.sock"; }
trap 'rc=$?; set +e; [ -n "$FAKE_PID" ] && unfake; (exit $rc); _cleanup' EXIT

# create must fail within SECONDS, with the error matching PATTERN,
# keeping no snapshot, the marker writer told abort and thaw.
aborted () {                    # NAME SECONDS PATTERN WRITER...
    local name=$1 secs=$2 pat=$3 t0 rc=0
    shift 3
    rm -f "$TMP/marker.log"
    t0=$(date +%s)
    timeout 60 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/marker" "$@" "$name" \
        > /dev/null 2> "$TMP/$name.err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: create succeeded"
    [ "$rc" -ne 124 ] || fail "$name: create hung"
    [ $(($(date +%s) - t0)) -le "$secs" ] || fail "$name: create took more than $secs s"
    grep -q -- "$pat" "$TMP/$name.err" || fail "$name: not the expected error: $(cat "$TMP/$name.err")"
    [ -z "$(sc_names)" ] || fail "$name: a snapshot was kept: $(sc_names)"
    grep -qx abort "$TMP/marker.log" && grep -qx thaw "$TMP/marker.log" ||
        fail "$name: the other writer was not told abort and thaw: $(cat "$TMP/marker.log")"
    log "$name: $(head -n 1 "$TMP/$name.err")"
}

# 0. Bad spellings of the in-box writers are refused before anything runs.
spelled () {                    # WRITER EXPECTED-ERROR
    expect_cli_error "writer $1" sc create --writer "$1" x
    [ "$CLI_ERR" = "shadowcopy: writer $1: $2" ] || fail "$1: not the expected error: $CLI_ERR"
}
spelled "qemu-ga:" "no socket: qemu-ga:SOCKET[:MOUNT,MOUNT...]"
spelled "qemu-ga:/run/vm.qga:data" "guest mount point 'data' is not an absolute path"
spelled "qemu-ga:/run/vm.qga:" "no mount point after the socket's ':'"
spelled "qemu-ga:/$(printf 'x%.0s' {1..120})" "the socket path is too long"
spelled "postgresql:" "no connection string: postgresql:CONNINFO"
spelled "postgresql:-c" "a connection string cannot start with '-'"
spelled "mysql:" "no defaults file: mysql:DEFAULTS-FILE"
spelled "libvirt:--all" "a domain name cannot start with '-'"
[ -z "$(sc_names)" ] || fail "a snapshot was made: $(sc_names)"

# 1. A wrong socket: prepare fails, nothing is frozen.
aborted wrong 10 "writer qemu-ga:$TMP/nothere: prepare: failed: agent socket $TMP/nothere: No such file or directory" \
    --writer "qemu-ga:$TMP/nothere"
touch "$TMP/plain"
aborted notsock 10 "agent socket $TMP/plain: not a socket" --writer "qemu-ga:$TMP/plain"

# 2. An agent that accepts and never answers: the sync's deadline.
fake silent
aborted silent 15 "writer qemu-ga:$TMP/qga.sock: freeze: .*guest-sync-delimited: the agent on $TMP/qga.sock did not answer in time" \
    --writer "qemu-ga:$TMP/qga.sock"
if grep -q guest-fsfreeze-freeze "$TMP/agent.log"; then
    fail "silent: a freeze was sent to an agent that did not sync"
fi
unfake

# 3. Garbage.
fake garbage
aborted garbage 15 "guest-sync-delimited: the agent on $TMP/qga.sock answered garbage" \
    --writer "qemu-ga:$TMP/qga.sock"
unfake

# 4. The agent refuses the freeze: its message is quoted; it froze
# nothing, so no thaw is sent (it could end someone else's freeze).
fake error
aborted refused 15 "writer qemu-ga:$TMP/qga.sock:/data: freeze: failed: guest-fsfreeze-freeze-list: the agent said: fsfreeze is disabled" \
    --writer "qemu-ga:$TMP/qga.sock:/data"
grep -q guest-fsfreeze-freeze-list "$TMP/agent.log" || fail "refused: no freeze asked: $(cat "$TMP/agent.log")"
grep -q guest-fsfreeze-thaw "$TMP/agent.log" && fail "refused: a thaw after a refused freeze: $(cat "$TMP/agent.log")"
unfake

# 4b. A guest someone else froze: refused before any freeze, and their
# freeze is left alone (no thaw).
fake prefrozen
aborted prefrozen 15 "writer qemu-ga:$TMP/qga.sock: freeze: failed: the guest's filesystems are already frozen by someone else; not touching them" \
    --writer "qemu-ga:$TMP/qga.sock"
printf '%s\n' guest-sync-delimited guest-fsfreeze-status > "$TMP/agent.exp"
cmp_files "$TMP/agent.exp" "$TMP/agent.log" "prefrozen: the agent's calls"
unfake

# 4c. The freeze's answer is lost (the agent may have frozen): thawed.
fake lostfreeze
# The freeze's deadline is the window's (3 s) and the error names the
# unanswered call, not the window.
aborted lostfreeze 15 "writer qemu-ga:$TMP/qga.sock: freeze: timed out: guest-fsfreeze-freeze: the agent on $TMP/qga.sock did not answer in time" \
    --writer "qemu-ga:$TMP/qga.sock" --freeze-timeout 3
grep -q guest-fsfreeze-thaw "$TMP/agent.log" || fail "lostfreeze: not thawed: $(cat "$TMP/agent.log")"
unfake

# 5. The status is not "frozen" after the freeze: error, and thawed.
fake notfrozen
aborted notfrozen 15 "guest-fsfreeze-status: the agent says 'thawed', not 'frozen'" \
    --writer "qemu-ga:$TMP/qga.sock"
[ "$(tail -n 1 "$TMP/agent.log")" = guest-fsfreeze-status ] &&
    grep -q guest-fsfreeze-thaw "$TMP/agent.log" ||
    fail "notfrozen: not thawed: $(cat "$TMP/agent.log")"
unfake

# 6. A well-behaved agent: the snapshot, the calls in order, the times.
fake ok
sc create --writer "qemu-ga:$TMP/qga.sock:/a,/b" good > /dev/null 2> "$TMP/good.err" ||
    fail "create with a good agent failed: $(cat "$TMP/good.err")"
[ "$(sc_names)" = good ] || fail "no snapshot: $(sc_names)"
printf '%s\n' guest-sync-delimited guest-fsfreeze-status guest-fsfreeze-freeze-list guest-fsfreeze-status \
    guest-sync-delimited guest-fsfreeze-thaw guest-fsfreeze-status > "$TMP/agent.exp"
cmp_files "$TMP/agent.exp" "$TMP/agent.log" "the agent's calls"
grep -q "^shadowcopy: writer qemu-ga:$TMP/qga.sock:/a,/b: freeze: froze in [0-9]* ms: 1 guest filesystem frozen$" "$TMP/good.err" &&
    grep -q "^shadowcopy: writer qemu-ga:$TMP/qga.sock:/a,/b: thaw: frozen for [0-9]* ms: 1 guest filesystem thawed$" "$TMP/good.err" ||
    fail "create does not say how long the freeze took and lasted: $(cat "$TMP/good.err")"
log "$(cat "$TMP/good.err")"
unfake

# 7. The CLI killed (kill -9) while the guest is frozen: the guardian
# thaws it by itself.
fake ok
cat > "$TMP/slow" <<EOW
#!/bin/sh
[ "\$1" = freeze ] && { echo \$\$ > "$TMP/slow.pid"; touch "$TMP/slow.frozen"; exec sleep 30; }
exit 0
EOW
chmod +x "$TMP/slow"
"$SHADOWCOPY_CLI" -c "$CTL" create --writer "qemu-ga:$TMP/qga.sock" --writer "$TMP/slow" killed \
    > /dev/null 2>&1 &
cli=$!
for ((i = 0; i < 100; i++)); do [ -e "$TMP/slow.frozen" ] && break; sleep 0.1; done
[ -e "$TMP/slow.frozen" ] || fail "killed: the freeze did not happen"
grep -q guest-fsfreeze-thaw "$TMP/agent.log" && fail "killed: thawed before the kill"
kill -9 "$cli"
wait "$cli" 2>/dev/null || :
for ((i = 0; i < 100; i++)); do grep -q guest-fsfreeze-thaw "$TMP/agent.log" && break; sleep 0.1; done
grep -q guest-fsfreeze-thaw "$TMP/agent.log" ||
    fail "killed: the guardian did not thaw the guest: $(cat "$TMP/agent.log")"
kill -9 "$(cat "$TMP/slow.pid")" 2>/dev/null || :
unfake

# 8. A backup's manifest records each phase: the freeze says how long it
# took, the thaw how long the guest was frozen.
fake ok
sc backup --create --writer "qemu-ga:$TMP/qga.sock" --nbd-socket "$NBD_SOCK" --to "$TMP/b1" \
    > /dev/null 2> "$TMP/b1.err" || fail "backup --create failed: $(cat "$TMP/b1.err")"
json '"\n".join(p["phase"] + " " + p["output"] for p in d["writers"][0]["phases"])' \
    < "$TMP/b1.manifest.json" > "$TMP/b1.phases"
grep -q "^freeze froze in [0-9]* ms: 1 guest filesystem frozen$" "$TMP/b1.phases" &&
    grep -q "^thaw frozen for [0-9]* ms: 1 guest filesystem thawed$" "$TMP/b1.phases" ||
    fail "the manifest does not record the freeze's times: $(cat "$TMP/b1.phases")"
unfake

# 9. The freeze window ends before thaw (a slow writer after the agent
# takes the rest of it): the guardian thaws the guest by itself at the
# window's end, and the creation fails.
fake ok
cat > "$TMP/slow3" <<'EOW'
#!/bin/sh
[ "$1" = freeze ] && sleep 3
exit 0
EOW
chmod +x "$TMP/slow3"
rc=0
timeout -k 5 25 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "qemu-ga:$TMP/qga.sock" \
    --writer "$TMP/slow3" --freeze-timeout 1 late > /dev/null 2> "$TMP/late.err" || rc=$?
[ $rc -ne 124 ] || fail "late: create did not finish"
[ $rc -ne 0 ] || fail "late: create succeeded past its freeze window"
grep -q "^late$" <(sc_names) && fail "late: a snapshot was kept"
grep -q guest-fsfreeze-thaw "$TMP/agent.log" || fail "late: not thawed: $(cat "$TMP/agent.log")"
log "late: $(head -n 1 "$TMP/late.err")"
unfake
