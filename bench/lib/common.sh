# bench/lib/common.sh: helpers for bench/run.sh (sourced, not run).
#
# Logging, the packages the benchmark needs, the temporary directory and
# every process started by the benchmark (all stopped by `bench_cleanup`,
# which run.sh installs as its EXIT trap), fio runs and small statistics.

say () { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die () { say "error: $*"; exit 1; }

# ---- packages ---------------------------------------------------------------

# command -> Debian package
declare -A BENCH_PKG=(
  [fio]=fio
  [gnuplot]=gnuplot-nox
  [qemu-storage-daemon]=qemu-system-common
  [qemu-img]=qemu-utils
  [nbdkit]=nbdkit
  [numfmt]=coreutils
  [truncate]=coreutils
)

# Install what is missing (apt-get, through sudo when not root).  Runs
# `apt-get update` only when something is missing.
bench_deps () {
  local cmd missing=()
  for cmd in "${!BENCH_PKG[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${BENCH_PKG[$cmd]}")
  done
  # The file plugin ships with nbdkit on Debian, but check it by name.
  if command -v nbdkit >/dev/null 2>&1 &&
     ! nbdkit file --version >/dev/null 2>&1; then
    missing+=(nbdkit)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 ||
    die "missing ${missing[*]} and no apt-get: install them yourself"
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      die "missing ${missing[*]}: as root, apt-get install ${missing[*]}"
    as_root=(sudo)
  fi
  say "installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
    </dev/null >&2
  for cmd in "${!BENCH_PKG[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing"
  done
}

# ---- processes and temporary files ------------------------------------------

BENCH_TMP=
BENCH_PIDS=()

bench_mktemp () {
  BENCH_TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/shadowcopy-bench.XXXXXX")
  mkdir -p "$BENCH_TMP/logs" "$BENCH_TMP/fio"
}

# track PID: stop it at exit (if still running); untrack PID: no longer.
track () { BENCH_PIDS+=("$1"); }
untrack () {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

# stop_pid PID [SIGNAL]: signal a process we started, wait up to 30 s for
# it to end, then SIGKILL it.  Returns 0 whatever its exit status.
stop_pid () {
  local pid=$1 sig=${2:-TERM} i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop on SIG$sig; killing it"
      kill -s KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  untrack "$pid"
}

bench_cleanup () {
  local status=$? pid
  trap - EXIT INT TERM HUP
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  [ -n "$BENCH_TMP" ] && rm -rf "$BENCH_TMP"
  exit "$status"
}

# wait_for_socket PATH PID LOG [SECONDS]: until PATH is a socket (at most
# SECONDS, default 30); fail if PID dies.
wait_for_socket () {
  local i
  for ((i = 0; i < ${4:-30} * 20; i++)); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null ||
      die "server exited before $1 appeared: $(tail -5 "$3" 2>/dev/null)"
    sleep 0.05
  done
  die "timed out waiting for $1"
}

# ---- fio ----------------------------------------------------------------------

# run_fio NAME JOBFILE URI SIZE [VAR=VALUE...]: run one job file to the end
# against URI; sets FIO_IOPS and FIO_MIBS (read + write).  The job files
# take their parameters from the environment (BENCH_URI, BENCH_SIZE, ...).
FIO_IOPS='' FIO_MIBS=''
run_fio () {
  local name=$1 job=$2 uri=$3 size=$4 out
  shift 4
  out="$BENCH_TMP/fio/$name.out"
  # In the background, so that a signal interrupts the `wait` at once
  # (the traps then stop fio with everything else).
  env BENCH_URI="$uri" BENCH_SIZE="$size" "$@" \
    fio --output-format=terse --terse-version=3 --output="$out" \
    "$job" 2>"$out.err" &
  local pid=$! status=0
  track "$pid"
  wait "$pid" || status=$?
  untrack "$pid"
  [ "$status" -eq 0 ] ||
    die "fio $name failed: $(tail -5 "$out.err" "$out" 2>/dev/null)"
  fio_parse "$out" || die "fio $name: no result: $(tail -5 "$out.err")"
}

# fio_parse FILE: FIO_IOPS, FIO_MIBS from terse v3 output (fields: 5 error,
# 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS).
fio_parse () {
  local r
  r=$(awk -F';' 'NF > 50 && $1 == 3 {
         if ($5 != 0) { print "error", $5; exit 1 }
         printf "%.0f %.1f\n", $8 + $49, ($7 + $48) / 1024; found = 1; exit }
       END { if (!found) exit 1 }' "$1") || return 1
  read -r FIO_IOPS FIO_MIBS <<<"$r"
}

# fio_clat FILE: write completion latency (us): "p99 p99.9 max" (terse
# fields 56 = max, 59-78 = "percentile%=value").
fio_clat () {
  awk -F';' 'NF > 50 && $1 == 3 {
      for (i = 59; i <= 78; i++) {
        split($i, kv, "=")
        if (kv[1] == "99.000000%") p99 = kv[2]
        if (kv[1] == "99.900000%") p999 = kv[2]
      }
      print p99 + 0, p999 + 0, $56 + 0; exit }' "$1"
}

