"""Cluster-wide limit_req through Redis (issue 8): three zonegate instances stand
for three hosts sharing one zone through a real redis-server on loopback."""
import os
import threading
import time

import sync_util
import zg
from sync_util import Redis, drive, has_redis_conn, metric, run_clients
from zg import free_port, wait_for, zonegate_t

ASAN = bool(os.environ.get("ZG_ASAN")) or "asan" in os.environ.get("ZG_BIN", "")
MAX_LATENCY = 0.4 if ASAN else 0.2


def hosts(n, redis, rate, burst, interval="50ms"):
    sync = "sync=redis://127.0.0.1:%d sync_interval=%s" % (redis.port, interval)
    return sync_util.hosts(n, sync, rate, burst)


def test_fleet_shares_one_limit():
    """3 hosts at rate=30r/s burst=10, 40 r/s offered to each for 3 s: the fleet
    admits about 30 r/s (the documented bound), not 90 r/s"""
    rate, burst, interval, secs = 30, 10, 0.05, 3.0
    r = Redis()
    hs = hosts(3, r, rate, burst, "50ms")
    ports = [p for _, p in hs]
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 1 for p in ports), 10)
    b_start = [metric(p, "zonegate_sync_batches_total") for p in ports]
    logs = run_clients(ports, 40, secs)
    b_end = [metric(p, "zonegate_sync_batches_total") for p in ports]
    ok = [sum(1 for _, st, _ in log if st == 200) for log in logs]
    statuses = {st for log in logs for _, st, _ in log}
    assert statuses <= {200, 429}, statuses
    t = max(e[0] for log in logs for e in log) - min(e[0] for log in logs for e in log)
    admitted = sum(ok)
    sent = sum(len(log) for log in logs)
    # the interval the hosts really synced at (a busy machine runs timers late)
    interval = max([interval] + [t / max(1, y - x) for x, y in zip(b_start, b_end)])
    # fleet worst case: R*(t + T) + H*(B + 1) + (H - 1)*R*S, S = staleness = 2*T (+ RTT)
    bound = rate * (t + interval) + 3 * (burst + 1) + 2 * rate * (2 * interval + 0.02)
    print("fleet admitted %d of %d in %.2fs (per host %s), synced every %.0f ms, bound %.1f, "
          "unsynced would be ~%d" % (admitted, sent, t, ok, interval * 1000, bound,
                                     3 * (rate * t + burst)))
    assert admitted <= bound, (admitted, bound, ok)
    assert admitted < 1.6 * (rate * t + burst), (admitted, ok)
    # and it really is shared, not starved: the fleet gets about its rate (or what
    # the clients managed to offer, if a busy machine kept them below it)
    assert admitted >= 0.8 * min(rate * t, sent), (admitted, sent, ok)
    for _, p in hs:
        assert metric(p, "zonegate_sync_batches_total") > 10
        assert metric(p, "zonegate_sync_errors_total") == 0
    assert r.clients() == 3  # one connection per host, whatever its worker count

    # the syncing worker dies: a worker of the same host takes the sync over
    z0, p0 = hs[0]
    pids = z0.workers()
    owner = None
    for pid in pids:
        try:
            if has_redis_conn(pid, r.port):
                owner = pid
        except OSError:
            pass
    assert owner is not None, pids
    os.kill(owner, 9)
    b0 = metric(p0, "zonegate_sync_batches_total")
    run_clients([p0], 40, 1.0)
    assert wait_for(lambda: metric(p0, "zonegate_sync_batches_total") > b0 + 3, 5)
    # the dead worker's connection is gone (once Redis has seen it close), the new one
    # is there
    assert wait_for(lambda: r.clients() == 3, 5), r.clients()
    for z, _ in hs:
        assert "sync with" not in z.error_log() or "is down" not in z.error_log()
        z.stop()


def test_fast_zone_is_not_overcharged():
    """rate x interval well above the burst (2000r/s, burst=20, 200 ms): a host
    pushing 40 requests per interval must not be charged them all at once"""
    r = Redis()
    (z, port), = hosts(1, r, 2000, 20, "200ms")
    assert wait_for(lambda: metric(port, "zonegate_sync_up") == 1, 10)
    log = run_clients([port], 200, 1.5)[0]
    assert all(st == 200 for _, st, _ in log), [st for _, st, _ in log].count(429)
    assert metric(port, "zonegate_sync_batches_total") >= 5
    z.stop()


