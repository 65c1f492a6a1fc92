# bench/lib/goingback.sh: going back (issue 14; sourced by bench/run.sh;
# BENCH_PARTS "goingback"): how long a revert takes, what it costs the
# live volume while it copies back, and what a write to a writable clone
# costs against a rewrite of the live volume.
#
# shadowcopy, chunk $DEFAULT_CHUNK, durability as the other parts, over
# the bench's random origin ($SIZE).  GOBACK_REPEAT rounds, a fresh
# server and origin for each measurement; medians.
#
# revert: snapshot r0, then the whole volume rewritten (1M sequential
# writes of new data: $SIZE of changes), then `revert r0 --rate 0`
# (unbounded), timed to its return (from then on the live export serves
# r0's content) and to the end of the copy back (`revert --status
# --wait`); with --no-save-current and with the pre-revert state saved
# (each changed chunk then copied once more, for the saved snapshot).
#
# live I/O during the copy: the same revert at a bounded rate ($SIZE in
# GOBACK_COPY_SECONDS), and while it copies, 4k random reads then 4k
# random writes on the live export for GOBACK_IO_SECONDS each; then,
# once the copy is done, the same two jobs on the idle volume.  Ratios
# of medians: during / idle.
#
# clones: snapshot r0, clone c0 of it; 4k random writes over the whole
# export (every block once), twice, on the clone, and the same two
# passes on the live volume (its first pass copies every chunk for r0,
# its second is the rewrite).  Ratio: the clone's passes against the
# live rewrite (the fastest write the live volume has).

GOBACK_SAMPLES=''

# goback_server: a fresh origin and server (CTL, LIVE_URI, SERVER_PID).
goback_server () {
  new_instance
  cp "$BASE" "$INST/origin"
  sync "$INST/origin"
  start_sc_server "$DEFAULT_CHUNK" "${DUR_SUFFIX#-}" "$BENCH_TMP/logs/goingback.log"
}

goback_sample () {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$GOBACK_SAMPLES"
}

# goback_dirty: snapshot r0, then every byte of the live volume rewritten
goback_dirty () {
  sc create r0 >/dev/null
  run_fio "goback-dirty" "$JOBS/seqwrite-1m.fio" "$LIVE_URI" "$SIZE_BYTES"
  settle
}

# goback_revert REP SAVE(0|1): one timed revert, unbounded
goback_revert () {
  local rep=$1 save=$2 t0 t1 t2 opt=--no-save-current case=revert
  [ "$save" = 0 ] || { opt="--save-current pre"; case=revert-save; }
  goback_server
  goback_dirty
  t0=${EPOCHREALTIME/./}
  # shellcheck disable=SC2086
  sc revert r0 $opt --rate 0 >/dev/null
  t1=${EPOCHREALTIME/./}
  sc revert --status --wait >/dev/null
  t2=${EPOCHREALTIME/./}
  goback_sample "$case-serving" "$rep" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')"
  goback_sample "$case-done" "$rep" "$(awk -v d=$((t2 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')"
  say "  $case: serving r0 after $(((t1 - t0) / 1000)) ms, copied back after $(((t2 - t0) / 1000)) ms"
  # The result, checked: the live export reads as r0.
  cmp <(nbdcopy "nbd+unix:///r0?socket=$INST/nbd.sock" - ) \
      <(nbdcopy "$LIVE_URI" - ) >/dev/null ||
    die "after the revert the live export differs from r0"
  stop_system
}

# goback_timed CASE REP RW: GOBACK_IO_SECONDS of 4k random RW on live
goback_timed () {
  run_fio "goback-$1-$3-$2" "$JOBS/timed-4k.fio" "$LIVE_URI" "$SIZE_BYTES" \
    BENCH_RW="$3" BENCH_RUNTIME="$GOBACK_IO_SECONDS"
  goback_sample "$1-$3" "$2" "$FIO_IOPS"
  say "  $1 $3: $FIO_IOPS IOPS"
}

# goback_during REP: live I/O while a bounded revert copies back, then idle
goback_during () {
  local rep=$1 rate
  rate=$((SIZE_BYTES / GOBACK_COPY_SECONDS))
  goback_server
  goback_dirty
  sc revert r0 --no-save-current --rate "$rate" >/dev/null
  goback_timed during "$rep" randread
  goback_timed during "$rep" randwrite
  sc revert --status | grep -q . || true
  sc revert --status --wait >/dev/null
  settle
  goback_timed idle "$rep" randread
  goback_timed idle "$rep" randwrite
  stop_system
}

# goback_clone REP: two passes of 4k random writes on a clone, then on live
goback_clone () {
  local rep=$1 pass uri
  goback_server
  sc create r0 >/dev/null
  sc clone r0 c0 >/dev/null
  uri="nbd+unix:///c0?socket=$INST/nbd.sock"
  for pass in first second; do
    run_fio "goback-clone-$pass-$rep" "$JOBS/randwrite-4k.fio" "$uri" "$SIZE_BYTES"
    goback_sample "clone-$pass" "$rep" "$FIO_IOPS"
    say "  clone, $pass pass: $FIO_IOPS IOPS"
    settle
  done
  for pass in first second; do
    run_fio "goback-live-$pass-$rep" "$JOBS/randwrite-4k.fio" "$LIVE_URI" "$SIZE_BYTES"
    goback_sample "live-$pass" "$rep" "$FIO_IOPS"
    say "  live, $pass pass: $FIO_IOPS IOPS"
    settle
  done
  stop_system
}

