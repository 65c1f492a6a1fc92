#!/bin/bash
# Tests that a writer the CLI cannot even start (no descriptors left for its pipe) is reported by name with the reason, never with an unset message, and leaves no snapshot behind.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"
cat > "$TMP/w" <<'W'
#!/bin/sh
exit 0
W
chmod 755 "$TMP/w"

# Lower and lower descriptor limits: somewhere the CLI still connects but
# cannot make a writer's pipe (in identify, or in a later phase).
seen=0
for lim in $(seq 40 -1 3); do
    rc=0
    ( ulimit -n "$lim"
      exec "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/w" "s$lim" ) \
        > "$TMP/out" 2> "$TMP/err" || rc=$?
    if grep -q "cannot start it" "$TMP/err"; then
        seen=$((seen + 1))
        grep -q "writer $TMP/w: [a-z-]*: cannot start it: " "$TMP/err" ||
            fail "limit $lim: the message does not name the writer: $(cat -v "$TMP/err")"
    fi
    # Every line printed is text: no bytes of an unset buffer.
    LC_ALL=C grep -q '[^[:print:][:space:]]' "$TMP/err" &&
        fail "limit $lim: unprintable bytes on stderr: $(cat -v "$TMP/err")"
    grep -qx 'shadowcopy: ' "$TMP/err" &&
        fail "limit $lim: an empty error message"
    if [ "$rc" -ne 0 ]; then
        sc list --json | json '[s["name"] for s in d]' | grep_all -x "s$lim" &&
            fail "limit $lim: the failed create left snapshot s$lim"
    fi
done
[ "$seen" -gt 0 ] || fail "no descriptor limit made a writer fail to start"
log "ok, a writer that cannot start is named with its reason ($seen limits)"
