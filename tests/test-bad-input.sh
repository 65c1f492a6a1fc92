#!/bin/bash
# Tests that bad plugin parameters, bad disks and diff areas, invalid CLI requests and garbage on the control socket get clear errors, crash nothing and change nothing on disk.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

W=$TMP/w                # every file a failed start could touch
mkdir -p "$W"

# state_of DIR: names, types, sizes, mtimes and checksums of everything.
state_of () {
    (cd "$1" && find . -printf '%p %y %m %s %T@\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# expect_start_failure WHAT REGEX1 REGEX2 PLUGIN-ARGS...: nbdkit must
# refuse to start (exit 1..125, within 30 s), its messages must match both
# extended regexes (case-insensitive), and nothing under $W may change.
expect_start_failure () {
    local what=$1 re1=$2 re2=$3 rc=0 before after
    shift 3
    rm -f "$TMP/bad.sock"
    before=$(state_of "$W")
    timeout 30 nbdkit -U "$TMP/bad.sock" --run 'exit 0' \
        "$SHADOWCOPY_PLUGIN" "$@" > "$TMP/start.out" 2>&1 || rc=$?
    case $rc in
        0) soft_fail "$what: nbdkit started with: $*" ;;
        124) soft_fail "$what: nbdkit neither started nor failed within 30 s: $*" ;;
        *)
            if [ "$rc" -ge 126 ]; then
                soft_fail "$what: nbdkit crashed (status $rc): $(cat "$TMP/start.out")"
            elif ! grep -Eiq -- "$re1" "$TMP/start.out" ||
                 ! grep -Eiq -- "$re2" "$TMP/start.out"; then
                soft_fail "$what: the error does not mention /$re1/ and /$re2/: $(cat "$TMP/start.out")"
            else
                log "ok, $what: $(grep -Ei -m1 -- "$re1" "$TMP/start.out")"
            fi
            ;;
    esac
    if grep -Eq 'AddressSanitizer|runtime error:' "$TMP/start.out"; then
        soft_fail "$what: sanitizer report: $(cat "$TMP/start.out")"
    fi
    after=$(state_of "$W")
    [ "$before" = "$after" ] ||
        fail "$what: the start attempt changed files:
$(diff <(echo "$before") <(echo "$after"))"
}

# ---- plugin parameters ------------------------------------------------

make_disk "$W/originA" 16M
make_disk "$W/originB" 24M          # another size
make_disk "$W/originC" 16M          # same size, another file
make_disk "$W/small" 2048
make_disk "$W/small60k" 60K
: > "$W/empty"
mkdir "$W/origin-dir" "$W/diff-dir"
head -c 1M /dev/urandom > "$W/garbage1"
head -c 64K /dev/zero > "$W/garbage2"
head -c 10 /dev/urandom > "$W/garbage3"

# A real diff area of originA, with a snapshot in it.
NBD_SOCK=$TMP/nbd.sock
start_server "$W/originA" "$W/da-of-A"
sc_create keep
nbd_write_random live 0 1M
keep_sum=$(nbd_sha256 keep)
stop_server
rm -f "$W/da-of-A.sock"      # a stale control socket is not the point here
# The same diff area with both superblock copies damaged.
cp "$W/da-of-A" "$W/da-badmagic"
printf 'XXXXXXXX' | dd of="$W/da-badmagic" bs=1 seek=0 conv=notrunc status=none
printf 'XXXXXXXX' | dd of="$W/da-badmagic" bs=1 seek=4096 conv=notrunc status=none
cp "$W/da-of-A" "$W/da-badcrc"
printf 'Z' | dd of="$W/da-badcrc" bs=1 seek=300 conv=notrunc status=none
printf 'Z' | dd of="$W/da-badcrc" bs=1 seek=$((4096 + 300)) conv=notrunc status=none

