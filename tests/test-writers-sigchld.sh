#!/bin/bash
# Writers' exit statuses whatever the caller's SIGCHLD disposition: a CLI started with SIGCHLD ignored (SIG_IGN survives exec, as daemons and library users leave it) still sees an external writer's non-zero exit and a failed psql CHECKPOINT as failures (the creation aborted, no snapshot kept), and a writer that exits 0 as success.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"
ign () {
    "$PYTHON" -c 'import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])' "$@"
}
printf '#!/bin/sh\n[ "$1" = identify ] && exit 0\necho "phase $1 refuses" >&2\nexit 3\n' > "$TMP/refuse"
printf '#!/bin/sh\nexit 0\n' > "$TMP/agree"
chmod +x "$TMP/refuse" "$TMP/agree"

if ign "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/refuse" c 2> "$TMP/err"; then
    cat "$TMP/err"; fail "a writer exiting 3 counted as success with SIGCHLD ignored"
fi
grep -q "prepare: exit status 3: phase prepare refuses" "$TMP/err" || { cat "$TMP/err"; fail "no exit status in the error"; }

ign "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$TMP/agree" ok ||
    fail "a writer exiting 0 failed with SIGCHLD ignored"

if command -v psql >/dev/null; then
    W="postgresql:host=$TMP/nopg dbname=none connect_timeout=2"
    if ign "$SHADOWCOPY_CLI" -c "$CTL" create --writer "$W" b 2> "$TMP/err"; then
        cat "$TMP/err"; fail "a failed CHECKPOINT counted as success with SIGCHLD ignored"
    fi
    grep -q "CHECKPOINT failed" "$TMP/err" || { cat "$TMP/err"; fail "no CHECKPOINT failure"; }
fi
"$SHADOWCOPY_CLI" -c "$CTL" list > "$TMP/list"
grep -qw c "$TMP/list" && fail "the snapshot of the refused creation was kept"
grep -qw b "$TMP/list" && fail "the snapshot of the failed CHECKPOINT was kept"
grep -qw ok "$TMP/list" || fail "the agreed snapshot is missing"
echo ok
