#!/usr/bin/env python3
"""Admin listener: /healthz, /readyz, /metrics names and counts, /state and /explain JSON,
bearer-token auth, and no admin content on the player port."""

import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

TOKEN = "t0ken-for-admin-tests"
SEG = "/vod/asset1/seg_001.m4s"


class AdminTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns(prefixes={"beta": "/edge"})
        cls.watch(*cls.net.all())
        cls.bases = {"alpha": cls.net["alpha"].base_url, "beta": cls.net["beta"].base_url}
        policy = {
            "default": {"cdns": {"alpha": 1, "beta": 1}},
            "regions": {
                "nordics": {"cdns": {"alpha": 1}, "failover": ["beta"]},
                "uk": {"cdns": {"beta": 1}, "failover": ["alpha"]},
            },
        }
        cfg = st.default_config([st.cdn_entry("alpha", cls.net["alpha"]),
                                 st.cdn_entry("beta", cls.net["beta"])], policy=policy)
        cfg["admin"]["token"] = TOKEN
        cls.d = cls.watch(st.Steerd(cfg, name="admin", token=TOKEN, wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    # -- health --

    def test_admin_healthz(self):
        status, h, body = self.d.admin("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), b"ok")

    def test_admin_readyz_after_probes(self):
        status, h, body = self.d.admin("/readyz")
        self.assertEqual(status, 200)

    def test_admin_readyz_503_until_first_probe_result(self):
        # A CDN whose probe target accepts the connection but never answers: no conclusive
        # result before the probe timeout, so steerd is not ready yet.
        hang = socket.socket()
        hang.bind((st.LOOPBACK, 0))
        hang.listen(16)
        port = hang.getsockname()[1]
        try:
            cdns = [st.cdn_entry("alpha", self.net["alpha"]),
                    st.cdn_entry("beta", base_url="http://127.0.0.1:%d" % port,
                                 probe_url="http://127.0.0.1:%d/probe.bin" % port,
                                 interval_ms=10000, timeout_ms=4000)]
            d = self.watch_local(st.Steerd(st.default_config(cdns), name="notready"))
            try:
                status, _, _ = d.admin("/readyz")
                self.assertEqual(status, 503)
                self.assertEqual(d.admin("/healthz")[0], 200)
                # Players are still answered while not ready.
                self.assertEqual(d.get(SEG)[0], 302)
                # The timeout is a conclusive failure: ready within timeout + 2 s.
                st.wait_for(lambda: d.admin("/readyz")[0] == 200, 6.0, msg="readyz 200")
            finally:
                d.cleanup()
        finally:
            hang.close()

    # -- metrics --

    def test_admin_metrics_contract_names(self):
        # Make sure every labelled series exists: a redirect, an OPTIONS and a rejected request.
        self.d.get(SEG)
        self.d.request("OPTIONS", SEG)
        self.d.raw(b"GET /../x HTTP/1.1\r\nHost: s\r\n\r\n")
        status, h, body = self.d.admin("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(h.get("content-type", "").startswith("text/plain"), h)
        text = body.decode()
        m = st.parse_metrics(text)
        for key in (
            st.metric_key("steerd_requests_total", route="redirect", code="302"),
            st.metric_key("steerd_requests_total", route="options", code="204"),
            st.metric_key("steerd_requests_total", route="error", code="400"),
            st.metric_key("steerd_cdn_up", cdn="alpha"),
            st.metric_key("steerd_cdn_up", cdn="beta"),
            st.metric_key("steerd_probe_total", cdn="alpha", result="ok"),
            st.metric_key("steerd_config_generation"),
            st.metric_key("steerd_config_reload_total", result="ok"),
            st.metric_key("steerd_config_reload_total", result="failed"),
            st.metric_key("steerd_all_cdns_down"),
            st.metric_key("steerd_connections_active"),
        ):
            self.assertIn(key, m, "missing series " + key)
        for name in ("steerd_decisions_total", "steerd_requests_rejected_total"):
            self.assertTrue(any(k.startswith(name + "{") for k in m), "missing " + name)
        self.assertEqual(m[st.metric_key("steerd_cdn_up", cdn="alpha")], 1.0)
        self.assertEqual(m[st.metric_key("steerd_all_cdns_down")], 0.0)
        self.assertGreaterEqual(m[st.metric_key("steerd_config_generation")], 1.0)
        self.assertIn("# TYPE steerd_requests_total counter", text)

    def test_admin_metrics_count_exactly(self):
        key = st.metric_key("steerd_requests_total", route="redirect", code="302")
        dkey = st.metric_key("steerd_decisions_total", cdn="alpha", region="nordics")
        m0 = self.d.metrics()
        c = self.d.client()
        try:
            for i in range(7):
                self.assertEqual(c.get(SEG, {"X-Forwarded-For": st.IP_SE})[0], 302)
        finally:
            c.close()
        m1 = self.d.metrics()
        self.assertEqual(m1[key] - m0.get(key, 0.0), 7)
        self.assertEqual(m1[dkey] - m0.get(dkey, 0.0), 7)

    # -- state --

    def test_admin_state_shape(self):
        status, s = self.d.admin_json("/state")
        self.assertEqual(status, 200)
        self.assertIsInstance(s["generation"], int)
        self.assertIs(s["ready"], True)
        self.assertEqual([c["id"] for c in s["cdns"]], ["alpha", "beta"])
        for c in s["cdns"]:
            for k in ("id", "up", "state", "last_status", "last_error", "connect_ms", "ttfb_ms",
                      "total_ms", "ok_total", "fail_total"):
                self.assertIn(k, c)
            self.assertIs(c["up"], True)
            self.assertGreaterEqual(c["ok_total"], 1)
            self.assertEqual(c["last_status"], 200)
        regions = {r["name"]: r for r in s["regions"]}
        self.assertEqual(regions["nordics"]["cdns"], {"alpha": 1})
        self.assertEqual(regions["nordics"]["failover"], ["beta"])
        self.assertEqual(regions["uk"]["cdns"], {"beta": 1})
        self.assertIn("world", regions)
        self.assertEqual(regions["world"]["cdns"], {"alpha": 1, "beta": 1})

    # -- explain --

    def explain(self, query):
        status, h, body = self.d.admin("/explain?" + query)
        self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
        return status, json.loads(body)

    def test_admin_explain_country(self):
        status, e = self.explain("ip=%s&path=/vod/a//seg.m4s" % st.IP_SE)
        self.assertEqual(status, 200)
        self.assertEqual(e["client"]["ip"], st.IP_SE)
        self.assertEqual(e["client"]["country"], "SE")
        self.assertEqual(e["client"]["region"], "nordics")
        self.assertIn("country", e["client"]["matched_by"])
        self.assertEqual(e["path"], "/vod/a/seg.m4s")
        self.assertEqual(e["cdn"], "alpha")
        self.assertEqual(e["location"], self.bases["alpha"] + "/vod/a/seg.m4s")
        self.assertEqual(e["reason"], "weighted")
        cands = {c["id"]: c for c in e["candidates"]}
        self.assertEqual(set(cands), {"alpha", "beta"})
        for c in cands.values():
            for k in ("id", "eligible", "up", "weight", "failover_rank", "score"):
                self.assertIn(k, c)
        self.assertIs(cands["alpha"]["eligible"], True)
        self.assertEqual(cands["alpha"]["weight"], 1)

    def test_admin_explain_gb_asn_cidr(self):
        status, e = self.explain("ip=%s&path=/x.m4s" % st.IP_GB)
        self.assertEqual((status, e["client"]["country"], e["client"]["region"], e["cdn"]),
                         (200, "GB", "uk", "beta"))
        status, e = self.explain("ip=%s&path=/x.m4s" % st.IP_TELSTRA)
        self.assertEqual((status, e["client"]["asn"], e["client"]["region"]), (200, 1221, "telstra"))
        self.assertIn("asn", e["client"]["matched_by"])
        status, e = self.explain("ip=%s&path=/x.m4s" % st.IP_LAB)
        self.assertEqual((status, e["client"]["region"]), (200, "lab"))
        self.assertIn("cidr", e["client"]["matched_by"])

    def test_admin_explain_matches_real_answer(self):
        for i in range(10):
            sid = "explain-%d" % i
            status, e = self.explain("ip=%s&path=%s&sid=%s" % (st.IP_NOWHERE, SEG, sid))
            self.assertEqual(status, 200)
            self.assertIn(sid, e["session"])
            _, h, _ = self.d.get(SEG, {"X-Forwarded-For": st.IP_NOWHERE,
                                       "CMCD-Session": 'sid="%s"' % sid})
            self.assertEqual(h["x-steerd-cdn"], e["cdn"])
            self.assertEqual(h["location"], e["location"])

    def test_admin_explain_bad_input_400(self):
        for q in ("ip=not-an-ip&path=/x.m4s", "ip=1.2.3.400&path=/x.m4s", "path=/x.m4s",
                  "ip=%s&path=/../etc/passwd" % st.IP_SE):
            with self.subTest(q=q):
                status, h, body = self.d.admin("/explain?" + q)
                self.assertEqual(status, 400, body)

    # -- auth --

    def test_admin_token_required(self):
        for path in ("/metrics", "/state", "/explain?ip=%s&path=/x.m4s" % st.IP_SE):
            with self.subTest(path=path):
                self.assertEqual(self.d.admin(path, token="")[0], 401)
                self.assertEqual(self.d.admin(path, token="wrong-token")[0], 401)
                self.assertEqual(self.d.admin(path, token=TOKEN + "x")[0], 401)
                self.assertEqual(self.d.admin(path, token=TOKEN)[0], 200)
        status, h, body = st.http_request(self.d.admin_port, "GET", "/state",
                                          {"Authorization": "Basic " + TOKEN})
        self.assertEqual(status, 401)
        self.assertNotIn(TOKEN.encode(), body)

    def test_admin_reload_needs_token(self):
        failed = st.metric_key("steerd_config_reload_total", result="failed")
        ok = st.metric_key("steerd_config_reload_total", result="ok")
        m0 = self.d.metrics()
        self.assertEqual(self.d.admin("/reload", method="POST", token="")[0], 401)
        self.assertEqual(self.d.admin("/reload", method="POST", token="nope")[0], 401)
        m1 = self.d.metrics()
        self.assertEqual((m1[ok], m1[failed]), (m0[ok], m0[failed]))
        self.assertEqual(self.d.admin("/reload", method="POST")[0], 200)
        self.assertEqual(self.d.metrics()[ok], m0[ok] + 1)

    def test_admin_unknown_path_404(self):
        self.assertEqual(self.d.admin("/nope")[0], 404)
        self.assertEqual(self.d.admin("/metrics/x")[0], 404)

    def test_admin_token_not_leaked(self):
        for path in ("/state", "/metrics", "/explain?ip=%s&path=/x.m4s" % st.IP_SE):
            self.assertNotIn(TOKEN.encode(), self.d.admin(path)[2])
        self.assertNotIn(TOKEN, self.d.stderr())

    def test_admin_paths_on_player_port_give_no_admin_content(self):
        for path in ("/metrics", "/state", "/healthz", "/readyz", "/explain?ip=%s&path=/x" % st.IP_SE):
            with self.subTest(path=path):
                status, h, body = self.d.get(path, {"Authorization": "Bearer " + TOKEN})
                self.assertEqual(status, 302)
                self.assertNotIn(b"steerd_", body)
                self.assertNotIn(b"generation", body)
                self.assertEqual(body, b"")
        status, h, body = self.d.request("POST", "/reload", {"Authorization": "Bearer " + TOKEN},
                                         b"")
        self.assertEqual(status, 405)


if __name__ == "__main__":
    st.main()
