#!/usr/bin/env bash
# Usage errors about the volume name both ways to give it (-c SOCKET,
# --diff DIFFAREA) and what was wrong: no volume given (every verb that
# needs one, create included), the control socket given to --diff, the
# diff-area file or the NBD socket given to -c, a socket nobody listens
# on, a path that does not exist.
. "$(dirname "$0")/functions.sh"

make_disk "$TMP/disk" 4M
start_server "$TMP/disk" "$TMP/diff"
diff=$TMP/diff

# expect STATUS PATTERN ARGS...: shadowcopy ARGS exits STATUS and says
# PATTERN (a grep -E pattern) on one line of stderr.
expect () {
    local want=$1 pat=$2 st=0
    shift 2
    "$SHADOWCOPY_CLI" "$@" >"$TMP/out" 2>"$TMP/err" || st=$?
    [ "$st" -eq "$want" ] ||
        fail "shadowcopy $*: exit $st, not $want: $(cat "$TMP/err")"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] ||
        fail "shadowcopy $*: not one line: $(cat "$TMP/err")"
    grep -Eq -- "$pat" "$TMP/err" ||
        fail "shadowcopy $*: said '$(cat "$TMP/err")', wanted /$pat/"
}

both='-c SOCKET \(the server.s control socket\) or --diff DIFFAREA \(the diff-area file, diff=\)'

# No volume: every verb that needs one names both ways.
for verb in create list info diff checkpoint clone stats resize scrub \
            delete revert backup; do
    expect 2 "say which volume: $both" $verb
done
expect 2 "create: say which volume: $both" create --no-writers snap

# The control socket given as --diff (it said "No such device or
# address"), for verbs online, offline and of the diff area itself.
sockmsg="--diff $CTL: $CTL is a socket; the diff area is the file the server was started with \(diff=\); its control socket is given with -c"
for verb in list create info check salvage; do
    expect 2 "$sockmsg" --diff "$CTL" $verb
done

# The diff-area file given as -c.
expect 1 "$diff is not a socket but a file: did you mean --diff $diff\?" -c "$diff" list
expect 1 "$diff is not a socket but a file: did you mean --diff $diff\?" -c "$diff" create s1

# nbdkit's NBD socket given as -c.
expect 1 "$NBD_SOCK is an NBD socket \(nbdkit -U\), not the control socket" -c "$NBD_SOCK" list

# A directory as -c.
expect 1 "$TMP is not a socket \(a directory\): -c names the server's control socket" -c "$TMP" list

# Paths that do not exist.
expect 1 "no server is listening on $TMP/nope.sock: No such file or directory; is nbdkit running\?" \
    -c "$TMP/nope.sock" list
expect 1 "--diff $TMP/nope.diff: no such file, and no server listens on $TMP/nope.diff.sock: --diff names the diff-area file" \
    --diff "$TMP/nope.diff" list

# The right ways still work.
"$SHADOWCOPY_CLI" -c "$CTL" create s1 >/dev/null
"$SHADOWCOPY_CLI" --diff "$diff" list | grep_all s1 || fail "list lost s1"

# A socket nobody listens on: the server stopped (kill -9 leaves the
# control socket behind).
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
_forget_pid "$SERVER_PID"
[ -S "$CTL" ] || fail "kill -9 left no control socket to test with"
expect 1 "no server is listening on $CTL; is nbdkit running\?" -c "$CTL" list
expect 1 "no server is listening on $CTL; is nbdkit running\?" -c "$CTL" create s2
expect 1 "this needs a running server; nobody listens on $CTL \(is nbdkit running with diff=$diff\?" \
    --diff "$diff" stats
# Offline, --diff still works.
"$SHADOWCOPY_CLI" --diff "$diff" list | grep_all s1 || fail "offline list lost s1"
log "usage errors name -c and --diff and what was wrong"

# --help names the volume files' directory this build reads (configure's
# sysconfdir: /usr/local/etc by default), the one serve looks in.
rc=0; err=$(env -u SHADOWCOPY_CONFDIR "$SHADOWCOPY_CLI" serve no-such-vol \
            --dry-run 2>&1) || rc=$?
confdir=$(echo "$err" | sed -n 's|.*volume no-such-vol: \(/.*\)/no-such-vol\.conf:.*|\1|p')
[ -n "$confdir" ] || fail "serve of a missing volume: $err"
"$SHADOWCOPY_CLI" --help | grep_all -x " *$confdir" ||
    fail "--help does not name $confdir: $("$SHADOWCOPY_CLI" --help | grep -A2 'DIR:')"
log "--help names $confdir"
