"""shadowcopy.Set at its edges, against real servers: shadowcopy_set_delete
leaves a checkpoint kept through the set's handle; notices made before
notify is set reach it; a COMMIT, or a one-volume set's single CREATE,
whose reply is lost is looked for and deleted, or said that it may remain; shadowcopy_close refuses a set's handle."""
import ctypes
import errno
import os
import socket
import stat
import threading

import shadowcopy
from shadowcopy import _lib
from helpers import ServerTest, eventually, needs

KEEP_CHECKPOINT = 1


def set_handle(s, i):
    f = _lib.cdll.shadowcopy_set_handle
    f.restype = ctypes.c_void_p
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    h = f(s._s, i)
    assert h, last_error()
    return h


def c_call(name, restype, argtypes, *args):
    f = getattr(_lib.cdll, name)
    f.restype = restype
    f.argtypes = argtypes
    return f(*args)


def last_error():
    f = _lib.cdll.shadowcopy_get_error
    f.restype = ctypes.c_char_p
    return f().decode()


class LosingProxy:
    """A control socket in front of a real server's, relaying every line
    both ways, except that the reply to the first VERB (COMMIT, or CREATE)
    is read from the server (so the server has recorded it) and never
    given: the client's connection is closed instead.  refuse_after: then
    stop listening (a server gone for good), else relay new connections as
    they come."""

    def __init__(self, path, target, refuse_after=False, verb=b"COMMIT"):
        self.path, self.target, self.verb = path, target, verb
        self.refuse_after = refuse_after
        self.lost = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,),
                             daemon=True).start()

    def _relay(self, conn):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(self.target)
        cf, uf = conn.makefile("rb"), up.makefile("rb")
        try:
            while True:
                line = cf.readline()
                if not line:
                    return
                up.sendall(line)
                reply = []
                while True:
                    r = uf.readline()
                    if not r:
                        return
                    reply.append(r)
                    if r.startswith(b"OK") or r.startswith(b"ERR"):
                        break
                if line.startswith(self.verb) and not self.lost.is_set():
                    self.lost.set()
                    if self.refuse_after:
                        self.close()
                    return
                conn.sendall(b"".join(reply))
        finally:
            conn.close()
            up.close()

    def close(self):
        try:
            self.sock.close()
            os.unlink(self.path)
        except OSError:
            pass


