"""A Volume against a real server: connecting, listing, finding, info,
stats, create and delete, with the server's errors raised as Error."""
import errno
import gc
import os
import select

import shadowcopy
from helpers import ServerTest, eventually


class Connect(ServerTest):
    def test_connect_and_server(self):
        with shadowcopy.connect(self.srv.ctl) as v:
            s = v.server()
            self.assertIsInstance(s, shadowcopy.Server)
            self.assertEqual(s.protocol_major, 1)
            self.assertGreaterEqual(s.protocol_minor, 1)
            self.assertFalse(s.offline)
            self.assertEqual(s.where, self.srv.ctl)
            self.assertTrue(s.version)

    def test_open_diff_reaches_the_running_server(self):
        with shadowcopy.open(self.srv.diff) as v:
            self.assertFalse(v.server().offline)
            v.create("a")
        with shadowcopy.Volume(socket=self.srv.ctl) as v:
            self.assertEqual([s.name for s in v.list()], ["a"])

    def test_with_block_closes(self):
        with shadowcopy.connect(self.srv.ctl) as v:
            pass
        self.assertTrue(v.closed)
        self.assertIn("closed", repr(v))
        self.assertIn(self.srv.ctl, repr(v))
        v.close()                           # again: nothing
        with self.assertRaises(ValueError):
            v.list()

    def test_fileno_is_the_control_socket(self):
        with shadowcopy.connect(self.srv.ctl) as v:
            fd = v.fileno()
            self.assertGreaterEqual(fd, 0)
            r, _, _ = select.select([fd], [], [], 0)
            self.assertEqual(r, [])         # quiet while the server runs
            self.srv.stop()
            r, _, _ = select.select([fd], [], [], 5)
            self.assertEqual(r, [fd])       # the server went away

    def test_auto_release_snapshot_goes_with_its_connection(self):
        with shadowcopy.connect(self.srv.ctl) as v:
            s = v.create("temp", auto_release=True)
            self.assertTrue(s.auto_release)
            with shadowcopy.connect(self.srv.ctl) as other:
                self.assertIn("temp", other)
        with shadowcopy.connect(self.srv.ctl) as v:
            self.assertTrue(eventually(lambda: "temp" not in v))

    def test_a_forgotten_volume_is_closed_by_the_collector(self):
        v = shadowcopy.connect(self.srv.ctl)
        v.create("temp", auto_release=True)
        del v
        gc.collect()
        with shadowcopy.connect(self.srv.ctl) as v:
            self.assertTrue(eventually(lambda: "temp" not in v))

    def test_open_volume_by_configured_name(self):
        confdir = os.path.join(self.tmp, "conf")
        os.mkdir(confdir)
        with open(os.path.join(confdir, "data.conf"), "w") as f:
            f.write("disk=%s\ndiff=%s\ncontrol=%s\n"
                    % (self.srv.disk, self.srv.diff, self.srv.ctl))
        os.environ["SHADOWCOPY_CONFDIR"] = confdir
        try:
            with shadowcopy.open_volume("data") as v:
                self.assertEqual(v.server().where, self.srv.ctl)
            with self.assertRaises(shadowcopy.NotFoundError) as cm:
                shadowcopy.open_volume("nosuch")
            self.assertIn("nosuch", str(cm.exception))
        finally:
            del os.environ["SHADOWCOPY_CONFDIR"]


