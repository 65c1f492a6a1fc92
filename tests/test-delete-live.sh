#!/bin/bash
# Tests that deleting snapshots while live writes run (garbage collection in slices, the lock dropped between them) leaves the surviving snapshots' content exact, frees the deleted ones' space, keeps `list`'s used bytes consistent, and that delete --all frees everything.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

M=$((1024 * 1024))
make_disk "$TMP/disk" 48M
start_server "$TMP/disk" "$TMP/diff" chunk-size=4K
head -c $((48 * M)) /dev/urandom > "$TMP/new1"
head -c $((24 * M)) /dev/urandom > "$TMP/new2"

sc_create s1
nbdcopy "$TMP/new1" "$(uri live)" || fail "writing the live volume failed"
nbd_save live "$TMP/exp-s2"
sc_create s2
nbd_py live '
f = open(os.environ["E_F"], "rb")
for i in range(24):
    h.pwrite(f.read(1 << 20), (8 + i) << 20)' E_F="$TMP/new2" || fail "writing 24M failed"
nbd_save live "$TMP/exp-s3"
sc_create s3
copies0=$(sc_info copies)
used0=$(sc_info diff_used_bytes)
log "$copies0 copies, $used0 bytes used"
[ "$copies0" -ge $((50 * M / 4096)) ] || fail "only $copies0 copies"

# A writer rewrites random 4K blocks (first writes after s3) while s1,
# the snapshot with the most copies, is deleted, and while `list` loops.
nbd_py live '
import random, time
end = time.time() + 4
n = 0
while time.time() < end and n < 2000:
    h.pwrite(os.urandom(4096), random.randrange(48 * 256) * 4096)
    n += 1
print(n)' > "$TMP/writes" 2>&1 &
writer=$!
( for i in $(seq 40); do sc list --json > /dev/null || exit 1; done ) &
lister=$!
sleep 0.3
sc delete s1 || fail "delete s1 failed"
wait "$writer" || fail "the live writer failed: $(cat "$TMP/writes")"
wait "$lister" || fail "list failed while the delete ran"
log "$(cat "$TMP/writes") live writes during the delete"

[ "$(nbd_sha256 s2)" = "$(file_sha256 "$TMP/exp-s2")" ] || fail "s2 is wrong after deleting s1"
[ "$(nbd_sha256 s3)" = "$(file_sha256 "$TMP/exp-s3")" ] || fail "s3 is wrong after deleting s1"
used1=$(sc_info diff_used_bytes)
log "after delete s1: $(sc_info copies) copies, $used1 bytes used"
# s1 alone held the 48M written after it except where s2 needs them too.
[ "$used1" -lt $((used0 - 16 * M)) ] || fail "deleting s1 freed only $((used0 - used1)) bytes"
# used of each snapshot is what deleting it frees: s2 alone needs the 24M
# overwritten after it, less nothing (s3 was taken after).
u2=$(sc_field s2 used_bytes)
[ "$u2" -eq $((24 * M)) ] || fail "s2 uses $u2 bytes, expected $((24 * M))"

restart_server
[ "$(nbd_sha256 s2)" = "$(file_sha256 "$TMP/exp-s2")" ] || fail "s2 is wrong after a restart"
[ "$(nbd_sha256 s3)" = "$(file_sha256 "$TMP/exp-s3")" ] || fail "s3 is wrong after a restart"

# delete --all: everything goes, and the diff area's data slots with it.
sc delete --all > /dev/null || fail "delete --all failed"
[ "$(sc_info snapshots)" -eq 0 ] || fail "snapshots left after delete --all"
[ "$(sc_info copies)" -eq 0 ] || fail "$(sc_info copies) copies left after delete --all"
