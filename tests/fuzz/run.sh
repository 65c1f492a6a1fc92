#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz/ with clang (AddressSanitizer,
# UBSan, leak detection) straight from the sources, and run each one for
# FUZZ_SECONDS over a copy of its seed corpus.  The normal (gcc, automake)
# build is not touched: everything goes to FUZZ_BUILDDIR.
#
# Usage: tests/fuzz/run.sh [--build-only] [--regen-corpus] [FUZZER...]
#   FUZZER          diffarea, control, manifest, resume, qemu-info,
#                   config, reply, wblog
#                   (default: all)
#   --build-only    build the harnesses and stop
#   --regen-corpus  rewrite tests/fuzz/corpus-diffarea/ with the seed
#                   generator (after a format change), then stop
#
# Environment:
#   FUZZ_SECONDS=60         run time of each fuzzer
#   FUZZ_JOBS=1             parallel fuzzing processes (libFuzzer -fork=N)
#   FUZZ_ARGS=...           more libFuzzer options, e.g. -seed=1 -verbosity=2
#   FUZZ_BUILDDIR=DIR       where to build and work (default: build-fuzz/)
#   SHADOWCOPY_BUILDDIR=DIR a configured build tree whose config.h to use
#                           (default: the source tree if configured; else
#                           run.sh writes a minimal config.h)
#   FUZZ_CC=clang           the compiler
#   FUZZ_CFLAGS=...         more compiler flags, e.g. -fno-sanitize=alignment
#
# Exit status: 0 if every fuzzer ran clean; 1 on a crash, leak, timeout,
# out-of-memory or a failed build (the offending input is kept in
# FUZZ_BUILDDIR/artifacts/ and the command to reproduce it is printed);
# 77 if clang's fuzzing runtime is missing and cannot be installed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/fuzz
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
build=${FUZZ_BUILDDIR:-$root/build-fuzz}
cc=${FUZZ_CC:-clang}
config_dir=${SHADOWCOPY_BUILDDIR:-$root}

say() { printf 'fuzz: %s\n' "$*"; }
count_files() { find "$1" -maxdepth 1 -type f | wc -l; }

build_only=0
regen=0
fuzzers=()
for arg in "$@"; do
  case $arg in
    --build-only) build_only=1 ;;
    --regen-corpus) regen=1 ;;
    diffarea|control|manifest|resume|qemu-info|config|reply|wblog) fuzzers+=("$arg") ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
