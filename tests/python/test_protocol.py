"""Servers the library must refuse: another protocol major, garbage
replies, a hang-up, an NBD socket given as the control socket."""
import os
import shutil
import tempfile
import unittest
from unittest import mock

import shadowcopy
from helpers import FakeServer, ServerTest

HELLO = b"* server\tprotocol=1\tprotocol-minor=1\tversion=0.16.0\nOK\n"


class Fake(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shadowcopy-py.")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.sock = os.path.join(self.tmp, "fake.sock")

    def fake(self, *replies):
        f = FakeServer(self.sock, replies)
        self.addCleanup(f.close)
        return f

    def test_protocol_2_is_refused_naming_both_versions(self):
        f = self.fake(b"* server\tprotocol=2\tprotocol-minor=0\t"
                      b"version=9.0.0\nOK\n")
        with self.assertRaises(shadowcopy.ProtocolError) as cm:
            shadowcopy.connect(self.sock)
        msg = str(cm.exception)
        self.assertIn(self.sock, msg)
        self.assertIn("protocol 2", msg)
        self.assertIn("1", msg)
        self.assertEqual(f.requests, ["HELLO"])

    def test_a_newer_minor_is_accepted(self):
        self.fake(b"* server\tprotocol=1\tprotocol-minor=7\tversion=1.0\t"
                  b"new-key=x\n* newkind\ta=b\nOK\n")
        with shadowcopy.connect(self.sock) as v:
            s = v.server()
            self.assertEqual((s.protocol_major, s.protocol_minor), (1, 7))

    def test_a_missing_minor_means_0(self):
        self.fake(b"* server\tprotocol=1\tversion=0.15.0\nOK\n")
        with shadowcopy.connect(self.sock) as v:
            self.assertEqual(v.server().protocol_minor, 0)

    def test_garbage_hello_is_eproto(self):
        self.fake(b"HTTP/1.1 400 Bad Request\n")
        with self.assertRaises(shadowcopy.Error) as cm:
            shadowcopy.connect(self.sock)
        self.assertIn(self.sock, str(cm.exception))

    def test_garbage_line_in_a_reply_is_eproto(self):
        self.fake(HELLO, b"* snapshot\tname=a\n\x01\xff garbage\x00\nOK\n")
        with shadowcopy.connect(self.sock) as v:
            with self.assertRaises(shadowcopy.ProtocolError) as cm:
                v.list()
            self.assertTrue(str(cm.exception))

    def test_a_bad_number_is_eproto(self):
        self.fake(HELLO, b"* snapshot\tid=twelve\tname=a\ttype=snapshot\t"
                  b"uuid=0f8fad5b-d9cb-469f-a165-70867728950e\tepoch=1\t"
                  b"valid=1\tcreated=2026-01-01T00:00:00Z\tused=0\nOK\n")
        with shadowcopy.connect(self.sock) as v:
            with self.assertRaises(shadowcopy.ProtocolError):
                v.list()

    def test_an_unknown_status_is_eproto(self):
        self.fake(HELLO, b"MAYBE\n")
        with shadowcopy.connect(self.sock) as v:
            with self.assertRaises(shadowcopy.ProtocolError):
                v.request("LIST")

    def test_an_err_line_gives_its_errno_and_message(self):
        self.fake(HELLO, b"ERR ENOENT no snapshot 'x'\n")
        with shadowcopy.connect(self.sock) as v:
            with self.assertRaises(shadowcopy.NotFoundError) as cm:
                v.find("x")
            self.assertIn("no snapshot 'x'", str(cm.exception))

    def test_a_hang_up_mid_reply_is_an_error(self):
        self.fake(HELLO, b"* snapshot\tname=a")
        with shadowcopy.connect(self.sock) as v:
            with self.assertRaises(shadowcopy.Error) as cm:
                v.list()
            self.assertTrue(str(cm.exception))

    def test_a_request_callback_exception_propagates(self):
        self.fake(HELLO, b"* a\tk=1\n* b\tk=2\nOK\n", b"* c\nOK\n")
        real = shadowcopy.volume.text

        def text(b):
            if b == b"b":
                raise LookupError("converting b")
            return real(b)
        with shadowcopy.connect(self.sock) as v:
            with mock.patch("shadowcopy.volume.text", text):
                with self.assertRaises(LookupError) as cm:
                    v.request("X")
            self.assertEqual(cm.exception.args, ("converting b",))
            # The reply was read to its end: the next request is fine.
            self.assertEqual(v.request("Y"), [("c", {})])


class NbdSocket(ServerTest):
    def test_the_nbd_socket_given_as_control_socket_says_so(self):
        with self.assertRaises(shadowcopy.Error) as cm:
            shadowcopy.connect(self.srv.nbd)
        self.assertIn("NBD socket", str(cm.exception))
