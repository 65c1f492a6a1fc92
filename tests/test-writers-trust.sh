#!/bin/bash
# Tests which writers are run: --writer NAME without a '/' is looked up in PATH; in a writers directory, files (or the directory) writable by group or others, or owned by someone else, are skipped with a warning.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

export SHADOWCOPY_STATE_DIR=$TMP/state
make_disk "$TMP/disk" 8M
start_server "$TMP/disk" "$TMP/diff"

mkw () {
    printf '#!/bin/sh\necho "$1" >> "%s/%s.log"\n' "$TMP" "$2" > "$1"
    chmod 755 "$1"
}

# 1. PATH lookup.
mkdir -p "$TMP/bin"
mkw "$TMP/bin/sc-test-writer" path
PATH=$TMP/bin:$PATH sc create --writer sc-test-writer s1 > /dev/null ||
    fail "create --writer NAME (PATH lookup) failed"
grep -q "^freeze$" "$TMP/path.log" || fail "the PATH writer did not run"

# 2. A group-writable writer is skipped, a safe one runs.
mkdir -p "$TMP/wd"
chmod 755 "$TMP/wd"
mkw "$TMP/wd/10-good" good
mkw "$TMP/wd/20-open" open
chmod 775 "$TMP/wd/20-open"
out=$(sc create --writers-dir "$TMP/wd" s2 2>&1) || fail "create with a skipped writer failed: $out"
echo "$out" | grep_all "writer $TMP/wd/20-open is not owned by root or you, or is group/world-writable" ||
    fail "no warning for a group-writable writer: $out"
grep -q "^freeze$" "$TMP/good.log" || fail "the safe writer did not run"
[ ! -e "$TMP/open.log" ] || fail "a group-writable writer was run"

# 3. A world-writable directory is ignored as a whole.
chmod 777 "$TMP/wd"
rm -f "$TMP/good.log"
out=$(sc create --writers-dir "$TMP/wd" s3 2>&1) || fail "create with an ignored directory failed: $out"
echo "$out" | grep_all "writers directory $TMP/wd is not owned" ||
    fail "no warning for a world-writable directory: $out"
[ ! -e "$TMP/good.log" ] || fail "a writer of a world-writable directory was run"
chmod 755 "$TMP/wd"
server_alive
stop_server
