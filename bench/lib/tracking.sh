# bench/lib/tracking.sh: what changed-block tracking costs on the write
# path (issue 12; sourced by bench/run.sh; BENCH_PARTS "tracking").
#
# shadowcopy, chunk $TRACK_CHUNK, durability=safe, four set-ups on a
# fresh server each:
#   plain       nothing to keep: no snapshot, no checkpoint
#   checkpoint  one checkpoint: the first write of each chunk records a
#               data-less mark, committed before the origin is written
#   snapshot    one snapshot: the first write of each chunk copies it
#   both        a snapshot, then a checkpoint: one copy serves both
# and two jobs each: the 4k random write first pass (every 4k block once,
# right after the snapshot or checkpoint) and the second pass (every chunk
# already copied or marked).  TRACK_REPEAT rounds, the order of the set-ups
# rotating from round to round; medians, and ratios of medians against
# the run without a checkpoint (checkpoint / plain, both / snapshot).

TRACK_CASES=(plain checkpoint snapshot both)

track_label () {
  case $1 in
    plain) echo "no snapshot, no checkpoint" ;;
    checkpoint) echo "a checkpoint" ;;
    snapshot) echo "a snapshot" ;;
    both) echo "a snapshot and a checkpoint" ;;
  esac
}

# track_job CASE JOB REP: one measured fio run (4k random writes)
track_job () {
  local c0 c1 cpu
  c0=$(cpu_ticks "$SERVER_PID")
  run_fio "track-$1-$2-$3" "$JOBS/randwrite-4k.fio" "$LIVE_URI" "$SIZE_BYTES"
  c1=$(cpu_ticks "$SERVER_PID")
  cpu=$(awk -v d=$((c1 - c0)) -v t="$CLK_TCK" -v n=$((SIZE_BYTES / 4096)) \
    'BEGIN { printf "%.1f", d * 1e6 / t / n }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$FIO_IOPS" "$FIO_MIBS" \
    "$cpu" >>"$TRACK_SAMPLES"
  say "  $2: $FIO_IOPS IOPS, server CPU $cpu us/IO"
}

tracking () {
  local rep i k setup
  TRACK_REPEAT=${BENCH_TRACK_REPEAT:-3}
  [ "$MODE" != quick ] || TRACK_REPEAT=${BENCH_TRACK_REPEAT:-1}
  TRACK_CHUNK=${BENCH_TRACK_CHUNK:-64K}
  TRACK_DUR=${DUR_SUFFIX#-}
  TRACK_SAMPLES=$BENCH_TMP/tracking.tsv
  : >"$TRACK_SAMPLES"
  for ((rep = 1; rep <= TRACK_REPEAT; rep++)); do
    for ((k = 0; k < ${#TRACK_CASES[@]}; k++)); do
      i=$(((k + rep - 1) % ${#TRACK_CASES[@]}))
      setup=${TRACK_CASES[$i]}
      say "changed-block tracking, run $rep/$TRACK_REPEAT: $(track_label "$setup")"
      new_instance
      cp "$BASE" "$INST/origin"
      sync "$INST/origin"
      start_sc_server "$TRACK_CHUNK" "$TRACK_DUR" "$BENCH_TMP/logs/tracking.log"
      case $setup in
        checkpoint) sc checkpoint c1 >/dev/null ;;
        snapshot) sc create s1 >/dev/null ;;
        both) sc create s1 >/dev/null; sc checkpoint c1 >/dev/null ;;
      esac
      track_job "$setup" randwrite-4k-first "$rep"
      settle
      track_job "$setup" randwrite-4k-second "$rep"
      # What the checkpoint's marks cost: one journal record per chunk
      # changed after it that no snapshot copy covers.
      if [ "$setup" = checkpoint ] && [ -z "${TRACK_META:-}" ]; then
        TRACK_META=$(json_num "$(sc list --json | tr -d '\n')" meta-bytes)
      fi
      stop_system
    done
  done
  rm -rf "$INST"
  say "  changed-block tracking: $(report_tracking_line)"
}

# track_med CASE JOB [4|6]: the median IOPS (field 4) or CPU us/IO (6)
track_med () {
  awk -F'\t' -v c="$1" -v j="$2" -v f="${3:-4}" '$1 == c && $2 == j { print $f }' \
    "$TRACK_SAMPLES" | median
}

report_tracking_line () {
  echo "first write: checkpoint/plain $(ratio "$(track_med checkpoint randwrite-4k-first)" "$(track_med plain randwrite-4k-first)")x," \
       "both/snapshot $(ratio "$(track_med both randwrite-4k-first)" "$(track_med snapshot randwrite-4k-first)")x;" \
       "rewrite: checkpoint/plain $(ratio "$(track_med checkpoint randwrite-4k-second)" "$(track_med plain randwrite-4k-second)")x," \
       "both/snapshot $(ratio "$(track_med both randwrite-4k-second)" "$(track_med snapshot randwrite-4k-second)")x"
}

track_job_label () {
  if [ "$1" = randwrite-4k-first ]; then echo "first write"; else echo rewrite; fi
}

report_tracking () {
  [ -s "${TRACK_SAMPLES:-}" ] || return 0
  local setup job base runs
  echo "## Changed-block tracking on the write path (issue 12)"
  echo
  echo "shadowcopy, chunk $TRACK_CHUNK${TRACK_DUR:+, durability=$TRACK_DUR}, a fresh"
  echo "server and origin for each set-up; 4k random writes (QD 16, every block"
  echo "of the $SIZE origin once): the first pass right after the snapshot or"
  echo "checkpoint (each chunk's first write copies it, or records a data-less"
  echo "mark), then the second pass (nothing left to copy or mark). Median of"
  echo "$TRACK_REPEAT, the order of the set-ups rotating from round to round."
  echo "Ratios of medians against the same set-up without the checkpoint."
  echo
  echo "| set-up | job | median IOPS | server CPU us/IO | vs without the checkpoint | by CPU | runs (IOPS) |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
  for setup in "${TRACK_CASES[@]}"; do
    for job in randwrite-4k-first randwrite-4k-second; do
      case $setup in
        checkpoint) base=plain ;;
        both) base=snapshot ;;
        *) base= ;;
      esac
      runs=$(awk -F'\t' -v c="$setup" -v j="$job" '$1 == c && $2 == j { printf "%s ", $4 }' "$TRACK_SAMPLES")
      printf '| %s | %s | %s | %s | %s | %s | %s|\n' "$(track_label "$setup")" \
        "$(track_job_label "$job")" \
        "$(track_med "$setup" "$job")" "$(track_med "$setup" "$job" 6)" \
        "${base:+$(times_x "$(ratio "$(track_med "$setup" "$job")" "$(track_med "$base" "$job")")")}" \
        "${base:+$(times_x "$(ratio "$(track_med "$base" "$job" 6)" "$(track_med "$setup" "$job" 6)")")}" \
        "$runs"
    done
  done
  echo
  echo "\"by CPU\": the same ratio from the server's CPU time per write (without"
  echo "/ with), which other people's load disturbs less than the rates."
  echo "Also: a checkpoint instead of a snapshot, first write:"
  echo "$(times_x "$(ratio "$(track_med checkpoint randwrite-4k-first)" "$(track_med snapshot randwrite-4k-first)")") (checkpoint / snapshot)."
  if [ -n "${TRACK_META:-}" ]; then
    echo "The checkpoint's metadata after the first pass (\`list --json\`"
    echo "meta-bytes): $TRACK_META bytes for $((SIZE_BYTES / $(numfmt --from=iec "$TRACK_CHUNK"))) chunks."
  fi
}
