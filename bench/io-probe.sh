#!/usr/bin/env bash
# Build and run bench/io-probe.c: the cost of one request through io_uring
# and as a plain syscall, in a scratch file under DIR (default $TMPDIR).
#   bench/io-probe.sh [DIR] [N]
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/io-probe.XXXXXX")
trap 'rm -rf "$dir"' EXIT
gcc -O2 -Wall -Wextra -Werror "$src/bench/io-probe.c" -o "$dir/io-probe" \
  $(pkg-config --libs liburing)
echo "io-probe on $(df -T "$dir" | awk 'NR == 2 { print $2 " on " $1 }'), kernel $(uname -r)"
"$dir/io-probe" "$dir" "${2:-20000}"
