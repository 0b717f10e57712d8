#!/usr/bin/env python3
"""GeoIP database swap under load (RELIABILITY T19): two country databases built in the test
map one address to SE, then to GB. While a client keeps asking, the second file is renamed over
the first and steerd reloads: answers follow the new database at once, with no failed request.
A corrupt file and a missing file are then refused on reload: the old database keeps answering
and the failure counter moves. (The operator contract is rename-then-reload; the live file is
never rewritten in place.)"""

import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

MAKE_MMDB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                         "make_mmdb.pl")
CLIENT = "198.51.100.7"
PATH = "/vod/swap/seg_001.m4s"


def run_check(path):
    return subprocess.run([st.steerd_bin(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def make_db(path, country):
    subprocess.run(["perl", MAKE_MMDB, path, "198.51.100.0/24=%s" % country,
                    "2001:db8::/32=%s" % country], check=True, timeout=60)


class Load(threading.Thread):
    """Asks steerd for PATH as CLIENT until stopped; records every answer's CDN or error."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop_flag = threading.Event()
        self.answers = []  # (monotonic time, cdn)
        self.errors = []

    def run(self):
        deadline = time.monotonic() + 60
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            try:
                s, h, _ = self.d.get(PATH, {"X-Forwarded-For": CLIENT})
                if s != 302:
                    self.errors.append("status %d" % s)
                else:
                    self.answers.append((time.monotonic(), h.get("x-steerd-cdn")))
            except OSError as e:
                self.errors.append(repr(e))
            time.sleep(0.005)

    def stop(self):
        self.stop_flag.set()
        self.join(10)


class GeoipSwapTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("perl") is None or subprocess.run(
                ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            raise unittest.SkipTest("libmaxmind-db-writer-perl is not installed")
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())
        cls.tmp = st.make_tmpdir("steerd-geoswap-")
        cls.live = os.path.join(cls.tmp, "country.mmdb")
        cls.se = os.path.join(cls.tmp, "se.mmdb")
        cls.gb = os.path.join(cls.tmp, "gb.mmdb")
        make_db(cls.se, "SE")
        make_db(cls.gb, "GB")
        shutil.copyfile(cls.se, cls.live)
        cdns = [st.cdn_entry("alpha", cls.net["alpha"]), st.cdn_entry("beta", cls.net["beta"])]
        cfg = st.default_config(cdns, geoip={"country_db": cls.live, "asn_db": None})
        cls.d = cls.watch(st.Steerd(cfg, name="geoswap", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def counter(self, result):
        return self.d.metric("steerd_config_reload_total", 0.0, result=result)

    def reload_and_wait(self, result):
        before = self.counter(result)
        self.d.reload()
        st.wait_for(lambda: self.counter(result) > before, 5.0,
                    msg="reload %s counter to move" % result)
        return time.monotonic()

    def put_live(self, src):
        """rename(2) a copy of src over the live path, as an operator's update does."""
        tmp = self.live + ".new"
        shutil.copyfile(src, tmp)
        os.rename(tmp, self.live)

    def test_swap_corrupt_and_missing_under_load(self):
        load = Load(self.d)
        load.start()
        try:
            st.wait_for(lambda: len(load.answers) >= 20, 10.0, msg="first answers")
            self.assertEqual({c for _, c in load.answers}, {"alpha"})  # SE: nordics -> alpha

            self.put_live(self.gb)
            t_reload = self.reload_and_wait("ok")
            st.wait_for(lambda: load.answers[-1][1] == "beta", 1.0,
                        msg="answers to follow the new database")  # GB: uk -> beta
            time.sleep(0.3)
            after = [c for t, c in load.answers if t > t_reload + 0.05]
            self.assertTrue(after)
            self.assertEqual(set(after), {"beta"})
            self.assertEqual(run_check(self.d.config_path).returncode, 0)

            # A corrupt database is refused: the old one keeps answering.
            failed = self.counter("failed")
            shutil.copyfile(st.GEOIP_CORRUPT_DB, self.live + ".new")
            os.rename(self.live + ".new", self.live)
            t_bad = self.reload_and_wait("failed")
            self.assertEqual(self.counter("failed"), failed + 1)
            check = run_check(self.d.config_path)
            self.assertNotEqual(check.returncode, 0)
            self.assertIn("country.mmdb", check.stderr.decode())

            # A missing one too.
            os.unlink(self.live)
            t_missing = self.reload_and_wait("failed")
            time.sleep(0.3)
            later = [c for t, c in load.answers if t > t_bad]
            self.assertTrue(later)
            self.assertEqual(set(later), {"beta"})
            self.assertTrue(any(t > t_missing for t, _ in load.answers))
            self.assertIn("country.mmdb", self.d.stderr())

            # And a good file again is taken.
            self.put_live(self.se)
            self.reload_and_wait("ok")
            st.wait_for(lambda: load.answers[-1][1] == "alpha", 1.0, msg="back to SE")
        finally:
            load.stop()
        self.assertEqual(load.errors, [])
        self.assertTrue(self.d.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
