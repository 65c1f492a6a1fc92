#!/usr/bin/env bash
# Install the Debian 12 packages that shadowcopy needs to build, test and
# run its demo.  Idempotent: when everything is installed it only checks,
# and it runs `apt-get update` only when something is missing.
#
# Usage: scripts/deps.sh
set -euo pipefail

# To build: compiler, autotools, nbdkit and its plugin headers, libnbd,
# liburing, Criterion.
build_packages=(
  build-essential autoconf automake libtool pkg-config
  nbdkit nbdkit-plugin-dev libnbd-dev liburing-dev libcriterion-dev
)
# To build the Debian packages and check them (scripts/deb-check.sh):
# debhelper (with dh-autoreconf), lintian; dpkg-dev comes with
# build-essential (no fakeroot: debian/control says Rules-Requires-Root: no).
# dh-python: dh_python3 for python3-shadowcopy (Build-Depends:
# dh-sequence-python3).
deb_packages=(
  debhelper lintian dh-python
)
# To test and for the demo: nbdsh, nbdinfo, nbdcopy, nbdfuse (libnbd-bin,
# python3-libnbd), qemu-img, fio, FUSE, losetup, mkfs/fsck (ext4, XFS), clang
# with its fuzzing runtime for the libFuzzer harnesses, and strace and
# gdb, with which a few tests hold the CLI at an exact point (a rename, a
# file made anew) to race it or kill it there.  nbd-client for the kernel
# NBD path of shadowcopy mount (tested where the nbd module loads; its
# postinst starts nothing without an /etc/nbdtab entry).  postgresql for
# the README's database restore (tests/test-restore-postgres.sh runs its
# own cluster; the package's postinst also makes and starts a "main"
# cluster, which the test does not use).  systemd: systemd-analyze
# verifies the service units (and its pkg-config file names their
# directory).  certtool and psktool (gnutls-bin) for the TLS tests'
# throwaway CA and keys.  iproute2: ss, the README's stale-socket check
# (test-readme-restart.sh runs it).  qemu-storage-daemon
# (qemu-system-common), a remote NBD server for the NBD origin's tests.
# The in-box writers' programs, for their tests: qemu-ga
# (qemu-guest-agent; tests/qga-jail.sh runs it where it sees only the
# test mount), mariadbd and the mysql client (mariadb-server; the test
# runs its own server on a private socket), virsh (libvirt-clients; the
# test uses libvirt's test driver); psql comes with postgresql.
test_packages=(
  libnbd-bin python3-libnbd qemu-utils fio fuse3 util-linux e2fsprogs
  clang libclang-rt-14-dev strace gdb xfsprogs
  nbd-client postgresql systemd gnutls-bin iproute2
  qemu-system-common
  qemu-guest-agent mariadb-server libvirt-clients
)

say() { printf 'deps: %s\n' "$*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "dpkg-query not found: this is not Debian; install the equivalents of"
  say "  ${build_packages[*]} ${test_packages[*]} ${deb_packages[*]}"
  say "yourself.  Continuing."
  exit 0
fi

missing=()
for pkg in "${build_packages[@]}" "${test_packages[@]}" "${deb_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ $status != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  say "all required Debian packages are installed"
  exit 0
fi

say "installing missing packages: ${missing[*]}"

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    say "not root and sudo is not available; as root, run:"
    say "  apt-get update && apt-get install ${missing[*]}"
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

# Check again: apt-get may have "succeeded" without installing everything.
still_missing=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || still_missing+=("$pkg")
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
  say "still missing after apt-get install: ${still_missing[*]}"
  exit 1
fi
say "done"
