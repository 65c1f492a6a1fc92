# tests/functions.sh: helpers sourced by every shell integration test (bash).
#
# A test does:
#   . "$(dirname "$0")/functions.sh"
#   requires nbdsh nbdcopy ...
#   make_disk "$TMP/disk" 32M
#   start_server "$TMP/disk" "$TMP/diff" [chunk-size=4K ...]
#   ... sc create NAME / nbd_sha256 NAME / nbd_write_random live OFF LEN ...
#   stop_server
#
# Exit codes: 0 pass, 77 skip, 1 fail (99 for a broken test environment).
# Everything lives in a per-test temporary directory $TMP which is removed
# on exit (set KEEP_TMP=1 to keep it); every nbdkit started is killed.

if [ -z "${BASH_VERSION:-}" ]; then
    echo "tests/functions.sh: must be sourced from bash" >&2
    exit 99
fi

set -eu
set -o pipefail
# With set -e a failing command aborts the test: say where.
trap 'echo "FAIL: $TEST_NAME: line $LINENO: command failed (status $?): $BASH_COMMAND" >&2' ERR

# nbdsh needs Debian's python, with the nbd module from python3-libnbd.
export PATH="/usr/bin:/usr/sbin:/sbin:${PATH}"
export LC_ALL=C
PYTHON=/usr/bin/python3
NBDSH=/usr/bin/nbdsh