A=$W/originA
expect_start_failure "no disk=" 'disk' '.' diff="$W/new"
expect_start_failure "no diff=" 'diff' '.' disk="$A"
expect_start_failure "no parameters" 'disk|diff' '.'
expect_start_failure "empty disk=" 'disk' '.' disk= diff="$W/new"
expect_start_failure "unknown key" 'foo' '.' disk="$A" diff="$W/new" foo=bar
for cs in 3000 12K 6000 2K 1K 2M 4M 0 abc -4096 4097; do
    expect_start_failure "chunk-size=$cs" 'chunk' '.' \
        disk="$A" diff="$W/new" chunk-size=$cs
done
expect_start_failure "origin of 2048 bytes" 'small|chunk|size' '.' \
    disk="$W/small" diff="$W/new"
expect_start_failure "origin of 60K, chunk-size=64K" 'small|chunk|size' '.' \
    disk="$W/small60k" diff="$W/new" chunk-size=64K
expect_start_failure "empty origin" 'small|chunk|size|empty' '.' \
    disk="$W/empty" diff="$W/new"
expect_start_failure "nonexistent origin" 'nonexistent' '.' \
    disk="$W/nonexistent" diff="$W/new"
expect_start_failure "origin is a directory" 'origin-dir' '.' \
    disk="$W/origin-dir" diff="$W/new"
expect_start_failure "origin is /dev/null" '/dev/null' '.' \
    disk=/dev/null diff="$W/new"
expect_start_failure "diff in a missing directory" 'nodir' '.' \
    disk="$A" diff="$W/nodir/diff"
expect_start_failure "diff is a directory" 'diff-dir' '.' \
    disk="$A" diff="$W/diff-dir"
expect_start_failure "diff is the origin itself" 'originA' '.' \
    disk="$A" diff="$A"
other_re='origin|belong|another|mismatch|identity|different|size|match'
expect_start_failure "diff area of another disk (other size)" 'da-of-A' "$other_re" \
    disk="$W/originB" diff="$W/da-of-A"
expect_start_failure "diff area of another disk (same size)" 'da-of-A' "$other_re" \
    disk="$W/originC" diff="$W/da-of-A"
garbage_re='magic|not a|corrupt|invalid|format|checksum|crc|bad|unrecogni|superblock|version|short|small|truncat'
for g in garbage1 garbage2 garbage3 da-badmagic da-badcrc; do
    expect_start_failure "garbage diff area $g" "$g" "$garbage_re" \
        disk="$A" diff="$W/$g"
done

# An origin the server cannot read.
if [ "$(id -u)" -ne 0 ]; then
    make_disk "$W/unread-origin" 16M
    chmod 000 "$W/unread-origin"
    expect_start_failure "unreadable origin" 'unread-origin' '.' \
        disk="$W/unread-origin" diff="$W/new"
elif command -v setpriv >/dev/null &&
     setpriv --reuid=nobody --regid=nogroup --clear-groups \
         test -r "$SHADOWCOPY_PLUGIN" 2>/dev/null &&
     chmod 755 "$TMP" "$W" && mkdir -m 777 "$W/nobody" &&
     setpriv --reuid=nobody --regid=nogroup --clear-groups test -w "$W/nobody"; then
    NOBODY_OK=1
    make_disk "$W/nobody/unread-origin" 16M
    chmod 000 "$W/nobody/unread-origin"
    before=$(state_of "$W")
    rc=0
    timeout 30 setpriv --reuid=nobody --regid=nogroup --clear-groups \
        nbdkit -U "$W/nobody/s" --run 'exit 0' "$SHADOWCOPY_PLUGIN" \
        disk="$W/nobody/unread-origin" diff="$W/nobody/diff" \
        > "$TMP/start.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] ||
        fail "unreadable origin: nbdkit exit $rc: $(cat "$TMP/start.out")"
    grep -q 'unread-origin' "$TMP/start.out" ||
        fail "unreadable origin: the error does not name it: $(cat "$TMP/start.out")"
    [ "$before" = "$(state_of "$W")" ] || fail "unreadable origin: files changed"
    log "ok, unreadable origin: $(grep -m1 unread-origin "$TMP/start.out")"
