# bench/lib/report.sh: the Markdown report and the chart (sourced by
# bench/run.sh).
#
# Input: $BENCH_TMP/samples.tsv, one line per fio run:
#   system-id  job  repetition  IOPS  MiB/s
# and the variables run.sh sets: SYSTEMS, JOBS_ORDER, JUDGE, JUDGE_VOLATILE, JUDGE_WB,
# the LAT_* and MEM_* results, the configuration and the machine.

JOBS_ORDER=(randwrite-4k-first randwrite-4k-second randread-4k-live
            randread-4k-snap seqwrite-1m-first seqwrite-1m-second
            randwrite-4k-first-j4 randwrite-4k-second-j4
            randwrite-4k-first-qd64 randwrite-4k-second-qd64)
# The peers (snapshot systems other than shadowcopy); the best of them in
# each row is what shadowcopy is judged against.
PEERS=(qemu qcow2)

job_label () {
  case $1 in
    randwrite-4k-first) echo "4k randwrite QD16, first pass after snapshot" ;;
    randwrite-4k-second) echo "4k randwrite QD16, second pass (copied)" ;;
    randread-4k-live) echo "4k randread QD16, live export" ;;
    randread-4k-snap) echo "4k randread QD16, snapshot export" ;;
    seqwrite-1m-first) echo "1M seq write QD16, first pass after snapshot" ;;
    seqwrite-1m-second) echo "1M seq write QD16, second pass (copied)" ;;
    randwrite-4k-first-j4) echo "4k randwrite 4 jobs x QD16, first pass" ;;
    randwrite-4k-second-j4) echo "4k randwrite 4 jobs x QD16, second pass" ;;
    randwrite-4k-first-qd64) echo "4k randwrite QD64, first pass" ;;
    randwrite-4k-second-qd64) echo "4k randwrite QD64, second pass" ;;
    *) echo "$1" ;;
  esac
}

# medians: samples.tsv -> medians.tsv (id job IOPS MiB/s runs spread% cpu),
# spread = (max - min) / median of the IOPS, cpu = server CPU us per I/O
report_medians () {
  local id job n iops mibs spread cpu
  : >"$BENCH_TMP/medians.tsv"
  for id in "${SYSTEMS[@]}"; do
    for job in "${JOBS_ORDER[@]}"; do
      n=$(awk -F'\t' -v i="$id" -v j="$job" '$1 == i && $2 == j' \
            "$BENCH_TMP/samples.tsv" | wc -l)
      [ "$n" -gt 0 ] || continue
      iops=$(awk -F'\t' -v i="$id" -v j="$job" '$1 == i && $2 == j { print $4 }' \
               "$BENCH_TMP/samples.tsv" | median)
      mibs=$(awk -F'\t' -v i="$id" -v j="$job" '$1 == i && $2 == j { print $5 }' \
               "$BENCH_TMP/samples.tsv" | median)
      cpu=$(awk -F'\t' -v i="$id" -v j="$job" '$1 == i && $2 == j { print $6 }' \
               "$BENCH_TMP/samples.tsv" | median)
      spread=$(awk -F'\t' -v i="$id" -v j="$job" -v m="$iops" '
                 $1 == i && $2 == j { if (n++ == 0 || $4 < lo) lo = $4
                                      if ($4 > hi) hi = $4 }
                 END { printf "%.0f\n", (m > 0) ? 100 * (hi - lo) / m : 0 }' \
                 "$BENCH_TMP/samples.tsv")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$job" "$iops" "$mibs" \
        "$n" "$spread" "$cpu" >>"$BENCH_TMP/medians.tsv"
    done
  done
}

# med ID JOB [iops|mibs|spread|cpu]: one median (or the spread), or empty
med () {
  [ -f "$BENCH_TMP/medians.tsv" ] || return 0
  awk -F'\t' -v i="$1" -v j="$2" -v f="${3:-iops}" \
    '$1 == i && $2 == j { print (f == "iops" ? $3 : f == "mibs" ? $4 : f == "spread" ? ($5 > 1 ? $6 "%" : "-") : $7); exit }' \
    "$BENCH_TMP/medians.tsv"
}

# ratio A B: A / B as "0.00", or "n/a"
ratio () {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || b + 0 == 0) print "n/a";
    else printf "%.2f\n", a / b }'
}

