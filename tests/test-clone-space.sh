#!/bin/bash
# Tests writable clones' space and deletes with a real server: at the diff area's limit a clone write fails with ENOSPC while the live volume and the snapshot stay as they were (no policy drops the base); deleting the clone frees its space (info); deleting a base with clones is refused, naming them, until --with-clones; bad clone requests get one clear error and change nothing.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires_python_nbd
requires nbdcopy

M=$((1024 * 1024))
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K diff-max=3M
sc create s > /dev/null || fail "create s"
nbd_write_random live 0 $M                      # 16 copies for s
s_sum=$(nbd_sha256 s)
sc clone s c > /dev/null || fail "clone c"
used0=$(sc_info diff_used_bytes)
nbdinfo --list "nbd+unix:///?socket=$NBD_SOCK" > "$TMP/exports" ||
    fail "nbdinfo --list failed"
grep -A1 '^export="c":' "$TMP/exports" | grep_all "writable clone of s" ||
    fail "nbdinfo --list does not describe c as a writable clone of s: $(cat "$TMP/exports")"

# Write whole chunks to the clone until the limit refuses one.
nbd_py c '
import errno
n = 0
try:
    for off in range(0, h.get_size(), 65536):
        h.pwrite(os.urandom(65536), off)
        n += 1
except nbd.Error as e:
    if e.errnum != errno.ENOSPC:
        raise
    print("ENOSPC after", n, "chunks", file=sys.stderr)
    sys.exit(0)
sys.exit("no ENOSPC: the whole clone fit under the limit")
' || fail "a clone write at the limit did not fail with ENOSPC"
[ "$(json "[x['state'] for x in d if x['name'] == 's'][0]" < <(sc list --json))" = valid ] ||
    fail "the base snapshot is no longer valid after the clone hit the limit"
# A trim of two written chunks gives their slots back; then one request
# rewriting ten written chunks fits: each rewrite lets its old slot go.
nbd_py c '
h.trim(2 * 65536, 20 * 65536)
h.flush()
d = os.urandom(10 * 65536)
h.pwrite(d, 0)
assert h.pread(len(d), 0) == d
assert h.pread(2 * 65536, 20 * 65536) == bytes(2 * 65536)
' || fail "a rewrite at the limit after a trim failed"
[ "$(nbd_sha256 s)" = "$s_sum" ] || fail "the snapshot changed"
live_sum=$(nbd_sha256 live)
[ "$(sha256sum < "$TMP/disk" | cut -d' ' -f1)" = "$live_sum" ] ||
    fail "the live volume is not the origin"
used1=$(sc_info diff_used_bytes)
[ "$used1" -gt "$used0" ] || fail "the clone's writes used no space ($used0 -> $used1)"

# The base cannot go while it has clones; nothing changes.
sc list --json > "$TMP/l0.json"
expect_cli_error "delete a base" sc delete s
case "$CLI_ERR" in
    *"snapshot s has clones: c;"*"--with-clones"*) ;;
    *) soft_fail "delete of a base: unclear error: $CLI_ERR" ;;
esac
sc list --json > "$TMP/l1.json"
cmp -s "$TMP/l0.json" "$TMP/l1.json" || fail "the refused delete changed the list"

# Bad clone requests: one clear error each, nothing changes.
sc checkpoint k > /dev/null || fail "checkpoint k"
sc list --json > "$TMP/l0.json"
expect_cli_error "clone named like a snapshot" sc clone s k
[[ "$CLI_ERR" == *"exists already"* ]] || soft_fail "existing name: $CLI_ERR"
expect_cli_error "clone named live" sc clone s live
[[ "$CLI_ERR" == *live* ]] || soft_fail "clone named live: $CLI_ERR"
expect_cli_error "clone of a checkpoint" sc clone k x
[[ "$CLI_ERR" == *"k is a checkpoint"* ]] || soft_fail "clone of a checkpoint: $CLI_ERR"
expect_cli_error "clone of a clone" sc clone c x
[[ "$CLI_ERR" == *"c is a clone"* ]] || soft_fail "clone of a clone: $CLI_ERR"
expect_cli_error "clone of an unknown snapshot" sc clone nope x
[[ "$CLI_ERR" == *"no snapshot named nope"* ]] || soft_fail "unknown: $CLI_ERR"
sc list --json > "$TMP/l1.json"
cmp -s "$TMP/l0.json" "$TMP/l1.json" || fail "a refused clone changed the list"

# Deleting the clone frees its space.
sc delete c > /dev/null || fail "delete c"
used2=$(sc_info diff_used_bytes)
[ "$used2" -lt "$used1" ] || fail "deleting the clone freed nothing ($used1 -> $used2)"
sc clone s c2 > /dev/null || fail "clone c2"
nbd_write_random c2 0 100000
sc delete s --with-clones > "$TMP/deleted" || fail "delete --with-clones"
grep -qx c2 "$TMP/deleted" && grep -qx s "$TMP/deleted" ||
    fail "delete --with-clones did not name both: $(cat "$TMP/deleted")"
# Many clones with long names: the refusal and the reply name every one.
sc create s3 > /dev/null || fail "create s3"
long=$(printf 'x%.0s' $(seq 100))
for i in $(seq 12); do sc clone s3 "c$i-$long" > /dev/null || fail "clone c$i"; done
expect_cli_error "delete a base of 12 clones" sc delete s3
# As many names as a one-line error holds, then how many more: 12 in all.
named=$(grep -o -- "-$long" <<< "$CLI_ERR" | wc -l)
more=$(sed -nE 's/.* and ([0-9]+) more; delete them first.*/\1/p' <<< "$CLI_ERR")
[ "$named" -gt 0 ] && [ $((named + ${more:-0})) -eq 12 ] && [[ "$CLI_ERR" == *"; delete them first"* ]] ||
    soft_fail "the refusal does not account for every clone ($named named, ${more:-no} more): $CLI_ERR"
sc delete s3 --with-clones > "$TMP/deleted" || fail "delete s3 --with-clones"
for i in $(seq 12); do
    grep -qx "c$i-$long" "$TMP/deleted" || fail "delete --with-clones did not name c$i: $(cat "$TMP/deleted")"
done
grep -qx s3 "$TMP/deleted" || fail "delete --with-clones did not name s3"
[ -z "$(json "[x['name'] for x in d if x['type'] != 'checkpoint']" < <(sc list --json))" ] ||
    fail "a snapshot or clone is left"
restart_server
[ -z "$(json "[x['name'] for x in d if x['type'] != 'checkpoint']" < <(sc list --json))" ] ||
    fail "the deletes did not survive a restart"

# Offline, as online: a clone made with no server runs is served after.
sc create s2 > /dev/null || fail "create s2"
stop_server
sc_off "$TMP/diff" clone s2 c3 > /dev/null || fail "an offline clone"
start_server "$TMP/disk" "$TMP/diff" chunk-size=64K diff-max=3M
[ "$(nbd_sha256 c3)" = "$(nbd_sha256 s2)" ] || fail "the offline clone is not its base"
