# bench/lib/remote.sh: what an origin on an NBD server costs (issue 15;
# sourced by bench/run.sh; BENCH_PARTS "remote").
#
# The remote is `nbdkit file` on a copy of the base origin, over a Unix
# socket; four set-ups on a fresh remote each:
#   direct        the remote used directly (fio against it)
#   shadowcopy    shadowcopy with disk=nbd+unix:///?socket=REMOTE, one
#                 snapshot (each chunk's first write copies it: a read
#                 from the remote, a write to the local diff area, then
#                 the write to the remote)
# and both again with the remote behind --filter=delay delay-write=1ms
# delay-read=1ms (a remote one network hop away).  Jobs: 4k random writes
# (first pass, then the rewrite, nothing left to copy) and 4k random
# reads of the live volume.  REMOTE_REPEAT rounds, medians, and ratios of
# medians shadowcopy / direct.

REMOTE_CASES=(direct shadowcopy direct-delay shadowcopy-delay)
REMOTE_JOBS=(randwrite-4k-first randwrite-4k-second randread-4k)

remote_label () {
  case $1 in
    direct) echo "nbdkit file, directly" ;;
    shadowcopy) echo "shadowcopy on it, 1 snapshot" ;;
    direct-delay) echo "nbdkit file + 1 ms delay, directly" ;;
    shadowcopy-delay) echo "shadowcopy on it + 1 ms delay, 1 snapshot" ;;
  esac
}

# remote_start CASE: the remote, and shadowcopy on it unless direct.
remote_start () {
  local log="$BENCH_TMP/logs/remote.log" rsock="$INST/remote.sock" filt=()
  case $1 in
    *-delay) filt=(--filter=delay delay-write=1ms delay-read=1ms) ;;
  esac
  nbdkit -f -U "$rsock" "${filt[@]:0:1}" file file="$INST/origin" \
    "${filt[@]:1}" >>"$log" 2>&1 &
  REMOTE_PID=$!
  track "$REMOTE_PID"
  wait_for_socket "$rsock" "$REMOTE_PID" "$log"
  case $1 in
    direct*)
      SERVER_PID=$REMOTE_PID
      LIVE_URI="nbd+unix:///?socket=$rsock"
      ;;
    *)
      local sock="$INST/nbd.sock"
      nbdkit -f -U "$sock" "$PLUGIN" "disk=nbd+unix:///?socket=$rsock" \
        diff="$INST/diff" chunk-size="$REMOTE_CHUNK" >>"$log" 2>&1 &
      SERVER_PID=$!
      track "$SERVER_PID"
      CTL="$INST/diff.sock"
      wait_for_socket "$sock" "$SERVER_PID" "$log"
      wait_for_socket "$CTL" "$SERVER_PID" "$log"
      LIVE_URI="nbd+unix:///live?socket=$sock"
      sc create s1 >/dev/null
      ;;
  esac
}

remote_stop () {
  [ "$SERVER_PID" = "$REMOTE_PID" ] || stop_system
  SERVER_PID=
  stop_pid "$REMOTE_PID"
  REMOTE_PID=
}

# remote_job CASE JOB REP
remote_job () {
  local fio=randwrite-4k.fio
  [ "$2" != randread-4k ] || fio=randread-4k.fio
  run_fio "remote-$1-$2-$3" "$JOBS/$fio" "$LIVE_URI" "$SIZE_BYTES"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$FIO_IOPS" "$FIO_MIBS" \
    >>"$REMOTE_SAMPLES"
  say "  $2: $FIO_IOPS IOPS, $FIO_MIBS MiB/s"
}

