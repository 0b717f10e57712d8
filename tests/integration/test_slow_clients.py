#!/usr/bin/env python3
"""Slow bodies and slow readers (RELIABILITY T10 variants, short form), next to legitimate
traffic (segment 302s, beacon POSTs, a media playlist), against steerd with
http.body_timeout_ms 3000, http.write_timeout_ms 2000 and http.keepalive_timeout_ms 3000:

- slowhttptest -B (slow body, "R-U-Dead-Yet") on POST /beacon: 200 connections announcing an
  8 KiB body and sending a few bytes a second. Each is answered 408 and closed by the body
  deadline (a drip does not extend it): steerd_requests_rejected_total{reason="body_timeout"}
  counts them and slowhttptest runs out of open connections soon after the last one opened.
- slowhttptest -X (slow read) on a ~300 KiB media playlist: 200 connections with a tiny receive
  window, each pipelining 3 requests and reading 32 bytes a second. steerd cannot write its
  answers and closes each connection at the write timeout.
- slowhttptest -X on a segment path (small 302 answers that fit in the socket buffers): the
  connections are closed by the keep-alive idle timeout.

Pass, for each: slowhttptest never reports the service unavailable and ends with no open
connection well before its 20 s; every legitimate request is answered correctly; steerd's open
descriptors stay below the attack's connections plus a margin and are back to the baseline
afterwards.

Skipped when slowhttptest is not installed (tools/test installs it)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402


def stop_cleanly(d):
    """A graceful stop must exit 0 (under ASan: LeakSanitizer finds nothing at exit)."""
    rc = d.stop(timeout=10.0)
    logs = d.stderr()
    d.cleanup()
    if rc != 0:
        raise AssertionError("%s exited with %s:\n%s" % (d.name, rc, logs))

BODY_TIMEOUT = 3.0
WRITE_TIMEOUT = 2.0
IDLE_TIMEOUT = 3.0
CONNS = 200
RATE = 100
LENGTH = 20
SLOW_READ_LENGTH = 12
BIG = "/vod/big/media.m3u8"
SMALL = "/vod/small/media.m3u8"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def playlist(n):
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i in range(n):
        lines.append("#EXTINF:4.000,")
        lines.append("segment_%06d.ts" % i)
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@unittest.skipUnless(shutil.which("slowhttptest"), "slowhttptest is not installed")
class SlowClientsTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = cls.watch(st.Nginx("origin", role="origin").start())
        cls.origin.put(BIG, playlist(8000))
        cls.origin.put(SMALL, playlist(10))
        cdns = [{"id": "alpha", "base_url": "http://127.0.0.1:9/a", "probe": None},
                {"id": "beta", "base_url": "http://127.0.0.1:9/b", "probe": None}]
        cfg = st.default_config(
            cdns, origin={"base_url": cls.origin.base_url},
            beacon={"rate_per_s": 100000, "burst": 100000},
            http={"body_timeout_ms": int(BODY_TIMEOUT * 1000),
                  "write_timeout_ms": int(WRITE_TIMEOUT * 1000),
                  "keepalive_timeout_ms": int(IDLE_TIMEOUT * 1000)})
        cls.d = cls.watch(st.Steerd(cfg, name="slow-clients", wait_ready=True))
        cls.bases = [c["base_url"] for c in cdns]
        status, _, body = cls.d.get(BIG)  # fetched and cached once before the attacks
        assert status == 200 and len(body) > 250000, (status, len(body))

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.d)
        cls.origin.cleanup()

    def setUp(self):
        d = self.d
        self.pid = d.proc.pid
        self.fd_base = open_fds(self.pid)
        self.stop = threading.Event()
        self.legit = {"ok": 0, "bad": []}
        self.fd_max = [self.fd_base]
        lock = threading.Lock()

        def check(kind, status, h, body):
            if kind == "seg":
                return status == 302 and any(h.get("location", "").startswith(b + "/")
                                             for b in self.bases)
            if kind == "beacon":
                return status == 204
            return status == 200 and body.startswith(b"#EXTM3U") and b"ENDLIST" in body

        def player(n):
            i = 0
            while not self.stop.is_set():
                i += 1
                kind = ("seg", "beacon", "playlist")[i % 3]
                try:
                    if kind == "seg":
                        r = st.http_request(d.port, "GET", "/vod/p%d/seg_%05d.m4s" % (n, i))
                    elif kind == "beacon":
                        r = st.http_request(d.port, "POST", "/beacon",
                                            {"Content-Type": "application/cmcd"},
                                            b'sid="p%d",mtp=5000\n' % n)
                    else:
                        r = st.http_request(d.port, "GET", SMALL)
                    err = None if check(kind, *r) else "%s %d %r" % (kind, r[0], r[2][:80])
                except OSError as e:
                    err = "%s %r" % (kind, e)
                with lock:
                    if err is None:
                        self.legit["ok"] += 1
                    else:
                        self.legit["bad"].append(err)
                self.stop.wait(0.02)

        self.fd_series = []  # (monotonic time, open descriptors)

        def sampler():
            while not self.stop.is_set():
                try:
                    n = open_fds(self.pid)
                    self.fd_max[0] = max(self.fd_max[0], n)
                    self.fd_series.append((time.monotonic(), n))
                except OSError:
                    pass
                self.stop.wait(0.1)

        self.threads = [threading.Thread(target=player, args=(n,), daemon=True) for n in (1, 2)]
        self.threads.append(threading.Thread(target=sampler, daemon=True))
        for t in self.threads:
            t.start()

    def tearDown(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        super().tearDown()

    def attack(self, args, path, deadline_s, slow_read=False):
        """Runs slowhttptest. A slow reader never sees steerd's close (the FIN waits behind the
        data it does not read), so for slow_read the closes are checked on steerd's side: its
        descriptors must be back near the baseline once the last connection has had its
        deadline, while slowhttptest still holds every connection open."""
        length = SLOW_READ_LENGTH if slow_read else LENGTH
        t0 = time.monotonic()
        p = subprocess.run(
            ["slowhttptest"] + args + ["-c", str(CONNS), "-r", str(RATE), "-l", str(length),
                                       "-p", "3", "-u", "http://127.0.0.1:%d%s" % (self.d.port,
                                                                                   path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=length + 30, start_new_session=True,
            preexec_fn=st._die_with_parent(signal.SIGKILL))
        elapsed = time.monotonic() - t0
        out = ANSI.sub("", p.stdout.decode("utf-8", "replace"))
        self.assertEqual(p.returncode, 0, out[-3000:])
        avail = re.findall(r"service available:\s*(\S+)", out)
        self.assertTrue(avail, "no status in slowhttptest's output:\n" + out[-3000:])
        self.assertNotIn("NO", avail, out[-3000:])
        ended = re.search(r"Test ended on (\d+)(?:st|nd|rd|th) second", out)
        status = re.search(r"Exit status:\s*(.*)", out)
        sys.stderr.write("\nslowhttptest %s %s: %s after %s s (%.1f s wall), legit ok %d, "
                         "fds %d -> max %d\n"
                         % (" ".join(args[:1]), path, status.group(1).strip() if status else "?",
                            ended.group(1) if ended else "?", elapsed, self.legit["ok"],
                            self.fd_base, self.fd_max[0]))
        self.assertIsNotNone(status, out[-2000:])
        # the last connection opens after CONNS / RATE s and is closed by the deadline
        closed_by = CONNS / RATE + deadline_s + 3
        if slow_read:
            late = [n for t, n in self.fd_series if t0 + closed_by <= t <= t0 + length - 1]
            sys.stderr.write("steerd descriptors from %.0f s to %d s: %r\n"
                             % (closed_by, length - 1, late))
            self.assertTrue(late, self.fd_series)
            # the slow readers are held open on slowhttptest's side all along
            self.assertIn("Hit test time limit", status.group(1), out[-2000:])
            self.assertGreaterEqual(self.fd_max[0], self.fd_base + CONNS * 0.5)
            self.assertLessEqual(max(late), self.fd_base + 10, self.fd_series)
        else:
            self.assertIn("No open connections left", status.group(1), out[-2000:])
            self.assertLessEqual(int(ended.group(1)), closed_by, out[-2000:])
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        self.assertEqual(self.legit["bad"], [], "legitimate requests failed")
        self.assertGreater(self.legit["ok"], 30)
        self.assertLessEqual(self.fd_max[0], self.fd_base + CONNS + 20)
        st.wait_for(lambda: open_fds(self.pid) <= self.fd_base + 2, 5.0,
                    msg="descriptors back to baseline")
        self.assertTrue(self.d.alive())

    def test_slow_body_on_beacons(self):
        before = self.d.metric("steerd_requests_rejected_total", 0.0, reason="body_timeout")
        self.attack(["-B", "-i", "1", "-s", "8192", "-t", "POST", "-f", "application/cmcd"],
                    "/beacon", BODY_TIMEOUT)
        after = self.d.metric("steerd_requests_rejected_total", 0.0, reason="body_timeout")
        self.assertGreaterEqual(after - before, CONNS * 0.9)

    def test_slow_read_of_a_playlist(self):
        self.attack(["-X", "-w", "1", "-y", "2", "-n", "1", "-z", "32", "-k", "3"], BIG,
                    WRITE_TIMEOUT, slow_read=True)

    def test_slow_read_of_302s(self):
        self.attack(["-X", "-w", "1", "-y", "2", "-n", "1", "-z", "32", "-k", "3"],
                    "/vod/x/seg_00001.m4s", IDLE_TIMEOUT, slow_read=True)


if __name__ == "__main__":
    st.main()
