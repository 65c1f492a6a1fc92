"""Revert (dry run, paused, resume, rate, status), resize and scrub,
against a real server."""
import time

import shadowcopy
from helpers import ServerTest

K = 1024


class Revert(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)
        self.before = self.srv.read(0, 64 * K)
        self.v.create("good")
        self.srv.write(0, b"bad" * 1000)

    def wait_done(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = self.v.revert_status()
            if r.state == "none":
                return r
            time.sleep(0.05)
        self.fail("the revert did not end: %r" % (r,))

    def test_no_revert_status_is_none(self):
        r = self.v.revert_status()
        self.assertIsInstance(r, shadowcopy.Revert)
        self.assertEqual(r.state, "none")
        self.assertIsNone(r.plan)

    def test_dry_run_plans_and_changes_nothing(self):
        r = self.v.revert("good", dry_run=True)
        self.assertIsInstance(r.plan, shadowcopy.RevertPlan)
        self.assertTrue(r.plan.fits)
        self.assertGreater(r.plan.bytes_to_write, 0)
        self.assertEqual(self.v.revert_status().state, "none")
        self.assertEqual(self.srv.read(0, 3), b"bad")

    def test_revert_reads_the_snapshot_at_once_and_saves_the_state(self):
        # force: the server may not have seen our writer hang up yet.
        r = self.v.revert("good", save="was-bad", force=True)
        self.assertEqual((r.target, r.saved), ("good", "was-bad"))
        self.assertEqual(self.srv.read(0, 64 * K), self.before)
        self.assertIn("was-bad", self.v)
        self.wait_done()
        self.assertEqual(self.srv.read(0, 64 * K), self.before)

    def test_paused_revert_resumes_with_a_rate(self):
        r = self.v.revert("good", nosave=True, paused=True, rate=1 << 20,
                          force=True)
        self.assertEqual((r.state, r.saved), ("paused", ""))
        self.assertEqual(self.v.info().revert.state, "paused")
        r = self.v.revert_rate(2 << 20)
        self.assertEqual(r.rate, 2 << 20)
        r = self.v.revert_rate(shadowcopy.RATE_UNBOUNDED)
        self.assertEqual(r.rate, 0)         # 0: unbounded
        r = self.v.revert_resume()
        self.assertIn(r.state, ("running", "none"))
        self.wait_done()
        self.assertEqual(self.srv.read(0, 64 * K), self.before)

    def test_rate_none_is_the_servers_default_and_unbounded_is_none(self):
        r = self.v.revert("good", nosave=True, paused=True, force=True)
        self.assertEqual(r.rate, 64 << 20)  # SC_REVERT_RATE_DEFAULT
        with shadowcopy.connect(self.srv.ctl) as other:
            self.assertEqual(other.revert_status().rate, 64 << 20)

    def test_rate_unbounded(self):
        r = self.v.revert("good", nosave=True, paused=True, force=True,
                          rate=shadowcopy.RATE_UNBOUNDED)
        self.assertEqual(r.rate, 0)

    def test_revert_to_missing_raises_enoent(self):
        with self.assertRaises(shadowcopy.NotFoundError):
            self.v.revert("nosuch", nosave=True, force=True)

    def test_resume_without_revert_is_an_error(self):
        with self.assertRaises(shadowcopy.Error):
            self.v.revert_resume()


class Space(ServerTest):
    def setUp(self):
        super().setUp()
        self.v = shadowcopy.connect(self.srv.ctl)
        self.addCleanup(self.v.close)

    def test_resize_sets_the_limit_and_unbounded_clears_it(self):
        self.assertEqual(self.v.resize(64 << 20), 0)
        self.assertEqual(self.v.info().diff_max, 64 << 20)
        self.assertEqual(self.v.resize(None), 0)
        self.assertEqual(self.v.info().diff_max, 0)

    def test_resize_below_use_needs_force_and_drops(self):
        self.v.create("old")
        self.srv.write(0, b"x" * (2 << 20))
        self.v.create("new")
        with self.assertRaises(shadowcopy.NoSpaceError):
            self.v.resize(1 << 20)
        self.assertEqual(len(self.v.list()), 2)
        self.assertGreaterEqual(self.v.resize(1 << 20, force=True), 1)
        self.assertNotIn("old", self.v)
        dropped = self.v.dropped()
        self.assertEqual(dropped[-1].name, "old")
        self.assertIsInstance(dropped[-1], shadowcopy.Dropped)
        self.assertTrue(dropped[-1].reason)

    def test_scrub_runs_and_reports(self):
        self.v.create("a")
        self.srv.write(0, b"x" * (256 * K))
        st = self.v.scrub_status()
        self.assertIsInstance(st, shadowcopy.Scrub)
        self.assertEqual(st.state, "never")
        st = self.v.scrub()
        self.assertIn(st.state, ("running", "finished"))
        deadline = time.monotonic() + 20
        while st.state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            st = self.v.scrub_status()
        self.assertEqual(st.state, "finished")
        self.assertGreater(st.copies_total, 0)
        self.assertEqual(st.copies_checked, st.copies_total)
        self.assertEqual((st.damaged, st.read_errors), (0, 0))
        self.assertTrue(st.started and st.finished)

    def test_second_scrub_while_one_runs_raises_ealready(self):
        self.v.create("a")
        self.srv.write(0, b"x" * (4 << 20))
        self.v.scrub(rate=64 * K)           # slow: still running
        with self.assertRaises(shadowcopy.Error) as cm:
            self.v.scrub()
        self.assertEqual(cm.exception.errno, 114)   # EALREADY
