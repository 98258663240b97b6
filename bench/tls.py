#!/usr/bin/env python3
"""bench/tls.py — TLS handshakes per second, zonegate and nginx side by side.

Both run 2 workers with the same self-signed RSA-2048 certificate (made here) and
`ssl_session_cache shared:SSL:10m`; `openssl s_time` measures full handshakes (-new)
and resumed ones (-reuse), for TLS 1.3 and TLS 1.2, one client process at a time.
Then `wrk` (when installed) measures keep-alive HTTPS requests per second through
limit_req to the C upstream of bench/ (UPSTREAM_BIN, built by bench/run.sh).
Last, the session cache's capacity: zonegate alone (nginx counts no evictions) with
`shared:CAP:1m` and tickets off, full TLS 1.2 handshakes until /metrics shows the first
eviction; the sessions held then, per MB.

  python3 bench/tls.py            SECONDS=5 ZG_BIN=build/zonegate NGINX_BIN=/usr/sbin/nginx

The client and both servers share the machine: compare the two columns of one run,
not runs on different (or busy) machines.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZG = os.path.join(ROOT, os.environ.get("ZG_BIN", "build/zonegate"))
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
SECONDS = int(os.environ.get("SECONDS", "5"))

SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/c.pem;
        ssl_certificate_key {dir}/k.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {{ return 200 "ok"; }}
        location /p {{ limit_req zone=z burst=1000000 nodelay; proxy_pass http://127.0.0.1:{up}; }}
    }}
"""
HTTP = "    limit_req_zone $binary_remote_addr zone=z:1m rate=1000000r/s;\n"
UPSTREAM = os.environ.get("UPSTREAM_BIN", os.path.join(ROOT, "bench/results/upstream"))


def start(kind, d, port):
    conf = os.path.join(d, kind + ".conf")
    if kind == "zonegate":
        text = ("worker_processes 2;\nerror_log %s/zg.log;\npid %s/zg.pid;\nhttp {{\n"
                "keepalive_requests 100000000;\n%s%s}}\n"
                % (d, d, HTTP, SERVER)).format(dir=d, port=port, up=UP_PORT)
        argv = [ZG, "-c", conf]
    else:
        text = ("user root;\nworker_processes 2;\ndaemon off;\nerror_log %s/ng.log;\n"
                "pid %s/ng.pid;\nevents {{ }}\nhttp {{\n    access_log off;\n"
                "    client_body_temp_path %s/b;\n    proxy_temp_path %s/p;\n"
                "    fastcgi_temp_path %s/f;\n    uwsgi_temp_path %s/u;\n"
                "    scgi_temp_path %s/s;\n%s%s}}\n" % ((d,) * 7 + (HTTP, SERVER))).format(
                    dir=d, port=port, up=UP_PORT)
        argv = [NGINX, "-p", d + "/", "-c", conf]
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    return p


def s_time(port, mode, proto):
    out = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, mode,
                          proto, "-time", str(SECONDS)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=SECONDS * 4 + 30).stdout.decode()
    m = re.search(r"(\d+) connections in (\d+) real seconds", out)
    return int(m.group(1)) / SECONDS if m else 0.0


UP_PORT = free_port()


def wrk(port):
    out = subprocess.run(["wrk", "-t1", "-c16", "-d%ds" % SECONDS,
                          "https://127.0.0.1:%d/p" % port], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=SECONDS * 4 + 30).stdout.decode()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(m.group(1)) if m else 0.0


CAP_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/c.pem;
        ssl_certificate_key {dir}/k.pem;
        ssl_session_cache shared:CAP:1m;
        ssl_session_tickets off;
        location = /metrics {{ metrics; }}
    }}
"""


def metrics(port):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    text = out.decode(errors="replace")
    ev = re.search(r'zonegate_ssl_session_cache_total\{zone="CAP",type="evictions"\} (\d+)', text)
    held = re.search(r'zonegate_ssl_sessions\{zone="CAP"\} (\d+)', text)
    return int(ev.group(1)), int(held.group(1))


def capacity(d):
    """sessions held by a 1 MB shared cache at its first eviction"""
    port = free_port()
    conf = os.path.join(d, "cap.conf")
    with open(conf, "w") as f:
        f.write(("worker_processes 2;\nerror_log %s/cap.log;\npid %s/cap.pid;\nhttp {{\n%s}}\n"
                 % (d, d, CAP_SERVER)).format(dir=d, port=port))
    p = subprocess.Popen([ZG, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port)
        for _ in range(60):
            subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                            "-tls1_2", "-time", "1"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
            ev, n = metrics(port)
            if ev > 0:
                return n  # full: the sessions a 1 MB zone holds
        return None
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait()


def main():
    d = tempfile.mkdtemp(prefix="zgbench-tls-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    d + "/k.pem", "-out", d + "/c.pem", "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = None
    if os.path.exists(UPSTREAM):
        up = subprocess.Popen([UPSTREAM, str(UP_PORT)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(UP_PORT)
    ports = {"zonegate": free_port(), "nginx": free_port()}
    procs = {k: start(k, d, p) for k, p in ports.items()}
    try:
        print("%-26s %12s %12s" % ("handshakes/s", "zonegate", "nginx"))
        for proto, pname in (("-tls1_3", "TLS 1.3"), ("-tls1_2", "TLS 1.2")):
            for mode, mname in (("-new", "full"), ("-reuse", "resumed")):
                r = {k: s_time(p, mode, proto) for k, p in ports.items()}
                print("%-26s %12.0f %12.0f" % ("%s %s" % (pname, mname), r["zonegate"],
                                                r["nginx"]))
                sys.stdout.flush()
        if up is not None and subprocess.run(["which", "wrk"], stdout=subprocess.DEVNULL).returncode == 0:
            r = {k: wrk(p) for k, p in ports.items()}
            print("%-26s %12.0f %12.0f" % ("HTTPS keep-alive req/s", r["zonegate"], r["nginx"]))
    finally:
        if os.environ.get("CAPACITY", "1") == "1":
            for p in procs.values():
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
            procs = {}
            print("%-26s %12s %12s" % ("sessions per MB (1st eviction)", capacity(d),
                                       "~4000 (doc)"))
        if up is not None:
            os.killpg(up.pid, signal.SIGTERM)
            up.wait()
        for p in procs.values():
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()


if __name__ == "__main__":
    main()
