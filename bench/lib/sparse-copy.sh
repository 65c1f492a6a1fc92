# bench/lib/sparse-copy.sh: copying a snapshot of a mostly sparse disk
# (sourced by bench/run.sh; BENCH_PARTS "sparse-copy", issue 12).
#
# A sparse origin of SPARSE_SIZE (64G full, 8G quick) holding SPARSE_DATA
# (1G / 128M) of random data in 1 MiB pieces, one at a random place in
# each of SPARSE_DATA / 1M equal slices of the disk.  shadowcopy serves it
# (chunk $DEFAULT_CHUNK); a snapshot is taken, then one piece in 8 is
# overwritten on the live export, so that the snapshot reads some of its
# data from the diff area (as after a day of use) and the live export
# differs from it.  Measured: nbdcopy of the snapshot export and of the
# live export to a sparse file, alternating (which goes first alternates
# too), SPARSE_REPEAT (5 / 1) times each, the medians and their ratio;
# after each copy, a whole `nbdinfo --map` of that export (block status
# alone).  Once, for reference: nbdcopy --no-extents of the snapshot to
# null:, which is what any copy cost before snapshot exports answered
# block status (every byte read).  Sets SPARSE_* for report_sparse_copy.

# sparse_origin FILE: make the origin; the offsets of the pieces go to
# FILE.offsets, one per line.
sparse_origin () {
  truncate -s "$SPARSE_SIZE_BYTES" "$1"
  python3 - "$1" "$SPARSE_SIZE_BYTES" "$SPARSE_DATA_BYTES" <<'EOF'
import os, random, sys
path, size, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
piece = 1 << 20
n = data // piece
slice_pieces = size // n // piece
rng = random.Random(12)
with open(path, "r+b") as f, open(path + ".offsets", "w") as out:
    for i in range(n):
        off = (i * slice_pieces + rng.randrange(slice_pieces)) * piece
        f.seek(off)
        f.write(os.urandom(piece))
        out.write("%d\n" % off)
EOF
}

# sparse_timed NAME SOURCE TARGET [NBDCOPY-OPTION...]: one timed nbdcopy;
# appends "NAME seconds allocated-KiB" to the samples.
sparse_timed () {
  local name=$1 src=$2 dst=$3 t0 t1 kib=0
  shift 3
  [ "$dst" = null: ] || : >"$dst"
  sync
  t0=${EPOCHREALTIME/./}
  nbdcopy "$@" "$src" "$dst" 2>>"$BENCH_TMP/logs/sparse-copy.log" ||
    die "nbdcopy $* $src $dst failed: $(tail -3 "$BENCH_TMP/logs/sparse-copy.log")"
  t1=${EPOCHREALTIME/./}
  if [ "$dst" != null: ]; then
    kib=$(du -k "$dst" | cut -f1)
    rm -f "$dst"
  fi
  local s
  s=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')
  printf '%s\t%s\t%s\n' "$name" "$s" "$kib" >>"$SPARSE_SAMPLES"
  say "  $name: $s s, target $((kib / 1024)) MiB allocated"
}

# sparse_map NAME URI: time one whole `nbdinfo --map` (block status
# alone, no data); appends "map-NAME seconds extents" to the samples.
sparse_map () {
  local t0 t1 n
  t0=${EPOCHREALTIME/./}
  n=$(nbdinfo --map "$2" 2>>"$BENCH_TMP/logs/sparse-copy.log" | wc -l) ||
    die "nbdinfo --map $2 failed"
  t1=${EPOCHREALTIME/./}
  printf 'map-%s\t%s\t%s\n' "$1" \
    "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')" "$n" \
    >>"$SPARSE_SAMPLES"
}

