#!/bin/bash
# Tests that snapshot exports are read-only (advertised, and writes, trims and zeroes fail with EPERM) while "" and "live" stay writable.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

make_disk "$TMP/disk" 16M
start_server "$TMP/disk" "$TMP/diff"

# Snapshot the original content, then change the live disk.
nbd_save live "$TMP/before"
sc_create snap1
nbd_write_random live 0 1M
nbd_write_random live $((5 * 1024 * 1024 + 777)) 100000
origin_sum=$(file_sha256 "$TMP/disk")
snap_sum=$(nbd_sha256 snap1)
[ "$snap_sum" = "$(file_sha256 "$TMP/before")" ] ||
    fail "snapshot snap1 does not hold the content of the disk when it was taken"

# The snapshot export: read-only, and every kind of write sent anyway
# (strict mode off, so libnbd really sends it) fails with EPERM.
nbd_py snap1 '
import nbd
def must_fail(what, f):
    try:
        f()
    except nbd.Error as e:
        if e.errno != "EPERM":
            sys.exit("%s on a snapshot failed with %s (%s), expected EPERM"
                     % (what, e.errno, e.string))
        print("ok: %s refused: %s" % (what, e.string))
        return
    sys.exit("%s on a read-only snapshot export succeeded" % what)

if not h.is_read_only():
    sys.exit("snapshot export does not advertise read-only")
if h.get_size() != 16 << 20:
    sys.exit("snapshot export size %d, expected %d" % (h.get_size(), 16 << 20))
h.set_strict_mode(0)
old = h.pread(1 << 20, 0)
must_fail("pwrite", lambda: h.pwrite(b"x" * 4096, 0))
must_fail("unaligned pwrite", lambda: h.pwrite(b"y" * 1000, 12345))
must_fail("pwrite with FUA", lambda: h.pwrite(b"z" * 65536, 65536, nbd.CMD_FLAG_FUA))
must_fail("trim", lambda: h.trim(1 << 20, 0))
must_fail("zero", lambda: h.zero(1 << 20, 0))
must_fail("zero (no hole)", lambda: h.zero(8192, 4096, nbd.CMD_FLAG_NO_HOLE))
if h.pread(1 << 20, 0) != old:
    sys.exit("snapshot content changed after refused writes")
' || fail "read-only checks on the snapshot export failed"

# Opened the way a user would, with default strict mode, writes fail too.
if nbd_py snap1 'h.pwrite(b"a" * 512, 0)' 2>/dev/null; then
    fail "nbdsh pwrite to the snapshot export succeeded"
fi

[ "$(nbd_sha256 snap1)" = "$snap_sum" ] || fail "snapshot content changed"
[ "$(file_sha256 "$TMP/disk")" = "$origin_sum" ] ||
    fail "origin disk changed by writes to the snapshot export"
[ "$(sc_field snap1 state)" = valid ] || fail "snap1 no longer valid"

# The live exports, by both names, are writable, and the writes land.
for exp in "" live; do
    nbd_py "$exp" '
import nbd
if h.is_read_only():
    sys.exit("live export %r advertises read-only" % os.environ["E_X"])
data = os.urandom(70000)
h.pwrite(data, 3 << 20)
h.flush()
if h.pread(len(data), 3 << 20) != data:
    sys.exit("live export %r: read after write differs" % os.environ["E_X"])
h.zero(65536, 8 << 20)
if h.pread(65536, 8 << 20) != bytes(65536):
    sys.exit("live export %r: zeroed range does not read as zeros" % os.environ["E_X"])
h.trim(65536, 9 << 20)
' E_X="$exp" || fail "live export '$exp' is not writable"
done

# ... and none of that reached the snapshot.
[ "$(nbd_sha256 snap1)" = "$snap_sum" ] ||
    fail "snapshot content changed after writes to the live export"
stop_server
exit 0