def test_redis_outage_falls_back_to_local_limits():
    rate, burst = 20, 5
    r = Redis()
    hs = hosts(3, r, rate, burst, "50ms")
    ports = [p for _, p in hs]
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 1 for p in ports), 10)
    run_clients(ports, 30, 0.5)

    # Redis dies mid-run: nothing fails or waits, each host limits on its own
    stop = threading.Event()
    zg.STOPS.append(stop.set)  # if the test fails before it stops them
    logs = [[] for _ in ports]
    ts = [threading.Thread(target=drive, args=(p, 30, 60 * zg.SLOW, logs[i], stop),
                           daemon=True)
          for i, p in enumerate(ports)]
    for t in ts:
        t.start()
    assert wait_for(lambda: all(len(log) >= 5 for log in logs), 5), [len(x) for x in logs]
    r.kill()
    t_kill = time.monotonic()
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 0 for p in ports), 5)
    time.sleep(2.0)  # the outage: the clients go on
    t_back = time.monotonic()
    r.start()  # same port
    assert wait_for(lambda: all(metric(p, "zonegate_sync_up") == 1 for p in ports), 10)
    b0 = [metric(p, "zonegate_sync_batches_total") for p in ports]
    # sync resumed by itself: batches go on while the clients do
    assert wait_for(lambda: all(metric(p, "zonegate_sync_batches_total") > x
                                for p, x in zip(ports, b0)), 5), b0
    stop.set()
    for t in ts:
        t.join(10 * zg.SLOW)

    for i, log in enumerate(logs):
        assert log, "no requests"
        bad = [st for _, st, _ in log if st not in (200, 429)]
        assert not bad, (i, bad[:5])
        # nothing waits for Redis (a wait would take its 1 s timeout): requests while
        # it is away are no slower than the others of the same run (same machine,
        # same load), by far less than that timeout
        slow = [(round(s0 - t_kill, 3), round(l, 3)) for s0, _, l in log if l > MAX_LATENCY]
        if slow:
            print("host %d: slow requests (s after the kill, latency): %s" % (i, slow))
        away = sorted(l for s0, _, l in log if t_kill <= s0 < t_back)
        other = sorted(l for s0, _, l in log if not t_kill <= s0 < t_back)
        assert away and other, (i, len(away), len(other))
        p90 = lambda lat: lat[int(len(lat) * 0.9)]  # noqa: E731
        assert p90(away) < p90(other) + 0.5, (i, away[-10:], other[-10:])
        # while Redis is away (after a settle), this host enforces its own limit:
        # about rate*t (or what the client offered), well above its third of the
        # fleet's share, and never above rate*t + burst (t stretched by how late the
        # last of these requests could have been decided)
        w0, w1 = t_kill + 0.5, t_back
        mine = [(st, l) for s, st, l in log if w0 <= s < w1]
        ok = sum(1 for st, _ in mine if st == 200)
        local = rate * (w1 - w0)
        late = max(l for _, l in mine)
        assert 0.7 * min(local, len(mine)) <= ok <= rate * (w1 - w0 + late) + burst + 2, \
            (i, ok, len(mine), local, late)
    for z, p in hs:
        log = z.error_log()
        assert log.count("is down") == 1, log  # logged once, not per retry
        assert log.count("is restored") == 1, log
        assert metric(p, "zonegate_sync_errors_total") >= 1
        z.stop()


def test_bad_redis_url_is_a_config_error():
    base = ("http {{ limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s %s;\n"
            " server {{ listen 127.0.0.1:%d; location / {{ limit_req zone=z; return 200; }} }} }}\n")
    for bad in ("sync=http://127.0.0.1:6379", "sync=redis://127.0.0.1",
                "sync=redis://127.0.0.1:99999", "sync=redis://127.0.0.1:6379/db",
                "sync=redis://127.0.0.1:6379 sync_interval=0"):
        rc, out, path = zonegate_t(base % (bad, free_port()))
        assert rc != 0, (bad, out)
        assert "limit_req_zone" in out and path in out, (bad, out)
    rc, out, _ = zonegate_t(base % ("sync=redis://127.0.0.1:6379/2 sync_interval=20ms",
                                    free_port()))
    assert rc == 0, out