# times_x RATIO: "0.50x", or "n/a"
times_x () { if [ "$1" = n/a ]; then echo n/a; else echo "${1}x"; fi; }

# verdict VALUE OP LIMIT: "met" / "NOT met" / "n/a"
verdict () {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "" || v == "n/a" || v == "-") { print "n/a"; exit }
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
    print ok ? "met" : "**NOT met**" }'
}

# the file plugin's figure that a job is compared with: a snapshot read is
# compared with the ceiling of reads, the file plugin's live read
base_job () {
  case $1 in
    randread-4k-snap) echo randread-4k-live ;;
    *) echo "$1" ;;
  esac
}

# best_peer JOB: the peer with the highest median IOPS in that row (empty
# if no peer ran it)
best_peer () {
  local p v best='' bv=0
  for p in "${PEERS[@]}"; do
    v=$(med "$p" "$1")
    [ -n "$v" ] || continue
    if [ -z "$best" ] || awk -v a="$v" -v b="$bv" 'BEGIN { exit !(a > b) }'; then
      best=$p bv=$v
    fi
  done
  echo "$best"
}

# peer_short ID: the peer's name in the "vs best peer" column
peer_short () {
  case $1 in qemu) echo cbw ;; qcow2) echo overlay ;; *) echo "$1" ;; esac
}

report_table () {
  local job id iops mibs fr qr bp
  echo "| job | system | IOPS | MiB/s | spread | vs nbdkit file | vs best peer | server CPU us/IO |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for job in "${JOBS_ORDER[@]}"; do
    bp=$(best_peer "$job")
    for id in "${SYSTEMS[@]}"; do
      iops=$(med "$id" "$job")
      [ -n "$iops" ] || continue
      mibs=$(med "$id" "$job" mibs)
      fr=$(ratio "$iops" "$(med file "$(base_job "$job")")")
      qr=n/a
      [ -z "$bp" ] || qr=$(ratio "$iops" "$(med "$bp" "$job")")
      [ "$id" = file ] && [ "$job" = "$(base_job "$job")" ] && fr="1.00"
      qr=$(times_x "$qr")
      [ -z "$bp" ] || [ "$qr" = n/a ] || qr="$qr ($(peer_short "$bp"))"
      printf '| %s | %s | %.0f | %.1f | %s | %s | %s | %s |\n' \
        "$(job_label "$job")" "$(system_label "$id")" "$iops" "$mibs" \
        "$(med "$id" "$job" spread)" "$(times_x "$fr")" "$qr" \
        "$(awk -v v="$(med "$id" "$job" cpu)" 'BEGIN { printf "%.1f", v }')"
    done
  done
}

# report_scaling: the scaling rows next to the nbdkit file plugin's
report_scaling () {
  local j=$JUDGE k one
  [ -n "$(med "$j" randwrite-4k-first-j4)$(med "$j" randwrite-4k-first-qd64)" ] || return 0
  echo "## Scaling: 4 connections, and queue depth 64 (issue 17)"
  echo
  echo "$(system_label "$j") against the nbdkit file plugin, median of"
  echo "$REPEAT; each pair of passes on a fresh server and origin. 4 jobs: fio"
  echo "\`numjobs=4\` (one NBD connection each, QD16 each), each writing its own"
  echo "quarter of the origin, so the first pass still copies every chunk once."
  echo "This machine has $(nproc) cores."
  echo
  echo "| job | shadowcopy IOPS | nbdkit file IOPS | ratio | ratio by CPU | vs the same pass at 1 job QD16 |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for k in randwrite-4k-first-j4 randwrite-4k-second-j4 \
           randwrite-4k-first-qd64 randwrite-4k-second-qd64; do
    [ -n "$(med "$j" "$k")" ] || continue
    one=${k%-*}
    printf '| %s | %.0f | %.0f | %s | %s | %s |\n' "$(job_label "$k")" \
      "$(med "$j" "$k")" "$(med file "$k")" \
      "$(times_x "$(ratio "$(med "$j" "$k")" "$(med file "$k")")")" \
      "$(times_x "$(ratio "$(med file "$k" cpu)" "$(med "$j" "$k" cpu)")")" \
      "$(times_x "$(ratio "$(med "$j" "$k")" "$(med "$j" "$one")")")"
  done
}

