#!/usr/bin/env bash
# Where a first-write pass spends its time: the measurement behind "what
# bounds the first write" in docs/performance.md.  Alternated rounds of
# the nbdkit file plugin and of shadowcopy as the plugin's defaults have
# it (64K chunks, durability=safe, write-back on) with one snapshot, each
# on a fresh copy of a random origin: fio writes every 4k block once in
# random order (bench/jobs/randwrite-4k.fio, queue depth 16) and logs its
# rate every 100 ms.  Per round: the rate, the server's CPU per write,
# and the whole machine's busy and idle time per write (/proc/stat).
# Then the rate over time of the last round of each, and what the copies
# cost by themselves (bench/copy-cost.c).  On a virtual machine whose
# host takes freed memory back (free page reporting), the pages a pass
# touches for the first time cost much more, and the rate can swing by
# half from one round to the next (docs/performance.md).
#
#   bench/firstwrite-probe.sh [BUILDDIR]   (env: SIZE=512M REPEAT=3, and
#   BASE=FILE to use FILE as the origin instead of SIZE random bytes)
set -euo pipefail
export PATH="/usr/bin:$PATH"
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-.}" && pwd)
plugin="$build/.libs/nbdkit-shadowcopy-plugin.so"
cli="$build/tools/shadowcopy"
size=${SIZE:-512M}
repeat=${REPEAT:-3}
for t in fio nbdkit gcc; do
  command -v $t >/dev/null || { echo "$0: $t is required" >&2; exit 77; }
done
[ -x "$cli" ] && [ -f "$plugin" ] || { echo "$0: build first" >&2; exit 1; }

dir=$(mktemp -d)
pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
gcc -O2 -msse4.2 -Wall -Wextra -Werror "$src/bench/copy-cost.c" \
  -o "$dir/copy-cost"
if [ -n "${BASE:-}" ]; then
  cp "$BASE" "$dir/base"
  size=$(stat -c %s "$BASE")
else
  head -c "$(numfmt --from=iec "$size")" /dev/urandom > "$dir/base"
fi
writes=$(( $(numfmt --from=iec "$size") / 4096 ))

# Jiffies since boot: busy (not steal), then idle (with iowait), of all
# CPUs.
machine () { awk '/^cpu / { print $2+$3+$4+$7+$8, $5+$6 }' /proc/stat; }
# The server's user and system jiffies.
server_cpu () { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
per_write () { awk -v j="$1" -v n="$writes" -v hz="$(getconf CLK_TCK)" \
  'BEGIN { printf "%.1f", j * 1e6 / hz / n }'; }

# one_run SYSTEM ROUND: prints "SYSTEM IOPS SERVER BUSY IDLE" (us/write)
# and leaves the rate log in $dir/SYSTEM-ROUND.log.
one_run () {
  cp "$dir/base" "$dir/origin"
  rm -f "$dir/diff" "$dir/nbd.sock" "$dir/diff.sock"
  case $1 in
    file) nbdkit -f -U "$dir/nbd.sock" file file="$dir/origin" & ;;
    *) nbdkit -f -U "$dir/nbd.sock" "$plugin" disk="$dir/origin" \
         diff="$dir/diff" chunk-size=64K durability=safe & ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    [ -S "$dir/nbd.sock" ] && { [ "$1" = file ] || [ -S "$dir/diff.sock" ]; } &&
      break
    sleep 0.1
  done
  [ "$1" = file ] || "$cli" -c "$dir/diff.sock" create probe >/dev/null
  sync
  local c0 m0 c1 m1 iops
  c0=$(server_cpu "$pid"); m0=$(machine)
  iops=$(BENCH_URI="nbd+unix:///?socket=$dir/nbd.sock" BENCH_SIZE="$size" \
    fio --write_iops_log="$dir/$1-$2" --log_avg_msec=100 \
      --output-format=terse --terse-version=3 \
      "$src/bench/jobs/randwrite-4k.fio" 2>>"$dir/fio.err" |
    awk -F';' 'NF > 50 { print $49 }')
  c1=$(server_cpu "$pid"); m1=$(machine)
  [ -n "$iops" ] || { cat "$dir/fio.err" >&2; echo "$0: fio failed" >&2
                      exit 1; }
  mv "$dir/$1-$2_iops".*.log "$dir/$1-$2.log"
  kill "$pid"; wait "$pid" || true; pid=
  set -- "$1" "$iops" $m0 $m1
  echo "$1 $2 $(per_write $((c1 - c0))) $(per_write $(($5 - $3))) \
$(per_write $(($6 - $4)))"
}

median () { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for r in $(seq "$repeat"); do
  one_run file "$r"
  one_run shadowcopy "$r"
done > "$dir/runs"

echo "## A first-write pass, $size, $repeat alternated rounds (medians)"
echo
echo "| system | IOPS | server CPU | machine busy | machine idle |"
echo "| --- | ---: | ---: | ---: | ---: |"
for s in file shadowcopy; do
  row="| $s |"
  for f in 2 3 4 5; do
    v=$(awk -v s=$s -v f=$f '$1 == s { print $f }' "$dir/runs" | median)
    row="$row $v |"
  done
  echo "$row"
done
echo
echo "(CPU and idle time in us per write; the machine's is that of all its"
echo "CPUs, fio's, the kernel's threads and anything else running included,"
echo "steal not.  Each column's median is taken on its own, so a row may mix"
echo "rounds; with an even REPEAT it is the lower middle value.)"
echo
echo "## The rate over the pass, round $repeat (IOPS per 100 ms)"
echo
echo "(Row N: fio's Nth average, of the 100 ms ending about N x 100 ms into"
echo "the pass; fio logs no last, partial interval.)"
echo
echo "| ms | file | shadowcopy |"
echo "| ---: | ---: | ---: |"
join -a1 -a2 -e - -o 0,1.2,2.2 \
  <(awk -F', *' '{ printf "%05d %d\n", NR * 100, $2 }' \
      "$dir/file-$repeat.log") \
  <(awk -F', *' '{ printf "%05d %d\n", NR * 100, $2 }' \
      "$dir/shadowcopy-$repeat.log") |
  awk '{ printf "| %d | %s | %s |\n", $1, $2, $3 }'
echo
echo "## The copies alone (bench/copy-cost.c), three times each"
echo
# In a fence: the lines are long, and Markdown would join them.  A first
# run, not shown, warms up; then each setting comes first in turn.
"$dir/copy-cost" "$dir/base" "$dir" 17 > /dev/null
echo '```'
for g in 17 0 0 17 17 0; do "$dir/copy-cost" "$dir/base" "$dir" "$g"; done
echo '```'
