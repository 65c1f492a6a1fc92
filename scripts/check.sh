#!/usr/bin/env bash
# Build shadowcopy and run the whole test suite:
#   1. install missing Debian packages and build in the source tree
#      (scripts/build.sh);
#   2. `make check`: the Criterion unit tests and the shell tests that
#      drive a real nbdkit with real NBD clients;
#   3. the unit tests again under AddressSanitizer and UBSan, built with
#      --enable-sanitizers from a clean copy of the sources in build-san/
#      (a configured source tree cannot also host a VPATH build);
#   4. the libFuzzer harnesses (tests/fuzz/run.sh);
#   5. the Debian packages (scripts/deb-check.sh): built from a clean copy
#      of the tree, lintian, installed, `nbdkit shadowcopy --dump-plugin`
#      and the demo against the installed files, purged again.
# After each run it prints the Criterion and automake summaries; on
# failure, the logs of the failing tests.  Exit status 0 only if all passed.
#
# Usage: scripts/check.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The shell tests use nbdsh, which needs Debian's python3 (see demo.sh).
export PATH="/usr/bin:$PATH"
jobs=$(nproc 2>/dev/null || echo 2)
san=$root/build-san

heading() {
  printf '\n======== %s\n' "$*"
}
elapsed() {
  printf '(%s took %d s)\n' "$1" "$(($(date +%s) - $2))"
}

# The Criterion summary of every unit test, and automake's summary.
summarize() {                   # BUILD-DIR
  local dir=$1 log line found=0
  echo "Criterion unit tests:"
  for log in "$dir"/tests/unit-*.log; do
    [[ -f $log ]] || continue
    found=1
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'Synthesis: Tested:.*' |
           tail -n 1 || true)
    printf '  %-28s %s\n' "$(basename "$log" .log)" \
      "${line:-(no Criterion summary in the log)}"
  done
  [[ $found -eq 1 ]] || echo "  (no unit test logs: the unit tests did not run)"
  if [[ -f $dir/test-suite.log ]]; then
    echo "automake summary (${dir#"$root"/}/test-suite.log):"
    grep -E '^# (TOTAL|PASS|SKIP|FAIL|XFAIL|XPASS|ERROR):' \
      "$dir/test-suite.log" | sed 's/^/  /'
  else
    echo "no test-suite.log: the tests did not run"
  fi
}

# Print the logs of the tests that failed (FAIL, ERROR or XPASS).
show_failures() {               # BUILD-DIR
  local dir=$1 trs log
  while IFS= read -r trs; do
    grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
    log=${trs%.trs}.log
    printf '\n-------- %s (last 200 lines)\n' "${log#"$root"/}"
    tail -n 200 "$log" 2>/dev/null || echo "(no log)"
  done < <(find "$dir" -path "$dir/build-san" -prune -o -name '*.trs' -print |
           sort)
}

# Copy the sources of the tree, without anything a build left in it.
copy_sources() {                # FROM TO
  local from=$1 to=$2
  mkdir -p "$to"
  (cd "$from" &&
   find . \( -path ./.git -o \( -regex '\./build-[^/]*' ! -name build-aux \) \
             -o -name .libs -o -name .deps -o -name autom4te.cache \) -prune -o \
          \( -type f -o -type l \) \
          ! -name '*.o' ! -name '*.lo' ! -name '*.la' ! -name '*.a' \
          ! -name '*.so' ! -name '*.log' ! -name '*.trs' ! -name '*.tmp' \
          ! -name .dirstamp \
          ! -path ./Makefile ! -path ./config.h ! -path ./config.status \
          ! -path ./libtool ! -path ./stamp-h1 ! -path ./tools/shadowcopy \
          ! -regex '\./tests/unit-[^./]*' \
          -print0 |
   tar --null -T - -cf -) | tar -C "$to" -xf -
}

status=0

heading "Build (scripts/build.sh)"
t=$(date +%s)
./scripts/build.sh
elapsed "build" "$t"

heading "make check"
t=$(date +%s)
make_status=0
make -j"$jobs" check || make_status=$?
elapsed "make check" "$t"
heading "Results of make check"
summarize "$root"
if [[ $make_status -ne 0 ]]; then
  show_failures "$root"
  echo "make check FAILED (exit status $make_status)"
  status=1
fi

heading "Unit tests under AddressSanitizer and UBSan (build-san/)"
t=$(date +%s)
rm -rf "$san"
copy_sources "$root" "$san"
san_status=0
(cd "$san" &&
 ./configure --enable-sanitizers --quiet &&
 make -j"$jobs" check-unit) || san_status=$?
elapsed "sanitizer build and unit tests" "$t"
heading "Results of the sanitizer unit tests"
summarize "$san"
if [[ $san_status -ne 0 ]]; then
  show_failures "$san"
  echo "sanitizer unit tests FAILED (exit status $san_status)"
  status=1
fi

heading "Fuzzing (tests/fuzz/run.sh, ${FUZZ_SECONDS:-60} s per fuzzer)"
t=$(date +%s)
if FUZZ_SECONDS=${FUZZ_SECONDS:-60} FUZZ_BUILDDIR="$root/build-fuzz" \
   SHADOWCOPY_BUILDDIR="$root" bash tests/fuzz/run.sh; then
  echo "fuzzing: no crash, leak or hang"
else
  echo "fuzzing FAILED"
  status=1
fi
elapsed "fuzzing" "$t"

heading "Debian packages (scripts/deb-check.sh)"
t=$(date +%s)
if ./scripts/deb-check.sh; then
  echo "Debian packages: built, lintian clean, installed, tested, purged"
else
  echo "Debian package check FAILED"
  status=1
fi
elapsed "Debian package check" "$t"

if [[ $status -eq 0 ]]; then
  heading "All tests passed"
else
  heading "FAILED: see the logs above"
fi
exit "$status"