[[ ${#fuzzers[@]} -gt 0 ]] || fuzzers=(diffarea control manifest resume qemu-info config reply wblog)
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] ||
  { echo "run.sh: FUZZ_SECONDS must be a positive integer" >&2; exit 2; }
[[ $jobs =~ ^[0-9]+$ && $jobs -gt 0 ]] ||
  { echo "run.sh: FUZZ_JOBS must be a positive integer" >&2; exit 2; }

# ---- the toolchain --------------------------------------------------------

# Can $cc build and link a libFuzzer program with the sanitizers?
toolchain_works() {
  local dir
  dir=$(mktemp -d)
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput (const uint8_t *d, size_t n) { return 0; }' \
    > "$dir/probe.c"
  "$cc" -fsanitize=fuzzer,address,undefined "$dir/probe.c" \
    -o "$dir/probe" >/dev/null 2>&1
  local r=$?
  rm -rf "$dir"
  return $r
}

apt_install() {
  say "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "$@" >/dev/null ||
    { apt-get update >/dev/null && \
      apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

ensure_toolchain() {
  toolchain_works && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "SKIP: $cc cannot build libFuzzer programs (on Debian 12, install"
    say "clang and libclang-rt-14-dev as root, or set FUZZ_CC)"
    exit 77
  fi
  # clang is the default version's; -fsanitize=fuzzer needs the
  # compiler-rt package of that same version.
  command -v "$cc" >/dev/null 2>&1 || apt_install clang
  local major
  major=$("$cc" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' |
          head -n 1)
  apt_install "libclang-rt-${major:-14}-dev"
  if ! toolchain_works; then
    say "$cc still cannot build libFuzzer programs after installing"
    say "libclang-rt-${major:-14}-dev"
    exit 1
  fi
}

ensure_liburing() {
  [[ -f /usr/include/liburing.h ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt_install liburing-dev
  else
    say "SKIP: liburing-dev is missing"
    exit 77
  fi
}

# ---- the build ------------------------------------------------------------

# shellcheck disable=SC2054   # the commas belong to -fsanitize=
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=undefined
            -fno-omit-frame-pointer)
# The harnesses must build without warnings; the library is compiled with
# clang's default warnings only (gcc's -Werror build is the judge of it).
strict=(-Wall -Wextra -Wno-unused-parameter -Werror)

# config.h: the configured build tree's, or a minimal one of our own with
# what the sources need from it (the version and _GNU_SOURCE).
setup_config() {
  mkdir -p "$build/include"
  if [[ -f $config_dir/config.h ]]; then
    config_include=$config_dir
  else
    local version
    version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' \
              "$root/configure.ac")
    cat > "$build/include/config.h.tmp" <<EOF
/* Written by tests/fuzz/run.sh: the source tree is not configured. */
#define PACKAGE "shadowcopy"
#define PACKAGE_VERSION "${version:-0}"
#define VERSION PACKAGE_VERSION
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
EOF
    mv "$build/include/config.h.tmp" "$build/include/config.h"
    config_include=$build/include
  fi
}

# Compile SRC to OBJ with extra flags, in the background (wait_all reaps).
pids=()
compile() {                     # OBJ SRC FLAG...
  local obj=$1 src=$2
  shift 2
  # shellcheck disable=SC2086   # FUZZ_CFLAGS is split on purpose
  "$cc" -c -g -O1 -pthread "${sanitizers[@]}" "$@" ${FUZZ_CFLAGS:-} \
    "-I$config_include" "-I$root" "$src" -o "$obj" &
  pids+=($!)
  if [[ ${#pids[@]} -ge $(nproc 2>/dev/null || echo 2) ]]; then
    wait_all
  fi
}
wait_all() {
  local pid failed=0
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  pids=()
  if [[ $failed -ne 0 ]]; then
    say "FAILED: compiling the fuzzers"
    exit 1
  fi
}

build_all() {
  local obj=$build/obj gen=$build/obj-gen src name
  rm -rf "$obj" "$gen"
  mkdir -p "$obj" "$gen"
  say "building with $("$cc" --version | head -n 1) in ${build#"$root"/}/"

  # The sources are listed once: the tree may change while we build.
  # Objects are named DIR-FILE.o, so cow/x.c and engine/x.c cannot clash.
  local cow_srcs=("$root"/cow/*.c) engine_srcs=("$root"/engine/*.c)
  local cow_objs=() engine_objs=() gen_objs=()
  for src in "${cow_srcs[@]}"; do
    name=cow-$(basename "$src" .c)
    # The library, instrumented for coverage (libFuzzer links later) ...
    compile "$obj/$name.o" "$src" -fsanitize=fuzzer-no-link
    cow_objs+=("$obj/$name.o")
    # ... and again for the seed generator: no coverage, its own main.
    compile "$gen/$name.o" "$src"
    gen_objs+=("$gen/$name.o")
  done
  for src in "${engine_srcs[@]}"; do
    name=engine-$(basename "$src" .c)
    if [[ $name == engine-control-protocol ]]; then
      # The line reader reads through the harness's fake read(2).
      compile "$obj/$name.o" "$src" -fsanitize=fuzzer-no-link \
        -U_FORTIFY_SOURCE -Dread=fuzz_ctl_read
    else
      compile "$obj/$name.o" "$src" -fsanitize=fuzzer-no-link
    fi
    engine_objs+=("$obj/$name.o")
  done
  # The manifest parser and its writer, and the resume state, from tools/.
  local tools_objs=()
  for name in manifest durable json backup-resume; do
    compile "$obj/tools-$name.o" "$root/tools/$name.c" \
      -fsanitize=fuzzer-no-link
    tools_objs+=("$obj/tools-$name.o")
  done
  # qemu-img's JSON output as tools/qemu-img.c reads it.
  local qemu_objs=()
  for name in json-read qemu-img; do
    compile "$obj/tools-$name.o" "$root/tools/$name.c" \
      -fsanitize=fuzzer-no-link
    qemu_objs+=("$obj/tools-$name.o")
  done
  # libshadowcopy (lib/), and the volume files its open_volume reads.
  local lib_objs=()
  for src in "$root"/lib/*.c; do
    name=lib-$(basename "$src" .c)
    compile "$obj/$name.o" "$src" -fsanitize=fuzzer-no-link
    lib_objs+=("$obj/$name.o")
  done
  compile "$obj/tools-volume-conf.o" "$root/tools/volume-conf.c" \
    -fsanitize=fuzzer-no-link -DSC_SYSCONFDIR='"/etc"'
  lib_objs+=("$obj/tools-volume-conf.o")
  # The qemu-ga writer reads the agent's JSON with tools/json-read.c,
  # which the library carries too (lib/lib.am).
  lib_objs+=("$obj/tools-json-read.o")
  for name in fuzz-diffarea fuzz-control fuzz-manifest fuzz-resume \
              fuzz-qemu-info fuzz-config fuzz-reply fuzz-wblog; do
    compile "$obj/$name.o" "$here/$name.c" -fsanitize=fuzzer-no-link \
      "${strict[@]}"
  done
  compile "$gen/gen-diffarea-corpus.o" "$here/gen-diffarea-corpus.c" \
    "${strict[@]}"
  wait_all

  # engine/ reaches an NBD origin with libnbd.
  local link=("$cc" -g -pthread "${sanitizers[@]}")
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-diffarea.o" "${cow_objs[@]}" \
    -luring -o "$build/fuzz-diffarea"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-control.o" "${cow_objs[@]}" \
    "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-control"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-manifest.o" "${tools_objs[@]}" \
    "${cow_objs[@]}" "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-manifest"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-resume.o" "${tools_objs[@]}" \
    "${cow_objs[@]}" "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-resume"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-qemu-info.o" "${qemu_objs[@]}" \
    -o "$build/fuzz-qemu-info"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-config.o" "${cow_objs[@]}" \
    "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-config"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-reply.o" "${lib_objs[@]}" \
    "${cow_objs[@]}" "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-reply"
  "${link[@]}" -fsanitize=fuzzer "$obj/fuzz-wblog.o" "${cow_objs[@]}" \
    "${engine_objs[@]}" -luring -lnbd -o "$build/fuzz-wblog"
  "${link[@]}" "$gen/gen-diffarea-corpus.o" "${gen_objs[@]}" -luring \
    -o "$build/gen-diffarea-corpus"
  say "built ${build#"$root"/}/fuzz-diffarea, fuzz-control, fuzz-manifest," \
      "fuzz-resume, fuzz-qemu-info, fuzz-config, fuzz-reply, fuzz-wblog," \
      "gen-diffarea-corpus"
}

# ---- the runs -------------------------------------------------------------

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

regen_corpus() {
  local dir=$here/corpus-diffarea
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  "$build/gen-diffarea-corpus" "$dir.tmp"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  say "wrote $(count_files "$dir") seeds, $(du -sk "$dir" | cut -f1) KiB," \
      "to ${dir#"$root"/}/"
}

run_one() {                     # NAME
  local name=$1 bin=$build/fuzz-$1 work=$build/work/$1
  local log=$build/work/$1.log stamp=$build/work/$1.start
  local opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
              -detect_leaks=1 -print_final_stats=1
              -artifact_prefix="$build/artifacts/$name-")
  rm -rf "$work"
  mkdir -p "$work/corpus" "$build/artifacts"
  touch "$stamp"
  cp "$here/corpus-$name"/* "$work/corpus/"
  case $name in
    diffarea)
      # Fresh seeds from the library as it is now, beside the stored ones.
      mkdir -p "$work/generated"
      "$build/gen-diffarea-corpus" "$work/generated"
      for f in "$work/generated"/*; do
        cp "$f" "$work/corpus/gen-$(basename "$f")"
      done
      opts+=(-max_len=131072 -dict="$here/fuzz-diffarea.dict") ;;
    control)
      opts+=(-max_len=16384 -dict="$here/fuzz-control.dict") ;;
    manifest)
      opts+=(-max_len=65536 -dict="$here/fuzz-manifest.dict") ;;
    resume)
      opts+=(-max_len=8192 -dict="$here/fuzz-resume.dict") ;;
    qemu-info)
      opts+=(-max_len=16384 -dict="$here/fuzz-qemu-info.dict") ;;
    config)
      opts+=(-max_len=16384 -dict="$here/fuzz-config.dict") ;;
    reply)
      opts+=(-max_len=16384 -dict="$here/fuzz-reply.dict") ;;
    wblog)
      opts+=(-max_len=16384 -dict="$here/fuzz-wblog.dict") ;;
  esac
  [[ $jobs -gt 1 ]] && opts+=(-fork="$jobs")
  # shellcheck disable=SC2206   # FUZZ_ARGS is split on purpose
  opts+=(${FUZZ_ARGS:-})

  say "running fuzz-$name for $seconds s over $(count_files "$work/corpus")" \
      "seeds (log: ${log#"$root"/})"
  local status=0
  (cd "$work" &&
   timeout --kill-after=30 $((seconds + 300)) \
     "$bin" "${opts[@]}" corpus) > "$log" 2>&1 || status=$?

  # The execution count: the final stats, else the last status line.
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/^/  /' || true
  grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 | sed 's/^/  /' || true
  say "fuzz-$name: ${execs:-?} executions, corpus now" \
      "$(count_files "$work/corpus") inputs, exit status $status"

  if [[ $status -ne 0 ]]; then
    say "FAILED: fuzz-$name (exit status $status); the end of its log:"
    tail -n 80 "$log" | sed 's/^/  | /'
    local found=0 f
    while IFS= read -r f; do
      found=1
      say "kept the offending input: ${f#"$root"/}"
      say "reproduce:  $bin $f"
      say "(rebuild first with: bash tests/fuzz/run.sh --build-only)"
    done < <(find "$build/artifacts" -type f -newer "$stamp" | sort)
    [[ $found -eq 1 ]] || say "no input was kept (a timeout of the run?)"
    return 1
  fi
  return 0
}

ensure_toolchain
ensure_liburing
setup_config
build_all
if [[ $regen -eq 1 ]]; then
  regen_corpus
  exit 0
fi
[[ $build_only -eq 1 ]] && exit 0

status=0
for name in "${fuzzers[@]}"; do
  run_one "$name" || status=1
done
if [[ $status -eq 0 ]]; then
  say "all fuzzers ran clean"
else
  say "FAILED: see above"
fi
exit "$status"
