"""bench/stream.py — the stream proxy side by side with nginx's stream module, in one
run, on loopback (bench/stream.sh runs it; bench/README.md).

Per proxy, REPS rounds, the proxies interleaved within each round:
  - bulk: iperf3 through the proxy, client -> server and -R (server -> client), Gbit/s;
  - small requests: redis-benchmark -P 16 GET/SET through the proxy, requests/s;
  - new connections: redis-benchmark -k 0 PING (one connection per request) with
    limit_conn and (zonegate only: nginx's stream has none) limit_req active,
    connections/s, and the proxy's CPU time per
    connection (utime+stime of master and workers from /proc, in µs).
Reports medians and zonegate/nginx ratios (> 1: zonegate faster or, for CPU, costlier)
to bench/results/stream.md.  Both proxies run 2 workers; the clients and upstreams
share the machine with them, so absolute numbers mean little and the ratios are what
to read.  Environment: REPS (3), SECONDS (5, per iperf3 run), REQUESTS (200000)."""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZG = os.environ.get("ZG_BIN", os.path.join(ROOT, "build/zonegate"))
NGINX = "/usr/sbin/nginx"
MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
REPS = int(os.environ.get("REPS", "3"))
SECONDS = int(os.environ.get("SECONDS", "5"))
REQUESTS = int(os.environ.get("REQUESTS", "200000"))
PROCS = []

STREAM = """
stream {{
    limit_conn_zone $binary_remote_addr zone=lc:1m;
    limit_req_zone $binary_remote_addr zone=lr:1m rate=1000000r/s;
    upstream iperf {{ zone iperf 64k; server 127.0.0.1:{iperf}; }}
    upstream redis {{ zone redis 64k; server 127.0.0.1:{redis}; }}
    server {{ listen 127.0.0.1:{p_bulk}; proxy_pass iperf; }}
    server {{ listen 127.0.0.1:{p_redis}; proxy_pass redis; }}
    server {{
        listen 127.0.0.1:{p_conn} backlog=4096;
        limit_conn lc 60000;
        limit_req zone=lr burst=1000000 nodelay;
        proxy_pass redis;
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening" % port)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    PROCS.append(p)
    return p


def group_cpu(pgid):
    """utime+stime (s) of the live processes of a process group"""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def start_zonegate(conf, d):
    path = os.path.join(d, "zonegate.conf")
    with open(path, "w") as f:
        f.write("error_log %s/error.log warn;\npid %s/zg.pid;\nworker_processes 2;\n%s"
                % (d, d, conf))
    out = open(os.path.join(d, "stderr"), "w")
    return spawn([ZG, "-c", path], stdout=out, stderr=out)


def start_nginx(conf, d):
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write("load_module %s;\nuser root;\nworker_processes 2;\n"
                "events { worker_connections 4096; }\n%s" % (MODULE, conf))
    g = "daemon off; master_process on; pid %s/nginx.pid; error_log %s/error.log warn;" % (d, d)
    return spawn([NGINX, "-p", d + "/", "-c", path, "-g", g], stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)


def iperf(port, reverse):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(SECONDS), "-J"]
    if reverse:
        argv.append("-R")
    out = subprocess.run(argv, stdout=subprocess.PIPE, timeout=SECONDS + 60).stdout
    j = json.loads(out)
    return j["end"]["sum_received"]["bits_per_second"] / 1e9


def redis_bench(port, args):
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--csv"]
                         + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=600).stdout.decode()
    res = {}
    for line in out.splitlines():
        parts = [x.strip('"') for x in line.split(",")]
        if len(parts) > 1 and parts[0] != "test":
            res[parts[0].split()[0]] = float(parts[1])
    return res


def round_for(proxy, ports, pgid):
    r = {"bulk_up": iperf(ports["p_bulk"], False), "bulk_down": iperf(ports["p_bulk"], True)}
    rb = redis_bench(ports["p_redis"], ["-P", "16", "-c", "50", "-n", str(REQUESTS),
                                        "-t", "set,get"])
    r["set_p16"] = rb.get("SET", 0.0)
    r["get_p16"] = rb.get("GET", 0.0)
    n = max(REQUESTS // 10, 1000)
    cpu0 = group_cpu(pgid)
    rb = redis_bench(ports["p_conn"], ["-k", "0", "-c", "20", "-n", str(n), "-t", "ping"])
    cpu1 = group_cpu(pgid)
    r["conn_per_s"] = rb.get("PING_INLINE", rb.get("PING_MBULK", 0.0))
    r["cpu_us_per_conn"] = (cpu1 - cpu0) * 1e6 / n
    return r


def main():
    for tool in ("iperf3", "redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print("missing %s (scripts/deps.sh bench)" % tool)
            return 1
    if not os.path.exists(MODULE):
        print("missing %s (libnginx-mod-stream)" % MODULE)
        return 1
    iperf_port, redis_port = free_port(), free_port()
    spawn(["iperf3", "-s", "-p", str(iperf_port)], stdout=subprocess.DEVNULL,
          stderr=subprocess.DEVNULL)
    spawn(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_port(redis_port)
    time.sleep(0.5)  # iperf3 -s: a probe connection would count as a test
    proxies = {}
    for name, start in (("zonegate", start_zonegate), ("nginx", start_nginx)):
        ports = {k: free_port() for k in ("p_bulk", "p_redis", "p_conn")}
        conf = STREAM.format(iperf=iperf_port, redis=redis_port, **ports)
        if name == "nginx":  # nginx's stream modules have no limit_req
            conf = "\n".join(ln for ln in conf.split("\n") if "limit_req" not in ln)
        d = tempfile.mkdtemp(prefix="zgbench-")
        p = start(conf, d)
        try:
            wait_port(ports["p_redis"])
        except RuntimeError:
            with open(os.path.join(d, "error.log"), errors="replace") as f:
                raise RuntimeError("%s did not start: %s" % (name, f.read()[-2000:]))
        proxies[name] = (ports, p)
    results = {name: [] for name in proxies}
    for rep in range(REPS):
        for name in (("zonegate", "nginx") if rep % 2 == 0 else ("nginx", "zonegate")):
            ports, p = proxies[name]
            results[name].append(round_for(name, ports, p.pid))
            print(rep, name, results[name][-1], flush=True)
    keys = ["bulk_up", "bulk_down", "set_p16", "get_p16", "conn_per_s", "cpu_us_per_conn"]
    units = {"bulk_up": "Gbit/s", "bulk_down": "Gbit/s", "set_p16": "req/s",
             "get_p16": "req/s", "conn_per_s": "conn/s", "cpu_us_per_conn": "µs CPU/conn"}
    lines = ["| measure | zonegate | nginx stream | zonegate/nginx |", "|---|---|---|---|"]
    for k in keys:
        z = statistics.median(r[k] for r in results["zonegate"])
        n = statistics.median(r[k] for r in results["nginx"])
        lines.append("| %s (%s) | %.3g | %.3g | %.2f |" % (k, units[k], z, n, z / n if n else 0))
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    head = ("Stream proxy, zonegate vs nginx %s stream module, 2 workers each, loopback, "
            "median of %d interleaved rounds (%s, %d CPUs, shared with other work)\n\n"
            % (subprocess.run([NGINX, "-v"], stderr=subprocess.PIPE).stderr.decode().strip()
               .split("/")[-1], REPS, time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    text = head + "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench/results/stream.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        for p in PROCS:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in PROCS:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    sys.exit(rc)