TEST_NAME=$(basename "$0" .sh)
tests_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${abs_top_srcdir:=$(cd "$tests_srcdir/.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"

log()        { echo "$TEST_NAME: $*" >&2; }
fail()       { echo "FAIL: $TEST_NAME: $*" >&2; exit 1; }
skip()       { echo "SKIP: $TEST_NAME: $*" >&2; exit 77; }
hard_error() { echo "ERROR: $TEST_NAME: $*" >&2; exit 99; }
# soft_fail MESSAGE: report a failure but go on testing; the test fails
# at exit.
_SOFT_FAILURES=0
soft_fail () {
    echo "FAIL: $TEST_NAME: $*" >&2
    _SOFT_FAILURES=$((_SOFT_FAILURES + 1))
}

# CMD | grep_all [OPTION...] PATTERN: what grep -q says of CMD's output,
# but reading all of it.  grep -q exits at its first match; CMD, writing
# on, then dies of SIGPIPE and, under pipefail, the pipeline fails at
# random although the line was there (test-tests-pipefail.sh).
grep_all () { grep "$@" >/dev/null; }

# requires PROGRAM...: skip the test unless every program is on PATH.
requires () {
    local p
    for p; do
        command -v "$p" >/dev/null 2>&1 || skip "required program '$p' not found"
    done
}

# requires_cmd COMMAND ARGS...: skip unless the command succeeds.
requires_cmd () {
    "$@" >/dev/null 2>&1 || skip "required command failed: $*"
}

requires_python_nbd () {
    [ -x "$PYTHON" ] || skip "$PYTHON not found"
    "$PYTHON" -c 'import nbd' 2>/dev/null ||
        skip "python3 module nbd (python3-libnbd) not found"
}

# The product under test.
: "${SHADOWCOPY_PLUGIN:=$abs_top_builddir/.libs/nbdkit-shadowcopy-plugin.so}"
: "${SHADOWCOPY_CLI:=$abs_top_builddir/tools/shadowcopy}"
# The CLI links libshadowcopy.so.0, so libtool makes tools/shadowcopy a
# wrapper script: gdb cannot run it, and under a low `ulimit -n` it
# hangs.  The build tree's CLI is run as the binary itself, with the
# build's library first on LD_LIBRARY_PATH (it has no RUNPATH).
if [ "$SHADOWCOPY_CLI" = "$abs_top_builddir/tools/shadowcopy" ] &&
   [ -x "$abs_top_builddir/tools/.libs/shadowcopy" ]; then
    SHADOWCOPY_CLI=$abs_top_builddir/tools/.libs/shadowcopy
    export LD_LIBRARY_PATH="$abs_top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -f "$SHADOWCOPY_PLUGIN" ] ||
    fail "plugin not found: SHADOWCOPY_PLUGIN=$SHADOWCOPY_PLUGIN (build first)"
[ -x "$SHADOWCOPY_CLI" ] ||
    fail "CLI not found: SHADOWCOPY_CLI=$SHADOWCOPY_CLI (build first)"
requires nbdkit
[ -x "$NBDSH" ] || skip "$NBDSH not found"
requires_python_nbd

# ---- temporary directory and cleanup --------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/shadowcopy-$TEST_NAME.XXXXXX") ||
    hard_error "mktemp -d failed"
# The servers' write-back logs (engine/writeback-log.c) go to a tmpfs
# directory of the test's own, so that a test finds its own and leaves
# none behind.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    SHADOWCOPY_WBLOG_DIR=$(mktemp -d "/dev/shm/shadowcopy-$TEST_NAME.XXXXXX") ||
        hard_error "mktemp -d in /dev/shm failed"
else
    SHADOWCOPY_WBLOG_DIR=$TMP/wblog
    mkdir -m 700 "$SHADOWCOPY_WBLOG_DIR" || hard_error "mkdir $SHADOWCOPY_WBLOG_DIR"
fi
export SHADOWCOPY_WBLOG_DIR
_WBLOG_TMP=$SHADOWCOPY_WBLOG_DIR        # (a test may unset the variable)

# kill9_server: SIGKILL the current server and reap it.
kill9_server () {
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || :
    _forget_pid "$SERVER_PID"
    SERVER_PID=
}

# wb_queued_then_killed OFFSET BYTE: with the journal's writes stalled
# (the fault file $SHADOWCOPY_TEST_IO_FAULTS), a 4 KiB write of BYTE at
# OFFSET of the live export (the first of its chunk since a snapshot) is
# acknowledged from the write-back queue, its data only in the write-back
# log; then the server is SIGKILLed and the stall lifted.
wb_queued_then_killed () {
    echo "journal-write stall" > "$SHADOWCOPY_TEST_IO_FAULTS"
    timeout 60 "$NBDSH" -u "$(uri live)" -c "
import sys, time
t = time.monotonic()
h.pwrite(bytes([$2]) * 4096, $1)
if time.monotonic() - t > 5:
    sys.exit('the write waited for its copy: not acknowledged from the queue')
" || fail "a write at $1 acknowledged from the write-back queue"
    kill9_server
    rm -f "$SHADOWCOPY_TEST_IO_FAULTS"
    [ -s "$(wblog_file)" ] || fail "no write-back log after the SIGKILL"
}

# wb_snapshot_then_killed DIFF OFFSET BYTE [KEY=VALUE...]: a server of
# $TMP/disk on DIFF that has written the disk (its stamp says so) takes
# snapshot s1, whose 4 KiB at OFFSET are kept in $TMP/s1-at-off; then a
# first write of BYTE at OFFSET after s1 is queued and the server killed
# (wb_queued_then_killed).  WBLOG is the log.
wb_snapshot_then_killed () {
    local diff=$1 off=$2 byte=$3
    shift 3
    start_server "$TMP/disk" "$diff" chunk-size=64K write-back=on "$@"
    nbd_py live "
h.pwrite(b'\x11' * 4096, 5 * 65536)
h.flush()" || fail "the first write"
    sc_create s1
    dd if="$TMP/disk" of="$TMP/s1-at-off" bs=4096 skip=$((off / 4096)) \
        count=1 status=none || hard_error "dd"
    wb_queued_then_killed "$off" "$byte"
    WBLOG=$(wblog_file)
}

# flush_fails_once WHAT: on the live export, a flush fails with EIO (a
# write acknowledged before it was lost), and the next one succeeds (it
# is reported once); or fail WHAT.
flush_fails_once () {
    nbd_py live "
import nbd
try:
    h.flush()
    sys.exit('the flush succeeded')
except nbd.Error as e:
    if '(EIO)' not in str(e):
        sys.exit('the flush failed with %s, not EIO' % e)
h.flush()" || fail "$1"
}

# expect_block EXPORT OFFSET BYTE WHAT: the export's 4 KiB at OFFSET all
# read BYTE (s1-at-off: what wb_snapshot_then_killed kept), or fail WHAT.
expect_block () {
    nbd_py "$1" "
want = open(os.environ['E_F'], 'rb').read() if '$3' == 's1-at-off' \
    else bytes([$3]) * 4096
got = h.pread(4096, $2)
if got != want:
    sys.exit('$1 reads %r... at $2, not %r...' % (got[:4], want[:4]))
" E_F="$TMP/s1-at-off" || fail "$4"
}

# wblog_file: the path of the one write-back log there (fails if none).
wblog_file () {
    local f=("$SHADOWCOPY_WBLOG_DIR"/*.wblog)
    [ -e "${f[0]}" ] || fail "no write-back log in $SHADOWCOPY_WBLOG_DIR"
    [ "${#f[@]}" -eq 1 ] || fail "more than one write-back log: ${f[*]}"
    echo "${f[0]}"
}

_SERVER_PIDS=()         # every nbdkit started and not yet reaped
# _forget_pid PID: it was reaped (its number may be reused): never kill it.
_forget_pid () {
    local p keep=()
    for p in "${_SERVER_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    _SERVER_PIDS=("${keep[@]}")
}
_MOUNTS=()              # mount points to unmount on exit

_cleanup () {
    local rc=$? pid m f i
    set +e
    if [ "$rc" -eq 0 ] && [ "$_SOFT_FAILURES" -gt 0 ]; then
        echo "$TEST_NAME: $_SOFT_FAILURES failure(s) reported above" >&2
        rc=1
    fi
    # 0 pass, 77 skip, 99 broken environment; anything else is a failure.
    case $rc in 0|1|77|99) ;; *) rc=1 ;; esac
    for pid in "${_SERVER_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_SERVER_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$TEST_NAME: nbdkit $pid ignored SIGTERM, killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    for m in "${_MOUNTS[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        for f in "$TMP"/*.log; do
            [ -s "$f" ] || continue
            echo "---- last lines of $(basename "$f") ----" >&2
            tail -n 40 "$f" >&2
        done
        echo "$TEST_NAME: exit status $rc" >&2
    fi
    if [ -n "${KEEP_TMP:-}" ]; then
        echo "$TEST_NAME: keeping $TMP and $_WBLOG_TMP" >&2
    else
        rm -rf "$TMP" "$_WBLOG_TMP"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- disks ----------------------------------------------------------

# make_disk FILE SIZE: a file of SIZE bytes (suffixes K, M allowed) of
# random data.
make_disk () {
    local file=$1 size
    size=$(to_bytes "$2")
    rm -f "$file"
    truncate -s "$size" "$file" || fail "truncate $file"
    head -c "$size" /dev/urandom | dd of="$file" conv=notrunc bs=1M \
        iflag=fullblock status=none || fail "filling $file"
    [ "$(stat -c %s "$file")" -eq "$size" ] || fail "$file has the wrong size"
}

# to_bytes SIZE: 4K -> 4096, 2M -> 2097152, 123 -> 123.
to_bytes () {
    case "$1" in
        *[kK]) echo $(( ${1%[kK]} * 1024 )) ;;
        *[mM]) echo $(( ${1%[mM]} * 1024 * 1024 )) ;;
        *[gG]) echo $(( ${1%[gG]} * 1024 * 1024 * 1024 )) ;;
        *) echo $(( $1 )) ;;
    esac
}

file_sha256 () { sha256sum < "$1" | cut -d' ' -f1; }

# ---- the server -----------------------------------------------------

NBD_SOCK=$TMP/nbd.sock  # the NBD socket of the current server
CTL=                    # its control socket
SERVER_PID=             # its pid
SERVER_LOG=$TMP/server.log
SERVER_ARGS=()          # the plugin arguments of the last start
SERVER_START_TIMEOUT=${SERVER_START_TIMEOUT:-10}

# _control_of DIFF ARGS...: the control socket the server will listen on.
_control_of () {
    local diff=$1 a c=
    shift
    for a; do
        case "$a" in control=*) c=${a#control=} ;; esac
    done
    [ -n "$c" ] && echo "$c" || echo "$diff.sock"
}

# try_start_server DISK DIFF [KEY=VALUE...]: start nbdkit with the plugin
# in the background, listening on $NBD_SOCK.  Waits up to
# $SERVER_START_TIMEOUT seconds for the pidfile, the NBD socket and the
# control socket.  Returns non-zero (with a message on stderr) if nbdkit
# exits or does not get ready; sets SERVER_PID and CTL.
try_start_server () {
    local disk=$1 diff=$2 pidfile=$TMP/nbdkit.pid pid i rc
    shift 2
    SERVER_ARGS=("disk=$disk" "diff=$diff" "$@")
    CTL=$(_control_of "$diff" "$@")
    rm -f "$NBD_SOCK" "$pidfile"
    echo "==== $(date +%T.%N) nbdkit -f -U $NBD_SOCK shadowcopy ${SERVER_ARGS[*]}" \
        >> "$SERVER_LOG"
    nbdkit -f ${NBDKIT_EXTRA_ARGS:-} -U "$NBD_SOCK" --pidfile "$pidfile" \
        "$SHADOWCOPY_PLUGIN" "${SERVER_ARGS[@]}" >> "$SERVER_LOG" 2>&1 &
    pid=$!
    _SERVER_PIDS+=("$pid")
    for ((i = 0; i < SERVER_START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0; wait "$pid" || rc=$?
            _forget_pid "$pid"
            echo "$TEST_NAME: nbdkit exited with status $rc during startup" \
                "(args: ${SERVER_ARGS[*]}); log:" >&2
            tail -n 20 "$SERVER_LOG" >&2
            SERVER_PID=
            return 1
        fi
        if [ -s "$pidfile" ] && [ -S "$NBD_SOCK" ] && [ -S "$CTL" ]; then
            [ "$(cat "$pidfile")" = "$pid" ] ||
                fail "pidfile says $(cat "$pidfile"), expected $pid"
            SERVER_PID=$pid
            return 0
        fi
        sleep 0.1
    done
    echo "$TEST_NAME: server not ready after ${SERVER_START_TIMEOUT}s:" \
        "pidfile=$([ -s "$pidfile" ] && echo yes || echo no)" \
        "nbd socket=$([ -S "$NBD_SOCK" ] && echo yes || echo no)" \
        "control socket $CTL=$([ -S "$CTL" ] && echo yes || echo no)" >&2
    kill -KILL "$pid" 2>/dev/null || :
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    SERVER_PID=
    return 1
}

# start_server DISK DIFF [KEY=VALUE...]: as try_start_server, failing the
# test if the server does not start.
start_server () {
    try_start_server "$@" || fail "could not start nbdkit shadowcopy $*"
}

# restart_server: stop_server then start again with the same arguments.
restart_server () {
    local args=("${SERVER_ARGS[@]}")
    stop_server
    start_server "${args[0]#disk=}" "${args[1]#diff=}" "${args[@]:2}"
}

# stop_server: SIGTERM the current server, wait up to 10 s for it to
# exit, fail if it does not exit or exits with a non-zero status.
stop_server () {
    local pid=$SERVER_PID i rc
    [ -n "$pid" ] || fail "stop_server: no server running"
    kill -TERM "$pid" 2>/dev/null || fail "stop_server: nbdkit $pid is not running"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" || :
        wait "$pid" 2>/dev/null || :
        _forget_pid "$pid"
        SERVER_PID=
        fail "nbdkit $pid did not exit within 10 s of SIGTERM"
    fi
    rc=0; wait "$pid" || rc=$?
    _forget_pid "$pid"
    SERVER_PID=
    echo "==== $(date +%T.%N) nbdkit $pid exited with status $rc" >> "$SERVER_LOG"
    [ "$rc" -eq 0 ] || fail "nbdkit exited with status $rc after SIGTERM (not a clean stop)"
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
        fail "sanitizer report in the server log"
    fi
}

# server_alive: fail unless the current server is still running.
server_alive () {
    [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null ||
        fail "nbdkit is no longer running${1:+ ($1)}"
}

# ---- NBD clients ----------------------------------------------------

# uri EXPORT: the NBD URI of an export of the current server.
uri () { echo "nbd+unix:///${1}?socket=${NBD_SOCK}"; }

# nbd_sha256 EXPORT: sha256 of the whole export (via nbdcopy).
nbd_sha256 () {
    local out
    out=$(nbdcopy "$(uri "$1")" - | sha256sum) ||
        fail "nbdcopy of export '$1' failed"
    echo "${out%% *}"
}

# nbd_save EXPORT FILE: copy the whole export into FILE.
nbd_save () {
    nbdcopy "$(uri "$1")" - > "$2" || fail "nbdcopy of export '$1' to $2 failed"
}

# nbd_py EXPORT CODE [ENV=VALUE...]: run python CODE in nbdsh connected
# to EXPORT (handle h; os imported).  Extra arguments are put in the
# environment as E_<NAME>.
nbd_py () {
    local exp=$1 code=$2
    shift 2
    env "$@" "$NBDSH" -u "$(uri "$exp")" -c "import os, sys
$code"
}

# nbd_pwrite_file EXPORT OFFSET FILE: write FILE's content at OFFSET.
nbd_pwrite_file () {
    nbd_py "$1" 'h.pwrite(open(os.environ["E_F"], "rb").read(), int(os.environ["E_O"]))' \
        E_O="$2" E_F="$3" || fail "writing $3 to '$1' at $2 failed"
}

# nbd_pread_file EXPORT OFFSET COUNT FILE: read COUNT bytes into FILE.
nbd_pread_file () {
    nbd_py "$1" '
off, n = int(os.environ["E_O"]), int(os.environ["E_N"])
with open(os.environ["E_F"], "wb") as f:
    while n > 0:
        k = min(n, 32 << 20)
        f.write(h.pread(k, off))
        off += k; n -= k' E_O="$2" E_N="$3" E_F="$4" ||
        fail "reading $3 bytes at $2 from '$1' failed"
}

# nbd_write_random EXPORT OFFSET COUNT [SAVEFILE]: write COUNT random
# bytes at OFFSET (keeping a copy in SAVEFILE if given).
nbd_write_random () {
    local f=${4:-$TMP/.random.$$}
    head -c "$3" /dev/urandom > "$f"
    nbd_pwrite_file "$1" "$2" "$f"
    [ -n "${4:-}" ] || rm -f "$f"
}

# nbd_zero EXPORT OFFSET COUNT / nbd_trim EXPORT OFFSET COUNT
nbd_zero () {
    nbd_py "$1" 'h.zero(int(os.environ["E_N"]), int(os.environ["E_O"]))' \
        E_O="$2" E_N="$3" || fail "zero of $3 bytes at $2 on '$1' failed"
}
nbd_trim () {
    nbd_py "$1" 'h.trim(int(os.environ["E_N"]), int(os.environ["E_O"]))' \
        E_O="$2" E_N="$3" || fail "trim of $3 bytes at $2 on '$1' failed"
}

# nbd_size EXPORT
nbd_size () { nbd_py "$1" 'print(h.get_size())' || fail "cannot open export '$1'"; }

# cmp_files EXPECTED ACTUAL WHAT: fail with the first differing offset.
# Change the byte at OFFSET of qcow2 image FILE through QEMU (a write
# that allocates in FILE, as damage a backing chain must show): to one
# more than it was, since any fixed value is already there in 1 of 256
# random images.
qcow2_flip () {
    local b out
    b=$(qemu-io -r -f qcow2 -c "read -v $2 1" "$1" | awk 'NR == 1 { print $2 }')
    [ -n "$b" ] || fail "qemu-io could not read byte $2 of $1"
    out=$(qemu-io -f qcow2 -c "write -P $(( (0x$b + 1) % 256 )) $2 1" "$1" 2>&1)
    echo "$out" | grep_all "^wrote 1/1 bytes" ||
        fail "qemu-io could not write byte $2 of $1: $out"
}

cmp_files () {
    local out
    out=$(cmp "$1" "$2" 2>&1) && return 0
    fail "$3: contents differ: $out"
}

# ---- the CLI --------------------------------------------------------

# sc ARGS...: the CLI talking to the current server's control socket.
sc () { "$SHADOWCOPY_CLI" -c "$CTL" "$@"; }
# sc_off DIFF ARGS...: the CLI working offline on a diff-area file.
sc_off () { local d=$1; shift; "$SHADOWCOPY_CLI" --diff "$d" "$@"; }

# sc_create NAME: create a snapshot, check the CLI printed its name.
sc_create () {
    local out
    out=$(sc create "$1") || fail "shadowcopy create $1 failed (exit $?)"
    [ "$out" = "$1" ] || fail "shadowcopy create $1 printed '$out', expected '$1'"
}

# json EXPR: evaluate the python expression EXPR on the JSON document on
# stdin (bound to d) and print the result (lists one item per line).
json () {
    "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
r = eval(sys.argv[1])
if isinstance(r, (list, tuple)):
    for x in r: print(x)
elif isinstance(r, bool):
    print("true" if r else "false")
elif r is not None:
    print(r)' "$1"
}

# sc_info KEY: a field of `shadowcopy info --json` from the running server.
sc_info () {
    local out
    out=$(sc info --json) || fail "shadowcopy info --json failed"
    printf '%s\n' "$out" | json "d[\"$1\"]" ||
        fail "shadowcopy info --json: no key '$1' in: $out"
}

# sc_names: the snapshot names listed by the running server, in order.
sc_names () {
    local out
    out=$(sc list --json) || fail "shadowcopy list --json failed"
    printf '%s\n' "$out" | json '[s["name"] for s in d]' ||
        fail "shadowcopy list --json: unexpected output: $out"
}

# sc_field NAME KEY: a field of snapshot NAME in `list --json`.
sc_field () {
    local out
    out=$(sc list --json) || fail "shadowcopy list --json failed"
    printf '%s\n' "$out" |
        json "[s.get(\"$2\") for s in d if s[\"name\"] == \"$1\"][0]" ||
        fail "snapshot '$1' (field $2) not in: $out"
}

# same_snapshot_lists A B KEY...: whether the `shadowcopy list --json`
# outputs in files A and B list the same snapshots, in the same order,
# with the same KEYs; if not, both are shown on stderr.
same_snapshot_lists () {
    local a=$1 b=$2
    shift 2
    "$PYTHON" -c '
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
keys = sys.argv[3:]
k = lambda l: [tuple(s[key] for key in keys) for s in l]
if k(a) != k(b):
    sys.exit("snapshot lists differ in %s:\n  %s\n  %s" % (", ".join(keys), k(a), k(b)))
' "$a" "$b" "$@"
}

# expect_cli_error WHAT CMD ARGS...: CMD must exit non-zero (not by a
# signal) with nothing on stdout and exactly one non-empty line on stderr.
# The stderr line is left in $CLI_ERR.  A failure is reported with
# soft_fail: the test goes on and fails at exit.
expect_cli_error () {
    local what=$1 rc out errf=$TMP/.cli.err
    shift
    rc=0; out=$("$@" 2>"$errf") || rc=$?
    CLI_ERR=$(cat "$errf")
    if [ "$rc" -eq 0 ]; then
        soft_fail "$what: '$*' succeeded (stdout: $out)"
    elif [ "$rc" -ge 126 ]; then
        soft_fail "$what: '$*' died with status $rc: $CLI_ERR"
    elif [ -n "$out" ]; then
        soft_fail "$what: '$*' printed on stdout: $out"
    elif [ "$(wc -l < "$errf")" -ne 1 ] || [ -z "$CLI_ERR" ]; then
        soft_fail "$what: '$*' should print exactly one line on stderr, got:
$CLI_ERR"
    else
        log "ok, $what: $CLI_ERR"
    fi
}

# live_ext4_mount DIR: the live export through nbdfuse (on $TMP/fuse) and
# a loop device, made ext4 and mounted on DIR.  Sets LOOP and FUSE_PID;
# live_ext4_umount undoes it (in a cleanup trap).
live_ext4_mount () {
    LIVE_MNT=$1
    FUSE=$TMP/fuse
    mkdir -p "$FUSE"
    nbdfuse -P "$TMP/fuse.pid" "$FUSE/disk" "$(uri live)" >"$TMP/nbdfuse.log" 2>&1 &
    FUSE_PID=$!
    for ((i = 0; i < 100; i++)); do [ -s "$TMP/fuse.pid" ] && break; sleep 0.1; done
    [ -s "$TMP/fuse.pid" ] || fail "nbdfuse did not start: $(cat "$TMP/nbdfuse.log")"
    LOOP=$(losetup -f --show "$FUSE/disk") || fail "losetup of the live export failed"
    mkfs.ext4 -q -F "$LOOP" || fail "mkfs.ext4 failed"
    mount "$LOOP" "$LIVE_MNT" || fail "mount of the live filesystem failed"
}

live_ext4_umount () {
    [ -n "${LIVE_MNT:-}" ] && mountpoint -q "$LIVE_MNT" && umount "$LIVE_MNT"
    [ -n "${LOOP:-}" ] && losetup -d "$LOOP"
    [ -n "${FUSE:-}" ] && mountpoint -q "$FUSE" && fusermount3 -u "$FUSE"
    [ -n "${FUSE_PID:-}" ] && wait "$FUSE_PID" 2>/dev/null
    return 0
}

# mount_state_cleanup: what `shadowcopy mount` left of this test (for a
# cleanup trap): $TMP/mnt unmounted, its loop devices detached, the
# nbdfuse mounts under $SHADOWCOPY_STATE_DIR ($TMP/state) unmounted.
mount_state_cleanup () {
    local d l
    mountpoint -q "$TMP/mnt" && umount "$TMP/mnt"
    for l in $(losetup -a | grep "$TMP" | cut -d: -f1); do losetup -d "$l"; done
    for d in "$TMP"/state/mounts/*.fuse; do
        [ -d "$d" ] && fusermount3 -u "$d" 2>/dev/null
    done
    return 0
}
