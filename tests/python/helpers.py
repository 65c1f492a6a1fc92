"""What the Python tests share: real nbdkit servers with the plugin, a
fake control server, and executable writers.

Run by tests/test-python.sh, which sets PYTHONPATH (the build tree's
python/), SHADOWCOPY_LIBRARY (lib/.libs) and SHADOWCOPY_PLUGIN.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import nbd

from shadowcopy import _lib


def needs(function):
    """Skip a test the loaded library cannot run (its absence fails
    test_layout's check that every function of the header is there)."""
    return unittest.skipUnless(_lib.has(function),
                               "the library lacks %s" % function)

PLUGIN = os.environ.get("SHADOWCOPY_PLUGIN", "")
START_TIMEOUT = 10


def _note_pid(pid, running):
    """Keep $SHADOWCOPY_TEST_PIDS the list of the nbdkit processes still
    running, for the shell test to kill if this process dies first (a
    reaped pid leaves it: its number may be reused)."""
    path = os.environ.get("SHADOWCOPY_TEST_PIDS")
    if not path:
        return
    pids = set()
    if os.path.exists(path):
        with open(path) as f:
            pids = {int(x) for x in f.read().split()}
    (pids.add if running else pids.discard)(pid)
    with open(path + ".new", "w") as f:
        f.write("".join("%d\n" % p for p in sorted(pids)))
    os.replace(path + ".new", path)


class Server:
    """nbdkit with the plugin on disk TMP/NAME.disk and diff area
    TMP/NAME.diff; its control socket is .ctl, its NBD socket .nbd."""

    def __init__(self, tmp, name="vol", size=8 << 20, args=()):
        self.disk = os.path.join(tmp, name + ".disk")
        self.diff = os.path.join(tmp, name + ".diff")
        self.ctl = self.diff + ".sock"
        self.nbd = os.path.join(tmp, name + ".nbd.sock")
        self.pidfile = os.path.join(tmp, name + ".pid")
        self.log = os.path.join(tmp, name + ".log")
        self.args = list(args)
        self.proc = None
        with open(self.disk, "wb") as f:
            f.write(os.urandom(size))

    def start(self):
        for p in (self.nbd, self.pidfile):
            if os.path.exists(p):
                os.unlink(p)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["nbdkit", "-f", "-U", self.nbd, "--pidfile", self.pidfile,
                 PLUGIN, "disk=" + self.disk, "diff=" + self.diff]
                + self.args, stdout=log, stderr=log)
        _note_pid(self.proc.pid, running=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nbdkit exited with status %d at start: %s"
                                   % (self.proc.returncode, self.log_text()))
            if (os.path.exists(self.pidfile) and os.path.exists(self.nbd)
                    and os.path.exists(self.ctl)):
                return self
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("nbdkit not ready after %ds" % START_TIMEOUT)

    def stop(self):
        """SIGTERM; the server must exit cleanly within 10 s."""
        p, self.proc = self.proc, None
        if p is None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError("nbdkit did not exit within 10 s of SIGTERM")
        finally:
            _note_pid(p.pid, running=False)
        if rc != 0:
            raise RuntimeError("nbdkit exited with status %d: %s"
                               % (rc, self.log_text()))

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]

    def _handle(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.connect_unix(self.nbd)
        return h

    def write(self, offset, data, export="live"):
        h = self._handle(export)
        try:
            h.pwrite(data, offset)
            h.flush()
        finally:
            h.shutdown()

    def read(self, offset, length, export="live"):
        h = self._handle(export)
        try:
            return h.pread(length, offset)
        finally:
            h.shutdown()


class ServerTest(unittest.TestCase):
    """A fresh temporary directory and server per test (self.srv)."""

    server_args = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shadowcopy-py.")
        self.servers = []
        self.srv = self.server()

    def server(self, name="vol", args=None):
        s = Server(self.tmp, name, args=self.server_args if args is None
                   else args)
        self.servers.append(s)
        return s.start()

    def tearDown(self):
        try:
            for s in self.servers:
                s.stop()
        finally:
            if os.environ.get("KEEP_TMP"):
                print("keeping", self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)


def eventually(predicate, timeout=10):
    """Whether predicate() became true within timeout seconds (the server
    notices a closed connection in its own time)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def logging_writer(path, log):
    """A writer that appends 'PHASE SNAPSHOT' to log and says what it did."""
    return executable(path, """#!/bin/sh
echo "$1 $SHADOWCOPY_SNAPSHOT $SHADOWCOPY_BACKUP_RESULT" >> %s
if [ -f %s.fail ] && [ "$1" = "$(cat %s.fail)" ]; then
    echo "cannot $1: locked"; exit 3
fi
echo "did $1"
""" % (log, log, log))


def phases(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [line.split()[0] for line in f]


class FakeServer:
    """A control socket that answers each request line with the next
    canned reply of `replies` (bytes; a callable gets the request), then
    closes; what it was sent is in .requests."""

    def __init__(self, path, replies):
        self.path = path
        self.replies = list(replies)
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            f = conn.makefile("rb")
            for reply in self.replies:
                line = f.readline()
                if not line:
                    return
                self.requests.append(line.decode().rstrip("\n"))
                if callable(reply):
                    reply = reply(line)
                conn.sendall(reply)
            # Then hang up.

    def close(self):
        self.sock.close()
        self.thread.join(5)
