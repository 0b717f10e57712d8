#!/usr/bin/env python3
"""Memory bound with 100k distinct session ids (RELIABILITY T12, short form).

100k distinct CMCD session ids (UUIDs) reach steerd in two ways, each from its client
address from X-Forwarded-For (a trusted proxy): half in POST /beacon bodies of 250 CMCD lines
each; a quarter in HLS steering polls, each with its own steerd_s session, and a quarter in
segment requests (302), each from its own address so the beacon limiter sees 25k sources. Polls
and segment requests are pipelined on keep-alive connections and carry the sid in a
CMCD-Session header or in the CMCD query argument.

steerd keeps nothing per session (obs aggregates CDN x region cells; the per-worker limiter table
holds at most beacon.max_sources = 1024 addresses). Pass: every beacon answered 204 and every poll
200; VmHWM after 100k sessions <= VmHWM after a 2k warm-up + 16 MiB (more under ASan, whose
quarantine keeps freed memory); VmHWM growth from 10k to 100k sessions is not linear (at most
the same allowance); the /metrics answer has the same lines after 10k and after 100k sessions;
the limiter evicted at least 25k - 2 x 1024 sources."""

import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402


def stop_cleanly(d):
    """A graceful stop must exit 0 (under ASan: LeakSanitizer finds nothing at exit)."""
    rc = d.stop(timeout=10.0)
    logs = d.stderr()
    d.cleanup()
    if rc != 0:
        raise AssertionError("%s exited with %s:\n%s" % (d.name, rc, logs))

WORKERS = 2
MAX_SOURCES = 1024
LINES_PER_BODY = 250
PIPELINE = 200
SLACK_KIB = 16 * 1024
SLACK_ASAN_KIB = 128 * 1024  # ASan keeps freed memory in quarantine


def sanitized(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def source(i):
    """A distinct client address per session index (documentation and benchmarking ranges)."""
    return "198.%d.%d.%d" % (18 + (i >> 16) % 2, (i >> 8) & 255, i & 255)


class SessionsTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cdns = [{"id": "alpha", "base_url": "http://127.0.0.1:9/a", "probe": None},
                {"id": "beta", "base_url": "http://127.0.0.1:9/b", "probe": None}]
        cfg = st.default_config(
            cdns, workers=WORKERS,
            beacon={"rate_per_s": 1000000, "burst": 1000000, "max_sources": MAX_SOURCES})
        cls.d = cls.watch(st.Steerd(cfg, name="sessions", wait_ready=True))
        cls.next = 0  # session index

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.d)

    def exchange(self, sock, reqs):
        """Sends the requests pipelined on one connection; returns their responses."""
        sock.sendall(b"".join(reqs))
        buf = b""
        out = []
        deadline = time.monotonic() + 30.0
        while len(out) < len(reqs):
            self.assertLess(time.monotonic(), deadline, "answers did not come")
            chunk = sock.recv(1 << 20)
            self.assertTrue(chunk, "steerd closed after %d of %d answers" % (len(out), len(reqs)))
            buf += chunk
            rs, buf = st.parse_responses(buf)
            out += rs
        return out

    def sessions(self, n):
        """Sends n more sessions: half in beacon bodies, half in steering polls."""
        first = type(self).next
        type(self).next += n
        half = first + n // 2
        with socket.create_connection((st.LOOPBACK, self.d.port), timeout=10.0) as s:
            reqs = []
            for b0 in range(first, half, LINES_PER_BODY):
                body = b"".join(b'sid="%s",mtp=%d,br=3000\n' % (str(uuid.uuid4()).encode(),
                                                               1000 + i % 5000)
                                for i in range(b0, min(half, b0 + LINES_PER_BODY)))
                reqs.append(b"POST /beacon HTTP/1.1\r\nHost: s\r\nContent-Type: application/cmcd"
                            b"\r\nX-Forwarded-For: %s\r\nContent-Length: %d\r\n\r\n"
                            % (source(b0).encode(), len(body)) + body)
            for i in range(0, len(reqs), 16):
                for r in self.exchange(s, reqs[i:i + 16]):
                    self.assertEqual(r.status, 204, r)
            polls = []
            for i in range(half, first + n):
                sid = str(uuid.uuid4())
                path = "/steer/hls?steerd_s=%016x&" % i if i % 4 < 2 else "/vod/s/seg_1.m4s?"
                if i % 2:
                    target = path[:-1]
                    cmcd = b"CMCD-Session: sid=\"%s\"\r\n" % sid.encode()
                else:
                    target = path + "CMCD=sid%%3D%%22%s%%22" % sid
                    cmcd = b""
                polls.append(b"GET %s HTTP/1.1\r\nHost: s\r\nX-Forwarded-For: %s\r\n%s\r\n"
                             % (target.encode(), source(i).encode(), cmcd))
                if len(polls) == PIPELINE:
                    self.check_polls(self.exchange(s, polls))
                    polls = []
            self.check_polls(self.exchange(s, polls))

    def check_polls(self, responses):
        for r in responses:
            self.assertIn(r.status, (200, 302), r)
            if r.status == 302:
                self.assertIn(r.headers.get("x-steerd-cdn"), ("alpha", "beta"), r)
            else:
                self.assertTrue(r.body.startswith(b'{"VERSION":1'), r)

    def metrics_lines(self):
        st_, h, body = self.d.admin("/metrics")
        self.assertEqual(st_, 200)
        return [ln.rsplit(" ", 1)[0] for ln in body.decode().splitlines()]

    def test_100k_sessions_bounded(self):
        pid = self.d.proc.pid
        t0 = time.monotonic()
        self.sessions(2000)
        hwm_base = st.proc_status_kib(pid, "VmHWM")
        self.sessions(8000)
        time.sleep(0.2)  # the control thread drains the sample rings every 50 ms
        lines10 = self.metrics_lines()
        hwm10 = st.proc_status_kib(pid, "VmHWM")
        self.sessions(90000)
        time.sleep(0.2)
        lines100 = self.metrics_lines()
        hwm100 = st.proc_status_kib(pid, "VmHWM")
        m = self.d.metrics()
        evicted = m.get("steerd_beacon_limiter_evictions_total", 0.0)
        accepted = m.get(st.metric_key("steerd_beacons_total", result="accepted"), 0.0)
        sys.stderr.write("\n100k sessions in %.1f s: VmHWM %d KiB (2k) -> %d (10k) -> %d (100k), "
                         "metrics lines %d -> %d, limiter evictions %d, beacons accepted %d\n"
                         % (time.monotonic() - t0, hwm_base, hwm10, hwm100, len(lines10),
                            len(lines100), evicted, accepted))
        slack = SLACK_ASAN_KIB if sanitized(pid) else SLACK_KIB
        self.assertLessEqual(hwm100, hwm_base + slack)
        self.assertLessEqual(hwm100 - hwm10, slack)
        self.assertEqual(lines10, lines100)  # the same series, whatever n
        # a quarter of the sessions are 302s with CMCD, each from its own address
        self.assertGreaterEqual(evicted, 25000 - WORKERS * MAX_SOURCES)
        self.assertGreaterEqual(accepted, 75000)  # the beacon lines and the 302s' CMCD
        self.assertTrue(self.d.alive())


if __name__ == "__main__":
    st.main()
