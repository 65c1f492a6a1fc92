#!/bin/bash
# Tests the Python bindings (import shadowcopy): tests/python/test_*.py, unittest against real nbdkit servers with the plugin, the build tree's package and libshadowcopy.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

requires cc
# libtool builds libshadowcopy.la at the top of the build tree.
lib=
for l in "$abs_top_builddir/.libs/libshadowcopy.so.0" \
         "$abs_top_builddir/lib/.libs/libshadowcopy.so.0"; do
    [ -f "$l" ] && { lib=$l; break; }
done
[ -n "$lib" ] || fail "libshadowcopy.so.0 not found in $abs_top_builddir (build first)"

export PYTHONPATH=$abs_top_srcdir/python:$abs_top_srcdir/tests/python
export SHADOWCOPY_LIBRARY=$lib
export SHADOWCOPY_PLUGIN SHADOWCOPY_CLI abs_top_srcdir abs_top_builddir
export PYTHONDONTWRITEBYTECODE=1
export TMPDIR=$TMP
# Every nbdkit the tests start is listed here; one left behind by a test
# that died is killed on exit.
export SHADOWCOPY_TEST_PIDS=$TMP/nbdkit.pids
kill_leftovers () {
    local pid
    [ -f "$SHADOWCOPY_TEST_PIDS" ] || return 0
    while read -r pid; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done < "$SHADOWCOPY_TEST_PIDS"
    return 0
}
trap 'rc=$?; kill_leftovers; (exit $rc); _cleanup' EXIT

cd "$abs_top_srcdir/tests/python"
"$PYTHON" -m unittest discover -v -s . -p 'test_*.py' 2> "$TMP/unittest.out" || {
    cat "$TMP/unittest.out" >&2
    fail "python tests failed"
}
cat "$TMP/unittest.out" >&2
ran=$(sed -n 's/^Ran \([0-9]*\) tests\? in .*/\1/p' "$TMP/unittest.out")
log "ran $ran python tests"
# A test skips only for a call the library lacks, and then
# test_layout's check of every header function has already failed.