remote_bench () {
  local rep i k setup
  REMOTE_REPEAT=${BENCH_REMOTE_REPEAT:-3}
  [ "$MODE" != quick ] || REMOTE_REPEAT=${BENCH_REMOTE_REPEAT:-1}
  REMOTE_CHUNK=${BENCH_REMOTE_CHUNK:-64K}
  REMOTE_SAMPLES=$BENCH_TMP/remote.tsv
  : >"$REMOTE_SAMPLES"
  for ((rep = 1; rep <= REMOTE_REPEAT; rep++)); do
    for ((k = 0; k < ${#REMOTE_CASES[@]}; k++)); do
      i=$(((k + rep - 1) % ${#REMOTE_CASES[@]}))
      setup=${REMOTE_CASES[$i]}
      say "NBD origin, run $rep/$REMOTE_REPEAT: $(remote_label "$setup")"
      new_instance
      cp "$BASE" "$INST/origin"
      sync "$INST/origin"
      remote_start "$setup"
      remote_job "$setup" randwrite-4k-first "$rep"
      settle
      remote_job "$setup" randwrite-4k-second "$rep"
      remote_job "$setup" randread-4k "$rep"
      remote_stop
    done
  done
  rm -rf "$INST"
  say "  NBD origin: $(report_remote_line)"
}

# remote_med CASE JOB: the median IOPS
remote_med () {
  awk -F'\t' -v c="$1" -v j="$2" '$1 == c && $2 == j { print $4 }' \
    "$REMOTE_SAMPLES" | median
}

report_remote_line () {
  echo "shadowcopy/direct: first write $(ratio "$(remote_med shadowcopy randwrite-4k-first)" "$(remote_med direct randwrite-4k-first)")x," \
       "rewrite $(ratio "$(remote_med shadowcopy randwrite-4k-second)" "$(remote_med direct randwrite-4k-second)")x," \
       "read $(ratio "$(remote_med shadowcopy randread-4k)" "$(remote_med direct randread-4k)")x;" \
       "with 1 ms delay: $(ratio "$(remote_med shadowcopy-delay randwrite-4k-first)" "$(remote_med direct-delay randwrite-4k-first)")x," \
       "$(ratio "$(remote_med shadowcopy-delay randwrite-4k-second)" "$(remote_med direct-delay randwrite-4k-second)")x," \
       "$(ratio "$(remote_med shadowcopy-delay randread-4k)" "$(remote_med direct-delay randread-4k)")x"
}

report_remote () {
  [ -s "${REMOTE_SAMPLES:-}" ] || return 0
  local setup job base runs
  echo "## An origin on an NBD server (issue 15)"
  echo
  echo "The remote: \`nbdkit file\` on a copy of the $SIZE origin, over a Unix"
  echo "socket, used directly or as shadowcopy's origin (disk=nbd+unix://...,"
  echo "chunk $REMOTE_CHUNK, one snapshot: each chunk's first write reads it from"
  echo "the remote and copies it to the local diff area first); and the same"
  echo "behind \`--filter=delay delay-write=1ms delay-read=1ms\`. fio, 4k, QD 16,"
  echo "every block once: random writes right after the snapshot (first write),"
  echo "again (rewrite), then random reads. Median of $REMOTE_REPEAT, the order"
  echo "of the set-ups rotating from round to round."
  echo
  echo "| set-up | job | median IOPS | vs direct | runs (IOPS) |"
  echo "| --- | --- | ---: | ---: | --- |"
  for setup in "${REMOTE_CASES[@]}"; do
    case $setup in
      shadowcopy) base=direct ;;
      shadowcopy-delay) base=direct-delay ;;
      *) base= ;;
    esac
    for job in "${REMOTE_JOBS[@]}"; do
      runs=$(awk -F'\t' -v c="$setup" -v j="$job" '$1 == c && $2 == j { printf "%s ", $4 }' "$REMOTE_SAMPLES")
      printf '| %s | %s | %s | %s | %s|\n' "$(remote_label "$setup")" "$job" \
        "$(remote_med "$setup" "$job")" \
        "${base:+$(times_x "$(ratio "$(remote_med "$setup" "$job")" "$(remote_med "$base" "$job")")")}" \
        "$runs"
    done
  done
}
