#!/bin/bash
# Tests the plugin's index-cache=SIZE: a size below the minimum (64K) or
# not a size stops nbdkit at start with a message naming the key and the
# minimum (on the command line and in a config= file); and with the
# smallest cache, far smaller than the copy map and checksums of a disk
# overwritten whole in 4K chunks, the snapshot still reads back exactly
# the old disk, before and after a restart, while info shows the budget
# and the pages the cache had to read back and write back.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

M=$((1024 * 1024))
SIZE=$((64 * M))
make_disk "$TMP/disk" $SIZE
cp "$TMP/disk" "$TMP/orig"

# ---- (a) bad values: nbdkit does not start, and says why -------------

# refused WHAT ARGS...: nbdkit must fail to start with ARGS, its log
# naming index-cache and the minimum.
refused () {
    local what=$1 log
    shift
    log=$TMP/refused-$what.log
    SERVER_LOG=$log
    if try_start_server "$TMP/disk" "$TMP/diff" chunk-size=4K "$@" \
           2>/dev/null; then
        stop_server
        SERVER_LOG=$TMP/server.log
        fail "$what: nbdkit started with $*"
    fi
    SERVER_LOG=$TMP/server.log
    # Not the log's own line of the command.
    grep -v '^====' "$log" | grep_all 'index-cache=.*64K' ||
        fail "$what: the error does not name index-cache and 64K: $(cat "$log")"
    log "ok, $what: $(grep -v '^====' "$log" | grep -m1 'index-cache')"
}
refused below index-cache=32K
refused one-byte-short index-cache=65535
refused zero index-cache=0
refused garbage index-cache=lots
refused empty index-cache=
printf 'index-cache = 4K\n' >"$TMP/vol.conf"
refused config-file "config=$TMP/vol.conf"
[ ! -e "$TMP/diff" ] || fail "a refused start left a diff area"

# ---- (b) the smallest cache: the snapshot stays right ----------------

start_server "$TMP/disk" "$TMP/diff" chunk-size=4K index-cache=64K
sc_create s1
head -c $SIZE /dev/urandom >"$TMP/new"
nbdcopy "$TMP/new" "$(uri live)" || fail "nbdcopy onto the live export failed"

# cache_field KEY: a member of info --json's index_cache.
cache_field () {
    local out
    out=$(sc info --json) || fail "shadowcopy info --json failed"
    printf '%s\n' "$out" | json "d[\"index_cache\"][\"$1\"]" ||
        fail "info --json: no index_cache.$1 in: $out"
}

check () {
    nbd_save s1 "$TMP/s1"
    cmp_files "$TMP/orig" "$TMP/s1" "snapshot s1 ($1)"
    nbd_save live "$TMP/live"
    cmp_files "$TMP/new" "$TMP/live" "the live volume ($1)"
    [ "$(cache_field budget)" = 65536 ] ||
        fail "info --json: index_cache.budget is $(cache_field budget), not 65536 ($1)"
    [ "$(cache_field pages)" -le 16 ] ||
        fail "the cache holds $(cache_field pages) pages, above its 16 ($1)"
    [ "$(cache_field misses)" -gt 0 ] ||
        fail "no cache misses with a 64K cache ($1): $(sc info --json)"
    sc info | grep_all '^index cache: 65536 bytes' ||
        fail "info has no index cache line ($1): $(sc info)"
}

check "while serving"
copies=$(sc_info copies)
[ "$copies" -eq $((SIZE / 4096)) ] ||
    fail "$copies copies, expected $((SIZE / 4096)) (every chunk copied once)"
# Every copy's checksums went through the cache; far more pages than it
# holds, so some were written back to make room.
[ "$(cache_field writebacks)" -gt 0 ] ||
    fail "no cache write-backs with a 64K cache: $(sc info --json)"
log "index cache while serving: $(sc info | grep '^index cache')"

restart_server
check "after a restart"
log "index cache after the restart: $(sc info | grep '^index cache')"
stop_server
exit 0
