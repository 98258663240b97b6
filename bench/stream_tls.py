#!/usr/bin/env python3
"""bench/stream_tls.py — TLS on stream servers, zonegate and nginx side by side.

One redis-server; zonegate and nginx (libnginx-mod-stream) each terminate TLS on a
stream server in front of it (2 workers, the same self-signed RSA-2048 certificate,
`ssl_session_cache shared:S:10m`), and `redis-benchmark --tls` runs through each,
the two alternating, REPS rounds (default 3), medians printed:

- `-P 16 -c 50 -t set,get`: requests/s over long-lived TLS sessions (the relay);
- `-k 0 -c 20 -t ping`: a new TLS connection (full handshake) per request.

  python3 bench/stream_tls.py      REQUESTS=100000 REPS=3 ZG_BIN=build/zonegate

Everything shares the machine: read the ratios of one run.
"""
import os
import sys
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZG = os.path.join(ROOT, os.environ.get("ZG_BIN", "build/zonegate"))
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
REQUESTS = int(os.environ.get("REQUESTS", "100000"))
REPS = int(os.environ.get("REPS", "3"))

STREAM = """stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/c.pem;
        ssl_certificate_key {dir}/k.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:S:10m;
        proxy_pass 127.0.0.1:{redis};
    }}
}}
"""


def start(kind, d, port, redis):
    conf = os.path.join(d, kind + ".conf")
    body = STREAM.format(dir=d, port=port, redis=redis)
    if kind == "zonegate":
        text = "worker_processes 2;\nerror_log %s/zg.log;\npid %s/zg.pid;\n%s" % (d, d, body)
        argv = [ZG, "-c", conf]
    else:
        text = ("load_module %s;\nuser root;\nworker_processes 2;\ndaemon off;\n"
                "error_log %s/ng.log;\npid %s/ng.pid;\nevents { }\n%s" % (MODULE, d, d, body))
        argv = [NGINX, "-p", d + "/", "-c", conf]
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    return p


def bench(port, args):
    out = subprocess.run(["redis-benchmark", "--tls", "--insecure", "-h", "127.0.0.1", "-p",
                          str(port), "-q"] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=600).stdout.decode()
    return [float(x) for x in re.findall(r"([0-9.]+) requests per second", out)]


def main():
    d = tempfile.mkdtemp(prefix="zgbench-stls-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    d + "/k.pem", "-out", d + "/c.pem", "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(rport)
    ports = {"zonegate": free_port(), "nginx": free_port()}
    procs = {k: start(k, d, p, rport) for k, p in ports.items()}
    rows = {"SET -P16 c50": [], "GET -P16 c50": [], "PING, new TLS conn each": []}
    res = {k: {r: [] for r in rows} for k in ports}
    try:
        for _ in range(REPS):
            for k, p in ports.items():
                s, g = (bench(p, ["-P", "16", "-c", "50", "-n", str(REQUESTS), "-t", "set,get"])
                        + [0.0, 0.0])[:2]
                res[k]["SET -P16 c50"].append(s)
                res[k]["GET -P16 c50"].append(g)
                n = (bench(p, ["-k", "0", "-c", "20", "-n", str(max(REQUESTS // 50, 500)),
                               "-t", "ping_inline"]) + [0.0])[0]
                res[k]["PING, new TLS conn each"].append(n)
        print("%-28s %12s %12s %7s" % ("requests/s (median of %d)" % REPS, "zonegate",
                                       "nginx", "ratio"))
        for r in rows:
            z = statistics.median(res["zonegate"][r])
            n = statistics.median(res["nginx"][r])
            print("%-28s %12.0f %12.0f %7.2f" % (r, z, n, z / n if n else 0))
    finally:
        for p in list(procs.values()) + [redis]:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()


if __name__ == "__main__":
    main()
