#!/usr/bin/env bash
# shadowcopy benchmark: copy-on-write throughput against the nbdkit file
# plugin and QEMU fleecing, side by side in one run (issue 3).  See
# bench/README.md.
#
#   bench/run.sh [--quick | --full] [BUILDDIR]      (make bench / bench-quick)
#
# BUILDDIR is a built shadowcopy tree (default: the current directory).
# The results go to bench/results/DATE-MACHINE[-quick].md and .png.
# Environment overrides (defaults: full / quick):
#   BENCH_SIZE=1G/128M          origin size (each job covers it once)
#   BENCH_REPEAT=3/1            runs per case (the median is reported)
#   BENCH_CHUNKS="4K 16K 64K"   shadowcopy chunk sizes
#   BENCH_SNAPS="0 1 64"        existing snapshots
#   BENCH_CREATIONS=200/100     snapshot creations under load
#   BENCH_LAT_SYSTEM=sc-0-64K-safe-wb  the system they are made on
#   BENCH_RSS_CHUNKS=100000     copied chunks in the memory measurement
#   BENCH_MEM_CHUNK=4K          chunk size in the memory measurement
#   BENCH_PARTS="throughput latency memory verify sparse-copy tracking backup goingback remote stalls mem-scale"
#   BENCH_STALL_COPIES=1000000/100000  stalls: copied chunks (built offline)
#   BENCH_STALL_SECONDS=10/3    its seconds per phase
#   BENCH_STALL_SNAPS=20        its snapshots sharing the copies
#   BENCH_STALL_CHUNK=4K        its chunk size
#   BENCH_MEMSCALE_COPIES="100000 1000000 10000000"/"10000 100000"
#                               mem-scale: the copy counts (built offline)
#   BENCH_MEMSCALE_IOS=100000/10000  its I/Os per rate measurement
#   BENCH_MEMSCALE_CHUNK=4K     its chunk size
#   BENCH_MEMSCALE_ORDER=ascending  the order its copies are recorded in
#                               (scattered: as random first writes would)
#   BENCH_INDEX_CACHE=224M      index-cache= given to the plugin (when it has it)
#   BENCH_VERIFY_REPEAT=5/3     rounds of the read verification comparison
#   BENCH_SPARSE_SIZE=64G/8G    sparse-copy: origin size, data in it,
#   BENCH_SPARSE_DATA=1G/128M   runs per export, and the --no-extents
#   BENCH_SPARSE_REPEAT=5/1     reference run (BENCH_SPARSE_BASELINE=0: none)
#   BENCH_TRACK_REPEAT=3/1      rounds of the changed-block tracking part
#   BENCH_TRACK_CHUNK=64K       its chunk size
#   BENCH_BACKUP_REPEAT=5/1     runs of each copy in the backup part
#   BENCH_GOBACK_REPEAT=3/1     rounds of the going-back part (revert, clones)
#   BENCH_GOBACK_COPY_SECONDS=30  its bounded revert: $SIZE copied back in that
#   BENCH_GOBACK_IO_SECONDS=8   its live jobs during and after that revert
#   BENCH_REMOTE_REPEAT=3/1     rounds of the NBD origin part (remote)
#   BENCH_REMOTE_CHUNK=64K      its chunk size
#   BENCH_QEMU_AIO=io_uring     BENCH_QEMU_TARGET=qcow2 (or raw)
#   BENCH_PWRITE=1              0: no run of shadowcopy with io_uring off
#   BENCH_RESULTS=DIR           BENCH_TMPDIR=DIR (default $TMPDIR or /tmp)
set -euo pipefail
export PATH="/usr/bin:$PATH" LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS="$BENCH_DIR/jobs"
. "$BENCH_DIR/lib/common.sh"
. "$BENCH_DIR/lib/systems.sh"
. "$BENCH_DIR/lib/report.sh"
. "$BENCH_DIR/lib/verify.sh"
. "$BENCH_DIR/lib/sparse-copy.sh"
. "$BENCH_DIR/lib/tracking.sh"
. "$BENCH_DIR/lib/backup.sh"
. "$BENCH_DIR/lib/goingback.sh"
. "$BENCH_DIR/lib/remote.sh"
. "$BENCH_DIR/lib/stalls.sh"
. "$BENCH_DIR/lib/memscale.sh"

