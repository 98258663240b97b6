#!/usr/bin/env python3
"""bench/syscalls.py — system calls per request of each proxy's workers (strace -c).

Starts each proxy with one worker (bench/*.conf templates), attaches `strace -c -f` to
all its processes, sends N requests one after another on one keep-alive connection,
and prints the count of each system call divided by N.  In this VM a system call
costs far more than the user-space work of a request, so this is where CPU/request
goes.   python3 bench/syscalls.py [pass|reject ...]   (N=2000, PROXIES=...)
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

N = int(os.environ.get("N", "2000"))


def main():
    scens = sys.argv[1:] or ["pass", "reject"]
    ups = [bench.free_port(), bench.free_port()]
    upp = [subprocess.Popen([bench.UPSTREAM_BIN, str(p)]) for p in ups]
    try:
        for p, u in zip(upp, ups):
            bench.wait_port(u, p)
        for scen in scens:
            for proxy in bench.PROXIES:
                px = bench.Proxy(proxy, 1, scen, ups)
                try:
                    bench.sequential(px.port, [b"warm"] * 50, header="X-Key")
                    pids = bench.descendants(px.pid())
                    out = os.path.join(px.dir, "strace.txt")
                    argv = ["strace", "-c", "-f", "-o", out]
                    for p in pids:
                        argv += ["-p", str(p)]
                    st = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                    bench.sequential(px.port, [b"one"] * N, header="X-Key")
                    st.send_signal(signal.SIGINT)
                    st.wait(10)
                    text = open(out).read()
                finally:
                    px.stop()
                rows, total = [], 0
                for line in text.splitlines():
                    f = line.split()
                    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                        calls = int(f[3])
                        rows.append((calls, f[-1]))
                        total += calls
                rows.sort(reverse=True)
                print("%-8s %-8s %5.1f syscalls/request: %s" % (
                    scen, proxy, total / N,
                    ", ".join("%s %.2f" % (name, c / N) for c, name in rows if c / N >= 0.05)))
    finally:
        for p in upp:
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    main()
