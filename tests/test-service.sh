#!/bin/bash
# Tests a volume as a service: the systemd units verify (a broken one does not), serve --dry-run's command, a real `shadowcopy serve` from a volume file (backup and verify find the NBD socket through INFO, status shows it, a restart after SIGTERM or kill -9 starts cleanly), and bad volume files refused with nothing created.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

export SHADOWCOPY_CONFDIR=$TMP/etc
mkdir -p "$SHADOWCOPY_CONFDIR" "$TMP/var" "$TMP/run"
S=$SHADOWCOPY_CLI

# ---- the units ------------------------------------------------------------

# verify_units FILE...: systemd-analyze verify, failing on any complaint
# (an unknown key is only a warning to it).
verify_units () {
    local out rc=0
    out=$(MANPATH=$TMP/man SYSTEMD_LOG_COLOR=0 \
          systemd-analyze verify "$@" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] && [ -z "$out" ] && return 0
    echo "$out" >&2
    return 1
}

if command -v systemd-analyze >/dev/null; then
    # make install's units, with ExecStart's path made this build's.
    make -s -C "$abs_top_builddir" install-systemdsystemunitDATA \
        install-dist_shadowcopyconfDATA install-data-local \
        DESTDIR="$TMP/root" > "$TMP/install.log" 2>&1 ||
        fail "make install of the units failed: $(cat "$TMP/install.log")"
    unitdir=$(find "$TMP/root" -name 'shadowcopy@.service' -printf '%h\n')
    [ -n "$unitdir" ] || fail "make install put no shadowcopy@.service"
    [ -f "$unitdir/shadowcopy-snapshot@.service" ] &&
        [ -f "$unitdir/shadowcopy-snapshot@.timer" ] ||
        fail "make install did not install the snapshot units"
    find "$TMP/root" -name shadowcopy.conf.example | grep_all /shadowcopy/ ||
        fail "make install did not install shadowcopy.conf.example"
    find "$TMP/root" -type d -name writers.d | grep_all /shadowcopy/ ||
        fail "make install did not make the writers' directory"
    grep -qx 'ExecStart=/[^ ]*/shadowcopy serve %i' \
        "$unitdir/shadowcopy@.service" ||
        fail "ExecStart is not one absolute 'shadowcopy serve %i' line"
    mkdir -p "$TMP/units" "$TMP/man/man1"
    cp "$abs_top_srcdir"/docs/*.1 "$TMP/man/man1/"
    for u in shadowcopy@ shadowcopy-snapshot@; do
        sed -E "s|/[^ ']*/bin/shadowcopy|$S|g" "$unitdir/$u.service" \
            > "$TMP/units/${u}vol.service"
    done
    cp "$unitdir/shadowcopy-snapshot@.timer" \
        "$TMP/units/shadowcopy-snapshot@vol.timer"
    # The snapshot waits for the volume's control socket (run below).
    pre=$(sed -n 's/^ExecStartPre=//p' \
          "$TMP/units/shadowcopy-snapshot@vol.service" |
          sed 's/%i/vol/g; s/\$\$/$/g')
    [ -n "$pre" ] ||
        fail "the snapshot unit does not wait for the volume's control socket"
    ! grep -q '^ProtectClock=' "$unitdir/shadowcopy@.service" ||
        fail "ProtectClock= (an implied DeviceAllow=) in shadowcopy@.service"
    verify_units "$TMP/units/shadowcopy@vol.service" \
        "$TMP/units/shadowcopy-snapshot@vol.service" \
        "$TMP/units/shadowcopy-snapshot@vol.timer" ||
        fail "systemd-analyze verify refused the units"
    # The check can fail: a misspelt key, a bad calendar.
    sed 's/^Restart=/Restrat=/' "$TMP/units/shadowcopy@vol.service" \
        > "$TMP/units/shadowcopy@bad.service"
    ! verify_units "$TMP/units/shadowcopy@bad.service" 2>/dev/null ||
        fail "systemd-analyze verify took a misspelt key"
    sed 's/^OnCalendar=.*/OnCalendar=someday/' \
        "$TMP/units/shadowcopy-snapshot@vol.timer" \
        > "$TMP/units/shadowcopy-snapshot@bad.timer"
    ! verify_units "$TMP/units/shadowcopy-snapshot@bad.timer" 2>/dev/null ||
        fail "systemd-analyze verify took a bad OnCalendar"
    log "ok, the units verify"
