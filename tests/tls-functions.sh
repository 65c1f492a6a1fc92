# tests/tls-functions.sh: a server on a TCP port of localhost, with
# nbdkit's TLS, for the tests/test-tls*.sh.  Sourced after functions.sh.
#
#   make_psk FILE USER           a PSK file (psktool)
#   make_certs DIR               a throwaway CA; DIR/server (nbdkit's
#                                --tls-certificates), DIR/client (libnbd's
#                                tls-certificates=), DIR/other (a client
#                                trusting another CA)
#   start_tcp_server DISK DIFF NBDKIT_OPTION... -- KEY=VALUE...
#                                nbdkit -p PORT -i 127.0.0.1 OPTIONS...;
#                                sets PORT (and SERVER_PID, CTL as
#                                start_server); stop it with stop_server

# free_port: a TCP port of 127.0.0.1 free a moment ago.
free_port () {
    "$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

make_psk () {
    requires psktool
    psktool -u "$2" -p "$1" >/dev/null 2>&1 || fail "psktool -u $2 -p $1 failed"
}

# _cert DIR NAME TEMPLATE [CA]: key and certificate NAME in DIR, signed
# by CA (a prefix: CA-cert.pem, CA-key.pem) or self-signed.
_cert () {
    local dir=$1 name=$2 ca=${4:-}
    certtool --generate-privkey --outfile "$dir/$name-key.pem" \
        >/dev/null 2>&1 || fail "certtool: private key $name"
    printf '%s\n' "$3" > "$dir/$name.info"
    if [ -z "$ca" ]; then
        certtool --generate-self-signed --load-privkey "$dir/$name-key.pem" \
            --template "$dir/$name.info" --outfile "$dir/$name-cert.pem" \
            >/dev/null 2>&1 || fail "certtool: self-signed $name"
    else
        certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
            --load-ca-certificate "$ca-cert.pem" --load-ca-privkey "$ca-key.pem" \
            --template "$dir/$name.info" --outfile "$dir/$name-cert.pem" \
            >/dev/null 2>&1 || fail "certtool: certificate $name"
    fi
}

make_certs () {
    local d=$1
    requires certtool
    mkdir -p "$d/pki" "$d/server" "$d/client" "$d/other"
    _cert "$d/pki" ca 'cn = shadowcopy test CA
ca
cert_signing_key
expiration_days = 2'
    _cert "$d/pki" server 'organization = shadowcopy test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 2' "$d/pki/ca"
    _cert "$d/pki" client 'organization = shadowcopy test
cn = client
tls_www_client
encryption_key
signing_key
expiration_days = 2' "$d/pki/ca"
    _cert "$d/pki" otherca 'cn = another CA
ca
cert_signing_key
expiration_days = 2'
    cp "$d/pki/ca-cert.pem" "$d/server/ca-cert.pem"
    cp "$d/pki/server-cert.pem" "$d/server/server-cert.pem"
    cp "$d/pki/server-key.pem" "$d/server/server-key.pem"
    cp "$d/pki/ca-cert.pem" "$d/client/ca-cert.pem"
    cp "$d/pki/client-cert.pem" "$d/client/client-cert.pem"
    cp "$d/pki/client-key.pem" "$d/client/client-key.pem"
    cp "$d/pki/otherca-cert.pem" "$d/other/ca-cert.pem"
    cp "$d/pki/client-cert.pem" "$d/other/client-cert.pem"
    cp "$d/pki/client-key.pem" "$d/other/client-key.pem"
}

PORT=

# _try_tcp DISK DIFF OPTIONS... -- ARGS...: one start on a port just
# found free; 0, or 1 (the log says why).
_try_tcp () {
    local disk=$1 diff=$2 pidfile=$TMP/nbdkit.pid pid i rc opts=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    SERVER_ARGS=("disk=$disk" "diff=$diff" "$@")
    CTL=$(_control_of "$diff" "$@")
    PORT=$(free_port)
    rm -f "$pidfile"
    echo "==== $(date +%T.%N) nbdkit -f -p $PORT -i 127.0.0.1 ${opts[*]} shadowcopy ${SERVER_ARGS[*]}" \
        >> "$SERVER_LOG"
    nbdkit -f -p "$PORT" -i 127.0.0.1 --pidfile "$pidfile" "${opts[@]}" \
        "$SHADOWCOPY_PLUGIN" "${SERVER_ARGS[@]}" >> "$SERVER_LOG" 2>&1 &
    pid=$!
    _SERVER_PIDS+=("$pid")
    for ((i = 0; i < SERVER_START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0; wait "$pid" || rc=$?
            _forget_pid "$pid"
            SERVER_PID=
            return 1
        fi
        if [ -s "$pidfile" ] && [ -S "$CTL" ]; then
            SERVER_PID=$pid
            return 0
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || :
    wait "$pid" 2>/dev/null || :
    _forget_pid "$pid"
    SERVER_PID=
    return 1
}

# try_start_tcp_server: as start_tcp_server, returning 1 on a failed
# start (another port is tried when this one was taken meanwhile).
try_start_tcp_server () {
    local k
    for k in 1 2 3; do
        _try_tcp "$@" && return 0
        tail -n 3 "$SERVER_LOG" | grep_all 'Address already in use' || return 1
    done
    return 1
}

start_tcp_server () {
    try_start_tcp_server "$@" || {
        tail -n 20 "$SERVER_LOG" >&2
        fail "could not start nbdkit on TCP: $*"
    }
}

# uri_py URI CODE: python CODE in nbdsh, h connected to URI (local files
# allowed: nbdsh -u refuses tls-psk-file=).  os is imported.
uri_py () {
    E_U=$1 "$NBDSH" -c "import os
h.set_uri_allow_local_file(True)
h.connect_uri(os.environ['E_U'])
$2"
}
