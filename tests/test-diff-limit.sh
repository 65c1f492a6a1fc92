#!/bin/bash
# Tests the diff-area size limit: on-full=delete-oldest drops the oldest snapshots and every live write succeeds; on-full=fail-writes refuses writes that need a copy with ENOSPC and keeps every snapshot; surviving snapshots stay byte-exact; resize up and down (--force), and the limit survives a restart.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy

K=1024; M=$((1024 * K))
make_disk "$TMP/disk" 16M
cp "$TMP/disk" "$TMP/disk.orig"

# ---- bad configuration: a clear error, no server ---------------------
for bad in diff-max=0 diff-max=lots diff-max=0% diff-max=5000% diff-max=-1 \
           on-full=panic max-snapshots=0 max-snapshots=70000 \
           max-snapshots=12x discard-snapshots=maybe diff-max=16K; do
    if try_start_server "$TMP/disk" "$TMP/diff-bad" "$bad" 2>/dev/null; then
        fail "nbdkit started with $bad"
    fi
    key=${bad%%=*}
    tail -n 3 "$SERVER_LOG" | grep "error" | grep_all "$key" ||
        fail "the error for $bad does not name $key: $(tail -n 3 "$SERVER_LOG")"
done
rm -f "$TMP/diff-bad"

# ---- delete-oldest (the default) ------------------------------------
# 4 MiB = 64 slots of 64K: the journal's room leaves about 57 for data,
# so the fourth megabyte of copies must drop the oldest snapshot.
start_server "$TMP/disk" "$TMP/diff" diff-max=4M
[ "$(sc_info diff_max_bytes)" = $((4 * M)) ] || fail "info does not show diff-max"
[ "$(sc_info on_full)" = delete-oldest ] || fail "on-full is not delete-oldest by default"
for i in 1 2 3 4 5 6; do
    nbd_save live "$TMP/exp-s$i"
    sc_create "s$i"
    # Each epoch overwrites a different megabyte: 16 copies each.
    nbd_write_random live $(( (i - 1) * M )) $M
done
nbd_save live "$TMP/exp-live"
names=$(sc_names | tr '\n' ' ')
log "after 6 MiB of copies under a 4 MiB limit: $names"
case "$names" in
    "s1 "*|"s2 "*) fail "the oldest snapshots were not dropped: $names" ;;
esac
for n in $names; do
    [ "$(nbd_sha256 "$n")" = "$(file_sha256 "$TMP/exp-$n")" ] ||
        fail "surviving snapshot $n is not byte-exact"
done
[ "$(nbd_sha256 live)" = "$(file_sha256 "$TMP/exp-live")" ] ||
    fail "a live write was lost under delete-oldest"
dropped=$(sc_info dropped)
[ "$dropped" -ge 2 ] || fail "info says $dropped snapshots dropped, expected >= 2"
reason=$(sc_info last_drop_reason)
case "$reason" in *"diff area full"*) ;; *) fail "last drop reason: '$reason'" ;; esac
sc list > "$TMP/list.txt"
grep -q "^  s1 .*dropped by policy: diff area full" "$TMP/list.txt" ||
    fail "list does not show s1 dropped with its reason: $(cat "$TMP/list.txt")"
used=$(sc_info diff_used_bytes)
[ "$used" -le $((4 * M)) ] || fail "diff area uses $used bytes over its 4 MiB limit"
grep -q "snapshot s1 (id 1) deleted: dropped by policy: diff area full" "$SERVER_LOG" ||
    fail "the drop of s1 is not in the server log"

# The limit and the drop history survive a restart (no diff-max given).
stop_server
start_server "$TMP/disk" "$TMP/diff"
[ "$(sc_info diff_max_bytes)" = $((4 * M)) ] || fail "diff-max was not kept across a restart"
[ "$(sc_info dropped)" = "$dropped" ] || fail "the drop count was not kept across a restart"
sc list | grep_all "^  s1 " || fail "the drop history was not kept across a restart"

# ---- resize --------------------------------------------------------
# Down below the use: refused with a warning, nothing dropped.
before=$(sc_names | wc -l)
expect_cli_error "resize below the use" sc resize --max 1M
case "$CLI_ERR" in *warning*--force*) ;; *) fail "resize down without --force: '$CLI_ERR'" ;; esac
[ "$(sc_names | wc -l)" = "$before" ] || fail "a refused resize dropped snapshots"
expect_cli_error "resize below the minimum" sc resize --max 64K --force
expect_cli_error "resize to nonsense" sc resize --max 12Q
# With --force: the oldest go until it fits.
out=$(sc resize --max 2M --force) || fail "resize --max 2M --force failed"
log "resize --max 2M --force: $out"
case "$out" in *"dropped to fit"*) ;; *) fail "resize --force did not say what it dropped: $out" ;; esac
[ "$(sc_info diff_max_bytes)" = $((2 * M)) ] || fail "resize did not set 2 MiB"
[ "$(sc_info diff_used_bytes)" -le $((2 * M)) ] || fail "the diff area still uses more than 2 MiB"
[ "$(sc_names)" = s6 ] || fail "after the shrink, expected s6 alone, got: $(sc_names)"
for n in $(sc_names); do
    [ "$(nbd_sha256 "$n")" = "$(file_sha256 "$TMP/exp-$n")" ] ||
        fail "snapshot $n is wrong after the shrink"
