#!/usr/bin/env bash
# The shadowcopy demo: a snapshot keeps the old data while the live disk
# changes.  Builds shadowcopy (installing missing Debian packages), then,
# on generated disk files in a temporary directory that is removed at the
# end: starts nbdkit with the built plugin, writes a text to the live disk,
# takes a snapshot, overwrites the text, and shows that the snapshot still
# reads the old text while the live disk reads the new one; then a
# writable clone of the snapshot whose writes stay its own, and a revert
# of the live disk to the snapshot, undone again.
#
# Usage: scripts/demo.sh        (exit status 0 only if every check passed)
#        SHADOWCOPY_INSTALLED=1 scripts/demo.sh
#                               the same with the installed files (the Debian
#                               packages, or `make install`): no build, the
#                               plugin run by name (`nbdkit shadowcopy`) from
#                               nbdkit's plugin directory, and
#                               /usr/bin/shadowcopy (or SHADOWCOPY_CLI)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# nbdsh is a Python program and needs Debian's python3 with the nbd module,
# which another python3 earlier in PATH (pyenv, a venv) would not have.
export PATH="/usr/bin:$PATH"

installed=${SHADOWCOPY_INSTALLED:-0}
if [[ $installed == 1 ]]; then
  plugin=shadowcopy
  cli=${SHADOWCOPY_CLI:-/usr/bin/shadowcopy}
else
  plugin=./.libs/nbdkit-shadowcopy-plugin.so
  cli=./tools/shadowcopy
fi

step=0
heading() {
  step=$((step + 1))
  printf '\n== %d. %s\n' "$step" "$*"
}
fail() {
  printf '\ndemo: FAILED: %s\n' "$*" >&2
  exit 1
}


tmp=$(mktemp -d "${TMPDIR:-/tmp}/shadowcopy-demo.XXXXXX")
server_pid=
cleanup() {
  local status=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s $tmp/nbdkit.log ]]; then
    printf '\n--- nbdkit log (last 40 lines) ---\n' >&2
    tail -n 40 "$tmp/nbdkit.log" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# Indent the output of a command, writing the temp dir as $DEMO.
indent() { sed -e "s|$tmp|\$DEMO|g" -e 's/^/    /'; }
trap 'exit 130' INT TERM

