#!/usr/bin/env bash
# Build the Debian packages from a clean copy of the tree, check them with
# lintian, install them into this machine, test the installed files, and
# purge them again:
#   1. copy the tree's tracked files (as they are in the work tree, so
#      uncommitted edits count; untracked files do not: `git add` them)
#      into a temporary directory, never building in the source tree;
#   2. `dpkg-buildpackage -b -us -uc` there (DEB_BUILD_OPTIONS defaults to
#      nocheck: the unit tests run in check.sh's own steps);
#   3. lintian on the .changes: every tag, down to pedantic, fails the check
#      unless debian/*.lintian-overrides explains it;
#   4. `apt-get install` of the five .debs (dependencies only if the
#      machine lacks them; whatever it installs is noted, to be purged
#      again);
#   5. the installed files: the plugin in nbdkit's plugin directory and the
#      CLI in /usr/bin, `nbdkit shadowcopy --dump-plugin` (found by name)
#      with its shadowcopy_* fields; libshadowcopy: the CLI and a small C
#      program (built with `pkg-config --cflags --libs libshadowcopy`
#      against the installed header) load the installed libshadowcopy.so.0,
#      tests/lib/example.c compiles and links the same way, /usr/bin/python3
#      imports shadowcopy from dist-packages (outside the source tree) and
#      says the package's version, `man -w` finds the man3 pages; and the
#      demo against the installed files (SHADOWCOPY_INSTALLED=1
#      scripts/demo.sh);
#   6. `apt-get purge` of all it installed, on any exit.
# Needs root (or sudo) for apt-get; refuses to run if shadowcopy's packages
# are installed already (it would remove them).
#
# Usage: scripts/deb-check.sh      (exit 0 only if every step passed;
#                                   KEEP_DEBS=DIR keeps the .debs there)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/bin:/usr/sbin:/sbin:$PATH"
export LC_ALL=C
# The installed files are what is checked: nothing from the environment
# may point the compiler, pkg-config, Python or the loader elsewhere.
unset PKG_CONFIG_PATH PYTHONPATH SHADOWCOPY_LIBRARY LD_LIBRARY_PATH

packages=(nbdkit-plugin-shadowcopy shadowcopy libshadowcopy0 libshadowcopy-dev
          python3-shadowcopy)
say() { printf 'deb-check: %s\n' "$*"; }
fail() { printf 'deb-check: FAILED: %s\n' "$*" >&2; exit 1; }
elapsed() { echo $(($(date +%s) - $1)); }

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 ||
    fail "not root and no sudo: apt-get cannot install the packages"
  as_root=(sudo)
fi
apt_get() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -y -q -o DPkg::Lock::Timeout=300 "$@" </dev/null
}
# Is the package on the machine in any way (installed, or its
# configuration files left)?  dpkg's abbreviated status "un" says no.
present() {                     # PACKAGE
  local st
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)
  [[ -n $st && ${st:1:1} != n ]]
}
installed_packages() {          # one "name:arch" a line, sorted
  dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' |
    awk '$1 ~ /^.i/ { print $2 }' | sort
}

# The lock keeps two runs on this machine (two work trees) apart: both
# would install and purge the same packages.
exec 9>"${TMPDIR:-/tmp}/shadowcopy-deb-check.lock"
flock -w 900 9 || fail "another deb-check held its lock for 15 minutes"

./scripts/deps.sh >/dev/null
for p in "${packages[@]}"; do
  if present "$p"; then
    fail "$p is installed already; this check would remove it: run
  apt-get purge ${packages[*]}
