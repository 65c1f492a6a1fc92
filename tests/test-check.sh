#!/bin/bash
# Tests `shadowcopy check`: a clean diff area exits 0 with a summary; a damaged superblock copy, a damaged record in the middle of the journal and a garbage file exit 1 naming where; usage errors, a missing file and a diff area held by a server exit 2; the check never writes.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires timeout cmp

M=$((1024 * 1024))
D=$TMP/diff

# run_cli ARGS...: the CLI with a time limit; sets RC, and leaves its
# output in $TMP/out and $TMP/err.
run_cli () {
    RC=0
    timeout 60 "$SHADOWCOPY_CLI" "$@" > "$TMP/out" 2> "$TMP/err" || RC=$?
    [ "$RC" -ne 124 ] || fail "shadowcopy $*: hung"
    [ "$RC" -lt 126 ] || fail "shadowcopy $*: died with status $RC: $(cat "$TMP/err")"
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/err"; then
        fail "shadowcopy $*: sanitizer report: $(cat "$TMP/err")"
    fi
}

# one_error_line WHAT: stderr is exactly one line starting "shadowcopy: ".
one_error_line () {
    [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q '^shadowcopy: ' "$TMP/err" ||
        soft_fail "$1: expected one 'shadowcopy: ' line on stderr, got: $(cat "$TMP/err")"
}

# expect_exit2 WHAT REGEX ARGS...: exit 2, nothing on stdout, one error
# line matching REGEX (extended, case-insensitive).
expect_exit2 () {
    local what=$1 re=$2
    shift 2
    run_cli "$@"
    if [ "$RC" -ne 2 ]; then
        soft_fail "$what: 'shadowcopy $*' exited $RC, expected 2: $(cat "$TMP/out" "$TMP/err")"
        return
    fi
    [ ! -s "$TMP/out" ] || soft_fail "$what: printed on stdout: $(cat "$TMP/out")"
    one_error_line "$what"
    grep -Eiq -- "$re" "$TMP/err" ||
        soft_fail "$what: the error does not say /$re/: $(cat "$TMP/err")"
    log "ok, $what: $(cat "$TMP/err")"
}

# expect_damaged WHAT REGEX FILE: check exits 1, prints its summary with a
# problem line matching REGEX, and says so in one line on stderr.
expect_damaged () {
    local what=$1 re=$2 file=$3
    run_cli check "$file"
    [ "$RC" -eq 1 ] ||
        fail "$what: check exited $RC, expected 1: $(cat "$TMP/out" "$TMP/err")"
    grep -q '^problems: [1-9]' "$TMP/out" ||
        fail "$what: no problem counted: $(cat "$TMP/out")"
    grep '^problem: ' "$TMP/out" | grep_all -Ei -- "$re" ||
        fail "$what: no problem line matching /$re/: $(cat "$TMP/out")"
    one_error_line "$what"
    grep -q 'damaged' "$TMP/err" || soft_fail "$what: stderr: $(cat "$TMP/err")"
    log "ok, $what: $(grep -m1 '^problem: ' "$TMP/out")"
}

# field NAME: the value after "NAME: " in the last check's summary.
field () { sed -n "s/^$1: //p" "$TMP/out"; }

# fingerprint FILE: size, mtime and checksum, to show nothing was written.
fingerprint () { stat -c '%s %Y' "$1"; sha256sum < "$1"; }

# ---- a diff area with copies, zero copies, a deletion -----------------

make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create s1
nbd_write_random live 0 $M
nbd_zero live $((8 * M)) $M             # s1 keeps the old data
sc_create s2
nbd_write_random live $((2 * M)) $M
nbd_write_random live $((8 * M)) $((M / 2))     # zero copies, for s2
sc_create s3
nbd_write_random live $((M / 2)) $((2 * M))
sc delete s1 > /dev/null || fail "delete s1"    # frees slots

# ---- a server holds the diff area: exit 2, in both spellings -----------

expect_exit2 "check while a server runs" 'in use' check "$D"
expect_exit2 "--diff check while a server runs" 'in use' --diff "$D" check
server_alive "after the checks"
sc info --json > "$TMP/info.json" || fail "info --json"
stop_server

# ---- clean ---------------------------------------------------------------

before=$(fingerprint "$D")
run_cli check "$D"
[ "$RC" -eq 0 ] || fail "clean diff area: check exited $RC: $(cat "$TMP/out" "$TMP/err")"
[ ! -s "$TMP/err" ] || fail "clean diff area: stderr: $(cat "$TMP/err")"
log "summary of a clean diff area:
$(cat "$TMP/out")"
[ "$(field problems)" = 0 ] || fail "problems: $(field problems)"
[ "$(field warnings)" = 0 ] || fail "warnings: $(field warnings)"
[ "$(field state)" = "closed cleanly" ] || fail "state: $(field state)"
[ "$(field snapshots)" = "2 (2 valid, 0 invalid)" ] ||
    fail "snapshots: $(field snapshots)"
[ "$(field 'file size')" = "$(stat -c %s "$D") bytes" ] ||
    fail "file size: $(field 'file size')"
for c in A B; do
    field "superblock $c ([a-z 0-9]*)" | grep_all '^valid, generation' ||
        fail "superblock $c: $(grep "^superblock $c" "$TMP/out")"
done
field journal | grep_all -E '^[1-9][0-9]* records? in [1-9][0-9]* slots?, from offset [0-9]+, ending at offset [0-9]+$' ||
    fail "journal: $(field journal)"
read -r copies data zeros <<< "$(field copies | sed -E 's/^([0-9]+) \(([0-9]+) in data slots, ([0-9]+) of zeros\)$/\1 \2 \3/')"
[ "$data" -gt 0 ] && [ "$zeros" -gt 0 ] && [ "$copies" -eq $((data + zeros)) ] ||
    fail "copies: $(field copies)"
[ "$(field 'data slots read back')" = "$data of $data" ] ||
    fail "data slots read back: $(field 'data slots read back')"
field 'bytes free' | grep_all -E '^[0-9]+ \([0-9]+ free slots? below the end of the file\)$' ||
    fail "bytes free: $(field 'bytes free')"
# The same figures as info, online.
[ "$(json 'd["copies"]' < "$TMP/info.json")" = "$copies" ] ||
    fail "check counts $copies copies, info $(json 'd["copies"]' < "$TMP/info.json")"
[ "$(json 'd["diff_used_bytes"]' < "$TMP/info.json")" = "$(field 'bytes used')" ] ||
    fail "check says $(field 'bytes used') bytes used, info $(json 'd["diff_used_bytes"]' < "$TMP/info.json")"
[ "$(fingerprint "$D")" = "$before" ] || fail "check of a clean diff area changed it"

# The other spelling gives the same report.
cp "$TMP/out" "$TMP/out.first"
run_cli --diff "$D" check
[ "$RC" -eq 0 ] || fail "--diff DIFF check exited $RC: $(cat "$TMP/err")"
cmp -s "$TMP/out" "$TMP/out.first" ||
    fail "--diff DIFF check differs from check DIFF: $(diff "$TMP/out.first" "$TMP/out")"

cp --sparse=always "$D" "$TMP/pristine"

# ---- one superblock copy damaged: exit 1, repaired by a start ----------

uh_flip () {            # uh_flip FILE OFFSET: invert one byte in place
    "$PYTHON" -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}

uh_flip "$D" $((4096 + 3000))           # inside copy B, past its fields
before=$(fingerprint "$D")
expect_damaged "one superblock copy damaged" \
    'superblock copy B at offset 4096.*checksum' "$D"
grep -q '^superblock A (offset 0): valid' "$TMP/out" ||
    fail "copy A should be shown valid: $(cat "$TMP/out")"
grep -q '^superblock B (offset 4096): damaged: checksum mismatch' "$TMP/out" ||
    fail "copy B should be shown damaged: $(cat "$TMP/out")"
grep -q '^snapshots: 2 (2 valid' "$TMP/out" ||
    fail "the diff area still loads from copy A: $(cat "$TMP/out")"
[ "$(fingerprint "$D")" = "$before" ] || fail "check of a damaged diff area changed it"
# A read-write open (a server start) rewrites the damaged copy.
start_server "$TMP/disk" "$D" chunk-size=64K
stop_server
run_cli check "$D"
[ "$RC" -eq 0 ] || fail "after a restart the superblock copy is still damaged: $(cat "$TMP/out")"

# ---- a damaged record in the middle of the journal: exit 1 with offset --

cp --sparse=always "$TMP/pristine" "$D"
# The offset of the journal's second record, from the newest superblock.
rec2=$("$PYTHON" -c '
import struct, sys
f = open(sys.argv[1], "rb")
best = None
for c in (0, 1):
    f.seek(c * 4096); b = f.read(4096)
    if b[:8] != b"SHCOPYSB": continue
    gen, = struct.unpack_from("<Q", b, 16)
    if best is None or gen > best[0]: best = (gen, b)
b = best[1]
shift, = struct.unpack_from("<I", b, 40)
head, = struct.unpack_from("<Q", b, 80)
off = head << shift
f.seek(off); h = f.read(16)
length, = struct.unpack_from("<H", h, 6)
print(off + length)' "$D")
[ -n "$rec2" ] || fail "could not find the journal"
log "second journal record at offset $rec2"
uh_flip "$D" $((rec2 + 8))              # its sequence number
expect_damaged "a damaged record in the middle of the journal" \
    "offset $rec2\\b" "$D"

# ---- not a diff area ----------------------------------------------------

head -c $M /dev/urandom > "$TMP/garbage"
expect_damaged "a garbage file" 'magic' "$TMP/garbage"
: > "$TMP/empty"
expect_damaged "an empty file" 'superblock' "$TMP/empty"

# ---- usage errors and what cannot be checked: exit 2 --------------------

expect_exit2 "no argument" 'needs DIFFAREA' check
expect_exit2 "--diff and an argument" 'once' --diff "$D" check "$D"
expect_exit2 "two arguments" 'one DIFFAREA' check "$D" "$D"
expect_exit2 "unknown option" "unknown option '--bogus'" check --bogus "$D"
expect_exit2 "through a control socket" 'diff-area file' -c "$TMP/ctl.sock" check "$D"
expect_exit2 "missing file" 'no such file' check "$TMP/nonexistent"
expect_exit2 "a directory" 'directory' check "$TMP"
expect_exit2 "no verb" 'verb' --diff "$D"

# `--` ends the options: a diff area whose name starts with '-'.
cp --sparse=always "$TMP/pristine" "$TMP/-dash"
cd "$TMP"
run_cli check -- -dash
cd - > /dev/null
[ "$RC" -eq 0 ] || fail "check -- -dash exited $RC: $(cat "$TMP/err")"

# ---- a diff area with a written clone: its slots counted apart --------
D2=$TMP/diff2
make_disk "$TMP/disk2" 4M
start_server "$TMP/disk2" "$D2" chunk-size=64K
sc_create s > /dev/null
sc clone s c > /dev/null || fail "clone failed"
nbd_write_random c 0 196608             # three chunks of the clone
nbd_py c 'h.flush()'
stop_server
run_cli check --data "$D2"
[ "$RC" -eq 0 ] || fail "check of a diff area with a clone exited $RC: $(cat "$TMP/out" "$TMP/err")"
log "summary with a written clone:
$(cat "$TMP/out")"
[ "$(field snapshots)" = "1 (1 valid, 0 invalid)" ] || fail "snapshots: $(field snapshots)"
[ "$(field clones)" = "1 (1 valid, 0 invalid; 3 in data slots)" ] || fail "clones: $(field clones)"
[ "$(field copies)" = "0 (0 in data slots, 0 of zeros)" ] || fail "copies: $(field copies)"
[ "$(field 'data slots read back')" = "3 of 3" ] ||
    fail "data slots read back: $(field 'data slots read back')"
