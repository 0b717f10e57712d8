#!/usr/bin/env python3
"""Configuration reload: SIGHUP and POST /reload with good files change answers and the
generation; every kind of bad file leaves the old config serving byte-identical answers, bumps
the failure counter once, keeps the process alive, and is rejected by -t as well."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

PROBE_PATH = "/vod/asset1/seg_001.m4s?token=abc"
PROBE_HEADERS = {"CMCD-Session": 'sid="reload-probe"', "X-Forwarded-For": st.IP_NOWHERE}


def only(cdn):
    return {"default": {"cdns": {cdn: 1}}}


class ReloadTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cls.cdns = [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])]
        cls.d = cls.watch(st.Steerd(cls.config(only("alpha")), name="reload", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    @classmethod
    def config(cls, policy, **kw):
        return st.default_config([dict(c) for c in cls.cdns], policy=policy, **kw)

    # -- helpers --

    def probe(self):
        """The fixed probe request: (status, Location, X-Steerd-CDN, raw status line)."""
        status, h, body = self.d.get(PROBE_PATH, PROBE_HEADERS)
        return status, h.get("location"), h.get("x-steerd-cdn")

    def counters(self):
        m = self.d.metrics()
        return (m.get(st.metric_key("steerd_config_generation")),
                m.get(st.metric_key("steerd_config_reload_total", result="ok"), 0.0),
                m.get(st.metric_key("steerd_config_reload_total", result="failed"), 0.0))

    def sighup_and_wait(self, which):
        """SIGHUP, then waits until the ok (which=1) or failed (which=2) counter moves."""
        before = self.counters()
        self.d.reload()
        st.wait_for(lambda: self.counters()[which] > before[which], 5.0,
                    msg="reload %s counter to move" % ("ok" if which == 1 else "failed"))
        return before, self.counters()

    def check(self, path):
        return subprocess.run([st.steerd_bin(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)

    # -- good reloads --

    def test_reload_1_sighup_good_config_changes_answers(self):
        self.d.write_config(self.config(only("alpha")))
        self.sighup_and_wait(1)
        self.assertEqual(self.probe()[2], "alpha")

        gen0, ok0, failed0 = self.counters()
        self.d.write_config(self.config(only("beta")))
        before, after = self.sighup_and_wait(1)
        self.assertEqual(after[0], gen0 + 1, "generation not bumped by exactly one")
        self.assertEqual(after[1], ok0 + 1)
        self.assertEqual(after[2], failed0)
        status, loc, cdn = self.probe()
        self.assertEqual((status, cdn), (302, "beta"))
        self.assertEqual(loc, self.net["beta"].base_url + PROBE_PATH)
        status, body = self.d.admin_json("/state")
        self.assertEqual(body["generation"], gen0 + 1)

        self.d.write_config(self.config(only("alpha")))
        self.sighup_and_wait(1)
        self.assertEqual(self.probe()[2], "alpha")

    # -- bad reloads --

    def bad_files(self):
        good = self.config(only("alpha"))
        good_text = json.dumps(good, indent=2)
        files = {}
        files["syntax error"] = good_text.replace('"workers": 2,', '"workers": 2,,')
        files["truncated"] = good_text[: len(good_text) * 2 // 3]
        files["empty"] = ""
        files["duplicate key"] = good_text.replace('"workers": 2,', '"workers": 2,\n  "workers": 1,')
        c = self.config({"default": {"cdns": {"alpha": 1, "gamma": 1}}})
        files["unknown CDN reference"] = c
        files["negative weight"] = self.config({"default": {"cdns": {"alpha": -1}}})
        c = self.config(only("alpha"))
        c["cdns"][1]["base_url"] = "gopher://127.0.0.1:70"
        files["gopher base URL"] = c
        c = self.config(only("alpha"))
        c["cdns"] += [{"id": "c3", "base_url": "http://127.0.0.1:9"},
                      {"id": "c4", "base_url": "file:///etc/passwd"},
                      {"id": "c5", "base_url": "http://127.0.0.1:11"}]
        files["1 bad CDN among 5"] = c
        c = self.config(only("alpha"))
        c["geoip"]["country_db"] = os.path.join(self.d.dir, "missing.mmdb")
        files["missing GeoIP DB"] = c
        c = self.config(only("alpha"))
        c["geoip"]["asn_db"] = st.GEOIP_CORRUPT_DB
        files["corrupt GeoIP DB"] = c
        files["20 MB file"] = good_text[:-1] + " " * (20 * 1024 * 1024) + "}"
        return files

    def test_reload_2_bad_configs_keep_old_config(self):
        self.d.write_config(self.config(only("alpha")))
        self.sighup_and_wait(1)
        reference = self.probe()
        self.assertEqual(reference[0], 302)

        for kind, content in self.bad_files().items():
            with self.subTest(kind=kind):
                self.d.write_config(content)
                gen0, ok0, failed0 = self.counters()
                log_at = self.d.stderr_size()
                before, after = self.sighup_and_wait(2)
                self.assertTrue(self.d.alive(), "steerd died on a bad reload (%s)" % kind)
                self.assertEqual(after[0], gen0, "generation changed")
                self.assertEqual(after[1], ok0, "reload counted as ok")
                self.assertEqual(after[2], failed0 + 1, "failed counter not +1")
                self.assertEqual(self.probe(), reference, "answer changed after a bad reload")
                # The error is logged, and -t rejects the same file with the same problems.
                log = self.d.stderr_since(log_at)
                self.assertTrue(log.strip(), "no log line for a failed reload")
                res = self.check(self.d.config_path)
                self.assertEqual(res.returncode, 1, "-t accepted the %s file" % kind)
                # Problem lines only (a closing "steerd: configuration FILE is invalid"
                # summary is not a problem of its own).
                problems = [ln.strip() for ln in res.stderr.decode().splitlines()
                            if ln.strip() and not ln.startswith("steerd: configuration ")]
                self.assertTrue(problems)
                for p in problems:
                    self.assertIn(p, log, "-t reports a problem the reload did not log")

        self.d.write_config(self.config(only("alpha")))
        self.sighup_and_wait(1)
        self.assertEqual(self.probe(), reference)

    # -- POST /reload --

    def test_reload_3_admin_post(self):
        self.d.write_config(self.config(only("beta")))
        gen0, ok0, failed0 = self.counters()
        status, body = self.d.admin_json("/reload", method="POST")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"generation": gen0 + 1})
        self.assertEqual(self.probe()[2], "beta")

        reference = self.probe()
        self.d.write_config(self.config({"default": {"cdns": {"gamma": 1}}}))
        status, body = self.d.admin_json("/reload", method="POST")
        self.assertEqual(status, 409)
        self.assertIsInstance(body.get("errors"), list)
        self.assertTrue(body["errors"])
        self.assertTrue(any("gamma" in e for e in body["errors"]), body)
        gen1, ok1, failed1 = self.counters()
        self.assertEqual(gen1, gen0 + 1)
        self.assertEqual(failed1, failed0 + 1)
        self.assertEqual(self.probe(), reference)

        status = self.d.admin("/reload", method="GET")[0]
        self.assertIn(status, (404, 405))

        self.d.write_config(self.config(only("alpha")))
        status, body = self.d.admin_json("/reload", method="POST")
        self.assertEqual(status, 200)
        self.assertEqual(self.probe()[2], "alpha")

    def test_reload_4_process_still_serves_and_stops_cleanly(self):
        self.assertTrue(self.d.alive())
        self.assertEqual(self.probe()[0], 302)
        self.assertEqual(self.d.admin("/healthz")[0], 200)
        self.assertEqual(self.d.stop(timeout=5.0), 0)


if __name__ == "__main__":
    st.main()
