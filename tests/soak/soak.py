"""Soak test (issue 7): zonegate (the ASan build by default) under mixed traffic for
SOAK_SECONDS (default 300): requests that pass, are delayed, are rejected, big bodies
both ways, clients that abort mid-request or mid-response, and a reload every
SOAK_RELOAD seconds (default 15).  Every 10 s it samples RSS and descriptor count of
the master and of every worker; at the end it prints min/max of each, the request
outcomes, and any ASan/UBSan report.  Exit status 1 on a sanitizer report, a crashed
worker, a dead master, or failed requests that are not explained by the traffic mix.
Not part of `make test`: run `make soak` (minutes)."""
import glob
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import zg  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
RELOAD_EVERY = float(os.environ.get("SOAK_RELOAD", "15"))
SAMPLE_EVERY = 10.0
BIN = os.path.join(ROOT, os.environ.get("ZG_BIN", "build-asan/zonegate"))

CONF = """
worker_processes 2;
error_log {dir}/error.log info;
pid {dir}/zonegate.pid;
http {{
    limit_req_zone $http_x_key zone=pass:1m rate=100000r/s;
    limit_req_zone $http_x_key zone=delay:1m rate=20r/s;
    limit_req_zone $http_x_key zone=reject:64k rate=2r/s;
    limit_conn_zone $http_x_key zone=conns:1m;
    upstream app {{ zone app 64k; server {up}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 8m;
        client_header_timeout 5s;
        client_body_timeout 5s;
        limit_req_status 429;
        location / {{
            limit_req zone=pass burst=100000 nodelay;
            limit_conn conns 50;
            proxy_pass http://app;
            proxy_read_timeout 5s;
        }}
        location /d/ {{
            limit_req zone=delay burst=10;
            proxy_pass http://app/;
        }}
        location /r/ {{
            limit_req zone=reject;
            proxy_pass http://app/;
        }}
        location = /slab_stat {{ slab_stat; }}
        location = /metrics {{ metrics; }}
    }}
}}
"""


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, kind, outcome):
        with self.lock:
            k = (kind, outcome)
            self.counts[k] = self.counts.get(k, 0) + 1


def proc_info(pid):
    """(rss kB, fd count) or None"""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == ppid and fields[0] != "Z":
                    out.append(int(d))
            except OSError:
                pass
    return out


def worker_loop(port, stop, stats, seed):
    rnd = random.Random(seed)
    key = "k%d" % seed
    while not stop.is_set():
        kind = rnd.choice(["pass", "pass", "pass", "delay", "reject", "post", "big",
                           "abort_body", "abort_resp", "abort_slow", "slab"])
        try:
            if kind == "pass":
                st = zg.get(port, "/echo", headers={"X-Key": key}, timeout=10)[0]
            elif kind == "delay":
                st = zg.get(port, "/d/", headers={"X-Key": "delay"}, timeout=10)[0]
            elif kind == "reject":
                st = zg.get(port, "/r/", headers={"X-Key": "reject"}, timeout=10)[0]
            elif kind == "post":
                body = os.urandom(rnd.choice([10, 70000, 1 << 20, 3 << 20]))
                st, _, resp = zg.request(port, "POST", "/echo", body=body, timeout=30,
                                         headers={"X-Key": key})
                if st == 200 and json.loads(resp)["length"] != len(body):
                    st = "corrupt"
            elif kind == "big":
                n = rnd.choice([1000, 1 << 20, 4 << 20])
                st, _, resp = zg.get(port, "/big?n=%d&chunked=%d" % (n, rnd.randrange(2)),
                                     timeout=30, headers={"X-Key": key})
                if st == 200 and len(resp) != n:
                    st = "short"
            elif kind == "abort_body":
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                          + b"x" * rnd.randrange(1, 50000))
                s.close()
                st = "aborted"
            elif kind == "abort_resp":
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /big?n=8000000 HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(rnd.randrange(1, 70000))
                s.close()
                st = "aborted"
            elif kind == "abort_slow":
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(rnd.random() * 0.3)
                s.close()
                st = "aborted"
            else:
                st = zg.get(port, "/slab_stat", timeout=10)[0]
        except Exception as e:  # noqa: B902
            st = type(e).__name__
        stats.add(kind, st)


