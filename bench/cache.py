#!/usr/bin/env python3
"""bench/cache.py — proxy_cache, zonegate vs nginx in one run.

1. HIT throughput: both proxies cache (proxy_cache_valid 200 10m) the answer of
   bench/upstream.c (a 1 KB and a 100 KB body), wrk fetches the one URL over keep-alive
   connections (every request after the first is a HIT); servers alternate run by run,
   medians of REPS runs; CPU µs/request of the proxy's processes.
2. The flood: FLOOD seconds of wrk on one URL with `proxy_cache_valid 200 1s;
   proxy_cache_lock on;` in front of tests/integration/upstream.py, which counts the
   requests it gets (nginx: about one per second).
3. Keys per MB of keys zone (measured by tests/unit/modules/test_cache.c).

Environment: ZG_BIN (build/zonegate), NGINX (/usr/sbin/nginx), REPS (3), DURATION (5 s),
WARMUP (1 s), CONNS (64), THREADS (2), WORKERS (2), FLOOD (10 s).  Writes
bench/results/cache.md and prints it."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import static  # noqa: E402

static.WORKERS = int(os.environ.get("WORKERS", "2"))
FLOOD = int(os.environ.get("FLOOD", "10"))
UPSTREAM = os.path.join(HERE, "results", "upstream")

LOC = """
    proxy_cache_path {tmp}/{kind}-cache levels=1:2 keys_zone=one:10m;
    server {{
        listen 127.0.0.1:{port};
        access_log off;
        location / {{
            proxy_pass http://127.0.0.1:{up};
            proxy_cache one;
            proxy_cache_valid 200 {valid};
            proxy_cache_lock on;
            proxy_cache_key $request_uri;
        }}
    }}
"""


def start(kind, up, valid, tmp):
    port = static.free_port()
    shutil.rmtree(os.path.join(tmp, kind + "-cache"), ignore_errors=True)
    server = LOC.format(tmp=tmp, kind=kind, port=port, up=up, valid=valid)
    w = static.WORKERS
    if kind == "zonegate":
        conf = ("worker_processes %d;\npid %s/zg.pid;\nerror_log %s/zg.log notice;\n"
                "http {\n%s}\n" % (w, tmp, tmp, server))
        path = os.path.join(tmp, "zg.conf")
        open(path, "w").write(conf)
        argv = [static.ZG, "-c", path]
    else:
        conf = ("user root;\nworker_processes %d;\npid %s/ng.pid;\nerror_log %s/ng.log notice;\n"
                "events { worker_connections 1024; }\nhttp {\n"
                "client_body_temp_path %s/b; proxy_temp_path %s/p; fastcgi_temp_path %s/f;\n"
                "uwsgi_temp_path %s/u; scgi_temp_path %s/s;\nkeepalive_requests 100000000;\n"
                "%s}\n" % ((w,) + (tmp,) * 7 + (server,)))
        path = os.path.join(tmp, "ng.conf")
        open(path, "w").write(conf)
        argv = [static.NGINX, "-p", tmp + "/", "-c", path, "-g", "daemon off; master_process on;"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    static.wait_port(port, p)
    return p, port


def hit_run(kind, up, tmp):
    p, port = start(kind, up, "10m", tmp)
    try:
        static.wrk(port, "/x", static.WARMUP)
        t0 = static.cpu_ticks(p.pid)
        rps, mbs, bad, reqs = static.wrk(port, "/x", static.DURATION)
        t1 = static.cpu_ticks(p.pid)
        return rps, mbs, bad, (t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / max(reqs, 1)
    finally:
        static.stop(p)


def count(up):
    return int(urllib.request.urlopen("http://127.0.0.1:%d/__count" % up).read())


def flood_run(kind, up, tmp):
    p, port = start(kind, up, "1s", tmp)
    try:
        c0 = count(up)
        rps, _, bad, reqs = static.wrk(port, "/hdr?flood=1", FLOOD)
        return count(up) - c0, reqs, bad
    finally:
        static.stop(p)


def main():
    if shutil.which("wrk") is None or not os.path.exists(static.NGINX):
        print("needs wrk and nginx (scripts/deps.sh bench)")
        return 1
    if not os.path.exists(UPSTREAM):
        subprocess.check_call(["cc", "-O2", "-o", UPSTREAM, os.path.join(HERE, "upstream.c"),
                               "-luv"])
    tmp = tempfile.mkdtemp(prefix="zgbench-cache-")
    os.chmod(tmp, 0o755)
    ups = []
    lines = ["| body | server | req/s | MB/s | CPU µs/req | non-2xx | zonegate/nginx req/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    try:
        for label, size in (("1 KB", 1024), ("100 KB", 100 * 1024)):
            body = os.path.join(tmp, "body%d" % size)
            with open(body, "wb") as f:
                f.write(b"x" * size)
            up = static.free_port()
            ups.append(subprocess.Popen([UPSTREAM, str(up), body], start_new_session=True))
            static.wait_port(up, ups[-1])
            runs = {}
            for _ in range(static.REPS):
                for kind in ("zonegate", "nginx"):
                    runs.setdefault(kind, []).append(hit_run(kind, up, tmp))
            med = {k: [statistics.median(r[i] for r in v) for i in range(4)]
                   for k, v in runs.items()}
            for kind in ("zonegate", "nginx"):
                rps, mbs, bad, cpu = med[kind]
                ratio = ("%.2f" % (med["zonegate"][0] / med["nginx"][0])
                         if kind == "zonegate" else "")
                lines.append("| %s | %s | %.0f | %.1f | %.1f | %d | %s |"
                             % (label, kind, rps, mbs, cpu, bad, ratio))
        up = static.free_port()
        ups.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "integration", "upstream.py"),
             str(up), "up"], stdout=subprocess.DEVNULL, start_new_session=True))
        static.wait_port(up, ups[-1])
        lines += ["", "| flood (valid 1s, lock on) | server | seconds | requests | "
                  "upstream requests | non-2xx |", "|---|---|---:|---:|---:|---:|"]
        for kind in ("zonegate", "nginx"):
            n, reqs, bad = flood_run(kind, up, tmp)
            lines.append("| /hdr | %s | %d | %d | %d | %d |" % (kind, FLOOD, reqs, n, bad))
    finally:
        for u in ups:
            u.kill()
            u.wait()
    lines += ["", "keys zone: an entry is 120 bytes in a 128-byte slab slot; a 1 MB zone "
              "holds 8,064 keys (tests/unit/modules/test_cache.c; nginx documents about "
              "8,000)"]
    table = "\n".join(lines)
    note = ("wrk -t%d -c%d, %d s runs after %d s warm-up, %d workers, medians of %d "
            "alternating runs; flood: %d s" % (static.THREADS, static.CONNS, static.DURATION,
                                                static.WARMUP, static.WORKERS, static.REPS,
                                                FLOOD))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cache.md"), "w") as f:
        f.write(note + "\n\n" + table + "\n")
    print(note)
    print(table)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
