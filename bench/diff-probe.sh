#!/usr/bin/env bash
# Changed-block tracking at scale (issue 12): build and run
# bench/diff-probe.c against a build tree's cow/ library (the diff of a
# million changed chunks through the cow API, and what a checkpoint's
# marks cost), then time `shadowcopy diff` on the same diff areas, offline
# (the CLI opens the file) and through a server (nbdkit with the plugin),
# and take the server's memory with and without the marks.
#
#   bench/diff-probe.sh [BUILDDIR]
#
# Environment: BENCH_DIFF_CHUNKS=1000000 (changed chunks)
#   BENCH_DIFF_STRIDE=2 (one changed chunk every STRIDE: every chunk its
#   own extent)  BENCH_DIFF_REPEAT=5 (the median is reported)
#   BENCH_DIFF_KEEP=0 (1: also `delete a --keep-checkpoint` offline, timed,
#   with the used bytes before and after; minutes at a million copies)
#   BENCH_RESULTS=DIR  BENCH_TMPDIR=DIR.  The report goes to stdout and
#   to bench/results/DATE-diff-probe.md.  Scratch space: about
#   4 KiB + 50 bytes per changed chunk (the slots are preallocated).
set -euo pipefail
export PATH="/usr/bin:$PATH" LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib/common.sh"
src=$(cd "$BENCH_DIR/.." && pwd)
build=$(cd "${1:-.}" && pwd)
PLUGIN="$build/.libs/nbdkit-shadowcopy-plugin.so"
CLI="$build/tools/shadowcopy"
[ -f "$PLUGIN" ] && [ -x "$CLI" ] && [ -f "$build/.libs/libshadowcow.a" ] ||
  die "no built shadowcopy in $build (run make there first)"
N=${BENCH_DIFF_CHUNKS:-1000000}
STRIDE=${BENCH_DIFF_STRIDE:-2}
REPEAT=${BENCH_DIFF_REPEAT:-5}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}

trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bench_mktemp
VOL=$BENCH_TMP/vol
mkdir -p "$VOL"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say "building bench/diff-probe.c"
gcc -O2 -Wall -Wextra -Werror -I"$build" -I"$src" "$src/bench/diff-probe.c" \
  "$build/.libs/libshadowcow.a" -o "$BENCH_TMP/diff-probe" \
  $(pkg-config --libs liburing) -pthread
say "diff-probe: $N changed chunks, one every $STRIDE, median of $REPEAT"
"$BENCH_TMP/diff-probe" "$VOL" "$N" "$STRIDE" "$REPEAT" | tee "$BENCH_TMP/probe.txt" >&2

# timed LABEL CMD...: run CMD REPEAT times, stdout to $BENCH_TMP/out; one
# row of the CLI table: median wall ms, the runs, what it said
ROWS=()
timed () {
  local label=$1 i t0 t1 ms=() said
  shift
  for ((i = 0; i < REPEAT; i++)); do
    t0=${EPOCHREALTIME/./}
    "$@" >"$BENCH_TMP/out"
    t1=${EPOCHREALTIME/./}
    ms+=("$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", d / 1000 }')")
  done
  if grep -q '^{' "$BENCH_TMP/out"; then
    said="$(json_num "$(tail -c 300 "$BENCH_TMP/out" | tr -d '\n')" extent-count) extents, $(stat -c %s "$BENCH_TMP/out") bytes of JSON"
  else
    said=$(head -1 "$BENCH_TMP/out")
  fi
  ROWS+=("| $label | $(printf '%s\n' "${ms[@]}" | median) | ${ms[*]} | $said |")
  say "  $label: $(printf '%s\n' "${ms[@]}" | median) ms ($said)"
}

# ---- offline: the CLI opens the diff-area file ----------------------------------

say "shadowcopy diff offline"
sco () { "$CLI" --diff "$1" "${@:2}"; }
timed "offline \`diff a b --summary\`" sco "$VOL/diff" diff a b --summary
timed "offline \`diff a b --json\`" sco "$VOL/diff" diff a b --json
timed "offline \`diff a --summary\` (to live)" sco "$VOL/diff" diff a --summary
timed "offline \`diff c --summary\` (checkpoint to live)" sco "$VOL/diff-ckpt" diff c --summary
timed "offline \`diff c --json\` (checkpoint to live)" sco "$VOL/diff-ckpt" diff c --json

# ---- online: nbdkit with the plugin ----------------------------------------------

