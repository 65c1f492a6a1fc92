#!/usr/bin/env bash
# shadowcopy benchmark: one volume with thousands of snapshots (issue 5).
# Measures, with 1 snapshot and with N (default 4096) snapshots:
#   - first-write cost: 4K writes each copying a 64K chunk, p50/p99/mean,
#     next to the same writes again (no copy);
#   - snapshot read: whole-export read of the oldest and the newest
#     snapshot, MiB/s;
#   - start-up time: nbdkit start until the control socket answers;
#   - RSS of the server after the creations and after a restart;
#   - the mean time of one CREATE over the control socket.
#
#   bench/many-snapshots.sh [BUILDDIR]      (part of make bench; make bench-many)
#
# Environment: BENCH_MANY_SNAPS=4096  BENCH_MANY_SIZE=256M
#   BENCH_MANY_WRITES=2000 (first writes measured)  BENCH_RESULTS=DIR
#   BENCH_TMPDIR=DIR.  The report goes to bench/results/DATE-many-snapshots.md.
set -euo pipefail
export PATH="/usr/bin:$PATH" LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib/common.sh"

build=$(cd "${1:-.}" && pwd)
PLUGIN="$build/.libs/nbdkit-shadowcopy-plugin.so"
CLI="$build/tools/shadowcopy"
[ -f "$PLUGIN" ] && [ -x "$CLI" ] ||
  die "no built shadowcopy in $build (run make there first)"
N=${BENCH_MANY_SNAPS:-4096}
SIZE=${BENCH_MANY_SIZE:-256M}
WRITES=${BENCH_MANY_WRITES:-2000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
PY="/usr/bin/python3 $BENCH_DIR/many-snapshots.py"

trap bench_cleanup EXIT
trap 'exit 130' INT
bench_mktemp
started=$SECONDS
ORIGIN=$BENCH_TMP/origin
DIFF=$BENCH_TMP/diff
SOCK=$BENCH_TMP/nbd.sock
CTL=$DIFF.sock
LOG=$BENCH_TMP/server.log

say "origin: $SIZE of random data, $N snapshots"
head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom >"$ORIGIN"
sync "$ORIGIN"

# start: nbdkit with max-snapshots=N; sets SERVER_PID and START_MS (until
# the control socket answers HELLO).
start () {
  local t0=${EPOCHREALTIME/./} i
  rm -f "$SOCK"
  nbdkit -f -U "$SOCK" "$PLUGIN" disk="$ORIGIN" diff="$DIFF" \
    max-snapshots="$N" >>"$LOG" 2>&1 &
  SERVER_PID=$!
  track "$SERVER_PID"
  for ((i = 0; i < 6000; i++)); do
    [ -S "$SOCK" ] && "$CLI" -c "$CTL" info >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "nbdkit exited: $(tail -3 "$LOG")"
    sleep 0.01
  done
  START_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
}
stop () { stop_pid "$SERVER_PID"; untrack "$SERVER_PID"; }
rss () { vm_kib "$SERVER_PID" VmRSS; }
median3 () { for _ in 1 2 3; do $PY "$@"; done | sort -n | sed -n 2p; }

# run LABEL SNAPSHOTS: one full measurement on a fresh diff area.
run () {
  local label=$1 n=$2 c
  rm -f "$DIFF"
  start
  eval "${label}_START0=$START_MS"
  c=$($PY create "$SOCK" "$CTL" "$n")
  eval "${label}_CREATE=(\$c)"
  eval "${label}_RSS_CREATED=$(rss)"
  c=$($PY first-write "$SOCK" "$CTL" "$WRITES" 7)
  eval "${label}_FW=(\$c)"
  # Reads: after a sync (no writeback under way), the median of 3.
  sync
  eval "${label}_READ_OLD=$(median3 read "$SOCK" m0)"
  eval "${label}_READ_NEW=$(median3 read "$SOCK" m$((n - 1)))"
  local info; info=$("$CLI" -c "$CTL" info --json)
  eval "${label}_COPIES=$(json_num "$info" copies)"
  eval "${label}_USED=$(json_num "$info" diff_used_bytes)"
  stop
  start
  eval "${label}_START=$START_MS"
  eval "${label}_RSS_START=$(rss)"
  stop
  say "  $label: done"
}

say "1 snapshot"
run one 1
say "$N snapshots"
run many "$N"

mkdir -p "$RESULTS"
out="$RESULTS/$(date +%F)-many-snapshots.md"
{
  echo "# Many snapshots: 1 vs $N snapshots of one volume"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
       "$(uname -r), nbdkit $(nbdkit --version | awk '{print $2}'), origin $SIZE" \
       "of random data on $(df -T "$BENCH_TMP" | awk 'NR==2 {print $2}'), chunk 64K, durability=safe."
  echo "Command: \`bench/many-snapshots.sh BUILDDIR\` (BENCH_MANY_SNAPS=$N," \
       "BENCH_MANY_WRITES=$WRITES); run in $((SECONDS - started)) s."
  echo
  echo "Each snapshot is created after one 4K write at a random offset, so"
  echo "the copy index holds copies of many epochs.  First writes: $WRITES"
  echo "4K writes to distinct chunks not written since the last snapshot"
  echo "(each copies 64K), then the same writes again (no copy).  Snapshot"
  echo "reads: 1 MiB requests over one connection, after a sync, median of 3;"
  echo "the oldest snapshot reads most chunks from the diff area."
  echo
  echo "| | 1 snapshot | $N snapshots |"
  echo "|---|---|---|"
  echo "| CREATE over the control socket, mean / p99 (us) | ${one_CREATE[0]} / ${one_CREATE[1]} | ${many_CREATE[0]} / ${many_CREATE[1]} |"
  echo "| first write (copies), p50 / p99 / mean (us) | ${one_FW[0]} / ${one_FW[1]} / ${one_FW[2]} | ${many_FW[0]} / ${many_FW[1]} / ${many_FW[2]} |"
  echo "| write again (no copy), p50 / p99 / mean (us) | ${one_FW[3]} / ${one_FW[4]} / ${one_FW[5]} | ${many_FW[3]} / ${many_FW[4]} / ${many_FW[5]} |"
  echo "| read oldest snapshot (MiB/s) | $one_READ_OLD | $many_READ_OLD |"
  echo "| read newest snapshot (MiB/s) | $one_READ_NEW | $many_READ_NEW |"
  echo "| start-up, empty diff area (ms) | $one_START0 | $many_START0 |"
  echo "| start-up with the snapshots (ms) | $one_START | $many_START |"
  echo "| RSS after the creations and writes (KiB) | $one_RSS_CREATED | $many_RSS_CREATED |"
  echo "| RSS after a restart (KiB) | $one_RSS_START | $many_RSS_START |"
  echo "| copies kept / diff area used (bytes) | $one_COPIES / $one_USED | $many_COPIES / $many_USED |"
} >"$out"
cat "$out" >&2
say "done: $out"
