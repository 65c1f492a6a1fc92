#!/bin/bash
# Tests shadowcopy diff against known writes (table, --json, --summary; two snapshots and snapshot to live), that reported-unchanged ranges are identical, that offline diff equals online byte for byte, paging past 65536 changed chunks, and bad input: exit status, message, nothing changed.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo

K=1024
M=$((1024 * K))
CS=$((64 * K))
# Not a whole number of chunks: the last extent is clipped to the volume.
SIZE=$((8 * M + 3 * 4096))
D=$TMP/diff
make_disk "$TMP/disk" "$SIZE"
start_server "$TMP/disk" "$D" chunk-size=64K

# write OFFSET LENGTH: random bytes into the live volume.
write () { nbd_write_random live "$1" "$2"; }

# check_diff WHAT JSONFILE EXTENTS...: the extents of a diff --json are
# exactly EXTENTS (OFFSET+LENGTH each), and its totals add up.
check_diff () {
    local what=$1 file=$2
    shift 2
    "$PYTHON" - "$file" "$@" <<'EOF' || fail "$what: wrong diff"
import json, sys
d = json.load(open(sys.argv[1]))
want = [tuple(int(x) for x in e.split("+")) for e in sys.argv[2:]]
got = [(e["offset"], e["length"]) for e in d["extents"]]
if got != want:
    sys.exit("extents %s, expected %s" % (got, want))
if d["total-bytes"] != sum(l for _, l in want) or d["extent-count"] != len(want):
    sys.exit("totals: %r" % d)
EOF
}

# The history: s1; chunk 1 (a few bytes), chunks 4-5 (a write across
# them), the partial last chunk; s2; chunk 1 again, chunk 9.
LAST=$(( (SIZE - 1) / CS * CS ))
sc_create s1
write $((CS + 100)) 10
write $((5 * CS - 2048)) 4096
write $((SIZE - 5)) 5
sc_create s2
write $((CS + 7)) 1
write $((9 * CS)) $CS

sc diff s1 s2 --json > "$TMP/s1-s2.json" || fail "diff s1 s2 --json failed"
check_diff "s1 to s2" "$TMP/s1-s2.json" \
    "$CS+$CS" "$((4 * CS))+$((2 * CS))" "$LAST+$((SIZE - LAST))"
sc diff s2 --json > "$TMP/s2-live.json" || fail "diff s2 --json failed"
check_diff "s2 to live" "$TMP/s2-live.json" "$CS+$CS" "$((9 * CS))+$CS"
sc diff s1 live --json > "$TMP/s1-live.json" || fail "diff s1 live --json failed"
check_diff "s1 to live" "$TMP/s1-live.json" "$CS+$CS" \
    "$((4 * CS))+$((2 * CS))" "$((9 * CS))+$CS" "$LAST+$((SIZE - LAST))"
sc diff s2 s2 --json > "$TMP/s2-s2.json" || fail "diff s2 s2 failed"
check_diff "s2 to itself" "$TMP/s2-s2.json"

# The JSON names both sides as list --json does, and the volume.
sc list --json > "$TMP/list.json" || fail "list --json failed"
epoch=$(sc_info epoch)
"$PYTHON" - "$TMP/s1-s2.json" "$TMP/s2-live.json" "$TMP/list.json" \
    "$SIZE" "$epoch" <<'EOF' || fail "diff --json fields are wrong"
import json, re, sys
a, b, snaps = (json.load(open(f)) for f in sys.argv[1:4])
size, epoch = int(sys.argv[4]), int(sys.argv[5])
by = {s["name"]: s for s in snaps}
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
for d in (a, b):
    assert uuid.match(d["volume-uuid"]), d["volume-uuid"]
    assert d["chunk-size"] == 65536 and d["granularity"] == 65536, d
    assert d["volume-size"] == size, d
assert a["volume-uuid"] == b["volume-uuid"]
for side, name in ((a["from"], "s1"), (a["to"], "s2"), (b["from"], "s2")):
    s = by[name]
    want = {"name": name, "id": s["id"], "uuid": s["uuid"],
            "epoch": s["epoch"], "type": "snapshot"}
    assert side == want, (side, want)
assert b["to"] == {"name": "live", "type": "live", "epoch": epoch}, b["to"]
EOF