done
# Up again, and as a percentage of the 16 MiB volume.
sc resize --max 50% > /dev/null || fail "resize --max 50% failed"
[ "$(sc_info diff_max_bytes)" = $((8 * M)) ] || fail "50% of 16 MiB is not 8 MiB"
sc resize --max unbounded > /dev/null || fail "resize --max unbounded failed"
[ "$(sc_info diff_max_bytes)" = 0 ] || fail "unbounded is not 0"
stop_server
# The offline checker knows the new records.
"$SHADOWCOPY_CLI" check "$TMP/diff" > "$TMP/check.out" ||
    fail "check of a diff area with drops and a limit failed: $(cat "$TMP/check.out")"
sc_off "$TMP/diff" list | grep_all "^  s1 " || fail "offline list does not show the drops"
[ "$(sc_off "$TMP/diff" info --json | json 'd["diff_max_bytes"]')" = 0 ] ||
    fail "offline info does not show the limit"
sc_off "$TMP/diff" resize --max 6M > /dev/null || fail "offline resize failed"
[ "$(sc_off "$TMP/diff" info --json | json 'd["diff_max_bytes"]')" = $((6 * M)) ] ||
    fail "offline resize did not record the limit"

# ---- a snapshot dropped while it is being read -------------------------
# Readers of the oldest snapshot get its data or an error, never the
# new data, while writers make the policy drop it.
cp "$TMP/disk.orig" "$TMP/disk"
rm -f "$TMP/diff"
start_server "$TMP/disk" "$TMP/diff" diff-max=3M
nbd_save live "$TMP/exp-old"
sc_create old
nbd_py live '
import nbd, threading
want = open(os.environ["E_X"], "rb").read()
bad = []
stop = threading.Event()
def reader():
    r = nbd.NBD(); r.set_export_name("old"); r.connect_unix(os.environ["E_S"])
    n = 0
    while not stop.is_set():
        off = (n * 262144) % len(want)
        n += 1
        try:
            got = r.pread(262144, off)
        except nbd.Error:
            return              # dropped: an error is the right answer
        if got != want[off:off + 262144]:
            bad.append(off)
            return
t = [threading.Thread(target=reader) for _ in range(2)]
for x in t: x.start()
data = os.urandom(8 << 20)
for off in range(0, 8 << 20, 256 << 10):
    h.pwrite(data[off:off + (256 << 10)], off)
stop.set()
for x in t: x.join()
if bad:
    sys.exit("a reader of the dropped snapshot got new data at %d" % bad[0])
' E_X="$TMP/exp-old" E_S="$NBD_SOCK" || fail "reading a snapshot while it was dropped"
sc_names | grep_all -x old && fail "old was not dropped by 8 MiB of writes under 3 MiB"
[ "$(sc_info snapshots)" = 0 ] || fail "snapshots left: $(sc_names)"
stop_server
"$SHADOWCOPY_CLI" check "$TMP/diff" > "$TMP/check.out" ||
    fail "check after the drop under readers: $(cat "$TMP/check.out")"

# ---- fail-writes ------------------------------------------------------
cp "$TMP/disk.orig" "$TMP/disk"
rm -f "$TMP/diff"
start_server "$TMP/disk" "$TMP/diff" diff-max=2M on-full=fail-writes
[ "$(sc_info on_full)" = fail-writes ] || fail "on-full=fail-writes not shown"
nbd_save live "$TMP/exp-a"
sc_create a
# 2 MiB holds about 25 copies: writing 4 MiB must fail part way, with
# ENOSPC, and keep the snapshot whole.
nbd_py live '
import nbd, errno
data = os.urandom(64 << 10)
old = open(os.environ["E_X"], "rb").read()
ok = refused = 0
for off in range(0, 4 << 20, 64 << 10):
    try:
        h.pwrite(data, off)
        ok += 1
    except nbd.Error as e:
        if e.errno != errno.ENOSPC and "ENOSPC" not in str(e):
            sys.exit("write at %d failed with %s, expected ENOSPC" % (off, e))
        refused += 1
        # Refused before the disk was touched.
        if h.pread(64 << 10, off) != old[off:off + (64 << 10)]:
            sys.exit("a refused write at %d changed the live volume" % off)
print("written %d, refused %d" % (ok, refused))
if ok == 0 or refused == 0:
    sys.exit("expected some writes to succeed and the rest to be refused")
# Chunks already copied in this epoch still take writes.
h.pwrite(data, 0)
# Reads keep working.
h.pread(1 << 20, 8 << 20)
' E_X="$TMP/exp-a" > "$TMP/fw.out" || fail "fail-writes did not behave: $(cat "$TMP/fw.out")"
log "fail-writes: $(cat "$TMP/fw.out")"
[ "$(sc_field a state)" = valid ] || fail "fail-writes invalidated the snapshot"
[ "$(nbd_sha256 a)" = "$(file_sha256 "$TMP/exp-a")" ] ||
    fail "snapshot a is not byte-exact under fail-writes"
[ "$(sc_info full_failures)" -gt 0 ] || fail "refused copies are not counted"
sc stats --json > "$TMP/stats.json" || fail "stats failed"
[ "$(json 'd["writes_refused"]' < "$TMP/stats.json")" -gt 0 ] ||
    fail "stats does not count refused writes: $(cat "$TMP/stats.json")"
# Growing the limit lets the writes through again.
sc resize --max 8M > /dev/null || fail "resize up failed"
nbd_write_random live $((2 * M)) $((2 * M))
[ "$(nbd_sha256 a)" = "$(file_sha256 "$TMP/exp-a")" ] ||
    fail "snapshot a is not byte-exact after the resize"
stop_server
log "ok"