sparse_copy () {
  local rep order which snap_uri target
  if [ "$MODE" = quick ]; then
    SPARSE_SIZE=${BENCH_SPARSE_SIZE:-8G} SPARSE_DATA=${BENCH_SPARSE_DATA:-128M}
    SPARSE_REPEAT=${BENCH_SPARSE_REPEAT:-1}
  else
    SPARSE_SIZE=${BENCH_SPARSE_SIZE:-64G} SPARSE_DATA=${BENCH_SPARSE_DATA:-1G}
    SPARSE_REPEAT=${BENCH_SPARSE_REPEAT:-5}
  fi
  SPARSE_SIZE_BYTES=$(numfmt --from=iec "$SPARSE_SIZE")
  SPARSE_DATA_BYTES=$(numfmt --from=iec "$SPARSE_DATA")
  [ $((SPARSE_DATA_BYTES % 1048576)) -eq 0 ] &&
    [ "$SPARSE_DATA_BYTES" -le $((SPARSE_SIZE_BYTES / 2)) ] ||
    die "BENCH_SPARSE_DATA must be a multiple of 1M, at most half of BENCH_SPARSE_SIZE"
  SPARSE_SAMPLES=$BENCH_TMP/sparse-copy.tsv
  : >"$SPARSE_SAMPLES"
  say "sparse copy: a $SPARSE_SIZE sparse origin holding $SPARSE_DATA in 1 MiB" \
      "pieces, chunk $DEFAULT_CHUNK, $SPARSE_REPEAT run(s) each"
  new_instance
  sparse_origin "$INST/origin"
  start_sc_server "$DEFAULT_CHUNK" "${DUR_SUFFIX#-}" "$BENCH_TMP/logs/sparse-copy.log"
  sc create snap >/dev/null
  snap_uri="nbd+unix:///snap?socket=$INST/nbd.sock"
  # One piece in 8 overwritten after the snapshot: copied to the diff area.
  SPARSE_OFFSETS="$INST/origin.offsets" nbdsh -u "$LIVE_URI" -c '
import os
offs = [int(x) for x in open(os.environ["SPARSE_OFFSETS"])]
for off in offs[::8]:
    h.pwrite(os.urandom(1 << 20), off)
h.flush()
' || die "overwriting the live export failed"
  SPARSE_COPIED=$(json_num "$(sc info --json)" copies)
  target="$INST/target"
  for ((rep = 1; rep <= SPARSE_REPEAT; rep++)); do
    order="snapshot live"
    ((rep % 2)) || order="live snapshot"
    for which in $order; do
      say "sparse copy, run $rep/$SPARSE_REPEAT: $which"
      if [ "$which" = snapshot ]; then
        sparse_timed snapshot "$snap_uri" "$target"
        sparse_map snapshot "$snap_uri"
      else
        sparse_timed live "$LIVE_URI" "$target"
        sparse_map live "$LIVE_URI"
      fi
    done
  done
  if [ "${BENCH_SPARSE_BASELINE:-1}" = 1 ]; then
    say "sparse copy, reference: every byte of the snapshot (--no-extents) to null:"
    sparse_timed snapshot-no-extents "$snap_uri" null: --no-extents
  fi
  stop_system
  rm -rf "$INST"
  SPARSE_SNAP=$(awk -F'\t' '$1 == "snapshot" { print $2 }' "$SPARSE_SAMPLES" | median)
  SPARSE_LIVE=$(awk -F'\t' '$1 == "live" { print $2 }' "$SPARSE_SAMPLES" | median)
  SPARSE_RATIO=$(awk -v a="$SPARSE_SNAP" -v b="$SPARSE_LIVE" \
    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  say "  snapshot $SPARSE_SNAP s, live $SPARSE_LIVE s: snapshot / live ${SPARSE_RATIO}x;" \
      "whole map: snapshot" \
      "$(awk -F'\t' '$1 == "map-snapshot" { print $2 }' "$SPARSE_SAMPLES" | median) s, live" \
      "$(awk -F'\t' '$1 == "map-live" { print $2 }' "$SPARSE_SAMPLES" | median) s"
}

report_sparse_copy () {
  [ -s "${SPARSE_SAMPLES:-}" ] || return 0
  local which med runs kib
  echo "## Copying a snapshot of a sparse disk (issue 12)"
  echo
  echo "A $SPARSE_SIZE sparse origin holding $SPARSE_DATA of random data in 1 MiB"
  echo "pieces scattered over the disk; shadowcopy with $DEFAULT_CHUNK chunks"
  echo "${DUR_SUFFIX:+(durability=${DUR_SUFFIX#-})}. After the snapshot, one piece in 8 was overwritten"
  echo "on the live export ($SPARSE_COPIED copies in the diff area), so the snapshot"
  echo "reads 7/8 of its data from the origin and 1/8 from the diff area. Each"
  echo "run: \`nbdcopy EXPORT FILE\` to an empty sparse file (nbdcopy's defaults:"
  echo "it asks block status and writes holes as holes), page cache written back"
  echo "before each run; runs alternate. Wall-clock seconds, median of"
  echo "$SPARSE_REPEAT."
  echo
  echo "| export | median s | data MiB/s | runs (s) | target allocated |"
  echo "| --- | ---: | ---: | --- | ---: |"
  for which in snapshot live; do
    med=$([ "$which" = snapshot ] && echo "$SPARSE_SNAP" || echo "$SPARSE_LIVE")
    runs=$(awk -F'\t' -v w="$which" '$1 == w { printf "%s ", $2 }' "$SPARSE_SAMPLES")
    kib=$(awk -F'\t' -v w="$which" '$1 == w { k = $3 } END { print k }' "$SPARSE_SAMPLES")
    echo "| $which | $med | $(awk -v s="$med" -v d="$SPARSE_DATA_BYTES" 'BEGIN { printf "%.0f", (s > 0 ? d / 1048576 / s : 0) }') | $runs| $(awk -v k="$kib" 'BEGIN { printf "%.0f MiB", k / 1024 }') |"
  done
  echo
  echo "Snapshot / live: **${SPARSE_RATIO}x** the time."
  echo
  echo "Block status alone, a whole \`nbdinfo --map\` of each export after each"
  echo "copy (median): snapshot $(awk -F'\t' '$1 == "map-snapshot" { print $2 }' "$SPARSE_SAMPLES" | median) s"
  echo "($(awk -F'\t' '$1 == "map-snapshot" { n = $3 } END { print n }' "$SPARSE_SAMPLES") extents),"
  echo "live $(awk -F'\t' '$1 == "map-live" { print $2 }' "$SPARSE_SAMPLES" | median) s"
  echo "($(awk -F'\t' '$1 == "map-live" { n = $3 } END { print n }' "$SPARSE_SAMPLES") extents)."
  local ref
  ref=$(awk -F'\t' '$1 == "snapshot-no-extents" { print $2 }' "$SPARSE_SAMPLES")
  if [ -n "$ref" ]; then
    echo
    echo "For reference, the same snapshot copied with \`nbdcopy --no-extents\` to"
    echo "\`null:\` (every byte read, as any copy of a snapshot export was before"
    echo "it answered block status): $ref s, once."
  fi
}