else
    log "cannot run nbdkit as nobody: unreadable origin not tested"
fi

# Positive controls: the limits of chunk-size are accepted.
for cs in 4K 1M; do
    rc=0
    rm -f "$TMP/bad.sock"
    timeout 30 nbdkit -U "$TMP/bad.sock" --run 'exit 0' "$SHADOWCOPY_PLUGIN" \
        disk="$W/originC" diff="$TMP/pos-$cs" chunk-size=$cs \
        > "$TMP/start.out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "chunk-size=$cs refused (exit $rc): $(cat "$TMP/start.out")"
    got=$(sc_off "$TMP/pos-$cs" info --json | json 'd["chunk_size"]') ||
        fail "offline info on a fresh diff area failed"
    [ "$got" -eq "$(to_bytes $cs)" ] || fail "chunk-size=$cs gave chunk size $got"
    rm -f "$TMP/pos-$cs" "$TMP/pos-$cs.sock"
done

# The real diff area still works after all that, unchanged.
start_server "$A" "$W/da-of-A"
[ "$(sc_names)" = keep ] || fail "snapshot keep lost: $(sc_names)"
[ "$(nbd_sha256 keep)" = "$keep_sum" ] || fail "snapshot keep changed"

# ---- the CLI -----------------------------------------------------------

long129=$(printf 'a%.0s' $(seq 129))
long128=$(printf 'b%.0s' $(seq 128))
for name in "" ".x" "." ".." "live" "$long129" "a/b" "a b" "a=b" "é" \
            'a$b' "a,b" "a*" "$(printf 'a\tb')" "$(printf 'a\nb')"; do
    expect_cli_error "create with invalid name '$name'" sc create "$name"
done
for name in "$long128" "Az09._:+-x"; do
    sc_create "$name"
done
sc_create dup
expect_cli_error "duplicate name" sc create dup
expect_cli_error "delete of a nonexistent snapshot" sc delete nosuch
expect_cli_error "delete of live" sc delete live
expect_cli_error "delete with an invalid name" sc delete "a/b"
rc=0; sc delete > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 126 ] || fail "delete without a name: exit $rc"
[ "$(sc_names | tr '\n' ' ')" = "keep $long128 Az09._:+-x dup " ] ||
    fail "snapshot list after invalid requests: $(sc_names | tr '\n' ' ')"
sc delete "$long128" "Az09._:+-x" dup || fail "delete of three snapshots failed"

# No server behind the socket.
expect_cli_error "no server (missing socket)" \
    "$SHADOWCOPY_CLI" -c "$TMP/none.sock" list
"$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$TMP/stale.sock"
expect_cli_error "no server (stale socket)" "$SHADOWCOPY_CLI" -c "$TMP/stale.sock" list
echo hello > "$TMP/notasocket"
expect_cli_error "socket path is a regular file" \
    "$SHADOWCOPY_CLI" -c "$TMP/notasocket" create x
if [ -n "${NOBODY_OK:-}" ] &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$SHADOWCOPY_CLI"; then
    # The control socket is 0600: another user is turned away.
    expect_cli_error "another user on the control socket" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$SHADOWCOPY_CLI" -c "$CTL" create by-nobody
    grep -qi 'permission' <<< "$CLI_ERR" ||
        soft_fail "another user on the control socket: the error does not say" \
            "permission denied: $CLI_ERR"
fi
expect_cli_error "offline CLI on a missing diff area" \
    "$SHADOWCOPY_CLI" --diff "$TMP/nofile" list
[ ! -e "$TMP/nofile" ] || fail "the offline CLI created a missing diff area"
sum=$(file_sha256 "$W/garbage1")
expect_cli_error "offline CLI on a garbage diff area" \
    "$SHADOWCOPY_CLI" --diff "$W/garbage1" delete --all
[ "$(file_sha256 "$W/garbage1")" = "$sum" ] || fail "the offline CLI changed a garbage file"

