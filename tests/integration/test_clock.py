#!/usr/bin/env python3
"""Signed steering state across replicas whose clocks differ, and key rotation (RELIABILITY T21,
short form). Replicas share one steering key file; some run under Debian's libfaketime
(FAKETIME="+N", FAKETIME_DONT_FAKE_MONOTONIC=1, so only the wall clock moves and libevent's
timers are untouched). steering.state_ttl_s 60, steering.clock_skew_s 30.

- A state issued by a replica on the real clock is accepted by one 20 s ahead and by one
  85 s ahead (expired 25 s ago by its clock: within the skew), and answered 400 by one 100 s
  ahead (past expiry + skew).
- A state issued by a replica 20 s ahead (issued "in the future") is accepted on the real clock;
  one issued 45 s ahead is answered 400 (not yet valid beyond the skew).
- Key rotation while a bounded poll loop follows RELOAD-URIs across two replicas: add kid 2
  and reload both, make it current and reload both: zero failed polls, new states carry kid 2,
  a state signed with kid 1 before the rotation is still accepted.
- A key file of mode 0644 is refused on reload (reload counted as failed) and the old keys keep
  working.

Skipped when libfaketime is not installed (tools/test installs the faketime package)."""

import base64
import glob
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402


def stop_cleanly(d):
    """A graceful stop must exit 0 (under ASan: LeakSanitizer finds nothing at exit)."""
    rc = d.stop(timeout=10.0)
    logs = d.stderr()
    d.cleanup()
    if rc != 0:
        raise AssertionError("%s exited with %s:\n%s" % (d.name, rc, logs))

PUBLIC = "http://steerd.test:8080"
KEY1 = "00112233445566778899aabbccddeeff"
KEY2 = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"
KEY3 = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
STATE_TTL = 60
SKEW = 30


