#!/usr/bin/env python3
"""A fake CDN edge that misbehaves on demand, for probe fault tests (Python 3 standard library).

Run as a process:
    faultserver.py --port-file FILE [--mode ok] [--port 0]
It listens on 127.0.0.1 (the CDN port), on a control port and on a "redirect target" port, and
writes {"port": P, "control": C, "target": T, "pid": N} to FILE (tmp + rename) once all three
listen. The control port takes one command per line and answers one line:
    mode NAME   -> "ok"      switch the CDN port's behaviour (new connections)
    stats       -> JSON      counters (see Server.stats)
    reset       -> "ok"      zero the counters
    quit        -> "ok"      exit

Modes (what a connection to the CDN port gets):
    ok       200 with a 1 KiB body, for any GET
    refuse   the listener is closed: connect() is refused (it is reopened on the same port when
             the mode changes again)
    hang     accepted, the request is read, nothing is ever answered
    503      503 Service Unavailable with a short body
    slow     the first response byte only after 10 s ("slow first byte"), then a 200
    drip     a 200 head at once, then the 1 KiB body at 1 byte a second
    big      a 200 announcing and sending 100 MB (as fast as the client reads)
    redirect 302 to http://127.0.0.1:T/canary, the target port, which counts every connection
             and request it gets
    garbage  non-HTTP bytes, then close
    flap     alternates per request: 200 (as ok), then 503 (as 503), then 200, ... (a probe
             target that flaps on every probe)
    flap2    two 200s, then two 503s, and so on

Use from a test: FaultServer("beta") starts the process; .set_mode("503"), .stats(), .stop().
"""

import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
MODES = ("ok", "refuse", "hang", "503", "slow", "drip", "big", "redirect", "garbage", "flap",
         "flap2")
BODY = bytes(range(256)) * 4
BIG_BYTES = 100 * 1024 * 1024
SLOW_FIRST_BYTE_S = 10.0
MAX_CONN_S = 60.0  # no connection is held longer than this, whatever the mode
MAX_HEAD = 65536


def _read_head(conn, deadline):
    """Reads a request head (up to the blank line); returns bytes or None on EOF/timeout."""
    buf = b""
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or len(buf) > MAX_HEAD:
            return None
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


class Server:
    def __init__(self, port=0, mode="ok"):
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.mode = mode
        self.port = port
        self.counts = {m: 0 for m in MODES}
        self.requests = 0
        self.target_conns = 0
        self.target_requests = 0
        self.big_max_sent = 0
        self.flap_n = 0
        self.flap_ok = 0
        self.flap_fail = 0
        self.listener = None
        self.listener_gen = 0
        if mode != "refuse":
            self._open_listener()
        else:
            # Reserve a port number for later: bind, note it, close.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOOPBACK, port))
            self.port = s.getsockname()[1]
            s.close()
        self.target = self._listen(0)
        self.control = self._listen(0)
        threading.Thread(target=self._target_loop, daemon=True).start()
        threading.Thread(target=self._control_loop, daemon=True).start()

    # -- listeners --

    def _listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOOPBACK, port))
        s.listen(128)
        return s

    def _open_listener(self):
        deadline = time.monotonic() + 5.0
        while True:
            try:
                s = self._listen(self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = s.getsockname()[1]
        self.listener = s
        self.listener_gen += 1
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def _close_listener(self):
        s, self.listener = self.listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def set_mode(self, mode):
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        with self.lock:
            old, self.mode = self.mode, mode
            if mode == "refuse" and old != "refuse":
                self._close_listener()
            elif mode != "refuse" and self.listener is None:
                self._open_listener()

    def stats(self):
        with self.lock:
            return {"mode": self.mode, "port": self.port, "connections": dict(self.counts),
                    "requests": self.requests, "target_connections": self.target_conns,
                    "target_requests": self.target_requests, "big_max_sent": self.big_max_sent,
                    "flap_ok": self.flap_ok, "flap_fail": self.flap_fail}

    def reset(self):
        with self.lock:
            self.counts = {m: 0 for m in MODES}
            self.requests = 0
            self.target_conns = 0
            self.target_requests = 0
            self.big_max_sent = 0
            self.flap_n = 0
            self.flap_ok = 0
            self.flap_fail = 0

    # -- the CDN port --

    def _accept_loop(self, s):
        while not self.stop_ev.is_set():
            try:
                conn, _ = s.accept()
            except OSError:
                return  # listener closed (refuse mode or exit)
            with self.lock:
                mode = self.mode
                self.counts[mode] = self.counts.get(mode, 0) + 1
            threading.Thread(target=self._serve, args=(conn, mode), daemon=True).start()

    def _serve(self, conn, mode):
        deadline = time.monotonic() + MAX_CONN_S
        try:
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if mode == "garbage":
                    conn.sendall(b"\x00\xffSSH-2.0-not-http\r\n\x1b[2J" + os.urandom(512))
                    return
                # Serve requests on this connection while the mode allows (keep-alive for ok).
                while time.monotonic() < deadline:
                    head = _read_head(conn, deadline)
                    if head is None:
                        return
                    with self.lock:
                        self.requests += 1
                        if self.mode in ("flap", "flap2") or mode in ("flap", "flap2"):
                            mode = self.mode  # a kept-alive probe connection follows the flap
                    if not self._answer(conn, mode, deadline):
                        return
        except OSError:
            pass

    def _answer(self, conn, mode, deadline):
        """Answers one request; returns True to keep the connection for another."""
        if mode in ("flap", "flap2"):
            run = 1 if mode == "flap" else 2
            with self.lock:
                good = (self.flap_n // run) % 2 == 0
                self.flap_n += 1
                if good:
                    self.flap_ok += 1
                else:
                    self.flap_fail += 1
            mode = "ok" if good else "503"
        if mode == "ok":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
            return True
        if mode == "503":
            body = b"unavailable\n"
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            return False
        if mode == "redirect":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://%s:%d/canary\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                         % (LOOPBACK.encode(), self.target.getsockname()[1]))
            return False
        if mode == "hang":
            self._wait_close(conn, deadline)
            return False
        if mode == "slow":
            if self._wait_close(conn, min(deadline, time.monotonic() + SLOW_FIRST_BYTE_S)):
                return False  # the client gave up first
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(BODY) + BODY)
            return False
        if mode == "drip":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(BODY))
            for i in range(len(BODY)):
                if time.monotonic() >= deadline or self.stop_ev.is_set():
                    return False
                conn.sendall(BODY[i:i + 1])
                if self._wait_close(conn, time.monotonic() + 1.0):
                    return False
            return False
        if mode == "big":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % BIG_BYTES)
            chunk = b"\0" * 65536
            sent = 0
            try:
                while sent < BIG_BYTES and time.monotonic() < deadline:
                    conn.sendall(chunk)
                    sent += len(chunk)
            finally:
                with self.lock:
                    self.big_max_sent = max(self.big_max_sent, sent)
            return False
        return False

    def _wait_close(self, conn, until):
        """Waits until the peer closes (returns True) or until the time passes (False)."""
        while not self.stop_ev.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            conn.settimeout(min(left, 0.5))
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return True
            if not data:
                return True
        return True

    # -- the redirect target: counts everything that reaches it --

    def _target_loop(self):
        while not self.stop_ev.is_set():
            try:
                conn, _ = self.target.accept()
            except OSError:
                return
            with self.lock:
                self.target_conns += 1
            threading.Thread(target=self._serve_target, args=(conn,), daemon=True).start()

    def _serve_target(self, conn):
        with conn:
            head = _read_head(conn, time.monotonic() + 5.0)
            if head is not None:
                with self.lock:
                    self.target_requests += 1
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                except OSError:
                    pass

    # -- control --

    def _control_loop(self):
        while not self.stop_ev.is_set():
            try:
                conn, _ = self.control.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_control, args=(conn,), daemon=True).start()

    def _serve_control(self, conn):
        with conn:
            f = conn.makefile("rwb")
            for line in f:
                words = line.decode("ascii", "replace").split()
                if not words:
                    continue
                try:
                    if words[0] == "mode" and len(words) == 2:
                        self.set_mode(words[1])
                        reply = "ok"
                    elif words[0] == "stats":
                        reply = json.dumps(self.stats())
                    elif words[0] == "reset":
                        self.reset()
                        reply = "ok"
                    elif words[0] == "quit":
                        f.write(b"ok\n")
                        f.flush()
                        self.stop_ev.set()
                        os._exit(0)
                    else:
                        reply = "error unknown command"
                except Exception as e:  # report, keep serving
                    reply = "error %s" % e
                f.write(reply.encode() + b"\n")
                f.flush()


