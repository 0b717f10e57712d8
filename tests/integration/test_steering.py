#!/usr/bin/env python3
"""Content Steering servers against real steerd instances and real nginx CDNs: GET /steer/hls
and /steer/dash answers (VERSION 1, TTL, absolute RELOAD-URI with signed state, PATHWAY-PRIORITY
of the CDNs that are up, clones), the state carried from one steerd to another with the same key,
tampered state and bad player parameters (400, never 410/429), a stopped CDN leaving
PATHWAY-PRIORITY, compliance metrics, and a key file readable by others refused at start-up."""

import json
import os
import re
import sys
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

PUBLIC = "http://steerd.test:8080"
KEY1 = "00112233445566778899aabbccddeeff"
KEY2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa9988"
INTERVAL, TIMEOUT, FALL, RISE = 0.5, 0.4, 2, 2
DOWN_DEADLINE = FALL * INTERVAL + TIMEOUT + 2.0
UP_DEADLINE = RISE * INTERVAL + TIMEOUT + 3.0


def write_keys(d, keys, current, mode=0o600, name="steering-keys.json"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump({"current_kid": current,
                   "keys": [{"kid": k, "key_hex": v} for k, v in keys]}, f)
    os.chmod(path, mode)
    return path


def steering_config(cdns, key_file, **extra):
    s = {"ttl_s": 20, "ttl_min_s": 5, "ttl_max_s": 120, "key_file": key_file,
         "clones": [{"id": "alpha-b", "base_id": "alpha", "host": "alpha-b.example",
                     "params": {"tok": "x1"}}]}
    s.update(extra)
    return st.default_config(cdns, manifest={"public_base_url": PUBLIC},
                             policy={"default": {"cdns": {"alpha": 1, "beta": 1}},
                                     "manifest_mode": "steering"},
                             steering=s)


def local_path(uri):
    """The path and query of an absolute RELOAD-URI, to send to a steerd on loopback."""
    self_base = PUBLIC
    assert uri.startswith(self_base + "/"), uri
    return uri[len(self_base):]


class SteeringTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cls.keydir = st.make_tmpdir("steerd-it-keys-")
        cls.keys = write_keys(cls.keydir, [(1, KEY1), (2, KEY2)], 2)
        cdns = [st.cdn_entry(n, cls.net[n], interval_ms=int(INTERVAL * 1000),
                             timeout_ms=int(TIMEOUT * 1000), rise=RISE, fall=FALL)
                for n in ("alpha", "beta")]
        cls.cdns = cdns
        cls.d = cls.watch(st.Steerd(steering_config(cdns, cls.keys), name="steer1",
                                    wait_ready=True))
        # a second replica with the same key ring: any replica answers any poll
        cls.d2 = cls.watch(st.Steerd(steering_config(cdns, cls.keys), name="steer2",
                                     wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.d2.cleanup()
        cls.net.cleanup()
        st.remove_tmpdir(cls.keydir)

    def setUp(self):
        for n in (self.net["alpha"], self.net["beta"]):
            if not n.running():
                n.start()
        for d in (self.d, self.d2):
            for cdn in ("alpha", "beta"):
                st.wait_for(lambda: d.metric("steerd_cdn_up", cdn=cdn) == 1.0, UP_DEADLINE + 2,
                            msg="%s up" % cdn)

    def steer(self, path, d=None, expect=200):
        status, h, body = (d or self.d).get(path)
        self.assertEqual(status, expect, "%s -> %d %r" % (path, status, body[:200]))
        self.assertEqual(h.get("access-control-allow-origin"), "*")
        self.assertEqual(h.get("cache-control"), "no-store")
        if expect != 200:
            return None, h
        self.assertEqual(h.get("content-type"), "application/json")
        return json.loads(body), h

    def check_manifest(self, m, kind):
        self.assertEqual(m["VERSION"], 1)
        self.assertTrue(5 <= m["TTL"] <= 120)
        prio = m["PATHWAY-PRIORITY"]
        self.assertTrue(prio)
        self.assertEqual(len(prio), len(set(prio)))
        self.assertTrue(set(prio) <= {"alpha", "beta", "alpha-b"})
        if "alpha" in prio:  # a clone follows its base
            self.assertEqual(prio[prio.index("alpha") + 1], "alpha-b")
        self.assertTrue(m["RELOAD-URI"].startswith(PUBLIC + "/steer/" + kind + "?st="))
        clones = m["PATHWAY-CLONES"]
        self.assertEqual(clones[0]["BASE-ID"], "alpha")
        self.assertEqual(clones[0]["ID"], "alpha-b")
        self.assertEqual(clones[0]["URI-REPLACEMENT"]["HOST"], "alpha-b.example")
        self.assertEqual(clones[0]["URI-REPLACEMENT"]["PARAMS"], {"tok": "x1"})
        return prio

    def test_hls_and_dash_answers(self):
        m, h = self.steer("/steer/hls?steerd_s=0123456789abcdef")
        prio = self.check_manifest(m, "hls")
        self.assertEqual(set(prio), {"alpha", "beta", "alpha-b"})
        self.assertEqual(h.get("x-steerd-cdn"), prio[0])
        self.assertEqual(m["TTL"], 20)
        m, _ = self.steer('/steer/dash?steerd_s=0123456789abcdef&_DASH_pathway=%22alpha,beta%22'
                          '&_DASH_throughput=5000000,2000000')
        self.check_manifest(m, "dash")
        self.assertEqual(m["PATHWAY-PRIORITY"], prio)  # one session, one ranking
        # HEAD: the same head, no body
        status, h, body = self.d.get("/steer/hls?steerd_s=0123456789abcdef", method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")

    def test_sessions_spread_and_stick(self):
        firsts = set()
        for i in range(32):
            m, _ = self.steer("/steer/hls?steerd_s=%016x" % (i * 7919 + 1))
            firsts.add(m["PATHWAY-PRIORITY"][0])
            again, _ = self.steer("/steer/hls?steerd_s=%016x" % (i * 7919 + 1))
            self.assertEqual(again["PATHWAY-PRIORITY"], m["PATHWAY-PRIORITY"])
        self.assertEqual(firsts, {"alpha", "beta"})

    def test_state_round_trip_across_replicas(self):
        m, _ = self.steer("/steer/hls?steerd_s=00000000000000aa")
        prio = m["PATHWAY-PRIORITY"]
        path = local_path(m["RELOAD-URI"])
        # hls.js appends its parameters to RELOAD-URI; the other replica answers the same session
        m2, _ = self.steer(path + "&_HLS_pathway=%s&_HLS_throughput=4000000" % prio[0], d=self.d2)
        self.assertEqual(m2["PATHWAY-PRIORITY"], prio)
        m3, _ = self.steer(local_path(m2["RELOAD-URI"]) + '&_HLS_pathway="%s"' % prio[0])
        self.assertEqual(m3["PATHWAY-PRIORITY"], prio)
        # no session parameter at all: the state alone carries the session
        st_only = local_path(m2["RELOAD-URI"])
        self.assertNotIn("steerd_s", st_only)

    def test_tampered_or_foreign_state_is_400(self):
        m, _ = self.steer("/steer/hls?steerd_s=00000000000000bb")
        path = local_path(m["RELOAD-URI"])
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        tok = q["st"][0]
        for bad in (tok[:-1] + ("A" if tok[-1] != "A" else "B"),
                    tok[:10] + ("x" if tok[10] != "x" else "y") + tok[11:],
                    tok[:-4], "AAAA", "not-a-token-at-all"):
            self.steer("/steer/hls?st=" + bad, expect=400)
            self.steer("/steer/dash?st=" + bad, d=self.d2, expect=400)
        self.steer("/steer/hls?st=" + tok)  # the honest token still works

    def test_bad_player_parameters_are_400(self):
        for q in ("_HLS_throughput=fast", "_HLS_throughput=-1", "_HLS_pathway=ALPHA%0A",
                  "_HLS_pathway=a&_HLS_pathway=b", "_DASH_throughput=1,2,3&_DASH_pathway=%22a%22",
                  "_DASH_pathway=%22%22", "st=" + "A" * 400):
            self.steer("/steer/hls?" + q, expect=400)
        # unknown parameters are ignored; a pathway steerd does not know is only a mismatch
        self.steer("/steer/hls?foo=bar&_HLS_pathway=zeta")

    def test_stopped_cdn_leaves_priority(self):
        sess = "/steer/hls?steerd_s=%016x"
        self.net["alpha"].stop()
        st.wait_for(lambda: all("alpha" not in self.steer(sess % i)[0]["PATHWAY-PRIORITY"]
                                for i in range(8)), DOWN_DEADLINE + 2, msg="alpha dropped")
        for i in range(8):
            m, h = self.steer(sess % i)
            self.assertEqual(m["PATHWAY-PRIORITY"], ["beta"])
            self.assertEqual(h.get("x-steerd-cdn"), "beta")
        # both down: fail open, still a non-empty priority and a 200
        self.net["beta"].stop()
        st.wait_for(lambda: self.d.metric("steerd_all_cdns_down") == 1.0, DOWN_DEADLINE + 2,
                    msg="all down")
        m, _ = self.steer(sess % 1)
        self.assertTrue(m["PATHWAY-PRIORITY"])
        self.net["alpha"].start()
        self.net["beta"].start()
        st.wait_for(lambda: "alpha" in self.steer(sess % 3)[0]["PATHWAY-PRIORITY"],
                    UP_DEADLINE + 2, msg="alpha back")

    def test_compliance_metrics(self):
        m, _ = self.steer("/steer/hls?steerd_s=00000000000000cc")
        asked = m["PATHWAY-PRIORITY"][0]
        other = "beta" if asked == "alpha" else "alpha"
        before = self.d.metrics()

        def delta(after, **labels):
            k = st.metric_key("steerd_steering_compliance_total", **labels)
            return after.get(k, 0.0) - before.get(k, 0.0)

        path = local_path(m["RELOAD-URI"])
        self.steer(path + "&_HLS_pathway=" + asked + "&_HLS_throughput=3000000")
        self.steer(path + "&_HLS_pathway=" + other)
        self.steer(path.replace("/steer/hls", "/steer/dash") + "&_DASH_pathway=%22" + other
                   + "%22&_DASH_throughput=1000")
        after = self.d.metrics()
        self.assertEqual(delta(after, cdn=asked, result="match"), 1)
        self.assertEqual(delta(after, cdn=asked, result="mismatch"), 2)
        k = st.metric_key("steerd_steering_throughput_samples_total", cdn=asked)
        self.assertEqual(after.get(k, 0) - before.get(k, 0), 1)
        k = st.metric_key("steerd_steering_requests_total", format="dash")
        self.assertEqual(after[k] - before.get(k, 0), 1)
        # The reported throughputs reach the beacon store as samples about their pathways.
        for cdn in (asked, other):
            k = st.metric_key("steerd_beacon_samples_total", cdn=cdn)
            st.wait_for(lambda: self.d.metrics().get(k, 0) - before.get(k, 0) == 1, 5.0,
                        msg="a throughput sample for %s" % cdn)
        k = st.metric_key("steerd_requests_total", route="steering", code="200")
        self.assertGreaterEqual(after[k] - before.get(k, 0), 3)


MASTER = (
    "#EXTM3U\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"\n'
    "v1/index.m3u8\n"
).encode()
MPD = b"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT12S"
     minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate initialization="v1/init.mp4" media="v1/seg_$Number%03d$.m4s"
                       startNumber="0" duration="4" timescale="1"/>
      <Representation id="v1" bandwidth="800000" codecs="avc1.4d401f"/>
    </AdaptationSet>
  </Period>
</MPD>
"""


class SteeringManifestTest(st.SteerdTestCase):
    """policy.manifest_mode "steering": steerd's manifests point players at its steering
    servers, and the first pathway of the manifest is the first of the steering answer."""

    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cls.net.origin.put("vod/t/master.m3u8", MASTER)
        cls.net.origin.put("vod/t/manifest.mpd", MPD)
        cls.keydir = st.make_tmpdir("steerd-it-keys-")
        keys = write_keys(cls.keydir, [(1, KEY1)], 1)
        cdns = [st.cdn_entry(n, cls.net[n]) for n in ("alpha", "beta")]
        cfg = steering_config(cdns, keys, query_before_start=True)
        cfg["origin"] = {"base_url": cls.net.origin.base_url}
        cls.d = cls.watch(st.Steerd(cfg, name="steer-manifest", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()
        st.remove_tmpdir(cls.keydir)

    def test_hls_master_carries_steering(self):
        server_uris = set()
        for sid in ("s1", "s2", "s3", "s4"):
            status, h, body = self.d.get("/vod/t/master.m3u8?CMCD=sid%%3D%%22%s%%22" % sid)
            self.assertEqual(status, 200, body[:200])
            text = body.decode()
            tags = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-CONTENT-STEERING:")]
            self.assertEqual(len(tags), 1, text)
            m = re.match(r'#EXT-X-CONTENT-STEERING:SERVER-URI="([^"]+)",PATHWAY-ID="([a-z-]+)"$',
                         tags[0])
            self.assertIsNotNone(m, tags[0])
            self.assertTrue(m.group(1).startswith(PUBLIC + "/steer/hls?steerd_s="))
            server_uris.add(m.group(1))
            self.assertEqual(m.group(2), h.get("x-steerd-cdn"))
            pathways = re.findall(r'PATHWAY-ID="([a-z-]+)",STABLE-VARIANT-ID="v0"', text)
            self.assertEqual(pathways, [m.group(2), "beta" if m.group(2) == "alpha" else "alpha"])
            ans, _ = SteeringTest.steer(self, local_path(m.group(1)) + "&_HLS_pathway="
                                        + m.group(2))
            self.assertEqual(ans["PATHWAY-PRIORITY"][0], m.group(2))
            # the media playlists of each pathway come back pinned to its CDN
            for cdn in ("alpha", "beta"):
                self.assertIn("steerd_cdn=%s" % cdn, text)
        # each session has its own steering server URI, even from a reused rendering
        self.assertEqual(len(server_uris), 4)

    def test_dash_mpd_carries_steering(self):
        status, h, body = self.d.get("/vod/t/manifest.mpd")
        self.assertEqual(status, 200, body[:200])
        root = ET.fromstring(body)
        ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
        cs = root.findall("m:ContentSteering", ns)
        self.assertEqual(len(cs), 1)
        self.assertEqual(cs[0].get("defaultServiceLocation"), h.get("x-steerd-cdn"))
        self.assertEqual(cs[0].get("queryBeforeStart"), "true")
        self.assertTrue(cs[0].text.startswith(PUBLIC + "/steer/dash?steerd_s="))
        locs = [b.get("serviceLocation") for b in root.findall("m:BaseURL", ns)]
        self.assertEqual(sorted(locs), ["alpha", "beta"])
        ans, _ = SteeringTest.steer(self, local_path(cs[0].text))
        self.assertEqual(ans["PATHWAY-PRIORITY"][0], h.get("x-steerd-cdn"))


class AnswerModeByPathAndRegionTest(st.SteerdTestCase):
    """The answer mode chosen per content path and region: policy.paths[] first, then the
    region's manifest_mode, then policy.manifest_mode."""

    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        for p in ("vod/t/master.m3u8", "live/t/master.m3u8"):
            cls.net.origin.put(p, MASTER)
        cls.net.origin.put("vod/t/manifest.mpd", MPD)
        cdns = [st.cdn_entry(n, cls.net[n]) for n in ("alpha", "beta")]
        cfg = st.default_config(
            cdns, manifest={"public_base_url": PUBLIC},
            origin={"base_url": cls.net.origin.base_url},
            policy={"default": {"cdns": {"alpha": 1, "beta": 1}},
                    "manifest_mode": "rewrite",
                    "regions": {"nordics": {"manifest_mode": "steering"}},
                    "paths": [{"prefix": "/live/", "manifest_mode": "redirect"}]})
        cls.d = cls.watch(st.Steerd(cfg, name="steer-modes", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def test_modes(self):
        for _ in range(2):  # the second round may come from the rendered-answer cache
            s, h, b = self.d.get("/vod/t/master.m3u8", {"X-Forwarded-For": st.IP_SE})
            self.assertEqual(s, 200)
            self.assertIn(b"#EXT-X-CONTENT-STEERING:", b)
            s, h, b = self.d.get("/vod/t/master.m3u8", {"X-Forwarded-For": st.IP_GB})
            self.assertEqual(s, 200)
            self.assertNotIn(b"#EXT-X-CONTENT-STEERING", b)
            s, h, b = self.d.get("/vod/t/manifest.mpd", {"X-Forwarded-For": st.IP_SE})
            self.assertEqual(s, 200)
            self.assertIn(b"<ContentSteering", b)
            s, h, b = self.d.get("/vod/t/manifest.mpd", {"X-Forwarded-For": st.IP_GB})
            self.assertEqual(s, 200)
            self.assertNotIn(b"ContentSteering", b)
            # /live/ is answered with a 302 wherever the viewer is
            for ip in (st.IP_SE, st.IP_GB):
                s, h, b = self.d.get("/live/t/master.m3u8", {"X-Forwarded-For": ip})
                self.assertEqual(s, 302)
                self.assertTrue(h["location"].endswith("/live/t/master.m3u8"), h["location"])


class KeyFileTest(unittest.TestCase):
    def test_world_readable_key_file_refused(self):
        d = st.make_tmpdir("steerd-it-keys-")
        try:
            path = write_keys(d, [(1, KEY1)], 1, mode=0o644)
            cfg = steering_config([st.cdn_entry("alpha", base_url="http://127.0.0.1:9",
                                                probe=False),
                                   st.cdn_entry("beta", base_url="http://127.0.0.1:9",
                                                probe=False)], path)
            with self.assertRaises(RuntimeError) as cm:
                s = st.Steerd(cfg, name="badkeys")
                s.cleanup()
            self.assertIn("must not be readable by group or others", str(cm.exception))
        finally:
            st.remove_tmpdir(d)


if __name__ == "__main__":
    unittest.main()
