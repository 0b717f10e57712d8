#!/usr/bin/env python3
"""Command line: -V, -h, -t on good and bad configurations, and a bad config at start-up."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402


def run(args, timeout=10.0):
    p = subprocess.run([st.steerd_bin()] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def good_config(listen_port=0):
    """A valid configuration; the CDNs need not run for -t."""
    cdns = [
        {"id": "alpha", "base_url": "http://127.0.0.1:9001",
         "probe": {"url": "http://127.0.0.1:9001/probe.bin", "interval_ms": 500, "timeout_ms": 400}},
        {"id": "beta", "base_url": "http://127.0.0.1:9002/edge",
         "probe": {"url": "http://127.0.0.1:9002/probe.bin", "interval_ms": 500, "timeout_ms": 400}},
    ]
    c = st.default_config(cdns)
    c["listen"] = ["127.0.0.1:%d" % listen_port]
    return c


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = st.make_tmpdir("steerd-it-cli-")

    @classmethod
    def tearDownClass(cls):
        st.remove_tmpdir(cls.dir)

    def write(self, name, content):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content, indent=2))
        return p

    def check_bad(self, name, content, *needles, line_re=None):
        """-t on a bad file: exit 1, nothing on stdout about being ok, every needle on stderr."""
        p = self.write(name, content)
        code, out, err = run(["-t", "-c", p])
        self.assertEqual(code, 1, "steerd -t on %s: exit %d\nstdout: %s\nstderr: %s"
                         % (name, code, out, err))
        self.assertNotIn("is ok", out)
        self.assertTrue(err.strip(), "no problem reported on stderr")
        for n in needles:
            self.assertIn(n, err, "stderr lacks %r:\n%s" % (n, err))
        if line_re:
            self.assertTrue(any(re.search(line_re, ln) for ln in err.splitlines()),
                            "no stderr line matches %r:\n%s" % (line_re, err))
        return err

    # -- informational options --

    def test_cli_version(self):
        code, out, err = run(["-V"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out.strip(), r"^steerd \d+\.\d+\.\d+$")

    def test_cli_help(self):
        code, out, err = run(["-h"])
        self.assertEqual(code, 0, err)
        text = out + err
        self.assertIn("-c", text)
        self.assertIn("-t", text)
        self.assertRegex(text.lower(), r"usage")

    def test_cli_unknown_option_is_usage_error(self):
        code, out, err = run(["--no-such-option"])
        self.assertEqual(code, 1)
        self.assertTrue(err.strip(), "no message for an unknown option")

    def test_cli_missing_config_file(self):
        code, out, err = run(["-t", "-c", os.path.join(self.dir, "does-not-exist.json")])
        self.assertEqual(code, 1)
        self.assertIn("does-not-exist.json", err)

    # -- -t on good files --

    def test_cli_check_good_config(self):
        p = self.write("good.json", good_config())
        code, out, err = run(["-t", "-c", p])
        self.assertEqual(code, 0, "stderr: " + err)
        self.assertIn("configuration %s is ok" % p, out)

    def test_cli_check_binds_nothing(self):
        # -t must succeed even when the configured port is taken: it binds nothing.
        with socket.socket() as s:
            s.bind((st.LOOPBACK, 0))
            s.listen(1)
            port = s.getsockname()[1]
            p = self.write("busy.json", good_config(port))
            code, out, err = run(["-t", "-c", p])
        self.assertEqual(code, 0, "steerd -t tried to use the listen port? stderr: " + err)

    # -- -t on bad files --

    def test_cli_check_syntax_error_has_file_line_col(self):
        text = '{\n  "listen": ["127.0.0.1:0"],\n  "workers": 1,,\n  "cdns": []\n}\n'
        p = os.path.join(self.dir, "syntax.json")
        self.check_bad("syntax.json", text, line_re=r"^.*%s:3:\d+: " % re.escape(p))

    def test_cli_check_truncated(self):
        text = json.dumps(good_config(), indent=2)
        self.check_bad("truncated.json", text[: len(text) // 2],
                       line_re=r"truncated\.json:\d+:\d+: ")

    def test_cli_check_empty_file(self):
        self.check_bad("empty.json", "", "empty.json")

    def test_cli_check_duplicate_key(self):
        text = json.dumps(good_config(), indent=2).replace('"workers": 2,', '"workers": 2,\n  "workers": 2,')
        self.assertEqual(text.count('"workers"'), 2)
        err = self.check_bad("dup.json", text, line_re=r"dup\.json:\d+:\d+: ")
        self.assertIn("workers", err)
        self.assertIn("duplicate", err.lower())

    def test_cli_check_unknown_top_level_key(self):
        c = good_config()
        c["listne"] = ["127.0.0.1:0"]
        err = self.check_bad("unknown-top.json", c, "listne")
        self.assertIn("unknown", err.lower())

    def test_cli_check_unknown_nested_key_names_json_path(self):
        c = good_config()
        c["cdns"][0]["probe"]["intervall_ms"] = 500
        self.check_bad("unknown-nested.json", c, "cdns[0].probe.intervall_ms")

    def test_cli_check_unknown_cdn_in_policy(self):
        c = good_config()
        c["policy"]["default"]["cdns"]["gamma"] = 1
        err = self.check_bad("unknown-cdn.json", c, "gamma")
        self.assertTrue(any("policy" in ln and "gamma" in ln for ln in err.splitlines()), err)

    def test_cli_check_unknown_cdn_in_failover(self):
        c = good_config()
        c["policy"]["regions"]["uk"]["failover"] = ["delta"]
        err = self.check_bad("unknown-failover.json", c, "delta")
        self.assertTrue(any("policy" in ln and "delta" in ln for ln in err.splitlines()), err)

    def test_cli_check_every_problem_reported(self):
        c = good_config()
        c["listne"] = 1
        c["policy"]["default"]["cdns"]["gamma"] = 1
        err = self.check_bad("two-problems.json", c, "listne", "gamma")
        self.assertGreaterEqual(len([ln for ln in err.splitlines() if ln.strip()]), 2)

    def test_cli_check_bad_base_url_scheme(self):
        c = good_config()
        c["cdns"][1]["base_url"] = "gopher://127.0.0.1:70"
        self.check_bad("gopher.json", c, "cdns[1].base_url")

    def test_cli_check_negative_weight(self):
        c = good_config()
        c["policy"]["default"]["cdns"]["alpha"] = -1
        self.check_bad("negative.json", c, "alpha")

    def test_cli_check_missing_geoip_file(self):
        c = good_config()
        missing = os.path.join(self.dir, "no-such-country.mmdb")
        c["geoip"]["country_db"] = missing
        self.check_bad("geo-missing.json", c, missing)

    def test_cli_check_corrupt_geoip_file(self):
        c = good_config()
        c["geoip"]["asn_db"] = st.GEOIP_CORRUPT_DB
        self.check_bad("geo-corrupt.json", c, "libmaxminddb-metadata-marker-only.mmdb")

    # -- a bad config at start-up --

    def test_cli_bad_config_at_start_exits_1_fast_and_never_listens(self):
        port = st.free_port()
        admin_port = st.free_port()
        c = good_config(port)
        c["admin"]["listen"] = "127.0.0.1:%d" % admin_port
        c["policy"]["default"]["cdns"]["gamma"] = 1  # semantic error
        p = self.write("bad-start.json", c)
        port_file = os.path.join(self.dir, "bad-start.ports")
        t0 = time.monotonic()
        proc = subprocess.Popen([st.steerd_bin(), "-c", p, "--port-file", port_file],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        opened = False
        try:
            while proc.poll() is None and time.monotonic() - t0 < 3.0:
                if st.port_accepts(port, 0.05) or st.port_accepts(admin_port, 0.05):
                    opened = True
                time.sleep(0.01)
            code = proc.poll()
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate(timeout=5)
        self.assertEqual(code, 1, "exit %r, stderr: %s" % (code, err.decode()))
        self.assertLessEqual(elapsed, 1.0)
        self.assertFalse(opened, "a listen port accepted connections with a bad config")
        self.assertFalse(os.path.exists(port_file), "port file written with a bad config")
        self.assertIn(b"gamma", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