def _main(argv):
    ap = argparse.ArgumentParser(description="fake CDN edge with switchable faults")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", default="ok", choices=MODES)
    a = ap.parse_args(argv)
    parent = os.getppid()
    try:  # die with the parent, even when it is SIGKILLed (Linux)
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass
    srv = Server(a.port, a.mode)
    info = {"port": srv.port, "control": srv.control.getsockname()[1],
            "target": srv.target.getsockname()[1], "pid": os.getpid()}
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, a.port_file)
    signal.signal(signal.SIGTERM, lambda s, fr: os._exit(0))
    while not srv.stop_ev.wait(1.0):
        if os.getppid() != parent:  # the parent is gone
            os._exit(0)
    return 0


# ---------------------------------------------------------------------------------------------
# Client side, for tests


class FaultServer:
    """Starts faultserver.py as a child process (killed at exit) and talks to its control port."""

    def __init__(self, name, mode="ok", tmpdir=None, timeout=10.0):
        import tempfile

        self.name = name
        self.own_dir = tmpdir is None
        self.dir = tmpdir or tempfile.mkdtemp(prefix="steerd-fault-%s-" % name)
        self.port_file = os.path.join(self.dir, "%s.ports.json" % name)
        self.log_path = os.path.join(self.dir, "%s.log" % name)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--port-file", self.port_file,
                 "--mode", mode],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("faultserver %s did not start: %s" % (name, self.logs()))
            time.sleep(0.02)
        with open(self.port_file) as f:
            info = json.load(f)
        self.port = info["port"]
        self.control_port = info["control"]
        self.target_port = info["target"]

    @property
    def base_url(self):
        return "http://%s:%d" % (LOOPBACK, self.port)

    @property
    def probe_url(self):
        return "http://%s:%d/probe.bin" % (LOOPBACK, self.port)

    def command(self, line, timeout=5.0):
        with socket.create_connection((LOOPBACK, self.control_port), timeout=timeout) as s:
            s.sendall(line.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = buf.decode().strip()
        if reply.startswith("error"):
            raise RuntimeError("faultserver %s: %s -> %s" % (self.name, line, reply))
        return reply

    def set_mode(self, mode):
        self.command("mode " + mode)

    def stats(self):
        return json.loads(self.command("stats"))

    def reset(self):
        self.command("reset")

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return "---- faultserver %s ----\n%s" % (self.name, f.read()[-3000:].decode(
                    "utf-8", "replace"))
        except OSError as e:
            return "<faultserver %s log: %s>" % (self.name, e)

    def stop(self):
        p = getattr(self, "proc", None)
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait(timeout=5.0)
        if self.own_dir and os.path.isdir(self.dir) and os.environ.get("STEERD_KEEP_TMP") != "1":
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)

    cleanup = stop


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
