"""shadowcopy.Set: a snapshot set across two real servers with an
executable writer; notices, writer results, backup-complete, delete;
failures leave nothing; Ctrl-C cuts a writer short."""
import gc
import os
import signal
import threading
import time

import shadowcopy
from helpers import ServerTest, eventually, logging_writer, needs, phases

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@needs("shadowcopy_set_new")
class SetTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.srv2 = self.server("vol2")
        self.log = os.path.join(self.tmp, "w.log")
        self.writer = logging_writer(os.path.join(self.tmp, "w"), self.log)

    def names(self, srv):
        with shadowcopy.connect(srv.ctl) as v:
            return [s.name for s in v.list()]

    def new_set(self, **kw):
        s = shadowcopy.Set(volumes=[self.srv.ctl, self.srv2.ctl],
                           writers=[self.writer], **kw)
        self.addCleanup(s.close)
        return s

    def test_set_across_two_volumes_with_a_writer(self):
        s = self.new_set(name="nightly")
        snaps = s.create()
        self.assertRegex(s.id, UUID)
        self.assertEqual(s.name, "nightly")
        self.assertEqual([w for w, _ in snaps], [self.srv.ctl, self.srv2.ctl])
        for where, snap in snaps:
            self.assertIsInstance(snap, shadowcopy.Snapshot)
            self.assertEqual((snap.name, snap.set), ("nightly", s.id))
        self.assertEqual(s.snapshots, snaps)
        self.assertEqual(phases(self.log),
                         ["identify", "prepare", "freeze", "thaw",
                          "post-snapshot"])
        self.assertEqual(self.names(self.srv), ["nightly"])
        self.assertEqual(self.names(self.srv2), ["nightly"])

    def test_writer_results_say_how_long_it_was_frozen(self):
        s = self.new_set()
        s.create()
        results = s.writer_results
        self.assertEqual([r.phase for r in results],
                         ["identify", "prepare", "freeze", "thaw",
                          "post-snapshot"])
        for r in results:
            self.assertIsInstance(r, shadowcopy.WriterResult)
            self.assertEqual((r.writer, r.result), (self.writer, "ok"))
            self.assertAlmostEqual(r.when, time.time(), delta=60)
        thaw = [r for r in results if r.phase == "thaw"][0]
        self.assertGreater(thaw.frozen_ns, 0)
        self.assertEqual(thaw.output, "did thaw")
        self.assertEqual([r.frozen_ns for r in results
                          if r.phase != "thaw"], [0, 0, 0, 0])

    def test_backup_complete_and_delete(self):
        s = self.new_set()
        s.create()
        s.backup_complete(True)
        with open(self.log) as f:
            last = f.read().splitlines()[-1].split()
        self.assertEqual((last[0], last[-1]), ("backup-complete", "success"))
        s.delete()
        self.assertEqual(self.names(self.srv), [])
        self.assertEqual(self.names(self.srv2), [])

    def test_backup_failure_is_told_too(self):
        s = self.new_set()
        s.create()
        s.backup_complete(False)
        with open(self.log) as f:
            self.assertEqual(f.read().splitlines()[-1].split()[-1], "failure")

    def test_a_failing_writer_leaves_nothing(self):
        with open(self.log + ".fail", "w") as f:
            f.write("freeze")
        s = self.new_set()
        with self.assertRaises(shadowcopy.Error) as cm:
            s.create()
        msg = str(cm.exception)
        self.assertIn(self.writer, msg)
        self.assertIn("cannot freeze: locked", msg)
        self.assertEqual(phases(self.log)[-2:], ["abort", "thaw"])
        self.assertEqual(self.names(self.srv), [])
        self.assertEqual(self.names(self.srv2), [])

    def test_notify_gets_the_librarys_notices(self):
        with open(self.log + ".fail", "w") as f:
            f.write("identify")             # left out, with a notice
        notices = []
        s = self.new_set(notify=notices.append)
        s.create()
        self.assertTrue(notices)
        self.assertTrue(all(isinstance(n, str) for n in notices))
        self.assertTrue(any(self.writer in n for n in notices), notices)
        self.assertEqual(self.names(self.srv2), [s.name])

    def test_notify_is_kept_alive_by_the_set(self):
        with open(self.log + ".fail", "w") as f:
            f.write("identify")
        notices = []
        s = self.new_set()
        s.notify = lambda m: notices.append(m)   # no other reference
        gc.collect()
        s.create()
        self.assertTrue(notices)

    def test_notify_exception_propagates_after_the_call(self):
        with open(self.log + ".fail", "w") as f:
            f.write("identify")
        seen = []

        def notify(m):
            seen.append(m)
            raise ValueError("from notify")
        s = self.new_set(notify=notify)
        with self.assertRaises(ValueError) as cm:
            s.create()
        self.assertEqual(cm.exception.args, ("from notify",))
        self.assertEqual(len(seen), 1)      # later notices are not sent
        # The set was taken, but the caller got an exception: nothing of
        # it may be left behind on either volume.
        self.assertEqual(self.names(self.srv), [])
        self.assertEqual(self.names(self.srv2), [])

    def test_options_auto_release(self):
        s = self.new_set(auto_release=True, freeze_ms=20000, hold_ms=5000,
                         retries=1, retry_delay_ms=100)
        s.create()
        self.assertTrue(all(sn.auto_release for _, sn in s.snapshots))
        self.assertEqual(len(self.names(self.srv)), 1)
        s.close()
        for srv in (self.srv, self.srv2):
            self.assertTrue(eventually(lambda: self.names(srv) == []))

    def test_volume_is_the_sets_own_connection(self):
        s = self.new_set(auto_release=True)
        with self.assertRaises(shadowcopy.Error):
            s.volume(0)                 # not taken yet
        s.create()
        with self.assertRaises(IndexError):
            s.volume(2)
        self.srv.write(65536, b"x" * 4096)
        v = s.volume(0)
        self.assertIsInstance(v, shadowcopy.Volume)
        # Back up through it: the snapshot is there, auto-release, and the
        # live volume's change since it shows in a diff.
        mine = [sn for sn in v.list() if sn.name == s.name]
        self.assertEqual(len(mine), 1)
        self.assertTrue(mine[0].auto_release)
        self.assertIn((65536, 65536), list(v.diff(s.name)))
        self.assertGreaterEqual(v.fileno(), 0)
        # Closing it, or dropping another one, leaves the set's
        # connection, and so its auto-release snapshots, alive.
        v.close()
        self.assertTrue(v.closed)
        with self.assertRaises(ValueError):
            v.list()
        w = s.volume(1)
        self.assertIn(s.name, [sn.name for sn in w.list()])
        del w
        gc.collect()
        time.sleep(0.5)                 # a close would have deleted them
        self.assertEqual(self.names(self.srv), [s.name])
        self.assertEqual(self.names(self.srv2), [s.name])
        self.assertIn(s.name, [sn.name for sn in s.handle(1).list()])
        # The set's close closes them, and a Volume of it with them.
        kept = s.volume(0)
        s.close()
        self.assertTrue(kept.closed)
        with self.assertRaises(ValueError):
            kept.list()
        for srv in (self.srv, self.srv2):
            self.assertTrue(eventually(lambda: self.names(srv) == []))

    def test_writers_as_given_and_a_name_prefix(self):
        s = self.new_set(name_prefix="backup-")
        self.assertEqual(s.writers, [self.writer])
        s.create()
        self.assertTrue(s.name.startswith("backup-"), s.name)
        self.assertEqual(self.names(self.srv2), [s.name])

    def test_a_bad_name_is_refused(self):
        s = self.new_set()
        with self.assertRaises(shadowcopy.Error):
            s.options(name="bad name/with slash")

    def test_writers_dir(self):
        d = os.path.join(self.tmp, "writers.d")
        os.mkdir(d, 0o755)
        log2 = os.path.join(self.tmp, "w2.log")
        logging_writer(os.path.join(d, "10-w2"), log2)
        with shadowcopy.Set(volumes=[self.srv.ctl]) as s:
            s.add_writers_dir(d)
            s.add_writers_dir(os.path.join(self.tmp, "none"), optional=True)
            with self.assertRaises(shadowcopy.NotFoundError):
                s.add_writers_dir(os.path.join(self.tmp, "none"))
            s.create()
        self.assertIn("freeze", phases(log2))

    def test_a_volume_without_server_is_an_error(self):
        with shadowcopy.Set() as s:
            with self.assertRaises(shadowcopy.Error) as cm:
                s.add_volume(os.path.join(self.tmp, "nosuch.sock"))
                s.create()
            self.assertIn("nosuch.sock", str(cm.exception))

    def test_ctrl_c_cuts_a_hanging_writer_short(self):
        hang = os.path.join(self.tmp, "hang")
        with open(hang, "w") as f:
            f.write('#!/bin/sh\necho "$1" >> %s\n'
                    '[ "$1" = freeze ] && sleep 30\nexit 0\n' % self.log)
        os.chmod(hang, 0o755)
        s = shadowcopy.Set(volumes=[self.srv.ctl, self.srv2.ctl],
                           writers=[hang])
        self.addCleanup(s.close)
        timer = threading.Timer(1, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            s.create()
        self.assertLess(time.monotonic() - t0, 15)
        self.assertIn("thaw", phases(self.log))
        self.assertEqual(self.names(self.srv), [])
        self.assertEqual(self.names(self.srv2), [])


if __name__ == "__main__":
    import unittest
    unittest.main()
