#!/usr/bin/env python3
"""SSRF default deny: configurations whose CDN, probe or origin URLs name internal addresses
(private, link-local, loopback without allow_targets), numeric host forms other than a dotted
quad, non-http schemes or steerd's own admin listener are rejected at load. On a running
steerd each such reload fails (counter +1), the old configuration keeps serving byte-identical
answers, and -t rejects the same file. The forbidden addresses only ever appear as
configuration strings: nothing connects to them. After DNS, a probe or origin URL whose name
resolves to loopback fails unless allow_targets covers it."""

import http.server
import json
import os
import subprocess
import sys
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

PROBE_PATH = "/vod/asset1/seg_001.m4s?token=abc"
PROBE_HEADERS = {"CMCD-Session": 'sid="ssrf-probe"', "X-Forwarded-For": st.IP_NOWHERE}


def check(path):
    return subprocess.run([st.steerd_bin(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


class DeniedReloadTest(st.SteerdTestCase):
    """Each denied form, as a reload of a running steerd and as -t."""

    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cls.cdns = [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])]
        cls.d = cls.watch(st.Steerd(cls.config(), name="ssrf", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    @classmethod
    def config(cls):
        return st.default_config([json.loads(json.dumps(c)) for c in cls.cdns])

    def probe(self):
        status, h, body = self.d.get(PROBE_PATH, PROBE_HEADERS)
        return status, h.get("location"), h.get("x-steerd-cdn"), body

    def counters(self):
        m = self.d.metrics()
        return (m.get(st.metric_key("steerd_config_generation")),
                m.get(st.metric_key("steerd_config_reload_total", result="ok"), 0.0),
                m.get(st.metric_key("steerd_config_reload_total", result="failed"), 0.0))

    def other_hits(self, name):
        return self.net[name].hits() - self.net[name].hits("/probe.bin")

    def denied_files(self):
        """kind -> (config dict, text every report must contain)."""
        port = self.net["beta"].port
        files = {}

        def variant(kind, want, edit):
            c = self.config()
            edit(c)
            files[kind] = (c, want)

        internal = "is an internal address"
        variant("private 10/8 base URL", internal,
                lambda c: c["cdns"][1].update(base_url="http://10.20.30.40"))
        variant("private 192.168/16 origin", internal,
                lambda c: c.update(origin={"base_url": "http://192.168.1.10/vod"}))
        variant("unique local IPv6 base URL", internal,
                lambda c: c["cdns"][1].update(base_url="http://[fd00::1]:8080"))
        variant("link-local probe URL", internal,
                lambda c: c["cdns"][0]["probe"].update(
                    url="http://169.254.169.254/latest/meta-data/"))
        variant("loopback without allow_targets", internal, lambda c: c.pop("allow_targets"))
        variant("decimal IP", "not a valid dotted-quad",
                lambda c: c["cdns"][1].update(base_url="http://2130706433:%d" % port))
        variant("hex IP", "not a valid dotted-quad",
                lambda c: c["cdns"][1]["probe"].update(url="http://0x7f000001:%d/p" % port))
        variant("octal 0177 IP", "not a valid dotted-quad",
                lambda c: c["cdns"][1].update(base_url="http://0177.0.0.1:%d" % port))
        variant("file: base URL", "scheme must be http or https",
                lambda c: c["cdns"][1].update(base_url="file:///etc/passwd"))
        variant("gopher: probe URL", "scheme must be http or https",
                lambda c: c["cdns"][0]["probe"].update(url="gopher://127.0.0.1:70/_x"))

        def admin(c):
            c["admin"]["listen"] = "127.0.0.1:%d" % self.d.admin_port
            c["cdns"][1]["base_url"] = "http://127.0.0.1:%d" % self.d.admin_port

        variant("admin port", "points at the admin listener", admin)
        return files

    def test_1_denied_forms_rejected_on_reload_and_by_check(self):
        reference = self.probe()
        self.assertEqual(reference[0], 302)
        other_hits = {n: self.other_hits(n) for n in ("alpha", "beta")}

        for kind, (content, want) in self.denied_files().items():
            with self.subTest(kind=kind):
                self.d.write_config(content)
                gen0, ok0, failed0 = self.counters()
                log_at = self.d.stderr_size()
                self.d.reload()
                st.wait_for(lambda: self.counters()[2] > failed0, 5.0,
                            msg="failed reload counter to move (%s)" % kind)
                gen1, ok1, failed1 = self.counters()
                self.assertTrue(self.d.alive(), "steerd died on a denied reload (%s)" % kind)
                self.assertEqual(gen1, gen0, "generation changed")
                self.assertEqual(ok1, ok0, "reload counted as ok")
                self.assertEqual(failed1, failed0 + 1, "failed counter not +1")
                self.assertEqual(self.probe(), reference, "answer changed after a denied reload")
                log = self.d.stderr_since(log_at)
                self.assertIn(want, log)
                res = check(self.d.config_path)
                self.assertEqual(res.returncode, 1, "-t accepted the %s file" % kind)
                err = res.stderr.decode()
                self.assertIn(want, err)
                problems = [ln.strip() for ln in err.splitlines()
                            if ln.strip() and not ln.startswith("steerd: configuration ")]
                self.assertTrue(problems)
                for p in problems:
                    self.assertIn(p, log, "-t reports a problem the reload did not log")

        # The good file loads again; the CDNs saw nothing but their probes.
        self.d.write_config(self.config())
        gen0, ok0, _ = self.counters()
        self.d.reload()
        st.wait_for(lambda: self.counters()[1] > ok0, 5.0, msg="good reload")
        self.assertEqual(self.probe(), reference)
        for n in ("alpha", "beta"):
            self.assertEqual(self.other_hits(n), other_hits[n])


class NameResolvesToLoopbackTest(st.SteerdTestCase):
    """A probe URL and an origin named "localhost": denied after DNS without allow_targets,
    reached with it."""

    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())

    @classmethod
    def tearDownClass(cls):
        cls.net.cleanup()

    def config(self, allow):
        cdns = []
        for n in ("alpha", "beta"):
            port = self.net[n].port
            cdns.append(st.cdn_entry(n, base_url="http://localhost:%d" % port,
                                     probe_url="http://localhost:%d/probe.bin" % port,
                                     interval_ms=300, timeout_ms=400))
        c = st.default_config(cdns, origin={"base_url": "http://localhost:%d" % self.net["alpha"].port})
        if allow:
            c["allow_targets"] = ["127.0.0.0/8"]
        else:
            c.pop("allow_targets")
        return c

    def cdn_state(self, d):
        status, body = d.admin_json("/state")
        self.assertEqual(status, 200)
        return {c["id"]: c for c in body["cdns"]}

    def test_localhost_probe_and_origin(self):
        probes_before = self.net["alpha"].hits("/probe.bin") + self.net["beta"].hits("/probe.bin")
        d = self.watch_local(st.Steerd(self.config(allow=False), name="ssrf-dns"))
        self.assertEqual(check(d.config_path).returncode, 0, "a name is checked after DNS")

        def both_denied():
            s = self.cdn_state(d)
            return all(not c["up"] and (c["last_error"] or "").startswith("address denied")
                       for c in s.values())

        st.wait_for(both_denied, 10.0, msg="CDNs down with 'address denied'")
        self.assertIn("address denied", d.stderr())
        status, _, _ = d.get("/vod/asset1/master.m3u8", PROBE_HEADERS)
        self.assertEqual(status, 502)
        self.assertEqual(self.net["alpha"].hits("master.m3u8"), 0)
        probes_after = self.net["alpha"].hits("/probe.bin") + self.net["beta"].hits("/probe.bin")
        self.assertEqual(probes_after, probes_before, "a denied probe reached the CDN")

        # allow_targets lets the same names through: the CDNs come up.
        d.write_config(self.config(allow=True))
        d.reload()

        def both_up():
            s = self.cdn_state(d)
            return all(c["up"] and c["last_error"] is None for c in s.values())

        st.wait_for(both_up, 10.0, msg="CDNs up with allow_targets")
        self.assertGreater(self.net["alpha"].hits("/probe.bin"), 0)


def _get(url):
    """GET url directly (whatever *_proxy says); returns the status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return r.status


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(host, handler):
    srv = _Server((host, 0), handler)
    srv.hits = 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class RedirectToCanaryTest(st.SteerdTestCase):
    """A probe target that answers 302 to an internal "canary" (127.0.0.9, allowed): redirects
    are never followed, so the canary sees no request and the CDN goes down with "http 302"."""

    def test_probe_redirect_never_reaches_canary(self):
        class Canary(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.server.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        canary = serve("127.0.0.9", Canary)
        self.addCleanup(canary.server_close)
        self.addCleanup(canary.shutdown)
        target = "http://127.0.0.9:%d/canary" % canary.server_address[1]

        class Redirector(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.server.hits += 1
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        redirector = serve(st.LOOPBACK, Redirector)
        self.addCleanup(redirector.server_close)
        self.addCleanup(redirector.shutdown)
        base = "http://%s:%d" % (st.LOOPBACK, redirector.server_address[1])
        cdns = [st.cdn_entry("alpha", base_url=base, probe_url=base + "/probe.bin",
                             interval_ms=200, timeout_ms=400),
                st.cdn_entry("beta", base_url="https://beta.example", probe=False)]
        d = self.watch_local(st.Steerd(st.default_config(cdns), name="ssrf-canary"))

        def alpha_down():
            status, body = d.admin_json("/state")
            a = [c for c in body["cdns"] if c["id"] == "alpha"][0]
            return not a["up"] and a["last_status"] == 302 and redirector.hits >= 3

        st.wait_for(alpha_down, 10.0, msg="alpha down on 302 after a few probes")
        self.assertEqual(canary.hits, 0, "a redirect was followed")
        # The canary does count: one direct request is one hit.
        self.assertEqual(_get(target), 200)
        self.assertEqual(canary.hits, 1)


if __name__ == "__main__":
    st.main()