usage () { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

MODE=full
build=.
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
build=$(cd "$build" && pwd)
PLUGIN="$build/.libs/nbdkit-shadowcopy-plugin.so"
CLI="$build/tools/shadowcopy"
[ -f "$PLUGIN" ] && [ -x "$CLI" ] ||
  die "no built shadowcopy in $build (run make there first)"

if [ "$MODE" = quick ]; then
  SIZE=${BENCH_SIZE:-128M} REPEAT=${BENCH_REPEAT:-1}
  CREATIONS=${BENCH_CREATIONS:-100} MAKE_TARGET="make bench-quick"
  STALL_COPIES=${BENCH_STALL_COPIES:-100000} STALL_SECONDS=${BENCH_STALL_SECONDS:-3}
  MEMSCALE_COPIES=${BENCH_MEMSCALE_COPIES:-10000 100000}
  MEMSCALE_IOS=${BENCH_MEMSCALE_IOS:-10000}
else
  SIZE=${BENCH_SIZE:-1G} REPEAT=${BENCH_REPEAT:-3}
  CREATIONS=${BENCH_CREATIONS:-200} MAKE_TARGET="make bench"
  STALL_COPIES=${BENCH_STALL_COPIES:-1000000} STALL_SECONDS=${BENCH_STALL_SECONDS:-10}
  MEMSCALE_COPIES=${BENCH_MEMSCALE_COPIES:-100000 1000000 10000000}
  MEMSCALE_IOS=${BENCH_MEMSCALE_IOS:-100000}
fi
STALL_SNAPS=${BENCH_STALL_SNAPS:-20}
STALL_CHUNK=${BENCH_STALL_CHUNK:-4K}
MEMSCALE_CHUNK=${BENCH_MEMSCALE_CHUNK:-4K}
MEMSCALE_CACHE=${BENCH_INDEX_CACHE:-224M}
MEMSCALE_ORDER=${BENCH_MEMSCALE_ORDER:-ascending}
read -r -a MEMSCALE_COPIES_LIST <<<"$MEMSCALE_COPIES"
RSS_CHUNKS=${BENCH_RSS_CHUNKS:-100000}
MEM_CHUNK=${BENCH_MEM_CHUNK:-4K}
read -r -a CHUNK_LIST <<<"${BENCH_CHUNKS:-4K 16K 64K}"
read -r -a SNAP_LIST <<<"${BENCH_SNAPS:-0 1 64}"
PARTS=${BENCH_PARTS:-throughput latency memory verify sparse-copy tracking backup goingback remote stalls mem-scale}
QEMU_AIO=${BENCH_QEMU_AIO:-io_uring}
QEMU_TARGET=${BENCH_QEMU_TARGET:-qcow2}
HISTORY_IOPS=${BENCH_HISTORY_IOPS:-2000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
# The plugin's default chunk size: the one the targets are judged on.
DEFAULT_CHUNK=64K
[[ " ${CHUNK_LIST[*]} " == *" $DEFAULT_CHUNK "* ]] || DEFAULT_CHUNK=${CHUNK_LIST[-1]}
LAT_GAP=0.05
has_part () { [[ " $PARTS " == *" $1 "* ]]; }

trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bench_deps
SIZE_BYTES=$(numfmt --from=iec "$SIZE")
[ $((SIZE_BYTES % 1048576)) -eq 0 ] || die "BENCH_SIZE must be a multiple of 1M"
bench_mktemp
[[ $BENCH_TMP != *,* ]] || die "the temporary directory must not contain a comma (QEMU options)"
started=$SECONDS

# ---- the machine ----------------------------------------------------------------

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
MEM_TOTAL=$(awk -v k="$mem_kib" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
MACHINE_SHORT="$(nproc)cpu-$(awk -v k="$mem_kib" 'BEGIN { printf "%.0f", k / 1048576 }')G"
FS_DESC=$(df -PT "$BENCH_TMP" | awk 'NR == 2 { print $2 " on " $1 }')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
SOURCE_COMMIT=$(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
# (bench/ itself does not count: it does not change what is measured)
if [ -n "$(git -C "$BENCH_DIR/.." status --porcelain --untracked-files=no \
           -- . ':!bench' 2>/dev/null)" ]; then
  SOURCE_COMMIT="$SOURCE_COMMIT (with uncommitted changes)"
fi

# ---- the systems -------------------------------------------------------------------

DURABILITY_SUPPORTED=
if nbdkit "$PLUGIN" --help 2>/dev/null | grep '^durability=' >/dev/null; then
  DURABILITY_SUPPORTED=1
fi
DUR_SUFFIX=${DURABILITY_SUPPORTED:+-safe}
# The peers: QEMU fleecing and a qcow2 overlay; every ratio is taken
# against the better of the two in each row (report.sh, best_peer).
SYSTEMS=(file qemu qcow2)
for n in "${SNAP_LIST[@]}"; do
  if [ "$n" -eq 0 ]; then
    SYSTEMS+=("sc-0-$DEFAULT_CHUNK$DUR_SUFFIX")
  else
    for cs in "${CHUNK_LIST[@]}"; do SYSTEMS+=("sc-$n-$cs$DUR_SUFFIX"); done
  fi
done
# The same as the judged system with io_uring off: the engine's
# pread/pwrite path, for the io_uring/threading decision.
[ "${BENCH_PWRITE:-1}" = 0 ] || SYSTEMS+=("sc-1-$DEFAULT_CHUNK$DUR_SUFFIX-pwrite")
# The judged system with write-back=on, where the plugin has it.
JUDGE_WB=
if nbdkit "$PLUGIN" --help 2>/dev/null | grep '^write-back=' >/dev/null; then
  JUDGE_WB="sc-1-$DEFAULT_CHUNK$DUR_SUFFIX-wb"
  SYSTEMS+=("$JUDGE_WB")
fi
JUDGE="sc-1-$DEFAULT_CHUNK$DUR_SUFFIX" JUDGE_VOLATILE=
if [ -n "$DURABILITY_SUPPORTED" ]; then
  for cs in "${CHUNK_LIST[@]}"; do SYSTEMS+=("sc-1-$cs-volatile"); done
  JUDGE_VOLATILE="sc-1-$DEFAULT_CHUNK-volatile"
fi

say "$MODE mode: origin $SIZE, $REPEAT run(s) per case, ${#SYSTEMS[@]} systems" \
    "(${SYSTEMS[*]}); temporary files in $BENCH_TMP"
[ -n "$DURABILITY_SUPPORTED" ] ||
  say "durability=safe|volatile: pending (the plugin has no such option yet)"

# Random data for every origin, written once.
BASE="$BENCH_TMP/base"
head -c "$SIZE_BYTES" /dev/urandom >"$BASE"

# ---- throughput ------------------------------------------------------------------------

: >"$BENCH_TMP/samples.tsv"

# job SYSTEM-ID JOB FIOFILE URI REP [VAR=VALUE...]: one measured fio run;
# also the server's CPU time per I/O (less sensitive to other load than
# the rate)
job () {
  local c0 c1 bs cpu
  case $2 in *-1m-*) bs=1048576 ;; *) bs=4096 ;; esac
  c0=$(cpu_ticks "$SERVER_PID")
  run_fio "$1-$2-$5" "$JOBS/$3" "$4" "$SIZE_BYTES" "${@:6}"
  c1=$(cpu_ticks "$SERVER_PID")
  cpu=$(awk -v d=$((c1 - c0)) -v t="$CLK_TCK" -v n=$((SIZE_BYTES / bs)) \
    'BEGIN { printf "%.1f", d * 1e6 / t / n }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$5" "$FIO_IOPS" "$FIO_MIBS" \
    "$cpu" >>"$BENCH_TMP/samples.tsv"
  say "  $2: $FIO_IOPS IOPS, $FIO_MIBS MiB/s, server CPU $cpu us/IO"
}

throughput () {
  local rep id
  # Every system once per round, rounds repeated: a burst of someone
  # else's load then hits one run of several systems, not every run of one.
  for ((rep = 1; rep <= REPEAT; rep++)); do
    for id in "${SYSTEMS[@]}"; do
      say "run $rep/$REPEAT: $(system_label "$id")"
      start_system "$id"
      job "$id" randwrite-4k-first randwrite-4k.fio "$LIVE_URI" "$rep"
      settle
      job "$id" randwrite-4k-second randwrite-4k.fio "$LIVE_URI" "$rep"
      settle
      job "$id" randread-4k-live randread-4k.fio "$LIVE_URI" "$rep"
      if [ -n "$SNAP_URI" ]; then
        job "$id" randread-4k-snap randread-4k.fio "$SNAP_URI" "$rep"
      fi
      # The sequential jobs need chunks not yet copied: a fresh start.
      start_system "$id"
      job "$id" seqwrite-1m-first seqwrite-1m.fio "$LIVE_URI" "$rep"
      settle
      job "$id" seqwrite-1m-second seqwrite-1m.fio "$LIVE_URI" "$rep"
      stop_system
      case $id in file|"$JUDGE") scaling "$id" "$rep" ;; esac
    done
  done
}

# scaling ID REP: the 4k random write passes with 4 jobs (4 connections,
# QD16 each) and with one job at QD64, each on a fresh server (issue 17).
scaling () {
  local id=$1 rep=$2 quarter=$((SIZE_BYTES / 4))
  start_system "$id"
  job "$id" randwrite-4k-first-j4 randwrite-4k-scale.fio "$LIVE_URI" "$rep" \
    BENCH_NUMJOBS=4 BENCH_IODEPTH=16 BENCH_PART_SIZE=$quarter
  settle
  job "$id" randwrite-4k-second-j4 randwrite-4k-scale.fio "$LIVE_URI" "$rep" \
    BENCH_NUMJOBS=4 BENCH_IODEPTH=16 BENCH_PART_SIZE=$quarter
  start_system "$id"
  job "$id" randwrite-4k-first-qd64 randwrite-4k-scale.fio "$LIVE_URI" "$rep" \
    BENCH_NUMJOBS=1 BENCH_IODEPTH=64 BENCH_PART_SIZE="$SIZE_BYTES"
  settle
  job "$id" randwrite-4k-second-qd64 randwrite-4k-scale.fio "$LIVE_URI" "$rep" \
    BENCH_NUMJOBS=1 BENCH_IODEPTH=64 BENCH_PART_SIZE="$SIZE_BYTES"
  stop_system
}

# ---- snapshot creation under load -----------------------------------------------------

latency () {
  local i t0 t1 info
  # The plugin's default (write-back=on): a creation's hold drains the
  # write-back queue.
  LAT_SYSTEM=${BENCH_LAT_SYSTEM:-"sc-0-$DEFAULT_CHUNK$DUR_SUFFIX-wb"}
  say "creation latency: $CREATIONS snapshots under a 4k random write load"
  start_system "$LAT_SYSTEM"
  # For reference, a few creations with no load: the CLI's own cost.
  : >"$BENCH_TMP/idle-us.txt"
  for ((i = 1; i <= 10; i++)); do
    t0=${EPOCHREALTIME/./}
    sc create "idle$i" >/dev/null
    t1=${EPOCHREALTIME/./}
    echo $((t1 - t0)) >>"$BENCH_TMP/idle-us.txt"
  done
  LAT_IDLE_P50=$(percentile 50 <"$BENCH_TMP/idle-us.txt")
  # A fresh server, so that the engine's statistics hold only the loaded
  # creations.
  start_system "$LAT_SYSTEM"
  start_load 0
  sleep 1
  : >"$BENCH_TMP/create-us.txt"
  for ((i = 1; i <= CREATIONS; i++)); do
    t0=${EPOCHREALTIME/./}
    sc create "lat$i" >/dev/null
    t1=${EPOCHREALTIME/./}
    echo $((t1 - t0)) >>"$BENCH_TMP/create-us.txt"
    if ((i > 2)); then sc delete "lat$((i - 2))" >/dev/null; fi
    sleep "$LAT_GAP"
  done
  info=$(sc info --json)
  stop_load
  stop_system
  LAT_N=$CREATIONS
  LAT_HOLD_COUNT=$(json_num "$info" count)
  LAT_HOLD_P50=$(json_num "$info" p50_ns)
  LAT_HOLD_P99=$(json_num "$info" p99_ns)
  LAT_HOLD_MAX=$(json_num "$info" max_ns)
  [ -n "$LAT_HOLD_P99" ] || die "no holds in info --json: $info"
  LAT_CLI_P50=$(percentile 50 <"$BENCH_TMP/create-us.txt")
  LAT_CLI_P99=$(percentile 99 <"$BENCH_TMP/create-us.txt")
  LAT_CLI_MAX=$(percentile 100 <"$BENCH_TMP/create-us.txt")
  fio_parse "$LOAD_OUT" || die "load fio: no result: $(tail -5 "$LOAD_OUT.err")"
  LAT_LOAD_IOPS=$FIO_IOPS
  read -r LAT_LOAD_P99 LAT_LOAD_P999 LAT_LOAD_MAX < <(fio_clat "$LOAD_OUT")
  say "  engine hold p50 $LAT_HOLD_P50 ns p99 $LAT_HOLD_P99 ns;" \
      "CLI p50 $LAT_CLI_P50 us p99 $LAT_CLI_P99 us; load $LAT_LOAD_IOPS IOPS"
}

# ---- memory ------------------------------------------------------------------------------

# fill FROM COUNT: write COUNT of the MEM_N strided blocks from index FROM
fill () {
  run_fio "mem-$1-$2-$RANDOM" "$JOBS/fill-strided-4k.fio" "$LIVE_URI" \
    $(($2 * MEM_STRIDE)) BENCH_OFFSET=$(($1 * MEM_STRIDE)) BENCH_NR="$2" \
    BENCH_SKIP=$((MEM_STRIDE - 4096))
}

memory () {
  local info
  MEM_N=$RSS_CHUNKS
  MEM_WARM=$((MEM_N / 10))
  # One block every MEM_STRIDE bytes, a multiple of 64K, over the 1 TiB.
  MEM_STRIDE=$(((1 << 40) / MEM_N / 65536 * 65536))
  [ "$MEM_STRIDE" -ge 65536 ] || die "BENCH_RSS_CHUNKS too large"
  say "memory: 1 TiB sparse origin, $MEM_CHUNK chunks, $MEM_N copied chunks"
  new_instance
  truncate -s 1T "$INST/origin"
  start_sc_server "$MEM_CHUNK" "${DUR_SUFFIX#-}" "$BENCH_TMP/logs/memory.log"
  MEM_IDLE_KIB=$(vm_kib "$SERVER_PID" VmHWM)
  fill 0 "$MEM_N"
  MEM_BASE_KIB=$(vm_kib "$SERVER_PID" VmHWM)
  MEM_BASE_RSS_KIB=$(vm_kib "$SERVER_PID" VmRSS)
  sc create mem >/dev/null
  fill 0 "$MEM_WARM"
  MEM_WARM_KIB=$(vm_kib "$SERVER_PID" VmHWM)
  MEM_WARM_COPIES=$(json_num "$(sc info --json)" copies)
  fill "$MEM_WARM" $((MEM_N - MEM_WARM))
  MEM_FULL_KIB=$(vm_kib "$SERVER_PID" VmHWM)
  MEM_FULL_RSS_KIB=$(vm_kib "$SERVER_PID" VmRSS)
  info=$(sc info --json)
  MEM_COPIES=$(json_num "$info" copies)
  MEM_DIFF_USED=$(json_num "$info" diff_used_bytes)
  stop_system
  rm -rf "$INST"
  MEM_PER_CHUNK=$(awk -v a="$MEM_FULL_KIB" -v b="$MEM_BASE_KIB" -v n="$MEM_COPIES" \
    'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
  MEM_PER_CHUNK_RSS=$(awk -v a="$MEM_FULL_RSS_KIB" -v b="$MEM_BASE_RSS_KIB" \
    -v n="$MEM_COPIES" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
  MEM_SLOPE=$(awk -v a="$MEM_FULL_KIB" -v b="$MEM_WARM_KIB" -v n="$MEM_COPIES" \
    -v m="$MEM_WARM_COPIES" 'BEGIN { printf "%.1f", (a - b) * 1024 / (n - m) }')
  say "  VmHWM idle $MEM_IDLE_KIB KiB, constant $MEM_BASE_KIB KiB," \
      "after $MEM_COPIES copies $MEM_FULL_KIB KiB: $MEM_PER_CHUNK B/chunk" \
      "($MEM_SLOPE B/chunk after the first $MEM_WARM_COPIES)"
}

# ---- run ----------------------------------------------------------------------------------

has_part throughput && throughput
has_part latency && latency
has_part memory && memory
has_part verify && verify_cost
has_part sparse-copy && sparse_copy
has_part tracking && tracking
has_part backup && backup_bench
has_part goingback && goingback
has_part remote && remote_bench
has_part stalls && stalls
has_part mem-scale && memscale

mkdir -p "$RESULTS"
name="$(date +%F)-$MACHINE_SHORT"
[ "$MODE" = quick ] && name="$name-quick"
report_write "$RESULTS/$name.md" "$RESULTS/$name.png"
say "done in $((SECONDS - started)) s: $RESULTS/$name.md"
[ -s "$BENCH_TMP/samples.tsv" ] && say "chart: $RESULTS/$name.png"
exit 0
