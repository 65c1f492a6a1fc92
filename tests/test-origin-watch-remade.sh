#!/bin/bash
# Tests the origin watch on a block device the kernel made again while the server was stopped, with its content unchanged: removed and added again under the same MAJ:MIN (its counters restart at 0, as after an LVM deactivate and activate or an nbd reconnect), or a loop device detached and attached again (its diskseq is new): the snapshots stay valid and right, the log says only the samples were compared, and a change to a sampled block is still caught.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy losetup

M=$((1024 * 1024))
REASON="origin changed while the server was stopped"
NOTICE="only 32 sampled blocks were compared, and they match"
[ -w /dev/loop-control ] || skip "no /dev/loop-control here"

# loop_ctl REQUEST N: LOOP_CTL_ADD (0x4C80) or LOOP_CTL_REMOVE (0x4C81)
# loop device N.
loop_ctl () {
    "$PYTHON" -c 'import fcntl, os, sys
fd = os.open("/dev/loop-control", os.O_RDWR)
fcntl.ioctl(fd, int(sys.argv[1], 0), int(sys.argv[2]))' "$1" "$2" 2>/dev/null
}
# A loop device of its own, far above those losetup -f hands out, so
# that nothing else takes its number while it is removed.
N= first=$((200 + $$ % 50))
for i in $(seq "$first" 299) $(seq 200 $((first - 1))); do
    if loop_ctl 0x4C80 "$i"; then N=$i; break; fi
done
[ -n "$N" ] || skip "no loop device can be added here"
LOOP=/dev/loop$N
OWN_NODE=
node () {
    for i in $(seq 50); do [ -b "$LOOP" ] && return 0; sleep 0.1; done
    mknod "$LOOP" b 7 "$N" && OWN_NODE=1
}
trap 'rc=$?; set +e; [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" &&
      wait "$SERVER_PID"; losetup -d "$LOOP" 2>/dev/null; sleep 0.2;
      loop_ctl 0x4C81 "$N"; [ -n "$OWN_NODE" ] && rm -f "$LOOP";
      (exit $rc); _cleanup' EXIT
node
make_disk "$TMP/backing" 8M
losetup "$LOOP" "$TMP/backing" || skip "losetup $LOOP failed"
STAT=/sys/dev/block/7:$N/stat
[ -r "$STAT" ] || skip "no $STAT: the counters are not there to compare"
DIFF=$TMP/diff
sectors () { awk '{ print $7 }' "$STAT"; }

check_valid () {
    [ "$(sc_field s1 state)" = valid ] ||
        fail "$1: s1 is $(sc_field s1 state): $(sc_field s1 reason)"
    [ "$(nbd_sha256 s1)" = "$(file_sha256 "$TMP/exp-s1")" ] ||
        fail "$1: s1 does not serve its content"
    grep -qF "$NOTICE" "$SERVER_LOG" ||
        fail "$1: the log does not say only the samples were compared"
    log "ok, $1: s1 is valid and right, and the log says so"
}
detach () {
    losetup -d "$LOOP"
    for i in $(seq 50); do
        losetup "$LOOP" > /dev/null 2>&1 || return 0
        sleep 0.1
    done
    hard_error "$LOOP is still attached"
}

start_server "$LOOP" "$DIFF"
nbd_write_random live 0 $M
nbd_save live "$TMP/exp-s1"
sc_create s1
nbd_write_random live $((M / 2)) $M
stop_server

# Removed and added again: the counters start over.
before=$(sectors)
detach
loop_ctl 0x4C81 "$N" || hard_error "LOOP_CTL_REMOVE $N failed"
sleep 0.2
loop_ctl 0x4C80 "$N" || hard_error "LOOP_CTL_ADD $N failed"
node
losetup "$LOOP" "$TMP/backing"
log "write sectors at the stop: $before; after the device was made again: $(sectors)"
: > "$SERVER_LOG"
start_server "$LOOP" "$DIFF"
check_valid "the device made again"
stop_server

# Detached and attached again: the counters go on, the device is new.
if [ -r "/sys/dev/block/7:$N/diskseq" ]; then
    detach
    losetup "$LOOP" "$TMP/backing"
    : > "$SERVER_LOG"
    start_server "$LOOP" "$DIFF"
    check_valid "the loop device attached again"
    stop_server
else
    log "no diskseq here: the re-attach case is not tried"
fi

# Made again, and a sampled block (the first) changed meanwhile.
detach
loop_ctl 0x4C81 "$N" || hard_error "LOOP_CTL_REMOVE $N failed"
dd if=/dev/urandom of="$TMP/backing" bs=4096 count=1 conv=notrunc status=none
loop_ctl 0x4C80 "$N" || hard_error "LOOP_CTL_ADD $N failed"
node
losetup "$LOOP" "$TMP/backing"
start_server "$LOOP" "$DIFF"
[ "$(sc_field s1 state)" = invalid ] && [ "$(sc_field s1 reason)" = "$REASON" ] ||
    fail "a sampled block changed: s1 is $(sc_field s1 state): $(sc_field s1 reason)"
log "ok, a sampled block changed: s1 is invalid"
stop_server
exit 0
