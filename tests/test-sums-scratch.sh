#!/bin/bash
# Tests where the checksums' scratch file (cow/sums.c, through cow/pagecache.h) lives: a server leaves no file beside the diff area, and an offline check --data of a diff area whose directory is read-only (a read-only bind mount in a mount namespace of its own) falls back to $TMPDIR and verifies every copy; with neither writable, it fails with a clear error (exit 2, not taken for damage).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy timeout unshare mount

M=$((1024 * 1024))
RO=$TMP/ro
D=$RO/diff
mkdir -p "$RO" "$TMP/scratch"

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create s1
nbd_write_random live 0 $((2 * M))      # 32 copies for s1
stop_server

# Nothing but the diff area (and its socket's leftovers, if any) beside it.
extra=$(ls -A "$RO" | grep -v '^diff' || true)
[ -z "$extra" ] || fail "files left beside the diff area: $extra"

# in_ro_ns TMPDIR CMD...: CMD with $RO read-only, in a mount namespace.
in_ro_ns () {
    local tmpdir=$1
    shift
    unshare -m --propagation private -- /bin/sh -c '
        ro=$1; tmpdir=$2; shift 2
        mount --bind "$ro" "$ro" && mount -o remount,bind,ro "$ro" || exit 99
        touch "$ro/probe" 2>/dev/null && exit 98
        TMPDIR=$tmpdir exec "$@"' sh "$RO" "$tmpdir" "$@"
}

RC=0
in_ro_ns "$TMP/scratch" "$SHADOWCOPY_CLI" check --data "$D" > "$TMP/out" 2> "$TMP/err" || RC=$?
case $RC in
    99) skip "no read-only bind mount in a mount namespace here" ;;
    98) skip "the read-only bind mount still takes writes" ;;
esac
[ "$RC" -eq 0 ] ||
    fail "check --data of a diff area in a read-only directory exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -q '^copies verified: 32 ([0-9]* bytes), 0 damaged' "$TMP/out" ||
    fail "check --data summary: $(cat "$TMP/out")"
log "ok: read-only directory, scratch in \$TMPDIR: $(grep '^copies verified' "$TMP/out")"

# Neither the directory nor $TMPDIR takes a file: a clear error.
RC=0
in_ro_ns "$RO" "$SHADOWCOPY_CLI" check --data "$D" > "$TMP/out" 2> "$TMP/err" || RC=$?
[ "$RC" -eq 2 ] ||
    fail "check --data with no writable scratch directory exited $RC: $(cat "$TMP/out" "$TMP/err")"
grep -qiE 'scratch file for the (copy map|checksums)' "$TMP/err" ||
    fail "the error does not say what failed: $(cat "$TMP/err")"
log "ok: no scratch directory: $(head -1 "$TMP/err")"
