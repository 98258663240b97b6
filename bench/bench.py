#!/usr/bin/env python3
"""bench/bench.py — side-by-side benchmark of zonegate, nginx and HAProxy.

Called by bench/run.sh (`make bench`), which installs the tools and builds
bench/upstream.c first.  Everything is configured through the environment:

  REPS=3            repetitions of every (scenario, workers, connections, proxy)
  DURATION=5        seconds of each measured wrk run (after WARMUP seconds)
  WARMUP=1          seconds of wrk before the measured run (not counted)
  CONNS="64 256"    wrk connection counts
  WORKERS="1 2"     worker processes (nginx, zonegate) / threads (HAProxy)
  THREADS=2         wrk threads
  PROXIES="zonegate nginx haproxy"
  SCENARIOS="direct pass reject manykeys"
  KEEPALIVES="256 32"  upstream keep-alive pool sizes (nginx's and zonegate's
                    `keepalive N`; HAProxy: pool-max-conn N/2 per server)
  CAPACITY=1        measure the 1 MB limit_req zone capacity (zonegate, nginx)
  QUICK=1           REPS=1 DURATION=2 (about 2 minutes in all)

Each run starts the proxy afresh from its template (bench/zonegate.conf,
bench/nginx.conf, bench/haproxy.cfg), warms it up, reads the CPU time of all its
processes from /proc/PID/stat, runs wrk --latency, reads the CPU time again and
stops the proxy.  Halfway through each measured run it counts the client connections
each worker holds (sockets in /proc/PID/fd matched against /proc/net/tcp): the
per-worker split.  Proxies alternate run by run (A B C A B C ...).  Medians over the
repetitions go to bench/results/latest.{md,csv}; every run to runs.csv.
"""
import csv
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RES = os.path.join(HERE, "results")
UPSTREAM_BIN = os.environ.get("UPSTREAM_BIN", os.path.join(RES, "upstream"))
ZG_BIN = os.environ.get("ZG_BIN", os.path.join(ROOT, "build", "zonegate"))
NGINX_BIN = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
HAPROXY_BIN = os.environ.get("HAPROXY_BIN", "/usr/sbin/haproxy")
CLK_TCK = os.sysconf("SC_CLK_TCK")

