#!/usr/bin/env bash
# The shell tests run under pipefail (functions.sh), so none may pipe a
# command into grep -q: grep -q exits at its first match, the command
# writing into the pipe may then die of SIGPIPE, and the pipeline fails
# at random although the line was there.  grep_all (functions.sh) reads
# its whole input.  Looks for the pipe on the line of the grep or at the
# end of the line before it.
. "$(dirname "$0")/functions.sh"
requires awk

cd "$abs_top_srcdir/tests"
found=$(awk '
    function quiet(s) {
        return s ~ /^[ \t]*grep[ \t]+(-[a-zA-Z]*q[a-zA-Z]*|--quiet|--silent)([ \t]|$)/
    }
    FNR == 1 { prev = "" }
    {
        bad = prev ~ /[^|]\|[ \t]*\\?[ \t]*$/ && quiet($0)
        n = split($0, part, /\|\|/)    # "||" is no pipe
        for (i = 1; i <= n; i++) {
            k = split(part[i], seg, /\|/)
            for (j = 2; j <= k; j++)
                bad = bad || quiet(seg[j])
        }
        if (bad)
            print FILENAME ":" FNR ": " $0
        prev = $0
    }' ./*.sh)
[ -z "$found" ] || fail "a pipeline into grep -q (use grep_all): $found"
