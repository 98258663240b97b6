"""Fleet-wide limit_conn with leases (issue 20): five zonegate hosts, two workers each,
share `limit_conn` through Redis; a host killed with SIGKILL stops counting once its
leases expire."""
import http.client
import json
import os
import signal
import socket
import threading
import time

import sync_util
from sync_util import Redis, metric
from zg import SLOW, Upstream, Zonegate, free_port, get, wait_for

ASAN = bool(os.environ.get("ZG_ASAN")) or "asan" in os.environ.get("ZG_BIN", "")
INTERVAL = 0.05
TTL = max(5 * INTERVAL, 0.5)  # ZG_SYNC_LEASE_INTERVALS x interval, at least 500 ms

CONF = """
worker_processes 2;
http {{
    limit_conn_zone $http_x_key zone=fleet:1m sync=redis://127.0.0.1:{redis} sync_interval=50ms;
    limit_conn_status 503;
    server {{
        listen 127.0.0.1:{port};
        location / {{ limit_conn fleet {n}; proxy_pass http://{up}; }}
        location = /metrics {{ metrics; }}
        location /api/ {{ api; }}
    }}
}}
"""


def hosts(k, redis, up, n):
    out = []
    for _ in range(k):
        port = free_port()
        out.append((Zonegate(CONF, wait_ports=[port], port=port, redis=redis.port, up=up.addr,
                             n=n), port))
    return out


def paced(port, rps, seconds, hold_ms, log):
    """rps requests/s, each its own thread and connection holding hold_ms upstream;
    appends (start, end, status)"""
    def one():
        s = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=hold_ms / 1000.0 + 10)
        try:
            c.request("GET", "/slow?ms=%d" % hold_ms, headers={"X-Key": "k"})
            r = c.getresponse()
            r.read()
            st = r.status
        except (OSError, http.client.HTTPException):
            st = 0
        finally:
            c.close()
        log.append((s, time.monotonic(), st))
    ts = []
    t0 = time.monotonic()
    for i in range(int(rps * seconds)):
        d = t0 + i / rps - time.monotonic()
        if d > 0:
            time.sleep(d)
        t = threading.Thread(target=one, daemon=True)
        t.start()
        ts.append(t)
    for t in ts:
        t.join(hold_ms / 1000.0 + 20)


def peak(entries):
    """most admitted requests in flight at once (client-side start..end)"""
    ev = []
    for s, e, st in entries:
        if st == 200:
            ev += [(s, 1), (e, -1)]
    cur = best = 0
    for _, d in sorted(ev, key=lambda x: (x[0], x[1])):
        cur += d
        best = max(best, cur)
    return best


def test_sync_limit_conn_holds_fleet_wide():
    n, k, rps, hold = 10, 5, 10, 2000
    r = Redis()
    up = Upstream()
    hs = hosts(k, r, up, n)
    ports = [p for _, p in hs]
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 1 for p in ports), 10)
    logs = [[] for _ in ports]
    ts = [threading.Thread(target=paced, args=(p, rps, 2.0, hold, logs[i]), daemon=True)
          for i, p in enumerate(ports)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    entries = [e for log in logs for e in log]
    sts = [st for _, _, st in entries]
    assert set(sts) <= {200, 503}, sts
    got = peak(entries)
    # bound: N + (H - 1) * a * S: each other host may admit what arrives at it while
    # its view is stale, S = 2 intervals + a round trip and a scheduling slack (0.1 s)
    bound = n + (k - 1) * rps * (2 * INTERVAL + 0.1)
    print("fleet peak %d held (limit %d, bound %.1f, without sync up to %d); %d admitted of %d"
          % (got, n, bound, k * n, sts.count(200), len(sts)))
    assert n <= got <= bound, (got, bound)
    # every slot comes back once the requests end: no lease leaks
    assert wait_for(lambda: all(metric(p, "zonegate_sync_fleet_current") == 0 for p in ports),
                    5)
    assert wait_for(lambda: not r.keys("zgc:*"), 5), r.keys("zgc:*")
    for z, _ in hs:
        z.stop()


def hold(port, count):
    """count requests held open on port (never read): their sockets"""
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\nX-Key: k\r\n\r\n")
        out.append(s)
    return out


def test_sync_limit_conn_dead_host_leases_expire():
    n = 4
    r = Redis()
    up = Upstream()
    (a, pa), (b, pb) = hosts(2, r, up, n)
    assert wait_for(lambda: metric(pa, "zonegate_sync_up") == 1 and
                    metric(pb, "zonegate_sync_up") == 1, 10)
    socks = hold(pa, n)
    assert wait_for(lambda: metric(pa, "zonegate_sync_fleet_current") == n, 5)
    # host b learns the key (its first request may pass: the new-key case of the
    # bound), then refuses: the fleet is full with a's leases
    assert wait_for(lambda: get(pb, "/", headers={"X-Key": "k"})[0] == 503, 5)
    assert metric(pb, "zonegate_sync_fleet_current") >= n
    # the API shows b's fleet view beside its own count (none held here)
    doc = json.loads(get(pb, "/api/1/sync")[2])["fleet"]
    assert doc["kind"] == "limit_conn" and doc["state"] == "up", doc
    assert doc["fleet"] >= n and doc["local"] == 0, doc
    # a dies without a word: its leases must expire in Redis within the TTL
    os.killpg(a.proc.pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert wait_for(lambda: get(pb, "/", headers={"X-Key": "k"})[0] == 200, 5, interval=0.02)
    took = time.monotonic() - t0
    print("a's %d leases gone for b %.2fs after kill -9 (TTL %.2fs)" % (n, took, TTL))
    # the TTL, plus b's next push and answer (2 intervals), plus a second of slack
    # for a busy machine
    assert took <= (TTL + 2 * INTERVAL + 1.0) * (SLOW if ASAN else 1), took
    assert wait_for(lambda: metric(pb, "zonegate_sync_fleet_current") == 0, 5)
    for s in socks:
        s.close()
    b.stop()


def test_sync_five_hosts_limit_req_within_bound():
    """5 hosts of 2 workers, one client load spread over them: limit_req admits
    within the README's bound R*(t + T) + H*(B + 1) + (H - 1)*R*S"""
    rate, burst, k = 30, 5, 5
    r = Redis()
    hs = sync_util.hosts(k, "sync=redis://127.0.0.1:%d sync_interval=50ms" % r.port, rate,
                         burst)
    ports = [p for _, p in hs]
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 1 for p in ports), 10)
    logs = sync_util.run_clients(ports, 20, 3.0)
    entries = [e for log in logs for e in log]
    assert {st for _, st, _ in entries} <= {200, 429}
    t = max(s for s, _, _ in entries) - min(s for s, _, _ in entries)
    got = sum(1 for _, st, _ in entries if st == 200)
    bound = sync_util.fleet_bound(rate, burst, k, INTERVAL, t)
    print("5 hosts admitted %d in %.2fs (bound %.1f, offered %d, per-host limits ~%d)"
          % (got, t, bound, len(entries), k * (rate * t + burst)))
    assert got <= bound, (got, bound)
    assert got >= 0.8 * rate * t, got  # shared, not starved
    for z, _ in hs:
        z.stop()
