#!/bin/bash
# Tests the order of a --resume that starts over (a TARGET.partial the target cannot keep: a qcow2 image with a damaged header, a raw file of another size): TARGET.resume is removed before TARGET.partial is made anew, so a crash just after (gdb stops the CLI there and kills it) cannot pair the old state with the new empty image, and the next --resume gives the snapshot's image. Skips (77) without gdb.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp gdb qemu-img qemu-nbd

make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"
backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

# Two backups killed after their first checkpoint (5 s into a copy of
# 8 s: 62 ms per 1 MiB read, -t 1 as in test-backup-resume.sh).
NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
    "$TMP/diff" rdelay=62ms
sc_create s1
declare -A PIDS
for t in q.qcow2 r.img; do
    fmt=raw; [ "$t" = q.qcow2 ] && fmt=qcow2
    "$SHADOWCOPY_CLI" -c "$CTL" backup s1 --to "$B/$t" --format $fmt \
        --nbd-socket "$NBD_SOCK" > /dev/null 2> "$TMP/$t.err" &
    PIDS[$t]=$!
done
for t in q.qcow2 r.img; do
    for ((i = 0; i < 300; i++)); do
        [ -e "$B/$t.resume" ] && break
        kill -0 "${PIDS[$t]}" 2>/dev/null || fail "$t ended early: $(cat "$TMP/$t.err")"
        sleep 0.1
    done
    [ -e "$B/$t.resume" ] || fail "$t: no state after 30 s"
done
for t in q.qcow2 r.img; do kill -KILL "${PIDS[$t]}"; wait "${PIDS[$t]}" 2>/dev/null || :; done
sleep 0.5                       # the killed backup's qemu-nbd exits
stop_server
start_server "$TMP/disk" "$TMP/diff"
nbd_save s1 "$TMP/s1.img"

# crash_run TARGET FORMAT GDB-SCRIPT: --resume under gdb, which runs the
# script (breakpoints, then run) and kills the CLI where it stops.
crash_run () {
    local t=$1 fmt=$2
    gdb -q -batch -x "$3" -ex kill --args "$SHADOWCOPY_CLI" -c "$CTL" \
        backup s1 --to "$B/$t" --format "$fmt" --nbd-socket "$NBD_SOCK" \
        --resume > "$TMP/$t.gdb" 2>&1 || :
    grep -q "^AT-THE-NEW-IMAGE" "$TMP/$t.gdb" ||
        fail "$t: gdb did not stop where the image is made anew: $(cat "$TMP/$t.gdb")"
    ! grep -q "^AT-THE-NEW-IMAGE: the state is there" "$TMP/$t.gdb" ||
        fail "$t: TARGET.partial made anew while its old state was there"
    grep -q "cannot resume: .*cannot be kept: .*starting over" "$TMP/$t.gdb" ||
        fail "$t: the start over is not said: $(cat "$TMP/$t.gdb")"
}
# then_resumed TARGET FORMAT: the next --resume gives the snapshot.
then_resumed () {
    local t=$1 fmt=$2 out
    backup s1 --to "$B/$t" --format "$fmt" --resume > /dev/null 2> "$TMP/$t.err2" ||
        fail "$t: --resume after the crash failed: $(cat "$TMP/$t.err2")"
    out=$(qemu-img compare -f "$fmt" -F raw "$B/$t" "$TMP/s1.img" 2>&1) ||
        fail "$t: the backup resumed after the crash differs from s1: $out"
    sc verify "$B/$t" > /dev/null || fail "$t: verify failed"
    log "ok, $t: started over, the state gone before the new image"
}

# qcow2: a damaged header; the job's check does not look into the
# image, the qcow2 target does.  gdb stops just after `qemu-img create`.
printf 'XXXX' | dd of="$B/q.qcow2.partial" bs=1 seek=0 conv=notrunc status=none
cat > "$TMP/q.gdb-script" <<EOF
set breakpoint pending on
break sc_image_nbd_open
run
shell if [ -e "$B/q.qcow2.resume" ]; then echo "AT-THE-NEW-IMAGE: the state is there"; else echo "AT-THE-NEW-IMAGE: no state"; fi
EOF
crash_run q.qcow2 qcow2 "$TMP/q.gdb-script"
then_resumed q.qcow2 qcow2

# raw: TARGET.partial shrunk between the job's check and the target's
# open (gdb does it); gdb stops at the truncation that makes it anew.
cat > "$TMP/r.gdb-script" <<EOF
set breakpoint pending on
break sc_backup_target_open
commands 1
  silent
  shell truncate -s 1M "$B/r.img.partial"
  delete 1
  continue
end
break ftruncate
run
shell if [ -e "$B/r.img.resume" ]; then echo "AT-THE-NEW-IMAGE: the state is there"; else echo "AT-THE-NEW-IMAGE: no state"; fi
EOF
crash_run r.img raw "$TMP/r.gdb-script"
then_resumed r.img raw

stop_server
exit 0
