#!/bin/bash
# Tests shadowcopy stats against what the test wrote (copies, zero chunks, bytes, write amplification), max-snapshots (refused, or --delete-oldest), discards on a snapshot export with discard-snapshots=on (space freed, zeros read, shown by list, kept across a restart, later writes copy nothing), and that a live trim punches the origin after copying.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

K=1024; M=$((1024 * K))
# 4 MiB of data, then a 4 MiB hole.
make_disk "$TMP/disk" 4M
truncate -s 8M "$TMP/disk"

start_server "$TMP/disk" "$TMP/diff" discard-snapshots=on max-snapshots=3
stat () { sc stats --json | json "d[\"$1\"]"; }
[ "$(stat chunks_copied)" = 0 ] || fail "stats not zero at start"
[ "$(stat seconds_to_full)" = -1 ] || fail "an idle diff area is predicted to fill"

# ---- stats -------------------------------------------------------------
nbd_save live "$TMP/exp-s1"
sc_create s1
nbd_write_random live 0 $M                     # 16 data copies
nbd_write_random live $((4 * M)) $((256 * K))  # 4 zero copies (a hole)
nbd_write_random live 0 $M                     # copied already: nothing
sc stats > "$TMP/stats.txt" || fail "stats failed"
log "stats: $(tr '\n' ';' < "$TMP/stats.txt")"
[ "$(stat chunks_copied)" = 16 ] || fail "chunks copied: $(stat chunks_copied), expected 16"
[ "$(stat bytes_copied)" = $M ] || fail "bytes copied: $(stat bytes_copied)"
[ "$(stat zero_chunks)" = 4 ] || fail "zero chunks: $(stat zero_chunks), expected 4"
written=$((2 * M + 256 * K))
[ "$(stat bytes_written)" = $written ] || fail "bytes written: $(stat bytes_written), expected $written"
wa=$(stat write_amplification)
want=$("$PYTHON" -c "print('%.3f' % (($written + $M) / $written))")
[ "$wa" = "$want" ] || fail "write amplification $wa, expected $want"
[ "$(stat cow_count)" = 2 ] || fail "cow count: $(stat cow_count), expected 2 writes that copied"
[ "$(stat cow_p99_ns)" -ge "$(stat cow_p50_ns)" ] || fail "p99 < p50"
[ "$(stat diff_used)" = "$(sc_info diff_used_bytes)" ] || fail "stats and info disagree on the use"
[ "$(stat diff_max)" = 0 ] || fail "diff_max should be 0 (unbounded)"
[ "$(stat diff_free)" -gt 0 ] || fail "no free space reported"
[ "$(nbd_sha256 s1)" = "$(file_sha256 "$TMP/exp-s1")" ] || fail "s1 is wrong"

# ---- max-snapshots ------------------------------------------------------
sc_create s2
sc_create s3
expect_cli_error "create past max-snapshots" sc create s4
case "$CLI_ERR" in *"too many snapshots"*) ;; *) fail "create past the limit: '$CLI_ERR'" ;; esac
[ "$(sc_names | tr '\n' ' ')" = "s1 s2 s3 " ] || fail "a refused create changed the list"
out=$(sc create --delete-oldest s4) || fail "create --delete-oldest failed"
[ "$out" = s4 ] || fail "create --delete-oldest printed '$out'"
[ "$(sc_names | tr '\n' ' ')" = "s2 s3 s4 " ] || fail "create --delete-oldest: $(sc_names)"
sc list | grep_all "^  s1 .*max-snapshots" || fail "list does not show why s1 was dropped"
[ "$(sc_info dropped)" = 1 ] || fail "info does not count the drop"
[ "$(stat dropped)" = 1 ] || fail "stats does not count the drop"
sc delete --all > /dev/null

# ---- discard on a snapshot ------------------------------------------------
sc_create d1
nbd_save d1 "$TMP/exp-d1"
nbd_write_random live $((2 * M)) $M            # 16 copies only d1 needs
used1=$(sc_info diff_used_bytes)
# A partial chunk is ignored; whole chunks are discarded.
nbd_trim d1 $((2 * M + 100)) 1000
[ "$(sc_field d1 discarded_bytes)" = 0 ] || fail "a partial-chunk trim discarded something"
nbd_trim d1 $((2 * M)) $M
nbd_trim d1 $((6 * M)) $M                      # not copied yet
used2=$(sc_info diff_used_bytes)
log "diff area used: $used1 before the discard, $used2 after"
[ "$used2" -le $((used1 - M)) ] || fail "discarding 1 MiB of copies freed $((used1 - used2)) bytes"
[ "$(sc_field d1 discarded_bytes)" = $((2 * M)) ] ||
    fail "list shows $(sc_field d1 discarded_bytes) discarded bytes, expected 2 MiB"
[ "$(sc_info discarded_bytes)" = $((2 * M)) ] || fail "info does not show the discard"
# The discarded ranges read as zeros, the rest as before.
"$PYTHON" - "$TMP/exp-d1" <<'PY'
import sys
f = sys.argv[1]
b = bytearray(open(f, "rb").read())
for off in (2 << 20, 6 << 20):
    b[off:off + (1 << 20)] = bytes(1 << 20)
open(f, "wb").write(b)
PY
[ "$(nbd_sha256 d1)" = "$(file_sha256 "$TMP/exp-d1")" ] || fail "d1 does not read zeros where discarded"
# A later write to a discarded range copies nothing.
before=$(stat chunks_copied)
nbd_write_random live $((6 * M)) $M
[ "$(stat chunks_copied)" = "$before" ] || fail "a write to a discarded range was copied"
[ "$(nbd_sha256 d1)" = "$(file_sha256 "$TMP/exp-d1")" ] || fail "d1 changed after the write"
# Kept across a restart.
restart_server
[ "$(sc_field d1 discarded_bytes)" = $((2 * M)) ] || fail "the discard was not kept across a restart"
[ "$(nbd_sha256 d1)" = "$(file_sha256 "$TMP/exp-d1")" ] || fail "d1 is wrong after a restart"
sc delete --all > /dev/null
stop_server

# Without discard-snapshots=on a snapshot export refuses trims.
start_server "$TMP/disk" "$TMP/diff"
sc_create r1
if nbd_py r1 'h.trim(65536, 0)' 2>/dev/null; then
    fail "a trim on a snapshot export succeeded without discard-snapshots=on"
fi

# ---- live trim: copied first, then punched in the origin -------------------
nbd_save r1 "$TMP/exp-r1"
nbd_trim live 0 $M
nbd_zero live $((2 * M)) $M                    # zero may punch too
[ "$(nbd_sha256 r1)" = "$(file_sha256 "$TMP/exp-r1")" ] ||
    fail "r1 changed after a live trim and zero"
for off in 0 $((2 * M)); do
    "$PYTHON" - "$TMP/disk" $off <<'PY' || fail "the live trim/zero at $off did not punch the origin"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off = int(sys.argv[2])
try:
    hole = os.lseek(fd, off, os.SEEK_HOLE)
except OSError:
    sys.exit(1)
sys.exit(0 if hole == off else 1)
PY
done
stop_server
log "ok"