# list shows the type and UUID of each (table and JSON).
sc list > "$TMP/list.txt" || fail "list failed"
head -1 "$TMP/list.txt" | grep_all -E '^ID +NAME +TYPE +CREATED +STATE +USED +UUID' ||
    fail "list heading: $(head -1 "$TMP/list.txt")"
grep -Eq '^ *[0-9]+ +s1 +snapshot +20' "$TMP/list.txt" || fail "list: $(cat "$TMP/list.txt")"
"$PYTHON" -c '
import json, sys
for s in json.load(open(sys.argv[1])):
    assert s["type"] == "snapshot" and len(s["uuid"]) == 36 and "meta-bytes" not in s, s
' "$TMP/list.json" || fail "list --json: type or uuid missing: $(cat "$TMP/list.json")"

# The table: one row per extent (offset, length, end, human size) and a
# total; --summary: one line; --summary --json: the object without
# extents.
sc diff s1 > "$TMP/table.txt" || fail "diff s1 failed"
"$PYTHON" - "$TMP/table.txt" "$TMP/s1-live.json" <<'EOF' || fail "diff table is wrong: $(cat "$TMP/table.txt")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
d = json.load(open(sys.argv[2]))
assert lines[0].split() == ["OFFSET", "LENGTH", "END", "SIZE"], lines[0]
rows = [l.split() for l in lines[1:-1]]
want = [[str(e["offset"]), str(e["length"]), str(e["offset"] + e["length"])]
        for e in d["extents"]]
assert [r[:3] for r in rows] == want, (rows, want)
assert rows[0][3:] == ["64", "KiB"] and rows[1][3:] == ["128", "KiB"], rows
assert lines[-1].startswith("total: %d bytes (" % d["total-bytes"]), lines[-1]
assert "in %d extents from s1 to live (granularity 64 KiB)" % len(want) in lines[-1], lines[-1]
EOF
total=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["total-bytes"])' "$TMP/s1-live.json")
[ "$(sc diff s1 --summary)" = "$total bytes changed in 4 extents (granularity 65536)" ] ||
    fail "diff --summary: $(sc diff s1 --summary)"
sc diff s1 --summary --json > "$TMP/summary.json" || fail "diff --summary --json failed"
"$PYTHON" - "$TMP/summary.json" "$TMP/s1-live.json" <<'EOF' || fail "diff --summary --json is wrong"
import json, sys
s, d = (json.load(open(f)) for f in sys.argv[1:3])
assert "extents" not in s, s
del d["extents"]
assert s == d, (s, d)
EOF

# A range reported unchanged is identical in both snapshots.
nbd_save s1 "$TMP/s1.img"
nbd_save s2 "$TMP/s2.img"
"$PYTHON" - "$TMP/s1.img" "$TMP/s2.img" "$TMP/s1-s2.json" <<'EOF' || fail "an unchanged range differs"
import json, sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
pos = 0
for e in json.load(open(sys.argv[3]))["extents"] + [{"offset": len(a), "length": 0}]:
    if a[pos:e["offset"]] != b[pos:e["offset"]]:
        sys.exit("bytes %d-%d differ but are reported unchanged" % (pos, e["offset"]))
    pos = e["offset"] + e["length"]
EOF

# ---- offline equals online -------------------------------------------

for args in "s1 s2 --json" "s1 --json" "s2 live --json" "s1" "s1 --summary" \
            "s1 --summary --json"; do
    # shellcheck disable=SC2086
    sc diff $args > "$TMP/online.$(echo $args | tr ' ' _)" ||
        fail "online diff $args failed"
done
stop_server
sha_before=$(file_sha256 "$D")
for args in "s1 s2 --json" "s1 --json" "s2 live --json" "s1" "s1 --summary" \
            "s1 --summary --json"; do
    f=$TMP/online.$(echo $args | tr ' ' _)
    # shellcheck disable=SC2086
    sc_off "$D" diff $args > "$TMP/offline.out" || fail "offline diff $args failed"
    cmp -s "$f" "$TMP/offline.out" ||
        fail "offline diff $args differs from online:
