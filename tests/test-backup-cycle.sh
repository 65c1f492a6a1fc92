#!/bin/bash
# Tests the README's nightly cycle end to end: `backup --create --auto
# --format qcow2` with a writer, night after night, with writes, zeroes
# and trims between; the first night is full and says so, the next ones
# are incrementals on the night before (a qcow2 chain), a night without
# --auto starts a new chain; every backup verifies and restores to exactly
# the disk as it was that night, and restores onto the live export too.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires cmp qemu-img qemu-nbd

export SHADOWCOPY_STATE_DIR=$TMP/state
M=$((1024 * 1024))
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/disk.diff" chunk-size=64K
D=$TMP/backup
mkdir "$D"
cat > "$TMP/w" <<EOW
#!/bin/sh
echo "\$1" >> "$TMP/w.log"
EOW
chmod +x "$TMP/w"

# night N [--auto]: the nightly command; the disk as it was is kept.
night () {
    local n=$1
    shift
    sc backup --create --writer "$TMP/w" "$@" --format qcow2 --name "night$n" \
        --to "$D/disk-$n.qcow2" --nbd-socket "$NBD_SOCK" --json \
        > "$TMP/night$n.json" 2> "$TMP/night$n.err" ||
        fail "night $n: $(cat "$TMP/night$n.err")"
    # Nothing writes during the backup: the disk now is the snapshot.
    cp --sparse=always "$TMP/disk" "$TMP/disk-as-of-$n"
    sc verify "$D/disk-$n.qcow2" > "$TMP/verify$n.out" 2>&1 ||
        fail "verify of night $n: $(cat "$TMP/verify$n.out")"
    qemu-img compare -q -f raw -F qcow2 "$TMP/disk-as-of-$n" \
        "$D/disk-$n.qcow2" || fail "night $n: the backup differs from the disk"
}
type_of () { json 'd["volumes"][0]["type"]' < "$TMP/night$1.json"; }

nbd_write_random "" 0 $((4 * M))
night 1 --auto
[ "$(type_of 1)" = full ] || fail "night 1: $(cat "$TMP/night1.json")"
grep -q "full" "$TMP/night1.err" || fail "night 1 does not say why it is full: $(cat "$TMP/night1.err")"

nbd_write_random "" $((5 * M)) $((64 * 1024))
nbd_zero "" $((2 * M)) $M
night 2 --auto
[ "$(type_of 2)" = incremental ] || fail "night 2: $(cat "$TMP/night2.json")"

nbd_write_random "" $((3 * M + 4096)) 100000
nbd_trim "" 0 $((64 * 1024))
nbd_write_random "" $((16 * M - 65536)) 65536
night 3 --auto
[ "$(type_of 3)" = incremental ] || fail "night 3: $(cat "$TMP/night3.json")"
chain=$(qemu-img info --backing-chain --output=json "$D/disk-3.qcow2" |
        json '" ".join(i["filename"].rsplit("/", 1)[-1] for i in d)')
[ "$chain" = "disk-3.qcow2 disk-2.qcow2 disk-1.qcow2" ] || fail "chain: $chain"
# An incremental holds what changed, not the disk.
size1=$(stat -c %b "$D/disk-1.qcow2")
size3=$(stat -c %b "$D/disk-3.qcow2")
[ "$size3" -lt "$size1" ] || fail "night 3's overlay ($size3 blocks) is not smaller than the full ($size1)"

# A night without --auto: a full backup, a new chain.
nbd_write_random "" $((8 * M)) $M
night 4
[ "$(type_of 4)" = full ] || fail "night 4: $(cat "$TMP/night4.json")"
nbd_write_random "" $((9 * M)) 4096
night 5 --auto
[ "$(type_of 5)" = incremental ] || fail "night 5: $(cat "$TMP/night5.json")"
[ "$(json 'd["base-uuid"]' < "$D/disk-5.qcow2.manifest.json")" = \
  "$(json 'd["snapshot-uuid"]' < "$D/disk-4.qcow2.manifest.json")" ] ||
    fail "night 5 is not on night 4"

# No snapshot is left, one checkpoint per chain; the writer saw every night.
[ "$(sc list --json | json '" ".join(s["type"] for s in d)')" = "checkpoint checkpoint" ] ||
    fail "left on the volume: $(sc list)"
[ "$(grep -c backup-complete "$TMP/w.log")" = 5 ] || fail "writer: $(cat "$TMP/w.log")"

# Restore night 2 ("last Tuesday") to a new file, and onto the live disk.
sc restore "$D/disk-2.qcow2" --to "$TMP/restored" > "$TMP/r.out" 2>&1 ||
    fail "restore: $(cat "$TMP/r.out")"
cmp "$TMP/disk-as-of-2" "$TMP/restored" || fail "night 2 restored differs"
sc restore "$D/disk-2.qcow2" --to "$(uri "")" > "$TMP/r2.out" 2>&1 ||
    fail "restore to the live export: $(cat "$TMP/r2.out")"
nbd_save "" "$TMP/live"
cmp "$TMP/disk-as-of-2" "$TMP/live" || fail "the live disk after the restore differs from night 2"
# The chain is untouched by all of it.
for n in 1 2 3 4 5; do
    sc verify "$D/disk-$n.qcow2" > /dev/null 2>&1 || fail "night $n no longer verifies"
done