class Snapshots(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)

    def test_create_returns_the_snapshot(self):
        s = self.v.create("s1")
        self.assertIsInstance(s, shadowcopy.Snapshot)
        self.assertEqual((s.name, s.type, s.valid, s.base, s.set),
                         ("s1", "snapshot", True, "", ""))
        self.assertRegex(s.uuid, r"^[0-9a-f-]{36}$")
        self.assertRegex(s.created, r"^\d{4}-\d\d-\d\dT")
        self.assertFalse(s.auto_release)
        with self.assertRaises(AttributeError):
            s.name = "other"                # frozen

    def test_create_without_name_takes_the_servers_default(self):
        s = self.v.create()
        self.assertTrue(s.name)
        self.assertEqual(self.v.find(s.name), s)

    def test_list_is_oldest_first_and_find_agrees(self):
        made = [self.v.create(n) for n in ("a", "b", "c")]
        listed = self.v.list()
        self.assertEqual([s.name for s in listed], ["a", "b", "c"])
        self.assertEqual([s.id for s in listed], [s.id for s in made])
        self.assertEqual(self.v.find("b"), listed[1])
        self.assertIn("c", self.v)
        self.assertNotIn("d", self.v)

    def test_empty_list(self):
        self.assertEqual(self.v.list(), [])

    def test_find_missing_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError) as cm:
            self.v.find("nosuch")
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertIn("nosuch", str(cm.exception))

    def test_create_existing_name_raises_eexist(self):
        self.v.create("dup")
        with self.assertRaises(FileExistsError) as cm:
            self.v.create("dup")
        self.assertIsInstance(cm.exception, shadowcopy.ExistsError)
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        self.assertEqual(len(self.v.list()), 1)

    def test_create_in_a_set(self):
        sid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        s = self.v.create("m", set=sid)
        self.assertEqual(s.set, sid)

    def test_delete_returns_the_names(self):
        self.v.create("a")
        self.assertEqual(self.v.delete("a"), ["a"])
        self.assertEqual(self.v.list(), [])

    def test_delete_missing_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError) as cm:
            self.v.delete("nosuch")
        self.assertEqual(cm.exception.deleted, [])

    def test_delete_by_uuid(self):
        a = self.v.create("a")
        self.v.delete("a")
        self.v.create("a")                  # the same name, made again
        with self.assertRaises(shadowcopy.StaleError):
            self.v.delete("a", a.uuid)
        self.assertIn("a", self.v)
        self.assertEqual(self.v.delete("a", self.v.find("a").uuid), ["a"])

    def test_delete_keep_checkpoint(self):
        a = self.v.create("a")
        self.assertEqual(self.v.delete("a", keep_checkpoint=True), ["a"])
        c = self.v.find("a")
        self.assertEqual((c.type, c.id, c.uuid), ("checkpoint", a.id, a.uuid))

    def test_delete_oldest_and_all(self):
        for n in ("a", "b", "c"):
            self.v.create(n)
        self.assertEqual(self.v.delete_oldest(), ["a"])
        self.assertEqual(self.v.delete_all(), ["b", "c"])
        self.assertEqual(self.v.delete_all(), [])

    def test_delete_set(self):
        sid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        self.v.create("in1", set=sid)
        self.v.create("out")
        self.assertEqual(self.v.delete_set(sid), ["in1"])
        self.assertEqual([s.name for s in self.v.list()], ["out"])
        with self.assertRaises(shadowcopy.NotFoundError):
            self.v.delete_set(sid)

    def test_info(self):
        self.v.create("a")
        i = self.v.info()
        self.assertIsInstance(i, shadowcopy.VolumeInfo)
        self.assertEqual(i.volume_size, 8 << 20)
        self.assertGreater(i.chunk_size, 0)
        self.assertEqual(i.snapshots, 1)
        self.assertTrue(i.have_holds)
        self.assertGreaterEqual(i.holds, 1)
        self.assertFalse(i.failed)
        self.assertIsNone(i.revert)
        self.assertIn(self.srv.disk, i.origin)

    def test_stats_is_a_dict_of_counters(self):
        self.v.create("a")
        self.srv.write(0, b"x" * 65536)
        st = self.v.stats()
        self.assertIsInstance(st, dict)
        self.assertTrue(st)
        self.assertTrue(all(isinstance(k, str) for k in st))
        self.assertGreater(st["chunks-copied"], 0)

    def test_checkpoint(self):
        c = self.v.checkpoint("cp1")
        self.assertEqual((c.name, c.type), ("cp1", "checkpoint"))
        self.assertEqual(self.v.info().checkpoints, 1)

    def test_clone(self):
        self.v.create("base")
        c = self.v.clone("base", "work")
        self.assertEqual((c.name, c.type, c.base), ("work", "clone", "base"))
        self.assertEqual([s.name for s in self.v.list()], ["base", "work"])
        with self.assertRaises(shadowcopy.BusyError):
            self.v.delete("base")
        self.assertEqual(self.v.delete("base", with_clones=True),
                         ["work", "base"])

    def test_clone_of_missing_snapshot_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError):
            self.v.clone("nosuch", "work")