$(diff "$f" "$TMP/offline.out")"
done
expect_cli_error "offline diff of an unknown name" sc_off "$D" diff nosuch
[ "$(file_sha256 "$D")" = "$sha_before" ] || fail "offline diff changed the diff-area file"
expect_cli_error "offline checkpoint (needs a server)" sc_off "$D" checkpoint c1
case $CLI_ERR in *"needs a running server"*) ;;
    *) soft_fail "offline checkpoint: unexpected message: $CLI_ERR" ;; esac
start_server "$TMP/disk" "$D" chunk-size=64K

# ---- bad input: exit status 1 (2 for usage), a clear message, nothing
# changed ---------------------------------------------------------------

sc list --json > "$TMP/before.json"
used_before=$(sc_info diff_used_bytes)
# expect_status STATUS WORDS CMD...: CMD exits STATUS with nothing on
# stdout and one line on stderr that says WORDS.
expect_status () {
    local want=$1 words=$2 rc out err errf=$TMP/.err
    shift 2
    rc=0; out=$("$@" 2> "$errf") || rc=$?
    err=$(cat "$errf")
    if [ "$rc" -ne "$want" ]; then
        soft_fail "'$*' exited $rc, expected $want (stderr: $err)"
    elif [ -n "$out" ]; then
        soft_fail "'$*' printed on stdout: $out"
    elif [ "$(wc -l < "$errf")" -ne 1 ]; then
        soft_fail "'$*' should say one line on stderr, got: $err"
    else
        case $err in
            *"$words"*) log "ok, $*: $err" ;;
            *) soft_fail "'$*': message lacks '$words': $err" ;;
        esac
    fi
}
expect_status 1 "no such snapshot or checkpoint: nosuch (FROM)" sc diff nosuch
expect_status 1 "no such snapshot or checkpoint: nosuch (TO)" sc diff s1 nosuch
sc clone s1 cl > /dev/null || fail "clone failed"
expect_status 1 "cl is a writable clone: diff compares snapshots and checkpoints" sc diff s1 cl
expect_status 1 "cl is a writable clone" sc diff cl --json
expect_status 1 "cl is a writable clone" sc diff cl live --summary
sc delete cl > /dev/null || fail "delete of the clone failed"
expect_status 1 "FROM s2 (id" sc diff s2 s1
expect_status 1 "newer than TO s1" sc diff s2 s1 --json
expect_status 1 "invalid snapshot name" sc diff .hidden
expect_status 2 "diff needs FROM" sc diff
expect_status 2 "diff needs FROM" sc diff --json
expect_status 2 "live can only be TO" sc diff live
expect_status 2 "unexpected argument 's3'" sc diff s1 s2 s3
expect_status 2 "unexpected option '--frob'" sc diff s1 --frob
expect_status 2 "unexpected option '--frob'" sc delete s1 --frob --keep-checkpoint
expect_status 2 "unexpected option '--oldest'" sc delete --oldest --keep-checkpoint
expect_status 2 "checkpoint needs NAME" sc checkpoint
expect_status 2 "unexpected argument 'b'" sc checkpoint a b
expect_status 2 "unexpected option '-x'" sc checkpoint -x a
expect_status 1 "invalid snapshot name" sc checkpoint .hidden
expect_status 1 "snapshot already exists: s1" sc checkpoint s1
expect_status 2 "delete --keep-checkpoint needs NAME" sc delete --keep-checkpoint
sc list --json > "$TMP/after.json"
cmp -s "$TMP/before.json" "$TMP/after.json" ||
    fail "bad input changed the snapshot list:
$(diff "$TMP/before.json" "$TMP/after.json")"
[ "$(sc_info diff_used_bytes)" = "$used_before" ] ||
    fail "bad input changed the diff area's use"

# An invalid side: its copy-on-write read fails (a fault on the diff
# area's data write), so the diff says which side and why.
export SHADOWCOPY_TEST_IO_FAULTS=$TMP/faults
restart_server
sc_create s3
echo "data-write EIO once" > "$TMP/faults"
write $((9 * CS)) 4096          # only s3 needs chunk 9's old content
nbd_py live 'h.flush()' || fail "flush"  # (a queued write's copy is done)
[ ! -e "$TMP/faults" ] || fail "the data-write fault never fired"
[ "$(sc_field s3 state)" = invalid ] || fail "s3 is not invalid: $(sc list)"
expect_status 1 "FROM snapshot s3 is invalid (copy-on-write write to the diff area failed" sc diff s3
expect_status 1 "TO snapshot s3 is invalid" sc diff s1 s3
sc diff s1 s2 --json > "$TMP/again.json" || fail "diff s1 s2 after s3 failed"
cmp -s "$TMP/s1-s2.json" "$TMP/again.json" || fail "diff s1 s2 changed"
unset SHADOWCOPY_TEST_IO_FAULTS
stop_server

