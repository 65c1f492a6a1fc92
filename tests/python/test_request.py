"""Volume.request: any verb, its data lines as (kind, dict)."""
import shadowcopy
from helpers import ServerTest


class Request(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)

    def test_hello(self):
        lines = self.v.request("HELLO")
        self.assertEqual(len(lines), 1)
        kind, fields = lines[0]
        self.assertEqual(kind, "server")
        self.assertEqual(fields["protocol"], "1")
        self.assertEqual(fields["protocol-minor"], "1")

    def test_verb_with_arguments(self):
        self.assertEqual(self.v.request("CREATE", "r1", "auto-release=1")[0][1]
                         ["name"], "r1")
        self.assertTrue(self.v.find("r1").auto_release)
        lines = self.v.request("LIST")
        self.assertEqual([(k, f["name"]) for k, f in lines],
                         [("snapshot", "r1")])

    def test_integer_arguments(self):
        self.v.create("a")
        self.v.revert("a", nosave=True, paused=True, force=True)
        lines = self.v.request("REVERT-RATE", 4096)
        self.assertEqual(lines[0][0], "revert")
        self.assertEqual(lines[0][1]["rate"], "4096")
        self.assertEqual(self.v.revert_status().rate, 4096)

    def test_a_reply_without_data_lines(self):
        self.assertEqual(self.v.request("REVERT-STATUS")[0][0], "revert")
        self.assertEqual(self.v.request("DELETE-ALL"), [])

    def test_server_error_raises(self):
        with self.assertRaises(shadowcopy.NotFoundError) as cm:
            self.v.request("DELETE", "nosuch")
        self.assertIn("nosuch", str(cm.exception))

    def test_unknown_verb_raises(self):
        with self.assertRaises(shadowcopy.Error) as cm:
            self.v.request("FROBNICATE")
        self.assertIn("FROBNICATE", str(cm.exception))


class BadInput(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)
        self.v.create("a")

    def test_a_nul_byte_is_refused_before_c_sees_it(self):
        for call in (lambda: self.v.delete("a\0b"),
                     lambda: self.v.find("a\0"),
                     lambda: self.v.request("DELETE", "a\0x"),
                     lambda: shadowcopy.connect(self.srv.ctl + "\0x")):
            with self.assertRaises(ValueError):
                call()
        self.assertIn("a", self.v)          # not deleted as "a"

    def test_bad_names_and_arguments_are_einval(self):
        for call in (lambda: self.v.create("x" * 200),
                     lambda: self.v.create("a\tb"),
                     lambda: self.v.request("LIST", "a b"),
                     lambda: self.v.request(""),
                     lambda: self.v.diff("live")):
            with self.assertRaises(shadowcopy.Error) as cm:
                call()
            self.assertEqual(cm.exception.errno, 22, str(cm.exception))
            self.assertTrue(str(cm.exception))
        self.assertEqual([s.name for s in self.v.list()], ["a"])

    def test_non_ascii_names_round_trip_or_are_refused(self):
        try:
            s = self.v.create("café")
        except shadowcopy.Error as e:
            self.assertEqual(e.errno, 22)
        else:
            self.assertEqual(self.v.find("café"), s)
