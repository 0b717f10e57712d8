#!/usr/bin/env python3
"""Manifests answered by steerd itself: HLS playlists and DASH MPDs fetched from a real nginx
origin and rewritten for real nginx CDNs. Covers the fixture playlists/MPDs, a generated VOD
walked URI by URI (segments from the right CDN, nested playlists back through steerd and
sticky, redundant copies pinned), manifest_mode "redirect", origin failures (stopped, hanging,
oversized, missing), one origin fetch for 500 concurrent requests, and conditional
revalidation after expiry."""

import asyncio
import http.client
import os
import re
import sys
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

CT_HLS = "application/vnd.apple.mpegurl"
CT_DASH = "application/dash+xml"
SEGMENT_URL_ATTRS = ("media", "initialization", "index", "bitstreamSwitching", "sourceURL")
SESSION_RE = re.compile(r"[?&]steerd_s=([0-9a-f]{16})(?:&|$)")

GEN_MASTER = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"\n'
    "v1/index.m3u8\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=1600000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"\n'
    "v2/index.m3u8\n"
)
GEN_RENDITIONS = ("v1", "v2", "audio")
GEN_SEGMENTS = ("seg_000.m4s", "seg_001.m4s", "seg_002.m4s")


def gen_media():
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4", "#EXT-X-PLAYLIST-TYPE:VOD",
             '#EXT-X-MAP:URI="init.mp4"']
    for s in GEN_SEGMENTS:
        lines += ["#EXTINF:4.0,", s]
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


GEN_MPD = b"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT12S"
     minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true">
      <SegmentTemplate initialization="v1/init.mp4" media="v1/seg_$Number%03d$.m4s"
                       startNumber="0" duration="4" timescale="1"/>
      <Representation id="v1" bandwidth="800000" codecs="avc1.4d401f" width="640" height="360"/>
    </AdaptationSet>
  </Period>
