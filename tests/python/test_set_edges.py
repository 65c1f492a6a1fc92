"""shadowcopy.Set at its edges, against real servers: notices made before
notify is set reach it; shadowcopy_close refuses a set's handle."""
import ctypes
import errno
import os
import stat

import shadowcopy
from shadowcopy import _lib
from helpers import ServerTest, eventually, needs


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


@needs("shadowcopy_set_handle")
class SetEdgesTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.srv2 = self.server("vol2")

    def listed(self, ctl):
        with shadowcopy.connect(ctl) as v:
            return [(s.name, s.type, s.set) for s in v.list()]

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
