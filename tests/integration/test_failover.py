#!/usr/bin/env python3
"""Health probes against real nginx CDNs: a stopped CDN leaves rotation within
fall*interval + timeout + 1 s, comes back after rise successes, region failover lists are
honoured, and with every CDN down steerd fails open (302s, never 5xx)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

INTERVAL = 0.5
TIMEOUT = 0.4
FALL = 2
RISE = 2
DOWN_DEADLINE = FALL * INTERVAL + TIMEOUT + 1.0  # 2.4 s
UP_DEADLINE = RISE * INTERVAL + TIMEOUT + 2.0  # 3.4 s


class FailoverTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns(prefixes={"beta": "/edge"})
        cls.watch(*cls.net.all())
        cls.alpha = cls.net["alpha"]
        cls.beta = cls.net["beta"]
        cls.bases = {"alpha": cls.alpha.base_url, "beta": cls.beta.base_url}
        cdns = [st.cdn_entry(n, cls.net[n], interval_ms=int(INTERVAL * 1000),
                             timeout_ms=int(TIMEOUT * 1000), rise=RISE, fall=FALL)
                for n in ("alpha", "beta")]
        cls.d = cls.watch(st.Steerd(st.default_config(cdns), name="failover", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def setUp(self):
        # Every test starts with both CDNs running and up.
        for n in (self.alpha, self.beta):
            if not n.running():
                n.start()
        for cdn in ("alpha", "beta"):
            st.wait_for(lambda: self.d.metric("steerd_cdn_up", cdn=cdn) == 1.0, UP_DEADLINE + 2,
                        msg="%s up" % cdn)

    def batch(self, ip=st.IP_NOWHERE, n=24, tag="b"):
        """n sessions' answers as {sid: cdn}; asserts every answer is a well-formed 302."""
        out = {}
        c = self.d.client()
        try:
            for i in range(n):
                sid = "%s-%d" % (tag, i)
                status, h, _ = c.get("/vod/f/seg.m4s", {"X-Forwarded-For": ip,
                                                        "CMCD-Session": 'sid="%s"' % sid})
                self.assertEqual(status, 302, "never a 5xx: got %d" % status)
                cdn = h.get("x-steerd-cdn")
                self.assertIn(cdn, self.bases)
                self.assertEqual(h.get("location"), self.bases[cdn] + "/vod/f/seg.m4s")
                out[sid] = cdn
        finally:
            c.close()
        return out

    def wait_batch(self, pred, deadline, **kw):
        """Polls batches every 100 ms until pred(batch) holds; returns (seconds, batch)."""
        t0 = time.monotonic()
        while True:
            b = self.batch(**kw)
            if pred(b):
                return time.monotonic() - t0, b
            if time.monotonic() - t0 > deadline:
                self.fail("condition not met within %.1f s; last batch %r" % (deadline, b))
            time.sleep(0.1)

    def test_failover_cdn_down_leaves_rotation_and_comes_back(self):
        before = self.batch(tag="s")
        on_alpha = {s for s, c in before.items() if c == "alpha"}
        self.assertTrue(on_alpha and len(on_alpha) < len(before), before)

        t0 = time.monotonic()
        self.alpha.stop()
        secs, _ = self.wait_batch(lambda b: "alpha" not in b.values(), DOWN_DEADLINE + 1.0,
                                  tag="s")
        elapsed = time.monotonic() - t0
        self.assertLessEqual(elapsed, DOWN_DEADLINE, "alpha still got 302s %.2f s after stop" % elapsed)
        # It stays out of rotation, and sessions on beta did not move.
        for _ in range(5):
            b = self.batch(tag="s")
            self.assertNotIn("alpha", b.values())
            for s, c in before.items():
                if c == "beta":
                    self.assertEqual(b[s], "beta", "session %s left a healthy CDN" % s)
            time.sleep(0.1)
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="alpha"), 0.0)
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="beta"), 1.0)
        self.assertEqual(self.d.metric("steerd_all_cdns_down"), 0.0)
        self.assertGreater(self.d.metric("steerd_probe_total", 0.0, cdn="alpha", result="fail"), 0)

        t1 = time.monotonic()
        self.alpha.start()
        self.wait_batch(lambda b: "alpha" in b.values(), UP_DEADLINE + 1.0, tag="s")
        self.assertLessEqual(time.monotonic() - t1, UP_DEADLINE)
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="alpha"), 1.0)
        # Sticky again: the sessions that were on alpha return to alpha.
        after = self.batch(tag="s")
        self.assertEqual(after, before)

    def test_failover_region_list_honoured(self):
        # nordics: alpha only, failover beta. uk: beta only, failover alpha.
        self.assertEqual(set(self.batch(ip=st.IP_SE).values()), {"alpha"})
        self.alpha.stop()
        self.wait_batch(lambda b: set(b.values()) == {"beta"}, DOWN_DEADLINE, ip=st.IP_SE)
        self.assertEqual(set(self.batch(ip=st.IP_GB).values()), {"beta"})
        status, body = self.d.admin_json("/explain?ip=%s&path=/vod/f/seg.m4s" % st.IP_SE)
        self.assertEqual(status, 200)
        self.assertEqual(body["cdn"], "beta")
        self.assertEqual(body["reason"], "failover")

        self.alpha.start()
        self.wait_batch(lambda b: set(b.values()) == {"alpha"}, UP_DEADLINE, ip=st.IP_SE)

        self.beta.stop()
        self.wait_batch(lambda b: set(b.values()) == {"alpha"}, DOWN_DEADLINE, ip=st.IP_GB)

    def test_failover_all_down_fails_open(self):
        self.alpha.stop()
        self.beta.stop()
        st.wait_for(lambda: self.d.metric("steerd_all_cdns_down") == 1.0, DOWN_DEADLINE + 1.0,
                    msg="steerd_all_cdns_down 1")
        # Still a 302 to a configured CDN for every region: never a 5xx.
        for ip in (st.IP_NOWHERE, st.IP_SE, st.IP_GB, st.IP_LAB):
            self.assertTrue(self.batch(ip=ip, n=8))
        status, body = self.d.admin_json("/explain?ip=%s&path=/vod/f/seg.m4s" % st.IP_NOWHERE)
        self.assertEqual(status, 200)
        self.assertEqual(body["reason"], "fail_open")
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="alpha"), 0.0)
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="beta"), 0.0)

        self.alpha.start()
        self.beta.start()
        st.wait_for(lambda: self.d.metric("steerd_all_cdns_down") == 0.0, UP_DEADLINE + 1.0,
                    msg="steerd_all_cdns_down 0")
        self.wait_batch(lambda b: set(b.values()) == {"alpha", "beta"}, UP_DEADLINE)


if __name__ == "__main__":
    st.main()
