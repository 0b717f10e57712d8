#!/usr/bin/env python3
"""Overload shedding against a real steerd and real nginx CDNs, one worker, low thresholds.

Held idle connections push the worker's connection share over the overload thresholds. The
shedding order holds: at level 1 POST /beacon is acknowledged 204 unread while keep-alive and
steering TTLs stay normal; at level 2, under a flood of beacons and steering polls from other
processes, answers carry Connection: close, steering polls get ttl_max_s (200, never 410 or 429),
beacons get 204/429 and never a 5xx, and segment 302s keep being answered correctly with a p99
latency within 3 x the p99 measured before the flood. The shedding counters and the level gauge
move, the level falls back to 0 once the pressure is gone, and RSS stays bounded. A loop that
runs late (the process stopped and resumed in a tight cycle) takes the worker to level 3: new
connections wait in the backlog until the level falls, then they are served."""

import http.client
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

MAX_CONNS = 40
CONN_PERCENT = 50  # level 2 at 20 connections, level 1 at 15
RECOVER_MS = 500
TTL_S, TTL_MAX_S = 10, 120
FLOOD_S = 6.0
FLOOD_PROCS = 1  # each runs a beacon and a steering client process (2 cores are shared)
SAMPLES = 200
# Latency on a shared 2-core machine: p99 under the flood within 3 x the baseline p99, the
# baseline counted as at least this (a loopback 302 takes well under a millisecond: what is
# measured is mostly the Python client and the scheduler).
BASELINE_FLOOR_S = 0.010
RSS_GROWTH_MAX_KIB = 64 * 1024
RSS_GROWTH_MAX_ASAN_KIB = 384 * 1024  # ASan keeps freed memory in quarantine (256 MiB)
BEACON = b"bl=21300,br=3200,mtp=25400,ot=v,sf=d,sid=\"ov\",su\n"
SEGMENT = "/vod/overload/seg_%d.m4s"


def flood(port, kind, seconds, out):
    """Sends kind ("beacon" or "steer") requests over keep-alive (reconnecting when the server
    closes) for seconds; puts {status: count, "close": n, "ttl": {ttl: n}} into out."""
    res = {"status": {}, "close": 0, "ttl": {}, "errors": 0}
    conn = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(st.LOOPBACK, port, timeout=10)
            if kind == "beacon":
                conn.request("POST", "/beacon", body=BEACON,
                             headers={"Content-Type": "application/cmcd"})
            else:
                conn.request("GET", '/steer/hls?_HLS_pathway="alpha"&_HLS_throughput=5000000')
            r = conn.getresponse()
            body = r.read()
            res["status"][r.status] = res["status"].get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                res["close"] += 1
            if kind == "steer" and r.status == 200:
                ttl = json.loads(body)["TTL"]
                res["ttl"][ttl] = res["ttl"].get(ttl, 0) + 1
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            res["errors"] += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
    out.put((kind, res))


def merge(results):
    total = {}
    for kind, res in results:
        t = total.setdefault(kind, {"status": {}, "close": 0, "ttl": {}, "errors": 0})
        for k, v in res["status"].items():
            t["status"][k] = t["status"].get(k, 0) + v
        for k, v in res["ttl"].items():
            t["ttl"][k] = t["ttl"].get(k, 0) + v
        t["close"] += res["close"]
        t["errors"] += res["errors"]
    return total


