#!/usr/bin/env python3
"""bench/gzip.py — gzip on a 10 KB JSON response, zonegate and nginx side by side.

Both proxies run 2 workers in front of the C upstream of bench/ answering a fixed
10 KB JSON document (bench/upstream.c PORT FILE), with `gzip on; gzip_types
application/json;` (level 1, nginx's default) in one location and gzip off in another.
wrk (-t2 -c64, DURATION s, `Accept-Encoding: gzip`) runs against each proxy and
location in turn, REPS times alternating, and the medians of req/s and p99 are printed
with zonegate/nginx ratios.  The compressed sizes both proxies send are printed too.

  python3 bench/gzip.py      REPS=4 DURATION=5 ZG_BIN=build/zonegate
  python3 bench/gzip.py ir   instructions per gzipped request (callgrind, 1 worker,
                             N1=200 and N2=1200 requests: (Ir(N2)-Ir(N1))/(N2-N1))
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZG = os.path.join(ROOT, os.environ.get("ZG_BIN", "build/zonegate"))
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
REPS = int(os.environ.get("REPS", "4"))
DURATION = int(os.environ.get("DURATION", "5"))
CONNS = int(os.environ.get("CONNS", "64"))

SERVER = """
    upstream app {{ server 127.0.0.1:{up}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location /gz {{ gzip on; gzip_types application/json; proxy_pass http://app;
                       proxy_http_version 1.1; proxy_set_header Connection ""; }}
        location /plain {{ proxy_pass http://app; proxy_http_version 1.1;
                          proxy_set_header Connection ""; }}
    }}
"""


def json_doc(n=10240):
    items, i = [], 0
    while len(json.dumps(items)) < n:
        items.append({"id": i, "name": "user%d" % i, "email": "user%d@example.com" % i,
                      "active": i % 3 == 0, "score": (i * 7919) % 1000 / 10.0,
                      "tags": ["alpha", "beta%d" % (i % 5)]})
        i += 1
    return json.dumps(items).encode()


def start(kind, d, port, up, workers=2, wrap=None):
    conf = os.path.join(d, kind + ".conf")
    if kind == "zonegate":
        text = ("worker_processes %d;\nerror_log %s/zg.log;\npid %s/zg.pid;\n%shttp {{\n"
                "keepalive_requests 100000000;\n%s}}\n"
                % (workers, d, d, "worker_sandbox off;\n" if wrap else "", SERVER)).format(
                    port=port, up=up)
        argv = [ZG, "-c", conf]
    else:
        text = ("user root;\nworker_processes %d;\ndaemon off;\nerror_log %s/ng.log;\n"
                "pid %s/ng.pid;\nevents {{ }}\nhttp {{\n    access_log off;\n"
                "    client_body_temp_path %s/b;\n    proxy_temp_path %s/p;\n"
                "    fastcgi_temp_path %s/f;\n    uwsgi_temp_path %s/u;\n"
                "    scgi_temp_path %s/s;\n%s}}\n" % ((workers,) + (d,) * 7 + (SERVER,))).format(
                    port=port, up=up)
        argv = [NGINX, "-p", d + "/", "-c", conf]
    with open(conf, "w") as f:
        f.write(text)
    if wrap:
        argv = wrap + argv
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    return p


def wrk(port, path):
    out = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % DURATION, "--latency",
                          "-H", "Accept-Encoding: gzip",
                          "http://127.0.0.1:%d%s" % (port, path)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=DURATION * 4 + 30).stdout.decode()
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return (float(rps.group(1)) if rps else 0.0,
            float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0)


def size(port, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req) as r:
        return len(r.read()), r.headers.get("Content-Encoding")


def sequential(port, path, n):
    """n GETs of path with Accept-Encoding: gzip on one keep-alive connection"""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        c.request("GET", path, headers={"Accept-Encoding": "gzip"})
        r = c.getresponse()
        r.read()
        assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip", r.status
    c.close()


def ir_total(kind, d, up, n):
    import glob
    out = os.path.join(d, "cg-%s-%d" % (kind, n))
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o777)
    wrap = ["valgrind", "-q", "--tool=callgrind", "--trace-children=yes",
            "--callgrind-out-file=%s/callgrind.out.%%p" % out]
    port = free_port()
    p = start(kind, d, port, up, workers=1, wrap=wrap)
    sequential(port, "/gz", 5)
    sequential(port, "/gz", n)
    os.killpg(p.pid, signal.SIGQUIT)
    p.wait()
    time.sleep(0.5)
    total = 0
    for f in glob.glob(out + "/callgrind.out.*"):
        with open(f) as fh:
            for line in fh:
                if line.startswith(("totals:", "summary:")):
                    total += int(line.split()[1])
                    break
    return total


def main_ir(d, up):
    n1, n2 = int(os.environ.get("N1", "200")), int(os.environ.get("N2", "1200"))
    for kind in ("zonegate", "nginx"):
        a = ir_total(kind, d, up, n1)
        b = ir_total(kind, d, up, n2)
        print("%-9s %.0f instructions per gzipped 10 KB JSON request" % (
            kind, (b - a) / (n2 - n1)))


def main():
    d = tempfile.mkdtemp(prefix="zgbench-gzip-")
    os.chmod(d, 0o755)  # workers run as nobody
    doc = os.path.join(d, "doc.json")
    with open(doc, "wb") as f:
        f.write(json_doc())
    upbin = os.path.join(d, "upstream")
    subprocess.run(["cc", "-O2", "-o", upbin, os.path.join(ROOT, "bench/upstream.c"), "-luv"],
                   check=True)
    up_port = free_port()
    up = subprocess.Popen([upbin, str(up_port), doc], start_new_session=True)
    wait_port(up_port)
    if len(sys.argv) > 1 and sys.argv[1] == "ir":
        try:
            main_ir(d, up_port)
        finally:
            os.killpg(up.pid, signal.SIGTERM)
            up.wait()
        return
    ports = {"zonegate": free_port(), "nginx": free_port()}
    procs = {k: start(k, d, p, up_port) for k, p in ports.items()}
    try:
        for k, p in ports.items():
            print("%-9s /gz: %s, /plain: %s bytes" % (k, size(p, "/gz"), size(p, "/plain")[0]))
        res = {}
        for rep in range(REPS):
            order = list(ports) if rep % 2 == 0 else list(reversed(list(ports)))
            for path in ("/gz", "/plain"):
                for k in order:
                    res.setdefault((k, path), []).append(wrk(ports[k], path))
        print("\n%-8s %-9s %10s %8s" % ("path", "proxy", "req/s", "p99 ms"))
        for path in ("/gz", "/plain"):
            med = {}
            for k in ports:
                runs = res[(k, path)]
                med[k] = (statistics.median(r[0] for r in runs),
                          statistics.median(r[1] for r in runs))
                print("%-8s %-9s %10.0f %8.2f   runs: %s" % (
                    path, k, med[k][0], med[k][1],
                    " ".join("%.0f" % r[0] for r in runs)))
            print("%-8s zonegate/nginx req/s %.2f, p99 %.2f" % (
                path, med["zonegate"][0] / med["nginx"][0],
                med["zonegate"][1] / med["nginx"][1] if med["nginx"][1] else 0))
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait()
        for p in procs.values():
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()


if __name__ == "__main__":
    main()
