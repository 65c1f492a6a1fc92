#!/usr/bin/env bash
# Build and run bench/startup-probe.c against a build tree's cow/ library.
#   bench/startup-probe.sh [BUILDDIR] [N]
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-.}" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gcc -O2 -I"$build" -I"$src" "$src/bench/startup-probe.c" \
  "$build/.libs/libshadowcow.a" -o "$dir/startup-probe" \
  $(pkg-config --libs liburing) -pthread
"$dir/startup-probe" "$dir" "${2:-1000000}"