# target_row LABEL SYS JOB BASE-SYS BASE-JOB LIMIT: one ">=" target on the
# ratio of two medians, with the same ratio by server CPU per I/O
# (base / system: lower CPU is better), which other load disturbs less.
target_row () {
  local r c
  r=$(ratio "$(med "$2" "$3")" "$(med "$4" "$5")")
  c=$(ratio "$(med "$4" "$5" cpu)" "$(med "$2" "$3" cpu)")
  echo "| $1 | $(times_x "$r") | $(times_x "$c") | >= ${6}x | $(verdict "$r" ">=" "$6") |"
}

report_targets () {
  # The judged system is the plugin's default: write-back on, where the
  # plugin has it; its rows with write-back=off are for comparison.
  local j=${JUDGE_WB:-$JUDGE} jl r cs pw="$JUDGE-pwrite"
  jl=$(system_label "$j")
  echo "Judged on **$jl** (the default chunk size, one snapshot); ratios of"
  echo "medians from this run. \"by CPU\": the same ratio computed from the"
  echo "server CPU time per I/O (base / system), which other people's load"
  echo "disturbs much less than the rates. Reads and rewrites are CPU-bound"
  echo "here, so when the two disagree on those, the rate was disturbed; a"
  echo "first write also waits for fdatasync, and there \"by CPU\" is only its"
  echo "CPU cost. Rows in italics are for comparison and are not targets."
  echo
  echo "| target | measured | by CPU | limit | status |"
  echo "| --- | ---: | ---: | ---: | --- |"
  local bp
  bp=$(best_peer randwrite-4k-first)
  if [ -n "$bp" ]; then
    target_row "first write after a snapshot vs the best peer ($(system_label "$bp")) (issue 17)" "$j" randwrite-4k-first "$bp" randwrite-4k-first 2.0
  fi
  [ "$bp" = qemu ] || target_row "_first write after a snapshot vs QEMU cbw_" "$j" randwrite-4k-first qemu randwrite-4k-first 2.0
  [ "$bp" = qcow2 ] || target_row "_first write after a snapshot vs qcow2 overlay_" "$j" randwrite-4k-first qcow2 randwrite-4k-first 2.0
  target_row "first write vs nbdkit file, durability=safe (issue 17)" "$j" randwrite-4k-first file randwrite-4k-first 0.8
  target_row "rewrite of copied chunks vs nbdkit file (issue 17)" "$j" randwrite-4k-second file randwrite-4k-second 0.95
  target_row "first write vs nbdkit file, durability=safe (design brief)" "$j" randwrite-4k-first file randwrite-4k-first 0.35
  if [ -n "$JUDGE_VOLATILE" ]; then
    target_row "first write vs nbdkit file, durability=volatile" "$JUDGE_VOLATILE" randwrite-4k-first file randwrite-4k-first 0.5
  else
    r=$(ratio "$(med "$j" randwrite-4k-first)" "$(med file randwrite-4k-first)")
    echo "| first write vs nbdkit file, durability=volatile | pending: no durability= option yet (current engine $(times_x "$r")) | | >= 0.5x | pending |"
  fi
  target_row "live random read vs nbdkit file" "$j" randread-4k-live file randread-4k-live 0.9
  target_row "snapshot random read vs nbdkit file (live read)" "$j" randread-4k-snap file randread-4k-live 0.9
  for cs in "${CHUNK_LIST[@]}"; do
    local one="sc-1-$cs${DUR_SUFFIX}" many="sc-64-$cs${DUR_SUFFIX}"
    [ -n "$(med "$many" randwrite-4k-first)" ] || continue
    target_row "first write, 64 snapshots vs 1, $cs chunks" "$many" randwrite-4k-first "$one" randwrite-4k-first 0.9
  done
  if [ -n "${JUDGE_WB:-}" ] && [ -n "$(med "$JUDGE" randwrite-4k-first)" ]; then
    target_row "_write-back=off: first write vs the best peer_" "$JUDGE" randwrite-4k-first "${bp:-qemu}" randwrite-4k-first 2.0
    target_row "_write-back=off: first write vs nbdkit file_" "$JUDGE" randwrite-4k-first file randwrite-4k-first 0.8
    target_row "_write-back=off: rewrite vs nbdkit file_" "$JUDGE" randwrite-4k-second file randwrite-4k-second 0.95
  fi
  if [ -n "$(med "$pw" randwrite-4k-first)" ]; then
    target_row "_io_uring off: first write vs the best peer_" "$pw" randwrite-4k-first "${bp:-qemu}" randwrite-4k-first 2.0
    target_row "_io_uring off: first write vs nbdkit file_" "$pw" randwrite-4k-first file randwrite-4k-first 0.35
    target_row "_io_uring off: rewrite vs nbdkit file_" "$pw" randwrite-4k-second file randwrite-4k-second 0.9
  fi
  if [ -n "${LAT_HOLD_P99:-}" ]; then
    r=$(awk -v n="$LAT_HOLD_P99" 'BEGIN { printf "%.3f", n / 1e6 }')
    echo "| write hold at snapshot creation under load, p99 (engine) | $r ms | | <= 5 ms | $(verdict "$r" "<=" 5) |"
    r=$(awk -v n="$LAT_CLI_P99" 'BEGIN { printf "%.3f", n / 1e3 }')
    echo "| _snapshot creation under load, p99 (CLI wall clock, includes the drain)_ | $r ms | | <= 5 ms | $(verdict "$r" "<=" 5) |"
  fi
  if [ -n "${MEM_PER_CHUNK:-}" ]; then
    echo "| memory per copied chunk (peak) | $MEM_PER_CHUNK B (+ constant $(awk -v k="$MEM_BASE_KIB" 'BEGIN { printf "%.1f MiB", k / 1024 }')) | | a few dozen B (<= 64 B) | $(verdict "$MEM_PER_CHUNK" "<=" 64) |"
    echo "| _memory per copied chunk (resident at the end)_ | $MEM_PER_CHUNK_RSS B | | <= 64 B | $(verdict "$MEM_PER_CHUNK_RSS" "<=" 64) |"
  fi
}

