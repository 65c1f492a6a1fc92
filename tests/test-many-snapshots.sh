#!/bin/bash
# Tests 4096 snapshots of one volume (max-snapshots=4096): each created after a small write, a sample of them read back byte-exact against a model, before and after a restart; the 4097th create is refused and --delete-oldest makes room.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy
requires_python_nbd

N=${MANY_SNAPSHOTS:-4096}
make_disk "$TMP/disk" 4M
start_server "$TMP/disk" "$TMP/diff" chunk-size=4K max-snapshots=$N
mkdir "$TMP/model"
t0=$(date +%s)
"$PYTHON" "$tests_srcdir/many-snapshots.py" "$NBD_SOCK" "$CTL" "$N" \
    "$TMP/model" > "$TMP/sampled" || fail "creating $N snapshots failed"
log "$N snapshots created in $(( $(date +%s) - t0 )) s"
[ "$(sc list --json | json 'len(d)')" = "$N" ] || fail "list does not show $N snapshots"
expect_cli_error "create past max-snapshots" sc create one-too-many
check_sample () {
    local s
    for s in $(cat "$TMP/sampled"); do
        [ "$(nbd_sha256 "$s")" = "$(file_sha256 "$TMP/model/$s")" ] ||
            fail "$1: snapshot $s differs from the model"
    done
    [ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/model/live")" ] ||
        fail "$1: the live volume differs from the model"
}
check_sample "after creation"
t0=$(date +%s%N)
restart_server
log "restart with $N snapshots: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check_sample "after a restart"
out=$(sc create --delete-oldest newest) || fail "create --delete-oldest failed"
sc_names > "$TMP/names"
[ "$(head -1 "$TMP/names")" = s1 ] || fail "create --delete-oldest did not drop s0"
[ "$(wc -l < "$TMP/names")" = "$N" ] || fail "not $N snapshots after create --delete-oldest"
[ "$(tail -1 "$TMP/names")" = newest ] || fail "the new snapshot is not last"
stop_server
log "ok"
