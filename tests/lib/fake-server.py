#!/usr/bin/env python3
"""A control-protocol server that misbehaves, for tests/test-libshadowcopy.sh.

    fake-server.py MODE SOCKET

listens on the Unix socket SOCKET and answers every connection as MODE
says:
  major2   HELLO: protocol=2 (a newer major version), then OK
  nominor  HELLO: protocol=1 with no protocol-minor (an older server),
           LIST: one snapshot line with an unknown key and an unknown
           line kind (both to be ignored), then OK
  garbage  a line of garbage instead of a reply
  close    half a reply line, then the connection closed
  errempty HELLO as nominor; then ERR with an unknown error name and
           no message
  silent   reads the request and never answers
"""
import os
import socket
import sys
import threading
import time

mode, path = sys.argv[1], sys.argv[2]



def data(kind, *fields):
    """A data line: "* KIND", then TAB KEY=VALUE per field."""
    return ("\t".join(["* " + kind] + list(fields)) + "\n").encode()


SNAP = data("snapshot", "id=1", "name=s1", "created=2026-01-01T00:00:00Z",
            "epoch=1", "state=valid", "used=0", "type=snapshot",
            "uuid=11111111-2222-3333-4444-555555555555",
            "some-future-key=yes")


def serve(conn):
    f = conn.makefile("rb")
    try:
        while True:
            line = f.readline()
            if not line:
                return
            verb = line.split()[0] if line.split() else b""
            if mode == "major2":
                conn.sendall(data("server", "protocol=2", "protocol-minor=0",
                                  "version=9.0.0") + b"OK\n")
            elif mode == "nominor":
                if verb == b"HELLO":
                    conn.sendall(data("server", "protocol=1",
                                      "version=0.0.1") + b"OK\n")
                elif verb == b"LIST":
                    conn.sendall(SNAP + data("from-the-future", "a=b") +
                                 b"OK\n")
                else:
                    conn.sendall(b"ERR EINVAL unknown verb\n")
            elif mode == "errempty":
                if verb == b"HELLO":
                    conn.sendall(data("server", "protocol=1") + b"OK\n")
                else:
                    conn.sendall(b"ERR OK\n")
            elif mode == "garbage":
                conn.sendall(b"\x01\x02 this is not a reply \xff\n")
            elif mode == "close":
                conn.sendall(b"* server\tprotoc")
                conn.shutdown(socket.SHUT_RDWR)
                return
            elif mode == "silent":
                time.sleep(3600)
    except OSError:
        pass
    finally:
        conn.close()


if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
