#!/bin/bash
# Tests that a kill -9 of `shadowcopy backup --nbd-uri` with reads in
# flight leaves the server up, over TLS (nbds://) and over plaintext TCP
# (nbd://, where nbdkit 1.32.5 aborted without the guardian: seen, 2 runs
# of 3): the connection's guardian, which can send no NBD_CMD_DISC there,
# reads the replies until the server is quiet, then closes, within its
# bound; the snapshot is then still served and a --resume completes
# equal to it.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/tls-functions.sh"
requires nbdcopy nbdinfo psktool pgrep

make_disk "$TMP/disk" 128M
make_psk "$TMP/keys.psk" alice
cp "$TMP/disk" "$TMP/s0.expected"
NAME=sc-nbd-guard               # SC_NBD_GUARD_NAME

# kill_case WHAT URI(PORT for the port) NBDKIT_OPTION...
kill_case () {
    local what=$1 u=$2 pid G i st t0 took
    shift 2
    rm -f "$TMP"/a.raw*
    # 1 s per read of 1 MiB, 16 in flight: a kill lands with 16 reads
    # sleeping in the filter, after the first checkpoint (5 s).
    start_tcp_server "$TMP/disk" "$TMP/diff" "$@" --filter=delay -- rdelay=1
    u=${u/PORT/$PORT}
    sc_names | grep_all -x s0 || sc_create s0
    "$SHADOWCOPY_CLI" -c "$CTL" backup s0 --to "$TMP/a.raw" --connections 1 \
        --nbd-uri "$u" > /dev/null 2> "$TMP/a.err" &
    pid=$!
    for ((i = 0; i < 300; i++)); do
        [ -e "$TMP/a.raw.resume" ] && break
        sleep 0.1
    done
    [ -e "$TMP/a.raw.resume" ] || fail "$what: no checkpoint after 30 s: $(cat "$TMP/a.err")"
    G=$(pgrep -P "$pid" -x "$NAME" | tr '\n' ' ' || :)
    [ "$(echo $G | wc -w)" = 1 ] || fail "$what: expected one guardian of $pid, got '$G'"
    G=$(echo $G)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || :
    t0=$(date +%s)
    for ((i = 0; i < 650; i++)); do
        st=$(cut -d' ' -f3 "/proc/$G/stat" 2>/dev/null) || break
        [ "$st" != Z ] || break
        sleep 0.1
    done
    [ $i -lt 650 ] || fail "$what: guardian $G still running 65 s after the kill"
    took=$(( $(date +%s) - t0 ))
    log "$what: guardian gone after $took s"
    # It read the replies, then waited 3 s of quiet (SC_NBD_GUARD_QUIET_MS).
    [ "$took" -ge 2 ] || fail "$what: guardian $G ended after $took s: it did not drain"
    sleep 2
    server_alive "$what: after a kill -9 of backup with reads in flight"
    nbdinfo --size "${u/\/\?//s0?}" > /dev/null ||
        fail "$what: snapshot s0 not served after the kill"
    "$SHADOWCOPY_CLI" -c "$CTL" backup s0 --to "$TMP/a.raw" --resume \
        --nbd-uri "$u" > /dev/null || fail "$what: backup --resume failed"
    cmp_files "$TMP/s0.expected" "$TMP/a.raw" "$what: resumed backup"
    stop_server
}

kill_case TLS "nbds://alice@127.0.0.1:PORT/?tls-psk-file=$TMP/keys.psk" \
    --tls=require --tls-psk="$TMP/keys.psk"
kill_case TCP "nbd://127.0.0.1:PORT/?" --tls=off