first if that is what you want"
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shadowcopy-deb.XXXXXX")
new_packages=()
cleanup() {
  local status=$? p left=()
  if [[ ${#new_packages[@]} -gt 0 ]]; then
    say "purging ${new_packages[*]}"
    apt_get purge "${new_packages[@]}" >"$tmp/purge.log" 2>&1 || {
      tail -n 20 "$tmp/purge.log" >&2
      status=1
    }
    for p in "${new_packages[@]}"; do
      present "$p" && left+=("$p")
    done
    if [[ ${#left[@]} -gt 0 ]]; then
      echo "deb-check: FAILED: still installed after the purge: ${left[*]}" >&2
      status=1
    fi
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. A clean copy of the tree.
git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  fail "$root is not a git work tree: its tracked files are what is built"
src=$tmp/shadowcopy
mkdir -p "$src"
(cd "$root" &&
 git ls-files -z | while IFS= read -r -d '' f; do
   [[ -e $f || -L $f ]] && printf '%s\0' "$f"
 done | tar --null -T - -cf -) | tar -C "$src" -xf -

version=$(cd "$src" && dpkg-parsechangelog -S Version)
ac_version=$(sed -n 's/^AC_INIT(\[shadowcopy\], \[\([^]]*\)\].*/\1/p' \
  "$src/configure.ac")
[[ $version == "$ac_version" ]] ||
  fail "debian/changelog says $version, configure.ac's AC_INIT $ac_version"
(cd "$src" && dpkg-checkbuilddeps) ||
  fail "build dependencies missing (see above; scripts/deps.sh installs them)"

# 2. Build.
t=$(date +%s)
say "dpkg-buildpackage -b -us -uc (version $version) in a clean copy"
if ! (cd "$src" &&
      DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS-nocheck} parallel=$(nproc)" \
        dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1; then
  tail -n 60 "$tmp/build.log" >&2
  fail "dpkg-buildpackage failed"
fi
build_s=$(elapsed "$t")
changes=$tmp/shadowcopy_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).changes
[[ -f $changes ]] || fail "no $changes"
debs=()
for p in "${packages[@]}"; do
  deb=$(ls "$tmp/${p}_${version}_"*.deb 2>/dev/null | head -n 1)
  [[ -n $deb ]] || fail "dpkg-buildpackage made no package $p"
  debs+=("$deb")
done
say "built in $build_s s: $(cd "$tmp" && ls ./*.deb | sed 's|^\./||' | tr '\n' ' ')"
if [[ -n ${KEEP_DEBS:-} ]]; then
  mkdir -p "$KEEP_DEBS" &&
    cp "$tmp"/*.deb "$tmp"/*.buildinfo "$changes" "$KEEP_DEBS"/
fi

# 3. lintian: any tag not overridden fails.  The tags are counted from
# its output: with --show-overrides, lintian 2.116's --fail-on info also
# fails on overridden info tags.
lintian_status=0
lintian --display-info --pedantic --show-overrides --fail-on none \
  "$changes" >"$tmp/lintian.out" 2>&1 || lintian_status=$?
grep -v 'running with root privileges' "$tmp/lintian.out" |
  sed 's/^/  lintian: /' || true
[[ $lintian_status -eq 0 ]] ||
  fail "lintian itself failed (exit status $lintian_status)"
tags=$(grep -cE '^[EWIPX]: ' "$tmp/lintian.out" || true)
overridden=$(grep -cE '^O: ' "$tmp/lintian.out" || true)
[[ $tags -eq 0 ]] || fail "lintian: $tags tag(s) not overridden"
say "lintian: no tag left ($overridden overridden, each explained in debian/*.lintian-overrides)"

# 4. Install.
before=$(installed_packages)
t=$(date +%s)
if ! apt_get install --no-install-recommends "${debs[@]}" \
     >"$tmp/install.log" 2>&1; then
  # What it did install, it must purge.
  mapfile -t new_packages < <(comm -13 <(echo "$before") <(installed_packages))
  tail -n 30 "$tmp/install.log" >&2
  fail "apt-get install failed"
fi
mapfile -t new_packages < <(comm -13 <(echo "$before") <(installed_packages))
say "installed (${#new_packages[@]} new package(s): ${new_packages[*]}) in $(elapsed "$t") s"

# 5. The installed files.
plugindir=$(pkg-config --variable=plugindir nbdkit)
for f in "$plugindir/nbdkit-shadowcopy-plugin.so" \
         /usr/share/man/man1/nbdkit-shadowcopy-plugin.1.gz; do
  dpkg -L nbdkit-plugin-shadowcopy | grep -xF "$f" >/dev/null ||
    fail "nbdkit-plugin-shadowcopy does not ship $f"
done
for f in /usr/bin/shadowcopy /usr/share/man/man1/shadowcopy.1.gz; do
  dpkg -L shadowcopy | grep -xF "$f" >/dev/null || fail "shadowcopy does not ship $f"
done
# The service: its units and the configuration directory (make install's).
units=()
for u in shadowcopy@.service shadowcopy-snapshot@.service \
         shadowcopy-snapshot@.timer; do
  f=$(dpkg -L shadowcopy | grep -E "/systemd/system/$u\$" | head -n 1)
  [[ -n $f ]] || fail "shadowcopy does not ship the unit $u"
  units+=("$f")
done
for f in /etc/shadowcopy/shadowcopy.conf.example /etc/shadowcopy/writers.d; do
  dpkg -L shadowcopy | grep -xF "$f" >/dev/null || fail "shadowcopy does not ship $f"
done
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "${units[@]}" >"$tmp/verify" 2>&1 ||
    fail "systemd-analyze verify of the installed units: $(cat "$tmp/verify")"
  [[ ! -s $tmp/verify ]] ||
    fail "systemd-analyze verify of the installed units: $(cat "$tmp/verify")"
  say "installed units pass systemd-analyze verify: ${units[*]##*/}"
fi
[[ -x /usr/bin/shadowcopy ]] || fail "/usr/bin/shadowcopy is not executable"
/usr/bin/shadowcopy --help >/dev/null 2>&1 ||
  fail "/usr/bin/shadowcopy --help failed"

nbdkit shadowcopy --dump-plugin >"$tmp/dump" 2>&1 ||
  fail "nbdkit shadowcopy --dump-plugin: $(cat "$tmp/dump")"
field() { sed -n "s/^$1=//p" "$tmp/dump"; }
[[ $(field path) == "$plugindir/nbdkit-shadowcopy-plugin.so" ]] ||
  fail "nbdkit loaded $(field path), not the installed plugin"
[[ $(field shadowcopy_version) == "$version" ]] ||
  fail "shadowcopy_version=$(field shadowcopy_version), the package is $version"
format=$(sed -n 's/^#define SC_FORMAT_VERSION[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' \
  "$src/cow/format.h")
[[ $(field shadowcopy_format_version) == "$format" ]] ||
  fail "shadowcopy_format_version=$(field shadowcopy_format_version), cow/format.h says $format"
[[ $(field shadowcopy_features) =~ ^[a-z-]+(,[a-z-]+)*$ &&
   ,$(field shadowcopy_features), == *,snapshots,* ]] ||
  fail "shadowcopy_features is '$(field shadowcopy_features)'"
[[ ,$(field shadowcopy_origin_backends), == *,file,* ]] ||
  fail "shadowcopy_origin_backends is '$(field shadowcopy_origin_backends)'"
[[ $(field shadowcopy_io_uring) =~ ^(yes|no)$ ]] ||
  fail "shadowcopy_io_uring is '$(field shadowcopy_io_uring)'"
say "nbdkit shadowcopy --dump-plugin:"
grep -E '^(path|shadowcopy_[a-z_]+)=' "$tmp/dump" | sed 's/^/  /'

# libshadowcopy: the library, its -dev files, the Python bindings.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch
dpkg -L libshadowcopy0 | grep -xF "$libdir/libshadowcopy.so.0" >/dev/null ||
  fail "libshadowcopy0 does not ship $libdir/libshadowcopy.so.0"
for f in /usr/include/shadowcopy.h "$libdir/libshadowcopy.so" \
         "$libdir/pkgconfig/libshadowcopy.pc" \
         /usr/share/man/man3/libshadowcopy.3.gz \
         /usr/share/man/man3/shadowcopy_open.3.gz; do
  dpkg -L libshadowcopy-dev | grep -xF "$f" >/dev/null ||
    fail "libshadowcopy-dev does not ship $f"
done
pydir=/usr/lib/python3/dist-packages/shadowcopy
dpkg -L python3-shadowcopy | grep -xF "$pydir/__init__.py" >/dev/null ||
  fail "python3-shadowcopy does not ship $pydir/__init__.py"
# Which libshadowcopy.so.0 a program loads: the installed one, not one a
# `make install` left in /usr/local/lib.  Compared as real paths: with
# merged /usr the loader may name it /lib/TRIPLET/.
lib=$(readlink -f "$libdir/libshadowcopy.so.0")
loads() {                       # PROGRAM
  local p
  p=$(ldd "$1" | awk '$1 == "libshadowcopy.so.0" { print $3 }')
  [[ -n $p ]] && readlink -f "$p"
}
[[ $(loads /usr/bin/shadowcopy) == "$lib" ]] ||
  fail "/usr/bin/shadowcopy loads libshadowcopy.so.0 from '$(loads /usr/bin/shadowcopy)', not $lib"
pc=$(pkg-config --cflags --libs libshadowcopy 2>&1) ||
  fail "pkg-config --cflags --libs libshadowcopy: $pc"
pc=${pc% }
[[ $(pkg-config --variable=libdir libshadowcopy) == "$libdir" ]] ||
  fail "pkg-config found a libshadowcopy.pc whose libdir is $(pkg-config --variable=libdir libshadowcopy)"
[[ $(pkg-config --modversion libshadowcopy) == "$version" ]] ||
  fail "libshadowcopy.pc says version $(pkg-config --modversion libshadowcopy), the package is $version"
cat >"$tmp/tiny.c" <<'EOF_C'
#include <stdio.h>
#include <shadowcopy.h>
int
main (void)
{
  struct shadowcopy *h = NULL;
  int r = shadowcopy_connect ("/nonexistent/shadowcopy.sock", &h);
  printf ("version=%s\n", shadowcopy_version ());
  printf ("connect=%d errno=%d error=%s\n", r, shadowcopy_get_errno (),
          shadowcopy_get_error () ? shadowcopy_get_error () : "(null)");
  return r < 0 && h == NULL ? 0 : 1;
}
EOF_C
# shellcheck disable=SC2086  # pkg-config's words are the compiler's
cc -Wall -Werror -o "$tmp/tiny" "$tmp/tiny.c" $pc >"$tmp/cc.log" 2>&1 ||
  fail "a program against the installed header and library: $(cat "$tmp/cc.log")"
[[ $(loads "$tmp/tiny") == "$lib" ]] ||
  fail "a program linked with -lshadowcopy loads '$(loads "$tmp/tiny")'"
"$tmp/tiny" >"$tmp/tiny.out" 2>&1 ||
  fail "the small program against libshadowcopy: $(cat "$tmp/tiny.out")"
grep -qxF "version=$version" "$tmp/tiny.out" ||
  fail "shadowcopy_version() is not $version: $(cat "$tmp/tiny.out")"
grep -qE '^connect=-[0-9]+ errno=[1-9][0-9]* error=.*nonexistent' "$tmp/tiny.out" ||
  fail "shadowcopy_connect to a missing socket: $(cat "$tmp/tiny.out")"
# shellcheck disable=SC2086
cc -Wall -Werror -o "$tmp/example" "$src/tests/lib/example.c" $pc \
   >"$tmp/cc.log" 2>&1 ||
  fail "tests/lib/example.c against the installed library: $(cat "$tmp/cc.log")"
say "libshadowcopy: $(tr '\n' ' ' <"$tmp/tiny.out")(cc $pc; tests/lib/example.c builds too)"
# Python: the system's python3, isolated (-I: no PYTHON* variables, no
# user site, not the current directory), run from outside the source tree.
py=$(cd "$tmp" && /usr/bin/python3 -I -c '
import os, shadowcopy
print(shadowcopy.__file__)
print(shadowcopy.version())
with open("/proc/self/maps") as maps:
    print(sorted({os.path.realpath(l.split()[-1]) for l in maps
                  if "libshadowcopy.so" in l}))
' 2>&1) || fail "/usr/bin/python3 -c 'import shadowcopy': $py"
[[ $py == "$pydir/__init__.py"$'\n'"$version"$'\n'"['$lib']" ]] ||
  fail "import shadowcopy (file, version(), library loaded) says:
$py"
say "python3: import shadowcopy from $pydir, version() $version, $lib loaded"
for n in libshadowcopy shadowcopy_open shadowcopy_connect; do
  m=$(man -w "$n" 2>&1) || fail "man -w $n: $m"
  [[ $m == /usr/share/man/man3/*.3.gz ]] || fail "man -w $n finds $m"
done
say "man -w finds libshadowcopy(3), shadowcopy_open(3) and its link shadowcopy_connect(3)"

t=$(date +%s)
if ! SHADOWCOPY_INSTALLED=1 SHADOWCOPY_CLI=/usr/bin/shadowcopy TMPDIR=$tmp \
     "$root/scripts/demo.sh" >"$tmp/demo.log" 2>&1; then
  tail -n 40 "$tmp/demo.log" >&2
  fail "the demo against the installed files failed"
fi
grep -q '^Demo passed' "$tmp/demo.log" ||
  fail "the demo exited 0 without saying it passed"
say "demo against the installed files passed in $(elapsed "$t") s"

# 6. Purge (the EXIT trap does it, and checks it).
say "all checks passed; purging what was installed"
