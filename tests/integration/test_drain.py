#!/usr/bin/env python3
"""Graceful shutdown: SIGTERM closes the listeners at once, lets keep-alive and half-sent
requests finish or be closed, exits 0 within shutdown_grace_ms + 1 s; a second SIGTERM exits
at once; SIGINT drains like SIGTERM."""

import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

GRACE = 2.0


class DrainTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())

    @classmethod
    def tearDownClass(cls):
        cls.net.cleanup()

    def start(self, grace=GRACE):
        cfg = st.default_config([st.cdn_entry("alpha", self.net["alpha"]),
                                 st.cdn_entry("beta", self.net["beta"])],
                                http={"shutdown_grace_ms": int(grace * 1000)})
        d = st.Steerd(cfg, name="drain", wait_ready=True)
        self.addCleanup(d.cleanup)
        return self.watch_local(d)

    def keepalive_conn(self, d):
        """A connection that has had one answered request and is now idle."""
        s = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
        s.sendall(b"GET /vod/ka/seg.m4s HTTP/1.1\r\nHost: s\r\n\r\n")
        data = b""
        while not st.parse_responses(data)[0]:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before the first answer")
            data += chunk
        rs, _ = st.parse_responses(data)
        self.assertEqual(rs[0].status, 302)
        return s

    def stuck_reader(self, d, seconds=1.0):
        """A connection with a tiny receive buffer that pipelines requests and never reads, so
        steerd's answers back up: requests stay in flight until the grace period ends."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((st.LOOPBACK, d.port))
        s.setblocking(False)
        one = b"GET /vod/stuck/seg_000001.m4s?pad=%s HTTP/1.1\r\nHost: s\r\n\r\n" % (b"p" * 64)
        chunk = one * 256
        deadline = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        s.setblocking(True)
        return s, sent

    def read_until_close(self, s, timeout):
        deadline = time.monotonic() + timeout
        data = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return data, False
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def test_drain_idle_keepalive_exit_0_within_grace(self):
        d = self.start()
        conns = [self.keepalive_conn(d) for _ in range(8)]
        try:
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            code = d.wait_exit(GRACE + 1.0 + 0.5)
            elapsed = time.monotonic() - t0
            self.assertIsNotNone(code, "still running %.1f s after SIGTERM" % (GRACE + 1.5))
            self.assertEqual(code, 0)
            self.assertLessEqual(elapsed, GRACE + 1.0)
            for s in conns:
                data, closed = self.read_until_close(s, 1.0)
                self.assertTrue(closed, "keep-alive connection not closed at exit")
        finally:
            for s in conns:
                s.close()

    def test_drain_new_connections_refused(self):
        d = self.start(grace=5.0)
        # A half-sent request keeps the drain going (or is dropped: both are allowed).
        s = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
        try:
            s.sendall(b"GET /vod/inflight/seg.m4s HTTP/1.1\r\nHost: s\r\n")
            time.sleep(0.1)
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)

            # Listeners close at once (the bar is 100 ms; 500 ms leaves room for a busy host).
            def refused():
                try:
                    socket.create_connection((st.LOOPBACK, d.port), timeout=1).close()
                    return False
                except ConnectionRefusedError:
                    return True

            st.wait_for(refused, 0.5, interval=0.01, msg="connect refused after SIGTERM")
            self.assertLess(time.monotonic() - t0, 0.5)
            # Finishing the head: either an answer with Connection: close, or the connection
            # was dropped; never a second answer and never a hang.
            try:
                s.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, closed = self.read_until_close(s, 6.0)
            self.assertTrue(closed)
            if data:
                rs, rest = st.parse_responses(data)
                self.assertEqual(len(rs), 1, data)
                self.assertEqual(rs[0].status, 302)
                self.assertEqual(rs[0].headers.get("connection", "").lower(), "close")
            self.assertEqual(d.wait_exit(6.0), 0)
        finally:
            s.close()

    def test_drain_pipelined_answers_get_connection_close(self):
        d = self.start(grace=3.0)
        s = self.keepalive_conn(d)
        try:
            d.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            # Either the idle connection was closed at once, or this answer says it will close.
            try:
                s.sendall(b"GET /vod/ka/seg2.m4s HTTP/1.1\r\nHost: s\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, closed = self.read_until_close(s, 4.0)
            self.assertTrue(closed)
            if data:
                rs, _ = st.parse_responses(data)
                self.assertEqual(len(rs), 1)
                self.assertEqual(rs[0].headers.get("connection", "").lower(), "close")
            self.assertEqual(d.wait_exit(4.0), 0)
        finally:
            s.close()

    def test_drain_with_slowloris_sockets_exit_within_grace(self):
        d = self.start()
        socks = []
        try:
            for i in range(30):
                c = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
                c.sendall(b"GET /vod/slow/%d.m4s HTTP/1.1\r\nHost: s\r\n" % i)
                socks.append(c)
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            code = d.wait_exit(GRACE + 1.5)
            self.assertEqual(code, 0, "exit %r" % code)
            self.assertLessEqual(time.monotonic() - t0, GRACE + 1.0)
        finally:
            for c in socks:
                c.close()

    def test_drain_stuck_reader_exit_within_grace(self):
        d = self.start()
        s, sent = self.stuck_reader(d)
        try:
            self.assertGreater(sent, 0)
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            code = d.wait_exit(GRACE + 1.5)
            self.assertEqual(code, 0, "exit %r" % code)
            self.assertLessEqual(time.monotonic() - t0, GRACE + 1.0)
        finally:
            s.close()

    def test_drain_second_sigterm_exits_at_once(self):
        d = self.start(grace=20.0)
        s, _ = self.stuck_reader(d)
        socks = [s]
        try:
            for i in range(10):
                c = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
                c.sendall(b"GET /vod/slow/%d.m4s HTTP/1.1\r\nHost: s\r\n" % i)
                socks.append(c)
            d.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            if not d.alive():
                self.assertEqual(d.returncode if d.returncode is not None else d.wait_exit(1), 0)
                self.skipTest("the drain was over before a second signal could be sent")
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            code = d.wait_exit(2.0)
            self.assertIsNotNone(code, "a second SIGTERM did not stop steerd")
            self.assertLessEqual(time.monotonic() - t0, 1.0)
            self.assertGreaterEqual(code, 0, "killed by a signal: %r" % code)
        finally:
            for c in socks:
                c.close()

    def test_drain_sigint_like_sigterm(self):
        d = self.start()
        self.assertEqual(d.get("/vod/x.m4s")[0], 302)
        d.send_signal(signal.SIGINT)
        self.assertEqual(d.wait_exit(GRACE + 1.0), 0)


if __name__ == "__main__":
    st.main()
