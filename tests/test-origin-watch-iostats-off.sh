#!/bin/bash
# Tests the origin watch on a block device whose I/O accounting is off (queue/iostats = 0, as zram's, and some NVMe tunings): its counters never move, so they are not recorded, and the next start says only the sampled blocks were compared (an outside write elsewhere is missed, and said to be possible); a change to a sampled block is still caught; for a partition, its disk's accounting is the one read.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy losetup

M=$((1024 * 1024))
REASON="origin changed while the server was stopped"
NOTICE="only 32 sampled blocks were compared, and they match"
make_disk "$TMP/backing" 8M
LOOP=$(losetup -f --show "$TMP/backing" 2>/dev/null) ||
    skip "no loop device can be set up here"
Q=/sys/block/$(basename "$LOOP")/queue/iostats
OLD= PLOOP= POLD= PQ=
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" &&
      wait "$SERVER_PID"; [ -n "$OLD" ] && echo "$OLD" > "$Q";
      [ -n "$POLD" ] && echo "$POLD" > "$PQ"; losetup -d "$LOOP";
      [ -n "$PLOOP" ] && losetup -d "$PLOOP"; (exit $rc); _cleanup' EXIT
[ -r "$Q" ] && OLD=$(cat "$Q") || skip "no $Q here"
echo 0 > "$Q" 2>/dev/null || { OLD=; skip "cannot turn off $Q"; }
STAT=/sys/block/$(basename "$LOOP")/stat
DIFF=$TMP/diff

# A session that writes, and one that does not: neither records the
# counters (the second one's would match, as they never move).
start_server "$LOOP" "$DIFF"
nbd_write_random live 0 $M
nbd_save live "$TMP/exp-s1"
sc_create s1
nbd_write_random live $((M / 2)) $M
stop_server
start_server "$LOOP" "$DIFF"
stop_server
before=$(awk '{ print $7 }' "$STAT")

# 64 KiB written at 5 MiB while the server is stopped, away from the
# sampled blocks: the counters stay still.
dd if=/dev/urandom of="$LOOP" bs=65536 seek=80 count=1 oflag=direct \
    status=none
[ "$(awk '{ print $7 }' "$STAT")" = "$before" ] ||
    log "the write moved the counters ($before, now $(awk '{ print $7 }' "$STAT")): iostats=0 is not honoured here"
mark=$(wc -l < "$SERVER_LOG")
start_server "$LOOP" "$DIFF"
tail -n +$((mark + 1)) "$SERVER_LOG" | grep_all -F "$NOTICE" ||
    fail "the start after an outside write does not say only the samples were compared: $(tail -n +$((mark + 1)) "$SERVER_LOG")"
log "ok, the start says only the samples were compared; s1 is $(sc_field s1 state) (a write away from them is missed)"
stop_server

# A sampled block (the first) written while the server is stopped.
dd if=/dev/urandom of="$LOOP" bs=4096 count=1 oflag=direct status=none
start_server "$LOOP" "$DIFF"
[ "$(sc_field s1 state)" = invalid ] && [ "$(sc_field s1 reason)" = "$REASON" ] ||
    fail "a sampled block changed: s1 is $(sc_field s1 state): $(sc_field s1 reason)"
log "ok, a sampled block changed: s1 is invalid"
stop_server

# A partition has no queue/ of its own: its disk's accounting is read.
# A DOS partition table with one partition, 6 MiB from sector 2048.
make_disk "$TMP/pdisk" 8M
"$PYTHON" -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(446)
    f.write(struct.pack("<B3sB3sII", 0, bytes(3), 0x83, bytes(3), 2048, 12288))
    f.seek(510)
    f.write(b"\x55\xaa")' "$TMP/pdisk"
PLOOP=$(losetup -f -P --show "$TMP/pdisk" 2>/dev/null) || PLOOP=
for i in $(seq 20); do [ -z "$PLOOP" ] || [ -b "${PLOOP}p1" ] && break; sleep 0.1; done
if [ -n "$PLOOP" ] && [ -b "${PLOOP}p1" ]; then
    PART=${PLOOP}p1
    PQ=/sys/block/$(basename "$PLOOP")/queue/iostats
    POLD=$(cat "$PQ")
    echo 1 > "$PQ"
    start_server "$PART" "$TMP/pdiff"
    sc_create p1
    stop_server
    dd if=/dev/urandom of="$PART" bs=4096 seek=700 count=1 oflag=direct \
        status=none
    start_server "$PART" "$TMP/pdiff"
    grep -q "the block device's write counters moved from" "$SERVER_LOG" ||
        fail "a partition of a disk with accounting on: the counters were not compared: $(tail -3 "$SERVER_LOG")"
    log "ok, a partition of a disk with accounting on: its counters are compared"
    stop_server
    echo 0 > "$PQ"
    start_server "$PART" "$TMP/pdiff"
    sc_create p2
    stop_server
    mark=$(wc -l < "$SERVER_LOG")
    start_server "$PART" "$TMP/pdiff"
    tail -n +$((mark + 1)) "$SERVER_LOG" | grep_all -F "$NOTICE" ||
        fail "a partition of a disk with accounting off: no notice that only the samples were compared"
    log "ok, a partition of a disk with accounting off: only the samples are compared"
    stop_server
else
    log "no partition of a loop device here: the partition case is not tried"
fi
exit 0
