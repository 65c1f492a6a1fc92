#!/bin/bash
# Tests a backup whose target filesystem fills up (a small tmpfs): it fails with one clear line, keeps TARGET.partial and its resume state and leaves no TARGET; once there is room, the same command with --resume completes it, reading only the rest. Skips (77) where a tmpfs cannot be mounted.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp mount umount strace

M=$((1024 * 1024))
SIZE=$((128 * M))
SMALL=$TMP/small
mkdir "$SMALL"
# 110 MiB: full after about 7 s of copy at 16 MiB/s, past the first
# checkpoint (5 s).
mount -t tmpfs -o size=110M shadowcopy-test "$SMALL" 2>/dev/null ||
    skip "cannot mount a tmpfs (not root, or no permission): no full filesystem to test with"
_MOUNTS+=("$SMALL")

make_disk "$TMP/disk" 128M
# 16 MiB/s (62 ms per 1 MiB read, one at a time; see test-backup-resume.sh).
NBDKIT_EXTRA_ARGS="-t 1 --filter=delay" start_server "$TMP/disk" "$TMP/diff" \
    rdelay=62ms
sc_create s1
backup () { sc backup --nbd-socket "$NBD_SOCK" "$@"; }

# Under strace, to know which write failed: the message names its offset.
rc=0; strace -f -qq -o "$TMP/writes" -e trace=pwrite64 -e signal=none \
    "$SHADOWCOPY_CLI" -c "$CTL" backup --nbd-socket "$NBD_SOCK" s1 \
    --to "$SMALL/full" > /dev/null 2> "$TMP/enospc.err" || rc=$?
[ "$rc" = 1 ] || fail "a full target: exit $rc: $(cat "$TMP/enospc.err")"
[ "$(wc -l < "$TMP/enospc.err")" = 1 ] ||
    fail "a full target: more than one line: $(cat "$TMP/enospc.err")"
grep -q "No space left on device.*is kept: run the same command with --resume" \
    "$TMP/enospc.err" || fail "a full target: $(cat "$TMP/enospc.err")"
failed_at=$(sed -n 's/.*pwrite64([0-9]*, .*, [0-9]*, \([0-9]*\)) = -1 ENOSPC.*/\1/p' "$TMP/writes" | head -n 1)
[ -n "$failed_at" ] || fail "no write failed with ENOSPC under strace: $(tail -n 3 "$TMP/writes")"
# (A 1 MiB write may be cut short by the kernel and go on from there: the
# write named is the one whose range holds the call that failed.)
named=$(sed -n 's/.*cannot write .* at \([0-9]*\): No space left on device.*/\1/p' "$TMP/enospc.err")
[ -n "$named" ] && [ "$named" -le "$failed_at" ] && [ "$failed_at" -lt $((named + M)) ] ||
    fail "the message does not name the write that failed (at $failed_at): $(cat "$TMP/enospc.err")"
log "ok, a full target: $(cat "$TMP/enospc.err")"
[ -f "$SMALL/full.partial" ] && [ -f "$SMALL/full.resume" ] ||
    fail "a full target: .partial or .resume not kept"
[ ! -e "$SMALL/full" ] && [ ! -e "$SMALL/full.manifest.json" ] ||
    fail "a full target: a TARGET was left"

# Room again; the rest at full speed.
mount -o remount,size=300M "$SMALL" || fail "cannot grow the tmpfs"
stop_server
start_server "$TMP/disk" "$TMP/diff"
backup s1 --to "$SMALL/full" --resume --json > "$TMP/resume.json" ||
    fail "--resume after the target had room again failed"
[ "$(json 'd["resumed"]' < "$TMP/resume.json")" = true ] ||
    fail "not resumed: $(cat "$TMP/resume.json")"
now=$(json 'd["this-run"]["bytes-read"]' < "$TMP/resume.json")
[ "$now" -lt "$SIZE" ] || fail "--resume read $now bytes again of $SIZE"
nbd_save s1 "$TMP/s1.img"
cmp "$TMP/s1.img" "$SMALL/full" || fail "the resumed backup differs from s1"
sc verify "$SMALL/full" > /dev/null || fail "verify of the resumed backup failed"
[ ! -e "$SMALL/full.partial" ] && [ ! -e "$SMALL/full.resume" ] ||
    fail ".partial or .resume left after the backup"
log "ok, resumed from byte $(json 'd["resumed-from"]' < "$TMP/resume.json"), $now bytes read again"

stop_server
exit 0