</MPD>
"""


def segment_bytes(path):
    return ("segment %s\n" % path).encode() * 8


def hls_uris(text):
    """Every URI of a playlist: URI lines and URI="..." attribute values."""
    out = []
    for ln in text.splitlines():
        s = ln.strip()
        if not s:
            continue
        if s.startswith("#"):
            out += re.findall(r'(?:^|[:,])URI="([^"]*)"', s)
        else:
            out.append(s)
    return out


def split_url(u):
    p = urllib.parse.urlsplit(u)
    return p.hostname, p.port, p.path + ("?" + p.query if p.query else "")


def fetch_url(url, headers=None):
    """GET an absolute http URL on loopback; (status, headers, body)."""
    host, port, target = split_url(url)
    assert host == st.LOOPBACK, url
    return st.http_request(port, "GET", target, headers)


class ManifestTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns(prefixes={"beta": "/edge"})
        cls.watch(*cls.net.all())
        cls.origin = cls.net.origin
        cls.alpha = cls.net["alpha"]
        cls.beta = cls.net["beta"]
        cls.bases = {"alpha": cls.alpha.base_url, "beta": cls.beta.base_url}
        origin_base = cls.origin.base_url

        # Fixture manifests; their "http://origin.example" references point at the real origin.
        cls.hls_fixtures, cls.dash_fixtures = [], []
        for sub, ext, lst in (("hls", ".m3u8", cls.hls_fixtures),
                              ("dash", ".mpd", cls.dash_fixtures)):
            d = os.path.join(st.FIXTURES, sub)
            for name in sorted(os.listdir(d)):
                if not name.endswith(ext):
                    continue
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read().replace(b"http://origin.example", origin_base.encode())
                cls.origin.put("/fixtures/%s/%s" % (sub, name), data)
                lst.append("/fixtures/%s/%s" % (sub, name))

        # The generated VOD: master + 3 media playlists, init + segments for each.
        cls.origin.put("/vod/gen/master.m3u8", GEN_MASTER.encode())
        for r in GEN_RENDITIONS:
            cls.origin.put("/vod/gen/%s/index.m3u8" % r, gen_media())
            for s in ("init.mp4",) + GEN_SEGMENTS:
                p = "/vod/gen/%s/%s" % (r, s)
                cls.origin.put(p, segment_bytes(p))
        cls.origin.put("/vod/gen/manifest.mpd", GEN_MPD)
        cls.origin.put("/vod/burst/master.m3u8", GEN_MASTER.encode())
        cls.origin.put("/vod/head/master.m3u8", GEN_MASTER.encode())
        cls.origin.put("/vod/asset1/seg_001.m4s", segment_bytes("/vod/asset1/seg_001.m4s"))
        with open(os.path.join(cls.origin.docroot, "big.m3u8"), "wb") as f:
            f.write(b"#EXTM3U\n")
            chunk = b"#EXTINF:4.0,\nseg.ts\n" * 4096
            for _ in range((50 * 1024 * 1024) // len(chunk) + 1):
                f.write(chunk)

        cls.cdns = [st.cdn_entry("alpha", cls.alpha), st.cdn_entry("beta", cls.beta)]
        cfg = st.default_config(cls.cdns, origin={"base_url": origin_base})
        cls.d = cls.watch(st.Steerd(cfg, name="manifest", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop(timeout=10.0)
        report = cls.d.stderr()
        cls.d.cleanup()
        cls.net.cleanup()
        if rc != 0 or "Sanitizer" in report:
            raise AssertionError("steerd did not stop cleanly (exit %r):\n%s" % (rc, report))

    # -- helpers --

    def stop_clean(self, d):
        """SIGTERM: steerd exits 0 (under ASan: without a leak or error report)."""
        rc = d.stop(timeout=10.0)
        self.assertEqual(rc, 0, d.stderr())
        self.assertNotIn("Sanitizer", d.stderr())

    def cdn_of_url(self, url):
        for cdn, base in self.bases.items():
            if url.startswith(base + "/"):
                return cdn
        return None

    def assertManifest(self, status, h, body, ctype):
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(h.get("content-type"), ctype)
        self.assertEqual(int(h.get("content-length")), len(body))
        self.assertRegex(h.get("cache-control", ""), r"^private, max-age=[1-9][0-9]*$")
        self.assertIn(h.get("x-steerd-cdn"), self.bases)
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        self.assertIn("x-steerd-cdn", h.get("access-control-expose-headers", "").lower())

    def assertRewrittenUri(self, uri):
        """A URI of a rewritten playlist: under a CDN base, path-absolute back to steerd with the
        session, or neither http(s) nor on the origin (foreign hosts, data:, skd:)."""
        if "{$" in uri:
            return
        origin = self.origin.base_url + "/"
        if uri.startswith("//"):  # a network-path reference: left alone unless on the origin
            self.assertFalse(("http:" + uri).startswith(origin), uri)
            return
        if uri.startswith("/"):
            self.assertRegex(uri, SESSION_RE, "nested URI without the session: %s" % uri)
            return
        scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
        self.assertNotEqual(scheme, "", "relative URI left in the playlist: %r" % uri)
        if scheme in ("http", "https"):
            self.assertFalse(uri.startswith(origin), "URI still on the origin: %s" % uri)

    # -- the fixtures --

    def test_hls_fixtures_rewritten(self):
        for path in self.hls_fixtures:
            with self.subTest(path=path):
                status, h, body = self.d.get(path)
                self.assertManifest(status, h, body, CT_HLS)
                text = body.decode("utf-8")
                self.assertTrue(text.lstrip("\ufeff").startswith("#EXTM3U"))
                uris = hls_uris(text)
                for u in uris:
                    self.assertRewrittenUri(u)

    def test_dash_fixtures_rewritten(self):
        origin = self.origin.base_url + "/"
        for path in self.dash_fixtures:
            with self.subTest(path=path):
                status, h, body = self.d.get(path)
                self.assertManifest(status, h, body, CT_DASH)
                root = ET.fromstring(body)
                self.assertTrue(root.tag.endswith("MPD"), root.tag)
                for el in root.iter():
                    # What dash.h rewrites: BaseURLs, reload URLs and segment URLs (licence
                    # URLs, events, UTCTiming and ContentSteering are left as they were).
                    tag = el.tag.rsplit("}", 1)[-1]
                    values = [v for k, v in el.attrib.items() if k in SEGMENT_URL_ATTRS]
                    if tag in ("BaseURL", "Location", "PatchLocation"):
                        values.append((el.text or "").strip())
                    for v in values:
                        self.assertFalse(v.startswith(origin), "%s: %s" % (el.tag, v))
                    if el.tag.endswith("}Location") and (el.text or "").startswith("/"):
                        self.assertRegex(el.text, SESSION_RE)
                    if el.tag.endswith("}BaseURL") and el.get("serviceLocation") in self.bases:
                        self.assertEqual(self.cdn_of_url(el.text.strip()),
                                         el.get("serviceLocation"), el.text)

    # -- the generated stream, URI by URI --

    def walk_media(self, uri, want_cdn, headers=None):
        """GETs a nested media playlist through steerd and every segment it lists from its
        CDN; asserts they all come from want_cdn. Returns the playlist text."""
        status, h, body = self.d.get(uri, headers)
        self.assertManifest(status, h, body, CT_HLS)
        self.assertEqual(h.get("x-steerd-cdn"), want_cdn, uri)
        text = body.decode()
        uris = hls_uris(text)
        self.assertEqual(len(uris), 1 + len(GEN_SEGMENTS), text)  # the map + the segments
        rendition = urllib.parse.urlsplit(uri).path.split("/")[3]
        for u in uris:
            self.assertEqual(self.cdn_of_url(u), want_cdn, u)
            s, sh, sb = fetch_url(u)
            self.assertEqual(s, 200, u)
            self.assertEqual(sh.get("x-served-by"), want_cdn, u)
            origin_path = "/vod/gen/%s/%s" % (rendition, u.rsplit("/", 1)[1])
            self.assertEqual(sb, segment_bytes(origin_path), u)
        return text

    def test_generated_vod_walk(self):
        status, h, body = self.d.get("/vod/gen/master.m3u8")
        self.assertManifest(status, h, body, CT_HLS)
        chosen = h["x-steerd-cdn"]
        other = "beta" if chosen == "alpha" else "alpha"
        text = body.decode()
        uris = hls_uris(text)
        for u in uris:
            self.assertRewrittenUri(u)
        # Redundant copies: every variant and the audio rendition once per CDN; the copies for
        # the second CDN carry its pin, and the copy group is named after it.
        self.assertEqual(text.count("#EXT-X-STREAM-INF"), 4, text)
        self.assertEqual(text.count("#EXT-X-MEDIA"), 2, text)
        self.assertIn('GROUP-ID="aud-%s"' % other, text)
        sessions = {SESSION_RE.search(u).group(1) for u in uris}
        self.assertEqual(len(sessions), 1, uris)
        pinned = [u for u in uris if "steerd_cdn=" in u]
        plain = [u for u in uris if "steerd_cdn=" not in u]
        self.assertEqual(len(pinned), 3, uris)
        self.assertEqual(len(plain), 3, uris)
        for u in pinned:
            self.assertIn("steerd_cdn=%s" % other, u)
        # Every nested playlist, through steerd, rewritten again; its segments from the CDN.
        for u in plain:
            self.walk_media(u, chosen)
        for u in pinned:
            self.walk_media(u, other)
        # Sticky: the same master again, and the nested playlist again.
        for _ in range(3):
            s, h2, b2 = self.d.get("/vod/gen/master.m3u8")
            self.assertEqual(h2.get("x-steerd-cdn"), chosen)
            self.assertEqual(b2, body)
        self.walk_media(plain[0], chosen)

    def test_session_parameter_decides_over_client_address(self):
        # Masters for many client addresses spread over both CDNs; the media playlist carrying
        # one master's session stays on that master's CDN whoever asks for it.
        seen = {}
        for i in range(1, 40):
            ip = "198.51.100.%d" % i
            s, h, b = self.d.get("/vod/gen/master.m3u8", {"X-Forwarded-For": ip})
            self.assertEqual(s, 200)
            seen.setdefault(h["x-steerd-cdn"], (ip, b.decode()))
        self.assertEqual(set(seen), {"alpha", "beta"}, "weights 1:1 should use both CDNs")
        for cdn, (ip, text) in seen.items():
            nested = [u for u in hls_uris(text) if "steerd_cdn=" not in u and "v1/" in u][0]
            for j in range(1, 6):
                s, h, b = self.d.get(nested, {"X-Forwarded-For": "203.0.113.%d" % j})
                self.assertEqual(s, 200)
                self.assertEqual(h.get("x-steerd-cdn"), cdn, nested)
        # A malformed steerd_s is ignored (the client address decides again), an unknown pin too.
        s, h, b = self.d.get("/vod/gen/v1/index.m3u8?steerd_s=xyz&steerd_cdn=nope")
        self.assertEqual(s, 200)
        self.assertIn(h.get("x-steerd-cdn"), self.bases)

    def test_region_rules_apply_to_manifests(self):
        # nordics: alpha only; uk: beta only (see default_config's policy)
        for ip, cdn in ((st.IP_SE, "alpha"), (st.IP_GB, "beta")):
            s, h, b = self.d.get("/vod/gen/v2/index.m3u8", {"X-Forwarded-For": ip})
            self.assertEqual(s, 200)
            self.assertEqual(h.get("x-steerd-cdn"), cdn)
            for u in hls_uris(b.decode()):
                self.assertEqual(self.cdn_of_url(u), cdn, u)

    def test_generated_mpd_segments_from_cdn(self):
        status, h, body = self.d.get("/vod/gen/manifest.mpd")
        self.assertManifest(status, h, body, CT_DASH)
        chosen = h["x-steerd-cdn"]
        root = ET.fromstring(body)
        ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
        bases = root.findall("m:BaseURL", ns)
        self.assertEqual([b.get("serviceLocation") for b in bases][0], chosen)
        self.assertEqual({b.get("serviceLocation") for b in bases}, {"alpha", "beta"})
        for b in bases:
            cdn = b.get("serviceLocation")
            url = b.text.strip()
            self.assertEqual(url, self.bases[cdn] + "/vod/gen/")
            for seg in ("v1/init.mp4", "v1/seg_000.m4s", "v1/seg_002.m4s"):
                s, sh, sb = fetch_url(url + seg)
                self.assertEqual(s, 200, url + seg)
                self.assertEqual(sh.get("x-served-by"), cdn)
                self.assertEqual(sb, segment_bytes("/vod/gen/" + seg))

    def test_rendered_answers_reused_per_ranking(self):
        # An MPD without reload URLs names no session: every request with the same ranking gets
        # the same bytes, rewritten once per worker and ranking, then reused.
        self.origin.put("/vod/reuse/manifest.mpd", GEN_MPD)
        m0 = self.d.metrics()
        bodies = {}
        for i in range(1, 41):
            s, h, b = self.d.get("/vod/reuse/manifest.mpd",
                                 {"X-Forwarded-For": "198.51.100.%d" % i})
            self.assertEqual(s, 200)
            bodies.setdefault(h["x-steerd-cdn"], set()).add(b)
        self.assertEqual(set(bodies), {"alpha", "beta"})
        for cdn, seen in bodies.items():
            self.assertEqual(len(seen), 1, cdn)
        m1 = self.d.metrics()
        delta = {r: m1.get(st.metric_key("steerd_manifest_render_total", result=r), 0) -
                 m0.get(st.metric_key("steerd_manifest_render_total", result=r), 0)
                 for r in ("reused", "rewritten")}
        self.assertEqual(delta["reused"] + delta["rewritten"], 40)
        self.assertLessEqual(delta["rewritten"], 2 * 2)  # rankings x workers
        # A multivariant playlist carries each session onward: it is reused too, with each
        # request's own session written into it (same client: same session; others: theirs).
        self.origin.put("/vod/reuse/master.m3u8", GEN_MASTER.encode())
        sessions = {}
        for rnd in range(2):
            for i in range(1, 11):
                s, h, b = self.d.get("/vod/reuse/master.m3u8",
                                     {"X-Forwarded-For": "203.0.113.%d" % i})
                self.assertEqual(s, 200)
                found = set(re.findall(r"steerd_s=([0-9a-f]{16})", b.decode()))
                self.assertEqual(len(found), 1, b.decode())
                sessions.setdefault(i, set()).update(found)
        for i, found in sessions.items():
            self.assertEqual(len(found), 1, "client %d got two sessions: %r" % (i, found))
        self.assertEqual(len({next(iter(f)) for f in sessions.values()}), 10)
        m2 = self.d.metrics()
        rewritten = (m2.get(st.metric_key("steerd_manifest_render_total", result="rewritten"))
                     - m1.get(st.metric_key("steerd_manifest_render_total", result="rewritten")))
        self.assertLessEqual(rewritten, 1 + 2 * 2)  # the fetch, then rankings x workers

    def test_reused_rendering_follows_a_new_origin_copy(self):
        cfg = st.default_config(self.cdns, origin={"base_url": self.origin.base_url},
                                manifest={"vod_ttl_s": 0})
        d = self.watch_local(st.Steerd(cfg, name="reuse-new", wait_ready=True))
        try:
            self.origin.put("/vod/change/manifest.mpd", GEN_MPD)
            s1, h1, b1 = d.get("/vod/change/manifest.mpd")
            s2, h2, b2 = d.get("/vod/change/manifest.mpd")
            self.assertEqual((s1, s2), (200, 200))
            self.assertEqual(b1, b2)
            time.sleep(1.1)  # Last-Modified has a one-second resolution
            changed = GEN_MPD.replace(b"v1/", b"v9/")
            self.assertNotEqual(changed, GEN_MPD)
            self.origin.put("/vod/change/manifest.mpd", changed)
            s3, h3, b3 = d.get("/vod/change/manifest.mpd")
            self.assertEqual(s3, 200)
            self.assertIn(b"v9/", b3)
            self.assertNotIn(b"v1/", b3)
            self.stop_clean(d)
        finally:
            d.cleanup()

    def test_head_and_segments(self):
        s, h, b = self.d.get("/vod/head/master.m3u8")
        self.assertEqual(s, 200)
        s2, h2, b2 = self.d.get("/vod/head/master.m3u8", method="HEAD")
        self.assertEqual(s2, 200)
        self.assertEqual(b2, b"")
        self.assertEqual(h2.get("content-length"), str(len(b)))
        self.assertEqual(h2.get("content-type"), CT_HLS)
        # Everything else is still a 302.
        cdn, loc = self.d.redirect("/vod/asset1/seg_001.m4s")
        self.assertEqual(loc, self.bases[cdn] + "/vod/asset1/seg_001.m4s")

    def test_origin_404_and_oversized(self):
        s, h, b = self.d.get("/vod/missing/master.m3u8")
        self.assertEqual(s, 404)
        self.assertIn("x-steerd-cdn", h)
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        s, h, b = self.d.get("/vod/missing/manifest.mpd")
        self.assertEqual(s, 404)

        before = st.proc_status_kib(self.d.proc.pid, "VmHWM")
        s, h, b = self.d.get("/big.m3u8")
        self.assertEqual(s, 502, b)
        self.assertIn(b"too large", b)
        after = st.proc_status_kib(self.d.proc.pid, "VmHWM")
        self.assertLess(after - before, 16 * 1024, "peak RSS grew %d KiB" % (after - before))
        self.assertTrue(self.d.alive())
        self.assertGreaterEqual(
            self.d.metric("steerd_origin_fetch_total", result="too_large"), 1)
        # A file that is not a playlist at all.
        self.origin.put("/vod/junk/master.m3u8", b"<html>not a playlist</html>\n")
        s, h, b = self.d.get("/vod/junk/master.m3u8")
        self.assertEqual(s, 502)
        self.assertIn(b"not an HLS playlist", b)

    def test_500_concurrent_requests_one_origin_fetch(self):
        path = "/vod/burst/master.m3u8"
        req = ("GET %s HTTP/1.1\r\nHost: steerd\r\nConnection: close\r\n\r\n" % path).encode()
        m0 = self.d.metrics()

        async def run():
            go = asyncio.Event()

            async def one():
                r, w = await asyncio.open_connection(st.LOOPBACK, self.d.port)
                await go.wait()
                w.write(req)
                await w.drain()
                data = await asyncio.wait_for(r.read(), 30)
                w.close()
                return data

            tasks = [asyncio.ensure_future(one()) for _ in range(500)]
            await asyncio.sleep(0.5)  # let every connection be made first
            go.set()
            return await asyncio.gather(*tasks)

        answers = asyncio.run(run())
        bodies = set()
        for raw in answers:
            rs, rest = st.parse_responses(raw)
            self.assertEqual(len(rs), 1, raw[:200])
            self.assertEqual(rs[0].status, 200)
            bodies.add(rs[0].body)
        self.assertEqual(len(bodies), 1)  # one session (same client), one answer
        self.assertEqual(self.origin.hits("GET %s " % path), 1)
        m1 = self.d.metrics()

        def delta(result):
            k = st.metric_key("steerd_manifest_cache_total", result=result)
            return m1.get(k, 0) - m0.get(k, 0)

        self.assertEqual(delta("miss"), 1)
        self.assertEqual(delta("hit") + delta("coalesced"), 499)

    # -- configurations of their own --

    def test_conditional_revalidation_after_expiry(self):
        self.origin.put("/vod/reval/master.m3u8", GEN_MASTER.encode())
        cfg = st.default_config(self.cdns, origin={"base_url": self.origin.base_url},
                                manifest={"vod_ttl_s": 0,
                                          "public_base_url": "http://steerd.example:8080/"})
        d = self.watch_local(st.Steerd(cfg, name="reval", wait_ready=True))
        try:
            s1, h1, b1 = d.get("/vod/reval/master.m3u8")
            self.assertEqual(s1, 200)
            self.assertEqual(h1.get("cache-control"), "private, max-age=1")
            # nested playlists go to public_base_url
            for u in hls_uris(b1.decode()):
                self.assertTrue(u.startswith("http://steerd.example:8080/vod/reval/"), u)
            s2, h2, b2 = d.get("/vod/reval/master.m3u8")  # expired: asked again, conditionally
            self.assertEqual(s2, 200)
            self.assertEqual(b2, b1)
            with open(self.origin.access_log) as f:
                lines = [ln for ln in f if "/vod/reval/master.m3u8" in ln]
            self.assertEqual(len(lines), 2, lines)
            self.assertRegex(lines[0], r'" 200 .* inm="-" ims="-"')
            self.assertRegex(lines[1], r'" 304 .* inm="[^"-][^"]*" ims="[A-Z][a-z]{2}, ')
            self.assertEqual(d.metric("steerd_origin_fetch_total", result="not_modified"), 1)
            self.assertEqual(d.metric("steerd_manifest_cache_total", result="stale_revalidated"),
                             1)
            # a changed file is fetched whole again
            time.sleep(1.1)  # Last-Modified has a one-second resolution
            self.origin.put("/vod/reval/master.m3u8", GEN_MASTER.replace("v2/", "v3/").encode())
            s3, h3, b3 = d.get("/vod/reval/master.m3u8")
            self.assertEqual(s3, 200)
            self.assertIn(b"/vod/reval/v3/index.m3u8", b3)
            self.stop_clean(d)
        finally:
            d.cleanup()

    def test_manifest_mode_redirect(self):
        cfg = st.default_config(self.cdns, origin={"base_url": self.origin.base_url},
                                policy={"manifest_mode": "redirect"})
        d = self.watch_local(st.Steerd(cfg, name="redirect-mode", wait_ready=True))
        try:
            for path in ("/vod/gen/master.m3u8", "/vod/gen/manifest.mpd"):
                cdn, loc = d.redirect(path + "?a=1")
                self.assertEqual(loc, self.bases[cdn] + path + "?a=1")
            self.assertEqual(self.origin.hits("GET /vod/gen/master.m3u8?a=1"), 0)
            self.stop_clean(d)
        finally:
            d.cleanup()

    def test_no_origin_configured(self):
        cfg = st.default_config(self.cdns)
        d = self.watch_local(st.Steerd(cfg, name="no-origin", wait_ready=True))
        try:
            s, h, b = d.get("/vod/gen/master.m3u8")
            self.assertEqual(s, 502)
            self.assertEqual(b, b"no origin configured\n")
            self.assertIn(h.get("x-steerd-cdn"), self.bases)
            d.redirect("/vod/asset1/seg_001.m4s")
            self.stop_clean(d)
        finally:
            d.cleanup()

    def test_origin_stopped_gives_502_and_steerd_stays_healthy(self):
        origin2 = self.watch_local(st.Nginx("origin2", role="origin").start())
        origin2.put("/live/a/master.m3u8", GEN_MASTER.encode())
        cfg = st.default_config(self.cdns, origin={"base_url": origin2.base_url},
                                manifest={"vod_ttl_s": 0, "error_ttl_ms": 0})
        d = self.watch_local(st.Steerd(cfg, name="dead-origin", wait_ready=True))
        try:
            self.assertEqual(d.get("/live/a/master.m3u8")[0], 200)
            origin2.stop()
            for _ in range(3):
                s, h, b = d.get("/live/a/master.m3u8")
                self.assertEqual(s, 502, b)
                self.assertEqual(h.get("access-control-allow-origin"), "*")
                self.assertIn("x-steerd-cdn", h)
            self.assertTrue(d.alive())
            self.assertEqual(d.admin("/healthz")[0], 200)
            d.redirect("/vod/asset1/seg_001.m4s")
            self.assertGreaterEqual(d.metric("steerd_origin_fetch_total", result="failed"), 3)
            origin2.start()
            self.assertEqual(d.get("/live/a/master.m3u8")[0], 200)
            self.stop_clean(d)
        finally:
            d.cleanup()
            origin2.cleanup()

    def test_hanging_origin_gives_504_in_time(self):
        fault = self.watch_local(st.FaultServer("hang"))
        cfg = st.default_config(self.cdns, origin={"base_url": fault.base_url, "timeout_ms": 1000},
                                manifest={"error_ttl_ms": 3000})
        d = self.watch_local(st.Steerd(cfg, name="hang-origin", wait_ready=True))
        try:
            t0 = time.monotonic()
            s, h, b = d.get("/vod/x/master.mpd")
            took = time.monotonic() - t0
            self.assertEqual(s, 504, b)
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 2.0)
            self.assertEqual(fault.accepted, 1)
            # remembered for error_ttl_ms: answered at once, the origin is not asked again
            t0 = time.monotonic()
            self.assertEqual(d.get("/vod/x/master.mpd")[0], 504)
            self.assertLess(time.monotonic() - t0, 0.5)
            self.assertEqual(fault.accepted, 1)
            self.assertEqual(d.metric("steerd_origin_fetch_total", result="timeout"), 1)
            self.assertEqual(d.admin("/healthz")[0], 200)
            self.stop_clean(d)
        finally:
            d.cleanup()
            fault.cleanup()

    def test_shutdown_with_fetches_in_flight(self):
        # Requests wait on an origin that never answers (one fetching, the others queued behind
        # it on both workers) when SIGTERM comes: steerd drains, ends the fetch, frees every
        # waiting request and exits 0 in time.
        fault = self.watch_local(st.FaultServer("hang"))
        cfg = st.default_config(self.cdns, origin={"base_url": fault.base_url,
                                                   "timeout_ms": 60000},
                                http={"shutdown_grace_ms": 500})
        d = self.watch_local(st.Steerd(cfg, name="stop-in-flight", wait_ready=True))
        socks = []
        try:
            for i in range(8):
                c = st.socket.create_connection((st.LOOPBACK, d.port), timeout=5)
                c.sendall(b"GET /live/x/master.m3u8 HTTP/1.1\r\nHost: s\r\n\r\n")
                socks.append(c)
            st.wait_for(lambda: fault.accepted == 1, 5.0, msg="the origin fetch to start")
            st.wait_for(lambda: d.metric("steerd_manifest_cache_total", result="coalesced") == 7,
                        5.0, msg="seven requests queued behind the fetch")
            t0 = time.monotonic()
            self.stop_clean(d)
            self.assertLess(time.monotonic() - t0, 0.5 + 1.0 + 1.0)
            for c in socks:
                data = b""
                try:
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.assertNotIn(b" 200 ", data)
        finally:
            for c in socks:
                c.close()
            d.cleanup()
            fault.cleanup()


if __name__ == "__main__":
    st.main()
