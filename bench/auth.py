#!/usr/bin/env python3
"""bench/auth.py — auth_request: requests/s with a subrequest per request, zonegate and
nginx side by side.

Both proxies run 2 workers.  Two instances of bench/upstream.c: the app (upstream
keep-alive) and the auth service (answers 200 to everything).  `/a` has `auth_request
/auth` (an internal location proxying to the auth service: a new connection per
subrequest on both proxies, nginx's default without `keepalive` for that upstream),
`/ak` the same with `keepalive 16` in the auth upstream (nginx: proxy_http_version 1.1
and an empty Connection header in the auth location), `/plain` no auth_request.  wrk (-t2 -cCONNS, DURATION s) runs against
each proxy and location in turn, REPS times alternating; medians of req/s and p99 with
zonegate/nginx ratios.

  REPS=4 DURATION=5 CONNS=64 ZG_BIN=build/zonegate python3 bench/auth.py
  python3 bench/auth.py ir   instructions per /a and /ak request (callgrind, 1 worker, master
                             and worker, N1=200 and N2=1200 sequential keep-alive
                             requests: (Ir(N2)-Ir(N1))/(N2-N1)), both proxies
"""
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
    upstream authsvc {{ server 127.0.0.1:{auth}; }}
    upstream authka {{ server 127.0.0.1:{auth}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location = /auth {{ internal; proxy_pass http://authsvc/check;
                           proxy_set_header Content-Length ""; }}
        location = /auth-ka {{ internal; proxy_pass http://authka/check;
                              proxy_http_version 1.1; proxy_set_header Connection "";
                              proxy_set_header Content-Length ""; }}
        location /ak {{ auth_request /auth-ka; proxy_pass http://app;
                       proxy_http_version 1.1; proxy_set_header Connection ""; }}
        location /a {{ auth_request /auth; proxy_pass http://app; proxy_http_version 1.1;
                      proxy_set_header Connection ""; }}
        location /plain {{ proxy_pass http://app; proxy_http_version 1.1;
                          proxy_set_header Connection ""; }}
    }}
"""


def start(kind, d, port, up, auth, workers=2, wrap=None):
    conf = os.path.join(d, kind + ".conf")
    if kind == "zonegate":
        text = ("worker_processes %d;\nerror_log %s/zg.log;\npid %s/zg.pid;\n%shttp {{\n%s}}\n"
                % (workers, d, d, "worker_sandbox off;\n" if wrap else "", SERVER)).format(
                    port=port, up=up, auth=auth)
        argv = [ZG, "-c", conf]
    else:
        text = ("user root;\nworker_processes %d;\ndaemon off;\nerror_log %s/ng.log;\n"
                "pid %s/ng.pid;\nevents {{ }}\nhttp {{\n    access_log off;\n"
                "    client_body_temp_path %s/b;\n    proxy_temp_path %s/p;\n"
                "    fastcgi_temp_path %s/f;\n    uwsgi_temp_path %s/u;\n"
                "    scgi_temp_path %s/s;\n%s}}\n" % ((workers,) + (d,) * 7 + (SERVER,))).format(
                    port=port, up=up, auth=auth)
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
                          "http://127.0.0.1:%d%s" % (port, path)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=DURATION * 4 + 30).stdout.decode()
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return (float(rps.group(1)) if rps else 0.0,
            float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
            int(non2xx.group(1)) if non2xx else 0)


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


def ir_total(kind, d, up, auth, n, path):
    import glob
    out = os.path.join(d, "cg-%s-%d-%s" % (kind, n, path.strip("/")))
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o777)
    wrap = ["valgrind", "-q", "--tool=callgrind", "--trace-children=yes",
            "--callgrind-out-file=%s/callgrind.out.%%p" % out]
    port = free_port()
    p = start(kind, d, port, up, auth, workers=1, wrap=wrap)
    sequential(port, path, 5)
    sequential(port, path, n)
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


def main_ir(d, up, auth):
    n1, n2 = int(os.environ.get("N1", "200")), int(os.environ.get("N2", "1200"))
    for path in ("/a", "/ak"):
        for kind in ("zonegate", "nginx"):
            a = ir_total(kind, d, up, auth, n1, path)
            b = ir_total(kind, d, up, auth, n2, path)
            print("%-9s %-4s %.0f instructions per request" % (kind, path, (b - a) / (n2 - n1)))


def main():
    d = tempfile.mkdtemp(prefix="zgbench-auth-")
    os.chmod(d, 0o755)  # workers run as nobody
    upbin = os.path.join(d, "upstream")
    subprocess.run(["cc", "-O2", "-o", upbin, os.path.join(ROOT, "bench/upstream.c"), "-luv"],
                   check=True)
    up_port, auth_port = free_port(), free_port()
    ups = [subprocess.Popen([upbin, str(p)], start_new_session=True)
           for p in (up_port, auth_port)]
    for p in (up_port, auth_port):
        wait_port(p)
    if len(sys.argv) > 1 and sys.argv[1] == "ir":
        try:
            main_ir(d, up_port, auth_port)
        finally:
            for u in ups:
                os.killpg(u.pid, signal.SIGTERM)
                u.wait()
        return
    ports = {"zonegate": free_port(), "nginx": free_port()}
    procs = {k: start(k, d, p, up_port, auth_port) for k, p in ports.items()}
    try:
        for k, p in ports.items():
            with urllib.request.urlopen("http://127.0.0.1:%d/a" % p) as r:
                assert r.status == 200, (k, r.status)
        res = {}
        for rep in range(REPS):
            order = list(ports) if rep % 2 == 0 else list(reversed(list(ports)))
            for path in ("/a", "/ak", "/plain"):
                for k in order:
                    res.setdefault((k, path), []).append(wrk(ports[k], path))
        print("%-8s %-9s %10s %8s %8s" % ("path", "proxy", "req/s", "p99 ms", "non-2xx"))
        for path in ("/a", "/ak", "/plain"):
            med = {}
            for k in ports:
                runs = res[(k, path)]
                med[k] = (statistics.median(r[0] for r in runs),
                          statistics.median(r[1] for r in runs))
                print("%-8s %-9s %10.0f %8.2f %8d   runs: %s" % (
                    path, k, med[k][0], med[k][1], sum(r[2] for r in runs),
                    " ".join("%.0f" % r[0] for r in runs)))
            print("%-8s zonegate/nginx req/s %.2f, p99 %.2f" % (
                path, med["zonegate"][0] / med["nginx"][0],
                med["zonegate"][1] / med["nginx"][1] if med["nginx"][1] else 0))
    finally:
        for u in ups:
            os.killpg(u.pid, signal.SIGTERM)
            u.wait()
        for p in procs.values():
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()


if __name__ == "__main__":
    main()