else
    log "systemd-analyze is missing: the units are not verified"
    units_skipped=1
fi

# ---- serve --dry-run ------------------------------------------------------

make_disk "$TMP/disk" 8M
conf=$SHADOWCOPY_CONFDIR/vol.conf
cat > "$conf" <<CONF
# a test volume
disk = $TMP/disk
diff = $TMP/var/vol.diff
listen = unix:$TMP/run/vol.nbd
control = $TMP/run/vol.ctl
diff-max = 50%
CONF
out=$("$S" serve vol --dry-run) || fail "serve --dry-run failed"
want="nbdkit --foreground -U $TMP/run/vol.nbd --tls=off $SHADOWCOPY_PLUGIN config=$conf"
[ "$out" = "$want" ] || fail "serve --dry-run printed '$out', not '$want'"
[ ! -e "$TMP/var/vol.diff" ] && [ ! -e "$TMP/run/vol.nbd" ] ||
    fail "serve --dry-run created something"
cat > "$SHADOWCOPY_CONFDIR/net.conf" <<CONF
disk=$TMP/disk
diff=$TMP/var/net.diff
listen=tcp:127.0.0.1:10999
tls=require
tls-psk=$TMP/psk file
CONF
out=$(SHADOWCOPY_PLUGIN= "$S" serve net --dry-run) || fail "serve net --dry-run"
want="nbdkit --foreground -i 127.0.0.1 -p 10999 --tls=require '--tls-psk=$TMP/psk file' shadowcopy config=$SHADOWCOPY_CONFDIR/net.conf control=/run/shadowcopy/net.ctl"
[ "$out" = "$want" ] || fail "serve net --dry-run printed '$out', not '$want'"
rm "$SHADOWCOPY_CONFDIR/net.conf"

# ---- bad volume files: refused, nothing created -----------------------------

# bad_conf WHAT EXPECTED-MESSAGE-PART: `serve bad` with $TMP/etc/bad.conf
# fails with that message, and makes no diff area and no socket.
bad_conf () {
    local rc=0 err
    err=$(timeout 20 "$S" serve bad 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] || fail "$1: serve succeeded"
    [ "$rc" -lt 124 ] || fail "$1: serve exited with $rc: $err"
    case $err in *"$2"*) ;; *) fail "$1: '$err' does not say '$2'" ;; esac
    [ ! -e "$TMP/var/bad.diff" ] || fail "$1: a diff area was created"
    [ ! -e "$TMP/run/bad.nbd" ] && [ ! -e "$TMP/run/bad.ctl" ] ||
        fail "$1: a socket was created"
    log "ok, $1: $(echo "$err" | tail -n 1)"
}
good="disk=$TMP/disk
diff=$TMP/var/bad.diff
listen=unix:$TMP/run/bad.nbd
control=$TMP/run/bad.ctl"
bad_conf "a missing file" "volume bad: $SHADOWCOPY_CONFDIR/bad.conf: No such file or directory"
printf '%s\nfrobnicate=1\n' "$good" > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "an unknown key" "$SHADOWCOPY_CONFDIR/bad.conf:5: frobnicate=1 refused"
printf '%s\ndiff-max=lots\n' "$good" > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "a bad value" "$SHADOWCOPY_CONFDIR/bad.conf:5: diff-max=lots refused"
printf '%s\nlisten=tcp:host\n' "$(echo "$good" | sed '/^listen/d')" \
    > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "a bad listen=" "bad.conf:4: listen=tcp:host: must be tcp:HOST:PORT"
printf '%s\ndisk /x\n' "$good" > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "a line without =" "bad.conf:5: no '='"
printf '%s\n' "$good" | sed "s|^disk=.*|disk=$TMP/nodisk|" \
    > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "a missing disk" "volume bad: disk $TMP/nodisk: No such file or directory"
printf '%s\n' "$good" | sed "s|^diff=.*|diff=$TMP/nodir/bad.diff|" \
    > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "a diff area without its directory" "$TMP/nodir: No such file or directory"