# Show a command the way a user would type it ($DEMO is the temp dir);
# run: show it, then run it.
show() {
  local arg shown=
  for arg; do
    arg=${arg//"$tmp"/\$DEMO}
    # Quote what the shell would otherwise mangle ("?" in NBD URIs).
    [[ $arg =~ ^[][A-Za-z0-9_./=:+@%,\$\&-]+$ ]] || arg="\"$arg\""
    shown+=" $arg"
  done
  printf '  $%s\n' "$shown"
}
run() {
  show "$@"
  "$@"
}

# The texts, written at the same place on the disk.
offset=$((1024 * 1024))
old_text="shadowcopy demo: this text was written BEFORE the snapshot"
new_text="shadowcopy demo: this text was written AFTER the snapshot"
clone_text="shadowcopy demo: this text was written into the CLONE"
len=64                          # both texts are NUL-padded to this length

write_text() {                  # URI TEXT
  TEXT=$2 OFFSET=$offset LEN=$len \
    nbdsh -u "$1" -c 'import os
data = os.environb[b"TEXT"].ljust(int(os.environ["LEN"]), b"\0")
h.pwrite(data, int(os.environ["OFFSET"]))'
}
read_text() {                   # URI
  OFFSET=$offset LEN=$len \
    nbdsh -u "$1" -c 'import os, sys
data = h.pread(int(os.environ["LEN"]), int(os.environ["OFFSET"]))
sys.stdout.write(bytes(data).rstrip(b"\0").decode("utf-8", "replace"))'
}
expect_text() {                 # WHAT URI EXPECTED
  local got
  got=$(read_text "$2") || fail "could not read $1"
  printf '  %-30s "%s"\n' "$1 reads:" "$got"
  [[ $got == "$3" ]] || fail "$1 should read \"$3\""
}

if [[ $installed == 1 ]]; then
  heading "Use the installed plugin and CLI (SHADOWCOPY_INSTALLED=1)"
  [[ -x $cli ]] || fail "$cli is not installed"
  nbdkit "$plugin" --dump-plugin >"$tmp/dump" 2>&1 ||
    fail "nbdkit does not find the installed plugin: $(cat "$tmp/dump")"
  grep '^path=' "$tmp/dump" | indent
  echo "  CLI: $cli"
else
  heading "Build (installs missing Debian packages; log shown on failure)"
  if ! ./scripts/build.sh >"$tmp/build.log" 2>&1; then
    tail -n 60 "$tmp/build.log" >&2
    fail "the build failed"
  fi
  [[ -f $plugin ]] || fail "the build did not produce $plugin"
  [[ -x $cli ]] || fail "the build did not produce $cli"
  echo "  built $plugin and $cli"
fi

heading "Make a 64 MiB origin disk (a sparse file) in a temporary directory"
echo "  DEMO=$tmp"
disk=$tmp/origin.img
diff=$tmp/origin.diff
sock=$tmp/nbd.sock
ctl=$diff.sock                  # the control socket's default path
run truncate -s 64M "$disk"

heading "Start nbdkit with the shadowcopy plugin (NBD on a Unix socket)"
show nbdkit -f --unix "$sock" "$plugin" disk="$disk" diff="$diff" "&"
nbdkit -f --unix "$sock" --pidfile "$tmp/nbdkit.pid" \
  "$plugin" disk="$disk" diff="$diff" >"$tmp/nbdkit.log" 2>&1 </dev/null &
server_pid=$!
# nbdkit writes its pidfile once it accepts connections.
for _ in $(seq 100); do
  [[ -s $tmp/nbdkit.pid ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "nbdkit exited at startup"
  sleep 0.1
done
[[ -s $tmp/nbdkit.pid ]] || fail "nbdkit did not start within 10 s"
[[ -S $ctl ]] || fail "no control socket at $ctl"
echo "  serving the live disk as export \"live\"; control socket: \$DEMO/origin.diff.sock"

live="nbd+unix:///live?socket=$sock"
snap="nbd+unix:///before-change?socket=$sock"

heading "Write a text into the live disk at offset 1 MiB"
echo "  \"$old_text\""
write_text "$live" "$old_text" || fail "writing to the live disk failed"
expect_text "live" "$live" "$old_text"

heading "Create a snapshot named before-change"
show "$cli" -c "$ctl" create before-change
name=$("$cli" -c "$ctl" create before-change) || fail "shadowcopy create failed"
echo "$name" | indent
[[ $name == before-change ]] || fail "create printed \"$name\", not \"before-change\""

heading "Overwrite the text on the live disk"
echo "  \"$new_text\""
write_text "$live" "$new_text" || fail "writing to the live disk failed"

heading "Read both: the snapshot keeps the old text, the live disk has the new"
expect_text "snapshot before-change" "$snap" "$old_text"
expect_text "live" "$live" "$new_text"

heading "What changed since the snapshot (shadowcopy diff: changed-block tracking)"
show "$cli" -c "$ctl" diff before-change
"$cli" -c "$ctl" diff before-change >"$tmp/diff" || fail "shadowcopy diff failed"
indent <"$tmp/diff"
"$cli" -c "$ctl" diff before-change --json >"$tmp/diff.json" ||
  fail "shadowcopy diff --json failed"
grep -q "\"offset\": $offset" "$tmp/diff.json" ||
  fail "diff does not report the chunk that was written: $(cat "$tmp/diff.json")"

heading "The snapshot export is read-only: a write is refused"
if nbdsh -u "$snap" -c 'h.pwrite(b"x" * 512, 0)' 2>"$tmp/ro.err"; then
  fail "a write to the snapshot export succeeded"
fi
echo "  refused: $(tail -n 1 "$tmp/ro.err" | sed 's/^nbdsh: command line script failed: //')"
expect_text "snapshot before-change" "$snap" "$old_text"

heading "List the NBD exports (nbdinfo --list, abridged)"
show nbdinfo --list "nbd+unix:///?socket=$sock"
nbdinfo --list "nbd+unix:///?socket=$sock" >"$tmp/exports" ||
  fail "nbdinfo --list failed"
grep -E '^export=|^[[:space:]]+(description|export-size|is_read_only):' \
  "$tmp/exports" | indent
grep -q '^export="live"' "$tmp/exports" || fail "export \"live\" is not listed"
grep -q '^export="before-change"' "$tmp/exports" ||
  fail "export \"before-change\" is not listed"

heading "List the snapshots and show the volume (shadowcopy list, info)"
show "$cli" -c "$ctl" list
"$cli" -c "$ctl" list >"$tmp/list" || fail "shadowcopy list failed"
indent <"$tmp/list"
grep -q 'before-change' "$tmp/list" || fail "shadowcopy list does not show before-change"
show "$cli" -c "$ctl" info
"$cli" -c "$ctl" info | indent || fail "shadowcopy info failed"

heading "A writable clone of the snapshot: its writes are its own"
show "$cli" -c "$ctl" clone before-change trial
"$cli" -c "$ctl" clone before-change trial >/dev/null || fail "shadowcopy clone failed"
trial="nbd+unix:///trial?socket=$sock"
expect_text "clone trial" "$trial" "$old_text"
echo "  writing \"$clone_text\" into the clone"
write_text "$trial" "$clone_text" || fail "writing to the clone failed"
expect_text "clone trial" "$trial" "$clone_text"
expect_text "snapshot before-change" "$snap" "$old_text"
expect_text "live" "$live" "$new_text"

heading "Go back: revert the live disk to before-change (the current state kept)"
show "$cli" -c "$ctl" revert before-change --save-current after-change --wait
"$cli" -c "$ctl" revert before-change --save-current after-change --wait \
  2>/dev/null | indent || fail "shadowcopy revert failed"
expect_text "live" "$live" "$old_text"
expect_text "snapshot after-change" "nbd+unix:///after-change?socket=$sock" "$new_text"

heading "Undo the revert: revert to the kept state"
show "$cli" -c "$ctl" revert after-change --no-save-current --wait
"$cli" -c "$ctl" revert after-change --no-save-current --wait 2>/dev/null |
  indent || fail "shadowcopy revert (undo) failed"
expect_text "live" "$live" "$new_text"
expect_text "snapshot before-change" "$snap" "$old_text"

heading "Stop the server"
show kill -TERM "$server_pid"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[[ $status -eq 0 ]] || fail "nbdkit exited with status $status"
echo "  nbdkit stopped cleanly"

heading "The snapshot is kept in the diff area: list it offline"
show "$cli" --diff "$diff" list
"$cli" --diff "$diff" list >"$tmp/list" || fail "offline shadowcopy list failed"
indent <"$tmp/list"
grep -q 'before-change' "$tmp/list" || fail "the offline list does not show before-change"

printf '\nDemo passed: the snapshot kept the old text while the live disk changed;\n'
printf 'the clone kept its own writes; the revert and its undo were exact.\n'