def sanitized(pid):
    """True when steerd runs with AddressSanitizer (its freed memory sits in quarantine)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


class OverloadTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cfg = st.default_config(
            [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])],
            workers=1,
            http={"max_connections": MAX_CONNS, "overload_conn_percent": CONN_PERCENT,
                  "overload_recover_ms": RECOVER_MS, "overload_lag_ms": 2000,
                  "header_timeout_ms": 60000},
            beacon={"rate_per_s": 1000000, "burst": 1000000},
            steering={"ttl_s": TTL_S, "ttl_min_s": 5, "ttl_max_s": TTL_MAX_S},
        )
        cls.d = cls.watch(st.Steerd(cfg, name="overload", wait_ready=True))
        cls.bases = (cls.net["alpha"].base_url, cls.net["beta"].base_url)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def level(self):
        return self.d.metric("steerd_overload_level")

    def shed(self, what):
        return self.d.metric("steerd_shed_total", 0.0, what=what)

    def hold(self, n):
        """n idle connections, closed at the end of the test (or by release)."""
        socks = [socket.create_connection((st.LOOPBACK, self.d.port), timeout=5) for _ in range(n)]
        for s in socks:
            self.addCleanup(s.close)
        return socks

    def release(self, socks):
        for s in socks:
            s.close()

    def wait_level(self, want, timeout=5.0):
        st.wait_for(lambda: self.level() == want, timeout, msg="overload level %d" % want)

    def segment(self, i):
        """One segment request on a fresh connection; asserts a correct 302, returns seconds."""
        t0 = time.perf_counter()
        status, h, body = self.d.get(SEGMENT % i)
        dt = time.perf_counter() - t0
        self.assertEqual(status, 302, body[:200])
        self.assertTrue(h.get("location", "").startswith(self.bases), h.get("location"))
        return dt

    def steer_ttl(self):
        status, h, body = self.d.get("/steer/hls")
        self.assertEqual(status, 200, body[:200])
        return json.loads(body)["TTL"], h

    def test_shedding_order_under_flood(self):
        d = self.d
        pid = d.proc.pid
        self.wait_level(0)

        # -- level 0: beacons are read, keep-alive stays, steering gets its normal TTL --
        accepted = d.metric("steerd_beacons_total", 0.0, result="accepted")
        status, h, _ = d.request("POST", "/beacon", {"Content-Type": "application/cmcd"}, BEACON)
        self.assertEqual(status, 204)
        st.wait_for(lambda: d.metric("steerd_beacons_total", 0.0, result="accepted") > accepted,
                    5.0, msg="beacon ingested at level 0")
        self.assertEqual(self.steer_ttl()[0], TTL_S)
        baseline = [self.segment(i) for i in range(SAMPLES)]
        base_p99 = p99(baseline)
        rss0 = st.proc_status_kib(pid, "VmRSS")

        # -- level 1 (15..19 connections): beacons shed, nothing else --
        held = self.hold(16)
        self.wait_level(1)
        shed0 = self.shed("beacon")
        ka0 = self.shed("keepalive")
        accepted = d.metric("steerd_beacons_total", 0.0, result="accepted")
        c = d.client()
        self.addCleanup(c.close)
        status, h, _ = c.request("POST", "/beacon", {"Content-Type": "application/cmcd"}, BEACON)
        self.assertEqual(status, 204)
        self.assertNotEqual(h.get("connection", "").lower(), "close")
        status, h, _ = c.request("POST", "/beacon?CMCD=bl%3D100", {"Content-Type": "text/plain"},
                                 b"not cmcd at all")
        self.assertEqual(status, 204, "a shed beacon is not parsed")
        self.assertEqual(self.shed("beacon"), shed0 + 2)
        self.assertEqual(self.shed("keepalive"), ka0)
        ttl, h = self.steer_ttl()
        self.assertEqual(ttl, TTL_S)
        c.close()
        time.sleep(0.3)  # the control thread drains rings every 100 ms
        self.assertEqual(d.metric("steerd_beacons_total", 0.0, result="accepted"), accepted)

        # -- level 2 (20+ connections) under a flood from other processes --
        held += self.hold(10)
        self.wait_level(2)
        ttl, h = self.steer_ttl()
        self.assertEqual(ttl, TTL_MAX_S)
        self.assertEqual(h.get("connection", "").lower(), "close")
        before = {w: self.shed(w) for w in ("beacon", "keepalive", "steering_ttl")}

        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        procs = []
        for _ in range(FLOOD_PROCS):
            for kind in ("beacon", "steer"):
                p = ctx.Process(target=flood, args=(d.port, kind, FLOOD_S, out))
                p.start()
                procs.append(p)
        self.addCleanup(lambda: [p.kill() for p in procs if p.is_alive()])
        under = []
        levels = []
        t_end = time.monotonic() + FLOOD_S - 0.5
        i = 0
        while time.monotonic() < t_end:
            under.append(self.segment(SAMPLES + i))
            i += 1
            if i % 50 == 0:
                levels.append(self.level())
        results = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        total = merge(results)
        rss1 = st.proc_status_kib(pid, "VmRSS")

        beacon, steer = total["beacon"], total["steer"]
        self.assertGreater(sum(beacon["status"].values()), 0, total)
        self.assertGreater(sum(steer["status"].values()), 0, total)
        self.assertTrue(set(beacon["status"]) <= {204, 429}, total)
        self.assertEqual(set(steer["status"]), {200}, total)  # never 410, 429 or a 5xx
        self.assertEqual(set(steer["ttl"]), {TTL_MAX_S}, total)
        self.assertEqual(beacon["close"], sum(beacon["status"].values()), total)
        self.assertEqual(beacon["errors"] + steer["errors"], 0, total)
        self.assertTrue(all(lv >= 2 for lv in levels), levels)
        self.assertGreaterEqual(self.shed("beacon") - before["beacon"], beacon["status"][204])
        self.assertGreater(self.shed("keepalive"), before["keepalive"])
        self.assertGreaterEqual(self.shed("steering_ttl") - before["steering_ttl"],
                                steer["status"][200])

        limit = 3 * max(base_p99, BASELINE_FLOOR_S)
        self.assertGreater(len(under), 20)
        print("overload: baseline p99 %.2f ms, flood p99 %.2f ms over %d segments; "
              "%d beacons, %d steering polls; RSS %d -> %d KiB"
              % (base_p99 * 1e3, p99(under) * 1e3, len(under), sum(beacon["status"].values()),
                 sum(steer["status"].values()), rss0, rss1), file=sys.stderr)
        self.assertLessEqual(p99(under), limit,
                             "segment p99 %.2f ms over %.2f ms" % (p99(under) * 1e3, limit * 1e3))
        growth = RSS_GROWTH_MAX_ASAN_KIB if sanitized(pid) else RSS_GROWTH_MAX_KIB
        self.assertLess(rss1 - rss0, growth, "RSS %d -> %d KiB" % (rss0, rss1))

        # -- pressure gone: the level steps down to 0 and beacons are read again --
        self.release(held)
        self.wait_level(0, timeout=2 * RECOVER_MS / 1000.0 + 5.0)
        accepted = d.metric("steerd_beacons_total", 0.0, result="accepted")
        shed1 = self.shed("beacon")
        status, h, _ = d.request("POST", "/beacon", {"Content-Type": "application/cmcd"}, BEACON)
        self.assertEqual(status, 204)
        st.wait_for(lambda: d.metric("steerd_beacons_total", 0.0, result="accepted") > accepted,
                    5.0, msg="beacon ingested after recovery")
        self.assertEqual(self.shed("beacon"), shed1)
        self.assertEqual(self.steer_ttl()[0], TTL_S)
        self.assertTrue(d.alive())

    def test_loop_lag_pauses_accepting(self):
        """A worker whose loop runs late (here: the process is stopped and resumed in a tight
        cycle, so every 100 ms lag sample is hundreds of ms late) goes to level 3: new
        connections wait in the backlog until the level falls, then they are served."""
        cfg = st.default_config(
            [st.cdn_entry("alpha", self.net["alpha"]), st.cdn_entry("beta", self.net["beta"])],
            workers=1, http={"overload_lag_ms": 50, "overload_recover_ms": 1500})
        d = self.watch_local(st.Steerd(cfg, name="overload-lag", wait_ready=True))
        self.addCleanup(d.cleanup)
        pid = d.proc.pid
        st.wait_for(lambda: d.metric("steerd_overload_level") == 0, 5.0, msg="level 0")
        accept0 = d.metric("steerd_shed_total", 0.0, what="accept")
        try:
            for _ in range(6):
                os.kill(pid, signal.SIGSTOP)
                time.sleep(0.4)
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.03)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(d.metric("steerd_overload_level"), 3)
        self.assertGreater(d.metric("steerd_shed_total", 0.0, what="accept"), accept0)
        s = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"GET /vod/lag/seg_1.m4s HTTP/1.1\r\nHost: s\r\n\r\n")
        s.settimeout(0.3)
        with self.assertRaises(socket.timeout, msg="a connection was accepted at level 3"):
            s.recv(4096)
        s.settimeout(10)
        data = s.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 302 "), data[:100])
        st.wait_for(lambda: d.metric("steerd_overload_level") == 0, 10.0, msg="level back to 0")
        self.assertIn("overload level", d.stderr())
        self.assertTrue(d.alive())

    def test_metrics_exposed(self):
        m = self.d.metrics()
        self.assertIn("steerd_overload_level", m)
        self.assertIn("steerd_event_loop_lag_ms", m)
        for what in ("beacon", "keepalive", "accept", "steering_ttl"):
            self.assertIn(st.metric_key("steerd_shed_total", what=what), m)


if __name__ == "__main__":
    unittest.main()
