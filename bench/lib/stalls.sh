# bench/lib/stalls.sh: does the control side stall the live volume in
# proportion to history? (issue 17; sourced by bench/run.sh, part
# `stalls`).
#
# A diff area with STALL_COPIES copied chunks (STALL_CHUNK chunks, every
# chunk of the origin copied) shared by STALL_SNAPS snapshots, built
# offline by bench/copies-probe.c, then served by nbdkit (durability=safe).
# The probe also lengthens the journal to a few records short of the
# length at which the diff area writes a checkpoint.  A 4k random rewrite
# load (fio, QD16, every write to a copied chunk, STALL_SECONDS each) is
# measured:
#   alone        nothing else runs (the reference)
#   list         `shadowcopy list` in a loop
#   checkpoint   0.5 s in, snapshots made and deleted at once until the
#                journal is long enough that one of them writes an online
#                checkpoint of the whole copy map on the server's volume
#                thread (seen as the diff area's used bytes falling: the
#                old journal is freed; looked for up to 3 s after each
#                pair, since the delete does not wait for it)
#   deletes      0.5 s in, the STALL_SNAPS snapshots deleted one by one,
#                0.1 s apart (the last one frees every copy)
# The last two stop the load 0.5 s after what they measure, or once it ran
# STALL_SECONDS (as long as the reference) if that is later.
# in that order, with the load alone run again before the deletes (the
# deletes last: they take the copies away); the ratios are against the
# mean of the two runs alone.

STALL_ROWS='' STALL_SKIP=''
STALL_DELETE_GAP=0.1

# stall_fio_start PHASE [SECONDS]: the rewrite load in the background, for
# SECONDS (default STALL_SECONDS; the phases that end it themselves, with
# stall_fio_stop, give an upper bound)
stall_fio_start () {
  STALL_OUT="$BENCH_TMP/fio/stall-$1.out"
  STALL_STOPPED=
  STALL_T0=${EPOCHREALTIME/./}
  env BENCH_URI="$LIVE_URI" BENCH_SIZE="$STALL_ORIGIN_BYTES" \
    BENCH_RUNTIME="${2:-$STALL_SECONDS}" BENCH_RW=randwrite \
    fio --output-format=terse --terse-version=3 --output="$STALL_OUT" \
    "$JOBS/timed-4k.fio" 2>"$STALL_OUT.err" &
  STALL_FIO=$!
  track "$STALL_FIO"
}

# stall_fio_stop: end the load now (fio writes its results on SIGINT)
stall_fio_stop () {
  STALL_STOPPED=1
  kill -s INT "$STALL_FIO" 2>/dev/null || true
}

# stall_fio_end PHASE NOTE: wait for the load, add a row to STALL_ROWS
# (phase IOPS p99-us p99.9-us max-us note)
stall_fio_end () {
  local status=0 p99 p999 max
  wait "$STALL_FIO" || status=$?
  untrack "$STALL_FIO"
  [ "$status" -eq 0 ] || [ -n "$STALL_STOPPED" ] ||
    die "stall fio $1 failed: $(tail -3 "$STALL_OUT.err")"
  fio_parse "$STALL_OUT" || die "stall fio $1: no result: $(tail -3 "$STALL_OUT.err")"
  read -r p99 p999 max < <(fio_clat "$STALL_OUT")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$FIO_IOPS" "$p99" "$p999" "$max" \
    "$2" >>"$STALL_ROWS"
  say "  $1: $FIO_IOPS IOPS, write p99 $p99 us, max $max us${2:+ ($2)}"
}

fio_running () { kill -0 "$STALL_FIO" 2>/dev/null; }

# stall_fio_settle_stop: end the load 0.5 s from now, or once it has run
# STALL_SECONDS (as long as the reference) if that is later
stall_fio_settle_stop () {
  sleep 0.5
  while [ $(( ${EPOCHREALTIME/./} - STALL_T0 )) -lt $((STALL_SECONDS * 1000000)) ]; do
    sleep 0.1
  done
  stall_fio_stop
}