printf '%s\n' "$good" | sed '/^diff=/d' > "$SHADOWCOPY_CONFDIR/bad.conf"
bad_conf "no diff=" "needs disk= and diff="
printf '%s\n' "$good" > "$SHADOWCOPY_CONFDIR/bad.conf"
rc=0; err=$(SHADOWCOPY_PLUGIN= "$S" serve bad disk=x 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "serve with two operands: exit $rc ($err)"
rc=0; err=$("$SHADOWCOPY_CLI" -c x serve vol 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "serve with -c: exit $rc ($err)"
# The plugin itself: a key both in the file and on the command line.
rc=0
err=$(nbdkit -U "$TMP/run/x.nbd" -f "$SHADOWCOPY_PLUGIN" config="$conf" \
      diff-max=10% 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "nbdkit took diff-max= twice"
case $err in
    *"diff-max= given twice: $conf:6 and on the command line"*) ;;
    *) fail "nbdkit's error for diff-max twice: $err" ;;
esac
rm "$SHADOWCOPY_CONFDIR/bad.conf"

# ---- a real serve -----------------------------------------------------------

SERVE_PID=
# serve_vol: `shadowcopy serve vol` in the background (it becomes nbdkit),
# ready when its control socket answers.
serve_vol () {
    local i
    "$S" serve vol >> "$TMP/serve.log" 2>&1 &
    SERVE_PID=$!
    _SERVER_PIDS+=("$SERVE_PID")
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SERVE_PID" 2>/dev/null ||
            fail "serve vol exited: $(tail -n 5 "$TMP/serve.log")"
        "$S" --volume vol info > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "serve vol not ready in 10 s: $(tail -n 5 "$TMP/serve.log")"
}
stop_vol () {         # SIGNAL
    kill -"$1" "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || :
    _forget_pid "$SERVE_PID"
}

out=$("$S" status) || fail "status failed with nothing running"
echo "$out" | grep_all -E '^vol +stopped +- ' || fail "status: not stopped: $out"

# The snapshot unit's ExecStartPre, started before the server: it waits
# for the control socket, and succeeds once the server answers.
prepid=
if [ -n "${pre:-}" ]; then
    eval "$pre" > "$TMP/pre.out" 2>&1 &
    prepid=$!
    sleep 1.5
    kill -0 "$prepid" 2>/dev/null ||
        fail "ExecStartPre did not wait for the server: $(cat "$TMP/pre.out")"
fi
serve_vol
if [ -n "$prepid" ]; then
    wait "$prepid" || fail "ExecStartPre failed with the server up: $(cat "$TMP/pre.out")"
    log "ok, the snapshot unit waits for the volume's control socket"
fi
CTL=$TMP/run/vol.ctl
listen=$(sc info --json | json 'd["listen"]')
[ "$listen" = "nbd+unix:///?socket=$TMP/run/vol.nbd" ] ||
    fail "INFO's listen is '$listen'"
sc info | grep_all -x "listen: nbd+unix:///?socket=$TMP/run/vol.nbd" ||
    fail "info does not show where it listens"
[ "$("$S" --volume vol create s1)" = s1 ] || fail "create through --volume"
# backup and verify --against without --nbd-socket: the socket INFO tells.
"$S" --volume vol backup s1 --to "$TMP/s1.img" > "$TMP/backup.out" 2>&1 ||
    fail "backup without --nbd-socket: $(cat "$TMP/backup.out")"
[ "$(sha256sum < "$TMP/s1.img" | cut -d' ' -f1)" = "$(sha256sum < "$TMP/disk" | cut -d' ' -f1)" ] ||
    fail "the backup is not the disk"
"$S" --volume vol verify "$TMP/s1.img" --against s1 > /dev/null ||
    fail "verify --against without --nbd-socket failed"

out=$("$S" status) || fail "status failed"
echo "$out" | grep_all -E "^vol +running +1 +[0-9]+ +4194304  nbd\\+unix:///\\?socket=$TMP/run/vol.nbd\$" ||
    fail "status does not show vol running with 1 snapshot: $out"
st=$("$S" status --json) || fail "status --json failed"
[ "$(echo "$st" | json 'd[0]["state"]')" = running ] ||
    fail "status --json: $st"
[ "$(echo "$st" | json 'd[0]["snapshots"]')" = 1 ] || fail "status --json: $st"

# A second serve of the same volume: refused, the first untouched.
rc=0; err=$("$S" serve vol 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "a second serve of vol started"
case $err in *"a server already listens on $TMP/run/vol.nbd"*) ;;
    *) fail "a second serve: $err" ;; esac
"$S" --volume vol info > /dev/null || fail "the first server is gone"

