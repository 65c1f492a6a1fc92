"""Volume.diff: the changed extents with their header, from snapshots and
checkpoints to snapshots or the live volume; callbacks' exceptions."""
import shadowcopy
from helpers import ServerTest

K = 1024


class Diff(ServerTest):
    server_args = ("chunk-size=64K",)

    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)

    def test_diff_to_live_yields_the_written_chunks(self):
        a = self.v.create("a")
        self.srv.write(128 * K, b"x" * 10)
        self.srv.write(1024 * K, b"y" * (130 * K))   # three chunks
        d = self.v.diff("a")
        self.assertIsInstance(d, shadowcopy.Diff)
        self.assertEqual(list(d), [(128 * K, 64 * K),
                                   (1024 * K, 192 * K)])
        self.assertEqual(len(d), 2)
        h = d.header
        self.assertIsInstance(h, shadowcopy.DiffHeader)
        self.assertEqual((h.chunk_size, h.volume_size, h.bytes),
                         (64 * K, 8 << 20, 256 * K))
        self.assertEqual((h.from_.name, h.from_.type, h.from_.id,
                          h.from_.uuid), ("a", "snapshot", a.id, a.uuid))
        self.assertEqual((h.to.name, h.to.type, h.to.id, h.to.uuid),
                         ("live", "live", 0, ""))
        self.assertRegex(h.volume, r"^[0-9a-f-]{36}$")

    def test_diff_between_a_checkpoint_and_a_snapshot(self):
        self.v.checkpoint("cp")
        self.srv.write(0, b"z")
        b = self.v.create("b")
        self.srv.write(512 * K, b"z")       # after b: not in the diff
        d = self.v.diff("cp", "b")
        self.assertEqual(list(d), [(0, 64 * K)])
        self.assertEqual(d.header.from_.type, "checkpoint")
        self.assertEqual((d.header.to.name, d.header.to.id), ("b", b.id))

    def test_nothing_changed_is_an_empty_diff(self):
        self.v.create("a")
        d = self.v.diff("a", "live")
        self.assertEqual((list(d), d.header.bytes), ([], 0))

    def test_extent_callback_streams_instead(self):
        self.v.create("a")
        self.srv.write(0, b"q")
        got = []
        d = self.v.diff("a", extent=lambda off, n: got.append((off, n)))
        self.assertEqual(got, [(0, 64 * K)])
        self.assertEqual(list(d), [])

    def test_extent_callback_exception_propagates_after_the_call(self):
        self.v.create("a")
        for off in range(0, 4 << 20, 128 * K):
            self.srv.write(off, b"q")
        calls = []

        class Stop(Exception):
            pass

        def extent(off, n):
            calls.append(off)
            raise Stop(off)
        with self.assertRaises(Stop) as cm:
            self.v.diff("a", extent=extent)
        self.assertEqual(cm.exception.args, (0,))
        self.assertEqual(len(calls), 1)     # C was told to stop
        # The connection is still usable.
        self.assertEqual(len(self.v.diff("a")), 32)

    def test_diff_from_missing_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError) as cm:
            self.v.diff("nosuch")
        self.assertIn("nosuch", str(cm.exception))

    def test_diff_from_newer_to_older_raises_einval(self):
        self.v.create("a")
        self.v.create("b")
        with self.assertRaises(shadowcopy.Error) as cm:
            self.v.diff("b", "a")
        self.assertEqual(cm.exception.errno, 22)
