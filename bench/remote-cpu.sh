#!/bin/bash
# bench/remote-cpu.sh: where an origin on an NBD server spends its CPU.
#
#   bench/remote-cpu.sh [BUILDDIR [ROUNDS]]
#
# 4k random reads (fio nbd engine, QD 16, every block once) of a 64M
# origin, in three set-ups, ROUNDS (3) rounds in turn:
#   direct  `nbdkit file` over a Unix socket, read directly
#   nbd     shadowcopy with disk=nbd+unix:///?socket=... on that server
#           (origin-connections=$NBD_CONNS if set), one snapshot
#   local   shadowcopy on the origin file itself, one snapshot
# For each: IOPS, and per I/O the CPU time (task-clock) and the context
# switches of each server process (perf stat -p), which other people's
# load disturbs less than the rates.  Needs nbdkit, fio and perf.
set -euo pipefail
export PATH=/usr/bin:$PATH
build=$(cd "${1:-.}" && pwd)
rounds=${2:-3}
plugin=$build/.libs/nbdkit-shadowcopy-plugin.so
cli=$build/tools/shadowcopy
jobs=$(cd "$(dirname "$0")" && pwd)/jobs
size=64M
n=$((64 * 256))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/remote-cpu.XXXXXX")
rpid='' spid=''
stop () {
  [ -z "$spid" ] || { kill "$spid" 2>/dev/null || :; wait "$spid" 2>/dev/null || :; }
  [ -z "$rpid" ] || { kill "$rpid" 2>/dev/null || :; wait "$rpid" 2>/dev/null || :; }
  rpid='' spid=''
}
trap 'stop; rm -rf "$tmp"' EXIT
head -c "$size" /dev/urandom >"$tmp/base"

wait_sock () { for _ in $(seq 200); do [ -S "$1" ] && return; sleep 0.05; done; echo "no $1" >&2; exit 1; }

per_io () {     # perf stat -x, output: "USus CScs" per I/O
  awk -F, -v n="$n" '/task-clock/ { t = $1 } /context-sw/ { c = $1 }
    END { printf "%.1fus %.2fcs", t * 1000 / n, c / n }' "$1"
}

one () {
  local setup=$1 w=$tmp/$1 uri out
  mkdir -p "$w"; cp "$tmp/base" "$w/origin"
  if [ "$setup" != local ]; then
    nbdkit -f -U "$w/r.sock" file file="$w/origin" 2>>"$tmp/log" & rpid=$!
    wait_sock "$w/r.sock"
  fi
  if [ "$setup" = direct ]; then
    uri="nbd+unix:///?socket=$w/r.sock"
  else
    local disk="nbd+unix:///?socket=$w/r.sock" extra=()
    [ "$setup" = nbd ] || disk=$w/origin
    [ -z "${NBD_CONNS:-}" ] || extra=(origin-connections="$NBD_CONNS")
    nbdkit -f -U "$w/s.sock" "$plugin" "disk=$disk" diff="$w/diff" \
      chunk-size=64K "${extra[@]}" 2>>"$tmp/log" & spid=$!
    wait_sock "$w/s.sock"; wait_sock "$w/diff.sock"
    "$cli" -c "$w/diff.sock" create s1 >/dev/null
    uri="nbd+unix:///live?socket=$w/s.sock"
  fi
  local pids=()
  [ -z "$spid" ] || { perf stat -x, -e task-clock,context-switches -p "$spid" -o "$w/st-s" & pids+=($!); }
  [ -z "$rpid" ] || { perf stat -x, -e task-clock,context-switches -p "$rpid" -o "$w/st-r" & pids+=($!); }
  sleep 0.2
  BENCH_URI=$uri BENCH_SIZE=$size fio --output-format=terse --terse-version=3 \
    "$jobs/randread-4k.fio" >"$w/fio" 2>>"$tmp/log"
  stop
  wait "${pids[@]}" 2>/dev/null || :
  out=$(awk -F';' 'NF > 50 && $1 == 3 { printf "%.0f", $8 + $49 }' "$w/fio")
  printf '%-6s %7s IOPS  shadowcopy %-16s remote %s\n' "$setup" "$out" \
    "$([ -s "$w/st-s" ] && per_io "$w/st-s" || echo -)" \
    "$([ -s "$w/st-r" ] && per_io "$w/st-r" || echo -)"
  rm -rf "$w"
}

for ((r = 1; r <= rounds; r++)); do
  for s in direct nbd local; do one "$s"; done
done