# Stopped (SIGTERM) and served again: no "Address already in use".
stop_vol TERM
out=$("$S" status); echo "$out" | grep_all -E '^vol +stopped' ||
    fail "status after SIGTERM: $out"
serve_vol
[ "$(sc list --json | json '[s["name"] for s in d]')" = s1 ] ||
    fail "s1 is gone after a restart"
# kill -9 leaves both sockets behind: removed, served again.
stop_vol KILL
[ -S "$TMP/run/vol.nbd" ] || log "note: nbdkit removed its socket itself"
serve_vol
"$S" --volume vol backup s1 --to "$TMP/s1b.img" > /dev/null 2>&1 ||
    fail "backup after kill -9 and serve"
cmp "$TMP/s1.img" "$TMP/s1b.img" || fail "the second backup differs"
! grep -q "Address already in use" "$TMP/serve.log" ||
    fail "serve met a stale socket: $(cat "$TMP/serve.log")"
stop_vol TERM

# A stale socket is never a live server's: a socket someone listens on
# under the NBD path is refused (exercised above); a file that is not a
# socket is refused too.
rm -f "$TMP/run/vol.nbd"; : > "$TMP/run/vol.nbd"
rc=0; err=$("$S" serve vol 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "serve over a regular file started"
case $err in *"is not a socket"*) ;; *) fail "serve over a file: $err" ;; esac

# Without listen=, the plugin reads nbdkit's own command line (-U).
make_disk "$TMP/disk2" 4M
start_server "$TMP/disk2" "$TMP/diff2"
[ "$(sc info --json | json 'd["listen"]')" = "nbd+unix:///?socket=$NBD_SOCK" ] ||
    fail "INFO's listen from nbdkit -U: $(sc info --json)"
sc_create t1
"$S" -c "$CTL" backup t1 --to "$TMP/t1.img" > /dev/null ||
    fail "backup without --nbd-socket from nbdkit -U"
cmp "$TMP/t1.img" "$TMP/disk2" || fail "the backup of t1 is not disk2"
stop_server

# A volume file with neither control= nor listen= (the shipped example,
# the README's): serve tells the plugin the defaults, so --volume and
# status (which look at RUNDIR/VOLUME.ctl) reach it.  SHADOWCOPY_RUNDIR
# stands for /run/shadowcopy.
export SHADOWCOPY_RUNDIR=$TMP/rd
make_disk "$TMP/disk3" 4M
printf 'disk = %s\ndiff = %s\n' "$TMP/disk3" "$TMP/var/dflt.diff" \
    > "$SHADOWCOPY_CONFDIR/dflt.conf"
out=$("$S" serve dflt --dry-run) || fail "serve dflt --dry-run failed"
want="nbdkit --foreground -U $TMP/rd/dflt.nbd --tls=off $SHADOWCOPY_PLUGIN config=$SHADOWCOPY_CONFDIR/dflt.conf control=$TMP/rd/dflt.ctl listen=unix:$TMP/rd/dflt.nbd"
[ "$out" = "$want" ] || fail "serve dflt --dry-run printed '$out', not '$want'"
"$S" serve dflt >> "$TMP/serve.log" 2>&1 &
SERVE_PID=$!
_SERVER_PIDS+=("$SERVE_PID")
for ((i = 0; i < 100; i++)); do
    [ -S "$TMP/var/dflt.diff.sock" ] || [ -S "$TMP/rd/dflt.ctl" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null ||
        fail "serve dflt exited: $(tail -n 5 "$TMP/serve.log")"
    sleep 0.1
done
sleep 0.3
"$S" --volume dflt create d1 > /dev/null ||
    fail "--volume dflt: the default control socket does not answer ($(ls "$TMP/rd" "$TMP/var"))"
[ "$("$S" --volume dflt list --json | json '[s["name"] for s in d]')" = d1 ] ||
    fail "--volume dflt list"
out=$("$S" status) || fail "status with dflt"
echo "$out" | grep_all -E "^dflt +running +1 .*nbd\+unix:///\?socket=$TMP/rd/dflt.nbd\$" ||
    fail "status does not show dflt running: $out"
[ ! -e "$TMP/var/dflt.diff.sock" ] || fail "a control socket at DIFF.sock too"
stop_vol TERM
unset SHADOWCOPY_RUNDIR

[ -z "${units_skipped:-}" ] || exit 77
