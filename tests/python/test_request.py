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
