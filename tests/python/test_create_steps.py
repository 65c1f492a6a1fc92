"""Creation in VSS steps (begin, hold, commit, release, abort) and the
creation slot's EBUSY, against a real server."""
import threading

import shadowcopy
from helpers import ServerTest, eventually


class Steps(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)

    def test_begin_hold_commit_release(self):
        self.v.begin(5000)
        self.v.hold(5000)
        s = self.v.commit("stepped")
        self.assertEqual(s.name, "stepped")
        held = self.v.release()
        self.assertGreater(held, 0)
        self.assertEqual(self.v.find("stepped"), s)

    def test_writes_wait_for_the_release(self):
        self.v.hold(5000)
        done = threading.Event()

        def write():
            self.srv.write(0, b"w" * 4096)
            done.set()
        t = threading.Thread(target=write)
        t.start()
        self.assertFalse(done.wait(0.5))    # held
        self.v.commit("held")
        self.v.release()
        self.assertTrue(done.wait(10))
        t.join()
        # The snapshot has the data from before the write.
        self.assertNotEqual(self.srv.read(0, 4096, export="held"),
                            b"w" * 4096)

    def test_commit_with_release(self):
        self.v.begin()
        self.v.hold()
        s = self.v.commit("at-once", release=True,
                          set="0f8fad5b-d9cb-469f-a165-70867728950e")
        self.assertEqual(s.set, "0f8fad5b-d9cb-469f-a165-70867728950e")
        self.srv.write(0, b"x" * 512)       # writes flow again
        self.assertIn("at-once", self.v)

    def test_abort_deletes_what_commit_made(self):
        self.v.begin()
        self.v.hold()
        self.v.commit("gone")
        self.v.abort()
        self.assertNotIn("gone", self.v)
        self.srv.write(0, b"x" * 512)

    def test_a_second_connection_gets_ebusy(self):
        self.v.begin()
        with shadowcopy.connect(self.srv.ctl) as other:
            with self.assertRaises(shadowcopy.BusyError) as cm:
                other.begin()
            self.assertIn("busy", str(cm.exception))
            with self.assertRaises(shadowcopy.BusyError):
                other.create("x")
            with self.assertRaises(shadowcopy.BusyError):
                other.checkpoint("c")
        self.v.abort()
        self.v.create("after")

    def test_closing_the_connection_aborts_its_creation(self):
        self.v.begin()
        self.v.hold()
        self.v.commit("half")
        self.v.close()
        with shadowcopy.connect(self.srv.ctl) as v:
            # The server notices the hang-up in its own time.
            self.assertTrue(eventually(lambda: "half" not in v))

            def create():
                try:
                    v.create("next")        # the slot is free
                except shadowcopy.BusyError:
                    return False
                return True
            self.assertTrue(eventually(create))

    def test_release_without_creation_is_an_error(self):
        with self.assertRaises(shadowcopy.Error) as cm:
            self.v.release()
        self.assertTrue(str(cm.exception))
