#!/bin/bash
# Tests that a snapshot export answers NBD block status with the snapshot's own holes and data (zero copies and origin holes are holes, to 4K inside a chunk it shares with the origin; data elsewhere) after the live disk was overwritten, zeroed and trimmed; that nbdcopy of it reads only its data and gives the same, sparse image; and that block status of a deleted or invalid snapshot fails.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo cmp du truncate
nbdkit --filter=log null --version >/dev/null 2>&1 ||
    skip "nbdkit's log filter is not installed"

# The server fails diff-area I/O as this file says (cow/fault-file.c): used
# at the end to make a snapshot invalid.
FAULTS=$TMP/faults
export SHADOWCOPY_TEST_IO_FAULTS=$FAULTS
K=1024
M=$((1024 * 1024))
CS=$((64 * K))

# put SRC OFFSET LEN: write LEN bytes of SRC (urandom or zero) into the
# origin at OFFSET, allocating them (written zeros are data to the file
# system).
put () {
    dd if="/dev/$1" of="$TMP/disk" bs=4096 seek=$(($2 / 4096)) \
        count=$(($3 / 4096)) conv=notrunc status=none || fail "dd into the disk"
}

# The origin: 16 MiB, sparse, with this layout (chunks are 64K).
truncate -s $((16 * M)) "$TMP/disk"
put urandom 0 $M                         # data
                                         # [1M, 2M) hole
put urandom $((2 * M)) $((4 * K))        # 4K pieces inside one chunk
put urandom $((2 * M + 8 * K)) $((4 * K))
put zero $((3 * M)) $M                   # written zeros, left alone
put zero $((4 * M)) $M                   # written zeros, overwritten below
put urandom $((5 * M)) $((2 * M))        # data, half of it zeroed below
put urandom $((8 * M)) $M                # data, trimmed below
put urandom $((10 * M)) $M               # data, half overwritten below
put urandom $((13 * M)) $((4 * K))       # a 4K piece in a chunk written below
cp "$TMP/disk" "$TMP/expected"           # the snapshot's content

# The file system must report the origin's holes, or nothing here can.
truncate -s $((16 * M)) "$TMP/probe"
dd if=/dev/urandom of="$TMP/probe" bs=4096 seek=1 count=1 conv=notrunc status=none
[ "$(du -k "$TMP/probe" | cut -f1)" -le 8 ] ||
    skip "the temporary file system does not keep files sparse"

# nbdkit's log filter records every request (to see what nbdcopy reads).
NBDKIT_EXTRA_ARGS=--filter=log start_server "$TMP/disk" "$TMP/diff" \
    chunk-size=64K logfile="$TMP/nbd.log"
sc_create s

# Now change the live disk in every way that copies.
nbd_write_random live $M $CS                       # data over a whole hole chunk
nbd_write_random live $((12 * M + 4 * K)) $((4 * K))   # data into a hole chunk
nbd_write_random live $((4 * M)) $M                # data over written zeros
nbd_zero live $((5 * M)) $M                        # zeros over data
nbd_trim live $((8 * M)) $M                        # trim of data
nbd_trim live $((14 * M)) $M                       # trim of a hole
nbd_write_random live $((10 * M)) $((M / 2))       # data over data
nbd_write_random live $((13 * M + 32 * K)) $((4 * K))  # into a chunk with data
nbd_py live 'h.flush()' || fail "flush of the live export failed"

# What the snapshot's map must say: "OFFSET LENGTH TYPE" (0 data, 3
# hole,zero), adjacent extents of one type merged.  A chunk the snapshot
# still shares with the origin is what the origin says (to 4K); a zero
# copy is a hole (the hole chunks written, the written zeros overwritten
# at 4M); a data copy is data for its whole chunk (13M).
cat > "$TMP/want-map" <<EOF
0 $M 0
$M $M 3
$((2 * M)) $((4 * K)) 0
$((2 * M + 4 * K)) $((4 * K)) 3
$((2 * M + 8 * K)) $((4 * K)) 0
$((2 * M + 12 * K)) $((M - 12 * K)) 3
$((3 * M)) $M 0
$((4 * M)) $M 3
$((5 * M)) $((2 * M)) 0
$((7 * M)) $M 3
$((8 * M)) $M 0
$((9 * M)) $M 3
$((10 * M)) $M 0
$((11 * M)) $((2 * M)) 3
$((13 * M)) $CS 0
$((13 * M + CS)) $((3 * M - CS)) 3
EOF

nbdinfo --map "$(uri s)" > "$TMP/map" || fail "nbdinfo --map of the snapshot failed"
awk '{ print $1, $2, $3 }' "$TMP/map" > "$TMP/got-map"
if ! cmp -s "$TMP/want-map" "$TMP/got-map"; then
    diff "$TMP/want-map" "$TMP/got-map" >&2 || :
    fail "the snapshot's block status is not its layout (above: want, got)"
