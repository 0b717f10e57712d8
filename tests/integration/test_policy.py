#!/usr/bin/env python3
"""The scoring engine against real nginx CDNs.

Slow CDN: alpha's probe object for the nordics region (a regional probe URL) is throttled with
nginx limit_rate while every other probe object stays fast. Within SLOW_DEADLINE its share in
nordics falls below 10% (published share and real 302 answers), while uk keeps its split and
every uk session keeps its CDN.

Commit: alpha's GB commit is used up (a month usage report in the config): it gets only the
exploration share while beta can carry the traffic, and the spill once beta's capacity is
reached; while its commit still had room, it was filled first.

Starving beacons: players in nordics report buffer starvation on alpha (CMCD `bs` with
`cdn="alpha"`, POSTed to /beacon from a Swedish address) while every probe stays healthy: alpha's
nordics share falls to the exploration share, uk (no beacons) keeps its split, and alpha is never
taken out of rotation (health comes from probes only); the beacon cap spreads the fall over
several windows.

Timings (test config): probes every 300 ms, probe half-life 500 ms, shares recomputed every
500 ms, at most 0.25 of a region moved per interval. A throttled probe (128 KiB at 64 KiB/s)
takes 2 s, then the fast samples decay (about 3 s) and the share moves 0.5 -> 0.02 in two
intervals: SLOW_DEADLINE = 15 s leaves room for a loaded machine."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

SLOW_DEADLINE = 15.0
INTERVAL_MS = 500
BIG = 128 * 1024
SESSIONS = 200


class ThrottlableCdn(st.Nginx):
    """A CDN edge that also serves /big.bin (fast) and /big-<region>.bin, each throttled to
    64 KiB/s while the file slow-<region>.flag exists next to it."""

    REGIONS = ("nordics", "uk")

    def _write_conf(self):
        super()._write_conf()
        data = bytes(range(256)) * (BIG // 256)
        with open(os.path.join(self.local, "big.bin"), "wb") as f:
            f.write(data)
        extra = ("    location = /big.bin {\n        root %s;\n    }\n" % self.local)
        for r in self.REGIONS:
            with open(os.path.join(self.local, "big-%s.bin" % r), "wb") as f:
                f.write(data)
            extra += (
                "    location = /big-%s.bin {\n"
                "        root %s;\n"
                "        if (-f %s/slow-%s.flag) {\n"
                "            set $limit_rate 64k;\n"
                "        }\n"
                "    }\n" % (r, self.local, self.local, r)
            )
        with open(self.conf) as f:
            text = f.read()
        anchor = "    location = /probe.bin {\n"
        assert anchor in text
        with open(self.conf, "w") as f:
            f.write(text.replace(anchor, extra + anchor, 1))

    def big_url(self, region=None):
        name = "big-%s.bin" % region if region else "big.bin"
        return "http://%s:%d/%s" % (st.LOOPBACK, self.port, name)

    def throttle(self, region, on):
        flag = os.path.join(self.local, "slow-%s.flag" % region)
        if on:
            open(flag, "w").close()
        elif os.path.exists(flag):
            os.unlink(flag)


def engine_policy(score=None):
    s = {"interval_ms": INTERVAL_MS, "max_shift": 0.25, "exploration": 0.02,
         "w_throughput": 4, "probe_tp_target_bps": 10e6, "latency_bad_ms": 2000}
    s.update(score or {})
    return {
        "default": {"cdns": {"alpha": 1, "beta": 1}},
        "score": s,
        "observe": {"probe_half_life_ms": 500},
    }


def region_row(state, region):
    for r in state["engine"]["regions"]:
        if r["name"] == region:
            return {c["id"]: c for c in r["cdns"]}
    raise AssertionError("no region %s in /state" % region)


class SlowCdnTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        origin = st.Nginx("origin", role="origin").start()
        cls.origin = origin
        cls.alpha = ThrottlableCdn("alpha", role="cdn", origin_port=origin.port).start()
        cls.beta = ThrottlableCdn("beta", role="cdn", origin_port=origin.port).start()
        cls.watch(origin, cls.alpha, cls.beta)
        cdns = []
        for n in (cls.alpha, cls.beta):
            e = st.cdn_entry(n.name, n, interval_ms=300, timeout_ms=4000, probe_url=n.big_url())
            if n is cls.alpha:
                e["probe"]["regions"] = {r: n.big_url(r) for r in ThrottlableCdn.REGIONS}
            cdns.append(e)
        policy = engine_policy()
        policy["decision_log_sample"] = 1  # every decision logged, one line each
        cfg = st.default_config(cdns, policy=policy)
        cls.d = cls.watch(st.Steerd(cfg, name="policy-slow", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.alpha.throttle("nordics", False)
        cls.d.cleanup()
        for n in (cls.alpha, cls.beta, cls.origin):
            n.cleanup()

    def batch(self, ip, tag):
        out = {}
        c = self.d.client()
        try:
            for i in range(SESSIONS):
                sid = "%s-%d" % (tag, i)
                status, h, _ = c.get("/vod/seg.m4s", {"X-Forwarded-For": ip,
                                                      "CMCD-Session": 'sid="%s"' % sid})
                self.assertEqual(status, 302)
                out[sid] = h.get("x-steerd-cdn")
        finally:
            c.close()
        return out

    def share(self, region, cdn):
        return self.d.metric("steerd_cdn_share", cdn=cdn, region=region)

    def test_slow_cdn_leaves_only_the_affected_region(self):
        st.wait_for(lambda: self.d.metric("steerd_policy_updates_total", 0) >= 4, 10,
                    msg="engine running")
        # Both fast: the static split is kept (nothing is clearly better).
        for region in ("nordics", "uk"):
            self.assertAlmostEqual(self.share(region, "alpha"), 0.5, delta=0.01)
        uk_before = self.batch(st.IP_GB, "uk")
        se_before = self.batch(st.IP_SE, "se")
        for b in (uk_before, se_before):
            n = sum(1 for c in b.values() if c == "alpha")
            self.assertTrue(0.3 * SESSIONS < n < 0.7 * SESSIONS, "static split: %d" % n)

        self.alpha.throttle("nordics", True)
        t0 = time.monotonic()
        st.wait_for(lambda: self.share("nordics", "alpha") < 0.1, SLOW_DEADLINE,
                    interval=0.1, msg="alpha's nordics share below 10%")
        took = time.monotonic() - t0
        sys.stderr.write("alpha's nordics share fell below 10%% in %.1f s\n" % took)

        se_after = self.batch(st.IP_SE, "se")
        n = sum(1 for c in se_after.values() if c == "alpha")
        self.assertLess(n, 0.1 * SESSIONS, "nordics sessions still on alpha: %d" % n)
        # Sessions only ever move off the slow CDN.
        for sid, c in se_after.items():
            if se_before[sid] == "beta":
                self.assertEqual(c, "beta", sid)

        # uk is unchanged: same published share, every session on its CDN.
        self.assertAlmostEqual(self.share("uk", "alpha"), 0.5, delta=0.01)
        self.assertEqual(self.batch(st.IP_GB, "uk"), uk_before)

        # /explain shows the terms and the rule that decided.
        # (polled: on a loaded machine a probe's measured throughput can lag a little behind)
        seen = []

        def explained_slow():
            stc, ex = self.d.admin_json("/explain?ip=%s&path=/vod/seg.m4s&sid=x" % st.IP_SE)
            self.assertEqual(stc, 200)
            eng = ex["engine"]
            self.assertTrue(eng["enabled"])
            self.assertEqual(eng["weights"], "engine")
            a = [c for c in eng["candidates"] if c["id"] == "alpha"][0]
            seen.append(a)
            return a["terms"]["throughput"] < 0.9 and not a["meets_bar"]

        st.wait_for(explained_slow, 10.0, interval=0.2,
                    msg="/explain showing alpha below the bar in nordics")
        alpha = seen[-1]
        if len(seen) > 1:
            sys.stderr.write("explain before alpha showed below the bar: %r\n" % seen[0])
        self.assertIn(alpha["rule"], ("quality", "exploration", "shift_cap"))
        for k in ("throughput", "rebuffer", "latency", "availability"):
            self.assertIn(k, alpha["terms"])
        _, state = self.d.admin_json("/state")
        self.assertLess(region_row(state, "nordics")["alpha"]["share"], 0.1)
        m = self.d.metrics()
        self.assertLess(m[st.metric_key("steerd_cdn_score", cdn="alpha", region="nordics")],
                        m[st.metric_key("steerd_cdn_score", cdn="alpha", region="uk")])
        # Every answer kind logs its decision: 302s above, and a steering poll now.
        status, _, _ = self.d.get("/steer/hls?_HLS_pathway=beta", {"X-Forwarded-For": st.IP_SE})
        self.assertEqual(status, 200)
        log = self.d.stderr_since(0)
        self.assertRegex(log, r"answer=302 session=[0-9a-f]{16} region=nordics cdn=beta "
                              r"reason=weighted weights=engine weight=\d+/\d+")
        self.assertRegex(log, r"answer=steering session=[0-9a-f]{16} region=nordics cdn=\w+ "
                              r"reason=\w+ weights=engine")
        self.assertTrue(region_row(state, "uk")["alpha"]["meets_bar"])

        # Back to full speed: exploration kept alpha measured, so it meets the bar again (it
        # gets no more than that while beta is as good: nothing is gained by moving sessions).
        self.alpha.throttle("nordics", False)
        st.wait_for(lambda: region_row(self.d.admin_json("/state")[1], "nordics")["alpha"]
                    ["meets_bar"], 30, interval=0.2, msg="alpha meets the bar again")


class StarvingBeaconsTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cdns = [st.cdn_entry("alpha", cls.net["alpha"], interval_ms=300),
                st.cdn_entry("beta", cls.net["beta"], interval_ms=300)]
        policy = engine_policy({"w_throughput": 1, "probe_tp_target_bps": 0})
        policy["observe"] = {"beacon_window_ms": 1000, "beacon_max_step": 0.2,
                             "beacon_half_life_ms": 2000, "starvation_bad": 0.1}
        cfg = st.default_config(cdns, policy=policy,
                                beacon={"rate_per_s": 100000, "burst": 100000})
        cls.d = cls.watch(st.Steerd(cfg, name="policy-beacons", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def share(self, region, cdn):
        return self.d.metric("steerd_cdn_share", cdn=cdn, region=region)

    def starve(self, n):
        """n reports of starvation on alpha from nordics viewers (documentation addresses of
        Sweden in the test database), one POST each of 10 lines."""
        c = self.d.client()
        try:
            for i in range(n):
                body = "".join('bs,cdn="alpha",sid="starving-%d-%d",bl=0\n' % (i, j)
                               for j in range(10))
                status, _, _ = c.request("POST", "/beacon",
                                         {"Content-Type": "application/cmcd",
                                          "X-Forwarded-For": st.IP_SE}, body.encode())
                self.assertEqual(status, 204)
        finally:
            c.close()

    def test_starvation_on_one_cdn_moves_only_its_region(self):
        st.wait_for(lambda: self.d.metric("steerd_policy_updates_total", 0) >= 4, 10,
                    msg="engine running")
        for region in ("nordics", "uk"):
            self.assertAlmostEqual(self.share(region, "alpha"), 0.5, delta=0.01)
        t0 = time.monotonic()
        history = []
        deadline = t0 + 30
        while time.monotonic() < deadline:
            self.starve(20)
            history.append((time.monotonic() - t0, self.share("nordics", "alpha")))
            if history[-1][1] <= 0.05:
                break
            time.sleep(0.2)
        sys.stderr.write("alpha's nordics share under starving beacons: %s\n"
                         % " ".join("%.1fs:%.2f" % h for h in history))
        self.assertLessEqual(history[-1][1], 0.05, history)
        # Capped: the first second of reports could not move it all the way.
        self.assertGreater(history[0][1], 0.05, history)
        # Never out of rotation: still up, still explored, still answered in nordics.
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="alpha"), 1.0)
        self.assertGreaterEqual(self.share("nordics", "alpha"), 0.019)
        # uk had no reports: its split is untouched.
        self.assertAlmostEqual(self.share("uk", "alpha"), 0.5, delta=0.01)
        self.assertGreater(self.d.metric("steerd_policy_beacons_total", 0), 0)
        _, ex = self.d.admin_json("/explain?ip=%s&path=/vod/seg.m4s&sid=x" % st.IP_SE)
        alpha = [c for c in ex["engine"]["candidates"] if c["id"] == "alpha"][0]
        self.assertLess(alpha["terms"]["rebuffer"], 0.9)
        _, ex = self.d.admin_json("/explain?ip=%s&path=/vod/seg.m4s&sid=x" % st.IP_GB)
        alpha = [c for c in ex["engine"]["candidates"] if c["id"] == "alpha"][0]
        self.assertEqual(alpha["terms"]["rebuffer"], 1.0)


def commit_cdns(alpha, beta, month_used_gb):
    a = st.cdn_entry("alpha", alpha)
    a["cost"] = {"commit": {"type": "gb_month", "amount": 100, "fee": 1000, "burst_price": 0.05},
                 "month_used_gb": month_used_gb}
    b = st.cdn_entry("beta", beta)
    b["cost"] = {"tiers": [{"price_per_gb": 0.02}], "capacity_gbps": 5}
    return [a, b]


class CommitTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        # Probes fetch the 1 KiB /probe.bin here: its throughput says nothing, do not score it.
        cls.policy = engine_policy({"cost_weight": 1, "max_shift": 0.5, "probe_tp_target_bps": 0})
        # Every decision stands for a 1 Gbit/s session of 10 minutes.
        cls.policy["traffic"] = {"bitrate_bps": 1e9, "session_s": 600}
        cls.cfg = st.default_config(commit_cdns(cls.net["alpha"], cls.net["beta"], 10),
                                    policy=cls.policy)
        cls.d = cls.watch(st.Steerd(cls.cfg, name="policy-commit", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def world(self):
        _, state = self.d.admin_json("/state")
        return region_row(state, "world"), {c["id"]: c for c in state["engine"]["cdns"]}

    def sessions(self, tag, n):
        c = self.d.client()
        try:
            for i in range(n):
                status, h, _ = c.get("/vod/seg.m4s", {"X-Forwarded-For": st.IP_NOWHERE,
                                                      "CMCD-Session": 'sid="%s-%d"' % (tag, i)})
                self.assertEqual(status, 302)
        finally:
            c.close()

    def test_past_commit_gets_only_spill(self):
        # Room in alpha's commit (10 of 100 GB used): the commit is filled first.
        st.wait_for(lambda: self.world()[0]["alpha"]["rule"] == "commit_fill", 10,
                    interval=0.2, msg="alpha fills its commit")
        st.wait_for(lambda: self.world()[0]["alpha"]["share"] > 0.9, 10, interval=0.2,
                    msg="alpha carries the region")

        # A usage report says the commit is used up (150 of 100 GB): alpha now costs its burst
        # price, beta is cheaper and (without traffic) has room for everything.
        self.cfg["cdns"] = commit_cdns(self.net["alpha"], self.net["beta"], 150)
        self.d.write_config(self.cfg)
        stc, _ = self.d.admin_json("/reload", method="POST")
        self.assertEqual(stc, 200)
        st.wait_for(lambda: self.world()[0]["alpha"]["rule"] == "exploration", 10,
                    interval=0.2, msg="alpha down to the exploration share")
        row, cdns = self.world()
        self.assertEqual(cdns["alpha"]["cost_basis"], "burst")
        self.assertGreater(cdns["alpha"]["commit_used_ratio"], 1.0)
        self.assertAlmostEqual(row["alpha"]["share"], 0.02, delta=0.001)
        self.assertGreaterEqual(self.d.metric("steerd_cdn_commit_used_ratio", cdn="alpha"), 1.5)

        # Traffic beyond beta's capacity (5 Gbit/s filled to 90%): 20 sessions of 1 Gbit/s.
        # alpha takes exactly what beta cannot hold, as spill.
        self.sessions("spill", 20)
        st.wait_for(lambda: self.world()[0]["alpha"]["rule"] == "spill", 10, interval=0.2,
                    msg="alpha takes the spill")
        # the shares move at most max_shift per interval: wait until beta is full
        st.wait_for(lambda: self.world()[1]["beta"]["rate_bps"] < 4.5e9 * 1.01, 10,
                    interval=0.2, msg="beta filled to its capacity")
        row, cdns = self.world()
        self.assertEqual(row["alpha"]["rule"], "spill")
        self.assertGreater(row["alpha"]["share"], 0.5)
        self.assertIn(row["beta"]["rule"], ("cost", "shift_cap"))
        self.assertLess(row["beta"]["share"], 0.5)
        # beta is filled to spill_at (0.9) x 5 Gbit/s, not beyond
        self.assertLess(cdns["beta"]["rate_bps"], 4.5e9 * 1.01)
        self.assertGreater(cdns["beta"]["rate_bps"], 4.5e9 * 0.9)


if __name__ == "__main__":
    st.main()
