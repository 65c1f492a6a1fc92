#!/bin/bash
# Tests that no acknowledged write is lost when the server is killed under a write load with write-back on (the default): in each round a client writes every 4 KiB block in random order at queue depth 16 just after a snapshot (so most are queued first writes) and kills the server with SIGKILL part way; after a restart every block whose write was acknowledged reads its new data, every block never sent reads its old data, one in flight reads either, and every snapshot still reads the disk as it was when it was taken.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

# The logs go where they go for a user: /dev/shm.
unset SHADOWCOPY_WBLOG_DIR
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K

replays=0
# A round: snapshot sR, its image, then the writes and the kill.
for round in 1 2 3 4; do
    sc_create "s$round"
    nbd_save live "$TMP/image-s$round"
    # Every block of the disk, in a random order, each written once with
    # a pattern naming the round and the block.
    nbd_py live '
import random, signal, threading, time
rnd = random.Random(int(os.environ["E_R"]))
blocks = rnd.sample(range(4096), 4096)
def data(b):
    return ((b"r%d-b%d;" % (int(os.environ["E_R"]), b)) * 683)[:4096]
pid = int(os.environ["E_P"])
delay = rnd.uniform(0.02, 0.12)
threading.Timer(delay, lambda: os.kill(pid, signal.SIGKILL)).start()
acked, inflight = set(), {}
nxt = 0
try:
    while nxt < len(blocks) or inflight:
        while nxt < len(blocks) and len(inflight) < 16:
            b = blocks[nxt]; nxt += 1
            inflight[h.aio_pwrite(data(b), b * 4096)] = b
        h.poll(-1)
        for c in [c for c in inflight if h.aio_command_completed(c)]:
            acked.add(inflight.pop(c))
except Exception:
    pass
time.sleep(delay + 0.5)      # the kill happened
with open(os.environ["E_O"], "w") as f:
    f.write("acked %s\n" % " ".join(map(str, sorted(acked))))
    f.write("inflight %s\n" % " ".join(map(str, sorted(inflight.values()))))
    f.write("sent %d of %d\n" % (nxt, len(blocks)))
' E_R="$round" E_P="$SERVER_PID" E_O="$TMP/round$round" ||
        fail "round $round: the client"
    wait "$SERVER_PID" 2>/dev/null || :
    _forget_pid "$SERVER_PID"
    SERVER_PID=
    log "round $round: $(sed -n 3p "$TMP/round$round"), $(($(wc -w < <(sed -n 1p "$TMP/round$round")) - 1)) acknowledged before the kill"
    seen=$(wc -l < "$SERVER_LOG")
    start_server "$TMP/disk" "$TMP/diff" chunk-size=64K
    replayed=$(tail -n +$((seen + 1)) "$SERVER_LOG" |
               sed -n 's/.*write-back log \(.*\): \([0-9]*\) writes acknowledged before the server stopped uncleanly.*/\1 \2/p')
    read -r path replayed <<< "$replayed"
    [ -z "$path" ] || WBLOG=$path
    log "round $round: the restart wrote ${replayed:-no} queued writes from the log"
    [ -z "$replayed" ] || replays=$((replays + 1))
    nbd_save live "$TMP/live"
    python3 - "$TMP/live" "$TMP/image-s$round" "$TMP/round$round" "$round" <<'PY' ||
import sys
live = open(sys.argv[1], "rb").read()
old = open(sys.argv[2], "rb").read()
lines = open(sys.argv[3]).read().split("\n")
acked = set(map(int, lines[0].split()[1:]))
inflight = set(map(int, lines[1].split()[1:]))
r = int(sys.argv[4])
bad = []
for b in range(4096):
    got = live[b * 4096:(b + 1) * 4096]
    new = ((b"r%d-b%d;" % (r, b)) * 683)[:4096]
    was = old[b * 4096:(b + 1) * 4096]
    ok = {new} if b in acked else {new, was} if b in inflight else {was}
    if got not in ok:
        bad.append("block %d (%s) reads %s" % (b, "acknowledged" if b in acked
                   else "in flight" if b in inflight else "not sent",
                   "the old data" if got == was else "something else"))
if bad:
    sys.exit("round %d: %d blocks wrong, e.g. %s" % (r, len(bad), "; ".join(bad[:3])))
PY
        fail "round $round: the live disk after a SIGKILL"
    for ((s = 1; s <= round; s++)); do
        [ "$(sc_field "s$s" state)" = valid ] ||
            fail "round $round: s$s is $(sc_field "s$s" state)"
        nbd_save "s$s" "$TMP/snap"
        cmp_files "$TMP/image-s$s" "$TMP/snap" "round $round: snapshot s$s"
    done
done
# (A SIGKILL with no queued write is a round the log plays no part in.)
[ "$replays" -gt 0 ] || fail "no restart found a queued write in the log"
[ ! -e "$WBLOG.new" ] || fail "a half-made log is left behind"
stop_server
[ ! -e "$WBLOG" ] || fail "the log is left after a clean stop"
exit 0
