#!/usr/bin/env python3
"""Probe fault injection (RELIABILITY T6, T8): one steerd, three fake CDN edges
(tests/support/faultserver.py) probed every P = 1 s with fall K = 2, rise R = 3, a 1 s probe
timeout and a low-speed limit of 1 KiB/s for 2 s.

For each fault mode in turn on one CDN (refuse, hang after accept, 503, slow first byte, slow
drip, 100 MB body, 302 to another loopback port, garbage): the first 302 that no longer sends
that CDN's sessions there comes within K*P + timeout + 1 s = 4 s of the fault; after the fault
ends, its sessions are back on it within R*P + 2 s = 5 s; every answer meanwhile is a 302 under a
configured base; each cycle logs exactly one "down" and one "up" line for it. The 302 target
never gets a connection, and the 100 MB body is cut far below its size.

Then every CDN answers 503 (T8): players still get 302s (fail open, 0 5xx),
steerd_all_cdns_down goes 1 and back to 0 after recovery, with one log line per transition."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import faultserver as fs  # noqa: E402
import steerdtest as st  # noqa: E402

P = 1.0  # probe interval, s
K = 2  # fall
R = 3  # rise
TIMEOUT = 1.0  # probe timeout, s
DOWN_DEADLINE = K * P + TIMEOUT + 1.0  # 4 s
UP_DEADLINE = R * P + 2.0  # 5 s
POLL = 0.1
SEG = "/vod/faults/seg_0001.m4s"
NAMES = ("alpha", "beta", "gamma")
FAULTY = "beta"

# mode -> substring expected in /state's last_error of the faulty CDN (None: any failure)
MODES = [
    ("refuse", "connect"),
    ("hang", "timeout"),
    ("503", "http 503"),
    ("slow", "timeout"),
    ("drip", None),  # the 1 s timeout or the low-speed limit, whichever curl reports
    ("big", "body too large"),
    ("redirect", "http 302"),
    ("garbage", None),
]


def probe_cfg(server):
    return {"url": server.probe_url, "interval_ms": int(P * 1000), "timeout_ms": int(TIMEOUT * 1000),
            "rise": R, "fall": K, "low_speed_bytes_per_s": 1024, "low_speed_time_ms": 2000}


class FaultsTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = {n: fs.FaultServer(n) for n in NAMES}
        cls.watch(*cls.fake.values())
        cls.bases = {n: s.base_url for n, s in cls.fake.items()}
        cdns = [{"id": n, "base_url": s.base_url, "probe": probe_cfg(s)}
                for n, s in cls.fake.items()]
        policy = {"default": {"cdns": {n: 1 for n in NAMES}}}
        cls.d = cls.watch(st.Steerd(st.default_config(cdns, policy=policy), name="faults",
                                    wait_ready=True))
        cls.client = cls.d.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.d.cleanup()
        for s in cls.fake.values():
            s.stop()

    # -- helpers --

    def answer(self, sid):
        """One player request for session sid; asserts a well-formed 302, returns the CDN."""
        status, h, body = self.client.get(SEG, {"CMCD-Session": 'sid="%s"' % sid})
        self.assertEqual(status, 302, "player got %d %r: never a 5xx" % (status, body[:100]))
        cdn = h.get("x-steerd-cdn")
        self.assertIn(cdn, self.bases)
        self.assertEqual(h.get("location"), self.bases[cdn] + SEG)
        return cdn

    def sessions_on(self, cdn, want=4):
        """Session ids whose answer is cdn (with every CDN up)."""
        out = []
        for i in range(200):
            sid = "fault-%03d" % i
            if self.answer(sid) == cdn:
                out.append(sid)
                if len(out) == want:
                    return out
        self.fail("no session on %s among 200" % cdn)

    def wait_answers(self, sids, pred, deadline, what):
        """Polls the sessions every POLL s until pred(set of CDNs answered) holds; returns the
        seconds it took. Fails after deadline + 2 s of polling."""
        t0 = time.monotonic()
        while True:
            got = {self.answer(s) for s in sids}
            if pred(got):
                return time.monotonic() - t0
            if time.monotonic() - t0 > deadline + 2.0:
                self.fail("%s: not within %.1f s (answers %r)" % (what, deadline + 2.0, got))
            time.sleep(POLL)

    def cdn_state(self, cdn):
        status, body = self.d.admin_json("/state")
        self.assertEqual(status, 200)
        for c in body["cdns"]:
            if c["id"] == cdn:
                return c
        self.fail("no %s in /state" % cdn)

    def no_5xx(self):
        for k, v in self.d.metrics().items():
            if k.startswith("steerd_requests_total{") and 'code="5' in k:
                self.assertEqual(v, 0.0, k)

    def wait_all_up(self):
        for n in NAMES:
            st.wait_for(lambda: self.d.metric("steerd_cdn_up", cdn=n) == 1.0, UP_DEADLINE + 3,
                        msg="%s up" % n)

    # -- tests --

    def test_faults_1_each_mode_fails_over_and_recovers(self):
        self.wait_all_up()
        sids = self.sessions_on(FAULTY)
        srv = self.fake[FAULTY]
        timings = []
        for mode, err in MODES:
            with self.subTest(mode=mode):
                srv.reset()
                log0 = self.d.stderr_size()
                t0 = time.monotonic()
                srv.set_mode(mode)
                self.wait_answers(sids, lambda got: FAULTY not in got, DOWN_DEADLINE,
                                         "%s: sessions leave %s" % (mode, FAULTY))
                down = time.monotonic() - t0
                state = self.cdn_state(FAULTY)
                self.assertFalse(state["up"], state)
                if err is not None:
                    self.assertIn(err, state["last_error"] or "", state)
                stats = srv.stats()
                t1 = time.monotonic()
                srv.set_mode("ok")
                self.wait_answers(sids, lambda got: got == {FAULTY}, UP_DEADLINE,
                                  "%s: sessions back on %s" % (mode, FAULTY))
                up = time.monotonic() - t1
                timings.append("%s %.1f/%.1f s (%s)" % (mode, down, up, state["last_error"]))
                self.assertLessEqual(down, DOWN_DEADLINE, "%s: down after %.2f s" % (mode, down))
                self.assertLessEqual(up, UP_DEADLINE, "%s: back after %.2f s" % (mode, up))
                self.assertEqual(stats["target_connections"], 0,
                                 "%s: the probe followed a redirect" % mode)
                if mode == "big":
                    self.assertGreater(stats["big_max_sent"], 0)
                    self.assertLess(stats["big_max_sent"], 32 * 1024 * 1024,
                                    "the 100 MB body was not cut at the cap")
                # One line per transition of the faulty CDN, none for the others.
                log = self.d.stderr_since(log0)
                self.assertEqual(log.count("cdn %s is down" % FAULTY), 1, log)
                self.assertEqual(log.count("cdn %s is up" % FAULTY), 1, log)
                for other in NAMES:
                    if other != FAULTY:
                        self.assertNotIn("cdn %s is" % other, log)
        sys.stderr.write("\nfaults (down/up): %s\n" % "; ".join(timings))
        self.assertEqual(self.fake[FAULTY].stats()["target_connections"], 0)
        self.no_5xx()

    def test_faults_2_all_cdns_failing_fail_open(self):
        self.wait_all_up()
        sids = self.sessions_on(FAULTY, want=2) + self.sessions_on("alpha", want=2)
        self.assertEqual(self.d.metric("steerd_all_cdns_down"), 0.0)
        log0 = self.d.stderr_size()
        t0 = time.monotonic()
        for s in self.fake.values():
            s.set_mode("503")
        # Players keep getting 302s to configured bases all along (answer() asserts it).
        while self.d.metric("steerd_all_cdns_down") != 1.0:
            for s in sids:
                self.answer(s)
            self.assertLess(time.monotonic() - t0, DOWN_DEADLINE + 2.0,
                            "steerd_all_cdns_down did not become 1")
            time.sleep(POLL)
        self.assertLessEqual(time.monotonic() - t0, DOWN_DEADLINE + 0.5)
        for _ in range(10):
            for s in sids:
                self.answer(s)
            time.sleep(POLL)
        status, body = self.d.admin_json("/explain?ip=%s&path=%s&sid=%s"
                                         % (st.IP_NOWHERE, SEG, sids[0]))
        self.assertEqual(status, 200)
        self.assertEqual(body["reason"], "fail_open", body)

        t1 = time.monotonic()
        for s in self.fake.values():
            s.set_mode("ok")
        st.wait_for(lambda: self.d.metric("steerd_all_cdns_down") == 0.0, UP_DEADLINE + 1.0,
                    msg="steerd_all_cdns_down 0")
        # Normal order restored: every session back on its own CDN.
        self.wait_answers(sids[:2], lambda got: got == {FAULTY}, UP_DEADLINE, "beta sessions")
        self.wait_answers(sids[2:], lambda got: got == {"alpha"}, UP_DEADLINE, "alpha sessions")
        self.assertLessEqual(time.monotonic() - t1, UP_DEADLINE + 0.5)
        self.no_5xx()

        log = self.d.stderr_since(log0)
        self.assertEqual(log.count("every CDN is down"), 1, log)
        self.assertEqual(log.count("at least one CDN is up again"), 1, log)
        for n in NAMES:
            self.assertEqual(log.count("cdn %s is down" % n), 1, log)
            self.assertEqual(log.count("cdn %s is up" % n), 1, log)

    def test_faults_3_clean_stop(self):
        # After every fault (hung and dripping transfers included) a graceful stop is clean; under
        # the ASan build LeakSanitizer checks for leaks at this exit.
        self.assertTrue(self.d.alive())
        self.assertEqual(self.d.stop(timeout=10.0), 0, self.d.stderr())


if __name__ == "__main__":
    st.main()