goingback () {
  local rep
  GOBACK_REPEAT=${BENCH_GOBACK_REPEAT:-3}
  [ "$MODE" != quick ] || GOBACK_REPEAT=${BENCH_GOBACK_REPEAT:-1}
  GOBACK_COPY_SECONDS=${BENCH_GOBACK_COPY_SECONDS:-30}
  GOBACK_IO_SECONDS=${BENCH_GOBACK_IO_SECONDS:-8}
  [ $((2 * GOBACK_IO_SECONDS + 4)) -le "$GOBACK_COPY_SECONDS" ] ||
    die "BENCH_GOBACK_COPY_SECONDS must leave room for two jobs of BENCH_GOBACK_IO_SECONDS"
  GOBACK_SAMPLES=$BENCH_TMP/goingback.tsv
  : >"$GOBACK_SAMPLES"
  for ((rep = 1; rep <= GOBACK_REPEAT; rep++)); do
    say "going back, run $rep/$GOBACK_REPEAT: revert, unbounded"
    goback_revert "$rep" 0
    goback_revert "$rep" 1
    say "going back, run $rep/$GOBACK_REPEAT: live I/O during a revert"
    goback_during "$rep"
    say "going back, run $rep/$GOBACK_REPEAT: writable clone"
    goback_clone "$rep"
  done
  rm -rf "$INST"
  say "  going back: $(report_goingback_line)"
}

# goback_med CASE: the median of its samples
goback_med () {
  awk -F'\t' -v c="$1" '$1 == c { print $3 }' "$GOBACK_SAMPLES" | median
}

goback_runs () {
  awk -F'\t' -v c="$1" '$1 == c { printf "%s ", $3 }' "$GOBACK_SAMPLES"
}

report_goingback_line () {
  echo "revert of $SIZE: serving after $(goback_med revert-serving) s, done after $(goback_med revert-done) s;" \
       "live during/idle: read $(ratio "$(goback_med during-randread)" "$(goback_med idle-randread)")x," \
       "write $(ratio "$(goback_med during-randwrite)" "$(goback_med idle-randwrite)")x;" \
       "clone write/live rewrite $(ratio "$(goback_med clone-second)" "$(goback_med live-second)")x"
}

report_goingback () {
  [ -s "${GOBACK_SAMPLES:-}" ] || return 0
  local c
  echo "## Going back: revert and writable clones (issue 14)"
  echo
  echo "shadowcopy, chunk $DEFAULT_CHUNK${DUR_SUFFIX:+, durability=${DUR_SUFFIX#-}}, the $SIZE random"
  echo "origin, a fresh server for each measurement; median of $GOBACK_REPEAT."
  echo
  echo "Revert of snapshot r0 after the whole volume was rewritten ($SIZE of"
  echo "changes), \`--rate 0\`: seconds until \`revert\` returns (from then on the"
  echo "live export serves r0's content) and until the copy back ends."
  echo
  echo "| revert | serving after (s) | copied back after (s) | MiB/s copied back | runs (done, s) |"
  echo "| --- | ---: | ---: | ---: | --- |"
  for c in revert revert-save; do
    printf '| %s | %s | %s | %s | %s|\n' \
      "$([ "$c" = revert ] && echo "--no-save-current" || echo "pre-revert state saved")" \
      "$(goback_med "$c-serving")" "$(goback_med "$c-done")" \
      "$(awk -v s="$(goback_med "$c-done")" -v b="$SIZE_BYTES" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }')" \
      "$(goback_runs "$c-done")"
  done
  echo
  echo "Live 4k random I/O (QD 16, ${GOBACK_IO_SECONDS} s each) while a revert copies"
  echo "back at $((SIZE_BYTES / GOBACK_COPY_SECONDS / 1048576)) MiB/s (\`--rate\`), against the same jobs once it is done:"
  echo
  echo "| job | during the copy (IOPS) | idle (IOPS) | during / idle |"
  echo "| --- | ---: | ---: | ---: |"
  for c in randread randwrite; do
    printf '| 4k %s | %s | %s | %s |\n' "$c" "$(goback_med "during-$c")" \
      "$(goback_med "idle-$c")" \
      "$(times_x "$(ratio "$(goback_med "during-$c")" "$(goback_med "idle-$c")")")"
  done
  echo
  echo "Writable clone c0 of r0 against the live volume: 4k random writes (QD 16,"
  echo "every block once), two passes each. A clone's write is redirected: each"
  echo "one writes its whole chunk to a new slot (a 4k write into a $DEFAULT_CHUNK"
  echo "chunk reads and writes the chunk); the live rewrite writes in place."
  echo
  echo "| export | pass | median IOPS | vs live rewrite | runs |"
  echo "| --- | --- | ---: | ---: | --- |"
  for c in clone-first clone-second live-first live-second; do
    printf '| %s | %s | %s | %s | %s|\n' "${c%%-*}" "${c#*-}" "$(goback_med "$c")" \
      "$(times_x "$(ratio "$(goback_med "$c")" "$(goback_med live-second)")")" \
      "$(goback_runs "$c")"
  done
}
