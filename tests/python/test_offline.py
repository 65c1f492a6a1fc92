"""Offline: with no server running, Volume(diff=..., offline=...) serves
the diff area in-process, read-only or read-write."""
import shadowcopy
from helpers import ServerTest


class Offline(ServerTest):
    def setUp(self):
        super().setUp()
        with shadowcopy.connect(self.srv.ctl) as v:
            v.create("a")
            v.create("b")
        self.srv.write(0, b"x" * 4096)
        self.srv.stop()

    def test_without_offline_no_server_is_enotconn(self):
        with self.assertRaises(shadowcopy.NotConnectedError) as cm:
            shadowcopy.open(self.srv.diff)
        self.assertIsInstance(cm.exception, ConnectionError)
        self.assertTrue(str(cm.exception))

    def test_offline_read_lists_and_diffs(self):
        with shadowcopy.open(self.srv.diff, offline="read") as v:
            s = v.server()
            self.assertTrue(s.offline)
            self.assertEqual(s.where, self.srv.diff)
            self.assertEqual([x.name for x in v.list()], ["a", "b"])
            self.assertEqual(v.info().snapshots, 2)
            self.assertEqual(len(v.diff("b")), 1)

    def test_offline_needs_a_server_for_stats(self):
        with shadowcopy.open(self.srv.diff, offline="read") as v:
            with self.assertRaises(shadowcopy.NotConnectedError):
                v.stats()

    def test_offline_read_refuses_to_delete(self):
        with shadowcopy.open(self.srv.diff, offline="read") as v:
            with self.assertRaises(shadowcopy.Error):
                v.delete("a")
            self.assertIn("a", v)

    def test_offline_write_deletes_and_it_lasts(self):
        with shadowcopy.Volume(diff=self.srv.diff, offline="write") as v:
            self.assertEqual(v.delete("a"), ["a"])
            self.assertEqual(v.clone("b", "c").type, "clone")
        self.srv.start()
        with shadowcopy.connect(self.srv.ctl) as v:
            self.assertEqual([x.name for x in v.list()], ["b", "c"])

    def test_offline_prefers_a_running_server(self):
        self.srv.start()
        with shadowcopy.open(self.srv.diff, offline="write") as v:
            self.assertFalse(v.server().offline)

    def test_a_second_offline_writer_is_told_another_program_has_it(self):
        # No server runs: the diff area is held by this first handle, and
        # the message must not claim a running server.
        with shadowcopy.Volume(diff=self.srv.diff, offline="write"):
            with self.assertRaises(shadowcopy.Error) as cm:
                shadowcopy.Volume(diff=self.srv.diff, offline="write")
            m = str(cm.exception)
            self.assertIn("%s: the diff area is in use by another program "
                          "(a server that does not listen on %s.sock, or "
                          "another offline user such as a shadowcopy command "
                          "or a libshadowcopy program); use -c SOCKET if a "
                          "server runs" % (self.srv.diff, self.srv.diff), m)
            self.assertNotIn("running server", m)

    def test_missing_diff_area_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError):
            shadowcopy.open(self.srv.diff + ".nosuch", offline="read")
