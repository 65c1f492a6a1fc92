#!/bin/bash
# Tests that the live disk, every snapshot's content and the snapshot list survive a clean stop and restart of nbdkit, and copy-on-write still works after it.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

M=$((1024 * 1024))
make_disk "$TMP/disk" 32M
start_server "$TMP/disk" "$TMP/diff"

nbd_write_random live 0 $M
nbd_write_random live $((5 * M + 123)) 300000
nbd_save live "$TMP/exp-s1"            # what s1 must show
sc_create s1
nbd_write_random live $((M / 2)) $M     # overlaps the first write
nbd_write_random live $((20 * M - 5)) 70000
nbd_zero live $((10 * M)) $((2 * M))
nbd_trim live $((14 * M)) $M
nbd_save live "$TMP/exp-s2"
sc_create s2
nbd_write_random live 0 $((4 * M))
nbd_write_random live $((32 * M - 4096)) 4096   # the last block
nbd_write_random live $((10 * M + 1)) 10

live_sum=$(nbd_sha256 live)
s1_sum=$(nbd_sha256 s1)
s2_sum=$(nbd_sha256 s2)
[ "$s1_sum" = "$(file_sha256 "$TMP/exp-s1")" ] || fail "s1 is wrong before the restart"
[ "$s2_sum" = "$(file_sha256 "$TMP/exp-s2")" ] || fail "s2 is wrong before the restart"
[ "$live_sum" != "$s2_sum" ] || fail "live and s2 are identical: writes were lost"
sc list --json > "$TMP/list1.json" || fail "list failed"

check_all () {
    [ "$(nbd_sha256 live)" = "$live_sum" ] || fail "live content changed ($1)"
    [ "$(nbd_sha256 "")" = "$live_sum" ] || fail "export \"\" content changed ($1)"
    [ "$(nbd_sha256 s1)" = "$s1_sum" ] || fail "snapshot s1 content changed ($1)"
    [ "$(nbd_sha256 s2)" = "$s2_sum" ] || fail "snapshot s2 content changed ($1)"
    sc list --json > "$TMP/list2.json" || fail "list failed ($1)"
    # Everything but used bytes.
    same_snapshot_lists "$TMP/list1.json" "$TMP/list2.json" \
        id name created epoch state || fail "snapshot list changed ($1)"
}

stop_server
# The live volume is the origin file itself.
[ "$(file_sha256 "$TMP/disk")" = "$live_sum" ] ||
    fail "after a clean stop the origin file does not hold the live content"
start_server "$TMP/disk" "$TMP/diff"
check_all "after the first restart"

# Copy-on-write after a restart: overwrite everything; the snapshots must
# still read their old content, through another restart too.
nbd_write_random live 0 $((32 * M)) "$TMP/all"
live_sum=$(file_sha256 "$TMP/all")
check_all "after overwriting the whole live disk"
sc_create s3
nbd_write_random live $((7 * M)) $M
live_sum=$(nbd_sha256 live)
s3_sum=$(file_sha256 "$TMP/all")
sc list --json > "$TMP/list1.json" || fail "list failed"
restart_server
check_all "after the second restart"
[ "$(nbd_sha256 s3)" = "$s3_sum" ] || fail "snapshot s3 content wrong after restart"
[ "$(sc_names | tr '\n' ' ')" = "s1 s2 s3 " ] ||
    fail "snapshot list after restart: $(sc_names | tr '\n' ' ')"
stop_server
exit 0
