#!/bin/bash
# Tests the control server's connection limit: past it the CLI says "too many connections" (not a broken pipe), a client holding idle connections cannot lock management out (they are closed sooner near the limit), and a request already sent on a connection closed for being idle is answered with that error, never run.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

# The holding client must not outlive the test.
HOLDER=
trap 'rc=$?; [ -z "$HOLDER" ] || kill "$HOLDER" 2>/dev/null; (exit $rc); _cleanup' EXIT

make_disk "$TMP/disk" 4M
start_server "$TMP/disk" "$TMP/diff"

# hold MODE: a client that opens every connection it can get and keeps
# them until $TMP/stop exists; $TMP/ready once they are open.  MODE busy:
# each owns an auto-release snapshot (never closed for being idle); idle:
# each says nothing (half of them half a request).
hold () {
    rm -f "$TMP/ready" "$TMP/stop"
    "$PYTHON" - "$CTL" "$1" "$TMP" <<'EOF' &
import os, socket, sys, time
path, mode, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
conns, refused = [], 0
for i in range(80):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    try:
        if mode == "busy":
            s.sendall(b"CREATE held-%d auto-release=1\n" % i)
            reply = b""
            while not (b"OK\n" in reply or b"ERR" in reply):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            if b"OK\n" not in reply:
                raise ConnectionError(reply)
        elif i % 2:
            s.send(b"HEL")
    except OSError:
        refused += 1
        s.close()
        continue
    conns.append(s)
open(os.path.join(tmp, "held"), "w").write("%d %d\n" % (len(conns), refused))
open(os.path.join(tmp, "ready"), "w").close()
deadline = time.time() + 120
while not os.path.exists(os.path.join(tmp, "stop")) and time.time() < deadline:
    time.sleep(0.1)
closed = 0
for s in conns:
    s.setblocking(False)
    try:
        if s.recv(4096) is not None:
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
open(os.path.join(tmp, "closed"), "w").write("%d\n" % closed)
EOF
    HOLDER=$!
    for ((i = 0; i < 300; i++)); do
        [ -e "$TMP/ready" ] && return 0
        kill -0 "$HOLDER" 2>/dev/null || fail "the holding client died"
        sleep 0.1
    done
    fail "the holding client did not get ready"
}
release () {
    touch "$TMP/stop"
    wait "$HOLDER" || fail "the holding client failed"
    HOLDER=
}

# ---- busy connections up to the limit: a clear refusal -------------------
hold busy
read -r held refused < "$TMP/held"
log "busy connections held: $held, refused: $refused"
[ "$refused" -gt 0 ] || fail "no connection was refused: there is no limit"
expect_cli_error "info at the connection limit" sc info
case "$CLI_ERR" in
    *"too many connections"*) ;;
    *) fail "the CLI does not say 'too many connections': $CLI_ERR" ;;
esac
case "$CLI_ERR" in
    *"roken pipe"*) fail "the CLI reports a broken pipe: $CLI_ERR" ;;
esac
release
# Their auto-release snapshots go with them; management works again.
for ((i = 0; i < 50; i++)); do
    [ -z "$(sc_names)" ] && break
    sleep 0.1
done
[ -z "$(sc_names)" ] || fail "the auto-release snapshots stayed: $(sc_names)"

# ---- idle connections held by a hostile client: management gets in -------
hold idle
read -r held refused < "$TMP/held"
log "idle connections held: $held, refused: $refused"
out=$(sc info) || fail "info failed while a client holds idle connections"
grep -q "^volume size:" <<< "$out" || fail "info printed: $out"
sc_create mgmt
sc delete mgmt > /dev/null || fail "delete failed while a client holds idle connections"
release
read -r closed < "$TMP/closed"
log "idle connections closed by the server: $closed of $held"
[ "$closed" -gt 0 ] || fail "no idle connection was closed near the limit"

# ---- a request already in the socket of an evicted connection ----------
# is never run: it gets the eviction's error (otherwise a CREATE
# auto-release=1 or a HOLD was answered OK and undone at once, the owner
# still connected).  Victims each queue a DELETE of their own snapshot
# while the server is stopped for 3 s (so they count as idle); at SIGCONT
# the sweep and their threads race.  A victim answered with the
# eviction's error must still have its snapshot.  Up to 5 attempts,
# until one victim was evicted with its request queued.
rc=0
"$PYTHON" - "$CTL" "$SERVER_PID" "$SHADOWCOPY_CLI" <<'EOF2' || rc=$?
import json, os, signal, socket, subprocess, sys, time
path, pid, cli = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s
def names():
    for _ in range(20):
        p = subprocess.run([cli, "-c", path, "list", "--json"],
                           capture_output=True, text=True)
        if p.returncode == 0:
            return set(s["name"] for s in json.loads(p.stdout))
        time.sleep(0.5)
    sys.exit("list failed: " + p.stderr)
def drain(s):
    buf, end = b"", time.time() + 2
    s.settimeout(0.3)
    while time.time() < end:
        try:
            c = s.recv(4096)
        except socket.timeout:
            if buf: break
            continue
        if not c: break
        buf += c
    return buf
NV = 8
hits = 0
for attempt in range(1, 6):
    vs = ["v%d-%d" % (attempt, k) for k in range(NV)]
    for v in vs:
        subprocess.run([cli, "-c", path, "create", v], check=True,
                       capture_output=True)
    others = [conn() for _ in range(44)]    # near the limit, with ours
    mine = [conn() for _ in range(NV)]
    for m in mine:
        # The whole answer, up to its OK line: one recv may return only
        # the "* server" line, and the OK left behind would be taken for
        # the answer to the DELETE below (seen in CI).
        m.sendall(b"HELLO\n")
        got = b""
        while not got.endswith(b"OK\n"):
            c = m.recv(4096)
            if not c:
                sys.exit("HELLO: connection closed")
            got += c
    time.sleep(0.2)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(3)                       # ours idle > 2 s
        for m, v in zip(mine, vs):
            m.sendall(b"DELETE %s\n" % v.encode())
    finally:
        os.kill(pid, signal.SIGCONT)
    replies = [drain(m) for m in mine]
    for o in others: o.close()
    time.sleep(0.3)
    left = names()
    for v, r in zip(vs, replies):
        evicted = b"ERR EBUSY" in r
        hits += evicted
        if evicted and (v not in left or b"OK\n" in r):
            print("%s: %r, and it ran" % (v, r), file=sys.stderr)
            sys.exit(3)
    for m in mine: m.close()
    print("attempt %d: %d of %d victims evicted with their request queued"
          % (attempt, sum(b"ERR EBUSY" in r for r in replies), NV),
          file=sys.stderr)
    subprocess.run([cli, "-c", path, "delete", "--all"], capture_output=True)
    time.sleep(0.5)
    if hits:
        break
EOF2
[ $rc -eq 3 ] && fail "a request read after its connection was evicted ran anyway"
[ $rc -eq 0 ] || fail "the client script failed ($rc)"
stop_server
exit 0
