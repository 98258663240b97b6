#!/usr/bin/env python3
"""bench/static.py — static-file throughput, zonegate vs nginx in one run.

Both serve the same root (a 1 KB and a 1 MB file) with the same settings
(`sendfile on; tcp_nopush on;`, access log off, WORKERS workers); wrk fetches one file
over keep-alive connections; the servers alternate run by run and each figure is the
median of REPS runs.  Also one run per server with `sendfile off` for the 1 MB file
(the read-into-memory path every TLS or filtered response takes).

Environment: ZG_BIN (build/zonegate), NGINX (/usr/sbin/nginx), REPS (3), DURATION (5 s),
WARMUP (1 s), CONNS (64), THREADS (2), WORKERS (1), FILES ("1k 1m": which files; the
sendfile-off row comes with 1m).  Writes bench/results/static.md and
prints it.

`python3 bench/static.py ir` instead counts the user-space instructions per request of
the 1 KB file (sendfile on) for both servers: valgrind --tool=callgrind on one worker
(zonegate's sandbox off: valgrind makes system calls it refuses), N1 then N2 (200,
1200) GETs one after another on one keep-alive connection, (Ir(N2) - Ir(N1)) / (N2 -
N1) over master and worker; the callgrind files stay in bench/results/static-ir/."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ZG = os.path.abspath(os.environ.get("ZG_BIN", os.path.join(ROOT, "build/zonegate")))
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
REPS = int(os.environ.get("REPS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
CONNS = int(os.environ.get("CONNS", "64"))
THREADS = int(os.environ.get("THREADS", "2"))
WORKERS = int(os.environ.get("WORKERS", "1"))

SERVER = """
    server {{
        listen 127.0.0.1:{port};
        root {root};
        sendfile {sendfile};
        tcp_nopush on;
        access_log off;
    }}
