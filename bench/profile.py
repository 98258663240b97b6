#!/usr/bin/env python3
"""bench/profile.py — instructions per request of zonegate, pass path and reject path.

Runs zonegate (worker_processes 1, bench/zonegate.conf) under
`valgrind --tool=callgrind --trace-children=yes`, sends exactly N requests one after
another on one keep-alive connection (bench.sequential), stops it, and sums the Ir
(instructions executed) of the master and the worker.  It does this twice, with N1
and N2 requests, so that start-up and shutdown cancel out:

    Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1)

then prints the top functions (self cost) of the N2 worker with callgrind_annotate.
Needs valgrind (bench/run.sh does not install it: `apt-get install valgrind`).

  python3 bench/profile.py [pass|reject ...]      (default: pass reject)
  N1=500 N2=3000 ZG_BIN=build/zonegate TOP=25 OUT=bench/results/profile
  PROXY=nginx profiles nginx the same way (for comparison)
  SYNC="sync=redis://127.0.0.1:6379" adds Redis sync to the limit_req zone
"""
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

N1 = int(os.environ.get("N1", "500"))
N2 = int(os.environ.get("N2", "3000"))
TOP = int(os.environ.get("TOP", "25"))
OUT = os.environ.get("OUT", os.path.join(bench.RES, "profile"))
PROXY = os.environ.get("PROXY", "zonegate")
BINVAR = {"zonegate": "ZG_BIN", "nginx": "NGINX_BIN"}[PROXY]


# valgrind makes system calls outside the worker sandbox's allow-list (seccomp):
# the profiled zonegate runs its workers without it (user-space instructions are
# the same either way)
_render = bench.render


# SYNC="sync=redis://127.0.0.1:PORT": the limit_req zone syncs with that Redis (the
# sync's own work on the worker's loop counts too)
SYNC = os.environ.get("SYNC", "")


def _render_unsandboxed(template, out, vals):
    _render(template, out, vals)
    if template == "zonegate.conf":
        with open(out) as f:
            text = f.read()
        if SYNC:
            text = re.sub(r"(limit_req_zone [^;]*);", r"\1 %s;" % SYNC, text, count=1)
        with open(out, "w") as f:
            f.write(text + "worker_sandbox off;\n")


bench.render = _render_unsandboxed


def ir_of(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return 0


def measure(scen, n, ups, tag):
    d = os.path.join(OUT, "%s-%s-%d" % (PROXY, scen, n))
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)  # nginx workers run as nobody
    for f in glob.glob(os.path.join(d, "callgrind.out.*")):
        os.unlink(f)
    real = getattr(bench, BINVAR)
    wrapper = os.path.join(d, "%s-vg" % PROXY)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind --trace-children=yes "
                "--callgrind-out-file=%s/callgrind.out.%%p %s \"$@\"\n" % (d, real))
    os.chmod(wrapper, 0o755)
    setattr(bench, BINVAR, wrapper)
    try:
        px = bench.Proxy(PROXY, 1, scen, ups)
    finally:
        setattr(bench, BINVAR, real)
    try:
        # the worker may still be starting under valgrind: wait for a first answer
        end = time.time() + 60
        while True:
            try:
                bench.sequential(px.port, [b"warm"])
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.2)
        keys = [b"one"] * n
        t0 = time.time()
        codes = bench.sequential(px.port, keys, header="X-Key")
        dt = time.time() - t0
    finally:
        px.stop()
    time.sleep(0.5)
    files = sorted(glob.glob(os.path.join(d, "callgrind.out.*")))
    irs = {f: ir_of(f) for f in files}
    worker = max(irs, key=irs.get) if irs else None
    ok = sum(1 for c in codes if c == 200)
    bench.log("%s n=%d: %d x 200, %d other, %.1fs under callgrind; Ir %s" % (
        scen, n, ok, len(codes) - ok, dt, {os.path.basename(k): v for k, v in irs.items()}))
    return sum(irs.values()), worker


def main():
    scens = sys.argv[1:] or ["pass", "reject"]
    ups = [bench.free_port(), bench.free_port()]
    upp = [subprocess.Popen([bench.UPSTREAM_BIN, str(p)]) for p in ups]
    try:
        for p, u in zip(upp, ups):
            bench.wait_port(u, p)
        report = []
        for scen in scens:
            a, _ = measure(scen, N1, ups, "a")
            b, worker = measure(scen, N2, ups, "b")
            per = (b - a) / (N2 - N1)
            report.append("%s %s: %.0f instructions per request (Ir(%d)=%d, Ir(%d)=%d)"
                          % (PROXY, scen, per, N2, b, N1, a))
            ann = subprocess.run(["callgrind_annotate", "--inclusive=no", worker],
                                 capture_output=True, text=True).stdout
            top = [l for l in ann.splitlines() if re.match(r"^\s*[\d,]+ \(", l)][:TOP + 1]
            report.append("top functions by self cost, worker, %d requests (%s):" % (N2, worker))
            report.extend("    " + l.strip() for l in top)
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", worker],
                                 capture_output=True, text=True).stdout
            top = [l for l in ann.splitlines() if re.match(r"^\s*[\d,]+ \(", l)][:TOP + 1]
            report.append("top functions by inclusive cost:")
            report.extend("    " + l.strip() for l in top)
            report.append("")
        text = "\n".join(report)
        with open(os.path.join(OUT, "profile-%s.txt" % PROXY), "w") as f:
            f.write(text + "\n")
        print(text)
    finally:
        for p in upp:
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    main()
