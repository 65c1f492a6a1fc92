# bench/lib/memscale.sh: memory and rates as the copies grow (issue 17;
# sourced by bench/run.sh, part `mem-scale`).
#
# For each count N in MEMSCALE_COPIES: a sparse origin of 2N chunks
# (MEMSCALE_CHUNK), one snapshot, and N copies (chunks 0 to N-1) recorded
# offline by bench/copies-probe.c (slots left unwritten, checksums of
# zeros, so snapshot reads verify); then nbdkit with the plugin on it
# (durability=safe, and index-cache=MEMSCALE_CACHE when the plugin has
# that key; without it, today's index in RAM: the "before").  Measured:
# the start-up time (launch to the control socket), VmRSS once started,
# the rate of first writes (4k random, QD16, MEMSCALE_IOS distinct blocks
# spread over the N chunks not yet copied), the rate of snapshot reads
# (the same over the N copied chunks, read from the snapshot), and VmRSS
# and VmHWM after both.

MEMSCALE_ROWS='' MEMSCALE_SKIP='' MEMSCALE_INDEX='' MEMSCALE_CACHED=''

# memscale_job NAME RW URI OFFSET SIZE IOS: one region-4k.fio run
memscale_job () {
  run_fio "memscale-$1" "$JOBS/region-4k.fio" "$3" "$5" BENCH_RW="$2" \
    BENCH_OFFSET="$4" BENCH_IOS="$6"
}

memscale () {
  local n cs ios t0 start_ms rss0 rss1 hwm fw sr log sock
  MEMSCALE_ROWS="$BENCH_TMP/memscale-rows.tsv"
  : >"$MEMSCALE_ROWS"
  if ! copies_probe_build; then
    MEMSCALE_SKIP=$SKIP_WHY
    say "mem-scale: skipped: $MEMSCALE_SKIP"
    return 0
  fi
  SC_EXTRA_KEYS=()
  if plugin_has_key index-cache; then
    SC_EXTRA_KEYS=("index-cache=$MEMSCALE_CACHE")
    MEMSCALE_CACHED=1
    MEMSCALE_INDEX="the copy map on disk, index-cache=$MEMSCALE_CACHE"
  else
    MEMSCALE_INDEX="today's index in RAM (the plugin has no index-cache= key)"
  fi
  cs=$(numfmt --from=iec "$MEMSCALE_CHUNK")
  say "mem-scale: ${MEMSCALE_COPIES_LIST[*]} copies of $MEMSCALE_CHUNK chunks recorded in $MEMSCALE_ORDER order; $MEMSCALE_INDEX"
  for n in "${MEMSCALE_COPIES_LIST[@]}"; do
    ios=$((MEMSCALE_IOS < n ? MEMSCALE_IOS : n))
    new_instance
    COPIES_PROBE_ORDER=$MEMSCALE_ORDER copies_probe "$INST" "$n" $((2 * n)) "$cs" 1
    log="$BENCH_TMP/logs/memscale-$n.log"
    sock="$INST/nbd.sock"
    t0=${EPOCHREALTIME/./}
    SC_START_TIMEOUT=900 start_sc_server "$MEMSCALE_CHUNK" safe "$log"
    start_ms=$(awk -v u="$(us_since "$t0")" 'BEGIN { printf "%.0f", u / 1000 }')
    rss0=$(vm_kib "$SERVER_PID" VmRSS)
    [ "$(json_num "$(sc info --json)" copies)" = "$n" ] ||
      die "mem-scale: the server does not see $n copies"
    memscale_job "fw-$n" randwrite "$LIVE_URI" $((n * cs)) $((n * cs)) "$ios"
    fw=$FIO_IOPS
    settle
    memscale_job "sr-$n" randread "nbd+unix:///s1?socket=$sock" 0 $((n * cs)) "$ios"
    sr=$FIO_IOPS
    rss1=$(vm_kib "$SERVER_PID" VmRSS)
    hwm=$(vm_kib "$SERVER_PID" VmHWM)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$PROBE_SECONDS" \
      "$start_ms" "$rss0" "$rss1" "$hwm" "$fw" "$sr" "$ios" >>"$MEMSCALE_ROWS"
    say "  $n copies: start-up $start_ms ms, VmRSS $rss0 -> $rss1 KiB" \
        "(VmHWM $hwm), first write $fw IOPS, snapshot read $sr IOPS"
    stop_system
    rm -rf "$INST"
  done
  SC_EXTRA_KEYS=()
}

report_memscale () {
  if [ -n "$MEMSCALE_SKIP" ]; then
    echo "## Memory and rates by copies (issue 17)"
    echo
    echo "Skipped: $MEMSCALE_SKIP."
    return 0
  fi
  [ -s "${MEMSCALE_ROWS:-}" ] || return 0
  cat <<EOF
## Memory and rates by copies (issue 17)

shadowcopy, $MEMSCALE_CHUNK chunks, durability=safe, **$MEMSCALE_INDEX**.
For N copies: a sparse origin of 2N chunks, one snapshot, N copies
(chunks 0 to N-1, recorded in $MEMSCALE_ORDER order) recorded offline by \`bench/copies-probe.c\` (slots
left unwritten, checksums of zeros, so snapshot reads verify), then
nbdkit started on it. Start-up: from the launch of nbdkit to its control
socket (the diff area's replay). First write: 4k random writes, QD16, to
distinct chunks not yet copied (each copies its chunk); snapshot read:
4k random reads of distinct copied chunks from the snapshot; each the
number of I/Os in the table, spread over the region, one run. Ratios
against the smallest N of this run.

| copies | build (s) | start-up | VmRSS started | VmRSS after I/O | VmHWM | first write IOPS | vs smallest | snapshot read IOPS | vs smallest | I/Os |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  awk -F'\t' 'NR == 1 { f = $7; s = $8 }
    { printf "| %d | %s | %.2f s | %.1f MiB | %.1f MiB | %.1f MiB | %.0f | %.2fx | %.0f | %.2fx | %d |\n",
        $1, $2, $3 / 1000, $4 / 1024, $5 / 1024, $6 / 1024, $7, (f > 0) ? $7 / f : 0,
        $8, (s > 0) ? $8 / s : 0, $9 }' "$MEMSCALE_ROWS"
  if [ -n "$MEMSCALE_CACHED" ]; then
    echo
    echo "Budget: VmHWM at most $MEMSCALE_CACHE of cache plus the server's constant"
    echo "(the issue's target: RSS under a fixed budget however many copies)."
  fi
}
