#!/usr/bin/env python3
"""Flapping probe target (RELIABILITY T7, short form): a fake CDN (tests/support/faultserver.py)
whose probe answers alternate 200 / 503 on every probe, probed every P = 0.5 s with rise R = 2
and fall K = 2.

Pass, over 12 s of alternation: health transitions of that CDN
(steerd_cdn_transitions_total{cdn}) <= duration / ((R + K) * P) + 1, and steerd logs at most one
line about that CDN per transition. Then the target flaps in runs of two (200, 200, 503, 503),
which rise/fall cannot absorb: transitions do happen, never more than 2 per R + K probes (+1),
and the log still has exactly one line per transition, so the bound above is a real check."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import faultserver as fs  # noqa: E402
import steerdtest as st  # noqa: E402


def stop_cleanly(d):
    """A graceful stop must exit 0 (under ASan: LeakSanitizer finds nothing at exit)."""
    rc = d.stop(timeout=10.0)
    logs = d.stderr()
    d.cleanup()
    if rc != 0:
        raise AssertionError("%s exited with %s:\n%s" % (d.name, rc, logs))

P = 0.5  # probe interval, s
R = 2  # rise
K = 2  # fall
DURATION = 12.0
FLAPPY = "beta"


class FlappingTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = {n: fs.FaultServer(n) for n in ("alpha", FLAPPY)}
        cls.watch(*cls.fake.values())
        cdns = [{"id": n, "base_url": s.base_url,
                 "probe": {"url": s.probe_url, "interval_ms": int(P * 1000), "timeout_ms": 400,
                           "rise": R, "fall": K}}
                for n, s in cls.fake.items()]
        policy = {"default": {"cdns": {"alpha": 1, FLAPPY: 1}}}
        cls.d = cls.watch(st.Steerd(st.default_config(cdns, policy=policy), name="flapping",
                                    wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.d)
        for s in cls.fake.values():
            s.stop()

    def transitions(self):
        return self.d.metric("steerd_cdn_transitions_total", 0.0, cdn=FLAPPY)

    def log_lines(self, since):
        text = self.d.stderr_since(since)
        return [ln for ln in text.splitlines() if re.search(r"\bcdn %s\b" % FLAPPY, ln)]

    def flap(self, mode):
        """Runs mode for DURATION s; returns (transitions, log lines about the CDN, probes)."""
        srv = self.fake[FLAPPY]
        srv.set_mode("ok")
        st.wait_for(lambda: self.d.metric("steerd_cdn_up", cdn=FLAPPY) == 1.0, 10.0,
                    msg="%s up" % FLAPPY)
        time.sleep(2 * P)  # let a probe in flight finish before counting
        t0 = self.transitions()
        log0 = self.d.stderr_size()
        srv.reset()
        srv.set_mode(mode)
        time.sleep(DURATION)
        srv.set_mode("ok")
        stats = srv.stats()
        n = self.transitions() - t0
        lines = self.log_lines(log0)
        probes = stats["flap_ok"] + stats["flap_fail"]
        sys.stderr.write("\n%s: %d probes (%d ok, %d failed), %d transitions, %d log lines\n"
                         % (mode, probes, stats["flap_ok"], stats["flap_fail"], n, len(lines)))
        # the fake really flapped at the probe rate
        self.assertGreaterEqual(probes, DURATION / P * 0.6, stats)
        self.assertGreater(stats["flap_fail"], 0)
        return n, lines, probes

    def test_flapping_1_every_probe(self):
        n, lines, probes = self.flap("flap")
        bound = DURATION / ((R + K) * P) + 1
        self.assertLessEqual(n, bound)
        self.assertLessEqual(len(lines), n, "\n".join(lines))
        self.assertTrue(self.d.alive())

    def test_flapping_2_runs_of_two(self):
        n, lines, probes = self.flap("flap2")
        # R consecutive oks then K consecutive failures: a change every run, but never more
        # than 2 per R + K probes
        self.assertGreaterEqual(n, 2)
        self.assertLessEqual(n, 2 * probes / (R + K) + 1)
        self.assertLessEqual(len(lines), n, "\n".join(lines))
        self.assertGreaterEqual(len(lines), n - 1, "\n".join(lines))  # each one logged
        self.assertTrue(self.d.alive())


if __name__ == "__main__":
    st.main()
