#!/usr/bin/env bash
# The README's own start command starts cleanly after any stop: SIGTERM
# (kill), SIGINT (Ctrl-C, on the -f form), SIGHUP and kill -9 all leave
# nbdkit's -U socket behind (nbdkit 1.32 never removes it), and a start
# over it fails with "Address already in use" unless the stale socket is
# removed first.  The commands are taken from README.md's "Starting the
# server" block, with the paths made this test's: the guard line that
# removes a stale socket, then nbdkit.  The guard never removes the
# socket of a running server, even one that refuses the caller (TLS,
# allow-uid=).
. "$(dirname "$0")/functions.sh"
requires nbdinfo pgrep ss

readme=$abs_top_srcdir/README.md
[ -f "$readme" ] || hard_error "no README.md at $readme"

# The first code block after "### Starting the server", unindented.
block=$(awk '/^### Starting the server/ { on = 1; next }
             on && /^    / { print substr($0, 5); got = 1; next }
             on && got && !/^    / { exit }' "$readme")
[ -n "$block" ] || fail "no code block under 'Starting the server' in README.md"
printf '%s\n' "$block" | grep_all '^nbdkit -U /run/disk.sock shadowcopy ' ||
    fail "README.md's start block has no 'nbdkit -U /run/disk.sock shadowcopy' line: $block"

sock=$TMP/disk.sock
disk=$TMP/disk.img
diff=$TMP/disk.diff
make_disk "$disk" 8M

# The README's block with this test's paths (and the built plugin).
cmds=$(printf '%s\n' "$block" |
    sed -e "s|/run/disk.sock|$sock|g" \
        -e "s|shadowcopy disk=disk.img diff=disk.diff|$SHADOWCOPY_PLUGIN disk=$disk diff=$diff|")
guard=$(printf '%s\n' "$cmds" | sed '/^nbdkit -U /,$d')
start=$(printf '%s\n' "$cmds" | sed -n '/^nbdkit -U /,$p')
[ -n "$guard" ] || fail "README.md's start block removes no stale socket"

# The pid of the nbdkit serving $sock (the README's nbdkit forks into the
# background and writes no pidfile): its command line names this test's
# socket, which no other process's does.
server_pid () {
    pgrep -f -x "nbdkit -U $sock $SHADOWCOPY_PLUGIN disk=$disk diff=$diff( -f)?" |
        head -n 1
}

want_snapshot=
serves () {
    nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 || return 1
    [ -z "$want_snapshot" ] ||
        nbdinfo --size "nbd+unix:///$want_snapshot?socket=$sock" >/dev/null 2>&1
}

# readme_start [-f]: the README's block; with -f, nbdkit in the
# foreground (as after "Add -f ..."), in our background.  Sets PID.
readme_start () {
    local i
    PID=
    if [ "${1:-}" = -f ]; then
        bash -c "$guard" >>"$SERVER_LOG" 2>&1 || true
        bash -c "exec $start -f" >>"$SERVER_LOG" 2>&1 &
        PID=$!
    else
        bash -c "$cmds" >>"$SERVER_LOG" 2>&1 || return 1
    fi
    for ((i = 0; i < 100; i++)); do
        [ -n "$PID" ] || PID=$(server_pid || true)
        if [ -n "$PID" ]; then
            _SERVER_PIDS+=("$PID")
            serves && return 0
        fi
        sleep 0.1
    done
    return 1
}

stop_with () {           # SIGNAL
    local i
    kill "-$1" "$PID"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$PID" 2>/dev/null || fail "nbdkit $PID still runs after SIG$1"
    wait "$PID" 2>/dev/null || true
    _forget_pid "$PID"
    [ -S "$sock" ] || log "note: SIG$1 removed the socket (a newer nbdkit?)"
}

# A first start, and a snapshot that every later start must still serve.
bash -c "$guard" || true                # no socket yet: nothing to do
readme_start || fail "the README's start command did not start a server"
"$SHADOWCOPY_CLI" --diff "$diff" create kept >/dev/null
want_snapshot=kept

# The guard leaves a live server's socket alone.
bash -c "$guard" >>"$SERVER_LOG" 2>&1 || true
[ -S "$sock" ] || fail "the README's guard removed the socket of a running server"
serves || fail "the server stopped serving after the README's guard ran"

# Nor that of a running server that refuses the guard's caller: TLS
# (--tls=on: the live export is TLS-only by default, tls-for=write) and
# allow-uid= not naming the caller.  The guard asks only whether a socket
# listens there.
. "$(dirname "$0")/tls-functions.sh"
make_psk "$TMP/k.psk" alice
other_uid=$(( $(id -u) + 4242 ))
make_disk "$TMP/refusing.img" 4M
sock2=$TMP/refusing.sock
guard2=$(printf '%s\n' "$guard" | sed "s|$sock|$sock2|g")
for case in "tls-on:--tls=on --tls-psk=$TMP/k.psk:" \
            "allow-uid::allow-uid=$other_uid"; do
    name=${case%%:*}; rest=${case#*:}; opts=${rest%%:*}; pargs=${rest#*:}
    rm -f "$TMP/refusing.diff"*
    # shellcheck disable=SC2086
    nbdkit -f -U "$sock2" $opts "$SHADOWCOPY_PLUGIN" disk="$TMP/refusing.img" \
        diff="$TMP/refusing.diff" $pargs >>"$SERVER_LOG" 2>&1 &
    rpid=$!
    _SERVER_PIDS+=("$rpid")
    for ((i = 0; i < 100; i++)); do
        [ -S "$sock2" ] && [ -S "$TMP/refusing.diff.sock" ] && break
        kill -0 "$rpid" 2>/dev/null || fail "$name: nbdkit exited"
        sleep 0.1
    done
    ! nbdinfo --can connect "nbd+unix:///?socket=$sock2" 2>/dev/null ||
        fail "$name: the server does not refuse plain nbdinfo (nothing tested)"
    bash -c "$guard2" >>"$SERVER_LOG" 2>&1 || true
    [ -S "$sock2" ] ||
        fail "$name: the README's guard removed the socket of a running server"
    kill "$rpid"; wait "$rpid" 2>/dev/null || true; _forget_pid "$rpid"
    rm -f "$sock2"
    log "the guard keeps a running server's socket ($name)"
done

# What the guard is for: nbdkit alone does not start over the old socket.
stop_with TERM
[ -S "$sock" ] || skip "this nbdkit removes its socket at a clean stop"
bash -c "$start -f" >"$TMP/bare.out" 2>&1 &
bare=$!
_SERVER_PIDS+=("$bare")
for ((i = 0; i < 100; i++)); do kill -0 "$bare" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bare" 2>/dev/null && fail "nbdkit started over a stale socket"
wait "$bare" 2>/dev/null || true
_forget_pid "$bare"
grep -q 'Address already in use' "$TMP/bare.out" ||
    fail "nbdkit over a stale socket: $(cat "$TMP/bare.out")"

for how in TERM:bg INT:fg INT:bg HUP:bg KILL:bg KILL:fg TERM:fg; do
    sig=${how%:*}
    [ "${how#*:}" = fg ] && form=-f || form=
    readme_start $form ||
        fail "the README's start command failed after the previous stop (before SIG$sig)"
    stop_with "$sig"
done
readme_start || fail "the README's start command failed after kill -9"
serves || fail "not serving"
log "the README's start command started cleanly after SIGTERM, SIGINT, SIGHUP and kill -9"