# ---- paging: more than 65536 changed chunks, still one extent -----------

truncate -s 320M "$TMP/big"
NBD_SOCK=$TMP/nbd-big.sock
start_server "$TMP/big" "$TMP/big.diff" chunk-size=4K
sc_create p1
nbd_py live '
buf = b"\x5a" * (30 << 20)
for i in range(10):
    h.pwrite(buf, (4 << 20) + i * len(buf))
h.flush()' || fail "writing 300 MiB failed"
# A diff is computed whole and its runs merged before it is cut into
# pages: 76800 changed chunks in a row are one extent on one page, even
# with pages of one run.  (Past 8M changed chunks pages are computed one
# by one and may cut a run; the CLI merges them: unit-control-diff.)
"$PYTHON" "$tests_srcdir/ctl.py" "$CTL" "DIFF p1 max=1" > "$TMP/page1" ||
    fail "DIFF p1 request failed"
grep -q $'\tnext=end.*offset=4194304\tlength=314572800 | OK$' "$TMP/page1" ||
    fail "the first page of 76800 changed chunks says: $(head -c 400 "$TMP/page1")"
sc diff p1 --json > "$TMP/big.json" || fail "diff p1 --json failed"
check_diff "300 MiB in 4K chunks" "$TMP/big.json" "$((4 * M))+$((300 * M))"
[ "$(sc diff p1 --summary)" = "$((300 * M)) bytes changed in 1 extent (granularity 4096)" ] ||
    fail "diff p1 --summary: $(sc diff p1 --summary)"
# Pages computed one by one (as past 8M changed chunks) cut the run at
# 65536 chunks; the CLI merges the pages back into one extent.
stop_server
NBDKIT_EXTRA_ARGS="-D shadowcopy.diff_pages=1" \
    start_server "$TMP/big" "$TMP/big.diff" chunk-size=4K
"$PYTHON" "$tests_srcdir/ctl.py" "$CTL" "DIFF p1" > "$TMP/page1" ||
    fail "DIFF p1 request failed"
grep -q $'\tnext=66560 ' "$TMP/page1" ||
    fail "a page computed alone of 76800 changed chunks says: $(head -c 400 "$TMP/page1")"
sc diff p1 --json > "$TMP/big-paged.json" || fail "paged diff p1 --json failed"
cmp -s "$TMP/big.json" "$TMP/big-paged.json" ||
    fail "pages computed alone give another answer: $(head -c 300 "$TMP/big-paged.json")"
stop_server
sc_off "$TMP/big.diff" diff p1 --json > "$TMP/big-offline.json" ||
    fail "offline diff p1 failed"
cmp -s "$TMP/big.json" "$TMP/big-offline.json" ||
    fail "offline diff of 76800 chunks differs from online"

# ---- max-checkpoints= ----------------------------------------------------

for bad in 0 65537 x 3x -1; do
    if try_start_server "$TMP/big" "$TMP/big.diff" max-checkpoints=$bad 2>/dev/null; then
        fail "the server started with max-checkpoints=$bad"
    fi
    grep -q "max-checkpoints=$bad: must be a number from 1 to 65536" "$SERVER_LOG" ||
        fail "max-checkpoints=$bad: no clear error in the log"
done
start_server "$TMP/big" "$TMP/big.diff" max-checkpoints=65536
[ "$(sc_info max_checkpoints)" = 65536 ] ||
    fail "info: max_checkpoints=$(sc_info max_checkpoints)"
stop_server
start_server "$TMP/big" "$TMP/big.diff"
[ "$(sc_info max_checkpoints)" = 512 ] ||
    fail "info: default max_checkpoints=$(sc_info max_checkpoints)"
