#!/bin/bash
# The libvirt writer against libvirt's test driver (LIBVIRT_DEFAULT_URI=test:///default, whose domain "test" implements domfsfreeze/domfsthaw): the snapshot taken with virsh domfsfreeze at freeze and domfsthaw at thaw, what virsh said reported; an unknown domain: a clear error quoting virsh, the creation aborted, every writer told abort and thaw, no domfsthaw sent after the refused domfsfreeze; the CLI killed (kill -9) while frozen: the guardian runs domfsthaw by itself.  (The test driver keeps no state between virsh runs, so that the guest is thawed is seen in the calls made, not in a guest.)  Needs virsh (Debian package libvirt-clients; else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires virsh timeout
export LIBVIRT_DEFAULT_URI=test:///default
virsh -q domfsfreeze test > /dev/null 2>&1 || skip "libvirt's test driver has no domfsfreeze"

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"

# virsh, through a wrapper that logs each call.
mkdir "$TMP/bin"
cat > "$TMP/bin/virsh" <<EOW
#!/bin/sh
echo "\$*" >> "$TMP/virsh.log"
exec $(command -v virsh) "\$@"
EOW
chmod +x "$TMP/bin/virsh"
export PATH=$TMP/bin:$PATH
cat > "$TMP/marker" <<EOW
#!/bin/sh
echo "\$1" >> "$TMP/marker.log"
EOW
chmod +x "$TMP/marker"

# 1. The snapshot.
sc create --writer libvirt:test good > /dev/null 2> "$TMP/good.err" ||
    fail "create failed: $(cat "$TMP/good.err")"
[ "$(sc_names)" = good ] || fail "no snapshot: $(sc_names)"
printf '%s\n' "domfsfreeze test" "domfsthaw test" > "$TMP/virsh.exp"
cmp_files "$TMP/virsh.exp" "$TMP/virsh.log" "virsh calls"
grep -q "^shadowcopy: writer libvirt:test: freeze: froze in [0-9]* ms: Froze 2 filesystem(s)$" "$TMP/good.err" &&
    grep -q "^shadowcopy: writer libvirt:test: thaw: frozen for [0-9]* ms: Thawed 0 filesystem(s)$" "$TMP/good.err" ||
    fail "no freeze/thaw report: $(cat "$TMP/good.err")"
log "$(tr '\n' ' ' < "$TMP/good.err")"

# 2. An unknown domain: virsh's error, the creation aborted.
rm -f "$TMP/virsh.log"
rc=0
sc create --writer "$TMP/marker" --writer libvirt:nosuch bad > /dev/null 2> "$TMP/bad.err" || rc=$?
[ "$rc" -ne 0 ] || fail "create with an unknown domain succeeded"
grep -q "writer libvirt:nosuch: freeze: failed: virsh domfsfreeze nosuch: error: failed to get domain 'nosuch'" "$TMP/bad.err" ||
    fail "not the expected error: $(cat "$TMP/bad.err")"
[ "$(sc_names)" = good ] || fail "a snapshot was kept: $(sc_names)"
grep -qx abort "$TMP/marker.log" && grep -qx thaw "$TMP/marker.log" ||
    fail "the other writer was not told abort and thaw: $(cat "$TMP/marker.log")"
# virsh answered with an error: nothing of ours is frozen, and a
# domfsthaw could end someone else's freeze (an admin's domfsfreeze).
grep -q "domfsfreeze nosuch" "$TMP/virsh.log" || fail "no freeze asked: $(cat "$TMP/virsh.log")"
grep -q "domfsthaw nosuch" "$TMP/virsh.log" && fail "a thaw after a refused freeze: $(cat "$TMP/virsh.log")"
log "$(head -n 1 "$TMP/bad.err")"

# 3. A bad spelling is refused before anything runs.
expect_cli_error "a writer without its domain" sc create --writer libvirt: x
[ "$CLI_ERR" = "shadowcopy: writer libvirt:: no domain: libvirt:DOMAIN" ] || fail "not the expected error: $CLI_ERR"

# 4. The CLI killed while frozen: the guardian thaws.
rm -f "$TMP/virsh.log"
cat > "$TMP/slow" <<EOW
#!/bin/sh
[ "\$1" = freeze ] && { echo \$\$ > "$TMP/slow.pid"; touch "$TMP/slow.frozen"; exec sleep 30; }
exit 0
EOW
chmod +x "$TMP/slow"
"$SHADOWCOPY_CLI" -c "$CTL" create --writer libvirt:test --writer "$TMP/slow" killed > /dev/null 2>&1 &
cli=$!
for ((i = 0; i < 100; i++)); do [ -e "$TMP/slow.frozen" ] && break; sleep 0.1; done
[ -e "$TMP/slow.frozen" ] || fail "killed: the freeze did not happen"
kill -9 "$cli"
wait "$cli" 2>/dev/null || :
for ((i = 0; i < 100; i++)); do grep -q domfsthaw "$TMP/virsh.log" && break; sleep 0.1; done
grep -q "domfsthaw test" "$TMP/virsh.log" || fail "killed: the guardian did not thaw: $(cat "$TMP/virsh.log")"
kill -9 "$(cat "$TMP/slow.pid")" 2>/dev/null || :
