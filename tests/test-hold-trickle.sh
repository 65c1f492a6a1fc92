#!/bin/bash
# Tests that the hold deadline is absolute: a client holding writes that trickles the bytes of a never-ending (or over-long) line cannot keep writes held past it.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"
$PYTHON "$tests_srcdir/hold-trickle.py" "$CTL" "$(uri live)" short ||
    fail "trickling a line extended the hold"
$PYTHON "$tests_srcdir/hold-trickle.py" "$CTL" "$(uri live)" long ||
    fail "trickling after an over-long line extended the hold"
[ -z "$(sc_names)" ] || fail "snapshots after expired holds: $(sc_names)"
server_alive
stop_server
