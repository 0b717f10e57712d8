"""Integration test support: real nginx origin/CDNs and a real steerd on 127.0.0.1.

Python 3 standard library only. Every wait is bounded by a deadline, every process started
here is killed at exit (atexit) even when a test fails, and every temp dir is removed.

Environment:
  STEERD_BIN         the steerd binary (default: <repo>/build/steerd)
  STEERD_SOURCE_DIR  the repository root (default: two levels above this file)
  STEERD_KEEP_TMP=1  keep temp dirs (for debugging)
"""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

LOOPBACK = "127.0.0.1"

SOURCE_DIR = os.path.abspath(
    os.environ.get("STEERD_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
)
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures")
GEOIP_COUNTRY_DB = os.path.join(FIXTURES, "geoip", "GeoIP2-Country-Test.mmdb")
GEOIP_ASN_DB = os.path.join(FIXTURES, "geoip", "GeoLite2-ASN-Test.mmdb")
GEOIP_CORRUPT_DB = os.path.join(FIXTURES, "geoip", "libmaxminddb-metadata-marker-only.mmdb")

# Addresses with a known answer in the test GeoIP databases (only used as X-Forwarded-For
# strings or /explain arguments; no packet is ever sent to them).
IP_SE = "89.160.20.112"  # country SE
IP_GB = "81.2.69.142"  # country GB
IP_TELSTRA = "1.128.0.0"  # ASN 1221, no country
IP_LAB = "10.99.1.2"  # matched by the "lab" cidr in default_config()
IP_NOWHERE = "198.51.100.7"  # in neither database

_live = []  # processes and temp dirs to clean up at exit


def steerd_bin():
    b = os.environ.get("STEERD_BIN") or os.path.join(SOURCE_DIR, "build", "steerd")
    if not os.access(b, os.X_OK):
        raise RuntimeError("steerd binary not found or not executable: %s (set STEERD_BIN)" % b)
    return b


def _cleanup_all():
    for obj in reversed(_live[:]):
        try:
            obj.cleanup()
        except Exception as e:  # cleanup must go on for the others
            sys.stderr.write("cleanup of %r failed: %s\n" % (obj, e))


atexit.register(_cleanup_all)
# A SIGTERM (a runner's timeout) exits through atexit too, so nothing is left running.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _die_with_parent(sig):
    """A preexec_fn: the child gets sig when this process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None

    def fn():
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG

    return fn


def _kill_group_and_wait(proc, sig=signal.SIGTERM, timeout=5.0):
    """Sends sig to proc, waits up to timeout, then SIGKILLs. Returns the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5.0)


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def remove_tmpdir(d):
    if d and os.path.isdir(d) and os.environ.get("STEERD_KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Small helpers


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.05, msg="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds pass
    (AssertionError, so a test reports it as a failure)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except Exception as e:  # keep polling: the thing may not be up yet
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1f s waiting for %s%s" % (timeout, msg, extra))
        time.sleep(interval)


def tail(path, nbytes=6000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "<%s: %s>" % (path, e)


# ---------------------------------------------------------------------------------------------
# Raw HTTP


def parse_response_head(data):
    """Parses one response head at the start of data (bytes). Returns
    (status, reason, headers as list of (lower-case name, value), head length) or None when no
    complete head is there."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    m = re.match(rb"^HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0])
    if not m:
        raise ValueError("bad status line: %r" % lines[0])
    headers = []
    for ln in lines[1:]:
        name, sep, value = ln.partition(b":")
        if not sep:
            raise ValueError("bad header line: %r" % ln)
        headers.append((name.decode("latin-1").strip().lower(), value.decode("latin-1").strip()))
    return int(m.group(1)), m.group(2).decode("latin-1"), headers, end + 4


class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.headers = {}
        for k, v in headers:
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body

    def __repr__(self):
        return "RawResponse(%d %s, %r)" % (self.status, self.reason, self.headers)


def parse_responses(data, head_only_statuses=()):
    """Splits raw bytes into a list of RawResponse (Content-Length framing; 204, 304, 1xx and
    head_only_statuses have no body, as answers to HEAD). Returns (responses, leftover bytes)."""
    out = []
    while data:
        h = parse_response_head(data)
        if h is None:
            break
        status, reason, headers, hl = h
        clen = 0
        for k, v in headers:
            if k == "content-length":
                clen = int(v)
        if status in (204, 304) or 100 <= status < 200 or status in head_only_statuses:
            clen = 0
        if len(data) < hl + clen:
            break
        out.append(RawResponse(status, reason, headers, data[hl : hl + clen]))
        data = data[hl + clen :]
    return out, data


def asan_build(path=None):
    """True when the steerd binary (default: steerd_bin()) is built with AddressSanitizer, whose
    quarantine holds freed memory: memory bounds are then reported, not enforced."""
    try:
        with open(path or steerd_bin(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def raw_exchange(port, payload, timeout=5.0, until_close=True, expect_responses=None):
    """Sends payload (bytes) on a new connection to 127.0.0.1:port and reads. Reads until the
    peer closes, or (with expect_responses=N) until N complete responses are there, or until
    timeout. Returns (bytes read, closed_by_peer)."""
    deadline = time.monotonic() + timeout
    buf = b""
    closed = False
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close early on a hostile head; read what it sent
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
            if not until_close and expect_responses is not None:
                rs, _ = parse_responses(buf)
                if len(rs) >= expect_responses:
                    break
    return buf, closed


class HttpClient:
    """A keep-alive HTTP/1.1 client on one connection (http.client, no redirect following)."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, headers=None, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                hdrs = {}
                for k, v in r.getheaders():
                    k = k.lower()
                    hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
                if r.will_close:
                    self.close()
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed (idle timeout): retry once fresh.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def http_request(port, method, path, headers=None, body=None, timeout=5.0):
    c = HttpClient(port, timeout)
    try:
        return c.request(method, path, headers, body)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# nginx: origin and caching CDN edges

_MIME_TYPES = """
    types {
        text/html html;
        text/plain txt;
        application/json json;
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml mpd;
        video/mp4 mp4 m4s m4v;
        audio/mp4 m4a;
        video/mp2t ts;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
"""


class Nginx:
    """One nginx instance in its own temp dir.

    role "origin": serves docroot (a directory; default: <tmp>/docroot, created empty).
    role "cdn":    a caching reverse proxy of origin_port (proxy_cache in the temp dir), adds
                   "X-Served-By: <name>", serves /probe.bin (1 KiB) itself. With prefix "/edge",
                   /edge/<path> is proxied to origin /<path> (a base URL with a path prefix).
    Both add CORS headers with "always"."""

    def __init__(self, name, role="cdn", origin_port=None, docroot=None, port=None, prefix="",
                 fixed_tmpdir=None):
        assert role in ("origin", "cdn")
        if role == "cdn" and origin_port is None:
            raise ValueError("a CDN needs origin_port")
        self.name = name
        self.role = role
        self.origin_port = origin_port
        self.prefix = prefix.rstrip("/")
        self.port = port or free_port()
        self.own_tmp = fixed_tmpdir is None
        self.dir = fixed_tmpdir or make_tmpdir("steerd-nginx-%s-" % name)
        os.makedirs(self.dir, exist_ok=True)
        self.docroot = docroot or os.path.join(self.dir, "docroot")
        os.makedirs(self.docroot, exist_ok=True)
        self.local = os.path.join(self.dir, "local")
        os.makedirs(self.local, exist_ok=True)
        with open(os.path.join(self.local, "probe.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4)
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "cache"):
            os.makedirs(os.path.join(self.dir, "tmp", t), exist_ok=True)
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.proc = None
        self._write_conf()
        _live.append(self)

    @property
    def base_url(self):
        return "http://%s:%d%s" % (LOOPBACK, self.port, self.prefix)

    @property
    def probe_url(self):
        return "http://%s:%d/probe.bin" % (LOOPBACK, self.port)

    def _write_conf(self):
        d = self.dir
        cors = (
            '        add_header Access-Control-Allow-Origin "*" always;\n'
            '        add_header Access-Control-Expose-Headers "X-Served-By, X-Cache-Status" always;\n'
        )
        served_by = '        add_header X-Served-By "%s" always;\n' % self.name
        if self.role == "origin":
            locations = (
                "    location / {\n"
                "        root %s;\n" % self.docroot
                + cors
                + "    }\n"
            )
            cache = ""
        else:
            zone = "cdn_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)
            cache = (
                "    proxy_cache_path %s/tmp/cache levels=1:2 keys_zone=%s:1m max_size=256m "
                "inactive=10m use_temp_path=off;\n" % (d, zone)
            )
            proxy = (
                "        proxy_pass http://%s:%d/;\n" % (LOOPBACK, self.origin_port)
                + "        proxy_cache %s;\n" % zone
                + "        proxy_cache_valid 200 206 1m;\n"
                + "        proxy_cache_key $uri;\n"
                + "        proxy_hide_header Access-Control-Allow-Origin;\n"
                + "        proxy_hide_header Access-Control-Expose-Headers;\n"
                + "        proxy_hide_header X-Served-By;\n"
                + '        add_header X-Cache-Status "$upstream_cache_status" always;\n'
                + cors
                + served_by
            )
            locations = (
                "    location = /probe.bin {\n"
                "        root %s;\n" % self.local
                + cors
                + served_by
                + "    }\n"
                + "    location %s/ {\n" % self.prefix
                + proxy
                + "    }\n"
            )
        user = "user root;\n" if os.geteuid() == 0 else ""
        text = (
            user
            + "worker_processes 1;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    log_format steerd '$remote_addr [$time_local] \"$request\" $status "
            "$body_bytes_sent inm=\"$http_if_none_match\" ims=\"$http_if_modified_since\"';\n"
            "    access_log %s steerd;\n"
            "    client_body_temp_path %s/tmp/body;\n"
            "    proxy_temp_path %s/tmp/proxy;\n"
            "    fastcgi_temp_path %s/tmp/fastcgi;\n"
            "    uwsgi_temp_path %s/tmp/uwsgi;\n"
            "    scgi_temp_path %s/tmp/scgi;\n"
            "    sendfile on;\n"
            "    keepalive_timeout 30s;\n"
            % (d, self.error_log, self.access_log, d, d, d, d, d)
            + _MIME_TYPES
            + cache
            + "    server {\n"
            "        listen %s:%d;\n" % (LOOPBACK, self.port)
            + "        server_name _;\n"
            + locations
            + "    }\n"
            "}\n"
        )
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            return
        err = open(os.path.join(self.dir, "stderr.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                ["nginx", "-e", self.error_log, "-c", self.conf, "-p", self.dir, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGTERM),
            )
        finally:
            err.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("nginx %s exited with %s: %s"
                                   % (self.name, self.proc.returncode, tail(self.error_log)))
            return port_accepts(self.port, 0.2)

        deadline = time.monotonic() + timeout
        while not up():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx %s did not open port %d: %s"
                                   % (self.name, self.port, tail(self.error_log)))
            time.sleep(0.03)
        return self

    def stop(self, timeout=5.0):
        """Fast shutdown; returns once the port refuses connections."""
        if self.proc is None:
            return
        _kill_group_and_wait(self.proc, signal.SIGTERM, timeout)
        # Worker processes are in the master's session: make sure none survives.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        wait_for(lambda: not port_accepts(self.port, 0.2), timeout,
                 msg="nginx %s port %d to close" % (self.name, self.port))

    def restart(self):
        self.stop()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def put(self, relpath, data):
        """Writes a file into the docroot (origin role)."""
        p = os.path.join(self.docroot, relpath.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def hits(self, needle=None):
        """Number of access-log lines (containing needle, if given)."""
        try:
            with open(self.access_log, "r", errors="replace") as f:
                return sum(1 for ln in f if needle is None or needle in ln)
        except OSError:
            return 0

    def logs(self):
        return "---- nginx %s error.log ----\n%s" % (self.name, tail(self.error_log, 3000))

    def cleanup(self):
        try:
            self.stop(timeout=3.0)
        except AssertionError:
            pass
        if self.own_tmp:
            remove_tmpdir(self.dir)
        if self in _live:
            _live.remove(self)

    def __repr__(self):
        return "Nginx(%s, %s, port %d)" % (self.name, self.role, self.port)


class FaultServer:
    """A TCP server on 127.0.0.1 that plays what nginx cannot. Mode "hang": accepts every
    connection, reads what is sent and never answers (closes only at stop). .accepted counts
    connections. Runs in a thread of the test process."""

    def __init__(self, mode="hang"):
        import threading

        assert mode in ("hang",)
        self.mode = mode
        self.accepted = 0
        self._conns = []
        self._lock = threading.Lock()
        self._stop = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="fault-%d" % self.port,
                                        daemon=True)
        self._thread.start()
        _live.append(self)

    @property
    def base_url(self):
        return "http://%s:%d" % (LOOPBACK, self.port)

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                self._drain()
                continue
            except OSError:
                return
            c.setblocking(False)
            with self._lock:
                self.accepted += 1
                self._conns.append(c)
            self._drain()

    def _drain(self):
        """Reads and discards what clients sent, so they never block on a full window."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                while c.recv(65536):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self._thread.join(timeout=5.0)
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass
            self._conns = []
        try:
            self.sock.close()
        except OSError:
            pass

    def logs(self):
        return "---- fault server %d (%s): %d connections accepted ----" % (
            self.port, self.mode, self.accepted)

    def cleanup(self):
        self.stop()
        if self in _live:
            _live.remove(self)

    def __repr__(self):
        return "FaultServer(%s, port %d)" % (self.mode, self.port)


def proc_status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
    except OSError:
        return None
    return None


class Cdns:
    """An origin and N caching CDN edges in front of it, all started."""

    def __init__(self, names=("alpha", "beta"), prefixes=None):
        prefixes = prefixes or {}
        self.origin = Nginx("origin", role="origin").start()
        self.cdn = {}
        for n in names:
            self.cdn[n] = Nginx(n, role="cdn", origin_port=self.origin.port,
                                prefix=prefixes.get(n, "")).start()

    def __getitem__(self, name):
        return self.cdn[name]

    def all(self):
        return [self.origin] + list(self.cdn.values())

    def cleanup(self):
        for n in self.all():
            n.cleanup()


# ---------------------------------------------------------------------------------------------
# Configuration


def cdn_entry(cdn_id, nginx=None, base_url=None, probe=True, interval_ms=500, timeout_ms=400,
              rise=2, fall=2, probe_url=None):
    e = {"id": cdn_id, "base_url": base_url or nginx.base_url}
    if probe:
        e["probe"] = {
            "url": probe_url or nginx.probe_url,
            "interval_ms": interval_ms,
            "timeout_ms": timeout_ms,
            "rise": rise,
            "fall": fall,
        }
    return e


def default_config(cdns, policy=None, **overrides):
    """The spec's example configuration: regions nordics (SE NO DK FI IS), uk (GB),
    lab (10.99.0.0/16), telstra (ASN 1221), default_region world. cdns: list of cdn_entry().
    Top-level keys in overrides replace (http is merged)."""
    cfg = {
        "listen": ["127.0.0.1:0"],
        "workers": 2,
        "admin": {"listen": "127.0.0.1:0", "token": None},
        "trusted_proxies": ["127.0.0.1/32"],
        # the CDNs and the origin of the tests are on loopback: steerd denies it by default
        "allow_targets": ["127.0.0.0/8"],
        "geoip": {"country_db": GEOIP_COUNTRY_DB, "asn_db": GEOIP_ASN_DB},
        "regions": [
            {"name": "nordics", "countries": ["SE", "NO", "DK", "FI", "IS"]},
            {"name": "uk", "countries": ["GB"]},
            {"name": "lab", "cidrs": ["10.99.0.0/16"]},
            {"name": "telstra", "asns": [1221]},
        ],
        "default_region": "world",
        "cdns": cdns,
        "policy": policy if policy is not None else {
            "default": {"cdns": {"alpha": 1, "beta": 1}},
            "regions": {
                "nordics": {"cdns": {"alpha": 1}, "failover": ["beta"]},
                "uk": {"cdns": {"beta": 1}, "failover": ["alpha"]},
            },
        },
        "http": {"header_timeout_ms": 2000, "shutdown_grace_ms": 2000},
    }
    http_over = overrides.pop("http", None)
    if http_over:
        cfg["http"].update(http_over)
    cfg.update(overrides)
    return cfg


# ---------------------------------------------------------------------------------------------
# steerd


_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_key(name, **labels):
    """The key metrics() uses: name{k="v",...} with label names sorted, or just name."""
    if not labels:
        return name
    return name + "{" + ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels)) + "}"


def parse_metrics(text):
    """Prometheus text exposition -> {metric_key: float}. Raises ValueError on a bad line."""
    out = {}
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\d+)?$", ln)
        if not m:
            raise ValueError("bad metrics line: %r" % ln)
        labels = {}
        if m.group(2):
            inner = m.group(2)[1:-1]
            labels = dict(_LABEL_RE.findall(inner))
        out[metric_key(m.group(1), **labels)] = float(m.group(3))
    return out


class Steerd:
    """One steerd process with its config in a temp dir.

    .port / .ports / .admin_port come from the --port-file. .get() and .admin() return
    (status, headers with lower-case names, body bytes) and never follow redirects."""

    def __init__(self, config, name="steerd", token=None, start=True, args=(), env=None,
                 wait_ready=False):
        self.name = name
        self.dir = make_tmpdir("steerd-it-%s-" % name)
        self.config_path = os.path.join(self.dir, "steerd.json")
        self.port_file = os.path.join(self.dir, "ports.json")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.token = token
        self.args = list(args)
        self.env = env
        self.proc = None
        self.port = None
        self.ports = []
        self.admin_port = None
        self.returncode = None
        self.write_config(config)
        _live.append(self)
        if start:
            self.start()
            if wait_ready:
                self.wait_ready()

    # -- config files --

    def write_config(self, config):
        """config: a dict (written as JSON) or str/bytes (written as is). Atomic (tmp+rename)."""
        if isinstance(config, dict):
            self.config = config
            data = json.dumps(config, indent=2).encode()
        elif isinstance(config, str):
            data = config.encode()
        else:
            data = bytes(config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.config_path)

    # -- process --

    def start(self, timeout=15.0):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [steerd_bin(), "-c", self.config_path, "--port-file", self.port_file] + self.args,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGKILL),
            )
        finally:
            out.close()
            err.close()
        self.returncode = None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RuntimeError("steerd exited with %d before writing its port file:\n%s"
                                   % (self.returncode, self.stderr()))
            if os.path.exists(self.port_file):
                try:
                    with open(self.port_file) as f:
                        pf = json.load(f)
                    break
                except ValueError:
                    pass  # a port file must appear whole (tmp + rename); retry until deadline
            if time.monotonic() > deadline:
                raise RuntimeError("steerd wrote no port file within %.0f s:\n%s"
                                   % (timeout, self.stderr()))
            time.sleep(0.02)
        self.port_info = pf
        self.ports = [int(a.rsplit(":", 1)[1]) for a in pf["listen"]]
        self.port = self.ports[0]
        self.admin_port = int(pf["admin"].rsplit(":", 1)[1]) if pf.get("admin") else None
        return self

    def wait_ready(self, timeout=10.0):
        wait_for(lambda: self.admin("/readyz")[0] == 200, timeout, msg="steerd /readyz 200")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """SIGHUP (asynchronous: poll metrics for the outcome)."""
        self.send_signal(signal.SIGHUP)

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Sends sig and waits up to timeout seconds; returns the exit code (SIGKILL after the
        deadline, then the code is negative)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        self.returncode = self.proc.returncode
        return self.returncode

    def wait_exit(self, timeout):
        """Waits for the process to exit on its own; returns its code or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            return None

    def stderr(self):
        return tail(self.stderr_path, 12000)

    def stderr_size(self):
        try:
            return os.path.getsize(self.stderr_path)
        except OSError:
            return 0

    def stderr_since(self, offset):
        with open(self.stderr_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def logs(self):
        return "---- %s stderr (%s) ----\n%s" % (self.name, self.stderr_path, self.stderr())

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            _kill_group_and_wait(self.proc, signal.SIGKILL, 5.0)
        remove_tmpdir(self.dir)
        if self in _live:
            _live.remove(self)

    # -- HTTP --

    def client(self):
        return HttpClient(self.port)

    def get(self, path, headers=None, method="GET"):
        return http_request(self.port, method, path, headers)

    def request(self, method, path, headers=None, body=None):
        return http_request(self.port, method, path, headers, body)

    def raw(self, payload, timeout=5.0, until_close=True, expect_responses=None):
        """Sends raw bytes to the player port; returns the raw bytes read (see raw_exchange)."""
        return raw_exchange(self.port, payload, timeout, until_close, expect_responses)[0]

    def admin(self, path, method="GET", token=None, body=None, headers=None):
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        return http_request(self.admin_port, method, path, h, body)

    def admin_json(self, path, method="GET", token=None):
        st, h, body = self.admin(path, method, token)
        return st, (json.loads(body) if body else None)

    def metrics(self):
        st, h, body = self.admin("/metrics")
        if st != 200:
            raise AssertionError("/metrics answered %d: %r" % (st, body[:200]))
        return parse_metrics(body.decode())

    def metric(self, name, default=None, **labels):
        return self.metrics().get(metric_key(name, **labels), default)

    def redirect(self, path, headers=None):
        """GET path; asserts a 302 and returns (cdn id, Location)."""
        st, h, body = self.get(path, headers)
        if st != 302:
            raise AssertionError("GET %s -> %d %r, expected 302" % (path, st, body[:200]))
        return h.get("x-steerd-cdn"), h.get("location")


# ---------------------------------------------------------------------------------------------
# unittest glue


class SteerdTestCase(unittest.TestCase):
    """Prints the logs of every registered steerd / nginx when a test fails."""

    log_sources = []  # per class: objects with .logs()

    @classmethod
    def watch(cls, *objs):
        if "log_sources" not in cls.__dict__:
            cls.log_sources = []
        cls.log_sources.extend(objs)
        return objs[0] if len(objs) == 1 else objs

    def watch_local(self, *objs):
        self._local_logs = getattr(self, "_local_logs", []) + list(objs)
        return objs[0] if len(objs) == 1 else objs

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not outcome.success
        if failed:
            for src in list(type(self).log_sources) + getattr(self, "_local_logs", []):
                try:
                    sys.stderr.write("\n" + src.logs() + "\n")
                except Exception as e:
                    sys.stderr.write("\n<logs of %r unavailable: %s>\n" % (src, e))
        self._local_logs = []


def main():
    """unittest.main with the usual summary; exit code 1 on failure."""
    unittest.main(verbosity=2)


def _cli(argv):
    """python3 steerdtest.py nginx-conf ROLE NAME PORT DIR [ORIGIN_PORT] [DOCROOT]
    writes DIR/nginx.conf for an origin or CDN (as the tests use them) and prints its path;
    tools/demo runs nginx with it."""
    if len(argv) < 5 or argv[0] != "nginx-conf":
        sys.stderr.write("usage: steerdtest.py nginx-conf origin|cdn NAME PORT DIR "
                         "[ORIGIN_PORT] [DOCROOT]\n")
        return 2
    role, name, port, d = argv[1], argv[2], int(argv[3]), os.path.abspath(argv[4])
    origin_port = int(argv[5]) if len(argv) > 5 and argv[5] else None
    docroot = os.path.abspath(argv[6]) if len(argv) > 6 else None
    n = Nginx(name, role=role, origin_port=origin_port, docroot=docroot, port=port,
              fixed_tmpdir=d)
    _live.remove(n)
    print(n.conf)
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