"""


def start(kind, root, sendfile, tmp, wrap=None, workers=None):
    port = free_port()
    server = SERVER.format(port=port, root=root, sendfile=sendfile)
    workers = workers or WORKERS
    if kind == "zonegate":
        conf = ("worker_processes %d;\npid %s/zg.pid;\nerror_log %s/zg.log notice;\n"
                "%shttp {\nkeepalive_requests 100000000;\n%s}\n" % (workers, tmp, tmp,
                                      "worker_sandbox off;\n" if wrap else "", server))
        path = os.path.join(tmp, "zg.conf")
        open(path, "w").write(conf)
        argv = [ZG, "-c", path]
    else:
        conf = ("user root;\nworker_processes %d;\npid %s/ng.pid;\nerror_log %s/ng.log notice;\n"
                "events { worker_connections 1024; }\nhttp {\n"
                "client_body_temp_path %s/b; proxy_temp_path %s/p; fastcgi_temp_path %s/f;\n"
                "uwsgi_temp_path %s/u; scgi_temp_path %s/s;\nkeepalive_requests 100000000;\n"
                "%s}\n" % ((workers,) + (tmp,) * 7 + (server,)))
        path = os.path.join(tmp, "ng.conf")
        open(path, "w").write(conf)
        argv = [NGINX, "-p", tmp + "/", "-c", path, "-g", "daemon off; master_process on;"]
    p = subprocess.Popen((wrap or []) + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, p)
    return p, port


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def cpu_ticks(pid):
    """utime+stime of the process group led by pid (master and workers)"""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[2]) == pid:
            total += int(f[11]) + int(f[12])
    return total


def wrk(port, path, secs):
    out = subprocess.run(["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % secs,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=secs + 60)
    text = out.stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    mult = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[tr.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    reqs = int(re.search(r"(\d+) requests in", text).group(1))
    return rps, float(tr.group(1)) * mult, int(non2xx.group(1)) if non2xx else 0, reqs


def one(kind, root, path, sendfile, tmp):
    p, port = start(kind, root, sendfile, tmp)
    try:
        wrk(port, path, WARMUP)
        t0 = cpu_ticks(p.pid)
        rps, mbs, bad, reqs = wrk(port, path, DURATION)
        t1 = cpu_ticks(p.pid)
        cpu_us = (t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / max(reqs, 1)
        return rps, mbs, bad, cpu_us
    finally:
        stop(p)


def sequential(port, path, n):
    """n GETs of path on one keep-alive connection"""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    c.close()


def ir_total(kind, root, tmp, n):
    import glob
    out = os.path.join(HERE, "results", "static-ir", "%s-%d" % (kind, n))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    os.chmod(out, 0o777)
    wrap = ["valgrind", "-q", "--tool=callgrind", "--trace-children=yes",
            "--callgrind-out-file=%s/callgrind.out.%%p" % out]
    p, port = start(kind, root, "on", tmp, wrap=wrap, workers=1)
    sequential(port, "/1k.bin", 5)
    sequential(port, "/1k.bin", n)
    os.killpg(p.pid, signal.SIGQUIT)
    p.wait()
    total = 0
    for f in glob.glob(out + "/callgrind.out.*"):
        with open(f) as fh:
            for line in fh:
                if line.startswith(("totals:", "summary:")):
                    total += int(line.split()[1])
                    break
    return total


def main_ir(root, tmp):
    n1, n2 = int(os.environ.get("N1", "200")), int(os.environ.get("N2", "1200"))
    kinds = os.environ.get("PROXIES", "zonegate nginx").split()
    for kind in kinds:
        a = ir_total(kind, root, tmp, n1)
        b = ir_total(kind, root, tmp, n2)
        print("%-9s %.0f instructions per 1 KB static request" % (kind, (b - a) / (n2 - n1)))


def main():
    if shutil.which("wrk") is None or not os.path.exists(NGINX):
        print("needs wrk and nginx (scripts/deps.sh bench)")
        return 1
    tmp = tempfile.mkdtemp(prefix="zgbench-static-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "www")
    os.mkdir(root)
    os.chmod(root, 0o755)
    for name, size in (("1k.bin", 1024), ("1m.bin", 1 << 20)):
        with open(os.path.join(root, name), "wb") as f:
            f.write(os.urandom(size))
        os.chmod(os.path.join(root, name), 0o644)
    if len(sys.argv) > 1 and sys.argv[1] == "ir":
        main_ir(root, tmp)
        return 0
    cases = [("1 KB", "/1k.bin", "on"), ("1 MB", "/1m.bin", "on"),
             ("1 MB, sendfile off", "/1m.bin", "off")]
    if os.environ.get("FILES"):
        cases = [c for c in cases if c[1][1:].split(".")[0] in os.environ["FILES"].split()]
    results = {}
    for label, path, sf in cases:
        reps = REPS if sf == "on" else 1
        for _ in range(reps):
            for kind in ("zonegate", "nginx"):
                results.setdefault((label, kind), []).append(one(kind, root, path, sf, tmp))
    lines = ["| file | server | req/s | MB/s | CPU µs/req | non-2xx | zonegate/nginx req/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for label, _, _ in cases:
        med = {}
        for kind in ("zonegate", "nginx"):
            runs = results[(label, kind)]
            med[kind] = [statistics.median(r[i] for r in runs) for i in range(4)]
        for kind in ("zonegate", "nginx"):
            rps, mbs, bad, cpu = med[kind]
            ratio = "%.2f" % (med["zonegate"][0] / med["nginx"][0]) if kind == "zonegate" else ""
            lines.append("| %s | %s | %.0f | %.1f | %.1f | %d | %s |"
                         % (label, kind, rps, mbs, cpu, bad, ratio))
    table = "\n".join(lines)
    note = ("wrk -t%d -c%d, %d s runs after %d s warm-up, %d worker(s), medians of %d "
            "alternating runs (sendfile off: 1 run)" % (THREADS, CONNS, DURATION, WARMUP,
                                                       WORKERS, REPS))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "static.md"), "w") as f:
        f.write(note + "\n\n" + table + "\n")
    print(note)
    print(table)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
