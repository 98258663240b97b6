"""Helpers of the Redis sync tests: real redis-server / redis-sentinel processes on
loopback ports (registered with zg.spawn, so the runner stops them), a zonegate
host config, /metrics samples and paced clients."""
import http.client
import os
import re
import subprocess
import tempfile
import threading
import time

import zg
from zg import Zonegate, free_port, get, wait_port

CONF = """
worker_processes 2;
http {{
    limit_req_zone $binary_remote_addr zone=fleet:1m rate={rate}r/s {sync};
    limit_req_status 429;
    upstream back {{ server 127.0.0.1:{back}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            limit_req zone=fleet burst={burst} nodelay;
            proxy_pass http://back;
        }}
        location = /metrics {{ metrics; }}
    }}
    # a fast backend: `return` answers before limit_req (nginx's order), so the
    # limited location proxies
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


class Redis:
    """redis-server (or redis-sentinel with sentinel=CONFIG_TEXT) on a free port;
    args: extra command-line options"""

    def __init__(self, port=None, args=(), sentinel=None, password=None, user=None):
        self.port = port or free_port()
        self.args = list(args)
        self.sentinel = sentinel
        self.password = password
        self.user = user
        self.dir = tempfile.mkdtemp(prefix="zgredis-")
        self.start()

    def start(self):
        if self.sentinel is not None:
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n%s" % (self.port, self.dir,
                                                                 self.sentinel))
            argv = ["redis-sentinel", conf]
        else:
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", self.dir] + self.args
        self.proc = zg.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def cli(self, *args):
        argv = ["redis-cli", "-p", str(self.port)]
        if self.user:
            argv += ["--user", self.user]
        if self.password:
            argv += ["-a", self.password, "--no-auth-warning"]
        return subprocess.run(argv + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=10).stdout.decode()

    def clients(self):
        out = self.cli("client", "list")
        return sum(1 for line in out.splitlines() if "cmd=client" not in line)

    def keys(self, pattern="zg:*"):
        return [k for k in self.cli("--scan", "--pattern", pattern).split() if k]

    def kill(self, sig=9):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        if sig == 9:
            self.proc.wait()


def has_redis_conn(pid, port):
    """pid has a TCP connection to 127.0.0.1:port (its sockets' inodes in /proc/net/tcp)"""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[2] == "0100007F:%04X" % port and parts[9] in inodes:
                return True
    return False


def host_conn(z, port):
    """one of zonegate z's workers is connected to 127.0.0.1:port"""
    for pid in z.workers():
        try:
            if has_redis_conn(pid, port):
                return True
        except OSError:
            pass
    return False


def hosts(n, sync, rate, burst, conf=CONF, **kw):
    """n zonegate hosts with the given sync parameters; [(Zonegate, port)]"""
    out = []
    for _ in range(n):
        port, back = free_port(), free_port()
        out.append((Zonegate(conf, wait_ports=[port, back], port=port, back=back, rate=rate,
                             burst=burst, sync=sync, **kw), port))
    return out


def metric(port, name, zone="fleet"):
    body = get(port, "/metrics")[2].decode()
    m = re.search(r'^%s\{zone="%s"\} (\d+)$' % (name, zone), body, re.M)
    return int(m.group(1)) if m else None


def drive(port, rps, seconds, log, stop=None, path="/"):
    """one client sending rps requests/s (a connection each) for seconds; appends
    (start time, status, latency) to log; a failed request is status 0"""
    t0 = time.monotonic()
    i = 0
    while True:
        at = t0 + i / rps
        if at - t0 >= seconds or (stop is not None and stop.is_set()):
            break
        d = at - time.monotonic()
        if d > 0:
            time.sleep(d)
        s = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2 * zg.SLOW)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            st = r.status
        except (OSError, http.client.HTTPException):
            st = 0
        finally:
            c.close()
        log.append((s, st, time.monotonic() - s))
        i += 1


def run_clients(ports, rps, seconds):
    logs = [[] for _ in ports]
    ts = [threading.Thread(target=drive, args=(p, rps, seconds, logs[i]), daemon=True)
          for i, p in enumerate(ports)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return logs


class Background:
    """clients on every port until stop(); logs[i] as drive() fills them"""

    def __init__(self, ports, rps, paths=None):
        self.ev = threading.Event()
        zg.STOPS.append(self.ev.set)  # the runner stops them if the test fails first
        self.logs = [[] for _ in ports]
        paths = paths or ["/"] * len(ports)
        self.ts = [threading.Thread(target=drive,
                                    args=(p, rps, 600, self.logs[i], self.ev, paths[i]),
                                    daemon=True) for i, p in enumerate(ports)]
        for t in self.ts:
            t.start()

    def stop(self):
        self.ev.set()
        for t in self.ts:
            t.join(10)
        return self.logs


def fleet_bound(rate, burst, nhosts, interval, t):
    """the README's bound on what nhosts admit over t seconds:
    R*(t + T) + H*(B + 1) + (H - 1)*R*S, S = staleness = 2*T (+ 20 ms RTT)"""
    return rate * (t + interval) + nhosts * (burst + 1) + \
        (nhosts - 1) * rate * (2 * interval + 0.02)