# us_since T0: microseconds since EPOCHREALTIME T0 (digits only)
us_since () { echo $(( ${EPOCHREALTIME/./} - $1 )); }

stalls () {
  local n note t0 i used0 used1 found delete_us=0 max_us=0 us
  STALL_ROWS="$BENCH_TMP/stall-rows.tsv"
  : >"$STALL_ROWS"
  if ! copies_probe_build; then
    STALL_SKIP=$SKIP_WHY
    say "stalls: skipped: $STALL_SKIP"
    return 0
  fi
  local cs_bytes
  cs_bytes=$(numfmt --from=iec "$STALL_CHUNK")
  STALL_ORIGIN_BYTES=$((STALL_COPIES * cs_bytes))
  say "stalls: $STALL_COPIES copies of $STALL_CHUNK chunks shared by" \
      "$STALL_SNAPS snapshots, built offline; ${STALL_SECONDS} s per phase"
  new_instance
  copies_probe "$INST" "$STALL_COPIES" "$STALL_COPIES" "$cs_bytes" \
    "$STALL_SNAPS" 40
  STALL_BUILD_S=$PROBE_SECONDS
  # The origin written once (zeros: what the copies say it held), so that
  # no phase pays for the file system's first allocation of its blocks.
  dd if=/dev/zero of="$INST/origin" bs=1M count=$((STALL_ORIGIN_BYTES / 1048576)) \
    conv=notrunc,fsync status=none
  SC_START_TIMEOUT=300 start_sc_server "$STALL_CHUNK" safe "$BENCH_TMP/logs/stalls.log"
  n=$(json_num "$(sc info --json)" copies)
  [ "$n" = "$STALL_COPIES" ] || die "stalls: the server sees $n copies, not $STALL_COPIES"

  say "stalls: alone"
  settle
  stall_fio_start alone
  stall_fio_end alone ""

  say "stalls: while \`shadowcopy list\` loops"
  settle
  stall_fio_start list
  n=0
  while fio_running; do sc list >/dev/null; n=$((n + 1)); done
  stall_fio_end list "$n lists"

  say "stalls: across an online checkpoint"
  settle
  stall_fio_start checkpoint 3600
  sleep 0.5
  found=
  for ((i = 1; i <= 200 && !found; i++)); do
    fio_running || break
    used0=$(json_num "$(sc info --json)" diff_used_bytes)
    t0=${EPOCHREALTIME/./}
    sc create "ck$i" >/dev/null
    sc delete "ck$i" >/dev/null
    # The server writes the checkpoint on its volume thread: the delete
    # returns before it ends, so look for its end a while (3 s).
    for ((k = 0; k < 60; k++)); do
      us=$(us_since "$t0")
      used1=$(json_num "$(sc info --json)" diff_used_bytes)
      # The old journal (over a record per copy) is freed: far more than
      # the few chunks copied while ck$i lived.
      if [ $((used0 - used1)) -gt $((STALL_COPIES * 16)) ]; then
        found=$i
        STALL_CKPT_MS=$(awk -v u="$us" 'BEGIN { printf "%.1f", u / 1000 }')
        STALL_CKPT_FREED=$((used0 - used1))
        break
      fi
      sleep 0.05
    done
  done
  if [ -n "$found" ]; then
    note="checkpoint after pair $found of create+delete, freed $STALL_CKPT_MS ms after the create; journal $(awk -v b="$STALL_CKPT_FREED" 'BEGIN { printf "%.1f MiB", b / 1048576 }') smaller"
  else
    note="no checkpoint seen (the server's open may have written it)"
  fi
  stall_fio_settle_stop
  note="$note; window $(awk -v u="$(us_since "$STALL_T0")" 'BEGIN { printf "%.1f s", u / 1e6 }')"
  stall_fio_end checkpoint "$note"

  # The reference again: a burst of other load on a shared machine then
  # spoils one of the two, and the ratios use their mean.
  say "stalls: alone, again"
  settle
  stall_fio_start alone-again
  stall_fio_end alone-again ""

  say "stalls: while the $STALL_SNAPS snapshots are deleted one by one"
  settle
  stall_fio_start deletes 3600
  sleep 0.5
  for ((i = 1; i <= STALL_SNAPS; i++)); do
    t0=${EPOCHREALTIME/./}
    sc delete "s$i" >/dev/null
    us=$(us_since "$t0")
    delete_us=$((delete_us + us))
    [ "$us" -le "$max_us" ] || max_us=$us
    sleep "$STALL_DELETE_GAP"
  done
  stall_fio_settle_stop
  note=$(awk -v t="$delete_us" -v m="$max_us" -v all="$STALL_SNAPS" \
    -v w="$(us_since "$STALL_T0")" -v g="$STALL_DELETE_GAP" \
    'BEGIN { printf "%d deletes %s s apart, %.1f ms in all, the longest %.1f ms; window %.1f s", all, g, t / 1000, m / 1000, w / 1e6 }')
  stall_fio_end deletes "$note"
  stop_system
  rm -rf "$INST"
}