def main():
    if not os.path.exists(BIN):
        print("missing %s (make asan builds it)" % BIN)
        return 1
    d = tempfile.mkdtemp(prefix="zgsoak-")
    up = zg.Upstream("soak")
    port = zg.free_port()
    conf = os.path.join(d, "zonegate.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(dir=d, up=up.addr, port=port))
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "log_path=%s/asan:detect_leaks=1:abort_on_error=0" % d
    env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1" % d
    err = open(os.path.join(d, "stderr.log"), "wb")
    master = subprocess.Popen([BIN, "-c", conf], stdout=err, stderr=subprocess.STDOUT, env=env)
    zg.wait_port(port, proc=master)
    print("soak: %s for %ds, reload every %ds, logs in %s" % (BIN, SECONDS, RELOAD_EVERY, d),
          flush=True)

    stop = threading.Event()
    stats = Stats()
    threads = [threading.Thread(target=worker_loop, args=(port, stop, stats, i), daemon=True)
               for i in range(6)]
    for t in threads:
        t.start()

    samples = []  # (t, master (rss, fds), [(pid, rss, fds) per worker])
    start = time.time()
    next_sample = start
    next_reload = start + RELOAD_EVERY
    reloads = 0
    while time.time() - start < SECONDS and master.poll() is None:
        now = time.time()
        if now >= next_sample:
            m = proc_info(master.pid)
            ws = [(p,) + i for p in children(master.pid) for i in [proc_info(p)] if i]
            samples.append((now - start, m, ws))
            print("  t=%4.0fs master rss %s kB fds %s | workers %s" % (
                now - start, m[0] if m else "?", m[1] if m else "?",
                " ".join("%d:%dkB/%dfd" % w for w in ws)), flush=True)
            next_sample += SAMPLE_EVERY
        if now >= next_reload:
            master.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload += RELOAD_EVERY
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(40)
    alive = master.poll() is None
    metrics = ""
    if alive:
        try:
            metrics = zg.get(port, "/metrics", timeout=10)[2].decode()
        except Exception:  # noqa: B902
            pass
    # read before stopping: workers of old generations must have exited by themselves
    # (code 0) after draining; "exited on signal" while running is a crash or a kill
    log_running = open(os.path.join(d, "error.log"), errors="replace").read()
    if alive:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
    up.stop()
    err.close()

    print("\n== requests (kind, outcome: count)")
    for (kind, st), n in sorted(stats.counts.items(), key=lambda x: (x[0][0], str(x[0][1]))):
        print("  %-11s %-22s %d" % (kind, st, n))
    print("\n== samples: %d, reloads: %d" % (len(samples), reloads))
    if samples:
        mr = [s[1][0] for s in samples if s[1]]
        mf = [s[1][1] for s in samples if s[1]]
        wr = [w[1] for s in samples for w in s[2]]
        wf = [w[2] for s in samples for w in s[2]]
        print("  master  rss kB min %d max %d (first %d, last %d); fds min %d max %d (first %d, "
              "last %d)" % (min(mr), max(mr), mr[0], mr[-1], min(mf), max(mf), mf[0], mf[-1]))
        if wr:
            print("  workers rss kB min %d max %d; fds min %d max %d (per worker, all samples)"
                  % (min(wr), max(wr), min(wf), max(wf)))
    for line in metrics.splitlines():
        if line.startswith(("zonegate_worker_restarts_total", "zonegate_reloads_total",
                            "zonegate_accept_errors_total", "zonegate_reload_failures_total")):
            print("  " + line)

    reports = sorted(glob.glob(os.path.join(d, "asan*")) + glob.glob(os.path.join(d, "ubsan*")))
    stderr_text = open(os.path.join(d, "stderr.log"), errors="replace").read()
    sanitizer = [p for p in reports if os.path.getsize(p) > 0]
    if "ERROR: AddressSanitizer" in stderr_text or "runtime error:" in stderr_text:
        sanitizer.append(os.path.join(d, "stderr.log"))
    crashed = [l for l in log_running.splitlines() if "exited on signal" in l]
    graceful = log_running.count("exited with code 0")
    bad = {k: n for k, n in stats.counts.items()
           if k[1] not in (200, 429, "aborted") and not (k[0] == "delay" and k[1] == 503)}
    print("\n== sanitizer reports: %s" % (", ".join(sanitizer) or "none"))
    for p in sanitizer[:3]:
        print(open(p, errors="replace").read()[:4000])
    print("== workers killed by a signal: %d, exited gracefully after a reload: %d"
          % (len(crashed), graceful))
    for l in crashed[:5]:
        print("  " + l)
    print("== unexpected outcomes: %s" % (bad or "none"))
    ok = alive and not sanitizer and not crashed and not bad
    print("SOAK %s" % ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
