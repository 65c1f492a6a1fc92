#!/bin/bash
# Tests writable clones against a model: random writes (partial and whole chunks, FUA), zeroes and trims to two clones of one snapshot and to the live volume, across clean restarts and kill -9 (every change flushed first), and partial writes to the same chunks of a clone from four connections at once; the snapshot and live are unaffected by the clones, the clones by each other (clone-model.py).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires_python_nbd

SEED=${SEED:-$RANDOM}
log "SEED=$SEED (set SEED= to repeat)"
CHUNK=4096
make_disk "$TMP/disk" 2M
start_server "$TMP/disk" "$TMP/diff" chunk-size=4K
sc create s > /dev/null || fail "create s"
sc clone s c1 > /dev/null || fail "clone c1"
sc clone s c2 > /dev/null || fail "clone c2"

py=("$PYTHON" "$tests_srcdir/clone-model.py" --sock "$NBD_SOCK"
    --state "$TMP/model" --chunk $CHUNK)
"${py[@]}" --seed "$SEED" --init || fail "first run (SEED=$SEED)"
for ((c = 1; c <= 6; c++)); do
    if ((c % 2)); then
        pid=$SERVER_PID
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || :
        _forget_pid "$pid"
        SERVER_PID=
        start_server "$TMP/disk" "$TMP/diff" chunk-size=4K
    else
        restart_server
    fi
    threads=()
    ((c == 3)) && threads=(--threads 4)
    "${py[@]}" --seed $((SEED + c)) "${threads[@]}" || fail "cycle $c (SEED=$SEED)"
done
restart_server
"${py[@]}" --seed $((SEED + 99)) --ops 0 || fail "after the last restart"
sc list --json > "$TMP/list.json"
for n in c1 c2; do
    [ "$(json "[x['type'] + ':' + x.get('base', '') for x in d if x['name'] == '$n'][0]" < "$TMP/list.json")" = "clone:s" ] ||
        fail "$n is not listed as a clone of s"
done
stop_server
sc_off "$TMP/diff" list > /dev/null || fail "offline list"
