#!/usr/bin/env bash
# Build shadowcopy in the source tree: install missing Debian packages,
# then autoreconf, configure and make.  Arguments are passed to configure.
#
# Usage: scripts/build.sh [CONFIGURE-OPTION...]
#
# The result: the nbdkit plugin in .libs/nbdkit-shadowcopy-plugin.so and
# the CLI in tools/shadowcopy, usable without `make install`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh

echo "build: autoreconf -fi"
autoreconf -fi

echo "build: ./configure $*"
./configure "$@"

jobs=$(nproc 2>/dev/null || echo 2)
echo "build: make -j$jobs"
make -j"$jobs"

echo "build: done: .libs/nbdkit-shadowcopy-plugin.so and tools/shadowcopy"