report_latency () {
  [ -n "${LAT_HOLD_P99:-}" ] || return 0
  cat <<EOF
## Snapshot creation under write load

$(system_label "$LAT_SYSTEM"), a running 4k random write load (queue depth
16, no rate limit, the whole ${SIZE} origin), $LAT_N creations one after the
other (${LAT_GAP} s apart; each deletes the snapshot made two before, so the
diff area stays small).

| view | samples | p50 | p99 | max |
| --- | ---: | ---: | ---: | ---: |
| engine: writes held (\`info --json\` holds) | $LAT_HOLD_COUNT | $(awk -v n="$LAT_HOLD_P50" 'BEGIN { printf "%.3f ms", n / 1e6 }') | $(awk -v n="$LAT_HOLD_P99" 'BEGIN { printf "%.3f ms", n / 1e6 }') | $(awk -v n="$LAT_HOLD_MAX" 'BEGIN { printf "%.3f ms", n / 1e6 }') |
| CLI: \`shadowcopy create\` wall clock | $LAT_N | $(awk -v n="$LAT_CLI_P50" 'BEGIN { printf "%.3f ms", n / 1e3 }') | $(awk -v n="$LAT_CLI_P99" 'BEGIN { printf "%.3f ms", n / 1e3 }') | $(awk -v n="$LAT_CLI_MAX" 'BEGIN { printf "%.3f ms", n / 1e3 }') |
| client: fio write completion latency during the run | $LAT_LOAD_IOPS IOPS | p99 $(awk -v n="$LAT_LOAD_P99" 'BEGIN { printf "%.3f ms", n / 1e3 }') | p99.9 $(awk -v n="$LAT_LOAD_P999" 'BEGIN { printf "%.3f ms", n / 1e3 }') | $(awk -v n="$LAT_LOAD_MAX" 'BEGIN { printf "%.3f ms", n / 1e3 }') |

With no load, a creation takes $(awk -v n="$LAT_IDLE_P50" 'BEGIN { printf "%.3f ms", n / 1e3 }') (p50 of 10) from the CLI.
The engine's figure is the time new writes wait: from the moment it asks
for the write gate (the drain of the writes in flight included) to the
release.  The CLI's figure is the whole request: process start, control
round trip, the flush before the hold, the drain and the hold.
EOF
}

report_memory () {
  [ -n "${MEM_PER_CHUNK:-}" ] || return 0
  kib () { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
  cat <<EOF
## Memory (peak RSS of nbdkit, VmHWM)

shadowcopy, $MEM_CHUNK chunks, a 1 TiB sparse origin; $MEM_N distinct 4k blocks,
one every $MEM_STRIDE bytes, are first written with no snapshot (so that
they hold data), then one snapshot is created and they are written again
($MEM_WARM first, then the rest): each write copies one chunk.

| point | copies | VmHWM |
| --- | ---: | ---: |
| started, 1 TiB origin, no snapshot | 0 | $(kib "$MEM_IDLE_KIB") |
| after writing the $MEM_N blocks, no snapshot (the constant) | 0 | $(kib "$MEM_BASE_KIB") |
| snapshot, then $MEM_WARM blocks rewritten | $MEM_WARM_COPIES | $(kib "$MEM_WARM_KIB") |
| all $MEM_N blocks rewritten | $MEM_COPIES | $(kib "$MEM_FULL_KIB") (VmRSS now $(kib "$MEM_FULL_RSS_KIB")) |

- constant: **$(kib "$MEM_BASE_KIB")** (no snapshot, after I/O)
- per copied chunk: **$MEM_PER_CHUNK bytes** ((VmHWM after - constant) /
  $MEM_COPIES copies); excluding the one-time cost of the first copies
  (bounce buffers): **$MEM_SLOPE bytes** (slope between the last two rows)
- what stays resident at the end (VmRSS, not the peak): **$MEM_PER_CHUNK_RSS
  bytes** per copied chunk over the VmRSS after the no-snapshot writes
  ($(kib "$MEM_BASE_RSS_KIB")); a peak above the resident size is a
  transient, such as a table being resized
- diff area used: $(awk -v b="$MEM_DIFF_USED" 'BEGIN { printf "%.1f MiB", b / 1048576 }')
EOF
}

# chart data: rows = jobs, columns = systems (IOPS in thousands for the 4k
# jobs, MiB/s for the 1M jobs), "-" where a system has no figure
report_chart_data () {
  local file=$1 field=$2 scale=$3 id job v
  shift 3
  {
    printf '"job"'
    for id in "${SYSTEMS[@]}"; do printf '\t"%s"' "$(system_label "$id")"; done
    echo
    for job in "$@"; do
      printf '"%s"' "$(chart_label "$job")"
      for id in "${SYSTEMS[@]}"; do
        v=$(med "$id" "$job" "$field")
        if [ -n "$v" ]; then printf '\t%s' "$(awk -v v="$v" -v s="$scale" 'BEGIN { printf "%.2f", v / s }')"
        else printf '\t-'; fi
      done
      echo
    done
  } >"$file"
}

chart_label () {
  case $1 in
    *-first) echo "write, first pass" ;;
    *-second) echo "write, second pass" ;;
    *-live) echo "read, live" ;;
    *-snap) echo "read, snapshot" ;;
  esac
}

# the colour of a system in the chart: the file plugin grey, QEMU red,
# shadowcopy by snapshot count (gold 0, blues 1, greens 64, purples
# volatile), darker for larger chunks
system_colour () {
  case $1 in
    file) echo "#7f7f7f" ;;
    qemu) echo "#d62728" ;;
    qcow2) echo "#8c564b" ;;
    *-pwrite) echo "#ff7f0e" ;;
    *-wb) echo "#17becf" ;;
    sc-0-*) echo "#e0a800" ;;
    sc-1-4K-volatile) echo "#bcbddc" ;;
    sc-1-16K-volatile) echo "#807dba" ;;
    sc-1-*-volatile) echo "#54278f" ;;
    sc-1-4K*) echo "#9ecae1" ;;
    sc-1-16K*) echo "#4292c6" ;;
    sc-1-*) echo "#08519c" ;;
    sc-*-4K*) echo "#a1d99b" ;;
    sc-*-16K*) echo "#41ab5d" ;;
    *) echo "#006d2c" ;;
  esac
}

report_chart () {
  local png=$1 title=$2 colours="" id
  for id in "${SYSTEMS[@]}"; do colours+="$(system_colour "$id") "; done
  report_chart_data "$BENCH_TMP/chart-rand.dat" iops 1000 \
    randwrite-4k-first randwrite-4k-second randread-4k-live randread-4k-snap
  report_chart_data "$BENCH_TMP/chart-seq.dat" mibs 1 \
    seqwrite-1m-first seqwrite-1m-second
  gnuplot -c "$BENCH_DIR/plot.gp" "$BENCH_TMP/chart-rand.dat" \
    "$BENCH_TMP/chart-seq.dat" "$png" "$title" "${#SYSTEMS[@]}" "$colours" \
    2>"$BENCH_TMP/logs/gnuplot.log" ||
    die "gnuplot failed: $(tail -5 "$BENCH_TMP/logs/gnuplot.log")"
}

report_raw () {
  echo "| system | job | run | IOPS | MiB/s | server CPU us/IO |"
  echo "| --- | --- | ---: | ---: | ---: | ---: |"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' \
    "$BENCH_TMP/samples.tsv"
}

# report_write MD PNG
report_write () {
  local md=$1 png=$2 have_tp=
  [ -s "$BENCH_TMP/samples.tsv" ] && have_tp=1
  if [ -n "$have_tp" ]; then
    report_medians
    report_chart "$png" "shadowcopy bench $(date +%F) ($MACHINE_SHORT, $MODE, origin $SIZE, median of $REPEAT)"
  fi
  {
    echo "# shadowcopy benchmark: $(date +%F), $MACHINE_SHORT ($MODE mode)"
    echo
    echo "Produced by \`bench/run.sh --$MODE\` (\`$MAKE_TARGET\`) from source"
    echo "commit \`$SOURCE_COMMIT\`."
    echo
    echo "## Machine and set-up"
    echo
    echo "- CPU: $CPU_MODEL, nproc $(nproc); memory $MEM_TOTAL; kernel $(uname -r)"
    echo "- $(nbdkit --version | head -1), $(qemu-storage-daemon --version | head -1), $(fio --version), $(gnuplot --version)"
    echo "- temporary files on: $FS_DESC"
    echo "- load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "  (other people's jobs share this machine: expect noise)"
    echo "- origin: $SIZE prefilled with random data, a fresh copy for every"
    echo "  server; every job writes or reads the whole origin once (4k jobs:"
    echo "  every block exactly once, fio's random map, same seed everywhere);"
    echo "  fio nbd engine over a Unix socket; each case run $REPEAT time(s), the"
    echo "  median is reported. Job files: \`bench/jobs/\`."
    echo "- nbdkit file plugin: defaults, no snapshot. QEMU: qemu-storage-daemon,"
    echo "  copy-before-write over the origin (aio=$QEMU_AIO), $QEMU_TARGET"
    echo "  target (its copy granularity is 64K), snapshot-access exported"
    echo "  read-only. qcow2 overlay: an external snapshot as a VM host takes"
    echo "  one, \`qemu-img create -f qcow2 -b ORIGIN -F raw\` (64K clusters),"
    echo "  served read-write by qemu-storage-daemon (aio=$QEMU_AIO), the"
    echo "  origin its read-only backing file and the snapshot export. None"
    echo "  flushes: fio sends no flush. \"vs best peer\": against the better of"
    echo "  the two QEMU set-ups in that row (named in brackets)."
    echo "- shadowcopy: 0, 1 or 64 existing snapshots (the 63 older ones made"
    echo "  under a ${HISTORY_IOPS}-IOPS write load so they own copies), chunk"
    echo "  sizes ${CHUNK_LIST[*]}; snapshot reads go to the newest snapshot"
    echo "  after both write passes (every chunk served from the diff area)."
    if [ -n "$DURABILITY_SUPPORTED" ]; then
      echo "- durability: every shadowcopy system runs with \`durability=safe\`"
      echo "  (copies synced before the origin is overwritten), and the 1-snapshot"
      echo "  systems also with \`durability=volatile\`."
    else
      echo "- **durability=safe|volatile: pending.** The plugin has no"
      echo "  \`durability=\` option yet; every shadowcopy figure here is the"
      echo "  current engine, which commits copies with fdatasync (what safe"
      echo "  will mean). \`bench/run.sh\` adds volatile runs by itself once"
      echo "  \`nbdkit PLUGIN --help\` lists the option."
    fi
    echo
    if [ -n "$have_tp" ]; then
      echo "## Throughput (median of $REPEAT)"
      echo
      echo "![chart]($(basename "$png"))"
      echo
      report_table
      echo
      echo "Spread: (max - min) / median of the IOPS over the $REPEAT runs. A"
      echo "snapshot read is compared with the file plugin's live read. Server"
      echo "CPU: user + system time of the server process (all its threads,"
      echo "io_uring workers included) per I/O, median: less disturbed by other"
      echo "load on the machine than the rates, and what bounds a 2-core box."
      echo
    fi
    report_scaling
    echo
    echo "## Targets (issues 3 and 17)"
    echo
    report_targets
    echo
    report_latency
    echo
    report_memory
    if [ -n "${VERIFY_RATIO:-}" ]; then
      echo
      report_verify
    fi
    if [ -n "${SPARSE_RATIO:-}" ]; then
      echo
      report_sparse_copy
    fi
    if [ -s "${TRACK_SAMPLES:-}" ]; then
      echo
      report_tracking
    fi
    if [ -s "${BACKUP_SAMPLES:-}" ]; then
      echo
      report_backup
    fi
    if [ -s "${GOBACK_SAMPLES:-}" ]; then
      echo
      report_goingback
    fi
    if [ -s "${REMOTE_SAMPLES:-}" ]; then
      echo
      report_remote
    fi
    if [ -n "$STALL_SKIP" ] || [ -s "${STALL_ROWS:-}" ]; then
      echo
      report_stalls
    fi
    if [ -n "$MEMSCALE_SKIP" ] || [ -s "${MEMSCALE_ROWS:-}" ]; then
      echo
      report_memscale
    fi
    if [ -n "$have_tp" ]; then
      echo
      echo "## Raw samples"
      echo
      report_raw
    fi
  } >"$md"
}