# ---- garbage on the control socket --------------------------------------

"$PYTHON" - "$CTL" "$SERVER_PID" <<'EOF' || fail "control socket garbage test failed"
import os, random, socket, sys, time
ctl, pid = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)

def fail(msg):
    sys.exit("FAIL: " + msg)

def alive(what):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        fail("nbdkit died after: " + what)

def talk(what, payload):
    """Send payload, close our side, read until the server closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(ctl)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass                    # the server hung up on us: fine
    data = b""
    try:
        while True:
            x = s.recv(65536)
            if not x:
                break
            data += x
    except socket.timeout:
        fail("%s: no reply and no close within 10 s (got %r)" % (what, data[:200]))
    except ConnectionResetError:
        pass
    s.close()
    for line in data.split(b"\n"):
        if line and not line.startswith(b"ERR "):
            fail("%s: answered %r, expected only ERR lines" % (what, line[:200]))
    print("ok, %s: %s" % (what, data.split(b"\n")[0][:100].decode(errors="replace")
                          or "(closed)"))
    alive(what)

talk("random bytes", bytes(rng.randrange(256) for _ in range(3000)))
talk("random bytes with newlines", bytes(rng.randrange(256) for _ in range(3000)) + b"\n")
talk("10 KB line", b"A" * 10240 + b"\n")
talk("10 KB CREATE", b"CREATE " + b"a" * 10240 + b"\n")
talk("100 KB without newline", b"L" * 100000)
talk("NUL bytes", b"\0\0\0\n")
talk("NUL in a request", b"LIST\0\n")
talk("CREATE NUL", b"CREATE x\0y\n")
talk("unknown verb", b"FROB\n")
talk("lower-case verb", b"create lower\n")
talk("CREATE ../x", b"CREATE ../x\n")
talk("CREATE a/b", b"CREATE a/b\n")
talk("CREATE live", b"CREATE live\n")
talk("CREATE .x", b"CREATE .x\n")
talk("CREATE a=b", b"CREATE a=b\n")
talk("CREATE 129 chars", b"CREATE " + b"c" * 129 + b"\n")
talk("CREATE two names", b"CREATE two names\n")
talk("DELETE without name", b"DELETE\n")
talk("DELETE nosuch", b"DELETE nosuch\n")
talk("too many arguments", b"LIST " + b" ".join(b"x%d" % i for i in range(20)) + b"\n")
talk("empty line", b"\n")
talk("spaces", b"   \n")
talk("high bytes", b"\xff\xfe\xfd\n")
talk("UTF-8 name", "CREATE é\n".encode())

# Idle clients do not block others.
idle = []
for i in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl)
    idle.append(s)
idle[0].sendall(b"LIS")         # half a request, never finished
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
# A blocking connect: with a timeout Python connects without blocking, and
# a Unix socket then fails with EAGAIN while the server's accept backlog
# is full (a loaded machine), which is not what this tests.
s.connect(ctl)
s.settimeout(10)
s.sendall(b"LIST\n")
data = b""
try:
    while not (data.endswith(b"OK\n") or b"ERR" in data):
        x = s.recv(65536)
        if not x:
            break
        data += x
except socket.timeout:
    fail("LIST got no answer while 20 idle clients were connected")
if not data.endswith(b"OK\n"):
    fail("LIST with idle clients connected answered %r" % data)
s.close()
for s in idle:
    s.close()
# Connect and hang up at once, many times.
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl)
    s.close()
alive("quick connects")
print("ok, idle and quick clients")
EOF

# The server still works and nothing was created.
server_alive "after control socket garbage"
[ "$(sc_names)" = keep ] || fail "snapshots after garbage: $(sc_names | tr '\n' ' ')"
sc_create after-garbage
[ "$(nbd_sha256 keep)" = "$keep_sum" ] || fail "snapshot keep changed"
nbd_write_random live 4096 4096
stop_server
exit 0