# ---- numbers ------------------------------------------------------------------

# median of the numbers on stdin (mean of the middle two for an even count)
median () {
  sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "-";
          else if (NR % 2) print v[(NR + 1) / 2];
          else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# percentile P of the numbers on stdin (nearest rank, as the engine does)
percentile () {
  sort -g | awk -v p="$1" '{ v[NR] = $1 }
    END { if (NR == 0) { print "-"; exit }
          r = int((NR * p + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# cpu_ticks PID: user + system CPU time of a process (all its threads,
# io_uring workers included), in clock ticks
cpu_ticks () {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
CLK_TCK=$(getconf CLK_TCK)

# VmHWM / VmRSS of PID in KiB
vm_kib () { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# json_num JSON KEY: the first number after "KEY": in a flat JSON text
json_num () {
  grep -o "\"$2\": *[0-9]*" <<<"$1" | head -1 | grep -o '[0-9]*$'
}

# ---- the copies probe ----------------------------------------------------------

# copies_probe_build: compile bench/copies-probe.c against the build's cow/
# library into $BENCH_TMP (once); sets COPIES_PROBE.  Returns 1, with
# SKIP_WHY set, when it cannot (no compiler, no static library).
COPIES_PROBE='' SKIP_WHY=''
copies_probe_build () {
  [ -z "$COPIES_PROBE" ] || return 0
  local src="$BENCH_DIR/copies-probe.c" out="$BENCH_TMP/copies-probe"
  if ! command -v gcc >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
    SKIP_WHY="no gcc or pkg-config to build bench/copies-probe.c"; return 1
  fi
  if [ ! -f "$build/.libs/libshadowcow.a" ] || [ ! -f "$build/config.h" ]; then
    SKIP_WHY="no .libs/libshadowcow.a or config.h in $build"; return 1
  fi
  # shellcheck disable=SC2046
  if ! gcc -O2 -I"$build" -I"$BENCH_DIR/.." "$src" "$build/.libs/libshadowcow.a" \
       -o "$out" $(pkg-config --libs liburing) -pthread \
       2>"$BENCH_TMP/logs/copies-probe-build.log"; then
    SKIP_WHY="bench/copies-probe.c did not build: $(tail -3 "$BENCH_TMP/logs/copies-probe-build.log")"
    return 1
  fi
  COPIES_PROBE=$out
}

# copies_probe DIR COPIES ORIGIN-CHUNKS CHUNK-SIZE SNAPSHOTS [MARGIN]: run
# it (see bench/copies-probe.c); its output lines "key value" go to
# PROBE_OUT (a file), and PROBE_COPIES, PROBE_LIMIT, PROBE_SECONDS are set.
copies_probe () {
  PROBE_OUT="$BENCH_TMP/logs/copies-probe-$2.out"
  "$COPIES_PROBE" "$@" >"$PROBE_OUT" 2>&1 ||
    die "copies-probe $*: $(tail -3 "$PROBE_OUT")"
  PROBE_COPIES=$(awk '$1 == "copies" { print $2 }' "$PROBE_OUT")
  PROBE_LIMIT=$(awk '$1 == "checkpoint-limit" { print $2 }' "$PROBE_OUT")
  PROBE_RECORDS=$(awk '$1 == "journal-records" { print $2 }' "$PROBE_OUT")
  PROBE_SECONDS=$(awk '$1 == "build-seconds" { print $2 }' "$PROBE_OUT")
}

# plugin_has_key KEY: does the plugin take KEY=?  Its --help lists the
# keys; failing that, a key the plugin parses is a string in its binary.
plugin_has_key () {
  nbdkit "$PLUGIN" --help 2>/dev/null | grep "^$1=" >/dev/null ||
    grep -qaF "$1" "$PLUGIN"
}
