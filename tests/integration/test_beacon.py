#!/usr/bin/env python3
"""Beacon ingestion against a real steerd and real nginx CDNs: POST /beacon bodies of every
form (application/cmcd lines, text/plain, a JSON object, a JSON array) answer 204 and move the
counters; bad CMCD is counted and answered 400 without hurting the daemon; the CMCD query
argument and CMCD-* headers of 302 and manifest requests are counted too; request bodies are
bounded (411 without Content-Length or with chunked framing, 413 past http.max_body_bytes, 408
past http.body_timeout_ms, 400 on negative or conflicting Content-Length); the per-source limit
answers 429 with Retry-After; and a flood of beacons blaming one CDN does not take it out of
rotation (health comes from probes only)."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

SID = '"6e2fb550-c457-11e9-bb97-0800200c9a66"'
CMCD_LINE = b'bl=21300,br=3200,mtp=25400,ot=v,sf=d,sid=' + SID.encode() + b',su'
# Reaches the control thread's drain (every 100 ms) well within this.
SETTLE_S = 5.0


def beacons(d, result):
    return d.metric("steerd_beacons_total", 0.0, result=result)


def samples(d, cdn):
    return d.metric("steerd_beacon_samples_total", 0.0, cdn=cdn)


class BeaconTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cfg = st.default_config(
            [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])],
            http={"max_body_bytes": 4096, "body_timeout_ms": 700},
            origin={"base_url": cls.net.origin.base_url},
            beacon={"rate_per_s": 1000, "burst": 5000},
        )
        cls.d = cls.watch(st.Steerd(cfg, name="beacon", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def post(self, body, ctype="application/cmcd", path="/beacon", headers=None):
        h = {"Content-Type": ctype} if ctype else {}
        h.update(headers or {})
        return self.d.request("POST", path, h, body)

    def wait_counter(self, fn, want, msg):
        st.wait_for(lambda: fn() >= want, SETTLE_S, msg=msg)

    # -- bodies of each form --

    def test_cmcd_lines_body(self):
        before = beacons(self.d, "accepted")
        drained = samples(self.d, "alpha") + samples(self.d, "beta")
        body = CMCD_LINE + b"\n" + b'bs,cdn="beta",sid=' + SID.encode() + b"\r\n\n"
        status, h, data = self.post(body)
        self.assertEqual(status, 204, data)
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        self.assertNotIn("content-length", h)
        self.wait_counter(lambda: beacons(self.d, "accepted"), before + 2, "2 accepted")
        self.wait_counter(lambda: samples(self.d, "alpha") + samples(self.d, "beta"),
                          drained + 2, "2 samples drained")

    def test_text_plain_and_json_bodies(self):
        before = beacons(self.d, "accepted")
        for ctype, body, n in (
            ("text/plain;charset=UTF-8", CMCD_LINE + b"\n", 1),
            ("application/json", b'{"mtp": 9000, "bl": 1200, "sid": "abc"}', 1),
            ("application/json", b'[{"mtp": 100}, {"bs": true, "cdn": "alpha"}, {"bl": 3}]', 3),
            (None, b"mtp=1500\n", 1),
        ):
            status, h, data = self.post(body, ctype=ctype)
            self.assertEqual(status, 204, (ctype, body, data))
            before += n
        self.wait_counter(lambda: beacons(self.d, "accepted"), before, "6 more accepted")

    def test_cdn_key_attribution(self):
        """A cdn key naming a configured CDN attributes the sample to it."""
        before = samples(self.d, "beta")
        for _ in range(5):
            status, _, data = self.post(b'mtp=400,bs,cdn="beta"\n')
            self.assertEqual(status, 204, data)
        self.wait_counter(lambda: samples(self.d, "beta"), before + 5, "5 beta samples")

    def test_empty_body_is_204(self):
        status, _, data = self.post(b"")
        self.assertEqual(status, 204, data)

    # -- bad CMCD --

    def test_bad_cmcd_counted_and_400(self):
        bad_before = beacons(self.d, "bad")
        acc_before = beacons(self.d, "accepted")
        for body in (b"bl=abc\n", b'sid="' + b"x" * 65 + b'"\n', b"mtp=-5\n", b"{not json",
                     b"\xff\xfe\x00garbage\n", b"=\n"):
            status, _, data = self.post(body)
            self.assertEqual(status, 400, (body, data))
        self.wait_counter(lambda: beacons(self.d, "bad"), bad_before + 6, "6 bad")
        # A body with one good and one bad report: 204, one of each.
        status, _, _ = self.post(b"mtp=100\nbl=abc\n")
        self.assertEqual(status, 204)
        self.wait_counter(lambda: beacons(self.d, "bad"), bad_before + 7, "7 bad")
        self.assertEqual(beacons(self.d, "accepted"), acc_before + 1)
        self.assertTrue(self.d.alive())
        self.d.redirect("/vod/after-bad/seg_1.m4s")

    def test_unsupported_content_type_415(self):
        status, _, data = self.post(b"mtp=1\n", ctype="application/x-www-form-urlencoded")
        self.assertEqual(status, 415, data)

    def test_other_methods_and_preflight(self):
        status, h, _ = self.d.get("/beacon")
        self.assertEqual(status, 405)
        self.assertEqual(h.get("allow"), "POST, OPTIONS")
        status, h, _ = self.d.request("OPTIONS", "/beacon", {
            "Origin": "https://player.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertIn("POST", h.get("access-control-allow-methods", ""))
        self.assertIn("Content-Type", h.get("access-control-allow-headers", ""))
        # POST anywhere else is still 405, and a body there is refused.
        status, _, _ = self.d.request("POST", "/vod/x/seg_1.m4s", {}, b"")
        self.assertEqual(status, 405)
        status, _, _ = self.d.request("POST", "/vod/x/seg_1.m4s", {}, b"abc")
        self.assertIn(status, (400, 413))

    # -- CMCD on other requests --

    def test_cmcd_query_on_redirect_counted(self):
        before = beacons(self.d, "accepted")
        bad_before = beacons(self.d, "bad")
        q = "bl%3D21300%2Cmtp%3D25400%2Csid%3D%22q-sess%22"
        cdn, loc = self.d.redirect("/vod/q/seg_1.m4s?CMCD=" + q)
        self.assertIn(cdn, ("alpha", "beta"))
        cdn, loc = self.d.redirect("/vod/q/seg_2.m4s?CMCD=bl%3Dnope")  # bad: still a 302
        self.wait_counter(lambda: beacons(self.d, "accepted"), before + 1, "query accepted")
        self.wait_counter(lambda: beacons(self.d, "bad"), bad_before + 1, "query bad")
        # No CMCD: nothing counted.
        now = beacons(self.d, "accepted") + beacons(self.d, "bad")
        for i in range(5):
            self.d.redirect("/vod/q/plain_%d.m4s" % i)
        time.sleep(0.3)
        self.assertEqual(beacons(self.d, "accepted") + beacons(self.d, "bad"), now)

    def test_cmcd_headers_on_redirect_counted(self):
        before = beacons(self.d, "accepted")
        self.d.redirect("/vod/h/seg_1.m4s", {
            "CMCD-Request": "bl=21300,mtp=25400", "CMCD-Object": "br=3200,d=4004,ot=v",
            "CMCD-Session": 'sid="hdr-sess",sf=d', "CMCD-Status": "bs"})
        self.wait_counter(lambda: beacons(self.d, "accepted"), before + 1, "header accepted")

    def test_cmcd_on_manifest_counted(self):
        self.net.origin.put("vod/bm/index.m3u8",
                            b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg_1.m4s\n"
                            b"#EXT-X-ENDLIST\n")
        before = beacons(self.d, "accepted")
        status, _, body = self.d.get("/vod/bm/index.m3u8?CMCD=ot%3Dm%2Csid%3D%22m-sess%22")
        self.assertEqual(status, 200, body)
        self.wait_counter(lambda: beacons(self.d, "accepted"), before + 1, "manifest accepted")

    # -- bounded bodies --

    def raw(self, payload, **kw):
        return st.parse_responses(self.d.raw(payload, **kw))[0]

    def test_body_framing_errors(self):
        head = b"POST /beacon HTTP/1.1\r\nHost: s\r\nContent-Type: application/cmcd\r\n"
        cases = [
            ("no Content-Length", head + b"\r\n", 411),
            ("chunked", head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nmtp=1\r\n0\r\n\r\n", 411),
            ("too large", head + b"Content-Length: 4097\r\n\r\n" + b"a" * 4097, 413),
            ("a gigabyte", head + b"Content-Length: 1000000000\r\n\r\n", 413),
            # past 2^53 the head itself is malformed
            ("10^18", head + b"Content-Length: 1000000000000000000\r\n\r\n", 400),
            ("negative", head + b"Content-Length: -1\r\n\r\n", 400),
            ("conflicting", head + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nmtp", 400),
        ]
        for name, payload, code in cases:
            with self.subTest(name):
                resps = self.raw(payload)
                self.assertEqual(resps[0].status, code, name)
        # At the cap exactly: accepted (valid lines padded with blank lines).
        body = b"mtp=1\n" + b"\n" * (4096 - 6)
        resps = self.raw(head + b"Content-Length: 4096\r\nConnection: close\r\n\r\n" + body)
        self.assertEqual(resps[0].status, 204)

    def test_short_body_times_out_408(self):
        head = b"POST /beacon HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\nmtp=1\n"
        t0 = time.monotonic()
        resps = self.raw(head, timeout=5)
        self.assertEqual(resps[0].status, 408)
        self.assertLess(time.monotonic() - t0, 4.5)
        st.wait_for(lambda: self.d.metric("steerd_requests_rejected_total", 0,
                                          reason="body_timeout") >= 1, 3, msg="body_timeout")

    def test_slow_body_drip_times_out(self):
        """A body sent a byte at a time does not extend the deadline."""
        s = socket.create_connection((st.LOOPBACK, self.d.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"POST /beacon HTTP/1.1\r\nHost: s\r\nContent-Length: 50\r\n\r\n")
        t0 = time.monotonic()
        data = b""
        s.settimeout(0.1)
        while time.monotonic() - t0 < 4:
            try:
                s.sendall(b"m")
            except OSError:
                break
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            except socket.timeout:
                pass
            if b"\r\n\r\n" in data:
                break
        self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:80])

    def test_expect_continue_and_pipelining(self):
        body = b"mtp=700\n"
        payload = (b"POST /beacon HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
        s = socket.create_connection((st.LOOPBACK, self.d.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(payload)
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
        # The body, then a pipelined GET: both answered in order.
        s.sendall(body + b"GET /vod/p/seg_1.m4s HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        resps = st.parse_responses(data)[0]
        self.assertEqual([r.status for r in resps], [204, 302])

    def test_many_bodies_keepalive(self):
        c = self.d.client()
        self.addCleanup(c.close)
        for i in range(50):
            status, _, _ = c.request("POST", "/beacon", {"Content-Type": "application/cmcd"},
                                     b"mtp=%d\n" % (1000 + i))
            self.assertEqual(status, 204)


class BeaconLimitTest(st.SteerdTestCase):
    """Per-source limit, and a flood blaming one CDN that must not take it out of rotation."""

    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cfg = st.default_config(
            [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])],
            workers=1, beacon={"rate_per_s": 5, "burst": 10},
            # One region served by alpha only (beta as failover), so every 302 names alpha.
            policy={"default": {"cdns": {"alpha": 1}, "failover": ["beta"]}},
        )
        cls.d = cls.watch(st.Steerd(cfg, name="beacon-limit", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def test_rate_limit_429_retry_after(self):
        limited_before = beacons(self.d, "rate_limited")
        codes = []
        retry = None
        for _ in range(30):
            status, h, _ = self.d.request("POST", "/beacon", {
                "Content-Type": "application/cmcd", "X-Forwarded-For": "192.0.2.77"}, b"mtp=1\n")
            codes.append(status)
            if status == 429:
                retry = h.get("retry-after")
        self.assertIn(204, codes)
        self.assertIn(429, codes)
        self.assertTrue(retry is not None and retry.isdigit() and int(retry) >= 1, retry)
        # Another source is not limited.
        status, _, _ = self.d.request("POST", "/beacon", {
            "Content-Type": "application/cmcd", "X-Forwarded-For": "192.0.2.78"}, b"mtp=1\n")
        self.assertEqual(status, 204)
        self.assertGreaterEqual(beacons(self.d, "rate_limited"),
                                limited_before + codes.count(429))

    def test_starvation_flood_keeps_cdn_in_rotation(self):
        """Thousands of beacons blaming alpha (starved, errors, no throughput) from many
        sources: alpha stays up and keeps getting the 302s."""
        before = samples(self.d, "alpha")
        sent = 0
        c = self.d.client()
        self.addCleanup(c.close)
        body = b"\n".join(b'bs,bsd=5000,mtp=100,sta=f,cdn="alpha",sid="s%d"' % i
                          for i in range(200)) + b"\n"
        for i in range(40):
            status, _, _ = c.request("POST", "/beacon", {
                "Content-Type": "application/cmcd",
                "X-Forwarded-For": "198.51.100.%d" % (i % 200 + 1)}, body)
            self.assertEqual(status, 204)
            sent += 200
        st.wait_for(lambda: samples(self.d, "alpha") >= before + sent, SETTLE_S,
                    msg="flood drained")
        self.assertEqual(self.d.metric("steerd_cdn_up", cdn="alpha"), 1.0)
        for i in range(20):
            cdn, loc = self.d.redirect("/vod/flood/seg_%d.m4s" % i)
            self.assertEqual(cdn, "alpha")
            self.assertTrue(loc.startswith(self.net["alpha"].base_url))
        self.assertTrue(self.d.alive())


if __name__ == "__main__":
    st.main()
