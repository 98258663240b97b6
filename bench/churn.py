#!/usr/bin/env python3
"""bench/churn.py — upstream connection churn with a small keep-alive pool: the
`keepalive 32` (KEEPALIVE) pass case of issue 21 with CONNS clients, zonegate
binaries (BINS, each a path) and nginx alternating run by run.  For each run: req/s,
p99, and the connections the two upstreams accepted per 1,000 requests (bench/upstream.c
counts its accepts and prints them on SIGUSR1), medians over REPS.

  BINS="build/zonegate /tmp/old/zonegate" REPS=4 DURATION=4 CONNS=256 KEEPALIVE=32 \\
      python3 bench/churn.py
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BINS = os.environ.get("BINS", bench.ZG_BIN).split()
REPS = int(os.environ.get("REPS", "4"))
DURATION = int(os.environ.get("DURATION", "4"))
CONNS = int(os.environ.get("CONNS", "256"))
WORKERS = int(os.environ.get("WORKERS", "2"))
KEEPALIVE = int(os.environ.get("KEEPALIVE", "32"))
NGINX = os.environ.get("NGINX", "1") not in ("", "0")


def accepts(procs):
    n = 0
    for p in procs:
        p.send_signal(signal.SIGUSR1)
        line = p.stderr.readline().decode()
        m = re.match(r"accepts (\d+)", line)
        n += int(m.group(1)) if m else 0
    return n


def one(name, binary, ups, upp):
    if binary:
        bench.ZG_BIN = binary
    px = bench.Proxy(name, WORKERS, "pass", ups, keepalive=KEEPALIVE)
    try:
        bench.wrk(px.port, CONNS, 1, "one", latency=False)
        a0 = accepts(upp)
        out = bench.wrk(px.port, CONNS, DURATION, "one")
        a1 = accepts(upp)
    finally:
        px.stop()
    r = bench.parse_wrk(out)
    r["accepts_per_1k"] = (a1 - a0) * 1000.0 / r["requests"] if r["requests"] else float("nan")
    return r


def main():
    up_bin = bench.UPSTREAM_BIN
    ups = [bench.free_port(), bench.free_port()]
    upp = [subprocess.Popen([up_bin, str(p)], stderr=subprocess.PIPE) for p in ups]
    runs = {}
    try:
        for p, u in zip(upp, ups):
            bench.wait_port(u, p)
        cands = [("zonegate", b) for b in BINS] + ([("nginx", None)] if NGINX else [])
        for rep in range(REPS):
            for name, b in cands:
                label = b or name
                r = one(name, b, ups, upp)
                runs.setdefault(label, []).append(r)
                bench.log("rep %d %-28s %8.0f req/s p99 %7.2f ms upstream accepts %6.1f/1k req"
                          % (rep + 1, label, r["rps"], r["p99_ms"], r["accepts_per_1k"]))
                time.sleep(0.2)
    finally:
        for p in upp:
            p.terminate()
            p.wait(5)
    print("| proxy | req/s | p99 ms | upstream connects per 1k requests |")
    print("|---|---:|---:|---:|")
    for label, rs in runs.items():
        print("| %s | %.0f | %.1f | %.1f |" % (
            label, statistics.median(r["rps"] for r in rs),
            statistics.median(r["p99_ms"] for r in rs),
            statistics.median(r["accepts_per_1k"] for r in rs)))


if __name__ == "__main__":
    main()
