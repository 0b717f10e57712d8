#!/usr/bin/env python3
"""Beacon source spoofing (RELIABILITY T13, short form): X-Forwarded-For counts only from
trusted_proxies. With trusted_proxies not covering 127.0.0.1 (one worker, beacon.rate_per_s 5,
burst 10), beacons from one peer that forge a different X-Forwarded-For each time, on one
keep-alive connection or on a new connection each, all draw on the one per-source bucket of the
real peer address: past the burst they get 429 with Retry-After. Another real peer (127.0.0.2)
still has its own bucket.

Control (so the test can fail): the same forged headers from a trusted peer (127.0.0.1 in
trusted_proxies) are distinct clients, and none of them is limited."""

import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402


def stop_cleanly(d):
    """A graceful stop must exit 0 (under ASan: LeakSanitizer finds nothing at exit)."""
    rc = d.stop(timeout=10.0)
    logs = d.stderr()
    d.cleanup()
    if rc != 0:
        raise AssertionError("%s exited with %s:\n%s" % (d.name, rc, logs))

BURST = 10
N = 60
BODY = b"mtp=1000\n"


def no_probe_cdns():
    return [{"id": "alpha", "base_url": "http://127.0.0.1:9/a", "probe": None},
            {"id": "beta", "base_url": "http://127.0.0.1:9/b", "probe": None}]


def beacon_request(xff):
    return (b"POST /beacon HTTP/1.1\r\nHost: steerd.test\r\nContent-Type: application/cmcd\r\n"
            b"X-Forwarded-For: " + xff.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY)
            + BODY)


def forged(i):
    return "198.51.%d.%d" % (100 + i // 250, 1 + i % 250)


class SpoofingTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        base = dict(workers=1, beacon={"rate_per_s": 5, "burst": BURST})
        cls.untrusted = cls.watch(st.Steerd(
            st.default_config(no_probe_cdns(), trusted_proxies=["10.0.0.0/8"], **base),
            name="spoof-untrusted", wait_ready=True))
        cls.trusted = cls.watch(st.Steerd(
            st.default_config(no_probe_cdns(), trusted_proxies=["127.0.0.1/32"], **base),
            name="spoof-trusted", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.untrusted)
        stop_cleanly(cls.trusted)

    def keepalive_codes(self, d, n, offset=0, source=None):
        """n beacons on one connection (from source, an address on lo), each with its own
        forged X-Forwarded-For; returns the list of (status, Retry-After)."""
        out = []
        with socket.create_connection((st.LOOPBACK, d.port), timeout=5.0,
                                      source_address=(source, 0) if source else None) as s:
            buf = b""
            for i in range(n):
                s.sendall(beacon_request(forged(offset + i)))
                while True:
                    rs, rest = st.parse_responses(buf)
                    if rs:
                        break
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "steerd closed the connection after %d answers" % i)
                    buf += chunk
                self.assertEqual(len(rs), 1)
                buf = rest
                out.append((rs[0].status, rs[0].headers.get("retry-after")))
        return out

    def check_limited(self, codes):
        statuses = [c for c, _ in codes]
        self.assertTrue(set(statuses) <= {204, 429}, statuses)
        # the burst, plus what the bucket refilled meanwhile (5/s), then 429s
        self.assertLessEqual(statuses.count(204), BURST + 10, statuses)
        self.assertGreaterEqual(statuses.count(429), N - BURST - 10, statuses)
        for c, retry in codes:
            if c == 429:
                self.assertTrue(retry is not None and retry.isdigit() and int(retry) >= 1, retry)

    def test_forged_xff_one_connection_is_one_source(self):
        d = self.untrusted
        limited0 = d.metric("steerd_beacons_total", 0.0, result="rate_limited")
        codes = self.keepalive_codes(d, N)
        self.check_limited(codes)
        self.assertGreaterEqual(d.metric("steerd_beacons_total", 0.0, result="rate_limited"),
                                limited0 + [c for c, _ in codes].count(429))
        # another real peer address has its own, full bucket
        other = self.keepalive_codes(d, 5, offset=1000, source="127.0.0.2")
        self.assertEqual([c for c, _ in other], [204] * 5)

    def test_forged_xff_new_connections_are_one_source(self):
        d = self.untrusted
        codes = []
        for i in range(N):
            status, h, _ = d.request("POST", "/beacon", {
                "Content-Type": "application/cmcd", "X-Forwarded-For": forged(5000 + i)}, BODY)
            codes.append((status, h.get("retry-after")))
        self.check_limited(codes)

    def test_trusted_proxy_xff_are_distinct_sources(self):
        codes = self.keepalive_codes(self.trusted, N, offset=9000)
        self.assertEqual([c for c, _ in codes], [204] * N)


if __name__ == "__main__":
    st.main()
