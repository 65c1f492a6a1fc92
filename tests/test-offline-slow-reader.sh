#!/bin/bash
# Tests that the offline CLI (--diff, serving itself in-process) waits for a slow reader of its output: a `delete --all` whose stdout is stalled longer than the server's send timeout still deletes and reports every snapshot, and exits.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

N=300
D=$TMP/diff
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D"
# N snapshots in one control session (the CLI would start N processes).
"$PYTHON" - "$CTL" "$N" <<'PY' || fail "creating the snapshots failed"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for i in range(int(sys.argv[2])):
    f.write(b"CREATE s%d\n" % i)
    f.flush()
    while True:
        line = f.readline()
        if line.startswith(b"ERR") or not line:
            sys.exit("CREATE s%d: %r" % (i, line))
        if line.startswith(b"OK"):
            break
PY
stop_server

# stdout: a pipe filled up first, read only after 15 s (the in-process
# server's replies back up meanwhile; a server gives up on a client after
# 10 s).  The CLI must then finish by itself.
"$PYTHON" - "$SHADOWCOPY_CLI" "$D" "$N" <<'PY' || fail "offline delete --all with a stalled stdout"
import fcntl, os, subprocess, sys, time
cli, diff, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)                  # F_SETPIPE_SZ: a small pipe
os.set_blocking(w, False)
try:
    while True:
        os.write(w, b"x" * 512)
except BlockingIOError:
    pass
os.set_blocking(w, True)
p = subprocess.Popen([cli, "--diff", diff, "delete", "--all"], stdout=w,
                     stderr=subprocess.PIPE)
os.close(w)
time.sleep(15)
os.set_blocking(r, False)
out, deadline = b"", time.time() + 60
while time.time() < deadline:
    try:
        b = os.read(r, 65536)
        if not b:
            break
        out += b
    except BlockingIOError:
        time.sleep(0.1)
if p.poll() is None:
    p.kill()
    p.wait()
    sys.exit("the CLI still runs 60 s after its output was read")
names = out.replace(b"x", b"").split()
if p.returncode != 0 or len(names) != n:
    sys.exit("exit %d, %d of %d names reported, stderr %r"
             % (p.returncode, len(names), n, p.stderr.read()))
PY
left=$(sc_off "$D" list --json | json 'len(d)')
[ "$left" = 0 ] || fail "$left snapshots left after delete --all"
log "ok, offline delete --all waited for its stalled reader"
