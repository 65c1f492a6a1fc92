# bench/lib/verify.sh: what read verification costs (sourced by
# bench/run.sh; BENCH_PARTS "verify").
#
# Snapshot 4k random reads through the plugin as built, against the same
# reads through a bench-only build of the same sources with verification
# compiled out (-DSC_BENCH_NO_VERIFY, cow/copydata.c): that build exists
# only in the bench's temporary directory, never as a user-facing switch.
# Both serve the same set-up (1 snapshot, chunk $DEFAULT_CHUNK, every
# chunk copied by a first 4k random write pass), and their runs alternate
# (VERIFY_REPEAT rounds of one run each, which goes first alternating
# too), so load from other people's jobs falls on both; the medians and
# their ratio are reported.

# build_noverify: the plugin without verification, in $BENCH_TMP/noverify
# (a copy of the tracked source files as they are in the working tree).
build_noverify () {
  local src="$BENCH_DIR/.." dst="$BENCH_TMP/noverify"
  say "read verification: building the comparison plugin (-DSC_BENCH_NO_VERIFY)"
  rm -rf "$dst"
  mkdir -p "$dst"
  (cd "$src" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$dst"
  (
    cd "$dst"
    autoreconf -fi
    ./configure CPPFLAGS=-DSC_BENCH_NO_VERIFY
    make -j"$(nproc)" nbdkit-shadowcopy-plugin.la
  ) >"$BENCH_TMP/logs/noverify-build.log" 2>&1 ||
    die "building the comparison plugin failed: $BENCH_TMP/logs/noverify-build.log"
  NOVERIFY_PLUGIN="$dst/.libs/nbdkit-shadowcopy-plugin.so"
  [ -f "$NOVERIFY_PLUGIN" ] || die "no $NOVERIFY_PLUGIN"
}

verify_cost () {
  local rep variant plugin c0 c1 cpu id="sc-1-$DEFAULT_CHUNK$DUR_SUFFIX"
  VERIFY_REPEAT=${BENCH_VERIFY_REPEAT:-5}
  [ "$MODE" != quick ] || VERIFY_REPEAT=${BENCH_VERIFY_REPEAT:-3}
  VERIFY_SAMPLES=$BENCH_TMP/verify.tsv
  build_noverify
  : >"$VERIFY_SAMPLES"
  local order
  for ((rep = 1; rep <= VERIFY_REPEAT; rep++)); do
    # Which goes first alternates too: neither always follows the other.
    order="verified unverified"
    ((rep % 2)) || order="unverified verified"
    for variant in $order; do
      plugin=$PLUGIN
      [ "$variant" = verified ] || plugin=$NOVERIFY_PLUGIN
      say "read verification, run $rep/$VERIFY_REPEAT: $variant"
      PLUGIN=$plugin start_system "$id"
      run_fio "verify-fill-$variant-$rep" "$JOBS/randwrite-4k.fio" \
        "$LIVE_URI" "$SIZE_BYTES"
      settle
      c0=$(cpu_ticks "$SERVER_PID")
      run_fio "verify-$variant-$rep" "$JOBS/randread-4k.fio" "$SNAP_URI" \
        "$SIZE_BYTES"
      c1=$(cpu_ticks "$SERVER_PID")
      stop_system
      cpu=$(awk -v d=$((c1 - c0)) -v t="$CLK_TCK" -v n=$((SIZE_BYTES / 4096)) \
        'BEGIN { printf "%.2f", d * 1e6 / t / n }')
      printf '%s\t%s\t%s\t%s\t%s\n' "$variant" "$rep" "$FIO_IOPS" "$FIO_MIBS" \
        "$cpu" >>"$VERIFY_SAMPLES"
      say "  snapshot 4k random read: $FIO_IOPS IOPS, server CPU $cpu us/IO"
    done
  done
  VERIFY_ON=$(awk -F'\t' '$1 == "verified" { print $3 }' "$VERIFY_SAMPLES" | median)
  VERIFY_OFF=$(awk -F'\t' '$1 == "unverified" { print $3 }' "$VERIFY_SAMPLES" | median)
  VERIFY_RATIO=$(awk -v a="$VERIFY_ON" -v b="$VERIFY_OFF" \
    'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
  VERIFY_CPU_ON=$(awk -F'\t' '$1 == "verified" { print $5 }' "$VERIFY_SAMPLES" | median)
  VERIFY_CPU_OFF=$(awk -F'\t' '$1 == "unverified" { print $5 }' "$VERIFY_SAMPLES" | median)
  VERIFY_CPU_RATIO=$(awk -v a="$VERIFY_CPU_ON" -v b="$VERIFY_CPU_OFF" \
    'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
  say "  verified $VERIFY_ON IOPS, unverified $VERIFY_OFF IOPS: ${VERIFY_RATIO}x;" \
      "server CPU $VERIFY_CPU_ON vs $VERIFY_CPU_OFF us/IO: ${VERIFY_CPU_RATIO}x"
}

report_verify () {
  [ -s "${VERIFY_SAMPLES:-}" ] || return 0
  local met=NOT
  awk -v r="$VERIFY_RATIO" 'BEGIN { exit !(r >= 0.9) }' && met=met
  echo "## Read verification (issue 11)"
  echo
  echo "Snapshot 4k random reads (QD 16, every block once; 1 snapshot, chunk"
  echo "$DEFAULT_CHUNK, every chunk copied) through this build, which verifies"
  echo "every read against the copy's block checksums, and through the same"
  echo "sources built with verification compiled out (\`-DSC_BENCH_NO_VERIFY\`,"
  echo "a bench-only build). Runs alternate; median of $VERIFY_REPEAT each."
  echo
  echo "| plugin | median IOPS | median server CPU us/IO | runs (IOPS) |"
  echo "| --- | ---: | ---: | --- |"
  echo "| verified | $VERIFY_ON | $VERIFY_CPU_ON | $(awk -F'\t' '$1 == "verified" { printf "%s ", $3 }' "$VERIFY_SAMPLES") |"
  echo "| verification compiled out | $VERIFY_OFF | $VERIFY_CPU_OFF | $(awk -F'\t' '$1 == "unverified" { printf "%s ", $3 }' "$VERIFY_SAMPLES") |"
  echo
  echo "Ratio verified / unverified: **${VERIFY_RATIO}x** by rate (target >= 0.9x:"
  echo "$met), ${VERIFY_CPU_RATIO}x by server CPU per read (unverified / verified)."
}
