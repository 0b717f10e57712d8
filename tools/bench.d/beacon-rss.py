#!/usr/bin/env python3
"""tools/bench --beacon, second part: 1M distinct CMCD session ids through a real steerd.

    beacon-rss.py STEERD_BIN [N]

Starts STEERD_BIN on loopback (2 workers, no probes, rate limit out of the way), POSTs N
(default 1000000) application/cmcd reports with distinct UUID-like sids, 200 per body on one
keep-alive connection, and prints the daemon's VmRSS / VmHWM before, after 100k and after N,
the HTTP ingestion rate and the steerd_beacons_total counters. Nothing is kept per session, so
the growth must not depend on N (goal: <= 64 MB RSS). Exit 1 when an answer is not 204 or a
sample was lost."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "support"))
os.environ["STEERD_BIN"] = sys.argv[1]
import steerdtest as t  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
PER_BODY = 200

cfg = t.default_config([t.cdn_entry("alpha", base_url="http://127.0.0.1:9/a", probe=False),
                        t.cdn_entry("beta", base_url="http://127.0.0.1:9/b", probe=False)],
                       beacon={"rate_per_s": 1000000, "burst": 1000000}, workers=2)
d = t.Steerd(cfg, name="beacon-rss")
pid = d.proc.pid
time.sleep(0.5)
kib = lambda f: t.proc_status_kib(pid, f)  # noqa: E731
print("baseline      VmRSS %6d KiB  VmHWM %6d KiB" % (kib("VmRSS"), kib("VmHWM")))
c = d.client()
n = 0
t0 = time.monotonic()
while n < N:
    k = min(PER_BODY, N - n)
    body = "".join('bl=%d,mtp=%d,sid="%08x-c457-11e9-bb97-0800200c9a66"\n'
                   % (i % 30000, 1000 + i % 9000, i) for i in range(n, n + k)).encode()
    status, _, _ = c.request("POST", "/beacon", {"Content-Type": "application/cmcd"}, body)
    if status != 204:
        sys.exit("POST /beacon answered %d" % status)
    n += k
    if n == 100000:
        print("after 100k    VmRSS %6d KiB  VmHWM %6d KiB" % (kib("VmRSS"), kib("VmHWM")))
el = time.monotonic() - t0
time.sleep(0.5)
print("after %-7d VmRSS %6d KiB  VmHWM %6d KiB" % (n, kib("VmRSS"), kib("VmHWM")))
m = d.metrics()
res = {r: int(m.get(t.metric_key("steerd_beacons_total", result=r), 0))
       for r in ("accepted", "bad", "rate_limited", "dropped")}
print("%d sids in %.1f s over HTTP (%.0f samples/s, one client); steerd_beacons_total %s"
      % (n, el, n / el, res))
d.stop()
sys.exit(0 if res["accepted"] == n else 1)