fi
# The live export's map is the origin's, which changed.
nbdinfo --map "$(uri live)" > "$TMP/live-map" || fail "nbdinfo --map of live failed"
grep -q "^ *$((5 * M)) .*hole" "$TMP/live-map" ||
    fail "the live export does not show its zeroed range as a hole"

# A snapshot read after the live writes is still the saved image.
nbd_save s "$TMP/read"
cmp_files "$TMP/expected" "$TMP/read" "snapshot read after the live writes"

# nbdcopy to a sparse file: the same content, sparse, and it reads only
# where the map says data (no read lies wholly inside a hole).
: > "$TMP/nbd.log"
truncate -s 0 "$TMP/copy"
nbdcopy "$(uri s)" "$TMP/copy" || fail "nbdcopy of the snapshot failed"
cmp_files "$TMP/expected" "$TMP/copy" "nbdcopy of the snapshot"
used=$(du -k "$TMP/copy" | cut -f1)
want_kib=$(du -k "$TMP/expected" | cut -f1)
log "copy: ${used} KiB allocated (the origin image: ${want_kib} KiB, apparent 16384 KiB)"
[ "$used" -le $((8 * 1024)) ] ||
    fail "the copy of the snapshot is not sparse: $used KiB allocated"
"$PYTHON" - "$TMP/nbd.log" "$TMP/want-map" <<'EOF' || fail "nbdcopy read holes of the snapshot"
import re, sys
holes = []
for line in open(sys.argv[2]):
    off, length, t = map(int, line.split())
    if t & 1:
        holes.append((off, off + length))
reads = total = 0
for line in open(sys.argv[1]):
    m = re.search(r" Read id=\d+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)", line)
    if not m:
        continue
    off, n = int(m.group(1), 16), int(m.group(2), 16)
    reads += 1
    total += n
    for a, b in holes:
        if a <= off and off + n <= b:
            sys.exit("read of %d bytes at %d lies inside the hole [%d, %d)"
                     % (n, off, a, b))
if reads == 0:
    sys.exit("no read of the snapshot was logged")
if total >= 16 << 20:
    sys.exit("nbdcopy read %d bytes: the whole disk" % total)
print("nbdcopy read %d bytes in %d requests" % (total, reads))
EOF

# req_one: one extent from the start, and at least one byte of it.
"$NBDSH" --base-allocation -u "$(uri s)" -c '
import nbd, sys
ext = []
def cb(meta, off, entries, err):
    ext.extend(entries)
h.block_status(8 << 20, 2 << 20, cb, flags=nbd.CMD_FLAG_REQ_ONE)
if len(ext) != 2 or ext[0] != 4096 or ext[1] != 0:
    sys.exit("req_one at 2M: %r, want [4096, 0]" % ext)
' || fail "block status with req_one"

# Block status on connections opened earlier: refused once the snapshot
# is deleted (ESHUTDOWN, as a read) or invalid (EIO, as a read).
sc_create gone
sc_create bad
nbd_py live '
import nbd, subprocess
def status(name, h2):
    try:
        h2.block_status(1 << 20, 0, lambda *a: 0)
        return "ok"
    except nbd.Error as e:
        return "errno %s: %s" % (e.errnum, e)
conns = {}
for name in ("gone", "bad"):
    conns[name] = nbd.NBD()
    conns[name].set_export_name(name)
    conns[name].add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    conns[name].connect_unix(os.environ["E_S"])
    r = status(name, conns[name])
    if r != "ok":
        sys.exit("block status of %s before it went away: %s" % (name, r))
cli = [os.environ["E_CLI"], "-c", os.environ["E_CTL"]]
subprocess.run(cli + ["delete", "gone"], check=True, stdout=subprocess.DEVNULL)
r = status("gone", conns["gone"])
print("deleted:", r)
if r == "ok" or "errno 108" not in r:
    sys.exit("block status of a deleted snapshot: %s (want ESHUTDOWN)" % r)
# A copy-on-write whose data write fails invalidates the snapshots that
# needed it (here s and bad alike).
open(os.environ["E_F"], "w").write("data-write EIO once\n")
h.pwrite(os.urandom(65536), 0)
h.flush()               # (a write-back queue copies by then)
if os.path.exists(os.environ["E_F"]):
    sys.exit("the data-write fault never fired")
r = status("bad", conns["bad"])
print("invalid:", r)
if r == "ok" or "errno 5" not in r:
    sys.exit("block status of an invalid snapshot: %s (want EIO)" % r)
' E_S="$NBD_SOCK" E_CLI="$SHADOWCOPY_CLI" E_CTL="$CTL" E_F="$FAULTS" ||
    fail "block status of a deleted or invalid snapshot did not fail"
[ "$(sc_field bad state)" = invalid ] || fail "snapshot bad is not invalid"
grep -q "extents: snapshot 'gone' was deleted" "$SERVER_LOG" ||
    fail "the server did not log the refused block status of 'gone'"
grep -q "extents: snapshot 'bad' is no longer valid" "$SERVER_LOG" ||
    fail "the server did not log the refused block status of 'bad'"
stop_server