report_stalls () {
  if [ -n "$STALL_SKIP" ]; then
    echo "## Stalls from history (issue 17)"
    echo
    echo "Skipped: $STALL_SKIP."
    return 0
  fi
  [ -s "${STALL_ROWS:-}" ] || return 0
  local base
  base=$(awk -F'\t' '$1 ~ /^alone/ { t += $2; n++ } END { if (n) print t / n }' "$STALL_ROWS")
  cat <<EOF
## Stalls from history (issue 17)

shadowcopy, $STALL_CHUNK chunks, durability=safe, an origin of
$STALL_COPIES chunks (written once with zeros, what the copies hold, so
that no phase pays the file system's first allocation), every one copied once ($STALL_COPIES copies) after
$STALL_SNAPS snapshots made one after the other, so every copy serves all
of them. The diff area was built offline by \`bench/copies-probe.c\` in
$STALL_BUILD_S s (slots reserved and left unwritten, checksums of zeros;
its journal lengthened to a few records short of a checkpoint), then
served by nbdkit. The load: fio 4k random rewrites (every write to a copied
chunk), QD16, over the whole origin, $STALL_SECONDS s per phase; the
checkpoint and delete phases start their work 0.5 s in and run on to 0.5 s
after it when that is longer (their windows are given). Ratios against
the mean of the two runs of the same load alone, in this run (before the
\`list\` loop, and again before the deletes).

| phase | IOPS | vs alone | write p99 | p99.9 | max | IOPS >= 0.8x | p99 < 5 ms | what ran |
| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |
EOF
  awk -F'\t' -v b="$base" '{
      r = (b > 0) ? $2 / b : 0
      label = ($1 == "alone") ? "alone" : ($1 == "alone-again") ? "alone, again" : ($1 == "list") ? "`shadowcopy list` loop" : ($1 == "checkpoint") ? "online checkpoint" : "snapshots deleted one by one"
      printf "| %s | %.0f | %.2fx | %.2f ms | %.2f ms | %.1f ms | %s | %s | %s |\n", label, $2, r,
        $3 / 1000, $4 / 1000, $5 / 1000,
        ($1 ~ /^alone/) ? "-" : (r >= 0.8 ? "met" : "**NOT met**"),
        ($3 / 1000 < 5) ? "met" : "**NOT met**", $6 }' "$STALL_ROWS"
  cat <<EOF

The checkpoint is triggered as a serving diff area triggers it: a record
appended past the journal's length limit (twice the state plus 64k
records, cow/checkpoint.c) makes the next ckpt_maybe wake the volume's
thread, which writes one; here the records
are those of a snapshot made and deleted at once, during the load (the
writes to chunks in that short time copy them).
EOF
}
