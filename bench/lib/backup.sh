# bench/lib/backup.sh: `shadowcopy backup` against nbdcopy and qemu-img
# convert from the same snapshot export (issue 13; sourced by
# bench/run.sh; BENCH_PARTS "backup").
#
# The volume: the bench's random origin ($SIZE) with one 1 MiB hole in
# every 8 MiB (punched, so 7/8 of it is data), served by shadowcopy
# (chunk $DEFAULT_CHUNK, durability as the other parts); snapshot b0.
#
# Full copies of b0, each to a new file beside the bench's other files:
#   sc-raw     shadowcopy backup b0 --to T (--format raw, the default)
#   sc-qcow2   shadowcopy backup b0 --to T --format qcow2
#   nbdcopy    nbdcopy URI T (its defaults: multi-conn, block status)
#   qemu-raw   qemu-img convert -O raw URI T
#   qemu-qcow2 qemu-img convert -O qcow2 URI T
# URI is nbd+unix:///b0?socket=...  Every run: the files of the run
# before removed just before it (see backup_free), `sync` (nothing of the
# last run left to write back), then the
# command and `sync T` timed together, so that each figure is the time to
# a target on disk whatever the tool does about syncing (shadowcopy
# fsyncs its target, qemu-img flushes at close, nbdcopy writes back as it
# goes).  BACKUP_REPEAT rounds, every command once a round, the one that
# goes first rotating; medians, and ratios against nbdcopy's median.
#
# Incrementals: a full raw backup P of b0 and a full qcow2 backup PQ are
# kept; random 64K writes (aligned, distinct, fixed seed) change 1% of
# the volume, snapshot i1; 9% more, snapshot i10.  Each `backup iN
# --since b0 --base P` (raw) and `backup iN --format qcow2 --since b0
# --base PQ` (an overlay of PQ) is run BACKUP_REPEAT times; reported: its
# time against the full backup's of its format, and the bytes it wrote
# (+ zeroed) against the changed bytes that `shadowcopy diff b0 iN
# --json` reports.
#
# Once, for the account of what a backup saves by summing its blocks from
# the copy (tools/backup-sums.h): `shadowcopy verify` of a full raw
# backup, the CRC32C pass over the whole image that a backup ran after
# its copy before, and now runs only over the blocks the copy could not
# sum.
#
# The page cache: the origin is read once before the runs and stays in
# memory (it is far smaller than RAM), so every run reads the snapshot
# from the page cache: the figures are the CPU cost of the read path and
# the copy, plus the target's writes to disk (made durable inside the
# timed span).  No cache is dropped.

BACKUP_FULL_CASES=(sc-raw sc-qcow2 nbdcopy qemu-raw qemu-qcow2)
declare -gA BACKUP_WRITTEN BACKUP_READ

backup_label () {
  case $1 in
    sc-raw) echo "shadowcopy backup --format raw" ;;
    sc-qcow2) echo "shadowcopy backup --format qcow2" ;;
    nbdcopy) echo "nbdcopy" ;;
    qemu-raw) echo "qemu-img convert -O raw" ;;
    qemu-qcow2) echo "qemu-img convert -O qcow2" ;;
    inc-1) echo "shadowcopy backup --format raw, incremental, 1% changed" ;;
    inc-10) echo "shadowcopy backup --format raw, incremental, 10% changed" ;;
    incq-1) echo "shadowcopy backup --format qcow2, incremental, 1% changed" ;;
    incq-10) echo "shadowcopy backup --format qcow2, incremental, 10% changed" ;;
    *) echo "$1" ;;
  esac
}

