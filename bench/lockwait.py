#!/usr/bin/env python3
"""bench/lockwait.py — zone lock waits and per-worker split under load, for two or
more zonegate binaries alternating run by run.

For each binary (BINS="a b", each a path, optionally VAR=VALUE:path to run it with
that environment variable), scenario (SCENARIOS, bench.py's) and
repetition: start zonegate with bench/zonegate.conf (WORKERS workers, upstream
KEEPALIVE), run wrk -cCONNS for DURATION s, then read /metrics: acquisitions of each
zone's lock that waited, the time they waited, and the connections and requests of
each worker; halfway through the run it counts the client connections each worker
holds (bench.conn_split, which works for any binary).  Prints one line a run, and the medians.

  BINS="build/zonegate /tmp/old/zonegate" REPS=3 DURATION=5 CONNS=256 WORKERS=2 \
      python3 bench/lockwait.py
"""
import os
import re
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BINS = os.environ.get("BINS", bench.ZG_BIN).split()
REPS = int(os.environ.get("REPS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
CONNS = int(os.environ.get("CONNS", "256"))
WORKERS = int(os.environ.get("WORKERS", "2"))
KEEPALIVE = int(os.environ.get("KEEPALIVE", "256"))
SCENARIOS = os.environ.get("SCENARIOS", "pass manykeys").split()


def metrics(port):
    body = bench.http_get(port, "/metrics")
    waits = {z: int(v) for z, v in re.findall(
        r'^zonegate_zone_lock_waits_total\{zone="([^"]+)"\} (\d+)$', body, re.M)}
    secs = {z: float(v) for z, v in re.findall(
        r'^zonegate_zone_lock_wait_seconds_total\{zone="([^"]+)"\} ([\d.]+)$', body, re.M)}
    conns = [int(v) for v in re.findall(
        r'^zonegate_worker_connections_total\{worker="\d+"\} (\d+)$', body, re.M)]
    reqs = [int(v) for v in re.findall(
        r'^zonegate_worker_requests_total\{worker="\d+"\} (\d+)$', body, re.M)]
    m = re.search(r'^zonegate_upstream_connects_total (\d+)$', body, re.M)
    upc = int(m.group(1)) if m else 0
    m = re.search(r'^zonegate_upstream_connect_seconds_total ([\d.]+)$', body, re.M)
    ups = float(m.group(1)) if m else 0.0
    return waits, secs, conns, reqs, upc, ups


def one(binary, scen, ups):
    env = None
    if ":" in binary:
        var, binary = binary.split(":", 1)
        env = var.split("=", 1)
        os.environ[env[0]] = env[1]
    bench.ZG_BIN = binary
    keys = bench.SCEN[scen]["keys"]
    try:
        px = bench.Proxy("zonegate", WORKERS, scen, ups, keepalive=KEEPALIVE)
    finally:
        if env:
            del os.environ[env[0]]
    try:
        res = {}
        th = threading.Thread(target=lambda: res.update(
            out=bench.wrk(px.port, CONNS, DURATION, keys)))
        th.start()
        th.join(DURATION / 2.0)
        split = bench.conn_split(px.pid(), px.port)
        th.join()
        out = res["out"]
        try:
            waits, secs, conns, reqs, upc, ups = metrics(px.port)
        except (ValueError, KeyError):
            waits, secs, conns, reqs, upc, ups = {}, {}, [], [], 0, 0.0  # a binary without them
    finally:
        px.stop()
    r = bench.parse_wrk(out)
    n = max(r["requests"], 1)
    r["waits_per_kreq"] = 1000.0 * sum(waits.values()) / n
    r["wait_us_per_req"] = 1e6 * sum(secs.values()) / n
    r["wait_us_per_wait"] = 1e6 * sum(secs.values()) / max(sum(waits.values()), 1)
    r["max_conn_share"] = max(split) / max(sum(split), 1) if split else float("nan")
    r["max_req_share"] = max(reqs) / sum(reqs) if reqs and sum(reqs) else float("nan")
    r["conns"], r["reqs"] = split, reqs
    r["connects_per_kreq"] = 1000.0 * upc / n
    r["connect_us_per_req"] = 1e6 * ups / n
    return r


def main():
    ups = [bench.free_port(), bench.free_port()]
    upp = [subprocess.Popen([bench.UPSTREAM_BIN, str(p)]) for p in ups]
    rows = {}
    try:
        for p, u in zip(upp, ups):
            bench.wait_port(u, p)
        for scen in SCENARIOS:
            for rep in range(REPS):
                for b in BINS:
                    r = one(b, scen, ups)
                    rows.setdefault((scen, b), []).append(r)
                    print("%-8s %-40s rep %d: %8.0f req/s p99 %6.2f ms; lock waits %.2f per 1k "
                          "req, %.2f us/req, %.1f us/wait; upstream connects %.1f per 1k req, "
                          "%.1f us/req; conns %s reqs %s" % (
                              scen, b, rep + 1, r["rps"], r["p99_ms"], r["waits_per_kreq"],
                              r["wait_us_per_req"], r["wait_us_per_wait"],
                              r["connects_per_kreq"], r["connect_us_per_req"], r["conns"],
                              r["reqs"]), flush=True)
    finally:
        for p in upp:
            p.terminate()
            p.wait(5)
    print("\nmedians (%d reps, %d workers, %d conns, keepalive %d, %ds runs):"
          % (REPS, WORKERS, CONNS, KEEPALIVE, DURATION))
    for (scen, b), rs in rows.items():
        m = {f: statistics.median([r[f] for r in rs]) for f in (
            "rps", "p99_ms", "waits_per_kreq", "wait_us_per_req", "wait_us_per_wait",
            "max_conn_share", "max_req_share", "connects_per_kreq", "connect_us_per_req")}
        print("%-8s %-40s %8.0f req/s p99 %6.2f ms; waits/1k req %.2f; wait us/req %.3f; "
              "us/wait %.1f; upstream connects/1k req %.1f, %.1f us/req; busiest worker: "
              "%.0f%% of conns (mid-run), %.0f%% of reqs (whole run)" % (
                  scen, b, m["rps"], m["p99_ms"], m["waits_per_kreq"], m["wait_us_per_req"],
                  m["wait_us_per_wait"], m["connects_per_kreq"], m["connect_us_per_req"],
                  100 * m["max_conn_share"], 100 * m["max_req_share"]))


if __name__ == "__main__":
    main()