def libfaketime():
    """The path of libfaketime.so.1, or None."""
    paths = []
    try:
        out = subprocess.run(["dpkg", "-L", "libfaketime"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
        paths = [p for p in out.split() if p.endswith("/libfaketime.so.1")]
    except (OSError, subprocess.TimeoutExpired):
        pass
    paths += glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    for p in paths:
        if os.path.exists(p):
            return p
    return None


LIBFAKETIME = libfaketime()


def write_keys(path, keys, current, mode=0o600):
    """Atomically replaces the key file (tmp with its final mode, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"current_kid": current,
                   "keys": [{"kid": k, "key_hex": v} for k, v in keys]}, f)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def config(key_file):
    cdns = [{"id": "alpha", "base_url": "http://127.0.0.1:9/a", "probe": None},
            {"id": "beta", "base_url": "http://127.0.0.1:9/b", "probe": None}]
    return st.default_config(
        cdns, manifest={"public_base_url": PUBLIC},
        steering={"key_file": key_file, "state_ttl_s": STATE_TTL, "clock_skew_s": SKEW,
                  "ttl_s": 5})


def faked_env(offset_s):
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "%+d" % offset_s,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    # an ASan build wants its runtime first in the library list; libfaketime is preloaded
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    return env


def reload_uri_path(body):
    m = json.loads(body)
    uri = m["RELOAD-URI"]
    assert uri.startswith(PUBLIC + "/"), uri
    return uri[len(PUBLIC):]


def state_of(path):
    """(kid, iat) of the state token in a RELOAD-URI path."""
    tok = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["st"][0]
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    return raw[1], int.from_bytes(raw[4:8], "big")


@unittest.skipUnless(LIBFAKETIME, "libfaketime is not installed")
class ClockSkewTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = st.make_tmpdir("steerd-it-clock-")
        cls.keys = os.path.join(cls.dir, "keys.json")
        write_keys(cls.keys, [(1, KEY1)], 1)
        cls.real = cls.watch(st.Steerd(config(cls.keys), name="clock-real", wait_ready=True))
        cls.faked = {}
        for off in (20, 45, 85, 100):
            cls.faked[off] = cls.watch(st.Steerd(config(cls.keys), name="clock+%d" % off,
                                                 env=faked_env(off), wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.real)
        for d in cls.faked.values():
            stop_cleanly(d)
        st.remove_tmpdir(cls.dir)

    def poll(self, d, path, expect=200):
        status, h, body = d.get(path)
        self.assertEqual(status, expect, "%s %s -> %d %r" % (d.name, path, status, body[:200]))
        return body

    def test_faked_clock_is_in_effect(self):
        for off, d in self.faked.items():
            body = self.poll(d, "/steer/hls?steerd_s=00000000000000c1")
            _, iat = state_of(reload_uri_path(body))
            self.assertAlmostEqual(iat, time.time() + off, delta=5, msg="%s iat" % d.name)

    def test_state_from_the_real_clock_across_skewed_replicas(self):
        path = reload_uri_path(self.poll(self.real, "/steer/hls?steerd_s=00000000000000c2"))
        self.poll(self.faked[20], path)
        self.poll(self.faked[85], path)  # expired by 25 s on its clock, within the skew
        self.poll(self.faked[100], path, expect=400)  # expired beyond expiry + skew
        self.poll(self.faked[100], "/steer/hls?steerd_s=00000000000000c2")  # a new session ok

    def test_state_from_a_clock_ahead(self):
        ahead = reload_uri_path(self.poll(self.faked[20], "/steer/hls?steerd_s=00000000000000c3"))
        self.poll(self.real, ahead)  # issued 20 s "in the future": within the skew
        far = reload_uri_path(self.poll(self.faked[45], "/steer/dash?steerd_s=00000000000000c4"))
        self.poll(self.real, far, expect=400)  # 45 s ahead: not yet valid


class KeyRotationTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = st.make_tmpdir("steerd-it-rotate-")
        cls.keys = os.path.join(cls.dir, "keys.json")
        write_keys(cls.keys, [(1, KEY1)], 1)
        cls.a = cls.watch(st.Steerd(config(cls.keys), name="rotate-a", wait_ready=True))
        cls.b = cls.watch(st.Steerd(config(cls.keys), name="rotate-b", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.a)
        stop_cleanly(cls.b)
        st.remove_tmpdir(cls.dir)

    def reload(self, replicas, result="ok"):
        before = [d.metric("steerd_config_reload_total", 0.0, result=result) for d in replicas]
        for d in replicas:
            d.reload()
        for d, b in zip(replicas, before):
            st.wait_for(lambda: d.metric("steerd_config_reload_total", 0.0, result=result) > b,
                        10.0, msg="%s reload %s" % (d.name, result))

    def test_rotation_under_polling(self):
        stop = threading.Event()
        res = {"ok": 0, "bad": [], "kids": set()}

        def poller():
            # follows the RELOAD-URI chain, alternating replicas, bounded in count and time
            path = "/steer/hls?steerd_s=00000000000000d1"
            deadline = time.monotonic() + 60.0
            i = 0
            while not stop.is_set() and i < 20000 and time.monotonic() < deadline:
                d = (self.a, self.b)[i % 2]
                i += 1
                try:
                    status, _, body = d.get(path)
                except OSError as e:
                    res["bad"].append(repr(e))
                    continue
                if status != 200:
                    res["bad"].append("%s %d %r" % (d.name, status, body[:100]))
                    path = "/steer/hls?steerd_s=00000000000000d1"
                    continue
                res["ok"] += 1
                path = reload_uri_path(body)
                res["kids"].add(state_of(path)[0])
                stop.wait(0.01)

        old = reload_uri_path(self.a.get("/steer/hls?steerd_s=00000000000000d2")[2])
        self.assertEqual(state_of(old)[0], 1)
        t = threading.Thread(target=poller, daemon=True)
        t.start()
        try:
            time.sleep(0.5)
            write_keys(self.keys, [(1, KEY1), (2, KEY2)], 1)  # add the new key everywhere
            self.reload([self.a, self.b])
            time.sleep(0.5)
            write_keys(self.keys, [(1, KEY1), (2, KEY2)], 2)  # then make it current
            self.reload([self.a, self.b])
            time.sleep(0.5)
            # a key file readable by others is refused; the old keys stay
            write_keys(self.keys, [(2, KEY2), (3, KEY3)], 3, mode=0o644)
            log0 = self.a.stderr_size()
            self.reload([self.a], result="failed")
            self.assertIn("must not be readable by group or others", self.a.stderr_since(log0))
            time.sleep(0.5)
        finally:
            stop.set()
            t.join(timeout=30)
        self.assertEqual(res["bad"], [], "failed polls during rotation")
        self.assertGreater(res["ok"], 20)
        self.assertEqual(res["kids"], {1, 2})
        new = reload_uri_path(self.a.get("/steer/hls?steerd_s=00000000000000d3")[2])
        self.assertEqual(state_of(new)[0], 2)  # kid 3 never became current
        for d in (self.a, self.b):
            status, _, body = d.get(old)  # signed with kid 1 before the rotation
            self.assertEqual(status, 200, body[:200])
            status, _, body = d.get(new)
            self.assertEqual(status, 200, body[:200])


if __name__ == "__main__":
    st.main()
