#!/bin/bash
# Tests protected snapshots with a real nbdkit (discard-snapshots=on): a trim on the export of a running revert's target, or of a base with clones, is refused (EBUSY in the engine, EINVAL on the wire) with a message naming why, and changes nothing (the live volume keeps an acknowledged write, the clone its content, across a restart); when the diff area is full during a revert, a live write whose copy the target needs fails with ENOSPC instead of invalidating the target, and the target's pending chunks still read as the target.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout

K=1024
M=$((1024 * K))

# ---- a discard of the revert's target ------------------------------------
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K discard-snapshots=on
sc_create A
sc_create B
nbd_write_random live 0 $M
nbd_write_random live $((7 * M)) $M
sc revert A --no-save-current --rate 256K > /dev/null || fail "revert"
# The target cannot go, nor be kept as a checkpoint: the refusal says why.
for cmd in "delete A" "delete A --keep-checkpoint"; do
    out=$(sc $cmd 2>&1) && fail "$cmd accepted"
    printf '%s\n' "$out" | grep_all "snapshot A is the target of the running revert" ||
        fail "$cmd: $out"
done
# delete --oldest skips the target: B goes, then nothing can.
out=$(sc delete --oldest 2>&1) || fail "delete --oldest: $out"
[ "$(sc_names)" = "A" ] || fail "after delete --oldest: $(sc_names)"
out=$(sc delete --oldest 2>&1) && fail "delete --oldest with only the target: $out"
printf '%s\n' "$out" | grep_all "no snapshot can go" || fail "delete --oldest: $out"
nbd_write_random live $((4 * M)) $M "$TMP/w.bin"
nbd_py live 'h.flush()' || fail "flush"
out=$(nbd_py A '
import errno
try:
    h.trim(1 << 20, 4 << 20)
    print("accepted")
except nbd.Error as e:
    print("refused", errno.errorcode.get(e.errnum, e.errnum))
' 2>&1)
# EBUSY has no NBD error code: the wire says EINVAL, the log why.
[ "$out" = "refused EINVAL" ] || fail "trim of the target: $out"
grep -q "snapshot A is the target of the running revert" "$SERVER_LOG" ||
    fail "no clear message: $(tail -3 "$SERVER_LOG")"
nbd_pread_file live $((4 * M)) $M "$TMP/r.bin"
cmp_files "$TMP/w.bin" "$TMP/r.bin" "live after the refused trim"
timeout 60 "$SHADOWCOPY_CLI" -c "$CTL" revert --status --wait > /dev/null ||
    fail "revert did not end"
nbd_pread_file live $((4 * M)) $M "$TMP/r.bin"
cmp_files "$TMP/w.bin" "$TMP/r.bin" "live after the revert"
stop_server

# ---- a discard of a clone's base -------------------------------------------
rm -f "$TMP/diff"
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K discard-snapshots=on
nbd_write_random live 0 $M
sc_create s
sc clone s c > /dev/null || fail "clone"
nbd_pread_file c 0 $M "$TMP/c0.bin"
nbd_write_random live 0 $M
out=$(nbd_py s '
import errno
try:
    h.trim(1 << 20, 0)
    print("accepted")
except nbd.Error as e:
    print("refused", errno.errorcode.get(e.errnum, e.errnum))
' 2>&1)
[ "$out" = "refused EINVAL" ] || fail "trim of the base: $out"
grep -q "snapshot s has clones" "$SERVER_LOG" ||
    fail "no clear message: $(tail -3 "$SERVER_LOG")"
# A clone is no revert target.
out=$(sc revert c 2>&1) && fail "revert to a clone accepted"
printf '%s\n' "$out" | grep_all "c is a writable clone; revert to a snapshot" ||
    fail "revert to a clone: $out"
nbd_pread_file c 0 $M "$TMP/c1.bin"
cmp_files "$TMP/c0.bin" "$TMP/c1.bin" "clone after the refused trim"
restart_server
nbd_pread_file c 0 $M "$TMP/c1.bin"
cmp_files "$TMP/c0.bin" "$TMP/c1.bin" "clone after a restart"
stop_server

# ---- a full diff area during a revert ---------------------------------------
rm -f "$TMP/diff"
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K diff-max=2M
sc_create A
nbd_save A "$TMP/A.img"
nbd_write_random live 0 $((512 * K))
nbd_write_random live $((8 * M)) $((256 * K))
sc revert A --no-save-current --rate 1 > /dev/null || fail "revert"
out=$(nbd_py live '
import errno
try:
    h.pwrite(os.urandom(3 << 20), 2 << 20)
    print("accepted")
except nbd.Error as e:
    print("refused", errno.errorcode.get(e.errnum, e.errnum))
' 2>&1)
[ "$out" = "refused ENOSPC" ] || fail "live write at the limit: $out"
[ "$(sc_field A state)" = valid ] || fail "target: $(sc list)"
nbd_save live "$TMP/now.img"
# What the refused write may have changed: 2M..5M only.
dd if="$TMP/A.img" bs=1M count=2 status=none > "$TMP/a.bin"
dd if="$TMP/now.img" bs=1M count=2 status=none > "$TMP/n.bin"
cmp_files "$TMP/a.bin" "$TMP/n.bin" "live 0-2M (pending chunks) after the refusal"
dd if="$TMP/A.img" bs=1M skip=5 status=none > "$TMP/a.bin"
dd if="$TMP/now.img" bs=1M skip=5 status=none > "$TMP/n.bin"
cmp_files "$TMP/a.bin" "$TMP/n.bin" "live past 5M after the refusal"
sc revert --status | grep_all "revert: running" || fail "$(sc revert --status)"
restart_server
sc revert --status | grep_all "revert: running" ||
    fail "after a restart: $(sc revert --status)"
stop_server
