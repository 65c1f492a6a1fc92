#!/bin/bash
# Tests --resume of a qcow2 incremental (an overlay whose backing file is PREV) killed after its first checkpoint: when PREV was damaged in between, in a block the incremental writes into, the resume is refused ("PREV is damaged") and removes TARGET.partial and its state; with PREV whole again, another such resume completes, equal to the snapshot, verify clean.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy qemu-img qemu-nbd

M=$((1024 * 1024))
make_disk "$TMP/disk" 128M
B=$TMP/backups
mkdir "$B"
backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

start_server "$TMP/disk" "$TMP/diff"
sc_create s1
backup s1 --to "$B/full" > /dev/null || fail "the full backup failed"
# 120 changes of 64 KiB, at the start of every MiB.
nbd_py live '
for i in range(120):
    h.pwrite(os.urandom(1 << 16), i << 20)' || fail "writing the changes"
sc_create s2
stop_server

# Two incrementals killed after their first checkpoint: 62 ms per read
# (-t 1, as in test-backup-resume.sh), 120 reads, a checkpoint at 5 s.
NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" \
    "$TMP/diff" rdelay=62ms
declare -A PIDS
for k in a b; do
    "$SHADOWCOPY_CLI" -c "$CTL" backup s2 --to "$B/$k.qcow2" --format qcow2 \
        --since s1 --base "$B/full" --nbd-socket "$NBD_SOCK" \
        > /dev/null 2> "$TMP/$k.err" &
    PIDS[$k]=$!
done
for k in a b; do
    for ((i = 0; i < 300; i++)); do
        [ -e "$B/$k.qcow2.resume" ] && break
        kill -0 "${PIDS[$k]}" 2>/dev/null || fail "$k ended early: $(cat "$TMP/$k.err")"
        sleep 0.1
    done
    [ -e "$B/$k.qcow2.resume" ] || fail "$k: no state after 30 s"
done
for k in a b; do kill -KILL "${PIDS[$k]}"; wait "${PIDS[$k]}" 2>/dev/null || :; done
sleep 0.5                       # the killed backups' qemu-nbd exit
stop_server
start_server "$TMP/disk" "$TMP/diff"

# PREV damaged in block 2 (written by the incremental at 2 MiB), past
# the changed bytes: read through the overlay, it would be taken in.
cp "$B/full" "$TMP/full.good"
printf 'DAMAGE!!' | dd of="$B/full" bs=1 seek=$((2 * M + 512 * 1024)) \
    conv=notrunc status=none
expect_cli_error "--resume over a damaged PREV" \
    backup s2 --to "$B/a.qcow2" --format qcow2 --since s1 --base "$B/full" --resume
echo "$CLI_ERR" | grep_all "PREV is damaged: bytes 2097152-3145727" ||
    fail "--resume over a damaged PREV: $CLI_ERR"
[ ! -e "$B/a.qcow2" ] && [ ! -e "$B/a.qcow2.partial" ] && [ ! -e "$B/a.qcow2.resume" ] ||
    fail "--resume over a damaged PREV left files: $(ls "$B")"
log "ok, refused: $CLI_ERR"

# PREV whole again: the other one resumes.
cp "$TMP/full.good" "$B/full"
backup s2 --to "$B/b.qcow2" --format qcow2 --since s1 --base "$B/full" \
    --resume --json > "$TMP/b.json" || fail "--resume over PREV whole failed"
[ "$(json 'd["resumed"]' < "$TMP/b.json")" = true ] || fail "not resumed: $(cat "$TMP/b.json")"
nbd_save s2 "$TMP/s2.img"
out=$(qemu-img compare -f qcow2 -F raw "$B/b.qcow2" "$TMP/s2.img" 2>&1) ||
    fail "the resumed incremental differs from s2: $out"
sc verify "$B/b.qcow2" > /dev/null || fail "verify of the resumed incremental failed"
log "ok, resumed over PREV whole"

stop_server
exit 0
