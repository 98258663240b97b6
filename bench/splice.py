"""bench/splice.py — bulk stream throughput and CPU per GB: zonegate with proxy_splice
on, zonegate with it off and nginx's stream module, side by side in one run on
loopback (bench/README.md, "proxy_splice").

One iperf3 -s behind all three proxies (1 worker each, so one relay process carries
the flow and its CPU is what a proxy costs); REPS rounds, the proxies in a rotating
order within each round; per run iperf3 -t SECONDS client -> server, then -R.  CPU
is utime+stime of the proxy's processes (master and workers, /proc) over the run,
divided by the bytes received: seconds of CPU per GB.  Medians and ratios against
nginx go to bench/results/splice.md.  Environment: REPS (3), SECONDS (3)."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stream as sb  # noqa: E402  (bench/stream.py: spawn, start_*, group_cpu, ...)

REPS = int(os.environ.get("REPS", "3"))
SECONDS = int(os.environ.get("SECONDS", "3"))

CONF = """
stream {{
    upstream iperf {{ zone iperf 64k; server 127.0.0.1:{iperf}; }}
    server {{ listen 127.0.0.1:{port}; proxy_pass iperf; {extra} }}
}}
"""


def iperf(port, reverse):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(SECONDS), "-J"]
    if reverse:
        argv.append("-R")
    out = subprocess.run(argv, stdout=subprocess.PIPE, timeout=SECONDS + 60).stdout
    j = json.loads(out)["end"]["sum_received"]
    return j["bits_per_second"] / 1e9, j["bytes"]


def one(port, pgid, reverse):
    c0 = sb.group_cpu(pgid)
    gbit, nbytes = iperf(port, reverse)
    c1 = sb.group_cpu(pgid)
    return gbit, (c1 - c0) / (nbytes / 1e9)


def start(name, conf, d):
    path = os.path.join(d, "conf")
    head = "worker_processes 1;\n"
    if name == "nginx":
        with open(path, "w") as f:
            f.write("load_module %s;\nuser root;\n%sevents { worker_connections 1024; }\n%s"
                    % (sb.MODULE, head, conf))
        g = "daemon off; master_process on; pid %s/nginx.pid; error_log %s/error.log warn;" \
            % (d, d)
        return sb.spawn([sb.NGINX, "-p", d + "/", "-c", path, "-g", g],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path, "w") as f:
        f.write("error_log %s/error.log warn;\npid %s/zg.pid;\n%s%s" % (d, d, head, conf))
    return sb.spawn([sb.ZG, "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    iperf_port = sb.free_port()
    sb.spawn(["iperf3", "-s", "-p", str(iperf_port)], stdout=subprocess.DEVNULL,
             stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # iperf3 -s: a probe connection would count as a test
    proxies = {}
    for name, extra in (("zonegate splice", "proxy_splice on;"),
                        ("zonegate buffered", "proxy_splice off;"), ("nginx", "")):
        port = sb.free_port()
        d = tempfile.mkdtemp(prefix="zgbench-")
        p = start(name, CONF.format(iperf=iperf_port, port=port, extra=extra), d)
        time.sleep(0.5)  # no probe of the port either: it would reach iperf3 -s
        proxies[name] = (port, p)
    names = list(proxies)
    res = {n: {"up": [], "down": [], "cpu_up": [], "cpu_down": []} for n in names}
    for rep in range(REPS):
        order = names[rep % 3:] + names[:rep % 3]
        for n in order:
            port, p = proxies[n]
            for key, rev in (("up", False), ("down", True)):
                gbit, cpu = one(port, p.pid, rev)
                res[n][key].append(gbit)
                res[n]["cpu_" + key].append(cpu)
            print(rep, n, {k: round(v[-1], 3) for k, v in res[n].items()}, flush=True)
    med = {n: {k: statistics.median(v) for k, v in res[n].items()} for n in names}
    lines = ["| proxy | up Gbit/s | down Gbit/s | up CPU s/GB | down CPU s/GB | "
             "throughput vs nginx (up, down) | CPU/GB vs nginx (up, down) |",
             "|---|---|---|---|---|---|---|"]
    ng = med["nginx"]
    for n in names:
        m = med[n]
        lines.append("| %s | %.2f | %.2f | %.3f | %.3f | %.2f, %.2f | %.2f, %.2f |" % (
            n, m["up"], m["down"], m["cpu_up"], m["cpu_down"], m["up"] / ng["up"],
            m["down"] / ng["down"], m["cpu_up"] / ng["cpu_up"], m["cpu_down"] / ng["cpu_down"]))
    head = ("iperf3 through each proxy (1 worker), loopback, median of %d rotating rounds of "
            "%d s per direction (%s, %d CPUs, shared with other work)\n\n"
            % (REPS, SECONDS, time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    text = head + "\n".join(lines) + "\n"
    os.makedirs(os.path.join(sb.ROOT, "bench/results"), exist_ok=True)
    with open(os.path.join(sb.ROOT, "bench/results/splice.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        for p in sb.PROCS:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in sb.PROCS:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    sys.exit(rc)