# backup_timed NAME REP TARGET CMD...: one timed run (CMD, then `sync
# TARGET`); appends "NAME REP seconds client-cpu server-cpu alloc-KiB" to
# the samples.  Returns CMD's status (its stdout is in BACKUP_OUT, its
# stderr in BACKUP_ERR).
backup_timed () {
  local name=$1 rep=$2 target=$3 t0 t1 c0 c1 status=0 tf TIMEFORMAT='%3U %3S'
  shift 3
  backup_free
  rm -f "$target" "$target.manifest.json"
  sync
  BACKUP_STALE=("$target" "$target.manifest.json")
  tf=$BENCH_TMP/backup-time.txt
  c0=$(cpu_ticks "$SERVER_PID")
  t0=${EPOCHREALTIME/./}
  # bash's `time` gives the children's user + system CPU time.
  { time { "$@" >"$BACKUP_OUT" 2>"$BACKUP_ERR" && sync "$target"; }; } \
    2>"$tf" || status=$?
  t1=${EPOCHREALTIME/./}
  c1=$(cpu_ticks "$SERVER_PID")
  [ "$status" -eq 0 ] || return "$status"
  local s cl sv kib
  s=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e6 }')
  cl=$(awk '{ printf "%.2f", $1 + $2 }' "$tf")
  sv=$(awk -v d=$((c1 - c0)) -v t="$CLK_TCK" 'BEGIN { printf "%.2f", d / t }')
  kib=$(du -k "$target" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$s" "$cl" "$sv" "$kib" \
    >>"$BACKUP_SAMPLES"
  say "  $(backup_label "$name"): $s s, CPU client $cl s server $sv s," \
      "target $((kib / 1024)) MiB allocated"
}

# backup_free: remove the files the last step left (BACKUP_STALE).
#
# Why each run starts right after a volume's worth of page cache was
# freed: this machine is a VM whose balloon reports free memory to the
# host (virtio free page reporting), which takes it back a few seconds
# later; a guest page the host took back costs a host fault when it is
# used again.  Writing 1 GiB to a new file took 0.2-0.4 s right after
# 1 GiB was freed and 2.4-3.5 s ten seconds later (dd, 1M blocks).  A
# copy through the page cache would otherwise measure how long ago
# memory was freed; nbdcopy, which drops its target's pages as it goes,
# would barely notice.  So every copy here reuses just-freed memory.
backup_free () {
  if [ ${#BACKUP_STALE[@]} -gt 0 ]; then rm -f "${BACKUP_STALE[@]}"; fi
  BACKUP_STALE=()
}

# backup_full NAME REP: one full copy of b0 by NAME
backup_full () {
  local t=$BACKUP_DIR/$1 uri="nbd+unix:///b0?socket=$INST/nbd.sock"
  case $1 in
    sc-raw)
      backup_timed "$1" "$2" "$t" "$CLI" -c "$CTL" backup b0 --to "$t" \
        --nbd-socket "$INST/nbd.sock" --format raw ||
        die "shadowcopy backup --format raw failed: $(tail -3 "$BACKUP_ERR")" ;;
    sc-qcow2)
      backup_timed "$1" "$2" "$t" "$CLI" -c "$CTL" backup b0 --to "$t" \
        --nbd-socket "$INST/nbd.sock" --format qcow2 ||
        die "shadowcopy backup --format qcow2 failed: $(tail -3 "$BACKUP_ERR")" ;;
    nbdcopy)
      backup_timed "$1" "$2" "$t" nbdcopy "$uri" "$t" ||
        die "nbdcopy failed: $(tail -3 "$BACKUP_ERR")" ;;
    qemu-raw)
      backup_timed "$1" "$2" "$t" qemu-img convert -O raw "$uri" "$t" ||
        die "qemu-img convert -O raw failed: $(tail -3 "$BACKUP_ERR")" ;;
    qemu-qcow2)
      backup_timed "$1" "$2" "$t" qemu-img convert -O qcow2 "$uri" "$t" ||
        die "qemu-img convert -O qcow2 failed: $(tail -3 "$BACKUP_ERR")" ;;
  esac
}

# backup_change FIRST COUNT: write random data over the 64K blocks
# FIRST .. FIRST+COUNT-1 of a fixed random permutation of the volume's
# blocks (so the changes never overlap), through the live export.
backup_change () {
  BACKUP_SEED=13 BACKUP_FIRST=$1 BACKUP_COUNT=$2 BACKUP_BLOCKS=$((SIZE_BYTES / 65536)) \
    nbdsh -u "$LIVE_URI" -c '
import os, random
n = int(os.environ["BACKUP_BLOCKS"])
order = list(range(n))
random.Random(int(os.environ["BACKUP_SEED"])).shuffle(order)
first, count = int(os.environ["BACKUP_FIRST"]), int(os.environ["BACKUP_COUNT"])
for b in order[first:first + count]:
    h.pwrite(os.urandom(65536), b * 65536)
h.flush()
' || die "writing the changes on the live export failed"
}

