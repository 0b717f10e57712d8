#!/usr/bin/env python3
"""Connection limits: the per-worker connection cap leaves extra clients waiting in the kernel
backlog (and serves them once a slot frees), and running out of file descriptors pauses
accepting instead of spinning: little CPU, at most about one log line a second, and normal
service as soon as descriptors are free again."""

import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import steerdtest as st  # noqa: E402

REQUEST = b"GET /vod/limits/seg_1.m4s HTTP/1.1\r\nHost: s\r\n\r\n"


def cpu_seconds(pid):
    """User + system CPU time of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def answered(sock, timeout):
    """True when a whole 302 arrives on sock within timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            data += chunk
    except socket.timeout:
        return False
    return data.startswith(b"HTTP/1.1 302 ")


class LimitsTest(st.SteerdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = st.Cdns()
        cls.watch(*cls.net.all())

    @classmethod
    def tearDownClass(cls):
        cls.net.cleanup()

    def start(self, **http):
        cfg = st.default_config([st.cdn_entry("alpha", self.net["alpha"]),
                                 st.cdn_entry("beta", self.net["beta"])],
                                workers=1, http=http)
        d = st.Steerd(cfg, name="limits", wait_ready=True)
        self.addCleanup(d.cleanup)
        return self.watch_local(d)

    def connect(self, d):
        s = socket.create_connection((st.LOOPBACK, d.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def test_connection_cap_queues_then_serves(self):
        d = self.start(max_connections=8)
        held = [self.connect(d) for _ in range(8)]
        for s in held:  # every held connection is accepted and served
            s.sendall(REQUEST)
            self.assertTrue(answered(s, 5), "a connection below the cap was not served")
        extra = self.connect(d)  # completes in the kernel backlog, not accepted
        extra.sendall(REQUEST)
        self.assertFalse(answered(extra, 0.7), "a connection past the cap was served")
        held[0].close()
        self.assertTrue(answered(extra, 3), "the waiting client was not served after a slot freed")
        self.assertTrue(d.alive())

    def test_fd_exhaustion_pauses_accepting_without_spinning(self):
        d = self.start()
        pid = d.proc.pid
        nfds = len(os.listdir("/proc/%d/fd" % pid))
        soft = os.sysconf("SC_OPEN_MAX")
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = int(line.split()[3])
        # Only the soft limit moves, so it can be raised again without privileges.
        subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:" % (nfds + 4)], check=True)
        before_log = len(d.stderr().splitlines())
        clients = [self.connect(d) for _ in range(40)]  # far past the limit
        time.sleep(0.5)
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        time.sleep(2.0)
        used = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        self.assertLess(used, 0.10, "steerd used %.0f%% of a CPU while out of fds" % (used * 100))
        log = d.stderr().splitlines()[before_log:]
        accept_lines = [line for line in log if "accept failed" in line]
        self.assertGreaterEqual(len(accept_lines), 1, "fd exhaustion was not logged")
        self.assertLessEqual(len(accept_lines), 4, "accept errors flood the log:\n" +
                             "\n".join(accept_lines[:10]))

        for s in clients:
            s.close()
        subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:" % soft], check=True)

        def serves():
            try:
                s = socket.create_connection((st.LOOPBACK, d.port), timeout=1)
            except OSError:
                return False
            try:
                s.sendall(REQUEST)
                return answered(s, 1)
            finally:
                s.close()

        st.wait_for(serves, 3.0, msg="service after fds are free again")
        self.assertTrue(d.alive())
        # Read only now: while out of fds the admin listener cannot accept either.
        self.assertGreater(d.metric("steerd_accept_errors_total"), 0)


if __name__ == "__main__":
    st.main()