SOCK=$BENCH_TMP/nbd.sock
SERVER_PID=
# serve DIFFAREA: nbdkit over the probe's origin and DIFFAREA; sets
# SERVER_PID and CTL, and SERVER_RSS (VmRSS, KiB, once it answers)
serve () {
  rm -f "$SOCK"
  nbdkit -f -U "$SOCK" "$PLUGIN" disk="$VOL/origin" diff="$1" \
    >>"$BENCH_TMP/logs/server.log" 2>&1 &
  SERVER_PID=$!
  track "$SERVER_PID"
  CTL=$1.sock
  wait_for_socket "$SOCK" "$SERVER_PID" "$BENCH_TMP/logs/server.log"
  wait_for_socket "$CTL" "$SERVER_PID" "$BENCH_TMP/logs/server.log"
  "$CLI" -c "$CTL" info >/dev/null
  SERVER_RSS=$(vm_kib "$SERVER_PID" VmRSS)
}
stop () { stop_pid "$SERVER_PID"; SERVER_PID=; }
scc () { "$CLI" -c "$CTL" "$@"; }

say "shadowcopy diff through a server"
serve "$VOL/diff"
timed "server \`diff a b --summary\`" scc diff a b --summary
timed "server \`diff a b --json\`" scc diff a b --json
timed "server \`diff a --summary\` (to live)" scc diff a --summary
timed "server \`diff a --json\` (to live)" scc diff a --json
stop
serve "$VOL/diff-empty"
RSS_EMPTY=$SERVER_RSS
stop
serve "$VOL/diff-ckpt"
RSS_CKPT=$SERVER_RSS
timed "server \`diff c --summary\` (checkpoint to live)" scc diff c --summary
timed "server \`diff c --json\` (checkpoint to live)" scc diff c --json
META=$(json_num "$(scc list --json | tr -d '\n')" meta-bytes)
stop
RSS_PER_MARK=$(awk -v a="$RSS_CKPT" -v b="$RSS_EMPTY" -v n="$N" \
  'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
say "  server VmRSS: $RSS_EMPTY KiB with checkpoint c and no marks," \
    "$RSS_CKPT KiB with $N marks: $RSS_PER_MARK B per mark; list meta-bytes $META"

KEEP_LINE=
if [ "${BENCH_DIFF_KEEP:-0}" = 1 ]; then
  say "delete a --keep-checkpoint (offline)"
  used0=$(json_num "$(sco "$VOL/diff" info --json)" diff_used_bytes)
  t0=${EPOCHREALTIME/./}
  sco "$VOL/diff" delete a --keep-checkpoint >/dev/null
  t1=${EPOCHREALTIME/./}
  used1=$(json_num "$(sco "$VOL/diff" info --json)" diff_used_bytes)
  kmeta=$(json_num "$(sco "$VOL/diff" list --json | tr -d '\n')" meta-bytes)
  KEEP_LINE="- \`delete a --keep-checkpoint\` offline (a held the $N copies): $(( (t1 - t0) / 1000 )) ms; diff area used $used0 -> $used1 bytes; \`list\` meta-bytes of a: $kmeta"
  say "  $KEEP_LINE"
  timed "offline \`diff a b --summary\` after keep-checkpoint" sco "$VOL/diff" diff a b --summary
fi

# ---- report --------------------------------------------------------------------------

mkdir -p "$RESULTS"
out="$RESULTS/$(date +%F)-diff-probe.md"
{
  echo "# Changed-block tracking at scale: $(date +%F)"
  echo
  echo "\`bench/diff-probe.sh\` from source commit \`$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)\`;"
  echo "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc),"
  echo "kernel $(uname -r), scratch on $(df -PT "$BENCH_TMP" | awk 'NR == 2 { print $2 }');"
  echo "load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "(a shared machine: the wall clock moves with other people's jobs, the"
  echo "probe's CPU time much less)."
  echo
  echo "## cow API (bench/diff-probe.c)"
  echo
  echo '```'
  cat "$BENCH_TMP/probe.txt"
  echo '```'
  echo
  echo "## CLI (wall clock of the whole command, ms; median of $REPEAT)"
  echo
  echo "| command | median ms | runs | result |"
  echo "| --- | ---: | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "## Checkpoint metadata in the server"
  echo
  echo "- nbdkit VmRSS once started: $RSS_EMPTY KiB on a diff area with checkpoint"
  echo "  c and no marks, $RSS_CKPT KiB with $N marks after c: **$RSS_PER_MARK bytes"
  echo "  per mark**"
  echo "- \`list --json\` meta-bytes of c: $META"
  [ -z "$KEEP_LINE" ] || echo "$KEEP_LINE"
} >"$out"
cat "$out"
say "report: $out"
