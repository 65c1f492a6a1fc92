#!/bin/bash
# Tests two fsfreeze writers in one creation: the CLI finishes (each guardian sees its own pipe close, none holds another's or the control socket), both filesystems are thawed, and a creation whose freeze window ends before thaw fails.  Needs root and loop devices (else skips).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires losetup mkfs.ext4 mount umount mountpoint timeout
[ "$(id -u)" -eq 0 ] || skip "needs root (fsfreeze, losetup, mount)"
[ -e /dev/loop-control ] || skip "no loop devices"
losetup -f > /dev/null 2>&1 || skip "no free loop device"

export SHADOWCOPY_STATE_DIR=$TMP/state
M1=$TMP/m1
M2=$TMP/m2
mkdir -p "$M1" "$M2"
LOOPS=
two_cleanup () {
    local l
    for m in "$M1" "$M2"; do
        fsfreeze -u "$m" 2>/dev/null
        mountpoint -q "$m" && umount "$m"
    done
    for l in $LOOPS; do losetup -d "$l"; done
    return 0
}
trap 'rc=$?; set +e; two_cleanup; (exit $rc); _cleanup' EXIT
for i in 1 2; do
    truncate -s 16M "$TMP/fs$i.img"
    mkfs.ext4 -q -F "$TMP/fs$i.img" || fail "mkfs.ext4 failed"
    l=$(losetup -f --show "$TMP/fs$i.img") || skip "losetup failed"
    LOOPS="$LOOPS $l"
    mount "$l" "$TMP/m$i" || fail "mount $l failed"
done

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"

# writable DIR: a write to DIR completes within 5 s (not frozen).
writable () {
    timeout 5 sh -c "echo x > '$1/probe' && sync -f '$1/probe'" ||
        fail "$1 is still frozen"
}

# 1. Two fsfreeze writers with a long window: the CLI ends at once, well
# before the window (the output is read to EOF here, so a guardian
# holding the CLI's stdout would hang this too), and both are thawed.
rc=0
out=$(timeout -k 5 25 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "fsfreeze:$M1" \
      --writer "fsfreeze:$M2" --freeze-timeout 30 two 2>&1) || rc=$?
[ $rc -ne 124 ] || fail "create with two fsfreeze writers did not finish"
[ $rc -eq 0 ] || fail "create with two fsfreeze writers failed: $out"
[ "$(sc_names)" = two ] || fail "snapshots after two fsfreeze writers: $(sc_names)"
writable "$M1"
writable "$M2"

# 2. A window that ends before thaw (a slow external writer freezes
# after the filesystems; its freeze takes the rest of the window): the
# attempt fails, nothing is kept, the filesystems are thawed.
cat > "$TMP/slow" <<'EOW'
#!/bin/sh
[ "$1" = freeze ] && sleep 3
exit 0
EOW
chmod +x "$TMP/slow"
rc=0
out=$(timeout -k 5 25 "$SHADOWCOPY_CLI" -c "$CTL" create --writer "fsfreeze:$M1" \
      --writer "fsfreeze:$M2" --writer "$TMP/slow" --freeze-timeout 1 late 2>&1) || rc=$?
[ $rc -ne 124 ] || fail "create with an expiring window did not finish"
[ $rc -ne 0 ] || fail "create succeeded past its freeze window: $out"
[ "$(sc_names)" = two ] || fail "snapshots after an expired window: $(sc_names)"
writable "$M1"
writable "$M2"

# 3. The thaw's output says how long the filesystem was frozen (a
# backup's manifest records each phase).
sc backup --create --writer "fsfreeze:$M1" --nbd-socket "$NBD_SOCK" --to "$TMP/b1" \
    > /dev/null 2> "$TMP/b1.err" || fail "backup --create failed: $(cat "$TMP/b1.err")"
json '"\n".join(p["phase"] + " " + p["output"] for p in d["writers"][0]["phases"])' \
    < "$TMP/b1.manifest.json" > "$TMP/b1.phases"
grep -q "^thaw frozen for [0-9]* ms$" "$TMP/b1.phases" ||
    fail "the manifest does not say how long it was frozen: $(cat "$TMP/b1.phases")"
writable "$M1"
server_alive
stop_server
