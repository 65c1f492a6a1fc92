#!/bin/bash
# Tests verified snapshot reads with a real nbdkit: a byte flipped in a copied slot of a stopped server's diff area makes the read of that chunk fail with EIO (nbdsh and nbdcopy), the snapshot is listed as damaged with the reason, its export is refused from then on (also after a restart), stats count it, and the other snapshot still reads its exact image.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo

K=1024
M=$((1024 * K))
CS=$((64 * K))
D=$TMP/diff

make_disk "$TMP/disk" 8M
cp "$TMP/disk" "$TMP/s1.img"            # what s1 must show
start_server "$TMP/disk" "$D" chunk-size=64K
sc_create s1
nbd_write_random live 0 $M              # chunks 0-15 copied for s1
sc_create s2
nbd_save s2 "$TMP/s2.img"
nbd_write_random live 0 $((256 * K))    # chunks 0-3 copied for s2
cmp_files "$TMP/s1.img" <(nbdcopy "$(uri s1)" -) "s1 before the damage"
stop_server

# The copy of chunk 10 is needed by s1 alone: find its slot by content
# (it holds the original chunk) and flip one byte of its 3rd 4K block.
slot_off=$("$PYTHON" - "$TMP/s1.img" "$D" $((10 * CS)) $CS <<'PY'
import sys
img, diff, off, cs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = open(img, "rb").read()[off:off + cs]
data = open(diff, "rb").read()
at = data.find(want)
assert at >= 0 and at % cs == 0, "copy of chunk 10 not found in a slot"
print(at)
PY
)
log "the copy of chunk 10 is at diff-area offset $slot_off"
flip=$((slot_off + 2 * 4096 + 17))
"$PYTHON" -c '
import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x40]))' "$D" $flip

start_server "$TMP/disk" "$D" chunk-size=64K
[ "$(sc_field s1 state)" = valid ] || fail "s1 is not valid before it is read"

# A 4K read of an undamaged block of the same copy is served (in-place
# verification per 4K block)...
got=$(nbd_py s1 'sys.stdout.write(h.pread(4096, int(os.environ["E_O"])).hex())' \
      E_O=$((10 * CS))) || fail "reading an intact block of chunk 10 failed"
want=$(dd if="$TMP/s1.img" bs=4096 skip=$((10 * 16)) count=1 status=none | od -An -v -tx1 | tr -d ' \n')
[ "$got" = "$want" ] || fail "an intact block of chunk 10 read wrong"

# ... the damaged block fails with EIO, not wrong data.
out=$(nbd_py s1 '
try:
    h.pread(4096, int(os.environ["E_O"]))
    print("served")
except nbd.Error as e:
    print("errno", e.errno)' E_O=$((10 * CS + 2 * 4096))) ||
    fail "nbdsh failed: $out"
[ "$out" = "errno EIO" ] || [ "$out" = "errno 5" ] || fail "the damaged block: expected EIO, got: $out"
log "ok: the damaged block fails with EIO"

# Listed as damaged, with the reason; the other snapshot is untouched.
[ "$(sc_field s1 state)" = invalid ] || fail "s1 is not invalid after the damage"
reason=$(sc_field s1 reason)
case "$reason" in *damaged*checksum*) ;; *) fail "s1's reason: $reason" ;; esac
sc list | grep -E '^ *[0-9]+ +s1 .*damaged' > /dev/null ||
    fail "list does not show s1 damaged: $(sc list)"
[ "$(sc_field s2 state)" = valid ] || fail "s2 was marked too"

# Its export is refused from now on; s2 still serves its exact image.
if nbdcopy "$(uri s1)" - > /dev/null 2>&1; then
    fail "nbdcopy of the damaged snapshot succeeded"
fi
nbdinfo --list "nbd+unix://?socket=$NBD_SOCK" > "$TMP/exports" ||
    fail "nbdinfo --list failed"
! grep -q 'export="s1"' "$TMP/exports" || fail "s1 is still exported: $(cat "$TMP/exports")"
cmp_files "$TMP/s2.img" <(nbdcopy "$(uri s2)" -) "s2 after s1's damage"

# Counted.
stats=$(sc stats --json) || fail "stats --json failed"
[ "$(printf '%s\n' "$stats" | json 'd["checksum_errors"]')" -ge 1 ] ||
    fail "stats do not count the checksum error: $stats"
[ "$(sc_info damaged)" = 1 ] || fail "info does not count s1 as damaged"
grep -q 'chunk 10 .*failed its checksum' "$SERVER_LOG" ||
    fail "the server did not log the chunk"

# Durable: after a restart s1 is still damaged and still not served.
restart_server
[ "$(sc_field s1 state)" = invalid ] || fail "s1 is valid again after a restart"
case "$(sc_field s1 reason)" in *damaged*) ;; *) fail "s1's reason after a restart: $(sc_field s1 reason)" ;; esac
if nbd_py s1 'h.pread(512, 0)' 2> /dev/null; then
    fail "s1 is served after a restart"
fi
cmp_files "$TMP/s2.img" <(nbdcopy "$(uri s2)" -) "s2 after a restart"
stop_server