QUICK = os.environ.get("QUICK", "0") not in ("", "0")
REPS = int(os.environ.get("REPS", "1" if QUICK else "3"))
DURATION = int(os.environ.get("DURATION", "2" if QUICK else "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
CONNS = [int(x) for x in os.environ.get("CONNS", "64 256").split()]
WORKERS = [int(x) for x in os.environ.get("WORKERS", "1 2").split()]
THREADS = int(os.environ.get("THREADS", "2"))
PROXIES = os.environ.get("PROXIES", "zonegate nginx haproxy").split()
SCENARIOS = os.environ.get("SCENARIOS", "direct pass reject manykeys").split()
CAPACITY = os.environ.get("CAPACITY", "1") not in ("", "0")
KEEPALIVES = [int(x) for x in os.environ.get("KEEPALIVES", "256 32").split()]

# scenario -> limit_req arguments, rate, zone size, HAProxy threshold/period/size, KEYS
SCEN = {
    # limits active, never triggered: 1M r/s per key with a large burst
    "pass": dict(rate="1000000r/s", args="burst=100000 nodelay", zone="1m",
                 ha_limit=100000000, ha_period="1s", ha_size="16k", keys="one",
                 what="one key, limits never triggered"),
    # fast reject: 1 request per minute per key, no burst: all but the first rejected
    "reject": dict(rate="1r/m", args="", zone="1m", ha_limit=1, ha_period="60s",
                   ha_size="16k", keys="one", what="one key, every request but the first rejected (429)"),
    # a distinct key per request: the zone fills with one entry per request
    "manykeys": dict(rate="1000000r/s", args="burst=100000 nodelay", zone="64m",
                     ha_limit=100000000, ha_period="1s", ha_size="1m", keys="many",
                     what="a new key per request into a 64 MB zone (HAProxy: 1M entries), no rejection"),
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not open after %.0fs" % (port, timeout))


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def cpu_ticks(pid):
    """utime+stime (fields 14, 15) of pid and all its descendants, in clock ticks."""
    total = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()  # fields from 3 on
        total += int(fields[11]) + int(fields[12])
    return total


def conn_split(pid, port):
    """client connections to `port` held by each child process of pid (the workers),
    largest first; [] for a single-process proxy"""
    inodes = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fl = line.split()
                    # local address:port, state 01 = ESTABLISHED, inode
                    if fl[3] == "01" and int(fl[1].rsplit(":", 1)[1], 16) == port:
                        inodes[fl[9]] = 0
        except OSError:
            pass
    out = []
    for w in descendants(pid)[1:]:
        n = 0
        try:
            for fd in os.listdir("/proc/%d/fd" % w):
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (w, fd))
                except OSError:
                    continue
                if t.startswith("socket:[") and t[8:-1] in inodes:
                    n += 1
        except OSError:
            continue
        out.append(n)
    return sorted(out, reverse=True) if len(out) > 1 else []


def render(template, out, vals):
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for k, v in vals.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z_0-9]+@", re.sub(r"#[^\n]*", "", text))
    if left:
        raise RuntimeError("unfilled placeholders in %s: %s" % (template, left))
    with open(out, "w") as f:
        f.write(text)


class Proxy:
    def __init__(self, name, workers, scen, ups, port=None, zone=None, key=None, keepalive=256):
        self.name, self.port = name, port or free_port()
        self.dir = tempfile.mkdtemp(prefix="zgbench-%s-" % name)
        s = SCEN[scen] if scen in SCEN else SCEN["pass"]
        vals = dict(WORKERS=workers, DIR=self.dir, PORT=self.port, UP1=ups[0], UP2=ups[1],
                    RATE=s["rate"], LIMIT_ARGS=s["args"], ZONE=zone or s["zone"],
                    HA_LIMIT=s["ha_limit"], HA_PERIOD=s["ha_period"], HA_SIZE=s["ha_size"],
                    KEEPALIVE=keepalive, HA_POOL=max(1, keepalive // 2))
        if name == "zonegate":
            conf = os.path.join(self.dir, "zonegate.conf")
            render("zonegate.conf", conf, vals)
            if key:
                self._rekey(conf, key)
            argv = [ZG_BIN, "-c", conf]
        elif name == "nginx":
            conf = os.path.join(self.dir, "nginx.conf")
            render("nginx.conf", conf, vals)
            if key:
                self._rekey(conf, key)
            argv = [NGINX_BIN, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")]
        elif name == "haproxy":
            conf = os.path.join(self.dir, "haproxy.cfg")
            render("haproxy.cfg", conf, vals)
            argv = [HAPROXY_BIN, "-db", "-f", conf]
        else:
            raise ValueError(name)
        self.errf = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.errf, stderr=self.errf, cwd=self.dir)
        try:
            wait_port(self.port, self.proc)
        except Exception as e:
            raise RuntimeError("%s did not start (%s):\n%s" % (name, e, self.stop())) from None

    @staticmethod
    def _rekey(conf, key):
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("$http_x_key", key))

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                for p in reversed(descendants(self.proc.pid)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(5)
        self.errf.close()
        err = open(os.path.join(self.dir, "stderr")).read()
        elog = os.path.join(self.dir, "error.log")
        if os.path.exists(elog):
            err += open(elog).read()
        shutil.rmtree(self.dir, ignore_errors=True)
        return err


def parse_dur(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "99"):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s|m)\b" % pct, out)
        r["p%s_ms" % pct] = parse_dur(m.group(1), m.group(2)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def wrk(port, conns, duration, keys, latency=True):
    argv = ["wrk", "-t%d" % min(THREADS, conns), "-c%d" % conns, "-d%ds" % duration,
            "-s", os.path.join(HERE, "keys.lua"), "--timeout", "5s"]
    if latency:
        argv.append("--latency")
    argv.append("http://127.0.0.1:%d/" % port)
    env = dict(os.environ, KEYS=keys)
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 30)
    return p.stdout + p.stderr


def scen_of(label):
    """("pass-ka32") -> ("pass", 32); a label without -ka has keep-alive 256"""
    base, _, ka = label.partition("-ka")
    return base, int(ka) if ka else 256


def one_run(label, proxy, workers, conns, ups):
    scen, keepalive = scen_of(label)
    keys = SCEN[scen]["keys"] if scen in SCEN else "one"
    px = None
    split = []
    if scen == "direct":
        port, pid = ups[0], None
    else:
        px = Proxy(proxy, workers, scen, ups, keepalive=keepalive)
        port, pid = px.port, px.pid()
    try:
        if WARMUP > 0:
            wrk(port, conns, WARMUP, keys, latency=False)
        t0 = cpu_ticks(pid) if pid else 0
        res = {}
        th = threading.Thread(target=lambda: res.update(out=wrk(port, conns, DURATION, keys)))
        th.start()
        th.join(DURATION / 2.0)
        if pid and th.is_alive():
            split = conn_split(pid, port)
        th.join()
        out = res.get("out", "")
        t1 = cpu_ticks(pid) if pid else 0
        if pid and px.proc.poll() is not None:
            raise RuntimeError("%s exited during the run" % proxy)
    finally:
        err = px.stop() if px else ""
    r = parse_wrk(out)
    if r["requests"] == 0:
        log(out)
        log(err)
        raise RuntimeError("wrk made no requests against %s" % proxy)
    r["cpu_us"] = (t1 - t0) * 1e6 / CLK_TCK / r["requests"] if pid else float("nan")
    r["split"] = "/".join(str(n) for n in split)
    r["max_share"] = max(split) / sum(split) if split and sum(split) else float("nan")
    return r


FIELDS = ["rps", "p50_ms", "p99_ms", "cpu_us", "non2xx", "sockerr", "requests", "max_share"]


def med(rows, f):
    vals = [r[f] for r in rows if r[f] == r[f]]
    return statistics.median(vals) if vals else float("nan")


def fmt(v, nd=2):
    if v != v:
        return "-"
    return ("%%.%df" % nd) % v


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


# ------------------------------------------------------------- zone capacity

def sequential(port, keys, header="X-K"):
    """Send GET / with `header: key` for every key, one request at a time on one
    keep-alive connection; returns the status codes in order.  (Not pipelined:
    zonegate does not yet answer a second request sent in the same read.)"""
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    buf = b""
    codes = []
    hb = header.encode()
    for k in keys:
        s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n%s: %s\r\n\r\n" % (hb, k))
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(buf) >= end + 4 + n:
                    break
            d = s.recv(65536)
            if not d:
                raise RuntimeError("connection closed")
            buf += d
        codes.append(int(head.split(" ", 2)[1]))
        buf = buf[end + 4 + n:]
    s.close()
    return codes


def capacity(proxy, ups, total=24000):
    """Keys (4 bytes each, like $binary_remote_addr) that a 1 MB zone holds: send
    `total` distinct keys once (rate 1r/m: each first request passes), then the same
    keys again from the newest down; the keys still in the zone are rejected, the
    first one that passes was evicted.  The count of rejections is the capacity."""
    keys = [b"%c%c%c%c" % (65 + i // 17576 % 26, 65 + i // 676 % 26, 65 + i // 26 % 26, 65 + i % 26)
            for i in range(total)]
    px = Proxy(proxy, 1, "reject", ups, zone="1m", key="$http_x_k")
    try:
        first = sequential(px.port, keys)
        bad = sum(1 for c in first if c != 200)
        held = 0
        rev = list(reversed(keys))
        for i in range(0, len(rev), 500):
            codes = sequential(px.port, rev[i:i + 500])
            for c in codes:
                if c == 429:
                    held += 1
                else:
                    break
            else:
                continue
            break
        metrics = ""
        if proxy == "zonegate":
            metrics = "\n".join(l for l in http_get(px.port, "/metrics").splitlines()
                                if "keys" in l and ("entries" in l or "evictions" in l))
    finally:
        px.stop()
    return held, bad, metrics


def http_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n" % path.encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data.decode("latin-1")


# ---------------------------------------------------------------------- main

def main():
    os.makedirs(RES, exist_ok=True)
    ups = [free_port(), free_port()]
    upp = [subprocess.Popen([UPSTREAM_BIN, str(p)]) for p in ups]
    try:
        for p, u in zip(upp, ups):
            wait_port(u, p)
        run(ups)
    finally:
        for p in upp:
            p.terminate()
            p.wait(5)


def run(ups):
    machine = machine_info()
    log("machine: %s" % machine)
    cap_lines = []
    if CAPACITY:
        for proxy in [p for p in PROXIES if p in ("zonegate", "nginx")]:
            held, bad, metrics = capacity(proxy, ups)
            log("capacity %s: 1 MB zone holds %d 4-byte keys (first pass non-200: %d)"
                % (proxy, held, bad))
            cap_lines.append("| %s | %d |" % (proxy, held))
            if metrics:
                log(metrics)

    plan = []
    for scen in SCENARIOS:
        if scen == "direct":
            for c in CONNS:
                plan.append((scen, "upstream", 0, c))
            continue
        for ka in KEEPALIVES:
            label = scen if ka == 256 else "%s-ka%d" % (scen, ka)
            for w in WORKERS:
                for c in CONNS:
                    for p in PROXIES:
                        plan.append((label, p, w, c))
    total = len(plan) * REPS
    log("%d runs of %ds (+%ds warm-up), %d repetitions, proxies alternate run by run"
        % (total, DURATION, WARMUP, REPS))
    runs = []
    n = 0
    t_start = time.time()
    # group the plan by (scen, w, c) and alternate the proxies within a repetition
    groups = {}
    for scen, p, w, c in plan:
        groups.setdefault((scen, w, c), []).append(p)
    for (scen, w, c), proxies in groups.items():
        for rep in range(REPS):
            for p in proxies:
                n += 1
                r = one_run(scen, p, w, c, ups)
                r.update(scenario=scen, proxy=p, workers=w, conns=c, rep=rep + 1)
                runs.append(r)
                log("[%3d/%d %4.0fs] %-8s w=%d c=%-3d %-8s %9.0f req/s p50 %6.2fms p99 %7.2fms "
                    "cpu %6.1fus/req non2xx %d err %d split %s" % (
                        n, total, time.time() - t_start, scen, w, c, p, r["rps"], r["p50_ms"],
                        r["p99_ms"], r["cpu_us"], r["non2xx"], r["sockerr"], r["split"] or "-"))

    cols = ["scenario", "workers", "conns", "proxy", "rep"] + FIELDS + ["split"]
    with open(os.path.join(RES, "runs.csv"), "w", newline="") as f:
        w_ = csv.DictWriter(f, cols, extrasaction="ignore")
        w_.writeheader()
        w_.writerows(runs)

    meds = {}
    for (scen, w, c), proxies in groups.items():
        for p in proxies:
            rows = [r for r in runs if (r["scenario"], r["workers"], r["conns"], r["proxy"]) ==
                    (scen, w, c, p)]
            meds[(scen, w, c, p)] = {f: med(rows, f) for f in FIELDS}
    with open(os.path.join(RES, "latest.csv"), "w", newline="") as f:
        w_ = csv.writer(f)
        w_.writerow(["scenario", "workers", "conns", "proxy", "rps", "p50_ms", "p99_ms",
                     "cpu_us_per_req", "non2xx", "socket_errors", "requests",
                     "busiest_worker_share"])
        for (scen, w, c, p), m in meds.items():
            w_.writerow([scen, w, c, p] + ["%.3f" % m[f] if m[f] == m[f] else "" for f in FIELDS])

    md = []
    md.append("# zonegate benchmark — %s\n" % time.strftime("%Y-%m-%d %H:%M"))
    md.append("Machine: %s. wrk %s, %d threads, %ds runs after %ds warm-up, median of %d "
              "repetitions, proxies alternating run by run.\n"
              % (machine, wrk_version(), THREADS, DURATION, WARMUP, REPS))
    md.append("Scenario `X-kaN`: upstream `keepalive N` (otherwise 256). Split: the "
              "client connections of the busiest worker halfway through the run, "
              "median over the repetitions (50% = even; every run's split is in "
              "runs.csv).\n")
    md.append("| scenario | workers | conns | proxy | req/s | p50 ms | p99 ms | CPU µs/req | non-2xx | socket errors | busiest worker |")
    md.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for (scen, w, c, p), m in meds.items():
        md.append("| %s | %s | %d | %s | %.0f | %s | %s | %s | %d | %d | %s |" % (
            scen, w or "-", c, p, m["rps"], fmt(m["p50_ms"]), fmt(m["p99_ms"]),
            fmt(m["cpu_us"], 1), m["non2xx"], m["sockerr"],
            "-" if m["max_share"] != m["max_share"] else "%.0f%%" % (100 * m["max_share"])))
    md.append("")
    others = [p for p in ("nginx", "haproxy") if p in PROXIES]
    if "zonegate" in PROXIES and others:
        hdr = ["scenario", "workers", "conns"]
        for what in ("req/s", "p99", "CPU/req"):
            for o in others:
                hdr.append("%s zg/%s" % (what, o))
        md.append("Ratios (zonegate divided by the other proxy; req/s: higher is better for "
                  "zonegate, p99 and CPU/req: lower is better):\n")
        md.append("| " + " | ".join(hdr) + " |")
        md.append("|---|---:|---:|" + "---:|" * (len(hdr) - 3))
        for (scen, w, c), proxies in groups.items():
            if scen == "direct":
                continue
            z = meds.get((scen, w, c, "zonegate"))
            row = [scen, str(w), str(c)]
            for f in ("rps", "p99_ms", "cpu_us"):
                for o in others:
                    m = meds.get((scen, w, c, o))
                    row.append(fmt(ratio(z[f], m[f])) if z and m else "-")
            md.append("| " + " | ".join(row) + " |")
        md.append("")
    if "pass" in SCENARIOS and "manykeys" in SCENARIOS:
        md.append("Many keys against one key (req/s of `manykeys` / `pass`; 1.00 = no loss):\n")
        md.append("| proxy | workers | conns | manykeys/pass |")
        md.append("|---|---:|---:|---:|")
        for p in PROXIES:
            for w in WORKERS:
                for c in CONNS:
                    a, b = meds.get(("manykeys", w, c, p)), meds.get(("pass", w, c, p))
                    if a and b:
                        md.append("| %s | %d | %d | %s |" % (p, w, c, fmt(ratio(a["rps"], b["rps"]))))
        md.append("")
    if cap_lines:
        md.append("1 MB limit_req zone, 4-byte keys held before the first eviction (measured):\n")
        md.append("| proxy | keys |")
        md.append("|---|---:|")
        md.extend(cap_lines)
        md.append("")
    text = "\n".join(md)
    with open(os.path.join(RES, "latest.md"), "w") as f:
        f.write(text)
    print(text)

    # chart data: one line per (scenario, workers, conns), req/s and CPU per proxy
    order = [p for p in ("zonegate", "nginx", "haproxy") if p in PROXIES]
    with open(os.path.join(RES, "chart.dat"), "w") as f:
        f.write("# label " + " ".join("rps_" + p for p in order) + " " +
                " ".join("cpu_" + p for p in order) + "\n")
        for (scen, w, c), proxies in groups.items():
            if scen == "direct":
                continue
            vals = [meds.get((scen, w, c, p), {}).get("rps", float("nan")) for p in order]
            cpu = [meds.get((scen, w, c, p), {}).get("cpu_us", float("nan")) for p in order]
            f.write('"%s w%d c%d" %s %s\n' % (scen, w, c, " ".join("%.0f" % v for v in vals),
                                               " ".join("%.2f" % v for v in cpu)))


def machine_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d vCPU %s, Linux %s" % (os.cpu_count(), model, os.uname().release)


def wrk_version():
    p = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    m = re.search(r"wrk (\S+)", p.stdout + p.stderr)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    main()