@needs("shadowcopy_set_handle")
class SetEdgesTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.srv2 = self.server("vol2")

    def listed(self, ctl):
        with shadowcopy.connect(ctl) as v:
            return [(s.name, s.type, s.set) for s in v.list()]

    def test_set_delete_leaves_a_kept_checkpoint(self):
        s = shadowcopy.Set(volumes=[self.srv.ctl, self.srv2.ctl], name="bk1")
        self.addCleanup(s.close)
        s.create()
        # Volume 0's snapshot is kept as a checkpoint (it keeps the
        # snapshot's name and UUID); volume 1's is still a snapshot.
        rc = c_call("shadowcopy_delete", ctypes.c_int,
                    [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p],
                    set_handle(s, 0), b"bk1", None, KEEP_CHECKPOINT, None,
                    None)
        self.assertEqual(rc, 0, last_error())
        # (A checkpoint is of no set.)
        self.assertEqual(self.listed(self.srv.ctl), [("bk1", "checkpoint", "")])
        s.delete()
        self.assertEqual(self.listed(self.srv.ctl), [("bk1", "checkpoint", "")])
        self.assertEqual(self.listed(self.srv2.ctl), [])
        s.delete()              # again: nothing of the set's left, no error

    def test_notices_made_before_notify_reach_it(self):
        d = os.path.join(self.tmp, "writers.d")
        os.mkdir(d, 0o755)
        w = os.path.join(d, "10-app")
        with open(w, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(w, 0o775 | stat.S_IWGRP)      # group-writable: skipped
        got = []
        # The constructor adds the directory, then sets notify.
        s = shadowcopy.Set(writers_dirs=[d], notify=got.append)
        self.addCleanup(s.close)
        self.assertEqual(s.writers, [])
        self.assertEqual(len(got), 1, got)
        self.assertIn("writer %s is not owned by root or you, or is "
                      "group/world-writable: skipping it" % w, got[0])
        # A notice after notify is set goes to it as it is made.
        s.add_writers_dir(d)
        self.assertEqual(len(got), 2, got)

    def lost_commit(self, refuse_after):
        proxy = os.path.join(self.tmp, "b.sock")
        p = LosingProxy(proxy, self.srv2.ctl, refuse_after)
        self.addCleanup(p.close)
        notices = []
        s = shadowcopy.Set(volumes=[self.srv.ctl, proxy], name="s1",
                           notify=notices.append)
        self.addCleanup(s.close)
        with self.assertRaises(shadowcopy.Error) as e:
            s.create()
        self.assertTrue(p.lost.is_set())
        self.assertEqual(str(e.exception).count(proxy), 1, str(e.exception))
        for n in notices:       # the socket named once at the start
            self.assertNotIn("%s: %s:" % (proxy, proxy), n)
            self.assertNotRegex(n, r"^%s: [a-z ]*: %s:" % (proxy, proxy))
        self.assertEqual(self.listed(self.srv.ctl), [])
        return s, notices

    def test_a_commit_whose_reply_is_lost_is_deleted(self):
        s, notices = self.lost_commit(refuse_after=False)
        # The server recorded it; the undo found it by name and set, over
        # a new connection, and deleted it.
        self.assertEqual(self.listed(self.srv2.ctl), [])
        self.assertFalse([n for n in notices if "may remain" in n], notices)

    def test_a_commit_whose_reply_is_lost_may_remain(self):
        s, notices = self.lost_commit(refuse_after=True)
        # Nothing answers at the volume's socket any more: the undo cannot
        # confirm, and says how to remove it.
        proxy = os.path.join(self.tmp, "b.sock")
        self.assertIn("%s: snapshot s1 of set %s may remain: remove it with "
                      "shadowcopy -c %s delete --set %s"
                      % (proxy, s.id, proxy, s.id), notices)
        self.assertEqual(self.listed(self.srv2.ctl), [("s1", "snapshot", s.id)])

    def lost_create(self, refuse_after, name):
        """A set of one volume and no writer: taken with a single CREATE,
        whose reply is lost.  name None: the server names it."""
        proxy = os.path.join(self.tmp, "c-%s.sock" % name)
        p = LosingProxy(proxy, self.srv2.ctl, refuse_after, verb=b"CREATE")
        self.addCleanup(p.close)
        notices = []
        s = shadowcopy.Set(volumes=[proxy], notify=notices.append,
                           **({"name": name} if name else {}))
        self.addCleanup(s.close)
        with self.assertRaises(shadowcopy.Error) as e:
            s.create()
        self.assertTrue(p.lost.is_set())
        self.assertEqual(str(e.exception).count(proxy), 1, str(e.exception))
        return s, notices, proxy

    def test_a_create_whose_reply_is_lost_is_deleted(self):
        for name in ("c1", None):       # named by us, or by the server
            with self.subTest(name=name):
                s, notices, _ = self.lost_create(False, name)
                # Found by name (or by set alone) over a new connection,
                # and deleted.
                self.assertEqual(self.listed(self.srv2.ctl), [])
                self.assertFalse([n for n in notices if "may remain" in n],
                                 notices)

    def test_a_create_whose_reply_is_lost_may_remain(self):
        s, notices, proxy = self.lost_create(True, "c1")
        self.assertIn("%s: snapshot c1 of set %s may remain: remove it with "
                      "shadowcopy -c %s delete --set %s"
                      % (proxy, s.id, proxy, s.id), notices)
        self.assertEqual(self.listed(self.srv2.ctl), [("c1", "snapshot", s.id)])

    def test_a_create_named_by_the_server_whose_reply_is_lost_may_remain(self):
        s, notices, proxy = self.lost_create(True, None)
        self.assertIn("%s: a snapshot of set %s may remain: remove it with "
                      "shadowcopy -c %s delete --set %s"
                      % (proxy, s.id, proxy, s.id), notices)
        self.assertEqual([(t, i) for _, t, i in self.listed(self.srv2.ctl)],
                         [("snapshot", s.id)])

    def test_close_refuses_a_set_handle(self):
        s = shadowcopy.Set(volumes=[self.srv.ctl], name="ar",
                           auto_release=True)
        self.addCleanup(s.close)
        s.create()
        h = set_handle(s, 0)
        rc = c_call("shadowcopy_close", ctypes.c_int, [ctypes.c_void_p], h)
        self.assertEqual(rc, -errno.EINVAL)
        self.assertIn("this handle belongs to a snapshot set", last_error())
        # The set's connection is still open: its auto-release snapshot
        # lives, and the handle still works.
        self.assertEqual(self.listed(self.srv.ctl), [("ar", "snapshot", s.id)])
        self.assertGreaterEqual(
            c_call("shadowcopy_fd", ctypes.c_int, [ctypes.c_void_p], h), 0)
        s.close()
        self.assertTrue(eventually(lambda: self.listed(self.srv.ctl) == []))
