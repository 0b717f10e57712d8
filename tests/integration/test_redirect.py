#!/usr/bin/env python3
"""Player-facing redirects: Location, headers, methods, region steering, X-Forwarded-For trust,
stickiness, weights, following the Location to a real nginx CDN, keep-alive, pipelining and
path canonicalisation."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

SEG = "/vod/asset1/seg_001.m4s"
SEG_BYTES = b"\x00\x00\x00\x18styp" + bytes(range(256)) * 16


def xff(ip, **more):
    h = {"X-Forwarded-For": ip}
    h.update(more)
    return h


class RedirectTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns(prefixes={"beta": "/edge"})
        cls.watch(*cls.net.all())
        cls.net.origin.put(SEG, SEG_BYTES)
        cls.alpha = cls.net["alpha"]
        cls.beta = cls.net["beta"]
        cls.bases = {"alpha": cls.alpha.base_url, "beta": cls.beta.base_url}
        policy = {
            "default": {"cdns": {"alpha": 1, "beta": 1}},
            "regions": {
                "nordics": {"cdns": {"alpha": 1}, "failover": ["beta"]},
                "uk": {"cdns": {"beta": 1}, "failover": ["alpha"]},
                "lab": {"cdns": {"beta": 1}},
                "telstra": {"cdns": {"alpha": 1}},
                "weighted": {"cdns": {"alpha": 3, "beta": 1}},
            },
        }
        cfg = st.default_config([st.cdn_entry("alpha", cls.alpha), st.cdn_entry("beta", cls.beta)],
                                policy=policy)
        cfg["regions"].append({"name": "weighted", "cidrs": ["10.77.0.0/16"]})
        cls.d = cls.watch(st.Steerd(cfg, name="redirect", wait_ready=True))

        # The same CDNs, no trusted proxy; default -> alpha only, uk -> beta only.
        cfg2 = st.default_config(
            [st.cdn_entry("alpha", cls.alpha), st.cdn_entry("beta", cls.beta)],
            policy={"default": {"cdns": {"alpha": 1}}, "regions": {"uk": {"cdns": {"beta": 1}}}},
            trusted_proxies=[])
        cls.untrusted = cls.watch(st.Steerd(cfg2, name="untrusted", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.untrusted.cleanup()
        cls.net.cleanup()

    def assertRedirect(self, status, headers, path_and_query):
        """A 302 whose Location is exactly <base of X-Steerd-CDN> + path_and_query."""
        self.assertEqual(status, 302, headers)
        cdn = headers.get("x-steerd-cdn")
        self.assertIn(cdn, self.bases, "X-Steerd-CDN %r" % cdn)
        self.assertEqual(headers.get("location"), self.bases[cdn] + path_and_query)
        return cdn

    # -- the answer itself --

    def test_redirect_location_and_headers(self):
        status, h, body = self.d.get(SEG + "?a=1&b=x%20y")
        self.assertRedirect(status, h, SEG + "?a=1&b=x%20y")
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        self.assertIn("x-steerd-cdn", h.get("access-control-expose-headers", "").lower())
        self.assertEqual(h.get("cache-control"), "no-store")
        self.assertEqual(h.get("content-length"), "0")
        self.assertIn("date", h)
        self.assertEqual(body, b"")

    def test_redirect_without_query(self):
        status, h, _ = self.d.get(SEG)
        self.assertRedirect(status, h, SEG)
        self.assertNotIn("?", h["location"])

    def test_redirect_head_same_as_get(self):
        hdr = {"CMCD-Session": 'sid="head-vs-get"'}
        s1, h1, _ = self.d.get(SEG, hdr)
        s2, h2, b2 = self.d.request("HEAD", SEG, hdr)
        self.assertRedirect(s2, h2, SEG)
        self.assertEqual(b2, b"")
        self.assertEqual(h1["location"], h2["location"])
        self.assertEqual(h1["x-steerd-cdn"], h2["x-steerd-cdn"])

    def test_redirect_options_preflight(self):
        status, h, body = self.d.request("OPTIONS", SEG, {
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range, cmcd-session",
        })
        self.assertEqual(status, 204)
        self.assertEqual(body, b"")
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        self.assertEqual(h.get("access-control-allow-methods"), "GET, HEAD, OPTIONS")
        allowed = [x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",")]
        self.assertIn("range", allowed)
        self.assertIn("cmcd-session", allowed)
        self.assertEqual(h.get("access-control-max-age"), "86400")
        self.assertNotIn("location", h)

    def test_redirect_other_methods_405(self):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                status, h, body = self.d.request(method, SEG, {"Content-Length": "0"}, b"")
                self.assertEqual(status, 405)
                self.assertEqual(h.get("allow"), "GET, HEAD, OPTIONS")
                self.assertEqual(h.get("access-control-allow-origin"), "*")
                self.assertTrue(h.get("content-type", "").startswith("text/plain"), h)
                self.assertNotIn("location", h)

    # -- region steering --

    def cdns_for(self, ip, n=20, d=None):
        d = d or self.d
        c = d.client()
        seen = set()
        try:
            for i in range(n):
                status, h, _ = c.get("/vod/r%d/seg.m4s" % i,
                                     xff(ip, **{"CMCD-Session": 'sid="region-%s-%d"' % (ip, i)}))
                self.assertRedirect(status, h, "/vod/r%d/seg.m4s" % i)
                seen.add(h["x-steerd-cdn"])
        finally:
            c.close()
        return seen

    def test_region_country_se_goes_to_alpha(self):
        self.assertEqual(self.cdns_for(st.IP_SE), {"alpha"})

    def test_region_country_gb_goes_to_beta(self):
        self.assertEqual(self.cdns_for(st.IP_GB), {"beta"})

    def test_region_asn_1221_goes_to_alpha(self):
        self.assertEqual(self.cdns_for(st.IP_TELSTRA), {"alpha"})

    def test_region_cidr_lab_goes_to_beta(self):
        self.assertEqual(self.cdns_for(st.IP_LAB), {"beta"})

    def test_region_default_uses_both(self):
        self.assertEqual(self.cdns_for(st.IP_NOWHERE, n=40), {"alpha", "beta"})

    def test_region_decisions_metric_by_region(self):
        before = self.d.metric("steerd_decisions_total", 0.0, cdn="beta", region="lab")
        self.cdns_for(st.IP_LAB, n=5)
        after = self.d.metric("steerd_decisions_total", 0.0, cdn="beta", region="lab")
        self.assertEqual(after - before, 5)

    def test_xff_rightmost_untrusted_entry_counts(self):
        # 127.0.0.1 is trusted, so 81.2.69.142 (GB) is the client; the spoofed left entry is not.
        self.assertEqual(self.cdns_for("%s, %s, 127.0.0.1" % (st.IP_SE, st.IP_GB)), {"beta"})
        self.assertEqual(self.cdns_for("%s, %s" % (st.IP_GB, st.IP_SE)), {"alpha"})

    def test_xff_ignored_from_untrusted_peer(self):
        # Trusted control: the same header moves the client to uk -> beta.
        # Untrusted: the client stays 127.0.0.1 -> default -> alpha only.
        self.assertEqual(self.cdns_for(st.IP_GB, n=10, d=self.untrusted), {"alpha"})
        st_, h, _ = self.untrusted.get(SEG, {"X-Forwarded-For": st.IP_GB})
        self.assertEqual(h.get("x-steerd-cdn"), "alpha")
        self.assertEqual(self.untrusted.metric("steerd_decisions_total", 0.0, cdn="beta",
                                               region="uk"), 0.0)

    # -- stickiness --

    def test_sticky_by_cmcd_sid_query_and_header(self):
        chosen = {}
        c = self.d.client()
        try:
            for i in range(30):
                sid = "sess-%03d" % i
                q1 = "/vod/x/seg_1.m4s?CMCD=sid%%3D%%22%s%%22" % sid
                q2 = "/live/y/seg_9.m4s?br=3200&CMCD=bl%%3D21300%%2Csid%%3D%%22%s%%22&x=1" % sid
                _, h1, _ = c.get(q1, xff("198.51.100.1"))
                _, h2, _ = c.get(q2, xff("198.51.100.2"))
                _, h3, _ = c.get("/other/z.m4s", xff("198.51.100.3", **{"CMCD-Session": 'sid="%s"' % sid}))
                _, h4, _ = c.get("/o/z.m4s", xff("198.51.100.4", **{"CMCD-Session": 'cid="c1",sid="%s"' % sid}))
                self.assertEqual(h1.get("location"), self.bases[h1["x-steerd-cdn"]] + q1)
                self.assertEqual(h2.get("location"), self.bases[h2["x-steerd-cdn"]] + q2)
                got = {h["x-steerd-cdn"] for h in (h1, h2, h3, h4)}
                self.assertEqual(len(got), 1, "session %s moved between CDNs: %r" % (sid, got))
                chosen[sid] = h1["x-steerd-cdn"]
        finally:
            c.close()
        self.assertEqual(set(chosen.values()), {"alpha", "beta"}, "all sessions on one CDN")

    def test_sticky_by_cmcd_sid_query_with_raw_quotes(self):
        # The spec's second query form: CMCD=sid="abc" (0x22 is inside 0x21..0x7E). The quotes
        # reach the CDN percent-encoded: RFC 3986 does not allow them raw in a URI.
        c = self.d.client()
        try:
            for i in range(10):
                sid = "raw-%03d" % i
                q = '/live/y/seg_9.m4s?CMCD=sid="%s"' % sid
                s1, h1, b1 = c.get(q, xff("198.51.100.5"))
                self.assertEqual(s1, 302, b1)
                want = q.replace('"', "%22")
                self.assertEqual(h1.get("location"), self.bases[h1["x-steerd-cdn"]] + want)
                _, h2, _ = c.get("/other/z.m4s", xff("198.51.100.6", **{"CMCD-Session": 'sid="%s"' % sid}))
                self.assertEqual(h1["x-steerd-cdn"], h2["x-steerd-cdn"])
        finally:
            c.close()

    def test_sticky_without_sid_by_client_and_first_segment(self):
        seen = set()
        for i in range(20):
            ip = "198.51.100.%d" % (10 + i)
            a = self.d.redirect("/vod/a/seg_1.m4s", xff(ip))[0]
            b = self.d.redirect("/vod/b/c/seg_2.m4s?x=1", xff(ip))[0]
            self.assertEqual(a, b, "client %s moved between CDNs within /vod" % ip)
            seen.add(a)
        self.assertEqual(seen, {"alpha", "beta"})

    # -- weights --

    def test_weights_3_to_1_over_2000_sessions(self):
        counts = {"alpha": 0, "beta": 0}
        c = self.d.client()
        try:
            for i in range(2000):
                status, h, _ = c.get("/vod/w/seg.m4s", {"X-Forwarded-For": "10.77.%d.%d" % (i // 250, i % 250),
                                                        "CMCD-Session": 'sid="w-%d"' % i})
                self.assertEqual(status, 302)
                counts[h["x-steerd-cdn"]] += 1
        finally:
            c.close()
        share = counts["alpha"] / 2000.0
        # Expected 0.75; one standard deviation is ~0.0097.
        self.assertTrue(0.70 <= share <= 0.80, "alpha share %.3f (%r)" % (share, counts))

    # -- following the Location reaches the CDN and the origin file --

    def test_follow_location_reaches_cdn_and_origin_file(self):
        for ip, cdn in ((st.IP_SE, "alpha"), (st.IP_GB, "beta")):
            with self.subTest(cdn=cdn):
                got, loc = self.d.redirect(SEG, xff(ip))
                self.assertEqual(got, cdn)
                self.assertTrue(loc.startswith("http://127.0.0.1:"), loc)
                hostport, _, path = loc[len("http://"):].partition("/")
                port = int(hostport.split(":")[1])
                status, h, body = st.http_request(port, "GET", "/" + path)
                self.assertEqual(status, 200)
                self.assertEqual(h.get("x-served-by"), cdn)
                self.assertEqual(body, SEG_BYTES)

    # -- connection handling --

    def test_keepalive_and_pipelining_on_one_socket(self):
        paths = ["/vod/p/seg_%d.m4s?i=%d" % (i, i) for i in range(5)]
        payload = b"".join(
            ("GET %s HTTP/1.1\r\nHost: steerd\r\nX-Forwarded-For: %s\r\n%s\r\n"
             % (p, st.IP_SE, "Connection: close\r\n" if i == len(paths) - 1 else "")).encode()
            for i, p in enumerate(paths))
        data = self.d.raw(payload, timeout=5.0)
        rs, rest = st.parse_responses(data)
        self.assertEqual(rest, b"")
        self.assertEqual(len(rs), len(paths), data)
        for p, r in zip(paths, rs):
            self.assertEqual(r.status, 302)
            self.assertEqual(r.headers.get("location"), self.bases["alpha"] + p)

    def test_keepalive_sequential_requests(self):
        c = self.d.client()
        try:
            for i in range(10):
                status, h, _ = c.get("/vod/k/seg_%d.m4s" % i)
                self.assertRedirect(status, h, "/vod/k/seg_%d.m4s" % i)
                self.assertNotEqual(h.get("connection", "").lower(), "close")
        finally:
            c.close()

    def test_http10_without_keepalive_is_closed(self):
        data = self.d.raw(b"GET /vod/h/seg.m4s HTTP/1.0\r\n\r\n", timeout=5.0)
        rs, rest = st.parse_responses(data)
        self.assertEqual(len(rs), 1, data)
        self.assertEqual(rs[0].status, 302)

    # -- canonicalisation --

    def test_canonical_paths(self):
        cases = [
            ("/a//b/./c.m4s", "/a/b/c.m4s"),
            ("/%7Efoo/x.m4s", "/~foo/x.m4s"),
            ("/vod/%41sset/seg.m4s", "/vod/Asset/seg.m4s"),
            ("/vod/a%20b/seg.m4s", "/vod/a%20b/seg.m4s"),
            ("/vod///x/./././y.m4s?q=%2e%2e&r=/../", "/vod/x/y.m4s?q=%2e%2e&r=/../"),
            ("/./vod/seg.m4s", "/vod/seg.m4s"),
        ]
        for target, expected in cases:
            with self.subTest(target=target):
                data = self.d.raw(("GET %s HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
                                   % target).encode())
                rs, _ = st.parse_responses(data)
                self.assertEqual(len(rs), 1, data)
                self.assertEqual(rs[0].status, 302, data)
                cdn = rs[0].headers["x-steerd-cdn"]
                self.assertEqual(rs[0].headers["location"], self.bases[cdn] + expected)

    def test_rejected_paths(self):
        for target in ("/vod/../x.m4s", "/vod/%2e%2e/x.m4s", "/vod/%252e%252e/x.m4s", "/a\\b.m4s",
                       "*", "http://evil.example/x.m4s", "/vod/x.m4s?a=%zz"):
            with self.subTest(target=target):
                data = self.d.raw(("GET %s HTTP/1.1\r\nHost: s\r\n\r\n" % target).encode())
                rs, _ = st.parse_responses(data)
                self.assertEqual(len(rs), 1, data)
                self.assertEqual(rs[0].status, 400, data)
                self.assertNotIn("location", rs[0].headers)
                self.assertEqual(rs[0].headers.get("access-control-allow-origin"), "*")


if __name__ == "__main__":
    st.main()
