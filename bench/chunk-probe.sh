#!/usr/bin/env bash
# First-pass copy-on-write rate by chunk size: the measurement behind the
# default chunk size (docs/design.md).  For each chunk size, and once with
# no snapshot as the baseline, it serves a copy of a random-filled origin,
# creates one snapshot, and writes every 4k block once in random order
# (fio nbd engine, queue depth 16).  Repeated REPEAT times; prints medians.
#
#   bench/chunk-probe.sh [BUILDDIR]     (env: SIZE=512M REPEAT=3 SIZES="4K ...")
set -euo pipefail
export PATH="/usr/bin:$PATH"
build=$(cd "${1:-.}" && pwd)
plugin="$build/.libs/nbdkit-shadowcopy-plugin.so"
cli="$build/tools/shadowcopy"
size=${SIZE:-512M}
repeat=${REPEAT:-3}
sizes=${SIZES:-"4K 16K 64K 256K 1M"}
for t in fio nbdkit; do
  command -v $t >/dev/null || { echo "$0: $t is required" >&2; exit 77; }
done
[ -x "$cli" ] && [ -f "$plugin" ] || { echo "$0: build first" >&2; exit 1; }

dir=$(mktemp -d)
pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
head -c "$(numfmt --from=iec "$size")" /dev/urandom > "$dir/base"

# one_run CHUNK SNAPSHOTS -> IOPS
one_run () {
  cp "$dir/base" "$dir/origin"
  rm -f "$dir/diff" "$dir/nbd.sock"
  nbdkit -f -U "$dir/nbd.sock" -P "$dir/pid" "$plugin" \
    disk="$dir/origin" diff="$dir/diff" chunk-size="$1" &
  pid=$!
  for _ in $(seq 100); do [ -S "$dir/diff.sock" ] && break; sleep 0.1; done
  [ "$2" = 0 ] || "$cli" -c "$dir/diff.sock" create probe >/dev/null
  fio --name=first-pass --ioengine=nbd \
    --uri="nbd+unix:///live?socket=$dir/nbd.sock" --rw=randwrite --bs=4k \
    --iodepth=16 --size="$size" --randrepeat=0 \
    --output-format=terse --terse-version=3 2>/dev/null |
    awk -F';' 'NF > 50 { print $49 }'
  kill "$pid"; wait "$pid" || true; pid=
}

median () { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "| chunk size | first-pass 4k random writes (IOPS, median of $repeat) |"
echo "| --- | --- |"
base=$(for _ in $(seq "$repeat"); do one_run 64K 0; done | median)
echo "| no snapshot (baseline) | $base |"
for cs in $sizes; do
  m=$(for _ in $(seq "$repeat"); do one_run "$cs" 1; done | median)
  echo "| $cs | $m ($(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')) |"
done