backup_bench () {
  local rep k i name t n1 n10
  BACKUP_REPEAT=${BENCH_BACKUP_REPEAT:-5}
  [ "$MODE" != quick ] || BACKUP_REPEAT=${BENCH_BACKUP_REPEAT:-1}
  BACKUP_SAMPLES=$BENCH_TMP/backup.tsv
  BACKUP_ERR=$BENCH_TMP/logs/backup-cmd.err BACKUP_OUT=$BENCH_TMP/backup-cmd.out
  BACKUP_STALE=()
  : >"$BACKUP_SAMPLES"
  [ "$SIZE_BYTES" -ge $((16 * 1048576)) ] || die "the backup part needs BENCH_SIZE >= 16M"
  say "backup: a $SIZE volume, 7/8 random data (a 1 MiB hole in every 8 MiB)," \
      "chunk $DEFAULT_CHUNK, $BACKUP_REPEAT run(s) each"
  new_instance
  cp "$BASE" "$INST/origin"
  for ((i = 0; i < SIZE_BYTES / 8388608; i++)); do
    fallocate -p -o $(((i * 8 + i * 5 % 8) * 1048576)) -l 1048576 "$INST/origin"
  done
  sync "$INST/origin"
  BACKUP_DATA_KIB=$(du -k "$INST/origin" | cut -f1)
  start_sc_server "$DEFAULT_CHUNK" "${DUR_SUFFIX#-}" "$BENCH_TMP/logs/backup.log"
  sc create b0 >/dev/null
  BACKUP_DIR=$INST/targets
  mkdir -p "$BACKUP_DIR"
  # The origin into the page cache once, as every run after the first
  # would have it; and a volume's worth of page cache for the first run
  # to find just freed, as every later run does (see backup_free).
  cat "$INST/origin" >/dev/null
  head -c "$SIZE_BYTES" /dev/zero >"$BACKUP_DIR/warm-up"
  sync "$BACKUP_DIR/warm-up"
  BACKUP_STALE=("$BACKUP_DIR/warm-up")

  for ((rep = 1; rep <= BACKUP_REPEAT; rep++)); do
    for ((k = 0; k < ${#BACKUP_FULL_CASES[@]}; k++)); do
      name=${BACKUP_FULL_CASES[$(((k + rep - 1) % ${#BACKUP_FULL_CASES[@]}))]}
      say "backup, run $rep/$BACKUP_REPEAT: $(backup_label "$name")"
      backup_full "$name" "$rep"
    done
  done
  backup_free

  # PREV of the incrementals, a full raw backup of b0 (not timed).  A
  # benchmark of a wrong copy is worth nothing: it must equal nbdcopy's
  # copy of the same export.
  "$CLI" -c "$CTL" backup b0 --to "$BACKUP_DIR/prev" --nbd-socket "$INST/nbd.sock" \
    >/dev/null || die "the full backup of b0 (PREV) failed"
  "$CLI" -c "$CTL" backup b0 --to "$BACKUP_DIR/prevq" --format qcow2 \
    --nbd-socket "$INST/nbd.sock" >/dev/null ||
    die "the full qcow2 backup of b0 (PREV) failed"
  nbdcopy "nbd+unix:///b0?socket=$INST/nbd.sock" "$BACKUP_DIR/check"
  cmp "$BACKUP_DIR/prev" "$BACKUP_DIR/check" ||
    die "the raw backup differs from nbdcopy's copy of b0"
  qemu-img compare -q "$BACKUP_DIR/check" "$BACKUP_DIR/prevq" ||
    die "the qcow2 backup differs from nbdcopy's copy of b0"
  # The CRC32C pass over a whole image: verify reads it as a backup read
  # its image after the copy before it summed blocks from the copy.
  t=${EPOCHREALTIME/./}
  "$CLI" verify "$BACKUP_DIR/prev" >/dev/null || die "verify of the raw backup failed"
  BACKUP_VERIFY_S=$(awk -v d=$((${EPOCHREALTIME/./} - t)) 'BEGIN { printf "%.3f", d / 1e6 }')
  "$CLI" verify "$BACKUP_DIR/prevq" >/dev/null || die "verify of the qcow2 backup failed"
  BACKUP_STALE=("$BACKUP_DIR/check")

  # Incrementals, from PREV.
  n1=$((SIZE_BYTES / 65536 / 100)) n10=$((SIZE_BYTES / 65536 / 10))
  backup_change 0 "$n1"
  sc create i1 >/dev/null
  backup_change "$n1" $((n10 - n1))
  sc create i10 >/dev/null
  for i in 1 10; do
    BACKUP_DIFF_BYTES[$i]=$(json_num "$(sc diff b0 "i$i" --json | tr -d '\n')" total-bytes)
    nbdcopy "nbd+unix:///i$i?socket=$INST/nbd.sock" "$BACKUP_DIR/check-$i"
    backup_incremental "inc-$i" "i$i" "$BACKUP_DIR/prev" raw
    cmp "$BACKUP_DIR/check-$i" "$t" || die "the incremental backup of i$i differs from its snapshot"
    "$CLI" verify "$t" >/dev/null || die "verify of the raw incremental of i$i failed"
    BACKUP_REFLINK=$(grep -o '"reflinked": *[a-z]*' "$BENCH_TMP/inc-$i.json" | grep -o '[a-z]*$')
    BACKUP_STALE=("$t" "$t.manifest.json")
    backup_incremental "incq-$i" "i$i" "$BACKUP_DIR/prevq" qcow2
    qemu-img compare -q "$BACKUP_DIR/check-$i" "$t" ||
      die "the qcow2 incremental backup of i$i differs from its snapshot"
    "$CLI" verify "$t" >/dev/null || die "verify of the qcow2 incremental of i$i failed"
    BACKUP_STALE=("$t" "$t.manifest.json" "$BACKUP_DIR/check-$i")
  done
  stop_system
  rm -rf "$INST"
  say "  backup: $(report_backup_line)"
}

# backup_incremental NAME SNAPSHOT PREV FORMAT: BACKUP_REPEAT timed runs
# of `backup SNAPSHOT --since b0 --base PREV --format FORMAT` to
# $BACKUP_DIR/NAME (t, left in place after the last); its --json in
# $BENCH_TMP/NAME.json, its counts in BACKUP_WRITTEN[NAME], BACKUP_READ[NAME].
backup_incremental () {
  local name=$1 snap=$2 prev=$3 fmt=$4 rep
  t=$BACKUP_DIR/$name
  for ((rep = 1; rep <= BACKUP_REPEAT; rep++)); do
    say "backup, run $rep/$BACKUP_REPEAT: $(backup_label "$name")"
    backup_timed "$name" "$rep" "$t" "$CLI" -c "$CTL" backup "$snap" --to "$t" \
      --nbd-socket "$INST/nbd.sock" --format "$fmt" --since b0 --base "$prev" \
      --json || die "incremental backup of $snap failed: $(tail -3 "$BACKUP_ERR")"
  done
  BACKUP_STALE=()               # t is checked by the caller
  tr -d '\n' <"$BACKUP_OUT" >"$BENCH_TMP/$name.json"
  BACKUP_WRITTEN[$name]=$(( $(json_num "$(cat "$BENCH_TMP/$name.json")" bytes-written) +
                            $(json_num "$(cat "$BENCH_TMP/$name.json")" bytes-zeroed) ))
  BACKUP_READ[$name]=$(json_num "$(cat "$BENCH_TMP/$name.json")" bytes-read)
}

# backup_med NAME [3|4|5|6]: median seconds (field 3), client CPU (4),
# server CPU (5), allocated KiB (6)
backup_med () {
  awk -F'\t' -v n="$1" -v f="${2:-3}" '$1 == n { print $f }' "$BACKUP_SAMPLES" | median
}

backup_mibs () {
  awk -v s="$1" -v b="$SIZE_BYTES" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }'
}

report_backup_line () {
  echo "full raw $(backup_med sc-raw) s, nbdcopy $(backup_med nbdcopy) s:" \
       "$(times_x "$(ratio "$(backup_med nbdcopy)" "$(backup_med sc-raw)")") nbdcopy's rate;" \
       "incremental 1% $(backup_med inc-1) s, 10% $(backup_med inc-10) s;" \
       "qcow2 full $(backup_med sc-qcow2) s, incremental 1% $(backup_med incq-1) s," \
       "10% $(backup_med incq-10) s"
}

report_backup () {
  [ -s "${BACKUP_SAMPLES:-}" ] || return 0
  local name med nb runs i
  nb=$(backup_med nbdcopy)
  echo "## Backup (issue 13)"
  echo
  echo "A $SIZE volume of random data with a 1 MiB hole in every 8 MiB"
  echo "($((BACKUP_DATA_KIB / 1024)) MiB of data), shadowcopy with $DEFAULT_CHUNK chunks"
  echo "${DUR_SUFFIX:+(durability=${DUR_SUFFIX#-})}; every tool copies the same snapshot export"
  echo "(\`nbd+unix:///b0?socket=...\`) to a new file on the bench's file system,"
  echo "with its defaults. Each run: \`sync\` first, then the command and"
  echo "\`sync TARGET\` timed together (a target on disk). The origin stays in"
  echo "the page cache (no cache is dropped): the snapshot is read from memory,"
  echo "the target written to disk. Median of $BACKUP_REPEAT, the order rotating"
  echo "from round to round; MiB/s over the volume size; \"vs nbdcopy\": the"
  echo "ratio of rates (nbdcopy's time / this time). CPU: user + system"
  echo "seconds of the copying process (client) and of nbdkit (server)."
  echo
  echo "| copy | median s | MiB/s | vs nbdcopy | client CPU s | server CPU s | target allocated | runs (s) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for name in "${BACKUP_FULL_CASES[@]}"; do
    med=$(backup_med "$name")
    runs=$(awk -F'\t' -v n="$name" '$1 == n { printf "%s ", $3 }' "$BACKUP_SAMPLES")
    echo "| $(backup_label "$name") | $med | $(backup_mibs "$med") |" \
         "$(times_x "$(ratio "$nb" "$med")") | $(backup_med "$name" 4) |" \
         "$(backup_med "$name" 5) | $(awk -v k="$(backup_med "$name" 6)" 'BEGIN { printf "%.0f MiB", k / 1024 }') | $runs|"
  done
  echo
  echo "Design brief target, a full backup at least as fast as nbdcopy of the"
  echo "same snapshot: $(times_x "$(ratio "$nb" "$(backup_med sc-raw)")") ($(verdict "$(ratio "$nb" "$(backup_med sc-raw)")" ">=" 1.0))."
  echo
  echo "The CRC32C pass over a whole image (\`shadowcopy verify\` of a full raw"
  echo "backup), once: $BACKUP_VERIFY_S s. A backup now sums from its copy's"
  echo "buffers every block that one read (or one zero range) wrote whole, and"
  echo "runs this pass only over the other blocks (none here: the holes are"
  echo "1 MiB-aligned)."
  echo
  echo "Incrementals (\`--since b0 --base PREV\`, PREV a full backup of b0 in"
  echo "the same format), after random 64K writes (aligned, never the same"
  echo "block twice) over 1% and 10% of the volume. A raw target starts as a"
  echo "copy of PREV (reflinked: ${BACKUP_REFLINK:-?} on this file system), then the"
  echo "changed ranges are written; a qcow2 target is a new overlay whose"
  echo "backing file is PREV, holding only the changed ranges."
  echo
  echo "| backup | median s | vs full backup (same format) | changed (diff) | written + zeroed | read | client CPU s | server CPU s | runs (s) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for name in inc-1 inc-10 incq-1 incq-10; do
    local full=sc-raw
    [ "${name#incq}" = "$name" ] || full=sc-qcow2
    i=${name#*-}
    med=$(backup_med "$name")
    runs=$(awk -F'\t' -v n="$name" '$1 == n { printf "%s ", $3 }' "$BACKUP_SAMPLES")
    echo "| $(backup_label "$name") | $med |" \
         "$(times_x "$(ratio "$med" "$(backup_med "$full")")") |" \
         "${BACKUP_DIFF_BYTES[$i]} | ${BACKUP_WRITTEN[$name]} | ${BACKUP_READ[$name]} |" \
         "$(backup_med "$name" 4) | $(backup_med "$name" 5) | $runs|"
  done
}
