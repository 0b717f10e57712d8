#!/usr/bin/env python3
"""Hostile input on the player port, read as raw bytes: open-redirect and header-injection
attempts, traversal, oversized and malformed heads, request smuggling shapes, garbage, and
slowloris. After all of it the process is alive and answers normally."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

HEADER_TIMEOUT = 2.0


def req(target, extra=b"", version=b"HTTP/1.1"):
    if isinstance(target, str):
        target = target.encode("latin-1")
    return b"GET " + target + b" " + version + b"\r\nHost: steerd.test\r\n" + extra + b"\r\n"


CLOSE = b"Connection: close\r\n"  # for requests that may be answered with a 302

# (name, raw request bytes, allowed statuses; None in the set = the server may just close)
CASES = [
    ("double slash", req("//evil.example/x", CLOSE), {302, 400}),
    ("backslash", req("/\\evil.example/x"), {400}),
    ("encoded double slash", req("/%2F%2Fevil.example/x", CLOSE), {302, 400}),
    ("at sign", req("/@evil.example/x", CLOSE), {302, 400}),
    ("encoded CRLF in path", req("/%0d%0aSet-Cookie:x=1"), {400}),
    ("encoded CRLF upper case", req("/a%0D%0ASet-Cookie:%20x=1"), {400}),
    ("double-encoded CRLF", req("/%250d%250aSet-Cookie:x=1"), {400}),
    ("encoded NUL", req("/a%00.m4s"), {400}),
    ("tab in target", req("/a\tb.m4s"), {400}),
    ("raw CRLF in target", b"GET /a\r\nSet-Cookie: x=1 HTTP/1.1\r\nHost: s\r\n\r\n", {400}),
    ("dot-dot", req("/../x"), {400}),
    ("encoded dot-dot", req("/%2e%2e/x"), {400}),
    ("dot-dot with encoded slash", req("/..%2fx"), {400}),
    ("deep dot-dot", req("/vod/a/../../../etc/passwd"), {400}),
    ("double-encoded dot-dot", req("/%252e%252e/x"), {400}),
    ("9 KiB request line", req("/" + "a" * 9 * 1024), {414}),
    ("64 KiB request line", req("/" + "b" * 64 * 1024), {414}),
    ("20 KiB of headers", req("/x.m4s", b"".join(b"X-Fill-%02d: %s\r\n" % (i, b"v" * 1000)
                                               for i in range(20))), {431}),
    ("101 headers", req("/x.m4s", b"".join(b"X-H%d: v\r\n" % i for i in range(101))), {431}),
    ("obs-fold", req("/x.m4s", b"X-Folded: a\r\n  continued\r\n"), {400}),
    ("huge Content-Length on GET", req("/x.m4s", b"Content-Length: 1000000000000000000\r\n"),
     {400, 413}),
    ("Content-Length and Transfer-Encoding", req("/x.m4s", b"Content-Length: 5\r\n"
                                                b"Transfer-Encoding: chunked\r\n"), {400}),
    ("conflicting Content-Length", req("/x.m4s", b"Content-Length: 0\r\nContent-Length: 5\r\n"),
     {400}),
    ("negative Content-Length", req("/x.m4s", b"Content-Length: -1\r\n"), {400}),
    ("bare CR in header", b"GET /x.m4s HTTP/1.1\r\nHost: s\rX-Evil: 1\r\n\r\n", {400}),
    ("space before colon", req("/x.m4s", b"X-Bad : 1\r\n"), {400}),
    ("absolute-form", req("http://evil.example/"), {400}),
    ("asterisk-form", req("*"), {400}),
    ("HTTP/2.0", req("/x.m4s", version=b"HTTP/2.0"), {505}),
    ("HTTP/9.9", req("/x.m4s", version=b"HTTP/9.9"), {505}),
    ("garbage version", req("/x.m4s", version=b"HTXP/1.1"), {400}),
    ("TLS ClientHello", bytes.fromhex("16030100a5010000a10303") + os.urandom(64) + b"\r\n\r\n",
     {400, None}),
    ("binary garbage", b"\x00\xff\xfe\x01\x80 garbage \x7f\r\n\r\n", {400, None}),
]


class HostileTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns(prefixes={"beta": "/edge"})
        cls.watch(*cls.net.all())
        cls.bases = [cls.net["alpha"].base_url, cls.net["beta"].base_url]
        cfg = st.default_config([st.cdn_entry("alpha", cls.net["alpha"]),
                                 st.cdn_entry("beta", cls.net["beta"])],
                                http={"header_timeout_ms": int(HEADER_TIMEOUT * 1000)})
        cls.d = cls.watch(st.Steerd(cfg, name="hostile", wait_ready=True))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.net.cleanup()

    def check_response(self, name, data, allowed):
        """Checks the raw bytes: a well-formed single answer with an allowed status, no injected
        header line, and a safe Location on a 302. Returns the status (None for no answer)."""
        if not data:
            self.assertIn(None, allowed, "%s: connection closed without an answer" % name)
            return None
        head_end = data.find(b"\r\n\r\n")
        self.assertGreater(head_end, 0, "%s: no complete response head in %r" % (name, data[:300]))
        lines = data[:head_end].split(b"\r\n")
        self.assertRegex(lines[0], rb"^HTTP/1\.1 \d{3} ", name)
        status = int(lines[0][9:12])
        self.assertIn(status, allowed, "%s: %r" % (name, data[:400]))
        for ln in lines[1:]:
            self.assertRegex(ln, rb"^[A-Za-z0-9-]+: [\x20-\x7e]*$", "%s: bad header line" % name)
            low = ln.lower()
            self.assertFalse(low.startswith(b"set-cookie") or low.startswith(b"x-evil"),
                             "%s: injected header line %r" % (name, ln))
        self.assertNotIn(b"\r\nSet-Cookie", data)
        self.assertNotIn(b"\nSet-Cookie", data)
        rs, rest = st.parse_responses(data)
        self.assertEqual(len(rs), 1, "%s: %d answers" % (name, len(rs)))
        r = rs[0]
        if status == 302:
            loc = r.headers.get("location", "")
            self.assertTrue(any(loc.startswith(b + "/") for b in self.bases),
                            "%s: Location %r outside the configured bases" % (name, loc))
            for b in self.bases:
                if loc.startswith(b + "/"):
                    self.assertNotIn(loc[len(b) + 1:len(b) + 2], ("/", "\\"),
                                     "%s: Location %r" % (name, loc))
        else:
            self.assertNotIn("location", r.headers)
        return status

    def test_hostile_1_table(self):
        rejected0 = sum(v for k, v in self.d.metrics().items()
                        if k.startswith("steerd_requests_rejected_total"))
        n_rejected = 0
        for name, payload, allowed in CASES:
            with self.subTest(case=name):
                data, closed = st.raw_exchange(self.d.port, payload, timeout=3.0)
                status = self.check_response(name, data, allowed)
                if status is not None and status >= 400:
                    n_rejected += 1
                if status is None or status >= 400:
                    self.assertTrue(closed, "%s: connection left open after an error" % name)
                self.assertTrue(self.d.alive(), "steerd died on %s" % name)
        rejected1 = sum(v for k, v in self.d.metrics().items()
                        if k.startswith("steerd_requests_rejected_total"))
        self.assertGreaterEqual(rejected1 - rejected0, n_rejected)

    def test_hostile_1b_oversized_input_repeated_keeps_memory_flat(self):
        # T11: each oversized shape 1000 times (the 1 MB cookie 200 times): every one refused,
        # and the resident set grows by less than 1 MiB over all of it (after warm-up rounds).
        shapes = [
            ("8 KiB + 1 request line", req("/" + "a" * (8 * 1024 + 1)), 1000),
            ("9 KiB header", req("/x.m4s", b"X-Big: " + b"v" * (9 * 1024) + b"\r\n"), 1000),
            ("64 KiB of headers", req("/x.m4s", b"".join(b"X-F%03d: %s\r\n" % (i, b"v" * 1000)
                                                         for i in range(64))), 1000),
            ("101 headers", req("/x.m4s", b"".join(b"X-H%d: v\r\n" % i for i in range(101))),
             1000),
            ("1 MB cookie", req("/x.m4s", b"Cookie: " + b"c" * (1024 * 1024) + b"\r\n"), 200),
        ]
        pid = self.d.proc.pid

        def rss_kib():
            with open("/proc/%d/status" % pid) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        return int(ln.split()[1])
            raise AssertionError("no VmRSS")

        def one_round():
            for name, payload, n in shapes:
                for _ in range(n):
                    data, _ = st.raw_exchange(self.d.port, payload, timeout=3.0)
                    status = (int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ")
                              else None)
                    self.assertIn(status, (400, 413, 414, 431, None),
                                  "%s: %r" % (name, data[:80]))

        # Two whole rounds first: they size the allocator's heaps (one per worker: the first
        # 1 MB cookies on each raise its high-water mark once). The next round must not grow
        # it: a leak of even 250 bytes per request would.
        one_round()
        one_round()
        rss0 = rss_kib()
        one_round()
        rss1 = rss_kib()
        sys.stderr.write("\noversized input x1000: VmRSS %d -> %d KiB\n" % (rss0, rss1))
        if not st.asan_build():
            self.assertLess(rss1 - rss0, 1024, "VmRSS grew from %d to %d KiB" % (rss0, rss1))
        self.assertTrue(self.d.alive())

    def test_hostile_2_query_with_encoded_crlf_passes_safely(self):
        data, _ = st.raw_exchange(self.d.port, req("/vod/x.m4s?a=%0d%0aSet-Cookie:x=1",
                                                   b"Connection: close\r\n"))
        self.assertEqual(self.check_response("query", data, {302, 400}), 302)
        rs, _ = st.parse_responses(data)
        self.assertTrue(rs[0].headers["location"].endswith("/vod/x.m4s?a=%0d%0aSet-Cookie:x=1"))

    def test_hostile_3_error_after_good_request_on_keepalive(self):
        # A good pipelined request is answered, then the bad one gets 400 and the connection closes.
        payload = req("/vod/ok.m4s") + req("/../bad")
        data, closed = st.raw_exchange(self.d.port, payload, timeout=3.0)
        rs, rest = st.parse_responses(data)
        self.assertEqual([r.status for r in rs], [302, 400], data)
        self.assertTrue(closed)

    def test_hostile_4_still_alive_and_serving(self):
        self.assertTrue(self.d.alive())
        status, h, _ = self.d.get("/vod/after/seg.m4s")
        self.assertEqual(status, 302)
        self.assertEqual(self.d.admin("/healthz")[0], 200)

    # -- slow clients --

    def slow_client(self, trickle):
        """Connects and sends a partial head; with trickle, one more header line every 500 ms.
        Returns (seconds from connect to close, bytes received)."""
        s = socket.create_connection((st.LOOPBACK, self.d.port), timeout=5)
        t0 = time.monotonic()
        data = b""
        try:
            s.sendall(b"GET /vod/slow/seg.m4s HTTP/1.1\r\nHost: s\r\n")
            i = 0
            next_send = t0 + 0.5
            while time.monotonic() - t0 < HEADER_TIMEOUT + 4.0:
                s.settimeout(max(0.01, next_send - time.monotonic()))
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        return time.monotonic() - t0, data
                    data += chunk
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    return time.monotonic() - t0, data
                if time.monotonic() >= next_send:
                    next_send += 0.5
                    if trickle:
                        try:
                            s.sendall(b"X-Slow-%d: y\r\n" % i)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                        i += 1
            return None, data
        finally:
            s.close()

    def check_slow(self, trickle):
        secs, data = self.slow_client(trickle)
        self.assertIsNotNone(secs, "slow connection still open after %.0f s" % (HEADER_TIMEOUT + 4))
        self.assertLessEqual(secs, HEADER_TIMEOUT + 1.0)
        self.assertGreaterEqual(secs, HEADER_TIMEOUT - 0.5, "closed before the header timeout")
        if data:
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:200])

    def test_hostile_5_slowloris_trickle_closed_by_header_deadline(self):
        self.check_slow(trickle=True)

    def test_hostile_6_idle_partial_head_closed(self):
        self.check_slow(trickle=False)

    def test_hostile_7_slow_clients_do_not_block_others(self):
        socks = []
        try:
            for _ in range(50):
                s = socket.create_connection((st.LOOPBACK, self.d.port), timeout=5)
                s.sendall(b"GET /vod/slow/seg.m4s HTTP/1.1\r\n")
                socks.append(s)
            t0 = time.monotonic()
            for i in range(10):
                self.assertEqual(self.d.get("/vod/legit/%d.m4s" % i)[0], 302)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    st.main()
